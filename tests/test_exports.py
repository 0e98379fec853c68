"""Exports over HTTP: whole lists streamed as CSV or NDJSON (every matching row,
newest first, in batches of 100 inside the service), their negotiation and their errors,
and one long export under real gunicorn outliving the worker timeout."""

import csv
import http.client
import io
import json
import random
import re
import socket
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace

import psutil
import pytest

from tests.builders import NOW, World, iso
from tests.conftest import make_token, ordered
from tests.rowmodel import SESSION_FIELDS, UPLOAD_FIELDS, Model, moment
from tests.servers import running_gunicorn

CSV_TYPE = "text/csv; charset=utf-8"
NDJSON_TYPE = "application/x-ndjson"
FIELDS = {"sessions": SESSION_FIELDS, "uploads": UPLOAD_FIELDS}
# Rows per project: Acme is exactly two internal batches, Beta exactly one, Gamma less.
SIZES = {"acme": 200, "beta": 100, "gamma": 7, "other": 20}
SESSION_STATUSES = ["active", "pending", "completed", "failed", "expired"]
TAGS = [None, [], ["wedding"], ["a,b", 'say "hi"', "plain"], ["wedding", "x;y"]]
DESTINATIONS = [("webhook", "s3"), ("s3",), (), ("google_drive", "webhook", "s3")]
OUTCOMES = [
    ["sent", "failed", "pending"],
    ["pending", "pending", "sent"],
    ["failed", "failed", "failed"],
    ["sent", "sent", "sent"],
    ["failed", "sent", "sent"],
]
SOURCES = ["camera", "gallery", "url", "google_drive", "dropbox"]
SPECIAL_FILENAMES = [
    'a,b "c"\nd.jpg',
    "two\r\nlines.png",
    "Привет 📷 é.heic",
    '"quoted".jpg',
    "semi;colon.jpg",
]


