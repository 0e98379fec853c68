"""SPEC §4: query parameters, pagination and error precedence on every endpoint."""

import json
import math
import random
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest

import database
from fixture import load_fixture
from tests.builders import NOW, World
from tests.conftest import bearer, empty_tables, make_token

SESSIONS_RECENT = "/api/v1/sessions/recent"
UPLOADS_RECENT = "/api/v1/uploads/recent"
SESSIONS = "/api/v1/sessions"
UPLOADS = "/api/v1/uploads"
STATS = "/api/v1/stats"

RECENT = {SESSIONS_RECENT: "sessions", UPLOADS_RECENT: "uploads"}
PAGED = {SESSIONS: "sessions", UPLOADS: "uploads"}
ENDPOINTS = [SESSIONS_RECENT, UPLOADS_RECENT, SESSIONS, UPLOADS, STATS]
PAGE_KEYS = ["data", "total", "page", "pageSize", "totalPages"]
MAX_PAGE = 2_147_483_647
HUGE = "9" * 5000

# Not a plain base-10 integer of ASCII digits, or below 1.
BAD_NUMBERS = [
    "0",
    "00",
    "-1",
    "-0",
    "+1",
    " 1",
    "1 ",
    "1_0",
    "1.0",
    "1e3",
    "abc",
    "\u0661\u0662",  # Arabic-Indic digits
    "\u00b2",  # superscript two
    "\uff11\uff12",  # full-width digits
    "0x10",
]
# (endpoint, parameter) for every parameter an endpoint reads.
PARAMETERS = [
    (SESSIONS_RECENT, "limit"),
    (UPLOADS_RECENT, "limit"),
    (SESSIONS, "page"),
    (SESSIONS, "pageSize"),
    (UPLOADS, "page"),
    (UPLOADS, "pageSize"),
]


@dataclass
class Scope:
    """A caller's token and the ids it can see, newest first (the SPEC's global order)."""

    user: str
    token: str
    ids: dict


def populate(world, count):
    """One user owning two projects with `count` sessions and `count` uploads, plus a
    stranger's project whose rows are newer than all of them (and must never show)."""
    owner = world.user("Owner")
    projects = [world.project(owner, "Alpha"), world.project(owner, "Beta")]
    stranger_project = world.project(world.user("Stranger"), "Other")
    foreign = world.session(stranger_project, created_at=NOW)
    world.upload(foreign, ["sent"], created_at=NOW)

    # Insertion order is shuffled so only the ORDER BY can produce the expected order.
    minutes = list(range(1, count + 1))
    random.Random(count).shuffle(minutes)
    sessions, uploads = [], []
    for index, minute in enumerate(minutes):
        created = NOW - timedelta(minutes=minute)
        session = world.session(projects[index % 2], created_at=created)
        upload = world.upload(session, ["sent"], created_at=created + timedelta(seconds=10))
        sessions.append((minute, session))
        uploads.append((minute, upload))
    newest_first = {
        "sessions": [i for _, i in sorted(sessions)],
        "uploads": [i for _, i in sorted(uploads)],
    }
    return Scope(owner, make_token(owner), newest_first)


@pytest.fixture(scope="module")
def scopes(database_url):
    """Every caller this module needs, loaded once through the real loader.

    These tests only read, and emptying the tables per test (the `db` fixture) would cost
    more than all of them together, so the module loads its world once and never writes.
    """
    world = World()
    scopes = {"scope": populate(world, 25), "crowd": populate(world, 105)}
    empty = world.user("Empty")
    world.project(empty, "Nothing yet")
    scopes["token"] = make_token(empty)
    with database.connect(database_url, autocommit=True) as conn:
        empty_tables(conn)
        load_fixture(conn, world.doc)
        yield scopes
        empty_tables(conn)


@pytest.fixture(scope="module")
def scope(scopes):
    """25 sessions and 25 uploads in scope."""
    return scopes["scope"]


@pytest.fixture(scope="module")
def crowd(scopes):
    """105 of each: more rows than the largest page, so every clamp shows in the data."""
    return scopes["crowd"]


@pytest.fixture(scope="module")
def token(scopes):
    """A JWT for an existing user whose one project is empty."""
    return scopes["token"]


@pytest.fixture(scope="module")
def client(app, scopes):
    """A test client over the module's world (the conftest one would empty it)."""
    return app.test_client()


@pytest.fixture(scope="module")
def get(client):
    """GET a path with a bearer credential, like the conftest fixture, without emptying tables."""

    def call(path, credential=None, **kwargs):
        return client.get(path, headers=bearer(credential) if credential else {}, **kwargs)

    return call


