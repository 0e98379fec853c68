"""Over HTTP: single sessions and uploads by id, keys/current, and
conditional GET (strong ETag of the body, 304 on If-None-Match) on every JSON answer."""

import json
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest

from tests.builders import NOW, World
from tests.conftest import make_token, ordered
from tests.rowmodel import DELIVERY_FIELDS, KEY_FIELDS, SESSION_FIELDS, UPLOAD_FIELDS, Model, ms

NONEXISTENT = "0badc0de-0000-4000-8000-000000000000"
STRONG_ETAG = re.compile(r'"[^"\s]+"')
KEY_CREATED = NOW - timedelta(days=30)


def build_tenant():
    """Ada owns Acme and Beta, Bob is a member of Acme, Grace owns Other (never Ada's).

    Acme's first session has five destinations of three types, declared so that neither the
    declaration order nor the ids alone give the (type, id) order of its deliveries; another
    session has types whose code point order ("b0" < "b_x" < "ba") differs from a locale's.
    """
    w = World()
    t = SimpleNamespace(doc=w.doc)
    ada, bob, grace = w.user("Ada"), w.user("Bob"), w.user("Grace")
    acme, beta = w.project(ada, "Acme ✓"), w.project(ada, "Beta")
    other = w.project(grace, "Other")
    w.member(acme, bob)
    t.user, t.acme, t.beta, t.other = ada, acme, beta, other
    t.jwt, t.bob_jwt, t.grace_jwt = make_token(ada), make_token(bob), make_token(grace)
    t.keys = {
        "ci": (w.api_key(acme, name="ci", id="10000000-0000-4000-8000-00000000000c"), None),
        "deploy": (
            w.api_key(
                acme,
                name="déploiement ✓",
                id="20000000-0000-4000-8000-00000000000d",
                expires_at=NOW + timedelta(days=9, microseconds=987654),
            ),
            NOW + timedelta(days=9, microseconds=987654),
        ),
        "scheduled": (
            w.api_key(
                acme,
                name="to be revoked",
                id="30000000-0000-4000-8000-00000000000e",
                revoked_at=NOW + timedelta(days=2),
            ),
            None,
        ),
        "beta": (w.api_key(beta, name="beta", id="40000000-0000-4000-8000-00000000000f"), None),
    }
    t.revoked = w.api_key(acme, revoked_at=NOW - timedelta(minutes=1))
    t.expired = w.api_key(acme, expires_at=NOW - timedelta(minutes=1))
    t.other_key = w.api_key(other)

    s = {}
    s["five"] = w.session(
        acme,
        created_at=NOW - timedelta(hours=5, microseconds=1),
        tags=["wedding", "2026"],
        long_polling=True,
        destinations=("webhook", "s3", "webhook", "google_drive", "s3"),
    )
    for entry, id in zip(
        w.doc["sessions"][-1]["destinations"],
        [
            "ffffffff-0000-4000-8000-000000000001",
            "bbbbbbbb-0000-4000-8000-000000000002",
            "11111111-0000-4000-8000-000000000003",
            "55555555-0000-4000-8000-000000000004",
            "00000000-0000-4000-8000-000000000005",
        ],
        strict=True,
    ):
        entry["id"] = id
    s["expired"] = w.session(
        acme,
        created_at=NOW - timedelta(hours=4),
        status="pending",
        expires_at=NOW - timedelta(seconds=1),
        tags=[],
    )
    s["bare"] = w.session(
        acme, created_at=NOW - timedelta(hours=3), status="completed", destinations=()
    )
    s["collation"] = w.session(
        acme, created_at=NOW - timedelta(hours=2), destinations=("ba", "b_x", "b0")
    )
    s["beta"] = w.session(beta, created_at=NOW - timedelta(hours=1), destinations=("s3",))
    s["other"] = w.session(other, created_at=NOW - timedelta(minutes=30), tags=["secret"])
    u = {}
    u["mixed"] = w.upload(
        s["five"],
        ["sent", "failed", "pending", "sent", "failed"],
        created_at=NOW - timedelta(minutes=50),
        filename='a, "b"\n.jpg',
        size=9_876_543_210,
        mime="image/heic",
        source="google_photos",
        encrypted=True,
    )
    u["one"] = w.upload(s["five"], ["pending"], created_at=NOW - timedelta(minutes=40))
    u["undispatched"] = w.upload(s["five"], [], created_at=NOW - timedelta(minutes=35))
    u["bare"] = w.upload(s["bare"], [], created_at=NOW - timedelta(minutes=30), source="url")
    u["collation"] = w.upload(
        s["collation"], ["sent", "sent", "failed"], created_at=NOW - timedelta(minutes=20)
    )
    u["beta"] = w.upload(s["beta"], ["sent"], created_at=NOW - timedelta(minutes=10))
    u["other"] = w.upload(
        s["other"], ["sent"], created_at=NOW - timedelta(minutes=5), filename="secret.jpg"
    )
    s["first"], u["first"] = s["five"], u["mixed"]  # for tests run on both resources
    t.sessions, t.uploads = s, u
    t.model = Model(w.doc)
    return t


