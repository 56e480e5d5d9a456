"""What the run coordinator needs to know about the whole system, in one model: each receiver's state
and counters, the ongoing run, the data folder's size and free space, and other sites' status.

`SystemMonitor.status(...)` builds a `SystemStatus` from the receivers' status files (through the one
liveness rule, `pipeline.liveness`) and from what a background thread last measured: other sites are
fetched there (each with a short timeout) and the data folder is walked there, so asking for the
status never waits on the network or on a big folder. `/system`, `GET /status` and `GET /api/status`
all read this model; none of them reads a status file itself.
"""

from __future__ import annotations

import html
import logging
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.liveness import Liveness, QCLiveness, ReceiverState, qc_liveness, receiver_liveness
from pipeline.processing.runs import RunSummary
from pipeline.qc.status_file import read_status as read_qc_status
from pipeline.status import ReceiverStatus, read_all_status

log = logging.getLogger(__name__)

SITE_BODY_CHARS = 200  # of a site's answer kept as its detail
SITE_READ_BYTES = 16384  # read of it: enough for an HTML error page's title


class SiteState:
    UP = "up"  # answered 200
    DOWN = "down"  # answered, with another status (its /status says what is wrong)
    UNREACHABLE = "unreachable"  # no answer within the timeout, refused, unknown host...
    NOT_CHECKED = "not checked yet"


@dataclass(frozen=True)
class SiteStatus:
    url: str
    state: str
    detail: str
    checked_utc: float | None


@dataclass(frozen=True)
class FolderUsage:
    path: str
    data_bytes: int | None  # size of everything under the data folder (None: not measured yet)
    measured_utc: float | None
    free_bytes: int | None  # on the data folder's file system
    total_bytes: int | None


@dataclass(frozen=True)
class ReceiverReport:
    """One receiver as the system page shows it: its liveness (state, reason, ages, recent rate) and
    its counters."""

    liveness: Liveness
    status: ReceiverStatus | None

    @property
    def subsystem(self) -> str:
        return self.liveness.subsystem

    @property
    def state(self) -> ReceiverState:
        return self.liveness.state

    @property
    def last_error_current(self) -> bool:
        """Whether the last error is news: no clean request/reply cycle has happened since."""
        return bool(self.status and self.status.last_error and self.status.last_error_cleared_utc is None)

    def to_dict(self, now: float) -> dict[str, Any]:
        status = self.status
        counters = {}
        if status is not None:
            counters = {
                name: getattr(status, name)
                for name in (
                    "endpoint",
                    "pid",
                    "requests",
                    "replies",
                    "timeouts",
                    "consecutive_timeouts",
                    "socket_recreations",
                    "skipped_replies",
                    "rejected_objects",
                    "unsupported_objects",
                    "snapshots_stored",
                    "histograms_stored",
                    "last_run",
                    "last_error",
                    "period_s",
                    "timeout_s",
                )
            }
            counters["last_error_age_s"] = _age(now, status.last_error_utc)
            counters["last_error_cleared_age_s"] = _age(now, status.last_error_cleared_utc)
        return {
            "subsystem": self.subsystem,
            "state": self.state.value,
            "healthy": self.state.healthy,
            "reason": self.liveness.reason,
            "heartbeat_age_s": self.liveness.heartbeat_age_s,
            "reply_age_s": self.liveness.reply_age_s,
            "snapshot_age_s": self.liveness.snapshot_age_s,
            "snapshots_per_min_5min": self.liveness.snapshots_per_min,
            "last_error_current": self.last_error_current,
            **counters,
        }


@dataclass(frozen=True)
class SystemStatus:
    now_utc: float
    receivers: list[ReceiverReport]
    ongoing_run: RunSummary | None
    last_data_utc: float | None  # newest snapshot any receiver stored
    folder: FolderUsage
    sites: list[SiteStatus] = field(default_factory=list)
    qc: QCLiveness | None = None  # the QC service (None: not asked)

    @property
    def problems(self) -> list[str]:
        return problems_of(self.receivers, self.qc)

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def last_data_age_s(self) -> float | None:
        return _age(self.now_utc, self.last_data_utc)

    def to_dict(self) -> dict[str, Any]:
        """Everything the /system page shows, JSON-ready (times as unix seconds and ages in seconds)."""
        run = self.ongoing_run
        return {
            "ok": self.healthy,
            "problems": self.problems,
            "now_utc": self.now_utc,
            "receivers": [report.to_dict(self.now_utc) for report in self.receivers],
            "ongoing_run": None
            if run is None
            else {
                "run": run.run,
                "start_utc": run.start_utc.isoformat(),
                "start_cern": run.start_cern.isoformat(),
                "running_for_s": max(0.0, self.now_utc - run.start_utc.timestamp()),
                "hlt_mode": run.hlt_mode,
                "beam_type": run.beam_type,
                "subsystems": list(run.subsystems),
            },
            "last_data_age_s": self.last_data_age_s,
            "qc": None
            if self.qc is None
            else {**asdict(self.qc), "state": self.qc.state.value, "healthy": self.qc.state.healthy},
            "folder": {**asdict(self.folder), "measured_age_s": _age(self.now_utc, self.folder.measured_utc)},
            "sites": [{**asdict(site), "age_s": _age(self.now_utc, site.checked_utc)} for site in self.sites],
        }


def problems_of(reports: Iterable[ReceiverReport], qc: QCLiveness | None = None) -> list[str]:
    """One line per receiver that is not alive with an answering merger (flowing or between runs), and
    one for a QC service that stopped beating: what `GET /status` answers 500 with."""
    problems = [
        f"{report.subsystem}: {report.state.value} ({report.liveness.reason})"
        for report in reports
        if not report.state.healthy
    ]
    if qc is not None and not qc.state.healthy:
        problems.append(f"QC: {qc.state.value} ({qc.reason})")
    return problems


