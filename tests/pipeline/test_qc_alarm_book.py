"""The alarm state machine: fired, active, acknowledged, muted until, cleared; what is due for delivery;
a snapshot seen twice changes nothing."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from pipeline.qc.alarm_book import AlarmBook
from pipeline.qc.alarms import AlarmDefinition, AlarmResult, BetweenValues, Condition, Verdict

T0 = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
DEFINITION = AlarmDefinition("EMC", "hot", "FastOR", Condition("hot_channels", BetweenValues(0, 4)))
HISTS = ("EMCTRQA_histFastORL0", "EMCTRQA_histFastORL1")


def snapshot(index: int, run: int = 100) -> tuple[str, datetime]:
    when = T0 + timedelta(minutes=index)
    return f"EMC_{run}_{when:%Y%m%dT%H%M%S}.000000", when


def results(*fired_values):
    """One result per histogram: a value above 4 fires."""
    return [
        AlarmResult(DEFINITION, hist, Verdict(v > 4, f"{v} outside [0, 4]" if v > 4 else "", v))
        for hist, v in zip(HISTS, fired_values, strict=True)
    ]


def step(book, index, *values, run=100):
    snapshot_id, when = snapshot(index, run)
    return book.update("EMC", run, snapshot_id, when, results(*values))


def test_fire_stay_active_clear_and_fire_again(tmp_path):
    book = AlarmBook(tmp_path)
    assert book.alarms().empty and book.due(datetime.now(UTC), 0, 3) == []
    assert step(book, 0, 4, 4) == []
    events = step(book, 1, 6, 4)
    assert [(e.kind, e.alarm["histogram"]) for e in events] == [("fired", HISTS[0])]
    assert step(book, 2, 7, 4) == []  # still active: no new event
    alarms = book.alarms()
    assert len(alarms) == 1
    row = alarms.iloc[0]
    assert (row["state"], row["occurrences"], row["last_value"], row["message"]) == (
        "active",
        2,
        7,
        "7 outside [0, 4]",
    )
    assert row["fired_utc"] == snapshot(1)[1] and row["last_seen_utc"] == snapshot(2)[1]
    assert (row["quantity"], row["content"], row["run"]) == ("hot_channels", "interval", 100)
    events = step(book, 3, 3, 4)
    assert [e.kind for e in events] == ["cleared"]
    assert book.alarms().iloc[0]["cleared_utc"] == snapshot(3)[1]
    step(book, 4, 9, 4)
    alarms = book.alarms()
    assert alarms["state"].tolist() == ["active", "cleared"]  # newest first: a new alarm
    assert alarms["alarm_id"].nunique() == 2


def test_the_same_or_an_older_snapshot_changes_nothing(tmp_path):
    book = AlarmBook(tmp_path)
    step(book, 0, 6, 4)
    before = book.alarms()
    assert step(book, 0, 6, 4) == []
    assert step(book, 0, 3, 3) == []  # a re-run with other values must not clear it either
    pd.testing.assert_frame_equal(book.alarms(), before)


def test_a_new_run_clears_the_open_alarms_of_the_old_one(tmp_path):
    book = AlarmBook(tmp_path)
    step(book, 0, 6, 6)
    events = step(book, 1, 4, 4, run=101)
    assert sorted(e.kind for e in events) == ["cleared", "cleared"]
    assert set(book.alarms()["state"]) == {"cleared"}


def test_acknowledge_and_mute(tmp_path):
    book = AlarmBook(tmp_path)
    step(book, 0, 6, 6)
    first, second = book.alarms().sort_values("histogram")["alarm_id"]
    book.acknowledge(first, who="shifter")
    now = datetime.now(UTC)
    book.mute(second, now + timedelta(hours=1), who="expert")
    alarms = book.alarms().set_index("alarm_id")
    assert alarms.loc[first, "state"] == "acknowledged"
    assert alarms.loc[first, "acknowledged_by"] == "shifter"
    assert alarms.loc[second, "state"] == "muted"
    assert alarms.loc[second, "muted_until_utc"] > now
    # The mute is over later: the alarm shows as active again.
    later = book.alarms(now=now + timedelta(hours=2)).set_index("alarm_id")
    assert later.loc[second, "state"] == "active"
    assert [e["event"] for e in book.events()] == ["fired", "fired", "acknowledged", "muted"]
    with pytest.raises(ValueError, match="who"):
        book.acknowledge(first, who="")
    with pytest.raises(KeyError, match="alarm_id"):
        book.acknowledge("nope", who="x")
    with pytest.raises(ValueError, match="until_utc"):
        book.mute(first, datetime(2030, 1, 1), who="x")
    step(book, 1, 3, 3)
    with pytest.raises(ValueError, match="already cleared"):
        book.acknowledge(first, who="shifter")


def test_a_mute_covers_the_next_firing_of_the_same_key(tmp_path):
    book = AlarmBook(tmp_path)
    step(book, 0, 6, 4)
    book.mute(book.alarms().iloc[0]["alarm_id"], datetime.now(UTC) + timedelta(hours=1), who="expert")
    step(book, 1, 3, 4)
    step(book, 2, 8, 4)
    newest = book.alarms().iloc[0]
    assert (newest["state"], newest["fired_utc"]) == ("muted", snapshot(2)[1])
    assert book.due(datetime.now(UTC), 0, 3) == []


def test_due_new_at_once_then_at_most_n_resends_not_after_acknowledge(tmp_path):
    book = AlarmBook(tmp_path)
    step(book, 0, 6, 6)
    now = datetime.now(UTC)
    due = book.due(now, resend_after_s=60, max_resends=2)
    assert len(due) == 2
    book.mark_notified([a["alarm_id"] for a in due], now)
    assert book.due(now + timedelta(seconds=30), 60, 2) == []  # too soon for a re-send
    for minute in (1, 2):
        when = now + timedelta(minutes=minute)
        due = book.due(when, 60, 2)
        assert len(due) == 2
        book.mark_notified([a["alarm_id"] for a in due], when)
    assert book.due(now + timedelta(minutes=5), 60, 2) == []  # 1 + 2 re-sends done
    step(book, 1, 6, 3)
    step(book, 2, 8, 3)  # the second cleared, the first still active: nothing more to send
    assert book.due(now + timedelta(minutes=9), 60, 2) == []
    step(book, 3, 3, 9)  # the second fires again: a new alarm, sent at once
    due = book.due(now + timedelta(minutes=9), 60, 2)
    assert [(a["histogram"], a["notifications_sent"]) for a in due] == [(HISTS[1], 0)]
    book.acknowledge(due[0]["alarm_id"], who="shifter")
    assert book.due(now + timedelta(minutes=9), 60, 2) == []


def test_readme_documents_the_alarms_table():
    from pathlib import Path

    from pipeline.qc.alarm_book import ALARMS_SCHEMA
    from pipeline.store_schema import schema_markdown

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert schema_markdown(ALARMS_SCHEMA) in readme
