"""What the pages say about a view, on a run with EMC, TPC and HLT data: every list names histograms by
the one display-name rule (run page lists, the control room's QC line; the URL keeps the raw name),
and the caption says what was done to the numbers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboard.components import histogram_view as hv
from dashboard.pages.control_room import readable_verdicts
from dashboard.url_state import ViewQuery
from dashboard.view_request import navigation
from pipeline.detectors import plugin_for
from pipeline.emulator.runs import EmulatorConfig, SyntheticRuns
from pipeline.processing.options import ProcessingOptions
from pipeline.processing.service import ProcessingService
from pipeline.store import SnapshotMeta, SnapshotStore
from tests.clocks import ManualClock
from tests.display_names import AUDIT_NAMES

RUN = 5100
SUBSYSTEMS = ("EMC", "TPC", "HLT")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    start = 1_750_000_000.0
    clock = ManualClock(start + 120.0)
    config = EmulatorConfig(step_s=20.0, run_length_s=600.0, first_run=RUN, start_time_utc=start)
    runs = SyntheticRuns(SUBSYSTEMS, config, now=clock)
    runs.advance(clock.time_utc)
    store = SnapshotStore(tmp_path_factory.mktemp("data"))
    held = runs.snapshot()
    when = datetime.fromtimestamp(clock.time_utc, UTC)
    for subsystem in SUBSYSTEMS:
        own = [h for h in held.values() if runs.subsystem_of(h.name) == subsystem]
        store.write_snapshot(SnapshotMeta(RUN, subsystem, when, "B", "pp"), own)
    return ProcessingService(store, tmp_path_factory.mktemp("cache"), SUBSYSTEMS)


def _all_entries(service, subsystem):
    groups, _, _, _ = navigation(service, RUN, subsystem, ViewQuery())
    entries = []
    for group in groups:
        _, _, group_entries, _ = navigation(service, RUN, subsystem, ViewQuery(group=group["value"]))
        entries += group_entries
    return groups, entries


@pytest.mark.parametrize(
    ("subsystem", "value", "label"),
    [
        *AUDIT_NAMES,
        # On the page its entry is the EMCal + DCal stack the plug-in makes of it.
        (
            "EMC",
            "EMCTRQA_histEMCalMaxPatchAmpEMCGALOnline",
            "EMCal and DCal max patch amplitude (EMCGAL Online)",
        ),
    ],
)
def test_run_page_lists_read_as_titles_and_keep_raw_values(service, subsystem, value, label):
    _, entries = _all_entries(service, subsystem)
    by_value = {entry["value"]: entry["label"] for entry in entries}
    assert by_value[value] == label  # the value (what the URL carries) stays the raw name


@pytest.mark.parametrize("subsystem", SUBSYSTEMS)
def test_no_list_entry_is_a_raw_name_and_none_repeats_in_a_group(service, subsystem):
    groups, entries = _all_entries(service, subsystem)
    assert "event_6" not in [group["label"] for group in groups]
    for entry in entries:
        if entry["value"].startswith("<grid>"):
            continue
        bare = entry["value"].rsplit("/", 1)[-1]
        assert entry["label"] not in (entry["value"], bare, bare.removeprefix("EMCTRQA_hist"))
    for group in groups:
        _, _, group_entries, _ = navigation(service, RUN, subsystem, ViewQuery(group=group["value"]))
        labels = [entry["label"] for entry in group_entries]
        assert len(labels) == len(set(labels)), group["value"]


def test_control_room_qc_line_names_histograms_and_checks(service):
    view = service.view(RUN, "EMC")
    titles = service.store.histogram_titles(view.plan.used_snapshot_ids[-1])
    message = "Bad: EMCTRQA_histFastORL0 hot_fastors; Medium: EMCTRQA_histFastORL0LargeAmp hot_fastors; odd"
    assert readable_verdicts(message, plugin_for("EMC"), titles) == (
        "Bad: FastOR L0 (hits with ADC > 0) · Hot FastORs; "
        "Medium: FastOR L0 large amplitude (hits above 400 ADC) · Hot FastORs; odd"
    )


def _caption_text(service, subsystem, name, scale):
    options = ProcessingOptions(scale_by_events=scale)
    view = service.view(RUN, subsystem, None, options)
    shown = hv.shown_histograms(view, subsystem, name)
    (span,) = hv.caption(view, None, options, shown)
    return view, shown, span.children


def test_the_caption_says_what_was_done_not_what_was_asked(service):
    # HLT has no events histogram and scales nothing: the caption names no scaling, and no threshold
    # (HLT runs no check a threshold acts on).
    view, shown, text = _caption_text(service, "HLT", "fHistHLTInSize_HLTOutSize", True)
    assert view.n_events is None and not shown.members[0].scaled_by_events
    assert text.endswith(" · — events") and "scal" not in text and "threshold" not in text
    # EMC names both options.
    assert "· threshold: default" in _caption_text(service, "EMC", "EMCTRQA_histFastORL0", True)[2]
    # EMC's FastOR map is divided by the events the caption names.
    view, shown, text = _caption_text(service, "EMC", "EMCTRQA_histFastORL0", True)
    member = shown.members[0]
    raw = service.view(RUN, "EMC", None, ProcessingOptions(scale_by_events=False)).histogram(
        member.histogram.name
    )
    assert member.scaled_by_events and view.n_events > 0
    assert member.histogram.values().sum() == pytest.approx(raw.histogram.values().sum() / view.n_events)
    assert f"{view.n_events:,.0f} events · scaled per event (÷ {view.n_events:,.0f})" in text
    # A histogram the detector does not scale, and scaling switched off.
    assert "not scaled: not a per-event histogram" in _caption_text(service, "EMC", "hClusterM02", True)[2]
    assert "not scaled: scaling off" in _caption_text(service, "EMC", "EMCTRQA_histFastORL0", False)[2]