def ids(rows):
    return [row["id"] for row in rows]


def ok_json(response):
    assert response.status_code == 200, response.data
    assert response.mimetype == "application/json"
    return json.loads(response.data)


def assert_error(response, status, code):
    """The one error envelope: {"error", "message"[, "requestId"]} as JSON, never HTML."""
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json"
    assert b"<html" not in response.data.lower()
    body = json.loads(response.data)
    assert list(body)[:2] == ["error", "message"]
    assert list(body)[2:] in ([], ["requestId"])
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"].strip()
    return body


# --- limit -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", RECENT)
@pytest.mark.parametrize(
    "query, expected",
    [
        ({}, 10),
        ({"limit": ""}, 10),
        ({"limit": "1"}, 1),
        ({"limit": "49"}, 49),
        ({"limit": "50"}, 50),
        ({"limit": "51"}, 50),
        ({"limit": "1000"}, 50),
        ({"limit": HUGE}, 50),
        ({"limit": "1" + "0" * 4999}, 50),
        ({"limit": "007"}, 7),
        ({"limit": "0" * 5000 + "7"}, 7),
    ],
    ids=[
        "absent",
        "empty",
        "1",
        "49",
        "50",
        "51",
        "1000",
        "5000-nines",
        "10^4999",
        "007",
        "5000-zeros-then-7",
    ],
)
def test_limit_returns_that_many_newest_rows(crowd, get, path, query, expected):
    """limit defaults to 10, is exact up to 50 and clamped to 50 above, whatever its size."""
    rows = ok_json(get(path, crowd.token, query_string=query))
    assert ids(rows) == crowd.ids[RECENT[path]][:expected]


@pytest.mark.parametrize("path", RECENT)
def test_limit_above_what_exists_returns_everything(scope, get, path):
    """A limit larger than the scope returns every row in scope, newest first."""
    rows = ok_json(get(path, scope.token, query_string={"limit": "50"}))
    assert ids(rows) == scope.ids[RECENT[path]]


# --- page and pageSize -------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize("query", [{}, {"page": "", "pageSize": ""}], ids=["absent", "empty"])
def test_page_defaults_are_reported_in_the_body(scope, get, path, query):
    """Without page/pageSize (or with empty values) the first 20 rows come back as page 1."""
    body = ok_json(get(path, scope.token, query_string=query))
    assert list(body) == PAGE_KEYS
    assert body == {"data": body["data"], "total": 25, "page": 1, "pageSize": 20, "totalPages": 2}
    assert ids(body["data"]) == scope.ids[PAGED[path]][:20]


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize("page_size", ["101", "1000", str(10**30), HUGE])
def test_page_size_above_100_is_clamped_and_reported(crowd, get, path, page_size):
    """pageSize above 100 serves (and reports) 100 rows per page."""
    body = ok_json(get(path, crowd.token, query_string={"pageSize": page_size}))
    assert list(body) == PAGE_KEYS
    assert (body["page"], body["pageSize"], body["total"], body["totalPages"]) == (1, 100, 105, 2)
    assert ids(body["data"]) == crowd.ids[PAGED[path]][:100]


