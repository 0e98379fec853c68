"""Upload sessions in the caller's scope."""

from queries import ListQuery

# Session rows with their reported status and rolled-up counts. Filters: project_id,
# statuses (as reported: a pending or active session past its expiry is expired), tag,
# created_from (inclusive); session_id picks the one session, if in scope.
list_sessions = ListQuery(
    "sessions.sql",
    "list_sessions",
    filters={"project_id", "statuses", "tag", "created_from", "session_id"},
)
