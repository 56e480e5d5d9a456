"""Plotly figures for histograms: pure functions, no Dash, unit-tested without a browser.

TH1 -> step line through the bin edges plus error bars at the bin centres (or markers, when the
detector plug-in gives a marker style); TH2 -> heatmap (optional log colour scale); TH3 -> heatmap of
its xy projection. `processed_figure` and `stack_figure` also apply the plug-in's DrawHints and show
its check results; callbacks only choose which figure to ask for.
"""

from __future__ import annotations

import functools
import html
import math
import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from pipeline.detectors.base import DrawHints, LineSegment, MarkerStyle, ProcessedHistogram, Stack
from pipeline.detectors.names import display_name, is_readable_title
from pipeline.histogram import Histogram

# Setting a template on a plotly figure deep-copies it (tens of milliseconds, most of a redraw), and
# every new go.Figure gets the default one: figures are built bare and `styled` adds this one as data.
TEMPLATE = "plotly_white"
pio.templates.default = "none"

LINE_COLOR = "#1f4e9c"
ERROR_COLOR = "#1f4e9c"
COLORSCALE = "Viridis"
BASE_FONT_SIZE = 15
VALUE_TITLE_FALLBACK = "content"
GRID_COLOR = "#c5cad3"
# Overlays (TRU grid) sit on dark and bright colours alike: light grey with a little transparency.
OVERLAY_LINE = {"color": "rgba(225, 228, 232, 0.85)", "width": 1}
THRESHOLD_COLOR = "#c62828"
HOT_COLOR = "#c62828"
# ROOT marker size 1 is about 8 px; below 5 px a marker is unreadable on a control-room screen.
MARKER_PX_PER_ROOT_SIZE = 8.0
MIN_MARKER_PX = 5.0
# Beyond this many, ringing every channel above threshold hides the plot instead of explaining it:
# only the highest are ringed, and the legend says how many there are.
MAX_MARKED_CHANNELS = 200
SECONDARY_AXIS_MARGIN = 50
# Beyond this many bins a 1D histogram is drawn with one SVG path per trace (contents, error bars):
# plotly.js makes every marker and every error bar its own SVG element, and the 5,000 FastORs of
# FastORL0 (10,000 elements) took half a second to draw on every threshold change. At this density
# (several bins per pixel of the plot) a marker's shape cannot be told apart anyway.
MAX_SEPARATE_POINTS = 1000
# Panels per row of a grid: the original drew the 20 supermodules of a group four to a row.
GRID_COLUMNS = 4
# Legends go under the plot, right-aligned: above it they would cover the subtitle.
LEGEND = {"orientation": "h", "x": 1, "xanchor": "right", "y": -0.1, "yanchor": "top", "font": {"size": 14}}
_BIN_HOVER = (
    "bin [%{customdata[0]:.4g}, %{customdata[1]:.4g})<br>"
    "content %{y:.6g} ± %{customdata[2]:.3g}<extra></extra>"
)
TH3_NOTE = "xy projection of a TH3: sum over z (incl. under/overflow)"


_ROOT_SYMBOLS = {"pm": "±", "times": "×", "circ": "°", "infty": "∞", "sqrt": "√", "rightarrow": "→"}
_ROOT_COMMAND = re.compile(r"#([A-Za-z]+)")
_ROOT_SCRIPT = re.compile(r"([_^])\{([^{}]*)\}")
_ROOT_STYLE = re.compile(r"<(it|bf)>\{([^{}]*)\}")
_HTML_STYLE_TAGS = {"it": "i", "bf": "b"}


def root_text_to_html(text: str) -> str:
    """ROOT TLatex as Plotly text: `p_{T}` -> p<sub>T</sub>, `#eta` -> η, `#it{c}` -> <i>c</i>.

    Only the braced forms are converted, so plain names with underscores stay as they are.
    """
    converted = html.escape(text, quote=False)

    def command(match: re.Match) -> str:
        word = match.group(1)
        if word in ("it", "bf"):
            return f"<{word}>"  # marks the braces that follow, see _ROOT_STYLE
        if word in _ROOT_SYMBOLS:
            return _ROOT_SYMBOLS[word]
        case = "CAPITAL" if word[0].isupper() else "SMALL"
        try:
            return unicodedata.lookup(f"GREEK {case} LETTER {word.upper()}")
        except KeyError:
            return match.group(0)

    converted = _ROOT_COMMAND.sub(command, converted)
    converted = _ROOT_STYLE.sub(
        lambda m: "<{tag}>{text}</{tag}>".format(tag=_HTML_STYLE_TAGS[m.group(1)], text=m.group(2)),
        converted,
    )
    converted = converted.replace("<it>", "").replace("<bf>", "")  # #it / #bf without braces
    # Inner scripts first, so `10^{x_{1}}` nests correctly.
    while _ROOT_SCRIPT.search(converted):
        converted = _ROOT_SCRIPT.sub(
            lambda m: f"<sub>{m.group(2)}</sub>" if m.group(1) == "_" else f"<sup>{m.group(2)}</sup>",
            converted,
        )
    return converted


