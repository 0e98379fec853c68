"""Application factory: settings, JWT verification, JSON on orjson, logs and metrics, CORS
and proxies, the blueprints (API, health, OpenAPI, metrics), commands, the pool."""

import json

import orjson
from flask import Flask, request
from flask.json.provider import JSONProvider
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from psycopg.types.json import set_json_loads
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.middleware.proxy_fix import ProxyFix

import auth
import commands
import database
import logs
import metrics
import openapi
from api import bp as api_blueprint
from config import load_settings
from errors import register_error_handlers
from health import bp as health_blueprint


class OrjsonProvider(JSONProvider):
    """Flask's JSON on orjson: compact, keys in the order the schemas give them. Integers
    past 64 bits (a series' bytes can sum past 2^63) go through the standard library."""

    def dumps(self, obj, **kwargs):
        try:
            return orjson.dumps(obj).decode()
        except orjson.JSONEncodeError:
            return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

    def loads(self, s, **kwargs):
        return orjson.loads(s)


def protective_headers(response):
    """Every answer: no MIME sniffing, and nothing stored by shared caches.

    Data differs per credential, so only the caller's own browser may keep it, and
    must revalidate; errors are not kept at all.
    """
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = (
        "private, no-cache" if response.status_code < 400 else "no-store"
    )
    return response


def allow_browsers(app, origins):
    """CORS for the dashboard's origins: GET with a bearer token, answering the browser's
    preflight OPTIONS (which the API otherwise refuses with 405) on known paths only."""
    CORS(
        app,
        resources={r"/api/*": {"origins": list(origins)}},
        methods=["GET"],
        allow_headers=["Authorization", "X-Request-Id"],
        expose_headers=["X-Request-Id", "Server-Timing"],
        max_age=600,
    )

    @app.before_request
    def answer_preflight():
        if (
            request.method == "OPTIONS"
            and "Access-Control-Request-Method" in request.headers
            and isinstance(request.routing_exception, MethodNotAllowed)
        ):
            return app.response_class(status=204)
        return None


def create_app(settings=None):
    """Build the app; the connection pool opens here, so under gunicorn once per worker."""
    settings = settings or load_settings()
    app = Flask(__name__, static_folder=None)  # no static files: every route is the API's
    app.json = OrjsonProvider(app)
    app.config.update(settings.jwt_config())
    app.config["SETTINGS"] = settings
    JWTManager(app)
    app.extensions["verified_tokens"] = auth.verified_token_cache()
    logs.configure_logging()
    register_error_handlers(app)
    app.before_request(logs.start_request)  # app-level: runs before the API's auth
    if settings.cors_origins:
        allow_browsers(app, settings.cors_origins)
    if settings.trusted_proxies:  # client address and scheme as the proxies in front saw them
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies
        )
    app.after_request(protective_headers)
    app.after_request(logs.finish_request)
    app.after_request(metrics.observe)
    app.register_blueprint(api_blueprint)
    app.register_blueprint(health_blueprint)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(metrics.bp)
    app.extensions["openapi"] = openapi.build_spec(app)
    commands.register(app)
    set_json_loads(orjson.loads)  # the breakdowns and top projects PostgreSQL builds
    app.extensions["db_pool"] = database.create_pool(settings)
    return app
