"""Upload sessions in a scope of projects."""

from queries import load_queries

_SQL = load_queries("sessions.sql", {
    "list_sessions": {"project_ids", "limit", "offset"},
    "count_sessions": {"project_ids"},
})


def list_sessions(conn, project_ids, limit, offset=0):
    """Session rows newest first (createdAt, then id), with derived status and counts."""
    return _SQL["list_sessions"].all(conn, project_ids=project_ids, limit=limit, offset=offset)


def count_sessions(conn, project_ids):
    """The number of sessions in the scope."""
    return _SQL["count_sessions"].one(conn, project_ids=project_ids)["total"]
