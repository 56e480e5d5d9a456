"""Load test of the production server: simulated users browsing run pages, moving time slices and
changing thresholds, against gunicorn with the configured workers, and against ONE worker as the
baseline in the same run.

    python -m benchmarks.bench_load [--users 50] [--seconds 60] [--max-requests 40000]

Each user is an asyncio client (aiohttp) with its own session: it logs in (4 of 5 as experts, 1 of 5 as a
shifter), then loops: open a run page (the page and its layout callback, which carries the first plot),
move the time slice and change the hot-channel threshold (experts; a shifter picks another group
instead), each followed by the plot callback, as the page does. The callback requests are the bodies
dash-renderer sends (`benchmarks.dash_bodies`), CSRF header included. Think time between actions 0.5-2 s
(locust's `between(0.5, 2)`). Both phases start with a cold cache. Target: zero errors, p95 < 500 ms.
Reports requests/s and latency percentiles per phase, and the machine's load average (it is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from yarl import URL

from benchmarks.dash_bodies import callback_key, update_body
from pipeline.auth.roles import Role
from pipeline.auth.users import UsersFile
from pipeline.detectors import plugin_for
from pipeline.emulator.runs import EmulatorConfig, SyntheticRuns
from pipeline.settings import Settings
from pipeline.store import SnapshotMeta, SnapshotStore
from tests.ports import free_tcp_port

RUN = 5000
SNAPSHOTS = 10  # one a minute: a 10-minute run
PASSWORD = "bench-password-1234"
THINK_S = (0.5, 2.0)
P95_TARGET_MS = 500.0
CLIENT_KEEPALIVE_S = 2.0
THRESHOLDS = ("0.001", "0.01", "0.05", "0.2", "1", "")


def write_run(data_dir: Path) -> None:
    """An emulated EMC run stored as the receiver stores it."""
    start = 1_700_000_000.0
    clock = {"t": start}
    runs = SyntheticRuns(
        ("EMC",), EmulatorConfig(step_s=20.0, first_run=RUN, start_time_utc=start), now=lambda: clock["t"]
    )
    store = SnapshotStore(data_dir)
    for index in range(SNAPSHOTS):
        clock["t"] = start + 50.0 + 60.0 * index
        runs.advance(clock["t"])
        when = datetime.fromtimestamp(clock["t"], UTC)
        store.write_snapshot(SnapshotMeta(RUN, "EMC", when, "B", "pp"), list(runs.snapshot().values()))


@dataclass
class Stats:
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    requests: int = 0

    def add(self, kind: str, ms: float, ok: bool, why: str = "") -> None:
        self.requests += 1
        self.latencies_ms.setdefault(kind, []).append(ms)
        if not ok:
            self.errors[f"{kind}: {why}"] = self.errors.get(f"{kind}: {why}", 0) + 1

    def all_ms(self) -> list[float]:
        return [ms for values in self.latencies_ms.values() for ms in values]


def percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]
    )


class SimulatedUser:
    def __init__(
        self, base: str, name: str, expert: bool, keys: dict, groups: list[str], stats: Stats
    ) -> None:
        self.base, self.name, self.expert, self.keys, self.groups, self.stats = (
            base,
            name,
            expert,
            keys,
            groups,
            stats,
        )
        self.search = ""

    async def request(
        self, session: aiohttp.ClientSession, kind: str, method: str, path: str, **kwargs
    ) -> dict | None:
        started = time.perf_counter()
        try:
            async with session.request(method, self.base + path, **kwargs) as response:
                body = await response.read()
                ok = response.status < 400
                why = f"{response.status} {body[:120].decode(errors='replace')}" if not ok else ""
                self.stats.add(kind, (time.perf_counter() - started) * 1000, ok, why)
                if ok and response.content_type == "application/json" and body:
                    return await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError) as error:
            self.stats.add(kind, (time.perf_counter() - started) * 1000, False, type(error).__name__)
        return None

    def csrf(self, session: aiohttp.ClientSession) -> dict:
        cookie = session.cookie_jar.filter_cookies(URL(self.base)).get("overwatch_csrf")
        return {"X-CSRFToken": cookie.value if cookie else ""}

    async def login(self, session: aiohttp.ClientSession) -> None:
        async with session.get(f"{self.base}/login") as response:
            token = re.search(r"name='csrf_token' value='([^']+)'", await response.text()).group(1)
        form = {"username": self.name, "password": PASSWORD, "csrf_token": token, "next": "/runs"}
        async with session.post(f"{self.base}/login", data=form, allow_redirects=False) as response:
            if response.status != 302:
                raise RuntimeError(f"login of {self.name} failed: HTTP {response.status}")

    async def callback(
        self, session, kind: str, key: str, values: dict, changed: tuple[str, ...]
    ) -> dict | None:
        body = update_body(self.keys["map"], key, values, changed)
        return await self.request(
            session, kind, "POST", "/_dash-update-component", json=body, headers=self.csrf(session)
        )

    async def render(self, session) -> None:
        values = {"run-url.search": self.search, "run-url.pathname": f"/run/{RUN}/EMC"}
        await self.callback(session, "plot callback", self.keys["render"], values, ("run-url.search",))

    async def navigate(self, session, kind: str, changed: str, **values) -> None:
        page = {
            "run-url.search": self.search,
            "run-url.pathname": f"/run/{RUN}/EMC",
            "run-merger-mode.value": "cumulative",
            "run-opt-scale.value": True,
            "run-slice-range.max": SNAPSHOTS,
            **values,
        }
        answer = await self.callback(session, kind, self.keys["navigate"], page, (changed,))
        search = ((answer or {}).get("response") or {}).get("run-url", {}).get("search")
        if isinstance(search, str):
            self.search = search

    async def open_run_page(self, session) -> None:
        group = random.choice(self.groups)
        self.search = "?" + urlencode({"group": group})
        path = f"/run/{RUN}/EMC{self.search}"
        await self.request(session, "run page (HTML)", "GET", path)
        values = {"shell-url.pathname": f"/run/{RUN}/EMC", "shell-url.search": self.search}
        # The layout carries the first view (`dashboard.pages.run.first_view`): the page asks for no plot
        # callback on load (render has no initial call).
        await self.callback(
            session, "page layout callback", self.keys["router"], values, ("shell-url.pathname",)
        )

    def session(self) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(total=30)
        # Idle connections are dropped well before gunicorn closes them (`keepalive` 5 s in
        # dashboard/server.py): reusing one the server is closing fails as a ServerDisconnectedError
        # that a browser would retry, not an error of the server.
        connector = aiohttp.TCPConnector(keepalive_timeout=CLIENT_KEEPALIVE_S)
        return aiohttp.ClientSession(
            timeout=timeout, connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True)
        )

    async def run(self, session: aiohttp.ClientSession, deadline: float, max_requests: int) -> None:
        await self.open_run_page(session)  # where a person lands: it also hands over the CSRF token
        while time.monotonic() < deadline and self.stats.requests < max_requests:
            action = random.random()
            if action < 0.4:
                await self.open_run_page(session)
            elif not self.expert:
                group = random.choice(self.groups)
                await self.navigate(
                    session, "navigate callback", "run-group.value", **{"run-group.value": group}
                )
                await self.render(session)
            elif action < 0.7:
                low = random.randint(0, SNAPSHOTS - 2)
                window = [low, random.randint(low + 1, SNAPSHOTS)]
                await self.navigate(
                    session, "slice callback", "run-slice-range.value", **{"run-slice-range.value": window}
                )
                await self.render(session)
            else:
                threshold = random.choice(THRESHOLDS)
                await self.navigate(
                    session,
                    "threshold callback",
                    "run-opt-threshold.value",
                    **{"run-opt-threshold.value": threshold},
                )
                await self.render(session)
            await asyncio.sleep(random.uniform(*THINK_S))


def server_log_path(phase: str) -> Path:
    """The server's log of one phase, kept after the run (the data folder is not) to explain errors."""
    return Path(tempfile.gettempdir()) / f"overwatch-bench-load-{os.getpid()}-{phase}.log"


