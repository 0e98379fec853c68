"""The filters on the four list endpoints (projectId, status, source,
destinationType, tag, from/to), checked as whole bodies against a Python model."""

import math
import random
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from tests.builders import NOW, World
from tests.conftest import ensure_loaded, make_token, ordered
from tests.spec import SOURCES

UTC = UTC
# Each list with parameters large enough for a whole scope (the recent lists stop at 50).
PATHS = {
    resource: {
        "paged": (f"/api/v1/{resource}", [("pageSize", "100")]),
        "recent": (f"/api/v1/{resource}/recent", [("limit", "50")]),
    }
    for resource in ("sessions", "uploads")
}
ENDPOINTS = [
    ("sessions", "paged"),
    ("sessions", "recent"),
    ("uploads", "paged"),
    ("uploads", "recent"),
]
UNKNOWN_PROJECT = "0f0f0f0f-1234-4abc-8def-0123456789ab"


# --- the model -----------------------------------------------------------------------------


def moment(text):
    """An ISO 8601 text (Z or an offset) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def stamp(text):
    """The SPEC's timestamp form of a stored moment: UTC, milliseconds truncated, Z."""
    m = moment(text).astimezone(UTC)
    return m.strftime("%Y-%m-%dT%H:%M:%S.") + f"{m.microsecond // 1000:03d}Z"


def newest_first(entries):
    return sorted(entries, key=lambda e: (moment(e["createdAt"]), e["id"]), reverse=True)


def upload_status(deliveries):
    """SPEC §5's derived upload status."""
    total = len(deliveries)
    sent = sum(d["status"] == "sent" for d in deliveries)
    failed = sum(d["status"] == "failed" for d in deliveries)
    if total == 0:
        return "stored_only"
    if sent == total:
        return "delivered"
    if failed == 0:
        return "pending"
    return "failed" if sent == 0 else "partial"


class Model:
    """What the lists must answer, computed in Python from fixture documents alone.

    Filters are given as the raw query parameters a client sends (a dict of strings).
    """

    def __init__(self, *docs):
        self.projects, self.sessions, self.destination_type, self.uploads = {}, {}, {}, []
        for doc in docs:
            self.add(doc)

    def add(self, doc):
        """Take in another document (one loaded later beside the first)."""
        self.projects.update({p["id"]: p for p in doc["projects"]})
        for s in doc["sessions"]:
            self.sessions[s["id"]] = s
            self.destination_type.update({d["id"]: d["type"] for d in s["destinations"]})
        self.uploads.extend(doc["uploads"])

    @staticmethod
    def _window(entry, query):
        created = moment(entry["createdAt"])
        return (not query.get("from") or created >= moment(query["from"])) and (
            not query.get("to") or created < moment(query["to"])
        )

    def _project_of(self, upload):
        return self.sessions[upload["sessionId"]]["projectId"]

    def session_status(self, s):
        if s["status"] in ("pending", "active") and moment(s["expiresAt"]) <= datetime.now(UTC):
            return "expired"
        return s["status"]

    def session_rows(self, scope, query=None):
        """Session rows in `scope` (project ids) passing the query's session filters."""
        query = query or {}
        statuses = set(query["status"].split(",")) if query.get("status") else None
        rows = []
        for s in newest_first(self.sessions.values()):
            if s["projectId"] not in scope or not self._window(s, query):
                continue
            if query.get("projectId") and s["projectId"] != query["projectId"].lower():
                continue
            if statuses and self.session_status(s) not in statuses:
                continue
            if query.get("tag") and query["tag"] not in (s["tags"] or []):
                continue
            mine = [u for u in self.uploads if u["sessionId"] == s["id"]]
            rows.append(
                {
                    "id": s["id"],
                    "createdAt": stamp(s["createdAt"]),
                    "expiresAt": stamp(s["expiresAt"]),
                    "status": self.session_status(s),
                    "projectId": s["projectId"],
                    "projectName": self.projects[s["projectId"]]["name"],
                    "imagesCount": len(mine),
                    "imagesDelivered": sum(
                        any(d["status"] == "sent" for d in u["deliveries"]) for u in mine
                    ),
                    "imagesFailed": sum(
                        any(d["status"] == "failed" for d in u["deliveries"]) for u in mine
                    ),
                    "destinationsCount": len(s["destinations"]),
                    "tags": s["tags"] or None,
                    "longPollingEnabled": s["longPollingEnabled"],
                }
            )
        return rows

    def upload_rows(self, scope, query=None):
        """Upload rows in `scope` (project ids) passing the query's upload filters."""
        query = query or {}
        words = {
            name: set(query[name].split(",")) if query.get(name) else None
            for name in ("status", "source", "destinationType")
        }
        rows = []
        for u in newest_first(self.uploads):
            project = self._project_of(u)
            deliveries = u["deliveries"]
            types = [self.destination_type[d["destinationId"]] for d in deliveries]
            if project not in scope or not self._window(u, query):
                continue
            if query.get("projectId") and project != query["projectId"].lower():
                continue
            if words["status"] and upload_status(deliveries) not in words["status"]:
                continue
            if words["source"] and u["source"] not in words["source"]:
                continue
            if words["destinationType"] and not words["destinationType"] & set(types):
                continue
            rows.append(
                {
                    "id": u["id"],
                    "filename": u["filename"],
                    "sizeBytes": u["sizeBytes"],
                    "mimeType": u["mimeType"],
                    "source": u["source"],
                    "isEncrypted": u["isEncrypted"],
                    "createdAt": stamp(u["createdAt"]),
                    "sessionId": u["sessionId"],
                    "projectId": project,
                    "projectName": self.projects[project]["name"],
                    "destinationsTotal": len(deliveries),
                    "destinationsDelivered": sum(d["status"] == "sent" for d in deliveries),
                    "destinationsFailed": sum(d["status"] == "failed" for d in deliveries),
                    "destinationsBreakdown": [
                        {"type": t, "count": types.count(t)} for t in sorted(set(types))
                    ],
                    "status": upload_status(deliveries),
                }
            )
        return rows

    def rows(self, resource, scope, query=None):
        return (self.session_rows if resource == "sessions" else self.upload_rows)(scope, query)