def histogram_figure(
    h: Histogram, log_z: bool = False, log_y: bool = False, title: str | None = None
) -> go.Figure:
    """Figure of `h`; `log_y` applies to 1D, `log_z` to 2D/3D; `title` overrides its display name."""
    fig = _content_figure(h, log_y=log_y, log_z=log_z, value_title=_value_title(h))
    if fig is None:
        return message_figure(f"{h.name}: cannot draw a {h.dimension}-dimensional histogram")
    fig.update_xaxes(title_text=root_text_to_html(h.axis_titles[0]))
    y_title = h.axis_titles[1] if h.dimension >= 2 else _value_title(h)
    fig.update_yaxes(title_text=root_text_to_html(y_title))
    fig.update_layout(_base_layout(), title=_title(title or display_name(h.name, h.title), _subtitle(h)))
    return fig


def processed_figure(
    processed: ProcessedHistogram,
    *,
    log_x: bool | None = None,
    log_y: bool | None = None,
    log_z: bool | None = None,
    context: str = "",
) -> go.Figure:
    """Figure of a plug-in-processed histogram drawn the way its detector experts asked (DrawHints):
    pretty title, axis titles, log axes, ranges, overlays, a secondary x axis, marker style, and the
    verdict of its checks (threshold line, hot channels marked).

    `log_*=None` takes the hint's default; a bool is the person's own choice. `context` is appended
    to the subtitle (e.g. the time slice), so an exported image still says what it shows.
    """
    h, hints = processed.histogram, processed.hints
    log_x, log_y, log_z = log_flags(hints, log_x, log_y, log_z)
    value_title = (hints.z_title if h.dimension >= 2 else hints.y_title) or _value_title(h)
    fig = _content_figure(h, log_y=log_y, log_z=log_z, value_title=value_title, marker=hints.marker)
    if fig is None:
        return message_figure(f"{h.name}: cannot draw a {h.dimension}-dimensional histogram")
    if h.dimension == 1:
        _add_check_marks(fig, processed, log_y)
    _apply_hints(fig, h, hints, log_x=log_x, log_y=log_y, value_title=value_title)
    fig.update_layout(title=_title(headline(h, hints), _subtitle(h, hints, context)))
    return fig


def stack_figure(
    stack: Stack,
    members: Sequence[ProcessedHistogram],
    *,
    log_x: bool | None = None,
    log_y: bool | None = None,
    log_z: bool | None = None,
    context: str = "",
) -> go.Figure:
    """The members of a stack on one plot, each with its label and marker style, and a legend.

    The first member's hints (log y, axis titles, secondary axis, ...) apply to the whole stack, as
    the plug-in contract says. Only 1D members can share a plot; anything else shows the first member.
    """
    if not members:
        return message_figure(f"{stack.title}: no member histogram in this view")
    if any(member.histogram.dimension != 1 for member in members):
        return processed_figure(members[0], log_x=log_x, log_y=log_y, log_z=log_z, context=context)
    first = members[0]
    hints = first.hints
    log_x, log_y, _ = log_flags(hints, log_x, log_y, log_z)
    fig = go.Figure()
    for index, member in enumerate(members):
        style = stack.styles[index] if index < len(stack.styles) else None
        label = stack.labels[index] if index < len(stack.labels) else member.histogram.name
        fig.add_traces(_points_traces(member.histogram, style, name=label, showlegend=True))
    fig.update_layout(hovermode="closest", legend=LEGEND)
    if log_y:
        fig.update_yaxes(type="log")
    value_title = hints.y_title or _value_title(first.histogram)
    _apply_hints(fig, first.histogram, hints, log_x=log_x, log_y=log_y, value_title=value_title)
    names = " + ".join(member.histogram.name for member in members)
    subtitle = " · ".join(part for part in (names, context) if part)
    fig.update_layout(title=_title(stack.title, subtitle))
    return fig


