"""Cold load of two pages, from opening the URL in a new browser tab to what matters drawn, served by
the production server:

- the run page whose first group is a 20-histogram grid (EMC "FEE vs TRU"): all 20 maps drawn;
- the control room: its tiles shown and the rotating plot's first group drawn.

    .venv/bin/python -m benchmarks.bench_cold_load [--repeats 5] [--pages run,control-room]

Cold: a new server process with empty caches for each measurement (the first person to open the page
after a restart). Baseline, same run: the same URL opened again on that server (warm caches). Besides
the wall-clock seconds (inflated on a loaded machine), it prints what does not depend on the load: the
server's CPU seconds per load (all workers), the page's CPU seconds in the browser, the callback
requests the page made and the bytes it received, and the request chain of the last cold load.
Target: cold < 1.5 s for each page.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.browser_trace import (
    ServerCpu,
    install_request_log,
    print_request_log,
    renderer_cpu_seconds,
    request_log,
)
from benchmarks.pages_setup import chrome, dashboard_process, emc_run
from tests.dashboard.emulated_run import RUN

TARGET_S = 1.5
RUN_GRID_DRAWN_JS = """
const graph = document.querySelector('#run-graph .js-plotly-plot');
return !!(graph && graph._fullData && graph._fullData.filter(t => t.type === 'heatmap').length === 20);
"""
CONTROL_ROOM_DRAWN_JS = """
const graph = document.querySelector('#control-room-graph .js-plotly-plot');
const tiles = document.querySelectorAll('#control-room-tiles > *').length;
return !!(tiles && graph && graph._fullLayout && graph._fullLayout.meta && graph._fullLayout.meta.group
          && graph._fullData.filter(t => t.type === 'heatmap').length > 0);
"""
PAGES = {
    "run": (f"/run/{RUN}/EMC", RUN_GRID_DRAWN_JS),
    "control-room": ("/control-room", CONTROL_ROOM_DRAWN_JS),
}


@dataclass
class Loads:
    """What the loads of one page (cold or warm) measured."""

    seconds: list[float] = field(default_factory=list)
    server_cpu_s: list[float] = field(default_factory=list)
    browser_cpu_s: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    received_bytes: list[int] = field(default_factory=list)


def load_seconds(driver, url: str, drawn_js: str, timeout_s: float = 180.0) -> float:
    """Seconds from asking for `url` to the page drawn (navigation start to now, in the browser)."""
    driver.get("about:blank")
    driver.get(url)
    deadline = time.monotonic() + timeout_s
    while not driver.execute_script(drawn_js):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}: not drawn within {timeout_s:g} s")
        time.sleep(0.02)
    return driver.execute_script("return performance.now();") / 1000.0


def measure(driver, url: str, drawn_js: str, cpu: ServerCpu, loads: Loads) -> None:
    before = cpu.seconds()
    loads.seconds.append(load_seconds(driver, url, drawn_js))
    loads.server_cpu_s.append(cpu.seconds() - before)
    # The page's renderer process starts with the navigation (a new origin: a new server port).
    loads.browser_cpu_s.append(renderer_cpu_seconds(driver))
    requests = request_log(driver)
    loads.requests.append(len(requests))
    loads.received_bytes.append(sum(r.received_bytes for r in requests))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated: " + ", ".join(PAGES))
    args = parser.parse_args()
    pages = [page for page in args.pages.split(",") if page]
    cold = {page: Loads() for page in pages}
    warm = {page: Loads() for page in pages}
    last_chain = {}
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as folder:
        data = Path(folder) / "data"
        emc_run(data)
        driver = chrome()
        install_request_log(driver)
        try:
            for attempt in range(args.repeats):
                for page in pages:
                    path, drawn_js = PAGES[page]
                    with dashboard_process(data, Path(folder) / f"cache-{page}-{attempt}") as url:
                        cpu = ServerCpu.listening_on(url)
                        measure(driver, url + path, drawn_js, cpu, cold[page])
                        last_chain[page] = request_log(driver)
                        measure(driver, url + path, drawn_js, cpu, warm[page])
        finally:
            driver.quit()
    for page in pages:
        print(f"\ncallback requests of the last cold load of {PAGES[page][0]} (ms since navigation start):")
        print_request_log(last_chain[page])
    print(
        f"\n{'page':<14}{'load':<34}{'n':>3}{'median s':>10}{'p95 s':>8}{'server CPU s':>14}{'requests':>10}"
        f"{'received B':>12}"
    )
    for page in pages:
        for label, loads in (
            ("cold (new server, empty caches)", cold[page]),
            ("warm (same URL again)", warm[page]),
        ):
            print(
                f"{page:<14}{label:<34}{len(loads.seconds):>3}{np.median(loads.seconds):>10.2f}"
                f"{np.percentile(loads.seconds, 95):>8.2f}{np.median(loads.server_cpu_s):>14.2f}"
                f"{np.median(loads.browser_cpu_s):>15.2f}"
                f"{np.median(loads.requests):>10.0f}{np.median(loads.received_bytes):>12,.0f}"
            )
    for page in pages:
        ratio = float(np.median(cold[page].seconds) / np.median(warm[page].seconds))
        p95 = float(np.percentile(cold[page].seconds, 95))
        verdict = "MET" if p95 < TARGET_S else "NOT MET"
        print(
            f"{page}: cold / warm {ratio:.2f}x; target cold load < {TARGET_S:g} s (p95): {p95:.2f} s"
            f" -> {verdict}"
        )


if __name__ == "__main__":
    main()