# --- building worlds ---------------------------------------------------------------------

TAG_SETS = [
    None,
    [],
    ["wedding"],
    ["wedding", "2026"],
    ["Wedding"],
    ["a,b"],
    ["a", "b"],
    ["wed"],
    ["x y", "wedding"],
    ["ünï 📷"],
    ["2026"],
]
# box_only is always last and never delivered to: a destination with no delivery.
DESTINATION_SETS = [
    ("webhook",),
    ("s3", "webhook"),
    ("google_drive",),
    (),
    ("s3_v2", "webhook", "s3"),
    ("webhook", "box_only"),
    ("s_3", "sa"),
]
OUTCOMES = ["sent", "failed", "pending"]
# Every stored status with an expiry past and to come (9 plans: coprime with the rest).
STATUS_PLANS = [
    ("pending", "past"),
    ("active", "future"),
    ("expired", "past"),
    ("completed", "future"),
    ("failed", "past"),
    ("pending", "future"),
    ("active", "past"),
    ("completed", "past"),
    ("failed", "future"),
]


def grow(world, rng, projects, sessions, uploads_per_session, newest, step=timedelta(minutes=7)):
    """Add `sessions` sessions round-robin over `projects`, each with some uploads, at
    times going back from `newest` by `step` (every fourth session shares the previous
    one's createdAt, and so do some uploads). Statuses and expiries, tags and destinations
    cycle; sources and delivery outcomes vary with `rng`."""
    past, future = NOW - timedelta(days=2), NOW + timedelta(days=2)
    tick = 0
    last = None
    for n in range(sessions):
        if n % 4 != 3 or last is None:
            tick += 1
            last = newest - step * tick - timedelta(microseconds=1013 * tick)
        types = DESTINATION_SETS[n % len(DESTINATION_SETS)]
        status, expires = STATUS_PLANS[n % len(STATUS_PLANS)]
        session = world.session(
            projects[n % len(projects)],
            created_at=last,
            status=status,
            expires_at=past if expires == "past" else future,
            tags=TAG_SETS[n % len(TAG_SETS)],
            long_polling=rng.random() < 0.5,
            destinations=types,
        )
        deliverable = len([t for t in types if t != "box_only"])
        for k in range(uploads_per_session[n % len(uploads_per_session)]):
            created = last - timedelta(seconds=20) * (k % 2) - timedelta(microseconds=7 * k)
            outcomes = [rng.choice(OUTCOMES) for _ in range(rng.randint(0, deliverable))]
            world.upload(
                session,
                outcomes,
                created_at=created,
                source=rng.choice(SOURCES),
                filename=f"img-{n}-{k}.jpg",
                size=rng.randint(0, 10**12),
                mime=rng.choice(["image/jpeg", "image/png"]),
                encrypted=rng.random() < 0.3,
            )


