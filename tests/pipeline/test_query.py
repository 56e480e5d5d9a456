"""View requests as text parameters (URL, API, notebook): parsed once, errors name the parameter."""

import pytest

from pipeline.processing.options import OptionsError
from pipeline.processing.query import ViewQuery, known_parameters
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
        ({"max": "inf"}, "max", ">= 0"),
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
