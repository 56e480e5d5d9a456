"""The app shell without a browser: which paths serve the app (and which answer 404), the URL query
as the page's state, the run list's rules, and the downloads of what a page shows."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import uproot

from dashboard.app import create_app
from dashboard.components.histogram_view import safe_file_name
from dashboard.context import PageContext
from dashboard.pages import resolve, routes
from dashboard.pages import run as run_page
from dashboard.pages.runs import RUNS_PER_PAGE, jump_target, page_count, runs_on_page
from dashboard.url_state import ViewQuery, parse_query, query_dict
from pipeline.processing.options import ProcessingOptions
from pipeline.processing.query import number_text, subsystem_options
from pipeline.processing.runs import RunSummary
from pipeline.processing.service import ProcessingService
from pipeline.processing.timeslice import Window
from pipeline.settings import Settings
from pipeline.store_schema import meta_from_footer
from tests.dashboard.emulated_run import FASTOR_L0, RUN, EmulatedRun


@pytest.fixture(scope="module")
def emc_store(tmp_path_factory):
    run = EmulatedRun(tmp_path_factory.mktemp("data"), time.time() - 400.0)
    for _ in range(6):
        run.store_snapshot()
    return run.store


@pytest.fixture(scope="module")
def client(emc_store, tmp_path_factory):
    settings = Settings(data_dir=emc_store.data_dir, cache_dir=tmp_path_factory.mktemp("cache"))
    return create_app(settings).server.test_client()


@pytest.mark.parametrize(
    "path", ["/", "/runs", f"/run/{RUN}/EMC", f"/run/{RUN}/EMC?group=FastOR&min=1&max=3"]
)
def test_page_paths_serve_the_app(client, path):
    answer = client.get(path)
    assert answer.status_code == 200
    assert b"dash-renderer" in answer.data


@pytest.mark.parametrize("path", ["/nope", "/logins", "/run/abc/EMC", "/run/5000", "/runs/extra/x"])
def test_unknown_paths_answer_404_with_a_page_saying_so(client, path):
    answer = client.get(path)
    assert answer.status_code == 404
    assert b"Page not found" in answer.data and b"dash-renderer" not in answer.data


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/run/999999/EMC", "Run 999999 has no data; the newest runs are on /runs."),
        (f"/run/{RUN}/XYZ", "XYZ is not a configured subsystem (configured: EMC, TPC, HLT)."),
        (f"/run/{RUN}/TPC?group=x", f"Run {RUN} has no TPC data; it has EMC."),
    ],
)
def test_a_run_page_without_data_answers_404_saying_why(client, path, reason):
    answer = client.get(path)
    assert answer.status_code == 404
    assert reason in answer.get_data(as_text=True) and b"dash-renderer" not in answer.data


def test_unknown_api_paths_answer_404_as_json(client):
    # /api/... belongs to the data API: machines get its JSON error, not the page.
    answer = client.get("/api/nothing")
    assert answer.status_code == 404 and answer.get_json()["status"] == 404


def test_health_answers_ok_for_the_connection_banner(client):
    answer = client.get("/health")
    assert (answer.status_code, answer.data) == (200, b"OK")


def test_routes_resolve_paths_to_pages_with_typed_parameters():
    table = routes()
    assert resolve("/run/300001/EMC", table) == (run_page, {"run": 300001, "subsystem": "EMC"})
    assert resolve("/run/300001/EMC/", table)[1] == {"run": 300001, "subsystem": "EMC"}
    assert resolve("/run/x/EMC", table) is None
    assert resolve("/", table)[0].__name__ == "dashboard.pages.runs"


def test_a_view_query_round_trips_through_the_url():
    query = ViewQuery(
        group="FastOR",
        hist="TPCQA/h x",
        min="2",
        max="4.5",
        mode="reset",
        scale=False,
        threshold="0.001",
        logx=True,
        logz=False,
        plugin_options=(("outlier_n_sigma", "3"),),
    )
    search = query.to_search()
    assert search.startswith("?group=FastOR&hist=TPCQA%2Fh+x&min=2&max=4.5&mode=reset&scale=0")
    assert parse_query(query_dict(search)) == query
    assert ViewQuery().to_search() == ""
    nonsense = parse_query({"nonsense": "1"})
    assert nonsense == ViewQuery()
    assert [error.field for error in nonsense.not_applied] == ["nonsense"]
    # Another histogram forgets the log choices (the experts' defaults apply again), keeps the rest.
    other = query.with_histogram("Other EMC", "EMCTRQA_histEvents")
    assert (other.logs, other.threshold, other.min) == ((None, None, None), "0.001", "2")
    assert query.option_values() == {
        "scale_by_events": False,
        "hot_channel_threshold": "0.001",
        "outlier_n_sigma": "3",
    }
    assert ProcessingOptions.from_mapping(query.option_values()).hot_channel_threshold == 0.001


def test_runs_are_paged_fifty_at_a_time_and_the_jump_box_finds_a_run():
    start = datetime(2026, 12, 1, tzinfo=UTC)
    summaries = [
        RunSummary(run, start, start, "B", "pp", False, ("TPC", "EMC"), ("TPC", "EMC"))
        for run in range(1120, 1000, -1)
    ]
    assert RUNS_PER_PAGE == 50 and page_count(120) == 3 and page_count(0) == 1
    assert [s.run for s in runs_on_page(summaries, 2)][:2] == [1070, 1069]
    assert len(runs_on_page(summaries, 3)) == 20
    assert runs_on_page(summaries, 99) == runs_on_page(summaries, 3)  # clamped
    assert jump_target(" 1010 ", summaries, ("EMC", "TPC", "HLT")) == "/run/1010/EMC"  # settings order
    with pytest.raises(ValueError, match="Run 999 has no data \\(newest: 1120\\)"):
        jump_target("999", summaries, ("EMC",))
    with pytest.raises(ValueError, match="not a run number"):
        jump_target("abc", summaries, ("EMC",))


def test_file_names_are_safe_whatever_the_histogram_name():
    assert (
        safe_file_name("run5000", "TPC", "TPCQA/h dca vs phi", "min1-2.5")
        == "run5000_TPC_TPCQA-h-dca-vs-phi_min1-2.5"
    )
    assert safe_file_name("///") == "overwatch"


def test_download_root_and_parquet_hold_the_histograms_on_screen(client, emc_store, tmp_path):
    query = f"?group=FastOR&hist={FASTOR_L0}&min=2&max=4&threshold=0.2"
    reference = ProcessingService(emc_store, tmp_path / "reference", ("EMC",))
    expected = reference.view(RUN, "EMC", Window(2, 4), ProcessingOptions(hot_channel_threshold=0.2))
    expected_values = expected.histogram(FASTOR_L0).histogram.values()  # per event, as plotted

    root = client.get(f"/download/{RUN}/EMC.root{query}")
    assert root.status_code == 200
    disposition = root.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="run{RUN}_EMC_EMCTRQA_histFastORL0_min2-4.root"'
    path = tmp_path / "view.root"
    path.write_bytes(root.data)
    with uproot.open(path) as root_file:
        np.testing.assert_allclose(root_file[FASTOR_L0].values(), expected_values, rtol=1e-12)

    parquet = client.get(f"/download/{RUN}/EMC.parquet{query}")
    assert parquet.status_code == 200 and parquet.headers["Content-Disposition"].endswith('min2-4.parquet"')
    table = pd.read_parquet(io.BytesIO(parquet.data))
    row = table.set_index("name").loc[FASTOR_L0]
    values = np.asarray(row["values"]).reshape(np.asarray(row["nbins"]) + 2)[1:-1]
    np.testing.assert_allclose(values, expected_values, rtol=1e-12)
    assert (int(row["run"]), row["subsystem"]) == (RUN, "EMC")
    # The file says what it holds: the slice asked for and returned, with its snapshots, the mode, the
    # options and that the values are per event (the data API's own footer, one writer for both).
    footer = json.loads(pq.read_schema(io.BytesIO(parquet.data)).metadata[b"overwatch_ng.view"])
    assert footer["window"]["requested"] == {"min": 2.0, "max": 4.0}
    returned = expected.plan.returned
    assert footer["window"]["returned"] == {"min": returned.min_minutes, "max": returned.max_minutes}
    assert footer["window"]["snapshots"] == list(expected.plan.used_snapshot_ids)
    metadata = pq.read_schema(io.BytesIO(parquet.data)).metadata
    assert footer["window"]["mode"] == "cumulative" and not meta_from_footer(metadata).merger_reset
    assert footer["parameters"] == {"min": "2", "max": "4", "threshold": "0.2"}
    assert footer["options"]["scale_by_events"] and footer["options"]["hot_channel_threshold"] == 0.2
    assert footer["n_events"] == expected.n_events
    (described,) = footer["histograms"]
    assert described["name"] == FASTOR_L0 and described["scaled_by_events"]
    assert [c["check"] for c in described["checks"]] == [
        c.check for c in expected.histogram(FASTOR_L0).checks
    ]
    assert row["snapshot_id"] == expected.plan.used_snapshot_ids[-1]
    # min alone is min..end of run, as on the data API (not the full run).
    tail = client.get(f"/download/{RUN}/EMC.parquet?group=FastOR&hist={FASTOR_L0}&min=2")
    assert tail.status_code == 200
    tail_footer = json.loads(pq.read_schema(io.BytesIO(tail.data)).metadata[b"overwatch_ng.view"])
    length = reference.run_info(RUN, "EMC").length_minutes
    assert tail_footer["window"]["requested"] == {"min": 2.0, "max": length}
    assert tail_footer["parameters"] == {"min": "2", "max": number_text(length)}
    # Reset mode is recorded as such.
    reset = client.get(f"/download/{RUN}/EMC.parquet{query}&mode=reset")
    reset_footer = json.loads(pq.read_schema(io.BytesIO(reset.data)).metadata[b"overwatch_ng.view"])
    assert reset_footer["window"]["mode"] == "reset" and reset_footer["parameters"]["mode"] == "reset"
    assert meta_from_footer(pq.read_schema(io.BytesIO(reset.data)).metadata).merger_reset


def test_bad_downloads_are_named_never_served(client):
    bad = client.get(f"/download/{RUN}/EMC.root?threshold=-1")
    assert bad.status_code == 400 and b"Hot-channel threshold (threshold): must be > 0" in bad.data
    # Options TPC does not have are refused by name, as the data API does (not a file without them).
    foreign = client.get(f"/download/{RUN}/TPC.parquet?threshold=0.5&outlier_n_sigma=3")
    assert foreign.status_code == 400
    assert foreign.get_data(as_text=True) == (
        "Hot-channel threshold (threshold): TPC has no such option; outlier_n_sigma: TPC has no such option"
    )
    # Every parameter read as the data API reads it: a bad value, a key given twice, a window the run
    # does not have (a min past its end) are 400s naming the parameter, not the full run served.
    for asked, said in [
        ("min=abc", "Slice min (min): must be a number of minutes, got 'abc'"),
        ("scale=7", "Scale by number of events (scale): must be true or false, got '7'"),
        ("min=1&min=2", "Slice min (min): given 2 times: give it once"),
        ("min=11", "Slice min (min): must be <= the run length ("),
    ]:
        answer = client.get(f"/download/{RUN}/EMC.parquet?{asked}")
        assert answer.status_code == 400 and answer.get_data(as_text=True).startswith(said), asked
    unknown = client.get(f"/download/{RUN}/EMC.parquet?group=Nope")
    assert unknown.status_code == 404 and "Group (group): no group 'Nope'" in unknown.get_data(as_text=True)
    assert client.get(f"/download/{RUN}/XYZ.root").status_code == 404
    assert client.get("/download/1/EMC.parquet").status_code == 404
    assert client.get(f"/download/{RUN}/EMC.csv").status_code == 404


def test_the_live_badge_says_loading_until_a_view_tells_whether_the_run_is_ongoing():
    live_state_text = run_page.live_state_text
    assert live_state_text(False, False, None) == ("◌ Loading", "loading")
    assert live_state_text(False, False, True) == ("● Live", "live")
    assert live_state_text(False, False, False) == ("○ Run ended", "ended")
    # What the user chose wins over what the data say.
    assert live_state_text(True, False, None)[1] == "paused"
    assert live_state_text(False, True, True)[1] == "paused"
    # Held back by assets/live.js: still live, and it says why nothing moves.
    assert live_state_text(False, False, True, None, "typing") == ("● Live · held while you type", "held")
    assert live_state_text(False, False, True, None, "menu open")[0] == "● Live · held while a menu is open"
    assert live_state_text(False, False, False, None, "typing") == ("○ Run ended", "ended")
    assert live_state_text(True, False, True, None, "typing")[1] == "paused"


def test_the_way_out_of_a_pause_says_where_it_goes():
    back_button = run_page.back_button
    assert back_button("paused", True, True) == "Back to live"  # a slice of a live run
    assert back_button("paused", True, False) == "Full run"  # an ended run: nothing is live
    assert back_button("paused", False, False) is None  # paused an ended run: Resume does it
    assert back_button("paused", False, None) == "Back to live"
    assert back_button("live", False, True) is None


def test_each_subsystem_offers_the_options_its_plug_in_has():
    emc, tpc = subsystem_options("EMC"), subsystem_options("TPC")
    assert emc.scale and emc.threshold and sorted(emc.plugin) == ["outlier_n_sigma"]
    assert emc.names() == {"scale_by_events", "hot_channel_threshold", "outlier_n_sigma"}
    # TPC and HLT scale nothing by events and run no check a threshold acts on.
    assert not tpc.scale and not tpc.threshold and not tpc.plugin
    assert not subsystem_options("HLT").names()
    link = {"group": "g", "scale": "0", "threshold": "0.5", "outlier_n_sigma": "3"}
    linked = parse_query(link, "EMC")
    assert (linked.scale, linked.threshold, linked.plugin_options) == (
        False,
        "0.5",
        (("outlier_n_sigma", "3"),),
    )
    assert linked.not_applied == ()
    kept = parse_query(link, "TPC")
    assert kept == ViewQuery(group="g")
    assert [(error.field, str(error)) for error in kept.not_applied] == [
        ("scale", "scale: TPC has no such option"),
        ("threshold", "threshold: TPC has no such option"),
        ("outlier_n_sigma", "outlier_n_sigma: TPC has no such option"),
    ]


def test_a_page_opened_again_reuses_the_figure_drawn_for_it(emc_store, tmp_path):
    """The layout's first view and render share this worker's drawn views: a second visitor of the same
    view costs no figure building (under 50 users it was the layout's 13 ms -> 320 ms median)."""
    settings = Settings(data_dir=emc_store.data_dir, cache_dir=tmp_path / "cache")
    service = ProcessingService.from_settings(settings)
    context = PageContext(settings, service)
    search = f"?group=FastOR&hist={FASTOR_L0}"
    first = run_page.first_view(context, RUN, "EMC", search)
    again = run_page.first_view(context, RUN, "EMC", search)
    assert first["figure"]["data"] and again["figure"] is first["figure"]
    # Another service (another app in this process) has views of its own.
    other = PageContext(settings, ProcessingService.from_settings(settings))
    assert run_page.first_view(other, RUN, "EMC", search)["figure"] is not first["figure"]
