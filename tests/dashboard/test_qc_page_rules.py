"""The trending and alarms pages' rules a reviewer found broken, without a browser: a live count never
redraws the alarm rows, the trend plot always shows the alarm limits, trend downloads answer exactly
what was asked (or an error naming the field), unconfigured subsystems answer 404, the threshold form
refuses useless input, and an empty trend says why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from dashboard.alarm_table import ACTIVE, alarm_sections, last_seen_texts, sections_key
from dashboard.app import create_app
from dashboard.ids import Alarms
from dashboard.pages.trending import newer_run, note_text
from dashboard.qc_links import AXIS_RUNS, TrendQuery, trend_query_problems
from dashboard.trend_figures import trend_figure
from dashboard.trend_view import empty_reason, resolve_trend
from pipeline.detectors.emc import EVENTS_HISTOGRAM
from pipeline.processing.service import ProcessingService
from pipeline.qc.alarm_config import load_alarm_config, set_threshold, threshold_changes
from pipeline.qc.alarms import AlarmConfigError
from pipeline.settings import Settings
from pipeline.store import SnapshotStore
from tests.dashboard.component_text import component_texts
from tests.dashboard.qc_store import FASTOR_L0, FAULT_RUN, FIRST_RUN
from tests.display_names import FASTOR_L0_LABEL

T0 = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)


def _alarms(occurrences: int, last_seen_minutes: int) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "alarm_id": "a1b2c3d4e5f6",
                "state": ACTIVE,
                "severity": "error",
                "run": FAULT_RUN,
                "subsystem": "EMC",
                "alarm": "new_hot_fastor",
                "histogram": FASTOR_L0,
                "quantity": "hot_channels",
                "content": "cumulative",
                "message": "5 outside [0, 4]",
                "fired_utc": pd.Timestamp(T0),
                "last_seen_utc": pd.Timestamp(T0 + timedelta(minutes=last_seen_minutes)),
                "occurrences": occurrences,
                "cleared_utc": None,
                "acknowledged_utc": None,
                "acknowledged_by": "",
                "muted_until_utc": None,
            }
        ]
    )


# ---- 1. the alarms page: a new count is not a new table -------------------------------------------


def test_a_new_count_keeps_the_rows_and_updates_only_the_last_seen_text():
    before, after = _alarms(3, 1), _alarms(4, 2)
    # Same rows and states: the tables (and the mute choice in them) are not drawn anew...
    assert sections_key(before) == sections_key(after)
    # ...the count and time are updated in their own element.
    assert last_seen_texts(after, ["a1b2c3d4e5f6", "gone"]) == ["2026-12-06 23:02:00 (4×)", "—"]
    sections = alarm_sections(before)
    assert "2026-12-06 23:01:00 (3×)" in component_texts(sections)
    # A redraw for another reason keeps the picked duration (Dash persistence on the select).
    select = _find(sections, lambda c: getattr(c, "className", None) == "mute-for")
    assert select.persistence is True
    span = _find(
        sections, lambda c: getattr(c, "id", None) == {"type": Alarms.LAST_SEEN, "alarm": "a1b2c3d4e5f6"}
    )
    assert span.children == "2026-12-06 23:01:00 (3×)"
    # A new state is a new table.
    acknowledged = before.assign(state="acknowledged", acknowledged_by="Alice")
    assert sections_key(acknowledged) != sections_key(before)


def _find(component, match):
    if not isinstance(component, list | tuple) and match(component):
        return component
    children = component if isinstance(component, list | tuple) else getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = _find(child, match)
            if found is not None:
                return found
    return None


# ---- 2. the limits are always on the plot ---------------------------------------------------------


def _series(values):
    return pd.DataFrame(
        {
            "snapshot_time_utc": pd.to_datetime(
                [T0 + timedelta(minutes=i) for i in range(len(values))], utc=True
            ),
            "value": values,
            "error": [0.0] * len(values),
        }
    )


LIMIT_0_2 = {"alarm": "new_hot_fastor", "severity": "error", "rule": "BetweenValues", "min": 0.0, "max": 2.0}


def test_a_firing_alarms_band_and_edge_are_drawn_beside_the_points():
    figure = trend_figure(_series([4.0, 4.0, 4.0]), [LIMIT_0_2], axis="time", title="t", y_title="n")
    low, high = figure.layout.yaxis.range
    assert low < 2.0 < 4.0 < high  # the range holds the limit's edge and the points
    rects = [s for s in figure.layout.shapes if s.type == "rect"]
    assert len(rects) == 1 and rects[0].y1 == 2.0 and rects[0].y0 == low
    dashed = [s.y0 for s in figure.layout.shapes if s.type == "line" and s.line.dash == "dash"]
    assert dashed == [2.0]  # the edge at 2 (the edge at 0 is outside the range)
    above = trend_figure(
        _series([4.0]), [{**LIMIT_0_2, "min": 10.0, "max": 20.0}], axis="time", title="t", y_title="n"
    )
    assert above.layout.yaxis.range[1] > 10.0
    assert [s.y0 for s in above.layout.shapes if s.type == "line"] == [10.0]


def test_a_limit_far_beyond_points_inside_it_is_clipped_not_squashing_them():
    limit = {**LIMIT_0_2, "alarm": "event_rate", "min": 1000.0, "max": 1e9}
    figure = trend_figure(_series([5000.0, 5200.0]), [limit], axis="time", title="t", y_title="n")
    _, high = figure.layout.yaxis.range
    assert high < 10_000  # not widened to 1e9
    assert [s.y1 for s in figure.layout.shapes if s.type == "rect"] == [high]


# ---- 4. and 6. downloads answer what was asked; unknown subsystems are 404 ------------------------


@pytest.fixture
def client(qc_data_dir, tmp_path):
    app = create_app(Settings(data_dir=qc_data_dir, cache_dir=tmp_path / "cache"))
    return app.server.test_client()


BASE = f"/download/trend/EMC.csv?run={FAULT_RUN}&hist={FASTOR_L0}&quantity=hot_channels&content=cumulative"


@pytest.mark.parametrize(
    ("query", "status", "field", "says"),
    [
        (BASE.replace(f"run={FAULT_RUN}", "run=999999"), 404, "run", "run 999999 has no EMC trends"),
        (BASE.replace(f"hist={FASTOR_L0}", "hist=nope"), 404, "hist", "nope is not trended"),
        (BASE.replace("quantity=hot_channels", "quantity=foo"), 404, "quantity", "foo is not trended"),
        (BASE.replace(f"run={FAULT_RUN}", "run=abc"), 400, "run", "'abc' is not a run number"),
        (BASE.replace("content=cumulative", "content=foo"), 400, "content", "'foo' is not one of"),
        (BASE + "&axis=sideways", 400, "axis", "'sideways' is not one of"),
        (BASE.replace("EMC.csv", "emc.csv"), 404, "subsystem", "emc is not a configured subsystem"),
    ],
)
def test_a_trend_download_of_a_bad_choice_is_an_error_naming_the_field(client, query, status, field, says):
    answer = client.get(query)
    assert answer.status_code == status
    body = answer.get_json()
    assert body["field"] == field and says in body["message"]


def test_a_trend_download_of_a_good_choice_holds_exactly_its_points(client):
    answer = client.get(BASE.replace(f"run={FAULT_RUN}", f"run={FIRST_RUN}"))
    assert answer.status_code == 200
    lines = answer.get_data(as_text=True).strip().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == [str(FIRST_RUN)] * 4
    assert [float(line.split(",")[-2]) for line in lines[1:]] == [4, 4, 4, 4]


def test_trending_pages_of_unconfigured_subsystems_are_404_like_the_run_page(client):
    for path in ("/trending/XYZ", "/trending/emc"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert "is not a configured subsystem" in answer.get_data(as_text=True)
    assert client.get("/trending/EMC").status_code == 200
    assert client.get("/trending").status_code == 200


def test_the_page_says_what_it_shows_instead_of_a_choice_with_nothing_trended(qc_data_dir, tmp_path):
    service = ProcessingService(SnapshotStore(qc_data_dir), tmp_path / "cache")
    url = {"run": "999999", "hist": FASTOR_L0, "quantity": "hot_channels"}
    view = resolve_trend(service, "EMC", TrendQuery(999999, FASTOR_L0, "hot_channels"))
    assert note_text(trend_query_problems(url), view) == (
        f"Not as asked: run 999999 has no EMC trends. "
        f"Showing run {FAULT_RUN}, {FASTOR_L0_LABEL}, hot_channels, cumulative content instead."
    )
    exact = resolve_trend(service, "EMC", TrendQuery(FAULT_RUN, FASTOR_L0, "hot_channels"))
    assert note_text({}, exact) == ""
    # An ended run: the page names the newer one and links to the same series in it.
    older = resolve_trend(service, "EMC", TrendQuery(FIRST_RUN, FASTOR_L0, "hot_channels"))
    texts = component_texts(newer_run(older, "EMC"))
    assert f"Run {FIRST_RUN} has ended: run {FAULT_RUN} is newer." in " ".join(texts)
    assert newer_run(exact, "EMC") == []


# ---- 7. why a trend is empty ----------------------------------------------------------------------


def test_an_interval_only_quantity_across_runs_says_the_real_reason(qc_data_dir, tmp_path):
    service = ProcessingService(SnapshotStore(qc_data_dir), tmp_path / "cache")
    view = resolve_trend(
        service, "EMC", TrendQuery(None, EVENTS_HISTOGRAM, "events_per_minute", axis=AXIS_RUNS)
    )
    assert view.query.quantity == "events_per_minute" and view.series.empty
    reason = empty_reason(service, "EMC", view)
    assert reason.startswith("events_per_minute exists only for interval content")
    assert "across runs each run gives its last cumulative value" in reason
    assert "has not trended" not in reason
    within = resolve_trend(
        service, "EMC", TrendQuery(FAULT_RUN, EVENTS_HISTOGRAM, "events_per_minute", "interval")
    )
    assert not within.series.empty  # the interval values exist


# ---- 5. the threshold form refuses useless input -------------------------------------------------


def test_a_threshold_for_a_beam_type_that_cannot_be_one_or_an_n_beyond_a_trend_is_refused(qc_data_dir):
    config = load_alarm_config()
    with pytest.raises(AlarmConfigError, match="is not a beam type") as error:
        set_threshold(qc_data_dir, config, "EMC", "event_rate/low", "n", 3, "Alice", "nonsense beam!!")
    assert error.value.field == "beam_type"
    with pytest.raises(AlarmConfigError, match="at most 17,280, got 100,000,000,000") as error:
        set_threshold(qc_data_dir, config, "EMC", "event_rate/low", "n", 100_000_000_000, "Alice")
    assert "never fire" in str(error.value)
    assert threshold_changes(qc_data_dir) == []  # nothing recorded
    change = set_threshold(qc_data_dir, config, "EMC", "event_rate/low", "n", 17_280, "Alice", "PbPb")
    assert (change.old, change.new, change.beam_type) == (3, 17_280, "PbPb")
