"""The one place that runs batch work on Dask: the archive import and the QC rebuild share it.

`cluster(workers, scheduler)` gives a Dask client: a local cluster of `workers` processes (one thread
each: the work is pure Python holding the GIL, so threads would take turns) on 127.0.0.1 without a
dashboard, or a client of the existing cluster at `scheduler` (its workers must see the data folder
under the same path). `workers=0` and no scheduler gives None: `map_units` then runs the same function
in this process, one unit after the other (the baseline of the archive benchmark).

`map_units` runs `function(unit, **kwargs)` for every unit and yields (unit, result) as units finish.
Units travel in batches of `batch` per task: a task costs the scheduler a round trip and a few
milliseconds of bookkeeping, so many small units (one archive file) are cheaper grouped. A unit whose
function raised (a bug, a lost worker) yields its exception as the result, and the others go on.
Functions must return small results: whatever they produce (snapshots, QC files) they write themselves.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from distributed import Client

# What a worker needs no more of, for work units of tens of milliseconds that allocate and free MBs:
# - the statistical profiler, which walks every thread's stack every 10 ms;
# - glibc trimming its heap at every free above 64 KiB (Dask sets MALLOC_TRIM_THRESHOLD_ for its
#   spawned workers): each file's arrays then come back as fresh pages, 3.6 times the page faults of
#   a plain process on the same import (measured on 150 archive files).
_WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}

Unit = TypeVar("Unit")
Result = TypeVar("Result")


@contextmanager
def cluster(workers: int, scheduler: str | None = None) -> Iterator[Client | None]:
    """A Dask client (see the module doc); None for in-process work (`workers` <= 0, no scheduler)."""
    if scheduler is None and workers <= 0:
        yield None
        return
    import dask  # imported only where a cluster is used
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    with (
        # The workers' scratch space (spill files, locks) goes away with the cluster.
        tempfile.TemporaryDirectory(prefix="overwatch-dask-") as scratch,
        dask.config.set(_WORKER_CONFIG),  # read when the workers start
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # No dashboard; the scheduler's small HTTP server (health checks) on a free loopback port.
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            local_directory=scratch,
            silence_logs=logging.WARNING,
        ) as local,
        Client(local) as client,
    ):
        yield client


def n_workers(client: Client | None) -> int:
    """How many workers the client's cluster has now (0 for in-process work)."""
    if client is None:
        return 0
    return len(client.scheduler_info().get("workers", {}))


def batch_size(n_units: int, workers: int, per_worker: int = 8, largest: int = 16) -> int:
    """Units per task on `workers` workers: about `per_worker` tasks per worker (so a slow task does
    not leave the others idle at the end), at most `largest` units (the progress bar still moves)."""
    return max(1, min(largest, n_units // (max(workers, 1) * per_worker)))


def map_units(
    client: Client | None,
    function: Callable[..., Result],
    units: Sequence[Unit],
    batch: int = 1,
    **kwargs: Any,
) -> Iterator[tuple[Unit, Result | Exception]]:
    """(unit, result or the exception it raised) for every unit, as they finish (see the module doc)."""
    if client is None:
        for unit in units:
            yield unit, _run_one(function, unit, kwargs)
        return
    from distributed import as_completed

    batches = [list(units[start : start + batch]) for start in range(0, len(units), max(batch, 1))]
    futures = client.map(_run_batch, batches, function=function, kwargs=kwargs, pure=False)
    batch_of = {future.key: units_ for future, units_ in zip(futures, batches, strict=True)}
    for future in as_completed(futures):
        units_ = batch_of.pop(future.key)
        try:
            results: list[Any] = future.result()
        except Exception as error:  # the task itself was lost (a worker died): every unit of it
            results = [error] * len(units_)
        finally:
            future.release()
        yield from zip(units_, results, strict=True)


def _run_batch(units: list[Unit], function: Callable[..., Result], kwargs: dict[str, Any]) -> list[Any]:
    return [_run_one(function, unit, kwargs) for unit in units]


def _run_one(function: Callable[..., Result], unit: Unit, kwargs: dict[str, Any]) -> Result | Exception:
    try:
        return function(unit, **kwargs)
    except Exception as error:  # one unit's bug costs that unit only
        logging.getLogger(__name__).exception("work unit %r failed", unit)
        return error
