"""Aggregate figures over the caller's scope."""

from queries import load_queries

_SQL = load_queries("stats.sql", {"project_stats": {"user_id", "key_hash", "project_id"}})


def project_stats(conn, user_id, key_hash, project_id=None):
    """Start the query for the one row with every figure of GET /api/v1/stats, over the
    caller's projects or only `project_id` (then `project_visible` says whether it is in
    scope)."""
    return _SQL["project_stats"].execute(
        conn, user_id=user_id, key_hash=key_hash, project_id=project_id
    )
