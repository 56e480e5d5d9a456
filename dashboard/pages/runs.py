"""`/` and `/runs`: every run, newest first, 50 to a page (pagers above and below the table), with a
run-number jump box. The page shown is in the URL (`/runs?page=2`): paging pushes a history entry,
back/forward step through the pages, and a link opens the page it names (a page beyond the last shows
the last, and the URL then says so).

Per run: start in CERN local time and in UTC (both labelled), length, HLT mode, beam type, an "ongoing"
badge, and one link per subsystem with data (to `/run/<run>/<SYS>`). The list refreshes by itself and
keeps the page the user is on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard.access import Role, callback_role
from dashboard.context import PageContext
from dashboard.ids import Runs, Shell
from dashboard.layout import NO_RUNS_MESSAGE
from dashboard.pages.run import page_path
from dashboard.quality import QUALITY_LEGEND, quality_button_class, quality_title, run_qualities
from dashboard.status_panel import format_cern_local, format_minutes, format_utc
from dashboard.url_state import query_dict
from pipeline.processing.runs import RunSummary

PATHS = ("/runs", "/")
# Who may open it (dashboard.access): every logged-in person but the kiosk.
ROLE = Role.SHIFTER
RUNS_PER_PAGE = 50


def page_count(n_runs: int) -> int:
    return max(1, math.ceil(n_runs / RUNS_PER_PAGE))


def clamped_page(page: object, n_runs: int) -> int:
    """The 1-based page to show for a requested one (from the URL or the pager): a number within the
    pages there are; anything that is not a whole number is the first page."""
    try:
        number = int(str(page).strip()) if page is not None else 1
    except ValueError:
        number = 1
    return min(max(1, number), page_count(n_runs))


def page_search(page: int) -> str:
    """The URL query of a page: none for the first (`/runs` is page 1), `?page=N` for the others."""
    return "" if page <= 1 else f"?page={page}"


def runs_on_page(summaries: Sequence[RunSummary], page: int) -> Sequence[RunSummary]:
    """The runs of 1-based `page` (clamped to the pages there are)."""
    page = clamped_page(page, len(summaries))
    return summaries[(page - 1) * RUNS_PER_PAGE : page * RUNS_PER_PAGE]


def ordered_subsystems(available: Sequence[str], configured: Sequence[str]) -> list[str]:
    """Configured subsystems with data, in settings order; unknown ones after them."""
    return [s for s in configured if s in available] + sorted(s for s in available if s not in configured)


def jump_target(text: object, summaries: Sequence[RunSummary], configured: Sequence[str]) -> str:
    """The run page a typed run number opens; ValueError with the message to show otherwise."""
    try:
        run = int(str(text).strip())
    except ValueError:
        raise ValueError(f"“{text}” is not a run number") from None
    summary = next((s for s in summaries if s.run == run), None)
    if summary is None:
        newest = f" (newest: {summaries[0].run})" if summaries else ""
        raise ValueError(f"Run {run} has no data{newest}")
    return page_path(run, ordered_subsystems(summary.subsystems, configured)[0])


def table_row_key(summary: RunSummary) -> list:
    """What a row shows, as the table's change detector compares it."""
    return [summary.run, summary.ongoing, round(summary.length_minutes, 1), list(summary.subsystems)]


def runs_table(
    summaries: Sequence[RunSummary],
    configured: Sequence[str],
    qualities: Mapping[tuple[int, str], str | None] | None = None,
) -> html.Table | html.P:
    if not summaries:
        return html.P(NO_RUNS_MESSAGE, className="text-muted no-runs")
    header = html.Thead(
        html.Tr(
            [
                html.Th(label, scope="col")
                for label in (
                    "Run",
                    "Start (CERN local)",
                    "Start (UTC)",
                    "Length",
                    "HLT mode",
                    "Beam",
                    "Ongoing",
                    "Data",
                )
            ]
        )
    )
    rows = []
    for summary in summaries:
        subsystems = ordered_subsystems(summary.subsystems, configured)
        quality = (qualities or {}).get
        links = [
            dcc.Link(
                sub,
                href=page_path(summary.run, sub),
                # The subsystem's aggregated quality now (QC), in its traffic-light colour.
                className=f"btn btn-sm {quality_button_class(quality((summary.run, sub)))} me-1",
                title=quality_title(sub, quality((summary.run, sub))),
            )
            for sub in subsystems
        ]
        badge = dbc.Badge("ongoing", color="success", className="ongoing-badge") if summary.ongoing else ""
        rows.append(
            html.Tr(
                [
                    html.Td(
                        dcc.Link(str(summary.run), href=page_path(summary.run, subsystems[0])),
                        className="run-number",
                    ),
                    html.Td(format_cern_local(summary.start_utc.timestamp())),
                    html.Td(format_utc(summary.start_utc.timestamp())),
                    html.Td(format_minutes(summary.length_minutes)),
                    html.Td(summary.hlt_mode),
                    html.Td(summary.beam_type or "—"),
                    html.Td(badge),
                    html.Td(links, className="subsystem-links"),
                ],
                id=f"{Runs.TABLE}-{summary.run}",
            )
        )
    caption = (
        [html.Caption(QUALITY_LEGEND, className="quality-legend")] if any((qualities or {}).values()) else []
    )
    return dbc.Table(
        [*caption, header, html.Tbody(rows)], className="runs-table", hover=True, size="sm", responsive=True
    )


