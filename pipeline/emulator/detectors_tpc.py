"""Synthetic TPC QA (`TPCQA/` objects): AliPerformanceTPC-style track TH3s and event TH1s.

Track TH3s are projections of the track THnSparse, `h_tpc_track_<charge>_recvertex_<x>_<y>_<z>`, with
axis 0 = number of clusters, 2 = found/findable clusters, 3 = DCA_r, 4 = DCA_z, 5 = eta, 6 = phi,
7 = pT. Binnings are chosen so that OVERWATCH's projections work as written (features 2.6): `_0_5_7`
has 160 cluster bins (bins 71-160 = "ncl > 70"), 30 eta bins and 25 pT bins. Eta is always the
physical eta on 30 bins over [-1.5, 1.5], as AliPerformanceTPC booked it, so eta bins 1-15 are the C
side (eta < 0) and 16-30 the A side: the bins OVERWATCH meant with `SetRangeUser(0, 14)` /
`(15, 29)` on the `_3_5_6` / `_4_5_6` y axis (it passed bin numbers as axis values). One sector on
the A side has low efficiency, so the A/C-side DCA maps and the eta-phi map differ visibly.

Every track filled is counted once in the multiplicity histograms of its event, so the TH3 entries
equal the sum of the per-event multiplicities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pipeline.emulator.detectors import (
    Axis,
    Detector,
    HistogramSpec,
    Increment,
    fill_samples,
    spec,
)

PREFIX = "TPCQA/"
CHARGES: tuple[str, ...] = ("all", "pos", "neg")
TRACK_PROJECTIONS: tuple[str, ...] = ("0_5_7", "2_5_6", "3_5_6", "4_5_6")
EVENT_VARIABLES: tuple[int, ...] = (0, 1, 2, 4, 5)
# A-side sector with a failing readout chamber: 70 % of its tracks are lost.
LOW_EFFICIENCY_SECTOR = 7
LOW_EFFICIENCY_KEEP = 0.3
_SECTOR_WIDTH = 2 * math.pi / 18


def track_histogram_name(charge: str, projection: str) -> str:
    return f"{PREFIX}h_tpc_track_{charge}_recvertex_{projection}"


class TPCDetector(Detector):
    """TPC tracking QA from the HLT TPC merger."""

    subsystem = "TPC"
    base_event_rate_hz = 25.0
    rate_oscillation_s = 293.0

    def _declare(self) -> Sequence[HistogramSpec]:
        clusters = Axis.regular(160, 0, 160, "Number of TPC clusters")
        eta = Axis.regular(30, -1.5, 1.5, "#eta")
        pt = Axis.logarithmic(25, 0.1, 20.0, "p_{T} (GeV/c)")
        found_over_findable = Axis.regular(22, 0, 1.1, "Found/findable clusters")
        phi = Axis.regular(18, 0, 2 * math.pi, "#phi (rad)")
        axes = {
            "0_5_7": (clusters, eta, pt, "number of clusters vs #eta vs p_{T}"),
            "2_5_6": (found_over_findable, eta, phi, "found/findable clusters vs #eta vs #phi"),
            "3_5_6": (Axis.regular(30, -3, 3, "DCA_{r} (cm)"), eta, phi, "DCA_{r} vs #eta vs #phi"),
            "4_5_6": (Axis.regular(30, -3, 3, "DCA_{z} (cm)"), eta, phi, "DCA_{z} vs #eta vs #phi"),
        }
        charge_titles = {"all": "all", "pos": "positive", "neg": "negative"}
        specs = [
            spec(
                track_histogram_name(charge, projection),
                "TH3F",
                f"{axes[projection][3]} ({charge_titles[charge]} tracks, rec. vertex)",
                *axes[projection][:3],
            )
            for charge in CHARGES
            for projection in TRACK_PROJECTIONS
        ]
        multiplicity_high = 100.0 * self.multiplicity_scale
        event_axes = {
            0: Axis.regular(100, -0.5, 0.5, "x_{vtx} (cm)"),
            1: Axis.regular(100, -0.5, 0.5, "y_{vtx} (cm)"),
            2: Axis.regular(100, -25, 25, "z_{vtx} (cm)"),
            4: Axis.regular(100, 0, multiplicity_high, "positive track multiplicity"),
            5: Axis.regular(100, 0, multiplicity_high, "negative track multiplicity"),
        }
        specs += [
            spec(
                f"{PREFIX}h_tpc_event_recvertex_{v}",
                "TH1D",
                f"Events with rec. vertex: {event_axes[v].title}",
                event_axes[v],
            )
            for v in EVENT_VARIABLES
        ]
        specs.append(
            spec(
                f"{PREFIX}h_tpc_event_6",
                "TH1D",
                "Events by vertex status",
                Axis.integer_centred(2, "vertex status (0 none, 1 reconstructed)"),
            )
        )
        return specs

    def fill(
        self, step_index: int, rng: np.random.Generator, rate_factor: float = 1.0
    ) -> dict[str, Increment]:
        n_events = self.events_in_step(step_index, rng, rate_factor)
        has_vertex = rng.random(n_events) < (0.93 if self.multiplicity_scale < 2 else 0.99)
        n_vertex = int(has_vertex.sum())
        increments = {
            f"{PREFIX}h_tpc_event_6": fill_samples(
                self.specs[f"{PREFIX}h_tpc_event_6"], has_vertex.astype(float)
            )
        }
        vertex = {
            0: rng.normal(0.075, 0.03, n_vertex),
            1: rng.normal(0.33, 0.03, n_vertex),
            2: rng.normal(0.0, 6.0, n_vertex),
        }
        mean_multiplicity = 12.0 * self.multiplicity_scale
        shape_k = 1.5
        n_charged = rng.negative_binomial(shape_k, shape_k / (shape_k + mean_multiplicity), n_vertex)
        tracks = self._tracks(np.repeat(np.arange(n_vertex), n_charged), rng)
        positive = tracks["positive"]
        # Multiplicities after the efficiency loss: what the tracking actually found per event.
        vertex[4] = np.bincount(tracks["event"][positive], minlength=n_vertex).astype(np.float64)
        vertex[5] = np.bincount(tracks["event"][~positive], minlength=n_vertex).astype(np.float64)
        for variable in EVENT_VARIABLES:
            name = f"{PREFIX}h_tpc_event_recvertex_{variable}"
            increments[name] = fill_samples(self.specs[name], vertex[variable])
        coordinates = {
            "0_5_7": ("clusters", "eta", "pt"),
            "2_5_6": ("found_over_findable", "eta", "phi"),
            "3_5_6": ("dca_r", "eta", "phi"),
            "4_5_6": ("dca_z", "eta", "phi"),
        }
        for projection, variables in coordinates.items():
            per_charge = {}
            for charge, selected in (("pos", positive), ("neg", ~positive)):
                name = track_histogram_name(charge, projection)
                per_charge[charge] = fill_samples(self.specs[name], *(tracks[v][selected] for v in variables))
            increments[track_histogram_name("pos", projection)] = per_charge["pos"]
            increments[track_histogram_name("neg", projection)] = per_charge["neg"]
            increments[track_histogram_name("all", projection)] = Increment(
                per_charge["pos"].values_flow + per_charge["neg"].values_flow,
                per_charge["pos"].variances_flow + per_charge["neg"].variances_flow,
                per_charge["pos"].entries + per_charge["neg"].entries,
            )
        return increments

    @staticmethod
    def _tracks(event: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Per-track variables; tracks lost to the low-efficiency sector are already removed."""
        n = event.size
        in_core = rng.random(n) < 0.88
        tail = np.sign(rng.random(n) - 0.5) * (0.9 + np.abs(rng.normal(0.0, 0.25, n)))
        eta = np.where(in_core, rng.uniform(-0.9, 0.9, n), tail)
        phi = rng.uniform(0.0, 2 * math.pi, n)
        sector = np.floor(phi / _SECTOR_WIDTH)
        lost = (eta > 0) & (sector == LOW_EFFICIENCY_SECTOR) & (rng.random(n) > LOW_EFFICIENCY_KEEP)
        keep = ~lost
        event, eta, phi = event[keep], eta[keep], phi[keep]
        n = event.size
        positive = rng.random(n) < 0.51
        pt = 0.15 + 1.2 * ((1.0 - rng.random(n)) ** (-1.0 / 5.0) - 1.0)
        # Tracks beyond |eta| ~ 0.9 leave the TPC through an end plate and have fewer clusters.
        is_long = rng.random(n) >= 0.1
        mean_clusters = 150.0 * np.minimum(1.0, 0.9 / np.maximum(np.abs(eta), 1e-3)) - 15.0 * (pt < 0.3)
        clusters = np.where(is_long, rng.normal(mean_clusters, 8.0), rng.uniform(20, 150, n))
        clusters = np.floor(np.clip(clusters, 0, 159))
        found_over_findable = np.where(is_long, rng.normal(0.95, 0.04, n), rng.normal(0.75, 0.12, n))
        found_over_findable = np.clip(found_over_findable, 0.0, 1.09)
        primary = rng.random(n) < 0.9
        sigma_r = np.sqrt(0.05**2 + (0.2 / pt) ** 2)
        sigma_z = np.sqrt(0.1**2 + (0.3 / pt) ** 2)
        dca_r = np.where(primary, rng.normal(0.0, sigma_r), rng.uniform(-3, 3, n))
        dca_z = np.where(primary, rng.normal(0.0, sigma_z), rng.uniform(-3, 3, n))
        return {
            "event": event,
            "positive": positive,
            "eta": eta,
            "phi": phi,
            "pt": pt,
            "clusters": clusters,
            "found_over_findable": found_over_findable,
            "dca_r": dca_r,
            "dca_z": dca_z,
        }
