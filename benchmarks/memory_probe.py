"""Runs the main job (`app.py`) with its dashboard workers instrumented, to find what a soak's server grows.

    python -m benchmarks.memory_probe --probe-dir DIR [--every-s 300] [--frames 12] -- app.py ARGS...

Each gunicorn worker, once its app is built, starts tracemalloc (`--frames` deep) and every `--every-s`
writes `DIR/worker-<pid>-<n>.tracemalloc` (a `tracemalloc.take_snapshot()`) and appends one line to
`DIR/caches-<pid>.jsonl`: its RSS and RssAnon, tracemalloc's traced total, and for every in-process cache
its entry count and approximate bytes (`cache_sizes`). `compare` prints the top allocations that grew
between two snapshots, by traceback:

    python -m benchmarks.memory_probe compare DIR/worker-123-1.tracemalloc DIR/worker-123-6.tracemalloc

Only for measurements (tracemalloc slows allocations and costs memory of its own); the soak benchmark
starts it with `--probe-dir`.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import os
import runpy
import sys
import threading
import time
import tracemalloc
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

MB = 1024 * 1024
# Objects whose size is not a cache's own: shared machinery reached from an entry.
_NOT_COUNTED = (type, types.ModuleType, types.FunctionType, types.MethodType, types.BuiltinFunctionType)


def deep_size(root: Any, stop: Iterable[Any] = ()) -> int:
    """Bytes of `root` and everything it references (numpy buffers included, each object once), not
    crossing `stop` objects, classes, modules or functions: an estimate of what dropping it frees."""
    seen = {id(obj) for obj in stop}
    pending = [root]
    total = 0
    while pending:
        obj = pending.pop()
        if id(obj) in seen or isinstance(obj, _NOT_COUNTED):
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            total += sys.getsizeof(obj) if obj.base is None else obj.nbytes + 112
            if obj.dtype != object:
                continue
        else:
            total += sys.getsizeof(obj)
        pending.extend(gc.get_referents(obj))
    return total


def _service() -> Any:
    from pipeline.processing.service import ProcessingService

    found = [obj for obj in gc.get_objects() if isinstance(obj, ProcessingService)]
    return found[0] if found else None


def cache_sizes() -> dict[str, dict[str, int]]:
    """Entries and approximate bytes of each in-process cache of this worker's ProcessingService, its
    store and the module-level caches."""
    from pipeline import store as store_module
    from pipeline.detectors import base as detectors_base

    service = _service()
    if service is None:
        return {}
    stop = [service, service.store, service._readers, service._disk, service.cache, service.monitor]
    stop += [service._timelines, service.trends]
    caches: dict[str, Any] = {
        "service._memory (views)": getattr(service, "_memory", None),  # before the byte bound
        "service._contents (slices)": getattr(service, "_contents", None),
        "service._held (views and slices)": getattr(service, "_held", None),
        "service._restart_answers": service._restart_answers,
        "timelines._timelines": service._timelines._timelines,
        "store._footers": service.store._footers,
        "store._names": service.store._names,
        "store._entries": service.store._entries,
        "store._FOLDER_LISTINGS": store_module._FOLDER_LISTINGS,
        "trends (TrendStore)": service.trends,
    }
    sizes = {}
    for name, cache in caches.items():
        if cache is None:
            continue
        entries = getattr(cache, "_entries", cache)
        try:
            count = len(entries)
        except TypeError:
            count = -1
        inner_stop = [obj for obj in stop if obj is not cache]
        sizes[name] = {"entries": count, "bytes": deep_size(entries, inner_stop)}
        if getattr(cache, "max_weight", None) is not None:
            sizes[name]["weight"] = cache.total_weight  # the cache's own measure (bytes, snapshots...)
    for name, function in vars(detectors_base).items():
        info = getattr(function, "cache_info", None)
        if info is not None:
            sizes[f"detectors.base.{name} (lru)"] = {"entries": info().currsize, "bytes": -1}
    return sizes


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
            "keepcost",
        )
    ]  # fmt: skip


def native_memory() -> dict[str, int]:
    """What the native allocators hold: glibc malloc (`mallinfo2`: in use, free inside its heaps,
    mmapped) and Arrow's pool (in use, its backend), which tracemalloc does not see."""
    stats: dict[str, int] = {}
    libc_name = ctypes.util.find_library("c")
    mallinfo2 = getattr(ctypes.CDLL(libc_name), "mallinfo2", None) if libc_name else None
    if mallinfo2 is not None:
        mallinfo2.restype = _MallInfo2
        info = mallinfo2()
        stats |= {
            "malloc_heap": info.arena,  # bytes of the heaps (sbrk and arenas), not mmapped chunks
            "malloc_in_use": info.uordblks,
            "malloc_free_in_heap": info.fordblks,
            "malloc_mmapped": info.hblkhd,
        }
    import pyarrow

    pool = pyarrow.default_memory_pool()
    stats |= {"arrow_in_use": pool.bytes_allocated(), "arrow_max": pool.max_memory()}
    return stats


