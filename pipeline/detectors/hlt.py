"""HLT plug-in: one catch-all group, so the HLT page shows every histogram in the HLT files (V0, ITS,
ZDC and TPC ones included), with titles on as the original's detector experts asked."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.detectors.base import DetectorPlugin, DrawHints, Group, TrendSpec
from pipeline.histogram import Histogram

SUBSYSTEM = "HLT"
ALL_HISTOGRAMS = Group("HLT Histograms", "")


@dataclass(frozen=True)
class HLTPlugin(DetectorPlugin):
    """HLT hooks: the generic behaviour plus shown titles."""

    def draw_hints(self, histogram: Histogram) -> DrawHints:
        return DrawHints(
            pretty_name=self.pretty_name(histogram.name), show_title=True, colz=histogram.dimension == 2
        )


# The HLT is always read from its own files, so its catch-all is kept either way, and all they hold is its.
PLUGIN = HLTPlugin(
    subsystem=SUBSYSTEM,
    groups=(ALL_HISTOGRAMS,),
    groups_without_own_receiver=(ALL_HISTOGRAMS,),
    own_names="",
    # The original trended max, mean and stdDev of every HLT histogram.
    trends=(TrendSpec(r"^fHist"),),
)
