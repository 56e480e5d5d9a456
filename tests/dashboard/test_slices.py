"""The time-slice and option rules of the page (dashboard/slices.py), without a browser: what the slider
and its boxes show, which window a user's entry becomes, and the message a bad entry gives."""

from __future__ import annotations

import pytest

from dashboard.slices import (
    describe_full_run,
    error_text,
    options_from_inputs,
    range_after_growth,
    range_from_inputs,
    slider_marks,
    slider_max,
    window_from_inputs,
)
from pipeline.processing.options import OptionsError
from pipeline.processing.timeslice import Window


@pytest.mark.parametrize(
    ("length", "expected"), [(0.0, 1), (0.4, 1), (9.0, 9), (9.0000001, 9), (9.2, 10), (600.0, 600)]
)
def test_slider_ends_at_the_run_length_rounded_up(length, expected):
    assert slider_max(length) == expected


def test_slider_marks_are_round_steps_with_the_end_labelled():
    assert slider_marks(10) == {
        "0": "0",
        "1": "1",
        "2": "2",
        "3": "3",
        "4": "4",
        "5": "5",
        "6": "6",
        "7": "7",
        "8": "8",
        "9": "9",
        "10": "10 min",
    }
    marks = slider_marks(600)  # a 10-hour run: hourly labels
    assert list(marks)[:3] == ["0", "60", "120"]
    assert marks["600"] == "600 min"
    assert len(marks) <= 11


def test_an_untouched_full_range_follows_a_growing_run_and_a_chosen_range_stays():
    assert range_after_growth([0, 5], 5, 6, slice_applied=False) == [0, 6]
    assert range_after_growth([2, 4], 5, 6, slice_applied=False) is None
    assert range_after_growth([0, 5], 5, 6, slice_applied=True) is None
    assert range_after_growth(None, None, 6, slice_applied=False) == [0, 6]


@pytest.mark.parametrize(
    ("low", "high", "upper", "expected"),
    [
        (2, 4, 10, [2.0, 4.0]),
        ("2.5", "3", 10, [2.5, 3.0]),
        (5, 3, 10, None),  # inverted: the boxes keep it, Apply names it
        (-1, 3, 10, None),
        (2, 11, 10, None),  # beyond the slider
        ("", 3, 10, None),
        ("abc", 3, 10, None),
        (True, 3, 10, None),
    ],
)
def test_the_slider_follows_the_boxes_only_for_a_range_it_can_show(low, high, upper, expected):
    assert range_from_inputs(low, high, upper) == expected


def test_window_from_the_boxes():
    assert window_from_inputs(2, 4, 9.3) == Window(2.0, 4.0)
    # The whole run is the full run (live), also when max is the slider's rounded-up end.
    assert window_from_inputs(0, 9.3, 9.3) is None
    assert window_from_inputs(0, 10, 9.3) is None
    # A max between the run's end and the slider's end means "to the end of the run".
    assert window_from_inputs(3, 10, 9.3) == Window(3.0, 9.3)
    # Out-of-range values pass unchanged: the service names what is wrong.
    assert window_from_inputs(5, 3, 9.3) == Window(5.0, 3.0)
    assert window_from_inputs(0, 12, 9.3) == Window(0.0, 12.0)


@pytest.mark.parametrize(
    ("low", "high", "field"), [("", 3, "min_minutes"), (1, "x", "max_minutes"), ("1_0", 3, "min_minutes")]
)
def test_a_box_without_a_number_names_its_field(low, high, field):
    with pytest.raises(OptionsError) as raised:
        window_from_inputs(low, high, 9.0)
    assert raised.value.field == field
    assert "must be a number of minutes" in str(raised.value)


def test_options_from_the_controls():
    default = options_from_inputs(True, "")
    assert default.scale_by_events is True
    assert default.hot_channel_threshold is None
    custom = options_from_inputs(False, " 0.2 ")
    assert (custom.scale_by_events, custom.hot_channel_threshold) == (False, 0.2)
    assert default.cache_key() != custom.cache_key()


@pytest.mark.parametrize("threshold", ["-1", "abc", "0"])
def test_a_bad_threshold_is_named_for_the_page(threshold):
    with pytest.raises(OptionsError) as raised:
        options_from_inputs(True, threshold)
    text = error_text(raised.value)
    assert text.startswith("Hot-channel threshold (hot_channel_threshold): ")
    assert "Traceback" not in text


def test_full_run_description():
    assert describe_full_run(9.25, True) == "Full run: 0–9.2 min · following live updates"
    assert describe_full_run(61.0, False) == "Full run: 0–61.0 min · run not ongoing"