T0 = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)


def build_tenant():
    """Ada owns alpha and beta and is a member of Bob's gamma; Bob also owns delta (its
    rows interleaved in time with Ada's); Eve's eps holds the newest rows of all. Every
    project uses the same tags, types and statuses, so only the scope keeps the others
    out."""
    w = World()
    ada, bob, eve, nobody = (w.user(n) for n in ("Ada", "Bob", "Eve", "Nobody"))
    alpha, beta = w.project(ada, "Alpha"), w.project(ada, "Beta")
    gamma, delta = w.project(bob, "Gamma"), w.project(bob, "Delta")
    eps = w.project(eve, "Eps")
    w.member(gamma, ada)
    key_alpha = w.api_key(alpha)
    rng = random.Random(6)
    grow(w, rng, [alpha, beta, gamma, alpha], 38, [0, 1, 2, 3, 4, 2, 1, 3], T0)
    grow(w, rng, [delta], 12, [2, 1], T0 + timedelta(minutes=3))
    grow(w, rng, [eps], 9, [2, 1], T0 + timedelta(days=1))
    t = SimpleNamespace(
        world=w,
        doc=w.doc,
        user=ada,
        model=Model(w.doc),
        projects={"alpha": alpha, "beta": beta, "gamma": gamma, "delta": delta, "eps": eps},
    )
    t.callers = {
        "ada": (make_token(ada), {alpha, beta, gamma}),
        "bob": (make_token(bob), {gamma, delta}),
        "key of alpha": (key_alpha, {alpha}),
        "nobody": (make_token(nobody), set()),
    }
    # Projects whose ids and names must never appear in the caller's answers.
    t.outside = {
        "ada": [delta, eps],
        "bob": [alpha, beta, eps],
        "key of alpha": [beta, gamma, delta, eps],
    }
    return t


TENANT = build_tenant()
P = TENANT.projects
ADA_SCOPE = TENANT.callers["ada"][1]
ADA_SESSIONS = TENANT.model.session_rows(ADA_SCOPE)
ADA_UPLOADS = TENANT.model.upload_rows(ADA_SCOPE)
# A window over the middle of Ada's rows, its ends written with other offsets than Z.
WINDOW_FROM = (T0 - timedelta(hours=3)).astimezone(timezone(timedelta(hours=2))).isoformat()
WINDOW_TO = (T0 - timedelta(hours=1)).astimezone(timezone(timedelta(hours=-5))).isoformat()

