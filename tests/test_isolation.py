"""SPEC §3 scope: no row, count or name of a project outside the caller's scope ever shows."""

import math
import uuid
from datetime import timedelta
from fractions import Fraction
from types import SimpleNamespace

import pytest

from tests.builders import NOW, World
from tests.conftest import ensure_loaded, make_token

MONTH_START = NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
# Every month of a span that holds all the data below.
SERIES = "/api/v1/stats/series?interval=month&from=2020-01-01T00:00:00Z&to=2040-01-01T00:00:00Z"
# Limits large enough that every scope below fits on one page, so whole lists can be compared.
ENDPOINTS = [
    "/api/v1/sessions/recent?limit=50",
    "/api/v1/sessions?pageSize=100",
    "/api/v1/uploads/recent?limit=50",
    "/api/v1/uploads?pageSize=100",
    "/api/v1/stats",
    f"{SERIES}&groupBy=project",
    f"{SERIES}&groupBy=destinationType",
]
DEFAULT_ENDPOINTS = [
    "/api/v1/sessions/recent",
    "/api/v1/sessions",
    "/api/v1/uploads/recent",
    "/api/v1/uploads",
    "/api/v1/stats",
]
# Delivery outcomes cycled over uploads (sessions have two destinations).
OUTCOMES = [
    [],
    ["sent"],
    ["failed"],
    ["sent", "failed"],
    ["pending", "sent"],
    ["sent", "sent"],
    ["failed", "failed"],
    ["pending"],
    ["pending", "failed"],
]


class Tenancy:
    """A fixture document plus the model of it the expected responses are computed from."""

    def __init__(self):
        self.world = World()
        self.projects = {}
        self.ticks = 0

    def moment(self, offset=timedelta(0)):
        """A distinct timestamp, each one older than the last."""
        self.ticks += 1
        return NOW - offset - timedelta(seconds=7 * self.ticks)

    def project(self, label, owner):
        name = f"Marker-{label}-{uuid.uuid4().hex[:12]}"
        id = self.world.project(owner, name)
        self.projects[id] = SimpleNamespace(
            id=id, label=label, name=name, sessions=[], uploads=[], active_keys=0
        )
        return id

    def sessions(self, project, count, old=False):
        p = self.projects[project]
        for _ in range(count):
            created = self.moment(timedelta(days=100) if old else timedelta(0))
            id = self.world.session(
                project,
                created_at=created,
                tags=[f"tag-{p.label}"],
                destinations=("webhook", f"dest_{p.label}"),
            )
            p.sessions.append(SimpleNamespace(id=id, created_at=created, uploads=[]))

    def uploads(self, project, count):
        p = self.projects[project]
        for n in range(count):
            session = p.sessions[n % len(p.sessions)]
            statuses = OUTCOMES[(len(p.uploads) + n) % len(OUTCOMES)]
            created = self.moment()
            filename = f"file-{p.label}-{n}.jpg"
            id = self.world.upload(session.id, statuses, created_at=created, filename=filename)
            upload = SimpleNamespace(
                id=id, session=session.id, created_at=created, statuses=statuses, filename=filename
            )
            session.uploads.append(upload)
            p.uploads.append(upload)

    def key(self, project, active=True, **dates):
        if active:
            self.projects[project].active_keys += 1
        return self.world.api_key(project, **dates)

    def markers(self, project):
        """Every string that would betray the project if it appeared in a response."""
        p = self.projects[project]
        return (
            [p.id, p.name, f"tag-{p.label}", f"dest_{p.label}"]
            + [s.id for s in p.sessions]
            + [u.id for u in p.uploads]
            + [u.filename for u in p.uploads]
        )