@pytest.fixture
def client(app):
    """The test client without conftest's per-test emptying (most tests here only read)."""
    return app.test_client()


def as_pairs(response):
    """The JSON body with object key order kept (compare with ordered())."""
    assert response.headers["Content-Type"] == "application/json", response.headers
    return json.loads(
        response.get_data(as_text=True), object_pairs_hook=lambda pairs: [tuple(p) for p in pairs]
    )


def assert_error(response, status, code):
    """A JSON error envelope with this status and code; returns it without requestId."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json"
    body = response.get_json()
    assert list(body)[:2] == ["error", "message"] and set(body) <= {"error", "message", "requestId"}
    assert body["error"] == code and body["message"]
    assert "ETag" not in response.headers
    return {k: v for k, v in body.items() if k != "requestId"}


# --- single sessions -----------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["owner", "member", "key"])
def test_single_session_is_its_list_row(get, tenant, caller):
    """Every session in scope, fetched by id, is exactly its model row and exactly the row
    the paginated list gives (fields, values, order)."""
    credential = {"owner": tenant.jwt, "member": tenant.bob_jwt, "key": tenant.keys["ci"][0]}[
        caller
    ]
    scope = {tenant.acme, tenant.beta} if caller == "owner" else {tenant.acme}
    expected = tenant.model.session_rows(scope)
    assert len(expected) == (5 if caller == "owner" else 4)
    listed = get("/api/v1/sessions?pageSize=100", credential).get_json()["data"]
    assert listed == expected
    for row in expected:
        response = get(f"/api/v1/sessions/{row['id']}", credential)
        assert response.status_code == 200
        assert as_pairs(response) == ordered(row)
        assert [key for key, _ in as_pairs(response)] == SESSION_FIELDS
    statuses = {row["id"]: (row["status"], row["tags"]) for row in expected}
    assert statuses[tenant.sessions["expired"]] == ("expired", None)
    assert statuses[tenant.sessions["bare"]] == ("completed", None)


# --- single uploads ------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["owner", "key"])
def test_single_upload_is_its_list_row_plus_deliveries(get, tenant, caller):
    """Every upload in scope, fetched by id, is its list row with `deliveries` appended:
    [{destinationId, type, status}] by type (code point order), then destination id."""
    credential = tenant.jwt if caller == "owner" else tenant.keys["ci"][0]
    scope = {tenant.acme, tenant.beta} if caller == "owner" else {tenant.acme}
    listed = get("/api/v1/uploads?pageSize=100", credential).get_json()["data"]
    assert listed == tenant.model.upload_rows(scope)
    assert len(listed) == (6 if caller == "owner" else 5)
    for row in listed:
        response = get(f"/api/v1/uploads/{row['id']}", credential)
        assert response.status_code == 200
        want = tenant.model.upload_detail(row["id"])
        assert as_pairs(response) == ordered(want)
        assert [key for key, _ in as_pairs(response)] == UPLOAD_FIELDS + ["deliveries"]
        assert {k: v for k, v in response.get_json().items() if k != "deliveries"} == row


def test_upload_deliveries_are_sorted_by_type_then_destination_id(get, tenant):
    """The written-out expectation for the two sessions built to catch a wrong sort."""
    body = get(f"/api/v1/uploads/{tenant.uploads['mixed']}", tenant.jwt).get_json()
    assert body["deliveries"] == [
        {
            "destinationId": "55555555-0000-4000-8000-000000000004",
            "type": "google_drive",
            "status": "sent",
        },
        {"destinationId": "00000000-0000-4000-8000-000000000005", "type": "s3", "status": "failed"},
        {"destinationId": "bbbbbbbb-0000-4000-8000-000000000002", "type": "s3", "status": "failed"},
        {
            "destinationId": "11111111-0000-4000-8000-000000000003",
            "type": "webhook",
            "status": "pending",
        },
        {
            "destinationId": "ffffffff-0000-4000-8000-000000000001",
            "type": "webhook",
            "status": "sent",
        },
    ]
    assert all(list(d) == DELIVERY_FIELDS for d in body["deliveries"])
    assert body["status"] == "partial" and body["destinationsTotal"] == 5
    collation = get(f"/api/v1/uploads/{tenant.uploads['collation']}", tenant.jwt).get_json()
    assert [d["type"] for d in collation["deliveries"]] == ["b0", "b_x", "ba"]
    assert [b["type"] for b in collation["destinationsBreakdown"]] == ["b0", "b_x", "ba"]


def test_upload_without_deliveries_has_an_empty_list(get, tenant):
    """No deliveries (session with destinations, or with none): deliveries is []."""
    for name in ("undispatched", "bare"):
        body = get(f"/api/v1/uploads/{tenant.uploads[name]}", tenant.jwt).get_json()
        assert (body["deliveries"], body["status"], body["destinationsBreakdown"]) == (
            [],
            "stored_only",
            [],
        ), name


# --- 404, 401 and routing ------------------------------------------------------------------


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
def test_out_of_scope_and_nonexistent_ids_are_the_same_404(get, tenant, resource):
    """An id the caller cannot see answers exactly like an id that does not exist."""
    items = tenant.sessions if resource == "sessions" else tenant.uploads
    cases = [
        (tenant.jwt, items["other"]),
        (tenant.keys["ci"][0], items["beta"]),
        (tenant.keys["beta"][0], items["first"]),
        (tenant.grace_jwt, items["first"]),
    ]
    for credential, hidden in cases:
        missing = assert_error(
            get(f"/api/v1/{resource}/{NONEXISTENT}", credential), 404, "not_found"
        )
        unseen = get(f"/api/v1/{resource}/{hidden}", credential)
        assert assert_error(unseen, 404, "not_found") == missing
        assert hidden not in unseen.get_data(as_text=True)
    # ... and the same ids are there for a caller who may see them.
    assert get(f"/api/v1/{resource}/{items['other']}", tenant.grace_jwt).status_code == 200
    assert get(f"/api/v1/{resource}/{items['beta']}", tenant.jwt).status_code == 200


MALFORMED = [
    "x",
    "recentx",
    "123",
    "0badc0de00004000800000000000000",
    "0badc0de-0000-4000-8000-00000000000",
    "0badc0de-0000-4000-8000-0000000000000",
    "{0badc0de-0000-4000-8000-000000000000}",
    "0badc0de-0000-4000-8000-00000000000g",
    "0badc0de000040008000000000000000",
]


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
def test_malformed_id_is_an_unknown_path_whatever_the_credentials(get, tenant, resource):
    """A path segment that is not a UUID is no route: 404 with no, bad or good credentials."""
    for segment in MALFORMED:
        path = f"/api/v1/{resource}/{segment}"
        bodies = [
            assert_error(get(path, credential), 404, "not_found")
            for credential in (None, "aptr_nope", "not.a.jwt", tenant.jwt, tenant.keys["ci"][0])
        ]
        assert all(body == bodies[0] for body in bodies), (path, bodies)


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
def test_uppercase_id_is_answered_with_the_lowercase_id(get, tenant, resource):
    """The same resource by its uppercase UUID: the same body, id in lowercase."""
    item = (tenant.sessions if resource == "sessions" else tenant.uploads)["first"]
    lower = get(f"/api/v1/{resource}/{item}", tenant.jwt)
    upper = get(f"/api/v1/{resource}/{item.upper()}", tenant.jwt)
    assert item != item.upper()
    assert (lower.status_code, upper.status_code) == (200, 200)
    assert upper.get_json()["id"] == item
    assert upper.get_data() == lower.get_data()


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
def test_well_formed_id_without_a_valid_credential_is_401(get, tenant, resource):
    """Authentication comes before the lookup: 401 for an existing, a hidden and a missing id."""
    items = tenant.sessions if resource == "sessions" else tenant.uploads
    for id in (items["first"], items["other"], NONEXISTENT):
        for credential in (
            None,
            "aptr_unknown",
            tenant.revoked,
            tenant.expired,
            "not.a.jwt",
            make_token(tenant.user, expires_in=-60),
            make_token("99999999-0000-4000-8000-000000000000"),
        ):
            response = get(f"/api/v1/{resource}/{id}", credential)
            assert_error(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_recent_still_routes_to_the_lists(get, tenant):
    """/sessions/recent and /uploads/recent are the recent lists, not ids."""
    scope = {tenant.acme, tenant.beta}
    assert get("/api/v1/sessions/recent", tenant.jwt).get_json() == tenant.model.session_rows(scope)
    assert get("/api/v1/uploads/recent", tenant.jwt).get_json() == tenant.model.upload_rows(scope)
    assert_error(get("/api/v1/sessions/recent", None), 401, "unauthorized")


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_wrong_method_on_a_single_resource_is_405(client, tenant, method):
    """A known path with another method is 405, even without credentials."""
    for path in (
        f"/api/v1/sessions/{NONEXISTENT}",
        f"/api/v1/uploads/{NONEXISTENT}",
        "/api/v1/keys/current",
    ):
        response = getattr(client, method)(path)
        assert_error(response, 405, "method_not_allowed")
        assert "GET" in response.headers["Allow"]


# --- keys/current --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ci", "deploy", "scheduled", "beta"])
def test_keys_current_describes_the_calling_key(get, tenant, name):
    """Exactly {id, name, projectId, projectName, createdAt, expiresAt} of the key in use."""
    key, expires = tenant.keys[name]
    entry = next(k for k in tenant.doc["apiKeys"] if k["key"] == key)
    project = tenant.beta if name == "beta" else tenant.acme
    response = get("/api/v1/keys/current", key)
    assert response.status_code == 200
    assert as_pairs(response) == ordered(
        {
            "id": entry["id"],
            "name": entry["name"],
            "projectId": project,
            "projectName": "Beta" if name == "beta" else "Acme ✓",
            "createdAt": ms(KEY_CREATED),
            "expiresAt": ms(expires) if expires else None,
        }
    )
    assert list(response.get_json()) == KEY_FIELDS
    assert key not in response.get_data(as_text=True)


def test_keys_current_with_a_dashboard_token_is_400(get, tenant):
    """A JWT is not an API key: 400 invalid_parameter with a message saying so."""
    for token in (tenant.jwt, tenant.grace_jwt):
        body = assert_error(get("/api/v1/keys/current", token), 400, "invalid_parameter")
        assert "API key" in body["message"]


def test_keys_current_refuses_unusable_credentials(get, tenant):
    """Revoked, expired, unknown or missing keys, and bad JWTs, are 401 (before the 400)."""
    for credential in (
        tenant.revoked,
        tenant.expired,
        "aptr_" + "0" * 64,
        None,
        "not.a.jwt",
        make_token("99999999-0000-4000-8000-000000000000"),
        make_token(tenant.user, expires_in=-60),
    ):
        response = get("/api/v1/keys/current", credential)
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- ETag and 304 --------------------------------------------------------------------------


def etag_paths(t):
    """(path, credential) for every kind of JSON 200 the API gives."""
    return [
        (f"/api/v1/sessions/{t.sessions['five']}", t.jwt),
        (f"/api/v1/uploads/{t.uploads['mixed']}", t.jwt),
        ("/api/v1/sessions", t.jwt),
        ("/api/v1/uploads?pageSize=2&page=2", t.jwt),
        ("/api/v1/sessions/recent?limit=3", t.jwt),
        ("/api/v1/uploads/recent", t.jwt),
        ("/api/v1/uploads?cursor=&pageSize=2", t.jwt),
        ("/api/v1/stats", t.jwt),
        ("/api/v1/keys/current", t.keys["ci"][0]),
        ("/api/v1/openapi.json", None),
    ]


def test_every_json_200_has_a_strong_etag_and_private_no_cache(get, tenant):
    """Quoted, not weak, stable across identical requests, different between different
    bodies; Cache-Control: private, no-cache."""
    tags = {}
    for path, credential in etag_paths(tenant):
        first, second = get(path, credential), get(path, credential)
        assert (first.status_code, second.status_code) == (200, 200), path
        etag = first.headers.get("ETag")
        assert etag and STRONG_ETAG.fullmatch(etag), (path, etag)
        assert second.headers["ETag"] == etag and second.get_data() == first.get_data()
        assert first.headers["Cache-Control"] == "private, no-cache"
        tags[path] = etag
    assert len(set(tags.values())) == len(tags)


def test_etag_depends_on_the_body_alone(get, tenant):
    """Two callers who get the same body get the same ETag; another body, another ETag."""
    acme_jwt, key, bob = tenant.jwt, tenant.keys["ci"][0], tenant.bob_jwt
    path = f"/api/v1/uploads/{tenant.uploads['mixed']}"
    by_owner, by_key, by_member = get(path, acme_jwt), get(path, key), get(path, bob)
    assert by_owner.get_data() == by_key.get_data() == by_member.get_data()
    assert by_owner.headers["ETag"] == by_key.headers["ETag"] == by_member.headers["ETag"]
    # Ada sees Beta too, the key does not: different lists, different tags.
    ada_list, key_list = get("/api/v1/sessions", acme_jwt), get("/api/v1/sessions", key)
    assert ada_list.get_data() != key_list.get_data()
    assert ada_list.headers["ETag"] != key_list.headers["ETag"]


def test_if_none_match_with_the_current_etag_is_304(get, tenant):
    """The ETag itself, a list holding it, its weak form or * : 304, empty body, same ETag."""
    for path, credential in etag_paths(tenant):
        etag = get(path, credential).headers["ETag"]
        for condition in (etag, f'"stale", {etag}', f"W/{etag}", "*"):
            response = get(path, credential, headers={"If-None-Match": condition})
            assert response.status_code == 304, (path, condition)
            assert response.get_data() == b""
            assert response.headers["ETag"] == etag
            assert response.headers["Cache-Control"] == "private, no-cache"


def test_if_none_match_with_a_stale_etag_is_the_full_answer(get, tenant):
    """Any other ETag: 200 with the whole body and the current ETag."""
    for path, credential in etag_paths(tenant):
        fresh = get(path, credential)
        for condition in (
            '"stale"',
            '"0123456789abcdef0123456789abcdef01234567"',
            fresh.headers["ETag"][:-2] + '"',
        ):
            response = get(path, credential, headers={"If-None-Match": condition})
            assert response.status_code == 200, (path, condition)
            assert response.get_data() == fresh.get_data()
            assert response.headers["ETag"] == fresh.headers["ETag"]


def test_errors_have_no_etag_and_are_never_304(get, tenant):
    """4xx answers carry no ETag, and If-None-Match: * does not turn them into 304."""
    cases = [
        ("/api/v1/sessions?page=0", tenant.jwt, 400),
        ("/api/v1/keys/current", tenant.jwt, 400),
        ("/api/v1/stats", None, 401),
        ("/api/v1/uploads", tenant.revoked, 401),
        (f"/api/v1/uploads/{NONEXISTENT}", tenant.jwt, 404),
        (f"/api/v1/sessions/{tenant.sessions['other']}", tenant.jwt, 404),
        ("/api/v1/uploads?projectId=" + tenant.other, tenant.jwt, 404),
        ("/api/v1/nowhere", tenant.jwt, 404),
    ]
    for path, credential, status in cases:
        for headers in ({}, {"If-None-Match": "*"}):
            response = get(path, credential, headers=headers)
            assert response.status_code == status, (path, headers)
            assert "ETag" not in response.headers, path
            assert response.headers["Cache-Control"] == "no-store"
            assert response.get_json()["error"]


# --- ETag and 304 with changing data (these tests write, so they build their own world) ---


@pytest.fixture
def small(world):
    """Ada owns Acme (a key, a session, an upload)."""
    ada = world.user("Ada")
    acme = world.project(ada, "Acme")
    key = world.api_key(acme)
    session = world.session(acme, created_at=NOW - timedelta(minutes=20), destinations=("webhook",))
    upload = world.upload(session, ["pending"], created_at=NOW - timedelta(minutes=10))
    world.load()
    return SimpleNamespace(acme=acme, key=key, jwt=make_token(ada), session=session, upload=upload)


def small_paths(s):
    return [
        (f"/api/v1/sessions/{s.session}", s.jwt),
        (f"/api/v1/uploads/{s.upload}", s.jwt),
        ("/api/v1/sessions", s.jwt),
        ("/api/v1/uploads", s.jwt),
        ("/api/v1/sessions/recent", s.key),
        ("/api/v1/uploads/recent", s.key),
        ("/api/v1/stats", s.jwt),
        ("/api/v1/keys/current", s.key),
    ]


def test_a_change_in_the_data_changes_the_etag(get, db, small):
    """After the data changes, every answer has a new body and a new ETag; the old ETag
    gets the new body (200) and the new one gets 304."""
    before = {path: get(path, credential) for path, credential in small_paths(small)}
    db.execute("UPDATE projects SET name = 'Acme renamed' WHERE id = %s", [small.acme])
    db.execute("UPDATE deliveries SET status = 'sent' WHERE upload_id = %s", [small.upload])
    for path, credential in small_paths(small):
        old = before[path]
        new = get(path, credential)
        assert new.status_code == 200, path
        assert new.get_data() != old.get_data(), path
        assert new.headers["ETag"] != old.headers["ETag"], path
        again = get(path, credential, headers={"If-None-Match": old.headers["ETag"]})
        assert (again.status_code, again.get_data()) == (200, new.get_data()), path
        assert (
            get(path, credential, headers={"If-None-Match": new.headers["ETag"]}).status_code == 304
        )


def test_a_cached_etag_does_not_outlive_the_credential(get, db, small):
    """A key revoked since its last answer gets 401, not 304, for the ETag it holds."""
    path = f"/api/v1/uploads/{small.upload}"
    etag = get(path, small.key).headers["ETag"]
    assert get(path, small.key, headers={"If-None-Match": etag}).status_code == 304
    db.execute("UPDATE api_keys SET revoked_at = now() - interval '1 second'")
    for condition in (etag, "*"):
        assert_error(
            get(path, small.key, headers={"If-None-Match": condition}), 401, "unauthorized"
        )


def test_an_id_gone_out_of_scope_is_404_even_with_its_etag(get, db, small):
    """A deleted upload is a 404 (no ETag) for a client still holding its old ETag."""
    path = f"/api/v1/uploads/{small.upload}"
    etag = get(path, small.jwt).headers["ETag"]
    db.execute("DELETE FROM uploads WHERE id = %s", [small.upload])
    assert_error(get(path, small.jwt, headers={"If-None-Match": etag}), 404, "not_found")
