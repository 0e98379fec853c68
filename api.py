"""The Project Data API blueprint: five read-only endpoints over the caller's scope."""

from flask import Blueprint, g, request

from auth import require_caller
from database import release_request_connection, request_connection
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


def _recent(list_rows, schema):
    limit = load_params(LIMIT_PARAMS, request.args)["limit"]
    rows = list_rows(request_connection(), g.caller.project_ids, limit=limit)
    return schema.dump(rows)


def _paged(list_rows, count_rows, schema):
    params = load_params(PAGE_PARAMS, request.args)
    page, page_size = params["page"], params["page_size"]
    offset = (page - 1) * page_size
    # One read-only REPEATABLE READ transaction: the page and its total share a snapshot.
    conn = request_connection()
    total = count_rows(conn, g.caller.project_ids)
    rows = list_rows(conn, g.caller.project_ids, limit=page_size, offset=offset) \
        if offset < total else []
    return schema.dump({
        "data": rows,
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
    return _paged(sessions.list_sessions, sessions.count_sessions, SESSION_PAGE)


@bp.get("/uploads/recent", provide_automatic_options=False)
def recent_uploads():
    """The newest uploads, ?limit (default 10, at most 50)."""
    return _recent(uploads.list_uploads, UPLOAD_ROWS)


@bp.get("/uploads", provide_automatic_options=False)
def list_uploads():
    """Uploads page by page, ?page&pageSize (default 1 and 20, pageSize at most 100)."""
    return _paged(uploads.list_uploads, uploads.count_uploads, UPLOAD_PAGE)


@bp.get("/stats", provide_automatic_options=False)
def project_stats():
    """Aggregate figures over every project in scope."""
    return STATS.dump(stats.project_stats(request_connection(), g.caller.project_ids))
