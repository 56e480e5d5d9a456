"""Synthetic detectors and the run clock: declared shapes, real names, determinism, and exact truth."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import pytest

from pipeline.detectors.base import group_histograms
from pipeline.detectors.emc import PLUGIN as EMC_PLUGIN
from pipeline.emulator import DETECTORS, HOT_FASTOR_IDS, EmulatorConfig, SyntheticRuns, make_detector
from pipeline.emulator.detectors import Axis, fill_samples, geometric_sums, spec
from pipeline.emulator.detectors_emc import (
    CELLS_PER_ID_BIN,
    N_COLS,
    NOISY_CELL_IDS,
    fastor_position,
    supermodule_map,
)
from pipeline.emulator.runs import RunSchedule
from pipeline.settings import DEFAULT_SELECTIONS
from tests.clocks import ManualClock

ORIGIN = 1_700_000_000.0


def short_runs(subsystems=("EMC", "TPC", "HLT"), **overrides) -> tuple[SyntheticRuns, ManualClock]:
    clock = ManualClock(ORIGIN)
    settings = dict(start_time_utc=ORIGIN, step_s=1.0, run_length_s=10.0, run_gap_s=5.0, seed=11)
    settings.update(overrides)
    return SyntheticRuns(subsystems, EmulatorConfig(**settings), now=clock), clock


@pytest.fixture(scope="module")
def one_step() -> dict[str, dict]:
    """One step of every detector, seed 5."""
    return {name: cls().fill(0, np.random.default_rng(5)) for name, cls in DETECTORS.items()}


# --- declarations ------------------------------------------------------------------------------


def test_registry_holds_the_three_subsystems():
    assert set(DETECTORS) == {"EMC", "TPC", "HLT"}
    assert make_detector("TPC").subsystem == "TPC"
    with pytest.raises(KeyError, match="known"):
        make_detector("PHOS")


@pytest.mark.parametrize(
    "subsystem,name,class_name,shape",
    [
        ("EMC", "EMCTRQA_histEvents", "TH1F", (1,)),
        ("EMC", "EMCTRQA_histFastORL0", "TH1F", (5000,)),
        ("EMC", "EMCTRQA_histFastORL1LargeAmp", "TH1F", (5000,)),
        ("EMC", "EMCTRQA_histFastORL0Amp", "TH2F", (48, 104)),
        ("EMC", "EMCTRQA_histFastORL0Time", "TH2F", (48, 104)),
        ("EMC", "EMCTRQA_histAmpEdgePosEMCGAHOffline", "TH2F", (48, 104)),
        ("EMC", "EMCTRQA_histMaxEdgePosEMCL0Recalc", "TH2F", (48, 104)),
        ("EMC", "EMCTRQA_histFEEvsTRU_SM0", "TH2F", (50, 40)),
        ("EMC", "EMCTRQA_histFEEvsSTU_SM19", "TH2F", (50, 40)),
        ("EMC", "EMCTRQA_histEMCalPatchAmpEMCGAHOnline", "TH1F", (200,)),
        ("EMC", "EMCTRQA_histDCalMaxPatchAmpEMCJELOnline", "TH1F", (200,)),
        ("EMC", "EMCTRQA_histEMCalMedianVsDCalMedianRecalc", "TH2F", (60, 60)),
        ("EMC", "EMCTRQA_histFastORL0Amp_SM3", "TH2F", (24, 12)),
        ("EMC", "EMCTRQA_histFastORL1LargeAmp_SM19", "TH2F", (24, 12)),
        ("EMC", "EMCTRQA_histEMCalMedianVsDCalMaxEMCREBKGOffline", "TH2F", (80, 30)),
        ("EMC", "EMCTRQA_histDCalMedianVsEMCalMaxEMCREBKGRecalc", "TH2F", (80, 30)),
        ("EMC", "hClusterEneEMCAL", "TH1F", (200,)),
        ("EMC", "hClusterEtaVsPhi", "TH2F", (70, 115)),
        ("EMC", "hClusterM20", "TH1F", (100,)),
        ("EMC", "hClusterNumVsV0", "TH2F", (100, 100)),
        ("EMC", "hIDvsAmpLG", "TH2F", (100, 276)),
        ("EMC", "hIDvsTimeHG", "TH2F", (50, 276)),
        ("TPC", "TPCQA/h_tpc_track_all_recvertex_0_5_7", "TH3F", (160, 30, 25)),
        ("TPC", "TPCQA/h_tpc_track_neg_recvertex_4_5_6", "TH3F", (30, 30, 18)),
        ("TPC", "TPCQA/h_tpc_event_recvertex_2", "TH1D", (100,)),
        ("HLT", "fHistClusterChargeMax", "TH1D", (125,)),
        ("HLT", "fHistHLTInSize_HLTOutSize", "TH2F", (100, 100)),
        ("HLT", "fHistTPCAallClustersRowPhi", "TH2F", (159, 144)),
        ("HLT", "fHistTPCdEdxTotOROC2", "TH2F", (80, 80)),
        ("HLT", "fHistZNT_VZEROTrigChargeT", "TH2F", (50, 50)),
    ],
)
def test_real_names_classes_and_shapes(subsystem, name, class_name, shape):
    declared = make_detector(subsystem).specs[name]
    assert (declared.class_name, declared.histogram().shape) == (class_name, shape)


def test_histogram_counts_per_detector():
    counts = {name: len(cls().specs) for name, cls in DETECTORS.items()}
    assert counts == {"EMC": 237, "TPC": 18, "HLT": 31}
    emc = make_detector("EMC").names
    assert sum(n.startswith("EMCTRQA_histAmpEdgePos") for n in emc) == 15
    assert sum(n.startswith("EMCTRQA_histMaxEdgePos") for n in emc) == 15
    # FEE vs TRU/STU and FastOR L0/L1 hits, Amp and LargeAmp, for each of the 20 supermodules.
    assert sum("_SM" in n for n in emc) == 8 * 20
    assert sum("BKG" in n for n in emc) == 8
    assert {n for n in emc if n.startswith("hIDvs")} == {
        f"hIDvs{quantity}{gain}" for quantity in ("Amp", "Time") for gain in ("LG", "HG")
    }
    assert {"hClusterM20", "hClusterNumVsV0"} <= set(emc)
    tpc = make_detector("TPC").names
    assert {f"TPCQA/h_tpc_event_recvertex_{v}" for v in (0, 1, 2, 4, 5)} <= set(tpc)
    hlt = make_detector("HLT").names
    assert sum(n.startswith("fHistTPCdEdx") for n in hlt) == 10


def test_every_step_fills_every_declared_histogram_with_consistent_shapes(one_step):
    for subsystem, increments in one_step.items():
        detector = DETECTORS[subsystem]()
        assert set(increments) == set(detector.specs), subsystem
        for name, increment in increments.items():
            declared = detector.specs[name]
            assert increment.values_flow.shape == declared.flow_shape, name
            assert increment.variances_flow.shape == declared.flow_shape, name
            assert np.all(np.isfinite(increment.values_flow)), name
            assert np.all(increment.values_flow >= 0) and np.all(increment.variances_flow >= 0), name
            # Integer contents stay exact when a TH*F stores them as float32.
            assert np.array_equal(increment.values_flow, np.rint(increment.values_flow)), name
            assert increment.entries >= 0, name
            declared.histogram(increment)  # the Histogram type accepts it


@pytest.mark.parametrize("subsystem", sorted(DETECTORS))
@pytest.mark.parametrize("beam_type,hlt_mode", [("PbPb", "C"), ("pPb", "B")])
def test_other_beams_and_modes_fill_consistently(subsystem, beam_type, hlt_mode):
    detector = make_detector(subsystem, step_s=0.5, beam_type=beam_type, hlt_mode=hlt_mode)
    increments = detector.fill(0, np.random.default_rng(2))
    assert set(increments) == set(detector.specs)
    assert all(increments[n].values_flow.shape == s.flow_shape for n, s in detector.specs.items())


def test_hlt_output_ratio_follows_the_hlt_mode():
    def mean_ratio(hlt_mode: str) -> float:
        increment = make_detector("HLT", hlt_mode=hlt_mode).fill(0, np.random.default_rng(4))
        ratio = increment["fHistHLTSize_HLTInOutRatio"].values_flow.sum(axis=0)
        centres = np.concatenate(([0.0], np.arange(60) * 0.02 + 0.01, [0.0]))
        return float((ratio * centres).sum() / ratio.sum())

    assert mean_ratio("C") < 0.3 < 0.9 < mean_ratio("B")


def test_tpc_binning_fits_overwatch_projections():
    tpc = make_detector("TPC").specs
    clusters, eta, pt = tpc["TPCQA/h_tpc_track_pos_recvertex_0_5_7"].edges
    assert (clusters[70], clusters[160]) == (70, 160)  # bins 71-160: more than 70 clusters
    assert len(eta) == 31 and len(pt) == 26
    for projection in ("2_5_6", "3_5_6", "4_5_6"):
        eta_edges = tpc[f"TPCQA/h_tpc_track_pos_recvertex_{projection}"].edges[1]
        # Physical eta: bins 1-15 are the C side (eta < 0), 16-30 the A side.
        assert (eta_edges[0], eta_edges[30]) == (-1.5, 1.5) and abs(eta_edges[15]) < 1e-12


def test_tpc_all_tracks_are_positive_plus_negative(one_step):
    tpc = one_step["TPC"]
    for projection in ("0_5_7", "2_5_6", "3_5_6", "4_5_6"):
        pos, neg, all_ = (tpc[f"TPCQA/h_tpc_track_{c}_recvertex_{projection}"] for c in ("pos", "neg", "all"))
        assert np.array_equal(all_.values_flow, pos.values_flow + neg.values_flow)
        assert all_.entries == pos.entries + neg.entries > 0


def test_emc_events_in_bin_one_and_fastor_maps_agree(one_step):
    emc = one_step["EMC"]
    events = emc["EMCTRQA_histEvents"]
    assert events.values_flow[1] == events.entries > 0
    hits_per_id = emc["EMCTRQA_histFastORL0"].values_flow
    assert emc["EMCTRQA_histFastORL0Amp"].entries == hits_per_id.sum()
    per_sm = sum(emc[f"EMCTRQA_histFastORL0_SM{sm}"].values_flow.sum() for sm in range(20))
    assert per_sm == hits_per_id.sum()


def test_emc_supermodule_amplitude_maps_add_up_to_the_fastor_maps(one_step):
    emc = one_step["EMC"]
    for level in ("L0", "L1"):
        amplitude = emc[f"EMCTRQA_histFastOR{level}Amp"]
        per_sm = [emc[f"EMCTRQA_histFastOR{level}Amp_SM{sm}"] for sm in range(20)]
        assert sum(i.values_flow.sum() for i in per_sm) == amplitude.values_flow.sum() > 0
        assert sum(i.variances_flow.sum() for i in per_sm) == amplitude.variances_flow.sum()
        assert sum(i.entries for i in per_sm) == amplitude.entries
        large = emc[f"EMCTRQA_histFastOR{level}LargeAmp"].values_flow.sum()
        assert (
            sum(emc[f"EMCTRQA_histFastOR{level}LargeAmp_SM{sm}"].values_flow.sum() for sm in range(20))
            == large
        )
    # SM 0 is the 24 x 12 block at columns 0-23, rows 0-11 of the FastOR map.
    sm0 = emc["EMCTRQA_histFastORL0Amp_SM0"].values_flow[1:-1, 1:-1]
    assert np.array_equal(sm0, emc["EMCTRQA_histFastORL0Amp"].values_flow[1:25, 1:13])


def test_emc_cluster_cell_and_background_contents_are_plausible():
    runs, clock = short_runs(("EMC",))
    clock.time_utc = ORIGIN + 9.5
    runs.advance()
    held = runs.snapshot()

    def mean(histogram, axis=0):
        values = histogram.values()
        projected = values if values.ndim == 1 else values.sum(axis=1 - axis)
        centres = 0.5 * (histogram.edges[axis][1:] + histogram.edges[axis][:-1])
        return float((projected * centres).sum() / projected.sum())

    # The shower's minor axis is smaller than its major one.
    assert 0 < mean(held["hClusterM20"]) < mean(held["hClusterM02"])
    assert held["hClusterM20"].entries == held["hClusterM02"].entries
    # One entry per event, and busier events (more clusters) have a larger V0 amplitude.
    clusters_vs_v0 = held["hClusterNumVsV0"]
    assert clusters_vs_v0.entries == held["EMCTRQA_histEvents"].values()[0]
    values = clusters_vs_v0.values()
    v0_centres = 0.5 * (clusters_vs_v0.edges[1][1:] + clusters_vs_v0.edges[1][:-1])
    mean_v0 = (values * v0_centres).sum(axis=1) / np.maximum(values.sum(axis=1), 1)
    assert mean_v0[0] < mean_v0[2] < mean_v0[4]
    # Cell times peak at the collision time; noisy cells stand out at low high-gain amplitude.
    time_hg = held["hIDvsTimeHG"]
    time_projection = time_hg.values().sum(axis=1)
    assert 600 <= time_hg.edges[0][np.argmax(time_projection)] < 620
    amplitude_hg = held["hIDvsAmpHG"].values()
    lowest_amplitude = amplitude_hg[0]
    noisy_bins = [cell // CELLS_PER_ID_BIN for cell in NOISY_CELL_IDS]
    assert lowest_amplitude[noisy_bins].min() > 2 * np.median(lowest_amplitude)
    # High gain saturates (nothing from 15.6 GeV up), low gain has a threshold (nothing below 0.2 GeV).
    amplitude_edges = held["hIDvsAmpLG"].edges[0]
    assert amplitude_edges[78] == pytest.approx(15.6)
    amplitude_lg = held["hIDvsAmpLG"].values()
    assert amplitude_hg[78:].sum() == 0 and amplitude_lg[0].sum() == 0
    assert 0 < amplitude_lg.sum() < amplitude_hg.sum()
    # A calorimeter's largest background patch is well above the median background.
    for name in (
        "EMCTRQA_histEMCalMedianVsDCalMaxEMCREBKGRecalc",
        "EMCTRQA_histDCalMedianVsEMCalMaxEMCREBKGOffline",
    ):
        background = held[name]
        assert background.entries == held["EMCTRQA_histEvents"].values()[0]
        assert mean(background, axis=0) > 2 * mean(background, axis=1)


def test_every_emc_group_is_filled_and_selected_by_the_emc_receiver():
    runs, clock = short_runs(("EMC",))
    clock.time_utc = ORIGIN + 9.5
    runs.advance()
    held = runs.snapshot()
    assert all(re.search(DEFAULT_SELECTIONS["EMC"], name) for name in held)
    assert all(EMC_PLUGIN.is_own_histogram(name) for name in held)
    grouped = {group.title: members for group, members in group_histograms(EMC_PLUGIN, held)}
    expected = [group.title for group in EMC_PLUGIN.groups if group.title != "Non EMC"]
    assert list(grouped) == expected
    for title, members in grouped.items():
        assert any(held[name].values().any() for name in members), title


def test_phos_hole_and_missing_ids_stay_empty(one_step):
    emc = one_step["EMC"]
    hole = supermodule_map() < 0
    assert hole[16:32, 64:100].all() and hole.sum() == 16 * 36
    assert not emc["EMCTRQA_histFastORL0Amp"].values_flow[1:-1, 1:-1][hole].any()
    assert not emc["EMCTRQA_histFastORL0"].values_flow[1 + 48 * 104 :].any()


# --- randomness --------------------------------------------------------------------------------


@pytest.mark.parametrize("subsystem", sorted(DETECTORS))
def test_fill_is_deterministic_for_a_seed(subsystem):
    first = make_detector(subsystem).fill(3, np.random.default_rng(42))
    again = make_detector(subsystem).fill(3, np.random.default_rng(42))
    other = make_detector(subsystem).fill(3, np.random.default_rng(43))
    assert all(np.array_equal(first[n].values_flow, again[n].values_flow) for n in first)
    assert all(first[n].entries == again[n].entries for n in first)
    assert any(not np.array_equal(first[n].values_flow, other[n].values_flow) for n in first)


def test_event_rate_drifts():
    emc = make_detector("EMC")
    rates = [emc.event_rate_hz(step) for step in range(0, 200, 10)]
    assert max(rates) / min(rates) > 1.2


def test_fill_samples_uses_root_bin_convention():
    histogram = spec("h", "TH1D", "", Axis.regular(2, 0.0, 2.0))
    increment = fill_samples(histogram, np.array([-1.0, 0.0, 0.5, 1.0, 2.0, np.nan]), weights=np.full(6, 2.0))
    assert increment.values_flow.tolist() == [2.0, 4.0, 2.0, 4.0]  # [low, high); x >= max overflows
    assert increment.variances_flow.tolist() == [4.0, 8.0, 4.0, 8.0]
    assert increment.entries == 6


def test_geometric_amplitude_sums_are_integers_with_the_right_mean():
    rng = np.random.default_rng(1)
    counts = np.full(20000, 3)
    sums, squares = geometric_sums(rng, counts, offset=10.0, mean_excess=30.0)
    assert np.array_equal(sums, np.rint(sums)) and np.all(squares >= sums)
    assert sums.mean() == pytest.approx(3 * 40.0, rel=0.02)
    assert geometric_sums(rng, np.zeros(3, dtype=int), 10.0, 30.0)[0].tolist() == [0, 0, 0]


# --- hot FastORs ---------------------------------------------------------------------------------


def test_hot_fastors_stand_out_per_event():
    runs, clock = short_runs(("EMC",))
    clock.time_utc = ORIGIN + 9.5
    runs.advance()
    held = runs.snapshot()
    n_events = held["EMCTRQA_histEvents"].values()[0]
    assert n_events > 500
    for level in ("L0", "L1"):
        per_event = held[f"EMCTRQA_histFastOR{level}"].values() / n_events  # index == FastOR id
        hot = per_event[list(HOT_FASTOR_IDS)]
        others = np.delete(per_event, list(HOT_FASTOR_IDS))
        # Far above OVERWATCH's default 1e-2 hits/event threshold, and above any good channel even
        # in a short sample (where a good one can reach 1e-2 by chance).
        assert hot.min() > 0.1 and hot.min() > 5 * others.max()
        assert np.median(others[others > 0]) < 5e-3
    # The hot FastORs are where the TH2 map says they are (FastOR id = row * 48 + col).
    amplitude_map = held["EMCTRQA_histFastORL0Amp"].values()
    col, row = fastor_position(HOT_FASTOR_IDS[0])
    assert HOT_FASTOR_IDS[0] == row * N_COLS + col
    assert amplitude_map[col, row] > 20 * np.median(amplitude_map[amplitude_map > 0])
    # Trigger-electronics hot spots: online patch maps see them, offline (cell) maps do not.
    online = held["EMCTRQA_histAmpEdgePosEMCGALOnline"].values()
    offline = held["EMCTRQA_histAmpEdgePosEMCGALOffline"].values()
    assert (
        online[col - 1 : col + 1, row - 1 : row + 1].sum()
        > 5 * offline[col - 1 : col + 1, row - 1 : row + 1].sum()
    )


# --- the run clock --------------------------------------------------------------------------------


def test_schedule_runs_steps_and_gaps():
    schedule = RunSchedule(EmulatorConfig(step_s=1.0, run_length_s=10.0, run_gap_s=5.0, first_run=7), ORIGIN)
    assert schedule.steps_per_run == 9  # fills at +1 .. +9 s, strictly before the end of the run
    assert schedule.run_number_at(ORIGIN - 1) == 0
    assert schedule.run_number_at(ORIGIN) == 7
    assert schedule.run_number_at(ORIGIN + 9.99) == 7
    assert schedule.run_number_at(ORIGIN + 10) == 0
    assert schedule.run_number_at(ORIGIN + 15) == 8
    fills = schedule.fills_between(ORIGIN + 2, ORIGIN + 17)
    assert [(f.run_number, f.step_index) for f in fills] == [(7, s) for s in range(2, 9)] + [(8, 0), (8, 1)]
    assert fills[0].fill_time_utc == ORIGIN + 3  # (t0, t1]: a fill exactly at t0 is excluded


def test_accumulation_is_the_sum_of_the_steps():
    runs, clock = short_runs()
    clock.time_utc = ORIGIN + 6.0
    assert runs.advance() == 6
    held = runs.snapshot()
    assert set(held) == set(runs.declared_names)
    for name in (
        "EMCTRQA_histFastORL0Amp",
        "EMCTRQA_histFastORL1Amp_SM5",
        "EMCTRQA_histDCalMedianVsEMCalMaxEMCREBKGOffline",
        "hClusterNumVsV0",
        "hIDvsTimeLG",
        "TPCQA/h_tpc_track_pos_recvertex_0_5_7",
        "fHistTPCdEdxMaxIROC",
    ):
        subsystem = runs.subsystem_of(name)
        steps = [runs.step_increments(runs.run_number, step, subsystem)[name] for step in range(6)]
        assert np.array_equal(held[name].values_flow, sum(s.values_flow for s in steps))
        assert np.array_equal(held[name].variances_flow, sum(s.variances_flow for s in steps))
        assert held[name].entries == sum(s.entries for s in steps)
        truth = runs.filled_between(name, ORIGIN, clock.time_utc)
        assert np.array_equal(truth.values_flow, held[name].values_flow)
        assert truth.entries == held[name].entries


def test_time_slice_truth_matches_the_difference_of_cumulative_snapshots():
    runs, clock = short_runs(("HLT",))
    clock.time_utc = ORIGIN + 3.5
    runs.advance()
    earlier = runs.snapshot()["fHistTPCAallClustersRowPhi"]
    clock.time_utc = ORIGIN + 7.5
    runs.advance()
    later = runs.snapshot()["fHistTPCAallClustersRowPhi"]
    truth = runs.filled_between("fHistTPCAallClustersRowPhi", ORIGIN + 3.5, ORIGIN + 7.5)
    assert np.array_equal((later - earlier).values_flow, truth.values_flow)
    assert [r.step_index for r in runs.fills_between(ORIGIN + 3.5, ORIGIN + 7.5)] == [3, 4, 5, 6]
    as_datetimes = [datetime.fromtimestamp(t, UTC) for t in (ORIGIN + 3.5, ORIGIN + 7.5)]
    assert runs.filled_between("fHistTPCAallClustersRowPhi", *as_datetimes).entries == truth.entries


def test_state_depends_on_time_not_on_how_often_the_clock_was_read():
    stepped, stepped_clock = short_runs(("TPC",))
    for tick in range(1, 15):
        stepped_clock.time_utc = ORIGIN + tick * 0.5
        stepped.advance()
    jumped, jumped_clock = short_runs(("TPC",))
    jumped_clock.time_utc = ORIGIN + 7.0
    jumped.advance()
    for name, histogram in stepped.snapshot().items():
        assert np.array_equal(histogram.values_flow, jumped.snapshot([name])[name].values_flow)


def test_uncached_steps_are_regenerated_exactly():
    cached, clock = short_runs(("EMC",), cached_steps=32)
    regenerated, other_clock = short_runs(("EMC",), cached_steps=1)
    clock.time_utc = other_clock.time_utc = ORIGIN + 8.0
    cached.advance()
    regenerated.advance()
    name = "EMCTRQA_histAmpEdgePosEMCJEHOnline"
    assert np.array_equal(
        cached.filled_between(name, ORIGIN, ORIGIN + 8).values_flow,
        regenerated.filled_between(name, ORIGIN, ORIGIN + 8).values_flow,
    )
    assert len(regenerated._cache) == 1
    # The step cache (sparse, int32 or kept as is) gives back every object's increment bit for bit.
    run_number = cached.run_number
    fresh = cached._generate(run_number, 5, "EMC")
    for name, increment in cached.step_increments(run_number, 5, "EMC").items():
        assert np.array_equal(increment.values_flow, fresh[name].values_flow), name
        assert np.array_equal(increment.variances_flow, fresh[name].variances_flow), name
        assert increment.entries == fresh[name].entries, name


def test_end_of_run_clears_and_the_next_run_starts_fresh():
    runs, clock = short_runs(("HLT",))
    clock.time_utc = ORIGIN + 9.9
    runs.advance()
    assert runs.info() == "run=300000;HLT_MODE=B;BEAM_TYPE=pp"
    assert runs.names()
    clock.time_utc = ORIGIN + 12.0
    runs.advance()
    assert (runs.info(), runs.names(), runs.run_number) == ("run=0", [], 0)
    clock.time_utc = ORIGIN + 17.5  # run 2 started at +15: two fills
    runs.advance()
    assert runs.run_number == 300001
    tracks = runs.snapshot()["fHistTPCTrackPt"]
    assert tracks.entries == runs.filled_between("fHistTPCTrackPt", ORIGIN + 15, ORIGIN + 17.5).entries
    assert [r.run_number for r in runs.history()].count(300001) == 2


def test_erase_drops_an_object_until_its_next_fill():
    runs, clock = short_runs(("TPC",))
    clock.time_utc = ORIGIN + 3.0
    runs.advance()
    name = "TPCQA/h_tpc_event_6"
    version = runs.object_version(name)
    runs.erase([name])
    assert name not in runs.names() and runs.object_version(name) != version
    clock.time_utc = ORIGIN + 5.0
    runs.advance()
    assert runs.snapshot([name])[name].entries == runs.filled_between(name, ORIGIN + 3, ORIGIN + 5).entries


def test_filled_between_does_not_see_the_future():
    runs, clock = short_runs(("HLT",))
    clock.time_utc = ORIGIN + 2.5
    assert [r.step_index for r in runs.fills_between(ORIGIN, ORIGIN + 100)] == [0, 1]
    with pytest.raises(KeyError):
        runs.filled_between("nonexistent", ORIGIN, ORIGIN + 1)


def test_config_is_validated():
    with pytest.raises(ValueError):
        EmulatorConfig(step_s=0)
    with pytest.raises(ValueError):
        EmulatorConfig(first_run=0)
