"""DB_PREPARED_STATEMENTS=off, the mode for PgBouncer's transaction pooling: nothing prepared,
no startup options, the session settings stored on the read-only role by init-db.

(The same mode through a real PgBouncer, under faults: tests/test_topology.py.)
"""

import os
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta

import pytest
from psycopg.conninfo import make_conninfo

import database
from app import create_app
from fixture import load_fixture
from queries.migrations import API_ROLE, apply_migrations
from tests.builders import NOW, World
from tests.conftest import bearer, make_token
from tests.servers import REPO
from tests.spec import ENDPOINTS


def _role_settings(conn):
    """The read-only role's stored session settings, by name."""
    rows = conn.execute(
        "SELECT unnest(setconfig) AS setting FROM pg_db_role_setting "
        "WHERE setrole = %s::regrole AND setdatabase = 0",
        [API_ROLE],
    ).fetchall()
    return dict(row["setting"].split("=", 1) for row in rows)


def test_init_db_stores_the_services_settings_on_the_read_only_role(database_url, db):
    env = {**os.environ, "DATABASE_URL": database_url, "DB_STATEMENT_TIMEOUT_MS": "1500"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "init-db"],
            cwd=REPO,
            env={**env, "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS": "7000"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert _role_settings(db) == {
            "default_transaction_read_only": "on",
            "plan_cache_mode": "force_generic_plan",
            "jit": "off",
            "statement_timeout": "1500",
            "idle_in_transaction_session_timeout": "7000",
            "TimeZone": "UTC",
        }
    finally:
        with database.connect(database_url) as conn:
            apply_migrations(conn)  # back to the defaults the other tests expect
    assert _role_settings(db)["statement_timeout"] == "2000"


@pytest.fixture
def world(db):
    """Ada's project with a key, sessions and uploads; Grace's project, outside her scope."""
    world = World()
    ada = world.user("Ada")
    acme = world.project(ada, "Acme")
    key = world.api_key(acme)
    session = world.session(acme, created_at=NOW - timedelta(hours=2), tags=["a", "b"])
    world.upload(session, ["sent", "failed"], created_at=NOW - timedelta(minutes=50))
    world.upload(session, ["pending"], created_at=NOW - timedelta(minutes=40))
    grace = world.user("Grace")
    world.upload(world.session(world.project(grace, "Other")), ["sent"])
    load_fixture(db, world.doc)
    return {"jwt": make_token(ada), "key": key}


@pytest.fixture
def unprepared_app(app):
    """The app as it runs behind PgBouncer in transaction mode: as the read-only role."""
    settings = app.config["SETTINGS"]
    built = create_app(
        replace(
            settings,
            prepared_statements=False,
            database_url=make_conninfo(settings.database_url, user=API_ROLE),
        )
    )
    yield built
    built.extensions["db_pool"].close()


@pytest.mark.parametrize("kind", ["jwt", "key"])
def test_every_endpoint_answers_as_with_prepared_statements(client, unprepared_app, world, kind):
    unprepared = unprepared_app.test_client()
    for path in [*ENDPOINTS, "/api/v1/uploads?format=csv", "/api/v1/stats/series?days=7"]:
        expected = client.get(path, headers=bearer(world[kind]))
        answer = unprepared.get(path, headers=bearer(world[kind]))
        assert expected.status_code == 200, (path, expected.get_data(True))
        assert (answer.status_code, answer.get_data()) == (200, expected.get_data()), path


def test_nothing_is_prepared_and_the_settings_come_from_the_role(unprepared_app, world):
    client = unprepared_app.test_client()
    for path in ENDPOINTS:
        assert client.get(path, headers=bearer(world["key"])).status_code == 200
    assert client.get("/readyz").get_json() == {
        "status": "ready",
        "role": "primary",
        "replayLagSeconds": None,
    }
    with unprepared_app.extensions["db_pool"].connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM pg_prepared_statements").fetchone()["n"] == 0
        sources = conn.execute(
            "SELECT name, source FROM pg_settings WHERE name = ANY(%s)",
            [list(database.session_settings())],
        ).fetchall()
    # 'user': from ALTER ROLE … SET; with startup options they would say 'client'.
    assert {row["name"]: row["source"] for row in sources} == dict.fromkeys(
        database.session_settings(), "user"
    )
