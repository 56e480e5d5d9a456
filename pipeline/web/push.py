"""`POST /api/push/<SYS>`: the HTTP door of the push receiver (`pipeline.push`), for DQM-style clients.

The ROOT file is the body (or the multipart field `file`, as the original DQM receiver took it). The
token check happens before this route runs (`access`, role PUSH). The body is bounded by the setting
`push_max_bytes` before any of it is read, and is read into memory only: a refused push leaves nothing
on disk.
"""

from __future__ import annotations

from flask import Blueprint, Request, Response, request, url_for

from pipeline.push import PushReceiver, PushRefused
from pipeline.web.access import PUSH, requires
from pipeline.web.responses import ApiError, error_response, install_json_errors, json_response

MULTIPART_FIELD = "file"


def push_blueprint(receiver: PushReceiver, max_bytes: int) -> Blueprint:
    blueprint = Blueprint("push", __name__)
    install_json_errors(blueprint)

    @blueprint.errorhandler(PushRefused)
    def refused(error: PushRefused) -> Response:
        return error_response(error.status_code, error.message, error.field)

    @blueprint.post("/api/push/<subsystem>")
    @requires(PUSH)
    def push(subsystem: str) -> Response:
        receiver.check_subsystem(subsystem)  # before the body is read: an unknown one costs nothing
        body = _body(request, max_bytes)
        report = receiver.receive(subsystem, body, request.headers)
        result = report.result
        headers = report.headers
        return json_response(
            {
                "status": "stored",
                "message": f"stored {len(result.stored_names)} histograms as snapshot {result.snapshot_id}",
                "subsystem": subsystem,
                "run": headers.run,
                "snapshot_id": result.snapshot_id,
                "snapshot_time_utc": headers.snapshot_time_utc,
                "agent": headers.agent,
                "data_status": headers.data_status,
                "stored": result.stored_names,
                "rejected": result.rejected,
                "unsupported": result.unsupported,
                "run_url": url_for("api.run_detail", run=headers.run, _external=False),
            }
        )

    return blueprint


def _body(incoming: Request, max_bytes: int) -> bytes:
    """The pushed file's bytes, refusing (413) anything longer than `max_bytes` before reading it."""
    length = incoming.content_length
    if length is None and "chunked" in incoming.headers.get("Transfer-Encoding", "").lower():
        # A chunked body has no length to check before reading it.
        message = "Content-Length required: send the file with its length (curl --data-binary @file)"
        raise ApiError(411, message)
    if length is not None and length > max_bytes:
        raise ApiError(413, f"the push is {length} bytes, more than the limit of {max_bytes} bytes")
    if incoming.mimetype == "multipart/form-data":
        upload = incoming.files.get(MULTIPART_FIELD)
        if upload is None:
            raise ApiError(400, f"the multipart body has no field {MULTIPART_FIELD!r}", MULTIPART_FIELD)
        return upload.read(max_bytes + 1)
    return incoming.get_data(cache=False)
