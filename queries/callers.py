"""Who is calling: API keys by hash, users and the projects they can see."""

from queries import load_queries

_SQL = load_queries("callers.sql", {
    "find_api_key": {"key_hash"},
    "find_user_projects": {"user_id"},
    "find_user": {"user_id"},
})


def find_api_key(conn, key_hash):
    """The usable key with this SHA-256 digest as {id, project_id}, or None."""
    return _SQL["find_api_key"].one(conn, key_hash=key_hash)


def find_user_projects(conn, user_id):
    """{id, project_ids} for an existing user, or None when there is no such user."""
    return _SQL["find_user_projects"].one(conn, user_id=user_id)


def user_exists(conn, user_id):
    """Whether a user with this id exists."""
    return _SQL["find_user"].one(conn, user_id=user_id) is not None
