"""Reading from a hot standby: same answers as the primary, writes replicated, writes refused."""

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta

import psycopg
import pytest
import requests

import database
import embedded_postgres
from app import create_app
from fixture import load_fixture
from queries.migrations import apply_migrations
from tests.builders import NOW, World
from tests.conftest import bearer, make_token
from tests.servers import REPO, running_gunicorn
from tests.spec import ENDPOINTS

REPLAY_WITHIN = 10.0
PG_BASEBACKUP = embedded_postgres.pg_binary("pg_basebackup")
PG_CTL = embedded_postgres.pg_binary("pg_ctl")

pytestmark = pytest.mark.skipif(
    not (PG_BASEBACKUP and PG_CTL),
    reason="pg_basebackup/pg_ctl not found (pgserver wheel or PostgreSQL binaries needed "
    "to build a streaming replica)",
)


def _start_primary(data_dir):
    """embedded_postgres.start in a child process, so pgserver's per-process handle and
    exit hooks never outlive the data dir this module deletes (as in test_faults)."""
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


def _allow_local_replication(data_dir, url):
    """Make sure pg_hba.conf lets replication connections in over the unix socket."""
    hba = data_dir / "pg_hba.conf"
    lines = [
        line.split()
        for line in hba.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if ["local", "replication", "all", "trust"] not in [line[:4] for line in lines]:
        with hba.open("a") as out:
            out.write("\nlocal   replication     all                                     trust\n")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")


def _start_replica(primary_dir, replica_dir):
    """pg_basebackup -R of the primary into replica_dir, started as a hot standby."""
    replica_dir.mkdir(mode=0o700)
    owner = embedded_postgres.server_owner()
    if owner:
        shutil.chown(replica_dir, owner, owner)
    embedded_postgres.run_as_owner(
        [
            PG_BASEBACKUP,
            "-D",
            str(replica_dir),
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",
            "-d",
            f"host={primary_dir} user=postgres",
        ]
    )
    # The primary's socket lives in its data dir, so the backup copied its lock file too.
    for stale in replica_dir.glob(".s.PGSQL.*"):
        stale.unlink()
    try:
        embedded_postgres.run_as_owner(
            [
                PG_CTL,
                "-D",
                str(replica_dir),
                "-l",
                str(replica_dir / "server.log"),
                "-w",
                "-o",
                f"-c unix_socket_directories='{replica_dir}' -c listen_addresses='' "
                "-c hot_standby=on",
                "start",
            ]
        )
    except subprocess.CalledProcessError as exc:
        log = (replica_dir / "server.log").read_text(errors="replace")
        pytest.fail(f"the standby did not start: {exc.stdout}{exc.stderr}\n{log}")
    return f"postgresql://postgres:@/postgres?host={replica_dir}"


def _world():
    """Ada owns Acme (a key, two sessions, three uploads); Grace owns Other, outside her scope."""
    world = World()
    ada = world.user("Ada")
    acme = world.project(ada, "Acme")
    key = world.api_key(acme)
    first = world.session(
        acme, created_at=NOW - timedelta(hours=2), tags=["wedding"], destinations=("webhook", "s3")
    )
    world.upload(first, ["sent", "failed"], created_at=NOW - timedelta(minutes=50))
    world.upload(first, ["pending", "sent"], created_at=NOW - timedelta(minutes=40))
    second = world.session(acme, created_at=NOW - timedelta(minutes=30))
    world.upload(second, [], created_at=NOW - timedelta(minutes=20))
    grace = world.user("Grace")
    world.upload(world.session(world.project(grace, "Other")), ["sent"])
    return world, {"jwt": make_token(ada), "key": key}, {"ada": ada, "acme": acme}


def _wait_for_replay(primary_url, replica_url):
    """Block until the replica has replayed everything the primary has written so far."""
    # Aim at a record boundary that is surely flushed: the primary's insert position, read
    # in a transaction that then commits (a commit flushes past it). The write or flush
    # position may end inside a record half-flushed at a page boundary, which the standby
    # cannot replay until more WAL comes; with nothing else written, it waited in vain.
    with database.connect(primary_url) as primary:
        primary.execute("SELECT txid_current()")
        target = primary.execute("SELECT pg_current_wal_insert_lsn()::text AS lsn").fetchone()[
            "lsn"
        ]
        primary.commit()
    with database.connect(replica_url, autocommit=True) as replica:
        deadline = time.monotonic() + REPLAY_WITHIN
        while not replica.execute(
            "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn AS done", (target,)
        ).fetchone()["done"]:
            assert time.monotonic() < deadline, f"replica did not replay {target} in time"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(app):
    """A primary with the schema and a small world, a streaming hot standby of it, and an
    app on each; every server and data dir is removed afterwards."""
    # Under .dev/, not tmp_path: as root the servers run as a user that must traverse it.
    primary_dir = REPO / ".dev" / f"replica-primary-{os.getpid()}"
    replica_dir = REPO / ".dev" / f"replica-standby-{os.getpid()}"
    apps = []
    try:
        for data_dir in (replica_dir, primary_dir):
            embedded_postgres.stop(data_dir)
            shutil.rmtree(data_dir, ignore_errors=True)
        primary_url = _start_primary(primary_dir)
        _allow_local_replication(primary_dir, primary_url)
        world, credentials, ids = _world()
        with database.connect(primary_url) as conn:
            apply_migrations(conn)
            load_fixture(conn, world.doc)
        replica_url = _start_replica(primary_dir, replica_dir)
        settings = app.config["SETTINGS"]
        for url in (primary_url, replica_url):
            apps.append(create_app(dataclasses.replace(settings, database_url=url)))
        yield {
            "primary_url": primary_url,
            "replica_url": replica_url,
            "primary": apps[0].test_client(),
            "replica": apps[1].test_client(),
            "replica_app": apps[1],
            "credentials": credentials,
            **ids,
        }
    finally:
        for built in apps:
            built.extensions["db_pool"].close()
        for data_dir in (replica_dir, primary_dir):
            try:
                embedded_postgres.stop(data_dir)
            finally:
                shutil.rmtree(data_dir, ignore_errors=True)


def _get(client, path, credential):
    response = client.get(path, headers=bearer(credential))
    assert response.status_code == 200, (path, response.status_code, response.get_data(True))
    return response


def test_replica_is_a_hot_standby(cluster):
    """The replica really is in recovery and streaming from the primary."""
    with database.connect(cluster["replica_url"], autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery() AS r").fetchone()["r"] is True
    with database.connect(cluster["primary_url"], autocommit=True) as conn:
        assert (
            conn.execute(
                "SELECT count(*) AS n FROM pg_stat_replication WHERE state = 'streaming'"
            ).fetchone()["n"]
            == 1
        )


@pytest.mark.parametrize("kind", ["jwt", "key"])
@pytest.mark.parametrize("path", ENDPOINTS)
def test_replica_answers_exactly_as_the_primary(cluster, path, kind):
    """Every endpoint, both credentials: byte-identical JSON from the standby and the primary."""
    _wait_for_replay(cluster["primary_url"], cluster["replica_url"])
    credential = cluster["credentials"][kind]
    on_primary = _get(cluster["primary"], path, credential)
    on_replica = _get(cluster["replica"], path, credential)
    assert on_replica.get_data(as_text=True) == on_primary.get_data(as_text=True)
    body = on_replica.get_json()
    # Not vacuous: the world is visible (three uploads and two sessions in Acme).
    if isinstance(body, list):
        assert len(body) in (2, 3)
    elif "data" in body:
        assert body["total"] in (2, 3) and len(body["data"]) == body["total"]
    else:
        assert body["imagesUploaded"] == 3 and body["sessionsTotal"] == 2


def test_write_on_primary_shows_on_replica_with_rollups(cluster):
    """An upload written through the primary appears on the replica, rollup figures included."""
    credential = cluster["credentials"]["key"]
    replica = cluster["replica"]
    _wait_for_replay(cluster["primary_url"], cluster["replica_url"])
    stats_before = _get(replica, "/api/v1/stats", credential).get_json()
    uploads_before = _get(replica, "/api/v1/uploads", credential).get_json()

    more = World()
    session = more.session(cluster["acme"], created_at=NOW - timedelta(minutes=5))
    upload = more.upload(session, ["sent"], created_at=NOW - timedelta(minutes=1))
    with database.connect(cluster["primary_url"]) as conn:
        load_fixture(conn, more.doc)
    _wait_for_replay(cluster["primary_url"], cluster["replica_url"])

    stats = _get(replica, "/api/v1/stats", credential).get_json()
    assert stats["imagesUploaded"] == stats_before["imagesUploaded"] + 1
    assert stats["imagesDelivered"] == stats_before["imagesDelivered"] + 1
    assert stats["sessionsTotal"] == stats_before["sessionsTotal"] + 1
    assert stats["sessionsThisMonth"] == stats_before["sessionsThisMonth"] + 1
    uploads = _get(replica, "/api/v1/uploads", credential).get_json()
    assert uploads["total"] == uploads_before["total"] + 1
    newest = uploads["data"][0]
    assert (newest["id"], newest["status"], newest["destinationsDelivered"]) == (
        upload,
        "delivered",
        1,
    )
    sessions = _get(replica, "/api/v1/sessions/recent", credential).get_json()
    assert (sessions[0]["id"], sessions[0]["imagesCount"], sessions[0]["imagesDelivered"]) == (
        session,
        1,
        1,
    )
    # And the standby still agrees with the primary on every figure.
    for path in ENDPOINTS:
        assert _get(replica, path, credential).get_data(as_text=True) == _get(
            cluster["primary"], path, credential
        ).get_data(as_text=True)


def test_insert_through_the_replica_pool_is_refused(cluster):
    """Even with read-write asked for explicitly, the standby refuses an INSERT."""
    with cluster["replica_app"].extensions["db_pool"].connection() as conn:
        # The pool's own default is read-only; lift it so the refusal is the standby's.
        conn.execute("SET default_transaction_read_only = off")
        conn.commit()
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute(
                "INSERT INTO users (id, email, name) "
                "VALUES (gen_random_uuid(), 'x@example.com', 'X')"
            )
        conn.rollback()
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="during recovery"):
            conn.execute("SET TRANSACTION READ WRITE")
        conn.rollback()
        conn.execute("RESET default_transaction_read_only")
        conn.commit()


def test_gunicorn_on_the_replica_serves_the_same_bodies(cluster, tmp_path):
    """`gunicorn wsgi:app` with DATABASE_URL pointing at the standby: same JSON as the primary."""
    _wait_for_replay(cluster["primary_url"], cluster["replica_url"])
    with running_gunicorn(
        tmp_path / "gunicorn.log", workers=1, DATABASE_URL=cluster["replica_url"]
    ) as (base, _):
        for kind, credential in cluster["credentials"].items():
            for path in ENDPOINTS:
                response = requests.get(base + path, headers=bearer(credential), timeout=10)
                assert response.status_code == 200, (path, kind, response.text)
                assert response.text == _get(cluster["primary"], path, credential).get_data(
                    as_text=True
                )


@pytest.fixture
def impatient_standby(cluster):
    """The standby cancels conflicting queries at once instead of delaying replay (30 s default)."""
    with database.connect(cluster["replica_url"], autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET max_standby_streaming_delay = 0")
        conn.execute("SELECT pg_reload_conf()")
    try:
        yield
    finally:
        with database.connect(cluster["replica_url"], autocommit=True) as conn:
            conn.execute("ALTER SYSTEM RESET max_standby_streaming_delay")
            conn.execute("SELECT pg_reload_conf()")


def test_recovery_conflict_answers_503(cluster, impatient_standby):
    """A request whose standby transaction replay cancels (lock conflict) gets 503 unavailable."""
    replica_app = cluster["replica_app"]
    with replica_app.test_request_context("/api/v1/uploads"):
        conn = database.request_connection()
        try:
            conn.execute("BEGIN")  # API reads are single statements; a transaction keeps
            conn.execute("SELECT count(*) FROM uploads").fetchone()  # its AccessShareLock
            with database.connect(cluster["primary_url"]) as primary:
                primary.execute("LOCK TABLE uploads IN ACCESS EXCLUSIVE MODE")
            _wait_for_replay(cluster["primary_url"], cluster["replica_url"])
            with pytest.raises(psycopg.OperationalError, match="conflict with recovery") as caught:
                conn.execute("SELECT count(*) FROM uploads").fetchone()
            response = replica_app.make_response(replica_app.handle_user_exception(caught.value))
        finally:
            database.release_request_connection()
    assert response.status_code == 503
    body = response.get_json()
    assert list(body)[:2] == ["error", "message"] and set(body) <= {"error", "message", "requestId"}
    assert body["error"] == "unavailable" and "conflict" not in body["message"]
    # The pool replaced the cancelled connection: the next request is served normally.
    assert _get(cluster["replica"], "/api/v1/uploads", cluster["credentials"]["key"]).is_json


def test_readyz_names_the_standby_and_its_replay_lag(cluster):
    """Caught up: lag 0. With replay paused behind a write: at least the time since then."""
    _wait_for_replay(cluster["primary_url"], cluster["replica_url"])
    replica = cluster["replica"]
    assert replica.get("/readyz").get_json() == {
        "status": "ready",
        "role": "standby",
        "replayLagSeconds": 0.0,
    }
    assert cluster["primary"].get("/readyz").get_json() == {
        "status": "ready",
        "role": "primary",
        "replayLagSeconds": None,
    }
    with database.connect(cluster["replica_url"], autocommit=True) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            with database.connect(cluster["primary_url"]) as primary:
                primary.execute("CREATE TEMP TABLE lag_probe (n int)")  # WAL, nothing visible
                primary.execute("SELECT txid_current()")
            written = time.monotonic()
            deadline = written + REPLAY_WITHIN
            while True:  # until the standby has received the write it is not replaying
                body = replica.get("/readyz").get_json()
                if body["replayLagSeconds"] >= 1.0 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert body["role"] == "standby" and body["replayLagSeconds"] >= 1.0, body
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")
    _wait_for_replay(cluster["primary_url"], cluster["replica_url"])
    assert replica.get("/readyz").get_json()["replayLagSeconds"] == 0.0
