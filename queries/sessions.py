"""Upload sessions in the caller's scope."""

from queries import load_queries

_SQL = load_queries("sessions.sql", {
    "list_sessions": {"user_id", "key_hash", "limit", "offset"},
})


def list_sessions(conn, user_id, key_hash, limit, offset=0):
    """Start the query for session rows newest first (createdAt, then id), with derived
    status and counts; every row also carries the scope's `total`, and a page past the
    end is a single row whose `id` is None."""
    return _SQL["list_sessions"].execute(conn, user_id=user_id, key_hash=key_hash,
                                         limit=limit, offset=offset)
