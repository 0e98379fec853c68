"""Property-based isolation (SPEC §3–§5): random worlds and callers against a model."""

import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition,
                                 rule, run_state_machine_as_test)

import database
from fixture import load_fixture
from tests.conftest import bearer, make_token, ordered

# Children first, so every DELETE is free of foreign-key trouble.
TABLES = ("deliveries", "uploads", "destinations", "upload_sessions", "api_keys", "members",
          "projects", "users")
ENDPOINTS = ("/api/v1/sessions/recent", "/api/v1/sessions", "/api/v1/uploads/recent",
             "/api/v1/uploads", "/api/v1/stats")
SOURCES = ("camera", "gallery", "url", "google_drive", "google_photos", "dropbox", "onedrive",
           "box", "instagram")
SESSION_STATUSES = ("pending", "active", "expired", "completed", "failed")
DELIVERY_STATUSES = ("pending", "sent", "failed")
# Code-point order differs from any locale's here: "_" < "a"... and "9" < "_" < "x".
DESTINATION_TYPES = ("a", "b_x", "bx", "b9", "webhook", "s3")
# Repeated names force the id tie-break; case and accents separate "C" from a locale.
PROJECT_NAMES = ("Zeta", "alpha", "Östra", "Acme", "acme", "Beta", "Beta")
MAX_PAGE = 2_147_483_647

NOW = datetime.now(timezone.utc)
# Past and future dates keep this distance from the present, so no expiry flips mid-run.
MARGIN = timedelta(hours=1)


def month_start(moment):
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(moment):
    return month_start(month_start(moment) + timedelta(days=32))


MONTH_START = month_start(NOW)
PREVIOUS_MONTH_START = month_start(MONTH_START - timedelta(days=1))
NEXT_MONTH_START = next_month_start(NOW)
TICK = timedelta(microseconds=1)


# --- the world: plain objects, written out as a SPEC §6 document ---------------------------

@dataclass
class Project:
    id: str
    name: str
    owner: str
    created_at: datetime


@dataclass
class Key:
    id: str
    project: str
    secret: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass
class Session:
    id: str
    project: str
    created_at: datetime
    expires_at: datetime
    status: str
    tags: list | None
    long_polling: bool
    destinations: dict  # destination id -> type, in document order


@dataclass
class Upload:
    id: str
    session: str
    filename: str
    size: int
    mime: str
    source: str
    encrypted: bool
    created_at: datetime
    deliveries: dict  # destination id -> status


@dataclass
class World:
    users: dict = field(default_factory=dict)  # id -> name
    projects: dict = field(default_factory=dict)
    members: dict = field(default_factory=dict)  # (project id, user id) -> role
    keys: dict = field(default_factory=dict)
    sessions: dict = field(default_factory=dict)
    uploads: dict = field(default_factory=dict)

    def project_of_upload(self, upload):
        return self.sessions[upload.session].project

    def document(self):
        """The world as a SPEC §6 fixture document."""
        return {
            "users": [{"id": id, "email": f"{id[:8]}@example.com", "name": name}
                      for id, name in self.users.items()],
            "projects": [{"id": p.id, "name": p.name, "ownerId": p.owner,
                          "createdAt": iso(p.created_at)} for p in self.projects.values()],
            "members": [{"projectId": p, "userId": u, "role": role}
                        for (p, u), role in self.members.items()],
            "apiKeys": [{"id": k.id, "projectId": k.project, "key": k.secret, "name": "key",
                         "createdAt": iso(k.created_at), "expiresAt": iso(k.expires_at),
                         "revokedAt": iso(k.revoked_at)} for k in self.keys.values()],
            "sessions": [{"id": s.id, "projectId": s.project, "createdAt": iso(s.created_at),
                          "expiresAt": iso(s.expires_at), "status": s.status, "tags": s.tags,
                          "longPollingEnabled": s.long_polling,
                          "destinations": [{"id": d, "type": t}
                                           for d, t in s.destinations.items()]}
                         for s in self.sessions.values()],
            "uploads": [{"id": u.id, "sessionId": u.session, "filename": u.filename,
                         "sizeBytes": u.size, "mimeType": u.mime, "source": u.source,
                         "isEncrypted": u.encrypted, "createdAt": iso(u.created_at),
                         "deliveries": [{"destinationId": d, "status": s}
                                        for d, s in u.deliveries.items()]}
                        for u in self.uploads.values()],
        }


