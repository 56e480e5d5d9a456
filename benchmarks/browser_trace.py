"""What a page interaction costs, measured apart from the machine's load: the Dash callback requests the
browser made (which callback, when, how many bytes each way) and the CPU seconds the server processes
spent. The dashboard benchmarks print these beside their wall-clock figures.

The request log comes from a `fetch` wrapper installed before any page script runs (Chrome DevTools
`Page.addScriptToEvaluateOnNewDocument`); the server's CPU from its process tree (`psutil`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil

# Wraps fetch: every POST to /_dash-update-component is logged with its callback's output key, the
# properties that triggered it, start/end (performance.now(), ms) and the request and response sizes.
_FETCH_LOG_JS = """
(function () {
  if (window.__dashLog) { return; }
  window.__dashLog = [];
  const original = window.fetch;
  window.fetch = async function (resource, init) {
    const url = typeof resource === 'string' ? resource : resource.url;
    if (!url.includes('_dash-update-component')) { return original.apply(this, arguments); }
    let body = {};
    try { body = JSON.parse(init.body); } catch (e) {}
    const entry = {output: body.output, changed: body.changedPropIds || [], start: performance.now(),
                   sent: (init.body || '').length};
    window.__dashLog.push(entry);
    const response = await original.apply(this, arguments);
    const text = await response.clone().text();
    entry.end = performance.now();
    entry.status = response.status;
    entry.received = text.length;
    return response;
  };
})();
"""


# Records every call of Plotly.react / newPlot / relayout / restyle / Plots.resize on a graph: which
# graph (its Dash id), when, and the graph's size then. Plotly is wrapped when the page's bundle sets
# window.Plotly (a promise first when assets/plotly-bundle.js loads the partial bundle).
_PLOTLY_CALLS_JS = """
(function () {
  if (window.__plotlyCalls) { return; }
  window.__plotlyCalls = [];
  let current;
  function wrap(owner, key, label) {
    const original = owner[key];
    if (typeof original !== 'function') { return; }
    owner[key] = function (gd) {
      const box = gd && gd.parentElement;
      const entry = {call: label, graph: (box && box.id) || '', start: performance.now(),
                     width: gd ? gd.clientWidth : 0, height: gd ? gd.clientHeight : 0};
      window.__plotlyCalls.push(entry);
      const result = original.apply(this, arguments);
      Promise.resolve(result).then(() => { entry.end = performance.now(); }, () => { entry.end = -1; });
      return result;
    };
  }
  Object.defineProperty(window, 'Plotly', {configurable: true, get() { return current; }, set(value) {
    current = value;
    if (value && typeof value.react === 'function' && !value.__callsLogged) {
      value.__callsLogged = true;
      ['react', 'newPlot', 'relayout', 'restyle'].forEach(key => wrap(value, key, key));
      if (value.Plots) { wrap(value.Plots, 'resize', 'Plots.resize'); }
    }
  }});
})();
"""


def install_plotly_call_log(driver) -> None:
    """Log the Plotly calls (draws, relayouts, resizes) of every page this driver opens from now on."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _PLOTLY_CALLS_JS})


@dataclass(frozen=True)
class PlotlyCall:
    """One call of a Plotly function on a graph (times in ms since navigation; end None: not settled)."""

    call: str
    graph: str
    start_ms: float
    end_ms: float | None
    width: int
    height: int


def plotly_calls(driver, graph: str | None = None) -> list[PlotlyCall]:
    """The Plotly calls logged since the page opened, on the graph with Dash id `graph` (else all)."""
    entries = driver.execute_script("return window.__plotlyCalls || [];")
    calls = [
        PlotlyCall(
            call=entry["call"],
            graph=entry["graph"],
            start_ms=float(entry["start"]),
            end_ms=None if entry.get("end") is None else float(entry["end"]),
            width=int(entry["width"]),
            height=int(entry["height"]),
        )
        for entry in entries
    ]
    return [c for c in calls if graph is None or c.graph == graph]


