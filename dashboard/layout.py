"""Page layout and the pure rules that fill its controls on every refresh.

The rules never take a choice away from the user: a refresh keeps the selected run, subsystem and
histogram while they still exist, and follows a new run only if the user was on the newest one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html

from dashboard.figures import message_figure
from dashboard.status_panel import run_is_ongoing

NO_RUNS_MESSAGE = "No runs yet — waiting for the receivers…"


@dataclass(frozen=True)
class RunSummary:
    """One run as the selector shows it, merged over the subsystems that stored it."""

    run: int
    hlt_mode: str
    beam_type: str
    subsystems: tuple[str, ...]
    last_snapshot_utc: float | None
    n_snapshots: int


def summarize_runs(runs: pd.DataFrame) -> list[RunSummary]:
    """Collapse `SnapshotStore.runs()` (a row per run and subsystem) to one entry per run, keeping
    the store's newest-first order."""
    summaries = []
    for run, rows in runs.groupby("run", sort=False):
        last = rows["last_snapshot_utc"].max()
        summaries.append(
            RunSummary(
                run=int(run),
                hlt_mode=str(rows["hlt_mode"].iloc[0] or "U"),
                beam_type=str(rows["beam_type"].iloc[0] or ""),
                subsystems=tuple(str(s) for s in rows["subsystem"]),
                last_snapshot_utc=None if pd.isna(last) else pd.Timestamp(last).timestamp(),
                n_snapshots=int(rows["n_snapshots"].sum()),
            )
        )
    return summaries


def run_label(summary: RunSummary, now: float) -> str:
    details = ", ".join(part for part in (summary.hlt_mode, summary.beam_type) if part)
    label = f"Run {summary.run} ({details})"
    return f"{label} ● live" if run_is_ongoing(summary.last_snapshot_utc, now) else label


def run_options(summaries: Sequence[RunSummary], now: float) -> list[dict]:
    return [{"label": run_label(s, now), "value": s.run} for s in summaries]


def choose_run(available: Sequence[int], previous_newest: int | None, current: int | None) -> int | None:
    """Follow a new run only when the user was on the previous newest run (following live)."""
    if not available:
        return None
    if current is None or current not in available or current == previous_newest:
        return available[0]
    return current


def subsystem_options(available: Sequence[str], configured: Sequence[str]) -> list[dict]:
    """Configured subsystems with data in the run, in settings order (unknown ones after)."""
    ordered = [s for s in configured if s in available]
    ordered += sorted(s for s in available if s not in configured)
    return [{"label": s, "value": s} for s in ordered]


def choose_subsystem(available: Sequence[str], current: str | None) -> str | None:
    if current in available:
        return current
    return available[0] if available else None


def choose_histogram(names: Sequence[str], current: str | None, remembered: str | None = None) -> str | None:
    """Keep the current histogram; else the one last chosen in this subsystem; else the first."""
    for candidate in (current, remembered):
        if candidate is not None and candidate in names:
            return candidate
    return names[0] if names else None


def histogram_options(names: Sequence[str]) -> list[dict]:
    return [{"label": name, "value": name} for name in names]


def options_equal(new: Sequence[Mapping], old: Sequence[Mapping] | None) -> bool:
    """Compare option lists as the browser sends them back (plain JSON values)."""
    old = old or []
    return len(new) == len(old) and all(
        a.get("label") == b.get("label") and a.get("value") == b.get("value")
        for a, b in zip(new, old, strict=True)
    )


def build_layout(refresh_ms: int) -> dbc.Container:
    """Header, controls on the left, the histogram on the right, receiver status below."""
    controls = dbc.Card(
        dbc.CardBody(
            [
                dbc.Label("Run", html_for="run-select", className="control-label"),
                dcc.Dropdown(
                    id="run-select",
                    options=[],
                    value=None,
                    clearable=False,
                    placeholder="No runs yet",
                    className="mb-3",
                ),
                dbc.Label("Subsystem", className="control-label"),
                html.Div(
                    dbc.RadioItems(
                        id="subsystem-select",
                        options=[],
                        value=None,
                        inline=True,
                        className="btn-group subsystem-buttons",
                        inputClassName="btn-check",
                        labelClassName="btn btn-outline-primary",
                        labelCheckedClassName="active",
                    ),
                    className="mb-3",
                ),
                dbc.Label("Histogram", html_for="histogram-select", className="control-label"),
                dcc.Dropdown(
                    id="histogram-select",
                    options=[],
                    value=None,
                    clearable=False,
                    placeholder="No histograms",
                    maxHeight=480,
                    className="mb-3",
                ),
                dbc.Switch(id="log-z", label="log z (2D)", value=False),
                dbc.Switch(id="log-y", label="log y (1D)", value=False),
            ]
        ),
        className="controls-card h-100",
    )
    graph = dbc.Card(
        dbc.CardBody(
            [
                dcc.Graph(
                    id="histogram-graph",
                    figure=message_figure(NO_RUNS_MESSAGE),
                    config={"displaylogo": False, "responsive": True},
                    className="histogram-graph",
                ),
                html.Div(id="snapshot-caption", className="snapshot-caption"),
            ]
        ),
        className="h-100",
    )
    status = dbc.Card(
        [
            dbc.CardHeader("Receivers", className="fw-semibold"),
            dbc.CardBody([html.Div(id="run-state", className="run-state"), html.Div(id="status-panel")]),
        ],
        className="mt-3",
    )
    return dbc.Container(
        [
            html.Header(
                html.H1("OVERWATCH-NG — HLT detector QA", className="page-title"),
                className="page-header",
            ),
            dbc.Row(
                [dbc.Col(controls, md=4, xxl=3), dbc.Col(graph, md=8, xxl=9)],
                className="g-3",
            ),
            status,
            dcc.Interval(id="refresh", interval=refresh_ms, n_intervals=0),
            # Which snapshot/options the graph shows, so a refresh with nothing new is a no-op.
            dcc.Store(id="graph-key", data=None),
            # Last histogram chosen per subsystem, restored when the user comes back to it.
            dcc.Store(id="histogram-memory", data={}),
        ],
        fluid=True,
        className="overwatch-page",
    )
