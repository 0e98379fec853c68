"""Exports' limits under real gunicorn (one sync worker): a client that hangs up mid-export
frees its worker and its database backend within 2 s, the backend's connection back in the
pool and usable; past EXPORT_TIMEOUT_SECONDS the body is cut short (no final chunk) and a
JSON log line says why; and the setting itself, checked at start-up like every other."""

import http.client
import json
import os
import socket
import struct
import subprocess
import time
import uuid
from types import SimpleNamespace

import psutil
import pytest
import requests

import config
import database
from config import ConfigError, load_settings
from tests.conftest import TEST_SECRET, bearer, empty_tables, make_token
from tests.servers import GUNICORN, REPO, START_TIMEOUT, free_port, running_gunicorn

# --- the setting ---------------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean environment holding only DATABASE_URL (as tests/test_config.py's), with no
    EXPORT_* setting either; the dev secret goes to a temp file."""
    for name in list(config.os.environ):
        if name.startswith(
            (
                "DB_",
                "JWT_",
                "APERTUR_",
                "DATABASE_",
                "CORS_",
                "TRUSTED_",
                "METRICS_",
                "CURSOR_",
                "EXPORT_",
            )
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", "postgresql://example/db")
    monkeypatch.setattr(config, "DEV_SECRET_FILE", tmp_path / "jwt-secret")
    return monkeypatch


def test_export_timeout_defaults_to_600_seconds(env):
    assert load_settings().export_timeout_seconds == 600


@pytest.mark.parametrize("value, seconds", [("1", 1), ("45", 45), (" 900 ", 900)])
def test_export_timeout_is_whole_seconds_from_1(env, value, seconds):
    env.setenv("EXPORT_TIMEOUT_SECONDS", value)
    assert load_settings().export_timeout_seconds == seconds


@pytest.mark.parametrize("value", ["0", "-3", "abc", "1.5"])
def test_a_bad_export_timeout_refuses_to_start(env, value):
    """Zero, negative, not a number, not whole: a ConfigError naming the setting, from the
    settings and from the app factory alike."""
    env.setenv("EXPORT_TIMEOUT_SECONDS", value)
    with pytest.raises(ConfigError, match="EXPORT_TIMEOUT_SECONDS"):
        load_settings()
    from app import create_app

    with pytest.raises(ConfigError, match="EXPORT_TIMEOUT_SECONDS"):
        started = create_app()
        started.extensions["db_pool"].close()  # only reached when it wrongly starts


def test_gunicorn_refuses_to_start_with_a_bad_export_timeout(database_url, tmp_path):
    """`gunicorn wsgi:app` with EXPORT_TIMEOUT_SECONDS=0 exits (its worker cannot boot)
    instead of serving, and its log names the setting."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "JWT_"))}
    env.update(
        {
            "JWT_SECRET_KEY": TEST_SECRET,
            "JWT_ALGORITHM": "HS256",
            "DATABASE_URL": database_url,
            "EXPORT_TIMEOUT_SECONDS": "0",
        }
    )
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(GUNICORN), "--bind", f"127.0.0.1:{port}", "--workers", "1", "wsgi:app"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while process.poll() is None:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
                pytest.fail(f"gunicorn serves with EXPORT_TIMEOUT_SECONDS=0:\n{log.read_text()}")
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert time.monotonic() < deadline, "gunicorn neither served nor exited"
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
    assert process.returncode != 0
    assert "EXPORT_TIMEOUT_SECONDS" in log.read_text()


# --- a large world, exported under gunicorn ----------------------------------------------

