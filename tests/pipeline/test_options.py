"""Processing options: plug-in options are accepted everywhere, and every bad value names its field."""

import pytest

from pipeline.detectors import OPTION_SPECS, PLUGINS
from pipeline.processing.options import (
    OptionsError,
    OptionSpec,
    ProcessingOptions,
    coerce_option,
    known_option_specs,
)


@pytest.mark.parametrize(
    "values,field,fragment",
    [
        ({"hot_channel_threshold": -1}, "hot_channel_threshold", "must be > 0"),
        ({"hot_channel_threshold": 0}, "hot_channel_threshold", "must be > 0"),
        ({"hot_channel_threshold": float("inf")}, "hot_channel_threshold", "must be > 0"),
        ({"hot_channel_threshold": "abc"}, "hot_channel_threshold", "must be a number"),
        ({"hot_channel_threshold": True}, "hot_channel_threshold", "must be a number"),
        ({"scale_by_events": "maybe"}, "scale_by_events", "true or false"),
        ({"scale_by_events": 3}, "scale_by_events", "true or false"),
        ({"bogus": 1}, "bogus", "unknown option"),
        # EMC's plug-in option, declared as a float in 0..10.
        ({"outlier_n_sigma": 11}, "outlier_n_sigma", "must be <= 10, got 11"),
        ({"outlier_n_sigma": -0.5}, "outlier_n_sigma", "must be >= 0"),
        ({"outlier_n_sigma": "abc"}, "outlier_n_sigma", "must be a number, got 'abc'"),
        ({"outlier_n_sigma": "nan"}, "outlier_n_sigma", "must be a number, got 'nan'"),
        ({"outlier_n_sigma": True}, "outlier_n_sigma", "must be a number"),
        ({"outlier_n_sigma": [1]}, "outlier_n_sigma", "must be a number"),
    ],
)
def test_bad_values_name_the_field(values, field, fragment):
    with pytest.raises(OptionsError) as error:
        ProcessingOptions.from_mapping(values)
    assert error.value.field == field
    assert str(error.value).startswith(f"{field}: ") and fragment in str(error.value)


def test_unknown_option_lists_the_known_ones():
    with pytest.raises(OptionsError) as error:
        ProcessingOptions.from_mapping({"outlier_sigma": 2})
    assert str(error.value) == (
        "outlier_sigma: unknown option (known: hot_channel_threshold, outlier_n_sigma, scale_by_events)"
    )


@pytest.mark.parametrize(
    "extra,field",
    [
        ((("outlier_n_sigma", "abc"),), "outlier_n_sigma"),
        ((("outlier_n_sigma", 99.0),), "outlier_n_sigma"),
        ({"bogus": 1}, "bogus"),
        ((("outlier_n_sigma", 1.0), ("outlier_n_sigma", 2.0)), "outlier_n_sigma"),
        ("not pairs", "extra"),
    ],
)
def test_options_built_in_code_are_validated_too(extra, field):
    with pytest.raises(OptionsError) as error:
        ProcessingOptions(extra=extra)
    assert error.value.field == field


def test_plugin_options_are_the_union_of_every_plugins_declarations():
    declared = {spec.name for plugin in PLUGINS.values() for spec in plugin.option_specs}
    assert declared == set(known_option_specs()) == set(OPTION_SPECS) == {"outlier_n_sigma"}
    for spec in OPTION_SPECS.values():
        assert ProcessingOptions.from_mapping({spec.name: spec.default}).get(spec.name) == spec.default


def test_form_strings_are_parsed():
    options = ProcessingOptions.from_mapping(
        {"scale_by_events": "false", "hot_channel_threshold": " 0.5 ", "outlier_n_sigma": "2"}
    )
    assert options.scale_by_events is False and options.hot_channel_threshold == 0.5
    assert options.get("outlier_n_sigma") == 2.0 and options.extra == (("outlier_n_sigma", 2.0),)
    assert ProcessingOptions(extra={"outlier_n_sigma": 3}).extra == (("outlier_n_sigma", 3.0),)


def test_a_default_value_is_the_same_request_as_none():
    assert ProcessingOptions().get("outlier_n_sigma") == 0.0
    assert ProcessingOptions().get("not_declared", "fallback") == "fallback"
    explicit = ProcessingOptions.from_mapping({"outlier_n_sigma": "0"})
    assert explicit.extra == () and explicit.cache_key() == ProcessingOptions().cache_key()


def test_empty_threshold_means_the_per_histogram_default():
    assert ProcessingOptions.from_mapping({"hot_channel_threshold": ""}).hot_channel_threshold is None


@pytest.mark.parametrize(
    "spec,value,expected",
    [
        (OptionSpec("grid", bool, False), "off", False),
        (OptionSpec("grid", bool, False), "yes", True),
        (OptionSpec("bins", int, 1, minimum=1), "4", 4),
        (OptionSpec("label", str, ""), "SM 4", "SM 4"),
    ],
)
def test_declared_kinds_are_coerced(spec, value, expected):
    assert coerce_option(spec, value) == expected


@pytest.mark.parametrize(
    "spec,value,fragment",
    [
        (OptionSpec("grid", bool, False), "perhaps", "true or false"),
        (OptionSpec("bins", int, 1, minimum=1), "2.5", "whole number"),
        (OptionSpec("bins", int, 1, minimum=1), 0, ">= 1"),
        (OptionSpec("label", str, ""), 3, "must be text"),
    ],
)
def test_declared_kinds_reject_bad_values(spec, value, fragment):
    with pytest.raises(OptionsError) as error:
        coerce_option(spec, value)
    assert error.value.field == spec.name and fragment in str(error.value)


def test_cache_key_differs_for_any_option_and_is_stable():
    base = ProcessingOptions()
    assert base.cache_key() == ProcessingOptions().cache_key()
    keys = {
        base.cache_key(),
        ProcessingOptions(scale_by_events=False).cache_key(),
        ProcessingOptions(hot_channel_threshold=1e-3).cache_key(),
        ProcessingOptions(hot_channel_threshold=2e-3).cache_key(),
        ProcessingOptions(extra=(("outlier_n_sigma", 1.0),)).cache_key(),
        ProcessingOptions(extra=(("outlier_n_sigma", 2.0),)).cache_key(),
    }
    assert len(keys) == 6