@pytest.mark.parametrize("path", PAGED)
def test_clamped_page_size_drives_the_offset(crowd, get, path):
    """Page 2 at pageSize 10**30 starts after row 100, as pageSize 100 would."""
    body = ok_json(get(path, crowd.token, query_string={"page": "2", "pageSize": str(10**30)}))
    assert (body["page"], body["pageSize"], body["totalPages"]) == (2, 100, 2)
    assert ids(body["data"]) == crowd.ids[PAGED[path]][100:]


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize("page_size", ["100", "99", "1"])
def test_page_size_up_to_100_is_exact(crowd, get, path, page_size):
    """pageSize 1…100 is used as given."""
    size = int(page_size)
    body = ok_json(get(path, crowd.token, query_string={"pageSize": page_size}))
    assert (body["pageSize"], body["totalPages"]) == (size, math.ceil(105 / size))
    assert ids(body["data"]) == crowd.ids[PAGED[path]][:size]


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize("page", [str(MAX_PAGE), "000" + str(MAX_PAGE)])
def test_largest_page_is_accepted_and_empty(scope, get, path, page):
    """page 2147483647 is valid: an empty page with the true total and totalPages."""
    body = ok_json(get(path, scope.token, query_string={"page": page}))
    assert body == {"data": [], "total": 25, "page": MAX_PAGE, "pageSize": 20, "totalPages": 2}
    assert list(body) == PAGE_KEYS


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize("page", [str(MAX_PAGE + 1), "9999999999999", HUGE])
def test_page_above_int32_is_refused(scope, get, path, page):
    """page above 2147483647 is 400 invalid_parameter, not clamped."""
    body = assert_error(
        get(path, scope.token, query_string={"page": page}), 400, "invalid_parameter"
    )
    assert re.search(r"\bpage\b", body["message"])


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize(
    "page_size, total_pages",
    [("1", 25), ("5", 5), ("7", 4), ("24", 2), ("25", 1), ("26", 1), ("100", 1)],
)
def test_total_pages_is_the_ceiling(scope, get, path, page_size, total_pages):
    """totalPages = ceil(total / pageSize)."""
    body = ok_json(get(path, scope.token, query_string={"pageSize": page_size}))
    assert (body["total"], body["pageSize"], body["totalPages"]) == (
        25,
        int(page_size),
        total_pages,
    )


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize("query", [{}, {"page": "3", "pageSize": "7"}])
def test_empty_scope_has_zero_pages(token, get, path, query):
    """With nothing in scope total and totalPages are 0, whatever page is asked."""
    body = ok_json(get(path, token, query_string=query))
    assert list(body) == PAGE_KEYS
    assert body == {
        "data": [],
        "total": 0,
        "page": int(query.get("page", 1)),
        "pageSize": int(query.get("pageSize", 20)),
        "totalPages": 0,
    }


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize(
    "page, page_size, total_pages",
    [("3", "20", 2), ("26", "1", 25), ("5", "7", 4), ("2", "100", 1)],
)
def test_page_past_the_end_is_empty_with_true_totals(
    scope, get, path, page, page_size, total_pages
):
    """A page past the end returns data [] with the true total and totalPages."""
    body = ok_json(get(path, scope.token, query_string={"page": page, "pageSize": page_size}))
    assert body == {
        "data": [],
        "total": 25,
        "page": int(page),
        "pageSize": int(page_size),
        "totalPages": total_pages,
    }


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize(
    "page, page_size, start, stop",
    [
        ("2", "7", 7, 14),
        ("3", "7", 14, 21),
        ("4", "7", 21, 25),
        ("13", "2", 24, 25),
        ("2", "20", 20, 25),
        ("25", "1", 24, 25),
    ],
)
def test_a_page_is_its_slice_of_the_global_order(scope, get, path, page, page_size, start, stop):
    """Page P of size S holds rows (P-1)*S … P*S-1 of the newest-first ordering."""
    body = ok_json(get(path, scope.token, query_string={"page": page, "pageSize": page_size}))
    assert ids(body["data"]) == scope.ids[PAGED[path]][start:stop]
    assert (body["total"], body["page"], body["pageSize"]) == (25, int(page), int(page_size))


@pytest.mark.parametrize("path", PAGED)
def test_pages_concatenate_to_the_global_order(scope, get, path):
    """Walking every page visits each row once, in order."""
    seen = []
    for page in range(1, 5):
        body = ok_json(get(path, scope.token, query_string={"page": page, "pageSize": 7}))
        seen += ids(body["data"])
    assert seen == scope.ids[PAGED[path]]


@pytest.mark.parametrize("path", PAGED)
def test_leading_zeros_are_fine(scope, get, path):
    """page=02&pageSize=007 is page 2 of size 7, reported as plain numbers."""
    body = ok_json(get(path, scope.token, query_string={"page": "02", "pageSize": "007"}))
    assert (body["page"], body["pageSize"], body["totalPages"]) == (2, 7, 4)
    assert ids(body["data"]) == scope.ids[PAGED[path]][7:14]


# --- invalid values ----------------------------------------------------------------------


@pytest.mark.parametrize("path, name", PARAMETERS)
@pytest.mark.parametrize("value", BAD_NUMBERS, ids=ascii)
def test_malformed_or_non_positive_number_is_400(token, get, path, name, value):
    """Anything but ASCII digits worth at least 1 is 400 invalid_parameter naming the parameter."""
    body = assert_error(get(path, token, query_string={name: value}), 400, "invalid_parameter")
    assert re.search(rf"\b{name}\b", body["message"])


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize(
    "query, name",
    [({"page": "1", "pageSize": "abc"}, "pageSize"), ({"page": "abc", "pageSize": "5"}, "page")],
)
def test_one_bad_parameter_spoils_a_good_one(token, get, path, query, name):
    """A valid page does not excuse a bad pageSize, and the reverse."""
    body = assert_error(get(path, token, query_string=query), 400, "invalid_parameter")
    assert re.search(rf"\b{name}\b", body["message"])


