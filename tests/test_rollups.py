"""Rollups: trigger-maintained counts agree with the base tables after every kind of write."""

import random
import threading
import time
import uuid
from datetime import timedelta

import psycopg
import pytest

import database
from queries.rollups import rollup_drift
from tests.builders import NOW
from tests.conftest import make_token


@pytest.fixture
def shop(world):
    """Two projects, sessions with destinations, uploads with every mix of results."""
    owner = world.user("Owner")
    projects = [world.project(owner, name) for name in ("Acme", "Beta")]
    sessions = []
    for n, project in enumerate(projects * 2):
        session = world.session(
            project,
            created_at=NOW - timedelta(days=40 * n),
            destinations=("webhook", "s3", "webhook"),
        )
        sessions.append(session)
        for statuses in (
            ["sent", "sent", "sent"],
            ["failed"],
            ["sent", "failed", "pending"],
            [],
            ["pending", "pending"],
        ):
            world.upload(session, statuses)
    world.load()
    return {"owner": owner, "projects": projects, "sessions": sessions}


def assert_no_drift(db):
    assert rollup_drift(db) == []


def test_loaded_world_has_no_drift(db, shop):
    assert_no_drift(db)


@pytest.mark.parametrize(
    "write",
    [
        "UPDATE deliveries SET status = 'failed' WHERE status = 'sent'",
        "UPDATE deliveries SET status = 'sent' WHERE status = 'pending'",
        "UPDATE deliveries SET status = 'pending'",
        "DELETE FROM deliveries WHERE status = 'sent'",
        "DELETE FROM uploads WHERE id IN "
        "(SELECT upload_id FROM deliveries WHERE status = 'failed')",
        "DELETE FROM destinations WHERE type = 's3'",
        "DELETE FROM upload_sessions WHERE id IN (SELECT id FROM upload_sessions LIMIT 2)",
        "UPDATE upload_sessions SET created_at = created_at - interval '45 days'",
        "UPDATE upload_sessions SET status = 'completed' "
        "WHERE id IN (SELECT id FROM upload_sessions LIMIT 1)",
        "UPDATE uploads SET created_at = created_at - interval '3 days'",
        "DELETE FROM projects WHERE name = 'Beta'",
        # What the series count by: a delivery's destination type, an upload's size,
        # source and time, a delivery moved to another destination of its session.
        "UPDATE destinations SET type = 'renamed' WHERE type = 'webhook'",
        "DELETE FROM destinations WHERE id IN (SELECT destination_id FROM deliveries LIMIT 3)",
        "UPDATE uploads SET size_bytes = size_bytes * 3 + 1, source = 'url'",
        "UPDATE uploads SET created_at = created_at + interval '7 minutes'",
        "UPDATE deliveries d SET destination_id = t.id FROM destinations t "
        "WHERE t.session_id = d.session_id AND t.type = 's3' AND d.upload_id IN "
        "(SELECT upload_id FROM deliveries GROUP BY upload_id HAVING count(*) = 1)",
        "DELETE FROM upload_sessions",
        "TRUNCATE deliveries",
        "TRUNCATE upload_sessions CASCADE",
    ],
)
def test_every_kind_of_write_keeps_rollups_exact(db, shop, write):
    db.execute(write)
    assert_no_drift(db)


def test_api_totals_follow_writes(db, shop, get):
    token = make_token(shop["owner"])
    db.execute("DELETE FROM uploads WHERE id IN (SELECT id FROM uploads LIMIT 3)")
    db.execute("UPDATE deliveries SET status = 'sent' WHERE status = 'failed'")
    live = db.execute("""
        SELECT (SELECT count(*) FROM uploads) AS uploads,
               (SELECT count(DISTINCT upload_id) FROM deliveries WHERE status = 'sent')
                   AS delivered,
               (SELECT count(*) FROM upload_sessions) AS sessions""").fetchone()
    stats = get("/api/v1/stats", token).get_json()
    assert (stats["imagesUploaded"], stats["imagesDelivered"], stats["sessionsTotal"]) == (
        live["uploads"],
        live["delivered"],
        live["sessions"],
    )
    assert stats["deliverySuccessRate"] == 100
    assert get("/api/v1/uploads", token).get_json()["total"] == live["uploads"]
    assert get("/api/v1/sessions", token).get_json()["total"] == live["sessions"]


