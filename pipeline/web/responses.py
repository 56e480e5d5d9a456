"""JSON answers of the HTTP routes: plain values from numpy and datetimes, and errors as `{message}`.

Every error of the API and the push route is JSON with a message, the field it is about when there is
one, and the right status, so machines never have to parse an HTML error page.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

import numpy as np
from flask import Blueprint, Response, json
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised in a route to answer `{message, field}` with `status_code`."""

    def __init__(self, status_code: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.field = field


def jsonable(value: Any) -> Any:
    """`value` as JSON-ready Python: arrays as nested lists, numpy scalars as numbers, times as ISO text.

    Non-finite floats become None: JSON has no NaN, and a consumer must not get invalid JSON.
    """
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    return value


def json_response(payload: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(jsonable(payload), ensure_ascii=False)
    return Response(body, status=status_code, headers=dict(headers or {}), mimetype="application/json")


def error_response(
    status_code: int, message: str, field: str | None = None, headers: Mapping[str, str] | None = None
) -> Response:
    payload: dict[str, Any] = {"message": message, "status": status_code}
    if field is not None:
        payload["field"] = field
    return json_response(payload, status_code, headers)


def install_json_errors(blueprint: Blueprint) -> None:
    """Answer every error of the blueprint's routes as JSON: ApiError, werkzeug's HTTP errors (a bad
    multipart body, 413...) and unexpected failures (500, logged with their traceback)."""

    @blueprint.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return error_response(error.status_code, error.message, error.field)

    @blueprint.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        if isinstance(error, InternalServerError):
            log.error("unexpected failure in %s", blueprint.name, exc_info=error.original_exception)
            return error_response(500, "internal error: see the server log")
        return error_response(error.code or 500, error.description or error.name)