def build_tenancy():
    """Tenant A (small) and tenant B (large, newest), plus callers straddling them."""
    t = Tenancy()
    w = t.world
    ada, dan, bob, carol, eve = (w.user(n) for n in ("Ada", "Dan", "Bob", "Carol", "Eve"))
    past, future = NOW - timedelta(days=1), NOW + timedelta(days=1)

    # B first, so B's rows are the newest: a missing scope filter would put them on top.
    b1, b2 = t.project("b1", bob), t.project("b2", bob)
    small_b = [t.project(f"b{n}", bob) for n in range(3, 6)]
    t.sessions(b1, 20)
    t.sessions(b2, 12)
    for project in small_b:
        t.sessions(project, 1)
    t.uploads(b1, 25)
    t.uploads(b2, 12)
    for project in small_b:
        t.uploads(project, 1)
    t.sessions(b1, 4, old=True)
    key_b1 = t.key(b1)
    t.key(b1)
    t.key(b1, revoked_at=future)
    t.key(b1, active=False, revoked_at=past)
    t.key(b1, active=False, expires_at=past)
    t.key(b2)
    t.key(b2, active=False, revoked_at=past)

    a1, a2, a3 = t.project("a1", ada), t.project("a2", dan), t.project("a3", ada)
    t.sessions(a1, 5)
    t.sessions(a2, 3)
    t.uploads(a1, 8)
    t.uploads(a2, 4)
    t.sessions(a1, 1, old=True)
    key_a1 = t.key(a1)
    t.key(a1, active=False, revoked_at=past)
    t.key(a2, expires_at=future)

    w.member(a2, ada)
    w.member(a1, ada, "admin")  # the owner listed again must not count twice
    w.member(a1, carol, "admin")
    w.member(b1, carol)

    t.callers = {
        "ada (owns A1, A3; member of A2)": (make_token(ada), {a1, a2, a3}),
        "dan (owns A2 only)": (make_token(dan), {a2}),
        "carol (member of A1 and B1)": (make_token(carol), {a1, b1}),
        "bob (owns all of B)": (make_token(bob), {b1, b2, *small_b}),
        "eve (no projects)": (make_token(eve), set()),
        "API key of A1": (key_a1, {a1}),
        "API key of B1": (key_b1, {b1}),
    }
    t.names = {"a1": a1, "a2": a2, "a3": a3, "b1": b1}
    t.anchor = ada
    return t


@pytest.fixture(scope="module")
def module_tenancy():
    return build_tenancy()


@pytest.fixture
def tenancy(module_tenancy, database_url):
    """The module's read-only data, loaded once (see conftest.ensure_loaded)."""
    ensure_loaded(database_url, module_tenancy.world.doc, module_tenancy.anchor)
    return module_tenancy


@pytest.fixture
def client(app):
    """The test client without conftest's per-test TRUNCATE (the matrix tests never write)."""
    return app.test_client()


# --- what the scope alone gives ------------------------------------------------------------


def newest_first(items):
    return sorted(items, key=lambda item: (item.created_at, item.id), reverse=True)


def expected_sessions(t, scope):
    rows = []
    for project in (t.projects[id] for id in scope):
        for s in project.sessions:
            rows.append(
                (
                    s,
                    {
                        "id": s.id,
                        "projectId": project.id,
                        "projectName": project.name,
                        "imagesCount": len(s.uploads),
                        "imagesDelivered": sum("sent" in u.statuses for u in s.uploads),
                        "imagesFailed": sum("failed" in u.statuses for u in s.uploads),
                        "destinationsCount": 2,
                    },
                )
            )
    order = {s.id: i for i, s in enumerate(newest_first([s for s, _ in rows]))}
    return [row for _, row in sorted(rows, key=lambda pair: order[pair[0].id])]


def expected_uploads(t, scope):
    rows = []
    for project in (t.projects[id] for id in scope):
        for u in project.uploads:
            rows.append(
                (
                    u,
                    {
                        "id": u.id,
                        "sessionId": u.session,
                        "projectId": project.id,
                        "projectName": project.name,
                        "destinationsTotal": len(u.statuses),
                        "destinationsDelivered": u.statuses.count("sent"),
                        "destinationsFailed": u.statuses.count("failed"),
                    },
                )
            )
    order = {u.id: i for i, u in enumerate(newest_first([u for u, _ in rows]))}
    return [row for _, row in sorted(rows, key=lambda pair: order[pair[0].id])]


