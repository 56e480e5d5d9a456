"""Reference runs: who set which run for which subsystem and beam type, the file they live in, and the
reference checks a snapshot gets once one is set."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from pipeline.detectors import plugin_for
from pipeline.histogram import Histogram
from pipeline.processing.service import ProcessingService
from pipeline.processing.sizes import held_bytes
from pipeline.qc.evaluate import SnapshotInput, evaluate_snapshot
from pipeline.qc.paths import references_path
from pipeline.qc.references import get_reference, list_references, reference_history, set_reference
from pipeline.store import SnapshotMeta, SnapshotStore

WHEN = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def test_set_get_and_history_of_references(tmp_path) -> None:
    assert get_reference(tmp_path, "EMC", "pp") is None
    first = set_reference(tmp_path, "EMC", "pp", 300000, "alice", note="good pp run", now=WHEN)
    assert get_reference(tmp_path, "EMC", "pp") == first
    assert (first.run, first.set_by, first.set_at_utc) == (300000, "alice", WHEN.isoformat())
    later = WHEN + timedelta(hours=2)
    set_reference(tmp_path, "EMC", "pp", 300007, "bob", now=later)
    set_reference(tmp_path, "EMC", "PbPb", 310000, "carol", now=later)
    assert get_reference(tmp_path, "EMC", "pp").run == 300007
    assert get_reference(tmp_path, "EMC", "PbPb").run == 310000  # per beam type
    assert get_reference(tmp_path, "TPC", "pp") is None
    assert reference_history(tmp_path, "EMC", "pp") == [
        {"run": 300000, "set_by": "alice", "set_at_utc": WHEN.isoformat(), "note": "good pp run"}
    ]
    assert [(r.subsystem, r.beam_type, r.run) for r in list_references(tmp_path)] == [
        ("EMC", "PbPb", 310000),
        ("EMC", "pp", 300007),
    ]
    # A plain JSON file anyone can read.
    assert json.loads(references_path(tmp_path).read_text())["EMC"]["pp"]["set_by"] == "bob"


@pytest.mark.parametrize(
    ("subsystem", "beam_type", "run", "set_by", "message"),
    [
        ("EMC/..", "pp", 1, "alice", "subsystem"),
        ("EMC", "p p", 1, "alice", "beam type"),
        ("EMC", "pp", 0, "alice", "run"),
        ("EMC", "pp", True, "alice", "run"),
        ("EMC", "pp", 1, "  ", "set_by"),
    ],
)
def test_bad_references_are_refused_and_nothing_is_written(
    tmp_path, subsystem, beam_type, run, set_by, message
):
    with pytest.raises(ValueError, match=message):
        set_reference(tmp_path, subsystem, beam_type, run, set_by)
    assert not references_path(tmp_path).exists()


def spectrum(name: str, slope: float, scale: float = 1.0, seed: int = 0) -> Histogram:
    expected = scale * 2000.0 * np.exp(-np.arange(100) / slope)
    values = np.concatenate([[0.0], np.random.default_rng(seed).poisson(expected), [0.0]]).astype(float)
    return Histogram(name, "TH1D", name, (np.linspace(0, 10, 101),), values, values.copy(), values.sum())


def events(count: float) -> Histogram:
    values = np.array([0.0, count, 0.0])
    return Histogram("EMCTRQA_histEvents", "TH1D", "events", (np.array([0.0, 1.0]),), values, values, count)


def verdicts(current: dict, reference: dict | None) -> dict[tuple[str, str], str]:
    snapshot = SnapshotInput(
        run=2, subsystem="EMC", snapshot_id="EMC_2_x", snapshot_time_utc=WHEN, histograms=current,
        reference=reference,
    )  # fmt: skip
    evaluation = evaluate_snapshot(plugin_for("EMC"), snapshot)
    return {
        (r["histogram"], r["check"]): r["quality"]
        for r in evaluation.check_rows
        if r["content"] == "reference"
    }


def test_reference_checks_pass_the_same_shape_and_flag_a_changed_one() -> None:
    reference = {"hClusterM02": spectrum("hClusterM02", 20.0, 2.0, seed=1), "EMCTRQA_histEvents": events(2e4)}
    same = {"hClusterM02": spectrum("hClusterM02", 20.0, seed=2), "EMCTRQA_histEvents": events(1e4)}
    changed = {"hClusterM02": spectrum("hClusterM02", 12.0, seed=3), "EMCTRQA_histEvents": events(1e4)}
    assert verdicts(same, reference) == {
        ("hClusterM02", "ks_reference"): "Good",
        ("hClusterM02", "chi2_reference"): "Good",
    }
    assert verdicts(changed, reference) == {
        ("hClusterM02", "ks_reference"): "Bad",
        ("hClusterM02", "chi2_reference"): "Bad",
    }
    assert verdicts(same, None) == {}  # no reference set: no reference rows


def test_processing_service_sets_and_serves_the_reference_histogram(tmp_path) -> None:
    store = SnapshotStore(tmp_path)
    # With a big histogram beside it, read in the same row group (10 x 10,000 bins x 8 bytes each).
    big = [spectrum(f"hClusterBig{i}", 20.0) for i in range(10)]
    big = [
        Histogram(h.name, "TH1D", h.name, (np.arange(10_001.0),), np.ones(10_002), np.ones(10_002))
        for h in big
    ]
    store.write_snapshot(
        SnapshotMeta(300000, "EMC", WHEN, "B", "pp"), [spectrum("hClusterM02", 20.0), events(5e3), *big]
    )
    service = ProcessingService(store, tmp_path / "cache")
    with pytest.raises(LookupError, match="no reference"):
        service.reference_histogram("EMC", "pp", "hClusterM02")
    with pytest.raises(LookupError, match="no EMC snapshots"):
        service.set_reference_run("EMC", "pp", 299999, "alice")
    service.set_reference_run("EMC", "pp", 300000, "alice")
    histogram, n_events = service.reference_histogram("EMC", "pp", "hClusterM02")
    np.testing.assert_array_equal(histogram.values(), spectrum("hClusterM02", 20.0).values())
    assert n_events == 5e3
    # Pages keep it for long: it holds its own bins, not the buffers of the snapshot it was read with.
    _, read = store.read_snapshot(store.latest_snapshot_id(300000, "EMC"))
    assert held_bytes([read["hClusterM02"]]) > 800_000 and held_bytes([histogram]) < 10_000
    assert all(array.base is None for array in (histogram.values_flow, histogram.variances_flow))
    assert service.reference_run("EMC", "pp").set_by == "alice"