def iso(moment):
    """Microseconds kept: the response must truncate them, not the fixture."""
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def secret_for(key_id):
    return f"aptr_{uuid.UUID(key_id).hex}{uuid.UUID(key_id).hex[:8]}"


# --- strategies ------------------------------------------------------------------------------

# Sub-millisecond parts that truncation and rounding would disagree on.
MICROS = st.one_of(st.sampled_from([0, 1, 999, 1000, 499_999, 500_000, 999_499, 999_999]),
                   st.integers(0, 999_999))
DAY = 86_400


def seconds_before(start, low, high):
    return st.builds(lambda s, us: start - timedelta(seconds=s, microseconds=us),
                     st.integers(low, high), MICROS)


def seconds_after(start, low, high):
    return st.builds(lambda s, us: start + timedelta(seconds=s, microseconds=us),
                     st.integers(low, high), MICROS)


PAST = seconds_before(NOW, int(MARGIN.total_seconds()), 90 * DAY)
FUTURE = seconds_after(NOW, int(MARGIN.total_seconds()), 90 * DAY)
THIS_MONTH_SO_FAR = st.builds(
    lambda fraction: MONTH_START + (NOW - MONTH_START) * fraction, st.floats(0, 1))
MONTH_EDGES = st.sampled_from([MONTH_START, MONTH_START + TICK, MONTH_START - TICK,
                               PREVIOUS_MONTH_START, PREVIOUS_MONTH_START - TICK,
                               NEXT_MONTH_START - TICK, NEXT_MONTH_START])
# Creation dates: the last ~3 months, this month in particular, its edges, a few in the future.
CREATED = st.one_of(seconds_before(NOW, 0, 95 * DAY), THIS_MONTH_SO_FAR, MONTH_EDGES,
                    seconds_after(NOW, 0, 10 * DAY))
THIS_MONTH = st.one_of(THIS_MONTH_SO_FAR, st.sampled_from([MONTH_START, NEXT_MONTH_START - TICK]))
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
TAGS = st.one_of(st.none(), st.just([]), st.lists(TEXT, min_size=1, max_size=3))
FILENAMES = st.text(st.characters(codec="utf-8", exclude_characters="\x00"),
                    min_size=1, max_size=12)
SIZES = st.one_of(st.integers(0, 10**7), st.sampled_from([0, 2**53 + 1, 2**63 - 1]))
MIMES = st.sampled_from(["image/jpeg", "image/png", "image/heic"])
OPTIONAL_DELIVERY = st.sampled_from((None,) + DELIVERY_STATUSES)


class Ids:
    """Fresh UUIDs drawn by hypothesis (so examples replay), never repeated in one world."""

    def __init__(self, draw, taken=()):
        self.draw, self.taken = draw, set(taken)

    def new(self):
        value = str(self.draw(st.uuids().filter(lambda u: str(u) not in self.taken)))
        self.taken.add(value)
        return value


def draw_session(draw, ids, project, created):
    return Session(
        id=ids.new(), project=project, created_at=created,
        expires_at=draw(st.one_of(PAST, FUTURE)), status=draw(st.sampled_from(SESSION_STATUSES)),
        tags=draw(TAGS), long_polling=draw(st.booleans()),
        destinations={ids.new(): draw(st.sampled_from(DESTINATION_TYPES))
                      for _ in range(draw(st.integers(0, 3)))})


def draw_upload(draw, ids, session, created):
    deliveries = {}
    for destination in session.destinations:
        status = draw(OPTIONAL_DELIVERY)
        if status:
            deliveries[destination] = status
    return Upload(id=ids.new(), session=session.id, filename=draw(FILENAMES), size=draw(SIZES),
                  mime=draw(MIMES), source=draw(st.sampled_from(SOURCES)),
                  encrypted=draw(st.booleans()), created_at=created, deliveries=deliveries)