def layout(context: PageContext, params: dict, query: dict) -> html.Div:
    summaries = context.service.run_summaries()
    pages = page_count(len(summaries))
    page = clamped_page(query.get("page"), len(summaries))
    return html.Div(
        [
            # The page's own view of the URL: a new ?page= pushes history without a reload, and
            # "callback-nav" tells the shell's Location too (with refresh=False the shell kept the old
            # URL, and the jump box's new path was then replaced by it).
            dcc.Location(id=Runs.LOCATION, refresh="callback-nav"),
            html.Div(
                [
                    html.H2("Runs", className="me-auto"),
                    dbc.Label("Open run", html_for=Runs.JUMP_INPUT, className="visually-hidden"),
                    dbc.InputGroup(
                        [
                            dbc.Input(
                                id=Runs.JUMP_INPUT,
                                type="text",
                                inputmode="numeric",
                                placeholder="Run number",
                                autocomplete="off",
                            ),
                            dbc.Button("Open run", id=Runs.JUMP_BUTTON, color="primary"),
                        ],
                        className="jump-box",
                    ),
                ],
                className="runs-header",
            ),
            html.Div(id=Runs.JUMP_ERROR, role="alert", className="jump-error"),
            html.Div(
                [
                    _pager(Runs.PAGINATION, pages, page),
                    html.Span(
                        _page_info(len(summaries), page), id=Runs.PAGE_INFO, className="ms-3 text-muted"
                    ),
                ],
                className="runs-pagination",
            ),
            html.Div(
                _table(context, runs_on_page(summaries, page)),
                id=Runs.TABLE,
            ),
            # The same pager under 50 rows: nobody should scroll back up to turn the page.
            html.Div(_pager(Runs.PAGINATION_BOTTOM, pages, page), className="runs-pagination mt-2 mb-4"),
            # The query of the page shown; the browser's URL is corrected to it (`?page=99` of 3 pages).
            dcc.Store(id=Runs.SHOWN_SEARCH, data=None),
            html.Span(id=Runs.URL_FIXED, hidden=True),
            dcc.Interval(id=Runs.REFRESH, interval=max(context.settings.status_refresh_ms, 2000)),
            # What the table shows, so a refresh with nothing new leaves it (and the user's focus) alone.
            dcc.Store(id=Runs.SHOWN, data=None),
        ],
        className="runs-page",
    )


def _pager(component_id: str, pages: int, page: int) -> dbc.Pagination:
    return dbc.Pagination(
        id=component_id,
        max_value=pages,
        active_page=page,
        fully_expanded=False,
        first_last=True,
        previous_next=True,
    )


def _table(
    context: PageContext,
    shown: Sequence[RunSummary],
    qualities: Mapping[tuple[int, str], str | None] | None = None,
) -> html.Table | html.P:
    """The run table with each subsystem's quality now (read here unless the caller already has it)."""
    if qualities is None:
        qualities = run_qualities(context.service, ((s.run, s.subsystems) for s in shown))
    return runs_table(shown, context.settings.subsystems, qualities)


def _page_info(n_runs: int, page: int) -> str:
    if not n_runs:
        return ""
    first = (page - 1) * RUNS_PER_PAGE + 1
    last = min(page * RUNS_PER_PAGE, n_runs)
    return f"runs {first}–{last} of {n_runs:,}"


