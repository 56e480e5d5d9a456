"""Trends over an emulator run equal the numbers computed directly from the stored snapshots (and the
emulator's own record of what it filled), with the snapshot times as the x axis."""

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.detectors import PLUGINS, plugin_for
from pipeline.detectors.base import DetectorPlugin, TrendSpec
from pipeline.emulator.runs import EmulatorConfig, SyntheticRuns
from pipeline.qc.trend_store import TrendStore, trends_schema_markdown
from pipeline.qc.trender import Trender
from pipeline.qc.trending import QUANTITIES, trended_quantities, validate_trend_specs
from pipeline.store import SnapshotMeta, SnapshotStore

T0 = 1_800_000_000.0
RUN = 6100
CONFIG = EmulatorConfig(step_s=20.0, run_length_s=600.0, run_gap_s=60.0, first_run=RUN, start_time_utc=T0)
SNAPSHOT_TIMES = [T0 + 50.0 + 60.0 * i + (7.0 if i % 3 == 1 else 0.0) for i in range(6)]
FASTOR = "EMCTRQA_histFastORL0"
EDGE = "EMCTRQA_histAmpEdgePosEMCGAHOnline"
EVENTS = "EMCTRQA_histEvents"
README = Path(__file__).resolve().parents[2] / "README.md"


class Clock:
    t = T0

    def __call__(self) -> float:
        return self.t


def record(data_dir: Path, reset: bool = False) -> tuple[SyntheticRuns, SnapshotStore]:
    clock = Clock()
    runs = SyntheticRuns(("EMC",), CONFIG, now=clock)
    store = SnapshotStore(data_dir)
    for time_utc in SNAPSHOT_TIMES:
        clock.t = time_utc
        runs.advance(time_utc)
        held = runs.snapshot()
        meta = SnapshotMeta(RUN, "EMC", datetime.fromtimestamp(time_utc, UTC), "B", "pp", merger_reset=reset)
        store.write_snapshot(meta, list(held.values()))
        if reset:
            runs.erase(list(held))
    return runs, store


@pytest.fixture(scope="module")
def cumulative_run(tmp_path_factory):
    runs, store = record(tmp_path_factory.mktemp("cumulative"))
    trends = TrendStore(store.data_dir)
    trender = Trender(store)
    for key in store.snapshot_keys(RUN, "EMC"):
        trender.process(key.snapshot_id)
    return runs, store, trends


def direct_mean(values: np.ndarray, edges: np.ndarray) -> float:
    """Mean along x written out by hand: sum over bins of content x bin centre / total content."""
    per_x = values.reshape(values.shape[0], -1).sum(axis=1)
    centres = [(edges[i] + edges[i + 1]) / 2 for i in range(len(edges) - 1)]
    return float(sum(c * v for c, v in zip(centres, per_x, strict=True)) / per_x.sum())


def test_trend_values_equal_values_computed_from_the_snapshots(cumulative_run):
    _, store, trends = cumulative_run
    keys = store.snapshot_keys(RUN, "EMC")
    series_mean = trends.series(RUN, "EMC", EDGE, "mean")
    series_max = trends.series(RUN, "EMC", FASTOR, "maximum")
    interval_mean = trends.series(RUN, "EMC", EDGE, "mean", content="interval")
    # The x axis is time: every snapshot's own time, oldest first.
    assert list(series_mean["snapshot_time_utc"]) == [key.snapshot_time_utc for key in keys]
    assert str(series_mean["snapshot_time_utc"].dtype).startswith("datetime64")
    assert len(series_max) == len(keys) == 6
    previous = None
    for index, key in enumerate(keys):
        _, held = store.read_snapshot(key.snapshot_id, [EDGE, FASTOR, EVENTS])
        n_events = held[EVENTS].values()[0]
        assert series_mean["value"][index] == pytest.approx(
            direct_mean(held[EDGE].values(), held[EDGE].edges[0]), rel=1e-12
        )
        # FastOR maps are shown per event: the trended maximum is the largest count / events.
        fastor = held[FASTOR].values()
        assert series_max["value"][index] == pytest.approx(fastor.max() / n_events, rel=1e-12)
        assert series_max["error"][index] == pytest.approx(np.sqrt(fastor.max()) / n_events, rel=1e-9)
        if previous is not None:
            difference = held[EDGE].values() - previous[EDGE].values()
            assert interval_mean["value"][index] == pytest.approx(
                direct_mean(difference, held[EDGE].edges[0]), rel=1e-12
            )
            assert interval_mean["interval_start_utc"][index] == keys[index - 1].snapshot_time_utc
        previous = held
    # The first snapshot's interval is everything it holds.
    assert interval_mean["value"][0] == series_mean["value"][0]


def test_interval_values_match_what_the_emulator_filled(cumulative_run):
    runs, store, trends = cumulative_run
    keys = store.snapshot_keys(RUN, "EMC")
    entries = trends.series(RUN, "EMC", EVENTS, "entries", content="interval")
    rate = trends.series(RUN, "EMC", EVENTS, "events_per_minute", content="interval")
    for index in range(1, len(keys)):
        start, end = keys[index - 1].snapshot_time_utc, keys[index].snapshot_time_utc
        truth = runs.filled_between(EVENTS, start, end)
        assert entries["value"][index] == truth.values().sum()
        minutes = (end - start).total_seconds() / 60
        # No rate for the first snapshot (nothing says when its content began): row index - 1.
        assert rate["value"][index - 1] == pytest.approx(truth.values()[0] / minutes, rel=1e-12)
    assert rate["snapshot_time_utc"].tolist() == [key.snapshot_time_utc for key in keys[1:]]


