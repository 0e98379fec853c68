"""What the SPEC names, restated once for the tests (kept apart from the code's own lists,
so a wrong word in the code cannot make its tests agree with it)."""

# SPEC §5: the five endpoints every credential test walks.
ENDPOINTS = [
    "/api/v1/sessions/recent",
    "/api/v1/sessions",
    "/api/v1/uploads/recent",
    "/api/v1/uploads",
    "/api/v1/stats",
]
# SPEC §2 and §5, in the SPEC's order (sources: the device's, then the services').
DEVICE_SOURCES = ("camera", "gallery", "url")
SERVICE_SOURCES = ("google_drive", "google_photos", "dropbox", "onedrive", "box", "instagram")
SOURCES = DEVICE_SOURCES + SERVICE_SOURCES
SESSION_STATUSES = ("pending", "active", "expired", "completed", "failed")
UPLOAD_STATUSES = ("stored_only", "delivered", "pending", "failed", "partial")
DELIVERY_STATUSES = ("pending", "sent", "failed")
# The zones every series check runs in: whole hours, DST in both hemispheres (Lord Howe's
# is half an hour), offsets of :30 and :45, and both sides of the date line.
SERIES_ZONES = (
    "UTC",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "Pacific/Kiritimati",
)
