"""Comparing a histogram with a reference: normalisation, ratio, Kolmogorov-Smirnov and chi2 tests.

Pure functions of two `Histogram`s with the same binning, used by the reference checks and by pages
that overlay a reference run (the reference scaled to the same number of events, and the ratio).
Multi-dimensional histograms are compared bin by bin over their flattened regular bins.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import special, stats

from pipeline.histogram import Histogram


class TestResult(NamedTuple):
    """A statistical comparison: the statistic, its p-value, and what it was computed from."""

    statistic: float
    p_value: float
    ndf: int = 0


def normalised_to_events(reference: Histogram, reference_n_events: float, n_events: float) -> Histogram:
    """The reference scaled to `n_events` (contents x n/n_ref, variances x (n/n_ref)^2), as a page
    overlays it. ValueError when either count is not a positive finite number."""
    for label, count in (("reference_n_events", reference_n_events), ("n_events", n_events)):
        if not (isinstance(count, int | float) and math.isfinite(count) and count > 0):
            raise ValueError(f"{label} must be a positive number, got {count!r}")
    return reference.scaled(n_events / reference_n_events)


def ratio(histogram: Histogram, reference: Histogram) -> Histogram:
    """Bin-by-bin histogram / reference, flow bins included; NaN where the reference is 0.

    Variances propagate as for independent numbers: var(a/b) = (a/b)^2 (var a / a^2 + var b / b^2),
    written as (var a + (a/b)^2 var b) / b^2 so that empty numerator bins keep a finite error.
    """
    _require_same_binning(histogram, reference)
    a, b = histogram.values_flow, reference.values_flow
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(b != 0, a / b, np.nan)
        variances = np.where(
            b != 0, (histogram.variances_flow + values**2 * reference.variances_flow) / b**2, np.nan
        )
    result = histogram.scaled(1.0)
    object.__setattr__(result, "values_flow", values)
    object.__setattr__(result, "variances_flow", variances)
    object.__setattr__(result, "name", f"{histogram.name} / reference")
    return result


def kolmogorov_test(histogram: Histogram, reference: Histogram) -> TestResult:
    """Binned two-sample Kolmogorov-Smirnov test of the shapes (as ROOT's TH1::KolmogorovTest).

    D is the largest distance between the two normalised cumulative distributions over the regular
    bins; each sample counts with its effective number of entries (sum w)^2 / sum w^2. p-value 1 for
    identical shapes; NaN when either histogram is empty.
    """
    _require_same_binning(histogram, reference)
    a, b = histogram.values().ravel(), reference.values().ravel()
    n_a, n_b = _effective_entries(histogram), _effective_entries(reference)
    if a.sum() <= 0 or b.sum() <= 0 or n_a <= 0 or n_b <= 0:
        return TestResult(math.nan, math.nan)
    distance = float(np.max(np.abs(np.cumsum(a) / a.sum() - np.cumsum(b) / b.sum())))
    z = distance * math.sqrt(n_a * n_b / (n_a + n_b))
    return TestResult(distance, float(special.kolmogorov(z)) if z > 0 else 1.0)


def chi2_test(histogram: Histogram, reference: Histogram) -> TestResult:
    """Chi2 test of two unweighted histograms' shapes (ROOT's Chi2Test "UU", NIM A 614 (2010) 287):

    chi2 = 1/(N1 N2) sum_i (N2 n1i - N1 n2i)^2 / (n1i + n2i) over bins where either is filled,
    ndf = those bins - 1. p-value 1 for identical shapes; NaN when either is empty or ndf < 1.
    """
    _require_same_binning(histogram, reference)
    a, b = histogram.values().ravel(), reference.values().ravel()
    total_a, total_b = a.sum(), b.sum()
    filled = (a + b) > 0
    ndf = int(filled.sum()) - 1
    if total_a <= 0 or total_b <= 0 or ndf < 1:
        return TestResult(math.nan, math.nan, max(ndf, 0))
    a, b = a[filled], b[filled]
    chi2 = float(np.sum((total_b * a - total_a * b) ** 2 / (a + b)) / (total_a * total_b))
    return TestResult(chi2, float(stats.chi2.sf(chi2, ndf)), ndf)


def _effective_entries(histogram: Histogram) -> float:
    weights = histogram.values().sum()
    squares = histogram.variances().sum()
    return float(weights * weights / squares) if squares > 0 else 0.0


def _require_same_binning(histogram: Histogram, reference: Histogram) -> None:
    if not histogram.same_binning(reference):
        raise ValueError(f"{histogram.name}: binning differs from the reference {reference.name}")
