"""One typed settings object for every process, with defaults that run on a laptop.

Any field can be overridden by an environment variable `OVERWATCH_<FIELD>` (upper case), so operators and
tests change behaviour without touching code; command-line flags override both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

# Object-name selections that split one merger's objects between the per-subsystem receivers.
DEFAULT_SELECTIONS = {"EMC": "^(EMC|hCluster|hIDvs)", "TPC": "^TPCQA/", "HLT": "^fHist"}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    cache_dir: Path = Path("data_cache")
    subsystems: tuple[str, ...] = ("EMC", "TPC", "HLT")
    emulator_endpoint: str = "tcp://127.0.0.1:60320"
    emulator_step_s: float = 2.0
    emulator_run_length_s: float = 600.0
    emulator_run_gap_s: float = 20.0
    emulator_first_run: int = 300000
    emulator_seed: int = 7
    emulator_hlt_mode: str = "B"
    emulator_beam_type: str = "pp"
    # Faults the emulator injects (`pipeline.emulator.faults`): "demo" = one per run, "none", or a spec.
    emulator_faults: str = "demo"
    receiver_period_s: float = 5.0
    receiver_timeout_s: float = 10.0
    receiver_reset: bool = False
    dash_host: str = "127.0.0.1"
    dash_port: int = 8050
    # The production server (gunicorn): worker processes x threads each; a request slower than the
    # timeout gets its worker restarted.
    dash_workers: int = 2
    dash_threads: int = 4
    dash_timeout_s: int = 120
    # A reset-mode view summing at least this many snapshots, not yet cached, is built by a background
    # job (with progress and cancel) instead of inside the page's request.
    dash_background_min_snapshots: int = 20
    # Pages load plotly.js's cartesian partial bundle when the install step fetched it (0: dcc's full
    # bundle, e.g. as a benchmark's baseline; see dashboard.plotly_bundle).
    dash_plotly_partial_bundle: bool = True
    status_refresh_ms: int = 2000
    # Per dashboard worker: the bytes of histograms its processing service keeps in memory (views and
    # the slices they read, least recently used dropped beyond it); the disk cache keeps the rest.
    processing_memory_bytes: int = 256 * 1024 * 1024
    # A receiver rewrites its heartbeat every 2 s (pipeline.status.HEARTBEAT_EVERY_S), also while it
    # waits for a silent merger: 7 s without one is "receiver not responding" (pipeline.liveness), 30 s
    # means the process is gone (the original waited 5 min).
    receiver_dead_after_s: float = 30.0
    # Other sites' status URLs shown on /system (e.g. "http://host:8050/status"), comma-separated in
    # OVERWATCH_STATUS_SITES; each fetched in the background every status_site_poll_s.
    status_sites: tuple[str, ...] = ()
    status_site_timeout_s: float = 0.5
    status_site_poll_s: float = 30.0
    # /control-room: the groups its plot rotates through, as "SYS:Group title" (comma-separated in
    # OVERWATCH_CONTROL_ROOM_GROUPS; empty: the first group of each subsystem), and how many seconds each
    # stays (a page's `?rotate=20` overrides it).
    control_room_groups: tuple[str, ...] = ()
    control_room_rotate_s: float = 20.0
    # HTTP push (POST /api/push/<SYS>): off while the token is empty. Kept out of repr so that logging
    # the settings never prints it.
    push_token: str = field(default="", repr=False)
    push_max_bytes: int = 64 * 1024 * 1024
    # Access (dashboard.access): the users file (`python -m pipeline users add NAME --role ROLE`); without
    # one the dashboard runs in local mode (everyone admin) on 127.0.0.1 and refuses any other address.
    users_file: Path = Path("users.toml")
    # Served over https (behind a proxy): session cookies get the Secure flag.
    https: bool = False
    session_hours: float = 12.0
    # The control-room screen's read-only login: /control-room?kiosk=<token> (empty: no kiosk).
    kiosk_token: str = field(default="", repr=False)
    qc_poll_s: float = 1.0
    # Alarms: the parameter file ("" = the shipped pipeline/qc/alarms.toml) and delivery (default: the log
    # only; e-mail when alarm_smtp_host is set, a Slack-compatible webhook when alarm_webhook_url is).
    alarms_config: str = ""
    alarm_smtp_host: str = ""
    alarm_smtp_port: int = 25
    alarm_email_from: str = "overwatch@localhost"
    alarm_email_to: tuple[str, ...] = ()
    alarm_webhook_url: str = ""
    alarm_batch_interval_s: float = 300.0
    alarm_max_resends: int = 3

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = environ.get(f"OVERWATCH_{spec.name.upper()}")
            if raw is not None:
                values[spec.name] = _parse(spec.name, raw, getattr(cls, spec.name))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _parse(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, Path):
            return Path(raw)
        if isinstance(default, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return type(default)(raw)
    except ValueError as error:
        raise ValueError(
            f"OVERWATCH_{name.upper()}={raw!r} is not a valid {type(default).__name__}"
        ) from error
