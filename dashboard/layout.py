"""Page layout and the pure rules that fill its controls on every refresh.

The rules never take a choice away from the user: a refresh keeps the selected run, subsystem, group
and histogram while they still exist, and follows a new run only if the user was on the newest one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.figures import message_figure
from pipeline.detectors.base import Group, Stack
from pipeline.processing.runs import RunInfo
from pipeline.processing.timeslice import MergerMode

NO_RUNS_MESSAGE = "No runs yet — waiting for the receivers…"


@dataclass(frozen=True)
class RunSummary:
    """One run as the selector shows it, merged over the subsystems that can show it."""

    run: int
    hlt_mode: str
    beam_type: str
    subsystems: tuple[str, ...]
    last_snapshot_utc: float | None
    ongoing: bool


def summarize_runs(infos: Sequence[RunInfo]) -> list[RunSummary]:
    """Collapse `ProcessingService.runs()` (one RunInfo per run and subsystem) to one entry per run,
    keeping the service's newest-first order."""
    by_run: dict[int, list[RunInfo]] = {}
    for info in infos:
        by_run.setdefault(info.run, []).append(info)
    return [
        RunSummary(
            run=run,
            hlt_mode=rows[0].hlt_mode or "U",
            beam_type=rows[0].beam_type or "",
            subsystems=tuple(info.subsystem for info in rows),
            last_snapshot_utc=max(info.end_utc for info in rows).timestamp(),
            ongoing=any(info.ongoing for info in rows),
        )
        for run, rows in by_run.items()
    ]


def run_label(summary: RunSummary) -> str:
    details = ", ".join(part for part in (summary.hlt_mode, summary.beam_type) if part)
    label = f"Run {summary.run} ({details})"
    return f"{label} ● live" if summary.ongoing else label


def run_options(summaries: Sequence[RunSummary]) -> list[dict]:
    return [{"label": run_label(s), "value": s.run} for s in summaries]


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
    """Keep the current choice; else the one last chosen here; else the first (also for groups)."""
    for candidate in (current, remembered):
        if candidate is not None and candidate in names:
            return candidate
    return names[0] if names else None


choose_group = choose_histogram


def group_options(groups: Sequence[tuple[Group, Sequence[str]]]) -> list[dict]:
    """The plug-in's groups, in its priority order (empty groups are already left out by the view)."""
    return [{"label": group.title, "value": group.title} for group, _ in groups]


GRID_ENTRY_PREFIX = "<grid>"  # histogram names never start like this (cf. the service's "<view>")


def grid_entry(group_title: str) -> str:
    """The histogram-list value that shows a whole grid group at once."""
    return GRID_ENTRY_PREFIX + group_title


def grid_group_of(value: str | None) -> str | None:
    """The group title of a grid entry, None for a histogram name."""
    if value is None or not value.startswith(GRID_ENTRY_PREFIX):
        return None
    return value[len(GRID_ENTRY_PREFIX) :]


def histogram_entries(
    names: Sequence[str],
    stacks: Sequence[Stack],
    pretty_name: Callable[[str], str],
    grid_group: str | None = None,
) -> list[dict]:
    """Options for the histograms of one group, labelled with their pretty names.

    A stack is listed once, under its name and title; its other members are not listed on their
    own (the plug-in contract), unless the stack itself lives in another group. A grid group
    (`grid_group`: its title) with several histograms first offers all of them as one grid, which is
    how the original showed per-supermodule groups.
    """
    grid = []
    if grid_group is not None and len(names) > 1:
        grid = [{"label": f"All {len(names)} as a grid", "value": grid_entry(grid_group)}]
    present = set(names)
    stack_by_name = {stack.name: stack for stack in stacks if stack.name in present}
    drawn_in_stack = {
        member for stack in stack_by_name.values() for member in stack.members if member != stack.name
    }
    options = []
    for name in names:
        if name in drawn_in_stack:
            continue
        stack = stack_by_name.get(name)
        options.append({"label": stack.title if stack else pretty_name(name), "value": name})
    return grid + options


