"""Processing options: every bad value gives a message naming its field."""

import pytest

from pipeline.processing.options import OptionsError, OptionSpec, ProcessingOptions

SPECS = (OptionSpec("outlier_n_sigma", float, 0.0, minimum=0, maximum=10), OptionSpec("grid", bool, False))


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
        ({"outlier_n_sigma": 11}, "outlier_n_sigma", "<= 10"),
        ({"outlier_n_sigma": "x"}, "outlier_n_sigma", "must be float"),
        ({"grid": "perhaps"}, "grid", "true or false"),
    ],
)
def test_bad_values_name_the_field(values, field, fragment):
    with pytest.raises(OptionsError) as error:
        ProcessingOptions.from_mapping(values, SPECS)
    assert error.value.field == field
    assert str(error.value).startswith(f"{field}: ") and fragment in str(error.value)


def test_form_strings_are_parsed():
    options = ProcessingOptions.from_mapping(
        {"scale_by_events": "false", "hot_channel_threshold": "0.5", "grid": "false", "outlier_n_sigma": "2"},
        SPECS,
    )
    assert options.scale_by_events is False and options.hot_channel_threshold == 0.5
    assert options.get("grid") is False and options.get("outlier_n_sigma") == 2.0


def test_empty_threshold_means_the_per_histogram_default():
    assert ProcessingOptions.from_mapping({"hot_channel_threshold": ""}).hot_channel_threshold is None


def test_cache_key_differs_for_any_option_and_is_stable():
    base = ProcessingOptions()
    assert base.cache_key() == ProcessingOptions().cache_key()
    keys = {
        base.cache_key(),
        ProcessingOptions(scale_by_events=False).cache_key(),
        ProcessingOptions(hot_channel_threshold=1e-3).cache_key(),
        ProcessingOptions(hot_channel_threshold=2e-3).cache_key(),
        ProcessingOptions(extra=(("grid", True),)).cache_key(),
    }
    assert len(keys) == 5