@st.composite
def worlds(draw, users=st.integers(1, 5), projects=st.integers(1, 5), keys=st.integers(0, 3),
           sessions=st.integers(0, 3), uploads=st.integers(0, 4), created=CREATED,
           names=st.sampled_from(PROJECT_NAMES)):
    """A small random world; creation dates come from a shared pool, so ties are common."""
    ids, world = Ids(draw), World()
    pool = draw(st.lists(created, min_size=1, max_size=3))
    moment = st.one_of(st.sampled_from(pool), created)
    for _ in range(draw(users)):
        world.users[ids.new()] = draw(TEXT)
    for _ in range(draw(projects)):
        project = Project(ids.new(), draw(names),
                          draw(st.sampled_from(list(world.users))), draw(PAST))
        world.projects[project.id] = project
        for user in world.users:
            # The owner is sometimes listed again, which must change nothing.
            role = draw(st.sampled_from([None, None, "admin", "member"]))
            if role:
                world.members[(project.id, user)] = role
        for _ in range(draw(keys)):
            key_id = ids.new()
            world.keys[key_id] = Key(key_id, project.id, secret_for(key_id), draw(PAST),
                                     expires_at=draw(st.one_of(st.none(), PAST, FUTURE)),
                                     revoked_at=draw(st.one_of(st.none(), PAST, FUTURE)))
        for _ in range(draw(sessions)):
            session = draw_session(draw, ids, project.id, draw(moment))
            world.sessions[session.id] = session
            for _ in range(draw(uploads)):
                upload = draw_upload(draw, ids, session, draw(moment))
                world.uploads[upload.id] = upload
    return world


@st.composite
def number_parameter(draw, valid, invalid):
    """Mostly a valid value; now and then one the SPEC refuses."""
    if draw(st.integers(0, 11)) == 0:
        return draw(st.sampled_from(invalid))
    return draw(valid)


BAD_NUMBERS = ["0", "000", "-1", "+1", "1.0", "1e3", " 1", "1 ", "1_0", "0x10", "abc", "١", "１"]
LIMITS = number_parameter(st.one_of(
    st.none(), st.integers(1, 60).map(str),
    st.sampled_from(["", "1", "10", "50", "51", "0050", "1000", "9" * 30])), BAD_NUMBERS)
PAGES = number_parameter(st.one_of(
    st.none(), st.integers(1, 4).map(str),
    st.sampled_from(["", "01", "1000", str(MAX_PAGE)])), BAD_NUMBERS + [str(MAX_PAGE + 1)])
PAGE_SIZES = number_parameter(st.one_of(
    st.none(), st.integers(1, 8).map(str),
    st.sampled_from(["", "20", "100", "101", "0100", "9" * 30])), BAD_NUMBERS)
# Every request carries all three: each endpoint must ignore the others' parameters.
PARAMS = st.fixed_dictionaries({"limit": LIMITS, "page": PAGES, "pageSize": PAGE_SIZES}).map(
    lambda params: {k: v for k, v in params.items() if v is not None})


# --- the reference model, from SPEC §3 and §5 alone ----------------------------------------