def remembered_choice(memory: Mapping | None, subsystem: str | None, group: str | None = None) -> str | None:
    """The group last chosen in `subsystem` (group=None), or the histogram last chosen in `group`."""
    entry = (memory or {}).get(subsystem) or {}
    if not isinstance(entry, Mapping):
        return None
    if group is None:
        return entry.get("group")
    return (entry.get("histograms") or {}).get(group)


def remember_choice(memory: Mapping | None, subsystem: str, group: str, histogram: str | None) -> dict:
    """`memory` with this subsystem's group (and that group's histogram) recorded."""
    memory = dict(memory or {})
    entry = memory.get(subsystem)
    entry = dict(entry) if isinstance(entry, Mapping) else {}
    histograms = dict(entry.get("histograms") or {})
    if histogram is not None:
        histograms[group] = histogram
    memory[subsystem] = {"group": group, "histograms": histograms}
    return memory


def options_equal(new: Sequence[Mapping], old: Sequence[Mapping] | None) -> bool:
    """Compare option lists as the browser sends them back (plain JSON values)."""
    old = old or []
    return len(new) == len(old) and all(
        a.get("label") == b.get("label") and a.get("value") == b.get("value")
        for a, b in zip(new, old, strict=True)
    )


def build_layout(refresh_ms: int) -> dbc.Container:
    """Header; selection, time slice and options on the left; the histogram, its slice and its check
    results on the right; receiver status below."""
    left = html.Div([_navigation_card(), _slice_card(), _options_card()], className="control-column")
    graph = dbc.Card(
        dbc.CardBody(
            [
                html.Div(id="slice-description", className="slice-description"),
                dcc.Graph(
                    id="histogram-graph",
                    figure=message_figure(NO_RUNS_MESSAGE),
                    config={"displaylogo": False, "responsive": True},
                    className="histogram-graph",
                ),
                html.Div(id="snapshot-caption", className="snapshot-caption"),
                html.Div(id="check-results", className="check-results"),
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
                [dbc.Col(left, md=4, xxl=3), dbc.Col(graph, md=8, xxl=9)],
                className="g-3",
            ),
            status,
            dcc.Interval(id="refresh", interval=refresh_ms, n_intervals=0),
            # Which view/options/histogram the graph shows, so a refresh with nothing new is a no-op.
            dcc.Store(id="graph-key", data=None),
            # Per subsystem: the group last chosen, and per group the histogram last chosen.
            dcc.Store(id="histogram-memory", data={}),
            # Length (minutes), ongoing state and recorded merger mode of the selected run per
            # subsystem, for the slider and the merger-mode radio.
            dcc.Store(id="run-lengths", data=None),
            # What the slider and its boxes were last synced to (see slices.sync_slice_controls).
            dcc.Store(id="slider-memory", data=None),
            # The applied time slice (run, subsystem, window; none = full run) and its last error.
            dcc.Store(id="applied-slice", data=None),
            # Which run and subsystem the merger-mode radio was set for (see slices.sync_merger_mode).
            dcc.Store(id="merger-mode-memory", data=None),
        ],
        fluid=True,
        className="overwatch-page",
    )


def _navigation_card() -> dbc.Card:
    return dbc.Card(
        dbc.CardBody(
            [
                *_list_selector("Run", "run-select", "No runs yet"),
                dbc.Label("Subsystem", className="control-label"),
                html.Div(
                    _button_group(
                        "subsystem-select", [], None, "subsystem-buttons", "btn btn-outline-primary"
                    ),
                    className="mb-2",
                ),
                *_list_selector("Group", "group-select", "No groups"),
                *_list_selector("Histogram", "histogram-select", "No histograms"),
                html.Div(
                    [
                        dbc.Switch(id="log-x", label="log x", value=False),
                        dbc.Switch(id="log-y", label="log y", value=False),
                        dbc.Switch(id="log-z", label="log z", value=False),
                    ],
                    className="log-switches",
                    title="Set to the detector experts' choice when you pick a histogram",
                ),
            ]
        ),
        className="controls-card",
    )


