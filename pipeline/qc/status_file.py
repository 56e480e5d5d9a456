"""The QC service's status file, `DIR/qc/status.json`: its counters and heartbeat. The service writes it
(`QCService.write_status`, atomically); the system status reads it (`pipeline.liveness.qc_liveness`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.qc.paths import status_path


def read_status(data_dir: Path) -> dict[str, Any] | None:
    """The QC service's last status record, or None if it never ran (or the file is not a record)."""
    try:
        record = json.loads(status_path(data_dir).read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None
