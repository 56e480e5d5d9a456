"""The read-only data API: runs, their subsystems, and any histogram over any window, as JSON or Parquet.

Everything comes from the `ProcessingService`, as on the run page, with the run page's parameters
(`pipeline.processing.query`: `min`, `max`, `mode`, `scale`, `threshold`, plug-in options), so the API
answers with the numbers a shifter sees. `?format=parquet` gives one row in the store's schema
(`store_schema`), readable by pandas or DuckDB. Errors are JSON: 404 for an unknown run, subsystem or
histogram, 400 for a bad parameter (named in `field`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, request, url_for
from werkzeug.utils import secure_filename

from pipeline.detectors import plugin_for
from pipeline.detectors.base import ProcessedHistogram
from pipeline.detectors.names import stored_titles
from pipeline.processing.options import OptionsError
from pipeline.processing.query import ViewQuery, renamed
from pipeline.processing.runs import RunInfo, list_runs
from pipeline.processing.service import ProcessedView, ProcessingService
from pipeline.processing.timeslice import SlicePlan
from pipeline.web.access import READ, requires
from pipeline.web.responses import ApiError, error_response, install_json_errors, json_response
from pipeline.web.view_record import checks_record, view_parquet, window_record

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
FORMATS = ("json", "parquet")
# Parameters of the API itself, not of the view.
API_PARAMETERS = ("format", "page", "per_page")


def api_blueprint(service: ProcessingService) -> Blueprint:
    blueprint = Blueprint("api", __name__)
    install_json_errors(blueprint)

    @blueprint.errorhandler(OptionsError)
    def bad_option(error: OptionsError) -> Response:
        error = renamed(error)
        return error_response(400, str(error), error.field)

    @blueprint.get("/api/runs")
    @requires(READ)
    def list_all_runs() -> Response:
        page = _positive_int("page", 1)
        per_page = _positive_int("per_page", DEFAULT_PER_PAGE)
        if per_page > MAX_PER_PAGE:
            raise ApiError(400, f"per_page: must be <= {MAX_PER_PAGE}, got {per_page}", "per_page")
        by_run = _group_by_run(service.runs())
        total = len(by_run)
        pages = max(1, -(-total // per_page))
        chosen = list(by_run.items())[(page - 1) * per_page : page * per_page]
        next_page = url_for("api.list_all_runs", page=page + 1, per_page=per_page) if page < pages else None
        return json_response(
            {
                "page": page,
                "per_page": per_page,
                "total": total,
                "pages": pages,
                "next": next_page,
                "runs": [_run_summary(infos) for _, infos in chosen],
            }
        )

    @blueprint.get("/api/runs/<run>")
    @requires(READ)
    def run_detail(run: str) -> Response:
        infos = _run_infos(service, _run_number(run))
        return json_response(
            {
                **_run_summary(infos),
                "subsystems": {info.subsystem: _subsystem_detail(info) for info in infos},
            }
        )

    @blueprint.get("/api/runs/<run>/<subsystem>/histograms")
    @requires(READ)
    def histogram_list(run: str, subsystem: str) -> Response:
        view, query = _view(service, _run_number(run), subsystem)
        classes = _stored_classes(service, view.plan)
        names = set(view.names)
        labels = plugin_for(subsystem).labels(
            sorted(names), stored_titles(service.store, view.plan.used_snapshot_ids)
        )

        def entry(name: str) -> dict[str, Any]:
            return {
                "name": name,
                "pretty_name": labels[name],  # as the run page's list says it
                "class_name": classes.get(name),
                "derived": name not in classes,  # made by the plug-in from stored ones (no class stored)
                "url": request.script_root + histogram_api_path(view.run.run, subsystem, name, query),
            }

        return json_response(
            {
                "run": view.run.run,
                "subsystem": subsystem,
                "source_subsystem": view.run.source_subsystem,
                "window": window_record(view),
                "groups": [
                    {"title": group.title, "grid": group.grid, "histograms": group_names}
                    for group, group_names in view.groups
                ],
                "histograms": [entry(name) for name in sorted(names)],
            }
        )

    @blueprint.get("/api/runs/<run>/<subsystem>/histograms/<path:name>")
    @requires(READ)
    def histogram_detail(run: str, subsystem: str, name: str) -> Response:
        output_format = request.args.get("format", "json").lower()
        if output_format not in FORMATS:
            message = f"format: must be one of {', '.join(FORMATS)}, got {output_format!r}"
            raise ApiError(400, message, "format")
        view, query = _view(service, _run_number(run), subsystem)
        if view.plan.is_empty:  # not "no histogram named ...": no histogram at all is in that window
            where = f"run {view.run.run} {subsystem} ({view.description})"
            raise ApiError(404, f"window: no snapshot of {where} falls in it", "window")
        try:
            processed = view.histogram(name)
        except KeyError:
            where = f"run {view.run.run} {subsystem} ({view.description})"
            raise ApiError(404, f"no histogram named {name!r} in {where}", "name") from None
        if output_format == "parquet":
            return _parquet_response(view, query, processed)
        return json_response(_histogram_record(view, query, processed))

    @blueprint.route("/api/<path:unknown>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    @requires(READ)
    def no_such_route(unknown: str) -> Response:
        # Without it, Dash's catch-all page route would answer unknown API paths with HTML and 200.
        raise ApiError(404, f"no API route {request.method} /api/{unknown}")

    return blueprint


def histogram_api_path(run: int, subsystem: str, name: str, query: ViewQuery | None = None) -> str:
    """The API path of one histogram as a view shows it (what the run page links to): the name is
    URL-encoded with its "/" kept, and the query carries the view's window, mode and options."""
    path = f"/api/runs/{run}/{quote(subsystem, safe='')}/histograms/{quote(name, safe='/')}"
    params = (query or ViewQuery()).to_params()
    return f"{path}?{urlencode(params)}" if params else path


