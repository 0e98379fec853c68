"""Aggregate figures over a scope of projects."""

from queries import load_queries

_SQL = load_queries("stats.sql", {"project_stats": {"project_ids"}})


def project_stats(conn, project_ids):
    """One row with every figure of GET /api/v1/stats."""
    return _SQL["project_stats"].one(conn, project_ids=project_ids)
