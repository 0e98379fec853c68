"""An export is one snapshot: every row as it was when the export started. Rows written
while it streams (a new session, a newest and an oldest upload, a delivery's new status)
are absent or in their old state, whatever part of the export they fall in; the next
export shows them."""

import csv
import io
import json
from datetime import timedelta

import pytest

import database
from fixture import load_fixture
from tests.builders import NOW
from tests.conftest import bearer, make_token, ordered
from tests.rowmodel import SESSION_FIELDS, UPLOAD_FIELDS, Model
from tests.test_exports import cell

FIELDS = {"sessions": SESSION_FIELDS, "uploads": UPLOAD_FIELDS}
# Far more than one internal batch or chunk (~0.8 MB of each list, rows of over 1 KB by
# their long filenames and tags), so the first chunk read is a small part of the export;
# few rows, so the world loads in a second or two.
SESSIONS = 600
UPLOADS_PER_SESSION = 1
PAD = "p" * 1000
OUTCOMES = [["sent", "sent"], ["sent", "failed"], ["failed", "failed"], ["pending", "sent"]]
STATUSES = ["active", "pending", "completed", "failed"]
BASE = (NOW - timedelta(days=5)).replace(microsecond=250_000)
LISTS = ("users", "projects", "members", "apiKeys", "sessions", "uploads")


def build(world):
    """Ada owns Acme and Beta, Grace owns Other. The oldest session (Acme's) holds the
    oldest upload, whose webhook delivery is still pending; every other row is in
    between, and every createdAt is distinct."""
    ada, grace = world.user("Ada"), world.user("Grace")
    acme, beta = world.project(ada, "Acme"), world.project(ada, "Beta")
    other = world.project(grace, "Other")
    oldest_session = world.session(
        acme,
        created_at=BASE,
        expires_at=NOW + timedelta(days=30),
        tags=["oldest", PAD],
        destinations=("webhook", "s3"),
    )
    oldest_upload = world.upload(
        oldest_session,
        ["pending", "failed"],
        created_at=BASE + timedelta(hours=1),
        filename=f"oldest {PAD}.jpg",
    )
    sessions = [oldest_session]
    for i in range(1, SESSIONS):
        sessions.append(
            world.session(
                beta if i % 3 == 0 else acme,
                created_at=BASE + timedelta(minutes=i),
                expires_at=NOW + timedelta(days=30),
                status=STATUSES[i % 4],
                tags=[f"t{i % 5}", PAD],
                long_polling=bool(i % 2),
                destinations=("webhook", "s3"),
            )
        )
    n = 0
    for session in sessions:
        for _ in range(UPLOADS_PER_SESSION):
            n += 1
            world.upload(
                session,
                OUTCOMES[n % 4],
                created_at=BASE + timedelta(hours=2, seconds=n),
                filename=f"IMG_{n:05d} {PAD}.jpg",
                size=n * 10,
                source=["camera", "gallery", "url"][n % 3],
            )
    stranger = world.session(other, created_at=BASE + timedelta(minutes=3))
    world.upload(stranger, ["sent"], created_at=BASE + timedelta(hours=3))
    world.load()
    return {
        "token": make_token(ada),
        "mine": {acme, beta},
        "acme": acme,
        "oldest_session": oldest_session,
        "oldest_upload": oldest_upload,
    }


def write_meanwhile(world, database_url, t):
    """From a connection of its own, in one committed transaction: a session older than
    every other, an upload newer than every other (into the oldest session) and one older
    than every other (into the new session), and the oldest upload's pending delivery
    now sent. The world's document is brought up to date to match; returns the new ids."""
    sizes = {name: len(world.doc[name]) for name in LISTS}
    new_session = world.session(
        t["acme"],
        created_at=BASE - timedelta(days=1),
        expires_at=NOW + timedelta(days=30),
        tags=["new"],
        destinations=("webhook",),
    )
    newest_upload = world.upload(
        t["oldest_session"], ["sent", "sent"], created_at=NOW, filename="newest.jpg"
    )
    oldest_upload = world.upload(
        new_session, ["failed"], created_at=BASE - timedelta(hours=1), filename="older.jpg"
    )
    written = {name: world.doc[name][sizes[name] :] for name in LISTS}
    [changed] = [u for u in world.doc["uploads"] if u["id"] == t["oldest_upload"]]
    [delivery] = [d for d in changed["deliveries"] if d["status"] == "pending"]
    with database.connect(database_url, autocommit=True) as writer, writer.transaction():
        load_fixture(writer, written)
        updated = writer.execute(
            "UPDATE deliveries SET status = 'sent' WHERE upload_id = %s AND destination_id = %s",
            [t["oldest_upload"], delivery["destinationId"]],
        )
        assert updated.rowcount == 1
    delivery["status"] = "sent"
    return {"sessions": {new_session}, "uploads": {newest_upload, oldest_upload}}