BULK_UPLOADS = 20_000
BULK_SESSIONS = 200
# Each upload's filename alone is this long, so the uploads CSV is over 12 MB (~17 MB in
# all): much more than the client reads before hanging up plus all the kernel can buffer
# between the worker and the client, so the worker is still mid-export when it hangs up.
FILENAME_PAD = 600
EXPORT_AT_LEAST = BULK_UPLOADS * FILENAME_PAD
READ_BEFORE_HANGING_UP = 1_000_000
FREED_WITHIN = 2.0  # seconds from the hang-up to a free worker and backend
ANSWER_MARGIN = 0.5  # what the next request may take on its own, once the worker is free
RECEIVE_BUFFER = 16_384
# The slow reader of the time limit's test takes 16 KiB every 8 ms (at most 2 MB/s): the
# whole export would take over 6 s, far past a 1-second limit.
READ_CHUNK = 16_384
READ_PAUSE = 0.008
EXPORT_PATH = "/api/v1/uploads?format=csv"
LIST_PATH = "/api/v1/uploads?pageSize=3"
# Set-wise, a statement per table (the rollup triggers count each statement in one pass).
BULK_SQL = """
INSERT INTO users (id, email, name) VALUES (%(user)s, 'limits@example.com', 'Limits');
INSERT INTO projects (id, name, owner_id, created_at)
    VALUES (%(project)s, 'Limits', %(user)s, now() - interval '1 year');
INSERT INTO upload_sessions (id, project_id, created_at, expires_at, status, tags,
                             long_polling_enabled)
    SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, %(project)s,
           now() - g * interval '1 minute', now() + interval '1 day', 'active',
           ARRAY['limits'], false
    FROM generate_series(1, %(sessions)s) AS g;
INSERT INTO destinations (id, session_id, type)
    SELECT ('10000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
           ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'webhook'
    FROM generate_series(1, %(sessions)s) AS g;
INSERT INTO uploads (id, session_id, project_id, filename, size_bytes, mime_type, source,
                     is_encrypted, created_at)
    SELECT ('20000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
           ('00000000-0000-4000-8000-' || lpad(to_hex(g %% %(sessions)s + 1), 12, '0'))::uuid,
           %(project)s, repeat('x', %(pad)s) || ' ' || g || '.jpg', g, 'image/jpeg',
           'camera', false, now() - g * interval '1 millisecond'
    FROM generate_series(1, %(uploads)s) AS g;
INSERT INTO deliveries (upload_id, destination_id, session_id, project_id, status)
    SELECT ('20000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
           ('10000000-0000-4000-8000-' || lpad(to_hex(g %% %(sessions)s + 1), 12, '0'))::uuid,
           ('00000000-0000-4000-8000-' || lpad(to_hex(g %% %(sessions)s + 1), 12, '0'))::uuid,
           %(project)s, CASE WHEN g %% 3 = 0 THEN 'failed' ELSE 'sent' END
    FROM generate_series(1, %(uploads)s) AS g;
"""


def largest_send_buffer():
    """The most a TCP socket here can hold unsent (Linux; 4 MiB elsewhere)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as settings:
            return int(settings.read().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * 1024 * 1024


@pytest.fixture(scope="module")
def big_world(database_url):
    """One user owning one project of 20,000 uploads with long filenames, built once for
    the module (its tests only read it) on an emptied database."""
    user, project = str(uuid.uuid4()), str(uuid.uuid4())
    params = {
        "user": user,
        "project": project,
        "sessions": BULK_SESSIONS,
        "uploads": BULK_UPLOADS,
        "pad": FILENAME_PAD,
    }
    with database.connect(database_url, autocommit=True) as conn:
        empty_tables(conn)
        with conn.transaction():
            for statement in BULK_SQL.split(";\n"):
                if statement.strip():
                    conn.execute(statement, params)
        conn.execute("ANALYZE")
        newest = [
            str(row["id"])
            for row in conn.execute(
                "SELECT id FROM uploads ORDER BY created_at DESC, id DESC LIMIT 3"
            )
        ]
    # The hang-up happens mid-export only if the export outgrows all that can be in flight.
    assert READ_BEFORE_HANGING_UP + 2 * largest_send_buffer() < EXPORT_AT_LEAST
    return SimpleNamespace(token=make_token(user), newest=newest)


def host_port(base):
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


def assert_the_list_answers(base, world, timeout):
    """The worker answers a plain list request with the right JSON (the 3 newest uploads
    of 20,000), within `timeout` seconds."""
    try:
        response = requests.get(base + LIST_PATH, headers=bearer(world.token), timeout=timeout)
    except requests.Timeout:
        pytest.fail(f"the worker did not answer within {timeout:.1f} s: still busy?")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [row["id"] for row in body["data"]] == world.newest
    assert body["total"] == BULK_UPLOADS


def api_backends(watcher, since):
    """{pid: state} of the API's database backends (application_name apertur-api) that
    connected at or after `since`: the gunicorn's, not the in-process test app's."""
    return {
        row["pid"]: row["state"]
        for row in watcher.execute(
            "SELECT pid, state FROM pg_stat_activity WHERE application_name = 'apertur-api'"
            " AND datname = current_database() AND backend_start >= %s",
            [since],
        )
    }


def busy(backends):
    """The backends doing anything but waiting idle: running a statement, or holding a
    transaction open (idle in transaction, aborted or not)."""
    return {pid: state for pid, state in backends.items() if state != "idle"}


def hang_up_mid_export(base, token):
    """Start an uploads CSV export on a raw socket with a small receive buffer, take its
    first megabyte, then close the socket abruptly (RST); returns the moment it closed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.settimeout(10)
        sock.connect(host_port(base))
        sock.sendall(
            f"GET {EXPORT_PATH} HTTP/1.1\r\nHost: {base.removeprefix('http://')}\r\n"
            f"Authorization: Bearer {token}\r\n\r\n".encode()
        )
        received = bytearray()
        while len(received) < READ_BEFORE_HANGING_UP:
            data = sock.recv(65_536)
            assert data, f"the export ended after {len(received)} bytes"
            received += data
        head = bytes(received.split(b"\r\n\r\n", 1)[0]).lower()
        assert head.startswith(b"http/1.1 200"), head
        assert b"transfer-encoding: chunked" in head, head
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()
    return time.monotonic()