def grid_figure(
    title: str,
    members: Sequence[ProcessedHistogram],
    *,
    log_y: bool | None = None,
    log_z: bool | None = None,
    context: str = "",
    shared_scale: bool = True,
) -> go.Figure:
    """A group's histograms side by side (the original's per-supermodule grids), in the given order.

    `log_*=None` takes the hint of the first member the axis applies to (`group_log_flags`): every page
    draws a group the experts' way unless the person chose otherwise. Maps share one colour scale, so
    the one supermodule that differs stands out; each panel is titled with its histogram's headline
    ("SM 3"). The first member's axis ranges apply to every panel; in a group that mixes 1D histograms
    and maps, each panel takes its own.
    `shared_scale=False` (a group of unrelated maps) gives each map its own scale, without colour bars.
    """
    if not members:
        return message_figure(f"{title}: no histogram in this view")
    _, log_y, log_z = group_log_flags(members, log_y, log_z)
    columns = min(GRID_COLUMNS, len(members))
    rows = math.ceil(len(members) / columns)
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[root_text_to_html(headline(m.histogram, m.hints)) for m in members],
        horizontal_spacing=0.12 / columns,
        vertical_spacing=min(0.3 / rows, 0.08),
    )
    maps = [m.histogram for m in members if m.histogram.dimension == 2]
    z_of = {id(h): np.asarray(h.values(), dtype=float).T for h in maps}
    if log_z:
        z_of = {key: log10_positive(z) for key, z in z_of.items()}
    for index, member in enumerate(members):
        h = member.histogram
        row, column = divmod(index, columns)
        if h.dimension == 2:
            trace = go.Heatmap(
                x=np.asarray(h.edges[0], dtype=float),
                y=np.asarray(h.edges[1], dtype=float),
                z=z_of[id(h)],
                **(
                    {"coloraxis": "coloraxis"}
                    if shared_scale
                    else {"colorscale": COLORSCALE, "showscale": False}
                ),
                hoverongaps=False,
                name=h.name,
                hovertemplate=f"{html.escape(h.name)}<br>x %{{x:.4g}}<br>y %{{y:.4g}}<extra></extra>",
            )
        elif h.dimension == 1:
            edges = np.asarray(h.edges[0], dtype=float)
            values = np.asarray(h.values(), dtype=float)
            trace = go.Scatter(
                x=edges,
                y=np.append(values, values[-1]) if values.size else values,
                mode="lines",
                line={"shape": "hv", "color": LINE_COLOR, "width": 1.2},
                name=h.name,
                showlegend=False,
            )
        else:
            continue
        fig.add_trace(trace, row=row + 1, col=column + 1)
    _inner_tick_labels_off(fig, [m.histogram for m in members], columns)
    first = next((m for m in members if m.histogram.dimension == 2), members[0])
    hints = first.hints
    if len({m.histogram.dimension for m in members}) == 1:
        if (x_range := axis_range(hints.x_range, False)) is not None:
            fig.update_xaxes(range=x_range)
        if maps and (y_range := axis_range(hints.y_range, False)) is not None:
            fig.update_yaxes(range=y_range)
        if log_y and not maps:
            fig.update_yaxes(type="log")
    else:
        _mixed_panel_axes(fig, members, columns, log_y)
    value_title = (hints.z_title if maps else hints.y_title) or _value_title(first.histogram)
    colorbar: dict = {"title": {"text": root_text_to_html(value_title), "side": "right"}}
    if maps and log_z:
        colorbar.update(log_colorbar_ticks(np.concatenate([z.ravel() for z in z_of.values()])))
    fig.update_layout(_base_layout())
    fig.update_layout(
        coloraxis={"colorscale": COLORSCALE, "colorbar": colorbar},
        title=_title(title, " · ".join(part for part in (f"{len(members)} histograms", context) if part)),
    )
    fig.update_annotations(font={"size": 12})  # the panel titles
    return fig


def _mixed_panel_axes(
    fig: go.Figure, members: Sequence[ProcessedHistogram], columns: int, log_y: bool
) -> None:
    """Axes of a grid that mixes 1D histograms and maps, panel by panel: each its own ranges, and log y
    on the 1D panels only (a map's y axis is a coordinate)."""
    for index, member in enumerate(members):
        row, column = divmod(index, columns)
        panel = {"row": row + 1, "col": column + 1}
        if (x_range := axis_range(member.hints.x_range, False)) is not None:
            fig.update_xaxes(range=x_range, **panel)
        if member.histogram.dimension == 2:
            if (y_range := axis_range(member.hints.y_range, False)) is not None:
                fig.update_yaxes(range=y_range, **panel)
        elif log_y:
            fig.update_yaxes(type="log", **panel)