def install_request_log(driver) -> None:
    """Log the Dash callback requests of every page this driver opens from now on."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _FETCH_LOG_JS})


def clear_request_log(driver) -> None:
    driver.execute_script("if (window.__dashLog) { window.__dashLog.length = 0; }")


@dataclass(frozen=True)
class CallbackRequest:
    """One POST to /_dash-update-component as the browser saw it (times in ms since navigation)."""

    output: str
    changed: tuple[str, ...]
    start_ms: float
    end_ms: float
    sent_bytes: int
    received_bytes: int
    status: int

    @property
    def label(self) -> str:
        outputs = self.output.strip(".").split("...")
        shown = ", ".join(outputs[:2]) + (f" +{len(outputs) - 2}" if len(outputs) > 2 else "")
        return f"{shown} <- {', '.join(self.changed) or 'initial'}"


def request_log(driver) -> list[CallbackRequest]:
    """The callback requests logged since the page opened (or the last clear), finished ones only."""
    entries = driver.execute_script("return window.__dashLog || [];")
    return [
        CallbackRequest(
            output=entry.get("output") or "",
            changed=tuple(entry.get("changed") or ()),
            start_ms=float(entry["start"]),
            end_ms=float(entry["end"]),
            sent_bytes=int(entry.get("sent") or 0),
            received_bytes=int(entry.get("received") or 0),
            status=int(entry.get("status") or 0),
        )
        for entry in entries
        if entry.get("end") is not None
    ]


def print_request_log(requests: list[CallbackRequest], origin_ms: float = 0.0) -> None:
    """The requests as a table: start and end relative to `origin_ms`, bytes, callback."""
    print(f"  {'start ms':>9}{'end ms':>9}{'sent B':>9}{'recv B':>10}  callback <- trigger")
    for request in sorted(requests, key=lambda r: r.start_ms):
        print(
            f"  {request.start_ms - origin_ms:>9.0f}{request.end_ms - origin_ms:>9.0f}"
            f"{request.sent_bytes:>9,}{request.received_bytes:>10,}  {request.label}"
        )


class ServerCpu:
    """CPU seconds (user + system) used so far by a server process and all its children (workers)."""

    def __init__(self, pid: int) -> None:
        self._root = psutil.Process(pid)

    def seconds(self) -> float:
        total = 0.0
        for process in [self._root, *self._root.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def wait_idle(self, quiet_s: float = 0.5, busy_s: float = 0.02, timeout_s: float = 60.0) -> float:
        """Wait until the server tree used less than `busy_s` of CPU over `quiet_s` (its workers have
        finished booting: gunicorn answers /health from the first worker while the others still build
        their apps, which would count in a measurement and compete with the page for the cores).
        Returns the seconds waited; raises TimeoutError."""
        start = time.monotonic()
        last = self.seconds()
        while True:
            time.sleep(quiet_s)
            now = self.seconds()
            if now - last < busy_s:
                return time.monotonic() - start
            if time.monotonic() - start > timeout_s:
                raise TimeoutError(f"server still busy after {timeout_s:g} s")
            last = now

    @classmethod
    def listening_on(cls, url: str) -> ServerCpu:
        """The server process that listens on `url`'s port (gunicorn's master, whose workers share the
        socket, so the one listener whose parent does not listen too)."""
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        pids = {
            connection.pid
            for connection in psutil.net_connections(kind="tcp")
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid
        }
        roots = [pid for pid in pids if psutil.Process(pid).ppid() not in pids]
        if len(roots) != 1:
            raise LookupError(f"{len(roots)} server processes listen on port {port}")
        return cls(roots[0])


def renderer_cpu_seconds(driver) -> float:
    """CPU seconds the page's renderer process has used (Chrome DevTools `Performance.getMetrics`
    ProcessTime): JavaScript, layout and painting, whatever the machine's load."""
    return renderer_metrics(driver)["ProcessTime"]


def renderer_metrics(driver) -> dict[str, float]:
    """Chrome DevTools `Performance.getMetrics` of the page, in seconds where they are durations:
    ProcessTime (the renderer's CPU), TaskDuration (its main thread busy), ScriptDuration (JavaScript),
    LayoutDuration, RecalcStyleDuration, and counts (Nodes, LayoutCount, ...)."""
    driver.execute_cdp_cmd("Performance.enable", {})
    metrics = driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
    return {metric["name"]: float(metric["value"]) for metric in metrics}
