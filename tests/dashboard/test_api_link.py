"""The page's API links lead to the same numbers the page shows."""

from __future__ import annotations

import numpy as np

from dashboard.api_link import api_links
from pipeline.processing.options import ProcessingOptions
from pipeline.processing.service import ProcessingService
from pipeline.processing.timeslice import Window
from pipeline.store import SnapshotStore
from tests.api_store import FASTOR, ODD_NAME, RUN, api_app, write_run


def test_links_carry_window_mode_and_options_and_answer_what_the_page_shows(tmp_path):
    write_run(tmp_path / "data")
    service = ProcessingService(SnapshotStore(tmp_path / "data"), tmp_path / "page-cache")
    options = ProcessingOptions(scale_by_events=False, hot_channel_threshold=100.0)
    window = Window(1.0, 3.0)
    view = service.view(RUN, "EMC", window, options)
    links = api_links(view, FASTOR, window, options)
    json_link, parquet_link = (child for child in links.children if hasattr(child, "href"))
    base = f"/api/runs/{RUN}/EMC/histograms/{FASTOR}?min=1&max=3&mode=cumulative&scale=0&threshold=100"
    assert json_link.href == base and parquet_link.href == f"{base}&format=parquet"
    client = api_app(tmp_path / "data", tmp_path / "api-cache").test_client()
    answer = client.get(json_link.href).get_json()
    np.testing.assert_array_equal(answer["values"], view.histogram(FASTOR).histogram.values_flow)
    assert client.get(parquet_link.href).mimetype == "application/vnd.apache.parquet"
    whole = api_links(service.view(RUN, "EMC"), ODD_NAME, None, ProcessingOptions())
    assert whole.children[1].href == f"/api/runs/{RUN}/EMC/histograms/QA%20dir/pT%20spectrum?mode=cumulative"
