"""Uploads in the caller's scope."""

from queries import load_queries

_SQL = load_queries("uploads.sql", {
    "list_uploads": {"user_id", "key_hash", "limit", "offset"},
})


def list_uploads(conn, user_id, key_hash, limit, offset=0):
    """Start the query for upload rows newest first (createdAt, then id), with delivery
    counts, breakdown and status; every row also carries the scope's `total`, and a
    page past the end is a single row whose `id` is None."""
    return _SQL["list_uploads"].execute(conn, user_id=user_id, key_hash=key_hash,
                                        limit=limit, offset=offset)