# (resource, query): every filter alone and together. Each discriminates on Ada's scope.
CASES = {
    "sessions project": ("sessions", {"projectId": P["alpha"]}),
    "sessions project in capitals": ("sessions", {"projectId": P["beta"].upper()}),
    "sessions project of membership": ("sessions", {"projectId": P["gamma"]}),
    "sessions status active": ("sessions", {"status": "active"}),
    "sessions status pending": ("sessions", {"status": "pending"}),
    "sessions status expired": ("sessions", {"status": "expired"}),
    "sessions status completed": ("sessions", {"status": "completed"}),
    "sessions status failed": ("sessions", {"status": "failed"}),
    "sessions status any of two": ("sessions", {"status": "pending,completed"}),
    "sessions status with duplicates": ("sessions", {"status": "expired,failed,expired"}),
    "sessions tag": ("sessions", {"tag": "wedding"}),
    "sessions tag is case-sensitive": ("sessions", {"tag": "Wedding"}),
    "sessions tag with a comma": ("sessions", {"tag": "a,b"}),
    "sessions tag with a space and emoji": ("sessions", {"tag": "ünï 📷"}),
    "sessions from": ("sessions", {"from": WINDOW_FROM}),
    "sessions to": ("sessions", {"to": WINDOW_TO}),
    "sessions window": ("sessions", {"from": WINDOW_FROM, "to": WINDOW_TO}),
    "sessions everything": (
        "sessions",
        {
            "projectId": P["alpha"],
            "status": "active,expired",
            "tag": "wedding",
            "from": "2026-03-01T00:00:00Z",
            "to": WINDOW_TO,
        },
    ),
    "uploads project": ("uploads", {"projectId": P["beta"]}),
    "uploads project in capitals": ("uploads", {"projectId": P["alpha"].upper()}),
    "uploads project of membership": ("uploads", {"projectId": P["gamma"]}),
    "uploads status stored_only": ("uploads", {"status": "stored_only"}),
    "uploads status delivered": ("uploads", {"status": "delivered"}),
    "uploads status pending": ("uploads", {"status": "pending"}),
    "uploads status failed": ("uploads", {"status": "failed"}),
    "uploads status partial": ("uploads", {"status": "partial"}),
    "uploads status any of two": ("uploads", {"status": "partial,failed"}),
    "uploads status with duplicates": ("uploads", {"status": "delivered,delivered"}),
    "uploads source": ("uploads", {"source": "camera"}),
    "uploads sources": ("uploads", {"source": "dropbox,url,box"}),
    "uploads destination type": ("uploads", {"destinationType": "webhook"}),
    "uploads destination types": ("uploads", {"destinationType": "s3_v2,google_drive"}),
    "uploads destination type with digits": ("uploads", {"destinationType": "s3"}),
    "uploads from": ("uploads", {"from": WINDOW_FROM}),
    "uploads to": ("uploads", {"to": WINDOW_TO}),
    "uploads window": ("uploads", {"from": WINDOW_FROM, "to": WINDOW_TO}),
    "uploads everything": (
        "uploads",
        {
            "projectId": P["alpha"],
            "status": "pending,partial",
            "source": ",".join(SOURCES[:6]),
            "destinationType": "webhook,s3",
            "to": WINDOW_TO,
        },
    ),
}
# Filters that match nothing in Ada's scope although a looser rule would match something.
EMPTY_CASES = {
    "sessions tag is not a prefix": ("sessions", {"tag": "weddin"}),
    "sessions tag is not split at commas": ("sessions", {"tag": "a,wedding"}),
    "uploads type only on a destination nothing was delivered to": (
        "uploads",
        {"destinationType": "box_only"},
    ),
    "uploads type nobody uses": ("uploads", {"destinationType": "nothing_here"}),
}


@pytest.fixture
def tenant(database_url):
    """The module's read-only world, loaded once (see conftest.ensure_loaded)."""
    ensure_loaded(database_url, TENANT.doc, TENANT.user)
    return TENANT


@pytest.fixture
def client(app):
    """The test client without conftest's per-test emptying (these tests only read)."""
    return app.test_client()


# --- helpers ---------------------------------------------------------------------------


def expected_body(shape, rows, page=1, page_size=100, limit=50):
    """The whole body a list must answer for these model rows."""
    if shape == "recent":
        return rows[:limit]
    return {
        "data": rows[(page - 1) * page_size : page * page_size],
        "total": len(rows),
        "page": page,
        "pageSize": page_size,
        "totalPages": math.ceil(len(rows) / page_size),
    }


def assert_body(response, expected):
    assert response.status_code == 200, response.get_data(as_text=True)
    assert ordered(response.get_json()) == ordered(expected)


