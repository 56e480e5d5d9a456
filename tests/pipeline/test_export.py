"""ROOT export: uproot reads back exactly what was stored, for our own and ROOT-made histograms."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import uproot
from test_store import th1, th2, th3  # same builders, same numbers as the store tests

from pipeline.export import export_snapshot_root, receiver_file_name
from pipeline.histogram import Histogram
from pipeline.store import SnapshotMeta, SnapshotStore

PI_DAY = datetime(2015, 3, 14, 2, 3, 5, tzinfo=UTC)
# <SYS>histos_<run>_<mode>_<Y>_<M>_<D>_<h>_<m>_<s>.root, numbers without leading zeros.
RECEIVER_NAME = re.compile(r"^[A-Z]+histos_[1-9]\d*_[A-Z]+(_(0|[1-9]\d*)){6}\.root$")


def histogram_from_uproot(name: str, root_histogram) -> Histogram:
    """What a ROOT user sees, as our Histogram: flow contents, sumw2, edges, titles, fEntries."""
    dimension = len(root_histogram.axes)
    axis_members = ("fXaxis", "fYaxis", "fZaxis")[: max(dimension, 2)]
    return Histogram(
        name=name,
        class_name=root_histogram.classname,
        title=root_histogram.title,
        edges=tuple(axis.edges() for axis in root_histogram.axes),
        values_flow=np.asarray(root_histogram.values(flow=True), dtype=float),
        variances_flow=np.asarray(root_histogram.variances(flow=True), dtype=float),
        entries=root_histogram.member("fEntries"),
        axis_titles=tuple(root_histogram.member(m).member("fTitle") for m in axis_members),
    )


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(tmp_path / "data")


def test_receiver_file_name_is_not_zero_padded() -> None:
    meta = SnapshotMeta(123456, "EMC", PI_DAY, "B")
    assert receiver_file_name(meta) == "EMChistos_123456_B_2015_3_14_2_3_5.root"
    # The original receiver wrote Geneva wall-clock time (CET in March 2015).
    geneva = receiver_file_name(meta, tz=ZoneInfo("Europe/Zurich"))
    assert geneva == "EMChistos_123456_B_2015_3_14_3_3_5.root"
    assert RECEIVER_NAME.match(geneva)


def test_export_round_trips_th1_th2_th3_through_uproot(store: SnapshotStore) -> None:
    written = [th1(), th2(), th3()]
    store.write_snapshot(SnapshotMeta(123456, "EMC", PI_DAY, "B"), written)

    path = export_snapshot_root(store, 123456, "EMC", out_path=None)

    assert path == store.data_dir / "export" / "EMChistos_123456_B_2015_3_14_2_3_5.root"
    with uproot.open(path) as root_file:
        assert root_file.classnames() == {
            "hAmp;1": "TH1D",
            "EMCTRQA;1": "TDirectory",
            "EMCTRQA/hEtaPhi;1": "TH2D",
            "TPCQA;1": "TDirectory",
            "TPCQA/h_dca;1": "TH3D",
        }
        for want in written:
            got = histogram_from_uproot(want.name, root_file[want.name])
            assert got.title == want.title
            assert got.axis_titles[: want.dimension] == want.axis_titles[: want.dimension]
            assert got.entries == want.entries
            for got_edges, want_edges in zip(got.edges, want.edges, strict=True):
                np.testing.assert_array_equal(got_edges, want_edges)
            np.testing.assert_array_equal(got.values_flow, want.values_flow)
            np.testing.assert_array_equal(got.variances_flow, want.variances_flow)
        amp = root_file["hAmp"]
        assert amp.member("fYaxis").member("fTitle") == "counts"  # a TH1's y title survives
        assert amp.values(flow=True)[[0, 11]].tolist() == [0.0, 11.0]
        assert amp.member("fTsumw") == pytest.approx(sum(range(1, 11)))
        assert root_file["EMCTRQA/hEtaPhi"].values(flow=True)[4, 3] == 28.5
        # Irregular x edges are stored explicitly; regular y keeps ROOT's compact form.
        eta_phi = root_file["EMCTRQA/hEtaPhi"]
        assert np.asarray(eta_phi.member("fXaxis").member("fXbins")).tolist() == [0, 1, 2.5, 7]
        assert len(eta_phi.member("fYaxis").member("fXbins")) == 0


def test_export_chooses_snapshot_and_file(store: SnapshotStore, tmp_path: Path) -> None:
    older = store.write_snapshot(SnapshotMeta(5, "TPC", PI_DAY, "C"), [th1(offset=1)])
    later = datetime(2015, 3, 14, 12, 30, 0, tzinfo=UTC)
    store.write_snapshot(SnapshotMeta(5, "TPC", later, "C"), [th1(offset=2)])

    newest = export_snapshot_root(store, 5, "TPC", out_path=tmp_path)
    assert newest == tmp_path / "TPChistos_5_C_2015_3_14_12_30_0.root"
    explicit = export_snapshot_root(store, 5, "TPC", tmp_path / "old.root", snapshot_id=older)
    assert explicit == tmp_path / "old.root"
    with uproot.open(newest) as new_file, uproot.open(explicit) as old_file:
        assert new_file["hAmp"].values(flow=True)[0] == 2.0
        assert old_file["hAmp"].values(flow=True)[0] == 1.0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

    with pytest.raises(KeyError, match="no snapshot stored for run 6 TPC"):
        export_snapshot_root(store, 6, "TPC", tmp_path)
    with pytest.raises(ValueError, match="is run 5 TPC, not 5 EMC"):
        export_snapshot_root(store, 5, "EMC", tmp_path, snapshot_id=older)


def test_root_made_fixtures_survive_store_and_export(
    store: SnapshotStore, fixtures_dir: Path, expected: dict, tmp_path: Path
) -> None:
    fixtures = {"th1d": "hEMCalCellAmp", "th2f": "hEMCalTowerEtaPhi"}
    with uproot.open(fixtures_dir / "hists.root") as root_file:
        originals = [histogram_from_uproot(name, root_file[name]) for name in fixtures.values()]
    for histogram in originals:
        check_against_root_numbers(histogram, expected["hists"], fixtures)

    snapshot_id = store.write_snapshot(SnapshotMeta(246001, "EMC", PI_DAY, "B"), originals)
    _, stored = store.read_snapshot(snapshot_id)
    assert [stored[name].class_name for name in fixtures.values()] == ["TH1D", "TH2F"]
    path = export_snapshot_root(store, 246001, "EMC", tmp_path)

    assert path.name == "EMChistos_246001_B_2015_3_14_2_3_5.root"
    with uproot.open(path) as exported:
        assert exported.classnames() == {"hEMCalCellAmp;1": "TH1D", "hEMCalTowerEtaPhi;1": "TH2D"}
        for name in fixtures.values():
            check_against_root_numbers(
                histogram_from_uproot(name, exported[name]), expected["hists"], fixtures
            )


def check_against_root_numbers(histogram: Histogram, truth: dict, fixtures: dict) -> None:
    """Compare with ROOT's own numbers in expected.json (values with flow, errors, axes, titles)."""
    key = next(key for key, name in fixtures.items() if name == histogram.name)
    want = truth[key]
    assert histogram.title == want["title"]
    assert histogram.axis_titles[:2] == (want["xtitle"], want["ytitle"])
    assert histogram.entries == want["entries"]
    np.testing.assert_array_equal(histogram.values_flow, np.array(want["values_flow"]))
    assert histogram.values().sum() == want["integral"]
    x_edges = np.linspace(want["xmin"], want["xmax"], want["nbinsx"] + 1)
    np.testing.assert_array_equal(histogram.edges[0], x_edges)
    if "errors_flow" in want:
        np.testing.assert_allclose(histogram.errors(flow=True), want["errors_flow"], rtol=1e-12)
    if "nbinsy" in want:
        y_edges = np.linspace(want["ymin"], want["ymax"], want["nbinsy"] + 1)
        np.testing.assert_array_equal(histogram.edges[1], y_edges)
        # No sumw2 in the TH2F (sumw2_size 0): ROOT's variances are the contents.
        np.testing.assert_array_equal(histogram.variances_flow, histogram.values_flow)
