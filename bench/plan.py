"""What `make bench` measures: the world's size, the callers, and every endpoint row with
the SQL statement the API sends for it (the database floor runs the same statement).

A row's `label` names it in every table and is its request path unless `path` builds one
from the world; `params` gives its statement's parameters for (world, caller) as the
Python in queries/ takes them (created_to and after become before_at/before_id there;
every parameter not given is NULL).
"""

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent

import buckets  # noqa: E402  (the repository's modules: bench/run.py puts REPO on the path)
import usage  # noqa: E402

SIZE = int(os.environ.get("SIZE") or 1_000_000)
DATA_DIR = REPO / ".dev" / f"pgbench-{SIZE}"
PLANS_DIR = BENCH_DIR / "plans"  # generated EXPLAIN output, not kept in git
SECRET = "bench-secret-not-for-production-use-0123456789abcdef"
CALLERS = ("heavy JWT", "light JWT", "API key")
FLOOR = "(framework floor)"
CURSOR_DEPTH = 9_900  # the deep cursor step starts where page 100 of 100 rows does
# The export section: the heavy user's whole list of each (path -> its table), both formats.
EXPORTS = {"uploads": "uploads", "sessions": "upload_sessions"}
EXPORT_FORMATS = ("csv", "ndjson")
DAY = timedelta(days=1)


class Endpoint(NamedTuple):
    """One measured row: see the module's docstring."""

    label: str
    statement: tuple
    params: Callable
    path: Callable = None
    callers: tuple = CALLERS


def iso_z(moment):
    """A UTC instant as ISO 8601 with Z, to the microsecond when it has any."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def listed(limit, offset=0, with_total=True, **filters):
    """Fixed parameters of a list query: page mode counts its total; recent lists, cursor
    steps and export batches do not (with_total=False)."""
    return lambda world, caller: dict(filters, limit=limit, offset=offset, with_total=with_total)


def windowed(span):
    """A page of 20 uploads in the world's last full `span` ("day" or "week")."""
    return lambda world, caller: dict(
        limit=20,
        offset=0,
        with_total=True,
        created_from=world[span][0],
        created_to=world[span][1],
    )


def window_path(span):
    return lambda world, caller: (
        f"/api/v1/uploads?from={iso_z(world[span][0])}&to={iso_z(world[span][1])}"
    )


# Series end where the world's data does (its last full UTC day) and reach back this far.
SERIES_SPANS = {
    "day": timedelta(days=30),
    "week": timedelta(weeks=52),
    "month": timedelta(days=730),
}


def series(interval="day", zone="UTC", group_by=None):
    """(params, path) of a usage series over the world's last SERIES_SPANS[interval]."""

    def window(world):
        end = world["day"][1]
        return end - SERIES_SPANS[interval], end

    def params(world, caller):
        start_from, end_to = window(world)
        starts = buckets.bucket_starts(interval, buckets.zone(zone), start_from, end_to)
        grouping = usage.GROUPINGS[group_by]
        grains = buckets.GRAINS if grouping.dimension == "" else buckets.GROUP_GRAINS
        return dict(
            project_id=None,
            dimension=grouping.dimension,
            by_project=grouping.by_project,
            **buckets.reading(starts, grains).params(),
        )

    def path(world, caller):
        start_from, end_to = window(world)
        extra = f"&groupBy={group_by}" if group_by else ""
        return (
            f"/api/v1/stats/series?interval={interval}&timezone={zone}"
            f"&from={iso_z(start_from)}&to={iso_z(end_to)}{extra}"
        )

    return params, path