def test_status_filtered_totals_follow_writes(db, shop, get):
    """All-time status totals come from the per-status rollup, windowed ones from the
    status index: after deliveries change, both agree with a fresh count of the base tables."""
    token = make_token(shop["owner"])
    db.execute("UPDATE deliveries SET status = 'sent' WHERE status = 'pending'")
    db.execute(
        "DELETE FROM deliveries WHERE upload_id IN (SELECT upload_id FROM deliveries "
        "WHERE status = 'failed' LIMIT 2)"
    )
    statuses = db.execute("""
        SELECT status, count(*) AS n FROM (
            SELECT CASE WHEN count(d.upload_id) = 0 THEN 'stored_only'
                        WHEN count(*) FILTER (WHERE d.status = 'sent') = count(d.upload_id)
                            THEN 'delivered'
                        WHEN count(*) FILTER (WHERE d.status = 'failed') = 0 THEN 'pending'
                        WHEN count(*) FILTER (WHERE d.status = 'sent') = 0 THEN 'failed'
                        ELSE 'partial' END AS status
            FROM uploads u LEFT JOIN deliveries d ON d.upload_id = u.id GROUP BY u.id) AS s
        GROUP BY status""").fetchall()
    counted = {row["status"]: row["n"] for row in statuses}
    assert len(counted) >= 3
    window = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
    for status in ("stored_only", "delivered", "pending", "failed", "partial"):
        for extra in ({}, window):
            body = get(
                "/api/v1/uploads", token, query_string={"status": status, **extra}
            ).get_json()
            assert body["total"] == counted.get(status, 0), (status, extra)


def test_session_status_totals_follow_writes_and_time(db, shop, get):
    """All-time totals by reported status come from the stored-status rollup and the live
    sessions: after status changes and expiries they match a fresh count."""
    token = make_token(shop["owner"])
    first, second, third = shop["sessions"][:3]
    db.execute("UPDATE upload_sessions SET status = 'pending' WHERE id = %s", (first,))
    db.execute(
        "UPDATE upload_sessions SET expires_at = now() - interval '1 second' WHERE id IN (%s, %s)",
        (first, second),
    )
    db.execute("UPDATE upload_sessions SET status = 'failed' WHERE id = %s", (third,))
    counted = {
        row["status"]: row["n"]
        for row in db.execute("""
        SELECT CASE WHEN status IN ('pending', 'active') AND expires_at <= now()
                    THEN 'expired' ELSE status END AS status, count(*) AS n
        FROM upload_sessions GROUP BY 1""")
    }
    assert {"expired", "active", "failed"} <= set(counted)
    for statuses in (
        "pending",
        "active",
        "expired",
        "completed",
        "failed",
        "expired,active",
        "pending,active,expired,completed,failed",
    ):
        body = get("/api/v1/sessions", token, query_string={"status": statuses}).get_json()
        assert body["total"] == sum(counted.get(s, 0) for s in statuses.split(",")), statuses


