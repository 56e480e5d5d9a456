"""What the original OVERWATCH archive's file names say: subsystem, run, HLT mode and time (in UTC).

The names, as the original wrote them (overwatch-features.md, section 1.2):
- ZMQ receiver, flat in the data folder: `<SYS>histos_<run>_<mode>_<Y>_<M>_<D>_<h>_<m>_<s>.root`, date parts
  not zero-padded;
- DQM receiver: `<agent>histos_<run>_DQM_<YYYY_MM_DD_HH_mm_ss>.root` (mode "DQM");
- moved by the processing: `Run<run>/<SYS>/<SYS>hists.<time>.root`, the time copied verbatim from the
  receiver's name; its mode is in `Run<run>/runInfo.yaml` (`hltMode: X`), and mode E files were moved
  under `ReplayData/` instead; without either the mode is unknown (U), as the original's default.
Every time is Europe/Zurich wall-clock time (the receiver host's `localtime()`). In the hour that repeats
when summer time ends, a name is read as the first of the two (summer time, `fold=0`): the name alone
cannot tell them apart. Combined and time-slice files are derived data and are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ZURICH = ZoneInfo("Europe/Zurich")
REPLAY_FOLDER = "ReplayData"
RUN_INFO = "runInfo.yaml"
DQM_MODE = "DQM"

_TIME = r"(?P<time>[0-9]{1,4}(?:_[0-9]{1,2}){5})"
_RECEIVER = re.compile(
    rf"^(?P<subsystem>[A-Za-z0-9][A-Za-z0-9_-]*?)histos_(?P<run>[0-9]+)_(?P<mode>[A-Za-z0-9]+)_{_TIME}\.root$"
)
_MOVED = re.compile(rf"^(?P<subsystem>[A-Za-z0-9][A-Za-z0-9_-]*?)hists\.{_TIME}\.root$")
_RUN_FOLDER = re.compile(r"^Run(?P<run>[0-9]+)$")


@dataclass(frozen=True)
class ArchiveFile:
    """One receiver file to import. `hlt_mode` is None when only the run's runInfo.yaml can tell."""

    path: Path
    subsystem: str
    run: int
    hlt_mode: str | None
    snapshot_time_utc: datetime
    kind: str  # "receiver", "dqm" or "moved"


class NotImported(Exception):
    """The file is not imported; `skipped` says whether on purpose (derived files) or as a failure."""

    def __init__(self, reason: str, skipped: bool) -> None:
        super().__init__(reason)
        self.skipped = skipped


def parse_archive_name(path: Path) -> ArchiveFile:
    """The receiver file at `path` (its name, and for moved files its folders).

    Raises NotImported: skipped=True for combined, time-slice and other non-receiver ROOT files,
    skipped=False for a receiver name whose time is not a date.
    """
    name = path.name
    if name.startswith("hists.combined.") or ".combined." in name:
        raise NotImported("combined file (derived from receiver files)", skipped=True)
    if name.startswith("timeSlice."):
        raise NotImported("time-slice file (derived from receiver files)", skipped=True)
    match = _RECEIVER.match(name)
    if match is not None:
        mode = match["mode"]
        kind = "dqm" if mode == DQM_MODE else "receiver"
        return ArchiveFile(path, match["subsystem"], int(match["run"]), mode, _utc(match["time"], name), kind)
    match = _MOVED.match(name)
    run_folder = _RUN_FOLDER.match(path.parent.parent.name) if match is not None else None
    if match is not None and run_folder is not None:
        replay = REPLAY_FOLDER in path.parts[:-3]
        mode = "E" if replay else None  # else from runInfo.yaml, read once per run folder
        time_utc = _utc(match["time"], name)
        return ArchiveFile(path, match["subsystem"], int(run_folder["run"]), mode, time_utc, "moved")
    raise NotImported("not a receiver file name", skipped=True)


def zurich_to_utc(year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime:
    """A Europe/Zurich wall-clock time as UTC (the first of two in the repeated autumn hour)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=ZURICH).astimezone(UTC)


def _utc(time_text: str, name: str) -> datetime:
    try:
        return zurich_to_utc(*(int(part) for part in time_text.split("_")))
    except ValueError as error:
        raise NotImported(f"time {time_text!r} in {name!r} is not a date: {error}", skipped=False) from error
