"""Whole lists as CSV or NDJSON lines, formatted by the database (sql/exports.sql)."""

from queries import load_queries

_WALK = {
    "projects",
    "only_project",
    "created_from",
    "before_at",
    "before_id",
    "walk",
    "format",
    "statuses",
}
_queries = load_queries(
    "exports.sql",
    {
        "export_settings": {"timeout"},
        "export_scope": {"user_id", "key_hash", "project_id"},
        "export_uploads": _WALK | {"sources", "destination_types"},
        "export_sessions": _WALK | {"tag"},
    },
)

export_settings = _queries["export_settings"]
export_scope = _queries["export_scope"]
# Each takes the scope's projects (export_scope's; only_project too when there is one), the
# list filters of its resource but projectId (with created_to as before_at/before_id, as
# queries.list_bounds gives them), the walk ('global' or 'per_project') and the format.
STATEMENTS = {"uploads": _queries["export_uploads"], "sessions": _queries["export_sessions"]}