def assert_error(response, status, code, name=None):
    """An error answer: the status, the SPEC's error body, and the parameter named."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert list(body)[:2] == ["error", "message"] and set(body) <= {
        "error",
        "message",
        "requestId",
    }, body
    assert body["error"] == code
    if name is not None:
        assert f"'{name}'" in body["message"], body


def ada():
    return TENANT.callers["ada"][0]


def fetch(get, resource, shape, credential, query=()):
    """GET one of the four lists with its size parameter and `query` (a dict or pairs)."""
    path, size = PATHS[resource][shape]
    pairs = list(query.items()) if isinstance(query, dict) else list(query)
    return get(path, credential, query_string=size + pairs)


# --- every filter, whole bodies -----------------------------------------------------------


def test_every_case_discriminates():
    """Each filter case keeps some but not all of Ada's rows (so a filter that is
    ignored, or one that drops everything, fails the matrix below); the data holds what
    the empty cases must not match (tags a looser rule would match, a destination type
    present on sessions but never delivered to); and rows outside Ada's scope pass the
    same filters, so only the scope keeps them out."""
    unfiltered = {"sessions": ADA_SESSIONS, "uploads": ADA_UPLOADS}
    assert 30 < len(ADA_SESSIONS) < 50 and 50 < len(ADA_UPLOADS) < 100
    for name, (resource, query) in CASES.items():
        kept = TENANT.model.rows(resource, ADA_SCOPE, query)
        assert 0 < len(kept) < len(unfiltered[resource]), name
    model = TENANT.model
    assert any("wedding" in (s["tags"] or []) for s in model.sessions.values())
    assert any("a,b" in (s["tags"] or []) for s in model.sessions.values())
    # Sessions stored active (or pending) but past their expiry exist, so 'expired'
    # differs from the stored status.
    assert any(
        s["status"] in ("active", "pending")
        and model.session_status(s) == "expired"
        and s["projectId"] in ADA_SCOPE
        for s in model.sessions.values()
    )
    # An upload of a session with a webhook destination but no delivery to it.
    assert any(
        "webhook" in [d["type"] for d in model.sessions[u["sessionId"]]["destinations"]]
        and "webhook" not in [model.destination_type[d["destinationId"]] for d in u["deliveries"]]
        for u in model.uploads
        if model._project_of(u) in ADA_SCOPE
    )
    assert any(
        u["deliveries"] == []
        and "box_only" in [d["type"] for d in model.sessions[u["sessionId"]]["destinations"]]
        for u in model.uploads
        if model._project_of(u) in ADA_SCOPE
    )
    # Rows outside Ada's scope match the same filters (the scope must still apply).
    others = {P["delta"], P["eps"]}
    for name, (resource, query) in CASES.items():
        if "everything" not in name:
            query = {k: v for k, v in query.items() if k != "projectId"}
            assert model.rows(resource, others, query), name


@pytest.mark.parametrize("caller", ["ada", "bob", "key of alpha"])
@pytest.mark.parametrize("case", list(CASES) + list(EMPTY_CASES))
def test_filtered_lists_are_exactly_the_model(tenant, get, case, caller):
    """Both shapes of each list, filtered, are exactly the model's rows for the caller's
    scope (rows, fields, order, total); a projectId outside the scope is a 404; and no
    id or name of a project outside the scope appears."""
    resource, query = CASES.get(case) or EMPTY_CASES[case]
    credential, scope = tenant.callers[caller]
    rows = tenant.model.rows(resource, scope, query)
    if case in EMPTY_CASES and caller == "ada":
        assert rows == []
    for shape in PATHS[resource]:
        response = fetch(get, resource, shape, credential, query)
        if query.get("projectId", "").lower() not in scope | {""}:
            assert_error(response, 404, "not_found")
            continue
        assert_body(response, expected_body(shape, rows))
        text = response.get_data(as_text=True)
        for project in tenant.outside[caller]:
            assert project not in text
            assert tenant.model.projects[project]["name"] not in text


# --- projectId ---------------------------------------------------------------------------


@pytest.mark.parametrize("resource,shape", ENDPOINTS)
def test_project_outside_the_scope_is_the_same_404_as_an_unknown_one(tenant, get, resource, shape):
    """A project of someone else, another project than an API key's own, and a project
    that does not exist are all 404 not_found, whatever the other filters."""
    for caller, project in [
        ("ada", P["delta"]),
        ("ada", P["eps"]),
        ("ada", UNKNOWN_PROJECT),
        ("key of alpha", P["beta"]),
        ("key of alpha", P["delta"]),
        ("key of alpha", UNKNOWN_PROJECT.upper()),
        ("nobody", P["alpha"]),
    ]:
        credential = tenant.callers[caller][0]
        assert_error(
            fetch(get, resource, shape, credential, {"projectId": project}), 404, "not_found"
        )
        assert_error(
            fetch(get, resource, shape, credential, {"projectId": project, "status": "failed"}),
            404,
            "not_found",
        )
    # The key's own project is answered.
    key, scope = tenant.callers["key of alpha"]
    response = fetch(get, resource, shape, key, {"projectId": P["alpha"]})
    assert_body(response, expected_body(shape, tenant.model.rows(resource, scope)))


@pytest.mark.parametrize("resource,shape", ENDPOINTS)
@pytest.mark.parametrize(
    "value",
    [
        "nope",
        "1234",
        P["alpha"][:-1],
        P["alpha"] + "0",
        P["alpha"].replace("-", ""),
        "{" + P["alpha"] + "}",
        "urn:uuid:" + P["alpha"],
        " " + P["alpha"],
        P["alpha"][:-1] + "g",
    ],
)
def test_malformed_project_id_is_400(tenant, get, resource, shape, value):
    """Anything but a UUID's canonical text is invalid_parameter naming projectId."""
    response = fetch(get, resource, shape, ada(), {"projectId": value})
    assert_error(response, 400, "invalid_parameter", "projectId")


# --- invalid values -------------------------------------------------------------------------