def workers_of(process):
    return {child.pid for child in psutil.Process(process.pid).children()}


def log_lines(log):
    """The JSON lines of a gunicorn log."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def cut_short_lines(log, within):
    """The 'export cut short' lines of apertur.exports, waiting up to `within` seconds for
    at least one."""
    deadline = time.monotonic() + within
    while True:
        found = [
            line
            for line in log_lines(log)
            if line.get("logger") == "apertur.exports" and line.get("message") == "export cut short"
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_client_that_hangs_up_mid_export_frees_its_worker_and_backend(
    big_world, database_url, tmp_path
):
    """One worker, one pooled connection. A client takes the first megabyte of a ~17 MB
    CSV export and hangs up (RST). Within 2 s no backend of the API is still running the
    export or holding its transaction; the same worker then answers the next request
    correctly, on the same backend (the connection went back to the pool, usable), and the
    worker was neither killed nor replaced."""
    log = tmp_path / "gunicorn.log"
    with database.connect(database_url, autocommit=True) as watcher:
        since = watcher.execute("SELECT clock_timestamp() AS now").fetchone()["now"]
        with running_gunicorn(
            log,
            workers=1,
            DATABASE_URL=database_url,
            DB_POOL_MIN_SIZE="1",
            DB_POOL_MAX_SIZE="1",
            EXPORT_TIMEOUT_SECONDS="600",
        ) as (base, process):
            workers = workers_of(process)
            assert_the_list_answers(base, big_world, timeout=10)
            backends = api_backends(watcher, since)
            assert list(backends.values()) == ["idle"], backends

            hung_up = hang_up_mid_export(base, big_world.token)
            while (still := busy(api_backends(watcher, since))) and (
                time.monotonic() < hung_up + FREED_WITHIN
            ):
                time.sleep(0.02)
            assert not still, f"API backends still busy {FREED_WITHIN} s after the hang-up: {still}"
            left = hung_up + FREED_WITHIN + ANSWER_MARGIN - time.monotonic()
            assert_the_list_answers(base, big_world, timeout=max(left, 0.1))
            assert api_backends(watcher, since) == backends, "the pooled connection was not kept"
            assert workers_of(process) == workers
    assert "WORKER TIMEOUT" not in log.read_text()


def test_a_hang_up_mid_export_is_logged_as_client_gone(big_world, database_url, tmp_path):
    """The export cut short by the client leaves one JSON line on apertur.exports:
    'export cut short', reason 'client gone'."""
    log = tmp_path / "gunicorn.log"
    with running_gunicorn(
        log, workers=1, DATABASE_URL=database_url, EXPORT_TIMEOUT_SECONDS="600"
    ) as (base, _):
        hang_up_mid_export(base, big_world.token)
        lines = cut_short_lines(log, within=FREED_WITHIN)
        assert_the_list_answers(base, big_world, timeout=10)
    assert [line.get("reason") for line in lines] == ["client gone"], lines


class SmallWindowConnection(http.client.HTTPConnection):
    """HTTP over a socket with a small receive buffer, so that little of the answer waits
    on the reader's side: a slow reader holds the server back."""

    def connect(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.settimeout(10)
        sock.connect((self.host, self.port))
        self.sock = sock


def test_an_export_past_its_time_limit_is_cut_short_and_logged(big_world, database_url, tmp_path):
    """EXPORT_TIMEOUT_SECONDS=1 and a client reading at most 2 MB/s: the export (over
    12 MB) is cut short, not before the limit and long before its end; the chunked body
    has no final chunk (http.client: IncompleteRead). The log has one JSON line on
    apertur.exports, 'export cut short' with reason 'timeout', and the worker serves on."""
    log = tmp_path / "gunicorn.log"
    with running_gunicorn(
        log, workers=1, DATABASE_URL=database_url, EXPORT_TIMEOUT_SECONDS="1"
    ) as (base, _):
        connection = SmallWindowConnection(*host_port(base))
        try:
            started = time.monotonic()
            connection.request("GET", EXPORT_PATH, headers=bearer(big_world.token))
            response = connection.getresponse()
            assert response.status == 200
            assert response.getheader("Transfer-Encoding") == "chunked"
            received = 0
            with pytest.raises(http.client.IncompleteRead):
                while chunk := response.read(READ_CHUNK):
                    received += len(chunk)
                    if received >= EXPORT_AT_LEAST:
                        pytest.fail(
                            f"{received} bytes read in {time.monotonic() - started:.1f} s and"
                            " no cut: the export outlived EXPORT_TIMEOUT_SECONDS=1"
                        )
                    time.sleep(READ_PAUSE)
            ended = time.monotonic() - started
        finally:
            connection.close()
        lines = cut_short_lines(log, within=2)
        assert_the_list_answers(base, big_world, timeout=10)
    assert ended >= 1.0, f"cut after {ended:.2f} s, before the 1-second limit"
    assert 0 < received < EXPORT_AT_LEAST
    assert [line.get("reason") for line in lines] == ["timeout"], lines
