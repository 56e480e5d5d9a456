"""Each alarm rule against value sequences with the expected firings (negative values, zero, fewer
values than N), AND/OR nesting, and the alarm file: validation naming the field, beam-type overrides,
recorded threshold changes."""

import json

import pytest

from pipeline.qc.alarm_config import (
    AUDIT_FILE,
    load_alarm_config,
    load_changes,
    set_threshold,
    threshold_changes,
)
from pipeline.qc.alarms import (
    AbsoluteChange,
    AlarmConfigError,
    AlarmDefinition,
    AllOf,
    AnyOf,
    BetweenValues,
    Condition,
    FractionInRange,
    MeanInRange,
    RelativeChange,
    SeriesHistory,
    evaluate,
    make_rule,
)


def firings(rule, values):
    """Feed values one at a time, as snapshots arrive: whether the rule fired after each."""
    return [rule.check(values[: i + 1]) is not None for i in range(len(values))]


def test_between_values_fires_outside_inclusive_bounds_both_constructors():
    values = [3, -10, 0, 100, 100.5, 44, -0.001, 101]
    expected = [False, True, False, False, True, False, True, True]
    assert firings(BetweenValues(0, 100), values) == expected
    centred = make_rule("between", {"center": 50, "max_distance": 50}, "t")
    assert centred == BetweenValues(0, 100)
    assert firings(centred, values) == expected
    assert BetweenValues(0, 100).check([-10]) == "-10 outside [0, 100]"


def test_relative_change_with_negatives_and_zero():
    rule = RelativeChange(2.0)
    values = [10, 15, 40, 20, 0, 0, 1, -1, -1.5, -4, 3, -6, -3]
    # 10 -> 15 within [5, 20]; 40 > 30; 20 in [20, 80]; 0 < 10; after 0 only 0 passes; a change of sign
    # always fires; -1 -> -1.5 and -6 -> -3 compare magnitudes.
    expected = [False, False, True, False, True, False, True, True, False, True, True, True, False]
    assert firings(rule, values) == expected
    with pytest.raises(AlarmConfigError, match=r"t\.ratio: must be > 1, got 1"):
        make_rule("relative_change", {"ratio": 1}, "t")


def test_absolute_change_needs_two_values_and_allows_exactly_max_delta():
    rule = AbsoluteChange(3.0)
    values = [5, 8, 4, -1, -3, 0, 0.5]
    assert firings(rule, values) == [False, False, True, True, False, False, False]
    assert rule.check([4, -1]) == "changed by -5 (from 4 to -1), more than 3"


def test_mean_in_range_waits_for_n_values_and_excludes_the_bounds():
    rule = MeanInRange(0, 10, 3)
    values = [5, 5, 5, 20, 5, 5, 5, -15, 15, 0]
    # means of the last 3: -, -, 5, 10, 10, 10, 5, -5/3, 5/3, 0
    assert firings(rule, values) == [False, False, False, True, True, True, False, True, False, True]


def test_fraction_in_range_of_last_n():
    rule = FractionInRange(0, 10, 0.6, 5)
    values = [1, 2, 3, 4, 20, 20, 0, 5, 5, 5, -5]
    # inside (0, 10) among the last 5 (need 3): -, -, -, -, 4, 3, 2, 2, 2, 3, 3
    expected = [False, False, False, False, False, False, True, True, True, False, False]
    assert firings(rule, values) == expected


def lookup_from(series):
    return lambda histogram, quantity, content: series.get((histogram, quantity, content), [])


def test_and_or_nest_across_histograms_and_quantities():
    warning_band = lambda hist: Condition("mean", BetweenValues(20, 80), histogram=hist)  # noqa: E731
    error_band = lambda hist: Condition("mean", BetweenValues(0, 100), histogram=hist)  # noqa: E731
    # OR(AND(warning a, warning b), OR(error a, error b)), as the original's test of nesting.
    alarm = AnyOf((AllOf((warning_band("a"), warning_band("b"))), AnyOf((error_band("a"), error_band("b")))))
    cases = [
        ({"a": [50], "b": [50]}, False),
        ({"a": [10], "b": [50]}, False),  # one warning only: AND does not fire
        ({"a": [10], "b": [90]}, True),  # both warnings
        ({"a": [50], "b": [-1]}, True),  # an error alone
        ({"a": [], "b": [50]}, False),  # a has no value yet: its conditions cannot fire
    ]
    for values, fires in cases:
        series = {(h, "mean", "interval"): v for h, v in values.items()}
        verdict = alarm.evaluate("unused", lookup_from(series))
        assert verdict.fired is fires, values
    both = {("a", "mean", "interval"): [10], ("b", "mean", "interval"): [90]}
    message = alarm.evaluate("x", lookup_from(both)).message
    assert (
        message == "all of: interval mean of a: 10 outside [20, 80]; interval mean of b: 90 outside [20, 80]"
    )


