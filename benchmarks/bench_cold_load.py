"""Cold load of two pages, from opening the URL in a new browser tab to what matters drawn, served by
the production server:

- the run page whose first group is a 20-histogram grid (EMC "FEE vs TRU"): all 20 maps drawn;
- the control room: its tiles shown and the rotating plot's first group drawn.

    .venv/bin/python -m benchmarks.bench_cold_load [--repeats 5] [--pages run,control-room]
        [--bundles partial,dcc]

Cold: a new server process with empty caches for each measurement (the first person to open the page
after a restart; a new port, so the browser's caches are cold too). Baselines, same run: the same URL
opened again on that server (warm caches), and pages on dcc's full plotly.js bundle instead of the
cartesian partial bundle (`--bundles partial,dcc`; dashboard.plotly_bundle). Besides
the wall-clock seconds (inflated on a loaded machine), it prints what does not depend on the load: the
server's CPU seconds per load (all workers), the page's CPU seconds in the browser (its renderer
process; the main thread's busy time, and layout + style of it), the Plotly draws of the main graph,
the callback requests the page made and the bytes it received, and the request chain of the last cold load.
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
    install_plotly_call_log,
    install_request_log,
    plotly_calls,
    print_request_log,
    renderer_metrics,
    request_log,
)
from benchmarks.pages_setup import chrome, dashboard_process, emc_run
from dashboard.plotly_bundle import bundle_file, installed_bundle, plotlyjs_version
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
# page: (path, drawn when this is true, the Dash id of its main graph)
PAGES = {
    "run": (f"/run/{RUN}/EMC", RUN_GRID_DRAWN_JS, "run-graph"),
    "control-room": ("/control-room", CONTROL_ROOM_DRAWN_JS, "control-room-graph"),
}


@dataclass
class Loads:
    """What the loads of one page (cold or warm) measured."""

    seconds: list[float] = field(default_factory=list)
    server_cpu_s: list[float] = field(default_factory=list)
    browser_cpu_s: list[float] = field(default_factory=list)
    busy_s: list[float] = field(default_factory=list)
    layout_s: list[float] = field(default_factory=list)
    draws: list[int] = field(default_factory=list)
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


def measure(driver, url: str, drawn_js: str, graph: str, cpu: ServerCpu, loads: Loads) -> None:
    before = cpu.seconds()
    loads.seconds.append(load_seconds(driver, url, drawn_js))
    loads.server_cpu_s.append(cpu.seconds() - before)
    # The page's renderer process starts with the navigation (a new origin: a new server port).
    metrics = renderer_metrics(driver)
    loads.browser_cpu_s.append(metrics["ProcessTime"])
    loads.busy_s.append(metrics["TaskDuration"])
    loads.layout_s.append(metrics["LayoutDuration"] + metrics["RecalcStyleDuration"])
    loads.draws.append(sum(1 for call in plotly_calls(driver, graph) if call.call in ("react", "newPlot")))
    requests = request_log(driver)
    loads.requests.append(len(requests))
    loads.received_bytes.append(sum(r.received_bytes for r in requests))


# (label, dashboard settings): the partial plotly.js bundle (what pages use when it is installed), and
# dcc's full bundle as the baseline measured in the same run.
BUNDLES = {
    "partial": {},
    "dcc": {"dash_plotly_partial_bundle": "0"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated: " + ", ".join(PAGES))
    parser.add_argument("--bundles", default=",".join(BUNDLES), help="comma-separated: " + ", ".join(BUNDLES))
    args = parser.parse_args()
    pages = [page for page in args.pages.split(",") if page]
    bundles = [bundle for bundle in args.bundles.split(",") if bundle]
    version = plotlyjs_version()
    if "partial" in bundles and installed_bundle(bundle_file(version), version) is None:
        raise SystemExit("the partial bundle is not installed: python -m dashboard.plotly_bundle fetch")
    cold = {(page, bundle): Loads() for page in pages for bundle in bundles}
    warm = {(page, bundle): Loads() for page in pages for bundle in bundles}
    last_chain = {}
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as folder:
        data = Path(folder) / "data"
        emc_run(data)
        driver = chrome()
        install_request_log(driver)
        install_plotly_call_log(driver)
        try:
            for attempt in range(args.repeats):
                for page in pages:
                    path, drawn_js, graph = PAGES[page]
                    for bundle in bundles:
                        cache = Path(folder) / f"cache-{page}-{bundle}-{attempt}"
                        with dashboard_process(data, cache, **BUNDLES[bundle]) as url:
                            cpu = ServerCpu.listening_on(url)
                            cpu.wait_idle()  # every worker booted: its CPU is not the page's
                            measure(driver, url + path, drawn_js, graph, cpu, cold[page, bundle])
                            last_chain[page, bundle] = request_log(driver)
                            measure(driver, url + path, drawn_js, graph, cpu, warm[page, bundle])
        finally:
            driver.quit()
    for page, bundle in last_chain:
        print(
            f"\ncallback requests of the last cold load of {PAGES[page][0]}, {bundle} bundle"
            " (ms since navigation start):"
        )
        print_request_log(last_chain[page, bundle])
    print(
        "\nmedians (p95 of the load time too); browser: the page's renderer process, CPU s (ProcessTime),"
        " its main thread busy s (TaskDuration) and of that layout + style s; draws: Plotly draws of the main"
        " graph"
    )
    print(
        f"{'page':<14}{'bundle':<9}{'load':<7}{'n':>3}{'load s':>8}{'p95 s':>7}{'browser CPU s':>15}"
        f"{'busy s':>8}{'layout s':>10}{'draws':>7}{'server CPU s':>14}{'requests':>10}{'received B':>12}"
    )
    for page in pages:
        for bundle in bundles:
            for label, loads in (("cold", cold[page, bundle]), ("warm", warm[page, bundle])):
                print(
                    f"{page:<14}{bundle:<9}{label:<7}{len(loads.seconds):>3}{np.median(loads.seconds):>8.2f}"
                    f"{np.percentile(loads.seconds, 95):>7.2f}{np.median(loads.browser_cpu_s):>15.2f}"
                    f"{np.median(loads.busy_s):>8.2f}{np.median(loads.layout_s):>10.2f}"
                    f"{np.median(loads.draws):>7.0f}{np.median(loads.server_cpu_s):>14.2f}"
                    f"{np.median(loads.requests):>10.0f}{np.median(loads.received_bytes):>12,.0f}"
                )
    for page in pages:
        for bundle in bundles:
            loads = cold[page, bundle]
            p95 = float(np.percentile(loads.seconds, 95))
            ratio = float(np.median(loads.seconds) / np.median(warm[page, bundle].seconds))
            verdict = "MET" if p95 < TARGET_S else "NOT MET"
            print(
                f"{page}, {bundle} bundle: cold / warm {ratio:.2f}x; target cold load < {TARGET_S:g} s (p95):"
                f" {p95:.2f} s -> {verdict}"
            )
        if {"partial", "dcc"} <= set(bundles):
            ours, base = cold[page, "partial"], cold[page, "dcc"]
            load, base_load = np.median(ours.seconds), np.median(base.seconds)
            cpu, base_cpu = np.median(ours.browser_cpu_s), np.median(base.browser_cpu_s)
            print(
                f"{page}: cold, partial / dcc bundle: load median {load:.2f} / {base_load:.2f} s"
                f" ({load / base_load:.2f}x), browser CPU {cpu:.2f} / {base_cpu:.2f} s"
                f" ({cpu / base_cpu:.2f}x)"
            )


if __name__ == "__main__":
    main()
