"""Trends and alarms inside the QC service (in one process): a FastOR that turns hot mid-run is flagged
by the check, fires the alarm once, is delivered once per batch, can be acknowledged through the
ProcessingService; a restart leaves no gap and no duplicate in `trends` and no second alarm."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from pipeline.emulator import HOT_FASTOR_IDS
from pipeline.emulator.runs import EmulatorConfig, SyntheticRuns
from pipeline.processing.service import ProcessingService
from pipeline.qc.alarm_book import AlarmBook
from pipeline.qc.paths import CHECKS_TABLE, TRENDS_TABLE, snapshot_result_path
from pipeline.qc.results import read_results
from pipeline.qc.schema import CHECKS_SCHEMA
from pipeline.qc.service import QCService
from pipeline.qc.steps import trend_and_alarm_steps
from pipeline.qc.trend_store import TrendStore
from pipeline.settings import Settings
from pipeline.store import SnapshotMeta, SnapshotStore
from tests.display_names import FASTOR_L0_LABEL
from tests.pipeline.qc_servers import HTTPRecorder, SMTPRecorder

T0 = 1_800_000_000.0
RUN = 7100
CONFIG = EmulatorConfig(step_s=20.0, run_length_s=600.0, run_gap_s=60.0, first_run=RUN, start_time_utc=T0)
FASTOR = "EMCTRQA_histFastORL0"
NEW_HOT_ID = 100  # a FastOR that turns hot at the fourth snapshot
FAULT_FROM = 3
N_SNAPSHOTS = 6


class Clock:
    t = T0

    def __call__(self) -> float:
        return self.t


def record_with_a_new_hot_fastor(data_dir):
    clock = Clock()
    runs = SyntheticRuns(("EMC",), CONFIG, now=clock)
    store = SnapshotStore(data_dir)
    for index in range(N_SNAPSHOTS):
        clock.t = T0 + 50.0 + 60.0 * index
        runs.advance(clock.t)
        held = runs.snapshot()
        if index >= FAULT_FROM:
            # 5% of the events since the fault began fire this FastOR: above the 1% hot threshold.
            events = held["EMCTRQA_histEvents"].values()[0]
            extra = held[FASTOR].scaled(0.0)
            extra.values_flow[1 + NEW_HOT_ID] = extra.variances_flow[1 + NEW_HOT_ID] = 0.05 * events
            held[FASTOR] = held[FASTOR] + extra
        meta = SnapshotMeta(RUN, "EMC", datetime.fromtimestamp(clock.t, UTC), "B", "pp")
        store.write_snapshot(meta, list(held.values()))
    return store


def service_with_steps(data_dir, settings):
    consumers, deliverer = trend_and_alarm_steps(data_dir, settings)
    return QCService(data_dir, subsystems=["EMC"], consumers=consumers), deliverer


def test_fault_to_check_to_alarm_to_delivery_and_a_clean_restart(tmp_path):
    data_dir = tmp_path / "data"
    store = record_with_a_new_hot_fastor(data_dir)
    ids = [key.snapshot_id for key in store.snapshot_keys(RUN, "EMC")]
    with SMTPRecorder() as smtp, HTTPRecorder() as http:
        settings = Settings(
            data_dir=data_dir,
            alarm_smtp_host="127.0.0.1",
            alarm_smtp_port=smtp.port,
            alarm_email_to=("shift@example.org",),
            alarm_webhook_url=http.url,
        )
        service, deliverer = service_with_steps(data_dir, settings)
        # Snapshot by snapshot, delivering after each, as the live service would.
        for key in store.snapshot_keys(RUN, "EMC"):
            service.check_snapshot(key)
            deliverer.deliver_due(include_resends=False)
        assert service.counters.consumer_errors == 0, service.counters.last_error

        checks = read_results(data_dir, CHECKS_TABLE, CHECKS_SCHEMA, "EMC", RUN)
        hot = checks[(checks["check"] == "hot_fastors") & (checks["histogram"] == FASTOR)]
        hot = hot[hot["content"] == "cumulative"].sort_values("snapshot_time_utc")
        flagged = [set(ids) for ids in hot["flagged_ids"]]
        assert all(set(HOT_FASTOR_IDS) <= f for f in flagged)
        assert [NEW_HOT_ID in f for f in flagged] == [i >= FAULT_FROM for i in range(N_SNAPSHOTS)]
        assert set(hot["quality"].iloc[FAULT_FROM:]) == {"Bad"}

        trends = TrendStore(data_dir)
        counts = trends.series(RUN, "EMC", FASTOR, "hot_channels", content="interval")["value"].tolist()
        assert counts == [len(HOT_FASTOR_IDS)] * FAULT_FROM + [len(HOT_FASTOR_IDS) + 1] * (
            N_SNAPSHOTS - FAULT_FROM
        )

        processing = ProcessingService(store, tmp_path / "cache")
        alarms = processing.alarms()
        fired = alarms[(alarms["alarm"] == "new_hot_fastor") & (alarms["histogram"] == FASTOR)]
        assert len(fired) == 1
        alarm = fired.iloc[0]
        assert (alarm["state"], alarm["run"], alarm["snapshot_id"]) == ("active", RUN, ids[FAULT_FROM])
        assert (alarm["quantity"], alarm["content"]) == ("hot_channels", "cumulative")
        assert alarm["occurrences"] == N_SNAPSHOTS - FAULT_FROM
        # People read the display name (the map's ROOT title); the raw name stays the alarm's key.
        assert alarm["message"] == f"cumulative hot_channels of {FASTOR_L0_LABEL}: 5 outside [0, 4]"
        assert alarm["histogram_label"] == FASTOR_L0_LABEL
        # Delivered once, in one batch per channel, although it held at three snapshots.
        assert len(smtp.messages) == 1 and len(http.bodies) == 1
        subject, posted = smtp.messages[0]["Subject"], http.bodies[0]["text"]
        assert subject == f"[overwatch] EMC new_hot_fastor on {FASTOR_L0_LABEL}" and FASTOR not in posted
        assert f"new_hot_fastor on {FASTOR_L0_LABEL}: cumulative hot_channels of" in posted
        assert processing.alarm_limits("EMC", FASTOR, "hot_channels", "cumulative") == [
            {"alarm": "new_hot_fastor", "severity": "error", "rule": "BetweenValues", "min": 0.0, "max": 4.0}
        ]

        # Kill-like restart: the last two snapshots lost their trends and checks files (as if the
        # service died while writing them); a new service redoes exactly those.
        before = trends.table(RUN, "EMC")
        alarms_before = AlarmBook(data_dir).alarms()
        for snapshot_id in ids[-2:]:
            for table in (TRENDS_TABLE, CHECKS_TABLE):
                snapshot_result_path(data_dir, table, "EMC", RUN, snapshot_id).unlink()
        restarted, deliverer = service_with_steps(data_dir, settings)
        assert [key.snapshot_id for key in restarted.snapshots_to_check()] == ids[-2:]
        restarted.check_pending()
        deliverer.deliver_due(include_resends=False)
        after = trends.table(RUN, "EMC")
        pd.testing.assert_frame_equal(after, before)
        assert after.groupby(["snapshot_id", "content", "histogram", "quantity"]).size().max() == 1
        assert sorted(after["snapshot_id"].unique()) == ids
        pd.testing.assert_frame_equal(AlarmBook(data_dir).alarms(), alarms_before)
        assert len(smtp.messages) == 1 and len(http.bodies) == 1

        # People's side: acknowledge through the ProcessingService; a re-send is then never due.
        processing.acknowledge_alarm(alarm["alarm_id"], who="shifter")
        assert processing.alarms().set_index("alarm_id").loc[alarm["alarm_id"], "state"] == "acknowledged"
        later = datetime.now(UTC) + timedelta(hours=1)
        assert AlarmBook(data_dir).due(later, 0, 3) == []


def test_an_expert_threshold_change_takes_effect_and_is_recorded(tmp_path):
    data_dir = tmp_path / "data"
    store = record_with_a_new_hot_fastor(data_dir)
    processing = ProcessingService(store, tmp_path / "cache")
    change = processing.set_alarm_threshold("EMC", "new_hot_fastor", "max", 5, who="emc-expert")
    assert (change.old, change.new, change.who) == (4, 5, "emc-expert")
    service, _ = service_with_steps(data_dir, replace(Settings(), data_dir=data_dir))
    service.check_pending()
    assert processing.alarms().query("alarm == 'new_hot_fastor'").empty
    assert processing.alarm_limits("EMC", FASTOR, "hot_channels", "cumulative")[0]["max"] == 5.0


def test_a_bad_alarm_file_stops_the_qc_command_naming_the_field(tmp_path, caplog):
    from pipeline.__main__ import main

    bad = tmp_path / "alarms.toml"
    bad.write_text(
        '[[EMC]]\nname = "x"\nhistograms = "."\nquantity = "mean"\ntype = "between"\nmin = 2\nmax = 1\n'
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OVERWATCH_ALARMS_CONFIG", str(bad))
        assert main(["qc", "--data-dir", str(tmp_path / "data")]) == 2
    assert "EMC.x.min: must be <= max (2 > 1)" in caplog.text


def test_a_bad_delivery_setting_stops_the_qc_command_naming_the_field(tmp_path, caplog):
    from pipeline.__main__ import main

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OVERWATCH_ALARM_WEBHOOK_URL", "slack.example.org/hook")
        assert main(["qc", "--data-dir", str(tmp_path / "data")]) == 2
    assert "alarm_webhook_url: must be an http(s) URL, got 'slack.example.org/hook'" in caplog.text