def expected_stats(t, scope):
    projects = [t.projects[id] for id in scope]
    sessions = [s for p in projects for s in p.sessions]
    uploads = [u for p in projects for u in p.uploads]
    sent = sum(u.statuses.count("sent") for u in uploads)
    failed = sum(u.statuses.count("failed") for u in uploads)
    rate = math.floor(Fraction(100 * sent, sent + failed) + Fraction(1, 2)) if sent + failed else 0
    this_month = {p.id: sum(s.created_at >= MONTH_START for s in p.sessions) for p in projects}
    top = sorted(
        (p for p in projects if this_month[p.id]), key=lambda p: (-this_month[p.id], p.name, p.id)
    )[:10]
    return {
        "sessionsThisMonth": sum(this_month.values()),
        "sessionsTotal": len(sessions),
        "imagesUploaded": len(uploads),
        "imagesDelivered": sum("sent" in u.statuses for u in uploads),
        "deliverySuccessRate": rate,
        "totalProjects": len(projects),
        "activeKeys": sum(p.active_keys for p in projects),
        "topProjects": [{"id": p.id, "name": p.name, "sessions": this_month[p.id]} for p in top],
    }


def pick(rows, fields):
    return [{field: row[field] for field in fields} for row in rows]


def forbidden_markers(t, scope):
    return [m for id in t.projects if id not in scope for m in t.markers(id)]


def leaked(t, scope, text):
    return [m for m in forbidden_markers(t, scope) if m.lower() in text.lower()]


# --- the matrix: every caller on every endpoint ---------------------------------------------

CALLERS = list(build_tenancy().callers)


@pytest.mark.parametrize("path", ENDPOINTS + DEFAULT_ENDPOINTS)
@pytest.mark.parametrize("caller", CALLERS)
def test_no_out_of_scope_project_appears_in_the_response(get, tenancy, caller, path):
    credential, scope = tenancy.callers[caller]
    response = get(path, credential)
    assert response.status_code == 200
    assert leaked(tenancy, scope, response.get_data(as_text=True)) == []


LISTS = {"sessions": expected_sessions, "uploads": expected_uploads}


@pytest.mark.parametrize("resource", LISTS)
@pytest.mark.parametrize("caller", CALLERS)
def test_recent_list_is_exactly_the_scope(get, tenancy, caller, resource):
    credential, scope = tenancy.callers[caller]
    expected = LISTS[resource](tenancy, scope)
    body = get(f"/api/v1/{resource}/recent?limit=50", credential).get_json()
    assert pick(body, expected[0] if expected else []) == expected


@pytest.mark.parametrize("resource", LISTS)
@pytest.mark.parametrize("caller", CALLERS)
def test_page_is_exactly_the_scope(get, tenancy, caller, resource):
    credential, scope = tenancy.callers[caller]
    expected = LISTS[resource](tenancy, scope)
    body = get(f"/api/v1/{resource}?pageSize=100", credential).get_json()
    assert [body["total"], body["totalPages"]] == [len(expected), math.ceil(len(expected) / 100)]
    assert pick(body["data"], expected[0] if expected else []) == expected


@pytest.mark.parametrize("caller", CALLERS)
def test_default_pages_count_only_the_scope(get, tenancy, caller):
    credential, scope = tenancy.callers[caller]
    sessions, uploads = expected_sessions(tenancy, scope), expected_uploads(tenancy, scope)
    for path, expected in (("/api/v1/sessions", sessions), ("/api/v1/uploads", uploads)):
        body = get(path, credential).get_json()
        assert [body["total"], body["totalPages"]] == [len(expected), math.ceil(len(expected) / 20)]
        assert [row["id"] for row in body["data"]] == [row["id"] for row in expected[:20]]


@pytest.mark.parametrize("caller", CALLERS)
def test_stats_are_computed_over_the_scope_alone(get, tenancy, caller):
    credential, scope = tenancy.callers[caller]
    assert get("/api/v1/stats", credential).get_json() == expected_stats(tenancy, scope)


@pytest.mark.parametrize("caller", CALLERS)
def test_series_count_the_scope_alone(get, tenancy, caller):
    credential, scope = tenancy.callers[caller]
    sessions, uploads = expected_sessions(tenancy, scope), expected_uploads(tenancy, scope)
    [everything] = get(SERIES, credential).get_json()["groups"]
    assert {k: everything["totals"][k] for k in ("sessions", "uploads", "deliveriesSent")} == {
        "sessions": len(sessions),
        "uploads": len(uploads),
        "deliveriesSent": sum(u["destinationsDelivered"] for u in uploads),
    }
    by_project = get(f"{SERIES}&groupBy=project", credential).get_json()["groups"]
    assert sorted(group["by"]["projectId"] for group in by_project) == sorted(scope)


