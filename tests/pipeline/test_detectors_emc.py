"""EMC plug-in: the original's groups and names, hot FastORs, TRU grid, scaling and EMCal/DCal stacks."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.detectors import plugin_for
from pipeline.detectors.base import group_histograms, process_histogram
from pipeline.detectors.emc import (
    DCAL_STYLE,
    EMC_L1_ADC_TO_GEV,
    EMCAL_STYLE,
    FASTOR_NAMES,
    PLUGIN,
    TRU_GRID,
    default_hot_fastor_threshold,
    sort_supermodules_in_physical_order,
)
from pipeline.histogram import Histogram
from pipeline.processing.options import ProcessingOptions

# (histogram name, group it belongs to), names as in the 2018 EMC files and the original's code.
GROUP_OF_NAME = [
    ("EMCTRQA_histFEEvsTRU_SM3", "FEE vs TRU"),
    ("EMCTRQA_histFEEvsSTU_SM12", "FEE vs STU"),
    ("EMCTRQA_histFastORL0_SM3", "FastOR L0 (hits with ADC > 0)"),
    ("EMCTRQA_histFastORL0Amp_SM3", "FastOR L0 Amp (hits weighted with ADC value)"),
    ("EMCTRQA_histFastORL0LargeAmp_SM3", "FastOR L0 Large Amp (hits above 400 ADC)"),
    ("EMCTRQA_histFastORL1_SM19", "FastOR L1 (hits with ADC > 0)"),
    ("EMCTRQA_histFastORL1Amp_SM0", "FastOR L1 Amp (hits weighted with ADC value)"),
    ("EMCTRQA_histFastORL1LargeAmp_SM7", "FastOR L1 Large Amp (hits above 400 ADC)"),
    ("hClusterEneEMCAL", "EMCal cluster level"),
    ("EMCTRQA_hClusterM02", "EMCal cluster level"),
    ("hClusterM20", "EMCal cluster level"),
    ("hClusterNumVsV0", "EMCal cluster level"),
    ("hIDvsAmpLG", "EMCal cell level"),
    ("hIDvsAmpHG", "EMCal cell level"),
    ("hIDvsTimeLG", "EMCal cell level"),
    ("hIDvsTimeHG", "EMCal cell level"),
    ("EMCTRQA_histEMCalMedianVsDCalMedianRecalc", "EMCal vs DCal Median"),
    ("EMCTRQA_histAmpEdgePosEMCGALOnline", "Gamma Trigger Low"),
    ("EMCTRQA_histMaxEdgePosEMCGAHOffline", "Gamma Trigger High"),
    ("EMCTRQA_histAmpEdgePosEMCJELOnline", "Jet Trigger Low"),
    ("EMCTRQA_histAmpEdgePosEMCJEHRecalc", "Jet Trigger High"),
    ("EMCTRQA_histAmpEdgePosEMCL0Offline", "L0"),
    ("EMCTRQA_histDCalMedianVsDCalMaxEMCREBKGOffline", "Background"),
    ("EMCTRQA_histEMCalMedianVsDCalMaxEMCREBKGOffline", "Background"),
    ("EMCTRQA_histDCalMedianVsEMCalMaxEMCREBKGRecalc", "Background"),
    ("EMCTRQA_histEMCalMedianVsEMCalMaxEMCREBKGRecalc", "Background"),
    ("EMCTRQA_histFastORL0", "FastOR"),
    ("EMCTRQA_histFastORL1LargeAmp", "FastOR"),
    ("EMCTRQA_histFastORL0Time", "FastOR"),
    ("EMCTRQA_histEvents", "Other EMC"),
    ("fHistTPCTrackPt", "Non EMC"),
]

N_FASTORS = 3000
N_EVENTS = 1000.0
# FastOR id -> counts in N_EVENTS events: 0.05, 0.5 and 5 per event, over a background of 0.002.
INJECTED_HOT_COUNTS = {3: 50.0, 42: 500.0, 2999: 5000.0}


def _fastor_histogram(name: str, counts: dict[int, float], background: float = 2.0) -> Histogram:
    """TH1 of counts per FastOR id (bin = id + 1), with a huge overflow that must never be reported."""
    values_flow = np.full(N_FASTORS + 2, background)
    values_flow[[0, -1]] = [0.0, 1e6]
    for fastor_id, count in counts.items():
        values_flow[fastor_id + 1] = count
    return Histogram(
        name=name,
        class_name="TH1F",
        title="L0 entries vs FastOR number",
        edges=(np.arange(N_FASTORS + 1, dtype=float),),
        values_flow=values_flow,
        variances_flow=values_flow.copy(),
    )


def _titles(grouped) -> dict[str, list[str]]:
    return {group.title: members for group, members in grouped}


def test_plugin_is_registered_with_twenty_groups_in_priority_order() -> None:
    assert plugin_for("EMC") is PLUGIN
    assert len(PLUGIN.groups) == 20
    assert PLUGIN.groups[0].title == "FEE vs TRU" and PLUGIN.groups[0].grid
    assert [g.title for g in PLUGIN.groups[-2:]] == ["Other EMC", "Non EMC"]
    assert sum(group.grid for group in PLUGIN.groups) == 8


@pytest.mark.parametrize(("name", "group_title"), GROUP_OF_NAME)
def test_each_histogram_lands_in_the_original_group(name: str, group_title: str) -> None:
    all_names = [n for n, _ in GROUP_OF_NAME]
    assert name in _titles(group_histograms(PLUGIN, all_names))[group_title]


def test_empty_groups_are_hidden() -> None:
    grouped = group_histograms(PLUGIN, ["EMCTRQA_histEvents", "EMCTRQA_histFastORL0"])
    assert [group.title for group, _ in grouped] == ["FastOR", "Other EMC"]


def test_non_emc_histograms_are_shown_only_with_an_own_receiver() -> None:
    names = ["EMCTRQA_histEvents", "fHistTPCTrackPt"]
    assert "Non EMC" in _titles(group_histograms(PLUGIN, names, has_own_receiver=True))
    from_hlt = _titles(group_histograms(PLUGIN, names, has_own_receiver=False))
    assert from_hlt == {"Other EMC": ["EMCTRQA_histEvents"]}


def test_supermodule_grid_is_in_physical_order() -> None:
    names = [f"EMCTRQA_histFastORL0_SM{sm}" for sm in range(20)]
    random.Random(7).shuffle(names)
    grouped = _titles(group_histograms(PLUGIN, names))
    order = [int(name.rsplit("SM", 1)[1]) for name in grouped["FastOR L0 (hits with ADC > 0)"]]
    # Row by row, two supermodules per row: DCal 18/19 ... 12/13, then EMCal 10/11 ... 0/1.
    assert order == [18, 19, 16, 17, 14, 15, 12, 13, 10, 11, 8, 9, 6, 7, 4, 5, 2, 3, 0, 1]


def test_missing_supermodule_keeps_row_order() -> None:
    names = ["X_SM0", "X_SM1", "X_SM3", "Y_noSM"]
    assert sort_supermodules_in_physical_order(names) == ["X_SM3", "X_SM0", "X_SM1", "Y_noSM"]


@pytest.mark.parametrize(
    ("name", "pretty_name"),
    [
        ("EMCTRQA_histFastORL0_SM3", "FastOR L0 · SM 3"),
        ("EMCTRQA_histFEEvsTRU_SM18", "FEE vs TRU · SM 18"),
        ("EMCTRQA_histAmpEdgePosEMCGAHOffline", "AmpEdgePosEMCGAHOffline"),  # no title: cleaned
        ("hClusterEneEMCAL", "Cluster E"),
        ("hClusterM20", "Cluster M20"),
        ("hClusterNumVsV0", "Number of Clusters vs V0 amplitude"),
        ("hClusterSomethingNew", "hClusterSomethingNew"),
        ("hIDvsAmpLG", "Cell ID vs Amplitude - LG"),
        ("hIDvsAmpHG", "Cell ID vs Amplitude - HG"),
        ("hIDvsTimeHG", "Cell ID vs Time - HG"),
        ("fHistTPCTrackPt", "TPCTrackPt"),  # no title: cleaned
    ],
)
def test_pretty_names(name: str, pretty_name: str) -> None:
    assert PLUGIN.display_name(name) == pretty_name


def test_supermodule_histograms_are_titled_by_supermodule(make_histogram) -> None:
    hints = PLUGIN.draw_hints(make_histogram("EMCTRQA_histFastORL0_SM13", [[0, 1, 2], [0, 1]], [[1], [2]]))
    assert (hints.title, hints.show_title) == ("SM 13", True)
    assert hints.colz and hints.log_z


def test_fee_hints_restrict_ranges(make_histogram) -> None:
    hints = PLUGIN.draw_hints(make_histogram("EMCTRQA_histFEEvsTRU_SM2", [[0, 300], [0, 30]], [[1]]))
    assert hints.log_z and hints.x_range == (0.0, 250.0) and hints.y_range == (0.0, 20.0)


def test_cluster_and_cell_hints(make_histogram) -> None:
    th1 = make_histogram("hClusterEneEMCAL", [[0, 1, 2]], [1, 2])
    hints = PLUGIN.draw_hints(th1)
    assert hints.log_y and not hints.colz and not hints.log_z
    assert (hints.x_title, hints.y_title) == ("Cluster Energy (GeV)", "dN_{cluster}/dE")
    th2 = make_histogram("hIDvsAmpHG", [[0, 1], [0, 1]], [[1]])
    hints = PLUGIN.draw_hints(th2)
    assert hints.log_x and hints.log_z and hints.colz
    assert (hints.x_title, hints.y_title) == ("Cell amplitude", "Cell ID")


@pytest.mark.parametrize(
    ("name", "scaled"),
    [
        ("EMCTRQA_histFastORL0_SM3", True),
        ("EMCTRQA_histFastORL0Amp_SM3", True),
        ("EMCTRQA_histFastORL1LargeAmp_SM14", True),
        ("EMCTRQA_histAmpEdgePosEMCGAHOffline", True),
        ("EMCTRQA_histFastORL1LargeAmp", True),
        ("EMCTRQA_histEMCalPatchAmpEMCGAHOffline", True),
        ("EMCTRQA_histEMCalPatchAmpSubtractedEMCGAHOffline", False),
        ("EMCTRQA_histEMCalPatchAmpEMCREGAOffline", False),
        ("EMCTRQA_histFastORL0Time", False),
        ("EMCTRQA_histEvents", False),
        ("hClusterEneEMCAL", False),
        ("hClusterNumVsV0", False),
        ("hIDvsAmpHG", False),
        ("EMCTRQA_histEMCalMedianVsDCalMaxEMCREBKGOffline", False),
    ],
)
def test_which_histograms_are_scaled_by_events(name: str, scaled: bool) -> None:
    assert PLUGIN.scales_by_events(name) is scaled


def test_events_histogram() -> None:
    assert (
        PLUGIN.events_histogram_name(["EMCTRQA_histFastORL0", "EMCTRQA_histEvents"]) == "EMCTRQA_histEvents"
    )
    assert PLUGIN.events_histogram_name(["EMCTRQA_histFastORL0"]) is None


def test_hot_fastor_names_and_default_thresholds() -> None:
    assert {
        "EMCTRQA_histFastORL0",
        "EMCTRQA_histFastORL0Amp",
        "EMCTRQA_histFastORL0LargeAmp",
        "EMCTRQA_histFastORL1",
        "EMCTRQA_histFastORL1Amp",
        "EMCTRQA_histFastORL1LargeAmp",
    } == FASTOR_NAMES
    assert default_hot_fastor_threshold("EMCTRQA_histFastORL1LargeAmp") == 1e-7
    assert default_hot_fastor_threshold("EMCTRQA_histFastORL0Amp") == 1e4
    assert default_hot_fastor_threshold("EMCTRQA_histFastORL0") == 1e-2


def test_injected_hot_fastors_are_found_at_the_default_threshold() -> None:
    histogram = _fastor_histogram("EMCTRQA_histFastORL0", INJECTED_HOT_COUNTS)
    [result] = PLUGIN.checks(histogram, ProcessingOptions(), N_EVENTS)
    assert result.check == "hot_fastors"
    assert result.quality == "Bad"
    assert result.details["hot_channel_ids"] == [3, 42, 2999]
    assert result.details["threshold"] == 1e-2
    assert result.details["threshold_source"] == "default"
    assert result.details["per_event"] is True
    assert result.message == "3 hot FastORs above 0.01"


@pytest.mark.parametrize(("threshold", "hot_ids"), [(0.1, [42, 2999]), (1.0, [2999]), (10.0, [])])
def test_a_user_threshold_replaces_the_default(threshold: float, hot_ids: list[int]) -> None:
    histogram = _fastor_histogram("EMCTRQA_histFastORL0", INJECTED_HOT_COUNTS)
    options = ProcessingOptions(hot_channel_threshold=threshold)
    [result] = PLUGIN.checks(histogram, options, N_EVENTS)
    assert result.details["hot_channel_ids"] == hot_ids
    assert result.details["threshold"] == threshold
    assert result.details["threshold_source"] == "user"
    assert result.quality == ("Bad" if hot_ids else "Good")


def test_without_scaling_the_threshold_applies_to_raw_counts() -> None:
    histogram = _fastor_histogram("EMCTRQA_histFastORL0", INJECTED_HOT_COUNTS)
    options = ProcessingOptions(scale_by_events=False, hot_channel_threshold=100.0)
    [result] = PLUGIN.checks(histogram, options, N_EVENTS)
    assert result.details["hot_channel_ids"] == [42, 2999]
    assert result.details["per_event"] is False


def test_large_amp_default_flags_any_hit() -> None:
    histogram = _fastor_histogram("EMCTRQA_histFastORL1LargeAmp", {7: 1.0, 8: 1.0}, background=0.0)
    [result] = PLUGIN.checks(histogram, ProcessingOptions(), N_EVENTS)
    assert result.details["hot_channel_ids"] == [7, 8]
    assert result.details["threshold"] == 1e-7


def test_per_event_threshold_without_an_event_count_is_null() -> None:
    histogram = _fastor_histogram("EMCTRQA_histFastORL0", INJECTED_HOT_COUNTS)
    [result] = PLUGIN.checks(histogram, ProcessingOptions(), None)
    assert result.quality == "Null"
    assert result.details["hot_channel_ids"] == []


def test_processing_a_fastor_histogram_scales_it_and_runs_the_check() -> None:
    histogram = _fastor_histogram("EMCTRQA_histFastORL0", INJECTED_HOT_COUNTS)
    processed = process_histogram(PLUGIN, histogram, ProcessingOptions(), N_EVENTS)
    assert processed.scaled_by_events
    assert processed.histogram.values()[42] == pytest.approx(0.5)
    assert processed.histogram.variances()[42] == pytest.approx(500.0 / N_EVENTS**2)
    assert processed.hints.y_title == "entries / events"
    assert processed.hints.marker is not None and processed.hints.marker.symbol == "circle"
    assert [check.details["hot_channel_ids"] for check in processed.checks] == [[3, 42, 2999]]


def test_only_the_summary_th1s_get_the_hot_fastor_check(make_histogram) -> None:
    per_sm = make_histogram("EMCTRQA_histFastORL0_SM3", [[0, 1, 2]], [100.0, 0.0])
    assert PLUGIN.checks(per_sm, ProcessingOptions(), N_EVENTS) == []
    th2 = make_histogram("EMCTRQA_histFastORL0Amp", [[0, 48], [0, 104]], [[100.0]])
    assert PLUGIN.checks(th2, ProcessingOptions(), N_EVENTS) == []


def test_tru_grid_segments() -> None:
    assert len(TRU_GRID) == 22
    vertical = [(x0, y0, y1) for (x0, y0), (x1, y1) in TRU_GRID if x0 == x1]
    horizontal = [(y0, x0, x1) for (x0, y0), (x1, y1) in TRU_GRID if y0 == y1]
    assert len(vertical) == 5 + 1 + 4 + 1 and len(horizontal) == 5 + 1 + 4 + 1
    # Full EMCal supermodules: every 8 columns over rows 0-60, every 12 rows across.
    assert {x for x, y0, y1 in vertical if (y0, y1) == (0, 60)} == {8, 16, 24, 32, 40}
    assert {y for y, x0, x1 in horizontal if (x0, x1) == (0, 48)} == {12, 24, 36, 48, 60, 64, 100}
    # PHOS hole: no TRU boundary at column 24 across the 2/3 DCal rows, nor rows between columns 16-32.
    assert {x for x, y0, y1 in vertical if (y0, y1) == (64, 100)} == {8, 16, 32, 40}
    assert not any(x == 24 and y0 < 100 and y1 > 64 for x, y0, y1 in vertical)
    assert sorted((y, x0, x1) for y, x0, x1 in horizontal if y in (76, 88)) == [
        (76, 0, 16),
        (76, 32, 48),
        (88, 0, 16),
        (88, 32, 48),
    ]
    # 1/3 supermodules split in two at column 24.
    assert (24, 60, 64) in vertical and (24, 100, 104) in vertical


def test_tru_grid_is_drawn_on_edge_position_and_fastor_maps_only(make_histogram) -> None:
    edges_2d = [np.arange(49), np.arange(105)]
    for name in ("EMCTRQA_histAmpEdgePosEMCGAHOffline", "EMCTRQA_histFastORL0Amp"):
        assert PLUGIN.draw_hints(make_histogram(name, edges_2d, np.zeros((48, 104)))).overlays == TRU_GRID
    assert PLUGIN.draw_hints(make_histogram("EMCTRQA_histFastORL0", [[0, 1]], [1.0])).overlays == ()
    assert PLUGIN.draw_hints(make_histogram("EMCTRQA_histEvents", [[0, 1]], [1.0])).overlays == ()


def test_patch_amplitude_spectra_get_log_y_and_an_energy_axis(make_histogram) -> None:
    for name in ("EMCTRQA_histEMCalPatchAmpEMCGAHOffline", "EMCTRQA_histDCalMaxPatchAmpEMCJEHOnline"):
        hints = PLUGIN.draw_hints(make_histogram(name, [[0, 100, 200]], [10.0, 1.0]))
        assert hints.log_y and hints.grid_lines
        assert hints.secondary_x_axis is not None
        assert hints.secondary_x_axis.scale == EMC_L1_ADC_TO_GEV == 0.07874
    plain = PLUGIN.draw_hints(make_histogram("EMCTRQA_histEvents", [[0, 1]], [1.0]))
    assert plain.secondary_x_axis is None and not plain.log_y


def test_emcal_and_dcal_spectra_form_stacks() -> None:
    names = [
        "EMCTRQA_histEMCalPatchAmpEMCGAHOffline",
        "EMCTRQA_histDCalPatchAmpEMCGAHOffline",
        "EMCTRQA_histEMCalMaxPatchAmpEMCJEHOnline",
        "EMCTRQA_histDCalMaxPatchAmpEMCJEHOnline",
        "EMCTRQA_histEMCalPatchAmpEMCGALOnline",  # no DCal partner: stays on its own
        "EMCTRQA_histEvents",
    ]
    stacks = PLUGIN.stacks(names)
    assert [stack.members for stack in stacks] == [
        ("EMCTRQA_histEMCalPatchAmpEMCGAHOffline", "EMCTRQA_histDCalPatchAmpEMCGAHOffline"),
        ("EMCTRQA_histEMCalMaxPatchAmpEMCJEHOnline", "EMCTRQA_histDCalMaxPatchAmpEMCJEHOnline"),
    ]
    first = stacks[0]
    assert first.name == first.members[0]
    assert first.labels == ("EMCal", "DCal")
    assert first.styles == (EMCAL_STYLE, DCAL_STYLE)
    assert (EMCAL_STYLE.symbol, DCAL_STYLE.symbol) == ("circle", "circle-open")
    assert first.title == "EMCal and DCal patch amplitude (EMCGAH Offline)"


def test_outlier_check_is_opt_in(make_histogram) -> None:
    values = np.ones((4, 5))
    values[2, 3] = 50.0
    histogram = make_histogram("EMCTRQA_histFastORL0Amp_SM4", [np.arange(5), np.arange(6)], values)
    assert PLUGIN.checks(histogram, ProcessingOptions(), N_EVENTS) == []
    options = ProcessingOptions.from_mapping({"outlier_n_sigma": "1"})
    [result] = PLUGIN.checks(histogram, options, N_EVENTS)
    assert result.check == "signal_outliers" and result.quality == "Medium"
    assert result.details["outlier_bins"] == [(3, 4)]
    assert result.details["mean_without_outliers"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "name,own",
    [
        ("EMCTRQA_histEvents", True),
        ("EMCTRQA_hClusterM02", True),
        ("hClusterEneEMCAL", True),
        ("hIDvsAmpHG", True),
        ("EMCRE_histPatchAmp", True),
        # HLT histograms that EMC's broad selectors ("Cluster", "EMC") would otherwise take.
        ("fHistClusterChargeMax", False),
        ("fHistClusterChargeTot", False),
        ("fHistTPCAallClustersRowPhi", False),
        ("fHistTPCCattachedClustersRowPhi", False),
        ("TPCQA/h_tpc_event_6", False),
    ],
)
def test_only_emc_histograms_are_claimed_from_hlt_files(name, own) -> None:
    assert PLUGIN.is_own_histogram(name) is own


def test_a_count_of_thousands_reads_with_separators() -> None:
    # Every FastOR above 0.001 per event (the audit's 4,372 case): "4,372", as the id list says it.
    histogram = _fastor_histogram("EMCTRQA_histFastORL0", {}, background=2.0)
    [result] = PLUGIN.checks(histogram, ProcessingOptions(hot_channel_threshold=1e-3), N_EVENTS)
    assert len(result.details["hot_channel_ids"]) == N_FASTORS > 1000
    assert result.message.startswith(f"{N_FASTORS:,} hot FastORs ")
