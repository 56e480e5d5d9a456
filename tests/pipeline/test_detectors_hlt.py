"""HLT plug-in: one catch-all group showing every histogram, titles on."""

from __future__ import annotations

from pipeline.detectors import plugin_for
from pipeline.detectors.base import group_histograms, process_histogram
from pipeline.detectors.hlt import PLUGIN
from pipeline.processing.options import ProcessingOptions

HLT_NAMES = [
    "fHistClusterChargeMax",
    "fHistHLTInSize_HLTOutSize",
    "fHistSPDclusters_SPDrawSize",
    "fHistTPCAallClustersRowPhi",
    "fHistTPCdEdxMaxIROC",
    "fHistZNA_VZEROTrigChargeA",
    "EMCTRQA_histEvents",
    "TPCQA/h_tpc_event_recvertex_0",
]


def test_every_histogram_is_in_the_one_hlt_group() -> None:
    assert plugin_for("HLT") is PLUGIN
    for has_own_receiver in (True, False):
        grouped = group_histograms(PLUGIN, HLT_NAMES, has_own_receiver=has_own_receiver)
        assert [(group.title, group.selector, members) for group, members in grouped] == [
            ("HLT Histograms", "", HLT_NAMES)
        ]


def test_titles_shown_and_th2_as_heatmap(make_histogram) -> None:
    th2 = make_histogram("fHistTPCdEdxMaxIROC", [[0, 1, 2], [0, 1]], [[3.0], [4.0]])
    hints = PLUGIN.draw_hints(th2)
    assert hints.show_title and hints.colz and hints.pretty_name == "TPCdEdxMaxIROC"  # no title: cleaned
    th1 = make_histogram("fHistTPCTrackPt", [[0, 1, 2]], [3.0, 4.0])
    assert PLUGIN.draw_hints(th1).show_title and not PLUGIN.draw_hints(th1).colz


def test_hlt_histograms_are_neither_scaled_nor_checked(make_histogram) -> None:
    histogram = make_histogram("fHistTPCTrackPt", [[0, 1, 2]], [3.0, 4.0])
    processed = process_histogram(PLUGIN, histogram, ProcessingOptions(scale_by_events=True), 100.0)
    assert processed.histogram is histogram
    assert not processed.scaled_by_events and processed.checks == ()
