"""The HTTP push receiver (DQM path): a ROOT file made with uproot is stored like a ZeroMQ reply and
read back through the data API; wrong tokens and bad files store nothing and never echo the token."""

from __future__ import annotations

import io
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import uproot
from werkzeug.serving import make_server

from pipeline.status import read_status
from pipeline.store import SnapshotStore
from tests.api_store import PUSH_TOKEN, api_app

RUN = 8123
PUSHED_AT = 1_700_000_100
X_EDGES = np.array([0.0, 1.0, 2.5, 4.0])
Y_EDGES = np.array([-1.0, 0.0, 1.0])
CONTENTS_1D = np.array([3.0, 0.0, 7.0])
CONTENTS_2D = np.array([[1.0, 2.0], [0.0, 5.0], [4.0, 0.0]])
NAME_2D = "EMC dir/hits map"  # written by uproot as folder "EMC dir" holding "hits map"
WRONG_TOKEN = "not-the-token-8c1e"


class _KeepOpen(io.BytesIO):
    def close(self) -> None:  # uproot closes its sink; keep the bytes
        pass


def root_file_bytes(with_text: bool = False) -> bytes:
    sink = _KeepOpen()
    with uproot.recreate(sink) as root_file:
        root_file["EMCTRQA_histHits"] = (CONTENTS_1D, X_EDGES)
        root_file[NAME_2D] = (CONTENTS_2D, X_EDGES, Y_EDGES)
        if with_text:
            root_file["note"] = "a TObjString: not a histogram"
    return sink.getvalue()


def push_headers(token: str | None = PUSH_TOKEN, **extra: str) -> dict[str, str]:
    headers = {"runNumber": str(RUN), "timeStamp": str(PUSHED_AT), "amoreAgent": "EMCQA", **extra}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def stored_files(data_dir: Path) -> list[str]:
    """Every file under data_dir except the push receiver's own status and heartbeat."""
    ignored = {"status/EMC-push.json", "status/.EMC-push.lock", "heartbeat.EMC-pushReceiver"}
    files = (str(path.relative_to(data_dir)) for path in data_dir.rglob("*") if path.is_file())
    return sorted(name for name in files if name not in ignored)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def client(data_dir, tmp_path):
    return api_app(data_dir, tmp_path / "cache", push_max_bytes=1_000_000).test_client()


def histogram_url(name: str) -> str:
    return f"/api/runs/{RUN}/EMC/histograms/{urllib.request.quote(name)}"


def assert_pushed_contents(read_json) -> None:
    """The pushed histograms, read through the API, hold exactly what uproot wrote."""
    hits = read_json(histogram_url("EMCTRQA_histHits"))
    assert hits["values"] == [0.0, *CONTENTS_1D.tolist(), 0.0]
    assert hits["variances"] == hits["values"] and hits["edges"] == [X_EDGES.tolist()]
    hits_map = read_json(histogram_url(NAME_2D))
    expected = np.zeros((5, 4))
    expected[1:-1, 1:-1] = CONTENTS_2D
    assert hits_map["values"] == expected.tolist() and hits_map["class_name"] == "TH2D"
    assert hits_map["edges"] == [X_EDGES.tolist(), Y_EDGES.tolist()]
    assert hits_map["window"]["snapshots"] == [f"EMC_{RUN}_20231114T221500.000000"]


def test_a_pushed_file_is_stored_and_read_back_through_the_api(client, data_dir, caplog):
    caplog.set_level(logging.DEBUG)
    response = client.post("/api/push/EMC", data=root_file_bytes(), headers=push_headers())
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["stored"] == ["EMC dir/hits map", "EMCTRQA_histHits"]
    assert (answer["run"], answer["agent"], answer["rejected"]) == (RUN, "EMCQA", [])
    assert answer["snapshot_time_utc"] == "2023-11-14T22:15:00+00:00"
    assert_pushed_contents(lambda url: client.get(url).get_json())
    status = read_status(data_dir, "EMC-push")
    assert (status.kind, status.endpoint, status.subsystem) == ("push", "http push", "EMC")
    assert (status.requests, status.snapshots_stored, status.histograms_stored, status.last_run) == (
        1,
        1,
        2,
        RUN,
    )