UPLOADS, SESSIONS = ("uploads.sql", "list_uploads"), ("sessions.sql", "list_sessions")
SERIES, STATS = ("series.sql", "usage_series"), ("stats.sql", "project_stats")
ENDPOINTS = [
    Endpoint("/api/v1/stats", STATS, lambda world, caller: {}),
    Endpoint("/api/v1/sessions/recent", SESSIONS, listed(10, with_total=False)),
    Endpoint("/api/v1/uploads/recent", UPLOADS, listed(10, with_total=False)),
    Endpoint("/api/v1/sessions", SESSIONS, listed(20)),
    Endpoint("/api/v1/sessions?pageSize=100", SESSIONS, listed(100)),
    Endpoint("/api/v1/sessions?page=100&pageSize=100", SESSIONS, listed(100, 9900)),
    Endpoint("/api/v1/uploads", UPLOADS, listed(20)),
    Endpoint("/api/v1/uploads?pageSize=100", UPLOADS, listed(100)),
    Endpoint("/api/v1/uploads?page=100&pageSize=100", UPLOADS, listed(100, 9900)),
    # The filters, cursor walks, single rows and the key's own description.
    Endpoint("/api/v1/uploads?status=failed", UPLOADS, listed(20, statuses=["failed"])),
    Endpoint("/api/v1/uploads?status=delivered", UPLOADS, listed(20, statuses=["delivered"])),
    Endpoint("/api/v1/uploads?from=…&to=… (1 day)", UPLOADS, windowed("day"), window_path("day")),
    Endpoint(
        "/api/v1/uploads?from=…&to=… (7 days)", UPLOADS, windowed("week"), window_path("week")
    ),
    Endpoint("/api/v1/sessions?status=expired", SESSIONS, listed(20, statuses=["expired"])),
    # A cursor step reads one row more than its page, to tell whether the walk goes on.
    Endpoint("/api/v1/uploads?cursor=&pageSize=100", UPLOADS, listed(101, with_total=False)),
    Endpoint(
        f"/api/v1/uploads?cursor=…&pageSize=100 (after {CURSOR_DEPTH:,} rows)",
        UPLOADS,
        lambda world, caller: dict(
            limit=101, offset=0, with_total=False, after=world["cursor"][caller]["after"]
        ),
        lambda world, caller: (
            "/api/v1/uploads?pageSize=100&cursor=" + world["cursor"][caller]["token"]
        ),
    ),
    Endpoint(
        "/api/v1/uploads/{id}",
        UPLOADS,
        lambda world, caller: dict(
            limit=1, offset=0, with_total=False, upload_id=world["cursor"][caller]["next_id"]
        ),
        lambda world, caller: f"/api/v1/uploads/{world['cursor'][caller]['next_id']}",
    ),
    Endpoint(
        "/api/v1/keys/current",
        ("callers.sql", "describe_api_key"),
        lambda world, caller: {},
        callers=("API key",),
    ),
    # Usage series: local days in three kinds of zone, weeks and months, and each grouping.
    Endpoint("/api/v1/stats/series (30 days, UTC)", SERIES, *series()),
    Endpoint(
        "/api/v1/stats/series (30 days, Europe/Berlin)", SERIES, *series(zone="Europe/Berlin")
    ),
    Endpoint("/api/v1/stats/series (30 days, Asia/Kolkata)", SERIES, *series(zone="Asia/Kolkata")),
    Endpoint("/api/v1/stats/series (52 weeks)", SERIES, *series("week")),
    Endpoint("/api/v1/stats/series (24 months)", SERIES, *series("month")),
    Endpoint("/api/v1/stats/series?groupBy=project", SERIES, *series(group_by="project")),
    Endpoint("/api/v1/stats/series?groupBy=status", SERIES, *series(group_by="status")),
    Endpoint(
        "/api/v1/stats/series?groupBy=destinationType",
        SERIES,
        *series(group_by="destinationType"),
    ),
    Endpoint(
        "/api/v1/stats?projectId=",
        STATS,
        lambda world, caller: {"project_id": world["key_project"][caller]},
        lambda world, caller: f"/api/v1/stats?projectId={world['key_project'][caller]}",
    ),
]
# The pooling section (bench/pooling.py) measures these rows in three configurations: one
# of each statement and each shape (a short answer near the framework floor, a page with
# its total, a deep page, a filter, a date window, a cursor step, a single row, a series),
# so that the whole section fits in about ten minutes at 1M uploads.
POOLING_ROWS = (
    "/api/v1/stats",
    "/api/v1/sessions/recent",
    "/api/v1/uploads",
    "/api/v1/uploads?page=100&pageSize=100",
    "/api/v1/uploads?status=failed",
    "/api/v1/uploads?from=…&to=… (7 days)",
    f"/api/v1/uploads?cursor=…&pageSize=100 (after {CURSOR_DEPTH:,} rows)",
    "/api/v1/uploads/{id}",
    "/api/v1/keys/current",
    "/api/v1/stats/series (30 days, Europe/Berlin)",
)
POOLING_ENDPOINTS = [{e.label: e for e in ENDPOINTS}[label] for label in POOLING_ROWS]
POOLING_CONFIGURATIONS = ("prepared", "unprepared", "via PgBouncer")
# To try a change quickly, BENCH_ONLY=<regex> measures only the rows whose label it finds,
# without the other sections (printed, the saved run kept); BENCH_EXPORTS_ONLY=1 and
# BENCH_POOLING_ONLY=1 measure only that section (both: both), which replaces the saved
# run's (run.keep_sections).
ONLY_SECTIONS = [s for s in ("exports", "pooling") if os.environ.get(f"BENCH_{s.upper()}_ONLY")]
PARTIAL = bool(ONLY_SECTIONS or os.environ.get("BENCH_ONLY"))
if ONLY_SECTIONS:
    ENDPOINTS = []
elif PARTIAL:
    ENDPOINTS = [e for e in ENDPOINTS if re.search(os.environ["BENCH_ONLY"], e.label)]
MEASURE_EXPORTS = "exports" in ONLY_SECTIONS or not PARTIAL
MEASURE_POOLING = "pooling" in ONLY_SECTIONS or not PARTIAL


def request_path(endpoint, world, caller):
    """The path a row requests for a caller: its label unless it builds one from the world."""
    return endpoint.path(world, caller) if endpoint.path else endpoint.label


def run_date():
    """Now, as results.md and the plans file write it."""
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
