"""HLT plug-in: one catch-all group, so the HLT page shows every histogram in the HLT files (V0, ITS,
ZDC and TPC ones included), with titles on as the original's detector experts asked."""

from __future__ import annotations

from dataclasses import dataclass, replace

from pipeline.detectors import checks as generic
from pipeline.detectors.base import CheckSpec, DetectorPlugin, DrawHints, Group, TrendSpec
from pipeline.histogram import Histogram

SUBSYSTEM = "HLT"
ALL_HISTOGRAMS = Group("HLT Histograms", "")


@dataclass(frozen=True)
class HLTPlugin(DetectorPlugin):
    """HLT hooks: the generic behaviour plus shown titles."""

    def draw_hints(self, histogram: Histogram) -> DrawHints:
        return replace(super().draw_hints(histogram), show_title=True)


# ---- declared checks on the HLT's key histograms ---------------------------------------------

# Known weak TPC sectors (A 0-17, C 18-35): flagged, but Medium, not news. The demo detector's (the
# emulator's failing A-side chamber); a deployment declares its own.
KNOWN_WEAK_SECTORS: tuple[int, ...] = (7,)
CLUSTER_ROW_PHI = r"^fHistTPC[AC]allClustersRowPhi$"
REFERENCE_COMPARED = r"^(fHistTPCTrackPt|fHistClusterChargeMax|fHistClusterChargeTot)$"

CHECK_SPECS: tuple[CheckSpec, ...] = (
    CheckSpec("empty", "Empty histogram", generic.empty_histogram, r""),
    CheckSpec(
        "sector_efficiency",
        "TPC sector cluster yield",
        generic.sector_efficiency,
        CLUSTER_ROW_PHI,
        dimensions=(2,),
        content="interval",
        # x = pad row, y = φ in 144 bins (8 per sector); A-side sectors 0-17, C side 18-35.
        parameters={
            "phi_axis": 1,
            "sectors": 18,
            "min_relative": 0.6,
            "min_median": 1000.0,
            "known_ids": KNOWN_WEAK_SECTORS,
        },
        overrides=((r"fHistTPCC", {"first_sector": 18}),),
    ),
    CheckSpec(
        "mean_in_range",
        "Mean in range",
        generic.mean_in_range,
        r"^(fHistClusterChargeMax|fHistTPCHLTclusters_TPCCompressionRatio)$",
        # Most probable Q_max of MIP clusters ~30 ADC (mean ~38); TPC compression ~4.5.
        parameters={"axis": 0, "low": 20.0, "high": 60.0},
        overrides=((r"CompressionRatio", {"axis": 1, "low": 3.0, "high": 7.0}),),
    ),
    # Filled once per event (T0 without a vertex in the underflow).
    generic.event_rate_check(r"^fHistTZERO_ITSSPDVertexZ$", pp_min_rate_hz=6.0),
    *generic.reference_checks(REFERENCE_COMPARED),
)

# The HLT is always read from its own files, so its catch-all is kept either way, and all they hold is its.
PLUGIN = HLTPlugin(
    subsystem=SUBSYSTEM,
    groups=(ALL_HISTOGRAMS,),
    groups_without_own_receiver=(ALL_HISTOGRAMS,),
    own_names="",
    check_specs=CHECK_SPECS,
    # The original trended max, mean and stdDev of every HLT histogram; entries say how much a mean
    # of the interval can be trusted.
    trends=(TrendSpec(r"^fHist", ("mean", "std_dev", "maximum", "entries")),),
)