def expected_rows(model, resource, projects):
    if resource == "sessions":
        return model.session_rows(projects)
    return model.upload_rows(projects)


def parsed(body, resource, fmt):
    """The rows of an export body: NDJSON objects (order kept), or CSV records after the
    header (which is checked)."""
    if fmt == "ndjson":
        assert body.endswith(b"\n")
        return [
            json.loads(line, object_pairs_hook=lambda pairs: [tuple(p) for p in pairs])
            for line in body.split(b"\n")[:-1]
        ]
    records = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    assert records[0] == FIELDS[resource]
    return records[1:]


def as_exported(rows, resource, fmt):
    """Model rows as `parsed` gives them back."""
    if fmt == "ndjson":
        return [ordered(row) for row in rows]
    return [[cell(row[name]) for name in FIELDS[resource]] for row in rows]


def row_id(row, fmt):
    return dict(row)["id"] if fmt == "ndjson" else row[0]


def export_whole(client, resource, fmt, token):
    response = client.get(
        f"/api/v1/{resource}", headers=bearer(token), query_string={"format": fmt}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data()


def rows_started(head, fmt):
    """Whether `head` holds at least one whole data row (no row here spans lines)."""
    return head.count(b"\r\n") >= 2 if fmt == "csv" else head.count(b"\n") >= 1


@pytest.mark.parametrize(
    "resource, fmt",
    [("uploads", "ndjson"), ("uploads", "csv"), ("sessions", "ndjson"), ("sessions", "csv")],
)
def test_an_export_reads_one_snapshot(client, world, database_url, resource, fmt):
    """Mid-way through an export another connection commits a new oldest session, a
    newest and an oldest upload and a delivery's new status (the oldest upload goes from
    failed to partial, its session gains a delivered image and an image). The rest of the
    export still reads the world as it was when it started: byte for byte the export taken
    just before. The next export shows every change."""
    t = build(world)
    before = as_exported(expected_rows(Model(world.doc), resource, t["mine"]), resource, fmt)
    baseline = export_whole(client, resource, fmt, t["token"])
    assert parsed(baseline, resource, fmt) == before

    response = client.get(
        f"/api/v1/{resource}",
        headers=bearer(t["token"]),
        query_string={"format": fmt},
        buffered=False,
    )
    try:
        assert response.status_code == 200 and response.is_streamed
        chunks = iter(response.response)
        head = b""
        while not rows_started(head, fmt):
            head += next(chunks)
        # Mid-way: what was read is a small part, and the changed rows are all still to come.
        assert len(head) < len(baseline) // 4, (len(head), len(baseline))
        new_ids = write_meanwhile(world, database_url, t)
        body = head + b"".join(chunks)
    finally:
        response.close()

    rows = parsed(body, resource, fmt)
    ids = [row_id(row, fmt) for row in rows]
    leaked = new_ids[resource] & set(ids)
    assert not leaked, f"rows written after the export started are in it: {sorted(leaked)}"
    changed = t["oldest_session"] if resource == "sessions" else t["oldest_upload"]
    as_before = {row_id(row, fmt): row for row in before}
    assert rows[ids.index(changed)] == as_before[changed], "a row changed meanwhile"
    assert rows == before
    assert body == baseline

    after = as_exported(expected_rows(Model(world.doc), resource, t["mine"]), resource, fmt)
    assert after != before
    assert parsed(export_whole(client, resource, fmt, t["token"]), resource, fmt) == after
