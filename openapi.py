"""The OpenAPI 3 document, generated from the marshmallow schemas that load parameters and
dump responses (apispec's marshmallow plugin) and from the app's routes (its Flask plugin).

Served without credentials at GET /api/v1/openapi.json (built once per app), and browsable
at GET /api/v1/docs with Swagger UI's assets from the swagger-ui-bundle package (no CDN).
"""

from collections.abc import Callable
from typing import NamedTuple

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec_webframeworks.flask import FlaskPlugin
from flask import Blueprint, current_app, send_from_directory
from marshmallow import Schema, fields, validate
from swagger_ui_bundle import swagger_ui_path

import api
import health
import metrics
from schemas.params import (
    Choices,
    CountingNumber,
    Moment,
    ProjectId,
    SeriesParams,
    StatsParams,
    Zone,
)
from schemas.rows import (
    ApiKey,
    Series,
    Stats,
    Timestamp,
)

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")
bp.after_request(api.conditional_get)

SECURITY_SCHEMES = {
    "dashboardJwt": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A dashboard access token (sub = user id): every project "
        "the user owns or is a member of.",
    },
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "aptr_…",
        "description": "A project API key `aptr_…`: that project only, while neither "
        "revoked nor expired.",
    },
}
ERROR_STATUSES = {
    400: "A query parameter is malformed or out of range (`invalid_parameter`).",
    401: "No usable credential (`unauthorized`); carries `WWW-Authenticate: Bearer`.",
    404: "Not in the caller's scope, or no such thing (`not_found`): the same answer.",
    405: "Only GET is answered (`method_not_allowed`).",
    500: "An unexpected error (`internal_error`).",
    503: "The database cannot be reached or a query timed out (`unavailable`).",
}


class Error(Schema):
    """Every error: a code, one human sentence, and the request id."""

    error = fields.String(
        required=True,
        metadata={
            "enum": [
                "invalid_parameter",
                "unauthorized",
                "not_found",
                "method_not_allowed",
                "internal_error",
                "unavailable",
            ]
        },
    )
    message = fields.String(required=True)
    requestId = fields.String(metadata={"description": "The X-Request-Id of the request."})


class Status(Schema):
    """A probe's answer."""

    status = fields.String(required=True)


class Readiness(Status):
    """Ready, and what the worker's database is."""

    role = fields.String(
        required=True,
        validate=validate.OneOf(("primary", "standby")),
        metadata={"description": "The role of the database this worker reads from."},
    )
    replayLagSeconds = fields.Float(
        allow_none=True,
        metadata={
            "description": "On a standby: seconds its replay is behind (0 when it has replayed "
            "all it received; null before its first replayed transaction). Null on a primary."
        },
    )


EXPORTS = {
    "text/csv": "Every matching row as RFC 4180 CSV with a header row (tags as `a;b`, the "
    "breakdown as `type:count;…`), streamed; asked for by Accept or ?format=csv.",
    "application/x-ndjson": "Every matching row as one JSON object per line, streamed; asked "
    "for by Accept or ?format=ndjson.",
}
CONDITIONAL_HEADERS = {
    "ETag": {
        "description": "Strong validator of the body; send it back as If-None-Match.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": "`private, no-cache`: revalidate; shared caches keep nothing.",
        "schema": {"type": "string"},
    },
}


NOT_MODIFIED = {
    "description": "Not modified: If-None-Match named the current ETag (no body).",
    "headers": CONDITIONAL_HEADERS,
}


def _path_id(name, what):
    return {
        "in": "path",
        "name": name,
        "required": True,
        "description": f"The {what}'s id (a UUID; anything else is no path of this API).",
        "schema": {"type": "string", "format": "uuid"},
    }


class Operation(NamedTuple):
    """One documented GET: its view, summary, answer schema (or shapes told apart by their
    fields), query parameters schema, and what else it may answer."""

    view: Callable
    summary: str
    response: object
    params: type[Schema] | None = None
    secured: bool = True
    errors: tuple = ()
    media: dict | None = None  # other media types it answers in, with what they hold
    path: dict | None = None


def _listing_operations(listing, recent, pages, single, single_summary):
    """A listed resource's three operations: its newest rows, its pages, one row by id."""
    return [
        Operation(
            recent,
            f"Newest {listing.name}, filtered",
            listing.rows,
            type(listing.recent_params),
            errors=(404,),
        ),
        Operation(
            pages,
            f"{listing.name.capitalize()} page by page, by cursor, or exported",
            [type(listing.page), type(listing.cursor_page)],
            type(listing.list_params),
            errors=(404,),
            media=EXPORTS,
        ),
        Operation(
            single,
            single_summary,
            type(listing.detail),
            errors=(404,),
            path=_path_id(f"{listing.one}_id", listing.one),
        ),
    ]


OPERATIONS = [
    *_listing_operations(
        api.SESSIONS, api.recent_sessions, api.list_sessions, api.get_session, "One session"
    ),
    *_listing_operations(
        api.UPLOADS,
        api.recent_uploads,
        api.list_uploads,
        api.get_upload,
        "One upload, with its deliveries",
    ),
    Operation(api.project_stats, "Aggregate figures", Stats, StatsParams, errors=(404,)),
    Operation(
        api.usage_series,
        "Usage over time, in local days, weeks or months, grouped",
        Series,
        SeriesParams,
        errors=(404,),
        media={
            "text/csv": "The same numbers as long-form CSV (RFC 4180, with a header): "
            "start, the group's keys, then the metrics; a line per group and bucket."
        },
    ),
    Operation(
        api.current_key,
        "The API key making the request (400 for a dashboard token)",
        ApiKey,
        errors=(400,),
    ),
    Operation(health.healthz, "Liveness: the worker serves requests", Status, secured=False),
    Operation(
        health.readyz,
        "Readiness: database reachable, session settings and schema current",
        Readiness,
        secured=False,
    ),
]