def anonymous_mappings() -> dict[str, int]:
    """Resident anonymous memory by kind of mapping: the brk heap, big (>= 32 MB: glibc arenas,
    mimalloc segments) and small anonymous mappings."""
    kinds = {"heap": 0, "anon_big": 0, "anon_small": 0}
    name, size = "", 0
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
                start, end = (int(edge, 16) for edge in fields[0].split("-"))
                size, name = end - start, fields[5] if len(fields) > 5 else ""
            elif fields[0] == "Anonymous:":
                kb = int(fields[1]) * 1024
                if name == "[heap]":
                    kinds["heap"] += kb
                elif not name:
                    kinds["anon_big" if size >= 32 * MB else "anon_small"] += kb
    return kinds


def _rss() -> dict[str, int]:
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) * 1024
    return fields


def _probe_loop(probe_dir: Path, every_s: float) -> None:
    pid = os.getpid()
    started = time.monotonic()
    n = 0
    while True:
        time.sleep(every_s)
        n += 1
        if tracemalloc.is_tracing():
            tracemalloc.take_snapshot().dump(str(probe_dir / f"worker-{pid}-{n}.tracemalloc"))
        traced, peak = tracemalloc.get_traced_memory()
        line = {
            "n": n,
            "t_s": round(time.monotonic() - started, 1),
            **_rss(),
            "traced": traced,
            "traced_peak": peak,
            **native_memory(),
            **anonymous_mappings(),
            "caches": cache_sizes(),
        }
        with open(probe_dir / f"caches-{pid}.jsonl", "a") as out:
            out.write(json.dumps(line) + "\n")


def _instrument(probe_dir: Path, every_s: float, frames: int) -> None:
    """Make every dashboard worker start tracemalloc and the probe thread once its app is built."""
    from dashboard import server

    original = server.wsgi_factory

    def wsgi_factory(settings: Any) -> Any:
        build = original(settings)

        def instrumented() -> Any:
            if frames > 0:  # 0: cache and allocator figures only (tracemalloc slows a worker ~2x)
                tracemalloc.start(frames)
            app = build()
            threading.Thread(target=_probe_loop, args=(probe_dir, every_s), daemon=True).start()
            return app

        return instrumented

    server.wsgi_factory = wsgi_factory


def compare(before: Path, after: Path, top: int = 15) -> None:
    """Print the `top` tracebacks whose allocations grew most from `before` to `after`."""
    old = tracemalloc.Snapshot.load(str(before))
    new = tracemalloc.Snapshot.load(str(after))
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen*")]
    diffs = new.filter_traces(ignore).compare_to(old.filter_traces(ignore), "traceback")
    total = sum(d.size_diff for d in diffs)
    print(f"traced total grew {total / MB:+.1f} MB ({before.name} -> {after.name})")
    for diff in diffs[:top]:
        print(f"\n{diff.size_diff / MB:+.2f} MB ({diff.size / MB:.2f} MB now), {diff.count_diff:+d} blocks")
        for line in diff.traceback.format(limit=8, most_recent_first=True):
            print("   ", line)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "compare":
        parser = argparse.ArgumentParser(prog="memory_probe compare")
        parser.add_argument("before", type=Path)
        parser.add_argument("after", type=Path)
        parser.add_argument("--top", type=int, default=15)
        args = parser.parse_args(argv[1:])
        compare(args.before, args.after, args.top)
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probe-dir", type=Path, required=True)
    parser.add_argument("--every-s", type=float, default=300.0)
    parser.add_argument("--frames", type=int, default=12, help="tracemalloc's depth; 0: no tracemalloc")
    parser.add_argument("script", type=Path)
    parser.add_argument("script_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    args.probe_dir.mkdir(parents=True, exist_ok=True)
    _instrument(args.probe_dir, args.every_s, args.frames)
    sys.argv = [str(args.script), *args.script_args]
    runpy.run_path(str(args.script), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
