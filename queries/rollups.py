"""Trigger-maintained rollups: check them against the base tables, and rebuild them."""

from queries import load_queries

_SQL = load_queries("rollups.sql", {"rollup_drift": set(), "rebuild_rollups": set()})


def rollup_drift(conn):
    """Every rollup row that differs from a fresh count: {rollup, key, stored, expected}."""
    return _SQL["rollup_drift"].all(conn)


def rebuild_rollups(conn):
    """Recompute all rollups in one transaction, blocking writers (not readers) meanwhile."""
    with conn.transaction():
        _SQL["rebuild_rollups"].execute(conn)
