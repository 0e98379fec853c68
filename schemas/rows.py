"""Response shapes; field order here is the order in the JSON, as in the SPEC.

Rows arrive as dicts from psycopg, already typed by the database; these schemas are
the one place that names, orders and formats them. They are built once per shape
(api.py) and kept lean: they run for every row of every answer.
"""

from datetime import UTC

from marshmallow import Schema, fields

from buckets import INTERVALS
from schemas.vocabulary import DELIVERY_STATUSES, SESSION_STATUSES, SOURCES, UPLOAD_STATUSES


class Timestamp(fields.Field):
    """ISO 8601 in UTC with exactly three fractional digits, truncated: 2026-11-28T16:49:47.123Z."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if value.utcoffset():  # API connections run in UTC, so this is rare
            value = value.astimezone(UTC)
        # One call formats it; isoformat truncates to the timespec, it never rounds.
        return value.isoformat(timespec="milliseconds")[:23] + "Z"


class Preformatted(fields.List):
    """A list the query already builds in its final shape (JSON from PostgreSQL), passed
    through as is; the declared item schema documents that shape."""

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class RowSchema(Schema):
    """Reads fields straight from the row dict (skipping marshmallow's generic accessor,
    which also handles objects and dotted paths)."""

    def get_attribute(self, obj, attr, default):
        return obj.get(attr, default)


class SessionRow(RowSchema):
    """One upload session with its derived status and counts."""

    id = fields.UUID()
    createdAt = Timestamp(attribute="created_at")
    expiresAt = Timestamp(attribute="expires_at")
    status = fields.String(metadata={"enum": SESSION_STATUSES})
    projectId = fields.UUID(attribute="project_id")
    projectName = fields.String(attribute="project_name")
    imagesCount = fields.Integer(attribute="images_count")
    imagesDelivered = fields.Integer(attribute="images_delivered")
    imagesFailed = fields.Integer(attribute="images_failed")
    destinationsCount = fields.Integer(attribute="destinations_count")
    tags = fields.List(fields.String(), allow_none=True)
    longPollingEnabled = fields.Boolean(attribute="long_polling_enabled")


class DestinationTypeCount(Schema):
    """How many of an upload's deliveries go to one destination type."""

    type = fields.String()
    count = fields.Integer()


class UploadRow(RowSchema):
    """One upload with its delivery counts, per-type breakdown and derived status."""

    id = fields.UUID()
    filename = fields.String()
    sizeBytes = fields.Integer(attribute="size_bytes")
    mimeType = fields.String(attribute="mime_type")
    source = fields.String(metadata={"enum": SOURCES})
    isEncrypted = fields.Boolean(attribute="is_encrypted")
    createdAt = Timestamp(attribute="created_at")
    sessionId = fields.UUID(attribute="session_id")
    projectId = fields.UUID(attribute="project_id")
    projectName = fields.String(attribute="project_name")
    destinationsTotal = fields.Integer(attribute="destinations_total")
    destinationsDelivered = fields.Integer(attribute="destinations_delivered")
    destinationsFailed = fields.Integer(attribute="destinations_failed")
    # Built by sql/uploads.sql as [{"type", "count"}] sorted by type.
    destinationsBreakdown = Preformatted(
        fields.Nested(DestinationTypeCount), attribute="destinations_breakdown"
    )
    status = fields.String(metadata={"enum": UPLOAD_STATUSES})


class Delivery(Schema):
    """One delivery of an upload: where it goes and how it went."""

    destinationId = fields.UUID()
    type = fields.String()
    status = fields.String(metadata={"enum": DELIVERY_STATUSES})


class UploadDetail(UploadRow):
    """One upload as in the lists, with its deliveries."""

    # Built by sql/uploads.sql, sorted by type then destination id.
    deliveries = Preformatted(fields.Nested(Delivery))


class ApiKey(RowSchema):
    """The API key a request is made with."""

    id = fields.UUID()
    name = fields.String()
    projectId = fields.UUID(attribute="project_id")
    projectName = fields.String(attribute="project_name")
    createdAt = Timestamp(attribute="created_at")
    expiresAt = Timestamp(attribute="expires_at", allow_none=True)


class TopProject(Schema):
    """A project ranked by its sessions this month."""

    id = fields.UUID()
    name = fields.String()
    sessions = fields.Integer()


class Stats(RowSchema):
    """Aggregate figures over the caller's scope."""

    sessionsThisMonth = fields.Integer(attribute="sessions_this_month")
    sessionsTotal = fields.Integer(attribute="sessions_total")
    imagesUploaded = fields.Integer(attribute="images_uploaded")
    imagesDelivered = fields.Integer(attribute="images_delivered")
    deliverySuccessRate = fields.Integer(
        attribute="delivery_success_rate", metadata={"minimum": 0, "maximum": 100}
    )
    totalProjects = fields.Integer(attribute="total_projects")
    activeKeys = fields.Integer(attribute="active_keys")
    topProjects = fields.List(fields.Nested(TopProject), attribute="top_projects")


class SeriesGroup(Schema):
    """One group of a series: what it is, its sums over the range, and per metric one
    number per bucket (empty buckets are 0)."""

    by = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={
            "description": "{} for one group; projectId and projectName, status, "
            "source or destinationType when grouped by them."
        },
    )
    totals = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={
            "description": "Per metric, the sum over all buckets. Metrics, in this "
            "order: sessions (not for status or source groups), uploads and bytes "
            "(not for destinationType), deliveriesSent, deliveriesFailed, "
            "deliveriesPending."
        },
    )
    series = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Integer()),
        metadata={"description": "Per metric, one number per interval."},
    )


class Series(Schema):
    """Usage over time: the buckets as UTC instants, and the groups' figures."""

    interval = fields.String(metadata={"enum": list(INTERVALS)})
    timezone = fields.String()
    start = Timestamp()
    end = Timestamp()
    intervals = fields.List(Timestamp(), metadata={"description": "Each bucket's start."})
    # Built by usage.py, one number per bucket already.
    groups = Preformatted(fields.Nested(SeriesGroup))


def page_of(row_schema):
    """The paginated wrapper {data, total, page, pageSize, totalPages} around a row schema."""

    class Page(Schema):
        data = fields.List(fields.Nested(row_schema))
        total = fields.Integer()
        page = fields.Integer()
        pageSize = fields.Integer(attribute="page_size")
        totalPages = fields.Integer(attribute="total_pages")

    Page.__name__ = f"{row_schema.__name__}Page"
    return Page


def cursor_page_of(row_schema):
    """{data, nextCursor}: one step of a cursor walk over a row schema."""

    class Page(Schema):
        data = fields.List(fields.Nested(row_schema))
        nextCursor = fields.String(
            attribute="next_cursor",
            allow_none=True,
            metadata={"description": "Pass as ?cursor for the next rows; null at the end."},
        )

    Page.__name__ = f"{row_schema.__name__}CursorPage"
    return Page
