"""The whole chain in a real browser: the built-in merger emulator and one receiver per subsystem (real
processes, ZeroMQ over 127.0.0.1), the store they write, and the dashboard a shift person opens."""

from __future__ import annotations

import re

import pytest
from dash.testing.wait import until

from app import Supervisor, child_commands
from dashboard.app import create_app
from pipeline.settings import Settings
from pipeline.status import read_all_status
from tests.dashboard.browser import graph, open_page, screenshot, select
from tests.dashboard.emulated_run import FASTOR_L0_LABEL, FASTOR_L0_PLOT_TITLE
from tests.ports import free_tcp_port

pytestmark = [pytest.mark.browser, pytest.mark.network]
FIRST_RUN = 310000


@pytest.fixture
def live_chain(tmp_path, monkeypatch):
    """Emulator + receivers as the main job starts them, on a fast cadence (a run lasts 2 minutes)."""
    settings = Settings(
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
        emulator_endpoint=f"tcp://127.0.0.1:{free_tcp_port()}",
        emulator_step_s=0.5,
        emulator_run_length_s=120.0,
        emulator_first_run=FIRST_RUN,
        receiver_period_s=1.0,
        status_refresh_ms=500,
    )
    # The children read their cadence from the environment, as under the main job.
    for name in ("emulator_step_s", "emulator_run_length_s", "emulator_first_run"):
        monkeypatch.setenv(f"OVERWATCH_{name.upper()}", str(getattr(settings, name)))
    supervisor = Supervisor(child_commands(settings))
    supervisor.start()
    yield settings
    supervisor.stop()


def test_emulator_run_is_listed_drawn_and_follows_live_data(dash_duo, live_chain):
    dash_duo.start_server(create_app(live_chain))
    open_page(dash_duo, "/runs")
    dash_duo.wait_for_contains_text(f"#runs-table-{FIRST_RUN}", "ongoing", timeout=30)
    dash_duo.find_element(f"#runs-table-{FIRST_RUN} .run-number a").click()
    dash_duo.wait_for_text_to_equal("#run-title", f"Run {FIRST_RUN} · EMC")

    select(dash_duo, "#run-group", "FastOR")
    select(dash_duo, "#run-histogram", FASTOR_L0_LABEL)
    until(lambda: graph(dash_duo, "layout.title.text") == FASTOR_L0_PLOT_TITLE, timeout=15)
    until(lambda: (graph(dash_duo, "data.length") or 0) >= 1, timeout=10)
    # The emulator's injected hot FastORs are flagged from live data.
    dash_duo.wait_for_contains_text("#run-check-results", "hot FastOR", timeout=15)

    # Live data keep arriving while the page is open: the caption's snapshot count grows.
    first = _snapshots_in_run(dash_duo)
    until(lambda: _snapshots_in_run(dash_duo) >= first + 2, timeout=20)
    stored = {status.subsystem: status.snapshots_stored for status in read_all_status(live_chain.data_dir)}
    assert set(stored) == {"EMC", "TPC", "HLT"} and min(stored.values()) >= 1
    assert dash_duo.find_element("#run-histogram-value").text == FASTOR_L0_LABEL
    screenshot(dash_duo, "live_emulator_fastor.png")
    assert dash_duo.get_logs() == []


def _snapshots_in_run(dash_duo) -> int:
    """The caption's "N snapshots in run" (read by script: the caption is re-rendered on every update)."""
    text = dash_duo.driver.execute_script(
        "const e = document.querySelector('#run-snapshot-caption'); return e ? e.textContent : '';"
    )
    match = re.search(r"(\d+) snapshots in run", text)
    return int(match.group(1)) if match else 0
