"""Our Histogram in the scikit-hep world: the UHI PlottableHistogram protocol, mplhep and hist."""

from __future__ import annotations

import hist
import matplotlib
import numpy as np
import pytest
from uhi.typing.plottable import PlottableAxisGeneric, PlottableHistogram, PlottableTraits

from pipeline.histogram import Histogram, Kind

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt
import mplhep

EDGES_X = np.array([0.0, 1.0, 2.0, 4.0])  # variable bins
EDGES_Y = np.linspace(-1.0, 1.0, 5)  # regular bins


def weighted_1d() -> Histogram:
    values = np.array([0.5, 2.0, 3.0, 4.0, 0.25])  # with under- and overflow
    variances = np.array([0.25, 1.5, 9.0, 0.0, 0.125])
    return Histogram("dir/a hist", "TH1D", "A title", (EDGES_X,), values, variances, 9.0, ("x [cm]", "n"))


def unweighted_2d() -> Histogram:
    values = np.arange(30.0).reshape(5, 6)
    return Histogram("h2", "TH2F", "two", (EDGES_X, EDGES_Y), values, values, 435.0, ("x", "y", "z"))


def test_protocol_is_met_at_runtime_and_axes_describe_the_bins():
    histogram = unweighted_2d()
    assert isinstance(histogram, PlottableHistogram)
    assert histogram.kind == "COUNT" and histogram.kind is Kind.COUNT
    x_axis, y_axis = histogram.axes
    assert isinstance(x_axis, PlottableAxisGeneric) and isinstance(x_axis.traits, PlottableTraits)
    assert len(x_axis) == 3 and len(y_axis) == 4
    assert list(x_axis) == [(0.0, 1.0), (1.0, 2.0), (2.0, 4.0)]
    assert x_axis[2] == (2.0, 4.0) and x_axis[-1] == (2.0, 4.0) and y_axis[0] == (-1.0, -0.5)
    with pytest.raises(IndexError):
        x_axis[3]
    assert (x_axis.label, y_axis.label) == ("x", "y")
    assert not x_axis.traits.circular and not x_axis.traits.discrete
    assert x_axis == unweighted_2d().axes[0] and x_axis != y_axis
    np.testing.assert_array_equal(x_axis.edges, EDGES_X)


def test_values_variances_and_counts_hide_flow_bins():
    histogram = weighted_1d()
    np.testing.assert_array_equal(histogram.values(), [2.0, 3.0, 4.0])
    np.testing.assert_array_equal(histogram.variances(), [1.5, 9.0, 0.0])
    # Weighted: effective entries sum(w)^2 / sum(w^2), 0 where the variance is 0.
    np.testing.assert_allclose(histogram.counts(), [4.0 / 1.5, 1.0, 0.0])
    np.testing.assert_array_equal(histogram.counts(flow=True)[[0, -1]], [1.0, 0.5])
    unweighted = unweighted_2d()
    np.testing.assert_array_equal(unweighted.counts(), unweighted.values())
    assert unweighted.counts().shape == (3, 4)


def test_mplhep_draws_a_1d_histogram_with_our_edges_and_values():
    figure, axes = plt.subplots()
    try:
        artists = mplhep.histplot(weighted_1d(), ax=axes)
        stairs = artists[0].stairs
        np.testing.assert_array_equal(stairs.get_data().edges, EDGES_X)
        np.testing.assert_array_equal(stairs.get_data().values, [2.0, 3.0, 4.0])
        mesh = mplhep.hist2dplot(unweighted_2d(), ax=axes).pcolormesh
        np.testing.assert_array_equal(
            np.asarray(mesh.get_array()).ravel(), unweighted_2d().values().T.ravel()
        )
    finally:
        plt.close(figure)


def test_to_hist_round_trips_weighted_contents_and_variances_with_flow():
    histogram = weighted_1d()
    converted = histogram.to_hist()
    assert isinstance(converted.storage_type(), hist.storage.Weight)
    np.testing.assert_array_equal(converted.values(flow=True), histogram.values_flow)
    np.testing.assert_array_equal(converted.variances(flow=True), histogram.variances_flow)
    np.testing.assert_array_equal(converted.axes[0].edges, EDGES_X)
    assert converted.axes[0].label == "x [cm]"
    assert (converted.name, converted.label) == ("dir/a hist", "A title")


def test_to_hist_uses_double_storage_and_regular_axes_when_it_can():
    histogram = unweighted_2d()
    converted = histogram.to_hist()
    assert isinstance(converted.storage_type(), hist.storage.Double)
    assert isinstance(converted.axes[0], hist.axis.Variable)
    assert isinstance(converted.axes[1], hist.axis.Regular)
    np.testing.assert_array_equal(converted.axes[1].edges, EDGES_Y)
    np.testing.assert_array_equal(converted.values(flow=True), histogram.values_flow)
    np.testing.assert_array_equal(converted.variances(), histogram.values())


def test_hist_constructor_converts_our_histogram():
    converted = hist.Hist(weighted_1d())
    np.testing.assert_array_equal(converted.values(), [2.0, 3.0, 4.0])
    np.testing.assert_array_equal(converted.variances(), [1.5, 9.0, 0.0])


def test_a_3d_histogram_round_trips_through_hist():
    edges = (EDGES_X, EDGES_Y, np.array([0.0, 10.0]))
    values = np.arange(5.0 * 6.0 * 3.0).reshape(5, 6, 3)
    histogram = Histogram("h3", "TH3F", "three", edges, values, values * 2.0, 1.0, ("x", "y", "z"))
    converted = hist.Hist(histogram)
    assert [axis.label for axis in converted.axes] == ["x", "y", "z"]
    np.testing.assert_array_equal(converted.values(flow=True), values)
    np.testing.assert_array_equal(converted.variances(flow=True), values * 2.0)
    assert len(histogram.axes[2]) == 1 and histogram.axes[2][0] == (0.0, 10.0)
