"""What the server behind a connection is, and whether its session is set up as the
service needs."""

from queries import load_queries

_SQL = load_queries("server.sql", {"database_role": set(), "session_settings": {"names"}})


def database_role(conn):
    """{role: 'primary' | 'standby', replay_lag_seconds: float | None}."""
    return _SQL["database_role"].one(conn)


def unset_settings(conn, expected):
    """The names in `expected` (name → value) this session has another value for."""
    rows = _SQL["session_settings"].all(conn, names=list(expected))
    found = {row["name"]: row["setting"] for row in rows}
    return [name for name, value in expected.items() if found.get(name) != value]