INVALID = {
    "sessions": [
        ("status", "bogus"),
        ("status", "Active"),
        ("status", "active,"),
        ("status", ",active"),
        ("status", "active,,failed"),
        ("status", " active"),
        ("status", "active;failed"),
        ("status", "delivered"),
        ("status", "stored_only"),
        ("tag", "a\x00b"),
        ("from", "2026-03-01T10:00:00"),
        ("from", "2026-03-01"),
        ("from", "yesterday"),
        ("from", "2026-13-01T00:00:00Z"),
        ("from", "1700000000"),
        ("to", "2026-03-01T10:00:00.123"),
        ("to", "2026-02-30T00:00:00Z"),
        ("to", "now"),
    ],
    "uploads": [
        ("status", "sent"),
        ("status", "expired"),
        ("status", "active"),
        ("status", "Delivered"),
        ("status", "delivered,"),
        ("status", "partial failed"),
        ("source", "Camera"),
        ("source", "phone"),
        ("source", "camera,"),
        ("source", "camera,gallery,fax"),
        ("destinationType", "S3"),
        ("destinationType", "3d"),
        ("destinationType", "web-hook"),
        ("destinationType", "_x"),
        ("destinationType", "a" * 33),
        ("destinationType", "webhook,"),
        ("destinationType", "webhook,,s3"),
        ("destinationType", "web hook"),
        ("destinationType", "wébhook"),
        ("from", "2026-03-01T10:00:00"),
        ("from", "tomorrow"),
        ("to", "2026-03-01"),
        ("to", "2026-03-01T25:00:00Z"),
    ],
}


@pytest.mark.parametrize("resource,shape", ENDPOINTS)
def test_invalid_filter_values_are_400_naming_the_parameter(tenant, get, resource, shape):
    """Unknown statuses or sources, types not matching the SPEC's pattern, and moments
    without an offset or that are no date-time are invalid_parameter naming the filter."""
    for name, value in INVALID[resource]:
        response = fetch(get, resource, shape, ada(), {name: value})
        assert_error(response, 400, "invalid_parameter", name)


@pytest.mark.parametrize("resource,shape", [("uploads", "paged"), ("uploads", "recent")])
def test_the_longest_and_shortest_destination_types_are_valid(tenant, get, resource, shape):
    """32 characters and a single letter are names that match ^[a-z][a-z0-9_]{0,31}$."""
    for value in ["a" * 32, "x", "a" * 32 + ",x,s3_v2"]:
        response = fetch(get, resource, shape, ada(), {"destinationType": value})
        query = {"destinationType": value}
        assert_body(response, expected_body(shape, TENANT.model.rows(resource, ADA_SCOPE, query)))


# --- from / to ------------------------------------------------------------------------------


@pytest.mark.parametrize("resource,shape", ENDPOINTS)
def test_from_is_inclusive_and_to_exclusive_to_the_microsecond(tenant, get, resource, shape):
    """A row whose createdAt is exactly `from` is in; exactly `to`, out; one microsecond
    either way moves it. The row's moment has microseconds the answer does not show."""
    rows = ADA_SESSIONS if resource == "sessions" else ADA_UPLOADS
    entries = {
        e["id"]: e
        for e in (tenant.doc["sessions"] if resource == "sessions" else tenant.doc["uploads"])
    }
    target = rows[len(rows) // 2]["id"]
    at = moment(entries[target]["createdAt"])
    assert at.microsecond % 1000  # finer than the milliseconds shown
    micro = timedelta(microseconds=1)
    for bounds, inside in [
        ({"from": at}, True),
        ({"from": at + micro}, False),
        ({"to": at}, False),
        ({"to": at + micro}, True),
        ({"from": at, "to": at + micro}, True),
        ({"from": at - micro, "to": at}, False),
    ]:
        query = {name: value.isoformat() for name, value in bounds.items()}
        expected = tenant.model.rows(resource, ADA_SCOPE, query)
        assert (target in [r["id"] for r in expected]) is inside
        assert_body(fetch(get, resource, shape, ada(), query), expected_body(shape, expected))


@pytest.mark.parametrize("resource,shape", ENDPOINTS)
def test_offsets_name_the_same_instant_and_an_unencoded_plus_is_accepted(
    tenant, get, resource, shape
):
    """`from`/`to` written with Z, +02:00, -05:30, or with the + left unencoded in the URL
    (so it arrives as a space) all give the same window."""
    start, end = T0 - timedelta(hours=2), T0 - timedelta(minutes=30)
    expected = expected_body(
        shape,
        tenant.model.rows(resource, ADA_SCOPE, {"from": start.isoformat(), "to": end.isoformat()}),
    )
    assert len(expected if shape == "recent" else expected["data"]) > 0
    plus2, minus = timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30))
    spellings = [
        (start.isoformat().replace("+00:00", "Z"), end.isoformat().replace("+00:00", "Z")),
        (start.astimezone(plus2).isoformat(), end.astimezone(minus).isoformat()),
    ]
    for first, second in spellings:
        assert_body(fetch(get, resource, shape, ada(), {"from": first, "to": second}), expected)
    # Raw in the URL: '+' is a space once decoded.
    raw_from = start.astimezone(plus2).isoformat()
    assert "+02:00" in raw_from
    path, [(size, value)] = PATHS[resource][shape]
    assert_body(get(f"{path}?{size}={value}&from={raw_from}&to={end.isoformat()}", ada()), expected)


