"""The admin commands (init-db, load-fixture, demo-data, create-api-key, issue-token) via
the CLI."""

import copy
import dataclasses
import json
import math
import os
import re
import string
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import jwt
import psycopg
import pytest
from flask.cli import FlaskGroup
from psycopg import sql

import database
import demo
from queries.migrations import routines_version, schema_files
from tests.builders import NOW, World, new_id
from tests.conftest import TABLES, TEST_SECRET, empty_tables, make_token

REPO = Path(__file__).resolve().parents[1]
TABLE_NAMES = list(TABLES)
UPLOAD_STATUSES = {"stored_only", "delivered", "pending", "failed", "partial"}


@pytest.fixture
def db(database_url):
    """The harness's `db`, but emptying only when rows were left behind."""
    with database.connect(database_url, autocommit=True) as conn:
        if any(counts(conn).values()):
            empty_tables(conn)
        yield conn


def flask_cli(app):
    """The app's commands as `flask --app app` sees them.

    Invoked through FlaskGroup, as the real `flask` command does, because that is what
    pushes the application context the commands rely on.
    """
    return FlaskGroup(create_app=lambda: app, add_default_commands=False, load_dotenv=False)


@pytest.fixture
def cli(app, db):
    """Invoke a command of the real app's CLI against the (emptied) test database."""
    runner = app.test_cli_runner()

    def invoke(*args, input=None):
        return runner.invoke(flask_cli(app), args=list(args), input=input)

    return invoke


def load(cli, world):
    """Load a World's document through the command; it must succeed."""
    result = cli("load-fixture", "-", input=json.dumps(world.doc))
    assert result.exit_code == 0, result.output


def counts(db):
    """Row count of every business table."""
    return {
        table: db.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]
        for table in TABLE_NAMES
    }


def assert_empty(db):
    assert counts(db) == dict.fromkeys(TABLE_NAMES, 0)


def small_world():
    """Ada owns Acme: one key, a session with two destinations, an upload sent to both."""
    world = World()
    ada = world.user("Ada")
    acme = world.project(ada, "Acme")
    world.api_key(acme)
    session = world.session(acme, destinations=("webhook", "s3"), tags=["wedding"])
    world.upload(session, ["sent", "pending"])
    return world, ada, acme, session


def all_pages(get, path, credential):
    """Every row of a paginated endpoint, pageSize=100."""
    rows, page = [], 1
    while True:
        response = get(f"{path}?pageSize=100&page={page}", credential)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        rows += body["data"]
        if page >= body["totalPages"]:
            assert len(rows) == body["total"]
            return rows
        page += 1


# --- init-db ---------------------------------------------------------------------------


