"""Time-slice and processing-option rules of the page: pure functions, unit-tested without a browser.

The page keeps the slider, its two number boxes and the applied slice consistent with these rules: the
slider spans 0 .. the run length rounded up to the minute and grows with a live run without moving the
user's range; a window covering the whole run is the full run (live); user input becomes a `Window`
and `ProcessingOptions` here, and bad input raises `OptionsError` naming the field, as the service does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pipeline.processing.options import OptionsError, ProcessingOptions, decimal_number
from pipeline.processing.timeslice import Window

# How a field of the service's errors is called on the page (the error keeps the field's own name too).
FIELD_LABELS = {
    "hot_channel_threshold": "Hot-channel threshold",
    "scale_by_events": "Scale by number of events",
    "min_minutes": "Slice min",
    "max_minutes": "Slice max",
    # The same fields as a URL names them (`pipeline.processing.query.PARAMETER_FIELDS`).
    "threshold": "Hot-channel threshold",
    "scale": "Scale by number of events",
    "min": "Slice min",
    "max": "Slice max",
    "mode": "Merger mode",
    "group": "Group",
    "hist": "Histogram",
}
MARK_STEPS_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 240)
MAX_MARKS = 11


def slider_max(run_length_minutes: float) -> int:
    """The slider's upper end: the run length rounded up to a whole minute (at least 1)."""
    # A hair of tolerance: 9.0000001 minutes of float arithmetic is still a 9-minute run.
    return max(1, math.ceil(run_length_minutes - 1e-6))


def slider_marks(max_minutes: int) -> dict[str, str]:
    """Labelled minutes along the slider: round steps, at most MAX_MARKS labels, the end always."""
    step = next((s for s in MARK_STEPS_MINUTES if max_minutes / s < MAX_MARKS), MARK_STEPS_MINUTES[-1])
    marks = {str(minute): str(minute) for minute in range(0, max_minutes + 1, step)}
    marks[str(max_minutes)] = f"{max_minutes} min"
    return marks


def range_after_growth(
    value: Sequence[float] | None, old_max: float | None, new_max: int, slice_applied: bool
) -> list[float] | None:
    """The slider range after the run grew (None: leave it as it is).

    Only an untouched full range ([0, old max], no slice applied) follows the run's end; any range the
    user chose stays exactly where they put it.
    """
    if value is None or old_max is None:
        return [0, new_max]
    if not slice_applied and list(value) == [0, old_max] and new_max != old_max:
        return [0, new_max]
    return None


def inputs_from_range(value: Sequence[float] | None) -> tuple[float | None, float | None]:
    """The two number boxes showing a slider range."""
    if not value or len(value) != 2:
        return None, None
    return _plain_number(value[0]), _plain_number(value[1])


def range_from_inputs(min_value: Any, max_value: Any, slider_upper: float | None) -> list[float] | None:
    """The slider range for what the number boxes say, or None when the slider cannot show it (an
    incomplete or inverted entry, a value outside the slider): the boxes then keep what the user
    typed, and Apply reports what is wrong."""
    low, high = _number_or_none(min_value), _number_or_none(max_value)
    if low is None or high is None or low > high or low < 0:
        return None
    if slider_upper is not None and high > slider_upper:
        return None
    return [low, high]


def window_from_inputs(min_value: Any, max_value: Any, run_length_minutes: float) -> Window | None:
    """The window a user asked for with the number boxes; None means the full run.

    Raises OptionsError for a box that does not hold a number. A range covering the whole run is the
    full run (as in the original: min 0 and max = the rounded run length is "full processing"), and a
    max between the run's end and the slider's end (the length rounded up) means "to the end".
    Everything else goes to the service unchanged, which names what is wrong (negative, min > max,
    beyond the run).
    """
    low = _require_number("min_minutes", min_value)
    high = _require_number("max_minutes", max_value)
    upper = slider_max(run_length_minutes)
    if run_length_minutes < high <= upper:
        high = run_length_minutes
    if low == 0 and high >= run_length_minutes and high <= upper:
        return None
    return Window(low, high)


def options_from_inputs(scale_by_events: Any, hot_channel_threshold: Any) -> ProcessingOptions:
    """The processing options of the option controls; an empty threshold is each histogram's default.

    Raises OptionsError (naming the field) for anything the service would reject.
    """
    threshold = hot_channel_threshold
    if isinstance(threshold, str):
        threshold = threshold.strip()
    return ProcessingOptions.from_mapping(
        {"scale_by_events": bool(scale_by_events), "hot_channel_threshold": threshold}
    )


def error_text(error: OptionsError) -> str:
    """'Hot-channel threshold (hot_channel_threshold): must be > 0 ...' for the page."""
    label = FIELD_LABELS.get(error.field)
    message = str(error).removeprefix(f"{error.field}: ")
    named = f"{label} ({error.field})" if label else error.field
    return f"{named}: {message}"


def describe_full_run(run_length_minutes: float, ongoing: bool) -> str:
    state = "following live updates" if ongoing else "run not ongoing"
    return f"Full run: 0–{run_length_minutes:.1f} min · {state}"


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, str):  # the URL's rule for written numbers (no "1_0", "nan")
        number = decimal_number(value)
    elif isinstance(value, int | float):
        number = float(value)
    else:
        return None
    return number if number is not None and math.isfinite(number) else None


def _require_number(field_name: str, value: Any) -> float:
    number = _number_or_none(value)
    if number is None:
        shown = "nothing" if value is None or value == "" else repr(value)
        raise OptionsError(field_name, f"must be a number of minutes, got {shown}")
    return number


def _plain_number(value: float) -> float | int:
    # 3.0 shows as "3" in the number box.
    return int(value) if float(value).is_integer() else float(value)