def _positive_int(name: str, default: int) -> int:
    text = request.args.get(name, "")
    if text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"{name}: must be a whole number, got {text!r}", name) from None
    if value < 1:
        raise ApiError(400, f"{name}: must be >= 1, got {value}", name)
    return value


def _run_number(text: str) -> int:
    try:
        run = int(text)
    except ValueError:
        raise ApiError(400, f"run: must be a whole number, got {text!r}", "run") from None
    if run <= 0:
        raise ApiError(404, f"no run {run}: run numbers are > 0", "run")
    return run


def _group_by_run(infos: list[RunInfo]) -> dict[int, list[RunInfo]]:
    by_run: dict[int, list[RunInfo]] = {}
    for info in infos:  # newest run first, as listed
        by_run.setdefault(info.run, []).append(info)
    return by_run


def _run_infos(service: ProcessingService, run: int) -> list[RunInfo]:
    infos = list_runs(service.store, service.subsystems, run=run)
    if not infos:
        raise ApiError(404, f"no run {run} in the store", "run")
    return infos


def _run_summary(infos: list[RunInfo]) -> dict[str, Any]:
    first = infos[0]
    return {
        "run": first.run,
        "start_utc": first.start_utc,
        "end_utc": first.end_utc,
        "length_minutes": round(first.length_minutes, 6),
        "ongoing": any(info.ongoing for info in infos),
        "subsystem_names": [info.subsystem for info in infos],
        "url": url_for("api.run_detail", run=first.run),
    }


def _subsystem_detail(info: RunInfo) -> dict[str, Any]:
    return {
        "source_subsystem": info.source_subsystem,
        "from_hlt_snapshots": info.uses_hlt_files,
        "hlt_mode": info.hlt_mode,
        "beam_type": info.beam_type,
        "n_snapshots": info.n_snapshots,
        "merger_mode": info.merger_mode,
        "source_start_utc": info.source_start_utc,
        "ongoing": info.ongoing,
        "warnings": list(info.warnings),
        "histograms_url": url_for("api.histogram_list", run=info.run, subsystem=info.subsystem),
    }


def _view(service: ProcessingService, run: int, subsystem: str) -> tuple[ProcessedView, ViewQuery]:
    """The view the request's parameters ask for; ApiError 404 (no such run/subsystem), OptionsError."""
    if subsystem not in service.subsystems:
        known = ", ".join(service.subsystems)
        raise ApiError(404, f"unknown subsystem {subsystem!r} (known: {known})", "subsystem")
    # Every pair: a parameter given twice is refused, as on the run page and the downloads.
    query = ViewQuery.from_params(request.args.items(multi=True), ignore=API_PARAMETERS, subsystem=subsystem)
    try:
        info = service.run_info(run, subsystem)
    except LookupError:
        raise ApiError(404, f"no data for run {run} {subsystem}", "run") from None
    view = service.view(run, subsystem, query.window(info.length_minutes), query.options, query.mode)
    return view, query


def _stored_classes(service: ProcessingService, plan: SlicePlan) -> dict[str, str]:
    classes: dict[str, str] = {}
    for snapshot_id in plan.used_snapshot_ids:
        classes.update(service.store.histogram_classes(snapshot_id))
    return classes


def _histogram_record(view: ProcessedView, query: ViewQuery, processed: ProcessedHistogram) -> dict[str, Any]:
    histogram = processed.histogram
    return {
        "run": view.run.run,
        "subsystem": view.run.subsystem,
        "source_subsystem": view.run.source_subsystem,
        "name": histogram.name,
        "class_name": histogram.class_name,
        "title": histogram.title,
        "dimension": histogram.dimension,
        "axis_titles": list(histogram.axis_titles[: histogram.dimension]),
        "nbins": list(histogram.shape),
        "edges": [edges for edges in histogram.edges],
        # Contents with under- and overflow bins: shape nbins+2 per axis, x outermost, as in the store.
        "flow": True,
        "values": histogram.values_flow,
        "variances": histogram.variances_flow,
        "entries": histogram.entries,
        "scaled_by_events": processed.scaled_by_events,
        "n_events": view.n_events,
        "window": window_record(view),
        "parameters": query.to_params(),
        "checks": checks_record(processed.checks),
        "warnings": view.warnings,
    }


def _parquet_response(view: ProcessedView, query: ViewQuery, processed: ProcessedHistogram) -> Response:
    """One row in the store's schema, its footer saying what view it is (`view_record.view_parquet`)."""
    file_name = secure_filename(f"{view.run.subsystem}_{view.run.run}_{processed.histogram.name}.parquet")
    return Response(
        view_parquet(view, query, [processed]),
        mimetype="application/vnd.apache.parquet",
        headers={"Content-Disposition": f'attachment; filename="{file_name}"'},
    )