def _inner_tick_labels_off(fig: go.Figure, histograms: Sequence[Histogram], columns: int) -> None:
    """Tick labels only under the bottom panel of each column and left of the first column, when all
    panels share that axis's bins (a supermodule grid): the labels of a panel's x axis sat on the
    title of the panel below it, and fewer labels are also quicker to draw."""
    if len({h.dimension for h in histograms}) != 1:
        return
    for axis, update in ((0, fig.update_xaxes), (1, fig.update_yaxes)):
        if axis >= histograms[0].dimension:
            continue
        first_edges = histograms[0].edges[axis]
        if not all(np.array_equal(h.edges[axis], first_edges) for h in histograms[1:]):
            continue
        for index in range(len(histograms)):
            row, column = divmod(index, columns)
            inner = index + columns < len(histograms) if axis == 0 else column > 0
            if inner:
                update(showticklabels=False, row=row + 1, col=column + 1)


def headline(h: Histogram, hints: DrawHints) -> str:
    """The figure's title: the plug-in's title, or the histogram's own, where the experts want titles
    shown; the pretty name otherwise (the name the histogram list shows)."""
    if hints.show_title:
        own_title = h.title.strip() if is_readable_title(h.title, h.name) else ""
        return hints.title or own_title or hints.pretty_name
    return hints.pretty_name


def secondary_axis_ticks(
    x_min: float, x_max: float, scale: float, max_ticks: int = 8
) -> tuple[list[float], list[str]]:
    """Ticks of a secondary axis showing `scale * x`: round values of the converted quantity
    (1, 2 or 5 times a power of ten apart), placed at the primary-axis positions that give them."""
    low, high = sorted((x_min * scale, x_max * scale))
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low or scale == 0:
        return [], []
    step = nice_step((high - low) / max(max_ticks, 1))
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    converted = [k * step for k in range(first, last + 1)]
    return [value / scale for value in converted], [f"{value:.6g}" for value in converted]


