"""The one display-name rule (`pipeline.detectors.names`): explicit name, else a readable ROOT title,
else a cleaned name; plain text for labels; never two alike in one list."""

from __future__ import annotations

import pytest

from pipeline.detectors import plugin_for
from pipeline.detectors.names import cleaned_name, display_name, is_readable_title, plain_text, unique_labels
from pipeline.emulator.detectors_emc import EMCDetector
from pipeline.emulator.detectors_hlt import HLTDetector
from pipeline.emulator.detectors_tpc import TPCDetector
from tests.display_names import AUDIT_NAMES

EMULATED = {"EMC": EMCDetector, "TPC": TPCDetector, "HLT": HLTDetector}


def _titles(subsystem: str) -> dict[str, str]:
    """The ROOT titles the emulator publishes (as the real tasks do), by name."""
    return {name: spec.title for name, spec in EMULATED[subsystem]().specs.items()}


def test_explicit_name_beats_title_beats_cleaned_name():
    assert display_name("h_x", "A real title", explicit="Experts' name") == "Experts' name"
    assert display_name("h_x", "A real title") == "A real title"
    assert display_name("TPCQA/h_tpc_event_6", "") == "tpc event 6"
    # A title that only repeats the name, or is one identifier, says nothing more.
    assert display_name("TPCQA/h_tpc_event_6", "h_tpc_event_6") == "tpc event 6"
    assert not is_readable_title("FastORL0_SM3", "EMCTRQA_histFastORL0_SM3")
    assert is_readable_title("Events by vertex status", "TPCQA/h_tpc_event_6")


@pytest.mark.parametrize(
    ("name", "cleaned"),
    [
        ("FEEvsTRU_SM18", "FEE vs TRU · SM 18"),
        ("TPCQA/h_tpc_event_recvertex_0", "tpc event recvertex 0"),
        ("fHistClusterChargeMax", "ClusterChargeMax"),
        ("TPCQA/fHistDCAr_vs_Phi", "DCAr vs Phi"),
        ("EMCTRQA_histAmpEdgePosEMCGALOffline", "AmpEdgePosEMCGALOffline"),
    ],
)
def test_raw_names_get_a_cleaned_fallback(name, cleaned):
    assert cleaned_name(name) == cleaned


def test_plain_text_reads_tlatex():
    assert plain_text("Events with rec. vertex: x_{vtx} (cm)") == "Events with rec. vertex: x_vtx (cm)"
    assert plain_text("DCA_{r} vs #eta vs #phi") == "DCAr vs η vs φ"
    assert plain_text("M_{#gamma#gamma} (GeV/c^{2})") == "M_γγ (GeV/c²)"
    assert plain_text("plain_name") == "plain_name"  # only braced scripts are TLatex


def test_two_alike_are_told_apart_by_their_raw_names():
    names = ["A/h_first", "B/h_second", "h_third"]
    assert unique_labels(["Same", "Same", "Other"], names) == ["Same (h_first)", "Same (h_second)", "Other"]


@pytest.mark.parametrize(
    ("subsystem", "name", "label"),
    [
        *AUDIT_NAMES,
        ("EMC", "EMCTRQA_histFEEvsTRU_SM18", "FEE vs TRU · SM 18"),
        ("EMC", "hClusterM02", "Cluster M02"),  # the experts' explicit name wins over the title
    ],
)
def test_the_audits_raw_names_read_as_titles(subsystem, name, label):
    assert plugin_for(subsystem).labels([name], _titles(subsystem))[name] == label


@pytest.mark.parametrize("subsystem", ["EMC", "TPC", "HLT"])
def test_no_emulated_histogram_is_listed_by_its_raw_name(subsystem):
    titles = _titles(subsystem)
    labels = plugin_for(subsystem).labels(list(titles), titles)
    for name, label in labels.items():
        bare = name.rsplit("/", 1)[-1]
        assert label not in (name, bare, bare.removeprefix("EMCTRQA_hist")), name
    assert len(set(labels.values())) == len(labels)


def test_plot_titles_use_the_same_name(make_histogram):
    """The EMC trigger plots were titled with the raw name: the draw hints now carry the display name."""
    plugin = plugin_for("EMC")
    title = "Integrated amplitude in patch edge position (EMCGAL Offline)"
    histogram = make_histogram(
        "EMCTRQA_histAmpEdgePosEMCGALOffline", [[0, 1, 2], [0, 1]], [[1], [2]], title=title
    )
    assert plugin.draw_hints(histogram).pretty_name == title
    hlt = make_histogram("fHistHLTInSize_HLTOutSize", [[0, 1]], [1.0], title="HLT output size vs input size")
    assert plugin_for("HLT").draw_hints(hlt).pretty_name == "HLT output size vs input size"


def test_stack_titles_name_the_spectrum():
    names = ["EMCTRQA_histEMCalMaxPatchAmpEMCGALOnline", "EMCTRQA_histDCalMaxPatchAmpEMCGALOnline"]
    (stack,) = plugin_for("EMC").stacks(names)
    assert stack.title == "EMCal and DCal max patch amplitude (EMCGAL Online)"


def test_event_6_group_says_what_it_holds():
    from pipeline.detectors.base import group_histograms

    groups = group_histograms(plugin_for("TPC"), ["TPCQA/h_tpc_event_6"])
    assert [group.title for group, _ in groups] == ["TPC Events with Vertex"]
