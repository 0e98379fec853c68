"""deploy/nginx.conf as shipped, run by a real nginx in front of a real gunicorn.

Skipped, saying why, where nginx is not installed (`apt-get install nginx`; .ci/run
installs it).
"""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from fixture import load_fixture
from tests.builders import World
from tests.conftest import bearer
from tests.servers import NGINX, free_port, running_gunicorn, running_nginx

pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed here (apt-get install nginx); .ci/run installs it"
)


@pytest.fixture(scope="module")
def stack(database_url, tmp_path_factory):
    """(nginx URL, gunicorn URL, gunicorn log) with the app trusting one proxy."""
    directory = tmp_path_factory.mktemp("nginx")
    log = directory / "gunicorn.log"
    with (
        running_gunicorn(log, DATABASE_URL=database_url, TRUSTED_PROXIES="1") as (app, _),
        running_nginx(directory, [app.removeprefix("http://")]) as proxy,
    ):
        yield proxy, app, log


@pytest.fixture
def key(world):
    project = world.project(world.user("Owner"), "Proxied")
    secret = world.api_key(project)
    world.upload(world.session(project), ["sent"])
    world.load()
    return secret


def logged(log, request_id):
    """The app's JSON log line for one request id."""
    for _ in range(50):
        for line in log.read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("requestId") == request_id:
                return json.loads(line)
        time.sleep(0.05)
    raise AssertionError(f"no log line for {request_id}")


def test_requests_pass_through_with_the_client_address_and_request_id(stack, key):
    proxy, app, log = stack
    through = requests.get(
        proxy + "/api/v1/uploads",
        timeout=10,
        headers={**bearer(key), "X-Request-Id": "via-nginx-1"},
    )
    direct = requests.get(app + "/api/v1/uploads", headers=bearer(key), timeout=10)
    assert through.status_code == 200 and through.json() == direct.json()
    assert through.headers["X-Request-Id"] == "via-nginx-1"
    line = logged(log, "via-nginx-1")
    assert line["clientAddress"] == "127.0.0.1" and line["route"] == "/api/v1/uploads"


def test_a_spoofed_forwarded_for_does_not_change_the_logged_address(stack, key):
    proxy, _, log = stack
    requests.get(
        proxy + "/api/v1/stats",
        timeout=10,
        headers={**bearer(key), "X-Request-Id": "spoofed-1", "X-Forwarded-For": "6.6.6.6"},
    )
    assert logged(log, "spoofed-1")["clientAddress"] == "127.0.0.1"


def test_a_burst_from_one_credential_gets_json_429s(stack, key):
    proxy, _, _ = stack

    def call(_):
        return requests.get(proxy + "/api/v1/stats", headers=bearer(key + "-burst"), timeout=10)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, range(150)))
    limited = [r for r in answers if r.status_code == 429]
    assert limited, [r.status_code for r in answers]
    assert {r.status_code for r in answers} <= {401, 429}
    body = limited[0].json()
    assert list(body) == ["error", "message"] and body["error"] == "too_many_requests"
    assert limited[0].headers["Content-Type"].startswith("application/json")
    assert limited[0].headers["Retry-After"] == "1"


def test_metrics_are_not_served_through_nginx(stack):
    proxy, app, _ = stack
    outside = requests.get(proxy + "/metrics", timeout=10)
    assert outside.status_code == 404 and outside.json()["error"] == "not_found"
    assert requests.get(app + "/metrics", timeout=10).status_code == 200  # monitoring network


def test_json_is_gzipped(stack):
    proxy, _, _ = stack
    response = requests.get(
        proxy + "/api/v1/openapi.json", timeout=10, headers={"Accept-Encoding": "gzip"}
    )
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.json()["openapi"].startswith("3.")


@pytest.fixture
def exportable(key, db):
    """Beside `key`'s project, a key whose project holds 30,000 uploads: an export long
    enough to be in flight."""
    world = World()
    project = world.project(world.user("Exporter"), "Big")
    secret = world.api_key(project)
    session = world.session(project, destinations=())
    load_fixture(db, world.doc)
    db.execute(
        """
        INSERT INTO uploads (id, session_id, project_id, filename, size_bytes, mime_type,
                             source, is_encrypted, created_at)
        SELECT gen_random_uuid(), %(session)s, %(project)s, 'IMG_' || i || '.jpg', i,
               'image/jpeg', 'camera', false, now() - i * interval '1 second'
        FROM generate_series(1, 30000) AS i""",
        {"session": session, "project": project},
    )
    return secret


def test_one_export_at_a_time_per_credential(stack, exportable, key):
    """While a credential's export streams, its second export is a JSON 429; its other
    requests, and other credentials' exports, go through; afterwards it may export again."""
    proxy, _, _ = stack
    plain = {"Accept-Encoding": "identity"}
    first = requests.get(
        proxy + "/api/v1/uploads?format=csv",
        stream=True,
        timeout=30,
        headers={**bearer(exportable), **plain},
    )
    try:
        assert first.status_code == 200
        second = requests.get(
            proxy + "/api/v1/uploads",
            timeout=10,
            headers={**bearer(exportable), **plain, "Accept": "text/csv"},
        )
        assert second.status_code == 429 and second.json()["error"] == "too_many_requests"
        assert (
            requests.get(
                proxy + "/api/v1/uploads?format=json", timeout=10, headers=bearer(exportable)
            ).status_code
            == 200
        )
        other = requests.get(
            proxy + "/api/v1/uploads?format=ndjson", timeout=10, headers=bearer(key)
        )
        assert other.status_code == 200 and len(other.text.splitlines()) == 1
        lines = sum(chunk.count(b"\n") for chunk in first.iter_content(65536))
    finally:
        first.close()
    assert lines == 30_001  # the header and every row: the limit cut nothing short
    again = requests.get(
        proxy + "/api/v1/uploads?format=ndjson&pageSize=1", timeout=30, headers=bearer(exportable)
    )
    assert again.status_code == 200 and len(again.text.splitlines()) == 30_000


def test_exports_are_gzipped(stack, key):
    proxy, _, _ = stack
    response = requests.get(
        proxy + "/api/v1/uploads?format=csv",
        timeout=10,
        headers={**bearer(key), "Accept-Encoding": "gzip"},
    )
    assert response.status_code == 200 and response.headers["Content-Encoding"] == "gzip"
    assert response.text.startswith("id,filename,")


def test_no_reachable_instance_is_a_json_503_and_a_down_one_is_skipped(stack, key, tmp_path):
    """nginx's own 502 (nothing listens) comes in the API's envelope; with a live instance
    beside a dead one every GET is answered by the live one (retried there)."""
    _, app, _ = stack
    dead = f"127.0.0.1:{free_port()}"
    with running_nginx(tmp_path / "none", [dead]) as proxy:
        response = requests.get(proxy + "/api/v1/stats", headers=bearer(key), timeout=10)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"] == "unavailable"
    with running_nginx(tmp_path / "one", [dead, app.removeprefix("http://")]) as proxy:
        statuses = [
            requests.get(proxy + "/api/v1/stats", headers=bearer(key), timeout=10).status_code
            for _ in range(6)
        ]
    assert statuses == [200] * 6