def nice_step(raw_step: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is >= `raw_step`."""
    if raw_step <= 0 or not math.isfinite(raw_step):
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw_step))
    for factor in (1.0, 2.0, 5.0, 10.0):
        if factor * power >= raw_step * (1 - 1e-9):
            return factor * power
    return 10.0 * power


def overlay_shapes(segments: Sequence[LineSegment], log_x: bool = False, log_y: bool = False) -> list[dict]:
    """Plotly line shapes for the plug-in's overlay segments (e.g. the TRU grid), in data coordinates.

    Shapes on a log axis are placed in log10 units (Plotly's rule for shapes), so a segment that
    touches a non-positive value on a log axis cannot be drawn and is left out.
    """
    shapes = []
    for (x0, y0), (x1, y1) in segments:
        xs = axis_range((x0, x1), log_x)
        ys = axis_range((y0, y1), log_y)
        if xs is None or ys is None:
            continue
        shapes.append(
            {
                "type": "line",
                "name": "overlay",
                "xref": "x",
                "yref": "y",
                "x0": xs[0],
                "x1": xs[1],
                "y0": ys[0],
                "y1": ys[1],
                "layer": "above",
                "line": dict(OVERLAY_LINE),
            }
        )
    return shapes


def axis_range(limits: tuple[float, float] | None, log: bool) -> list[float] | None:
    """A hinted axis range in Plotly's units (log10 of the limits on a log axis); None if not drawable."""
    if limits is None:
        return None
    low, high = (float(v) for v in limits)
    if not log:
        return [low, high]
    if low <= 0 or high <= 0:
        return None
    return [math.log10(low), math.log10(high)]


def message_figure(message: str) -> go.Figure:
    """An empty figure that only says `message` (no runs yet, histogram missing, ...)."""
    fig = go.Figure()
    fig.add_annotation(
        text=message,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 20, "color": "#6c757d"},
    )
    fig.update_layout(_base_layout())
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def log10_positive(values: np.ndarray) -> np.ndarray:
    """log10 of the positive entries; zeros and negatives become NaN so Plotly leaves them empty."""
    values = np.asarray(values, dtype=float)
    result = np.full(values.shape, np.nan)
    positive = values > 0
    result[positive] = np.log10(values[positive])
    return result


def _content_figure(
    h: Histogram,
    *,
    log_y: bool,
    log_z: bool,
    value_title: str,
    marker: MarkerStyle | None = None,
) -> go.Figure | None:
    """The traces of `h` (no titles); None for a dimension we cannot draw."""
    if h.dimension == 1:
        if marker is not None:
            fig = go.Figure(_points_traces(h, marker, name="content", showlegend=False))
            fig.update_layout(hovermode="closest")
            if log_y:
                fig.update_yaxes(type="log")
            return fig
        return _th1_figure(h, log_y)
    if h.dimension == 2:
        return _heatmap_figure(h.edges[0], h.edges[1], h.values(), value_title, log_z)
    if h.dimension == 3:
        # ROOT's TH3::Project3D("xy") also keeps the z under/overflow unless asked not to.
        projection = h.values_flow[1:-1, 1:-1, :].sum(axis=2)
        # The note goes into the subtitle (see _subtitle): an annotation over the plot covered it.
        return _heatmap_figure(h.edges[0], h.edges[1], projection, value_title, log_z)
    return None


def _th1_figure(h: Histogram, log_y: bool) -> go.Figure:
    edges = np.asarray(h.edges[0], dtype=float)
    values = np.asarray(h.values(), dtype=float)
    errors = h.errors()
    centers = 0.5 * (edges[:-1] + edges[1:])
    # "hv" steps need one point per edge: the last bin's value is repeated at the upper edge.
    step_y = np.append(values, values[-1]) if values.size else values
    dense = values.size > MAX_SEPARATE_POINTS
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            name="content",
            x=edges,
            y=step_y,
            mode="lines",
            line={"shape": "hv", "color": LINE_COLOR, "width": 2},
            hoverinfo="skip",
            showlegend=False,
        )
    )
    # Invisible points: the step line shows the contents, these only carry the bars and the hover (when
    # dense, a line of width 0 and an error band: one SVG path each instead of one per bin).
    invisible = {"mode": "lines", "line": {"width": 0}} if dense else {"mode": "markers"}
    fig.add_trace(
        go.Scatter(
            name="error",
            x=centers,
            y=values,
            **invisible,
            marker={"size": 6, "opacity": 0, "color": ERROR_COLOR},
            error_y=None if dense else _error_bars(errors, ERROR_COLOR),
            customdata=_hover_data(edges, errors, dense),
            hovertemplate=_BIN_HOVER,
            showlegend=False,
        )
    )
    if dense:
        fig.add_traces(_error_band(centers, values, errors, ERROR_COLOR))
    fig.update_layout(hovermode="closest")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def _points_traces(
    h: Histogram, style: MarkerStyle | None, *, name: str, showlegend: bool
) -> list[go.Scatter]:
    """A TH1 as markers with error bars at the bin centres (ROOT's "E" drawing with a marker style).

    Dense (more than MAX_SEPARATE_POINTS bins): the contents as a step line in the marker's colour and
    the errors as a band around it, one SVG path each."""
    edges = np.asarray(h.edges[0], dtype=float)
    values = np.asarray(h.values(), dtype=float)
    errors = h.errors()
    centers = 0.5 * (edges[:-1] + edges[1:])
    color = style.color if style else LINE_COLOR
    dense = values.size > MAX_SEPARATE_POINTS
    if dense:
        drawing = {"mode": "lines", "line": {"shape": "hvh", "color": color, "width": 1.5}}
    else:
        marker = marker_from_style(style) if style else {"color": LINE_COLOR, "size": 6}
        drawing = {"mode": "markers", "marker": marker, "error_y": _error_bars(errors, color)}
    content = go.Scatter(
        name=name,
        x=centers,
        y=values,
        **drawing,
        customdata=_hover_data(edges, errors, dense),
        hovertemplate=_BIN_HOVER.replace("<extra></extra>", f"<extra>{html.escape(name)}</extra>")
        if showlegend
        else _BIN_HOVER,
        showlegend=showlegend,
    )
    return [content, *_error_band(centers, values, errors, color)] if dense else [content]


def _hover_data(edges: np.ndarray, errors: np.ndarray, dense: bool) -> np.ndarray:
    """Per bin: low edge, high edge, error (the hover's numbers). Dense histograms send them as float32,
    which still prints the hover's 3-4 significant digits, at half the bytes."""
    data = np.column_stack([edges[:-1], edges[1:], errors])
    return data.astype(np.float32) if dense else data


