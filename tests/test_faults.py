"""Database faults for real: gunicorn against its own PostgreSQL, stopped, restarted and abused."""

import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import timedelta

import psutil
import psycopg
import pytest
import requests
from psycopg.conninfo import make_conninfo

import database
import embedded_postgres
from fixture import load_fixture
from queries.migrations import API_ROLE, apply_migrations
from tests.builders import NOW, World
from tests.conftest import TEST_SECRET, bearer, make_token
from tests.servers import REPO, running_gunicorn
from tests.spec import ENDPOINTS

WORKERS = 2
# The default DB_POOL_TIMEOUT_SECONDS is 3 s: a 503 must come well before a client gives up.
UNAVAILABLE_WITHIN = 5.0
RECOVERY_WITHIN = 10.0
API_TABLES = [
    "users",
    "projects",
    "members",
    "api_keys",
    "upload_sessions",
    "destinations",
    "uploads",
    "deliveries",
]


def _start_postgres(data_dir):
    """embedded_postgres.start in a child process, so pgserver's per-process handle and
    exit hooks never outlive the data dir this module deletes."""
    code = "import sys, embedded_postgres as e; print(e.start(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", code, str(data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _world():
    """Ada owns Acme (a key, a session, a partial upload); Grace, a member of Acme, owns Other."""
    world = World()
    ada = world.user("Ada")
    acme = world.project(ada, "Acme")
    key = world.api_key(acme)
    session = world.session(
        acme, created_at=NOW - timedelta(minutes=5), destinations=("webhook", "s3")
    )
    world.upload(session, ["sent", "failed"], created_at=NOW - timedelta(minutes=2))
    grace = world.user("Grace")
    world.member(acme, grace)
    world.upload(world.session(world.project(grace, "Other")), ["sent"])
    return world, {"jwt": make_token(ada), "key": key}


@pytest.fixture(scope="module")
def pg():
    """A PostgreSQL of this module's own, with the schema and a small world; removed afterwards."""
    # Under .dev/, not tmp_path: as root pgserver runs the server as a user that must traverse it.
    data_dir = REPO / ".dev" / f"pgfault-{os.getpid()}"
    embedded_postgres.stop(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
    try:
        url = _start_postgres(data_dir)
        world, credentials = _world()
        with database.connect(url) as conn:
            apply_migrations(conn)
            load_fixture(conn, world.doc)
        yield {"url": url, "data_dir": data_dir, "credentials": credentials}
    finally:
        embedded_postgres.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def _workers(process):
    return sorted(child.pid for child in psutil.Process(process.pid).children())


@contextmanager
def gunicorn_on(url, log_dir, **settings):
    """servers.running_gunicorn on `url`, ready once all its workers have booted."""
    log = log_dir / f"gunicorn-{len(list(log_dir.iterdir()))}.log"
    with running_gunicorn(
        log,
        workers=WORKERS,
        DATABASE_URL=url,
        ready=lambda process: len(_workers(process)) == WORKERS,
        **settings,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def server(pg, tmp_path_factory):
    """(base URL, master process) of a gunicorn with every DB_* setting at its default."""
    with gunicorn_on(pg["url"], tmp_path_factory.mktemp("gunicorn")) as running:
        yield running


def timed_get(url, headers=None):
    started = time.monotonic()
    response = requests.get(url, headers=headers or {}, timeout=UNAVAILABLE_WITHIN + 5)
    return response, time.monotonic() - started


def envelope(response):
    """The SPEC §4 error body: JSON {"error", "message"} (maybe requestId), nothing else."""
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    assert content_type == "application/json", (content_type, response.text)
    pairs = json.loads(response.text, object_pairs_hook=list)
    keys = [k for k, _ in pairs]
    assert keys[:2] == ["error", "message"] and set(keys) <= {"error", "message", "requestId"}
    assert isinstance(dict(pairs)["message"], str) and dict(pairs)["message"]
    return dict(pairs)


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    assert envelope(response)["error"] == code


def fetch_all(base, credentials):
    """{(path, credential kind): response} for every endpoint and both credentials."""
    return {
        (path, kind): requests.get(base + path, headers=bearer(secret), timeout=10)
        for path in ENDPOINTS
        for kind, secret in credentials.items()
    }


def test_outage_answers_503_promptly_and_recovers_without_restart(pg, server):
    """PostgreSQL down: every endpoint answers 503 JSON within the bound; back up: the same 200s."""
    base, master = server
    credentials = pg["credentials"]
    before = fetch_all(base, credentials)
    assert {r.status_code for r in before.values()} == {200}, {k: r.text for k, r in before.items()}
    workers = _workers(master)
    embedded_postgres.stop(pg["data_dir"])
    try:
        waits = []
        for path in ENDPOINTS:
            for kind, secret in credentials.items():
                response, elapsed = timed_get(base + path, bearer(secret))
                assert_error(response, 503, "unavailable")
                assert elapsed < UNAVAILABLE_WITHIN, (path, kind, elapsed)
                waits.append(elapsed)
        # Each worker waits the pool timeout once; knowing the database is down, it then
        # answers at once instead of holding itself for 3 s per request.
        assert len([wait for wait in waits if wait > 1.0]) <= WORKERS, waits
        # Refusals that need no database stay what they are.
        assert_error(
            timed_get(base + "/api/v1/stats", bearer("garbage.jwt.value"))[0], 401, "unauthorized"
        )
        assert_error(timed_get(base + "/api/v1/stats")[0], 401, "unauthorized")
        assert_error(
            timed_get(base + "/api/v1/nope", bearer(credentials["key"]))[0], 404, "not_found"
        )
        # Liveness stays up; readiness says why not, well inside a prober's timeout.
        assert requests.get(base + "/healthz", timeout=5).json() == {"status": "ok"}
        response, elapsed = timed_get(base + "/readyz")
        assert_error(response, 503, "unavailable")
        assert elapsed < 1.5, elapsed
        assert master.poll() is None
        assert _workers(master) == workers, "workers died or were restarted during the outage"
    finally:
        _start_postgres(pg["data_dir"])

    deadline = time.monotonic() + RECOVERY_WITHIN
    while True:
        after = fetch_all(base, credentials)
        if all(r.status_code == 200 for r in after.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {k: (r.status_code, r.text) for k, r in after.items()} == {
        k: (r.status_code, r.text) for k, r in before.items()
    }
    assert requests.get(base + "/readyz", timeout=5).json() == {
        "status": "ready",
        "role": "primary",
        "replayLagSeconds": None,
    }
    assert master.poll() is None and _workers(master) == workers


def _api_backends(conn):
    return conn.execute(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'apertur-api'"
    ).fetchone()["n"]


def test_terminated_pool_connections_are_replaced_not_500(pg, server):
    """After pg_terminate_backend on every API connection: at most one 503 per worker, no 500."""
    base, _ = server
    credentials = pg["credentials"]
    with database.connect(pg["url"], autocommit=True) as admin:
        deadline = time.monotonic() + 5
        # Each worker's pool keeps at least one connection (DB_POOL_MIN_SIZE defaults to 1).
        while _api_backends(admin) < WORKERS:
            assert time.monotonic() < deadline, "the pools never connected"
            fetch_all(base, credentials)
        terminated = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n "
            "FROM pg_stat_activity WHERE application_name = 'apertur-api'"
        ).fetchone()["n"]
    assert terminated >= WORKERS
    responses = [
        requests.get(
            base + ENDPOINTS[i % 5], headers=bearer(list(credentials.values())[i % 2]), timeout=10
        )
        for i in range(20)
    ]
    failures = [r for r in responses if r.status_code != 200]
    for response in failures:
        assert_error(response, 503, "unavailable")
    assert len(failures) <= WORKERS, [r.text for r in failures]


@pytest.fixture
def slow_server(pg, tmp_path):
    """A second gunicorn whose statement_timeout is 300 ms."""
    with gunicorn_on(pg["url"], tmp_path, DB_STATEMENT_TIMEOUT_MS="300") as running:
        yield running


def test_statement_timeout_answers_503(pg, slow_server):
    """A query stuck behind a lock is cancelled by statement_timeout and answered 503, not 500."""
    base, _ = slow_server
    key = pg["credentials"]["key"]
    with database.connect(pg["url"]) as locker:
        locker.execute(
            "LOCK TABLE upload_sessions, uploads, project_rollups IN ACCESS EXCLUSIVE MODE"
        )
        try:
            # Every endpoint reads one of these (session rows, upload rows, rolled-up stats).
            for path in ENDPOINTS:
                response, elapsed = timed_get(base + path, bearer(key))
                assert_error(response, 503, "unavailable")
                assert elapsed < 2.0, (path, elapsed)
        finally:
            locker.rollback()
    for path in ENDPOINTS:
        response = requests.get(base + path, headers=bearer(key), timeout=10)
        assert response.status_code == 200, (path, response.text)


@pytest.fixture
def app_pool(pg, monkeypatch):
    """The app's own pool, built by create_app with distinctive timeouts."""
    monkeypatch.setenv("DATABASE_URL", pg["url"])
    monkeypatch.setenv("JWT_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("JWT_ALGORITHM", "HS256")
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "1234")
    monkeypatch.setenv("DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", "5678")
    from app import create_app

    app = create_app()
    try:
        yield app.extensions["db_pool"]
    finally:
        app.extensions["db_pool"].close()


def test_app_pool_connections_are_read_only(app_pool):
    with app_pool.connection() as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute(
            "INSERT INTO users (id, email, name) VALUES (gen_random_uuid(), 'x@example.com', 'X')"
        )


def test_app_pool_connections_carry_the_configured_timeouts(app_pool):
    with app_pool.connection() as conn:
        rows = conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('statement_timeout', 'idle_in_transaction_session_timeout', "
            "'default_transaction_read_only', 'application_name')"
        ).fetchall()
    settings = {row["name"]: row["setting"] for row in rows}
    assert settings == {
        "statement_timeout": "1234",
        "idle_in_transaction_session_timeout": "5678",
        "default_transaction_read_only": "on",
        "application_name": "apertur-api",
    }


@pytest.fixture
def api_role(pg):
    """An autocommit connection as the apertur_api role init-db creates, with read-only lifted."""
    with psycopg.connect(make_conninfo(pg["url"], user=API_ROLE), autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")
        yield conn


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO users (id, email, name) VALUES (gen_random_uuid(), 'x@example.com', 'X')",
        "UPDATE api_keys SET revoked_at = now()",
        "DELETE FROM uploads",
        "TRUNCATE deliveries",
        "CREATE TABLE public.intruder (a int)",
    ],
)
def test_api_role_cannot_write_even_when_not_read_only(api_role, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api_role.execute(statement)


@pytest.mark.parametrize("table", API_TABLES)
def test_api_role_reads_every_api_table(api_role, table):
    assert api_role.execute(f"SELECT count(*) FROM {table}").fetchone()[0] >= 1


# Past gunicorn's default limits: 8190-byte header field, 100 fields, 4094-byte request line.
OVERSIZED = pytest.mark.parametrize(
    "request_kwargs",
    [
        {"headers": {"X-Padding": "a" * 100_000}},
        {"headers": {f"X-Many-{i}": "a" for i in range(150)}},
        {"params": {"padding": "a" * 10_000}},
    ],
    ids=["100kB-header", "150-headers", "10kB-request-line"],
)


def oversized_get(base, key, request_kwargs):
    kwargs = dict(request_kwargs)
    headers = {**bearer(key), **kwargs.pop("headers", {})}
    return requests.get(base + "/api/v1/stats", headers=headers, timeout=10, **kwargs)


@OVERSIZED
def test_oversized_requests_are_refused_and_server_keeps_serving(pg, server, request_kwargs):
    """gunicorn's own limits answer 4xx (no traceback), and the workers keep answering 200."""
    base, master = server
    workers = _workers(master)
    response = oversized_get(base, pg["credentials"]["key"], request_kwargs)
    assert 400 <= response.status_code < 500, response.status_code
    assert "Traceback" not in response.text
    for _ in range(WORKERS * 2):
        ok = requests.get(
            base + "/api/v1/stats", headers=bearer(pg["credentials"]["key"]), timeout=10
        )
        assert ok.status_code == 200, ok.text
    assert master.poll() is None and _workers(master) == workers


@OVERSIZED
def test_oversized_request_refusal_is_the_json_envelope(pg, server, request_kwargs):
    """SPEC §4: errors are {"error", "message"} JSON, never an HTML page, whoever refuses."""
    base, _ = server
    response = oversized_get(base, pg["credentials"]["key"], request_kwargs)
    assert 400 <= response.status_code < 500, response.status_code
    # Refused by gunicorn before the app: still a request id, in the header and the body.
    assert envelope(response)["requestId"] == response.headers["X-Request-Id"]
