"""GET /status and GET /api/status through Flask's test client, against receivers' status files
written as a receiver would (fresh or old heartbeats, a merger that answers or not)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import flask
import numpy as np
import pytest
from flask.testing import FlaskClient

from dashboard.routes.status import register_status_routes
from pipeline.emulator.merger import MergerEmulator
from pipeline.emulator.runs import EmulatorConfig
from pipeline.histogram import Histogram
from pipeline.processing.service import ProcessingService
from pipeline.receiver import Receiver
from pipeline.settings import Settings
from pipeline.status import ReceiverStatus, write_status
from pipeline.store import SnapshotMeta, SnapshotStore
from tests.child_python import REPO_ROOT
from tests.conftest import free_tcp_port
from tests.receiver_process import end_receiver, start_receiver

RUN = 300123


def fresh(subsystem: str, now: float, **fields) -> ReceiverStatus:
    """A receiver that asked a second ago and stored what its merger answered."""
    defaults = dict(
        subsystem=subsystem,
        endpoint=f"tcp://127.0.0.1:6032{len(subsystem)}",
        started_utc=now - 600,
        heartbeat_utc=now - 1,
        period_s=5.0,
        timeout_s=10.0,
        requests=120,
        replies=118,
        timeouts=2,
        socket_recreations=2,
        skipped_replies=3,
        rejected_objects=4,
        unsupported_objects=1,
        snapshots_stored=115,
        last_reply_utc=now - 1,
        last_snapshot_utc=now - 1,
        recent_snapshots_utc=[now - 5 * i for i in range(60)][::-1],
        last_run=RUN,
        last_error="no reply within 10 s from tcp://127.0.0.1:60320",
        last_error_utc=now - 400,
        last_error_cleared_utc=now - 395,
    )
    return ReceiverStatus(**{**defaults, **fields})


def status_app(
    tmp_path, subsystems: tuple[str, ...], **fields
) -> tuple[Settings, ProcessingService, FlaskClient]:
    """The status routes over a data folder of `tmp_path`, as the dashboard registers them."""
    settings = Settings(
        data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", subsystems=subsystems, **fields
    )
    service = ProcessingService.from_settings(settings)
    server = flask.Flask(__name__)
    register_status_routes(server, service, settings)
    return settings, service, server.test_client()


def wait_until_alive(client: FlaskClient, timeout_s: float = 30.0) -> None:
    """Poll `/status` until it says "Alive" again (a stopped process was resumed)."""
    deadline = time.monotonic() + timeout_s
    while client.get("/status").get_data(as_text=True) != "Alive":
        assert time.monotonic() < deadline, "not alive again"
        time.sleep(0.1)


@pytest.fixture
def system(tmp_path):
    return status_app(tmp_path, ("EMC", "HLT"))


def write_all(settings: Settings, now: float, **overrides) -> None:
    for subsystem in settings.subsystems:
        write_status(settings.data_dir, fresh(subsystem, now, **overrides.get(subsystem, {})))


def test_status_is_alive_only_while_every_receiver_lives_and_its_merger_answers(system):
    settings, _, client = system
    now = time.time()
    write_all(settings, now)
    answer = client.get("/status")
    assert (answer.status_code, answer.get_data(as_text=True)) == (200, "Alive")
    assert answer.headers["Cache-Control"] == "no-store"
    # The EMC receiver's heartbeat made old: dead, and /status says which and why.
    write_all(settings, now, EMC={"heartbeat_utc": now - settings.receiver_dead_after_s - 5})
    answer = client.get("/status")
    text = answer.get_data(as_text=True)
    assert answer.status_code == 500 and "EMC: receiver dead" in text and "HLT" not in text
    # Fresh again: alive.
    write_all(settings, now)
    assert client.get("/status").status_code == 200
    # The HLT merger stops answering while its receiver lives on (fresh heartbeat): not alive either.
    write_all(settings, now, HLT={"last_reply_utc": now - 60, "consecutive_timeouts": 4})
    answer = client.get("/status")
    assert answer.status_code == 500 and "HLT: merger silent" in answer.get_data(as_text=True)
    # Between runs is fine: the merger answers, there is just nothing to store.
    write_all(settings, now, HLT={"last_run": 0, "last_snapshot_utc": now - 900})
    assert client.get("/status").get_data(as_text=True) == "Alive"


def test_a_configured_receiver_that_never_reported_is_not_alive(system):
    settings, _, client = system
    write_status(settings.data_dir, fresh("EMC", time.time()))
    answer = client.get("/status")
    assert answer.status_code == 500 and "HLT: no status" in answer.get_data(as_text=True)


def histogram() -> Histogram:
    values = np.array([0.0, 3.0, 0.0])
    return Histogram("h", "TH1D", "h", (np.array([0.0, 1.0]),), values, values.copy())


def test_api_status_carries_the_same_numbers_as_the_status_files(system):
    settings, service, client = system
    now = time.time()
    started = now - 90
    store = SnapshotStore(settings.data_dir)
    for seconds in (90, 30):
        when = datetime.fromtimestamp(now - seconds, UTC)
        store.write_snapshot(SnapshotMeta(RUN, "EMC", when, "B", "PbPb"), [histogram()])
    write_all(settings, now, HLT={"heartbeat_utc": now - 3600})
    body = client.get("/api/status").get_json()
    assert body["ok"] is False and body["problems"] == [p for p in body["problems"] if p.startswith("HLT")]
    emc, hlt = body["receivers"]
    assert (emc["subsystem"], emc["state"], hlt["state"]) == ("EMC", "flowing", "receiver dead")
    written = fresh("EMC", now)
    for field in (
        "requests",
        "replies",
        "timeouts",
        "socket_recreations",
        "skipped_replies",
        "rejected_objects",
        "unsupported_objects",
        "last_run",
        "last_error",
    ):
        assert emc[field] == getattr(written, field), field
    assert emc["snapshots_per_min_5min"] == pytest.approx(12.0)  # 60 in the last 5 minutes
    assert emc["heartbeat_age_s"] == pytest.approx(1.0, abs=5.0)
    assert emc["last_error_current"] is False and emc["last_error_age_s"] == pytest.approx(400, abs=5)
    assert hlt["heartbeat_age_s"] == pytest.approx(3600, abs=5)
    # The ongoing run (its receiver names it) and its start, in CERN time too.
    run = body["ongoing_run"]
    assert run["run"] == RUN and run["running_for_s"] == pytest.approx(now - started, abs=5)
    assert datetime.fromisoformat(run["start_cern"]).utcoffset().total_seconds() in (3600, 7200)
    assert body["last_data_age_s"] == pytest.approx(1.0, abs=5.0)
    # The data folder: free space now; its size once the background pass measured it.
    assert body["folder"]["free_bytes"] > 0
    service.monitor.refresh()
    measured = client.get("/api/status").get_json()["folder"]
    on_disk = sum(path.stat().st_size for path in settings.data_dir.rglob("*") if path.is_file())
    assert measured["data_bytes"] == on_disk > 0


def test_other_sites_are_up_down_or_unreachable(tmp_path):
    up_site, down_site = flask.Flask("up"), flask.Flask("down")
    up_site.get("/status")(lambda: "Alive")
    down_site.get("/status")(lambda: ("Not alive:\nEMC: receiver dead", 500))
    servers = []
    urls = []
    from werkzeug.serving import make_server

    for site in (up_site, down_site):
        port = free_tcp_port()
        server = make_server("127.0.0.1", port, site)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        urls.append(f"http://127.0.0.1:{port}/status")
    urls.append(f"http://127.0.0.1:{free_tcp_port()}/status")  # nobody listens
    urls.append(urls[0].replace("/status", "/no-such-path"))  # Flask's HTML 404 page
    try:
        settings = Settings(data_dir=tmp_path, cache_dir=tmp_path / "cache", status_sites=tuple(urls))
        service = ProcessingService.from_settings(settings)
        before = service.system_status().sites
        assert [site.state for site in before] == ["not checked yet"] * 4  # never waits on the network
        service.monitor.refresh()
        up, down, unreachable, html_page = service.system_status().sites
    finally:
        for server in servers:
            server.shutdown()
    assert (up.state, up.detail) == ("up", "Alive")
    assert down.state == "down" and down.detail.startswith("HTTP 500: Not alive") and "EMC" in down.detail
    assert unreachable.state == "unreachable" and "refused" in unreachable.detail.lower()
    assert all(site.checked_utc is not None for site in (up, down, unreachable))
    # An HTML answer (a server's or a proxy's error page) is said by its title, not as markup.
    assert (html_page.state, html_page.detail) == ("down", "HTTP 404: 404 Not Found")


def test_status_follows_a_real_receiver_whose_merger_goes_silent(tmp_path):
    settings, _service, client = status_app(tmp_path, ("EMC",))
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    start = time.time() - 3  # three steps into the emulator's run
    config = EmulatorConfig(
        step_s=1.0, run_length_s=3600.0, run_gap_s=5.0, first_run=RUN, start_time_utc=start
    )
    receiver = Receiver(endpoint, "EMC", settings.data_dir, select="^EMC", period_s=0.1, timeout_s=1.0)
    stop = threading.Event()
    loop = threading.Thread(target=receiver.run, args=(stop,), daemon=True)

    def poll(status_code: int, text: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answer = client.get("/status")
            if answer.status_code == status_code and text in answer.get_data(as_text=True):
                return
            time.sleep(0.05)
        raise AssertionError(
            f"/status never answered {status_code} {text!r}: {answer.get_data(as_text=True)}"
        )

    try:
        with MergerEmulator(endpoint, ("EMC",), config):
            loop.start()
            poll(200, "Alive")
        poll(500, "EMC: merger silent")
        with MergerEmulator(endpoint, ("EMC",), config):
            poll(200, "Alive")
    finally:
        stop.set()
        loop.join(timeout=10)


def test_a_stopped_real_receiver_is_not_responding_never_a_silent_merger(tmp_path):
    # The audit: with `kill -STOP` on a receiver, /status said "merger silent (no reply ... for 24 s
    # (0 requests unanswered))" for 10 s before "receiver dead".
    settings, _service, client = status_app(tmp_path, ("EMC",), receiver_dead_after_s=14.0)
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    config = EmulatorConfig(
        step_s=1.0, run_length_s=3600.0, run_gap_s=5.0, first_run=RUN, start_time_utc=time.time() - 3
    )
    with MergerEmulator(endpoint, ("EMC",), config):
        # A reply deadline (0.5 + 5 + 5 s) beyond the heartbeat's (2 + 5 s), as in production (5 + 10 + 5).
        receiver = start_receiver(endpoint, settings.data_dir, period_s=0.5, timeout_s=5.0)
        try:
            deadline = time.monotonic() + 60
            while client.get("/status").get_data(as_text=True) != "Alive":
                assert time.monotonic() < deadline and receiver.poll() is None, "never alive"
                time.sleep(0.1)
            receiver.send_signal(signal.SIGSTOP)  # the process exists, nothing in it runs
            stopped_at = time.monotonic()
            answers = []  # (seconds since the stop, status code, body) until "receiver dead"
            api = None  # /api/status's row while not responding
            while not answers or "receiver dead" not in answers[-1][2]:
                answer = client.get("/status")
                answers.append(
                    (time.monotonic() - stopped_at, answer.status_code, answer.get_data(as_text=True))
                )
                if api is None and "not responding" in answers[-1][2]:
                    api = client.get("/api/status").get_json()["receivers"][0]
                assert answers[-1][0] < 25, answers[-1]
                time.sleep(0.1)
            answers.pop()  # dead
            bodies = [body for _, _, body in answers]
            assert not [b for b in bodies if "merger silent" in b or "unanswered" in b], bodies
            alive = [t for t, code, body in answers if (code, body) == (200, "Alive")]
            frozen = [(t, code, body) for t, code, body in answers if "EMC: receiver not responding" in body]
            assert alive and frozen and len(alive) + len(frozen) == len(answers), answers
            assert max(alive) < min(t for t, _, _ in frozen) and {code for _, code, _ in frozen} == {500}
            assert "(no heartbeat for " in frozen[0][2] and "every 2 s; dead after 14 s)" in frozen[0][2]
            assert api["state"] == "receiver not responding" and api["healthy"] is False
            assert 7.0 < api["heartbeat_age_s"] <= 14.0
            receiver.send_signal(signal.SIGCONT)
            wait_until_alive(client)
        finally:
            end_receiver(receiver)


def test_the_app_serves_the_status_routes_and_both_pages(tmp_path):
    from dashboard.app import create_app

    settings = Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", subsystems=("EMC",))
    now = time.time()
    write_status(settings.data_dir, fresh("EMC", now))
    client = create_app(settings).server.test_client()
    assert (client.get("/status").status_code, client.get("/status").get_data(as_text=True)) == (200, "Alive")
    assert client.get("/api/status").get_json()["receivers"][0]["state"] == "flowing"
    for page in ("/system", "/control-room", "/control-room?rotate=5"):
        answer = client.get(page)
        assert answer.status_code == 200 and "<html" in answer.get_data(as_text=True).lower(), page
    write_status(settings.data_dir, fresh("EMC", now, heartbeat_utc=now - 300))
    assert client.get("/status").status_code == 500


def test_a_stopped_qc_service_is_a_problem_on_status_and_api_status(tmp_path):
    # The review: with `kill -STOP` on `pipeline qc` for 4 min, /status said "Alive" and /api/status
    # "ok": true, "problems": [] while the control room showed its old verdicts as current.
    settings, _service, client = status_app(tmp_path, ("EMC",), receiver_dead_after_s=14.0)
    keep_fresh = threading.Event()

    def receivers_alive() -> None:  # the receiver is fine all along: only QC is stopped
        while not keep_fresh.wait(0.5):
            write_all(settings, time.time())

    write_all(settings, time.time())
    writer = threading.Thread(target=receivers_alive, daemon=True)
    writer.start()
    command = [sys.executable, "-m", "pipeline", "--log-level", "WARNING", "qc"]
    command += ["--data-dir", str(settings.data_dir), "--poll", "0.2"]
    qc = subprocess.Popen(
        command, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while client.get("/api/status").get_json()["qc"]["state"] != "QC running":
            assert time.monotonic() < deadline and qc.poll() is None, "QC never beat"
            time.sleep(0.1)
        assert client.get("/status").get_data(as_text=True) == "Alive"
        qc.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        while client.get("/status").status_code == 200:
            assert time.monotonic() - stopped_at < 15, "a stopped QC service still counts as alive"
            time.sleep(0.1)
        body = client.get("/status").get_data(as_text=True)
        assert body.startswith("Not alive:\nQC: QC service not responding (no heartbeat for "), body
        assert "a running QC service writes one every 1 s; dead after 14 s)" in body, body
        api = client.get("/api/status").get_json()
        assert api["ok"] is False and api["problems"] == body.splitlines()[1:]
        assert api["qc"]["state"] == "QC service not responding" and api["qc"]["pid"] == qc.pid
        # The receivers' heartbeat rule: a beat every 1 s (its poll, at least 1 s) + 5 s of slack.
        assert 6.0 < api["qc"]["heartbeat_age_s"] < 14.0
        while "QC service dead" not in client.get("/status").get_data(as_text=True):
            assert time.monotonic() - stopped_at < 25, "never dead"
            time.sleep(0.2)
        qc.send_signal(signal.SIGCONT)
        wait_until_alive(client)
    finally:
        keep_fresh.set()
        end_receiver(qc)
