"""PostgreSQL writes the exports' lines (sql/exports.sql); the row schemas stay the one
definition of a row. Over random worlds with hostile text (quotes, commas, CR/LF, `;` in
tags, non-ASCII, control characters), every exported line must equal the schema's dump of
the same row, as the paginated JSON list gives it, written by Python's own csv and orjson."""

import csv
import io
from datetime import timedelta

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixture import load_fixture
from schemas.rows import SessionRow, UploadRow
from tests.builders import NOW, World
from tests.conftest import empty_tables, make_token

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

    def cell(value):
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return ";".join(
                f"{v['type']}:{v['count']}" if isinstance(v, dict) else v for v in value
            )
        return value

    text = io.StringIO()
    csv.writer(text).writerows([fields] + [[cell(row[name]) for name in fields] for row in rows])
    return text.getvalue().encode()


def listed(client, resource, token):
    """Every row of the paginated JSON list, in its order."""
    rows, page = [], 1
    while True:
        answer = client.get(
            f"/api/v1/{resource}?pageSize=100&page={page}",
            headers={"Authorization": f"Bearer {token}"},
        ).get_json()
        rows += answer["data"]
        if page >= answer["totalPages"]:
            return rows
        page += 1


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
def test_every_exported_line_is_the_schemas_dump_of_its_row(app, db, world):
    user, doc = world
    empty_tables(db)
    load_fixture(db, doc)
    token = make_token(user)
    client = app.test_client()
    for resource in ("sessions", "uploads"):
        rows = listed(client, resource, token)
        exported = {
            fmt: client.get(
                f"/api/v1/{resource}?format={fmt}", headers={"Authorization": f"Bearer {token}"}
            ).get_data()
            for fmt in ("csv", "ndjson")
        }
        assert exported["ndjson"] == b"".join(orjson.dumps(row) + b"\n" for row in rows)
        assert exported["csv"] == csv_document(FIELDS[resource], rows)
