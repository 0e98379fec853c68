"""Prometheus metrics (metrics.py): what is counted, who may scrape, and several workers."""

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import requests
from prometheus_client import REGISTRY
from prometheus_client.mmap_dict import MmapedDict

from app import create_app
from tests.conftest import bearer, make_token
from tests.servers import running_gunicorn


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def tenant(world):
    owner = world.user("Owner")
    key = world.api_key(world.project(owner, "Metered"))
    world.load()
    return {"owner": owner, "key": key}


def test_requests_are_counted_and_timed_by_route_and_status(client, tenant):
    labels = {"method": "GET", "route": "/api/v1/stats", "status": "200"}
    before = sample("apertur_http_requests_total", **labels)
    timed = sample(
        "apertur_http_request_duration_seconds_count", route="/api/v1/stats", status="200"
    )
    for _ in range(3):
        assert client.get("/api/v1/stats", headers=bearer(tenant["key"])).status_code == 200
    client.get("/no/such/path/12345")
    assert sample("apertur_http_requests_total", **labels) == before + 3
    assert (
        sample("apertur_http_request_duration_seconds_count", route="/api/v1/stats", status="200")
        == timed + 3
    )
    assert (
        sample("apertur_http_requests_total", method="GET", route="(unmatched)", status="404") >= 1
    )
    text = client.get("/metrics").get_data(as_text=True)
    assert "/no/such/path" not in text  # unknown paths never become labels
    assert 'apertur_db_pool_connections{state="in_use"}' in text


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({}, "missing_credential"),
        ({"Authorization": "Basic abc"}, "malformed_header"),
        ({"Authorization": "Bearer not.a.jwt"}, "invalid_token"),
        ({"Authorization": "Bearer aptr_unknown"}, "unknown_key"),
    ],
)
def test_auth_failures_are_counted_by_reason(client, tenant, headers, reason):
    before = sample("apertur_auth_failures_total", reason=reason)
    assert client.get("/api/v1/stats", headers=headers).status_code == 401
    assert sample("apertur_auth_failures_total", reason=reason) == before + 1


def test_expired_tokens_and_unknown_users_have_their_own_reasons(client, tenant):
    for token, reason in [
        (make_token(tenant["owner"], expires_in=-60), "expired_token"),
        (make_token("00000000-0000-0000-0000-000000000000"), "unknown_user"),
        (make_token(tenant["owner"], type="refresh"), "wrong_token_type"),
    ]:
        before = sample("apertur_auth_failures_total", reason=reason)
        assert client.get("/api/v1/stats", headers=bearer(token)).status_code == 401
        assert sample("apertur_auth_failures_total", reason=reason) == before + 1


def test_database_errors_are_counted(app, tenant):
    down = create_app(
        replace(
            app.config["SETTINGS"],
            pool_timeout_seconds=0.3,
            database_url="postgresql://nobody@127.0.0.1:9/none",
        )
    )
    try:
        before = sample("apertur_db_errors_total", kind="PoolTimeout")
        response = down.test_client().get("/api/v1/stats", headers=bearer(tenant["key"]))
        assert response.status_code == 503
        assert sample("apertur_db_errors_total", kind="PoolTimeout") == before + 1
    finally:
        down.extensions["db_pool"].close()


def test_only_allowed_addresses_may_scrape(app, client):
    inside = client.get("/metrics")  # the test client is 127.0.0.1
    assert inside.status_code == 200
    assert inside.headers["Content-Type"] == "text/plain; version=1.0.0; charset=utf-8"
    outside = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert outside.status_code == 404 and outside.get_json()["error"] == "not_found"
    assert (
        client.get("/metrics", environ_base={"REMOTE_ADDR": "/run/gunicorn.sock"}).status_code
        == 404
    )
    wider = create_app(replace(app.config["SETTINGS"], metrics_allow=()))
    try:
        assert wider.test_client().get("/metrics").status_code == 404
    finally:
        wider.extensions["db_pool"].close()


def test_every_worker_is_counted_whichever_one_is_scraped(database_url, tenant, tmp_path):
    """Two gunicorn workers share their figures: each scrape sees every request, whichever
    worker served it."""
    log = tmp_path / "gunicorn.log"
    metrics_dir = tmp_path / "metrics"
    with running_gunicorn(
        log, workers=2, DATABASE_URL=database_url, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
    ) as (base, _):

        def call(_):
            return requests.get(
                base + "/api/v1/stats", headers=bearer(tenant["key"]), timeout=10
            ).status_code

        def answered_by_each_worker():
            """{worker pid: the 200s to /api/v1/stats it counted in its own file}."""
            counts = {}
            for path in metrics_dir.glob("counter_*.db"):
                pid = re.search(r"_(\d+)\.db$", path.name).group(1)
                counts[pid] = sum(
                    value
                    for key, value, *_ in MmapedDict.read_all_values_from_file(str(path))
                    if '"route": "/api/v1/stats", "status": "200"' in key
                    and key.startswith('["apertur_http_requests"')
                )
            return counts

        sent = 0
        with ThreadPoolExecutor(8) as pool:  # concurrent batches until both workers served
            while sent == 0 or (
                sum(c > 0 for c in answered_by_each_worker().values()) < 2 and sent < 480
            ):
                assert set(pool.map(call, range(24))) == {200}
                sent += 24
        counts = answered_by_each_worker()
        assert len(counts) == 2 and all(counts.values()), counts  # both served some
        assert sum(counts.values()) == sent
        for _ in range(6):
            text = requests.get(base + "/metrics", timeout=10).text
            counted = re.search(
                r'apertur_http_requests_total\{method="GET",'
                r'route="/api/v1/stats",status="200"\} (\S+)',
                text,
            )
            assert counted and float(counted.group(1)) == float(sent), text[:2000]
