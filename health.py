"""Liveness and readiness probes for load balancers and orchestrators: no credentials.

/healthz says the process serves requests (it touches nothing else); /readyz says this
instance can answer the API: the database answers, quickly, its sessions have the settings
the service relies on, and every schema migration the code expects has been applied. It
also says which role the database has (primary, or standby with its replay lag), so a
balancer or an operator sees where a worker reads after a failover. Both are cheap enough
to be polled every second.
"""

import psycopg
from flask import Blueprint, current_app
from psycopg_pool import PoolTimeout

import database
from errors import Unavailable
from queries.migrations import pending_migrations
from queries.server import database_role

bp = Blueprint("health", __name__)

# A probe must answer before the prober gives up (typically 1 s): wait at most this long
# for a pooled connection, whatever DB_POOL_TIMEOUT_SECONDS says.
READY_WAIT_SECONDS = 0.5


@bp.get("/healthz", provide_automatic_options=False)
def healthz():
    """Alive: the worker serves requests."""
    return {"status": "ok"}


@bp.get("/readyz", provide_automatic_options=False)
def readyz():
    """Ready: the database answers, as configured, with the schema current; otherwise 503
    unavailable. Names the database's role and, on a standby, its replay lag in seconds."""
    pool = current_app.extensions["db_pool"]
    try:
        found, pending = _database_state(pool)
    except (PoolTimeout, psycopg.OperationalError):
        raise Unavailable(pool.session_problem or "The database is unavailable.") from None
    if pending:
        raise Unavailable(f"Schema migrations are pending: {', '.join(pending)}.")
    # Every field always present, as in every answer of the API: the lag is null on a primary.
    return {
        "status": "ready",
        "role": found["role"],
        "replayLagSeconds": found["replay_lag_seconds"],
    }


def _database_state(pool):
    """(role, pending migrations), read again on a new connection when the pooled one
    turns out dead (after a failover its idle connections are), as API reads are."""
    wait = min(READY_WAIT_SECONDS, pool.timeout)
    with pool.connection(timeout=wait) as conn:
        try:
            return _read_state(conn)
        except psycopg.OperationalError as exc:
            if not database.connection_lost(conn, exc):
                raise
            conn.close()  # the pool discards it
    with pool.connection(timeout=wait) as conn:
        return _read_state(conn)


def _read_state(conn):
    return database_role(conn), pending_migrations(conn)
