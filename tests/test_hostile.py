"""Hostile query strings (SPEC §4) on every parameter of every endpoint: always 200 or a
JSON 400."""

import json
import math
import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

import database
from fixture import load_fixture
from tests.builders import NOW, World
from tests.conftest import bearer, empty_tables, make_token

SESSIONS_RECENT = "/api/v1/sessions/recent"
UPLOADS_RECENT = "/api/v1/uploads/recent"
SESSIONS = "/api/v1/sessions"
UPLOADS = "/api/v1/uploads"
STATS = "/api/v1/stats"
SERIES = "/api/v1/stats/series"
RECENT = {SESSIONS_RECENT: "sessions", UPLOADS_RECENT: "uploads"}
PAGED = {SESSIONS: "sessions", UPLOADS: "uploads"}
# The filters and ways of walking are each endpoint's own too (tested in test_filters).
SESSION_FILTERS = {"projectId", "status", "tag", "from", "to"}
UPLOAD_FILTERS = {"projectId", "status", "source", "destinationType", "from", "to"}
WALKS = {"cursor", "format"}
OWN_PARAMS = {
    SESSIONS_RECENT: {"limit"} | SESSION_FILTERS,
    UPLOADS_RECENT: {"limit"} | UPLOAD_FILTERS,
    SESSIONS: {"page", "pageSize"} | SESSION_FILTERS | WALKS,
    UPLOADS: {"page", "pageSize"} | UPLOAD_FILTERS | WALKS,
    STATS: {"projectId"},
    SERIES: {"interval", "timezone", "from", "to", "projectId", "groupBy", "format"},
}
PARAMETERS = [
    (SESSIONS_RECENT, "limit"),
    (UPLOADS_RECENT, "limit"),
    (SESSIONS, "page"),
    (SESSIONS, "pageSize"),
    (UPLOADS, "page"),
    (UPLOADS, "pageSize"),
]
MAX_PAGE = 2_147_483_647
ROWS = 55  # more than the largest limit, so the clamp to 50 shows in the data
LONG = 100_000

HOSTILE = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

SQL_FRAGMENTS = [
    "1; DROP TABLE users",
    "1' OR '1'='1",
    "1 OR 1=1",
    "1); DELETE FROM projects;--",
    "1 UNION SELECT email FROM users",
    "'; SELECT pg_sleep(10);--",
    "1--",
    "1/*",
    "$$; DROP TABLE api_keys; $$",
    "1::text",
    "(SELECT 1)",
    "\\x27",
    "%",
    "_",
]
NUL_VALUES = ["\x00", "1\x00", "\x001", "1\x002", "5\x00; DROP TABLE users"]
LONG_VALUES = [
    "1" * LONG,
    "0" * (LONG - 1) + "7",
    "9" * LONG,
    "a" * LONG,
    "\x00" * LONG,
    "-" + "9" * LONG,
    "\u0663" * (LONG // 2),
    "1' OR '1'='1" * (LONG // 12),
]
DIGITS = st.from_regex(r"\A[0-9]{1,40}\Z")
# A digit string with something a careless int() would forgive, or that a parser may trip on.
DECORATED = st.tuples(
    st.sampled_from(["", "+", "-", " ", "\t", "\n", "\x00", "0x", "0b", "\ufeff", "\u200b"]),
    DIGITS,
    st.sampled_from(["", " ", ".0", ".", "_0", "e3", "E-1", "\x00", "\r\n", ";", "'", "L", "j"]),
).map("".join)
VALUES = st.one_of(
    st.integers(-(10**40), 10**40).map(str),
    st.integers(-3, 150).map(str),
    DIGITS,
    DECORATED,
    st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=6),
    st.sampled_from(SQL_FRAGMENTS),
    st.sampled_from(NUL_VALUES),
    st.sampled_from(LONG_VALUES),
    st.just(""),
    st.text(max_size=40),
)
JUNK_NAMES = st.one_of(
    st.sampled_from(
        [
            "limit",
            "page",
            "pageSize",
            "page_size",
            "pagesize",
            "LIMIT",
            "offset",
            "sort",
            "order",
            "projectId",
            "fields",
            "__proto__",
            "limit[]",
            "page ",
            "limit\x00",
            "q",
            "' OR 1=1--",
            "",
        ]
    ),
    st.text(min_size=1, max_size=20),
)
# Already percent-encoded text sent as is: invalid escapes, encoded NULs, bad UTF-8, CRLF.
RAW_JUNK = st.one_of(
    st.sampled_from(
        [
            "%00",
            "1%00",
            "%001",
            "%",
            "%%",
            "%zz",
            "%2",
            "%ff%fe",
            "%c3%28",
            "%31",
            "%E2%80%AE1",
            "%EF%BC%91",
            "1%20OR%201%3D1",
            "%0d%0aSet-Cookie:%20x=y",
            "+1",
            "1+",
            "%2B1",
            "%2D1",
            "1%2C2",
            "1;2",
            "%u0031",
            "&&&",
            "==",
            "1%27%20OR%20%271%27%3D%271",
            "%C0%B1",
            "%F0%9F%92%A9",
        ]
    ),
    st.text(alphabet="%0123456789abcdefABCDEFxz+&=;?/\\'\"<>.,-_", max_size=60),
)
RAW_NAMES = [
    "limit",
    "page",
    "pageSize",
    "%6Cimit",
    "%70age",
    "pageSize%00",
    "page%5B%5D",
    "LIMIT",
    "",
    "%",
]


def query(pairs):
    """A query string with every name and value percent-encoded as UTF-8 bytes."""
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)