def test_a_multipart_upload_and_the_original_token_header_work_too(client):
    headers = {**push_headers(token=None), "token": PUSH_TOKEN}  # the original DQM receiver's header
    upload = {"file": (io.BytesIO(root_file_bytes()), "EMChistos.root")}
    response = client.post("/api/push/EMC", data=upload, headers=headers, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["stored"] == ["EMC dir/hits map", "EMCTRQA_histHits"]


def test_a_run2_file_written_by_root_is_read_with_its_own_streamers(client, data_dir, fixtures_dir):
    body = (fixtures_dir / "run2_root608_th1f.root").read_bytes()  # ROOT 6.08: TH1F v2, TH1 v7
    response = client.post("/api/push/EMC", data=body, headers=push_headers())
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["stored"] == ["test"] and response.get_json()["rejected"] == []
    record = client.get(histogram_url("test")).get_json()
    assert record["values"] == [0.0] * 5 + [1.0] + [0.0] * 6 and record["entries"] == 1.0
    assert (record["class_name"], record["title"]) == ("TH1F", "testHist")
    store = SnapshotStore(data_dir)  # its class version recorded, so a replay sends TH1 v7 again
    assert store.snapshot_meta(store.latest_snapshot_id(RUN, "EMC")).th1_version == 7


def test_a_multipart_truncated_file_is_a_400_and_leaves_nothing(client, data_dir, tmp_path):
    data = root_file_bytes()
    upload = {"file": (io.BytesIO(data[: len(data) - 100]), "EMChistos.root")}
    headers = push_headers()
    response = client.post("/api/push/EMC", data=upload, headers=headers, content_type="multipart/form-data")
    assert response.status_code == 400 and "truncated" in response.get_json()["message"]
    assert stored_files(data_dir) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cache", "data"]  # nothing beside them


def test_a_corrupt_object_is_rejected_and_the_rest_of_the_file_stored(client, data_dir):
    body = bytearray(root_file_bytes())
    with uproot.open(io.BytesIO(bytes(body))) as root_file:
        key = root_file.key("EMCTRQA_histHits")
        start = key.fSeekKey + key.fKeylen + 60  # inside its compressed object bytes
    body[start : start + 8] = b"\xff" * 8
    response = client.post("/api/push/EMC", data=bytes(body), headers=push_headers())
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["stored"] == [NAME_2D] and len(answer["rejected"]) == 1
    assert answer["rejected"][0].startswith("'EMCTRQA_histHits': cannot read it from the file")
    assert client.get(histogram_url("EMCTRQA_histHits")).status_code == 404
    assert read_status(data_dir, "EMC-push").rejected_objects == 1


def test_unsupported_objects_are_counted_and_the_histograms_stored(client, data_dir):
    response = client.post("/api/push/EMC", data=root_file_bytes(with_text=True), headers=push_headers())
    assert response.status_code == 200
    answer = response.get_json()
    assert len(answer["stored"]) == 2
    assert len(answer["unsupported"]) == 1 and "TObjString" in answer["unsupported"][0]
    status = read_status(data_dir, "EMC-push")
    assert (status.unsupported_objects, status.rejected_objects) == (1, 1)


@pytest.mark.parametrize("token", [WRONG_TOKEN, None, ""])
def test_a_wrong_or_missing_token_stores_nothing_and_is_never_echoed(client, data_dir, token, caplog):
    caplog.set_level(logging.DEBUG)
    headers = push_headers(token=token)
    response = client.post("/api/push/EMC", data=root_file_bytes(), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    text = response.get_data(as_text=True)
    assert (
        PUSH_TOKEN not in text
        and WRONG_TOKEN not in text
        and "Bearer" not in response.get_json()["message"][:6]
    )
    assert "push token" in response.get_json()["message"]
    assert not data_dir.exists()  # not even a status file: strangers cannot make us write


def test_with_no_token_configured_the_push_route_is_off(data_dir, tmp_path):
    client = api_app(data_dir, tmp_path / "cache", push_token="").test_client()
    response = client.post("/api/push/EMC", data=root_file_bytes(), headers=push_headers(token=""))
    assert response.status_code == 404
    assert "push receiver is off" in response.get_json()["message"]
    assert not data_dir.exists()


@pytest.mark.parametrize(
    "body,fragment",
    [
        (lambda data: data[: len(data) // 2], "truncated: its header says"),
        (lambda data: data[:-1], "truncated"),
        (lambda data: b"<html>not a ROOT file</html>", "not a ROOT file"),
        (lambda data: b"", "payload was empty"),
        (lambda data: b"root" + b"\0" * 40, "not a valid ROOT file"),
    ],
)
def test_a_body_that_is_not_a_whole_root_file_is_a_400_and_leaves_nothing(client, data_dir, body, fragment):
    response = client.post("/api/push/EMC", data=body(root_file_bytes()), headers=push_headers())
    assert response.status_code == 400
    assert fragment in response.get_json()["message"]
    assert stored_files(data_dir) == []  # no snapshot, no temp file
    status = read_status(data_dir, "EMC-push")
    assert status.requests == 1 and status.snapshots_stored == 0 and fragment in status.last_error


@pytest.mark.parametrize(
    "headers,field,fragment",
    [
        ({"runNumber": ""}, "runNumber", "header required"),
        ({"runNumber": "12a"}, "runNumber", "whole number"),
        ({"runNumber": "-4"}, "runNumber", ">= 0"),
        ({"timeStamp": "yesterday"}, "timeStamp", "unix seconds"),
        ({"timeStamp": "99999999999"}, "timeStamp", "between 0 and now"),
        ({"dataStatus": "7"}, "dataStatus", "0 (middle), 1 (start) or 2 (end)"),
        ({"amoreAgent": "bad agent!"}, "amoreAgent", "letters, digits"),
    ],
)
def test_bad_headers_are_a_400_naming_the_header(client, data_dir, headers, field, fragment):
    response = client.post("/api/push/EMC", data=root_file_bytes(), headers=push_headers(**headers))
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["field"] == field and fragment in answer["message"]
    assert stored_files(data_dir) == []


def test_run_zero_is_refused_as_between_runs(client, data_dir):
    response = client.post("/api/push/EMC", data=root_file_bytes(), headers=push_headers(runNumber="0"))
    assert response.status_code == 400 and "run 0" in response.get_json()["message"]
    assert stored_files(data_dir) == []
    assert read_status(data_dir, "EMC-push").skipped_replies == 1


def test_size_limit_and_unknown_subsystem(data_dir, tmp_path):
    client = api_app(data_dir, tmp_path / "cache", push_max_bytes=1000).test_client()
    response = client.post("/api/push/EMC", data=root_file_bytes(), headers=push_headers())
    assert response.status_code == 413 and "limit of 1000 bytes" in response.get_json()["message"]
    response = client.post("/api/push/XYZ", data=root_file_bytes(), headers=push_headers())
    assert response.status_code == 404 and response.get_json()["field"] == "subsystem"
    assert not data_dir.exists()


@pytest.fixture
def served(client) -> Iterator[str]:
    """The app on a real HTTP server on 127.0.0.1 (an ephemeral port), in a thread."""
    server = make_server("127.0.0.1", 0, client.application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_a_push_over_a_real_http_server(served):
    request = urllib.request.Request(
        f"{served}/api/push/EMC", data=root_file_bytes(), headers=push_headers(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert json.loads(response.read())["snapshot_id"] == f"EMC_{RUN}_20231114T221500.000000"

    def read_json(url: str) -> dict:
        with urllib.request.urlopen(served + url, timeout=30) as answer:
            return json.loads(answer.read())

    assert_pushed_contents(read_json)
    wrong = urllib.request.Request(
        f"{served}/api/push/EMC", data=b"x", headers=push_headers(token=WRONG_TOKEN), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(wrong, timeout=30)
    assert refused.value.code == 401 and WRONG_TOKEN not in refused.value.read().decode()


def test_concurrent_pushes_are_all_stored_and_all_counted(client, data_dir):
    body = root_file_bytes()

    def push(index: int) -> int:
        headers = push_headers(runNumber=str(RUN + index), timeStamp=str(PUSHED_AT + index))
        return client.application.test_client().post("/api/push/EMC", data=body, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(push, range(6))) == [200] * 6
    status = read_status(data_dir, "EMC-push")
    assert (status.requests, status.replies, status.snapshots_stored, status.histograms_stored) == (
        6,
        6,
        6,
        12,
    )
    runs = client.get("/api/runs").get_json()
    assert [run["run"] for run in runs["runs"]] == [RUN + index for index in reversed(range(6))]
