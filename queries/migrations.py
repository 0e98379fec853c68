"""Apply the numbered schema files under sql/schema/ once each, in order."""

import psycopg

from queries import SQL_DIR, load_queries

SCHEMA_DIR = SQL_DIR / "schema"

_SQL = load_queries(
    "migrations.sql",
    {
        "lock_migrations": set(),
        "create_migrations_table": set(),
        "list_applied_migrations": set(),
        "record_migration": {"version"},
    },
)
_ROLES = load_queries("roles.sql", {"grant_api_role": set()})

API_ROLE = "apertur_api"  # the role roles.sql creates and grants


def schema_files():
    """(version, path) of every schema file, in the order they apply."""
    return [(path.stem, path) for path in sorted(SCHEMA_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))]


def pending_migrations(conn):
    """Versions of the schema files not yet applied to this database, in order (all of
    them on a database init-db never ran on)."""
    try:
        applied = {row["version"] for row in _SQL["list_applied_migrations"].all(conn)}
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        applied = set()
    return [version for version, _ in schema_files() if version not in applied]


def apply_migrations(conn):
    """Apply pending schema files in one transaction; return the versions applied."""
    with conn.transaction():
        _SQL["lock_migrations"].execute(conn)
        _SQL["create_migrations_table"].execute(conn)
        applied = {row["version"] for row in _SQL["list_applied_migrations"].all(conn)}
        pending = [(version, path) for version, path in schema_files() if version not in applied]
        for version, path in pending:
            conn.execute(path.read_text(encoding="utf-8"))
            _SQL["record_migration"].execute(conn, version=version)
        # Re-granted on every run, so tables added by later migrations are covered.
        _ROLES["grant_api_role"].execute(conn)
    return [version for version, _ in pending]
