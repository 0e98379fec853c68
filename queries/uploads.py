"""Uploads in the caller's scope."""

from queries import ListQuery

# Upload rows with their delivery counts, breakdown and status. Filters: project_id,
# statuses, sources, destination_types, created_from (inclusive); upload_id picks the one
# upload, if in scope, with its `deliveries`.
list_uploads = ListQuery(
    "uploads.sql",
    "list_uploads",
    filters={"project_id", "statuses", "sources", "destination_types", "created_from", "upload_id"},
)