def timestamp(moment):
    """SPEC §4: UTC, three fractional digits truncated, Z."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def key_is_active(key, now):
    return ((key.revoked_at is None or key.revoked_at > now)
            and (key.expires_at is None or key.expires_at > now))


def scope_of(world, caller, now):
    """The project ids a caller may see, or None when it must be refused with 401."""
    kind, ident = caller
    if kind == "user":
        if ident not in world.users:
            return None
        return ({p.id for p in world.projects.values() if p.owner == ident}
                | {p for (p, u) in world.members if u == ident})
    key = next((k for k in world.keys.values() if k.secret == ident), None)
    return {key.project} if key is not None and key_is_active(key, now) else None


def newest_first(items):
    # Lowercase UUID text sorts as PostgreSQL sorts uuids (byte by byte).
    return sorted(items, key=lambda item: (item.created_at, item.id), reverse=True)


def session_row(world, session, now):
    uploads = [u for u in world.uploads.values() if u.session == session.id]
    status = session.status
    if status in ("pending", "active") and session.expires_at <= now:
        status = "expired"
    return {
        "id": session.id,
        "createdAt": timestamp(session.created_at),
        "expiresAt": timestamp(session.expires_at),
        "status": status,
        "projectId": session.project,
        "projectName": world.projects[session.project].name,
        "imagesCount": len(uploads),
        "imagesDelivered": sum("sent" in u.deliveries.values() for u in uploads),
        "imagesFailed": sum("failed" in u.deliveries.values() for u in uploads),
        "destinationsCount": len(session.destinations),
        "tags": session.tags or None,
        "longPollingEnabled": session.long_polling,
    }


def upload_status(statuses):
    total, sent = len(statuses), statuses.count("sent")
    failed, pending = statuses.count("failed"), statuses.count("pending")
    conditions = {
        "stored_only": total == 0,
        "delivered": total > 0 and sent == total,
        "pending": pending > 0 and failed == 0,
        "failed": failed > 0 and sent == 0,
        "partial": failed > 0 and sent > 0,
    }
    holding = [status for status, holds in conditions.items() if holds]
    assert len(holding) == 1, (statuses, holding)  # the SPEC's table is exhaustive
    return holding[0]


def upload_row(world, upload):
    session = world.sessions[upload.session]
    statuses = list(upload.deliveries.values())
    types = Counter(session.destinations[d] for d in upload.deliveries)
    return {
        "id": upload.id,
        "filename": upload.filename,
        "sizeBytes": upload.size,
        "mimeType": upload.mime,
        "source": upload.source,
        "isEncrypted": upload.encrypted,
        "createdAt": timestamp(upload.created_at),
        "sessionId": upload.session,
        "projectId": session.project,
        "projectName": world.projects[session.project].name,
        "destinationsTotal": len(statuses),
        "destinationsDelivered": statuses.count("sent"),
        "destinationsFailed": statuses.count("failed"),
        "destinationsBreakdown": [{"type": t, "count": types[t]} for t in sorted(types)],
        "status": upload_status(statuses),
    }


def session_rows(world, scope, now):
    sessions = [s for s in world.sessions.values() if s.project in scope]
    return [session_row(world, s, now) for s in newest_first(sessions)]


def upload_rows(world, scope, now):
    uploads = [u for u in world.uploads.values() if world.project_of_upload(u) in scope]
    return [upload_row(world, u) for u in newest_first(uploads)]


def expected_stats(world, scope, now):
    sessions = [s for s in world.sessions.values() if s.project in scope]
    uploads = [u for u in world.uploads.values() if world.project_of_upload(u) in scope]
    statuses = [status for u in uploads for status in u.deliveries.values()]
    sent, failed = statuses.count("sent"), statuses.count("failed")
    rate = int(Fraction(100 * sent, sent + failed) + Fraction(1, 2)) if sent + failed else 0
    start, end = month_start(now), next_month_start(now)
    this_month = Counter(s.project for s in sessions if start <= s.created_at < end)
    top = sorted(this_month, key=lambda p: (-this_month[p], world.projects[p].name, p))[:10]
    return {
        "sessionsThisMonth": sum(this_month.values()),
        "sessionsTotal": len(sessions),
        "imagesUploaded": len(uploads),
        "imagesDelivered": sum("sent" in u.deliveries.values() for u in uploads),
        "deliverySuccessRate": rate,
        "totalProjects": len(scope),
        "activeKeys": sum(k.project in scope and key_is_active(k, now)
                          for k in world.keys.values()),
        "topProjects": [{"id": p, "name": world.projects[p].name, "sessions": this_month[p]}
                        for p in top],
    }


class Refused(Exception):
    """The parameter is not a plain base-10 integer in range."""


def number(raw, default, clamp=None, maximum=None):
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]+", raw, re.ASCII) or int(raw) < 1:
        raise Refused(raw)
    if maximum is not None and int(raw) > maximum:
        raise Refused(raw)
    return min(int(raw), clamp) if clamp else int(raw)


def expected_response(world, scope, path, params, now):
    """(status, body) for a request; for errors the body is just the error code."""
    if scope is None:
        return 401, "unauthorized"
    try:
        if path == "/api/v1/stats":
            return 200, expected_stats(world, scope, now)
        rows = (session_rows if "/sessions" in path else upload_rows)(world, scope, now)
        if path.endswith("/recent"):
            return 200, rows[:number(params.get("limit"), 10, clamp=50)]
        page = number(params.get("page"), 1, maximum=MAX_PAGE)
        size = number(params.get("pageSize"), 20, clamp=100)
    except Refused:
        return 400, "invalid_parameter"
    return 200, {"data": rows[(page - 1) * size:page * size], "total": len(rows), "page": page,
                 "pageSize": size, "totalPages": -(-len(rows) // size)}


# --- checking one request against the model -----------------------------------------------

def assert_within_scope(world, scope, path, body):
    """Every id and name in a body belongs to a project in scope."""
    sessions = {s.id for s in world.sessions.values() if s.project in scope}
    uploads = {u.id for u in world.uploads.values() if world.project_of_upload(u) in scope}
    if path == "/api/v1/stats":
        entries = body["topProjects"]
    else:
        entries = body["data"] if isinstance(body, dict) else body
    for entry in entries:
        project = entry.get("projectId", entry["id"])
        assert project in scope
        assert entry.get("projectName", entry.get("name")) == world.projects[project].name
        if "/sessions" in path:
            assert entry["id"] in sessions
        if "/uploads" in path:
            assert entry["id"] in uploads and entry["sessionId"] in sessions


def check(client, world, caller, credential, path, params):
    """One GET compared, whole body and key order, with the model's answer."""
    now = datetime.now(timezone.utc)
    response = client.get(path, headers=bearer(credential), query_string=params)
    scope = scope_of(world, caller, now)
    status, expected = expected_response(world, scope, path, params, now)
    text = response.get_data(as_text=True)
    note(f"{caller} {path} {params} -> {response.status_code} {text[:300]}")
    assert response.status_code == status, text
    assert response.mimetype == "application/json"
    body = response.get_json()
    if status != 200:
        assert list(body)[:2] == ["error", "message"] and set(list(body)[2:]) <= {"requestId"}
        assert body["error"] == expected
        assert credential not in text
        if status == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        return
    assert body == expected
    assert ordered(body) == ordered(expected)
    assert_within_scope(world, scope, path, body)


