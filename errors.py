"""The one JSON error envelope: every failure, ours or the framework's, leaves through here."""

import logging
from typing import ClassVar

import psycopg
from flask import jsonify
from psycopg_pool import PoolTimeout
from werkzeug.exceptions import HTTPException

import database
import logs
import metrics

log = logging.getLogger("apertur.errors")

# Codes for the framework's own HTTP errors; anything unlisted gets a generic code.
_HTTP_CODES = {
    400: "invalid_parameter",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
}
_HTTP_MESSAGES = {
    404: "No such endpoint.",
    405: "This endpoint only answers GET.",
}


class ApiError(Exception):
    """An error the API reports to the caller as {"error", "message"}."""

    status = 500
    code = "internal_error"
    headers: ClassVar[dict] = {}

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def to_dict(self):
        """The JSON body of the error."""
        return {"error": self.code, "message": self.message}


class InvalidParameter(ApiError):
    """A query parameter is malformed or out of range."""

    status = 400
    code = "invalid_parameter"


class NotFound(ApiError):
    """No such resource in the caller's scope (out of scope and nonexistent are alike)."""

    status = 404
    code = "not_found"


class Unauthorized(ApiError):
    """No usable credential; the message never says more than a short reason. `reason` is
    a fixed label for metrics (missing_credential, malformed_header, invalid_token,
    expired_token, wrong_token_type, unknown_user, unknown_key), never shown."""

    status = 401
    code = "unauthorized"
    headers: ClassVar[dict] = {"WWW-Authenticate": 'Bearer realm="apertur"'}

    def __init__(self, message, reason="invalid_token"):
        super().__init__(message)
        self.reason = reason


class Unavailable(ApiError):
    """The database cannot be reached or a query took too long."""

    status = 503
    code = "unavailable"


def error_response(error, extra_headers=None):
    """Render an ApiError as the JSON envelope (with the request id) and its headers."""
    if isinstance(error, Unauthorized):
        metrics.AUTH_FAILURES.labels(error.reason).inc()
    body = error.to_dict()
    request_id = logs.request_id()
    if request_id:
        body["requestId"] = request_id
    response = jsonify(body)
    response.status_code = error.status
    response.headers.update(error.headers)
    if extra_headers:
        response.headers.update(extra_headers)
    return response


def _handle_http_exception(exc):
    error = ApiError(_HTTP_MESSAGES.get(exc.code) or exc.description or exc.name)
    error.status = exc.code or 500
    error.code = _HTTP_CODES.get(error.status, exc.name.lower().replace(" ", "_"))
    # Keep what HTTP requires of the framework's answer (Allow on 405), nothing else.
    return error_response(error, {k: v for k, v in exc.get_headers() if k == "Allow"})


def _handle_database_unavailable(exc):
    log.warning("database unavailable: %s", type(exc).__name__)
    metrics.DATABASE_ERRORS.labels(type(exc).__name__).inc()
    if isinstance(exc, PoolTimeout):
        database.note_database_down()
    return error_response(Unavailable("The database is unavailable; try again shortly."))


def _handle_unexpected(exc):
    log.exception("unhandled error")
    return error_response(ApiError("An unexpected error occurred."))


def register_error_handlers(app):
    """Route every exception a request can raise to the JSON envelope."""
    app.register_error_handler(ApiError, error_response)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(PoolTimeout, _handle_database_unavailable)
    app.register_error_handler(psycopg.OperationalError, _handle_database_unavailable)
    app.register_error_handler(Exception, _handle_unexpected)