def register_callbacks(app: dash.Dash, context: PageContext) -> None:
    service, configured = context.service, context.settings.subsystems

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(Runs.TABLE, "children"),
        Output(Runs.PAGINATION, "max_value"),
        Output(Runs.PAGINATION_BOTTOM, "max_value"),
        Output(Runs.PAGE_INFO, "children"),
        Output(Runs.SHOWN, "data"),
        Input(Runs.PAGINATION, "active_page"),
        Input(Runs.REFRESH, "n_intervals"),
        State(Runs.PAGINATION, "max_value"),
        State(Runs.SHOWN, "data"),
    )
    def show_page(page, _n, old_pages, shown):
        summaries = service.run_summaries()
        pages = page_count(len(summaries))
        page = clamped_page(page, len(summaries))
        on_page = runs_on_page(summaries, page)
        qualities = run_qualities(service, ((s.run, s.subsystems) for s in on_page))
        signature = [
            page,
            len(summaries),
            *(table_row_key(summary) for summary in on_page),
            sorted(f"{run}/{system}={quality}" for (run, system), quality in qualities.items()),
        ]
        if signature == shown:
            raise PreventUpdate
        return (
            _table(context, on_page, qualities),
            no_update if pages == old_pages else pages,
            no_update if pages == old_pages else pages,
            _page_info(len(summaries), page),
            signature,
        )

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(Runs.LOCATION, "search"),
        Output(Runs.PAGINATION, "active_page"),
        Output(Runs.PAGINATION_BOTTOM, "active_page"),
        Output(Runs.SHOWN_SEARCH, "data"),
        Input(Runs.LOCATION, "search"),
        Input(Runs.PAGINATION, "active_page"),
        Input(Runs.PAGINATION_BOTTOM, "active_page"),
        State(Runs.LOCATION, "pathname"),
    )
    def page_in_url(search, active_page, bottom_page, pathname):
        """A pager writes ?page= (a history entry) and moves the other pager; back/forward or a link
        set both. One callback for every direction: several would form a loop, which Dash refuses.
        Only for this page's own paths: leaving it (a link, pushState) changes this page's Location
        too, for a moment, and its query is then another page's."""
        if pathname not in PATHS:
            raise PreventUpdate
        n_runs = len(service.run_summaries())
        if ctx.triggered_id in (None, Runs.LOCATION):  # None: the page opened (?page=99 of 3)
            page = clamped_page(query_dict(search).get("page"), n_runs)
            shown = page_search(page)
            return (
                no_update,
                no_update if page == active_page else page,
                no_update if page == bottom_page else page,
                {"path": pathname, "search": shown} if shown != (search or "") else no_update,
            )
        clicked = bottom_page if ctx.triggered_id == Runs.PAGINATION_BOTTOM else active_page
        page = clamped_page(clicked, n_runs)
        wanted = page_search(page)
        return (
            no_update if wanted == (search or "") else wanted,
            no_update if page == active_page else page,
            no_update if page == bottom_page else page,
            no_update,
        )

    # The URL says the page shown: a clamped request (?page=99 of 3) is replaced, not added to history
    # (back must not lead to the request that is clamped again).
    app.clientside_callback(
        """function(shown) {
            var path = window.location.pathname;
            if (shown && shown.path === path && window.location.search !== shown.search) {
                var url = path + shown.search + window.location.hash;
                window.history.replaceState(window.history.state, "", url);
            }
            return "";
        }""",
        Output(Runs.URL_FIXED, "children"),
        Input(Runs.SHOWN_SEARCH, "data"),
        prevent_initial_call=True,
    )

    @callback_role(app, Role.SHIFTER)
    @app.callback(
        Output(Shell.LOCATION, "pathname"),
        Output(Shell.LOCATION, "search"),
        Output(Runs.JUMP_ERROR, "children"),
        Input(Runs.JUMP_BUTTON, "n_clicks"),
        Input(Runs.JUMP_INPUT, "n_submit"),
        State(Runs.JUMP_INPUT, "value"),
        prevent_initial_call=True,
    )
    def jump(_clicks, _submitted, text):
        if text is None or not str(text).strip():
            raise PreventUpdate
        try:
            return jump_target(text, service.run_summaries(), configured), "", ""  # no ?page= on a run
        except ValueError as error:
            return no_update, no_update, html.Div(str(error), className="alert alert-warning py-1 px-2 mt-2")