def build_tenant():
    """Ada owns Acme (200 sessions, 200 uploads), Beta (100 each) and Gamma (7 each);
    Grace owns Other (20 each). Rows of all projects interleave in time, and groups of
    seven share a createdAt (some only to the millisecond), so ties on createdAt cross the
    100-row batch boundaries and the id decides."""
    w = World()
    t = SimpleNamespace(doc=w.doc)
    ada, grace = w.user("Ada"), w.user("Grace")
    t.user = ada
    t.projects = {
        name: w.project(grace if name == "other" else ada, name.title()) for name in SIZES
    }
    t.jwt, t.grace_jwt = make_token(ada), make_token(grace)
    t.acme_key = w.api_key(t.projects["acme"])
    t.revoked_key = w.api_key(t.projects["acme"], revoked_at=NOW - timedelta(seconds=5))
    rng = random.Random(6)
    labels = [name for name, size in SIZES.items() for _ in range(size)]
    rng.shuffle(labels)
    base = NOW.replace(microsecond=500_000) - timedelta(days=3)
    sessions = {name: [] for name in SIZES}
    for i, label in enumerate(labels):
        created = base - timedelta(seconds=i // 7, microseconds=(i % 7) % 3 * 10)
        expires = NOW + timedelta(days=1) if i % 4 else NOW - timedelta(hours=1)
        sessions[label].append(
            w.session(
                t.projects[label],
                created_at=created,
                expires_at=expires,
                status=SESSION_STATUSES[i % 5],
                tags=TAGS[i % 5],
                long_polling=bool(i % 2),
                destinations=DESTINATIONS[i % 4],
            )
        )
    rng.shuffle(labels)
    specials = iter(SPECIAL_FILENAMES)
    for j, label in enumerate(labels):
        session = sessions[label].pop()
        destinations = len(w.destinations(session))
        filename = f"IMG_{j:04d}.jpg"
        if label == "acme" and j % 3 == 0:
            filename = next(specials, filename)
        w.upload(
            session,
            OUTCOMES[j % 5][:destinations],
            created_at=base + timedelta(hours=1, seconds=-(j // 7), microseconds=-(j % 7) % 3 * 10),
            filename=filename,
            size=j * 1000 + 7,
            mime=["image/jpeg", "image/png"][j % 2],
            source=SOURCES[j % 5],
            encrypted=j % 5 == 0,
        )
    t.model = Model(w.doc)
    t.mine = {t.projects[name] for name in ("acme", "beta", "gamma")}
    return t


@pytest.fixture
def client(app):
    """The test client without conftest's per-test emptying (most tests here only read)."""
    return app.test_client()


@pytest.fixture
def get(client):
    """conftest's get, reading every answer whole at once (a stream left unread would end
    in another test), with `was_streamed` telling whether it came as a stream."""

    def call(path, credential=None, headers=None, **kwargs):
        headers = {
            **({"Authorization": f"Bearer {credential}"} if credential else {}),
            **(headers or {}),
        }
        response = client.get(path, headers=headers, **kwargs)
        response.was_streamed = response.is_streamed
        response.get_data()
        return response

    return call


def rows_of(t, resource, projects=None, keep=lambda entry, row: True):
    """The model's rows of a resource over `projects` (Ada's three by default)."""
    projects = t.mine if projects is None else projects
    if resource == "sessions":
        return t.model.session_rows(projects, keep)
    return t.model.upload_rows(projects, keep)


def compact(value):
    """JSON as the API writes it: compact, UTF-8, keys in order."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def cell(value):
    """A JSON value as a CSV cell: true/false, null empty, lists joined with ';'."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(f"{v['type']}:{v['count']}" if isinstance(v, dict) else v for v in value)
    return str(value)


def rfc4180(fields, rows):
    """The CSV document RFC 4180 gives for these rows, quoting only where needed."""

    def field(text):
        return f'"{text.replace(chr(34), chr(34) * 2)}"' if re.search('[,"\r\n]', text) else text

    lines = [fields] + [[cell(row[name]) for name in fields] for row in rows]
    return "".join(",".join(field(text) for text in line) + "\r\n" for line in lines).encode()


def ndjson(rows):
    return [json.loads(line) for line in rows]


def export(get, resource, credential, fmt="ndjson", query=None, headers=None):
    """An export by ?format; returns the response, checked to be a streamed attachment."""
    response = get(
        f"/api/v1/{resource}",
        credential,
        headers=headers or {},
        query_string={"format": fmt, **(query or {})},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.was_streamed
    # The exact header, charset included, is test_export_content_type_is_exact's.
    assert response.mimetype == ("text/csv" if fmt == "csv" else NDJSON_TYPE)
    assert response.headers["Content-Disposition"] == f'attachment; filename="{resource}.{fmt}"'
    assert "ETag" not in response.headers
    return response


def ndjson_rows(response):
    """The objects of an NDJSON body, each line checked to be newline-terminated JSON."""
    body = response.get_data()
    assert body == b"" or body.endswith(b"\n")
    return [
        json.loads(line, object_pairs_hook=lambda pairs: [tuple(p) for p in pairs])
        for line in body.split(b"\n")[:-1]
    ]


# --- the whole export, compared with the model ---------------------------------------------


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
@pytest.mark.parametrize(
    "query, headers, content_type",
    [
        ({"format": "csv"}, {}, CSV_TYPE),
        ({}, {"Accept": "text/csv"}, CSV_TYPE),
        ({"format": "ndjson"}, {}, NDJSON_TYPE),
        ({}, {"Accept": "application/x-ndjson"}, NDJSON_TYPE),
    ],
)
def test_export_content_type_is_exact(get, tenant, resource, query, headers, content_type):
    """Content-Type is exactly `text/csv; charset=utf-8` or `application/x-ndjson`
    (one charset parameter, not two)."""
    response = get(f"/api/v1/{resource}", tenant.jwt, headers=headers, query_string=query)
    assert response.status_code == 200
    assert response.headers.getlist("Content-Type") == [content_type]


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
def test_ndjson_export_is_every_row_exactly_as_the_lists_give_it(get, tenant, resource):
    """307 rows over four internal batches: one JSON object a line, each byte for byte the
    row of the paginated list (so the four 100-row pages are the same bytes, rejoined)."""
    expected = rows_of(tenant, resource)
    assert len(expected) == 307
    response = export(get, resource, tenant.jwt)
    assert ndjson_rows(response) == [ordered(row) for row in expected]
    lines = response.get_data().split(b"\n")[:-1]
    for page in range(1, 5):
        listed = get(f"/api/v1/{resource}?pageSize=100&page={page}", tenant.jwt)
        assert listed.get_data() == (
            b'{"data":['
            + b",".join(lines[(page - 1) * 100 : page * 100])
            + b'],"total":307,"page":%d,"pageSize":100,"totalPages":4}' % page
        )
    assert lines == [compact(row) for row in expected]


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
def test_csv_export_is_rfc_4180_of_every_row(get, tenant, resource):
    """Header of the JSON field names, CRLF endings, quotes only where needed, booleans
    true/false, null empty, lists joined with ';': byte for byte, and as csv parses it."""
    expected = rows_of(tenant, resource)
    response = export(get, resource, tenant.jwt, "csv")
    body = response.get_data()
    assert body == rfc4180(FIELDS[resource], expected)
    parsed = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    assert parsed == [FIELDS[resource]] + [
        [cell(row[name]) for name in FIELDS[resource]] for row in expected
    ]


def test_csv_quotes_commas_quotes_and_line_breaks(get, tenant):
    """The hard cells, written out: tags with a comma and a quote, filenames with a comma,
    quotes, LF and CRLF, and a plain row with no quotes at all."""
    sessions = export(get, "sessions", tenant.jwt, "csv").get_data().decode()
    assert ',"a,b;say ""hi"";plain",' in sessions
    assert ",wedding;x;y," in sessions
    uploads = export(get, "uploads", tenant.jwt, "csv").get_data().decode()
    for name in (
        '"a,b ""c""\nd.jpg"',
        '"two\r\nlines.png"',
        ",Привет 📷 é.heic,",
        '"""quoted"".jpg"',
        ",semi;colon.jpg,",
    ):
        assert name in uploads, name
    rows = list(csv.DictReader(io.StringIO(uploads, newline="")))
    assert {r["filename"] for r in rows} >= set(SPECIAL_FILENAMES)
    plain = next(r for r in rows_of(tenant, "uploads") if r["filename"].startswith("IMG_"))
    line = ",".join(cell(plain[name]) for name in UPLOAD_FIELDS) + "\r\n"
    assert '"' not in line and line in uploads


def test_ndjson_keeps_special_characters_on_one_line(get, tenant):
    """Line breaks inside values are escaped, so each row stays one line."""
    rows = ndjson_rows(export(get, "uploads", tenant.jwt))
    names = {dict(row)["filename"] for row in rows}
    assert set(SPECIAL_FILENAMES) <= names
    tags = {
        tuple(dict(row)["tags"] or ()) for row in ndjson_rows(export(get, "sessions", tenant.jwt))
    }
    assert ("a,b", 'say "hi"', "plain") in tags and () in tags


# --- sizes around the batch of 100 ----------------------------------------------------------


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
@pytest.mark.parametrize("project", ["acme", "beta", "gamma"])
def test_exports_of_exact_batch_multiples_and_less(get, tenant, resource, fmt, project):
    """200 rows (two full batches), 100 (one) and 7: every row once, in order."""
    project_id = tenant.projects[project]
    expected = rows_of(tenant, resource, {project_id})
    assert len(expected) == SIZES[project]
    response = export(get, resource, tenant.jwt, fmt, {"projectId": project_id})
    if fmt == "csv":
        assert response.get_data() == rfc4180(FIELDS[resource], expected)
    else:
        assert ndjson_rows(response) == [ordered(row) for row in expected]


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
def test_api_key_export_is_its_project_alone(get, tenant, resource):
    """An API key exports exactly its project's 200 rows."""
    expected = rows_of(tenant, resource, {tenant.projects["acme"]})
    assert ndjson_rows(export(get, resource, tenant.acme_key)) == [ordered(row) for row in expected]


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
def test_empty_export_is_the_header_alone(get, tenant, resource):
    """No matching row: CSV is the header line, NDJSON an empty body."""
    later = {"from": iso(NOW + timedelta(days=1))}
    assert (
        export(get, resource, tenant.jwt, "csv", later).get_data()
        == (",".join(FIELDS[resource]) + "\r\n").encode()
    )
    assert export(get, resource, tenant.jwt, "ndjson", later).get_data() == b""


# --- filters apply, paging does not ---------------------------------------------------------


def window(t, resource):
    """A from/to window whose edges are rows' exact createdAt (microseconds included)."""
    entries = sorted(
        (e for e in t.doc[resource] if t.model.project_of(e) in t.mine),
        key=lambda e: (moment(e["createdAt"]), e["id"]),
        reverse=True,
    )
    return moment(entries[250]["createdAt"]), moment(entries[40]["createdAt"])


def session_filters(t):
    start, end = window(t, "sessions")
    return [
        ({"status": "expired"}, lambda e, r: r["status"] == "expired"),
        ({"status": "active,completed"}, lambda e, r: r["status"] in ("active", "completed")),
        ({"tag": "a,b"}, lambda e, r: "a,b" in (r["tags"] or [])),
        (
            {"tag": "wedding", "projectId": t.projects["acme"]},
            lambda e, r: "wedding" in (r["tags"] or []) and r["projectId"] == t.projects["acme"],
        ),
        ({"from": iso(start), "to": iso(end)}, lambda e, r: start <= moment(e["createdAt"]) < end),
    ]


def upload_filters(t):
    start, end = window(t, "uploads")
    return [
        ({"status": "failed,partial"}, lambda e, r: r["status"] in ("failed", "partial")),
        ({"status": "stored_only"}, lambda e, r: r["status"] == "stored_only"),
        ({"source": "gallery,url"}, lambda e, r: r["source"] in ("gallery", "url")),
        (
            {"destinationType": "google_drive"},
            lambda e, r: "google_drive" in t.model.delivery_types(e),
        ),
        (
            {"destinationType": "s3", "status": "delivered", "source": "camera"},
            lambda e, r: (
                "s3" in t.model.delivery_types(e)
                and r["status"] == "delivered"
                and r["source"] == "camera"
            ),
        ),
        (
            {"from": iso(start), "to": iso(end), "projectId": t.projects["beta"]},
            lambda e, r: (
                start <= moment(e["createdAt"]) < end and r["projectId"] == t.projects["beta"]
            ),
        ),
    ]


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
def test_every_list_filter_applies_to_the_export(get, tenant, resource):
    """Each filter (and combinations) exports exactly the model's matching rows."""
    filters = session_filters(tenant) if resource == "sessions" else upload_filters(tenant)
    sizes = []
    for query, keep in filters:
        expected = rows_of(tenant, resource, keep=keep)
        sizes.append(len(expected))
        got = ndjson_rows(export(get, resource, tenant.jwt, "ndjson", query))
        assert got == [ordered(row) for row in expected], query
    assert all(0 < size < 307 for size in sizes), sizes
    assert max(sizes) > 100, sizes  # at least one filtered export spans several batches


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
def test_page_page_size_and_cursor_are_ignored(get, tenant, resource):
    """?page, ?pageSize and a cursor (even one of a filtered walk) do not trim the export."""
    walk = get(
        f"/api/v1/{resource}",
        tenant.jwt,
        query_string={"cursor": "", "pageSize": "5", "projectId": tenant.projects["gamma"]},
    ).get_json()
    cursor = walk["nextCursor"]
    assert cursor
    expected = [ordered(row) for row in rows_of(tenant, resource)]
    for query in (
        {"page": "3", "pageSize": "5"},
        {"cursor": cursor},
        {"cursor": ""},
        {"page": "999", "pageSize": "100", "cursor": cursor},
    ):
        assert ndjson_rows(export(get, resource, tenant.jwt, "ndjson", query)) == expected


# --- negotiation ----------------------------------------------------------------------------


NEGOTIATION = [
    ({}, {"Accept": "text/csv"}, "csv"),
    ({}, {"Accept": "application/x-ndjson"}, "ndjson"),
    ({}, {"Accept": "text/csv;q=0.2, application/x-ndjson"}, "ndjson"),
    ({}, {"Accept": "application/json;q=0.1, text/csv"}, "csv"),
    ({"format": "csv"}, {"Accept": "application/x-ndjson"}, "csv"),
    ({"format": "ndjson"}, {"Accept": "text/csv"}, "ndjson"),
    ({"format": "csv"}, {}, "csv"),
    ({"format": "json"}, {"Accept": "text/csv"}, "json"),
    ({"format": ""}, {}, "json"),
    ({}, {"Accept": "*/*"}, "json"),
    ({}, {"Accept": "application/json"}, "json"),
    ({}, {"Accept": "text/csv;q=0.5, application/json"}, "json"),
    ({}, {}, "json"),
]


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
@pytest.mark.parametrize("query, headers, kind", NEGOTIATION)
def test_format_and_accept_choose_the_answer(get, tenant, resource, query, headers, kind):
    """?format wins over Accept; json, */* or no Accept give the normal first JSON page."""
    expected = rows_of(tenant, resource)
    response = get(f"/api/v1/{resource}", tenant.jwt, headers=headers, query_string=query)
    assert response.status_code == 200
    if kind == "json":
        assert response.headers["Content-Type"] == "application/json"
        assert "Content-Disposition" not in response.headers and response.headers["ETag"]
        assert response.get_json() == {
            "data": expected[:20],
            "total": 307,
            "page": 1,
            "pageSize": 20,
            "totalPages": 16,
        }
    elif kind == "csv":
        assert response.mimetype == "text/csv"
        assert response.get_data() == rfc4180(FIELDS[resource], expected)
    else:
        assert response.headers["Content-Type"] == NDJSON_TYPE
        assert ndjson_rows(response) == [ordered(row) for row in expected]
    if kind != "json":
        assert (
            response.headers["Content-Disposition"] == f'attachment; filename="{resource}.{kind}"'
        )
        assert "ETag" not in response.headers


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
def test_an_export_ignores_if_none_match(get, tenant, resource):
    """A stream has no ETag to match: If-None-Match: * still gets the whole export."""
    expected = [ordered(row) for row in rows_of(tenant, resource)]
    assert (
        ndjson_rows(export(get, resource, tenant.jwt, "ndjson", headers={"If-None-Match": "*"}))
        == expected
    )


# --- errors are JSON, not streams -----------------------------------------------------------


def assert_json_error(response, status, code, mentions=None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json"
    assert "Content-Disposition" not in response.headers and "ETag" not in response.headers
    body = response.get_json()
    assert body["error"] == code and set(body) <= {"error", "message", "requestId"}
    if mentions:
        assert mentions in body["message"], body


ASKS = [
    ({"format": "csv"}, {}),
    ({"format": "ndjson"}, {}),
    ({}, {"Accept": "text/csv"}),
    ({}, {"Accept": "application/x-ndjson"}),
]


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
@pytest.mark.parametrize("query, headers", ASKS)
def test_export_errors_are_json(get, tenant, resource, query, headers):
    """Out-of-scope or unknown projectId: 404; a bad filter: 400 naming it; a bad or
    missing credential: 401 — all as the JSON envelope, never a stream."""

    def ask(credential, extra):
        return get(
            f"/api/v1/{resource}", credential, headers=headers, query_string={**query, **extra}
        )

    for credential, project in (
        (tenant.jwt, tenant.projects["other"]),
        (tenant.jwt, str(uuid.uuid4())),
        (tenant.acme_key, tenant.projects["beta"]),
    ):
        assert_json_error(ask(credential, {"projectId": project}), 404, "not_found")
    for bad, name in (
        ({"status": "bogus"}, "status"),
        ({"from": "yesterday"}, "from"),
        ({"projectId": "nope"}, "projectId"),
        ({"source": "fax"}, "source"),
        ({"tag": "x", "status": "nope"}, "status"),
    ):
        if resource == "sessions" and name == "source":
            continue
        assert_json_error(ask(tenant.jwt, bad), 400, "invalid_parameter", f"'{name}'")
    for credential in (None, "aptr_unknown", tenant.revoked_key, "not.a.jwt"):
        response = ask(credential, {})
        assert_json_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
def test_an_invalid_format_is_400_naming_format(get, tenant, resource):
    """format other than json, csv or ndjson: 400 naming 'format' (after authentication)."""
    for value in ("xml", "tsv", "csv,ndjson", "CSV "):
        response = get(f"/api/v1/{resource}", tenant.jwt, query_string={"format": value})
        assert_json_error(response, 400, "invalid_parameter", "'format'")
        assert_json_error(
            get(f"/api/v1/{resource}", None, query_string={"format": value}), 401, "unauthorized"
        )


# --- a long export under real gunicorn ------------------------------------------------------

BULK_UPLOADS = 20_000
BULK_SESSIONS = 200
WORKER_TIMEOUT = 2
# The reader takes 16 KiB every 8 ms (at most 2 MB/s), so the ~10.4 MB answer takes over
# 5 s to read; the kernel can buffer at most its largest send buffer (4 MiB by default)
# ahead of the reader, so the worker is still writing for seconds past the timeout.
READ_CHUNK = 16_384
READ_PAUSE = 0.008
# Set-wise, a statement per table, so the rollup triggers count each statement in one pass.
BULK_SQL = """
INSERT INTO users (id, email, name) VALUES (%(user)s, 'bulk@example.com', 'Bulk');
INSERT INTO projects (id, name, owner_id, created_at)
    VALUES (%(project)s, 'Bulk', %(user)s, now() - interval '1 year');
INSERT INTO upload_sessions (id, project_id, created_at, expires_at, status, tags,
                             long_polling_enabled)
    SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, %(project)s,
           now() - g * interval '1 minute', now() + interval '1 day', 'active',
           ARRAY['bulk', 'a,b'], false
    FROM generate_series(1, %(sessions)s) AS g;
INSERT INTO destinations (id, session_id, type)
    SELECT ('10000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
           ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'webhook'
    FROM generate_series(1, %(sessions)s) AS g;
INSERT INTO uploads (id, session_id, project_id, filename, size_bytes, mime_type, source,
                     is_encrypted, created_at)
    SELECT ('20000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
           ('00000000-0000-4000-8000-' || lpad(to_hex(g %% %(sessions)s + 1), 12, '0'))::uuid,
           %(project)s, 'bulk, "export" ' || g || '.jpg', g, 'image/jpeg', 'camera', false,
           now() - (g / 3) * interval '1 millisecond'
    FROM generate_series(1, %(uploads)s) AS g;
INSERT INTO deliveries (upload_id, destination_id, session_id, project_id, status)
    SELECT ('20000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
           ('10000000-0000-4000-8000-' || lpad(to_hex(g %% %(sessions)s + 1), 12, '0'))::uuid,
           ('00000000-0000-4000-8000-' || lpad(to_hex(g %% %(sessions)s + 1), 12, '0'))::uuid,
           %(project)s, CASE WHEN g %% 3 = 0 THEN 'failed' ELSE 'sent' END
    FROM generate_series(1, %(uploads)s) AS g;
"""


class SmallWindowConnection(http.client.HTTPConnection):
    """HTTP over a socket with a small receive buffer, so that little of the answer waits
    on the reader's side: a slow reader holds the server back."""

    def connect(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
        sock.settimeout(10)
        sock.connect((self.host, self.port))
        self.sock = sock


def largest_send_buffer():
    """The most a TCP socket here can hold unsent (Linux; 4 MiB elsewhere)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as settings:
            return int(settings.read().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * 1024 * 1024


def _workers(process):
    return {child.pid for child in psutil.Process(process.pid).children()}


def test_a_long_export_outlives_the_worker_timeout_under_gunicorn(db, database_url, tmp_path):
    """With --timeout 2, an export read slowly for well over 2 s arrives whole (every id,
    in order, the chunked body properly ended): the worker tells the arbiter it is alive
    between batches, so it is neither killed nor replaced."""
    user, project = str(uuid.uuid4()), str(uuid.uuid4())
    params = {"user": user, "project": project, "sessions": BULK_SESSIONS, "uploads": BULK_UPLOADS}
    with db.transaction():
        for statement in BULK_SQL.split(";\n"):
            if statement.strip():
                db.execute(statement, params)
    db.execute("ANALYZE")  # the rollups too, so the export's statements plan for this size
    expected = [
        str(row["id"])
        for row in db.execute("SELECT id FROM uploads ORDER BY created_at DESC, id DESC")
    ]
    assert len(expected) == BULK_UPLOADS
    log = tmp_path / "gunicorn.log"
    with running_gunicorn(
        log, workers=1, args=("--timeout", str(WORKER_TIMEOUT)), DATABASE_URL=database_url
    ) as (base, process):
        workers = _workers(process)
        host, port = base.removeprefix("http://").split(":")
        connection = SmallWindowConnection(host, int(port))
        started = time.monotonic()
        connection.request(
            "GET",
            "/api/v1/uploads?format=ndjson",
            headers={"Authorization": f"Bearer {make_token(user)}"},
        )
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Transfer-Encoding") == "chunked"
        chunks = []
        while chunk := response.read(READ_CHUNK):  # IncompleteRead if the stream is cut
            chunks.append(chunk)
            time.sleep(READ_PAUSE)
        elapsed = time.monotonic() - started
        connection.close()
        assert _workers(process) == workers
    body = b"".join(chunks)
    ids = [json.loads(line)["id"] for line in body.split(b"\n")[:-1]]
    assert body.endswith(b"\n") and ids == expected
    assert elapsed > 2 * WORKER_TIMEOUT, elapsed
    assert len(body) > 2 * largest_send_buffer()
    assert "WORKER TIMEOUT" not in log.read_text()


def test_the_lists_vary_on_accept(tenant, get):
    """JSON page or export depends on Accept, so both say `Vary: Accept` (a browser cache
    must not answer one with the other); lists without exports do not."""
    for path in ("/api/v1/uploads", "/api/v1/sessions"):
        for headers in ({}, {"Accept": "text/csv"}, {"Accept": "application/x-ndjson"}):
            response = get(path, tenant.jwt, headers=headers)
            assert response.status_code == 200
            assert "Accept" in response.headers.get("Vary", ""), (path, headers)
    assert "Accept" not in get("/api/v1/uploads/recent", tenant.jwt).headers.get("Vary", "")
