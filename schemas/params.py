"""Query parameters: loaded and checked before a view runs, so views receive clean values."""

import re
import uuid
from datetime import datetime

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load
from marshmallow.validate import OneOf

from buckets import INTERVALS, zone_names
from errors import InvalidParameter
from schemas.vocabulary import SESSION_STATUSES, SOURCES, UPLOAD_STATUSES

MAX_PAGE = 2_147_483_647
UUID_TEXT = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)
DESTINATION_TYPE = re.compile(r"[a-z][a-z0-9_]{0,31}")
EXPORT_FORMATS = ("json", "csv", "ndjson")
GROUPINGS = ("project", "status", "source", "destinationType")
ZONE_NAMES = frozenset(zone_names())  # read from the zone database once
_SPACED_OFFSET = re.compile(r"^(.*[0-9]) ([0-9]{2}(?::?[0-9]{2})?)$")
_DIGITS = re.compile(r"[0-9]+")
# Longer digit strings are past every bound; they are clamped or refused without int().
_MAX_DIGITS = 12


class CountingNumber(fields.Field):
    """A positive base-10 integer written in ASCII digits; leading zeros are fine.

    `clamp` lowers larger values to the bound (limits and page sizes); `maximum`
    refuses them (page numbers).
    """

    def __init__(self, *, clamp=None, maximum=None, **kwargs):
        # What the OpenAPI document says of it (openapi.py reads field metadata).
        rule = (
            f"Values above {clamp} are treated as {clamp}."
            if clamp
            else f"At most {maximum}."
            if maximum
            else ""
        )
        documented = {
            "minimum": 1,
            "description": "A whole number written with the digits "
            f"0-9 (leading zeros are fine; empty means absent). {rule}".strip(),
        }
        if maximum is not None:
            documented["maximum"] = maximum
        super().__init__(metadata={**documented, **kwargs.pop("metadata", {})}, **kwargs)
        self.clamp = clamp
        self.maximum = maximum

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _DIGITS.fullmatch(value):
            raise ValidationError("must be a whole number written with the digits 0-9")
        digits = value.lstrip("0") or "0"
        number = int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS
        if number < 1:
            raise ValidationError("must be at least 1")
        if self.maximum is not None and number > self.maximum:
            raise ValidationError(f"must be at most {self.maximum}")
        return min(number, self.clamp) if self.clamp is not None else number


class Choices(fields.Field):
    """A comma-separated list of allowed words (`status=failed,partial`): any of them matches."""

    def __init__(self, allowed=None, pattern=None, **kwargs):
        what = f"any of: {', '.join(allowed)}" if allowed else f"names matching {pattern.pattern}"
        documented = {
            "type": "string",
            "pattern": _choices_pattern(allowed, pattern),
            "description": f"Comma-separated, {what}. Rows matching any one are kept.",
        }
        super().__init__(metadata={**documented, **kwargs.pop("metadata", {})}, **kwargs)
        self.allowed = allowed
        self.pattern = pattern

    def _deserialize(self, value, attr, data, **kwargs):
        words = value.split(",")
        for word in words:
            if (word not in self.allowed) if self.allowed else not self.pattern.fullmatch(word):
                expected = (
                    f"one of {', '.join(self.allowed)}"
                    if self.allowed
                    else f"a name matching {self.pattern.pattern}"
                )
                raise ValidationError(f"{_quoted(word)} is not {expected}")
        return sorted(set(words))


def _quoted(value, limit=40):
    """A refused value as its error message quotes it: its repr, cut to `limit` characters
    (a value of escaped control characters must not make the message long)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _choices_pattern(allowed, pattern):
    word = "|".join(allowed) if allowed else pattern.pattern
    return f"^({word})(,({word}))*$"


class ProjectId(fields.Field):
    """A project's id, the canonical UUID text (any letter case)."""

    def __init__(self, **kwargs):
        super().__init__(
            metadata={
                "type": "string",
                "format": "uuid",
                "description": "Only this project's rows. A project the "
                "caller cannot see is answered 404.",
            },
            **kwargs,
        )

    def _deserialize(self, value, attr, data, **kwargs):
        if not UUID_TEXT.fullmatch(value):
            raise ValidationError("must be a project id (a UUID)")
        return uuid.UUID(value)


class Moment(fields.Field):
    """An ISO 8601 date and time with a UTC offset (`Z` or `+hh:mm`)."""

    def __init__(self, meaning, **kwargs):
        super().__init__(
            metadata={
                "type": "string",
                "format": "date-time",
                "description": f"{meaning}: ISO 8601 with an offset, e.g. 2026-11-01T00:00:00Z.",
            },
            **kwargs,
        )

    def _deserialize(self, value, attr, data, **kwargs):
        # An unencoded + in a query string arrives as a space: 2026-11-01T00:00:00 02:00.
        value = _SPACED_OFFSET.sub(r"\1+\2", value)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise ValidationError(
                "must be an ISO 8601 date and time with an offset, e.g. 2026-11-01T00:00:00Z"
            )
        return moment


class Zone(fields.String):
    """An IANA time zone name, exactly as the zone database spells it."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value not in ZONE_NAMES:
            raise ValidationError(
                f"{_quoted(value)} is not an IANA time zone name (e.g. Europe/Berlin)"
            )
        return value


class Tag(fields.String):
    """One tag, matched exactly."""

    def _deserialize(self, value, attr, data, **kwargs):
        if "\x00" in value:
            raise ValidationError("must not contain NUL characters")
        return value


class Cursor(fields.String):
    """An opaque cursor from a previous answer's nextCursor; empty starts a walk."""

    keeps_empty = True  # `?cursor=` asks for the first page of a cursor walk


