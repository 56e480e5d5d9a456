"""What keeps a dashboard worker's memory from creeping (dashboard.server): glibc's malloc arenas capped
(counted with malloc_info in a fresh process whose threads allocate at the same time), and the memory
Arrow's pool and glibc's heaps keep after frees handed back to the system (resident sizes, measured)."""

from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path

import pytest

from dashboard.app import background_manager
from dashboard.server import freed_memory_release
from pipeline.processing.service import DISK_CACHE_SQLITE_PAGES
from pipeline.settings import Settings
from tests.child_python import run_snippet

COUNT_ARENAS = """
import ctypes, ctypes.util, os, sys, tempfile, threading
from dashboard.server import limit_malloc_arenas

limited = limit_malloc_arenas() if sys.argv[1] == "limit" else False
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
barrier = threading.Barrier(8)

def allocate():
    barrier.wait()  # all at once: contention is what makes glibc hand out new arenas
    blocks = [libc.malloc(1024) for _ in range(20000)]
    barrier.wait()
    for block in blocks:
        libc.free(block)

threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
path = os.path.join(tempfile.mkdtemp(), "malloc_info.xml")
stream = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, stream)
libc.fclose(stream)
print(limited, open(path).read().count("<heap nr="))
"""

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or "libc.so.6" not in str(ctypes.util.find_library("c")),
    reason="malloc arenas are glibc's",
)


def arenas(mode: str, **env: str) -> tuple[str, int]:
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    limited, count = run_snippet(COUNT_ARENAS, mode, env=environment).split()
    return limited, int(count)


@glibc
def test_threads_get_at_most_two_arenas_once_limited():
    assert arenas("limit") == ("True", 2)


@glibc
def test_without_the_limit_the_same_threads_get_more_arenas():
    # The control: without it the test above could pass with a workload that never needs a 2nd arena.
    limited, count = arenas("none")
    assert limited == "False" and count > 2


@glibc
def test_an_operators_malloc_arena_max_is_left_alone():
    assert arenas("limit", MALLOC_ARENA_MAX="4")[0] == "False"


ARROW_CHURN = """
import os, re
from concurrent.futures import ThreadPoolExecutor
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from dashboard.app import background_manager
from dashboard.server import freed_memory_release
from pipeline.processing.service import DISK_CACHE_SQLITE_PAGES
from pipeline.settings import Settings

def pool_resident_mb():
    # mimalloc's reserved arena: the one mapping of 1 GiB or more.
    kb, inside = 0, False
    for line in open(f"/proc/{os.getpid()}/smaps"):
        span = re.match(r"([0-9a-f]+)-([0-9a-f]+) ", line)
        if span:
            inside = int(span[2], 16) - int(span[1], 16) >= 1 << 30
        elif inside and line.startswith("Rss:"):
            kb += int(line.split()[1])
    return kb / 1024

source = pa.array(np.arange(250_000, dtype=np.float64))
def churn(_):
    return len([pc.multiply(source, float(i)) for i in range(40)])  # 40 x 2 MB from Arrow's pool

with ThreadPoolExecutor(4) as threads:  # as a worker's request threads read snapshots
    list(threads.map(churn, range(8)))
before = pool_resident_mb()
freed_memory_release(5.0)(None, None)
print(pa.default_memory_pool().backend_name, pa.total_allocated_bytes(), before, pool_resident_mb())
"""


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads /proc/<pid>/smaps")
def test_the_hook_hands_back_what_arrows_pool_keeps_after_buffers_are_freed():
    backend, in_use, before_mb, after_mb = run_snippet(ARROW_CHURN).split()
    if backend != "mimalloc":
        pytest.skip(f"Arrow's pool is {backend} here")
    assert int(in_use) < 1024 * 1024  # every buffer was freed...
    assert float(before_mb) > 50  # ...yet the pool kept tens of MB resident (320 MB measured)
    assert float(after_mb) < float(before_mb) / 4  # and the release gave most of it back (to ~4 MB)


