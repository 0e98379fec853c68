"""Whole lists as CSV or NDJSON, streamed: every matching row, a batch at a time.

The walk is the cursor walk (each batch starts after the last row of the one before),
so the worker holds one batch at a time however long the list, and rows written while
the export runs are neither skipped nor repeated. The first batch is read before the
answer starts, so a bad caller or an unknown project still gets its JSON error; a failure
later cuts the stream short (no final chunk), which clients see as an incomplete body.
"""

import csv
import io

import orjson
from flask import current_app, request, stream_with_context

from auth import read_in_confirmed_scope

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
# What Accept may ask for, JSON (the paginated answer) first so that */* means JSON.
_ACCEPTABLE = {"application/json": "json", "text/csv": "csv", "application/x-ndjson": "ndjson"}
BATCH_ROWS = 100  # the list queries answer at most 101 rows a statement


def requested_format(format_param):
    """ "csv" or "ndjson" when the request asks for an export (?format wins over Accept)."""
    chosen = format_param or _ACCEPTABLE.get(request.accept_mimetypes.best_match(_ACCEPTABLE))
    return chosen if chosen in MEDIA_TYPES else None


def stream(resource, rows, list_rows, row_schema, filters, export_format):
    """The streamed answer: every row of `list_rows` under `filters`, newest first, from
    its first batch `rows` (read by the caller, BATCH_ROWS rows, with the caller check)."""
    schema = row_schema(many=True)
    writer = WRITERS[export_format](schema)
    body = _batches(rows, list_rows, filters, schema, writer)
    return attachment(stream_with_context(body), resource, export_format)


def attachment(body, name, export_format):
    """A response carrying `body` (text, or an iterable streamed as it goes) as a download
    named `<name>.<format>`, of that format's media type."""
    response = current_app.response_class(body, content_type=MEDIA_TYPES[export_format])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{export_format}"'
    return response


def _batches(rows, list_rows, filters, schema, writer):
    keep_alive = current_app.extensions.get("worker_heartbeat", lambda: None)
    yield writer.header()
    while rows[0]["id"] is not None:
        yield writer.rows(schema.dump(rows))
        if len(rows) < BATCH_ROWS:
            return
        keep_alive()  # a long export is progress, not a stuck worker (gunicorn.conf.py)
        last = rows[-1]
        rows = read_in_confirmed_scope(
            list_rows,
            limit=BATCH_ROWS,
            with_total=False,
            after=(last["created_at"], last["id"]),
            **filters,
        )


class NdjsonWriter:
    """One JSON object per line, each exactly as the JSON lists give it."""

    def __init__(self, schema):
        pass

    def header(self):
        return b""

    def rows(self, items):
        return b"".join(orjson.dumps(item) + b"\n" for item in items)


class CsvWriter:
    """RFC 4180 CSV (CRLF, quoted where needed) with a header row of the JSON field names.
    Lists are flattened: tags as `a;b`, the breakdown as `type:count;…`; null is empty."""

    def __init__(self, schema):
        self.columns = [field.data_key or name for name, field in schema.fields.items()]

    def header(self):
        return self._lines([self.columns])

    def rows(self, items):
        return self._lines([[_cell(item[column]) for column in self.columns] for item in items])

    @staticmethod
    def _lines(rows):
        text = io.StringIO()
        csv.writer(text).writerows(rows)
        return text.getvalue().encode("utf-8")


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(
            f"{item['type']}:{item['count']}" if isinstance(item, dict) else item for item in value
        )
    return value


WRITERS = {"csv": CsvWriter, "ndjson": NdjsonWriter}