def test_the_scenario_discriminates():
    """Sanity: B outnumbers A and is newer, so a missing filter would change every figure."""
    t = build_tenancy()
    _, ada_scope = t.callers["ada (owns A1, A3; member of A2)"]
    everything = set(t.projects)
    assert expected_stats(t, ada_scope) != expected_stats(t, everything)
    assert expected_sessions(t, everything)[0]["projectName"].startswith("Marker-b")
    assert expected_uploads(t, everything)[0]["projectName"].startswith("Marker-b")


# --- an API key is narrower than its owner --------------------------------------------------


def test_api_key_of_a1_sees_only_a1_although_its_owner_sees_a2(get, tenancy):
    owner_token, _ = tenancy.callers["ada (owns A1, A3; member of A2)"]
    key, _ = tenancy.callers["API key of A1"]
    a1, a2 = tenancy.names["a1"], tenancy.names["a2"]
    owner_projects = {
        row["projectId"]
        for row in get("/api/v1/sessions?pageSize=100", owner_token).get_json()["data"]
    }
    key_projects = {
        row["projectId"] for row in get("/api/v1/sessions?pageSize=100", key).get_json()["data"]
    }
    assert owner_projects == {a1, a2}
    assert key_projects == {a1}
    assert get("/api/v1/stats", owner_token).get_json()["totalProjects"] == 3
    assert get("/api/v1/stats", key).get_json()["totalProjects"] == 1


# --- membership changes take effect on the next request ------------------------------------


def everything_visible(get, credential):
    return "".join(get(path, credential).get_data(as_text=True) for path in DEFAULT_ENDPOINTS)


@pytest.fixture
def late_joiner(db, world):
    """A project with data, and a user who is not (yet) a member of it."""
    owner, late = world.user("Owner"), world.user("Late")
    name = f"Marker-late-{uuid.uuid4().hex[:12]}"
    project = world.project(owner, name)
    session = world.session(project)
    upload = world.upload(session, ["sent"])
    world.load()
    return SimpleNamespace(
        db=db,
        project=project,
        name=name,
        session=session,
        upload=upload,
        user=late,
        token=make_token(late),
    )


def test_membership_granted_later_is_seen_on_the_next_request(get, late_joiner):
    j = late_joiner
    before = everything_visible(get, j.token)
    assert [m for m in (j.project, j.name, j.session, j.upload) if m in before] == []
    j.db.execute(
        "INSERT INTO members (project_id, user_id, role) VALUES (%s, %s, 'member')",
        [j.project, j.user],
    )
    assert [row["id"] for row in get("/api/v1/sessions/recent", j.token).get_json()] == [j.session]
    assert [row["id"] for row in get("/api/v1/uploads/recent", j.token).get_json()] == [j.upload]
    stats = get("/api/v1/stats", j.token).get_json()
    assert [stats["totalProjects"], stats["sessionsTotal"]] == [1, 1]


def test_membership_removed_is_gone_on_the_next_request(get, late_joiner):
    j = late_joiner
    j.db.execute(
        "INSERT INTO members (project_id, user_id, role) VALUES (%s, %s, 'admin')",
        [j.project, j.user],
    )
    assert get("/api/v1/stats", j.token).get_json()["totalProjects"] == 1
    j.db.execute("DELETE FROM members WHERE project_id = %s AND user_id = %s", [j.project, j.user])
    after = everything_visible(get, j.token)
    assert [m for m in (j.project, j.name, j.session, j.upload) if m in after] == []
    assert get("/api/v1/stats", j.token).get_json() == {
        "sessionsThisMonth": 0,
        "sessionsTotal": 0,
        "imagesUploaded": 0,
        "imagesDelivered": 0,
        "deliverySuccessRate": 0,
        "totalProjects": 0,
        "activeKeys": 0,
        "topProjects": [],
    }
