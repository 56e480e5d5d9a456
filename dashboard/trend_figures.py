"""Trend plots: one trended quantity against time within a run, or one value per run across runs, with
the alarms' accepted ranges drawn as bands. Pure functions of the series and the limits (no callbacks),
unit-tested without a browser.

The x axis is real: the snapshot's time (UTC) within a run, the run number across runs; the original
plotted against an entry index. The y range always shows every alarm limit: a band the points lie in is
clipped to the range the points need (e.g. "at most 1e9 events a minute" does not squash them into a
line), and a band beside the points (the alarm is firing) widens the range to its nearest edge, drawn
dashed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures import message_figure
from dashboard.qc_links import AXIS_RUNS

POINT_COLOR = "#1f4e9c"
BAND_COLORS = {"error": "rgba(40, 167, 69, 0.13)", "warning": "rgba(255, 193, 7, 0.16)"}
LIMIT_LINE_COLORS = {"error": "#c0392b", "warning": "#b8860b"}
TIME_TITLE = "time of snapshot (UTC)"
RUN_TITLE = "run number"


def trend_title(histogram: str, quantity: str, content: str, axis: str) -> str:
    """'hot_channels of FastOR L0 (hits with ADC > 0) · interval content' (`histogram`: its label)."""
    against = "one value per run (end of run, cumulative)" if axis == AXIS_RUNS else f"{content} content"
    return f"{quantity} of {histogram} · {against}"


def visible_range(values: np.ndarray, errors: np.ndarray) -> tuple[float, float]:
    """The y range the data need (values with their errors), padded so bands beyond it stay visible."""
    finite = np.isfinite(values)
    if not finite.any():
        return 0.0, 1.0
    errors = np.where(np.isfinite(errors), errors, 0.0)
    low = float(np.min(values[finite] - errors[finite]))
    high = float(np.max(values[finite] + errors[finite]))
    span = max(high - low, abs(high) * 0.1, 1.0)
    return low - span, high + span


def range_with_limits(shown: tuple[float, float], limits: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """`shown` widened so that every limit's band meets it: a band beside the points adds its nearest
    edge and a margin of a quarter of the new span beyond it (a band a person sees, not a hairline)."""
    low, high = shown
    for limit in limits:
        band_low = _finite_or(limit.get("min"), -math.inf)
        band_high = _finite_or(limit.get("max"), math.inf)
        if band_high < low:
            low = band_high - 0.25 * (high - band_high)
        elif band_low > high:
            high = band_low + 0.25 * (band_low - low)
    return low, high


def band_extent(limit: dict[str, Any], shown: tuple[float, float]) -> tuple[float, float] | None:
    """The accepted range of one limit, clipped to `shown`; None when it does not meet `shown`."""
    low = _finite_or(limit.get("min"), -math.inf)
    high = _finite_or(limit.get("max"), math.inf)
    clipped = max(low, shown[0]), min(high, shown[1])
    return clipped if clipped[0] <= clipped[1] else None


def trend_figure(
    series: pd.DataFrame,
    limits: Sequence[dict[str, Any]],
    *,
    axis: str,
    title: str,
    y_title: str,
    empty_message: str = "No trend values for this choice yet: the QC service has not trended it",
) -> go.Figure:
    """Points with error bars against time (`snapshot_time_utc`) or run number (`run`), and one band per
    alarm limit (its accepted range, with dashed lines at its finite edges inside the plotted range);
    `empty_message` says why when there is no point."""
    if series.empty:
        return message_figure(empty_message)
    values = series["value"].to_numpy(dtype=float)
    errors = series["error"].to_numpy(dtype=float)
    by_run = axis == AXIS_RUNS
    if by_run:
        x = [str(int(run)) for run in series["run"]]
        hover = "run %{x}<br>value %{y:.6g} ± %{error_y.array:.3g}<br>end of run %{customdata}<extra></extra>"
        custom = [_utc_text(t) for t in series["snapshot_time_utc"]]
    else:
        x = [t.to_pydatetime() for t in pd.to_datetime(series["snapshot_time_utc"], utc=True)]
        hover = "%{x|%Y-%m-%d %H:%M:%S} UTC<br>value %{y:.6g} ± %{error_y.array:.3g}<extra></extra>"
        custom = None
    figure = go.Figure(
        go.Scatter(
            x=x,
            y=values,
            error_y={"type": "data", "array": errors, "visible": True, "thickness": 1},
            mode="lines+markers" if not by_run else "markers",
            marker={"color": POINT_COLOR, "size": 7},
            line={"color": POINT_COLOR, "width": 1},
            name="value",
            customdata=custom,
            hovertemplate=hover,
        )
    )
    shown = range_with_limits(visible_range(values, errors), limits)
    for limit in limits:
        _add_band(figure, limit, shown)
    figure.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        margin={"l": 70, "r": 20, "t": 50, "b": 60},
        hovermode="closest",
        showlegend=False,
        plot_bgcolor="white",
        uirevision=title,
    )
    figure.update_xaxes(
        title_text=RUN_TITLE if by_run else TIME_TITLE,
        type="category" if by_run else "date",
        showgrid=True,
        gridcolor="#e5e5e5",
        linecolor="#888",
    )
    figure.update_yaxes(title_text=y_title, showgrid=True, gridcolor="#e5e5e5", linecolor="#888")
    if limits:  # set, not left to autorange: it must hold every limit (see `range_with_limits`)
        figure.update_yaxes(range=list(shown))
    return figure


def _add_band(figure: go.Figure, limit: dict[str, Any], shown: tuple[float, float]) -> None:
    extent = band_extent(limit, shown)
    if extent is None:
        return
    severity = str(limit.get("severity", "error"))
    label = (
        f"alarm {limit.get('alarm', '')}: accepted {_bound(limit.get('min'))} – {_bound(limit.get('max'))}"
    )
    figure.add_hrect(
        y0=extent[0],
        y1=extent[1],
        fillcolor=BAND_COLORS.get(severity, BAND_COLORS["error"]),
        line_width=0,
        layer="below",
        annotation_text=label,
        annotation_position="top left",
        annotation_font={"size": 11, "color": "#555"},
    )
    for edge in (limit.get("min"), limit.get("max")):
        value = _finite_or(edge, math.nan)
        if math.isfinite(value) and shown[0] <= value <= shown[1]:
            figure.add_hline(
                y=value, line_dash="dash", line_width=1, line_color=LIMIT_LINE_COLORS.get(severity, "#c0392b")
            )


def _finite_or(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _bound(value: Any) -> str:
    number = _finite_or(value, math.nan)
    return f"{number:g}" if math.isfinite(number) else "∞"


def _utc_text(value: Any) -> str:
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