@pytest.mark.parametrize("resource,shape", ENDPOINTS)
def test_from_at_or_after_to_is_an_empty_list(tenant, get, resource, shape):
    """from = to and from > to are no error: an empty list, total 0, 0 pages."""
    for start, end in [
        (T0 - timedelta(hours=1), T0 - timedelta(hours=1)),
        (T0, T0 - timedelta(days=30)),
    ]:
        response = fetch(
            get, resource, shape, ada(), {"from": start.isoformat(), "to": end.isoformat()}
        )
        assert_body(response, expected_body(shape, []))


# --- parameters each endpoint reads ------------------------------------------------------------


@pytest.mark.parametrize("resource,shape", ENDPOINTS)
def test_parameters_of_other_endpoints_are_ignored(tenant, get, resource, shape):
    """`source`/`destinationType` on the session lists and `tag` on the upload lists are
    ignored, even with values that would be invalid where they count."""
    foreign = (
        {"source": "fax", "destinationType": "NOT VALID"}
        if resource == "sessions"
        else {"tag": "a\x00b"}
    )
    for query in [
        foreign,
        {"source": "camera", "destinationType": "box_only"}
        if resource == "sessions"
        else {"tag": "wedding"},
    ]:
        response = fetch(get, resource, shape, ada(), query)
        assert_body(response, expected_body(shape, tenant.model.rows(resource, ADA_SCOPE)))


def test_stats_ignore_every_list_filter(tenant, get):
    """/stats reads none of the lists' filters: with valid or invalid values of them it is
    the same 200. (Its one parameter, projectId, is tested with the series.)"""
    plain = get("/api/v1/stats", ada())
    assert plain.status_code == 200
    assert plain.get_json()["sessionsTotal"] == len(ADA_SESSIONS)
    for query in [
        {
            "status": "active",
            "tag": "wedding",
            "source": "camera",
            "destinationType": "webhook",
            "from": WINDOW_FROM,
            "to": WINDOW_TO,
        },
        {
            "status": "bogus",
            "source": "fax",
            "destinationType": "BAD",
            "from": "never",
            "to": "2026-01-01",
        },
    ]:
        response = get("/api/v1/stats", ada(), query_string=query)
        assert_body(response, plain.get_json())


@pytest.mark.parametrize("resource,shape", ENDPOINTS)
def test_empty_filter_values_are_absent(tenant, get, resource, shape):
    """`status=` and friends filter nothing (and are not invalid); an empty copy beside
    a real value does not count as giving the parameter twice."""
    names = (
        ["projectId", "status", "tag", "from", "to"]
        if resource == "sessions"
        else ["projectId", "status", "source", "destinationType", "from", "to"]
    )
    path, [(size, value)] = PATHS[resource][shape]
    path = f"{path}?{size}={value}"
    response = get(path + "".join(f"&{name}=" for name in names), ada())
    assert_body(response, expected_body(shape, tenant.model.rows(resource, ADA_SCOPE)))
    status = "failed" if resource == "sessions" else "partial"
    response = get(f"{path}&status=&status={status}", ada())
    assert_body(
        response, expected_body(shape, tenant.model.rows(resource, ADA_SCOPE, {"status": status}))
    )