def _error_band(centers: np.ndarray, values: np.ndarray, errors: np.ndarray, color: str) -> list[go.Scatter]:
    """Error bars of a dense histogram as a translucent band from content - error to content + error:
    two SVG paths (plotly.js draws a line with gaps as one path per piece, so bars cannot be one)."""
    band = {
        "x": centers,
        "mode": "lines",
        "line": {"shape": "hvh", "width": 0, "color": color},
        "hoverinfo": "skip",
        "showlegend": False,
    }
    return [
        go.Scatter(name="error band low", y=(values - errors).astype(np.float32), **band),
        go.Scatter(
            name="error band",
            y=(values + errors).astype(np.float32),
            fill="tonexty",
            fillcolor=_translucent(color),
            **band,
        ),
    ]


def _translucent(color: str, alpha: float = 0.3) -> str:
    """`#rrggbb` as rgba with `alpha`; other colour forms as a translucent grey."""
    if re.fullmatch(r"#[0-9a-fA-F]{6}", color):
        red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
        return f"rgba({red}, {green}, {blue}, {alpha})"
    return f"rgba(108, 117, 125, {alpha})"


def marker_from_style(style: MarkerStyle) -> dict:
    """Plotly marker for a plug-in MarkerStyle; sizes are ROOT marker sizes (1 = 8 px)."""
    size_px = max(style.size * MARKER_PX_PER_ROOT_SIZE, MIN_MARKER_PX)
    marker: dict = {"color": style.color, "symbol": style.symbol, "size": size_px}
    if style.symbol.endswith("-open"):
        # Open symbols are drawn by their outline only: make it thick enough to read from afar.
        marker["line"] = {"width": 1.5, "color": style.color}
    return marker


def _error_bars(errors: np.ndarray, color: str) -> dict:
    return {"type": "data", "array": errors, "visible": True, "color": color, "thickness": 1.2, "width": 0}


def _add_check_marks(fig: go.Figure, processed: ProcessedHistogram, log_y: bool) -> None:
    """The threshold of a channel check as a dashed line, and the channels above it as red rings.

    Drawn only when the check compared the numbers the plot shows (both per event, or both raw);
    a per-event threshold over raw counts would sit in the wrong place.
    """
    h = processed.histogram
    edges = np.asarray(h.edges[0], dtype=float)
    values = np.asarray(h.values(), dtype=float)
    for check in processed.checks:
        # Only checks that flag channels for being above a threshold have a line and rings.
        threshold, ids = check.threshold, check.flagged_ids
        if not check.flags_above or threshold is None:
            continue
        if check.per_event != processed.scaled_by_events:
            continue
        if not (log_y and threshold <= 0):
            fig.add_trace(
                go.Scatter(
                    name=f"threshold {threshold:g}",
                    x=[edges[0], edges[-1]],
                    y=[threshold, threshold],
                    mode="lines",
                    line={"color": THRESHOLD_COLOR, "width": 1.5, "dash": "dash"},
                    hovertemplate=f"threshold {threshold:g}<extra></extra>",
                    showlegend=True,
                )
            )
        ids = np.asarray(ids, dtype=int)
        ids = ids[(ids >= 0) & (ids < values.size)]
        if ids.size:
            count = f"{ids.size:,}"
            if ids.size > MAX_MARKED_CHANNELS:
                # Ring the highest ones only and say so: thousands of rings hide the plot and hang the tab.
                ids = np.sort(ids[np.argsort(values[ids], kind="stable")[::-1][:MAX_MARKED_CHANNELS]])
                count += f"; {MAX_MARKED_CHANNELS} highest ringed"
            name = f"above threshold ({count})"
            centers = 0.5 * (edges[ids] + edges[ids + 1])
            fig.add_trace(
                go.Scatter(
                    name=name,
                    x=centers,
                    y=values[ids],
                    mode="markers",
                    marker={"symbol": "circle-open", "size": 14, "color": HOT_COLOR, "line": {"width": 2.5}},
                    hovertemplate="id %{x:.0f}<br>content %{y:.6g}<extra>above threshold</extra>",
                    showlegend=True,
                )
            )
        fig.update_layout(legend=LEGEND)