def server_log_summary(path: Path) -> str:
    """What in the server's log explains client errors: workers the arbiter killed, tracebacks."""
    text = path.read_text(errors="replace") if path.is_file() else ""
    timeouts, tracebacks = text.count("WORKER TIMEOUT"), text.count("Traceback")
    return f"server log {path}: {timeouts} worker timeouts, {tracebacks} tracebacks"


def start_server(base_dir: Path, workers: int, threads: int, phase: str) -> tuple[subprocess.Popen, str]:
    port = free_tcp_port()
    env = {
        **os.environ,
        "OVERWATCH_DATA_DIR": str(base_dir / "data"),
        "OVERWATCH_CACHE_DIR": str(base_dir / f"cache-{phase}"),  # every phase starts cold
        "OVERWATCH_USERS_FILE": str(base_dir / "users.toml"),
        "OVERWATCH_SUBSYSTEMS": "EMC",
        "OVERWATCH_DASH_HOST": "127.0.0.1",
        "OVERWATCH_DASH_PORT": str(port),
        "OVERWATCH_DASH_WORKERS": str(workers),
        "OVERWATCH_DASH_THREADS": str(threads),
    }
    with open(server_log_path(phase), "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "dashboard.app"], env=env, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            import urllib.request

            with urllib.request.urlopen(base + "/health", timeout=5) as answer:
                if answer.status == 200:
                    return server, base
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError("the server did not start within 120 s")


async def load(
    base: str, users: int, seconds: float, max_requests: int, keys: dict, groups: list[str]
) -> tuple[Stats, float]:
    stats = Stats()
    people = [
        SimulatedUser(base, f"shifter{i}" if i % 5 == 4 else f"expert{i}", i % 5 != 4, keys, groups, stats)
        for i in range(users)
    ]
    sessions = [person.session() for person in people]
    try:
        # Logins first, a few at a time (argon2 costs CPU on purpose, and a shift does not log in all at
        # once): the measured window is the browsing.
        gate = asyncio.Semaphore(4)

        async def log_in(person: SimulatedUser, session: aiohttp.ClientSession) -> None:
            async with gate:
                await person.login(session)

        await asyncio.wait_for(asyncio.gather(*map(log_in, people, sessions)), timeout=300)
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(
            *(
                person.run(session, deadline, max_requests)
                for person, session in zip(people, sessions, strict=True)
            )
        )
        return stats, time.monotonic() - started
    finally:
        await asyncio.gather(*(session.close() for session in sessions))


def callback_keys(settings: Settings) -> dict:
    from dashboard.app import create_app

    callback_map = create_app(settings).callback_map
    return {
        "map": callback_map,
        "router": callback_key(callback_map, "shell-page.children"),
        "navigate": callback_key(callback_map, "run-url.search", "run-opt-threshold.value"),
        "render": callback_key(callback_map, "run-graph.figure", "run-graph.config"),
    }


def report(phase: str, stats: Stats, elapsed: float) -> dict:
    every = stats.all_ms()
    summary = {
        "phase": phase,
        "requests": stats.requests,
        "rps": stats.requests / elapsed,
        "p50": percentile(every, 50),
        "p95": percentile(every, 95),
        "p99": percentile(every, 99),
        "errors": sum(stats.errors.values()),
    }
    print(
        f"\n== {phase}: {stats.requests} requests in {elapsed:.1f} s = {summary['rps']:.1f} req/s, "
        f"p50 {summary['p50']:.0f} ms, p95 {summary['p95']:.0f} ms, p99 {summary['p99']:.0f} ms, "
        f"errors {summary['errors']}"
    )
    for kind, values in sorted(stats.latencies_ms.items()):
        print(
            f"   {kind:22s} n={len(values):6d}  p50 {percentile(values, 50):7.0f} ms"
            f"  p95 {percentile(values, 95):7.0f} ms"
        )
    for what, count in stats.errors.items():
        print(f"   ERROR {what}: {count}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=40000, help="per phase, a hard bound")
    args = parser.parse_args(argv)
    configured = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="overwatch-bench-load-") as folder:
        base_dir = Path(folder)
        write_run(base_dir / "data")
        users = UsersFile(base_dir / "users.toml")
        for i in range(args.users):
            name = f"shifter{i}" if i % 5 == 4 else f"expert{i}"
            users.set_user(name, Role.SHIFTER if i % 5 == 4 else Role.EXPERT, PASSWORD)
        settings = Settings(
            data_dir=base_dir / "data",
            cache_dir=base_dir / "cache-keys",
            users_file=base_dir / "users.toml",
            subsystems=("EMC",),
        )
        keys = callback_keys(settings)
        groups = [group.title for group in plugin_for("EMC").groups][:12]
        print(
            f"bench_load: {args.users} users x {args.seconds:g} s per phase on {os.cpu_count()} cores; "
            f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
        results = []
        phases = [
            (
                f"production: {configured.dash_workers} workers x {configured.dash_threads} threads",
                configured.dash_workers,
            ),
            (f"baseline: 1 worker x {configured.dash_threads} threads", 1),
        ]
        for index, (phase, workers) in enumerate(phases):
            server, base = start_server(base_dir, workers, configured.dash_threads, f"phase{index}")
            try:
                stats, elapsed = asyncio.run(
                    load(base, args.users, args.seconds, args.max_requests, keys, groups)
                )
            finally:
                server.terminate()
                server.wait(timeout=30)
            results.append(report(phase, stats, elapsed))
            print(f"   {server_log_summary(server_log_path(f'phase{index}'))}")
        print(
            f"\nload average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (the machine is shared)"
        )
        production, baseline = results
        print(
            f"throughput ratio production/baseline: {production['rps'] / baseline['rps']:.2f}x; "
            f"p95 {production['p95']:.0f} ms vs {baseline['p95']:.0f} ms"
        )
        met = production["errors"] == 0 and production["p95"] < P95_TARGET_MS
        print(f"target zero errors and p95 < {P95_TARGET_MS:.0f} ms: {'MET' if met else 'NOT MET'}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
