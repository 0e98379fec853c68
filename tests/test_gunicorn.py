"""The real server: `gunicorn wsgi:app` with two workers, spoken to over HTTP with requests."""

import http.client
import json
import os
import runpy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.builders import NOW
from tests.conftest import bearer, make_token, ordered
from tests.servers import running_gunicorn
from tests.spec import ENDPOINTS


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    """Base URL of a running gunicorn on a free port; stopped after the module."""
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with running_gunicorn(log, DATABASE_URL=database_url) as (base, _):
        yield base


def body(response):
    """The response JSON with object order kept (see ordered)."""
    assert response.headers["Content-Type"].split(";")[0].strip() == "application/json"
    return json.loads(response.text, object_pairs_hook=lambda pairs: [tuple(p) for p in pairs])


def ms(moment):
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


CREATED = (NOW - timedelta(minutes=5)).replace(microsecond=123987)
EXPIRES = (NOW + timedelta(days=1)).replace(microsecond=456999)
UPLOADED = (NOW - timedelta(minutes=2)).replace(microsecond=999999)


@pytest.fixture
def acme(world):
    """Ada owns Acme: an API key, one session with two destinations, one partial upload."""
    ada = world.user("Ada")
    acme = world.project(ada, "Acme")
    key = world.api_key(acme)
    session = world.session(
        acme,
        created_at=CREATED,
        expires_at=EXPIRES,
        tags=["wedding"],
        destinations=("webhook", "s3"),
    )
    upload = world.upload(
        session,
        ["sent", "failed"],
        created_at=UPLOADED,
        filename="IMG_1.jpg",
        size=2048,
        mime="image/png",
        source="gallery",
    )
    # A stranger's project, which must stay invisible.
    grace = world.user("Grace")
    other = world.session(world.project(grace, "Other"), created_at=CREATED)
    world.upload(other, ["sent"])
    world.load()
    return {"ada": ada, "acme": acme, "key": key, "session": session, "upload": upload}


def expected(ids):
    session_row = {
        "id": ids["session"],
        "createdAt": ms(CREATED),
        "expiresAt": ms(EXPIRES),
        "status": "active",
        "projectId": ids["acme"],
        "projectName": "Acme",
        "imagesCount": 1,
        "imagesDelivered": 1,
        "imagesFailed": 1,
        "destinationsCount": 2,
        "tags": ["wedding"],
        "longPollingEnabled": False,
    }
    upload_row = {
        "id": ids["upload"],
        "filename": "IMG_1.jpg",
        "sizeBytes": 2048,
        "mimeType": "image/png",
        "source": "gallery",
        "isEncrypted": False,
        "createdAt": ms(UPLOADED),
        "sessionId": ids["session"],
        "projectId": ids["acme"],
        "projectName": "Acme",
        "destinationsTotal": 2,
        "destinationsDelivered": 1,
        "destinationsFailed": 1,
        "destinationsBreakdown": [{"type": "s3", "count": 1}, {"type": "webhook", "count": 1}],
        "status": "partial",
    }
    now = datetime.now(UTC)
    this_month = int((CREATED.year, CREATED.month) == (now.year, now.month))
    return {
        "/api/v1/sessions/recent": [session_row],
        "/api/v1/sessions": {
            "data": [session_row],
            "total": 1,
            "page": 1,
            "pageSize": 20,
            "totalPages": 1,
        },
        "/api/v1/uploads/recent": [upload_row],
        "/api/v1/uploads": {
            "data": [upload_row],
            "total": 1,
            "page": 1,
            "pageSize": 20,
            "totalPages": 1,
        },
        "/api/v1/stats": {
            "sessionsThisMonth": this_month,
            "sessionsTotal": 1,
            "imagesUploaded": 1,
            "imagesDelivered": 1,
            "deliverySuccessRate": 50,
            "totalProjects": 1,
            "activeKeys": 1,
            "topProjects": [{"id": ids["acme"], "name": "Acme", "sessions": 1}]
            if this_month
            else [],
        },
    }


@pytest.mark.parametrize("credential", ["jwt", "key"])
def test_every_endpoint_over_http(server, acme, credential):
    """Each endpoint answers 200 with exactly the SPEC's JSON, for a JWT and an API key alike."""
    token = make_token(acme["ada"]) if credential == "jwt" else acme["key"]
    want = expected(acme)
    for path in ENDPOINTS:
        response = requests.get(server + path, headers=bearer(token), timeout=5)
        assert response.status_code == 200, (path, response.text)
        assert body(response) == ordered(want[path]), path


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    pairs = body(response)
    keys = [k for k, _ in pairs]
    assert keys[:2] == ["error", "message"] and set(keys) <= {"error", "message", "requestId"}
    assert dict(pairs)["error"] == code
    assert isinstance(dict(pairs)["message"], str) and dict(pairs)["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("aptr_unknown_key_0000000000000000"),
        bearer("not.a.jwt"),
        {"Authorization": "Basic YTpi"},
    ],
)
def test_401_over_http_is_json_with_www_authenticate(server, headers):
    response = requests.get(server + "/api/v1/sessions", headers=headers, timeout=5)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def get_raw(server, path, authorization):
    """GET with an Authorization header of exactly these bytes (requests would refuse some)."""
    host, port = server.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.putrequest("GET", path)
        connection.putheader("Authorization", authorization)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


