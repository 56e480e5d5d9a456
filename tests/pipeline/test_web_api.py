"""The read-only data API against a store of known contents: every route, slices with options, names
with "/" and spaces, errors as JSON, and Parquet read back with pandas."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.processing.query import ViewQuery
from pipeline.store import SnapshotMeta, SnapshotStore
from pipeline.store_schema import SNAPSHOT_SCHEMA
from pipeline.web.access import READ, routes_by_role
from pipeline.web.api import histogram_api_path
from tests.api_store import (
    EVENTS,
    FASTOR,
    ODD_EDGES,
    ODD_NAME,
    RUN,
    T0,
    api_app,
    fastor_flow,
    odd_flow,
    snapshot_histograms,
    write_run,
)

HISTOGRAMS = f"/api/runs/{RUN}/EMC/histograms"
ODD_URL = f"{HISTOGRAMS}/QA%20dir/pT%20spectrum"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    base = tmp_path_factory.mktemp("api")
    write_run(base / "data")
    return api_app(base / "data", base / "cache").test_client()


def get_json(client, url: str, status: int = 200) -> dict:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def test_runs_are_listed_newest_first_and_paginated(tmp_path):
    write_run(tmp_path / "data")
    # Two more runs, so that pages have something to split.
    store = SnapshotStore(tmp_path / "data")
    for offset, run in ((3600.0, RUN + 1), (7200.0, RUN + 2)):
        meta = SnapshotMeta(run, "EMC", datetime.fromtimestamp(T0 + offset, UTC), "B", "pp")
        store.write_snapshot(meta, snapshot_histograms(0))
    client = api_app(tmp_path / "data", tmp_path / "cache").test_client()
    first = get_json(client, "/api/runs?per_page=2")
    assert (first["total"], first["pages"], first["page"]) == (3, 2, 1)
    assert [run["run"] for run in first["runs"]] == [RUN + 2, RUN + 1]
    assert first["next"] == "/api/runs?page=2&per_page=2"
    second = get_json(client, first["next"])
    assert [run["run"] for run in second["runs"]] == [RUN] and second["next"] is None
    assert second["runs"][0]["length_minutes"] == 3.0
    assert second["runs"][0]["subsystem_names"] == ["EMC"]
    assert get_json(client, "/api/runs?page=9")["runs"] == []


@pytest.mark.parametrize(
    "query,field",
    [("page=0", "page"), ("page=x", "page"), ("per_page=501", "per_page"), ("per_page=-1", "per_page")],
)
def test_bad_pagination_is_a_400_naming_the_parameter(client, query, field):
    answer = get_json(client, f"/api/runs?{query}", 400)
    assert answer["field"] == field and answer["message"].startswith(f"{field}: ")


def test_run_detail_describes_each_subsystem(client):
    run = get_json(client, f"/api/runs/{RUN}")
    assert (run["run"], run["length_minutes"], run["ongoing"]) == (RUN, 3.0, False)
    assert run["start_utc"] == "2023-11-14T22:13:20+00:00" and run["end_utc"] == "2023-11-14T22:16:20+00:00"
    emc = run["subsystems"]["EMC"]
    assert emc["n_snapshots"] == 4 and emc["merger_mode"] == "cumulative"
    assert (emc["hlt_mode"], emc["beam_type"], emc["source_subsystem"]) == ("B", "pp", "EMC")
    assert emc["histograms_url"] == HISTOGRAMS
    assert list(run["subsystems"]) == ["EMC"]  # no TPC or HLT data in this run


def test_histogram_list_has_names_classes_groups_and_encoded_urls(client):
    listing = get_json(client, HISTOGRAMS)
    by_name = {entry["name"]: entry for entry in listing["histograms"]}
    assert sorted(by_name) == [EVENTS, FASTOR, ODD_NAME]
    assert by_name[ODD_NAME]["class_name"] == "TH1F" and by_name[FASTOR]["class_name"] == "TH1D"
    assert by_name[ODD_NAME]["url"] == ODD_URL
    assert by_name[FASTOR]["pretty_name"] == "FastOR L0 hits"  # its ROOT title, as the run page lists it
    groups = {group["title"]: group["histograms"] for group in listing["groups"]}
    assert groups["FastOR"] == [FASTOR] and groups["Non EMC"] == [ODD_NAME]
    assert listing["window"]["snapshots"] == ["EMC_7001_20231114T221620.000000"]


def test_whole_run_histogram_with_a_slash_and_a_space_has_exact_numbers(client):
    record = get_json(client, ODD_URL)
    values, variances = odd_flow(3)  # the newest snapshot is the whole run
    assert record["name"] == ODD_NAME and record["class_name"] == "TH1F"
    assert record["values"] == values.tolist() and record["variances"] == variances.tolist()
    assert record["edges"] == [ODD_EDGES.tolist()] and record["nbins"] == [3]
    assert record["axis_titles"] == ["p_T (GeV)"] and record["entries"] == 3.0
    assert record["window"]["requested"] == {"min": 0.0, "max": 3.0}
    # The same name with its "/" encoded too.
    assert get_json(client, f"{HISTOGRAMS}/QA%20dir%2FpT%20spectrum")["values"] == values.tolist()


def test_a_slice_with_options_subtracts_snapshots_and_runs_the_checks(client):
    record = get_json(client, f"{HISTOGRAMS}/{FASTOR}?min=1&max=3&scale=false&threshold=50")
    difference = fastor_flow(3) - fastor_flow(1)  # the snapshots nearest to the edges: minutes 3 and 1
    assert record["values"] == difference.tolist() == [0.0, 2.0, 4.0, 6.0, 100.0, 0.0]
    assert record["scaled_by_events"] is False and record["n_events"] == 20.0
    window = record["window"]
    assert window["requested"] == {"min": 1.0, "max": 3.0} and window["returned"] == {"min": 1.0, "max": 3.0}
    assert window["snapshots"] == ["EMC_7001_20231114T221420.000000", "EMC_7001_20231114T221620.000000"]
    assert window["description"] == "requested 1-3 min, returned 1.0-3.0 min"
    (check,) = record["checks"]
    assert (check["check"], check["quality"], check["message"]) == (
        "hot_fastors",
        "Bad",
        "1 hot FastOR above 50",
    )
    assert check["details"]["hot_channel_ids"] == [3] and check["details"]["threshold_source"] == "user"
    assert record["parameters"] == {"min": "1", "max": "3", "scale": "0", "threshold": "50"}


def test_scaling_by_events_is_the_default_as_on_the_run_page(client):
    record = get_json(client, f"{HISTOGRAMS}/{FASTOR}?min=1&max=3")
    expected = (fastor_flow(3) - fastor_flow(1)) / 20.0  # nEvents of the slice: 40 - 20
    np.testing.assert_allclose(record["values"], expected, rtol=1e-15)
    np.testing.assert_allclose(record["variances"], expected / 20.0, rtol=1e-15)
    assert record["scaled_by_events"] is True
    assert record["checks"][0]["details"]["threshold_source"] == "default"


def test_reset_mode_sums_the_snapshots_in_the_window(client):
    record = get_json(client, f"{HISTOGRAMS}/{EVENTS}?min=1&max=3&mode=reset")
    # The snapshots after the lower edge (minute 1) up to the upper one: those of minutes 2 and 3.
    assert record["values"] == [0.0, 30.0 + 40.0, 0.0]
    assert record["window"]["mode"] == "reset"


def test_parquet_is_the_store_schema_read_back_with_pandas(client):
    response = client.get(f"{ODD_URL}?min=1&max=3&format=parquet")
    assert response.status_code == 200 and response.mimetype == "application/vnd.apache.parquet"
    assert "attachment" in response.headers["Content-Disposition"]
    frame = pd.read_parquet(io.BytesIO(response.data))
    assert len(frame) == 1
    row = frame.iloc[0]
    values, variances = (a - b for a, b in zip(odd_flow(3), odd_flow(1), strict=True))
    assert (row["name"], row["class_name"], row["run"], row["subsystem"]) == (ODD_NAME, "TH1F", RUN, "EMC")
    assert list(row["values"]) == values.tolist() and list(row["variances"]) == variances.tolist()
    assert list(row["edges_x"]) == ODD_EDGES.tolist() and list(row["nbins"]) == [3]
    assert row["snapshot_id"] == "EMC_7001_20231114T221620.000000"
    parquet = pq.read_table(io.BytesIO(response.data))
    assert parquet.schema.remove_metadata() == SNAPSHOT_SCHEMA.remove_metadata()
    view = json.loads(parquet.schema.metadata[b"overwatch_ng.view"])
    assert view["window"]["requested"] == {"min": 1.0, "max": 3.0}
    assert [h["name"] for h in view["histograms"]] == [ODD_NAME]
    assert view["parameters"] == {"min": "1", "max": "3"}


@pytest.mark.parametrize(
    "url,status,field,fragment",
    [
        (f"/api/runs/{RUN + 50}", 404, "run", "no run 7051"),
        ("/api/runs/abc", 400, "run", "run: must be a whole number"),
        (f"/api/runs/{RUN + 50}/EMC/histograms", 404, "run", "no data for run 7051 EMC"),
        (f"/api/runs/{RUN}/XYZ/histograms", 404, "subsystem", "unknown subsystem 'XYZ'"),
        (f"{HISTOGRAMS}/no%20such/histogram", 404, "name", "no histogram named 'no such/histogram'"),
        (f"{HISTOGRAMS}/{FASTOR}?min=abc", 400, "min", "min: must be a number of minutes"),
        (f"{HISTOGRAMS}/{FASTOR}?max=99", 400, "max", "must be <= the run length"),
        (f"{HISTOGRAMS}/{FASTOR}?min=3&max=1", 400, "min", "must be <= max"),
        (f"{HISTOGRAMS}/{FASTOR}?mode=sometimes", 400, "mode", "cumulative or reset"),
        (f"{HISTOGRAMS}/{FASTOR}?threshold=-1", 400, "threshold", "must be > 0"),
        (f"{HISTOGRAMS}/{FASTOR}?outlier_n_sigma=11", 400, "outlier_n_sigma", "must be <= 10"),
        (f"{HISTOGRAMS}/{FASTOR}?colour=red", 400, "colour", "unknown parameter"),
        # An option that cannot act on the subsystem: refused, named with the subsystem, not ignored.
        (f"/api/runs/{RUN}/TPC/histograms/x?threshold=0.5", 400, "threshold", "threshold: TPC has no such"),
        (f"/api/runs/{RUN}/TPC/histograms/x?scale=0", 400, "scale", "scale: TPC has no such option"),
        (f"/api/runs/{RUN}/HLT/histograms?outlier_n_sigma=3", 400, "outlier_n_sigma", "HLT has no such"),
        (f"{HISTOGRAMS}/{FASTOR}?format=csv", 400, "format", "must be one of json, parquet"),
        # A min past the run's end (3 min) alone: named with the run length, not "no histogram" nor max.
        (f"{HISTOGRAMS}/{FASTOR}?min=3.2", 400, "min", "min: must be <= the run length (3 min), got 3.2"),
        (f"{HISTOGRAMS}/{FASTOR}?min=50", 400, "min", "must be <= the run length (3 min), got 50"),
        # Numbers as written in a URL: Python's float() would read "1_0" as 10 and " nan" as nan.
        (f"{HISTOGRAMS}/{FASTOR}?min=1_0", 400, "min", "must be a number of minutes, got '1_0'"),
        (
            f"{HISTOGRAMS}/{FASTOR}?threshold=0,01",
            400,
            "threshold",
            "got '0,01' (write decimals with a point)",
        ),
        # A parameter given twice: which one was meant is not known (the page and downloads refuse it too).
        (f"{HISTOGRAMS}/{FASTOR}?min=1&min=2", 400, "min", "min: given 2 times: give it once"),
        ("/api/nothing/here", 404, None, "no API route GET /api/nothing/here"),
    ],
)
def test_errors_are_json_with_the_right_status_and_field(client, url, status, field, fragment):
    answer = get_json(client, url, status)
    assert answer.get("field") == field and fragment in answer["message"] and answer["status"] == status


def test_the_api_path_of_a_view_is_what_the_routes_answer(client):
    query = ViewQuery.from_params({"min": "1", "max": "3", "scale": "false", "threshold": "50"})
    path = histogram_api_path(RUN, "EMC", FASTOR, query)
    assert path == f"{HISTOGRAMS}/{FASTOR}?min=1&max=3&scale=0&threshold=50"
    assert get_json(client, path)["checks"][0]["details"]["hot_channel_ids"] == [3]
    assert histogram_api_path(RUN, "EMC", ODD_NAME) == ODD_URL
    listing = get_json(client, f"{HISTOGRAMS}?min=1&max=3&scale=false&threshold=50")
    assert path in [entry["url"] for entry in listing["histograms"]]


def test_every_data_route_is_read_only_and_declared(client):
    routes = routes_by_role(client.application)
    assert routes[READ] == [
        "DELETE,GET,PATCH,POST,PUT /api/<path:unknown>",
        "GET /api/runs",
        "GET /api/runs/<run>",
        "GET /api/runs/<run>/<subsystem>/histograms",
        "GET /api/runs/<run>/<subsystem>/histograms/<path:name>",
    ]
    assert routes["push"] == ["POST /api/push/<subsystem>"]


def test_an_unexpected_failure_is_a_json_500_without_details(tmp_path, monkeypatch, caplog):
    write_run(tmp_path / "data")
    client = api_app(tmp_path / "data", tmp_path / "cache").test_client()

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire at /secret/path")

    monkeypatch.setattr("pipeline.web.api.list_runs", broken)
    answer = get_json(client, f"/api/runs/{RUN}", 500)
    assert answer["message"] == "internal error: see the server log"
    assert "disk on fire" in caplog.text  # the operator sees it, the client does not


def test_a_window_without_any_snapshot_of_the_subsystem_is_named_not_a_missing_histogram(tmp_path):
    """TPC's snapshots stop at minute 1 of a 3-minute run: a window 2.5-3 holds none of them."""
    store = write_run(tmp_path / "data")
    for index in range(2):
        when = datetime.fromtimestamp(T0 + 60.0 * index, UTC)
        store.write_snapshot(SnapshotMeta(RUN, "TPC", when, "B", "pp"), snapshot_histograms(index))
    client = api_app(tmp_path / "data", tmp_path / "cache").test_client()
    assert get_json(client, f"/api/runs/{RUN}/TPC/histograms/{FASTOR}?max=1")["window"]["returned"]
    answer = get_json(client, f"/api/runs/{RUN}/TPC/histograms/{FASTOR}?min=2.5", 404)
    assert answer["field"] == "window" and answer["message"].startswith("window: no snapshot of run 7001 TPC")


def test_min_alone_is_min_to_the_end_of_the_run(client):
    record = get_json(client, f"{HISTOGRAMS}/{FASTOR}?min=2&scale=0")
    assert record["window"]["requested"] == {"min": 2.0, "max": 3.0}
    assert record["values"] == (fastor_flow(3) - fastor_flow(2)).tolist() == [0.0, 1.0, 2.0, 3.0, 50.0, 0.0]
