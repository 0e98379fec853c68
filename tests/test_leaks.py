"""Nothing leaks (SPEC §3, §4): protective headers on every answer; no trace, SQL, DSN or
credential in responses or logs."""

import base64
import hashlib
import hmac
import json
import logging
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

import psycopg
import pytest
import requests

from app import create_app
from tests.builders import NOW, World, new_id
from tests.conftest import TEST_SECRET, bearer, make_token
from tests.servers import running_gunicorn
from tests.spec import ENDPOINTS

PATH = "/api/v1/sessions"
# An unreachable server whose URL carries a password: neither may ever reach a client or a log.
DSN_PASSWORD = "dsn-password-Zq81xWv"
DOWN_URL = f"postgresql://nobody:{DSN_PASSWORD}@127.0.0.1:1/none"
BOOM = "secret SQL SELECT * FROM users dsn=postgresql://u:p@h/db"
# Never in any answer, whatever the case (case-sensitive: SQL keywords, trace markers).
FORBIDDEN = [
    "Traceback",
    'File "',
    "SELECT ",
    " FROM ",
    "INSERT ",
    "WHERE ",
    "RuntimeError",
    "OperationalError",
    "PoolTimeout",
    "DecodeError",
    "ExpiredSignature",
]
# Never in any answer, in any case.
FORBIDDEN_ANY_CASE = [
    "psycopg",
    "postgresql://",
    "postgres://",
    "sqlstate",
    "key_hash",
    "api_keys",
    "jwt_secret",
    "127.0.0.1:1",
    DSN_PASSWORD.lower(),
]


# --- the tenant and its credentials --------------------------------------------------------


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def hand_token(payload, alg="HS256", secret=TEST_SECRET):
    """A JWT built by hand, so PyJWT cannot refuse to make alg none."""
    segment = lambda obj: b64url(json.dumps(obj, separators=(",", ":")).encode())  # noqa: E731
    signing_input = f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(payload)}"
    if alg == "none":
        return signing_input + "."
    digest = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(digest)}"


def build_tenant():
    world = World()
    user = world.user("Ada")
    project = world.project(user, "Acme")
    world.upload(world.session(project), ["sent"])
    keys = {
        "valid": world.api_key(project),
        "revoked": world.api_key(project, revoked_at=NOW - timedelta(days=1)),
        "expired": world.api_key(project, expires_at=NOW - timedelta(days=1)),
    }
    return SimpleNamespace(doc=world.doc, user=user, keys=keys, jwt=make_token(user))


def bad_jwts(t):
    """Refused JWTs of many kinds, each signed or shaped to look plausible."""
    now = int(time.time())
    claims = {"sub": t.user, "type": "access", "iat": now, "exp": now + 3600}
    good = t.jwt
    return {
        "garbage": "garbage.token.value",
        "alg none": hand_token(claims, alg="none"),
        "wrong secret": make_token(t.user, secret="another-secret-0123456789-abcdefgh"),
        "expired": make_token(t.user, expires_in=-3600),
        "missing exp": make_token(t.user, expires_in=None),
        "refresh": make_token(t.user, type="refresh"),
        "tampered payload": ".".join(
            [
                good.split(".")[0],
                b64url(json.dumps({**claims, "sub": new_id()}).encode()),
                good.split(".")[2],
            ]
        ),
        "truncated signature": good[:-4],
        "sub sql": make_token("'; DROP TABLE users;--"),
        "sub not a uuid": make_token("ada@example.com"),
        "unknown user": make_token(new_id()),
        # Big, yet under gunicorn's 8190-byte header limit, so the app itself answers.
        "huge and expired": make_token(t.user, expires_in=-60, pad="x" * 4000),
    }


def bad_keys(t):
    return {
        "unknown key": "aptr_" + "Q" * 43,
        "revoked key": t.keys["revoked"],
        "expired key": t.keys["expired"],
        "sql key": "aptr_'OR'1'='1'--",
        "key plus one": t.keys["valid"] + "a",
    }


def forbidden_for(database_url):
    """Fragments of the real database URL that must never show: the URL, host and password."""
    params = psycopg.conninfo.conninfo_to_dict(database_url)
    return [database_url] + [
        params[k] for k in ("host", "password") if params.get(k) and len(str(params[k])) > 3
    ]


def exposed(response):
    """Everything a client sees of a response: every header and the body."""
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    return headers + "\n\n" + response.get_data(as_text=True)


def assert_no_leak(response, *secrets):
    text = exposed(response)
    for fragment in FORBIDDEN + [TEST_SECRET, *secrets]:
        assert fragment not in text, (fragment, text[:2000])
    lowered = text.lower()
    for fragment in FORBIDDEN_ANY_CASE:
        assert fragment not in lowered, (fragment, text[:2000])


