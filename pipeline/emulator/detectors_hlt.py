"""Synthetic HLT global prompt-reconstruction QA (`fHist...` objects of the HLT merger).

Per-event quantities (multiplicity, detector cluster counts, raw and HLT output sizes, vertices) are
sampled per event and stay correlated the way the real correlation plots show them. Per-cluster
spectra (TPC cluster charge, cluster row/phi maps, flags) come from fixed shapes measured once at
start-up and drawn per step as Poisson counts, because a step holds about a million TPC clusters.
The output/input size ratio follows the HLT mode: about 0.22 with TPC compression (mode C), close to
1 without it (mode B).
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
    counts_increment,
    fill_samples,
    moyal_samples,
    spec,
    template_from_samples,
)
from pipeline.emulator.detectors_tpc import LOW_EFFICIENCY_KEEP, LOW_EFFICIENCY_SECTOR

DEDX_QUANTITIES: tuple[str, ...] = ("Max", "Tot")
DEDX_REGIONS: tuple[str, ...] = ("IROC", "OROC1", "OROC2", "OROCAll", "TPCAll")
# Relative dE/dx resolution per readout region: more pad rows, better resolution.
_DEDX_RESOLUTION = {"IROC": 0.085, "OROC1": 0.075, "OROC2": 0.08, "OROCAll": 0.062, "TPCAll": 0.055}
_SPECIES_MASS_GEV = np.array([0.13957, 0.49368, 0.93827, 0.000511])
_SPECIES_FRACTION = np.array([0.75, 0.12, 0.09, 0.04])
_MIP_DEDX = 50.0
_CLUSTER_FLAG_PROBABILITIES = np.array([0.60, 0.05, 0.15, 0.12, 0.03, 0.03, 0.01, 0.01])
_N_PAD_ROWS = 159
_TEMPLATE_SEED = 20181120  # fixed: the cluster shapes are a property of the detector, not of a run


def _bethe_bloch(beta_gamma: np.ndarray) -> np.ndarray:
    """Mean dE/dx with MIP = 50: a steep 1/beta^2.6 fall (as the ALEPH parametrisation of the TPC
    gives), a logarithmic relativistic rise, and a Fermi plateau above beta*gamma ~ 50."""

    def shape(bg: np.ndarray | float) -> np.ndarray:
        bg2 = np.square(np.minimum(bg, 50.0))
        beta2 = bg2 / (1.0 + bg2)
        return beta2**-1.3 * (1.0 + 0.1 * np.log(bg2))

    return _MIP_DEDX * shape(beta_gamma) / shape(3.5)


class HLTDetector(Detector):
    """HLT global QA: TPC clusters and tracks, detector correlations, HLT data sizes."""

    subsystem = "HLT"
    base_event_rate_hz = 20.0
    rate_oscillation_s = 277.0

    def __init__(self, step_s: float = 2.0, beam_type: str = "pp", hlt_mode: str = "B") -> None:
        super().__init__(step_s=step_s, beam_type=beam_type, hlt_mode=hlt_mode)
        template_rng = np.random.default_rng(_TEMPLATE_SEED)
        samples = 400_000
        self._charge_max_shape = template_from_samples(
            self.specs["fHistClusterChargeMax"], moyal_samples(template_rng, samples, 30.0, 6.0)
        )
        self._charge_tot_shape = template_from_samples(
            self.specs["fHistClusterChargeTot"], moyal_samples(template_rng, samples, 120.0, 25.0)
        )
        flags = np.zeros(self.specs["fHistTPCClusterFlags"].flow_shape)
        flags[1:-1] = _CLUSTER_FLAG_PROBABILITIES
        self._flag_shape = flags
        self._row_phi_shape = {side: self._row_phi_template(side) for side in "AC"}
        rows = np.arange(_N_PAD_ROWS, dtype=np.float64)
        attached = np.zeros(self.specs["fHistTPCAattachedClustersRowPhi"].flow_shape)
        attached[1:-1, 1:-1] = (0.68 + 0.1 * rows / _N_PAD_ROWS)[:, None]
        self._attached_fraction = attached

    def _declare(self) -> Sequence[HistogramSpec]:
        s = self.multiplicity_scale
        row = Axis.integer_centred(_N_PAD_ROWS, "pad row")
        phi = Axis.regular(144, 0, 2 * math.pi, "#phi (rad)")
        momentum = Axis.logarithmic(80, 0.1, 10.0, "p (GeV/c)")
        size_axis = Axis.regular(100, 0, 4000 * s, "HLT input size (kB)")
        specs = [
            spec(
                "fHistClusterChargeMax",
                "TH1D",
                "TPC cluster max charge",
                Axis.regular(125, 0, 250, "Q_{max} (ADC)"),
            ),
            spec(
                "fHistClusterChargeTot",
                "TH1D",
                "TPC cluster total charge",
                Axis.regular(200, 0, 1000, "Q_{tot} (ADC)"),
            ),
            spec(
                "fHistHLTInSize_HLTOutSize",
                "TH2F",
                "HLT output size vs input size",
                size_axis,
                Axis.regular(100, 0, 4000 * s, "HLT output size (kB)"),
            ),
            spec(
                "fHistHLTSize_HLTInOutRatio",
                "TH2F",
                "HLT output/input ratio vs input size",
                size_axis,
                Axis.regular(60, 0, 1.2, "HLT output/input size"),
            ),
            spec("fHistTPCClusterFlags", "TH1D", "TPC cluster flags", Axis.integer_centred(8, "flag bit")),
            spec("fHistTPCTrackPt", "TH1D", "TPC track p_{T}", Axis.regular(100, 0, 10, "p_{T} (GeV/c)")),
            spec(
                "fHistTPCtracks_TPCtracklets",
                "TH2F",
                "TPC tracks vs SPD tracklets",
                Axis.regular(100, 0, 100 * s, "TPC tracks"),
                Axis.regular(100, 0, 100 * s, "SPD tracklets"),
            ),
            spec(
                "fHistTZERO_ITSSPDVertexZ",
                "TH2F",
                "T0 vertex z vs SPD vertex z",
                Axis.regular(60, -30, 30, "T0 z_{vtx} (cm)"),
                Axis.regular(60, -30, 30, "SPD z_{vtx} (cm)"),
            ),
            spec(
                "fHistVZERO_SPDClusters",
                "TH2F",
                "V0 multiplicity vs SPD clusters",
                Axis.regular(100, 0, 400 * s, "V0 multiplicity"),
                Axis.regular(100, 0, 200 * s, "SPD clusters"),
            ),
            spec(
                "fHistSPDclusters_SPDrawSize",
                "TH2F",
                "SPD clusters vs SPD raw size",
                Axis.regular(100, 0, 200 * s, "SPD clusters"),
                Axis.regular(100, 0, 20 * s, "SPD raw size (kB)"),
            ),
            spec(
                "fHistSDDclusters_SDDrawSize",
                "TH2F",
                "SDD clusters vs SDD raw size",
                Axis.regular(100, 0, 300 * s, "SDD clusters"),
                Axis.regular(100, 0, 150 * s, "SDD raw size (kB)"),
            ),
            spec(
                "fHistSSDclusters_SSDrawSize",
                "TH2F",
                "SSD clusters vs SSD raw size",
                Axis.regular(100, 0, 300 * s, "SSD clusters"),
                Axis.regular(100, 0, 100 * s, "SSD raw size (kB)"),
            ),
            spec(
                "fHistTPCHLTclusters_TPCCompressionRatio",
                "TH2F",
                "TPC compression ratio vs HLT TPC clusters",
                Axis.regular(100, 0, 60 * s, "HLT TPC clusters (x1000)"),
                Axis.regular(50, 0, 10, "compression ratio"),
            ),
            spec(
                "fHistTPCHLTclusters_TPCFullCompressionRatio",
                "TH2F",
                "TPC full compression ratio vs HLT TPC clusters",
                Axis.regular(100, 0, 60 * s, "HLT TPC clusters (x1000)"),
                Axis.regular(50, 0, 15, "full compression ratio"),
            ),
        ]
        for side in "AC":
            for kind in ("all", "attached"):
                specs.append(
                    spec(
                        f"fHistTPC{side}{kind}ClustersRowPhi",
                        "TH2F",
                        f"TPC {side}-side {kind} clusters: row vs #phi",
                        row,
                        phi,
                    )
                )
        for quantity in DEDX_QUANTITIES:
            for region in DEDX_REGIONS:
                specs.append(
                    spec(
                        f"fHistTPCdEdx{quantity}{region}",
                        "TH2F",
                        f"TPC dE/dx ({quantity}, {region}) vs momentum",
                        momentum,
                        Axis.regular(80, 0, 200, f"dE/dx {quantity} {region} (arb. units)"),
                    )
                )
        zn_high = 10.0 if s < 2 else 100.0
        for zn, v0 in (("ZNA", "A"), ("ZNC", "C"), ("ZNT", "T")):
            specs.append(
                spec(
                    f"fHist{zn}_VZEROTrigCharge{v0}",
                    "TH2F",
                    f"{zn} energy vs V0 trigger charge {v0}",
                    Axis.regular(50, 0, zn_high, f"{zn} energy (TeV)"),
                    Axis.regular(50, 0, 4000 * s, f"V0 trigger charge {v0} (ADC)"),
                )
            )
        return specs

    def _row_phi_template(self, side: str) -> np.ndarray:
        """Clusters per (row, phi) bin: denser at small radius, thinner at sector edges."""
        rows = np.arange(_N_PAD_ROWS, dtype=np.float64)
        per_row = np.where(rows < 63, 1.0, 0.8) * (1.0 - 0.3 * rows / _N_PAD_ROWS)
        bins_per_sector = 8
        phi_bin = np.arange(144)
        position_in_sector = phi_bin % bins_per_sector
        per_phi = np.where((position_in_sector == 0) | (position_in_sector == bins_per_sector - 1), 0.85, 1.0)
        if side == "A":
            # The same failing A-side chamber the TPC QA sees.
            per_phi = np.where(
                phi_bin // bins_per_sector == LOW_EFFICIENCY_SECTOR, LOW_EFFICIENCY_KEEP, per_phi
            )
        shape = np.zeros((_N_PAD_ROWS + 2, 144 + 2))
        shape[1:-1, 1:-1] = per_row[:, None] * per_phi[None, :]
        return shape / shape.sum()

    def fill(
        self, step_index: int, rng: np.random.Generator, rate_factor: float = 1.0
    ) -> dict[str, Increment]:
        n_events = self.events_in_step(step_index, rng, rate_factor)
        s = self.multiplicity_scale
        shape_k = 1.5
        charged = rng.negative_binomial(shape_k, shape_k / (shape_k + 12.0 * s), n_events).astype(np.float64)
        spd_clusters = rng.poisson(2.2 * charged + 3.0).astype(np.float64)
        tracklets = rng.poisson(1.0 * charged).astype(np.float64)
        tpc_tracks = rng.poisson(0.9 * charged).astype(np.float64)
        v0 = rng.poisson(6.0 * charged + 2.0).astype(np.float64)
        tpc_clusters = rng.poisson(1500.0 * charged + 2000.0).astype(np.float64)
        sdd_clusters = rng.poisson(3.0 * charged + 5.0).astype(np.float64)
        ssd_clusters = rng.poisson(3.5 * charged + 5.0).astype(np.float64)
        specs = self.specs
        increments: dict[str, Increment] = {}

        input_kb = 40.0 + 0.06 * tpc_clusters * rng.normal(1.0, 0.03, n_events)
        compression = np.clip(rng.normal(4.5, 0.3, n_events), 1.0, None)
        full_compression = compression * np.clip(rng.normal(1.6, 0.08, n_events), 1.0, None)
        if self.hlt_mode == "C":
            out_over_in = 1.0 / compression
        else:
            out_over_in = np.clip(rng.normal(0.97, 0.01, n_events), 0.0, None)
        output_kb = input_kb * out_over_in
        increments["fHistHLTInSize_HLTOutSize"] = fill_samples(
            specs["fHistHLTInSize_HLTOutSize"], input_kb, output_kb
        )
        increments["fHistHLTSize_HLTInOutRatio"] = fill_samples(
            specs["fHistHLTSize_HLTInOutRatio"], input_kb, out_over_in
        )
        clusters_k = tpc_clusters / 1000.0
        increments["fHistTPCHLTclusters_TPCCompressionRatio"] = fill_samples(
            specs["fHistTPCHLTclusters_TPCCompressionRatio"], clusters_k, compression
        )
        increments["fHistTPCHLTclusters_TPCFullCompressionRatio"] = fill_samples(
            specs["fHistTPCHLTclusters_TPCFullCompressionRatio"], clusters_k, full_compression
        )
        increments["fHistTPCtracks_TPCtracklets"] = fill_samples(
            specs["fHistTPCtracks_TPCtracklets"], tpc_tracks, tracklets
        )
        spd_z = rng.normal(0.0, 6.0, n_events)
        # T0 has no vertex in a few per cent of events: ROOT code fills -999 (underflow).
        t0_z = np.where(rng.random(n_events) < 0.05, -999.0, spd_z + rng.normal(0.0, 1.5, n_events))
        increments["fHistTZERO_ITSSPDVertexZ"] = fill_samples(specs["fHistTZERO_ITSSPDVertexZ"], t0_z, spd_z)
        increments["fHistVZERO_SPDClusters"] = fill_samples(specs["fHistVZERO_SPDClusters"], v0, spd_clusters)
        for detector, clusters, offset, per_cluster in (
            ("SPD", spd_clusters, 1.5, 0.05),
            ("SDD", sdd_clusters, 30.0, 0.3),
            ("SSD", ssd_clusters, 20.0, 0.15),
        ):
            raw_kb = (offset + per_cluster * clusters) * rng.normal(1.0, 0.04, n_events)
            name = f"fHist{detector}clusters_{detector}rawSize"
            increments[name] = fill_samples(specs[name], clusters, raw_kb)
        increments.update(self._fill_zdc(v0, rng))
        increments.update(self._fill_tpc_clusters(float(tpc_clusters.sum()), rng))
        increments.update(self._fill_tracks(int(tpc_tracks.sum()), rng))
        return increments

    def _fill_zdc(self, v0: np.ndarray, rng: np.random.Generator) -> dict[str, Increment]:
        n = v0.size
        charge_a = 8.0 * 0.55 * v0 * rng.normal(1.0, 0.1, n)
        charge_c = 8.0 * 0.45 * v0 * rng.normal(1.0, 0.1, n)
        if self.multiplicity_scale < 2:
            zn_a, zn_c = rng.gamma(1.5, 0.4, n), rng.gamma(1.5, 0.4, n)
        else:
            # Heavy ions: spectators hit the ZN less in central (high V0) collisions.
            v0_scale = 72.0 * self.multiplicity_scale
            zn_a = 80.0 * np.exp(-v0 / v0_scale) + rng.normal(0.0, 3.0, n)
            zn_c = 80.0 * np.exp(-v0 / v0_scale) + rng.normal(0.0, 3.0, n)
        pairs = {"A": (zn_a, charge_a), "C": (zn_c, charge_c), "T": (zn_a + zn_c, charge_a + charge_c)}
        return {
            f"fHistZN{side}_VZEROTrigCharge{side}": fill_samples(
                self.specs[f"fHistZN{side}_VZEROTrigCharge{side}"], *pairs[side]
            )
            for side in "ACT"
        }

    def _fill_tpc_clusters(self, n_clusters: float, rng: np.random.Generator) -> dict[str, Increment]:
        increments = {
            "fHistClusterChargeMax": counts_increment(rng.poisson(n_clusters * self._charge_max_shape)),
            "fHistClusterChargeTot": counts_increment(rng.poisson(n_clusters * self._charge_tot_shape)),
            "fHistTPCClusterFlags": counts_increment(rng.poisson(n_clusters * self._flag_shape)),
        }
        for side in "AC":
            all_clusters = rng.poisson(0.5 * n_clusters * self._row_phi_shape[side])
            attached = rng.binomial(all_clusters, self._attached_fraction)
            increments[f"fHistTPC{side}allClustersRowPhi"] = counts_increment(all_clusters)
            increments[f"fHistTPC{side}attachedClustersRowPhi"] = counts_increment(attached)
        return increments

    def _fill_tracks(self, n_tracks: int, rng: np.random.Generator) -> dict[str, Increment]:
        pt = 0.15 + 1.2 * ((1.0 - rng.random(n_tracks)) ** (-1.0 / 5.0) - 1.0)
        momentum = pt * np.cosh(rng.uniform(-0.9, 0.9, n_tracks))
        species = rng.choice(_SPECIES_MASS_GEV.size, size=n_tracks, p=_SPECIES_FRACTION)
        mean_dedx = _bethe_bloch(momentum / _SPECIES_MASS_GEV[species])
        increments = {"fHistTPCTrackPt": fill_samples(self.specs["fHistTPCTrackPt"], pt)}
        for quantity in DEDX_QUANTITIES:
            # Qmax-based dE/dx is a little less precise than Qtot-based.
            worse = 1.1 if quantity == "Max" else 1.0
            for region in DEDX_REGIONS:
                sigma = _DEDX_RESOLUTION[region] * worse
                dedx = mean_dedx * (1.0 + rng.normal(0.0, sigma, n_tracks))
                name = f"fHistTPCdEdx{quantity}{region}"
                increments[name] = fill_samples(self.specs[name], momentum, dedx)
        return increments