def _age(now: float, epoch: float | None) -> float | None:
    return None if epoch is None else max(0.0, now - epoch)


def reports_for(
    statuses: Iterable[ReceiverStatus], subsystems: Sequence[str], now: float, dead_after_s: float
) -> list[ReceiverReport]:
    """One report per configured subsystem (in settings order, "no status" when it never reported),
    then any other receiver that reported."""
    by_subsystem = {status.key: status for status in statuses}  # "<SYS>" or "<SYS>-push"
    order = list(subsystems) + sorted(set(by_subsystem) - set(subsystems))
    return [
        ReceiverReport(
            receiver_liveness(by_subsystem.get(sub), now, dead_after_s, subsystem=sub), by_subsystem.get(sub)
        )
        for sub in order
    ]


def answer_text(raw: bytes) -> str:
    """What a site answered, as a line a person reads: a status body as it is ("Alive", "Not alive: ..."),
    an HTML page (a proxy's or a server's error page) by its title, else its text without tags."""
    text = raw.decode("utf-8", "replace").strip()
    if text.startswith("<") or "<html" in text[:200].lower():
        title = _HTML_TITLE.search(text)
        text = title.group(1) if title else _HTML_TAG.sub(" ", text)
        text = " ".join(html.unescape(text).split())
    return text[:SITE_BODY_CHARS]


_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<script.*?</script>|<style.*?</style>|<[^>]*>", re.IGNORECASE | re.DOTALL)


def fetch_site(url: str, timeout_s: float) -> SiteStatus:
    """GET `url` once: up (200), down (another HTTP status) or unreachable."""
    checked = time.time()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:
            body = answer_text(answer.read(SITE_READ_BYTES))
            return SiteStatus(url, SiteState.UP, body or f"HTTP {answer.status}", checked)
    except urllib.error.HTTPError as error:
        body = answer_text(error.read(SITE_READ_BYTES))
        return SiteStatus(
            url, SiteState.DOWN, f"HTTP {error.code}: {body}" if body else f"HTTP {error.code}", checked
        )
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return SiteStatus(url, SiteState.UNREACHABLE, f"{type(error).__name__}: {reason}", checked)


def folder_size_bytes(path: Path) -> int:
    """Bytes of every file under `path` (files vanishing while walked are skipped)."""
    total = 0
    stack = [str(path)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
    return total


class SystemMonitor:
    """Builds `SystemStatus`; a daemon thread (started at the first request) refreshes the other sites
    and the data folder's size every `poll_s`, so a request only reads what it measured."""

    def __init__(
        self,
        data_dir: Path,
        subsystems: Sequence[str],
        dead_after_s: float = 30.0,
        sites: Sequence[str] = (),
        site_timeout_s: float = 0.5,
        poll_s: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.subsystems = tuple(subsystems)
        self.dead_after_s = dead_after_s
        self.sites = tuple(sites)
        self.site_timeout_s = site_timeout_s
        self.poll_s = poll_s
        self._site_results = {url: SiteStatus(url, SiteState.NOT_CHECKED, "", None) for url in self.sites}
        self._folder_bytes: tuple[int | None, float | None] = (None, None)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def refresh(self) -> None:
        """One measuring pass (what the background thread does every `poll_s`)."""
        for url in self.sites:
            result = fetch_site(url, self.site_timeout_s)
            with self._lock:
                self._site_results[url] = result
        size = folder_size_bytes(self.data_dir)
        with self._lock:
            self._folder_bytes = (size, time.time())

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="system-monitor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:  # a measuring pass must never end the thread
                log.exception("system monitor pass failed")
            self._stop.wait(self.poll_s)

    def receivers(self, now: float | None = None) -> list[ReceiverReport]:
        now = time.time() if now is None else now
        return reports_for(read_all_status(self.data_dir), self.subsystems, now, self.dead_after_s)

    def qc(self, now: float | None = None) -> QCLiveness:
        """The QC service's state (one small file read: cheap enough for every probe)."""
        now = time.time() if now is None else now
        return qc_liveness(read_qc_status(self.data_dir), now, self.dead_after_s)

    def problems(self, now: float | None = None) -> list[str]:
        """What `GET /status` answers 500 with: receivers and QC service, no run list, no disk walk."""
        now = time.time() if now is None else now
        return problems_of(self.receivers(now), self.qc(now))

    def status(self, current_run: RunSummary | None, now: float | None = None) -> SystemStatus:
        """The system now; `current_run` is the newest run (shown as ongoing only if it is)."""
        self.start()
        now = time.time() if now is None else now
        reports = self.receivers(now)
        snapshot_times = [
            r.status.last_snapshot_utc for r in reports if r.status and r.status.last_snapshot_utc
        ]
        ongoing = current_run if current_run is not None and current_run.ongoing else None
        if not snapshot_times and current_run is not None:
            snapshot_times = [current_run.end_utc.timestamp()]
        try:
            disk = shutil.disk_usage(self.data_dir)
            free, total = disk.free, disk.total
        except OSError:
            free = total = None
        with self._lock:
            data_bytes, measured = self._folder_bytes
            sites = [self._site_results[url] for url in self.sites]
        return SystemStatus(
            now_utc=now,
            receivers=reports,
            ongoing_run=ongoing,
            last_data_utc=max(snapshot_times, default=None),
            folder=FolderUsage(str(self.data_dir.resolve()), data_bytes, measured, free, total),
            sites=sites,
            qc=self.qc(now),
        )