@pytest.fixture
def fresh_app(app, database_url):
    """A second app on a brand-new, empty database on the same server."""
    name = f"apertur_test_{os.getpid()}_fresh"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(
                sql.Identifier(name)
            )
        )
    url = psycopg.conninfo.make_conninfo(database_url, dbname=name)
    from app import create_app

    settings = dataclasses.replace(app.config["SETTINGS"], database_url=url)
    fresh = create_app(settings)
    try:
        yield fresh, url
    finally:
        fresh.extensions["db_pool"].close()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_init_db_creates_schema_then_is_idempotent(fresh_app):
    """First run applies every schema file; the second changes nothing and says so."""
    fresh, url = fresh_app
    runner = fresh.test_cli_runner()
    versions = [version for version, _ in schema_files()] + [routines_version()]
    first = runner.invoke(flask_cli(fresh), args=["init-db"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(flask_cli(fresh), args=["init-db"])
    assert second.exit_code == 0, second.output
    assert "up to date" in second.stdout
    with database.connect(url) as conn:
        applied = [
            row["version"]
            for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")
        ]
        tables = {
            row["table_name"]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
    assert applied == versions
    assert set(TABLE_NAMES) <= tables


def test_init_db_on_migrated_database_keeps_data(cli, db):
    """init-db on an up-to-date database says so and leaves the rows alone."""
    world, *_ = small_world()
    assert cli("load-fixture", "-", input=json.dumps(world.doc)).exit_code == 0
    before = counts(db)
    result = cli("init-db")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout
    assert counts(db) == before


def run_flask(database_url, *args, input=None):
    """The real `flask --app app <command>` of SPEC §7, in a subprocess."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": TEST_SECRET,
        "JWT_ALGORITHM": "HS256",
    }
    return subprocess.run(
        [str(Path(sys.executable).with_name("flask")), "--app", "app", *args],
        cwd=REPO,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_real_flask_cli(db, database_url):
    """The documented command line: init-db, a refused load on stderr, a load from stdin."""
    init = run_flask(database_url, "init-db")
    assert init.returncode == 0, init.stderr
    assert "up to date" in init.stdout
    bad = _base()
    bad["uploads"][0]["sizeBytes"] = -1
    refused = run_flask(database_url, "load-fixture", "-", input=json.dumps(bad))
    assert refused.returncode != 0
    assert "uploads[0].sizeBytes" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert_empty(db)
    world, *_ = small_world()
    loaded = run_flask(database_url, "load-fixture", "-", input=json.dumps(world.doc))
    assert loaded.returncode == 0, loaded.stderr
    assert counts(db)["deliveries"] == 2


# --- load-fixture: success -------------------------------------------------------------


def test_load_fixture_from_path(cli, db, get, tmp_path):
    """A document in a file is loaded; every row is in its table and visible through the API."""
    world, ada, acme, session = small_world()
    path = tmp_path / "world.json"
    path.write_text(json.dumps(world.doc), encoding="utf-8")
    result = cli("load-fixture", str(path))
    assert result.exit_code == 0, result.output
    assert counts(db) == {
        "users": 1,
        "projects": 1,
        "members": 0,
        "api_keys": 1,
        "upload_sessions": 1,
        "destinations": 2,
        "uploads": 1,
        "deliveries": 2,
    }
    [upload] = get("/api/v1/uploads/recent", make_token(ada)).get_json()
    assert (upload["sessionId"], upload["projectId"], upload["status"]) == (
        session,
        acme,
        "pending",
    )


def test_load_fixture_from_stdin(cli, db, get):
    """`-` reads the document from standard input."""
    world, ada, _, session = small_world()
    result = cli("load-fixture", "-", input=json.dumps(world.doc))
    assert result.exit_code == 0, result.output
    assert counts(db)["uploads"] == 1 and counts(db)["deliveries"] == 2
    [row] = get("/api/v1/sessions/recent", make_token(ada)).get_json()
    assert (row["id"], row["destinationsCount"], row["tags"]) == (session, 2, ["wedding"])
    key = world.doc["apiKeys"][0]["key"]
    assert get("/api/v1/stats", key).get_json()["totalProjects"] == 1


def test_load_fixture_accepts_non_ascii_utf8(cli, db, get, tmp_path):
    """The file is read as UTF-8 whatever the locale."""
    world = World()
    ada = world.user("Ådå Łovelace ✓")
    world.project(ada, "Östra 写真")
    path = tmp_path / "utf8.json"
    path.write_bytes(json.dumps(world.doc, ensure_ascii=False).encode("utf-8"))
    result = cli("load-fixture", str(path))
    assert result.exit_code == 0, result.output
    assert db.execute("SELECT name FROM projects").fetchone()["name"] == "Östra 写真"


def test_load_fixture_every_top_level_key_is_optional(cli, db):
    """An empty object is a valid (empty) document."""
    result = cli("load-fixture", "-", input="{}")
    assert result.exit_code == 0, result.output
    assert_empty(db)


def test_load_fixture_boundaries_are_accepted(cli, db, get):
    """sizeBytes 0 and 2^63-1, a 32-character type, tags null or omitted, owner listed as member."""
    world = World()
    ada = world.user("Ada")
    acme = world.project(ada, "Acme")
    world.member(acme, ada, "admin")
    longest = "a" + "b_9" * 10 + "z"
    session = world.session(acme, destinations=(longest,), tags=None)
    del world.doc["sessions"][0]["tags"]
    other = world.session(acme, destinations=(), tags=None)
    big = world.upload(session, ["sent"], size=2**63 - 1)
    empty = world.upload(other, [], size=0)
    result = cli("load-fixture", "-", input=json.dumps(world.doc))
    assert result.exit_code == 0, result.output
    rows = {u["id"]: u for u in get("/api/v1/uploads/recent", make_token(ada)).get_json()}
    assert rows[big]["sizeBytes"] == 2**63 - 1
    assert rows[big]["destinationsBreakdown"] == [{"type": longest, "count": 1}]
    assert rows[empty]["sizeBytes"] == 0


def test_load_fixture_may_reference_rows_already_loaded(cli, db, get):
    """A second document may hang uploads, keys, members and projects on rows from the first."""
    first = World()
    ada = first.user("Ada")
    acme = first.project(ada, "Acme")
    session = first.session(acme, destinations=("webhook", "s3"))
    assert cli("load-fixture", "-", input=json.dumps(first.doc)).exit_code == 0

    second = World()
    second._sessions[session] = first._sessions[session]
    grace = second.user("Grace")
    second.member(acme, grace)
    second.api_key(acme)
    second.project(ada, "Ada's second")
    upload = second.upload(session, ["sent", "failed"])
    result = cli("load-fixture", "-", input=json.dumps(second.doc))
    assert result.exit_code == 0, result.output
    assert counts(db) == {
        "users": 2,
        "projects": 2,
        "members": 1,
        "api_keys": 1,
        "upload_sessions": 1,
        "destinations": 2,
        "uploads": 1,
        "deliveries": 2,
    }
    [row] = get("/api/v1/uploads/recent", make_token(grace)).get_json()
    assert (row["id"], row["status"]) == (upload, "partial")


def test_load_same_document_twice_fails_and_changes_nothing(cli, db):
    """The second load of one document is an error, not a duplicate."""
    world, *_ = small_world()
    document = json.dumps(world.doc)
    assert cli("load-fixture", "-", input=document).exit_code == 0
    before = counts(db)
    again = cli("load-fixture", "-", input=document)
    assert again.exit_code != 0
    assert again.stderr.strip()
    assert counts(db) == before


def test_load_fixture_rejects_delivery_to_a_destination_of_a_session_already_loaded(cli, db):
    """Cross-session deliveries are refused even when the other session came from an
    earlier load."""
    first = World()
    ada = first.user("Ada")
    acme = first.project(ada, "Acme")
    foreign = first.session(acme, destinations=("webhook",))
    assert cli("load-fixture", "-", input=json.dumps(first.doc)).exit_code == 0
    before = counts(db)

    second = World()
    own = second.session(acme, destinations=("s3",))
    second.upload(own, ["sent"])
    second.doc["uploads"][0]["deliveries"][0]["destinationId"] = first.destinations(foreign)[0]
    result = cli("load-fixture", "-", input=json.dumps(second.doc))
    assert result.exit_code != 0
    assert "uploads[0].deliveries[0].destinationId" in result.stderr
    assert counts(db) == before


# --- load-fixture: rejected documents --------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{not json",
        '{"users": []',
        "[]",
        "null",
        '"users"',
        "42",
        "true",
        '[{"users": []}]',
    ],
)
def test_load_fixture_rejects_non_documents(cli, db, text):
    """Text that is not JSON, or JSON that is not an object, is refused."""
    result = cli("load-fixture", "-", input=text)
    assert result.exit_code != 0
    assert result.stderr.strip()
    assert "Traceback" not in result.output
    assert_empty(db)


def test_load_fixture_rejects_invalid_utf8(cli, db, tmp_path):
    """Bytes that are not UTF-8 are refused with a message, not a traceback."""
    path = tmp_path / "latin1.json"
    path.write_bytes('{"users": [{"id": "x", "name": "Åda"}]}'.encode("latin-1"))
    result = cli("load-fixture", str(path))
    assert result.exit_code != 0
    assert result.stderr.strip()
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert_empty(db)


def test_load_fixture_missing_file_fails(cli, db, tmp_path):
    result = cli("load-fixture", str(tmp_path / "absent.json"))
    assert result.exit_code != 0
    assert_empty(db)


def _base():
    """A valid document with two sessions, so one bad field is the only problem."""
    world = World()
    ada = world.user("Ada")
    acme = world.project(ada, "Acme")
    world.member(acme, world.user("Grace"))
    world.api_key(acme)
    session = world.session(acme, destinations=("webhook", "s3"), tags=["a", "b"])
    world.session(acme, destinations=("dropbox",))
    world.upload(session, ["sent", "pending"])
    world.upload(session, ["failed"])
    return world.doc


def _set(path, value):
    def mutate(doc):
        *parents, last = path
        target = doc
        for key in parents:
            target = target[key]
        target[last] = value

    return mutate


def _delete(path):
    def mutate(doc):
        *parents, last = path
        target = doc
        for key in parents:
            target = target[key]
        del target[last]

    return mutate


def _copy(source, destination):
    """Set the field at `destination` to the value at `source` (for duplicates and cross refs)."""

    def mutate(doc):
        value = doc
        for key in source:
            value = value[key]
        _set(destination, copy.deepcopy(value))(doc)

    return mutate


def _append_copy(collection, index):
    def mutate(doc):
        doc[collection].append(copy.deepcopy(doc[collection][index]))

    return mutate


UPLOAD0 = ("uploads", 0)
DEST0 = ("sessions", 0, "destinations", 0)

BAD_DOCUMENTS = {
    "unknown top-level key": (_set(("widgets",), []), "widgets"),
    "top-level list is an object": (_set(("users",), {}), "users"),
    "unknown entry field": (_set(("users", 0, "role"), "admin"), "users[0].role"),
    "bad user uuid": (_set(("users", 0, "id"), "not-a-uuid"), "users[0].id"),
    "bad session uuid": (_set(("sessions", 1, "id"), "1234"), "sessions[1].id"),
    "bad destination uuid": (_set(DEST0 + ("id",), "g" * 32), "sessions[0].destinations[0].id"),
    "uuid is a number": (_set(UPLOAD0 + ("id",), 12), "uploads[0].id"),
    "missing filename": (_delete(UPLOAD0 + ("filename",)), "uploads[0].filename"),
    "missing session expiresAt": (_delete(("sessions", 0, "expiresAt")), "sessions[0].expiresAt"),
    "missing project ownerId": (_delete(("projects", 0, "ownerId")), "projects[0].ownerId"),
    "missing destination type": (_delete(DEST0 + ("type",)), "sessions[0].destinations[0].type"),
    "null email": (_set(("users", 0, "email"), None), "users[0].email"),
    "bad timestamp": (_set(("projects", 0, "createdAt"), "yesterday"), "projects[0].createdAt"),
    "bad member role": (_set(("members", 0, "role"), "owner"), "members[0].role"),
    "api key without prefix": (_set(("apiKeys", 0, "key"), "sk_live_123"), "apiKeys[0].key"),
    "bad session status": (_set(("sessions", 0, "status"), "open"), "sessions[0].status"),
    "session status wrong case": (_set(("sessions", 1, "status"), "Active"), "sessions[1].status"),
    "bad delivery status": (
        _set(UPLOAD0 + ("deliveries", 1, "status"), "delivered"),
        "uploads[0].deliveries[1].status",
    ),
    "bad upload source": (_set(UPLOAD0 + ("source",), "scanner"), "uploads[0].source"),
    "type Webhook": (_set(DEST0 + ("type",), "Webhook"), "sessions[0].destinations[0].type"),
    "type 1abc": (_set(DEST0 + ("type",), "1abc"), "sessions[0].destinations[0].type"),
    "type 33 chars": (_set(DEST0 + ("type",), "a" * 33), "sessions[0].destinations[0].type"),
    "type empty": (_set(DEST0 + ("type",), ""), "sessions[0].destinations[0].type"),
    "type with hyphen": (
        _set(DEST0 + ("type",), "google-drive"),
        "sessions[0].destinations[0].type",
    ),
    "type trailing newline": (
        _set(DEST0 + ("type",), "webhook\n"),
        "sessions[0].destinations[0].type",
    ),
    "sizeBytes -1": (_set(UPLOAD0 + ("sizeBytes",), -1), "uploads[0].sizeBytes"),
    "sizeBytes 2**63": (_set(UPLOAD0 + ("sizeBytes",), 2**63), "uploads[0].sizeBytes"),
    "sizeBytes 1.5": (_set(UPLOAD0 + ("sizeBytes",), 1.5), "uploads[0].sizeBytes"),
    "sizeBytes 12.0": (_set(UPLOAD0 + ("sizeBytes",), 12.0), "uploads[0].sizeBytes"),
    "sizeBytes '12'": (_set(UPLOAD0 + ("sizeBytes",), "12"), "uploads[0].sizeBytes"),
    "sizeBytes true": (_set(UPLOAD0 + ("sizeBytes",), True), "uploads[0].sizeBytes"),
    "isEncrypted 'yes'": (_set(UPLOAD0 + ("isEncrypted",), "yes"), "uploads[0].isEncrypted"),
    "isEncrypted 1": (_set(UPLOAD0 + ("isEncrypted",), 1), "uploads[0].isEncrypted"),
    "longPollingEnabled 'false'": (
        _set(("sessions", 0, "longPollingEnabled"), "false"),
        "sessions[0].longPollingEnabled",
    ),
    "tags not a list": (_set(("sessions", 0, "tags"), "wedding"), "sessions[0].tags"),
    "tag not a string": (_set(("sessions", 0, "tags", 1), 7), "sessions[0].tags[1]"),
    "owner does not exist": (_set(("projects", 0, "ownerId"), new_id()), "projects[0].ownerId"),
    "member user does not exist": (_set(("members", 0, "userId"), new_id()), "members[0].userId"),
    "key project does not exist": (
        _set(("apiKeys", 0, "projectId"), new_id()),
        "apiKeys[0].projectId",
    ),
    "session project does not exist": (
        _set(("sessions", 1, "projectId"), new_id()),
        "sessions[1].projectId",
    ),
    "upload session does not exist": (
        _set(("uploads", 1, "sessionId"), new_id()),
        "uploads[1].sessionId",
    ),
    "delivery destination does not exist": (
        _set(UPLOAD0 + ("deliveries", 0, "destinationId"), new_id()),
        "uploads[0].deliveries[0].destinationId",
    ),
    "delivery to another session's destination": (
        _copy(
            ("sessions", 1, "destinations", 0, "id"), UPLOAD0 + ("deliveries", 1, "destinationId")
        ),
        "uploads[0].deliveries[1].destinationId",
    ),
    "two deliveries to one destination": (
        _copy(
            UPLOAD0 + ("deliveries", 0, "destinationId"),
            UPLOAD0 + ("deliveries", 1, "destinationId"),
        ),
        "uploads[0].deliveries[1].destinationId",
    ),
    "duplicate user": (_append_copy("users", 0), "users[2].id"),
    "duplicate project": (_append_copy("projects", 0), "projects[1].id"),
    "duplicate session id": (_copy(("sessions", 0, "id"), ("sessions", 1, "id")), "sessions[1].id"),
    "duplicate destination id": (
        _copy(DEST0 + ("id",), ("sessions", 1, "destinations", 0, "id")),
        "sessions[1].destinations[0].id",
    ),
    "duplicate upload id": (_copy(UPLOAD0 + ("id",), ("uploads", 1, "id")), "uploads[1].id"),
    "duplicate api key id": (_append_copy("apiKeys", 0), "apiKeys[1].id"),
    "duplicate membership": (_append_copy("members", 0), "members[1]"),
    "NUL in user name": (_set(("users", 0, "name"), "A\x00da"), "users[0].name"),
    "NUL in filename": (_set(UPLOAD0 + ("filename",), "a\x00.jpg"), "uploads[0].filename"),
    "NUL in project name": (_set(("projects", 0, "name"), "\x00"), "projects[0].name"),
    "NUL in tag": (_set(("sessions", 0, "tags", 0), "we\x00dding"), "sessions[0].tags[0]"),
    "NUL in mimeType": (_set(UPLOAD0 + ("mimeType",), "image/\x00"), "uploads[0].mimeType"),
}


@pytest.mark.parametrize("mutate, path", BAD_DOCUMENTS.values(), ids=BAD_DOCUMENTS.keys())
def test_load_fixture_rejects_bad_entry(cli, db, mutate, path):
    """One bad entry: non-zero exit, its path on stderr, and nothing written."""
    doc = _base()
    mutate(doc)
    result = cli("load-fixture", "-", input=json.dumps(doc))
    assert result.exit_code != 0, result.output
    assert path in result.stderr
    assert "Traceback" not in result.output
    assert_empty(db)


def test_base_document_of_the_bad_entry_matrix_is_valid(cli, db):
    """Guards the matrix above: without a mutation the document loads."""
    result = cli("load-fixture", "-", input=json.dumps(_base()))
    assert result.exit_code == 0, result.output


def test_load_fixture_bad_last_entry_of_large_document_writes_nothing(cli, db):
    """All or nothing: a bad entry at the very end keeps every earlier valid entry out."""
    world = World()
    owner = world.user("Owner")
    project = world.project(owner, "Big")
    sessions = [world.session(project, destinations=("webhook", "s3")) for _ in range(200)]
    for i in range(1000):
        world.upload(sessions[i % 200], ["sent", "failed"])
    world.doc["uploads"][-1]["source"] = "fax"
    result = cli("load-fixture", "-", input=json.dumps(world.doc))
    assert result.exit_code != 0
    assert "uploads[999].source" in result.stderr
    assert_empty(db)


def test_load_fixture_bad_reference_at_end_writes_nothing(cli, db):
    """A reference problem found after validation also leaves the database untouched."""
    world = World()
    owner = world.user("Owner")
    project = world.project(owner, "Big")
    session = world.session(project)
    for _ in range(300):
        world.upload(session, ["sent"])
    world.doc["uploads"][-1]["sessionId"] = new_id()
    result = cli("load-fixture", "-", input=json.dumps(world.doc))
    assert result.exit_code != 0
    assert "uploads[299].sessionId" in result.stderr
    assert_empty(db)


# --- create-api-key --------------------------------------------------------------------


def _entropy_bits(secret):
    """A bound on the randomness a secret of this length and alphabet can carry."""
    if all(c in string.hexdigits for c in secret):
        alphabet = 16
    elif all(c in string.ascii_letters + string.digits + "-_+/=" for c in secret):
        alphabet = 64
    else:
        alphabet = 94
    return len(secret) * math.log2(alphabet)


def _key_world():
    world = World()
    ada = world.user("Ada")
    acme = world.project(ada, "Acme")
    grace = world.user("Grace")
    other = world.project(grace, "Other")
    world.api_key(other)
    world.session(acme, created_at=NOW)
    world.session(acme, created_at=NOW)
    world.session(other, created_at=NOW)
    return world, acme


def _created_key(cli, project, *extra):
    result = cli("create-api-key", "--project", project, *extra)
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert re.fullmatch(r"aptr_[!-~]+", key), result.stdout
    return key


def test_create_api_key_prints_a_strong_key(cli, db):
    world, acme = _key_world()
    load(cli, world)
    keys = {_created_key(cli, acme) for _ in range(3)}
    assert len(keys) == 3
    for key in keys:
        assert _entropy_bits(key[len("aptr_") :]) >= 128, key


def test_create_api_key_works_with_scope_of_its_project(cli, db, get):
    """The new key authenticates and sees exactly its project."""
    world, acme = _key_world()
    load(cli, world)
    key = _created_key(cli, acme)
    response = get("/api/v1/stats", key)
    assert response.status_code == 200, response.get_json()
    now = datetime.now(UTC)
    this_month = 2 if (NOW.year, NOW.month) == (now.year, now.month) else 0
    assert response.get_json() == {
        "sessionsThisMonth": this_month,
        "sessionsTotal": 2,
        "imagesUploaded": 0,
        "imagesDelivered": 0,
        "deliverySuccessRate": 0,
        "totalProjects": 1,
        "activeKeys": 1,
        "topProjects": [{"id": acme, "name": "Acme", "sessions": 2}] if this_month else [],
    }


def test_create_api_key_stores_no_plaintext(cli, db):
    world, acme = _key_world()
    load(cli, world)
    key = _created_key(cli, acme, "--name", "nightly export")
    secret = key[len("aptr_") :]
    rows = db.execute(
        "SELECT t::text AS row, row_to_json(t)::text AS json FROM api_keys t "
        "WHERE name = 'nightly export'"
    ).fetchall()
    assert len(rows) == 1
    dump = rows[0]["row"] + rows[0]["json"]
    # bytea columns print as hex, so look for the hex form too.
    for needle in (key, secret, key.encode().hex(), secret.encode().hex()):
        assert needle not in dump
    columns = db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'api_keys'"
    ).fetchall()
    for column in (c["column_name"] for c in columns):
        values = db.execute(
            sql.SQL("SELECT {}::text AS v FROM api_keys").format(sql.Identifier(column))
        ).fetchall()
        for value in (v["v"] or "" for v in values):
            assert secret not in value and secret.encode().hex() not in value, column


def test_create_api_key_unknown_project_fails(cli, db):
    world, _ = _key_world()
    load(cli, world)
    before = counts(db)
    result = cli("create-api-key", "--project", new_id())
    assert result.exit_code != 0
    assert result.stderr.strip()
    assert "aptr_" not in result.stdout
    assert counts(db) == before


@pytest.mark.parametrize("args", [[], ["--project"], ["--project", "not-a-uuid"]])
def test_create_api_key_bad_arguments_fail(cli, db, args):
    result = cli("create-api-key", *args)
    assert result.exit_code != 0
    assert_empty(db)


# --- issue-token -----------------------------------------------------------------------


def _token_world():
    world = World()
    ada = world.user("Ada")
    acme = world.project(ada, "Acme")
    mine = world.session(acme)
    grace = world.user("Grace")
    world.session(world.project(grace, "Other"))
    return world, ada, mine


def test_issue_token_works_for_that_user(cli, db, get):
    world, ada, mine = _token_world()
    load(cli, world)
    result = cli("issue-token", "--user", ada)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    response = get("/api/v1/sessions/recent", token)
    assert response.status_code == 200, response.get_json()
    assert [row["id"] for row in response.get_json()] == [mine]


def test_issue_token_claims(cli, db):
    world, ada, _ = _token_world()
    load(cli, world)
    result = cli("issue-token", "--user", ada)
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.stdout.strip(), TEST_SECRET, algorithms=["HS256"])
    assert claims["sub"] == ada
    assert claims["type"] == "access"
    assert claims["exp"] > time.time()


def test_issue_token_minutes_sets_lifetime(cli, db):
    world, ada, _ = _token_world()
    load(cli, world)
    before = time.time()
    result = cli("issue-token", "--user", ada, "--minutes", "5")
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.stdout.strip(), TEST_SECRET, algorithms=["HS256"])
    assert before + 300 - 2 <= claims["exp"] <= time.time() + 300 + 1


def test_issue_token_unknown_user_fails(cli, db):
    world, *_ = _token_world()
    load(cli, world)
    result = cli("issue-token", "--user", new_id())
    assert result.exit_code != 0
    assert result.stderr.strip()
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("args", [[], ["--user", "nobody"]])
def test_issue_token_bad_arguments_fail(cli, db, args):
    result = cli("issue-token", *args)
    assert result.exit_code != 0


@pytest.mark.parametrize("minutes", ["0", "-5", "abc"])
def test_issue_token_bad_minutes_fail(cli, db, minutes):
    world, ada, _ = _token_world()
    load(cli, world)
    result = cli("issue-token", "--user", ada, "--minutes", minutes)
    assert result.exit_code != 0


# --- demo-data -------------------------------------------------------------------------


@pytest.fixture
def demo_world(cli, db):
    result = cli("demo-data")
    assert result.exit_code == 0, result.output


def test_demo_data_world_of_the_demo_user(demo_world, get):
    """Every upload status, sessions this month and in several earlier months, two projects."""
    token = make_token(demo.DEMO_USER_ID)
    uploads = all_pages(get, "/api/v1/uploads", token)
    assert {row["status"] for row in uploads} == UPLOAD_STATUSES
    months = {row["createdAt"][:7] for row in all_pages(get, "/api/v1/sessions", token)}
    this_month = datetime.now(UTC).strftime("%Y-%m")
    assert this_month in months
    assert len(months - {this_month}) >= 3
    assert max(months) == this_month
    stats = get("/api/v1/stats", token).get_json()
    assert stats["totalProjects"] >= 2
    assert stats["sessionsThisMonth"] >= 1 and stats["topProjects"]


def test_demo_api_key_works(demo_world, get):
    response = get("/api/v1/stats", demo.DEMO_API_KEY)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["totalProjects"] == 1
    assert body["sessionsTotal"] > 0


def test_demo_data_twice_fails_without_duplicates(demo_world, cli, db):
    before = counts(db)
    again = cli("demo-data")
    assert again.exit_code != 0
    assert counts(db) == before


def test_init_db_without_the_right_to_create_roles_warns_and_migrates(database_url):
    # A database owner that is not a superuser: the schema applies, the role step only warns.
    owner, name = f"plain_owner_{os.getpid()}", f"plain_owned_{os.getpid()}"
    server = psycopg.conninfo.make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(owner)))
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(owner)
            )
        )
    try:
        url = psycopg.conninfo.make_conninfo(database_url, dbname=name, user=owner)
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "init-db"],
            cwd=REPO,
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "applied 0001_initial" in done.stdout
        assert "warning: read-only role apertur_api not set up" in done.stderr
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(owner)))
