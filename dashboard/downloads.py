"""Downloads of the histograms on screen: `GET /download/<run>/<SYS>.root?<page query>` and `.parquet`.

The query is the run page's own (`dashboard.url_state`), read by the data API's rule, so the file holds
what the page shows: the same slice, options applied (scaled, derived), as drawn. A parameter that does
not read (a bad value, a key given twice, an option the subsystem does not have, a window the run does not
have) is a 400 naming it, as on the data API (the page draws the view without it and says "Not
applied"); a group or histogram the run does not have is a 404. Nothing in the
request names a file on the server: the route only builds data products from the processing service.
File names are made safe (histogram names hold `/` and spaces). ROOT files come from `pipeline.export`,
Parquet files from `pipeline.web.view_record` (the data API's writer too): the store's schema, with the
view's window, mode, options and checks in the footer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from flask import Flask, Response, request

from dashboard.components.histogram_view import shown_histograms, view_file_name
from dashboard.context import PageContext
from dashboard.slices import error_text
from dashboard.url_state import QueryParams, ViewQuery, parse_query
from dashboard.view_request import ResolvedView, mode_of, navigation_errors, resolve_view
from pipeline.auth.roles import Role
from pipeline.export import write_root_file
from pipeline.histogram import Histogram
from pipeline.processing.options import OptionsError
from pipeline.processing.query import ViewQuery as DataViewQuery
from pipeline.web.access import requires
from pipeline.web.view_record import view_parquet

FORMATS = {"root": "application/octet-stream", "parquet": "application/vnd.apache.parquet"}


def register_routes(server: Flask, context: PageContext) -> None:
    @server.get("/download/<int:run>/<subsystem>.<any(root, parquet):file_format>")
    @requires(Role.SHIFTER)
    def download(run: int, subsystem: str, file_format: str) -> Response:
        if (unconfigured := context.unconfigured_subsystem(subsystem)) is not None:
            return _text(unconfigured, 404)
        query = parse_query(QueryParams(request.args.items(multi=True)), subsystem)
        if query.not_applied:  # as the data API answers it: the file would not hold what the link asks for
            return _text("; ".join(error_text(error) for error in query.not_applied), 400)
        try:
            resolved = resolve_view(context.service, run, subsystem, query)
            if resolved.name is None:
                raise LookupError(f"run {run} has no {subsystem} histograms")
            if unknown := navigation_errors(query, resolved):
                return _text(f"nothing to download: {error_text(unknown[0])}", 404)
            shown = shown_histograms(resolved.view, subsystem, resolved.name)
        except OptionsError as error:
            return _text(error_text(error), 400)
        except (LookupError, KeyError) as error:
            return _text(f"nothing to download: {error}", 404)
        name = view_file_name(run, subsystem, resolved.name, resolved.window)
        if file_format == "root":
            payload = root_bytes([member.histogram for member in shown.members])
        else:
            payload = view_parquet(resolved.view, view_query(resolved, query), shown.members)
        return Response(
            payload,
            mimetype=FORMATS[file_format],
            headers={"Content-Disposition": f'attachment; filename="{name}.{file_format}"'},
        )


def root_bytes(histograms: list[Histogram]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="overwatch-download-") as folder:
        path = Path(folder) / "view.root"
        write_root_file(path, histograms)
        return path.read_bytes()


def view_query(resolved: ResolvedView, query: ViewQuery) -> DataViewQuery:
    """The page's query as the data API writes it (window, mode asked for, options): the parameters a
    downloaded file records, which give the same numbers back from the API."""
    window = resolved.window
    return DataViewQuery(
        window.min_minutes if window else None,
        window.max_minutes if window else None,
        mode_of(query),
        resolved.options,
    )


def _text(message: str, status: int) -> Response:
    return Response(message, status=status, mimetype="text/plain")