def assert_envelope(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert list(body) in (["error", "message"], ["error", "message", "requestId"])
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"].strip()
    return body


# --- extra apps: the database unreachable, and a view that crashes -------------------------


@pytest.fixture(scope="module")
def down_app(app):
    """The real app pointed at a server that refuses connections; a request waits 0.5 s,
    then 503."""
    down = create_app(
        replace(app.config["SETTINGS"], database_url=DOWN_URL, pool_timeout_seconds=0.5)
    )
    yield down
    down.extensions["db_pool"].close()


def _boom():
    raise RuntimeError(BOOM)


@pytest.fixture(scope="module")
def boom_app(app):
    """The real app with one more route that raises: an unexpected error must be a bare 500."""
    boom = create_app(app.config["SETTINGS"])
    boom.add_url_rule("/boom", view_func=_boom)  # before the first request, as Flask requires
    yield boom
    boom.extensions["db_pool"].close()


@pytest.fixture
def client(app):
    """The test client without conftest's per-test emptying (these tests never write)."""
    return app.test_client()


# --- a) protective headers on every status -------------------------------------------------

STATUS_CASES = {
    "200": (200, lambda c, t, down, boom: c.get(PATH, headers=bearer(t.jwt))),
    "200 api key": (200, lambda c, t, down, boom: c.get(PATH, headers=bearer(t.keys["valid"]))),
    "400": (400, lambda c, t, down, boom: c.get(PATH + "?page=abc", headers=bearer(t.jwt))),
    "401": (401, lambda c, t, down, boom: c.get(PATH)),
    "404": (404, lambda c, t, down, boom: c.get("/api/v1/nope", headers=bearer(t.jwt))),
    "404 root": (404, lambda c, t, down, boom: c.get("/")),
    "405": (405, lambda c, t, down, boom: c.post("/api/v1/stats", headers=bearer(t.jwt))),
    "405 options": (405, lambda c, t, down, boom: c.options("/api/v1/stats")),
    "503": (503, lambda c, t, down, boom: down.test_client().get(PATH, headers=bearer(t.jwt))),
    "500": (500, lambda c, t, down, boom: boom.test_client().get("/boom")),
}
CODES = {
    200: None,
    400: "invalid_parameter",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    500: "internal_error",
    503: "unavailable",
}


@pytest.mark.parametrize("case", STATUS_CASES)
def test_every_answer_forbids_sniffing_and_shared_caches(
    client, tenant, down_app, boom_app, case, database_url
):
    status, send = STATUS_CASES[case]
    response = send(client, tenant, down_app, boom_app)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    if CODES[status]:
        assert_envelope(response, status, CODES[status])
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    cache_control = response.headers.get("Cache-Control", "").lower()
    assert "private" in cache_control or "no-store" in cache_control, cache_control
    assert "public" not in cache_control
    assert_no_leak(response, tenant.jwt, tenant.keys["valid"], *forbidden_for(database_url))


def test_unexpected_error_is_a_bare_500(boom_app):
    """An exception in a view: the generic envelope, and nothing of its message or trace."""
    response = boom_app.test_client().get("/boom")
    body = assert_envelope(response, 500, "internal_error")
    assert list(body)[:2] == ["error", "message"]
    text = exposed(response)
    for fragment in (
        "secret",
        "SELECT",
        "FROM users",
        "postgresql://",
        "u:p@h",
        "dsn=",
        "Traceback",
        "RuntimeError",
        "boom",
    ):
        assert fragment not in text, fragment


# --- b) no trace, SQL, DSN or credential in any refusal ------------------------------------


def credential_cases(t):
    return {**bad_jwts(t), **bad_keys(t)}


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("case", list(credential_cases(build_tenant())))
def test_refused_credential_leaks_nothing(client, tenant, case, database_url):
    credential = credential_cases(tenant)[case]
    for path in ENDPOINTS:
        response = client.get(path, headers=bearer(credential))
        assert_envelope(response, 401, "unauthorized")
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")
        assert_no_leak(response, credential, *forbidden_for(database_url))


@pytest.mark.parametrize(
    "header",
    [
        "Basic " + base64.b64encode(f"ada:{TEST_SECRET}".encode()).decode(),
        "Token aptr_" + "Z" * 43,
        "Bearer a b c",
        "Bearer " + "x" * 9000,
    ],
)
def test_malformed_authorization_header_leaks_nothing(client, tenant, header):
    response = client.get(PATH, headers={"Authorization": header})
    assert_envelope(response, 401, "unauthorized")
    assert_no_leak(response, header.split(" ", 1)[1])


@pytest.mark.parametrize("kind", ["jwt", "valid key", "unknown key"])
def test_unreachable_database_leaks_nothing(down_app, tenant, kind):
    """503 while the database is unreachable: no DSN, host, driver message or credential."""
    credential = {
        "jwt": tenant.jwt,
        "valid key": tenant.keys["valid"],
        "unknown key": "aptr_" + "Q" * 43,
    }[kind]
    for path in ("/api/v1/sessions", "/api/v1/stats"):
        response = down_app.test_client().get(path, headers=bearer(credential))
        assert_envelope(response, 503, "unavailable")
        assert_no_leak(response, credential, DOWN_URL, "nobody")


# --- c) logs never carry a credential ------------------------------------------------------


def every_secret(t):
    """Each credential the log tests send, and the secrets behind them."""
    return (
        [t.jwt, *t.keys.values(), TEST_SECRET, DSN_PASSWORD]
        + list(bad_jwts(t).values())
        + list(bad_keys(t).values())
    )


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_app_logs_carry_no_credential(app, down_app, tenant, caplog):
    """At DEBUG on the root logger, the whole auth matrix and the 503 case log no secret."""
    caplog.set_level(logging.DEBUG)
    client = app.test_client()
    for credential in [tenant.jwt, tenant.keys["valid"]]:
        assert client.get(PATH, headers=bearer(credential)).status_code == 200
    for credential in list(bad_jwts(tenant).values()) + list(bad_keys(tenant).values()):
        assert client.get(PATH, headers=bearer(credential)).status_code == 401
    for credential in [tenant.jwt, tenant.keys["valid"]]:
        for name in ("jwt", "access_token", "token", "api_key"):
            assert client.get(PATH, query_string={name: credential}).status_code == 401
        for cookie in ("access_token_cookie", "access_token", "jwt"):
            cookied = app.test_client()
            cookied.set_cookie(cookie, credential)
            assert cookied.get(PATH).status_code == 401
    down = down_app.test_client()
    for credential in [tenant.jwt, tenant.keys["valid"]]:
        assert down.get(PATH, headers=bearer(credential)).status_code == 503
    assert down.get(PATH, headers=bearer(bad_jwts(tenant)["wrong secret"])).status_code == 401

    # The capture works: the outage was logged.
    assert "database unavailable" in caplog.text
    for secret in every_secret(tenant):
        assert secret not in caplog.text, secret


# --- c) the same through a real gunicorn, access log on ------------------------------------


@contextmanager
def gunicorn(log, **settings):
    """One debug-level worker with the access log on, everything it prints going to `log`."""
    with running_gunicorn(
        log, workers=1, args=("--log-level", "debug", "--access-logfile", "-"), **settings
    ) as (base, _):
        yield base


# Secrets travel only in headers and cookies here: a credential a client puts in the URL
# shows in the access log's request line, and that is the client's mistake, not a leak.
def send_secrets(base, tenant, expected, paths):
    """Every credential as Bearer on `paths`, in a cookie, and as a Basic password."""
    statuses = []
    credentials = [
        tenant.jwt,
        tenant.keys["valid"],
        *bad_jwts(tenant).values(),
        *bad_keys(tenant).values(),
    ]
    for credential in credentials:
        for path in paths:
            response = requests.get(base + path, headers=bearer(credential), timeout=10)
            statuses.append(response.status_code)
        cookie = requests.get(base + PATH, cookies={"access_token_cookie": credential}, timeout=10)
        assert cookie.status_code == 401
    basic = requests.get(base + PATH, auth=("ada", TEST_SECRET), timeout=10)
    assert basic.status_code == 401
    assert expected in statuses


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_gunicorn_output_carries_no_credential(tenant, database_url, tmp_path):
    log = tmp_path / "gunicorn.log"
    with gunicorn(log, DATABASE_URL=database_url) as base:
        send_secrets(base, tenant, 200, ENDPOINTS)
    output = log.read_text(encoding="utf-8", errors="replace")
    assert '"GET /api/v1/sessions HTTP/1.1" 200' in output  # the access log was captured
    for secret in every_secret(tenant) + forbidden_for(database_url):
        assert secret not in output, secret


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_gunicorn_output_carries_no_credential_while_database_is_down(tenant, tmp_path):
    log = tmp_path / "gunicorn.log"
    with gunicorn(
        log, DATABASE_URL=DOWN_URL, DB_POOL_TIMEOUT_SECONDS="0.5", DB_STATEMENT_TIMEOUT_MS="400"
    ) as base:
        send_secrets(base, tenant, 503, [PATH])  # each 503 waits 0.5 s
    output = log.read_text(encoding="utf-8", errors="replace")
    assert '"GET /api/v1/sessions HTTP/1.1" 503' in output
    for secret in every_secret(tenant) + [DOWN_URL]:
        assert secret not in output, secret
