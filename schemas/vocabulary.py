"""The SPEC's fixed vocabularies, named once: what the fixture loader accepts, what the
filters take, and the enums the OpenAPI document lists (in the SPEC's order)."""

SOURCES = (
    "camera",
    "gallery",
    "url",
    "google_drive",
    "google_photos",
    "dropbox",
    "onedrive",
    "box",
    "instagram",
)
SESSION_STATUSES = ("pending", "active", "expired", "completed", "failed")
UPLOAD_STATUSES = ("stored_only", "delivered", "pending", "failed", "partial")
DELIVERY_STATUSES = ("pending", "sent", "failed")
