"""Soak test of the control room: does a browser left on /control-room, or the server behind it, grow?

    python -m benchmarks.soak_control_room [--minutes 30] [--rotate 2] [--sample-s 30] [--warmup-s 60]
                                           [--malloc-arena-max N] [--run-length-s 180] [--run-gap-s 15]
                                           [--probe-dir DIR [--probe-every-s 300] [--probe-frames 12]]

Starts the main job (`app.py`: emulator, receivers, production dashboard server) on a fresh data
folder, free loopback ports and short runs (so run changes happen during the soak), opens
`/control-room?rotate=N` in headless Chromium at 1920x1080, and every `--sample-s` records:
- the page's JS heap after a forced garbage collection (`performance.memory.usedJSHeapSize`,
  Chromium started with `--enable-precise-memory-info --js-flags=--expose-gc`), and its DOM node count;
- the resident memory (RSS) of the dashboard server: `app.py` and its gunicorn workers (the
  supervisor's emulator and receivers are not counted);
- how many distinct groups the plot has shown, and browser console errors.
It prints the samples and, over the samples after `--warmup-s`, the first and last values and the
least-squares slope in MB per hour, and writes them all to artifacts/soak_control_room.json. The
target is no growth: a slope that is noise around zero over a 30-minute run. Nothing here asserts; a
person reads the figures (they depend on the machine and its load).

The server caps glibc's malloc arenas at 2 (dashboard.server.limit_malloc_arenas); `--malloc-arena-max 0`
runs it with glibc's default (8 per core) instead, as the baseline of that cap: run both at once, or
one after the other on an idle machine, and compare the slopes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from pipeline.store import SUFFIX
from tests.ports import free_tcp_port

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts"
MB = 1024 * 1024


def start_main_job(
    data_dir: Path,
    port: int,
    malloc_arena_max: int | None = None,
    run_length_s: float = 180.0,
    run_gap_s: float = 15.0,
    probe_dir: Path | None = None,
    probe_every_s: float = 300.0,
    probe_frames: int = 12,
) -> subprocess.Popen:
    env = {
        **os.environ,
        "OVERWATCH_CACHE_DIR": str(data_dir.parent / "cache"),
        "OVERWATCH_EMULATOR_ENDPOINT": f"tcp://127.0.0.1:{free_tcp_port()}",
        "OVERWATCH_EMULATOR_STEP_S": "1",
        "OVERWATCH_EMULATOR_RUN_LENGTH_S": f"{run_length_s:g}",
        "OVERWATCH_EMULATOR_RUN_GAP_S": f"{run_gap_s:g}",
        "OVERWATCH_RECEIVER_PERIOD_S": "5",
        "OVERWATCH_DASH_WORKERS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if malloc_arena_max is not None:
        # glibc reads it at start-up (0: its default); the server then leaves the arenas alone.
        env["MALLOC_ARENA_MAX"] = str(malloc_arena_max)
    log = open(data_dir.parent / "main_job.log", "w")  # noqa: SIM115 (lives as long as the job)
    command = [sys.executable, str(REPO / "app.py"), "--data-dir", str(data_dir), "--port", str(port)]
    if probe_dir is not None:
        # The same job, its dashboard workers tracing allocations and logging their caches.
        probe = [
            "-m",
            "benchmarks.memory_probe",
            "--probe-dir",
            str(probe_dir),
            "--every-s",
            f"{probe_every_s:g}",
            "--frames",
            str(probe_frames),
        ]
        command = [sys.executable, *probe, *command[1:]]
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def server_rss_bytes(main_pid: int) -> int:
    """RSS of the main job and its descendants, without the supervisor's process tree."""
    try:
        main = psutil.Process(main_pid)
        processes = [main, *main.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    excluded: set[int] = set()
    for process in processes:
        try:
            if "--supervisor-only" in process.cmdline():
                excluded |= {process.pid, *(child.pid for child in process.children(recursive=True))}
        except psutil.Error:
            continue
    total = 0
    for process in processes:
        if process.pid in excluded:
            continue
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


def browser() -> webdriver.Chrome:
    options = Options()
    chromium = os.environ.get("DASH_TEST_CHROMEPATH") or shutil.which("chromium")
    if chromium:
        options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1920,1080",
        "--enable-precise-memory-info",
        "--js-flags=--expose-gc",
        "--disable-background-networking",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    driver_path = shutil.which("chromedriver")
    return webdriver.Chrome(options=options, service=Service(driver_path) if driver_path else None)


def wait_until_served(url: str, deadline_s: float, job: subprocess.Popen) -> None:
    import urllib.request

    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if job.poll() is not None:
            raise SystemExit(f"the main job exited with code {job.returncode}: see its main_job.log")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the dashboard did not answer {url} within {deadline_s:g} s")


def slope_per_hour(times_s: list[float], values: list[float]) -> float:
    """Least-squares slope of values over time, per hour (0 with fewer than two samples)."""
    n = len(times_s)
    if n < 2:
        return 0.0
    mean_t, mean_v = sum(times_s) / n, sum(values) / n
    spread = sum((t - mean_t) ** 2 for t in times_s)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in zip(times_s, values, strict=True)) / spread * 3600