def callers(world, unknown_user, unknown_key):
    """Every user's JWT, every key (active or not), a stranger's JWT and a key never issued."""
    return ([(("user", u), make_token(u)) for u in world.users]
            + [(("key", k.secret), k.secret) for k in world.keys.values()]
            + [(("user", unknown_user), make_token(unknown_user)),
               (("key", unknown_key), unknown_key)])


def reset(conn, world):
    for table in TABLES:
        conn.execute(f"DELETE FROM {table}")
    load_fixture(conn, world.document())


@pytest.fixture(scope="module")
def rw(app, database_url):
    """A read-write connection; examples empty and fill the tables themselves."""
    # The pool's filler threads draw from `random`; let them finish before hypothesis runs.
    app.extensions["db_pool"].wait(timeout=30)
    with database.connect(database_url, autocommit=True) as conn:
        yield conn


FAST = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                  HealthCheck.too_slow,
                                                  HealthCheck.data_too_large])


# --- properties over random worlds ---------------------------------------------------------

@settings(max_examples=40, **FAST)
@given(world=worlds(), data=st.data())
def test_every_caller_gets_exactly_the_model_on_every_endpoint(app, rw, world, data):
    reset(rw, world)
    client = app.test_client()
    stranger = str(data.draw(st.uuids().filter(lambda u: str(u) not in world.users)))
    for caller, credential in callers(world, stranger, secret_for(stranger)):
        params = data.draw(PARAMS, label=f"params for {caller}")
        for path in ENDPOINTS:
            check(client, world, caller, credential, path, params)


@settings(max_examples=15, **FAST)
@given(world=worlds(users=st.just(1), projects=st.integers(10, 13), keys=st.just(0),
                    sessions=st.integers(1, 2), uploads=st.just(0), created=THIS_MONTH,
                    names=st.sampled_from(["Beta", "beta"])))
def test_top_projects_keep_the_first_ten_in_order(app, rw, world):
    """Many ties in sessions and names, so the cut at ten depends on every sort key."""
    reset(rw, world)
    client = app.test_client()
    for user in world.users:
        check(client, world, ("user", user), make_token(user), "/api/v1/stats", {})


@settings(max_examples=10, **FAST)
@given(world=worlds(users=st.just(1), projects=st.just(1), keys=st.just(1),
                    sessions=st.integers(49, 53), uploads=st.integers(0, 1)),
       limits=st.lists(LIMITS, min_size=1, max_size=3))
