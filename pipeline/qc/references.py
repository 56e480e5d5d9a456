"""Reference runs: an expert marks a run as the reference for a subsystem and beam type.

Stored in one small JSON file, `DIR/qc/references.json` (written atomically), which also keeps who set
each reference and when, and the earlier choices:

    {"EMC": {"pp": {"run": 300000, "set_by": "alice", "set_at_utc": "2026-12-06T09:00:00+00:00",
                    "note": "", "history": [{"run": 299990, "set_by": ..., "set_at_utc": ...}]}}}

The reference content of a run is its newest snapshot of that subsystem (the whole run, in cumulative
mode). The numbers for pages and checks (normalisation, ratio, KS, chi2) are in `pipeline.compare`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import atomic_files
from pipeline.qc.paths import references_path
from pipeline.store_schema import BEAM_TYPE_PATTERN, SUBSYSTEM_PATTERN

_lock = threading.Lock()  # one writer per process at a time; the file itself is replaced atomically


@dataclass(frozen=True)
class ReferenceRun:
    """The reference of one subsystem and beam type: which run, who set it, when, and why."""

    subsystem: str
    beam_type: str
    run: int
    set_by: str
    set_at_utc: str
    note: str = ""


def get_reference(data_dir: Path, subsystem: str, beam_type: str) -> ReferenceRun | None:
    """The reference run set for this subsystem and beam type, or None."""
    entry = _read(data_dir).get(subsystem, {}).get(beam_type)
    if entry is None:
        return None
    return ReferenceRun(
        subsystem, beam_type, int(entry["run"]), entry["set_by"], entry["set_at_utc"], entry.get("note", "")
    )


def list_references(data_dir: Path) -> list[ReferenceRun]:
    """Every reference set, by subsystem then beam type."""
    found = []
    for subsystem, per_beam in sorted(_read(data_dir).items()):
        for beam_type in sorted(per_beam):
            reference = get_reference(data_dir, subsystem, beam_type)
            if reference is not None:
                found.append(reference)
    return found


def reference_history(data_dir: Path, subsystem: str, beam_type: str) -> list[dict[str, Any]]:
    """Earlier references of this subsystem and beam type, oldest first (who set them and when)."""
    entry = _read(data_dir).get(subsystem, {}).get(beam_type)
    return list(entry.get("history", [])) if entry else []


def set_reference(
    data_dir: Path,
    subsystem: str,
    beam_type: str,
    run: int,
    set_by: str,
    note: str = "",
    now: datetime | None = None,
) -> ReferenceRun:
    """Mark `run` as the reference of `subsystem` for `beam_type`, recording who and when.

    Raises ValueError for a bad subsystem, beam type, run (must be > 0) or an empty `set_by`. Whether
    the run has data is for the caller to check (the store knows, this file does not).
    """
    if not SUBSYSTEM_PATTERN.fullmatch(subsystem):
        raise ValueError(f"subsystem {subsystem!r} must match {SUBSYSTEM_PATTERN.pattern}")
    if not BEAM_TYPE_PATTERN.fullmatch(beam_type):  # an empty beam type is its own key
        raise ValueError(f"beam type {beam_type!r} must match {BEAM_TYPE_PATTERN.pattern}")
    if isinstance(run, bool) or not isinstance(run, int) or run <= 0:
        raise ValueError(f"run must be a positive integer, got {run!r}")
    if not set_by.strip():
        raise ValueError("set_by must name who sets the reference")
    set_at = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
    reference = ReferenceRun(subsystem, beam_type, run, set_by.strip(), set_at, note)
    with _lock:
        content = _read(data_dir)
        per_beam = content.setdefault(subsystem, {})
        earlier = per_beam.get(beam_type)
        history = list(earlier.get("history", [])) if earlier else []
        if earlier:
            history.append(
                {key: earlier[key] for key in ("run", "set_by", "set_at_utc", "note") if key in earlier}
            )
        record = asdict(reference)
        del record["subsystem"], record["beam_type"]
        per_beam[beam_type] = {**record, "history": history}
        _write(data_dir, content)
    return reference


def _read(data_dir: Path) -> dict[str, Any]:
    try:
        return json.loads(references_path(data_dir).read_text())
    except FileNotFoundError:
        return {}


def _write(data_dir: Path, content: dict[str, Any]) -> None:
    path = references_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_files.write_file(path, json.dumps(content, indent=1, sort_keys=True))