def test_messages_name_histograms_as_people_read_them_and_results_keep_raw_names():
    """Each condition names the histogram it reads (the alarm's or another) by the namer; the result's
    key (what the alarm book stores and links with) keeps the raw name."""
    labels = {"h_a": "Histogram A", "h_b": "Histogram B"}
    alarm = AlarmDefinition(
        "EMC",
        "pair",
        "^h_a$",
        AllOf(
            (
                Condition("mean", BetweenValues(20, 80)),
                Condition("mean", BetweenValues(20, 80), histogram="h_b"),
            )
        ),
    )
    history = SeriesHistory(keep=2)
    history.append("s0", [("h_a", "mean", "interval", 10.0), ("h_b", "mean", "interval", 90.0)])
    (result,) = evaluate([alarm], history, ["h_a", "h_b"], labels.__getitem__)
    assert result.key == ("EMC", "pair", "h_a") and result.histogram == "h_a"
    assert result.label == "Histogram A"
    assert result.verdict.message == (
        "all of: interval mean of Histogram A: 10 outside [20, 80]; "
        "interval mean of Histogram B: 90 outside [20, 80]"
    )
    # A verdict that does not fire asks for no name (most snapshots: no title lookup).
    history.append("s1", [("h_a", "mean", "interval", 50.0), ("h_b", "mean", "interval", 50.0)])
    (quiet,) = evaluate([alarm], history, ["h_a", "h_b"], lambda name: pytest.fail(f"named {name}"))
    assert not quiet.verdict.fired and quiet.label == ""


def test_series_history_keeps_what_the_rules_need():
    history = SeriesHistory(keep=3)
    for index, value in enumerate([1, 2, 3, 4]):
        history.append(f"s{index}", [("h", "mean", "interval", value)])
    assert history.values("h", "mean", "interval") == [2, 3, 4]
    assert history.values("h", "max", "interval") == []
    assert history.last_snapshot_id == "s3"


def write(tmp_path, text):
    path = tmp_path / "alarms.toml"
    path.write_text(text)
    return path


GOOD = """
[[EMC]]
name = "rate"
histograms = '^EMCTRQA_histEvents$'

[[EMC.any_of]]
name = "low"
quantity = "events_per_minute"
type = "between"
min = 100
max = 1e9

[[EMC.any_of]]
all_of = [
  { name = "jump", quantity = "events_per_minute", type = "relative_change", ratio = 3 },
  { name = "mean", quantity = "entries", type = "mean_in_range", min = 0, max = 10, n = 2 },
]

[[EMC]]
name = "hot"
histograms = 'FastOR'
quantity = "hot_channels"
type = "between"
min = 0
max = 4

[beam.PbPb.EMC."rate/low"]
min = 20
"""


