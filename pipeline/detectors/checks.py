"""Generic check functions the detector plug-ins declare (`CheckSpec`), each `(histogram, parameters)
-> CheckResult`: pure, so the QC service, a page and a test all get the same verdict.

Parameters (`CheckParameters.values`) are declared per check in the plug-in, with per-histogram
overrides; the names each function reads are listed in its docstring.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pipeline.compare import chi2_test, kolmogorov_test
from pipeline.detectors.base import CheckParameters, CheckResult, CheckSpec, Quality
from pipeline.histogram import Histogram
from pipeline.wording import counted


def _enough_events(parameters: CheckParameters) -> bool:
    """False when the check declares `min_events` and the content holds fewer (or an unknown count)."""
    minimum = parameters.get("min_events")
    if minimum is None:
        return True
    return parameters.n_events is not None and parameters.n_events >= minimum


def _not_enough_events(check: str, parameters: CheckParameters) -> CheckResult:
    count = "unknown" if parameters.n_events is None else f"{parameters.n_events:g}"
    return CheckResult(check, "Null", f"too few events to judge ({count} < {parameters['min_events']:g})")


def grade_flagged(
    flagged: Sequence[int], parameters: CheckParameters, default: Quality = "Bad"
) -> tuple[Quality, str]:
    """The quality of a check that flagged these channels, and a note for its message.

    Channels in `known_ids` (the detector's known bad-channel map) make it Medium: still reported, but
    not news. Any other flagged channel makes it `quality` (default Bad). None flagged: Good.
    """
    if not flagged:
        return "Good", ""
    known = set(parameters.get("known_ids", ()))
    n_known = sum(1 for channel in flagged if channel in known)
    note = f" ({n_known} known)" if n_known else ""
    return ("Medium" if n_known == len(flagged) else parameters.get("quality", default)), note


def empty_histogram(histogram: Histogram, parameters: CheckParameters) -> CheckResult:
    """`quality` (default Bad) when nothing at all was filled, flow bins included, once the content
    holds `min_events` events (if declared); Good otherwise."""
    if not _enough_events(parameters):
        return _not_enough_events("empty", parameters)
    if histogram.values_flow.any():
        return CheckResult("empty", "Good", "filled")
    events = "" if parameters.n_events is None else f" in {parameters.n_events:g} events"
    return CheckResult("empty", parameters.get("quality", "Bad"), f"empty{events}")


def hot_channels_along_y(histogram: Histogram, parameters: CheckParameters) -> CheckResult:
    """Noisy channels of a `channel id (y) vs amplitude (x)` map: y bins whose content summed over x is
    above `factor` x the median over all y bins (that median must be at least `min_median` counts);
    graded by `grade_flagged` (`known_ids`).

    Flagged ids are the channel ids where each flagged y bin starts (the bin's low edge), so with one
    channel per bin they are the channel ids. `per_event`: the threshold is given per event too.
    """
    per_channel = histogram.values().sum(axis=0)
    median = float(np.median(per_channel))
    if median < parameters.get("min_median", 0.0) or median <= 0:
        return CheckResult("hot_channels", "Null", f"too few counts to judge (median {median:g} per bin)")
    threshold = parameters["factor"] * median
    flagged = np.flatnonzero(per_channel > threshold)
    low_edges = np.asarray(histogram.edges[1])[flagged]
    ids = tuple(int(edge) for edge in np.rint(low_edges))
    n_events = parameters.n_events
    per_event = n_events is not None and n_events > 0
    shown = threshold / n_events if per_event else threshold
    label = parameters.get("id_label", "channel ids")
    quality, note = grade_flagged(ids, parameters)
    return CheckResult(
        "hot_channels",
        quality,
        f"{counted(len(ids), 'noisy channel bin')}{note} above {parameters['factor']:g} x median "
        f"({shown:.3g})",
        threshold=shown,
        threshold_source="default",
        per_event=per_event,
        flagged_ids=ids,
        id_label=label,
        flags_above=True,
    )


def dead_channels(histogram: Histogram, parameters: CheckParameters) -> CheckResult:
    """Channels of a per-id TH1 (id = bin number - 1) with no content while the median channel has at
    least `min_median` counts; ids in `ignore_ids` (holes in the geometry) are never channels.

    Good with none; `medium_up_to` dead channels or fewer is Medium (a few known dead channels are
    a fact of life); more is Bad.
    """
    values = histogram.values().ravel()
    live = np.ones(values.size, dtype=bool)
    ignore = np.asarray(parameters.get("ignore_ids", ()), dtype=np.int64)
    live[ignore[(ignore >= 0) & (ignore < values.size)]] = False
    median = float(np.median(values[live])) if live.any() else 0.0
    if median < parameters.get("min_median", 1.0):
        return CheckResult(
            "dead_channels", "Null", f"too few counts to judge (median {median:g} per channel)"
        )
    dead = np.flatnonzero(live & (values <= 0))
    count = int(dead.size)
    quality: Quality = "Good" if count == 0 else "Medium" if count <= parameters["medium_up_to"] else "Bad"
    return CheckResult(
        "dead_channels",
        quality,
        f"{counted(count, 'dead channel')} (median {median:g} counts)",
        threshold=0.0,
        threshold_source="default",
        flagged_ids=tuple(int(i) for i in dead),
        id_label=parameters.get("id_label", "channel ids"),
    )


def event_rate(histogram: Histogram, parameters: CheckParameters) -> CheckResult:
    """Events per second over an interval: the histogram's total content (one fill per event, e.g. an
    events counter) divided by the interval's seconds; Bad below `min_rate_hz`."""
    duration = parameters.duration_s
    if duration is None or duration <= 0:
        return CheckResult("event_rate", "Null", "no interval to measure a rate over")
    events = float(histogram.values(flow=True).sum())
    rate = events / duration
    minimum = float(parameters["min_rate_hz"])
    quality: Quality = "Good" if rate >= minimum else "Bad"
    return CheckResult(
        "event_rate",
        quality,
        f"{rate:.3g} events/s over the last {duration:.0f} s (minimum {minimum:g})",
        threshold=minimum,
        threshold_source="default",
    )


def sector_efficiency(histogram: Histogram, parameters: CheckParameters) -> CheckResult:
    """Sectors whose content is below `min_relative` x the median sector of their side.

    `phi_axis` (0 = x, 1 = y) is split into `sectors` equal sectors. With `eta_axis` (the other axis)
    the A side (eta > 0) gives sectors 0..N-1 and the C side (eta < 0) N..2N-1, as ALICE numbers TPC
    sectors; without it the whole map is one side numbered from `first_sector`. Null until the median
    sector holds `min_median` counts.
    """
    values = histogram.values()
    phi_axis = int(parameters["phi_axis"])
    n_sectors = int(parameters["sectors"])
    per_phi_bin = np.moveaxis(values, phi_axis, 0)
    n_phi = per_phi_bin.shape[0]
    if n_phi % n_sectors:
        raise ValueError(f"{histogram.name}: {n_phi} phi bins do not split into {n_sectors} sectors")
    sides: list[tuple[int, np.ndarray]] = []
    if parameters.get("eta_axis") is not None:
        eta_edges = np.asarray(histogram.edges[int(parameters["eta_axis"])])
        centres = 0.5 * (eta_edges[:-1] + eta_edges[1:])
        sides.append((0, per_phi_bin[:, centres > 0].sum(axis=1)))
        sides.append((n_sectors, per_phi_bin[:, centres < 0].sum(axis=1)))
    else:
        sides.append((int(parameters.get("first_sector", 0)), per_phi_bin.reshape(n_phi, -1).sum(axis=1)))
    low_sectors: list[int] = []
    medians = []
    minimum = float(parameters["min_relative"])
    for first, per_bin in sides:
        per_sector = per_bin.reshape(n_sectors, -1).sum(axis=1)
        median = float(np.median(per_sector))
        medians.append(median)
        if median < parameters.get("min_median", 1.0):
            return CheckResult(
                "sector_efficiency", "Null", f"too few counts to judge (median {median:g} per sector)"
            )
        low_sectors += [first + int(i) for i in np.flatnonzero(per_sector < minimum * median)]
    count = len(low_sectors)
    quality, note = grade_flagged(low_sectors, parameters)
    return CheckResult(
        "sector_efficiency",
        quality,
        f"{counted(count, 'sector')}{note} below {minimum:g} x the median sector",
        threshold=minimum,
        threshold_source="default",
        flagged_ids=tuple(low_sectors),
        id_label="sectors",
    )


def mean_in_range(histogram: Histogram, parameters: CheckParameters) -> CheckResult:
    """The mean along `axis` (0 = x, 1 = y) within [`low`, `high`]; Bad outside. Null when empty."""
    axis = int(parameters.get("axis", 0))
    values = histogram.values()
    edges = np.asarray(histogram.edges[axis])
    centres = 0.5 * (edges[:-1] + edges[1:])
    other_axes = tuple(i for i in range(values.ndim) if i != axis)
    projection = values.sum(axis=other_axes) if other_axes else values
    total = float(projection.sum())
    if total <= 0:
        return CheckResult("mean_in_range", "Null", "empty: no mean")
    mean = float((projection * centres).sum() / total)
    low, high = float(parameters["low"]), float(parameters["high"])
    inside = low <= mean <= high
    return CheckResult(
        "mean_in_range",
        "Good" if inside else parameters.get("quality", "Bad"),
        f"mean {mean:.4g} {'within' if inside else 'outside'} [{low:g}, {high:g}]",
        details={"mean": mean, "low": low, "high": high},
    )


def kolmogorov_vs_reference(histogram: Histogram, parameters: CheckParameters) -> CheckResult | None:
    """Kolmogorov-Smirnov test of the shape against the reference run: Bad when the p-value is below
    `min_p_value`, Medium below `medium_below` (if declared), else Good; None without a reference."""
    if parameters.reference is None:
        return None
    result = kolmogorov_test(histogram, parameters.reference)
    return _p_value_verdict("ks_reference", "KS", result.p_value, f"D = {result.statistic:.3g}", parameters)


def chi2_vs_reference(histogram: Histogram, parameters: CheckParameters) -> CheckResult | None:
    """Chi2 test of the shape against the reference run, with the thresholds of
    `kolmogorov_vs_reference`; None without a reference."""
    if parameters.reference is None:
        return None
    result = chi2_test(histogram, parameters.reference)
    statistic = f"chi2/ndf = {result.statistic:.4g}/{result.ndf}"
    return _p_value_verdict("chi2_reference", "chi2", result.p_value, statistic, parameters)


def _p_value_verdict(
    check: str, test: str, p_value: float, statistic: str, parameters: CheckParameters
) -> CheckResult:
    if math.isnan(p_value):
        return CheckResult(check, "Null", f"{test} test impossible: an empty histogram")
    minimum = float(parameters["min_p_value"])
    medium_below = parameters.get("medium_below")
    quality: Quality = "Good"
    if p_value < minimum:
        quality = "Bad"
    elif medium_below is not None and p_value < float(medium_below):
        quality = "Medium"
    return CheckResult(
        check,
        quality,
        f"{test} p-value {p_value:.3g} vs reference ({statistic}); minimum {minimum:g}",
        threshold=minimum,
        threshold_source="default",
        details={"p_value": p_value},
    )


def ids_in_boxes(boxes: Sequence[tuple[int, int, int, int]], n_cols: int) -> tuple[int, ...]:
    """Channel ids `row * n_cols + col` inside (first col, n cols, first row, n rows) boxes: a helper
    for declaring geometry holes as `ignore_ids`."""
    ids: list[int] = []
    for col0, ncols, row0, nrows in boxes:
        for row in range(row0, row0 + nrows):
            ids += [row * n_cols + col for col in range(col0, col0 + ncols)]
    return tuple(sorted(ids))


# ---- check declarations every plug-in makes alike ------------------------------------------------

# Heavy-ion collision rates are lower than pp ones: each beam's minimum event rate is this fraction of
# the plug-in's pp minimum.
HEAVY_ION_RATE_FRACTIONS = {"p-Pb": 0.6, "Pb-p": 0.6, "Xe-Xe": 0.3, "Pb-Pb": 0.2}


def event_rate_check(pattern: str, pp_min_rate_hz: float) -> CheckSpec:
    """The event-rate check on the histogram every event fills once (`pattern`), with the heavy-ion
    minima derived from the pp one."""
    beam_overrides = tuple(
        (beam, {"min_rate_hz": round(pp_min_rate_hz * fraction, 6)})
        for beam, fraction in HEAVY_ION_RATE_FRACTIONS.items()
    )
    return CheckSpec(
        "event_rate",
        "Event rate",
        event_rate,
        pattern,
        content="interval",
        parameters={"min_rate_hz": pp_min_rate_hz},
        beam_overrides=beam_overrides,
    )


def reference_checks(
    pattern: str, overrides: tuple[tuple[str, dict[str, float]], ...] = ()
) -> tuple[CheckSpec, CheckSpec]:
    """The KS and chi2 shape comparisons with the reference run for the 1D histograms `pattern` names,
    with per-histogram p-value limits in `overrides`."""
    return tuple(
        CheckSpec(
            name,
            title,
            function,
            pattern,
            dimensions=(1,),
            content="reference",
            parameters={"min_p_value": 1e-3, "medium_below": 1e-2},
            overrides=overrides,
        )
        for name, title, function in (
            ("ks_reference", "Shape vs reference (KS)", kolmogorov_vs_reference),
            ("chi2_reference", "Shape vs reference (chi2)", chi2_vs_reference),
        )
    )
