"""init-db's two kinds of schema change: numbered files applied once, routines (functions,
views, triggers) applied whole whenever they change. Whatever version a database starts
from, it ends with the same schema as a new one, and its rollups filled and exact."""

import os
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

import database
from fixture import load_fixture
from queries.migrations import (
    _SQL,
    apply_migrations,
    pending_migrations,
    routine_files,
    routines_version,
    schema_files,
)
from queries.rollups import rollup_drift
from tests.builders import NOW, World

# Everything init-db defines, as the server describes it: compared whole between databases.
SCHEMA = """
SELECT 'column' AS kind, table_name || '.' || column_name AS name,
       concat_ws(' ', data_type, is_nullable, column_default, generation_expression) AS definition
FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'routine', p.oid::regprocedure::text, pg_get_functiondef(p.oid)
FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'view', viewname, definition FROM pg_views WHERE schemaname = 'public'
UNION ALL
SELECT 'trigger', tgrelid::regclass || '.' || tgname, pg_get_triggerdef(oid)
FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'type', typname, format_type(oid, NULL) FROM pg_type
WHERE typnamespace = 'public'::regnamespace AND typtype = 'c' AND typrelid IN
      (SELECT oid FROM pg_class WHERE relkind = 'c')
ORDER BY 1, 2
"""


@pytest.fixture
def new_database(database_url):
    """A function that creates an empty database on the test server and returns its URL;
    every database it made is dropped afterwards."""
    made = []

    def create():
        name = f"apertur_test_{os.getpid()}_migrate_{len(made)}"
        with psycopg.connect(database_url, autocommit=True) as conn:
            for statement in ("DROP DATABASE IF EXISTS {} WITH (FORCE)", "CREATE DATABASE {}"):
                conn.execute(sql.SQL(statement).format(sql.Identifier(name)))
        made.append(name)
        return psycopg.conninfo.make_conninfo(database_url, dbname=name)

    yield create
    with psycopg.connect(database_url, autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def small_world():
    """Two projects' sessions and uploads with every mix of delivery results, a month apart."""
    world = World()
    owner = world.user("Owner")
    for n, project in enumerate([world.project(owner, name) for name in ("Acme", "Beta")] * 2):
        session = world.session(
            project, created_at=NOW - timedelta(days=40 * n), destinations=("webhook", "s3")
        )
        for statuses in (["sent", "sent"], ["failed"], ["sent", "failed"], [], ["pending"]):
            world.upload(session, statuses)
    return world.doc


def schema_of(url):
    with database.connect(url) as conn:
        return conn.execute(SCHEMA).fetchall()


def migrate_to(url, upto):
    """Apply the numbered files up to `upto` only, as an older release would have."""
    with database.connect(url) as conn, conn.transaction():
        _SQL["create_migrations_table"].execute(conn)
        for version, path in schema_files():
            if version <= upto:
                conn.execute(path.read_text("utf-8"))
                _SQL["record_migration"].execute(conn, version=version)
        if upto >= "0009":
            # From 0009 on rows cannot be written without the routines (a trigger keeps the
            # deliveries' copies of their parents), so that release had its own: today's,
            # less what later files added. Not recorded: the upgrade applies them again.
            for path in routine_files():
                conn.execute(path.read_text("utf-8"))


def test_a_new_database_gets_every_file_then_the_routines_then_nothing(new_database):
    url = new_database()
    with database.connect(url) as conn:
        everything = [version for version, _ in schema_files()] + [routines_version()]
        assert pending_migrations(conn) == everything
        assert apply_migrations(conn) == everything
        assert pending_migrations(conn) == []
        assert apply_migrations(conn) == []


@pytest.mark.parametrize("upto", [version for version, _ in schema_files()][:-1])
def test_a_database_at_any_earlier_version_ends_like_a_new_one(new_database, upto):
    """Rows written under an older schema (no rollup triggers yet) are counted into every
    rollup the upgrade creates or finds empty."""
    old, new = new_database(), new_database()
    migrate_to(old, upto)
    with database.connect(old, autocommit=True) as conn:
        load_fixture(conn, small_world())
        applied = apply_migrations(conn)
        assert applied[-1] == routines_version()
        assert applied[:-1] == [version for version, _ in schema_files() if version > upto]
        assert rollup_drift(conn) == []
    with database.connect(new) as conn:
        apply_migrations(conn)
    assert schema_of(old) == schema_of(new)


def test_changed_routines_are_applied_again_and_pending_until_then(new_database):
    url = new_database()
    with database.connect(url, autocommit=True) as conn:
        apply_migrations(conn)
        load_fixture(conn, small_world())
        conn.execute("DROP VIEW expected_series_rollups")  # as if an older text had none
        conn.execute("DELETE FROM schema_migrations WHERE version LIKE 'routines@%'")
        assert pending_migrations(conn) == [routines_version()]
        assert apply_migrations(conn) == [routines_version()]
        assert pending_migrations(conn) == []
        assert rollup_drift(conn) == []
