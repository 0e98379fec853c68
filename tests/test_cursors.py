"""Cursor walks over /sessions and /uploads, checked against the model of
tests/test_filters.py: every row once, in order, at any page size, with the walk's filters,
refusing cursors that were altered or belong to another list or caller, and stable while
rows are inserted."""

import json
import math
import random
import string
import uuid
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from itsdangerous import URLSafeSerializer

from fixture import load_fixture
from tests.builders import World
from tests.conftest import ensure_loaded, make_token, ordered
from tests.test_filters import SOURCES, Model, grow, moment

UTC = UTC
RESOURCES = ["sessions", "uploads"]
PAGE_FIELDS = ["data", "total", "page", "pageSize", "totalPages"]
T0 = datetime(2026, 4, 11, 17, 45, 3, 987654, tzinfo=UTC)
# One moment shared by a block of sessions and uploads in every project.
TIE = T0 - timedelta(hours=2, seconds=30, microseconds=777)
URLSAFE = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def build_tenant():
    """Ada owns alpha and beta and is a member of Bob's gamma; Bob also owns delta (its
    rows interleaved with Ada's); Eve's eps is newest of all. A block of 12 sessions and
    15 uploads share one createdAt across all four projects. Ada sees more than 100
    uploads, so the largest page is not the whole list."""
    w = World()
    ada, bob, eve, nobody = (w.user(n) for n in ("Ada", "Bob", "Eve", "Nobody"))
    alpha, beta = w.project(ada, "Alpha"), w.project(ada, "Beta")
    gamma, delta = w.project(bob, "Gamma"), w.project(bob, "Delta")
    eps = w.project(eve, "Eps")
    w.member(gamma, ada)
    keys = {
        "alpha": w.api_key(alpha),
        "alpha again": w.api_key(alpha, name="second"),
        "delta": w.api_key(delta),
    }
    rng = random.Random(62)
    grow(w, rng, [alpha, beta, gamma, alpha], 48, [2, 3, 4, 2, 3], T0)
    grow(w, rng, [delta], 14, [2, 3], T0 + timedelta(minutes=2))
    grow(w, rng, [eps], 6, [2], T0 + timedelta(days=1))
    tied = [
        w.session(
            [alpha, beta, gamma, delta][i % 4],
            created_at=TIE,
            status=["active", "completed"][i % 2],
            tags=["tied"],
            destinations=("webhook", "s3"),
        )
        for i in range(12)
    ]
    for i in range(15):
        w.upload(
            tied[i % 12],
            [["sent"], ["failed", "sent"], []][i % 3],
            created_at=TIE,
            source=SOURCES[i % 3],
        )
    t = SimpleNamespace(
        doc=w.doc,
        user=ada,
        model=Model(w.doc),
        projects={"alpha": alpha, "beta": beta, "gamma": gamma, "delta": delta, "eps": eps},
    )
    t.callers = {
        "ada": (make_token(ada), {alpha, beta, gamma}),
        "bob": (make_token(bob), {gamma, delta}),
        "key of alpha": (keys["alpha"], {alpha}),
        "second key of alpha": (keys["alpha again"], {alpha}),
        "key of delta": (keys["delta"], {delta}),
        "nobody": (make_token(nobody), set()),
    }
    t.ada_id = ada
    return t


TENANT = build_tenant()
P = TENANT.projects


@pytest.fixture
def tenant(database_url):
    """The module's read-only world, loaded once (see conftest.ensure_loaded)."""
    ensure_loaded(database_url, TENANT.doc, TENANT.user)
    return TENANT


@pytest.fixture
def client(app):
    """The test client without conftest's per-test emptying (tests that write use `world`,
    which empties the tables itself)."""
    return app.test_client()


def credential_of(caller):
    return TENANT.callers[caller][0]


def expected(resource, caller, query=None):
    return TENANT.model.rows(resource, TENANT.callers[caller][1], query)


def step(get, resource, credential, cursor, query=()):
    """One cursor request; returns its body, checked to be exactly {data, nextCursor}."""
    pairs = list(query.items()) if isinstance(query, dict) else list(query)
    response = get(f"/api/v1/{resource}", credential, query_string=[("cursor", cursor)] + pairs)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert list(body) == ["data", "nextCursor"]
    assert body["nextCursor"] is None or (
        isinstance(body["nextCursor"], str) and body["nextCursor"]
    )
    return body


