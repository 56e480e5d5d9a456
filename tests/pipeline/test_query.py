"""View requests as text parameters (URL, API, notebook): parsed once, errors name the parameter."""

import pytest

from pipeline.processing.options import OptionsError, ProcessingOptions
from pipeline.processing.query import ViewQuery, known_parameters, read_params
from pipeline.processing.timeslice import MergerMode, Window


def test_every_parameter_is_parsed_and_round_trips():
    params = {"min": "2", "max": "5.5", "mode": "Reset", "scale": "false", "threshold": "0.25"}
    query = ViewQuery.from_params({**params, "outlier_n_sigma": "3", "format": "json"}, ignore=["format"])
    assert (query.min_minutes, query.max_minutes, query.mode) == (2.0, 5.5, MergerMode.RESET)
    assert query.options.scale_by_events is False
    assert query.options.hot_channel_threshold == 0.25
    assert query.options.get("outlier_n_sigma") == 3.0
    assert ViewQuery.from_params(query.to_params()) == query
    assert query.to_params()["max"] == "5.5" and query.to_params()["mode"] == "reset"
    assert query.to_params()["scale"] == "0"


def test_no_parameters_is_the_whole_run_as_recorded_with_default_options():
    query = ViewQuery.from_params({"min": "", "threshold": ""})
    assert query == ViewQuery()
    assert query.window(9.5) is None
    assert query.to_params() == {}


def test_a_window_with_one_end_runs_from_the_start_or_to_the_end_of_the_run():
    assert ViewQuery.from_params({"min": "3"}).window(9.5) == Window(3.0, 9.5)
    assert ViewQuery.from_params({"max": "4"}).window(9.5) == Window(0.0, 4.0)


@pytest.mark.parametrize(
    "params,parameter,fragment",
    [
        ({"min": "abc"}, "min", "must be a number of minutes"),
        ({"max": "-1"}, "max", ">= 0"),
        ({"max": "inf"}, "max", "must be a number of minutes, got 'inf'"),
        ({"min": "5", "max": "2"}, "min", "must be <= max (5 > 2)"),
        ({"mode": "sometimes"}, "mode", "cumulative or reset"),
        ({"scale": "maybe"}, "scale", "true or false"),
        ({"threshold": "-1"}, "threshold", "must be > 0"),
        ({"threshold": "abc"}, "threshold", "must be a number"),
        ({"outlier_n_sigma": "11"}, "outlier_n_sigma", "must be <= 10"),
        ({"bogus": "1"}, "bogus", "unknown parameter (known: min, max, mode, scale, threshold"),
    ],
)
def test_bad_parameters_are_named_as_written(params, parameter, fragment):
    with pytest.raises(OptionsError) as error:
        ViewQuery.from_params(params)
    assert error.value.field == parameter
    assert str(error.value).startswith(f"{parameter}: ") and fragment in str(error.value)


def test_known_parameters_list_common_names_then_plugin_options():
    assert known_parameters()[:5] == ["min", "max", "mode", "scale", "threshold"]
    assert "outlier_n_sigma" in known_parameters()


def test_a_run_page_query_string_reads_the_same_its_display_keys_ignored():
    display = {"group": "FastOR", "hist": "EMCTRQA_histFastORL0", "logz": "1"}
    page = {**display, "min": "2", "max": "4", "scale": "0"}
    query = ViewQuery.from_params(page)
    assert (query.min_minutes, query.max_minutes, query.options.scale_by_events) == (2.0, 4.0, False)
    assert ViewQuery.from_params({"scale": "1"}).options.scale_by_events is True


def test_numbers_are_read_as_written_in_a_url_not_as_python_reads_them():
    assert ViewQuery.from_params({"min": " 1.5 ", "max": "2e0", "threshold": ".5"}).to_params() == {
        "min": "1.5",
        "max": "2",
        "threshold": "0.5",
    }
    for text in ("1_0", "nan", "0x10", "1,5", "+-1"):
        with pytest.raises(OptionsError) as error:
            ViewQuery.from_params({"min": text})
        assert str(error.value) == f"min: must be a number of minutes, got {text!r}" + (
            " (write decimals with a point)" if "," in text else ""
        )
    with pytest.raises(OptionsError, match="outlier_n_sigma: must be a number, got '1_0'"):
        ViewQuery.from_params({"outlier_n_sigma": "1_0"})


def test_read_params_keeps_what_reads_and_names_each_parameter_left_out():
    pairs = [("min", "2"), ("max", "abc"), ("mode", "foo"), ("threshold", "0,01"), ("outlier_n_sigma", "-3")]
    query, errors = read_params([*pairs, ("scale", "0"), ("group", "FastOR")], subsystem="EMC")
    # max left out: min alone is min..end of run.
    assert (query.min_minutes, query.max_minutes, query.mode, query.options.scale_by_events) == (
        2.0,
        None,
        None,
        False,
    )
    assert query.options == ProcessingOptions(scale_by_events=False)
    assert [str(error) for error in errors] == [
        "max: must be a number of minutes, got 'abc'",
        "mode: must be cumulative or reset, got 'foo'",
        "threshold: must be a number, got '0,01' (write decimals with a point)",
        "outlier_n_sigma: must be >= 0, got '-3'",
    ]


def test_min_above_max_leaves_out_the_window_and_a_repeated_key_is_refused_whatever_its_values():
    query, errors = read_params({"min": "5", "max": "2", "threshold": "0.5"})
    assert (query.min_minutes, query.max_minutes, query.options.hot_channel_threshold) == (None, None, 0.5)
    assert [str(error) for error in errors] == ["min: must be <= max (5 > 2)"]
    query, errors = read_params([("min", "1"), ("min", "1"), ("max", "4")])
    assert (query.min_minutes, query.max_minutes) == (None, 4.0)
    assert [(error.field, str(error)) for error in errors] == [("min", "min: given 2 times: give it once")]
    with pytest.raises(OptionsError, match="min: given 2 times"):
        ViewQuery.from_params([("min", "1"), ("min", "1")])


def test_a_window_the_run_does_not_have_names_the_parameter_and_the_run_length():
    with pytest.raises(OptionsError) as error:
        ViewQuery.from_params({"min": "9.95"}).window(9.89)
    assert str(error.value) == "min: must be <= the run length (9.89 min), got 9.95"
    with pytest.raises(OptionsError, match=r"max: must be <= the run length \(9.89 min\), got 11"):
        ViewQuery.from_params({"max": "11"}).window(9.89)
    assert ViewQuery.from_params({"min": "9.89"}).window(9.89) == Window(9.89, 9.89)