def test_recent_lists_clamp_the_limit_at_fifty(app, rw, world, limits):
    """The only worlds here with more rows than the limit's bound."""
    reset(rw, world)
    client = app.test_client()
    (user,), (key,) = world.users, world.keys.values()
    for limit in limits:
        for path in ("/api/v1/sessions/recent", "/api/v1/uploads/recent"):
            check(client, world, ("user", user), make_token(user), path, {"limit": limit})
            check(client, world, ("key", key.secret), key.secret, path, {"limit": limit})


def test_the_model_breaks_ties_by_id_and_names_by_code_point():
    """Sanity of the model itself on a hand-made case."""
    world = World(users={"u": "U"})
    ids = sorted(str(uuid.UUID(int=n)) for n in (1, 2, 3, 4))
    for id, name in zip(ids, ["alpha", "Zeta", "Östra", "Zeta"]):
        world.projects[id] = Project(id, name, "u", NOW)
        world.sessions[f"s{id}"] = Session(f"s{id}", id, MONTH_START, NOW, "active", None,
                                           False, {})
    top = expected_stats(world, set(ids), NOW)["topProjects"]
    assert [(p["name"], p["id"]) for p in top] == [
        ("Zeta", ids[1]), ("Zeta", ids[3]), ("alpha", ids[0]), ("Östra", ids[2])]
    assert timestamp(datetime(2026, 1, 2, 3, 4, 5, 999_999, timezone.utc)) == \
        "2026-01-02T03:04:05.999Z"
    assert [upload_status(s) for s in ([], ["sent"], ["pending", "sent"], ["pending", "failed"],
                                       ["sent", "failed", "pending"])] == \
        ["stored_only", "delivered", "pending", "failed", "partial"]


# --- a live world: every change shows on the next request ----------------------------------