# --- parameters an endpoint does not read ------------------------------------------------


@pytest.mark.parametrize(
    "path, query",
    [
        (STATS, {"limit": "abc"}),
        (STATS, {"page": "0", "pageSize": "-1"}),
        (SESSIONS_RECENT, {"page": "abc"}),
        (SESSIONS_RECENT, {"pageSize": "0"}),
        (UPLOADS_RECENT, {"page": "abc", "pageSize": "1.0"}),
        (SESSIONS, {"limit": "abc"}),
        (UPLOADS, {"limit": "0"}),
    ],
    ids=ascii,
)
def test_another_endpoints_parameter_is_ignored(scope, get, path, query):
    """Parameters documented for another endpoint change nothing here."""
    plain = ok_json(get(path, scope.token))
    assert ok_json(get(path, scope.token, query_string=query)) == plain


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "query",
    [{"foo": "bar"}, {"LIMIT": "abc", "Page": "0", "pagesize": "-1"}, {"offset": "x", "sort": ""}],
    ids=ascii,
)
def test_unknown_parameters_are_ignored(scope, get, path, query):
    """Parameters no endpoint documents are ignored (names are case-sensitive)."""
    plain = ok_json(get(path, scope.token))
    assert ok_json(get(path, scope.token, query_string=query)) == plain


# --- precedence --------------------------------------------------------------------------

UNKNOWN_PATHS = [
    "/",
    "/api",
    "/api/v1",
    "/api/v1/nope",
    "/api/v1/sessions/recent/x",
    "/api/v1/uploads/x",
    "/api/v2/stats",
    "/api/v1/STATS",
    "/favicon.ico",
]
METHODS = ["POST", "PUT", "PATCH", "DELETE"]
# How a request may authenticate: a valid JWT, nothing, or garbage.
CREDENTIALS = ["valid", "none", "garbage"]


def credential_headers(kind, token):
    return {"valid": bearer(token), "none": {}, "garbage": bearer("garbage")}[kind]


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("path", UNKNOWN_PATHS)
def test_unknown_path_is_404_whatever_the_credentials(token, client, path, credential):
    """An unknown path is 404 not_found JSON, authenticated or not."""
    response = client.get(path, headers=credential_headers(credential, token))
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_unknown_path_with_bad_parameters_and_method_is_404(client, method):
    """404 beats 405, 401 and 400 together."""
    response = client.open("/api/v1/nope?limit=abc&page=0", method=method)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("path", ENDPOINTS)
def test_wrong_method_is_405_whatever_the_credentials(token, client, path, method, credential):
    """A method other than GET on a known path is 405 method_not_allowed JSON."""
    response = client.open(path, method=method, headers=credential_headers(credential, token))
    assert_error(response, 405, "method_not_allowed")
    # RFC 9110 §15.5.6: a 405 lists the methods the resource supports.
    assert "GET" in {m.strip() for m in response.headers.get("Allow", "").split(",")}


@pytest.mark.parametrize("path", ENDPOINTS)
def test_wrong_method_beats_missing_credentials_and_bad_parameters(client, path):
    """405 comes before 401 and 400."""
    response = client.post(path, query_string={"limit": "abc", "page": "0", "pageSize": "x"})
    assert_error(response, 405, "method_not_allowed")


def bad_credentials(token_user):
    return {
        "none": {},
        "garbage": bearer("garbage"),
        "unknown-api-key": bearer("aptr_" + "0" * 40),
        "expired-jwt": bearer(make_token(token_user, expires_in=-120)),
        "wrong-secret": bearer(make_token(token_user, secret="x" * 40)),
        "not-bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
    }


@pytest.mark.parametrize(
    "credential",
    ["none", "garbage", "unknown-api-key", "expired-jwt", "wrong-secret", "not-bearer"],
)
@pytest.mark.parametrize(
    "path, query",
    [
        (SESSIONS_RECENT, {"limit": "abc"}),
        (UPLOADS_RECENT, {"limit": "0"}),
        (SESSIONS, {"page": "abc"}),
        (UPLOADS, {"pageSize": "-1"}),
        (SESSIONS, {"page": str(MAX_PAGE + 1)}),
        (STATS, {"limit": "abc"}),
    ],
    ids=ascii,
)
def test_authentication_comes_before_parameters(scope, client, path, query, credential):
    """On a known path, a bad credential with a bad parameter is 401, not 400."""
    headers = bad_credentials(scope.user)[credential]
    response = client.get(path, query_string=query, headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")
