"""Request ids, Server-Timing and the one JSON log line per request (logs.py)."""

import json
import logging
import re
from dataclasses import replace

import pytest
from pythonjsonlogger.json import JsonFormatter

from app import create_app
from tests.conftest import TEST_SECRET, bearer, make_token

GENERATED_ID = re.compile(r"[0-9a-f]{32}")
SERVER_TIMING = re.compile(r"db;dur=(\d+\.\d), app;dur=(-?\d+\.\d)")


@pytest.fixture
def tenant(world):
    owner = world.user("Owner")
    project = world.project(owner, "Logged")
    key = world.api_key(project)
    world.session(project)
    world.load()
    key_id = world.doc["apiKeys"][0]["id"]
    return {"owner": owner, "jwt": make_token(owner), "key": key, "key_id": key_id}


def access_lines(caplog):
    """The access records of the captured requests, as the JSON lines the service writes."""
    formatter = JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        timestamp="time",
        rename_fields={"levelname": "level", "name": "logger"},
    )
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if record.name == "apertur.access"
    ]


@pytest.mark.parametrize(
    "given", ["abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "trace.id:42_x", "a" * 128]
)
def test_a_well_formed_request_id_is_kept(client, tenant, given):
    response = client.get("/api/v1/stats", headers={**bearer(tenant["key"]), "X-Request-Id": given})
    assert response.headers["X-Request-Id"] == given


@pytest.mark.parametrize(
    "given", ["", "a" * 129, "has space", 'quote"d', "new\\nline", '{"json":1}', "é"]
)
def test_a_malformed_or_missing_request_id_is_replaced(client, tenant, given):
    headers = bearer(tenant["key"])
    if given:
        headers["X-Request-Id"] = given
    response = client.get("/api/v1/stats", headers=headers)
    assert GENERATED_ID.fullmatch(response.headers["X-Request-Id"])


@pytest.mark.parametrize(
    "path, credential, status",
    [
        ("/api/v1/stats", "key", 200),
        ("/api/v1/stats", None, 401),
        ("/api/v1/sessions?page=0", "key", 400),
        ("/api/v1/nope", "key", 404),
        ("/healthz", None, 200),
        ("/readyz", None, 200),
    ],
)
def test_every_response_carries_its_id_and_errors_repeat_it(
    client, tenant, path, credential, status
):
    headers = bearer(tenant[credential]) if credential else {}
    response = client.get(path, headers={**headers, "X-Request-Id": "req-7"})
    assert response.status_code == status
    assert response.headers["X-Request-Id"] == "req-7"
    assert SERVER_TIMING.fullmatch(response.headers["Server-Timing"])
    if status >= 400:
        assert list(response.get_json()) == ["error", "message", "requestId"]
        assert response.get_json()["requestId"] == "req-7"


def test_server_timing_counts_database_time_only_when_the_database_was_asked(client, tenant):
    data = client.get("/api/v1/uploads", headers=bearer(tenant["key"]))
    refused = client.get("/api/v1/uploads", headers=bearer("garbage"))
    db_ms, app_ms = map(float, SERVER_TIMING.fullmatch(data.headers["Server-Timing"]).groups())
    assert db_ms > 0 and app_ms >= 0
    assert SERVER_TIMING.fullmatch(refused.headers["Server-Timing"]).group(1) == "0.0"


def test_one_json_line_per_request_with_caller_ids_never_credentials(client, tenant, caplog):
    caplog.set_level(logging.INFO, logger="apertur")
    client.get(
        "/api/v1/sessions?pageSize=5", headers={**bearer(tenant["jwt"]), "X-Request-Id": "one"}
    )
    client.get("/api/v1/stats", headers={**bearer(tenant["key"]), "X-Request-Id": "two"})
    client.get("/api/v1/stats", headers={**bearer(tenant["key"] + "x"), "X-Request-Id": "three"})
    client.get("/healthz")
    client.get("/readyz")
    lines = access_lines(caplog)
    assert [line["requestId"] for line in lines] == ["one", "two", "three"]
    first, second, third = lines
    assert first["route"] == "/api/v1/sessions" and first["method"] == "GET"
    assert first["status"] == 200 and first["callerKind"] == "user"
    assert first["callerId"] == tenant["owner"]
    assert second["callerKind"] == "api_key" and second["callerId"] == tenant["key_id"]
    assert third["status"] == 401 and third["callerId"] is None
    for line in lines:
        assert line["level"] == "INFO" and line["logger"] == "apertur.access" and line["time"]
        assert line["durationMs"] >= line["dbMs"] >= 0
        assert line["clientAddress"] == "127.0.0.1"
    text = json.dumps(lines)
    for secret in (tenant["jwt"], tenant["key"], TEST_SECRET):
        assert secret not in text


def test_an_unexpected_error_logs_its_stack_trace_but_answers_without_it(
    app, tenant, caplog, monkeypatch
):
    import api

    def broken(*args, **kwargs):
        raise RuntimeError("boom inside the view")

    monkeypatch.setattr(api, "read_in_scope", broken)
    caplog.set_level(logging.INFO, logger="apertur")
    response = app.test_client().get(
        "/api/v1/stats", headers={**bearer(tenant["key"]), "X-Request-Id": "err-1"}
    )
    assert response.status_code == 500
    assert "boom" not in response.get_data(as_text=True)
    assert response.get_json()["requestId"] == "err-1"
    errors = [r for r in caplog.records if r.name == "apertur.errors"]
    assert errors and "boom inside the view" in caplog.text and "Traceback" in caplog.text


def test_logging_is_configured_once_however_many_apps(app):
    for _ in range(3):
        other = create_app(replace(app.config["SETTINGS"]))
        other.extensions["db_pool"].close()
    handlers = [
        h for h in logging.getLogger("apertur").handlers if isinstance(h.formatter, JsonFormatter)
    ]
    assert len(handlers) == 1
