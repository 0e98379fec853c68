"""Is the caller still good: API keys by hash, users by id.

Like every per-request read, these start a statement and return its cursor, so a
request can send its check and its data query in one round trip (auth.read_in_scope).
"""

from queries import load_queries

_SQL = load_queries(
    "callers.sql",
    {
        "find_api_key": {"key_hash"},
        "find_user": {"user_id"},
        "describe_api_key": {"key_hash"},
    },
)


def find_api_key(conn, key_hash):
    """Start the lookup of the usable key with this SHA-256 digest; rows: {id, project_id}."""
    return _SQL["find_api_key"].execute(conn, key_hash=key_hash)


def find_user(conn, user_id):
    """Start the lookup of a user by id; rows: {id}."""
    return _SQL["find_user"].execute(conn, user_id=user_id)


def describe_api_key(conn, user_id, key_hash):
    """Start the lookup of the caller's usable key (none for a user); rows: {id, name,
    project_id, project_name, created_at, expires_at}."""
    return _SQL["describe_api_key"].execute(conn, key_hash=key_hash)


def user_exists(conn, user_id):
    """Whether a user with this id exists (for commands, outside any pipeline)."""
    return find_user(conn, user_id).fetchone() is not None
