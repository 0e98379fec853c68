"""Usage over time in the caller's scope, from the series rollups."""

from queries import load_queries

_READING = {f"span_{n}" for n in ("grain", "minute", "from", "to")}
_READING |= {f"point_{n}" for n in ("grain", "minute", "at")}
_READING |= {"raw_from", "raw_to"}
_SQL = load_queries(
    "series.sql",
    {"usage_series": {"user_id", "key_hash", "project_id", "dimension", "by_project"} | _READING},
)


def usage_series(conn, user_id, key_hash, *, project_id, dimension, by_project, reading):
    """Start the statement for the sums a series adds up (see sql/series.sql): the
    projects in scope, and per group key the figures of each rollup cell and raw piece of
    `reading` (buckets.Reading), read in `dimension`, per project when `by_project`."""
    return _SQL["usage_series"].execute(
        conn,
        **reading.params(),
        user_id=user_id,
        key_hash=key_hash,
        project_id=project_id,
        dimension=dimension,
        by_project=by_project,
    )
