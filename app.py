"""Application factory: settings, JWT verification, the pool, the API blueprint, commands."""

from flask import Flask
from flask_jwt_extended import JWTManager

import commands
import database
from api import bp as api_blueprint
from config import load_settings
from errors import register_error_handlers


def create_app(settings=None):
    """Build the app; the connection pool opens here, so under gunicorn once per worker."""
    settings = settings or load_settings()
    app = Flask(__name__)
    app.config.update(settings.jwt_config())
    app.config["SETTINGS"] = settings
    app.json.sort_keys = False  # field order is part of the contract
    app.json.compact = True
    JWTManager(app)
    register_error_handlers(app)
    app.register_blueprint(api_blueprint)
    commands.register(app)
    app.extensions["db_pool"] = database.create_pool(settings)
    return app
