"""A real PostgreSQL for every test: embedded unless TEST_DATABASE_URL or DATABASE_URL is set.

The suite creates its own database (apertur_test_<pid>) on that server, applies the real
schema, and empties every table before each test.
"""

import os
import sys
import time
from pathlib import Path

import jwt
import psycopg
import pytest
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import database
import embedded_postgres
from fixture import load_fixture
from queries.migrations import apply_migrations
from tests.builders import World

TEST_SECRET = "test-secret-for-the-suite-only-0123456789"
# One database per pytest process, so parallel runs on one server never collide.
TEST_DATABASE = f"apertur_test_{os.getpid()}"
# Children first. DELETE beats TRUNCATE by far on the few rows a test writes.
TABLES = (
    "deliveries",
    "uploads",
    "destinations",
    "upload_sessions",
    "api_keys",
    "members",
    "projects",
    "users",
)


def empty_tables(conn):
    """Delete every business row (children first)."""
    for table in TABLES:
        conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))


def ensure_loaded(database_url, doc, anchor_user):
    """Load a module's read-only document unless its anchor user is already there.

    Read-only modules load their data once instead of per test (emptying the tables
    costs about 0.2 s), and again only after another test has emptied them.
    """
    with database.connect(database_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM users WHERE id = %s", [anchor_user]).fetchone() is None:
            empty_tables(conn)
            load_fixture(conn, doc)


def _server_url():
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    return url or embedded_postgres.start(embedded_postgres.TEST_DATA_DIR)


def _with_database(url, name):
    """The same server URL, naming another database."""
    return psycopg.conninfo.make_conninfo(url, dbname=name)


@pytest.fixture(scope="session")
def database_url():
    """A freshly created test database with the current schema."""
    server = _server_url()
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEST_DATABASE))
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(
                sql.Identifier(TEST_DATABASE)
            )
        )
    url = _with_database(server, TEST_DATABASE)
    with database.connect(url) as conn:
        apply_migrations(conn)
    yield url
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEST_DATABASE))
        )


@pytest.fixture(scope="session")
def app(database_url):
    """The real app, configured as in production but for the test database and secret."""
    os.environ.update(
        {"DATABASE_URL": database_url, "JWT_SECRET_KEY": TEST_SECRET, "JWT_ALGORITHM": "HS256"}
    )
    from app import create_app

    app = create_app()
    yield app
    app.extensions["db_pool"].close()


@pytest.fixture
def db(database_url):
    """A read-write connection to an empty test database."""
    with database.connect(database_url, autocommit=True) as conn:
        empty_tables(conn)
        yield conn


@pytest.fixture(scope="module")
def module_tenant(request):
    """The read-only world of a test module that defines build_tenant(), built once."""
    return request.module.build_tenant()


@pytest.fixture
def tenant(module_tenant, database_url):
    """That world, loaded once and again only after a test emptied the tables
    (see ensure_loaded)."""
    ensure_loaded(database_url, module_tenant.doc, module_tenant.user)
    return module_tenant


@pytest.fixture
def world(db):
    """A fixture document builder; world.load() writes it through the real loader."""
    built = World()

    def load():
        load_fixture(db, built.doc)
        return built

    built.load = load
    return built


@pytest.fixture
def client(app, db):
    return app.test_client()


def make_token(sub, secret=TEST_SECRET, algorithm="HS256", expires_in=3600, **claims):
    """A signed JWT; pass exp=None to leave exp out, or any claim to override it."""
    payload = {"sub": sub, "type": "access", "iat": int(time.time())}
    if expires_in is not None:
        payload["exp"] = int(time.time()) + expires_in
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, secret, algorithm=algorithm)


def ordered(value):
    """JSON-like data with every object as a list of (key, value) pairs, so order counts."""
    if isinstance(value, dict):
        return [(k, ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [ordered(v) for v in value]
    return value


def bearer(credential):
    """Headers carrying a bearer credential."""
    return {"Authorization": f"Bearer {credential}"}


@pytest.fixture
def get(client):
    """GET a path with a credential (a JWT, an aptr_ key, or None) and return the response."""

    def call(path, credential=None, **kwargs):
        headers = bearer(credential) if credential else {}
        headers.update(kwargs.pop("headers", {}))
        return client.get(path, headers=headers, **kwargs)

    return call
