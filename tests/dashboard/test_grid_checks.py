"""Under a grid, the checks of its members: the QC service's verdicts the quality strip aggregates, and
the page's own, worst first, so a Bad above the plot is never met by "No checks" under it."""

from __future__ import annotations

from dashboard.checks import MemberVerdict, grid_checks_panel
from dashboard.components import histogram_view as hv
from dashboard.layout import grid_entry
from pipeline.processing.service import ProcessingService
from pipeline.store import SnapshotStore
from tests.dashboard.component_text import component_texts
from tests.dashboard.qc_store import FAULT_RUN

GRID = "FastOR L0 (hits with ADC > 0)"


def test_grid_verdicts_worst_first_good_ones_counted():
    verdicts = [
        MemberVerdict("FastOR L0 · SM 3", "Good", "Empty histogram", "12 entries", "QC"),
        MemberVerdict("FastOR L0 · SM 5", "Medium", "Signal outliers", "outlier signal in 2 bins", "page"),
        MemberVerdict("FastOR L0 · SM 1", "Bad", "Supermodule silent in the last minute", "empty", "QC"),
    ]
    texts = component_texts(grid_checks_panel(verdicts, 20))
    assert texts[0] == (
        "Checks of the 20 histograms in this grid, worst first "
        "(from the QC service's newest verdicts and what is shown)"
    )
    # Bad before Medium, each with the member it is about; the Good one only counted.
    assert texts[1:5] == ["Bad", "FastOR L0 · SM 1", "Supermodule silent in the last minute", "empty"]
    assert texts[5:7] == ["Medium", "FastOR L0 · SM 5"]
    assert texts[-1] == "1 check Good"
    assert "No checks" not in " ".join(texts)
    assert component_texts(grid_checks_panel([], 20)) == ["No checks for these 20 histograms."]


def test_a_grid_shows_the_qc_verdicts_of_its_members(qc_data_dir, tmp_path):
    service = ProcessingService(SnapshotStore(qc_data_dir), tmp_path / "cache")
    view = service.view(FAULT_RUN, "EMC")
    shown = hv.shown_histograms(view, "EMC", grid_entry(GRID))
    members = {member.histogram.name for member in shown.members}
    stored = service.latest_checks(FAULT_RUN, "EMC")
    stored = stored[stored["histogram"].isin(members)]
    assert len(stored) >= len(members)  # every member has at least its "empty" verdict
    texts = component_texts(hv.checks_panel(service, view, "EMC", shown))
    assert texts[0].startswith(f"Checks of the {len(members)} histograms in this grid")
    n_good = int((stored["quality"] == "Good").sum())
    assert n_good == len(stored) and texts[-1] == f"all {n_good} checks Good"
    # One histogram (not a grid) keeps its own panel: its page checks.
    single = hv.shown_histograms(view, "EMC", "EMCTRQA_histFastORL0")
    single_texts = component_texts(hv.checks_panel(service, view, "EMC", single))
    assert "Hot FastORs" in single_texts
