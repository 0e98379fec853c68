"""The Project Data API blueprint: five read-only endpoints over the caller's scope."""

from flask import Blueprint, request

from auth import confirm_caller, read_in_scope, require_caller
from database import release_request_connection
from errors import InvalidParameter
from queries import sessions, stats, uploads
from schemas.params import LimitParams, PageParams, load_params
from schemas.rows import SessionRow, Stats, UploadRow, page_of

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.before_request(require_caller)
bp.teardown_request(release_request_connection)

LIMIT_PARAMS = LimitParams()
PAGE_PARAMS = PageParams()
SESSION_ROWS = SessionRow(many=True)
SESSION_PAGE = page_of(SessionRow)()
UPLOAD_ROWS = UploadRow(many=True)
UPLOAD_PAGE = page_of(UploadRow)()
STATS = Stats()


def _params(schema):
    """The request's parameters for `schema`; a bad one is a 400, but only for a caller
    that would otherwise be answered (401 comes first)."""
    try:
        return load_params(schema, request.args)
    except InvalidParameter:
        confirm_caller()
        raise


def _page_rows(rows):
    """The data rows of a list query's result (a page past the end is one row of NULLs)."""
    return rows if rows[0]["id"] is not None else []


def _recent(list_rows, schema):
    limit = _params(LIMIT_PARAMS)["limit"]
    return schema.dump(_page_rows(read_in_scope(list_rows, limit=limit)))


def _paged(list_rows, schema):
    params = _params(PAGE_PARAMS)
    page, page_size = params["page"], params["page_size"]
    # One statement: the page and its total come from one snapshot.
    rows = read_in_scope(list_rows, limit=page_size, offset=(page - 1) * page_size)
    total = rows[0]["total"]
    return schema.dump({
        "data": _page_rows(rows),
        "total": total,
        "page": page,
        "page_size": page_size,
        "total_pages": -(-total // page_size),
    })


@bp.get("/sessions/recent", provide_automatic_options=False)
def recent_sessions():
    """The newest sessions, ?limit (default 10, at most 50)."""
    return _recent(sessions.list_sessions, SESSION_ROWS)


@bp.get("/sessions", provide_automatic_options=False)
def list_sessions():
    """Sessions page by page, ?page&pageSize (default 1 and 20, pageSize at most 100)."""
    return _paged(sessions.list_sessions, SESSION_PAGE)


@bp.get("/uploads/recent", provide_automatic_options=False)
def recent_uploads():
    """The newest uploads, ?limit (default 10, at most 50)."""
    return _recent(uploads.list_uploads, UPLOAD_ROWS)


@bp.get("/uploads", provide_automatic_options=False)
def list_uploads():
    """Uploads page by page, ?page&pageSize (default 1 and 20, pageSize at most 100)."""
    return _paged(uploads.list_uploads, UPLOAD_PAGE)


@bp.get("/stats", provide_automatic_options=False)
def project_stats():
    """Aggregate figures over every project in scope."""
    return STATS.dump(read_in_scope(stats.project_stats)[0])