@pytest.mark.parametrize("resource,shape", ENDPOINTS)
def test_a_filter_given_twice_is_400(tenant, get, resource, shape):
    """Two values for one filter (even the same value twice) are invalid_parameter naming it."""
    pairs = [
        ("projectId", P["alpha"], P["alpha"]),
        ("status", "failed", "failed"),
        ("from", WINDOW_FROM, WINDOW_FROM),
        ("to", WINDOW_TO, "2026-01-01T00:00:00Z"),
    ]
    pairs += (
        [("tag", "a", "b")]
        if resource == "sessions"
        else [("source", "camera", "url"), ("destinationType", "s3", "webhook")]
    )
    for name, first, second in pairs:
        response = fetch(get, resource, shape, ada(), [(name, first), (name, second)])
        assert_error(response, 400, "invalid_parameter", name)


# --- totals and pages -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "resource,query",
    [
        ("sessions", {"status": "expired,active"}),
        ("sessions", {"tag": "wedding", "from": WINDOW_FROM}),
        (
            "uploads",
            {"status": "pending,partial,failed", "source": "camera,gallery,url,dropbox,box"},
        ),
        ("uploads", {"destinationType": "webhook", "projectId": P["alpha"]}),
    ],
)
def test_pages_of_a_filtered_list_count_the_filtered_rows(tenant, get, resource, query):
    """Every page of a filtered list has the filtered total and page count, the pages
    together are the model's list, and a page past the end is [] with the true total."""
    rows = tenant.model.rows(resource, ADA_SCOPE, query)
    assert len(rows) > 4
    base = f"/api/v1/{resource}"
    for page in range(1, math.ceil(len(rows) / 4) + 3):
        response = get(base, ada(), query_string={**query, "page": page, "pageSize": 4})
        assert_body(response, expected_body("paged", rows, page, 4))
    # The default page size, and one page of everything.
    assert_body(get(base, ada(), query_string=query), expected_body("paged", rows, 1, 20))
    assert_body(
        get(base, ada(), query_string={**query, "page": 2, "pageSize": 100}),
        expected_body("paged", rows, 2, 100),
    )


@pytest.mark.parametrize("resource,shape", ENDPOINTS)
def test_recent_lists_honour_the_limit_with_filters(tenant, get, resource, shape):
    """limit counts filtered rows: the newest `limit` of the filtered list."""
    query = {"status": "active,pending"} if resource == "sessions" else {"source": "camera,url"}
    rows = tenant.model.rows(resource, ADA_SCOPE, query)
    for limit in (1, 3, 50):
        if shape == "recent":
            response = get(
                f"/api/v1/{resource}/recent", ada(), query_string={**query, "limit": limit}
            )
            assert_body(response, rows[:limit])
        else:
            response = get(f"/api/v1/{resource}", ada(), query_string={**query, "pageSize": limit})
            assert_body(response, expected_body("paged", rows, 1, limit))


# --- authentication first, and the scope -----------------------------------------------------

BAD_FILTERS = [
    {"status": "bogus"},
    {"projectId": "nope"},
    {"from": "never"},
    [("status", "failed"), ("status", "failed")],
    {"projectId": UNKNOWN_PROJECT},
]


@pytest.mark.parametrize("resource,shape", ENDPOINTS)
def test_a_bad_credential_is_401_before_a_bad_filter(tenant, get, resource, shape):
    """No credential, a garbage one, an unknown user's token or an unknown key with a bad
    (or out-of-scope) filter: 401 with WWW-Authenticate, not 400 or 404."""
    stranger = make_token("5b5b5b5b-0000-4000-8000-000000000000")
    for credential in [None, "garbage", stranger, "aptr_" + "0" * 64]:
        for query in BAD_FILTERS:
            response = fetch(get, resource, shape, credential, query)
            assert_error(response, 401, "unauthorized")
            assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")


@pytest.mark.parametrize("resource", ["sessions", "uploads"])
def test_filters_matching_only_other_projects_find_nothing(tenant, get, resource):
    """A filter that only another tenant's rows satisfy answers an empty list with total 0:
    the filter never widens the scope."""
    # Eve's rows are a day newer than everything of Ada's: a window over them alone.
    query = {"from": (T0 + timedelta(hours=1)).isoformat()}
    assert tenant.model.rows(resource, {P["eps"]}, query)
    for caller in ("ada", "key of alpha", "nobody"):
        credential, scope = tenant.callers[caller]
        assert tenant.model.rows(resource, scope, query) == []
        assert_body(
            get(f"/api/v1/{resource}", credential, query_string=query),
            expected_body("paged", [], 1, 20),
        )
        assert_body(get(f"/api/v1/{resource}/recent", credential, query_string=query), [])