SAMPLE_JS = """
if (window.gc) { window.gc(); }
const plot = document.querySelector('#control-room-graph .js-plotly-plot');
return {
  heap: performance.memory ? performance.memory.usedJSHeapSize : null,
  nodes: document.getElementsByTagName('*').length,
  group: plot && plot.layout && plot.layout.meta ? plot.layout.meta.group : null,
};
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rotate", type=float, default=2.0, help="seconds per group (?rotate=)")
    parser.add_argument("--sample-s", type=float, default=30.0)
    parser.add_argument("--warmup-s", type=float, default=60.0, help="samples before this are not fitted")
    parser.add_argument(
        "--malloc-arena-max",
        type=int,
        default=None,
        help="MALLOC_ARENA_MAX for the server instead of its own cap of 2 (0: glibc's default)",
    )
    parser.add_argument("--run-length-s", type=float, default=180.0, help="emulator run length")
    parser.add_argument("--run-gap-s", type=float, default=15.0, help="emulator gap between runs")
    parser.add_argument(
        "--probe-dir",
        type=Path,
        default=None,
        help="instrument the dashboard workers (benchmarks.memory_probe): tracemalloc snapshots and "
        "cache sizes written here every --probe-every-s; RSS then includes tracemalloc's own memory",
    )
    parser.add_argument("--probe-every-s", type=float, default=300.0)
    parser.add_argument("--probe-frames", type=int, default=12, help="tracemalloc's depth; 0: none")
    parser.add_argument("--output", type=Path, default=ARTIFACTS / "soak_control_room.json")
    args = parser.parse_args(argv)
    # Stopped with SIGTERM, still stop the main job and the browser (the `finally` below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    workdir = Path(tempfile.mkdtemp(prefix="overwatch-soak-"))
    data_dir = workdir / "data"
    data_dir.mkdir()
    port = free_tcp_port()
    job = start_main_job(
        data_dir,
        port,
        args.malloc_arena_max,
        args.run_length_s,
        args.run_gap_s,
        args.probe_dir.resolve() if args.probe_dir else None,
        args.probe_every_s,
        args.probe_frames,
    )
    driver = None
    samples: list[dict] = []
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_served(base + "/health", 120, job)
        driver = browser()
        driver.get(f"{base}/control-room?rotate={args.rotate:g}")
        started = time.monotonic()
        groups_seen: set[str] = set()
        errors: list[str] = []
        print(f"{'t (s)':>7} {'JS heap (MB)':>13} {'DOM nodes':>10} {'server RSS (MB)':>16} {'groups':>7}")
        while True:
            elapsed = time.monotonic() - started
            page = driver.execute_script(SAMPLE_JS)
            if page["group"]:
                groups_seen.add(page["group"])
            errors += [entry["message"] for entry in driver.get_log("browser")]
            sample = {
                "t_s": round(elapsed, 1),
                "js_heap_mb": None if page["heap"] is None else page["heap"] / MB,
                "dom_nodes": page["nodes"],
                "server_rss_mb": server_rss_bytes(job.pid) / MB,
                "groups_seen": len(groups_seen),
            }
            samples.append(sample)
            heap = "-" if sample["js_heap_mb"] is None else f"{sample['js_heap_mb']:.2f}"
            print(
                f"{sample['t_s']:>7.0f} {heap:>13} {sample['dom_nodes']:>10} "
                f"{sample['server_rss_mb']:>16.1f} {sample['groups_seen']:>7}",
                flush=True,
            )
            if elapsed >= args.minutes * 60:
                break
            time.sleep(max(0.0, args.sample_s - (time.monotonic() - started - elapsed)))
    finally:
        if driver is not None:
            driver.quit()
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGTERM)
            try:
                job.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(job.pid, signal.SIGKILL)
        snapshots_stored = sum(1 for path in (data_dir / "snapshots").rglob(f"*{SUFFIX}") if path.is_file())
        if job.returncode not in (None, 0, -signal.SIGTERM):
            print((workdir / "main_job.log").read_text()[-3000:], file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)

    fitted = [s for s in samples if s["t_s"] >= args.warmup_s] or samples
    times = [s["t_s"] for s in fitted]
    summary = {
        "minutes": args.minutes,
        "rotate_s": args.rotate,
        "malloc_arena_max": "server's cap (2)" if args.malloc_arena_max is None else args.malloc_arena_max,
        "samples": samples,
        "console_errors": errors,
        "snapshots_stored": snapshots_stored,
    }
    for key in ("js_heap_mb", "server_rss_mb", "dom_nodes"):
        values = [s[key] for s in fitted if s[key] is not None]
        if values:
            summary[key] = {
                "first": values[0],
                "last": values[-1],
                "slope_per_hour": slope_per_hour(times[: len(values)], values),
            }
            print(
                f"{key}: first {values[0]:.2f}, last {values[-1]:.2f}, "
                f"slope {summary[key]['slope_per_hour']:+.2f} per hour (after {args.warmup_s:g} s warm-up)"
            )
    print(
        f"groups shown: {len(groups_seen)}; browser console errors: {len(errors)}; "
        f"snapshots stored: {snapshots_stored}"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