def walk(get, resource, credential, query=None, page_size=None, later=None):
    """Every page of a cursor walk. `query` (filters) goes with the first request; later
    requests send `later` instead (default: nothing but the cursor)."""
    size = [("pageSize", str(page_size))] if page_size else []
    pages = [step(get, resource, credential, "", list((query or {}).items()) + size)]
    while pages[-1]["nextCursor"] is not None:
        assert len(pages) < 500
        pages.append(
            step(
                get,
                resource,
                credential,
                pages[-1]["nextCursor"],
                list((later or {}).items()) + size,
            )
        )
    return pages


def assert_pages(pages, rows, page_size):
    """The pages are the model's rows in order, each full but the last, which is not
    empty (unless nothing matches), and only the last has a null nextCursor."""
    assert [row for page in pages for row in page["data"]] == rows
    assert ordered([row for page in pages for row in page["data"]]) == ordered(rows)
    assert [len(page["data"]) for page in pages] == (
        [page_size] * (len(rows) // page_size)
        + ([len(rows) % page_size] if len(rows) % page_size else [])
        or [0]
    )
    assert [page["nextCursor"] is None for page in pages] == [False] * (len(pages) - 1) + [True]


def assert_error(response, status, code, name=None):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert list(body)[:2] == ["error", "message"] and set(body) <= {
        "error",
        "message",
        "requestId",
    }, body
    assert body["error"] == code
    if name is not None:
        assert f"'{name}'" in body["message"], body


def first_cursor(get, resource, caller, query=(), page_size=5):
    body = step(
        get,
        resource,
        credential_of(caller),
        "",
        list(dict(query).items()) + [("pageSize", str(page_size))],
    )
    assert body["nextCursor"]
    return body["nextCursor"]


# --- walks --------------------------------------------------------------------------------


def test_the_scenario_discriminates():
    """Ada's uploads exceed the largest page; ties span page boundaries; and Bob's delta,
    outside Ada's scope, has rows among hers (also in the tied block)."""
    ada_uploads = expected("uploads", "ada")
    assert len(ada_uploads) > 100 and len(expected("sessions", "ada")) > 40
    for resource in RESOURCES:
        times = [row["createdAt"] for row in expected(resource, "ada")]
        assert len(times) - len(set(times)) >= 10
        assert any(
            row["projectId"] == P["delta"]
            for row in expected(resource, "bob")
            if row["createdAt"] < times[0]
        )
    tied_sessions = expected(
        "sessions",
        "bob",
        {"from": TIE.isoformat(), "to": (TIE + timedelta(microseconds=1)).isoformat()},
    )
    assert {row["projectId"] for row in tied_sessions} == {P["gamma"], P["delta"]}


@pytest.mark.parametrize("resource", RESOURCES)
def test_an_empty_cursor_starts_a_walk(tenant, get, resource):
    """`cursor=` answers exactly {data, nextCursor}: the first 20 rows (the default page
    size) and an opaque string; nothing of the page wrapper."""
    response = get(f"/api/v1/{resource}?cursor=", credential_of("ada"))
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["data", "nextCursor"]
    assert ordered(body["data"]) == ordered(expected(resource, "ada")[:20])
    assert isinstance(body["nextCursor"], str) and len(body["nextCursor"]) > 20
    # Opaque: no id, timestamp or filter readable in it.
    assert body["data"][-1]["id"] not in body["nextCursor"]
    assert "2026" not in body["nextCursor"]


@pytest.mark.parametrize("page_size", [3, 7, None, 1000], ids=["3", "7", "default", "1000"])
@pytest.mark.parametrize("caller", ["ada", "bob", "key of alpha"])
@pytest.mark.parametrize("resource", RESOURCES)
def test_walking_every_page_gives_the_whole_list_once_in_order(
    tenant, get, resource, caller, page_size
):
    """For a user with several projects and for an API key, at every page size (1000 is
    clamped to 100), the pages together are exactly the model's list."""
    pages = walk(get, resource, credential_of(caller), page_size=page_size)
    assert_pages(pages, expected(resource, caller), min(page_size or 20, 100))


def test_page_size_is_clamped_to_100(tenant, get):
    """pageSize above 100 gives 100 rows, as in page mode; a bad pageSize is the same 400."""
    rows = expected("uploads", "ada")
    for size in ("101", "1000", "99999999999999999999"):
        body = step(get, "uploads", credential_of("ada"), "", {"pageSize": size})
        assert body["data"] == rows[:100]
        assert body["nextCursor"] is not None
    for resource in RESOURCES:
        for size in ("0", "-1", "abc", "1.5"):
            response = get(
                f"/api/v1/{resource}",
                credential_of("ada"),
                query_string={"cursor": "", "pageSize": size},
            )
            assert_error(response, 400, "invalid_parameter", "pageSize")


@pytest.mark.parametrize("resource", RESOURCES)
def test_tied_rows_are_ordered_by_id_and_none_is_lost_between_pages(tenant, get, resource):
    """Rows sharing one createdAt come by id descending, and walking them one, two, ...
    at a time loses or repeats none, although every cursor holds the same createdAt."""
    window = {"from": TIE.isoformat(), "to": (TIE + timedelta(microseconds=1)).isoformat()}
    for caller in ("ada", "bob"):
        rows = expected(resource, caller, window)
        assert len(rows) >= 6 and len({row["createdAt"] for row in rows}) == 1
        assert [row["id"] for row in rows] == sorted((row["id"] for row in rows), reverse=True)
        for page_size in (1, 2, 3, 4, 5):
            pages = walk(get, resource, credential_of(caller), window, page_size)
            assert_pages(pages, rows, page_size)


@pytest.mark.parametrize("resource", RESOURCES)
def test_an_exactly_full_last_page_has_a_null_cursor(tenant, get, resource):
    """When the rows end exactly at a page's end, that page says nextCursor null (no
    empty page follows); one row fewer than a page, or one more, also ends right."""
    window = {"from": TIE.isoformat(), "to": (TIE + timedelta(microseconds=1)).isoformat()}
    rows = expected(resource, "ada", window)
    n = len(rows)
    assert n % 3 == 0
    for page_size, lengths in [(n, [n]), (n // 3, [n // 3] * 3), (n + 1, [n]), (n - 1, [n - 1, 1])]:
        pages = walk(get, resource, credential_of("ada"), window, page_size)
        assert [len(page["data"]) for page in pages] == lengths
        assert pages[-1]["nextCursor"] is None
        assert [row for page in pages for row in page["data"]] == rows
    # A key's whole list on one page of exactly its length.
    rows = expected(resource, "key of alpha")
    assert len(rows) <= 100
    [page] = walk(get, resource, credential_of("key of alpha"), page_size=len(rows))
    assert page == {"data": rows, "nextCursor": None}


@pytest.mark.parametrize("resource", RESOURCES)
def test_nothing_to_walk_is_one_empty_page(tenant, get, resource):
    """A caller with no projects, or filters matching nothing: {data: [], nextCursor: null}."""
    assert step(get, resource, credential_of("nobody"), "") == {"data": [], "nextCursor": None}
    nothing = {"from": (T0 + timedelta(days=400)).isoformat()}
    assert step(get, resource, credential_of("ada"), "", nothing) == {
        "data": [],
        "nextCursor": None,
    }


@pytest.mark.parametrize("resource", RESOURCES)
def test_the_page_size_may_change_during_a_walk(tenant, get, resource):
    """The cursor holds a position, not a page: sizes 1, 6, 13, ... in turn still give
    every row once."""
    credential, rows = credential_of("ada"), expected(resource, "ada")
    sizes = [1, 6, 13, 2, 40]
    body = step(get, resource, credential, "", {"pageSize": 1})
    walked, n = body["data"], 0
    while body["nextCursor"]:
        n += 1
        body = step(
            get, resource, credential, body["nextCursor"], {"pageSize": sizes[n % len(sizes)]}
        )
        assert len(body["data"]) == min(sizes[n % len(sizes)], len(rows) - len(walked))
        walked += body["data"]
    assert walked == rows


@pytest.mark.parametrize("resource", RESOURCES)
def test_page_is_ignored_in_cursor_mode(tenant, get, resource):
    """page=N beside a cursor changes nothing, even a page far past the end."""
    credential = credential_of("ada")
    rows = expected(resource, "ada")
    for page in ("1", "3", "2147483647"):
        first = step(get, resource, credential, "", {"page": page, "pageSize": 8})
        assert first["data"] == rows[:8]
        second = step(get, resource, credential, first["nextCursor"], {"page": page, "pageSize": 8})
        assert second["data"] == rows[8:16]


@pytest.mark.parametrize("resource", RESOURCES)
def test_page_mode_is_unchanged(tenant, get, resource):
    """Without the cursor parameter the answer is still the SPEC's page wrapper."""
    rows = expected(resource, "ada")
    response = get(f"/api/v1/{resource}?page=2&pageSize=7", credential_of("ada"))
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == PAGE_FIELDS
    assert ordered(body) == ordered(
        {
            "data": rows[7:14],
            "total": len(rows),
            "page": 2,
            "pageSize": 7,
            "totalPages": math.ceil(len(rows) / 7),
        }
    )


# --- walks with filters ---------------------------------------------------------------------

WALK_FILTERS = {
    "sessions": [
        {"status": "expired,active"},
        {"projectId": P["alpha"], "tag": "wedding"},
        {"projectId": P["gamma"].upper(), "status": "completed,failed,pending"},
        {
            "from": (T0 - timedelta(hours=4)).isoformat(),
            "to": (T0 - timedelta(hours=1)).astimezone(timezone(timedelta(hours=3))).isoformat(),
        },
    ],
    "uploads": [
        {"status": "partial,failed,pending"},
        {"source": "camera,url,dropbox,box", "destinationType": "webhook,s3"},
        {
            "projectId": P["beta"],
            "status": "delivered,stored_only",
            "source": "camera,gallery,url,box,dropbox",
        },
        {
            "from": (T0 - timedelta(hours=5)).isoformat(),
            "to": TIE.isoformat(),
            "destinationType": "webhook",
        },
    ],
}


def reordered(query):
    """The same filters with every comma list in another order."""
    return {
        name: ",".join(reversed(value.split(",")))
        if name in ("status", "source", "destinationType")
        else value
        for name, value in query.items()
    }


@pytest.mark.parametrize("later", ["omitted", "repeated", "reordered"])
@pytest.mark.parametrize("case", range(4))
@pytest.mark.parametrize("resource", RESOURCES)
def test_a_filtered_walk_keeps_its_filters(tenant, get, resource, case, later):
    """Filters given with `cursor=` belong to the walk: later requests may leave them out,
    repeat them, or repeat them with comma lists in another order; the pages are exactly
    the filtered model list."""
    query = WALK_FILTERS[resource][case]
    rows = expected(resource, "ada", query)
    assert 4 < len(rows) < len(expected(resource, "ada"))
    repeat = {"omitted": None, "repeated": query, "reordered": reordered(query)}[later]
    pages = walk(get, resource, credential_of("ada"), query, 4, repeat)
    assert_pages(pages, rows, 4)


@pytest.mark.parametrize("resource", RESOURCES)
def test_an_api_key_walks_its_filtered_project(tenant, get, resource):
    """An API key's filtered walk (with its own projectId) is its filtered model list;
    another project's id is 404 in cursor mode too."""
    query = (
        {"projectId": P["alpha"], "status": "active,expired"}
        if resource == "sessions"
        else {"projectId": P["alpha"], "status": "partial,delivered,pending"}
    )
    rows = expected(resource, "key of alpha", query)
    assert len(rows) > 3
    assert_pages(walk(get, resource, credential_of("key of alpha"), query, 3), rows, 3)
    for project in (P["beta"], P["delta"]):
        response = get(
            f"/api/v1/{resource}",
            credential_of("key of alpha"),
            query_string={"cursor": "", "projectId": project},
        )
        assert_error(response, 404, "not_found")


@pytest.mark.parametrize("resource", RESOURCES)
def test_a_cursor_with_other_filters_is_400(tenant, get, resource):
    """Filters beside a cursor that differ from the walk's (another value, one more, one
    fewer, a filter on an unfiltered walk) are invalid_parameter naming 'cursor'."""
    if resource == "sessions":
        query = {"status": "active,expired", "tag": "wedding"}
        others = [
            {"status": "active"},
            {"status": "active,expired,failed", "tag": "wedding"},
            {"status": "active,expired"},
            {"tag": "wedding"},
            {"status": "active,expired", "tag": "Wedding"},
            {"status": "active,expired", "tag": "wedding", "projectId": P["alpha"]},
            {"status": "active,expired", "tag": "wedding", "from": "2020-01-01T00:00:00Z"},
        ]
    else:
        query = {"source": "camera,url", "destinationType": "webhook"}
        others = [
            {"source": "camera"},
            {"source": "camera,url"},
            {"source": "camera,url", "destinationType": "webhook,s3"},
            {"source": "camera,url", "destinationType": "webhook", "status": "failed"},
            {"source": "camera,url", "destinationType": "webhook", "to": "2030-01-01T00:00:00Z"},
        ]
    filtered = first_cursor(get, resource, "ada", query)
    for other in others:
        response = get(
            f"/api/v1/{resource}", credential_of("ada"), query_string={"cursor": filtered, **other}
        )
        assert_error(response, 400, "invalid_parameter", "cursor")
    plain = first_cursor(get, resource, "ada")
    for other in others + [query, {"projectId": P["alpha"]}]:
        response = get(
            f"/api/v1/{resource}", credential_of("ada"), query_string={"cursor": plain, **other}
        )
        assert_error(response, 400, "invalid_parameter", "cursor")
    # The same filters, or none, or empty values, go on.
    for same in (query, reordered(query), {}, dict.fromkeys(query, "")):
        response = get(
            f"/api/v1/{resource}", credential_of("ada"), query_string={"cursor": filtered, **same}
        )
        assert response.status_code == 200


@pytest.mark.parametrize("resource", RESOURCES)
def test_invalid_filters_beside_an_empty_cursor_are_400_naming_them(tenant, get, resource):
    """A walk cannot start with an invalid filter: the filter is named, not the cursor."""
    bad = [("status", "bogus"), ("projectId", "nope"), ("from", "2026-01-01")]
    bad += [("source", "fax")] if resource == "uploads" else [("tag", "a\x00")]
    for name, value in bad:
        response = get(
            f"/api/v1/{resource}", credential_of("ada"), query_string={"cursor": "", name: value}
        )
        assert_error(response, 400, "invalid_parameter", name)


# --- cursors that are not this walk's ------------------------------------------------------


def forged(resource, caller_kind, who, payload):
    """A cursor signed with another secret under the salt the service would use."""
    return URLSafeSerializer(
        "not-the-cursor-secret", salt=f"apertur.cursor.{resource}.{caller_kind}.{who}"
    ).dumps(payload)


@pytest.mark.parametrize("resource", RESOURCES)
def test_foreign_cursors_are_400(tenant, get, resource):
    """Random strings, a cursor signed with another secret, one from the other list, one
    obtained by another user, by an API key for a JWT of the key's own project's owner
    and back, and by another key of the same project: all invalid_parameter naming
    'cursor'."""
    other = "uploads" if resource == "sessions" else "sessions"
    rows = expected(resource, "ada")
    payload = {"at": moment(rows[4]["createdAt"]).isoformat(), "id": rows[4]["id"], "filters": {}}
    refused = [
        ("ada", "x"),
        ("ada", "0"),
        ("ada", "null"),
        ("ada", "." * 40),
        ("ada", "a" * 300),
        ("ada", json.dumps(payload)),
        ("ada", forged(resource, "user", TENANT.ada_id, payload)),
        ("ada", first_cursor(get, other, "ada")),
        ("ada", first_cursor(get, resource, "bob")),
        ("bob", first_cursor(get, resource, "ada")),
        ("ada", first_cursor(get, resource, "key of alpha")),
        ("key of alpha", first_cursor(get, resource, "ada")),
        ("second key of alpha", first_cursor(get, resource, "key of alpha")),
        ("key of alpha", first_cursor(get, resource, "key of delta")),
        ("key of alpha", first_cursor(get, other, "key of alpha")),
    ]
    for caller, cursor in refused:
        response = get(
            f"/api/v1/{resource}", credential_of(caller), query_string={"cursor": cursor}
        )
        assert_error(response, 400, "invalid_parameter", "cursor")
        if len(cursor) > 20:
            assert cursor not in response.get_data(as_text=True)
    # The same user with a newly issued token is the same caller: the walk goes on.
    cursor = first_cursor(get, resource, "ada", page_size=5)
    body = step(get, resource, make_token(TENANT.ada_id, expires_in=7200), cursor, {"pageSize": 5})
    assert body["data"] == rows[5:10]


def one_changed(cursor, index):
    """The cursor with the character at `index` replaced by one whose 6 bits differ in
    the highest one (so the decoded bytes always change), or a letter for a dot."""
    char = cursor[index]
    if char not in URLSAFE:
        return cursor[:index] + "A" + cursor[index + 1 :]
    return cursor[:index] + URLSAFE[URLSAFE.index(char) ^ 32] + cursor[index + 1 :]


@pytest.mark.parametrize("resource", RESOURCES)
def test_a_cursor_with_any_character_changed_is_refused(tenant, get, resource):
    """Changing any one character of a cursor (position by position, payload and
    signature alike), or cutting it short or lengthening it, gives 400 naming 'cursor'."""
    query = {"status": "active,expired"} if resource == "sessions" else {"source": "camera"}
    cursor = first_cursor(get, resource, "ada", query)
    credential = credential_of("ada")
    variants = [one_changed(cursor, i) for i in range(len(cursor))]
    variants += [cursor[:-1], cursor[1:], cursor + "A", cursor + cursor, cursor.upper()]
    for variant in variants:
        assert variant != cursor
        response = get(f"/api/v1/{resource}", credential, query_string={"cursor": variant})
        assert_error(response, 400, "invalid_parameter", "cursor")
    # The unaltered cursor still goes on.
    assert (
        get(f"/api/v1/{resource}", credential, query_string={"cursor": cursor}).status_code == 200
    )


@pytest.mark.parametrize("resource", RESOURCES)
def test_a_cursor_with_its_last_character_changed_is_refused(tenant, get, resource):
    """Every other character in the last position is refused too. (Base64 leaves bits
    unused in a signature's last character; a decoder that ignores them would accept
    a changed cursor.)"""
    cursor = first_cursor(get, resource, "ada")
    accepted = []
    for char in URLSAFE:
        if char != cursor[-1]:
            variant = cursor[:-1] + char
            response = get(
                f"/api/v1/{resource}", credential_of("ada"), query_string={"cursor": variant}
            )
            if response.status_code != 400:
                accepted.append((variant[-1], response.status_code))
    assert accepted == [], f"cursor ending {cursor[-1]!r} also accepted ending with {accepted}"


@pytest.mark.parametrize("resource", RESOURCES)
def test_a_cursor_given_twice_is_400(tenant, get, resource):
    """Two cursor parameters (even both empty) are invalid_parameter naming 'cursor'."""
    cursor = first_cursor(get, resource, "ada")
    for pairs in (
        [("cursor", ""), ("cursor", "")],
        [("cursor", cursor), ("cursor", cursor)],
        [("cursor", ""), ("cursor", cursor)],
    ):
        response = get(f"/api/v1/{resource}", credential_of("ada"), query_string=pairs)
        assert_error(response, 400, "invalid_parameter", "cursor")


@pytest.mark.parametrize("credential", ["none", "garbage", "unknown user", "unknown key"])
@pytest.mark.parametrize("resource", RESOURCES)
def test_a_bad_credential_is_401_before_a_bad_cursor(tenant, get, resource, credential):
    """401 comes before 400 (SPEC §4): a credential that is missing, malformed, a valid
    token of a user who does not exist, or a key that does not exist, with a garbage
    cursor, another caller's cursor, a cursor beside other filters, or two cursors."""
    cursor = first_cursor(get, resource, "ada", {"status": "failed"})
    credential = {
        "none": None,
        "garbage": "garbage",
        "unknown user": make_token(str(uuid.uuid4())),
        "unknown key": "aptr_" + "0" * 64,
    }[credential]
    queries = {
        "garbage cursor": {"cursor": "garbage"},
        "foreign cursor": {"cursor": cursor},
        "other filters": {"cursor": cursor, "status": "pending"},
        "two cursors": [("cursor", ""), ("cursor", "")],
    }
    answers = {}
    for name, query in queries.items():
        response = get(f"/api/v1/{resource}", credential, query_string=query)
        answers[name] = response.status_code
        if response.status_code == 401:
            assert_error(response, 401, "unauthorized")
            assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert answers == dict.fromkeys(queries, 401)


def test_a_walk_stops_at_401_once_its_credential_is_gone(world, db, get):
    """A key revoked, or a user deleted, during a walk: its next cursor request is 401,
    with or without other filters beside it (never a page, never a 400)."""
    owner = world.user("Owner")
    project = world.project(owner, "One")
    key = world.api_key(project)
    for n in range(5):
        world.session(project, created_at=T0 - timedelta(minutes=n))
    world.load()
    cursors = {
        credential: step(get, "sessions", credential, "", {"pageSize": 2})["nextCursor"]
        for credential in (key, make_token(owner))
    }
    db.execute("UPDATE api_keys SET revoked_at = now() - interval '1 second'")
    db.execute("DELETE FROM members")
    db.execute("DELETE FROM upload_sessions")
    db.execute("DELETE FROM projects")
    db.execute("DELETE FROM users")
    for credential, cursor in cursors.items():
        for query in ({"cursor": cursor}, {"cursor": cursor, "status": "active"}):
            response = get("/api/v1/sessions", credential, query_string=query)
            assert_error(response, 401, "unauthorized")


# --- rows inserted during a walk -------------------------------------------------------------


def insert_by_sql(db, doc, project_of_session):
    """Write a document's sessions and uploads with plain INSERTs (no loader)."""
    for s in doc["sessions"]:
        db.execute(
            "INSERT INTO upload_sessions (id, project_id, created_at, expires_at, status,"
            " tags, long_polling_enabled) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                s["id"],
                s["projectId"],
                s["createdAt"],
                s["expiresAt"],
                s["status"],
                s["tags"],
                s["longPollingEnabled"],
            ],
        )
        for d in s["destinations"]:
            db.execute(
                "INSERT INTO destinations (id, session_id, type) VALUES (%s, %s, %s)",
                [d["id"], s["id"], d["type"]],
            )
    for u in doc["uploads"]:
        project = project_of_session[u["sessionId"]]
        db.execute(
            "INSERT INTO uploads (id, session_id, project_id, filename, size_bytes,"
            " mime_type, source, is_encrypted, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                u["id"],
                u["sessionId"],
                project,
                u["filename"],
                u["sizeBytes"],
                u["mimeType"],
                u["source"],
                u["isEncrypted"],
                u["createdAt"],
            ],
        )
        for d in u["deliveries"]:
            db.execute(
                "INSERT INTO deliveries (upload_id, destination_id, session_id,"
                " project_id, status) VALUES (%s, %s, %s, %s, %s)",
                [u["id"], d["destinationId"], u["sessionId"], project, d["status"]],
            )


def add_rows(later, resource, projects, session_of, moments, ids=None, **attrs):
    """Add one session (resource 'sessions') or upload per moment to the document `later`."""
    for n, at in enumerate(moments):
        id = ids[n] if ids else None
        if resource == "sessions":
            later.session(
                projects[n % len(projects)],
                created_at=at,
                id=id,
                status=attrs.get("status", ["active", "completed"][n % 2]),
            )
        else:
            later.upload(
                session_of(n),
                ["sent"],
                created_at=at,
                id=id,
                source=attrs.get("source", ["camera", "url"][n % 2]),
            )


@pytest.mark.parametrize("filtered", [False, True], ids=["unfiltered", "filtered"])
@pytest.mark.parametrize("writer", ["loader", "sql"])
@pytest.mark.parametrize("resource", RESOURCES)
def test_rows_inserted_during_a_walk_are_never_skipped_or_repeated(
    world, db, get, resource, writer, filtered
):
    """Midway through a walk (of two projects, with tied createdAt values) rows are
    inserted: newer than everything, inside the range already walked (one with the
    cursor's own createdAt and a higher id), and ahead of the cursor (one with its
    createdAt and a lower id). The walk goes on from its position: every row that existed
    appears once and in order, the rows behind it never appear, those ahead do."""
    owner = world.user("Owner")
    projects = [world.project(owner, "One"), world.project(owner, "Two")]
    key = world.api_key(projects[0])
    sessions = [
        world.session(
            projects[n % 2],
            destinations=("webhook",),
            created_at=T0 - timedelta(hours=10) - timedelta(seconds=n),
        )
        for n in range(4)
    ]
    start = T0 - timedelta(minutes=1)
    for n in range(26):
        at = start - timedelta(minutes=n - n % 3)  # threes share a createdAt
        if resource == "sessions":
            world.session(projects[n % 2], created_at=at, status=["active", "completed"][n % 2])
        else:
            world.upload(sessions[n % 4], ["sent"], created_at=at, source=["camera", "url"][n % 2])
    world.load()
    model = Model(world.doc)
    query = (
        ({"status": "active"} if resource == "sessions" else {"source": "camera"})
        if filtered
        else {}
    )
    scope = set(projects)
    before = model.rows(resource, scope, query)
    assert len(before) >= 13

    credential = make_token(owner)
    pages = [step(get, resource, credential, "", {**query, "pageSize": "4"})]
    pages.append(step(get, resource, credential, pages[-1]["nextCursor"], {"pageSize": "4"}))
    seen = [row for page in pages for row in page["data"]]
    assert seen == before[:8]
    # Exact createdAt values (the answer shows them truncated to milliseconds).
    exact = {entry["id"]: moment(entry["createdAt"]) for entry in world.doc[resource]}
    newest, last_at = exact[seen[0]["id"]], exact[seen[-1]["id"]]
    position = (last_at, seen[-1]["id"])

    later = World()
    if resource == "uploads":  # a session for the new uploads (no row of the walk)
        extra = later.session(
            projects[1], created_at=T0 - timedelta(days=3), destinations=("webhook",)
        )

    def session_of(n):
        return extra

    match = {"status": "active"} if resource == "sessions" else {"source": "camera"}
    add_rows(
        later,
        resource,
        projects,
        session_of,
        [T0 + timedelta(minutes=n) for n in range(1, 4)],
        **match,
    )
    add_rows(
        later,
        resource,
        projects,
        session_of,
        [newest - (newest - last_at) * k / 4 for k in (1, 2, 3)],
        **match,
    )
    add_rows(
        later,
        resource,
        projects,
        session_of,
        [last_at, last_at],
        ids=["ffffffff-ffff-4fff-bfff-ffffffffffff", "00000000-0000-4000-8000-000000000000"],
        **match,
    )
    add_rows(
        later,
        resource,
        projects,
        session_of,
        [last_at - timedelta(seconds=30), last_at - timedelta(minutes=7, seconds=30)],
        **match,
    )
    if writer == "loader":
        load_fixture(db, later.doc)
    else:
        insert_by_sql(
            db,
            later.doc,
            {s["id"]: s["projectId"] for s in world.doc["sessions"] + later.doc["sessions"]},
        )
    model.add(later.doc)
    exact.update({entry["id"]: moment(entry["createdAt"]) for entry in later.doc[resource]})
    after = model.rows(resource, scope, query)
    # The inserts are there for a new walk: newer rows, rows among those walked, rows ahead.
    new_ids = {entry["id"] for entry in later.doc[resource]}
    assert len([row for row in after if row["id"] in new_ids]) == 10
    fresh = walk(get, resource, credential, query, 100)
    assert [row for page in fresh for row in page["data"]] == after

    while pages[-1]["nextCursor"] is not None:
        pages.append(step(get, resource, credential, pages[-1]["nextCursor"], {"pageSize": "4"}))
    walked = [row for page in pages for row in page["data"]]
    assert len({row["id"] for row in walked}) == len(walked)
    ahead = [row for row in after if (exact[row["id"]], row["id"]) < position]
    assert walked == seen + ahead
    assert [row["id"] for row in walked if row["id"] not in new_ids] == [r["id"] for r in before]
    # Of the new rows only those ahead: the lower id at the cursor's createdAt, two older.
    assert sum(row["id"] in new_ids for row in walked) == 3
    # The API key walks the same way over its one project.
    key_rows = model.rows(resource, {projects[0]}, query)
    assert_pages(walk(get, resource, key, query, 3), key_rows, 3)