def test_file_with_nesting_and_beam_overrides(tmp_path):
    config = load_alarm_config(write(tmp_path, GOOD))
    rate = config.definitions("EMC")[0]
    assert isinstance(rate.condition, AnyOf)
    assert rate.condition.children[0].rule == BetweenValues(100, 1e9)
    assert isinstance(rate.condition.children[1], AllOf)
    assert rate.condition.children[1].children[1].rule == MeanInRange(0, 10, 2)
    assert config.definitions("EMC", "PbPb")[0].condition.children[0].rule == BetweenValues(20, 1e9)
    assert config.definitions("EMC", "pp")[0].condition.children[0].rule == BetweenValues(100, 1e9)
    assert config.definitions("TPC") == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("max = 4", 'max = "four"'), "EMC.hot.max: must be a finite number"),
        (("max = 4", "max = -1"), r"EMC.hot.min: must be <= max \(0 > -1\)"),
        (('type = "between"', 'type = "near"'), r"EMC.rate.any_of\[0\].type: must be one of"),
        (('quantity = "hot_channels"', 'quantity = "median"'), "EMC.hot.quantity: must be one of"),
        (("ratio = 3", "ratio = 0.5"), r"EMC.rate.any_of\[1\].all_of\[0\].ratio: must be > 1"),
        (("n = 2", "n = 0"), r"EMC.rate.any_of\[1\].all_of\[1\].n: must be a whole number >= 1"),
        (("min = 0, max", "max"), r"EMC.rate.any_of\[1\].all_of\[1\].min: is missing"),
        (("max = 4", "max = 4\nmaxx = 5"), "EMC.hot.maxx: is not a parameter of between"),
        (("min = 20", 'min = "x"'), "EMC.rate.any_of\\[0\\].min: must be a finite number"),
        (("histograms = 'FastOR'", "histograms = '('"), "EMC.hot.histograms: bad regular expression"),
        (('[beam.PbPb.EMC."rate/low"]', '[beam.PbPb.EMC."rate/nope"]'), "EMC.rate/nope: rate has no"),
    ],
)
def test_bad_values_name_the_field(tmp_path, change, field):
    old, new = change
    assert old in GOOD
    with pytest.raises(AlarmConfigError, match=field):
        load_alarm_config(write(tmp_path, GOOD.replace(old, new, 1)))


def test_unreadable_file_names_the_setting(tmp_path):
    with pytest.raises(AlarmConfigError, match="alarms_config: cannot read"):
        load_alarm_config(tmp_path / "missing.toml")
    with pytest.raises(AlarmConfigError, match=r"alarms_config: .* is not valid TOML"):
        load_alarm_config(write(tmp_path, "[[EMC]\n"))


def test_shipped_file_is_valid_and_covers_each_detector():
    config = load_alarm_config()
    for subsystem in ("EMC", "TPC", "HLT"):
        assert config.definitions(subsystem), subsystem
        assert config.definitions(subsystem, "PbPb"), subsystem


def test_changing_a_threshold_records_who_when_old_and_new(tmp_path):
    config = load_alarm_config(write(tmp_path, GOOD))
    data_dir = tmp_path / "data"
    change = set_threshold(data_dir, config, "EMC", "hot", "max", 6, who="expert1")
    assert (change.old, change.new, change.who, change.beam_type) == (4, 6, "expert1", "")
    changes = load_changes(data_dir)
    assert config.definitions("EMC", "pp", changes)[1].condition.rule == BetweenValues(0, 6)
    # A beam-specific change sits on top of the file's beam override.
    change = set_threshold(data_dir, config, "EMC", "rate/low", "min", 50, who="expert2", beam_type="PbPb")
    assert (change.old, change.new) == (20, 50)
    rule = config.definitions("EMC", "PbPb", load_changes(data_dir))[0].condition.children[0].rule
    assert rule == BetweenValues(50, 1e9)
    recorded = threshold_changes(data_dir)
    assert [(c.who, c.alarm, c.parameter, c.old, c.new) for c in recorded] == [
        ("expert1", "hot", "max", 4, 6),
        ("expert2", "rate/low", "min", 20, 50),
    ]
    assert json.loads((data_dir / AUDIT_FILE).read_text().splitlines()[0])["time_utc"].endswith("+00:00")


def test_a_bad_threshold_change_is_refused_and_nothing_is_written(tmp_path):
    config = load_alarm_config(write(tmp_path, GOOD))
    data_dir = tmp_path / "data"
    with pytest.raises(AlarmConfigError, match=r"EMC.hot.min: must be <= max"):
        set_threshold(data_dir, config, "EMC", "hot", "max", -3, who="expert1")
    with pytest.raises(AlarmConfigError, match="who"):
        set_threshold(data_dir, config, "EMC", "hot", "max", 5, who=" ")
    with pytest.raises(AlarmConfigError, match=r"EMC\.rate: is an AND/OR"):
        set_threshold(data_dir, config, "EMC", "rate", "min", 5, who="expert1")
    with pytest.raises(AlarmConfigError, match=r"EMC\.hot\.type: only rule parameters"):
        set_threshold(data_dir, config, "EMC", "hot", "type", 5, who="expert1")
    assert load_changes(data_dir) == {}
    assert threshold_changes(data_dir) == []