class QueryParams(Schema):
    """Base for query strings: other parameters are ignored, empty ones count as absent,
    and a parameter given twice is refused rather than silently picking one."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def single_values(self, args, **kwargs):
        """Query arguments (a MultiDict) as one value per declared parameter."""
        values = {}
        for field in self.fields.values():
            name = field.data_key or field.name
            given = [
                value
                for value in args.getlist(name)
                if value != "" or getattr(field, "keeps_empty", False)
            ]
            if len(given) > 1:
                raise ValidationError("must be given at most once", name)
            if given:
                values[name] = given[0]
        return values


class LimitParams(QueryParams):
    """?limit for the recent lists."""

    limit = CountingNumber(clamp=50, load_default=10)


class PageParams(QueryParams):
    """?page&pageSize for the paginated lists."""

    page = CountingNumber(maximum=MAX_PAGE, load_default=1)
    # sql/sessions.sql and sql/uploads.sql rely on this bound: a page is at most 100 rows.
    page_size = CountingNumber(clamp=100, load_default=20, data_key="pageSize")


class SessionFilters(QueryParams):
    """Filters on the session lists."""

    project_id = ProjectId(data_key="projectId")
    statuses = Choices(
        SESSION_STATUSES,
        data_key="status",
        metadata={
            "description": "Comma-separated reported statuses (a pending or active session past "
            "its expiry is expired): any of " + ", ".join(SESSION_STATUSES) + "."
        },
    )
    tag = Tag(metadata={"description": "Only sessions with this tag.", "pattern": "^[^\\x00]*$"})
    created_from = Moment("createdAt from, inclusive", data_key="from")
    created_to = Moment("createdAt before, exclusive", data_key="to")


class UploadFilters(QueryParams):
    """Filters on the upload lists."""

    project_id = ProjectId(data_key="projectId")
    statuses = Choices(UPLOAD_STATUSES, data_key="status")
    sources = Choices(SOURCES, data_key="source")
    destination_types = Choices(
        pattern=DESTINATION_TYPE,
        data_key="destinationType",
        metadata={
            "description": "Comma-separated destination types: uploads with at least one "
            "delivery to any of them."
        },
    )
    created_from = Moment("createdAt from, inclusive", data_key="from")
    created_to = Moment("createdAt before, exclusive", data_key="to")


class Walk(QueryParams):
    """How a paginated list is read: by page number, by cursor, or exported whole."""

    cursor = Cursor(
        metadata={
            "description": "Walk by cursor: empty for the first page, then the previous "
            "answer's nextCursor. The answer is {data, nextCursor}; page is "
            "ignored, and filters, when repeated, must be the cursor's own."
        }
    )
    format = fields.String(
        validate=OneOf(EXPORT_FORMATS, error="must be json, csv or ndjson"),
        metadata={
            "description": "csv or ndjson streams every matching row (as Accept: text/csv or "
            "application/x-ndjson does); json is the default."
        },
    )


class RecentSessionParams(LimitParams, SessionFilters):
    """?limit and the session filters."""


class SessionListParams(PageParams, SessionFilters, Walk):
    """?page&pageSize, the session filters, cursor and format."""


class RecentUploadParams(LimitParams, UploadFilters):
    """?limit and the upload filters."""


class UploadListParams(PageParams, UploadFilters, Walk):
    """?page&pageSize, the upload filters, cursor and format."""


class StatsParams(QueryParams):
    """?projectId narrows the stats to one project."""

    project_id = ProjectId(data_key="projectId")


class SeriesParams(QueryParams):
    """What a usage series counts: its buckets, its range, its project and its groups."""

    interval = fields.String(
        load_default="day",
        validate=OneOf(INTERVALS, error="must be day, week or month"),
        metadata={"description": "Bucket size: local days, ISO weeks (from Monday) or months."},
    )
    timezone = Zone(
        load_default="UTC",
        metadata={
            "description": "The IANA zone the buckets are local to, e.g. Europe/Berlin.",
            "enum": sorted(ZONE_NAMES),
        },
    )
    created_from = Moment(
        "The series starts with the bucket that holds this instant (without it: 30 days, 12 "
        "weeks or 12 months of buckets before the end)",
        data_key="from",
    )
    created_to = Moment(
        "The series ends at the first bucket boundary at or after this instant (without it: "
        "the end of the bucket holding now)",
        data_key="to",
    )
    project_id = ProjectId(data_key="projectId")
    group_by = fields.String(
        data_key="groupBy",
        validate=OneOf(GROUPINGS, error="must be project, status, source or destinationType"),
        metadata={
            "description": "One group per project, upload status, source or "
            "destination type; without it, one group of everything."
        },
    )
    format = fields.String(
        validate=OneOf(("json", "csv"), error="must be json or csv"),
        metadata={"description": "csv answers the same numbers as long-form CSV."},
    )


FILTER_NAMES = (
    "project_id",
    "statuses",
    "tag",
    "sources",
    "destination_types",
    "created_from",
    "created_to",
)


def filters_of(params):
    """The filters among loaded parameters (those given; absent ones filter nothing)."""
    return {name: params[name] for name in FILTER_NAMES if name in params}


def load_params(schema, args):
    """Load query arguments with a schema; raise InvalidParameter naming the parameter and rule."""
    try:
        return schema.load(args)
    except ValidationError as exc:
        name, problems = next(iter(exc.normalized_messages().items()))
        problem = problems[0] if isinstance(problems, list) else problems
        raise InvalidParameter(f"Invalid parameter '{name}': {problem}.") from None
