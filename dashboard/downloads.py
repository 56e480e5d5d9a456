"""Downloads of the histograms on screen: `GET /download/<run>/<SYS>.root?<page query>` and `.parquet`.

The query is the run page's own (`dashboard.url_state`), so the file holds what the page shows: the same
slice, options applied (scaled, derived), as drawn. Nothing in the request names a file on the server:
the route only builds data products from the processing service. File names are made safe (histogram
names hold `/` and spaces). ROOT files come from `pipeline.export`, Parquet files use the store's schema.
"""

from __future__ import annotations

import io
import tempfile
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
from flask import Flask, Response, request

from dashboard.components.histogram_view import shown_histograms, view_file_name
from dashboard.context import PageContext
from dashboard.slices import error_text
from dashboard.url_state import parse_query
from dashboard.view_request import resolve_view
from pipeline.auth.roles import Role
from pipeline.export import write_root_file
from pipeline.histogram import Histogram
from pipeline.processing.options import OptionsError
from pipeline.store_schema import SnapshotMeta, format_snapshot_id, histograms_to_table
from pipeline.web.access import requires

FORMATS = {"root": "application/octet-stream", "parquet": "application/vnd.apache.parquet"}


def register_routes(server: Flask, context: PageContext) -> None:
    @server.get("/download/<int:run>/<subsystem>.<any(root, parquet):file_format>")
    @requires(Role.SHIFTER)
    def download(run: int, subsystem: str, file_format: str) -> Response:
        if subsystem not in context.settings.subsystems:
            return _text(f"unknown subsystem {subsystem!r}", 404)
        query = parse_query(request.args.to_dict())
        try:
            resolved = resolve_view(context.service, run, subsystem, query)
            if resolved.name is None:
                raise LookupError(f"run {run} has no {subsystem} histograms")
            shown = shown_histograms(resolved.view, subsystem, resolved.name)
        except OptionsError as error:
            return _text(error_text(error), 400)
        except (LookupError, KeyError) as error:
            return _text(f"nothing to download: {error}", 404)
        histograms = [member.histogram for member in shown.members]
        view = resolved.view
        name = view_file_name(run, subsystem, resolved.name, resolved.window)
        if file_format == "root":
            payload = root_bytes(histograms)
        else:
            returned = view.plan.returned
            moment = view.run.start_utc + timedelta(minutes=returned.max_minutes if returned else 0.0)
            meta = SnapshotMeta(run, subsystem, moment, view.run.hlt_mode, view.run.beam_type)
            payload = parquet_bytes(meta, histograms)
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


def parquet_bytes(meta: SnapshotMeta, histograms: list[Histogram]) -> bytes:
    """One snapshot-shaped table (the store's schema): any Parquet tool reads it like a stored file."""
    table = histograms_to_table(format_snapshot_id(meta), meta, histograms)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def _text(message: str, status: int) -> Response:
    return Response(message, status=status, mimetype="text/plain")
