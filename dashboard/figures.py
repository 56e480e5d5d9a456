"""Plotly figures for one `Histogram`: pure functions, no Dash, unit-tested without a browser.

TH1 -> step line through the bin edges plus error bars at the bin centres; TH2 -> heatmap (optional
log colour scale); TH3 -> heatmap of its xy projection. Callbacks only choose which figure to ask for.
"""

from __future__ import annotations

import html
import math
import re
import unicodedata

import numpy as np
import plotly.graph_objects as go

from pipeline.histogram import Histogram

LINE_COLOR = "#1f4e9c"
ERROR_COLOR = "#1f4e9c"
COLORSCALE = "Viridis"
BASE_FONT_SIZE = 15
VALUE_TITLE_FALLBACK = "content"
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


def pretty_name(h: Histogram) -> str:
    """The name a person reads: the ROOT title when it says more than the name, else the name
    without its directory (e.g. `TPCQA/`)."""
    title = h.title.strip()
    if title and title != h.name:
        return title
    return h.name.rsplit("/", 1)[-1]


def histogram_figure(
    h: Histogram, log_z: bool = False, log_y: bool = False, title: str | None = None
) -> go.Figure:
    """Figure of `h`; `log_y` applies to 1D, `log_z` to 2D/3D; `title` overrides `pretty_name`."""
    if h.dimension == 1:
        fig = _th1_figure(h, log_y)
    elif h.dimension == 2:
        fig = _heatmap_figure(h.edges[0], h.edges[1], h.values(), _value_title(h), log_z)
    elif h.dimension == 3:
        # ROOT's TH3::Project3D("xy") also keeps the z under/overflow unless asked not to.
        projection = h.values_flow[1:-1, 1:-1, :].sum(axis=2)
        fig = _heatmap_figure(h.edges[0], h.edges[1], projection, _value_title(h), log_z)
        fig.add_annotation(
            name="th3-note",
            text=TH3_NOTE,
            xref="paper",
            yref="paper",
            x=0,
            y=1,
            xanchor="left",
            yanchor="bottom",
            showarrow=False,
            font={"size": 13, "color": "#6c4a00"},
            bgcolor="#fff3cd",
        )
    else:
        return message_figure(f"{h.name}: cannot draw a {h.dimension}-dimensional histogram")
    fig.update_xaxes(title_text=root_text_to_html(h.axis_titles[0]))
    y_title = h.axis_titles[1] if h.dimension >= 2 else _value_title(h)
    fig.update_yaxes(title_text=root_text_to_html(y_title))
    fig.update_layout(
        _base_layout(),
        title={
            "text": root_text_to_html(title or pretty_name(h)),
            "subtitle": {"text": _subtitle(h)},
            "x": 0.01,
            "xanchor": "left",
        },
    )
    return fig


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


def _th1_figure(h: Histogram, log_y: bool) -> go.Figure:
    edges = np.asarray(h.edges[0], dtype=float)
    values = np.asarray(h.values(), dtype=float)
    errors = h.errors()
    centers = 0.5 * (edges[:-1] + edges[1:])
    # "hv" steps need one point per edge: the last bin's value is repeated at the upper edge.
    step_y = np.append(values, values[-1]) if values.size else values
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
    fig.add_trace(
        go.Scatter(
            name="error",
            x=centers,
            y=values,
            mode="markers",
            # Invisible markers: the step line shows the contents, these only carry bars and hover.
            marker={"size": 6, "opacity": 0, "color": ERROR_COLOR},
            error_y={
                "type": "data",
                "array": errors,
                "visible": True,
                "color": ERROR_COLOR,
                "thickness": 1.2,
                "width": 0,
            },
            customdata=np.column_stack([edges[:-1], edges[1:], errors]),
            hovertemplate=(
                "bin [%{customdata[0]:.4g}, %{customdata[1]:.4g})<br>"
                "content %{y:.6g} ± %{customdata[2]:.3g}<extra></extra>"
            ),
            showlegend=False,
        )
    )
    fig.update_layout(hovermode="closest")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


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
        heatmap["colorbar"].update(_log_colorbar_ticks(z_log))
    else:
        heatmap.update(
            z=z_linear,
            hovertemplate="x %{x:.4g}<br>y %{y:.4g}<br>content %{z:.6g}<extra></extra>",
        )
    return go.Figure(go.Heatmap(**heatmap))


def _log_colorbar_ticks(z_log: np.ndarray) -> dict:
    """Decade ticks labelled with the real contents (1, 10, 100, 1e5, ...)."""
    finite = z_log[np.isfinite(z_log)]
    if finite.size == 0:
        return {}
    first, last = math.floor(finite.min()), math.ceil(finite.max())
    exponents = list(range(first, max(last, first + 1) + 1))
    return {
        "tickmode": "array",
        "tickvals": exponents,
        "ticktext": [f"{10.0**k:g}" if -3 <= k <= 4 else f"1e{k}" for k in exponents],
    }


def _value_title(h: Histogram) -> str:
    # A ROOT TH1 also carries a y-axis title (and a TH2 a z title): use it when the source kept it.
    if len(h.axis_titles) > h.dimension and h.axis_titles[h.dimension]:
        return h.axis_titles[h.dimension]
    return VALUE_TITLE_FALLBACK


def _subtitle(h: Histogram) -> str:
    return f"{h.name} · {h.class_name} · {h.entries:,.0f} entries"


def _base_layout() -> dict:
    return {
        "template": "plotly_white",
        "font": {"size": BASE_FONT_SIZE},
        "margin": {"l": 70, "r": 30, "t": 80, "b": 60},
    }
