"""A large synthetic world for benchmarks, generated inside PostgreSQL (set-based SQL)."""

from queries import load_queries

_SQL = load_queries(
    "generate.sql",
    {
        "generate_world": {"seed", "seed_fraction", "users", "projects", "sessions", "uploads"},
        "vacuum_world": set(),
        "generated_callers": {"seed"},
    },
)

PROJECTS = 1000
USERS = 300
UPLOADS_PER_SESSION = 8


def generate_world(conn, uploads, seed):
    """Write ~1,000 Zipf-sized projects and exactly `uploads` uploads in one transaction;
    return {heavy_user_id, light_user_id, api_key} to call the world as."""
    with conn.transaction():
        _SQL["generate_world"].execute_script(
            conn,
            seed=str(seed),
            seed_fraction=(seed % 1000) / 1000,
            users=USERS,
            projects=PROJECTS,
            sessions=max(1, uploads // UPLOADS_PER_SESSION),
            uploads=uploads,
        )
    _vacuum(conn)
    return _SQL["generated_callers"].one(conn, seed=str(seed))


def _vacuum(conn):
    """VACUUM ANALYZE what was generated (VACUUM runs only outside a transaction), so the
    world is served at full speed at once, not after autovacuum gets round to it."""
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        _SQL["vacuum_world"].execute(conn)
    finally:
        conn.autocommit = autocommit