def test_window_totals_follow_writes(db, shop, get):
    """Window totals add the day rollups' whole days to the part-days counted at the ends:
    after uploads move in time, windows on and off day boundaries match a fresh count."""
    token = make_token(shop["owner"])
    # Every 7 hours from a midnight on: rows at every time of day, over six days.
    db.execute("""UPDATE uploads u SET created_at = '2026-01-01T00:00:00Z'::timestamptz
                                                    + n * interval '7 hours'
                  FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM uploads) AS o
                  WHERE o.id = u.id""")
    assert_no_drift(db)
    moments = [row["created_at"] for row in db.execute("SELECT created_at FROM uploads")]
    start = min(moments).replace(hour=0, minute=0, second=0, microsecond=0)
    for lower, upper in [
        (start, start + timedelta(days=4)),
        (start + timedelta(hours=5), start + timedelta(days=3, hours=8)),
        (start + timedelta(hours=8), start + timedelta(hours=20)),
        (start + timedelta(days=1), start + timedelta(days=1, hours=14)),
        (None, start + timedelta(days=2, minutes=3)),
        (start + timedelta(days=1, hours=7, microseconds=1), None),
    ]:
        query = {}
        if lower:
            query["from"] = lower.isoformat()
        if upper:
            query["to"] = upper.isoformat()
        expected = sum(
            1 for m in moments if (lower is None or m >= lower) and (upper is None or m < upper)
        )
        body = get("/api/v1/uploads", token, query_string=query).get_json()
        assert body["total"] == expected, query


def _writer(url, sessions, seed, errors):
    """Insert uploads with deliveries and flip delivery results, retrying lost races."""
    rng = random.Random(seed)
    with database.connect(url) as conn:
        for _ in range(25):
            # Random rows updated in random order deadlock now and then: retry those.
            for _attempt in range(30):
                try:
                    with conn.transaction():
                        session = rng.choice(sessions)
                        row = conn.execute(
                            "SELECT project_id FROM upload_sessions WHERE id = %s", (session,)
                        ).fetchone()
                        upload = uuid.uuid4()
                        conn.execute(
                            "INSERT INTO uploads (id, session_id, project_id, filename, "
                            "size_bytes, mime_type, source, created_at) VALUES "
                            "(%s, %s, %s, 'c.jpg', 1, 'image/jpeg', 'camera', now())",
                            (upload, session, row["project_id"]),
                        )
                        conn.execute(
                            "INSERT INTO deliveries (upload_id, destination_id, session_id, "
                            "project_id, status) SELECT %s, id, session_id, %s, %s "
                            "FROM destinations WHERE session_id = %s",
                            (
                                upload,
                                row["project_id"],
                                rng.choice(["sent", "failed", "pending"]),
                                session,
                            ),
                        )
                        conn.execute(
                            "UPDATE deliveries SET status = %s WHERE ctid IN "
                            "(SELECT ctid FROM deliveries WHERE project_id = %s "
                            "ORDER BY random() LIMIT 2)",
                            (rng.choice(["sent", "failed", "pending"]), row["project_id"]),
                        )
                    break
                except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                    time.sleep(rng.random() / 20)
            else:
                errors.append("gave up after 30 deadlocks in a row")


def test_concurrent_writers_leave_no_drift(db, database_url, shop):
    errors = []
    threads = [
        threading.Thread(target=_writer, args=(database_url, shop["sessions"], n, errors))
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert db.execute("SELECT count(*) AS n FROM uploads").fetchone()["n"] == 20 + 4 * 25
    assert_no_drift(db)
    # The writers spread over slots instead of queueing on one row per project.
    slots = db.execute("SELECT count(DISTINCT slot) AS n FROM project_rollups").fetchone()["n"]
    assert slots > 1


def test_reconcile_reports_and_fixes_drift(app, db, shop):
    db.execute("UPDATE project_rollups SET uploads = uploads + 7 WHERE slot = 0")
    db.execute("UPDATE session_rollups SET images_failed = images_failed + 1")
    runner = app.test_cli_runner()
    report = runner.invoke(args=["reconcile"])
    assert report.exit_code == 1
    assert "project_rollups" in report.output and "session_rollups" in report.output
    fixed = runner.invoke(args=["reconcile", "--fix"])
    assert fixed.exit_code == 0, fixed.output
    assert "0 rollup rows drift now" in fixed.output
    assert_no_drift(db)
    assert runner.invoke(args=["reconcile"]).exit_code == 0
