"""End to end with real processes: emulator with an injected hot FastOR, EMC receiver and the QC
service. The hot FastOR check flags it (Bad) in `checks`, alarms fire, a local SMTP server and a local
HTTP server receive each batch once, a muted alarm sends nothing more, and killing the QC service
(SIGKILL) and starting it again leaves no gap and no duplicate in `trends` and no second alarm."""

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pipeline.processing.service import ProcessingService
from pipeline.qc.paths import CHECKS_TABLE
from pipeline.qc.results import done_snapshot_ids, read_results
from pipeline.qc.schema import CHECKS_SCHEMA
from pipeline.qc.trend_store import TrendStore
from pipeline.store import SnapshotStore
from tests.conftest import free_tcp_port
from tests.display_names import FASTOR_L0_LABEL, FASTOR_L1_LABEL
from tests.pipeline.qc_servers import HTTPRecorder, SMTPRecorder, wait_for

pytestmark = pytest.mark.network
REPO = Path(__file__).resolve().parents[1]
L0, L1 = "EMCTRQA_histFastORL0", "EMCTRQA_histFastORL1"
# What notifications call them (people read them): their display names.
L0_READ, L1_READ = FASTOR_L0_LABEL, FASTOR_L1_LABEL

# The emulator turns FastOR 1000 hot (20 % of events at L0, 17 % at L1) from 0.1 minutes on; besides
# its 4 known hot FastORs, that is a fifth: the alarm (as shipped) fires for L0 and L1 once the hot
# count means something (2,000 events), at the same snapshot, so in one batch.
NEW_HOT_ID = 1000
FAULTS = f"hot_fastor:id={NEW_HOT_ID}:at=0.1"
ALARMS = """
[[EMC]]
name = "new_hot_fastor"
histograms = '^EMCTRQA_histFastORL[01]$'
quantity = "hot_channels"
content = "cumulative"
type = "between"
min = 0
max = 4
"""


