"""Typed check results (and the `details` view the current dashboard reads), quality aggregation, the
spec machinery, and the generic check functions on hand-made histograms."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.detectors.base import (
    CheckParameters,
    CheckResult,
    CheckSpec,
    run_check_specs,
    strict_worst_of,
    worst_of,
)
from pipeline.detectors.checks import (
    dead_channels,
    empty_histogram,
    event_rate,
    grade_flagged,
    hot_channels_along_y,
    mean_in_range,
    sector_efficiency,
)
from pipeline.histogram import Histogram


def histogram(values: np.ndarray, edges: tuple[np.ndarray, ...] | None = None, name: str = "h") -> Histogram:
    values = np.asarray(values, dtype=float)
    edges = edges or tuple(np.arange(n + 1, dtype=float) for n in values.shape)
    flow = np.pad(values, 1)
    return Histogram(name, f"TH{values.ndim}D", name, edges, flow, flow.copy(), float(values.sum()))


def test_typed_results_keep_the_details_view_the_dashboard_reads() -> None:
    typed = CheckResult(
        "hot_fastors", "Bad", "2 hot", threshold=0.01, threshold_source="default", per_event=True,
        flagged_ids=(3, 7), id_label="FastOR ids", flags_above=True,
    )  # fmt: skip
    assert typed.details == {
        "threshold": 0.01, "threshold_source": "default", "per_event": True, "hot_channel_ids": [3, 7],
    }  # fmt: skip
    old_style = CheckResult("hot_fastors", "Bad", "2 hot", {"hot_channel_ids": [3, 7], "threshold": 0.5})
    assert old_style.flagged_ids == (3, 7) and old_style.threshold == 0.5 and old_style.flags_above
    dead = CheckResult("dead", "Medium", "1 dead", flagged_ids=(9,))
    assert dead.details == {"flagged_ids": [9]} and dead.threshold is None  # not drawn as a hot line
    with pytest.raises(ValueError, match="quality"):
        CheckResult("x", "Terrible", "no")


def test_worst_wins_and_null_only_when_nothing_was_judged() -> None:
    assert worst_of(["Good", "Medium", "Null"]) == "Medium"
    assert worst_of(["Good", "Bad", "Medium"]) == "Bad"
    assert worst_of(["Null", "Null"]) == "Null" and worst_of([]) == "Null"
    assert strict_worst_of(["Good", "Null"]) == "Null"  # O2's WorstOf: a missing verdict hides all
    assert strict_worst_of(["Good", "Medium"]) == "Medium"


def test_specs_choose_histograms_apply_overrides_and_survive_a_failing_check() -> None:
    def threshold_echo(h, p):
        return CheckResult("echo", "Good", f"threshold {p['threshold']:g}", threshold=p["threshold"])

    def broken(h, p):
        raise RuntimeError("boom")

    specs = (
        CheckSpec(
            "echo",
            "Echo",
            threshold_echo,
            r"^h",
            dimensions=(1,),
            parameters={"threshold": 1.0},
            overrides=((r"^hSpecial$", {"threshold": 5.0}),),
        ),
        CheckSpec("broken", "Broken", broken, r"^h"),
        CheckSpec("later", "Later", threshold_echo, r"^h", content="interval", parameters={"threshold": 2.0}),
    )
    plain = run_check_specs(specs, histogram(np.ones(3), name="hPlain"), "cumulative")
    assert [(r.check, r.title, r.quality, r.threshold) for r in plain] == [
        ("echo", "Echo", "Good", 1.0),
        ("broken", "Broken", "Null", None),
    ]
    assert "RuntimeError: boom" in plain[1].message
    special = run_check_specs(specs, histogram(np.ones(3), name="hSpecial"), "cumulative")
    assert special[0].threshold == 5.0
    assert (
        run_check_specs(specs, histogram(np.ones((2, 2)), name="hPlain"), "cumulative")[0].check == "broken"
    )
    assert [r.threshold for r in run_check_specs(specs, histogram(np.ones(3), name="h"), "interval")] == [2.0]
    with pytest.raises(ValueError, match="on a page"):
        CheckSpec("x", "X", threshold_echo, "", content="interval", on_page=True)


def test_empty_and_event_rate() -> None:
    params = CheckParameters(values={"min_events": 100.0}, n_events=500.0)
    assert empty_histogram(histogram(np.zeros(4)), params).quality == "Bad"
    assert empty_histogram(histogram([0.0, 0.0, 1.0, 0.0]), params).quality == "Good"
    few = CheckParameters(values={"min_events": 100.0}, n_events=50.0)
    assert empty_histogram(histogram(np.zeros(4)), few).quality == "Null"
    rate = CheckParameters(values={"min_rate_hz": 30.0}, duration_s=60.0)
    assert event_rate(histogram([3000.0]), rate).quality == "Good"
    low = event_rate(histogram([1200.0]), rate)
    assert low.quality == "Bad" and low.message.startswith("20 events/s") and low.threshold == 30.0
    assert event_rate(histogram([3000.0]), CheckParameters(values={"min_rate_hz": 30.0})).quality == "Null"


def test_dead_channels_ignore_holes_and_grade_by_count() -> None:
    counts = np.full(100, 50.0)
    counts[[3, 4]] = 0.0  # dead
    counts[90:] = 0.0  # not channels (a hole in the geometry)
    params = {"min_median": 20.0, "medium_up_to": 2, "ignore_ids": tuple(range(90, 100))}
    result = dead_channels(histogram(counts), CheckParameters(values=params))
    assert (result.quality, result.flagged_ids) == ("Medium", (3, 4))
    counts[[5, 6, 7]] = 0.0
    assert dead_channels(histogram(counts), CheckParameters(values=params)).quality == "Bad"
    assert dead_channels(histogram(counts / 10), CheckParameters(values=params)).quality == "Null"


def test_noisy_channels_are_reported_by_the_first_id_of_their_bin() -> None:
    per_bin = np.full((4, 10), 10.0)  # x: amplitude (4 bins), y: 10 bins of 64 cells
    per_bin[:, 6] = 100.0
    edges = (np.arange(5.0), np.arange(0.0, 641.0, 64.0))
    result = hot_channels_along_y(
        histogram(per_bin, edges), CheckParameters(values={"factor": 3.0, "min_median": 5.0}, n_events=10.0)
    )
    assert (result.quality, result.flagged_ids) == ("Bad", (384,))
    assert result.threshold == pytest.approx(3 * 40.0 / 10.0) and result.per_event  # per event


def test_sector_efficiency_numbers_a_and_c_side_sectors() -> None:
    eta_edges = np.linspace(-1.0, 1.0, 5)  # two bins per side
    phi_edges = np.linspace(0.0, 2 * np.pi, 19)
    counts = np.full((18, 4), 100.0)  # x = φ (one bin per sector), y = η
    counts[4, 2:] = 20.0  # sector 4, A side
    counts[9, :2] = 10.0  # sector 9, C side -> 27
    params = {"phi_axis": 0, "eta_axis": 1, "sectors": 18, "min_relative": 0.6, "min_median": 30.0}
    result = sector_efficiency(histogram(counts, (phi_edges, eta_edges)), CheckParameters(values=params))
    assert (result.quality, result.flagged_ids) == ("Bad", (4, 27))


def test_mean_in_range() -> None:
    values = np.zeros(10)
    values[7] = 5.0  # mean 7.5 on bins [0, 10)
    params = CheckParameters(values={"low": 2.0, "high": 6.0})
    outside = mean_in_range(histogram(values), params)
    assert outside.quality == "Bad" and outside.details["mean"] == pytest.approx(7.5)
    assert mean_in_range(histogram(np.zeros(10)), params).quality == "Null"


def test_known_channels_are_reported_but_only_new_ones_are_bad() -> None:
    params = CheckParameters(values={"known_ids": (7, 9)})
    assert grade_flagged([], params) == ("Good", "")
    assert grade_flagged([7, 9], params) == ("Medium", " (2 known)")
    assert grade_flagged([7, 11], params) == ("Bad", " (1 known)")
    assert grade_flagged([11], CheckParameters(values={"quality": "Medium"})) == ("Medium", "")


def test_hot_fastors_wait_for_enough_events_and_grade_known_ones() -> None:
    from pipeline.detectors.emc import KNOWN_HOT_FASTORS, PLUGIN
    from pipeline.processing.options import ProcessingOptions

    counts = np.full(5000, 1.0)
    counts[list(KNOWN_HOT_FASTORS)] = 400.0
    fastors = histogram(counts, name="EMCTRQA_histFastORL0")
    [early] = PLUGIN.checks(fastors, ProcessingOptions(), 500.0)
    assert early.quality == "Null" and "too few events" in early.message
    [known] = PLUGIN.checks(fastors, ProcessingOptions(), 5000.0)
    assert (known.quality, known.flagged_ids) == ("Medium", KNOWN_HOT_FASTORS)
    counts[1000] = 400.0
    [new] = PLUGIN.checks(histogram(counts, name="EMCTRQA_histFastORL0"), ProcessingOptions(), 5000.0)
    assert new.quality == "Bad" and new.message == "5 hot FastORs (4 known) above 0.01"


def test_heavy_ion_runs_get_their_own_minimum_event_rate() -> None:
    from pipeline.detectors.base import run_check_specs as run
    from pipeline.detectors.emc import PLUGIN

    spec = PLUGIN.check_spec("event_rate")
    assert spec.parameters_for("EMCTRQA_histEvents", "pp")["min_rate_hz"] == 30.0
    for spelling in ("Pb-Pb", "PbPb", "pbpb"):
        assert spec.parameters_for("EMCTRQA_histEvents", spelling)["min_rate_hz"] == pytest.approx(6.0)
    events = histogram([600.0], name="EMCTRQA_histEvents")  # 10 Hz over a minute
    verdict = {
        beam: run((spec,), events, "interval", duration_s=60.0, beam_type=beam)[0].quality
        for beam in ("pp", "Pb-Pb")
    }
    assert verdict == {"pp": "Bad", "Pb-Pb": "Good"}
