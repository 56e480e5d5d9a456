"""Requests per second of the run page's view callback (POST /_dash-update-component) through the
production server (gunicorn, settings' workers x threads) on loopback, against the same request
replayed on Flask's development server as the baseline, measured in the same run.

    .venv/bin/python -m benchmarks.bench_server [--seconds 10] [--clients 8]

The request is the page's `render` callback for FastORL0 over the full run (figure, checks, caption):
the view is cached after the first call, so this measures serving it, as for many users looking at the
same run. Target: >= 250 requests/s on the project's 2-core machine (shared with the load generator).
"""

from __future__ import annotations

import argparse
import http.client
import http.cookiejar
import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from benchmarks.pages_setup import dashboard_process, emc_run
from tests.dashboard.emulated_run import FASTOR_L0, RUN

TARGET_RPS = 250.0


def render_request(url: str) -> bytes:
    """The body the browser posts for the run page's view callback."""
    dependencies = json.loads(urllib.request.urlopen(url + "/_dash-dependencies", timeout=10).read())
    render = next(d for d in dependencies if d["output"].startswith("..run-graph.figure...run-graph.config"))
    search = f"?group=FastOR&hist={FASTOR_L0}"
    values = {"run-url.search": search, "run-url.pathname": f"/run/{RUN}/EMC"}

    def item(spec: dict) -> dict:
        key = f"{spec['id']}.{spec['property']}"
        return {"id": spec["id"], "property": spec["property"], "value": values.get(key)}

    body = {
        "output": render["output"],
        "outputs": [
            {"id": part.split(".")[0], "property": part.split(".")[1]}
            for part in render["output"].strip(".").split("...")
        ],
        "inputs": [item(spec) for spec in render["inputs"]],
        "state": [item(spec) for spec in render["state"]],
        "changedPropIds": ["run-url.search"],
    }
    return json.dumps(body).encode()


def session_headers(url: str) -> dict[str, str]:
    """The headers a browser's callback posts carry: the session cookies the page handed over and the
    CSRF token (the access layer refuses a POST without them)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{url}/run/{RUN}/EMC", timeout=30).read()
    cookies = {cookie.name: cookie.value for cookie in jar}
    return {
        "Content-Type": "application/json",
        "Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items()),
        "X-CSRFToken": cookies.get("overwatch_csrf", ""),
    }


def hammer(url: str, body: bytes, seconds: float, clients: int) -> tuple[float, int]:
    """(requests per second, errors) of `clients` keep-alive connections posting `body` for `seconds`."""
    host, port = url.removeprefix("http://").split(":")
    counts, errors = [0] * clients, [0] * clients
    headers = session_headers(url)
    stop_at = time.perf_counter() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        while time.perf_counter() < stop_at:
            connection.request("POST", "/_dash-update-component", body, headers)
            response = connection.getresponse()
            payload = response.read()
            if response.status == 200 and b"run-graph" in payload:
                counts[index] += 1
            else:
                errors[index] += 1
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started), sum(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-server-") as folder:
        data = Path(folder) / "data"
        emc_run(data)
        results = {}
        for server in ("flask-dev", "gunicorn"):
            with dashboard_process(data, Path(folder) / f"cache-{server}", server) as url:
                body = render_request(url)
                hammer(url, body, 4.0, args.clients)  # warm-up: every worker drew the view once
                results[server] = hammer(url, body, args.seconds, args.clients)
            rate, errors = results[server]
            setup = f"{errors} errors, {args.clients} clients, {args.seconds:g} s"
            print(f"{server:<10} {rate:8.1f} requests/s  ({setup})")
    ratio = results["gunicorn"][0] / max(results["flask-dev"][0], 1e-9)
    print(f"gunicorn / Flask development server: {ratio:.2f}x")
    rate = results["gunicorn"][0]
    verdict = "MET" if rate >= TARGET_RPS else "NOT MET"
    print(f"target >= {TARGET_RPS:g} requests/s through the production server: {rate:.1f} -> {verdict}")


if __name__ == "__main__":
    main()
