"""The plug-in contract: grouping rules, the registry, per-event scaling and numpy projections."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from pipeline.detectors import PLUGINS, _union_of_option_specs, plugin_for
from pipeline.detectors.base import (
    DetectorPlugin,
    Group,
    bin_range_within,
    count_events,
    generic_plugin,
    group_histograms,
    process_histogram,
    project,
)
from pipeline.histogram import Histogram
from pipeline.processing.options import OptionSpec, ProcessingOptions


@dataclass(frozen=True)
class ScalingPlugin(DetectorPlugin):
    """A test plug-in that scales names containing "Scaled" and reverses grid groups."""

    def scales_by_events(self, name: str) -> bool:
        return "Scaled" in name

    def order_grid(self, names):
        return list(reversed(names))


TEST_PLUGIN = ScalingPlugin(
    subsystem="TST",
    groups=(
        Group("Per module", "Mod_M", grid=True),
        Group("Specific", "TSTspecific"),
        Group("Broad", "TST"),
        Group("Non TST", ""),
    ),
)


def _histogram_3d(seed: int = 0) -> Histogram:
    """A TH3 with distinct contents everywhere, flow bins included, and variances != values."""
    rng = np.random.default_rng(seed)
    edges = (np.linspace(0, 4, 5), np.linspace(-1.5, 1.5, 7), np.linspace(0, 3, 4))
    shape = tuple(len(e) + 1 for e in edges)
    values_flow = rng.integers(1, 100, size=shape).astype(float)
    return Histogram(
        name="h3",
        class_name="TH3D",
        title="",
        edges=edges,
        values_flow=values_flow,
        variances_flow=values_flow * 2.0,
        axis_titles=("x title", "y title", "z title"),
    )


def test_each_name_goes_to_the_first_matching_group_and_empty_groups_are_hidden() -> None:
    names = ["TSTspecific_a", "TST_other", "unrelated", "TSTspecific_b"]
    grouped = group_histograms(TEST_PLUGIN, names)
    assert [(group.title, members) for group, members in grouped] == [
        ("Specific", ["TSTspecific_a", "TSTspecific_b"]),
        ("Broad", ["TST_other"]),
        ("Non TST", ["unrelated"]),
    ]


def test_catch_all_exists_only_with_own_receiver() -> None:
    names = ["TST_other", "unrelated"]
    grouped = group_histograms(TEST_PLUGIN, names, has_own_receiver=False)
    assert [(group.title, members) for group, members in grouped] == [("Broad", ["TST_other"])]


def test_grid_groups_use_the_plugin_order() -> None:
    grouped = dict(
        (group.title, members) for group, members in group_histograms(TEST_PLUGIN, ["Mod_M1", "Mod_M2"])
    )
    assert grouped["Per module"] == ["Mod_M2", "Mod_M1"]


def test_registry_has_one_plugin_per_detector_module() -> None:
    assert set(PLUGINS) >= {"EMC", "TPC", "HLT"}
    for subsystem, plugin in PLUGINS.items():
        assert plugin.subsystem == subsystem
        assert plugin_for(subsystem) is plugin


def test_unknown_subsystem_gets_a_generic_catch_all() -> None:
    plugin = plugin_for("PHS")
    assert plugin == generic_plugin("PHS")
    names = ["PHS_clusters", "fHistOther"]
    own = group_histograms(plugin, names, has_own_receiver=True)
    assert [(group.title, members) for group, members in own] == [("PHS Histograms", names)]
    # From HLT files, only the histograms naming the subsystem (the original's default group).
    from_hlt = group_histograms(plugin, names, has_own_receiver=False)
    assert [(group.title, members) for group, members in from_hlt] == [("PHS Histograms", ["PHS_clusters"])]


def test_generic_events_histogram_is_the_first_sorted_name_containing_events() -> None:
    plugin = plugin_for("PHS")
    assert plugin.events_histogram_name(["b_Events", "a_nEvents", "other"]) == "a_nEvents"
    assert plugin.events_histogram_name(["other"]) is None


def test_count_events_reads_the_first_regular_bin(make_histogram) -> None:
    events = make_histogram("PHS_events", [[0, 1, 2]], [250.0, 7.0])
    assert count_events(plugin_for("PHS"), {"PHS_events": events}) == 250.0
    assert count_events(plugin_for("PHS"), {}) is None


@pytest.mark.parametrize("n_events", [4.0, 250.0])
def test_scaling_divides_values_by_events_and_variances_by_events_squared(make_histogram, n_events) -> None:
    values = np.array([[4.0, 8.0], [12.0, 0.0]])
    histogram = make_histogram("TSTScaled", [[0, 1, 2], [0, 1, 2]], values, variances=values * 3)
    processed = process_histogram(TEST_PLUGIN, histogram, ProcessingOptions(scale_by_events=True), n_events)
    assert processed.scaled_by_events
    np.testing.assert_allclose(processed.histogram.values(), values / n_events)
    np.testing.assert_allclose(processed.histogram.variances(), values * 3 / n_events**2)
    assert processed.hints.z_title == "entries / events"


def test_no_scaling_when_switched_off_or_without_events(make_histogram) -> None:
    values = np.array([5.0, 6.0])
    histogram = make_histogram("TSTScaled", [[0, 1, 2]], values)
    for options, n_events in [
        (ProcessingOptions(scale_by_events=False), 10.0),
        (ProcessingOptions(scale_by_events=True), 0.0),
        (ProcessingOptions(scale_by_events=True), None),
    ]:
        processed = process_histogram(TEST_PLUGIN, histogram, options, n_events)
        assert not processed.scaled_by_events
        np.testing.assert_array_equal(processed.histogram.values(), values)
        # A 1D histogram's value axis is y.
        assert processed.hints.y_title == "entries"


def test_names_the_plugin_does_not_scale_are_left_alone(make_histogram) -> None:
    histogram = make_histogram("TST_plain", [[0, 1, 2]], [5.0, 6.0])
    processed = process_histogram(TEST_PLUGIN, histogram, ProcessingOptions(scale_by_events=True), 10.0)
    assert processed.histogram is histogram
    assert processed.hints.y_title is None and processed.hints.z_title is None


def test_project3d_xz_puts_z_horizontal_and_x_vertical_summing_y_with_flow() -> None:
    source = _histogram_3d()
    result = project(source, (2, 0), name="xz")
    # ROOT "X vs Z": the result's x axis is the source z axis.
    assert result.shape == (3, 4)
    np.testing.assert_array_equal(result.edges[0], source.edges[2])
    np.testing.assert_array_equal(result.edges[1], source.edges[0])
    np.testing.assert_array_equal(result.values_flow, source.values_flow.sum(axis=1).T)
    np.testing.assert_array_equal(result.variances_flow, source.variances_flow.sum(axis=1).T)
    assert result.axis_titles == ("z title", "x title", "")
    assert result.class_name == "TH2D"


def test_projection_with_bin_ranges_sums_only_those_bins() -> None:
    source = _histogram_3d()
    # ProjectionZ over x bins 2-3 and y bins 1-6 (regular bins only), ROOT numbering.
    result = project(source, (2,), name="z", bin_ranges={0: (2, 3), 1: (1, 6)})
    expected = source.values_flow[2:4, 1:7, :].sum(axis=(0, 1))
    np.testing.assert_array_equal(result.values_flow, expected)
    np.testing.assert_array_equal(result.variances_flow, 2.0 * expected)
    # Ranges past the axis end are clipped, as ROOT does.
    clipped = project(source, (2,), name="z", bin_ranges={0: (3, 160)})
    np.testing.assert_array_equal(clipped.values_flow, source.values_flow[3:, :, :].sum(axis=(0, 1)))


def test_projection_refuses_ranges_on_kept_axes() -> None:
    with pytest.raises(ValueError, match="kept axes"):
        project(_histogram_3d(), (0, 1), name="bad", bin_ranges={0: (1, 2)})


def test_bin_range_within_selects_bins_entirely_inside_by_value() -> None:
    eta_edges = np.linspace(-1.5, 1.5, 31)
    assert bin_range_within(eta_edges, low=0.0) == (16, 30)
    assert bin_range_within(eta_edges, high=0.0) == (1, 15)
    # A bin straddling zero belongs to neither side.
    odd_edges = np.linspace(-1.0, 1.0, 6)
    assert bin_range_within(odd_edges, low=0.0) == (4, 5)
    assert bin_range_within(odd_edges, high=0.0) == (1, 2)
    first, last = bin_range_within(np.array([1.0, 2.0]), high=0.0)
    assert first > last


def test_from_hlt_files_a_generic_plugin_owns_the_names_naming_its_subsystem() -> None:
    plugin = plugin_for("PHS")
    assert plugin.is_own_histogram("PHS_clusters") and not plugin.is_own_histogram("fHistOther")
    # The HLT owns everything in its own files.
    assert plugin_for("HLT").is_own_histogram("anything at all")


def test_derived_histograms_default_to_derive_each_derived_name(make_histogram) -> None:
    @dataclass(frozen=True)
    class DoublingPlugin(DetectorPlugin):
        def derived_names(self, names):
            return [f"{name}_twice" for name in names if name.startswith("TST")]

        def derive(self, name, histograms):
            return histograms[name.removesuffix("_twice")].scaled(2.0)

    plugin = DoublingPlugin(subsystem="TST", groups=(Group("All", ""),))
    source = make_histogram("TSTa", [[0, 1, 2]], [1.0, 3.0])
    derived = plugin.derived_histograms({"TSTa": source, "other": source})
    assert list(derived) == ["TSTa_twice"]
    np.testing.assert_array_equal(derived["TSTa_twice"].values(), [2.0, 6.0])
    assert DetectorPlugin(subsystem="X", groups=()).derived_histograms({"TSTa": source}) == {}


def test_plugins_may_share_an_option_only_if_they_declare_it_alike() -> None:
    sigma = OptionSpec("n_sigma", float, 0.0, minimum=0.0)
    first = DetectorPlugin(subsystem="AAA", groups=(), option_specs=(sigma,))
    same = DetectorPlugin(subsystem="BBB", groups=(), option_specs=(sigma,))
    assert _union_of_option_specs([first, same]) == {"n_sigma": sigma}
    other = DetectorPlugin(subsystem="CCC", groups=(), option_specs=(OptionSpec("n_sigma", int, 3),))
    with pytest.raises(ValueError, match="n_sigma"):
        _union_of_option_specs([first, other])
    common = DetectorPlugin(
        subsystem="DDD", groups=(), option_specs=(OptionSpec("scale_by_events", bool, True),)
    )
    with pytest.raises(ValueError, match="common option"):
        _union_of_option_specs([common])
