"""The OpenAPI 3 document, generated from the marshmallow schemas that load parameters and
dump responses (apispec's marshmallow plugin) and from the app's routes (its Flask plugin).

Served without credentials at GET /api/v1/openapi.json (built once per app), and browsable
at GET /api/v1/docs with Swagger UI's assets from the swagger-ui-bundle package (no CDN).
"""

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec_webframeworks.flask import FlaskPlugin
from flask import Blueprint, current_app, send_from_directory
from marshmallow import Schema, fields
from swagger_ui_bundle import swagger_ui_path

import api
import health
import metrics
from schemas.params import (
    Choices,
    CountingNumber,
    Moment,
    ProjectId,
    RecentSessionParams,
    RecentUploadParams,
    SessionListParams,
    UploadListParams,
)
from schemas.rows import (
    ApiKey,
    SessionRow,
    Stats,
    Timestamp,
    UploadDetail,
    UploadRow,
    cursor_page_of,
    page_of,
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


# (view, summary, query parameters schema, answer schema(s), secured, options)
OPERATIONS = [
    (
        api.recent_sessions,
        "Newest sessions, filtered",
        RecentSessionParams,
        SessionRow(many=True),
        True,
        {"errors": [404]},
    ),
    (
        api.list_sessions,
        "Sessions page by page, by cursor, or exported",
        SessionListParams,
        [page_of(SessionRow), cursor_page_of(SessionRow)],
        True,
        {"errors": [404], "exports": True},
    ),
    (
        api.get_session,
        "One session",
        None,
        SessionRow,
        True,
        {"errors": [404], "path": _path_id("session_id", "session")},
    ),
    (
        api.recent_uploads,
        "Newest uploads, filtered",
        RecentUploadParams,
        UploadRow(many=True),
        True,
        {"errors": [404]},
    ),
    (
        api.list_uploads,
        "Uploads page by page, by cursor, or exported",
        UploadListParams,
        [page_of(UploadRow), cursor_page_of(UploadRow)],
        True,
        {"errors": [404], "exports": True},
    ),
    (
        api.get_upload,
        "One upload, with its deliveries",
        None,
        UploadDetail,
        True,
        {"errors": [404], "path": _path_id("upload_id", "upload")},
    ),
    (api.project_stats, "Aggregate figures", None, Stats, True, {}),
    (
        api.current_key,
        "The API key making the request (400 for a dashboard token)",
        None,
        ApiKey,
        True,
        {"errors": [400]},
    ),
    (health.healthz, "Liveness: the worker serves requests", None, Status, False, {}),
    (health.readyz, "Readiness: database reachable and schema current", None, Status, False, {}),
]


def _answer(response):
    if isinstance(response, list):  # one of several shapes, told apart by their fields
        return {"oneOf": [{"$ref": f"#/components/schemas/{shape.__name__}"} for shape in response]}
    return response


def _operation(summary, params, response, secured, options):
    statuses = (
        [405, 500]
        + ([400] if params else [])
        + ([401, 503] if secured else [503])
        + options.get("errors", [])
    )
    content = {"application/json": {"schema": _answer(response)}}
    if options.get("exports"):
        content.update(
            {
                media: {"schema": {"type": "string", "description": text}}
                for media, text in EXPORTS.items()
            }
        )
    operation = {
        "summary": summary,
        "responses": {"200": {"description": "OK", "content": content}},
    }
    if secured:
        operation["responses"]["200"]["headers"] = CONDITIONAL_HEADERS
        operation["responses"]["304"] = NOT_MODIFIED
    for status in sorted(set(statuses)):
        operation["responses"][str(status)] = {
            "description": ERROR_STATUSES[status],
            "content": {"application/json": {"schema": "Error"}},
        }
    operation["parameters"] = ([{"in": "query", "schema": params}] if params else []) + (
        [options["path"]] if "path" in options else []
    )
    if not operation["parameters"]:
        del operation["parameters"]
    if not secured:
        operation["security"] = []
    return operation


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
    for documented_by_metadata in (Choices, Moment, ProjectId):
        marshmallow.map_to_openapi_type(documented_by_metadata, "string", None)
    marshmallow.map_to_openapi_type(Timestamp, "string", "date-time")
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    spec.components.schema("Error", schema=Error)
    with app.test_request_context():
        for view, summary, params, response, secured, options in OPERATIONS:
            for shape in response if isinstance(response, list) else []:
                spec.components.schema(shape.__name__, schema=shape)
            spec.path(
                view=view,
                app=app,
                operations={"get": _operation(summary, params, response, secured, options)},
            )
        spec.path(
            view=metrics.scrape,
            app=app,
            operations={
                "get": {
                    "summary": "Prometheus metrics, for allowed addresses only (METRICS_ALLOW)",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "404": {
                            "description": "Not offered to this address (`not_found`).",
                            "content": {"application/json": {"schema": "Error"}},
                        },
                    },
                }
            },
        )
        spec.path(
            view=docs_page,
            app=app,
            operations={
                "get": {
                    "summary": "This document, browsable (Swagger UI)",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "HTML page",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        },
                        "304": NOT_MODIFIED,
                    },
                }
            },
        )
        spec.path(
            view=docs_asset,
            app=app,
            operations={
                "get": {
                    "summary": "Swagger UI's files",
                    "security": [],
                    "parameters": [
                        {
                            "in": "path",
                            "name": "asset",
                            "required": True,
                            "schema": {"type": "string", "enum": list(DOCS_ASSETS)},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "CSS or JavaScript",
                            "content": {
                                "text/css": {"schema": {"type": "string"}},
                                "text/javascript": {"schema": {"type": "string"}},
                            },
                        },
                        "304": NOT_MODIFIED,
                        "404": {
                            "description": "No such file (`not_found`).",
                            "content": {"application/json": {"schema": "Error"}},
                        },
                    },
                }
            },
        )
        spec.path(
            view=openapi_document,
            app=app,
            operations={
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3 document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "304": NOT_MODIFIED,
                    },
                }
            },
        )
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
