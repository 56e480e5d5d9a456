"""Alarm states: when each alarm fired and cleared, its message, who acknowledged or muted it, how many
times it was sent; stored under `DIR/qc/alarms` and shared by the QC service and the dashboard.

An alarm is one alarm definition on one histogram (its key: subsystem, alarm name, histogram) in one
run. Its life:

- **fired** (state `active`): the condition holds at a snapshot and no alarm of that key is open;
- **active**: it still holds at later snapshots (`last_seen_utc`, `occurrences`, message updated);
- **acknowledged**: someone took it (`acknowledge`); it stays open but is not sent again;
- **muted until** a time (`mute`, per key, so it covers the alarm's next firings too): nothing is
  sent while muted, and `alarms()` shows the state as `muted`;
- **cleared**: the condition no longer holds, or the run changed; a later firing is a new alarm.

Times of firing and clearing are the snapshots' times, so a rebuild gives the same history; each
(subsystem, run) is evaluated forward only (`progress.json`), so a snapshot processed again changes
nothing. Files (every write atomic, every read-modify-write under one file lock, since the QC service
and the dashboard both write):

    DIR/qc/alarms/alarms.parquet   every alarm, one row each (schema `ALARMS_SCHEMA`)
    DIR/qc/alarms/mutes.json       {"<SYS>/<alarm>/<histogram>": {"until_utc", "by", "at_utc"}}
    DIR/qc/alarms/events.jsonl     fired, cleared, acknowledged, muted, notified: one JSON line each
    DIR/qc/alarms/progress.json    the newest snapshot evaluated per subsystem
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import atomic_files
from pipeline.qc.alarms import AlarmResult
from pipeline.qc.paths import ALARMS_TABLE, table_dir
from pipeline.qc.results import write_json_atomically
from pipeline.store_schema import described_field

ACTIVE, ACKNOWLEDGED, CLEARED, MUTED = "active", "acknowledged", "cleared", "muted"
OPEN_STATES = (ACTIVE, ACKNOWLEDGED)
_TS = pa.timestamp("us", tz="UTC")

ALARMS_SCHEMA = pa.schema(
    [
        described_field("alarm_id", pa.string(), "stable id (12 hex digits) of this firing"),
        described_field("subsystem", pa.string(), "EMC, TPC, HLT, ..."),
        described_field("run", pa.int64(), "run number"),
        described_field("alarm", pa.string(), "alarm name in the alarm file"),
        described_field("histogram", pa.string(), "the histogram it judges (link to its plot)"),
        described_field(
            "histogram_label",
            pa.string(),
            "what people read for it: its display name (`pipeline.detectors.names`), as in `message`",
            True,
        ),
        described_field(
            "quantity", pa.string(), "trended quantity of its (first) condition (link to the trend)"
        ),
        described_field("content", pa.string(), "`cumulative` or `interval`, of that condition"),
        described_field("severity", pa.string(), "`error` or `warning`"),
        described_field("message", pa.string(), "why it fired (latest evaluation)"),
        described_field("state", pa.string(), "`active`, `acknowledged` or `cleared`"),
        described_field("fired_utc", _TS, "time of the snapshot where it fired"),
        described_field("snapshot_id", pa.string(), "that snapshot"),
        described_field("last_seen_utc", _TS, "time of the newest snapshot where it still held"),
        described_field("occurrences", pa.int64(), "snapshots where it held"),
        described_field("last_value", pa.float64(), "newest value of its first condition's series", True),
        described_field("cleared_utc", _TS, "time of the snapshot where it no longer held", True),
        described_field("acknowledged_utc", _TS, "when it was acknowledged", True),
        described_field("acknowledged_by", pa.string(), "who acknowledged it", True),
        described_field("muted_until_utc", _TS, "its key is muted until then (as last written)", True),
        described_field("notifications_sent", pa.int64(), "times it was delivered (first + re-sends)"),
        described_field("last_notified_utc", _TS, "when it was last delivered", True),
    ]
)


@dataclass(frozen=True)
class AlarmEvent:
    kind: str  # "fired" or "cleared"
    alarm: dict[str, Any]


def alarm_key(subsystem: str, alarm: str, histogram: str) -> str:
    return f"{subsystem}/{alarm}/{histogram}"


def histogram_label(alarm: Mapping[str, Any]) -> str:
    """What people read for an alarm's histogram: its display name, or its raw name for an alarm
    recorded before labels were (an empty or null `histogram_label`)."""
    label = alarm.get("histogram_label")
    return label if isinstance(label, str) and label else str(alarm["histogram"])


class AlarmBook:
    """The alarm states of one data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.root = table_dir(data_dir, ALARMS_TABLE)
        self.table_path = self.root / "alarms.parquet"
        self.mutes_path = self.root / "mutes.json"
        self.events_path = self.root / "events.jsonl"
        self.progress_path = self.root / "progress.json"
        # The table as last read or written, with the file's (inode, mtime_ns): read again only when
        # another process (the dashboard acknowledging) replaced it.
        self._cached: tuple[tuple[int, int], pd.DataFrame] | None = None

    # ---- the QC service's side -------------------------------------------------------------------

    def update(
        self,
        subsystem: str,
        run: int,
        snapshot_id: str,
        snapshot_time_utc: datetime,
        results: Sequence[AlarmResult],
    ) -> list[AlarmEvent]:
        """Apply one snapshot's evaluations: fire, keep or clear each alarm; clear open alarms of the
        subsystem's earlier runs. A snapshot not newer than the last one evaluated for its subsystem
        and run changes nothing (returns no event)."""
        with self._locked():
            progress = _read_json(self.progress_path)
            done = progress.get(subsystem)
            if done is not None and (run, snapshot_id) <= (done["run"], done["snapshot_id"]):
                return []
            frame = self._read()
            records = frame.to_dict("records")
            open_by_key = {
                alarm_key(r["subsystem"], r["alarm"], r["histogram"]): r
                for r in records
                if r["subsystem"] == subsystem and r["state"] in OPEN_STATES
            }
            events: list[AlarmEvent] = []
            for key, record in list(open_by_key.items()):
                if record["run"] != run:
                    self._clear(record, snapshot_time_utc, "run ended", events)
                    del open_by_key[key]
            for result in results:
                key = alarm_key(*result.key)
                record = open_by_key.get(key)
                if result.verdict.fired:
                    if record is None:
                        record = self._fire(result, run, snapshot_id, snapshot_time_utc)
                        records.append(record)
                        events.append(AlarmEvent("fired", record))
                    else:
                        record.update(
                            message=result.verdict.message,
                            histogram_label=result.label or None,
                            last_seen_utc=snapshot_time_utc,
                            occurrences=record["occurrences"] + 1,
                            last_value=result.verdict.last_value,
                        )
                elif record is not None:
                    record["last_value"] = result.verdict.last_value
                    self._clear(record, snapshot_time_utc, "condition no longer holds", events)
            progress[subsystem] = {"run": run, "snapshot_id": snapshot_id}
            if events or open_by_key:  # else nothing of this subsystem changed: no rewrite
                self._write(records)
            write_json_atomically(self.progress_path, progress)
            self._log_events(events)
            return events

    def _fire(self, result: AlarmResult, run: int, snapshot_id: str, when: datetime) -> dict[str, Any]:
        definition = result.definition
        condition = definition.first_condition
        identity = f"{alarm_key(*result.key)}/{run}/{snapshot_id}"
        return {
            "alarm_id": hashlib.sha1(identity.encode()).hexdigest()[:12],
            "subsystem": definition.subsystem,
            "run": run,
            "alarm": definition.name,
            "histogram": result.histogram,
            "histogram_label": result.label or None,
            "quantity": condition.quantity,
            "content": condition.content,
            "severity": definition.severity,
            "message": result.verdict.message,
            "state": ACTIVE,
            "fired_utc": when,
            "snapshot_id": snapshot_id,
            "last_seen_utc": when,
            "occurrences": 1,
            "last_value": result.verdict.last_value,
            "cleared_utc": None,
            "acknowledged_utc": None,
            "acknowledged_by": None,
            "muted_until_utc": None,
            "notifications_sent": 0,
            "last_notified_utc": None,
        }

    @staticmethod
    def _clear(record: dict[str, Any], when: datetime, why: str, events: list[AlarmEvent]) -> None:
        record.update(state=CLEARED, cleared_utc=when)
        events.append(AlarmEvent("cleared", {**record, "why": why}))

    # ---- people's side (the dashboard, through ProcessingService) ---------------------------------

    def acknowledge(self, alarm_id: str, who: str) -> dict[str, Any]:
        """Mark an open alarm acknowledged (no more re-sends). KeyError for an unknown id, ValueError
        naming `who` if empty or `alarm_id` if the alarm is already cleared."""
        who = _who(who)
        with self._locked():
            records = self._read().to_dict("records")
            record = _find(records, alarm_id)
            if record["state"] == CLEARED:
                raise ValueError(f"alarm_id: alarm {alarm_id} is already cleared")
            record.update(state=ACKNOWLEDGED, acknowledged_utc=_now(), acknowledged_by=who)
            self._write(records)
            self._log_events([AlarmEvent("acknowledged", record)])
            return record

    def mute(self, alarm_id: str, until_utc: datetime, who: str) -> dict[str, Any]:
        """Mute the alarm's key (this alarm and its later firings) until `until_utc` (a past time
        unmutes). KeyError for an unknown id; ValueError naming `who` or `until_utc`."""
        who = _who(who)
        if not isinstance(until_utc, datetime) or until_utc.tzinfo is None:
            raise ValueError("until_utc: must be an aware datetime (UTC)")
        with self._locked():
            records = self._read().to_dict("records")
            record = _find(records, alarm_id)
            mutes = _read_json(self.mutes_path)
            key = alarm_key(record["subsystem"], record["alarm"], record["histogram"])
            mutes[key] = {
                "until_utc": until_utc.astimezone(UTC).isoformat(),
                "by": who,
                "at_utc": _now().isoformat(),
            }
            write_json_atomically(self.mutes_path, mutes)
            self._write(records)
            self._log_events([AlarmEvent("muted", {**record, "muted_until_utc": until_utc, "muted_by": who})])
            return record

    # ---- reads -------------------------------------------------------------------------------------

    def alarms(self, now: datetime | None = None) -> pd.DataFrame:
        """Every alarm, newest first, with `state` as people see it now: `muted` for an open alarm
        whose key is muted, and `muted_until_utc` from the mutes in force."""
        now = now or _now()
        frame = self._read()
        mutes = self._mutes_in_force(now)
        keys = frame["subsystem"] + "/" + frame["alarm"] + "/" + frame["histogram"]
        frame["muted_until_utc"] = pd.to_datetime(keys.map(mutes), utc=True).astype(frame["fired_utc"].dtype)
        muted = frame["muted_until_utc"].notna() & frame["state"].isin(OPEN_STATES)
        frame.loc[muted, "state"] = MUTED
        return frame.sort_values(["fired_utc", "alarm_id"], ascending=False).reset_index(drop=True)

    def _mutes_in_force(self, now: datetime) -> dict[str, datetime]:
        mutes = {}
        for key, mute in _read_json(self.mutes_path).items():
            until = datetime.fromisoformat(mute["until_utc"])
            if until > now:
                mutes[key] = until
        return mutes

    def events(self) -> list[dict[str, Any]]:
        if not self.events_path.exists():
            return []
        return [json.loads(line) for line in self.events_path.read_text().splitlines() if line.strip()]

    # ---- delivery's side ---------------------------------------------------------------------------

    def due(self, now: datetime, resend_after_s: float, max_resends: int) -> list[dict[str, Any]]:
        """Alarms to deliver now: active (not acknowledged), not muted, and never sent, or sent fewer
        than 1 + `max_resends` times and not within `resend_after_s`."""
        frame = self.alarms(now)
        due = []
        for record in frame[frame["state"] == ACTIVE].to_dict("records"):
            sent = record["notifications_sent"]
            if sent == 0:
                due.append(record)
            elif sent <= max_resends:
                last = record["last_notified_utc"]
                if last is None or pd.isna(last) or (now - last).total_seconds() >= resend_after_s:
                    due.append(record)
        return sorted(due, key=lambda r: (r["fired_utc"], r["subsystem"], r["alarm"], r["histogram"]))

    def mark_notified(self, alarm_ids: Sequence[str], now: datetime) -> None:
        """Count one delivery of each of `alarm_ids` (after every channel had its try)."""
        wanted = set(alarm_ids)
        with self._locked():
            records = self._read().to_dict("records")
            for record in records:
                if record["alarm_id"] in wanted:
                    record["notifications_sent"] += 1
                    record["last_notified_utc"] = now
            self._write(records)
            self._log_events([AlarmEvent("notified", {"alarm_ids": sorted(wanted)})])

    # ---- files ----------------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> pd.DataFrame:
        """The alarms table (a copy callers may change)."""
        try:
            stat = os.stat(self.table_path)
        except FileNotFoundError:
            return ALARMS_SCHEMA.empty_table().to_pandas()
        signature = (stat.st_ino, stat.st_mtime_ns)
        if self._cached is None or self._cached[0] != signature:
            table = pq.read_table(self.table_path, schema=ALARMS_SCHEMA)
            self._cached = (signature, table.to_pandas())
        return self._cached[1].copy()

    def _write(self, records: list[dict[str, Any]]) -> None:
        mutes = self._mutes_in_force(_now())
        for record in records:
            if record["state"] in OPEN_STATES:
                key = alarm_key(record["subsystem"], record["alarm"], record["histogram"])
                record["muted_until_utc"] = mutes.get(key)
        columns = {name: [_plain(r.get(name)) for r in records] for name in ALARMS_SCHEMA.names}
        table = pa.table(columns, schema=ALARMS_SCHEMA)
        atomic_files.write_file(self.table_path, lambda path: pq.write_table(table, path), durable=False)

    def _log_events(self, events: Sequence[AlarmEvent]) -> None:
        if not events:
            return
        with open(self.events_path, "a", encoding="utf-8") as log_file:
            for event in events:
                line = {"event": event.kind, "logged_utc": _now().isoformat()}
                line.update({k: _json_value(v) for k, v in event.alarm.items()})
                log_file.write(json.dumps(line) + "\n")


def _plain(value: Any) -> Any:
    """NaN/NaT from pandas become nulls; Timestamps stay datetimes."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def _json_value(value: Any) -> Any:
    value = _plain(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def _find(records: list[dict[str, Any]], alarm_id: str) -> dict[str, Any]:
    for record in records:
        if record["alarm_id"] == alarm_id:
            return record
    raise KeyError(f"alarm_id: no alarm {alarm_id!r}")


def _who(who: str) -> str:
    if not isinstance(who, str) or not who.strip():
        raise ValueError("who: say who does it")
    return who.strip()


def _now() -> datetime:
    return datetime.now(UTC)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
