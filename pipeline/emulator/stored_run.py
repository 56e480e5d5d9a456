"""A stored run served as if it were live: the merger side of the original's "replay" mode.

`StoredRunSource` is an `ObjectSource` for `MergerEmulator`. It walks a run of the store (recorded by
receivers or imported from the archive, either area) on a replay clock that starts at the run's first
snapshot when the first request arrives and runs `speed` times faster than the wall clock. At every
request the merger holds, for each subsystem of the run, the newest snapshot at or before the replay
time, so receivers store what they would have stored during the run; INFO carries the run number, HLT
mode and beam type of those snapshots. One typical gap after the last snapshot the run is over, and
the merger answers `run=0` without objects, as between runs.

Objects are re-encoded from the stored numbers with their stored class (TH2F stays TH2F), in their
original class versions where the snapshot records them (`SnapshotMeta.th1_version`: the archive
import does, so Run-2 files are served as TH1 v7 with their streamers), else in the versions this
project writes (ROOT 6.14+: TH1 v8). `-ResetOnRequest` erases the served objects until the next
snapshot of their subsystem becomes current, as a merger that is reset holds nothing until new data.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import statistics
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from pipeline.emulator.runs import Clock
from pipeline.histogram import Histogram
from pipeline.store import SnapshotStore
from pipeline.store_schema import SnapshotKey
from pipeline.wire.messages import format_info
from pipeline.wire.run2_layout import encode_tmessage_in_versions
from pipeline.wire.tmessage import StreamerContext, encode_streamer_block, uproot_written_streamers

log = logging.getLogger(__name__)

# A run of a single snapshot still has to be served for a while: a minute, the original's period.
_DEFAULT_GAP_S = 60.0


class StoredRunSource:
    """Snapshots of one stored run, in time order, on a replay clock (see the module doc)."""

    def __init__(self, data_dir: Path, run: int, speed: float = 1.0, now: Clock = time.time) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.store = SnapshotStore(Path(data_dir))
        self.run = run
        self.speed = speed
        self.lock = threading.RLock()
        self._now = now
        runs = self.store.runs(include_replay=True, run=run)
        self.subsystems = sorted(runs["subsystem"]) if len(runs) else []
        self._timelines: dict[str, list[SnapshotKey]] = {
            system: self.store.snapshot_keys(run, system, include_replay=True) for system in self.subsystems
        }
        every = sorted(key.snapshot_time_utc for keys in self._timelines.values() for key in keys)
        if not every:
            raise KeyError(f"no snapshot of run {run} in {data_dir}")
        self.first_time: datetime = every[0]
        gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(every)]
        typical_gap_s = statistics.median([gap for gap in gaps if gap > 0] or [_DEFAULT_GAP_S])
        self.end_offset_s = (every[-1] - every[0]).total_seconds() + typical_gap_s
        self._started: float | None = None
        self._current: dict[str, SnapshotKey] = {}
        self._read: dict[str, dict[str, Histogram]] = {}  # the current snapshots' histograms, by id
        self._histograms: dict[str, Histogram] = {}  # name -> histogram of the current snapshots
        self._snapshot_of: dict[str, str] = {}  # name -> id of the current snapshot holding it
        self._encoded: dict[str, tuple[str, bytes]] = {}  # name -> (snapshot id, TMessage)
        self._erased: set[str] = set()
        self._info = format_info(0, "U", "")
        self._th1_versions: dict[str, int | None] = {}  # snapshot id -> TH1 version its objects had
        self._streamer_block = _streamer_block(self.store.data_dir / "streamers")
        log.info(
            "replaying run %d (%s): %d snapshots over %.0f s at %gx",
            run,
            ",".join(self.subsystems),
            len(every),
            self.end_offset_s,
            speed,
        )

    @property
    def replay_offset_s(self) -> float:
        """Seconds of the run replayed so far (0 until the first request)."""
        if self._started is None:
            return 0.0
        return (self._now() - self._started) * self.speed

    @property
    def finished(self) -> bool:
        return self.replay_offset_s > self.end_offset_s

    def refresh(self) -> None:
        with self.lock:
            if self._started is None:
                self._started = self._now()
            offset_s = self.replay_offset_s
            if offset_s > self.end_offset_s:
                self._current, self._read, self._histograms = {}, {}, {}
                self._info = format_info(0, "U", "")
                return
            current = {}
            for system, keys in self._timelines.items():
                times = [(key.snapshot_time_utc - self.first_time).total_seconds() for key in keys]
                index = bisect.bisect_right(times, offset_s) - 1
                if index >= 0:
                    current[system] = keys[index]
            if current != self._current:
                self._load(current)

    def _load(self, current: dict[str, SnapshotKey]) -> None:
        """Read the snapshots that became current; a subsystem with a new snapshot gets its objects back."""
        read = {}
        histograms: dict[str, Histogram] = {}
        snapshot_of: dict[str, str] = {}
        for system, key in sorted(current.items()):
            stored = self._read.get(key.snapshot_id)
            if stored is None:
                meta, stored = self.store.read_snapshot(key.snapshot_id)
                self._th1_versions[key.snapshot_id] = meta.th1_version
            read[key.snapshot_id] = stored
            if self._current.get(system) != key:
                self._erased -= stored.keys()
            for name, histogram in stored.items():
                if name in histograms:
                    log.warning("run %d: %s is in more than one subsystem; serving the first", self.run, name)
                    continue
                histograms[name] = histogram
                snapshot_of[name] = key.snapshot_id
        newest = max(current.values(), key=lambda key: key.order)
        meta = self.store.snapshot_meta(newest.snapshot_id)
        self._current, self._read = current, read
        self._histograms, self._snapshot_of = histograms, snapshot_of
        self._info = format_info(self.run, meta.hlt_mode, meta.beam_type)

    def info(self) -> str:
        return self._info

    def names(self) -> list[str]:
        with self.lock:
            return sorted((name for name in self._histograms if name not in self._erased), key=str.encode)

    def encoded(self, name: str) -> bytes:
        with self.lock:
            snapshot_id = self._snapshot_of[name]
            cached = self._encoded.get(name)
            if cached is None or cached[0] != snapshot_id:
                version = self._th1_versions.get(snapshot_id)
                cached = (snapshot_id, encode_tmessage_in_versions(self._histograms[name], version))
                self._encoded[name] = cached
            return cached[1]

    def streamer_block(self, names: Sequence[str]) -> bytes:
        return self._streamer_block

    def erase(self, names: Iterable[str]) -> None:
        with self.lock:
            self._erased.update(names)


def _streamer_block(streamer_dir: Path) -> bytes:
    """The ROOTSTRI block of the replay: the classes this project writes, plus the older class versions
    kept in the store's `streamers/` (by receivers, and by the archive import for Run-2 files)."""
    infos = list(uproot_written_streamers())
    ours = {(info.name, info.class_version) for info in infos}
    kept = StreamerContext.load(streamer_dir)
    for name, versions in sorted(kept.streamers.items()):
        infos += [info for version, info in sorted(versions.items()) if (name, version) not in ours]
    return encode_streamer_block(infos)