def _apply_hints(
    fig: go.Figure, h: Histogram, hints: DrawHints, *, log_x: bool, log_y: bool, value_title: str
) -> None:
    """Axis titles, log x, ranges, grid, overlays and the secondary axis from the plug-in's hints."""
    x_title = hints.x_title if hints.x_title is not None else h.axis_titles[0]
    if h.dimension >= 2:
        y_title = hints.y_title if hints.y_title is not None else h.axis_titles[1]
    else:
        y_title = value_title
    fig.update_xaxes(title_text=root_text_to_html(x_title))
    fig.update_yaxes(title_text=root_text_to_html(y_title))
    if log_x:
        fig.update_xaxes(type="log")
    # A y range on a 1D plot is in content units; on a heatmap in axis units. Log applies only to 1D y.
    y_is_log = log_y and h.dimension == 1
    if (x_range := axis_range(hints.x_range, log_x)) is not None:
        fig.update_xaxes(range=x_range)
    if (y_range := axis_range(hints.y_range, y_is_log)) is not None:
        fig.update_yaxes(range=y_range)
    if hints.grid_lines:
        fig.update_xaxes(showgrid=True, gridcolor=GRID_COLOR)
        fig.update_yaxes(showgrid=True, gridcolor=GRID_COLOR)
    if hints.overlays:
        fig.update_layout(shapes=overlay_shapes(hints.overlays, log_x=log_x, log_y=y_is_log))
    layout = _base_layout()
    if hints.secondary_x_axis is not None and not log_x:
        edges = np.asarray(h.edges[0], dtype=float)
        x_low, x_high = hints.x_range or (float(edges[0]), float(edges[-1]))
        tickvals, ticktext = secondary_axis_ticks(x_low, x_high, hints.secondary_x_axis.scale)
        fig.update_layout(
            xaxis2={
                "title": {"text": root_text_to_html(hints.secondary_x_axis.title)},
                "overlaying": "x",
                "side": "top",
                "anchor": "y",
                # Same range as the bottom axis, so zooming keeps the converted ticks in place.
                "matches": "x",
                "tickmode": "array",
                "tickvals": tickvals,
                "ticktext": ticktext,
                "showgrid": False,
                "ticks": "outside",
            }
        )
        # Plotly draws an axis only when a trace uses it: an empty, legend-less trace anchors the top axis.
        fig.add_trace(
            go.Scatter(
                x=[x_low, x_high],
                y=[None, None],
                xaxis="x2",
                mode="lines",
                name="",
                showlegend=False,
                hoverinfo="skip",
            )
        )
        # Room for the top axis between the title and the plot.
        layout["margin"] = {**layout["margin"], "t": layout["margin"]["t"] + SECONDARY_AXIS_MARGIN}
    fig.update_layout(layout)


def log_flags(
    hints: DrawHints, log_x: bool | None = None, log_y: bool | None = None, log_z: bool | None = None
) -> tuple[bool, bool, bool]:
    """The one rule for log axes: the person's choice (a bool), else the plug-in's hint (None)."""
    return (
        hints.log_x if log_x is None else bool(log_x),
        hints.log_y if log_y is None else bool(log_y),
        hints.log_z if log_z is None else bool(log_z),
    )


def group_log_flags(
    members: Sequence[ProcessedHistogram], log_y: bool | None = None, log_z: bool | None = None
) -> tuple[bool, bool, bool]:
    """`log_flags` for histograms drawn together: each axis from the first member it applies to (log x
    and log y from the first 1D one, log z from the first map), unless the person chose. A group may
    mix them: EMC's FastOR group starts with linear 1D histograms, then its log-z maps."""
    first_line = next((m for m in members if m.histogram.dimension == 1), members[0])
    first_map = next((m for m in members if m.histogram.dimension == 2), members[0])
    log_x, log_y, _ = log_flags(first_line.hints, None, log_y, None)
    return log_x, log_y, log_flags(first_map.hints, None, None, log_z)[2]


