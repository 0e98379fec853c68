"""Uploads in a scope of projects."""

from queries import load_queries

_SQL = load_queries("uploads.sql", {
    "list_uploads": {"project_ids", "limit", "offset"},
    "count_uploads": {"project_ids"},
})


def list_uploads(conn, project_ids, limit, offset=0):
    """Upload rows newest first (createdAt, then id), with delivery counts, breakdown and status."""
    return _SQL["list_uploads"].all(conn, project_ids=project_ids, limit=limit, offset=offset)


def count_uploads(conn, project_ids):
    """The number of uploads in the scope."""
    return _SQL["count_uploads"].one(conn, project_ids=project_ids)["total"]
