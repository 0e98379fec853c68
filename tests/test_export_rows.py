"""PostgreSQL writes the exports' lines (sql/exports.sql); the row schemas stay the one
definition of a row. Over random worlds with hostile text (quotes, commas, CR/LF, `;` in
tags, non-ASCII, control characters), every exported line must equal the schema's dump of
the same row, as the paginated JSON list gives it, written by Python's own csv and orjson."""

import csv
import io
from datetime import timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exports
from fixture import load_fixture
from schemas.rows import SessionRow, UploadRow
from tests.builders import NOW, World
from tests.conftest import empty_tables, make_token
from tests.test_exports import cell

SPECIALS = [
    ",",
    '"',
    "\r",
    "\n",
    "\r\n",
    ";",
    "é",
    "日本",
    "\x01",
    "\x1f",
    "\x7f",
    "\u2028",
    "\\",
    " ",
]
HOSTILE = (
    st.lists(
        st.one_of(
            st.sampled_from(SPECIALS),
            st.text(
                st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=4
            ),
        ),
        min_size=1,
        max_size=5,
    )
    .map("".join)
    .filter(bool)
)
TYPES = ["webhook", "s3", "google_drive", "dropbox"]
OUTCOMES = ["sent", "failed", "pending"]
FIELDS = {
    resource: [field.data_key or name for name, field in schema().fields.items()]
    for resource, schema in (("sessions", SessionRow), ("uploads", UploadRow))
}


@st.composite
def worlds(draw):
    """A user with two projects of a few sessions and uploads, named and tagged with
    hostile text, at random moments (some shared to the microsecond)."""
    w = World()
    user = w.user("Ada")
    projects = [w.project(user, draw(HOSTILE)) for _ in range(2)]
    moments = [NOW - timedelta(minutes=draw(st.integers(0, 5000))) for _ in range(4)]
    for _ in range(draw(st.integers(1, 5))):
        session = w.session(
            draw(st.sampled_from(projects)),
            created_at=draw(st.sampled_from(moments)),
            tags=draw(st.one_of(st.just([]), st.lists(HOSTILE, max_size=3))),
            destinations=draw(st.lists(st.sampled_from(TYPES), max_size=3)),
        )
        for _ in range(draw(st.integers(0, 4))):
            w.upload(
                session,
                draw(st.lists(st.sampled_from(OUTCOMES), max_size=3)),
                created_at=draw(st.sampled_from(moments))
                + timedelta(microseconds=draw(st.integers(0, 2))),
                filename=draw(HOSTILE),
                mime=draw(HOSTILE),
            )
    return user, w.doc


def csv_document(fields, rows):
    """What the exports wrote before PostgreSQL did: Python's csv module over the JSON rows
    (null empty, booleans true/false, tags and breakdowns joined with ';')."""

    text = io.StringIO()
    csv.writer(text).writerows([fields] + [[cell(row[name]) for name in fields] for row in rows])
    return text.getvalue().encode()


def listed(client, resource, token, filters=None):
    """Every row of the paginated JSON list, in its order."""
    rows, page = [], 1
    while True:
        answer = client.get(
            f"/api/v1/{resource}",
            query_string={"pageSize": 100, "page": page, **(filters or {})},
            headers={"Authorization": f"Bearer {token}"},
        ).get_json()
        rows += answer["data"]
        if page >= answer["totalPages"]:
            return rows
        page += 1


def filters(doc):
    """Random list filters of each resource, over the world's own values."""
    projects = st.sampled_from([project["id"] for project in doc["projects"]])
    moments = st.sampled_from(
        [row["createdAt"] for name in ("sessions", "uploads") for row in doc[name]]
    )
    words = {
        "sessions": {
            "status": st.sampled_from(["active", "pending", "expired", "completed,failed"]),
            "tag": st.sampled_from(
                [tag for s in doc["sessions"] for tag in s["tags"] or []] or ["x"]
            ),
        },
        "uploads": {
            "status": st.sampled_from(["delivered", "failed,partial", "pending", "stored_only"]),
            "source": st.sampled_from(["camera", "gallery,url"]),
            "destinationType": st.sampled_from(["webhook", "s3,dropbox"]),
        },
    }
    return {
        resource: st.fixed_dictionaries(
            {},
            optional={"projectId": projects, "from": moments, "to": moments, **words[resource]},
        )
        for resource in ("sessions", "uploads")
    }


# Both walks an export can take: its projects' own indexes, then a sort (a small scope), and
# the all-projects indexes merged in order (a large one; the test worlds are all small).
WALKS = {"per project": 10**9, "all projects": 0}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds(), data=st.data())
def test_every_exported_line_is_the_schemas_dump_of_its_row(app, db, world, data, monkeypatch):
    """Either walk, any filters: the export is the paginated list, line for line."""
    user, doc = world
    empty_tables(db)
    load_fixture(db, doc)
    token = make_token(user)
    client = app.test_client()
    drawn = filters(doc)
    for resource in ("sessions", "uploads"):
        for given_filters in ({}, data.draw(drawn[resource], label=f"{resource} filters")):
            rows = listed(client, resource, token, given_filters)
            for walk, sorted_rows in WALKS.items():
                monkeypatch.setattr(exports, "SORTED_EXPORT_ROWS", sorted_rows)
                exported = {
                    fmt: client.get(
                        f"/api/v1/{resource}",
                        query_string={"format": fmt, **given_filters},
                        headers={"Authorization": f"Bearer {token}"},
                    ).get_data()
                    for fmt in ("csv", "ndjson")
                }
                note = f"{resource}, {walk}, {given_filters}"
                ndjson = b"".join(orjson.dumps(row) + b"\n" for row in rows)
                assert exported["ndjson"] == ndjson, note
                assert exported["csv"] == csv_document(FIELDS[resource], rows), note


@pytest.mark.parametrize(
    "window",
    [
        {"from": "0687-03-03T17:19:22+23:15"},
        {"to": "2030-01-01T00:00:00-23:59"},
        {"from": "0001-01-01T00:00:00+05:00", "to": "9999-12-31T23:59:59-05:00"},
    ],
)
def test_windows_at_any_offset_python_reads(app, db, world, window):
    """An export binds its parameters as text, where PostgreSQL takes offsets up to ±15:59
    only: a window at a larger offset (which the lists take) is the lists' rows too."""
    w = world
    user = w.user("Ada")
    session = w.session(w.project(user), created_at=NOW - timedelta(days=1))
    w.upload(session, ["sent"], created_at=NOW - timedelta(hours=1))
    w.load()
    token = make_token(user)
    client = app.test_client()
    rows = listed(client, "uploads", token, window)
    answer = client.get(
        "/api/v1/uploads",
        query_string={"format": "ndjson", **window},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_data() == b"".join(orjson.dumps(row) + b"\n" for row in rows)