def _heatmap_figure(
    x_edges: np.ndarray, y_edges: np.ndarray, values: np.ndarray, value_title: str, log_z: bool
) -> go.Figure:
    # Plotly's z is [row = y][column = x]; ours is [x][y]. x/y given as edges (n+1) draw true bins.
    z_linear = np.asarray(values, dtype=float).T
    heatmap: dict = {
        "x": np.asarray(x_edges, dtype=float),
        "y": np.asarray(y_edges, dtype=float),
        "colorscale": COLORSCALE,
        "hoverongaps": False,
        "colorbar": {"title": {"text": root_text_to_html(value_title), "side": "right"}},
    }
    if log_z:
        z_log = log10_positive(z_linear)
        heatmap.update(
            z=z_log,
            # The hover shows real contents, not their logarithm.
            customdata=z_linear,
            hovertemplate="x %{x:.4g}<br>y %{y:.4g}<br>content %{customdata:.6g}<extra></extra>",
        )
        heatmap["colorbar"].update(log_colorbar_ticks(z_log))
    else:
        heatmap.update(
            z=z_linear,
            hovertemplate="x %{x:.4g}<br>y %{y:.4g}<br>content %{z:.6g}<extra></extra>",
        )
    return go.Figure(go.Heatmap(**heatmap))


def log_colorbar_ticks(z_log: np.ndarray) -> dict:
    """Colour-bar ticks of a log10 map labelled with the real contents: decades (1, 10, 100, 1e5, ...),
    plus 2 and 5 times each decade when the map spans less than three of them, so a narrow range is
    never labelled by a single number."""
    finite = z_log[np.isfinite(z_log)]
    if finite.size == 0:
        return {}
    low, high = float(finite.min()), float(finite.max())
    first, last = math.floor(low), max(math.ceil(high), math.floor(low) + 1)
    mantissas = (1.0, 2.0, 5.0) if last - first < 3 else (1.0,)
    values = [m * 10.0**k for k in range(first, last + 1) for m in mantissas]
    tickvals = [math.log10(v) for v in values if low - 1e-9 <= math.log10(v) <= high + 1e-9]
    if len(tickvals) < 2:  # a map within one step: label its ends
        tickvals = sorted({low, high})
    return {
        "tickmode": "array",
        "tickvals": tickvals,
        "ticktext": [_tick_label(10.0**v) for v in tickvals],
    }


def _tick_label(value: float) -> str:
    return f"{value:.6g}" if 1e-4 <= value < 1e5 else f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e")


def _value_title(h: Histogram) -> str:
    # A ROOT TH1 also carries a y-axis title (and a TH2 a z title): use it when the source kept it.
    if len(h.axis_titles) > h.dimension and h.axis_titles[h.dimension]:
        return h.axis_titles[h.dimension]
    return VALUE_TITLE_FALLBACK


def _subtitle(h: Histogram, hints: DrawHints | None = None, context: str = "") -> str:
    parts = []
    if hints is not None:
        # The ROOT title says what the pretty name abbreviates (e.g. "FastOR L0 (hits with ADC > 0)").
        own_title = h.title.strip()
        if own_title and own_title not in (h.name, headline(h, hints)):
            parts.append(root_text_to_html(own_title))
    parts.append(f"{h.name} · {h.class_name} · {h.entries:,.0f} entries")
    if h.dimension == 3:
        parts.append(TH3_NOTE)
    if context:
        parts.append(context)
    return " · ".join(parts)


def _title(text: str, subtitle: str) -> dict:
    return {"text": root_text_to_html(text), "subtitle": {"text": subtitle}, "x": 0.01, "xanchor": "left"}


def _base_layout() -> dict:
    return {
        "font": {"size": BASE_FONT_SIZE},
        "margin": {"l": 70, "r": 30, "t": 80, "b": 60},
    }


# Every axis of every figure: plotly.js's default for linear axes ("hide past div") measures all tick
# labels of an axis again for each label it places (quadratic in bBox calls, each a forced layout): a
# third of drawing a 20-panel grid. "allow" places them once; labels stay inside by the margins.
AXIS_DEFAULTS = {"ticklabeloverflow": "allow"}


@functools.cache
def template_json(name: str = TEMPLATE) -> dict:
    """The plotly template `name` as JSON, with AXIS_DEFAULTS for all x and y axes (a template's
    xaxis/yaxis apply to every subplot's axes)."""
    template = pio.templates[name].to_plotly_json()
    for axis in ("xaxis", "yaxis"):
        template.setdefault("layout", {}).setdefault(axis, {}).update(AXIS_DEFAULTS)
    return template


def styled(figure: go.Figure | dict) -> dict:
    """The figure as plain JSON with the page's template: what a dcc.Graph gets. Figures are built
    without a template (see TEMPLATE) and styled once here, as data, which costs nothing."""
    data = figure if isinstance(figure, dict) else figure.to_plotly_json()
    data["layout"]["template"] = template_json()
    return data
