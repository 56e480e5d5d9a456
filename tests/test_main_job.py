"""The main job (README command 1) as a user runs it: real processes, data within 30 s, Ctrl-C stops all."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from pipeline.qc.paths import CHECKS_TABLE
from pipeline.qc.results import result_files
from pipeline.status import read_all_status
from pipeline.store import SnapshotStore
from tests.ports import free_tcp_port

pytestmark = pytest.mark.network
REPO = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")


def pipeline_children(pid: int) -> list[psutil.Process]:
    """The emulator and receiver processes under the main job."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "pipeline" in child.cmdline():
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_main_job_serves_live_data_and_stops_cleanly_on_ctrl_c(tmp_path):
    port = free_tcp_port()
    env = {
        **os.environ,
        "OVERWATCH_DATA_DIR": str(tmp_path / "data"),
        "OVERWATCH_CACHE_DIR": str(tmp_path / "cache"),
        "OVERWATCH_EMULATOR_ENDPOINT": f"tcp://127.0.0.1:{free_tcp_port()}",
        "OVERWATCH_DASH_PORT": str(port),
        "OVERWATCH_EMULATOR_STEP_S": "0.5",
        "OVERWATCH_RECEIVER_PERIOD_S": "1",
    }
    log_path = tmp_path / "job.log"
    log = log_path.open("wb")  # a file, not a pipe: nobody reads while the job runs, so a pipe could fill
    job = subprocess.Popen(
        [sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        store = SnapshotStore(tmp_path / "data")
        wait_for(lambda: store.count_snapshots("EMC") >= 2 or job.poll() is not None, 30, "two EMC snapshots")
        assert job.poll() is None, log_path.read_text(errors="replace")[-3000:]
        runs = store.runs()
        assert set(runs["subsystem"]) == {"EMC", "TPC", "HLT"}
        snapshots = store.snapshots(int(runs["run"].iloc[0]), "EMC")["snapshot_id"].tolist()
        first, last = (
            store.read_histogram(s, "EMCTRQA_histEvents").values()[0] for s in (snapshots[0], snapshots[-1])
        )
        assert last > first > 0, "EMC data grow as the run goes on"
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/_dash-layout", timeout=60).read()
        assert b"shell-page" in page
        # Served by the production server; a registered page answers 200, an unknown path 404.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/runs", timeout=10) as runs_page:
            assert runs_page.status == 200 and "gunicorn" in runs_page.headers.get("Server", "")
        with pytest.raises(urllib.error.HTTPError) as not_found:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/no-such-page", timeout=10)
        assert not_found.value.code == 404
        assert {s.subsystem for s in read_all_status(tmp_path / "data")} == {"EMC", "TPC", "HLT"}
        children = pipeline_children(job.pid)
        assert len(children) == 5  # emulator + three receivers + the QC service (besides supervisor, web)
        # The QC service checks what the receivers store.
        wait_for(lambda: result_files(tmp_path / "data", CHECKS_TABLE, "EMC"), 30, "EMC snapshots checked")
        # A receiver that dies is started again by the main job, and stores again.
        receiver = next(c for c in children if "receiver" in c.cmdline() and "EMC" in c.cmdline())
        receiver.kill()
        receiver.wait(timeout=10)
        stored_before = store.count_snapshots("EMC")

        def restarted():
            now = pipeline_children(job.pid)
            return len(now) == 5 and receiver.pid not in {c.pid for c in now} and now

        children = wait_for(restarted, 15, "the killed EMC receiver to be restarted")
        wait_for(lambda: store.count_snapshots("EMC") > stored_before, 15, "the restarted receiver to store")
    finally:
        job.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        job.wait(timeout=20)
        log.close()
        output = log_path.read_text(errors="replace")
    assert job.returncode == 0, output[-2000:]
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE], output[-2000:]
    assert "Traceback" not in output, output[-3000:]
    assert "receiver --endpoint" in output and "restarting in" in output  # the restart is in the log