# Unicode white space after a valid credential, as a client may send it: one Latin-1 byte
# (U+00A0, U+0085: HTTP's obs-text) or the character's UTF-8 bytes.
WHITE_SPACE_BYTES = {
    "U+00A0 as Latin-1": b"\xa0",
    "U+0085 as Latin-1": b"\x85",
    "U+00A0 as UTF-8": "\u00a0".encode(),
    "U+3000 as UTF-8": "\u3000".encode(),
    "U+2003 as UTF-8": "\u2003".encode(),
}


@pytest.mark.parametrize("kind", ["jwt", "key"])
@pytest.mark.parametrize("trailer", WHITE_SPACE_BYTES)
def test_a_credential_followed_by_unicode_white_space_is_401_over_http(server, acme, kind, trailer):
    credential = make_token(acme["ada"]) if kind == "jwt" else acme["key"]
    header = b"Bearer " + credential.encode() + WHITE_SPACE_BYTES[trailer]
    status, error = get_raw(server, "/api/v1/stats", header)
    assert (status, error["error"]) == (401, "unauthorized")
    assert get_raw(server, "/api/v1/stats", b"Bearer " + credential.encode() + b" \t")[0] == 200


@pytest.mark.parametrize("control", [b"\x1c", b"\x1d", b"\x1e", b"\x1f"])
def test_control_characters_in_the_header_are_refused_before_the_app(server, acme, control):
    """U+001C-U+001F are not allowed in a field value at all: gunicorn refuses the request
    (JSON 400) before the app sees it."""
    header = b"Bearer " + acme["key"].encode() + control
    status, error = get_raw(server, "/api/v1/stats", header)
    assert (status, error["error"]) == (400, "bad_request")


@pytest.mark.parametrize(
    "path", ["/api/v1/nope", "/", "/api/v1/sessions/recent/extra", "/api/v2/stats"]
)
def test_404_over_http_is_json(server, path):
    """Unknown paths are 404 whatever the credentials."""
    assert_error(requests.get(server + path, timeout=5), 404, "not_found")
    assert_error(requests.get(server + path, headers=bearer("aptr_x"), timeout=5), 404, "not_found")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_405_over_http_is_json(server, method):
    """A wrong method on a known path is 405 even without credentials."""
    response = requests.request(method, server + "/api/v1/stats", timeout=5)
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers.get("Allow", "")


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/sessions?page=0",
        "/api/v1/uploads?pageSize=abc",
        "/api/v1/sessions/recent?limit=-1",
        "/api/v1/uploads?page=2147483648",
    ],
)
def test_400_over_http_is_json(server, acme, query):
    response = requests.get(server + query, headers=bearer(make_token(acme["ada"])), timeout=5)
    assert_error(response, 400, "invalid_parameter")


def test_both_workers_serve_concurrent_requests(server, acme):
    """Several parallel connections all get the same answer (one pool per worker)."""
    from concurrent.futures import ThreadPoolExecutor

    token = make_token(acme["ada"])
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(
                lambda _: requests.get(server + "/api/v1/stats", headers=bearer(token), timeout=5),
                range(16),
            )
        )
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1


@pytest.mark.parametrize("env, expected", [({}, os.cpu_count()), ({"WEB_CONCURRENCY": "3"}, 3)])
def test_config_runs_one_sync_worker_per_core_unless_told(monkeypatch, env, expected):
    """gunicorn.conf.py: workers = cores (measured best here), WEB_CONCURRENCY overrides."""
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
    assert config["workers"] == expected


def test_gunicorn_log_has_one_json_line_per_request_with_its_id(database_url, acme, tmp_path):
    """Under gunicorn the request lines reach its error log as JSON; probes stay out of it."""
    log = tmp_path / "gunicorn.log"
    with running_gunicorn(log, workers=1, DATABASE_URL=database_url) as (base, _):
        sent = requests.get(
            base + "/api/v1/uploads",
            timeout=10,
            headers={**bearer(acme["key"]), "X-Request-Id": "gunicorn-line-1"},
        )
        assert sent.status_code == 200 and sent.headers["X-Request-Id"] == "gunicorn-line-1"
        for probe in ("/healthz", "/readyz"):
            assert requests.get(base + probe, timeout=10).status_code == 200
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    ours = [line for line in lines if line.get("requestId") == "gunicorn-line-1"]
    assert len(ours) == 1 and ours[0]["route"] == "/api/v1/uploads" and ours[0]["status"] == 200
    assert not [line for line in lines if line.get("route") in ("/healthz", "/readyz")]
    assert acme["key"] not in log.read_text()
