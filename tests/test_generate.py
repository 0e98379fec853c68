"""`demo-data --uploads N`: the large benchmark world, generated inside PostgreSQL."""

import json

from auth import hash_api_key
from queries.generate import PROJECTS, USERS, generate_world
from tests.conftest import empty_tables, make_token

UPLOADS = 3000


def scalar(db, query, *params):
    return next(iter(db.execute(query, params).fetchone().values()))


def test_world_has_the_promised_shape(db, get):
    callers = generate_world(db, uploads=UPLOADS, seed=5)
    assert scalar(db, "SELECT count(*) FROM uploads") == UPLOADS
    assert scalar(db, "SELECT count(*) FROM projects") == PROJECTS
    assert scalar(db, "SELECT count(*) FROM users") == USERS
    assert scalar(db, "SELECT count(*) FROM api_keys") == PROJECTS
    statuses = {r["status"] for r in db.execute("SELECT DISTINCT status FROM deliveries")}
    assert statuses == {"sent", "failed", "pending"}
    # Foreign keys were skipped while writing: prove the rows are consistent anyway.
    assert scalar(
        db,
        """
        SELECT count(*) FROM deliveries d
        JOIN uploads u ON u.id = d.upload_id
        JOIN destinations t ON t.id = d.destination_id
        JOIN upload_sessions s ON s.id = u.session_id
        WHERE t.session_id = u.session_id AND d.session_id = u.session_id
          AND d.project_id = s.project_id AND u.project_id = s.project_id""",
    ) == scalar(db, "SELECT count(*) FROM deliveries")
    months = scalar(
        db, "SELECT count(DISTINCT date_trunc('month', created_at)) FROM upload_sessions"
    )
    assert months >= 20
    heavy = get("/api/v1/stats", make_token(str(callers["heavy_user_id"]))).get_json()
    light = get("/api/v1/stats", make_token(str(callers["light_user_id"]))).get_json()
    key = get("/api/v1/stats", callers["api_key"]).get_json()
    assert heavy["totalProjects"] == 200 and heavy["sessionsThisMonth"] > 0
    assert light["totalProjects"] == 1 and light["imagesUploaded"] < heavy["imagesUploaded"]
    assert key["totalProjects"] == 1
    key_project = scalar(
        db, "SELECT project_id FROM api_keys WHERE key_hash = %s", hash_api_key(callers["api_key"])
    )
    heavy_projects = {
        r["id"]
        for r in db.execute(
            "SELECT id FROM projects WHERE owner_id = %s UNION "
            "SELECT project_id FROM members WHERE user_id = %s",
            (callers["heavy_user_id"], callers["heavy_user_id"]),
        )
    }
    assert key_project in heavy_projects


def test_indexes_set_aside_for_the_load_are_all_back_and_the_world_is_analyzed(db):
    """The generator drops secondary indexes while it loads; each must come back as it was."""

    def indexes():
        return {
            r["indexdef"]
            for r in db.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'")
        }

    before = indexes()
    generate_world(db, uploads=500, seed=4)
    assert indexes() == before
    assert any("uploads_recent_idx" in definition for definition in before)
    assert scalar(db, "SELECT reltuples FROM pg_class WHERE oid = 'uploads'::regclass") == 500
    assert scalar(
        db,
        "SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL "
        "FROM pg_stat_user_tables WHERE relname = 'uploads'",
    )


def test_same_seed_same_world(db):
    def fingerprint():
        return scalar(
            db,
            "SELECT md5(string_agg(u.id::text || ':' || u.session_id::text, ',' "
            "ORDER BY u.id)) FROM uploads u",
        )

    generate_world(db, uploads=500, seed=9)
    first = fingerprint()
    empty_tables(db)
    generate_world(db, uploads=500, seed=9)
    assert fingerprint() == first
    empty_tables(db)
    generate_world(db, uploads=500, seed=10)
    assert fingerprint() != first


def test_command_prints_the_callers_as_one_json_line(app, db):
    result = app.test_cli_runner().invoke(args=["demo-data", "--uploads", "400", "--seed", "3"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert set(line) == {"heavyUserId", "lightUserId", "apiKey"}
    assert line["apiKey"].startswith("aptr_")
    assert scalar(db, "SELECT count(*) FROM uploads") == 400