def number(value):
    """The value a plain ASCII digit string stands for, capped far above every bound
    (int() refuses strings of more than 4300 digits)."""
    digits = value.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else 10**18


def is_plain(value):
    return re.fullmatch(r"[0-9]+", value) is not None


def assert_sane(response):
    """200, or the JSON invalid_parameter envelope; never 5xx, HTML or a trace. Returns the body."""
    assert response.status_code in (200, 400), (response.status_code, response.data[:500])
    assert response.mimetype == "application/json"
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "<html" not in text.lower()
    body = json.loads(text)
    if response.status_code == 400:
        assert_invalid_parameter(body)
    return body


def assert_invalid_parameter(body):
    assert list(body)[:2] == ["error", "message"]
    assert list(body)[2:] in ([], ["requestId"])
    assert body["error"] == "invalid_parameter"
    assert isinstance(body["message"], str) and body["message"].strip()
    # One human sentence: the offending value (up to 100 kB here) is never echoed back.
    assert len(body["message"]) <= 200


# --- the world, loaded once ----------------------------------------------------------------


def snapshot(conn):
    """Every table of the schema with its row count and a digest of all its rows."""
    tables = [
        row["table_name"]
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "ORDER BY table_name"
        )
    ]
    digest = (
        "SELECT count(*) AS rows, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), "
        "'')) AS digest FROM {} t"
    )
    return {
        table: conn.execute(sql.SQL(digest).format(sql.Identifier(table))).fetchone()
        for table in tables
    }


@pytest.fixture(scope="module")
def scope(database_url):
    """One user with ROWS sessions and uploads, an API key, and a stranger's newer rows.

    These tests only read, so the world is loaded once (the `db` fixture would empty the
    tables before every example); the snapshot lets the last test prove nothing changed.
    """
    world = World()
    owner = world.user("Owner")
    project = world.project(owner, "Alpha")
    key = world.api_key(project)
    stranger = world.session(world.project(world.user("Stranger"), "Other"), created_at=NOW)
    world.upload(stranger, ["sent"], created_at=NOW)
    sessions, uploads = [], []
    for minute in range(1, ROWS + 1):
        created = NOW - timedelta(minutes=minute)
        session = world.session(project, created_at=created)
        sessions.append(session)
        uploads.append(world.upload(session, ["sent"], created_at=created))
    with database.connect(database_url, autocommit=True) as conn:
        empty_tables(conn)
        load_fixture(conn, world.doc)
        yield {
            "credentials": {"jwt": make_token(owner), "key": key},
            "ids": {"sessions": sessions, "uploads": uploads},
            "snapshot": snapshot(conn),
            "conn": conn,
        }
        empty_tables(conn)


@pytest.fixture(scope="module")
def client(app, scope):
    """A test client over the module's world (the conftest one would empty it)."""
    return app.test_client()


@pytest.fixture(scope="module")
def call(client, scope):
    def get(path, query_string, credential="jwt"):
        url = f"{path}?{query_string}" if query_string else path
        return client.get(url, headers=bearer(scope["credentials"][credential]))

    return get


def ids(rows):
    return [row["id"] for row in rows]


def junk_extras(path):
    """Up to three parameters the endpoint does not read: they must change nothing."""
    return st.lists(
        st.tuples(JUNK_NAMES, VALUES).filter(lambda p: p[0] not in OWN_PARAMS[path]), max_size=3
    )


# --- limit ---------------------------------------------------------------------------------


@HOSTILE
@given(
    data=st.data(),
    path=st.sampled_from(list(RECENT)),
    value=VALUES,
    credential=st.sampled_from(["jwt", "key"]),
)
def test_hostile_limit_is_200_exactly_as_specified_or_400(
    call, scope, data, path, value, credential
):
    """A plain positive integer gives min(limit, 50) newest rows, empty is the default, all
    else is 400."""
    extras = data.draw(junk_extras(path))
    response = call(path, query([("limit", value)] + extras), credential)
    body = assert_sane(response)
    if value == "":
        expected = 10
    elif not is_plain(value) or number(value) < 1:
        assert response.status_code == 400
        assert "limit" in body["message"]
        return
    else:
        expected = min(number(value), 50)
    assert response.status_code == 200
    assert ids(body) == scope["ids"][RECENT[path]][:expected]


# --- page and pageSize ---------------------------------------------------------------------

OPTIONAL = st.one_of(st.none(), VALUES)


