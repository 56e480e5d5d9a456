"""The processing service's disk cache keeps SQLite's in-memory page cache small: diskcache's default
(8,192 pages a connection) filled at ~1 MB a minute in a control-room soak, in every thread's
connection. Measured with SQLite's own counter of the memory it holds, in a fresh process."""

from __future__ import annotations

from tests.child_python import run_snippet

SQLITE_HELD = """
import ctypes, os, sys, tempfile
from pathlib import Path
import diskcache
from pipeline.processing.service import ProcessingService
from pipeline.store import SnapshotStore

sqlite = ctypes.CDLL("libsqlite3.so.0")  # the library Python's sqlite3 module is linked to
sqlite.sqlite3_memory_used.restype = ctypes.c_int64
root = Path(tempfile.mkdtemp())
if sys.argv[1] == "service":
    cache = ProcessingService(SnapshotStore(root / "data"), root / "cache").cache
else:
    cache = diskcache.Cache(str(root / "plain"))
for key in range(3000):  # ~30 MB of entries, each held in the database (not in a file of its own)
    cache.set(("view", key), os.urandom(10_000))
before = sqlite.sqlite3_memory_used()
for key in range(3000):
    assert len(cache.get(("view", key))) == 10_000
print(before, sqlite.sqlite3_memory_used())
"""


def sqlite_memory_mb(which: str) -> tuple[float, float]:
    printed = run_snippet(SQLITE_HELD, which, timeout=300)
    before, after = (int(value) / 2**20 for value in printed.split())
    return before, after


def test_reading_a_30_mb_disk_cache_keeps_sqlites_memory_under_8_mb():
    assert sqlite_memory_mb("service")[1] < 8.0  # 1,024 pages of 4 KB and their headers: 5.0 MB measured


def test_with_diskcaches_default_the_same_reads_hold_several_times_more():
    # The control: the same workload does fill SQLite's page cache, so the bound above is what holds it.
    assert sqlite_memory_mb("plain")[1] > 20.0  # 31.6 MB measured
