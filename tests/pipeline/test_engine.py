"""The batch engine shared by the archive import and the QC rebuild: every unit once, in batches, and a
unit that raises costs that unit only, in this process and on a local Dask cluster alike."""

from __future__ import annotations

import os

from pipeline.engine import batch_size, cluster, map_units, n_workers


def square_unless_seven(unit: int, offset: int = 0) -> tuple[int, int]:
    if unit == 7:
        raise ValueError("seven is refused")
    return unit * unit + offset, os.getpid()


def test_in_process_every_unit_once_and_a_failing_unit_alone():
    with cluster(workers=0) as client:
        assert client is None
        results = dict(map_units(client, square_unless_seven, list(range(10)), offset=1))
    assert sorted(results) == list(range(10))
    failed = results.pop(7)
    assert isinstance(failed, ValueError) and str(failed) == "seven is refused"
    assert {unit: value for unit, (value, _) in results.items()} == {
        u: u * u + 1 for u in range(10) if u != 7
    }
    assert {pid for _, pid in results.values()} == {os.getpid()}


def test_on_a_local_cluster_in_batches():
    units = list(range(23))
    with cluster(workers=1) as client:
        assert n_workers(client) == 1
        assert batch_size(len(units), n_workers(client)) == 2  # 23 units / (1 worker x 8 tasks)
        assert batch_size(10_000, 2) == 16 and batch_size(5, 2) == 1  # at most 16, at least 1
        results = list(map_units(client, square_unless_seven, units, batch=5, offset=2))
    assert sorted(unit for unit, _ in results) == units  # each once
    by_unit = dict(results)
    assert isinstance(by_unit.pop(7), ValueError)
    assert {unit: value for unit, (value, _) in by_unit.items()} == {u: u * u + 2 for u in units if u != 7}
    assert os.getpid() not in {pid for _, pid in by_unit.values()}  # the worker process did them
