"""Bring a database's schema up to date: tables in numbered files, routines kept whole.

Tables, columns, indexes and types change through the numbered files under sql/schema/,
each applied once, in order. Functions, views and triggers live in sql/schema/routines/
and are applied whole (CREATE OR REPLACE) whenever their text changed since the last run,
so each is written once, in its current form. A ledger row per numbered file and one per
version of the routines (a digest of their text) records what a database has.
"""

import hashlib
import json

import psycopg

import database
from queries import SQL_DIR, load_queries

SCHEMA_DIR = SQL_DIR / "schema"
ROUTINES_DIR = SCHEMA_DIR / "routines"

_SQL = load_queries(
    "migrations.sql",
    {
        "lock_migrations": set(),
        "create_migrations_table": set(),
        "list_applied_migrations": set(),
        "record_migration": {"version"},
        "fill_empty_rollups": set(),
    },
)
_ROLES = load_queries(
    "roles.sql", {"stage_api_role_settings": {"settings"}, "grant_api_role": set()}
)

API_ROLE = "apertur_api"  # the role roles.sql creates and grants


def schema_files():
    """(version, path) of every numbered schema file, in the order they apply."""
    return [(path.stem, path) for path in sorted(SCHEMA_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))]


def routine_files():
    """The routines' files, in the order they apply (later ones use earlier ones)."""
    return sorted(ROUTINES_DIR.glob("*.sql"))


def routines_version():
    """The ledger's name for the routines as they are now: `routines@` and a digest."""
    digest = hashlib.sha256()
    for path in routine_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"routines@{digest.hexdigest()[:16]}"


def _pending(applied):
    """(version, path) to apply; the routines (path None) come last, and whenever a
    numbered file is applied too, since it may have dropped one of them to change it."""
    pending = [(version, path) for version, path in schema_files() if version not in applied]
    if pending or routines_version() not in applied:
        pending.append((routines_version(), None))
    return pending


def pending_migrations(conn):
    """What init-db would apply to this database, in order (everything on a database
    init-db never ran on)."""
    try:
        applied = {row["version"] for row in _SQL["list_applied_migrations"].all(conn)}
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        applied = set()
    return [version for version, _ in _pending(applied)]


def apply_migrations(conn, role_settings=None):
    """Apply pending schema files, then the routines if they changed, and fill any rollup
    left empty, in one transaction; return the versions applied.

    The read-only role gets `role_settings` (name → value; database.session_settings()
    with the default timeouts unless given) as its session defaults.
    """
    with conn.transaction():
        _SQL["lock_migrations"].execute(conn)
        _SQL["create_migrations_table"].execute(conn)
        applied = {row["version"] for row in _SQL["list_applied_migrations"].all(conn)}
        pending = _pending(applied)
        for version, path in pending:
            for text in [path.read_text("utf-8")] if path else _routine_texts():
                conn.execute(text)
            _SQL["record_migration"].execute(conn, version=version)
        if pending:
            _SQL["fill_empty_rollups"].execute(conn)
        # Re-granted on every run, so tables added by later migrations are covered.
        settings = role_settings or database.session_settings()
        _ROLES["stage_api_role_settings"].execute(conn, settings=json.dumps(settings))
        _ROLES["grant_api_role"].execute(conn)
    return [version for version, _ in pending]


def _routine_texts():
    return [path.read_text("utf-8") for path in routine_files()]
