"""The dashboard's server carries the data API and the push route, and Dash's page route does not
swallow API paths."""

from __future__ import annotations

from dashboard.app import create_app
from pipeline.settings import Settings
from tests.api_store import FASTOR, PUSH_TOKEN, RUN, fastor_flow, write_run


def test_create_app_serves_the_api_beside_the_page(tmp_path):
    write_run(tmp_path / "data")
    settings = Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", push_token=PUSH_TOKEN)
    client = create_app(settings).server.test_client()
    runs = client.get("/api/runs")
    assert runs.status_code == 200 and [run["run"] for run in runs.get_json()["runs"]] == [RUN]
    record = client.get(f"/api/runs/{RUN}/EMC/histograms/{FASTOR}?scale=false").get_json()
    assert record["values"] == fastor_flow(3).tolist()
    unknown = client.get("/api/not/a/route")
    assert unknown.status_code == 404 and unknown.mimetype == "application/json"
    assert client.get("/").status_code == 200  # the page itself is still Dash's
    refused = client.post("/api/push/EMC", data=b"root", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401
