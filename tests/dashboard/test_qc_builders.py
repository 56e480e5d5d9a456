"""The QC pages' pure builders, without a browser: trend figure (time axis, bands, hover), alarm tables
(rows per state, links), links, threshold input rules, and what they read from a real QC store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from dashboard.alarm_table import (
    ACKNOWLEDGED,
    ACTIVE,
    CLEARED,
    MUTED,
    alarm_rows,
    alarm_sections,
    parse_threshold_value,
    split_parameter_key,
    state_counts,
)
from dashboard.qc_links import AXIS_RUNS, AXIS_TIME, TrendQuery, parse_trend_query, run_page_url, trend_url
from dashboard.qc_run_view import history_table, quality_strip, reference_as_shown, reference_figure
from dashboard.quality import quality_button_class, subsystem_quality
from dashboard.trend_figures import band_extent, trend_figure
from dashboard.trend_view import resolve_trend, series_for_download
from dashboard.url_state import query_dict
from pipeline.detectors.base import DrawHints, ProcessedHistogram
from pipeline.processing.service import ProcessingService
from pipeline.store import SnapshotStore
from tests.dashboard.component_text import component_texts, components_with_class
from tests.dashboard.qc_store import FASTOR_L0, FAULT_RUN, FIRST_RUN, HOT_FASTOR_ID
from tests.display_names import FASTOR_L0_LABEL

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _series(values, errors=None):
    times = [T0 + timedelta(minutes=i) for i in range(len(values))]
    return pd.DataFrame(
        {
            "snapshot_time_utc": pd.to_datetime(times, utc=True),
            "value": values,
            "error": errors if errors is not None else [0.0] * len(values),
        }
    )


def test_trend_figure_has_a_time_axis_the_points_and_the_accepted_band():
    limits = [
        {"alarm": "new_hot_fastor", "severity": "error", "rule": "BetweenValues", "min": 0.0, "max": 4.0}
    ]
    figure = trend_figure(
        _series([4.0, 4.0, 5.0], [0.1, 0.2, 0.3]), limits, axis=AXIS_TIME, title="t", y_title="n"
    )
    assert figure.layout.xaxis.type == "date"
    assert figure.layout.xaxis.title.text == "time of snapshot (UTC)"
    points = figure.data[0]
    assert list(points.y) == [4.0, 4.0, 5.0]
    assert list(points.error_y.array) == [0.1, 0.2, 0.3]
    assert [x.minute for x in points.x] == [0, 1, 2]
    assert "value %{y:.6g}" in points.hovertemplate
    rectangles = [s for s in figure.layout.shapes if s.type == "rect"]
    lines = [s for s in figure.layout.shapes if s.type == "line"]
    # Data 3.8-5.3 (with errors), padded by 1.5 each side: the band 0-4 is clipped to 2.3-4.
    assert len(rectangles) == 1
    assert rectangles[0].y0 == pytest.approx(2.3) and rectangles[0].y1 == 4.0
    assert [line.y0 for line in lines] == [4.0]  # 0 is outside the plotted range: no line
    assert "accepted 0 – 4" in figure.layout.annotations[0].text


def test_trend_figure_per_run_uses_run_numbers_and_an_open_limit_is_infinite():
    frame = _series([10.0, 12.0]).assign(run=[300000, 300001])
    limits = [{"alarm": "low", "severity": "warning", "rule": "MeanInRange", "min": 5.0, "max": 1e9}]
    figure = trend_figure(frame, limits, axis=AXIS_RUNS, title="t", y_title="mean")
    assert figure.layout.xaxis.type == "category"
    assert list(figure.data[0].x) == ["300000", "300001"]
    assert band_extent(limits[0], (8.0, 14.0)) == (8.0, 14.0)
    assert band_extent({"min": 20.0, "max": 30.0}, (8.0, 14.0)) is None


def test_an_empty_series_says_so():
    figure = trend_figure(_series([]), [], axis=AXIS_TIME, title="t", y_title="v")
    assert "No trend values" in figure.layout.annotations[0].text


def test_links_and_trend_query_round_trip():
    assert run_page_url(FAULT_RUN, "EMC", FASTOR_L0) == f"/run/{FAULT_RUN}/EMC?group=FastOR&hist={FASTOR_L0}"
    url = trend_url("EMC", FAULT_RUN, FASTOR_L0, "hot_channels", "interval", AXIS_TIME)
    assert (
        url
        == f"/trending/EMC?run={FAULT_RUN}&hist={FASTOR_L0}&quantity=hot_channels&content=interval&axis=time"
    )
    assert parse_trend_query(query_dict(url.split("?")[1])) == TrendQuery(
        FAULT_RUN, FASTOR_L0, "hot_channels", "interval", AXIS_TIME
    )
    # Malformed values fall back to the defaults instead of failing.
    assert parse_trend_query({"run": "x", "content": "bogus", "axis": "?"}) == TrendQuery()


def _alarm(alarm_id, state, minutes, **extra):
    fired = pd.Timestamp(T0 + timedelta(minutes=minutes))
    record = {
        "alarm_id": alarm_id, "subsystem": "EMC", "run": FAULT_RUN, "alarm": "new_hot_fastor",
        "histogram": FASTOR_L0, "quantity": "hot_channels", "content": "interval", "severity": "error",
        "message": f"{alarm_id} message", "state": state, "fired_utc": fired, "snapshot_id": "s",
        "last_seen_utc": fired, "occurrences": 2, "last_value": 5.0, "cleared_utc": pd.NaT,
        "acknowledged_utc": pd.NaT, "acknowledged_by": None, "muted_until_utc": pd.NaT,
        "notifications_sent": 1, "last_notified_utc": pd.NaT,
    }  # fmt: skip
    record.update(extra)
    return record


def test_alarm_rows_by_state_newest_first_with_links():
    frame = pd.DataFrame(
        [
            _alarm("a1", ACTIVE, 1),
            _alarm("a2", ACTIVE, 5),
            _alarm("k1", ACKNOWLEDGED, 2, acknowledged_by="alice", acknowledged_utc=pd.Timestamp(T0)),
            _alarm("m1", MUTED, 3, muted_until_utc=pd.Timestamp(T0 + timedelta(hours=1))),
            _alarm("c1", CLEARED, 0, cleared_utc=pd.Timestamp(T0)),
        ]
    )
    assert state_counts(frame) == {ACTIVE: 2, ACKNOWLEDGED: 1, MUTED: 1, CLEARED: 1}
    active = alarm_rows(frame, ACTIVE)
    assert [row["alarm_id"] for row in active] == ["a2", "a1"]
    assert active[0]["histogram_href"] == f"/run/{FAULT_RUN}/EMC?group=FastOR&hist={FASTOR_L0}"
    assert active[0]["trend_href"] == trend_url("EMC", FAULT_RUN, FASTOR_L0, "hot_channels", "interval")
    text = str(alarm_sections(frame))
    assert "alice" in text and "Acknowledge" in text and "Unmute" in text


def test_alarm_rows_name_the_histogram_as_people_read_it():
    frame = pd.DataFrame(
        [
            _alarm("new", ACTIVE, 2, histogram_label=FASTOR_L0_LABEL),
            _alarm("old", ACTIVE, 1, histogram_label=None),  # recorded before alarms kept labels
        ]
    )
    new, old = alarm_rows(frame, ACTIVE)
    assert (new["histogram_label"], old["histogram_label"]) == (FASTOR_L0_LABEL, FASTOR_L0)
    links = [
        (link.children, link.title, link.href)
        for link in components_with_class(alarm_sections(frame), "alarm-histogram-link")
    ]
    href = f"/run/{FAULT_RUN}/EMC?group=FastOR&hist={FASTOR_L0}"  # machines (URLs) keep the raw name
    assert links == [(FASTOR_L0_LABEL, FASTOR_L0, href), (FASTOR_L0, FASTOR_L0, href)]
    assert "No active alarms" in str(alarm_sections(frame.iloc[0:0]))


def test_threshold_inputs_are_checked_with_clear_messages():
    assert parse_threshold_value("3") == 3 and isinstance(parse_threshold_value("3"), int)
    assert parse_threshold_value(" 2.5 ") == 2.5
    for bad, said in (("", "type a number"), ("abc", "“abc” is not a number"), ("inf", "not a finite")):
        with pytest.raises(ValueError, match=said):
            parse_threshold_value(bad)
    assert split_parameter_key("EMC|event_rate/low|min") == ("EMC", "event_rate/low", "min")
    with pytest.raises(ValueError, match="choose one"):
        split_parameter_key(None)


def test_trend_view_reads_the_qc_services_numbers(qc_data_dir, tmp_path):
    service = ProcessingService(SnapshotStore(qc_data_dir), tmp_path / "cache")
    view = resolve_trend(service, "EMC", TrendQuery(None, FASTOR_L0, "hot_channels", "cumulative"))
    assert view.query.run == FAULT_RUN  # newest trended run by default
    assert view.runs == [FAULT_RUN, FIRST_RUN]
    # Four known hot FastORs, a fifth from minute 2.5: the snapshots at minutes 3 and 4 count five.
    assert view.series["value"].tolist() == [4.0, 4.0, 5.0, 5.0]
    assert view.limits == [
        {"alarm": "new_hot_fastor", "severity": "error", "rule": "BetweenValues", "min": 0.0, "max": 4.0}
    ]
    per_run = resolve_trend(
        service, "EMC", TrendQuery(None, FASTOR_L0, "hot_channels", "interval", AXIS_RUNS)
    )
    assert per_run.query.content == "cumulative"  # across runs: each run's last cumulative value
    assert per_run.series[["run", "value"]].values.tolist() == [[FIRST_RUN, 4.0], [FAULT_RUN, 5.0]]
    table = series_for_download(view, "EMC")
    assert list(table.columns[:5]) == ["run", "subsystem", "histogram", "quantity", "content"]


def test_quality_strip_and_history_from_the_qc_store(qc_data_dir, tmp_path):
    service = ProcessingService(SnapshotStore(qc_data_dir), tmp_path / "cache")
    pieces = quality_strip(
        service.latest_quality(FAULT_RUN, "EMC"), service.alarms(), FAULT_RUN, "EMC", "FastOR"
    )
    texts = component_texts(pieces)
    assert "EMC · Bad" in texts and "FastOR · Bad" in texts
    # The other groups that are not Good, each as a link with its quality.
    quality = service.latest_quality(FAULT_RUN, "EMC")
    others = quality[(quality["level"] == "group") & quality["quality"].isin(["Bad", "Medium"])]
    expected = {f"{n} ({q})" for n, q in zip(others["name"], others["quality"], strict=True) if n != "FastOR"}
    assert expected and expected <= set(texts)
    alarms = [p for p in pieces if "qc-alarm" in (getattr(p, "className", "") or "")]
    assert len(alarms) == 2 and all("qc-alarm-here" in a.className for a in alarms)
    # On another group the same alarms are listed, not marked as being on it.
    other = quality_strip(service.latest_quality(FAULT_RUN, "EMC"), service.alarms(), FAULT_RUN, "EMC", "L0")
    assert not any("qc-alarm-here" in (getattr(p, "className", "") or "") for p in other)
    # The first run had no alarm: nothing but badges and group links.
    first = quality_strip(service.latest_quality(FIRST_RUN, "EMC"), service.alarms(), FIRST_RUN, "EMC", None)
    assert not any("qc-alarm" in (getattr(p, "className", "") or "") for p in first)
    history = service.hot_channel_history("EMC", FAULT_RUN)
    table_texts = component_texts(history_table(history))
    assert f"{len(history)} flagged channels in this run, {int(history['new'].sum())} new" in table_texts
    assert str(HOT_FASTOR_ID) in table_texts
    assert "Hot FastORs" in table_texts and "hot_fastors" not in table_texts  # the check's title
    assert subsystem_quality(service, FAULT_RUN, ["EMC", "TPC"]) == {"EMC": "Bad", "TPC": None}
    assert quality_button_class("Bad") == "btn-danger" and quality_button_class(None) == "btn-outline-primary"


def test_reference_normalised_to_the_same_events_and_ratio(make_histogram):
    current = make_histogram("h", [[0.0, 1.0, 2.0, 3.0]], [10.0, 20.0, 0.0])
    reference = make_histogram("h", [[0.0, 1.0, 2.0, 3.0]], [40.0, 20.0, 10.0])
    raw = ProcessedHistogram(current, DrawHints("h"), (), scaled_by_events=False)
    shown, ratios = reference_as_shown(raw, 100.0, reference, 400.0)  # reference had 4x the events
    assert shown.values().tolist() == [10.0, 5.0, 2.5]
    assert ratios.values().tolist() == [1.0, 4.0, 0.0]
    # Per event: both divided by the events, the ratio unchanged.
    per_event = ProcessedHistogram(current.scaled(0.01), DrawHints("h"), (), scaled_by_events=True)
    shown, ratios = reference_as_shown(per_event, 100.0, reference, 400.0)
    assert shown.values().tolist() == pytest.approx([0.1, 0.05, 0.025])
    assert ratios.values().tolist() == pytest.approx([1.0, 4.0, 0.0])
    figure = reference_figure(current, shown, ratios, reference_run=300000, y_title="entries", log_y=True)
    assert [trace.name for trace in figure.data] == ["this run", "reference run 300000 (normalised)", "ratio"]
    assert figure.layout.yaxis.type == "log"
    with pytest.raises(ValueError, match="reference_n_events"):
        reference_as_shown(raw, 100.0, reference, 0.0)


def test_control_room_tile_takes_the_aggregated_quality_when_qc_checked_the_run(qc_data_dir, tmp_path):
    from dashboard.pages.control_room import QCVerdict, _aggregated, tile_for
    from pipeline.qc.freshness import VerdictAge
    from tests.dashboard.test_control_room import check, report

    service = ProcessingService(SnapshotStore(qc_data_dir), tmp_path / "cache")
    run = type("Run", (), {"run": FAULT_RUN})()
    epochs = service.snapshot_epochs(FAULT_RUN, "EMC")
    now = float(epochs[-1]) + 30.0
    verdict = _aggregated(service, run, "EMC", now, 8.0)
    # Named as the pages name them: the histogram's title and the check's, not the raw names.
    assert verdict.quality == "Bad"
    assert verdict.message.startswith("Bad: FastOR L0 (hits with ADC > 0) · Hot FastORs")
    # QC checked every stored snapshot: the verdict is of the newest one, 30 s old, current.
    assert verdict.age == VerdictAge(pytest.approx(30.0), False, 0)
    tile = tile_for(report(), [check("Good")], verdict)
    assert (tile.colour, tile.alert) == ("bad", "")
    assert tile.quality_line.startswith("QC · Bad: FastOR L0 (hits with ADC > 0) · Hot FastORs (+")
    fresh = VerdictAge(1.0, False, 0)
    assert tile_for(report(), [], QCVerdict("Good", "", fresh)).quality_line == "QC · Good"
    # Not checked by QC: the shown histograms' checks decide, as before; between runs a tile is calm grey.
    assert _aggregated(service, type("Run", (), {"run": 1})(), "EMC", now, 8.0) is None
    assert tile_for(report(), [check("Medium", "off")], None).colour == "warning"
    assert tile_for(report(last_run=0), [], verdict).colour == "idle"


def test_trend_choices_and_title_use_the_display_names(qc_data_dir, tmp_path):
    from dashboard.pages.trending import figure_of

    service = ProcessingService(SnapshotStore(qc_data_dir), tmp_path / "cache")
    view = resolve_trend(service, "EMC", TrendQuery(FAULT_RUN, FASTOR_L0, "hot_channels"))
    labels = {option["value"]: option["label"] for option in view.histograms}
    assert labels[FASTOR_L0] == "FastOR L0 (hits with ADC > 0)"  # the value stays the raw name (URL)
    assert not any(label.startswith("EMCTRQA_") for label in labels.values())
    title = figure_of(view).layout.title.text
    assert title.startswith("hot_channels of FastOR L0 (hits with ADC") and FASTOR_L0 not in title
