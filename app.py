"""Application factory: settings, JWT verification, the pool, the API and health blueprints,
commands."""

import orjson
from flask import Flask
from flask.json.provider import JSONProvider
from flask_jwt_extended import JWTManager
from psycopg.types.json import set_json_loads

import auth
import commands
import database
import logs
from api import bp as api_blueprint
from health import bp as health_blueprint
from config import load_settings
from errors import register_error_handlers


class OrjsonProvider(JSONProvider):
    """Flask's JSON on orjson: compact, keys in the order the schemas give them."""

    def dumps(self, obj, **kwargs):
        return orjson.dumps(obj).decode()

    def loads(self, s, **kwargs):
        return orjson.loads(s)


def protective_headers(response):
    """Every answer: no MIME sniffing, and nothing stored by shared caches.

    Data differs per credential, so only the caller's own browser may keep it, and
    must revalidate; errors are not kept at all.
    """
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = ("private, no-cache" if response.status_code < 400
                                         else "no-store")
    return response


def create_app(settings=None):
    """Build the app; the connection pool opens here, so under gunicorn once per worker."""
    settings = settings or load_settings()
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    app.config.update(settings.jwt_config())
    app.config["SETTINGS"] = settings
    JWTManager(app)
    app.extensions["verified_tokens"] = auth.verified_token_cache()
    logs.configure_logging()
    register_error_handlers(app)
    app.before_request(logs.start_request)  # app-level: runs before the API's auth
    app.after_request(protective_headers)
    app.after_request(logs.finish_request)
    app.register_blueprint(api_blueprint)
    app.register_blueprint(health_blueprint)
    commands.register(app)
    set_json_loads(orjson.loads)  # the breakdowns and top projects PostgreSQL builds
    app.extensions["db_pool"] = database.create_pool(settings)
    return app