def _list_selector(label: str, component_id: str, placeholder: str) -> tuple[dbc.Label, dcc.Dropdown]:
    """A labelled dropdown of a list the callbacks fill (runs, groups, histograms)."""
    return (
        dbc.Label(label, html_for=component_id, className="control-label"),
        dcc.Dropdown(
            id=component_id,
            options=[],
            value=None,
            clearable=False,
            placeholder=placeholder,
            maxHeight=480,
            className="mb-2",
        ),
    )


def _button_group(
    component_id: str, options: list[dict], value: str | None, class_name: str, button_class: str
) -> dbc.RadioItems:
    """Radio items drawn as a row of toggle buttons (Bootstrap's btn-check), the checked one active."""
    return dbc.RadioItems(
        id=component_id,
        options=options,
        value=value,
        inline=True,
        className=f"btn-group {class_name}",
        inputClassName="btn-check",
        labelClassName=button_class,
        labelCheckedClassName="active",
    )


def _slice_card() -> dbc.Card:
    return dbc.Card(
        dbc.CardBody(
            [
                dbc.Label("Time slice · minutes since start of run", className="control-label"),
                dcc.RangeSlider(
                    id="slice-range",
                    min=0,
                    max=1,
                    step=1,
                    value=[0, 1],
                    marks={"0": "0", "1": "1 min"},
                    allowCross=False,
                    # The two number boxes below are the direct input; the slider's own would repeat them.
                    allow_direct_input=False,
                    className="slice-slider",
                ),
                html.Div(
                    [
                        dbc.InputGroup(
                            [
                                dbc.InputGroupText("from"),
                                dbc.Input(id="slice-min", type="number", value=0, step="any"),
                                dbc.InputGroupText("to"),
                                dbc.Input(id="slice-max", type="number", value=1, step="any"),
                                dbc.InputGroupText("min"),
                            ],
                            size="sm",
                            className="slice-inputs",
                        ),
                    ],
                    className="mt-2",
                ),
                html.Div(
                    [
                        dbc.Button("Apply", id="slice-apply", color="primary", size="sm", className="me-2"),
                        dbc.Button("Full run", id="slice-reset", color="secondary", outline=True, size="sm"),
                        _button_group(
                            "merger-mode",
                            [{"label": mode.value, "value": mode.value} for mode in MergerMode],
                            MergerMode.CUMULATIVE.value,
                            "merger-mode ms-auto",
                            "btn btn-sm btn-outline-secondary",
                        ),
                    ],
                    className="slice-buttons mt-2",
                    title="Merger mode: cumulative = the mergers accumulate (a slice subtracts snapshots); "
                    "reset = they reset after each request (a slice sums them). Set to how the run was "
                    "recorded when you pick a run or subsystem",
                ),
            ]
        ),
        className="controls-card mt-3",
    )


def _options_card() -> dbc.Card:
    return dbc.Card(
        dbc.CardBody(
            [
                dbc.Label("Processing options", className="control-label"),
                dbc.Switch(id="opt-scale", label="Scale by number of events", value=True),
                dbc.Label("Hot-channel threshold", html_for="opt-threshold", className="option-label mb-1"),
                dbc.Input(
                    id="opt-threshold",
                    type="text",
                    inputmode="numeric",
                    value="",
                    placeholder="per-histogram default",
                    # Recompute on Enter or when leaving the box, not on every keystroke.
                    debounce=True,
                    size="sm",
                    autocomplete="off",
                ),
                html.Div(
                    "entries per event when scaled · empty = each histogram's default · Enter applies",
                    className="option-help",
                ),
                html.Div(id="options-error", className="options-error", role="alert"),
            ]
        ),
        className="controls-card mt-3",
    )
