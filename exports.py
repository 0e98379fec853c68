"""Whole lists as CSV or NDJSON: one statement in one snapshot, streamed as the database
writes it.

An export runs in a read-only REPEATABLE READ transaction: the caller check, the scope's
facts and the one statement that reads the rows see the same snapshot, so rows written while
it runs are absent and every row is as it was at the start. PostgreSQL formats each row as
its final line (sql/exports.sql), exactly as the lists' JSON and the row schemas give it
(held to that by tests/test_export_rows.py), and COPY streams the lines; the worker only
gathers them into chunks. The first chunk is read before the answer starts, so a bad caller,
an unknown project or a failing statement still gets its JSON error; a failure later cuts
the body short (no final chunk), and a log line says why.
"""

import functools
import logging
import time
from datetime import UTC, datetime

import psycopg
from flask import current_app, g, request, stream_with_context

import database
from auth import read_in_scope
from errors import NotFound
from queries import list_bounds
from queries.exports import STATEMENTS, export_scope, export_settings

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
# What Accept may ask for, JSON (the paginated answer) first so that */* means JSON.
_ACCEPTABLE = {"application/json": "json", "text/csv": "csv", "application/x-ndjson": "ndjson"}
CHUNK_BYTES = 64 * 1024  # what the worker gathers before writing: flat memory, few writes
# A scope of at most this many rows is exported from its projects' own indexes and sorted
# (milliseconds); a larger one walks the all-projects indexes in order, sorting nothing.
SORTED_EXPORT_ROWS = 10_000
_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
# A binary COPY starts with a 19-byte header (in the first row's message) and ends with a
# 2-byte trailer; each row is a field count (2 bytes) and the line's length (4), then the line.
_HEADER_BYTES = 19
_ROW_PREFIX_BYTES = 6
_TRAILER = b"\xff\xff"

log = logging.getLogger("apertur.exports")


class ExportCut(Exception):
    """An export stopped before its last row; `reason` is what the log line says."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def requested_format(format_param):
    """ "csv" or "ndjson" when the request asks for an export (?format wins over Accept)."""
    chosen = format_param or _ACCEPTABLE.get(request.accept_mimetypes.best_match(_ACCEPTABLE))
    return chosen if chosen in MEDIA_TYPES else None


def export(resource, row_schema, filters, export_format):
    """The streamed answer: every row of `resource` ("sessions" or "uploads") under
    `filters`, newest first, with a header of `row_schema`'s field names for CSV."""
    timeout = current_app.config["SETTINGS"].export_timeout_seconds
    facts = _begin(timeout, filters.get("project_id"))
    if not facts["project_visible"]:
        raise NotFound("No such project.")
    params = _statement_params(resource, facts, filters, export_format)
    header = csv_header(row_schema) if export_format == "csv" else b""
    # The stream outlives the view (and its teardown), so it owns the connection.
    conn = database.detach_request_connection()
    chunks = _chunks(conn, STATEMENTS[resource], params, header, time.monotonic() + timeout)
    try:
        first = next(chunks)  # the statement starts here, while errors can still be JSON
    except BaseException:
        database.release_connection(conn)
        raise
    finish = functools.cache(lambda: _finish(chunks, conn))  # once, whoever comes first
    body = stream_with_context(_answer(first, chunks, finish))
    response = attachment(body, resource, export_format)
    response.call_on_close(finish)  # also when the body is abandoned before it is iterated
    return response


def attachment(body, name, export_format):
    """A response carrying `body` (text, or an iterable streamed as it goes) as a download
    named `<name>.<format>`, of that format's media type."""
    response = current_app.response_class(body, content_type=MEDIA_TYPES[export_format])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{export_format}"'
    return response


def csv_header(row_schema):
    """The CSV header line: the JSON field names, in the schema's order."""
    names = [field.data_key or name for name, field in row_schema().fields.items()]
    return (",".join(names) + "\r\n").encode()


def _begin(timeout, project_id):
    """Open the export's snapshot, bound its statements by `timeout` seconds, and read the
    scope's facts there, with the caller check."""

    def send(conn, **params):
        export_settings.execute(conn, timeout=f"{timeout}s")
        return export_scope.execute(conn, **params)

    [facts] = read_in_scope(send, begin=_SNAPSHOT, project_id=project_id)
    return facts


def _statement_params(resource, scope, filters, export_format):
    """The export statement's parameters: the scope's projects as read in the snapshot (the
    projectId filter is already applied there), the other filters, the walk, the format."""
    given = {name: filters[name] for name in filters.keys() - {"project_id", "created_to"}}
    if "created_from" in given:
        given["created_from"] = _utc(given["created_from"])
    before_at, before_id = list_bounds(_utc(filters.get("created_to")))
    walk = "per_project" if scope[resource] <= SORTED_EXPORT_ROWS else "global"
    return (
        dict.fromkeys(STATEMENTS[resource].params)
        | given
        | {
            "projects": scope["projects"],
            "only_project": scope["projects"][0] if len(scope["projects"]) == 1 else None,
            "before_at": before_at,
            "before_id": before_id,
            "walk": walk,
            "format": export_format,
        }
    )


def _utc(moment):
    """A moment in UTC, for binding as text: Python allows offsets up to ±23:59, PostgreSQL's
    text input ±15:59. Past either end of Python's years in UTC, that end (no row lies
    beyond it)."""
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)


def _chunks(conn, statement, params, header, deadline):
    """The export's bytes, CHUNK_BYTES at a time (the first one as soon as it holds a row)."""
    keep_alive = current_app.extensions.get("worker_heartbeat", lambda: None)
    with statement.copy_out(conn, **params) as copy:
        rows = iter(copy)
        first = next(rows, _TRAILER)
        if first[_HEADER_BYTES:] == _TRAILER:  # no rows
            yield header
            return
        yield header + first[_HEADER_BYTES + _ROW_PREFIX_BYTES :]
        lines, size = [], 0
        for row in rows:
            if size >= CHUNK_BYTES:
                yield b"".join(lines)
                lines, size = [], 0
                keep_alive()  # a long export is progress, not a stuck worker
                if time.monotonic() > deadline:
                    raise ExportCut("timeout")
            line = row[_ROW_PREFIX_BYTES:]
            lines.append(line)
            size += len(line)
    # Every row is read: end the snapshot before the last write, however slow the client.
    conn.rollback()
    yield b"".join(lines)  # the trailer adds nothing


def _answer(first, rest, finish):
    """The body: the chunk read before answering, then the rest; a cut is logged, and the
    statement and connection are finished either way."""
    try:
        yield first
        yield from rest
    except GeneratorExit:
        _log_cut("client gone")  # the server stopped asking: the client went away
        raise
    except ExportCut as cut:
        _log_cut(cut.reason)
        raise
    except Exception as error:
        # Only the statement timeout cancels an export's statement from the server side.
        _log_cut("timeout" if isinstance(error, psycopg.errors.QueryCanceled) else "error")
        raise
    finally:
        finish()


def _finish(chunks, conn):
    """Stop the statement if it still runs (psycopg cancels an unfinished COPY), then hand
    the connection back."""
    chunks.close()
    database.release_connection(conn)


def _log_cut(reason):
    log.warning("export cut short", extra={"reason": reason, "requestId": g.get("request_id")})
