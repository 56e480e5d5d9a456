"""TPC plug-in: the original OVERWATCH TPC groups, and the DCA, η-φ, pT and η projections of the TPC QA
TH3s, computed with numpy from the received `Histogram`s.

The TPC QA TH3s are `TPCQA/h_tpc_track_{all,pos,neg}_recvertex_<x>_<y>_<z>`, whose three numbers are
the AliPerformanceTPC track variables on the x, y and z axes: 0 number of clusters, 2 found/findable
clusters, 3 DCA in r, 4 DCA in z, 5 η, 6 φ, 7 pT. So `_3_5_6` is DCAr vs η vs φ.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.detectors import checks as generic
from pipeline.detectors.base import (
    CheckSpec,
    DetectorPlugin,
    DrawHints,
    Group,
    TrendSpec,
    bin_range_within,
    project,
)
from pipeline.detectors.names import display_name
from pipeline.histogram import Histogram

SUBSYSTEM = "TPC"
SOURCE_PREFIX = "TPCQA/h_tpc_track_"
# TPC's histograms in an HLT file: the TPC QA folder's. Not "TPC" anywhere in the name, which would take
# the HLT's own fHistTPC* histograms (cluster and compression monitoring done by the HLT itself).
OWN_NAMES = "^" + re.escape("TPCQA/")

# Order is priority; "Eta_" must follow "Eta_vs_Phi" because it would take those too.
GROUPS: tuple[Group, ...] = (
    Group("DCAr vs Phi", "DCAr_vs_Phi"),
    Group("DCAz vs Phi", "DCAz_vs_Phi"),
    Group("TPC Cluster Eta vs Phi", "Eta_vs_Phi"),
    Group("TPC Cluster Eta", "Eta_"),
    Group("Pt spectra", "pT_"),
    Group("TPC Cluster", "tpc_clust"),
    Group("TPC Constrain", "tpc_constrain"),
    Group("TPC Event RecVertex", "event_recvertex"),
    Group("Match Tracking Efficiency", "match_trackingeff"),
    Group("All RecVertex", "all_recvertex"),
    Group("Negative RecVertex", "neg_recvertex"),
    Group("Positive RecVertex", "pos_recvertex"),
    # The original called this group by its selector, "event_6": events with and without a vertex.
    Group("TPC Events with Vertex", "event_6"),
    Group("Other TPC", "TPC"),
    # Only when TPC has its own receiver: from HLT files it would collect every unrelated histogram.
    Group("Non TPC", ""),
)

X_AXIS, Y_AXIS, Z_AXIS = 0, 1, 2
CHARGES = {"pos": "positive", "neg": "negative"}
# DCA kind -> the TH3 variable number. This follows the TPC README ("_3_5_6: DCA vs r", "_4_5_6: DCA
# vs z") and AliPerformanceTPC's axis order; the original OVERWATCH projected "DCAz" from `_3_` and
# "DCAr" from `_4_`, i.e. with the labels swapped.
DCA_SOURCE_VARIABLE = {"r": 3, "z": 4}
# The side of the TPC a track went to, by η: the A side is η > 0, the C side η < 0.
SIDES = {"a": (0.0, math.inf), "c": (-math.inf, 0.0)}
# Tracks with more than 70 clusters: x (number of clusters) bins 71-160 of `..._0_5_7`.
MIN_CLUSTERS_BINS = (71, 160)
PT_SPECTRUM_ETA_BINS = (1, 30)
ETA_DISTRIBUTION_PT_BINS = (1, 25)
NCL_SUFFIX = " (ncl>70)"
PT_SPECTRUM_Y_TITLE = "dN/dp_{T}"


@dataclass(frozen=True)
class ProjectionSpec:
    """One derived histogram: which TH3 it comes from and how it is projected."""

    name: str
    source: str
    pretty_name: str
    keep_axes: tuple[int, ...]
    # Titles of the result's axes (x, y[, value axis]); None keeps the source's title for that axis.
    axis_titles: tuple[str | None, ...]
    bin_ranges: tuple[tuple[int, tuple[int, int]], ...] = ()
    # Restrict η (the source y axis) to this value interval before projecting, e.g. one TPC side.
    eta_interval: tuple[float, float] | None = None


def _projection_specs() -> tuple[ProjectionSpec, ...]:
    specs: list[ProjectionSpec] = []
    for charge, sign in CHARGES.items():
        for kind, variable in DCA_SOURCE_VARIABLE.items():
            for side, eta_interval in SIDES.items():
                # Project3D("XZ"): φ (z) horizontal, DCA (x) vertical.
                specs.append(
                    ProjectionSpec(
                        name=f"DCA{kind}_vs_Phi_{charge}tracks_{side}Side",
                        source=f"{SOURCE_PREFIX}{charge}_recvertex_{variable}_5_6",
                        pretty_name=f"DCA{kind} vs Phi for {sign} tracks on {side.upper()} side",
                        keep_axes=(Z_AXIS, X_AXIS),
                        axis_titles=(None, f"DCA{kind} (cm)"),
                        eta_interval=eta_interval,
                    )
                )
        # Project3D("YZ"): φ horizontal, η vertical. The pretty name uses this loop's charge (the
        # original reused a stale variable and called both "negative").
        specs.append(
            ProjectionSpec(
                name=f"Eta_vs_Phi_{charge}tracks",
                source=f"{SOURCE_PREFIX}{charge}_recvertex_2_5_6",
                pretty_name=f"Eta vs Phi of {sign} tracks",
                keep_axes=(Z_AXIS, Y_AXIS),
                axis_titles=(None, None),
            )
        )
        clusters_source = f"{SOURCE_PREFIX}{charge}_recvertex_0_5_7"
        specs.append(
            ProjectionSpec(
                name=f"pT_{charge}tracks",
                source=clusters_source,
                pretty_name=f"pT of {sign} tracks{NCL_SUFFIX}",
                keep_axes=(Z_AXIS,),
                axis_titles=(None, PT_SPECTRUM_Y_TITLE),
                bin_ranges=((X_AXIS, MIN_CLUSTERS_BINS), (Y_AXIS, PT_SPECTRUM_ETA_BINS)),
            )
        )
        specs.append(
            ProjectionSpec(
                name=f"Eta_{charge}tracks",
                source=clusters_source,
                pretty_name=f"Eta of {sign} tracks{NCL_SUFFIX}",
                keep_axes=(Y_AXIS,),
                axis_titles=(None,),
                bin_ranges=((X_AXIS, MIN_CLUSTERS_BINS), (Z_AXIS, ETA_DISTRIBUTION_PT_BINS)),
            )
        )
    return tuple(specs)


PROJECTIONS: tuple[ProjectionSpec, ...] = _projection_specs()
_PROJECTIONS_BY_NAME = {spec.name: spec for spec in PROJECTIONS}
_PRETTY_NAMES = {spec.name: spec.pretty_name for spec in PROJECTIONS}


def project_spec(spec: ProjectionSpec, source: Histogram) -> Histogram:
    """The derived histogram `spec` describes, from its source TH3."""
    bin_ranges = dict(spec.bin_ranges)
    if spec.eta_interval is not None:
        # By η value, not by bin number: the original's SetRangeUser(15, 29) / (0, 14) passed bin
        # numbers as axis values.
        low, high = spec.eta_interval
        bin_ranges[Y_AXIS] = bin_range_within(source.edges[Y_AXIS], low, high)
    kept_titles = [source.axis_titles[axis] for axis in spec.keep_axes]
    kept_titles += [""] * (len(spec.axis_titles) - len(kept_titles))
    axis_titles = [
        kept if given is None else given for kept, given in zip(kept_titles, spec.axis_titles, strict=True)
    ]
    return project(
        source,
        spec.keep_axes,
        name=spec.name,
        title=spec.pretty_name,
        bin_ranges=bin_ranges,
        axis_titles=axis_titles,
    )


def tpc_derived_histograms(histograms: Mapping[str, Histogram]) -> dict[str, Histogram]:
    """Every projection whose source TH3 was received."""
    derived: dict[str, Histogram] = {}
    for spec in PROJECTIONS:
        source = histograms.get(spec.source)
        if source is not None and source.dimension == 3:
            derived[spec.name] = project_spec(spec, source)
    return derived


def tpc_draw_hints(histogram: Histogram) -> DrawHints:
    is_pt_spectrum = "pT_" in histogram.name
    return DrawHints(
        pretty_name=display_name(histogram.name, histogram.title, _PRETTY_NAMES.get(histogram.name)),
        # Titles on, at the TPC experts' request.
        show_title=True,
        colz=histogram.dimension == 2,
        log_y=is_pt_spectrum,
        y_title=PT_SPECTRUM_Y_TITLE if is_pt_spectrum else None,
    )


@dataclass(frozen=True)
class TPCPlugin(DetectorPlugin):
    """TPC hooks; the logic lives in the module functions above."""

    def explicit_name(self, name: str) -> str | None:
        return _PRETTY_NAMES.get(name)

    def draw_hints(self, histogram: Histogram) -> DrawHints:
        return tpc_draw_hints(histogram)

    def derived_names(self, names: Iterable[str]) -> list[str]:
        available = set(names)
        return [spec.name for spec in PROJECTIONS if spec.source in available]

    def derive(self, name: str, histograms: Mapping[str, Histogram]) -> Histogram:
        spec = _PROJECTIONS_BY_NAME.get(name)
        if spec is None:
            raise KeyError(name)
        source = histograms[spec.source]  # only the one TH3 this projection needs is read
        if source.dimension != 3:
            raise KeyError(f"{name}: {spec.source} is not a TH3")
        return project_spec(spec, source)

    def derived_histograms(self, histograms: Mapping[str, Histogram]) -> dict[str, Histogram]:
        return tpc_derived_histograms(histograms)


# ---- declared checks --------------------------------------------------------------------------

# Known weak TPC sectors (A 0-17, C 18-35): flagged, but Medium, not news. The demo detector's (the
# emulator's failing A-side chamber); a deployment declares its own.
KNOWN_WEAK_SECTORS: tuple[int, ...] = (7,)
# The η-φ maps of the projections above: x = φ in 18 bins (one per sector), y = η.
ETA_PHI_MAPS = r"^Eta_vs_Phi_(pos|neg)tracks$"
REFERENCE_COMPARED = r"^(pT|Eta)_(pos|neg)tracks$"

CHECK_SPECS: tuple[CheckSpec, ...] = (
    CheckSpec(
        "sector_efficiency",
        "Sector efficiency",
        generic.sector_efficiency,
        ETA_PHI_MAPS,
        dimensions=(2,),
        content="interval",
        # A sector with a failing chamber loses most of its tracks; ~100 tracks per sector, side and
        # charge a minute make 0.6 of the median far outside the fluctuations.
        parameters={
            "phi_axis": 0,
            "eta_axis": 1,
            "sectors": 18,
            "min_relative": 0.6,
            "min_median": 30.0,
            "known_ids": KNOWN_WEAK_SECTORS,
        },
    ),
    CheckSpec("empty", "Empty histogram", generic.empty_histogram, r""),
    # Every event fills it once: bin 0 without a vertex, bin 1 with one.
    generic.event_rate_check(r"^TPCQA/h_tpc_event_6$", pp_min_rate_hz=8.0),
    *generic.reference_checks(REFERENCE_COMPARED),
)

# The original trended the mean of the vertex position and multiplicity histograms (its cluster
# trends read projections that no longer existed); the spread is trended too.
TRENDS = (TrendSpec(r"^TPCQA/h_tpc_event_recvertex_", ("mean", "std_dev")),)

PLUGIN = TPCPlugin(
    subsystem=SUBSYSTEM, groups=GROUPS, own_names=OWN_NAMES, check_specs=CHECK_SPECS, trends=TRENDS
)