def start(arguments, env, log_path):
    log = log_path.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", *arguments],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_fault_check_alarm_delivery_mute_and_restart(tmp_path):
    data_dir = tmp_path / "data"
    alarms_file = tmp_path / "alarms.toml"
    alarms_file.write_text(ALARMS)
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    logs = tmp_path / "processes.log"
    with SMTPRecorder() as smtp, HTTPRecorder() as http:
        env = {
            **os.environ,
            "OVERWATCH_EMULATOR_STEP_S": "0.5",
            "OVERWATCH_EMULATOR_FAULTS": FAULTS,
            "OVERWATCH_ALARMS_CONFIG": str(alarms_file),
            "OVERWATCH_ALARM_SMTP_HOST": "127.0.0.1",
            "OVERWATCH_ALARM_SMTP_PORT": str(smtp.port),
            "OVERWATCH_ALARM_EMAIL_TO": "shift@example.org",
            "OVERWATCH_ALARM_WEBHOOK_URL": http.url,
            "OVERWATCH_ALARM_BATCH_INTERVAL_S": "4",
            "OVERWATCH_ALARM_MAX_RESENDS": "50",
        }
        qc_command = ["qc", "--data-dir", str(data_dir), "--subsystems", "EMC", "--poll", "0.5"]
        processes = [
            start(["emulator", "--bind", endpoint, "--subsystems", "EMC"], env, logs),
            start(
                [
                    "receiver",
                    "--endpoint",
                    endpoint,
                    "--subsystem",
                    "EMC",
                    "--data-dir",
                    str(data_dir),
                    "--period",
                    "1",
                ],
                env,
                logs,
            ),
        ]
        qc = start(qc_command, env, logs)
        try:
            store = SnapshotStore(data_dir)
            service = ProcessingService(store, tmp_path / "cache", alarms_config=alarms_file)

            wait_for(lambda: len(service.alarms()) == 2, 60, "both FastOR alarms to fire")
            alarms = service.alarms().set_index("histogram")
            assert set(alarms["state"]) == {"active"}
            run = int(alarms["run"].iloc[0])
            wait_for(lambda: smtp.messages and http.bodies, 30, "the first batch")
            # Mute L0 right away; L1 stays active and is re-sent every batch interval.
            service.mute_alarm(alarms.loc[L0, "alarm_id"], datetime.now(UTC) + timedelta(hours=1), who="test")
            first_mail, first_post = smtp.messages[0].get_content(), http.bodies[0]["text"]
            for text in (first_mail, first_post):
                # One batch, each alarm once (one line each).
                lines = [line for line in text.splitlines() if line.startswith("[ERROR]")]
                assert sum(L0_READ in line for line in lines) == 1, text
                assert sum(L1_READ in line for line in lines) == 1, text

            checks = read_results(data_dir, CHECKS_TABLE, CHECKS_SCHEMA, "EMC", run)
            hot = checks[(checks["check"] == "hot_fastors") & (checks["histogram"] == L0)]
            newest = hot.sort_values("snapshot_time_utc").iloc[-1]
            assert newest["quality"] == "Bad" and NEW_HOT_ID in set(newest["flagged_ids"])
            assert "5 outside [0, 4]" in alarms.loc[L0, "message"]

            # SIGKILL mid-stream, data keep coming, then a new QC service catches up.
            # Killed once a re-send is delivered and counted (a kill between sending and counting would
            # send that batch again: delivery is at least once).
            def resent():
                return service.alarms().set_index("histogram").loc[L1, "notifications_sent"] >= 2

            wait_for(resent, 30, "a re-send batch")
            qc.kill()
            qc.wait(timeout=10)
            stored_at_kill = store.count_snapshots("EMC")
            wait_for(lambda: store.count_snapshots("EMC") >= stored_at_kill + 3, 30, "3 more snapshots")
            qc = start(qc_command, env, logs)

            def caught_up():
                ids = [key.snapshot_id for key in store.snapshot_keys(run, "EMC")][:-1]
                done = done_snapshot_ids(data_dir, CHECKS_TABLE, "EMC", run)
                return len(ids) >= stored_at_kill + 2 and set(ids) <= done and ids

            ids = wait_for(caught_up, 60, "the restarted QC service to catch up")
            sent_before = len(smtp.messages)
            wait_for(lambda: len(smtp.messages) >= sent_before + 1, 30, "a re-send by the new service")
        finally:
            stop(qc)
            for process in processes:
                stop(process)
            log_text = logs.read_text(errors="replace")

        assert "Traceback" not in log_text, log_text[-3000:]
        trends = TrendStore(data_dir).table(run, "EMC")
        processed = sorted(trends["snapshot_id"].unique())
        # No gap: every snapshot up to the newest processed one has its trends; no duplicate row.
        stored = [key.snapshot_id for key in store.snapshot_keys(run, "EMC")]
        assert processed == stored[: len(processed)] and len(processed) >= len(ids)
        key_columns = ["snapshot_id", "content", "histogram", "quantity"]
        assert not trends.duplicated(key_columns).any()
        series = TrendStore(data_dir).series(run, "EMC", L0, "hot_channels")
        assert series["snapshot_time_utc"].is_monotonic_increasing and (series["value"] >= 4).all()
        assert pd.api.types.is_datetime64_any_dtype(series["snapshot_time_utc"])

        # Still the same two alarms (the restart fired nothing new), L0 muted.
        final = service.alarms().set_index("histogram")
        assert len(final) == 2 and final.loc[L0, "state"] == "muted" and final.loc[L1, "state"] == "active"
        # Every batch reached both servers once; after the mute only L1 was re-sent.
        assert len(smtp.messages) == len(http.bodies) >= 3
        for message, body in zip(smtp.messages[1:], http.bodies[1:], strict=True):
            assert L0_READ not in message.get_content() and L1_READ in message.get_content()
            assert not any(
                L0_READ in line for line in body["text"].splitlines() if line.startswith("[ERROR]")
            )
        assert final.loc[L1, "notifications_sent"] == len(smtp.messages)
