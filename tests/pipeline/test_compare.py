"""Reference comparison numbers: normalisation to the same events, ratio with errors, KS and chi2, and
the reference checks' verdicts for identical and for different histograms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.compare import chi2_test, kolmogorov_test, normalised_to_events, ratio
from pipeline.detectors.base import CheckParameters
from pipeline.detectors.checks import chi2_vs_reference, kolmogorov_vs_reference
from pipeline.histogram import Histogram

LIMITS = {"min_p_value": 1e-3, "medium_below": 1e-2}


def th1(values, variances=None, name: str = "h") -> Histogram:
    flow = np.concatenate([[0.0], np.asarray(values, dtype=float), [0.0]])
    var = flow.copy() if variances is None else np.concatenate([[0.0], np.asarray(variances, float), [0.0]])
    edges = np.arange(len(values) + 1, dtype=float)
    return Histogram(name, "TH1D", name, (edges,), flow, var, float(flow.sum()))


def test_reference_is_scaled_to_the_same_number_of_events() -> None:
    reference = th1([10.0, 20.0, 30.0])
    scaled = normalised_to_events(reference, reference_n_events=1000.0, n_events=250.0)
    np.testing.assert_allclose(scaled.values(), [2.5, 5.0, 7.5])
    np.testing.assert_allclose(scaled.variances(), [10.0 / 16, 20.0 / 16, 30.0 / 16])
    for bad in (0.0, -5.0, math.nan):
        with pytest.raises(ValueError, match="n_events"):
            normalised_to_events(reference, 1000.0, bad)


def test_ratio_values_and_propagated_errors() -> None:
    current = th1([4.0, 0.0, 9.0], variances=[4.0, 1.0, 9.0])
    reference = th1([2.0, 5.0, 0.0], variances=[1.0, 5.0, 0.0])
    result = ratio(current, reference)
    values = result.values()
    assert values[0] == pytest.approx(2.0) and values[1] == pytest.approx(0.0) and math.isnan(values[2])
    # var(a/b) = (var a + (a/b)^2 var b) / b^2
    assert result.variances()[0] == pytest.approx((4.0 + 4.0 * 1.0) / 4.0)
    assert result.variances()[1] == pytest.approx(1.0 / 25.0)  # an empty numerator keeps an error
    with pytest.raises(ValueError, match="binning"):
        ratio(current, th1([1.0, 2.0]))


def test_identical_shapes_pass_both_tests_with_p_value_one() -> None:
    shape = np.random.default_rng(1).poisson(200.0, 50).astype(float)
    current, reference = th1(shape), th1(3 * shape, variances=3 * shape)  # same shape, 3x the events
    ks, chi2 = kolmogorov_test(current, reference), chi2_test(current, reference)
    assert ks.statistic == pytest.approx(0.0) and ks.p_value == 1.0
    assert chi2.statistic == pytest.approx(0.0, abs=1e-9) and chi2.p_value == pytest.approx(1.0)
    assert chi2.ndf == 49
    for check in (kolmogorov_vs_reference, chi2_vs_reference):
        result = check(current, CheckParameters(values=LIMITS, reference=reference))
        assert result.quality == "Good" and result.threshold == 1e-3


def test_different_shapes_fail_both_tests() -> None:
    rng = np.random.default_rng(2)
    x = np.arange(50)
    current = th1(rng.poisson(1000.0 * np.exp(-x / 10.0)).astype(float))
    reference = th1(rng.poisson(1000.0 * np.exp(-x / 14.0)).astype(float))  # a harder spectrum
    for check in (kolmogorov_vs_reference, chi2_vs_reference):
        result = check(current, CheckParameters(values=LIMITS, reference=reference))
        assert result.quality == "Bad" and result.details["p_value"] < 1e-3, result.message


def test_two_samples_of_one_shape_pass_and_empty_ones_have_no_verdict() -> None:
    rng = np.random.default_rng(3)
    expected = 500.0 * np.exp(-np.arange(40) / 12.0)
    current, reference = th1(rng.poisson(expected).astype(float)), th1(rng.poisson(expected).astype(float))
    ks, chi2 = kolmogorov_test(current, reference), chi2_test(current, reference)
    assert ks.p_value > 0.01 and chi2.p_value > 0.01
    # The chi2 statistic by hand (ROOT's "UU" formula) on the filled bins.
    a, b = current.values(), reference.values()
    filled = (a + b) > 0
    by_hand = np.sum((b.sum() * a - a.sum() * b)[filled] ** 2 / (a + b)[filled]) / (a.sum() * b.sum())
    assert chi2.statistic == pytest.approx(by_hand)
    empty = th1(np.zeros(40))
    assert (
        kolmogorov_vs_reference(empty, CheckParameters(values=LIMITS, reference=reference)).quality == "Null"
    )
    assert chi2_vs_reference(current, CheckParameters(values=LIMITS)) is None  # no reference: no row