@HOSTILE
@given(
    data=st.data(),
    path=st.sampled_from(list(PAGED)),
    page=OPTIONAL,
    page_size=OPTIONAL,
    credential=st.sampled_from(["jwt", "key"]),
)
def test_hostile_page_and_page_size_are_200_exactly_as_specified_or_400(
    call, scope, data, path, page, page_size, credential
):
    """page in 1…2147483647 and pageSize ≥ 1 (clamped to 100) are served; anything else is 400."""
    pairs = [
        (name, value)
        for name, value in (("page", page), ("pageSize", page_size))
        if value is not None
    ]
    pairs += data.draw(junk_extras(path))
    response = call(path, query(data.draw(st.permutations(pairs))), credential)
    body = assert_sane(response)
    page, page_size = page or "1", page_size or "20"
    page_ok = is_plain(page) and 1 <= number(page) <= MAX_PAGE
    size_ok = is_plain(page_size) and number(page_size) >= 1
    if not (page_ok and size_ok):
        assert response.status_code == 400
        assert ("page" if not page_ok else "pageSize") in body["message"]
        return
    assert response.status_code == 200
    size = min(number(page_size), 100)
    offset = (number(page) - 1) * size
    assert list(body) == ["data", "total", "page", "pageSize", "totalPages"]
    assert body == {
        "data": body["data"],
        "total": ROWS,
        "page": number(page),
        "pageSize": size,
        "totalPages": math.ceil(ROWS / size),
    }
    assert ids(body["data"]) == scope["ids"][PAGED[path]][offset : offset + size]


# --- repeats and raw encodings -------------------------------------------------------------


@HOSTILE
@given(target=st.sampled_from(PARAMETERS), values=st.lists(VALUES, min_size=2, max_size=4))
def test_repeated_parameter_is_200_or_400(call, target, values):
    """?limit=1&limit=2 may be refused (400) or served, never a crash."""
    path, name = target
    assert_sane(call(path, query([(name, value) for value in values])))


@HOSTILE
@given(
    path=st.sampled_from(list(OWN_PARAMS)),
    pieces=st.lists(st.tuples(st.sampled_from(RAW_NAMES), RAW_JUNK), min_size=1, max_size=4),
)
def test_raw_percent_encoded_junk_is_200_or_400(call, path, pieces):
    """Invalid escapes, encoded NULs and invalid UTF-8 reach the app undecoded by us."""
    response = call(path, "&".join(f"{name}={junk}" for name, junk in pieces))
    assert_sane(response)
    if path == STATS:
        assert response.status_code == 200


# --- /stats reads projectId alone ---------------------------------------------------------


@pytest.fixture(scope="module")
def plain_stats(call):
    response = call(STATS, "")
    assert response.status_code == 200
    return json.loads(response.data)


@HOSTILE
@given(
    pairs=st.lists(
        st.tuples(JUNK_NAMES, VALUES).filter(lambda p: p[0] not in OWN_PARAMS[STATS]), max_size=5
    ),
    credential=st.sampled_from(["jwt", "key"]),
)
def test_stats_ignores_any_hostile_parameter(call, plain_stats, pairs, credential):
    """Whatever else the query string holds, /stats answers 200 with the same figures as
    without one (its one parameter, projectId, is tested with the other endpoints')."""
    response = call(STATS, query(pairs), credential)
    assert response.status_code == 200, response.data[:500]
    assert response.mimetype == "application/json"
    assert json.loads(response.data) == plain_stats


# --- the series -------------------------------------------------------------------------


@HOSTILE
@given(
    pairs=st.lists(
        st.tuples(st.sampled_from(sorted(OWN_PARAMS[SERIES])), VALUES),
        max_size=4,
        unique_by=lambda pair: pair[0],
    ),
    extras=junk_extras(SERIES),
)
def test_series_answer_any_hostile_value_with_200_or_400(call, pairs, extras):
    """Hostile zones, intervals, dates and groupings are a 400 naming the parameter (or, when
    the value happens to be valid, an answer): never a crash or a trace."""
    response = call(SERIES, query(pairs + extras))
    if response.status_code == 200 and response.mimetype == "text/csv":
        assert response.get_data(as_text=True).startswith("start,")
    else:
        assert_sane(response)


@pytest.mark.parametrize(
    "path, name",
    [
        (SESSIONS, "status"),
        (UPLOADS, "status"),
        (UPLOADS, "source"),
        (UPLOADS, "destinationType"),
        (SERIES, "timezone"),
    ],
)
@pytest.mark.parametrize(
    "value", ["\x00" * 100, "\x01" * 100, "\u200b" * 100], ids=["NUL", "SOH", "ZWSP"]
)
def test_a_refused_word_of_control_characters_keeps_the_message_short(call, path, name, value):
    """The message quotes a refused word, escaped: escapes must not make it long."""
    response = call(path, query([(name, value)]))
    assert response.status_code == 400
    assert_sane(response)


# --- nothing was written -------------------------------------------------------------------


def test_tables_hold_the_same_rows_afterwards(scope):
    """Every table of the schema is still there with exactly the rows loaded (runs last)."""
    assert snapshot(scope["conn"]) == scope["snapshot"]
    assert len(scope["snapshot"]) >= 8
