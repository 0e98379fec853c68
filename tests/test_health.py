"""/healthz and /readyz: unauthenticated probes for load balancers and orchestrators."""

import time
from dataclasses import replace
from uuid import uuid4

import pytest

from app import create_app
from queries.migrations import schema_files
from tests.conftest import bearer, make_token


def test_healthz_answers_without_credentials_and_ignores_bad_ones(client):
    for headers in ({}, {"Authorization": "Bearer garbage"}):
        response = client.get("/healthz", headers=headers)
        assert response.status_code == 200
        assert response.get_json() == {"status": "ok"}


def test_readyz_is_200_when_the_database_answers_and_the_schema_is_current(client):
    """On a primary it says so, with no replay lag (null; a standby's: test_replica)."""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "role": "primary", "replayLagSeconds": None}


def test_readyz_is_503_when_the_sessions_lack_the_services_settings(app):
    """Without startup options the settings must come from the role; the superuser the tests
    connect as has none, so the server's defaults (no statement timeout) would apply."""
    app = create_app(replace(app.config["SETTINGS"], prepared_statements=False))
    try:
        response = app.test_client().get("/readyz")
        # Nor does the API answer through such a session (its timestamps would not be UTC).
        answer = app.test_client().get("/api/v1/stats", headers=bearer(make_token(str(uuid4()))))
    finally:
        app.extensions["db_pool"].close()
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "unavailable"
    assert "statement_timeout" in body["message"] and "init-db" in body["message"]
    assert answer.status_code == 503 and answer.get_json()["error"] == "unavailable"


def test_readyz_is_503_naming_the_pending_migration(client, db):
    latest = schema_files()[-1][0]
    db.execute("DELETE FROM schema_migrations WHERE version = %s", [latest])
    try:
        response = client.get("/readyz")
    finally:
        db.execute("INSERT INTO schema_migrations (version) VALUES (%s)", [latest])
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "unavailable" and latest in body["message"]
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_promptly_when_the_database_cannot_be_reached(app):
    """A server that is not there: liveness stays 200, readiness says 503 within a second."""
    settings = replace(
        app.config["SETTINGS"],
        pool_timeout_seconds=3.0,
        database_url="postgresql://nobody@127.0.0.1:9/none",
    )
    app = create_app(settings)
    try:
        client = app.test_client()
        assert client.get("/healthz").status_code == 200
        started = time.monotonic()
        response = client.get("/readyz")
        assert time.monotonic() - started < 1.5
        assert response.status_code == 503
        assert response.get_json()["error"] == "unavailable"
    finally:
        app.extensions["db_pool"].close()


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_only_answer_get(client, path):
    response = client.post(path)
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
