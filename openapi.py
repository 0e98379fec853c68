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
from schemas.params import CountingNumber, LimitParams, PageParams
from schemas.rows import SessionRow, Stats, Timestamp, UploadRow, page_of

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")
bp.after_request(api.conditional_get)

SECURITY_SCHEMES = {
    "dashboardJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                     "description": "A dashboard access token (sub = user id): every project "
                                    "the user owns or is a member of."},
    "apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "aptr_…",
               "description": "A project API key `aptr_…`: that project only, while neither "
                              "revoked nor expired."},
}
ERROR_STATUSES = {
    400: "A query parameter is malformed or out of range (`invalid_parameter`).",
    401: "No usable credential (`unauthorized`); carries `WWW-Authenticate: Bearer`.",
    405: "Only GET is answered (`method_not_allowed`).",
    500: "An unexpected error (`internal_error`).",
    503: "The database cannot be reached or a query timed out (`unavailable`).",
}


class Error(Schema):
    """Every error: a code, one human sentence, and the request id."""

    error = fields.String(required=True, metadata={"enum": [
        "invalid_parameter", "unauthorized", "not_found", "method_not_allowed",
        "internal_error", "unavailable"]})
    message = fields.String(required=True)
    requestId = fields.String(metadata={"description": "The X-Request-Id of the request."})


class Status(Schema):
    """A probe's answer."""

    status = fields.String(required=True)


# (view, summary, query parameters schema, response schema, secured)
OPERATIONS = [
    (api.recent_sessions, "Newest sessions", LimitParams, SessionRow(many=True), True),
    (api.list_sessions, "Sessions page by page", PageParams, page_of(SessionRow), True),
    (api.recent_uploads, "Newest uploads", LimitParams, UploadRow(many=True), True),
    (api.list_uploads, "Uploads page by page", PageParams, page_of(UploadRow), True),
    (api.project_stats, "Aggregate figures", None, Stats, True),
    (health.healthz, "Liveness: the worker serves requests", None, Status, False),
    (health.readyz, "Readiness: database reachable and schema current", None, Status, False),
]


def _operation(summary, params, response, secured):
    statuses = [405, 500] + ([400] if params else []) + ([401, 503] if secured else [503])
    operation = {
        "summary": summary,
        "responses": {"200": {"description": "OK", "content": {
            "application/json": {"schema": response}}}},
    }
    for status in sorted(statuses):
        operation["responses"][str(status)] = {
            "description": ERROR_STATUSES[status],
            "content": {"application/json": {"schema": "Error"}}}
    if params:
        operation["parameters"] = [{"in": "query", "schema": params}]
    if not secured:
        operation["security"] = []
    return operation


def build_spec(app):
    """The OpenAPI document of `app` as a dict."""
    marshmallow = MarshmallowPlugin()
    spec = APISpec(title="Apertur Project Data API", version="1.0.0", openapi_version="3.0.3",
                   plugins=[FlaskPlugin(), marshmallow],
                   info={"description": "Read-only sessions, uploads and stats across the "
                                       "projects a dashboard user or an API key may see."},
                   security=[{"dashboardJwt": []}, {"apiKey": []}])
    marshmallow.map_to_openapi_type(CountingNumber, "integer", None)
    marshmallow.map_to_openapi_type(Timestamp, "string", "date-time")
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    spec.components.schema("Error", schema=Error)
    with app.test_request_context():
        for view, summary, params, response, secured in OPERATIONS:
            spec.path(view=view, app=app,
                      operations={"get": _operation(summary, params, response, secured)})
        spec.path(view=metrics.scrape, app=app, operations={"get": {
            "summary": "Prometheus metrics, for allowed addresses only (METRICS_ALLOW)",
            "security": [],
            "responses": {
                "200": {"description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}}},
                "404": {"description": "Not offered to this address (`not_found`).",
                        "content": {"application/json": {"schema": "Error"}}}}}})
        spec.path(view=docs_page, app=app, operations={"get": {
            "summary": "This document, browsable (Swagger UI)", "security": [],
            "responses": {"200": {"description": "HTML page",
                                  "content": {"text/html": {"schema": {"type": "string"}}}}}}})
        spec.path(view=docs_asset, app=app, operations={"get": {
            "summary": "Swagger UI's files", "security": [],
            "parameters": [{"in": "path", "name": "asset", "required": True,
                            "schema": {"type": "string", "enum": list(DOCS_ASSETS)}}],
            "responses": {"200": {"description": "CSS or JavaScript", "content": {
                "text/css": {"schema": {"type": "string"}},
                "text/javascript": {"schema": {"type": "string"}}}}}}})
        spec.path(view=openapi_document, app=app, operations={"get": {
            "summary": "This document", "security": [],
            "responses": {"200": {"description": "OpenAPI 3 document",
                                  "content": {"application/json": {"schema": {
                                      "type": "object"}}}}}}})
    document = spec.to_dict()
    for item in document["paths"].values():
        for parameter in item["get"].get("parameters", []):
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


@bp.get("/docs/<any(" + ", ".join(f'"{name}"' for name in DOCS_ASSETS) + "):asset>",
        provide_automatic_options=False)
def docs_asset(asset):
    """One of Swagger UI's files, as the swagger-ui-bundle package ships it."""
    return send_from_directory(swagger_ui_path, asset)


@bp.get("/openapi.json", provide_automatic_options=False)
def openapi_document():
    """The OpenAPI 3 document (no credentials needed)."""
    return current_app.extensions["openapi"]
