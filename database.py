"""The per-process connection pool the API reads through, and direct connections for commands."""

import contextlib
import time

import psycopg
from flask import current_app, g
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

import config
import logs
from queries import server


def session_settings(
    statement_timeout_ms=config.DEFAULT_STATEMENT_TIMEOUT_MS,
    idle_in_transaction_timeout_ms=config.DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS,
):
    """Server settings every API session runs with, by name.

    API connections only read, one statement per answer (a list and its total come
    from one statement, hence one snapshot), and runaway queries are cut off by the
    server. Plans are generic: each query is prepared once per connection and its plan
    choices are made at run time by the query itself, so re-planning per call (milliseconds
    for the list queries) would buy nothing; nor would JIT compilation, which the generic
    plans' large cost estimates would otherwise trigger. Timestamps are written in UTC.

    The pool sends them with every connection (startup options); init-db also stores them
    on the read-only role, where a pooler that refuses startup options needs them.
    """
    return {
        "default_transaction_read_only": "on",
        "plan_cache_mode": "force_generic_plan",
        "jit": "off",  # compiling a plan costs more than any of these queries runs
        "statement_timeout": str(statement_timeout_ms),
        "idle_in_transaction_session_timeout": str(idle_in_transaction_timeout_ms),
        "TimeZone": "UTC",
    }


def api_session_settings(settings):
    """session_settings for the service's configured timeouts."""
    return session_settings(settings.statement_timeout_ms, settings.idle_in_transaction_timeout_ms)


def connection_options(settings):
    """What the pool's connections are made with.

    With DB_PREPARED_STATEMENTS=off (PgBouncer in transaction mode, where consecutive
    transactions may run on different servers and startup options are refused) nothing is
    prepared and the session settings come from the role instead (init-db writes them).
    """
    options = {
        "row_factory": dict_row,
        "autocommit": True,
        "application_name": "apertur-api",
        "connect_timeout": max(1, int(settings.pool_timeout_seconds)),
        "prepare_threshold": None,
    }
    if settings.prepared_statements:
        startup = " ".join(f"-c {k}={v}" for k, v in api_session_settings(settings).items())
        options |= {"options": startup, "prepare_threshold": 0}  # prepare on first use
    return options


class SessionUnfit(psycopg.OperationalError):
    """A new connection's session lacks settings the service relies on."""


class ApiPool(ConnectionPool):
    """The API's pool, which checks every new connection for the session settings the
    service relies on (one query per connection). They come from the startup options or,
    without them (DB_PREPARED_STATEMENTS=off), from the role; and a pooler may drop
    options it does not pass on (PgBouncer's ignore_startup_parameters). A connection
    that lacks them is refused, so requests answer 503 rather than answer with timestamps
    in another zone or without a statement timeout; `session_problem` says why for /readyz."""

    session_problem = None

    def __init__(self, conninfo, *, required_settings, **kwargs):
        self.required_settings = required_settings
        super().__init__(conninfo, configure=self._check_session, **kwargs)

    def _check_session(self, conn):
        unset = server.unset_settings(conn, self.required_settings)
        self.session_problem = (
            f"The database session lacks the service's settings ({', '.join(unset)}): "
            "run init-db, which stores them on the read-only role."
            if unset
            else None
        )
        if unset:
            raise SessionUnfit(self.session_problem)


def create_pool(settings):
    """A pool for this process, opened without waiting, so the app starts while the
    database is down.

    DATABASE_URL may name several hosts with target_session_attrs (libpq's multi-host
    failover): every connection, first or replacement, is made by those rules, and each is
    replaced after DB_POOL_MAX_LIFETIME_SECONDS, so a worker that fell back to the primary
    returns to a standby (docs/scaling.md has the measured windows).
    """
    pool = ApiPool(
        settings.database_url,
        required_settings=api_session_settings(settings),
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout_seconds,
        max_lifetime=settings.pool_max_lifetime_seconds,
        kwargs=connection_options(settings),
        # Give up on a failed reconnection quickly: the next request then starts a fresh
        # attempt, so the pool is back within a second of the database, not after a
        # long exponential backoff.
        reconnect_timeout=settings.pool_timeout_seconds,
        name="api",
        open=False,
    )
    pool.open(wait=False)
    return pool


