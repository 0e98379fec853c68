"""The list queries' two ways of finding a page (sql/sessions.sql, sql/uploads.sql).

A scope's page is found either by walking each of its projects' newest rows or by one
walk over every project's rows newest first; the query picks whichever reads fewer index
entries. Both must give exactly the same pages: this pins which way a call takes, and
that walking every page either way yields every row once, in SPEC order.
"""

import re
from datetime import timedelta

import pytest
from psycopg import ClientCursor

from auth import hash_api_key
from queries import SQL_DIR, parse_queries
from tests.builders import NOW
from tests.conftest import make_token

SIZES = {"big-a": 30, "big-b": 30, "small": 5, "foreign": 40}
LISTS = {
    "uploads": ("uploads.sql", "list_uploads", "uploads_recent_idx", "uploads_project_recent_idx"),
    "sessions": (
        "sessions.sql",
        "list_sessions",
        "upload_sessions_recent_idx",
        "upload_sessions_project_recent_idx",
    ),
}


@pytest.fixture
def tenancy(world, db):
    """A user owning three projects (30, 30 and 5 sessions with an upload each, interleaved
    in time) beside a stranger's project of 40; planner statistics up to date."""
    owner, stranger = world.user("Owner"), world.user("Stranger")
    projects = {
        label: world.project(stranger if label == "foreign" else owner, label) for label in SIZES
    }
    keys = {label: world.api_key(projects[label]) for label in ("big-a", "small")}
    uploads, sessions = [], []
    for label, count in SIZES.items():
        for i in range(count):
            created = NOW - timedelta(minutes=i * len(SIZES) + list(SIZES).index(label))
            session = world.session(projects[label], created_at=created)
            sessions.append((created, session, label))
            uploads.append((created, world.upload(session, ["sent"], created_at=created), label))
    world.load()
    db.execute("ANALYZE")
    return {"owner": owner, "keys": keys, "uploads": uploads, "sessions": sessions}


def expected_ids(rows, labels):
    """Ids of the rows in these projects, newest first (createdAt, then id, descending)."""
    chosen = [(created, id) for created, id, label in rows if label in labels]
    return [id for _, id in sorted(chosen, reverse=True)]


def generic_plan(db, query, params):
    """EXPLAIN ANALYZE of the statement as the API runs it: prepared once, with a generic
    plan (the API's connections force those), executed with these values."""
    names = sorted(query.params)
    prepared = re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m.group(1)) + 1}", query.sql)
    values = ClientCursor(db).mogrify(", ".join(["%s"] * len(names)), [params[n] for n in names])
    # Tables this small would be read whole; with scans by index only, each walk reads
    # only (created_at, id, project_id) and so shows as an index-only scan of its index.
    db.execute("SET enable_seqscan = off")
    db.execute("SET enable_bitmapscan = off")
    db.execute("SET plan_cache_mode = force_generic_plan")
    db.execute(f"PREPARE walk AS {prepared}")
    try:
        rows = db.execute(f"EXPLAIN ANALYZE EXECUTE walk({values})")
        return "\n".join(row["QUERY PLAN"] for row in rows)
    finally:
        db.execute("DEALLOCATE walk")
        db.execute("RESET ALL")


def walk_used(db, kind, user_id, key_hash, limit, offset):
    """Which index the page query really walked: 'global' or 'per_project'."""
    filename, name, global_index, project_index = LISTS[kind]
    query = parse_queries((SQL_DIR / filename).read_text())[name]
    unfiltered = dict.fromkeys(query.params) | {"with_total": True}
    params = unfiltered | {
        "user_id": user_id,
        "key_hash": key_hash,
        "limit": limit,
        "offset": offset,
    }
    plan = generic_plan(db, query, params)
    walked = {
        index
        for index in (global_index, project_index)
        if re.search(rf"Index Only Scan using {index} .*\(actual time", plan)
    }
    assert len(walked) == 1, plan
    return "global" if walked == {global_index} else "per_project"


@pytest.mark.parametrize("kind", LISTS)
def test_the_cheaper_walk_is_chosen(tenancy, db, kind):
    """Three projects with 65 of 105 rows: the newest 10 are found faster in the global
    walk (10 x 105/65 = 16 entries, not 10 + 10 + 5); 60 deep, per project (65 entries,
    not 97). One project always walks its own index."""
    owner = tenancy["owner"]
    assert walk_used(db, kind, owner, None, 10, 0) == "global"
    assert walk_used(db, kind, owner, None, 10, 50) == "per_project"
    key = hash_api_key(tenancy["keys"]["big-a"])
    assert walk_used(db, kind, None, key, 10, 0) == "per_project"


@pytest.mark.parametrize("kind", LISTS)
@pytest.mark.parametrize("page_size", [1, 7, 10, 64, 100])
def test_every_page_either_way_lists_each_row_once_in_order(tenancy, get, kind, page_size):
    callers = {
        "owner": (make_token(tenancy["owner"]), {"big-a", "big-b", "small"}),
        "key": (tenancy["keys"]["big-a"], {"big-a"}),
        "small key": (tenancy["keys"]["small"], {"small"}),
    }
    for credential, labels in callers.values():
        expected = expected_ids(tenancy[kind], labels)
        walked, page = [], 1
        while True:
            body = get(f"/api/v1/{kind}?page={page}&pageSize={page_size}", credential).get_json()
            assert body["total"] == len(expected)
            if not body["data"]:
                break
            walked += [row["id"] for row in body["data"]]
            page += 1
        assert walked == expected
        assert page - 1 == body["totalPages"]
        recent = get(f"/api/v1/{kind}/recent?limit={min(page_size, 50)}", credential).get_json()
        assert [row["id"] for row in recent] == expected[: min(page_size, 50)]
