"""gunicorn entry point: `gunicorn wsgi:app` builds one app, and one pool, per worker."""

from app import create_app

app = create_app()
