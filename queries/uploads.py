"""Uploads in the caller's scope."""

from queries import list_bounds, load_queries

_SQL = load_queries(
    "uploads.sql",
    {
        "list_uploads": {
            "user_id",
            "key_hash",
            "project_id",
            "statuses",
            "sources",
            "destination_types",
            "created_from",
            "before_at",
            "before_id",
            "upload_id",
            "limit",
            "offset",
            "with_total",
        },
    },
)


def list_uploads(
    conn,
    user_id,
    key_hash,
    limit,
    offset=0,
    *,
    project_id=None,
    statuses=None,
    sources=None,
    destination_types=None,
    created_from=None,
    created_to=None,
    after=None,
    with_total=True,
    upload_id=None,
):
    """Start the query for upload rows newest first (createdAt, then id), with delivery
    counts, breakdown and status, filtered (None: not filtered), after the position
    `after` (created_at, id) when walking by cursor. Every row also carries the matching
    `total` (None unless `with_total`) and `project_visible` (False when `project_id` is
    not in scope); a page past the end is a single row whose `id` is None. With
    `upload_id`, the one upload (with its `deliveries`) if in scope."""
    before_at, before_id = list_bounds(created_to, after)
    return _SQL["list_uploads"].execute(
        conn,
        user_id=user_id,
        key_hash=key_hash,
        project_id=project_id,
        statuses=statuses,
        sources=sources,
        destination_types=destination_types,
        created_from=created_from,
        before_at=before_at,
        before_id=before_id,
        upload_id=upload_id,
        limit=limit,
        offset=offset,
        with_total=with_total,
    )