def _answer(response):
    if isinstance(response, list):  # one of several shapes, told apart by their fields
        return {"oneOf": [{"$ref": f"#/components/schemas/{shape.__name__}"} for shape in response]}
    return response


def _operation(op):
    statuses = (
        [405, 500]
        + ([400] if op.params else [])
        + ([401, 503] if op.secured else [503])
        + list(op.errors)
    )
    content = {"application/json": {"schema": _answer(op.response)}}
    for media, text in (op.media or {}).items():
        content[media] = {"schema": {"type": "string", "description": text}}
    operation = {
        "summary": op.summary,
        "responses": {"200": {"description": "OK", "content": content}},
    }
    if op.secured:
        operation["responses"]["200"]["headers"] = CONDITIONAL_HEADERS
        operation["responses"]["304"] = NOT_MODIFIED
    for status in sorted(set(statuses)):
        operation["responses"][str(status)] = {
            "description": ERROR_STATUSES[status],
            "content": {"application/json": {"schema": "Error"}},
        }
    operation["parameters"] = ([{"in": "query", "schema": op.params}] if op.params else []) + (
        [op.path] if op.path else []
    )
    if not operation["parameters"]:
        del operation["parameters"]
    if not op.secured:
        operation["security"] = []
    return operation


def _text(description, *media, schema=None):
    """An answer with a body of one of these media types."""
    body = {"schema": schema or {"type": "string"}}
    return {"description": description, "content": dict.fromkeys(media, body)}


def _error(description):
    return _text(description, "application/json", schema="Error")


def _public_operations():
    """(view, operation) of the routes outside the API that need no credential."""
    return [
        (
            metrics.scrape,
            {
                "summary": "Prometheus metrics, for allowed addresses only (METRICS_ALLOW)",
                "responses": {
                    "200": _text("Prometheus text format", "text/plain"),
                    "404": _error("Not offered to this address (`not_found`)."),
                },
            },
        ),
        (
            docs_page,
            {
                "summary": "This document, browsable (Swagger UI)",
                "responses": {"200": _text("HTML page", "text/html"), "304": NOT_MODIFIED},
            },
        ),
        (
            docs_asset,
            {
                "summary": "Swagger UI's files",
                "parameters": [
                    {
                        "in": "path",
                        "name": "asset",
                        "required": True,
                        "schema": {"type": "string", "enum": list(DOCS_ASSETS)},
                    }
                ],
                "responses": {
                    "200": _text("CSS or JavaScript", "text/css", "text/javascript"),
                    "304": NOT_MODIFIED,
                    "404": _error("No such file (`not_found`)."),
                },
            },
        ),
        (
            openapi_document,
            {
                "summary": "This document",
                "responses": {
                    "200": _text(
                        "OpenAPI 3 document", "application/json", schema={"type": "object"}
                    ),
                    "304": NOT_MODIFIED,
                },
            },
        ),
    ]


def build_spec(app):
    """The OpenAPI document of `app` as a dict."""
    marshmallow = MarshmallowPlugin()
    spec = APISpec(
        title="Apertur Project Data API",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[FlaskPlugin(), marshmallow],
        info={
            "description": "Read-only sessions, uploads and stats across the "
            "projects a dashboard user or an API key may see."
        },
        security=[{"dashboardJwt": []}, {"apiKey": []}],
    )
    marshmallow.map_to_openapi_type(CountingNumber, "integer", None)
    for documented_by_metadata in (Choices, Moment, ProjectId, Zone):
        marshmallow.map_to_openapi_type(documented_by_metadata, "string", None)
    marshmallow.map_to_openapi_type(Timestamp, "string", "date-time")
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    spec.components.schema("Error", schema=Error)
    with app.test_request_context():
        for op in OPERATIONS:
            for shape in op.response if isinstance(op.response, list) else []:
                spec.components.schema(shape.__name__, schema=shape)
            spec.path(view=op.view, app=app, operations={"get": _operation(op)})
        for view, operation in _public_operations():
            spec.path(view=view, app=app, operations={"get": {**operation, "security": []}})
    document = spec.to_dict()
    for item in document["paths"].values():
        for parameter in item["get"].get("parameters", []):
            if parameter["in"] == "query":
                parameter["allowEmptyValue"] = True  # `?limit=` is the same as no limit
    # Every field of every answer is always present (null where the SPEC says so).
    for name, schema in document["components"]["schemas"].items():
        if name != "Error":
            schema["required"] = list(schema["properties"])
    return document


DOCS_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js")
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Apertur Project Data API</title>
<link rel="stylesheet" href="/api/v1/docs/swagger-ui.css"></head>
<body><div id="docs"></div>
<script src="/api/v1/docs/swagger-ui-bundle.js"></script>
<script src="/api/v1/docs/swagger-ui-standalone-preset.js"></script>
<script>SwaggerUIBundle({url: "/api/v1/openapi.json", dom_id: "#docs",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout"});
</script></body></html>
"""


@bp.get("/docs", provide_automatic_options=False)
def docs_page():
    """The document, browsable (Swagger UI)."""
    return current_app.response_class(DOCS_PAGE, mimetype="text/html")


@bp.get(
    "/docs/<any(" + ", ".join(f'"{name}"' for name in DOCS_ASSETS) + "):asset>",
    provide_automatic_options=False,
)
def docs_asset(asset):
    """One of Swagger UI's files, as the swagger-ui-bundle package ships it."""
    return send_from_directory(swagger_ui_path, asset)


@bp.get("/openapi.json", provide_automatic_options=False)
def openapi_document():
    """The OpenAPI 3 document (no credentials needed)."""
    return current_app.extensions["openapi"]
