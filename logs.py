"""Structured logs: one JSON line per request, request ids, and Server-Timing.

Every response carries `X-Request-Id` (the caller's own when well formed, else a new one)
and `Server-Timing: db;dur=…, app;dur=…`. Every request but the health probes logs one
JSON line to standard error (gunicorn's error log) with its id, route, status, timings,
the caller's kind and id (a user or key *id*, never a credential) and the client address
as the proxy reports it. Errors log their stack trace here, never in a response.
"""

import logging
import re
import sys
import time
import uuid

from flask import g, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-Id"
# What a proxy or client may pass on: short, and nothing that could forge a log field.
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
QUIET_PATHS = frozenset({"/healthz", "/readyz"})  # polled every second: not worth a line

access_log = logging.getLogger("apertur.access")


def configure_logging():
    """Send the service's loggers (`apertur.*`) to standard error as JSON lines, once."""
    logger = logging.getLogger("apertur")
    if not any(isinstance(handler.formatter, JsonFormatter) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}",
                style="{",
                timestamp="time",
                rename_fields={"levelname": "level", "name": "logger"},
            )
        )
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def request_id():
    """The current request's id; None before start_request ran (or outside a request)."""
    return g.get("request_id")


def start_request():
    """before_request: start the clocks and settle the request id."""
    g.started = time.perf_counter()
    g.db_ms = 0.0
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if _WELL_FORMED_ID.fullmatch(given) else uuid.uuid4().hex


def add_db_time(milliseconds):
    """Count time spent waiting on the database towards this request's `db` timing."""
    g.db_ms = g.get("db_ms", 0.0) + milliseconds


def finish_request(response):
    """after_request: id and timing headers, and the access line."""
    total_ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    db_ms = g.get("db_ms", 0.0)
    response.headers[REQUEST_ID_HEADER] = g.get("request_id") or uuid.uuid4().hex
    response.headers["Server-Timing"] = f"db;dur={db_ms:.1f}, app;dur={total_ms - db_ms:.1f}"
    if request.path not in QUIET_PATHS:
        caller = g.get("caller")
        access_log.info(
            "request",
            extra={
                "requestId": response.headers[REQUEST_ID_HEADER],
                "method": request.method,
                "route": request.url_rule.rule if request.url_rule else None,
                "status": response.status_code,
                "durationMs": round(total_ms, 2),
                "dbMs": round(db_ms, 2),
                "callerKind": caller.kind if caller else None,
                "callerId": g.get("caller_id"),
                "clientAddress": request.remote_addr,
            },
        )
    return response