def test_hot_fastor_count_is_trended(cumulative_run):
    _, _store, trends = cumulative_run
    from pipeline.emulator import HOT_FASTOR_IDS

    hot = trends.series(RUN, "EMC", FASTOR, "hot_channels")
    assert len(hot) == 6
    # The emulator's hot FastORs are above the default threshold once enough events are in.
    assert hot["value"].iloc[-1] >= len(HOT_FASTOR_IDS) > 0
    assert (hot["error"] == 0).all()


def test_reset_mode_gives_the_same_trends_as_cumulative_mode(cumulative_run, tmp_path):
    _, _cumulative_store, cumulative_trends = cumulative_run
    _, store = record(tmp_path / "reset", reset=True)
    trends = TrendStore(store.data_dir)
    trender = Trender(store)
    ids = [key.snapshot_id for key in store.snapshot_keys(RUN, "EMC")]
    for snapshot_id in ids[:3]:
        trender.process(snapshot_id)
    # A new trender (a restarted service) sums the earlier snapshots again from the store.
    restarted = Trender(store)
    for snapshot_id in ids[3:]:
        restarted.process(snapshot_id)
    expected = cumulative_trends.table(RUN, "EMC").drop(columns=["snapshot_id"])
    got = trends.table(RUN, "EMC").drop(columns=["snapshot_id"])
    pd.testing.assert_frame_equal(got, expected, rtol=1e-9)


def test_processing_a_snapshot_again_replaces_its_rows(cumulative_run, tmp_path):
    _, store, trends = cumulative_run
    before = trends.table(RUN, "EMC")
    last = store.snapshot_keys(RUN, "EMC")[-1].snapshot_id
    Trender(store).process(last)
    pd.testing.assert_frame_equal(trends.table(RUN, "EMC"), before)


def test_per_run_series_gives_each_runs_last_cumulative_value(cumulative_run):
    _, _store, trends = cumulative_run
    per_run = trends.per_run("EMC", EDGE, "mean")
    within = trends.series(RUN, "EMC", EDGE, "mean")
    assert per_run["run"].tolist() == [RUN]
    assert per_run["value"].iloc[0] == within["value"].iloc[-1]
    assert trends.per_run("EMC", EDGE, "mean", runs=[RUN + 1]).empty


def test_every_plugin_declares_known_quantities_and_hlt_tpc_emc_trend_something():
    for plugin in PLUGINS.values():
        validate_trend_specs(plugin)
    assert set(trended_quantities(plugin_for("EMC"), [EDGE, FASTOR, "hClusterM02"])) == {EDGE, FASTOR}
    assert trended_quantities(plugin_for("HLT"), ["fHistTPCTrackPt"])["fHistTPCTrackPt"] == (
        "mean",
        "std_dev",
        "maximum",
        "entries",
    )
    assert trended_quantities(plugin_for("TPC"), ["TPCQA/h_tpc_event_recvertex_2"])


def test_a_bad_declaration_names_the_plugin_and_field():
    bad = replace(DetectorPlugin(subsystem="XYZ", groups=()), trends=(TrendSpec("^a", ("median",)),))
    with pytest.raises(ValueError, match=r"XYZ: trends\[0\].quantities: unknown \['median'\]"):
        validate_trend_specs(bad)
    bad = replace(bad, trends=(TrendSpec("(", ("mean",)),))
    with pytest.raises(ValueError, match=r"XYZ: trends\[0\].pattern"):
        validate_trend_specs(bad)


def test_bad_content_is_refused_by_name(cumulative_run):
    _, _, trends = cumulative_run
    with pytest.raises(ValueError, match="content"):
        trends.series(RUN, "EMC", EDGE, "mean", content="weekly")


def test_readme_documents_the_trends_table_and_quantities():
    text = README.read_text()
    assert trends_schema_markdown() in text
    for name, quantity in QUANTITIES.items():
        assert f"| `{name}` | {quantity.description} |" in text, name


def test_a_reader_sees_new_and_replaced_snapshot_files(cumulative_run, tmp_path):
    import shutil

    import pyarrow as pa

    from pipeline.qc.paths import TRENDS_TABLE
    from pipeline.qc.results import write_snapshot_rows
    from pipeline.qc.trend_store import TRENDS_SCHEMA

    _, _store, trends = cumulative_run
    data_dir = tmp_path / "copy"
    shutil.copytree(trends.root, data_dir / "qc" / "trends")
    reader = TrendStore(data_dir)
    ids = reader.snapshot_ids(RUN, "EMC")
    last = ids[-1]
    (reader.run_dir(RUN, "EMC") / f"{last}.parquet").unlink()
    assert len(reader.series(RUN, "EMC", EDGE, "mean")) == len(ids) - 1
    # The last snapshot arrives, then is processed again with other values: both are seen.
    rows = trends.rows(RUN, "EMC", [last])
    write_snapshot_rows(
        data_dir, TRENDS_TABLE, "EMC", RUN, last, pa.Table.from_pandas(rows, schema=TRENDS_SCHEMA)
    )
    assert len(reader.series(RUN, "EMC", EDGE, "mean")) == len(ids)
    rows["value"] = -1.0
    write_snapshot_rows(
        data_dir, TRENDS_TABLE, "EMC", RUN, last, pa.Table.from_pandas(rows, schema=TRENDS_SCHEMA)
    )
    series = reader.series(RUN, "EMC", EDGE, "mean")
    assert (
        len(series) == len(ids) and series["value"].iloc[-1] == -1.0 and (series["value"].iloc[:-1] > 0).all()
    )
