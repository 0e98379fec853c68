"""CORS for configured dashboard origins (off by default) and ProxyFix for trusted proxies."""

import logging
from dataclasses import replace

import pytest

from app import create_app
from tests.conftest import bearer

DASHBOARD = "https://dash.example.com"


@pytest.fixture
def key(world):
    project = world.project(world.user("Owner"), "Cors")
    secret = world.api_key(project)
    world.load()
    return secret


@pytest.fixture
def make_app(app):
    """create_app with some settings changed; its pool is closed after the test."""
    made = []

    def build(**changes):
        built = create_app(replace(app.config["SETTINGS"], **changes))
        made.append(built)
        return built.test_client()

    yield build
    for built in made:
        built.extensions["db_pool"].close()


def preflight(client, origin=DASHBOARD, path="/api/v1/stats"):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )


def test_cors_is_off_by_default(client, key):
    response = client.get("/api/v1/stats", headers={**bearer(key), "Origin": DASHBOARD})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert preflight(client).status_code == 405


def test_a_configured_origin_may_read_and_sees_the_id_and_timing_headers(make_app, key):
    client = make_app(cors_origins=(DASHBOARD,))
    response = client.get("/api/v1/stats", headers={**bearer(key), "Origin": DASHBOARD})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == DASHBOARD
    exposed = {
        h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"x-request-id", "server-timing"} <= exposed
    answer = preflight(client)
    assert answer.status_code == 204 and answer.get_data() == b""
    assert answer.headers["Access-Control-Allow-Origin"] == DASHBOARD
    assert "GET" in answer.headers["Access-Control-Allow-Methods"]
    assert "authorization" in answer.headers["Access-Control-Allow-Headers"].lower()


def test_other_origins_unknown_paths_and_plain_options_are_not_helped(make_app, key):
    client = make_app(cors_origins=(DASHBOARD,))
    other = client.get("/api/v1/stats", headers={**bearer(key), "Origin": "https://evil.test"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Access-Control-Allow-Origin" not in preflight(client, "https://evil.test").headers
    assert preflight(client, path="/api/v1/nope").status_code == 404
    assert client.options("/api/v1/stats").status_code == 405  # not a preflight


@pytest.mark.parametrize("trusted, expected", [(0, "127.0.0.1"), (1, "203.0.113.7")])
def test_client_address_comes_from_forwarded_for_only_behind_trusted_proxies(
    make_app, key, caplog, trusted, expected
):
    client = make_app(trusted_proxies=trusted)
    caplog.set_level(logging.INFO, logger="apertur")
    client.get(
        "/api/v1/stats",
        headers={**bearer(key), "X-Forwarded-For": "203.0.113.7", "X-Request-Id": "proxied"},
    )
    line = next(r for r in caplog.records if getattr(r, "requestId", None) == "proxied")
    assert line.clientAddress == expected


def test_one_trusted_proxy_ignores_addresses_spoofed_before_it(make_app, key, caplog):
    """nginx appends the real peer: with one trusted hop only the last entry counts."""
    client = make_app(trusted_proxies=1)
    caplog.set_level(logging.INFO, logger="apertur")
    client.get(
        "/api/v1/stats",
        headers={
            **bearer(key),
            "X-Request-Id": "spoof",
            "X-Forwarded-For": "6.6.6.6, 198.51.100.9",
        },
    )
    line = next(r for r in caplog.records if getattr(r, "requestId", None) == "spoof")
    assert line.clientAddress == "198.51.100.9"