MALLOC_CHURN = """
import ctypes, ctypes.util
from dashboard.server import freed_memory_release, limit_malloc_arenas

limit_malloc_arenas()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def anonymous_mb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024

start = anonymous_mb()
blocks = [libc.malloc(1000) for _ in range(100_000)]  # ~100 MB in the heap, as a burst of reads
for index, block in enumerate(blocks):
    if index % 64 and index != len(blocks) - 1:  # most freed; a few (and the top) still in use
        libc.free(block)
before = anonymous_mb()
freed_memory_release(5.0)(None, None)
print(start, before, anonymous_mb())
"""


@glibc
def test_the_hook_hands_back_the_free_memory_inside_mallocs_heap():
    start, before, after = (float(mb) for mb in run_snippet(MALLOC_CHURN).split())
    assert before - start > 80  # glibc kept the freed ~98 MB resident: it gives back only the heap's top
    assert before - after > 60 and after - start < 35  # the hook returned the free pages (22 MB stay)


THREADS_CHURN = """
import sys, threading
import numpy as np
from dashboard.server import freed_memory_release, limit_malloc_arenas, use_system_allocator_for_arrow

limit_malloc_arenas()
chosen = use_system_allocator_for_arrow() if sys.argv[1] == "system" else False
import pyarrow as pa
import pyarrow.compute as pc

def anonymous_mb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024

rng = np.random.default_rng(1)
sources = [pa.array(np.arange(int(n), dtype=np.float64)) for n in rng.integers(500, 40_000, 64)]
start = anonymous_mb()
go, done = threading.Event(), threading.Barrier(5)

def read_and_drop(index):  # a reader thread that lives on, as a worker's request and reader threads
    go.wait()
    kept = []
    for step in range(3000):  # 4-320 KB buffers, as decoding row groups; a few kept a while
        buffer = pc.multiply(sources[(step * 7 + index) % 64], 2.0)
        if step % 50 == 0:
            kept.append(buffer)
    del kept
    done.wait()  # freed everything; stays alive while the hook runs
    done.wait()

threads = [threading.Thread(target=read_and_drop, args=(i,)) for i in range(4)]
for thread in threads:
    thread.start()
go.set()
done.wait()
before = anonymous_mb()
freed_memory_release(5.0)(None, None)  # from another thread, as gunicorn's post_request
after = anonymous_mb()
done.wait()
print(chosen, pa.default_memory_pool().backend_name, start, before, after)
"""


def arrow_churn(pool: str, **env: str) -> tuple[str, str, float, float, float]:
    environment = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"} | env
    chosen, backend, *figures = run_snippet(THREADS_CHURN, pool, env=environment).split()
    return (chosen, backend, *(float(mb) for mb in figures))


@glibc
def test_arrow_allocates_through_glibc_so_one_release_reaches_every_threads_buffers():
    chosen, backend, start, before, after = arrow_churn("system")
    assert (chosen, backend) == ("True", "system")
    assert before - start > 10 and after - start < 10  # what the threads freed is given back


@glibc
def test_with_arrows_own_pool_a_release_misses_what_other_threads_freed():
    # The control: mimalloc keeps freed pages in each thread's heap, out of another thread's reach.
    chosen, backend, start, _, after = arrow_churn("own")
    if backend != "mimalloc":
        pytest.skip(f"Arrow's pool is {backend} here")
    assert chosen == "False" and after - start > 50


def test_an_operators_arrow_pool_is_left_alone():
    assert arrow_churn("system", ARROW_DEFAULT_MEMORY_POOL="jemalloc")[:2] == ("False", "jemalloc")


def test_the_hook_releases_at_most_once_per_interval():
    now = [100.0]
    released = []
    hook = freed_memory_release(5.0, release=lambda: released.append(now[0]), clock=lambda: now[0])
    for t in (100.0, 101.0, 104.9, 105.0, 106.0, 111.0):
        now[0] = t
        hook(None, None)
    assert released == [100.0, 105.0, 111.0]


def test_the_background_job_cache_has_the_view_caches_sqlite_page_cap(tmp_path):
    """Each thread's connection to the background callbacks' disk cache keeps at most this many pages."""
    manager = background_manager(Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache"))
    try:
        (pages,) = manager.handle._sql("PRAGMA cache_size").fetchone()
    finally:
        manager.handle.close()
    assert pages == DISK_CACHE_SQLITE_PAGES < 8192  # diskcache's default is 8,192 pages (32 MB)
