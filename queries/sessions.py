"""Upload sessions in the caller's scope."""

from queries import list_bounds, load_queries

_SQL = load_queries(
    "sessions.sql",
    {
        "list_sessions": {
            "user_id",
            "key_hash",
            "project_id",
            "statuses",
            "tag",
            "created_from",
            "before_at",
            "before_id",
            "session_id",
            "limit",
            "offset",
            "with_total",
        },
    },
)


def list_sessions(
    conn,
    user_id,
    key_hash,
    limit,
    offset=0,
    *,
    project_id=None,
    statuses=None,
    tag=None,
    created_from=None,
    created_to=None,
    after=None,
    with_total=True,
    session_id=None,
):
    """Start the query for session rows newest first (createdAt, then id), with derived
    status and counts, filtered (None: not filtered; statuses as reported), after the
    position `after` (created_at, id) when walking by cursor. Every row also carries the
    matching `total` (None unless `with_total`) and `project_visible` (False when
    `project_id` is not in scope); a page past the end is a single row whose `id` is None.
    With `session_id`, the one session if in scope."""
    before_at, before_id = list_bounds(created_to, after)
    return _SQL["list_sessions"].execute(
        conn,
        user_id=user_id,
        key_hash=key_hash,
        project_id=project_id,
        statuses=statuses,
        tag=tag,
        created_from=created_from,
        before_at=before_at,
        before_id=before_id,
        session_id=session_id,
        limit=limit,
        offset=offset,
        with_total=with_total,
    )
