"""The per-process connection pool the API reads through, and direct connections for commands."""

import psycopg
from flask import current_app, g
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool


def session_options(settings):
    """Server settings every API connection starts with.

    API connections only read: each request runs in one read-only REPEATABLE READ
    transaction, so a list and its total come from the same snapshot, and runaway
    queries or forgotten transactions are cut off by the server.
    """
    return " ".join([
        "-c default_transaction_read_only=on",
        "-c default_transaction_isolation=repeatable\\ read",
        f"-c statement_timeout={settings.statement_timeout_ms}",
        f"-c idle_in_transaction_session_timeout={settings.idle_in_transaction_timeout_ms}",
        "-c TimeZone=UTC",
    ])


def create_pool(settings):
    """A pool for this process, opened without waiting so the app starts while the database is down."""
    pool = ConnectionPool(
        settings.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout_seconds,
        kwargs={
            "options": session_options(settings),
            "row_factory": dict_row,
            "application_name": "apertur-api",
            "connect_timeout": max(1, int(settings.pool_timeout_seconds)),
        },
        check=ConnectionPool.check_connection,
        # Give up on a failed reconnection quickly: the next request then starts a fresh
        # attempt, so the pool is back within a second of the database, not after a
        # long exponential backoff.
        reconnect_timeout=settings.pool_timeout_seconds,
        name="api",
        open=False,
    )
    pool.open(wait=False)
    return pool


def request_connection():
    """The current request's pooled connection, taken on first use.

    Authentication and the view share it, so a request costs one checkout and reads
    one snapshot. Raises PoolTimeout when the database cannot be reached in time.
    """
    if "db" not in g:
        g.db = current_app.extensions["db_pool"].getconn()
    return g.db


def release_request_connection(_exc=None):
    """teardown_request hook: end the read-only transaction and hand the connection back
    (the pool discards it if it broke)."""
    conn = g.pop("db", None)
    if conn is None:
        return
    if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        try:
            conn.rollback()  # nothing was written; ending it here keeps the pool from warning
        except psycopg.Error:
            pass  # a dead connection: putconn sees it and drops it
    current_app.extensions["db_pool"].putconn(conn)


def connect(database_url, **kwargs):
    """A direct read-write connection for commands and tests, in UTC."""
    return psycopg.connect(database_url, options="-c TimeZone=UTC", row_factory=dict_row, **kwargs)
