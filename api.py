"""The Project Data API blueprint: lists, single rows, stats and the calling key, in scope."""

from dataclasses import dataclass, field

from flask import Blueprint, g, request
from marshmallow import Schema

import buckets
import cursors
import exports
import usage
from auth import confirm_caller, read_in_scope, require_caller
from database import release_request_connection
from errors import InvalidParameter, NotFound
from queries import ListQuery, callers, series, sessions, stats, uploads
from schemas.params import (
    RecentSessionParams,
    RecentUploadParams,
    SeriesParams,
    SessionListParams,
    StatsParams,
    UploadListParams,
    filters_of,
    load_params,
)
from schemas.rows import (
    ApiKey,
    Series,
    SessionRow,
    Stats,
    UploadDetail,
    UploadRow,
    cursor_page_of,
    page_of,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.before_request(require_caller)
bp.teardown_request(release_request_connection)


@dataclass
class Listing:
    """A listed resource: its list statement, and the schemas of its endpoints (built once:
    they run for every row of every answer)."""

    name: str  # "sessions": its path, its export's file name, its cursors' salt
    one: str  # "session": a single row's name; the statement picks one by `<one>_id`
    list_rows: ListQuery
    recent_params: Schema
    list_params: Schema
    row: type[Schema]
    detail: Schema  # one row by id
    rows: Schema = field(init=False)
    page: Schema = field(init=False)
    cursor_page: Schema = field(init=False)

    def __post_init__(self):
        self.rows = self.row(many=True)
        self.page = page_of(self.row)()
        self.cursor_page = cursor_page_of(self.row)()


SESSIONS = Listing(
    "sessions",
    "session",
    sessions.list_sessions,
    RecentSessionParams(),
    SessionListParams(),
    SessionRow,
    SessionRow(),
)
UPLOADS = Listing(
    "uploads",
    "upload",
    uploads.list_uploads,
    RecentUploadParams(),
    UploadListParams(),
    UploadRow,
    UploadDetail(),
)
API_KEY = ApiKey()
STATS = Stats()
STATS_PARAMS = StatsParams()
SERIES = Series()
SERIES_PARAMS = SeriesParams()


@bp.after_request
def conditional_get(response):
    """A strong ETag from the body of every 200, and 304 with no body when the client
    already holds it (If-None-Match). Streamed exports have no body to hash beforehand."""
    if response.status_code == 200 and not response.is_streamed:
        response.add_etag()
        response.make_conditional(request)
    return response


@bp.after_request
def vary_on_accept(response):
    """The paginated lists answer JSON or an export by Accept: caches must key on it."""
    if request.endpoint in ("api.list_sessions", "api.list_uploads"):
        response.vary.add("Accept")
    return response


def _params(schema):
    """The request's parameters for `schema`; a bad one is a 400, but only for a caller
    that would otherwise be answered (401 comes first)."""
    try:
        return load_params(schema, request.args)
    except InvalidParameter:
        confirm_caller()
        raise


def _read_rows(list_rows, **params):
    """A list query's data rows (a page past the end is one row of NULLs); a 404 when a
    projectId filter names a project the caller cannot see."""
    rows = read_in_scope(list_rows, **params)
    if not rows[0]["project_visible"]:
        raise NotFound("No such project.")
    return rows, (rows if rows[0]["id"] is not None else [])


def _recent(listing):
    """The newest rows, ?limit of them, filtered."""
    params = _params(listing.recent_params)
    _, data = _read_rows(
        listing.list_rows, limit=params["limit"], with_total=False, **filters_of(params)
    )
    return listing.rows.dump(data)


def _listed(listing):
    """A paginated list: by page number (the SPEC's wrapper), by cursor, or exported."""
    params = _params(listing.list_params)
    filters = filters_of(params)
    list_rows = listing.list_rows
    export_format = exports.requested_format(params.get("format"))
    if export_format:
        return exports.export(listing.name, listing.row, filters, export_format)
    if "cursor" in params:
        return _cursor_page(listing, params)
    page, page_size = params["page"], params["page_size"]
    # One statement: the page and its total come from one snapshot.
    rows, data = _read_rows(list_rows, limit=page_size, offset=(page - 1) * page_size, **filters)
    total = rows[0]["total"]
    return listing.page.dump(
        {
            "data": data,
            "total": total,
            "page": page,
            "page_size": page_size,
            "total_pages": -(-total // page_size),
        }
    )


def _cursor_page(listing, params):
    """One step of a cursor walk: {data, nextCursor}, at the same cost at any depth.

    The cursor carries its walk's filters; filters repeated beside it must be the same.
    """
    try:
        filters, after = _walk_position(listing.name, params)
    except InvalidParameter:
        confirm_caller()  # 401 comes first
        raise
    page_size = params["page_size"]
    # One row more than the page tells whether the walk goes on.
    _, data = _read_rows(
        listing.list_rows, limit=page_size + 1, after=after, with_total=False, **filters
    )
    more = len(data) > page_size
    data = data[:page_size]
    return listing.cursor_page.dump(
        {
            "data": data,
            "next_cursor": cursors.encode(listing.name, filters, data[-1]) if more else None,
        }
    )


def _walk_position(resource, params):
    """(filters, position after which to continue) of a cursor walk's step."""
    given = filters_of(params)
    if not params["cursor"]:
        return given, None  # the first step
    filters, after = cursors.decode(resource, params["cursor"])
    if given and given != filters:
        raise InvalidParameter(
            "Invalid parameter 'cursor': it belongs to a walk with other "
            "filters; send it without them or with the same."
        )
    return filters, after


def _single(listing, row_id):
    """One row by id; unknown and out-of-scope ids are the same 404. (A malformed id is
    no path of this API: the route takes UUIDs only, so it is a 404 like any unknown path.)"""
    _, data = _read_rows(
        listing.list_rows, limit=1, with_total=False, **{f"{listing.one}_id": row_id}
    )
    if not data:
        raise NotFound(f"No such {listing.one}.")
    return listing.detail.dump(data[0])


@bp.get("/sessions/recent", provide_automatic_options=False)
def recent_sessions():
    """The newest sessions, ?limit (default 10, at most 50), filtered."""
    return _recent(SESSIONS)


@bp.get("/sessions", provide_automatic_options=False)
def list_sessions():
    """Sessions page by page (?page&pageSize), by ?cursor, or exported whole; filtered."""
    return _listed(SESSIONS)


@bp.get("/sessions/<uuid:session_id>", provide_automatic_options=False)
def get_session(session_id):
    """One session by id."""
    return _single(SESSIONS, session_id)


@bp.get("/uploads/recent", provide_automatic_options=False)
def recent_uploads():
    """The newest uploads, ?limit (default 10, at most 50), filtered."""
    return _recent(UPLOADS)


@bp.get("/uploads", provide_automatic_options=False)
def list_uploads():
    """Uploads page by page (?page&pageSize), by ?cursor, or exported whole; filtered."""
    return _listed(UPLOADS)


@bp.get("/uploads/<uuid:upload_id>", provide_automatic_options=False)
def get_upload(upload_id):
    """One upload by id, with its deliveries."""
    return _single(UPLOADS, upload_id)


@bp.get("/stats", provide_automatic_options=False)
def project_stats():
    """Aggregate figures over every project in scope, or ?projectId's."""
    params = _params(STATS_PARAMS)
    [row] = read_in_scope(stats.project_stats, project_id=params.get("project_id"))
    if not row["project_visible"]:
        raise NotFound("No such project.")
    return STATS.dump(row)


@bp.get("/stats/series", provide_automatic_options=False)
def usage_series():
    """Usage over time: figures per local day, week or month, in groups."""
    params = _params(SERIES_PARAMS)
    try:
        starts = buckets.bucket_starts(
            params["interval"],
            buckets.zone(params["timezone"]),
            params.get("created_from"),
            params.get("created_to"),
        )
    except buckets.RangeError as error:
        confirm_caller()  # 401 comes first
        raise InvalidParameter(f"Invalid parameter '{error.parameter}': {error}.") from None
    grouping = usage.GROUPINGS[params.get("group_by")]
    grains = buckets.GRAINS if grouping.dimension == "" else buckets.GROUP_GRAINS
    reading = buckets.reading(starts, grains)
    rows = read_in_scope(
        series.usage_series,
        project_id=params.get("project_id"),
        dimension=grouping.dimension,
        by_project=grouping.by_project,
        reading=reading,
    )
    if "project_id" in params and not any(row["kind"] == "project" for row in rows):
        raise NotFound("No such project.")
    answer = SERIES.dump(
        {
            "interval": params["interval"],
            "timezone": params["timezone"],
            "start": starts[0],
            "end": starts[-1],
            "intervals": starts[:-1],
            "groups": grouping.groups(rows, reading, len(starts) - 1),
        }
    )
    if params.get("format") == "csv":
        return exports.attachment(usage.as_csv(answer, grouping), "series", "csv")
    return answer


@bp.get("/keys/current", provide_automatic_options=False)
def current_key():
    """The API key making the request: what it is called, its project, its dates."""
    if g.caller.kind != "api_key":
        confirm_caller()
        raise InvalidParameter(
            "keys/current describes the API key a request is made with; "
            "this request carries a dashboard token, not an API key."
        )
    return API_KEY.dump(read_in_scope(callers.describe_api_key)[0])