class LiveWorld(RuleBasedStateMachine):
    """Direct SQL changes to a loaded world; after each, callers must see exactly the model."""

    conn = client = None  # set by the test that runs the machine

    def __init__(self):
        super().__init__()
        self.world = None

    @initialize(world=worlds(users=st.integers(1, 3), projects=st.integers(1, 3),
                             keys=st.integers(0, 2), sessions=st.integers(0, 2)),
                data=st.data())
    def load(self, world, data):
        reset(self.conn, world)
        self.world = world
        self.stranger = str(data.draw(st.uuids().filter(lambda u: str(u) not in world.users)))

    def ids(self, data):
        w = self.world
        taken = [*w.users, *w.projects, *w.keys, *w.sessions, *w.uploads,
                 *(d for s in w.sessions.values() for d in s.destinations)]
        return Ids(data.draw, taken)

    def sql(self, query, *args):
        return self.conn.execute(query, args).fetchone() if "RETURNING" in query else \
            self.conn.execute(query, args)

    # memberships

    def free_memberships(self):
        return [(p, u) for p in self.world.projects for u in self.world.users
                if (p, u) not in self.world.members]

    @precondition(lambda self: self.world and self.free_memberships())
    @rule(data=st.data(), role=st.sampled_from(["admin", "member"]))
    def add_membership(self, data, role):
        project, user = data.draw(st.sampled_from(self.free_memberships()))
        self.sql("INSERT INTO members (project_id, user_id, role) VALUES (%s, %s, %s)",
                 project, user, role)
        self.world.members[(project, user)] = role

    @precondition(lambda self: self.world and self.world.members)
    @rule(data=st.data())
    def remove_membership(self, data):
        project, user = data.draw(st.sampled_from(sorted(self.world.members)))
        self.sql("DELETE FROM members WHERE project_id = %s AND user_id = %s", project, user)
        del self.world.members[(project, user)]

    # keys: one rule, so key changes get no more steps than the other kinds

    KEY_CHANGES = {
        "revoke": ("revoked_at", "now() - interval '1 second'"),
        "schedule revocation": ("revoked_at", "now() + interval '1 day'"),
        "unrevoke": ("revoked_at", "NULL"),
        "expire": ("expires_at", "now() - interval '1 second'"),
        "renew for a day": ("expires_at", "now() + interval '1 day'"),
        "renew forever": ("expires_at", "NULL"),
    }

    @precondition(lambda self: self.world and self.world.keys)
    @rule(data=st.data(), change=st.sampled_from(sorted(KEY_CHANGES)))
    def change_key(self, data, change):
        column, value_sql = self.KEY_CHANGES[change]
        key = data.draw(st.sampled_from(sorted(self.world.keys)))
        row = self.sql(f"UPDATE api_keys SET {column} = {value_sql} WHERE id = %s "
                       f"RETURNING {column} AS value", key)
        setattr(self.world.keys[key], column, row["value"])

    # sessions, uploads, deliveries

    def some_created(self, data):
        """A creation date, often one already used (ties)."""
        used = [s.created_at for s in self.world.sessions.values()] + \
            [u.created_at for u in self.world.uploads.values()]
        return data.draw(st.one_of(st.sampled_from(used), CREATED) if used else CREATED)

    @precondition(lambda self: self.world)
    @rule(data=st.data())
    def add_session(self, data):
        project = data.draw(st.sampled_from(sorted(self.world.projects)))
        s = draw_session(data.draw, self.ids(data), project, self.some_created(data))
        self.sql("INSERT INTO upload_sessions (id, project_id, created_at, expires_at, status, "
                 "tags, long_polling_enabled) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                 s.id, s.project, s.created_at, s.expires_at, s.status, s.tags, s.long_polling)
        for destination, type in s.destinations.items():
            self.sql("INSERT INTO destinations (id, session_id, type) VALUES (%s, %s, %s)",
                     destination, s.id, type)
        self.world.sessions[s.id] = s

    @precondition(lambda self: self.world and self.world.sessions)
    @rule(data=st.data())
    def add_upload(self, data):
        session = self.world.sessions[data.draw(st.sampled_from(sorted(self.world.sessions)))]
        u = draw_upload(data.draw, self.ids(data), session, self.some_created(data))
        self.sql("INSERT INTO uploads (id, session_id, project_id, filename, size_bytes, "
                 "mime_type, source, is_encrypted, created_at) "
                 "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                 u.id, session.id, session.project, u.filename, u.size, u.mime, u.source,
                 u.encrypted, u.created_at)
        for destination, status in u.deliveries.items():
            self.sql("INSERT INTO deliveries (upload_id, destination_id, session_id, project_id, "
                     "status) VALUES (%s, %s, %s, %s, %s)",
                     u.id, destination, session.id, session.project, status)
        self.world.uploads[u.id] = u

    def deliveries(self):
        return sorted((u.id, d) for u in self.world.uploads.values() for d in u.deliveries)

    @precondition(lambda self: self.world and self.deliveries())
    @rule(data=st.data(), status=st.sampled_from(DELIVERY_STATUSES))
    def change_delivery_status(self, data, status):
        upload, destination = data.draw(st.sampled_from(self.deliveries()))
        self.sql("UPDATE deliveries SET status = %s WHERE upload_id = %s AND destination_id = %s",
                 status, upload, destination)
        self.world.uploads[upload].deliveries[destination] = status

    # the check, after every step

    @precondition(lambda self: self.world)
    @rule(data=st.data())
    def a_random_caller_pages_through(self, data):
        """Random parameters too, not only the whole-list view of the invariant."""
        credentials = callers(self.world, self.stranger, secret_for(self.stranger))
        caller, credential = data.draw(st.sampled_from(credentials))
        params = data.draw(PARAMS)
        for path in ENDPOINTS:
            check(self.client, self.world, caller, credential, path, params)

    @invariant()
    def every_caller_sees_exactly_the_model(self):
        if self.world is None:
            return
        # Whole lists (no world here outgrows a page) and stats; the recent lists run the
        # same rows through a limit, and the rule above covers them.
        params = {"pageSize": "100"}
        for caller, credential in callers(self.world, self.stranger, secret_for(self.stranger)):
            for path in ("/api/v1/sessions", "/api/v1/uploads", "/api/v1/stats"):
                check(self.client, self.world, caller, credential, path, params)


def test_live_world_changes_show_on_the_next_request(app, rw):
    LiveWorld.conn, LiveWorld.client = rw, app.test_client()
    run_state_machine_as_test(LiveWorld, settings=settings(
        max_examples=10, stateful_step_count=15, **FAST))