# Once a request found the database unreachable, the next ones in this worker wait only
# briefly for a connection: during an outage each would otherwise hold a sync worker for
# the whole pool timeout. The pool keeps reconnecting meanwhile, and the first
# connection it gets ends the fail-fast at once.
FAIL_FAST_WAIT_SECONDS = 0.25
FAIL_FAST_FOR_SECONDS = 10.0


def request_connection():
    """The current request's pooled connection, taken on first use.

    Raises PoolTimeout when the database cannot be reached in time.
    """
    if "db" not in g:
        pool = current_app.extensions["db_pool"]
        g.db = pool.getconn(timeout=_connection_wait(pool))
        current_app.extensions.pop("db_down_at", None)
    return g.db


def note_database_down():
    """Remember that the database was just found unreachable (see FAIL_FAST_*)."""
    current_app.extensions["db_down_at"] = time.monotonic()


def _connection_wait(pool):
    down_at = current_app.extensions.get("db_down_at")
    if down_at is not None and time.monotonic() - down_at < FAIL_FAST_FOR_SECONDS:
        return min(FAIL_FAST_WAIT_SECONDS, pool.timeout)
    return pool.timeout


def release_request_connection(_exc=None):
    """teardown_request hook: hand the connection back (the pool discards it if it broke)."""
    conn = g.pop("db", None)
    if conn is not None:
        release_connection(conn)


def detach_request_connection():
    """The request's connection, no longer the request's: its owner (a stream that outlives
    the view) hands it back with release_connection."""
    return g.pop("db")


def release_connection(conn):
    """Hand a pooled connection back, its transaction ended first."""
    if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        # Nothing was written; ending it here keeps the pool from warning. A dead
        # connection fails to roll back: putconn sees it and drops it.
        with contextlib.suppress(psycopg.Error):
            conn.rollback()
    current_app.extensions["db_pool"].putconn(conn)


def pipelined(send):
    """Run `send(conn)`, which starts statements and returns their cursors, in one round
    trip on the request's connection; return the cursors with their results.

    Pooled connections are not pinged before use (that would be a round trip of its
    own). A connection found dead instead, e.g. after a database restart, is dropped,
    the pool's idle connections are checked, and the read is tried once more on a new
    connection, made by the same rules (libpq may pick another host).
    """
    conn = request_connection()
    try:
        return _in_pipeline(conn, send)
    except psycopg.OperationalError as exc:
        if not connection_lost(conn, exc):
            raise
    conn.close()  # the pool discards it when it comes back
    release_request_connection()
    current_app.extensions["db_pool"].check()
    return _in_pipeline(request_connection(), send)


# Errors after which a connection is useless even if its socket is still open: the
# server is shutting down, or (class 08) a pooler in between lost its server, e.g.
# PgBouncer's "server login has been failing" (08P01).
_LOST_SERVER = ("57P01", "57P02", "57P03")


def connection_lost(conn, exc):
    """Whether `exc` means the connection no longer leads to a working server."""
    state = exc.sqlstate or ""
    return conn.broken or state.startswith("08") or state in _LOST_SERVER


def _in_pipeline(conn, send):
    started = time.perf_counter()
    try:
        with conn.pipeline():
            return send(conn)
    finally:
        logs.add_db_time((time.perf_counter() - started) * 1000)


def connect(database_url, **kwargs):
    """A direct read-write connection for commands and tests, in UTC."""
    return psycopg.connect(database_url, options="-c TimeZone=UTC", row_factory=dict_row, **kwargs)
