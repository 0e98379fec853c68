"""Property-based isolation (SPEC §3–§5, filters, cursor walks, exports, single rows):
random worlds and callers against a model.

The model is plain Python over the generated world: it never asks the service's SQL.
Every route is covered: the recent and paginated lists under every filter, cursor walks,
CSV and NDJSON exports, single sessions and uploads, stats and keys/current.
"""

import csv
import io
import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import database
from fixture import load_fixture
from tests.conftest import bearer, make_token, ordered
from tests.spec import DELIVERY_STATUSES, SESSION_STATUSES, SOURCES, UPLOAD_STATUSES

# Children first, so every DELETE is free of foreign-key trouble.
TABLES = (
    "deliveries",
    "uploads",
    "destinations",
    "upload_sessions",
    "api_keys",
    "members",
    "projects",
    "users",
)
SESSIONS, UPLOADS = "/api/v1/sessions", "/api/v1/uploads"
FAMILIES = (SESSIONS, UPLOADS)
RECENT = {SESSIONS: SESSIONS + "/recent", UPLOADS: UPLOADS + "/recent"}
STATS, CURRENT_KEY = "/api/v1/stats", "/api/v1/keys/current"
ENDPOINTS = (RECENT[SESSIONS], SESSIONS, RECENT[UPLOADS], UPLOADS, STATS, CURRENT_KEY)
# A project, session and upload id that no world ever holds (Ids never draws it).
NOWHERE = "00000000-0000-4000-8000-000000000000"
# Code-point order differs from any locale's here: "_" < "a"... and "9" < "_" < "x".
DESTINATION_TYPES = ("a", "b_x", "bx", "b9", "webhook", "s3")
# Repeated names force the id tie-break; case and accents separate "C" from a locale.
PROJECT_NAMES = ("Zeta", "alpha", "Östra", "Acme", "acme", "Beta", "Beta")
MAX_PAGE = 2_147_483_647

NOW = datetime.now(UTC)
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
    name: str = "key"


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
            "users": [
                {"id": id, "email": f"{id[:8]}@example.com", "name": name}
                for id, name in self.users.items()
            ],
            "projects": [
                {"id": p.id, "name": p.name, "ownerId": p.owner, "createdAt": iso(p.created_at)}
                for p in self.projects.values()
            ],
            "members": [
                {"projectId": p, "userId": u, "role": role} for (p, u), role in self.members.items()
            ],
            "apiKeys": [
                {
                    "id": k.id,
                    "projectId": k.project,
                    "key": k.secret,
                    "name": k.name,
                    "createdAt": iso(k.created_at),
                    "expiresAt": iso(k.expires_at),
                    "revokedAt": iso(k.revoked_at),
                }
                for k in self.keys.values()
            ],
            "sessions": [
                {
                    "id": s.id,
                    "projectId": s.project,
                    "createdAt": iso(s.created_at),
                    "expiresAt": iso(s.expires_at),
                    "status": s.status,
                    "tags": s.tags,
                    "longPollingEnabled": s.long_polling,
                    "destinations": [{"id": d, "type": t} for d, t in s.destinations.items()],
                }
                for s in self.sessions.values()
            ],
            "uploads": [
                {
                    "id": u.id,
                    "sessionId": u.session,
                    "filename": u.filename,
                    "sizeBytes": u.size,
                    "mimeType": u.mime,
                    "source": u.source,
                    "isEncrypted": u.encrypted,
                    "createdAt": iso(u.created_at),
                    "deliveries": [
                        {"destinationId": d, "status": s} for d, s in u.deliveries.items()
                    ],
                }
                for u in self.uploads.values()
            ],
        }


def iso(moment):
    """Microseconds kept: the response must truncate them, not the fixture."""
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def secret_for(key_id):
    return f"aptr_{uuid.UUID(key_id).hex}{uuid.UUID(key_id).hex[:8]}"


# --- strategies ------------------------------------------------------------------------------

# Sub-millisecond parts that truncation and rounding would disagree on.
MICROS = st.one_of(
    st.sampled_from([0, 1, 999, 1000, 499_999, 500_000, 999_499, 999_999]), st.integers(0, 999_999)
)
DAY = 86_400


def seconds_before(start, low, high):
    return st.builds(
        lambda s, us: start - timedelta(seconds=s, microseconds=us), st.integers(low, high), MICROS
    )


def seconds_after(start, low, high):
    return st.builds(
        lambda s, us: start + timedelta(seconds=s, microseconds=us), st.integers(low, high), MICROS
    )


PAST = seconds_before(NOW, int(MARGIN.total_seconds()), 90 * DAY)
FUTURE = seconds_after(NOW, int(MARGIN.total_seconds()), 90 * DAY)
THIS_MONTH_SO_FAR = st.builds(
    lambda fraction: MONTH_START + (NOW - MONTH_START) * fraction, st.floats(0, 1)
)
MONTH_EDGES = st.sampled_from(
    [
        MONTH_START,
        MONTH_START + TICK,
        MONTH_START - TICK,
        PREVIOUS_MONTH_START,
        PREVIOUS_MONTH_START - TICK,
        NEXT_MONTH_START - TICK,
        NEXT_MONTH_START,
    ]
)
# Creation dates: the last ~3 months, this month in particular, its edges, a few in the future.
CREATED = st.one_of(
    seconds_before(NOW, 0, 95 * DAY),
    THIS_MONTH_SO_FAR,
    MONTH_EDGES,
    seconds_after(NOW, 0, 10 * DAY),
)
THIS_MONTH = st.one_of(THIS_MONTH_SO_FAR, st.sampled_from([MONTH_START, NEXT_MONTH_START - TICK]))
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
TAGS = st.one_of(st.none(), st.just([]), st.lists(TEXT, min_size=1, max_size=3))
FILENAMES = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12
)
SIZES = st.one_of(st.integers(0, 10**7), st.sampled_from([0, 2**53 + 1, 2**63 - 1]))
MIMES = st.sampled_from(["image/jpeg", "image/png", "image/heic"])
OPTIONAL_DELIVERY = st.sampled_from((None,) + DELIVERY_STATUSES)


class Ids:
    """Fresh UUIDs drawn by hypothesis (so examples replay), never repeated in one world."""

    def __init__(self, draw, taken=()):
        self.draw, self.taken = draw, set(taken) | {NOWHERE}

    def new(self):
        value = str(self.draw(st.uuids().filter(lambda u: str(u) not in self.taken)))
        self.taken.add(value)
        return value


def draw_session(draw, ids, project, created):
    return Session(
        id=ids.new(),
        project=project,
        created_at=created,
        expires_at=draw(st.one_of(PAST, FUTURE)),
        status=draw(st.sampled_from(SESSION_STATUSES)),
        tags=draw(TAGS),
        long_polling=draw(st.booleans()),
        destinations={
            ids.new(): draw(st.sampled_from(DESTINATION_TYPES))
            for _ in range(draw(st.integers(0, 3)))
        },
    )


def draw_upload(draw, ids, session, created):
    deliveries = {}
    for destination in session.destinations:
        status = draw(OPTIONAL_DELIVERY)
        if status:
            deliveries[destination] = status
    return Upload(
        id=ids.new(),
        session=session.id,
        filename=draw(FILENAMES),
        size=draw(SIZES),
        mime=draw(MIMES),
        source=draw(st.sampled_from(SOURCES)),
        encrypted=draw(st.booleans()),
        created_at=created,
        deliveries=deliveries,
    )


@st.composite
def worlds(
    draw,
    users=st.integers(1, 5),
    projects=st.integers(1, 5),
    keys=st.integers(0, 3),
    sessions=st.integers(0, 3),
    uploads=st.integers(0, 4),
    created=CREATED,
    names=st.sampled_from(PROJECT_NAMES),
):
    """A small random world; creation dates come from a shared pool, so ties are common."""
    ids, world = Ids(draw), World()
    pool = draw(st.lists(created, min_size=1, max_size=3))
    moment = st.one_of(st.sampled_from(pool), created)
    for _ in range(draw(users)):
        world.users[ids.new()] = draw(TEXT)
    for _ in range(draw(projects)):
        project = Project(
            ids.new(), draw(names), draw(st.sampled_from(list(world.users))), draw(PAST)
        )
        world.projects[project.id] = project
        for user in world.users:
            # The owner is sometimes listed again, which must change nothing.
            role = draw(st.sampled_from([None, None, "admin", "member"]))
            if role:
                world.members[(project.id, user)] = role
        for _ in range(draw(keys)):
            key_id = ids.new()
            world.keys[key_id] = Key(
                key_id,
                project.id,
                secret_for(key_id),
                draw(PAST),
                expires_at=draw(st.one_of(st.none(), PAST, FUTURE)),
                revoked_at=draw(st.one_of(st.none(), PAST, FUTURE)),
                name=draw(TEXT),
            )
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
LIMITS = number_parameter(
    st.one_of(
        st.none(),
        st.integers(1, 60).map(str),
        st.sampled_from(["", "1", "10", "50", "51", "0050", "1000", "9" * 30]),
    ),
    BAD_NUMBERS,
)
PAGES = number_parameter(
    st.one_of(
        st.none(), st.integers(1, 4).map(str), st.sampled_from(["", "01", "1000", str(MAX_PAGE)])
    ),
    BAD_NUMBERS + [str(MAX_PAGE + 1)],
)
PAGE_SIZES = number_parameter(
    st.one_of(
        st.none(),
        st.integers(1, 8).map(str),
        st.sampled_from(["", "20", "100", "101", "0100", "9" * 30]),
    ),
    BAD_NUMBERS,
)
# Every request carries all three: each endpoint must ignore the others' parameters.
PARAMS = st.fixed_dictionaries({"limit": LIMITS, "page": PAGES, "pageSize": PAGE_SIZES}).map(
    lambda params: {k: v for k, v in params.items() if v is not None}
)


@st.composite
def optional_parameter(draw, valid, invalid, odds=40):
    """Absent half the time; else mostly a valid value, now and then empty (= absent) or
    one the service must refuse."""
    roll = draw(st.integers(0, 2 * odds - 1))
    if roll < odds:
        return None
    if roll == odds:
        return draw(st.sampled_from(invalid))
    if roll == odds + 1:
        return ""
    return draw(valid)


def comma_list(words):
    """`a,b,…`, repeats allowed (they must change nothing)."""
    return st.lists(st.sampled_from(words), min_size=1, max_size=3).map(",".join)


EXPORT_REQUESTS = st.sampled_from(
    [  # (expected media, extra query, headers)
        ("ndjson", {"format": "ndjson"}, {}),
        ("csv", {"format": "csv"}, {}),
        ("ndjson", {}, {"Accept": "application/x-ndjson"}),
        ("csv", {}, {"Accept": "text/csv"}),
        ("ndjson", {"format": "ndjson"}, {"Accept": "text/csv"}),  # ?format wins over Accept
    ]
)


# `from`/`to` are written in several offsets; the instant is what counts.
ZONES = (
    "Z",
    UTC,
    timezone(timedelta(hours=5, minutes=30)),
    timezone(-timedelta(hours=8)),
    timezone(timedelta(hours=14)),
)


def moment_text(moment, zone, whole_seconds):
    if whole_seconds:
        moment = moment.replace(microsecond=0)
    if zone == "Z":
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return moment.astimezone(zone).isoformat()


BAD_PROJECT_IDS = [
    "nope",
    "1234",
    "0b1d0000-0000-4000-8000-00000000000",
    "0b1d000000004000800000000000000a",
    "{0b1d0000-0000-4000-8000-000000000001}",
]
BAD_MOMENTS = [
    "2026-01-01T00:00:00",
    "2026-01-01",
    "yesterday",
    "2026-02-30T00:00:00Z",
    "2026-01-01T25:00:00Z",
]
BAD_FILTERS = {
    SESSIONS: {
        "status": [
            "Active",
            "active,",
            ",failed",
            "stored_only",
            "active,,failed",
            "active failed",
        ],
        "tag": ["a\x00b"],
    },
    UPLOADS: {
        "status": ["expired", "Delivered", "partial,", "delivered;failed"],
        "source": ["Camera", "webcam", "camera,", "google drive"],
        "destinationType": ["S3", "9x", "a-b", "s3,", "_x", "a" * 33, "wébhook"],
    },
}


def shifted(moment, shift):
    return moment + shift


def without_absent(params):
    return {name: value for name, value in params.items() if value is not None}


def filter_params(world, family, odds=40):
    """Query filters of one list family, drawn from the world so that they match rows:
    its projects (in or out of the caller's scope) or none, its tags, its creation
    dates to the microsecond (and one either side). About one filter in 2*odds is one
    the service must refuse (odds=10**6: practically none). Build once per world: a
    strategy costs more to build and validate than to draw from."""
    projects = sorted(world.projects)
    project_ids = st.one_of(
        *(
            [st.sampled_from(projects), st.sampled_from(projects).map(str.upper)]
            if projects
            else []
        ),
        st.just(NOWHERE),
    )
    items = world.sessions if family == SESSIONS else world.uploads
    created = sorted(item.created_at for item in items.values())
    # Mostly a row's own createdAt (the bounds' edges), else one microsecond either side.
    instants = st.one_of(
        *(
            [
                st.sampled_from(created),
                st.sampled_from(created),
                st.builds(shifted, st.sampled_from(created), st.sampled_from([-TICK, TICK])),
            ]
            if created
            else []
        ),
        CREATED,
    )
    moments = st.builds(
        moment_text, instants, st.sampled_from(ZONES), st.sampled_from([False, False, True])
    )
    bad = BAD_FILTERS[family]
    if family == SESSIONS:
        tags = sorted({tag for s in world.sessions.values() for tag in s.tags or []})
        specific = {
            "status": optional_parameter(comma_list(SESSION_STATUSES), bad["status"], odds),
            "tag": optional_parameter(
                st.one_of(*([st.sampled_from(tags)] if tags else []), TEXT), bad["tag"], odds
            ),
        }
    else:
        specific = {
            "status": optional_parameter(comma_list(UPLOAD_STATUSES), bad["status"], odds),
            "source": optional_parameter(comma_list(SOURCES), bad["source"], odds),
            "destinationType": optional_parameter(
                comma_list(DESTINATION_TYPES + ("ftp",)), bad["destinationType"], odds
            ),
        }
    return st.fixed_dictionaries(
        {
            "projectId": optional_parameter(project_ids, BAD_PROJECT_IDS, odds),
            **specific,
            "from": optional_parameter(moments, BAD_MOMENTS, odds),
            "to": optional_parameter(moments, BAD_MOMENTS, odds),
        }
    ).map(without_absent)


# --- the reference model, from SPEC §3 and §5 alone ----------------------------------------


def timestamp(moment):
    """SPEC §4: UTC, three fractional digits truncated, Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def key_is_active(key, now):
    return (key.revoked_at is None or key.revoked_at > now) and (
        key.expires_at is None or key.expires_at > now
    )


def scope_of(world, caller, now):
    """The project ids a caller may see, or None when it must be refused with 401."""
    kind, ident = caller
    if kind == "user":
        if ident not in world.users:
            return None
        return {p.id for p in world.projects.values() if p.owner == ident} | {
            p for (p, u) in world.members if u == ident
        }
    key = next((k for k in world.keys.values() if k.secret == ident), None)
    return {key.project} if key is not None and key_is_active(key, now) else None


def newest_first(items):
    # Lowercase UUID text sorts as PostgreSQL sorts uuids (byte by byte).
    return sorted(items, key=lambda item: (item.created_at, item.id), reverse=True)


def reported_status(session, now):
    if session.status in ("pending", "active") and session.expires_at <= now:
        return "expired"
    return session.status


def session_row(world, session, now):
    uploads = [u for u in world.uploads.values() if u.session == session.id]
    status = reported_status(session, now)
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


def upload_detail(world, upload):
    """The single-upload answer: the list row and its deliveries by type, then id."""
    types = world.sessions[upload.session].destinations
    deliveries = sorted(upload.deliveries.items(), key=lambda item: (types[item[0]], item[0]))
    return {
        **upload_row(world, upload),
        "deliveries": [
            {"destinationId": d, "type": types[d], "status": status} for d, status in deliveries
        ],
    }


def key_row(world, key):
    return {
        "id": key.id,
        "name": key.name,
        "projectId": key.project,
        "projectName": world.projects[key.project].name,
        "createdAt": timestamp(key.created_at),
        "expiresAt": None if key.expires_at is None else timestamp(key.expires_at),
    }


SESSION_COLUMNS = (
    "id",
    "createdAt",
    "expiresAt",
    "status",
    "projectId",
    "projectName",
    "imagesCount",
    "imagesDelivered",
    "imagesFailed",
    "destinationsCount",
    "tags",
    "longPollingEnabled",
)
UPLOAD_COLUMNS = (
    "id",
    "filename",
    "sizeBytes",
    "mimeType",
    "source",
    "isEncrypted",
    "createdAt",
    "sessionId",
    "projectId",
    "projectName",
    "destinationsTotal",
    "destinationsDelivered",
    "destinationsFailed",
    "destinationsBreakdown",
    "status",
)
COLUMNS = {SESSIONS: SESSION_COLUMNS, UPLOADS: UPLOAD_COLUMNS}


def session_matches(world, session, filters, now):
    return (
        session.project == filters.get("project", session.project)
        and reported_status(session, now) in filters.get("statuses", SESSION_STATUSES)
        and ("tag" not in filters or filters["tag"] in (session.tags or []))
        and session.created_at >= filters.get("from", session.created_at)
        and ("to" not in filters or session.created_at < filters["to"])
    )


def upload_matches(world, upload, filters, now):
    types = world.sessions[upload.session].destinations
    return (
        world.project_of_upload(upload) == filters.get("project", world.project_of_upload(upload))
        and upload_status(list(upload.deliveries.values()))
        in filters.get("statuses", UPLOAD_STATUSES)
        and upload.source in filters.get("sources", SOURCES)
        and ("types" not in filters or any(types[d] in filters["types"] for d in upload.deliveries))
        and upload.created_at >= filters.get("from", upload.created_at)
        and ("to" not in filters or upload.created_at < filters["to"])
    )


def model_rows(world, scope, family, filters, now):
    """Every row of a list in scope that passes the filters, newest first."""
    if family == SESSIONS:
        sessions = [
            s
            for s in world.sessions.values()
            if s.project in scope and session_matches(world, s, filters, now)
        ]
        return [session_row(world, s, now) for s in newest_first(sessions)]
    uploads = [
        u
        for u in world.uploads.values()
        if world.project_of_upload(u) in scope and upload_matches(world, u, filters, now)
    ]
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
        "activeKeys": sum(
            k.project in scope and key_is_active(k, now) for k in world.keys.values()
        ),
        "topProjects": [
            {"id": p, "name": world.projects[p].name, "sessions": this_month[p]} for p in top
        ],
    }


class Refused(Exception):
    """A parameter the SPEC refuses: 400 invalid_parameter."""


class Missing(Exception):
    """A projectId the caller cannot see, or that does not exist: 404 not_found."""


def number(raw, default, clamp=None, maximum=None):
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]+", raw, re.ASCII) or int(raw) < 1:
        raise Refused(raw)
    if maximum is not None and int(raw) > maximum:
        raise Refused(raw)
    return min(int(raw), clamp) if clamp else int(raw)


UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12}"
)
TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def present(params, name):
    """A parameter's value; empty is the same as absent."""
    value = params.get(name)
    return None if value in (None, "") else value


def words(raw, allowed):
    """A comma list of allowed words, as a set; any other word is refused."""
    listed = raw.split(",")
    if not all(allowed(word) for word in listed):
        raise Refused(raw)
    return set(listed)


def instant(raw):
    """ISO 8601 with an offset (Python's reading of ISO 8601)."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise Refused(raw) from None
    if moment.tzinfo is None:
        raise Refused(raw)
    return moment


def load_filters(family, params):
    """The filters of a list family among the query parameters (others are ignored)."""
    filters = {}
    if (raw := present(params, "projectId")) is not None:
        if not UUID_TEXT.fullmatch(raw):
            raise Refused(raw)
        filters["project"] = raw.lower()
    statuses = SESSION_STATUSES if family == SESSIONS else UPLOAD_STATUSES
    if (raw := present(params, "status")) is not None:
        filters["statuses"] = words(raw, statuses.__contains__)
    if family == SESSIONS:
        if (raw := present(params, "tag")) is not None:
            if "\x00" in raw:
                raise Refused(raw)
            filters["tag"] = raw
    else:
        if (raw := present(params, "source")) is not None:
            filters["sources"] = words(raw, SOURCES.__contains__)
        if (raw := present(params, "destinationType")) is not None:
            filters["types"] = words(raw, TYPE_NAME.fullmatch)
    for name in ("from", "to"):
        if (raw := present(params, name)) is not None:
            filters[name] = instant(raw)
    return filters


def expected_list(world, scope, family, params, now):
    """The whole filtered list in scope; raises Refused (a bad filter) or Missing (a
    projectId out of scope or unknown)."""
    filters = load_filters(family, params)
    if "project" in filters and filters["project"] not in scope:
        raise Missing(filters["project"])
    return model_rows(world, scope, family, filters, now)


def paginated_params(params):
    """(page, page size) of a paginated list's query; raises Refused. They are checked
    even where they go unused (cursor walks ignore page, exports both)."""
    if present(params, "format") not in (None, "json", "csv", "ndjson"):
        raise Refused(params["format"])
    return (
        number(params.get("page"), 1, maximum=MAX_PAGE),
        number(params.get("pageSize"), 20, clamp=100),
    )


def caller_key(world, caller):
    """The key behind an API-key caller."""
    return next(k for k in world.keys.values() if k.secret == caller[1])


def expected_stats_response(world, scope, params, now):
    """/stats reads projectId alone, as the lists do: narrowed to that project, or refused."""
    try:
        project = load_filters(UPLOADS, {"projectId": params.get("projectId", "")}).get("project")
    except Refused:
        return 400, "invalid_parameter"
    if project is None:
        return 200, expected_stats(world, scope, now)
    if project not in scope:
        return 404, "not_found"
    return 200, expected_stats(world, {project}, now)


def expected_response(world, caller, path, params, now):
    """(status, body) of a JSON request; for errors the body is just the error code."""
    scope = scope_of(world, caller, now)
    if scope is None:
        return 401, "unauthorized"
    if path == STATS:
        return expected_stats_response(world, scope, params, now)
    if path == CURRENT_KEY:
        if caller[0] == "user":
            return 400, "invalid_parameter"
        return 200, key_row(world, caller_key(world, caller))
    family = SESSIONS if path.startswith(SESSIONS) else UPLOADS
    try:
        if path == RECENT[family]:
            limit = number(params.get("limit"), 10, clamp=50)
            return 200, expected_list(world, scope, family, params, now)[:limit]
        if path != family:  # one session or upload by id
            wanted = path.rsplit("/", 1)[1]
            items = world.sessions if family == SESSIONS else world.uploads
            item = items.get(wanted)
            if (
                item is None
                or (item.project if family == SESSIONS else world.project_of_upload(item))
                not in scope
            ):
                raise Missing(wanted)
            return 200, (
                session_row(world, item, now) if family == SESSIONS else upload_detail(world, item)
            )
        page, size = paginated_params(params)
        rows = expected_list(world, scope, family, params, now)
    except Refused:
        return 400, "invalid_parameter"
    except Missing:
        return 404, "not_found"
    return 200, {
        "data": rows[(page - 1) * size : page * size],
        "total": len(rows),
        "page": page,
        "pageSize": size,
        "totalPages": -(-len(rows) // size),
    }


# --- checking one request against the model -----------------------------------------------


def assert_rows_within_scope(world, scope, family, rows):
    """Every row of a list or export is a session or upload of a project in scope."""
    sessions = {s.id for s in world.sessions.values() if s.project in scope}
    uploads = {u.id for u in world.uploads.values() if world.project_of_upload(u) in scope}
    for row in rows:
        assert row["projectId"] in scope
        assert row["projectName"] == world.projects[row["projectId"]].name
        if family == SESSIONS:
            assert row["id"] in sessions
        else:
            assert row["id"] in uploads and row["sessionId"] in sessions


def assert_within_scope(world, scope, path, body):
    """Every id and name in a body belongs to a project in scope."""
    if path == STATS:
        for entry in body["topProjects"]:
            assert entry["id"] in scope and entry["name"] == world.projects[entry["id"]].name
    elif path == CURRENT_KEY:
        assert body["projectId"] in scope
        assert world.keys[body["id"]].project == body["projectId"]
    else:
        family = SESSIONS if path.startswith(SESSIONS) else UPLOADS
        rows = body["data"] if isinstance(body, dict) and "data" in body else body
        assert_rows_within_scope(world, scope, family, rows if isinstance(rows, list) else [rows])


def foreign_ids(world, scope):
    """The id of everything outside the scope: none may appear in any answer."""
    scope = scope or set()
    return (
        [p for p in world.projects if p not in scope]
        + [k.id for k in world.keys.values() if k.project not in scope]
        + [s.id for s in world.sessions.values() if s.project not in scope]
        + [d for s in world.sessions.values() if s.project not in scope for d in s.destinations]
        + [u.id for u in world.uploads.values() if world.project_of_upload(u) not in scope]
    )


def assert_no_foreign_ids(world, scope, text):
    text = text.lower()
    leaked = [id for id in foreign_ids(world, scope) if id in text]
    assert not leaked, leaked


def without_request_id(body):
    return {k: v for k, v in body.items() if k != "requestId"}


def assert_error(response, code, credential):
    """The JSON error envelope with this code, and nothing it should not say."""
    body = response.get_json()
    assert response.mimetype == "application/json"
    assert list(body)[:2] == ["error", "message"] and set(list(body)[2:]) <= {"requestId"}
    assert body["error"] == code
    assert credential not in response.get_data(as_text=True)
    if code == "unauthorized":
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def get(client, credential, path, params=None, headers=None):
    return client.get(
        path, headers={**bearer(credential), **(headers or {})}, query_string=params or {}
    )


def nowhere_instead(path, params):
    """The same request about a project, session or upload that does not exist."""
    if path in ENDPOINTS:
        return path, {**params, "projectId": NOWHERE}
    return path.rsplit("/", 1)[0] + "/" + NOWHERE, params


# The answer about a nonexistent project, session or upload, per request (reset() empties it).
UNKNOWN_ANSWERS = {}


def unknown_answer(client, credential, path, params, headers):
    """The body (less requestId) of the same request naming something that does not exist."""
    path, params = nowhere_instead(path, params)
    key = (credential, path, tuple(sorted(params.items())), tuple(sorted((headers or {}).items())))
    if key not in UNKNOWN_ANSWERS:
        response = get(client, credential, path, params, headers)
        assert response.status_code == 404, response.get_data(as_text=True)
        UNKNOWN_ANSWERS[key] = without_request_id(response.get_json())
    return UNKNOWN_ANSWERS[key]


def check(client, world, caller, credential, path, params, headers=None):
    """One GET compared, whole body and key order, with the model's answer; a 404 must be
    the very answer about something that does not exist. Returns the response."""
    now = datetime.now(UTC)
    response = get(client, credential, path, params, headers)
    scope = scope_of(world, caller, now)
    status, expected = expected_response(world, caller, path, params, now)
    text = response.get_data(as_text=True)
    note(f"{caller} {path} {params} -> {response.status_code} {text[:300]}")
    assert response.status_code == status, text
    assert response.mimetype == "application/json"
    assert_no_foreign_ids(world, scope, text)
    body = response.get_json()
    if status != 200:
        assert_error(response, expected, credential)
        if status == 404:
            assert without_request_id(body) == unknown_answer(
                client, credential, path, params, headers
            )
        return response
    assert body == expected
    assert ordered(body) == ordered(expected)
    assert_within_scope(world, scope, path, body)
    return response


def check_not_modified(client, credential, path, params, response):
    """The ETag of a 200 sent back as If-None-Match: 304, no body, the same ETag."""
    etag = response.headers["ETag"]
    again = get(client, credential, path, params, {"If-None-Match": etag})
    assert again.status_code == 304, again.get_data(as_text=True)
    assert again.get_data() == b"" and again.headers["ETag"] == etag


def walk(client, world, caller, credential, family, params, repeat_filters):
    """A whole cursor walk (`?cursor=` first, then each nextCursor) compared page by page
    with the model's list cut into pageSize pieces; returns the first nextCursor."""
    now = datetime.now(UTC)
    scope = scope_of(world, caller, now)
    first = get(client, credential, family, {**params, "cursor": ""})
    note(
        f"walk {caller} {family} {params} -> {first.status_code} "
        f"{first.get_data(as_text=True)[:300]}"
    )
    assert_no_foreign_ids(world, scope, first.get_data(as_text=True))
    try:
        if scope is None:
            return assert_error(first, "unauthorized", credential)
        _, size = paginated_params(params)
        rows = expected_list(world, scope, family, params, now)
    except Refused:
        return assert_error(first, "invalid_parameter", credential)
    except Missing:
        return assert_error(first, "not_found", credential)
    pages = [rows[start : start + size] for start in range(0, len(rows), size)] or [[]]
    response, cursor, first_cursor = first, None, None
    filters = {
        k: v
        for k, v in params.items()
        if k in ("projectId", "status", "tag", "source", "destinationType", "from", "to")
    }
    for index, page in enumerate(pages):
        if index:
            again = {
                **(filters if repeat_filters else {}),
                "cursor": cursor,
                "pageSize": params.get("pageSize", ""),
                "page": str(index + 7),
            }
            response = get(client, credential, family, again)
            assert_no_foreign_ids(world, scope, response.get_data(as_text=True))
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert list(body) == ["data", "nextCursor"]
        assert ordered(body["data"]) == ordered(page)
        cursor = body["nextCursor"]
        assert (cursor is None) == (index == len(pages) - 1)
        first_cursor = first_cursor or cursor
    return first_cursor


def csv_cell(value):
    """The CSV export's flattening: null empty, booleans as words, lists joined by `;`
    (tags as they are, the breakdown as type:count)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(
            f"{item['type']}:{item['count']}" if isinstance(item, dict) else item for item in value
        )
    return str(value)


def check_export(client, world, caller, credential, family, params, how):
    """An export, by ?format or Accept: exactly the model's rows in scope, all of them."""
    media, extra, headers = how
    now = datetime.now(UTC)
    scope = scope_of(world, caller, now)
    response = get(client, credential, family, {**params, **extra}, headers)
    text = response.get_data(as_text=True)
    note(f"export {caller} {family} {params} {how} -> {response.status_code} {text[:300]}")
    assert_no_foreign_ids(world, scope, text)
    try:
        if scope is None:
            return assert_error(response, "unauthorized", credential)
        paginated_params({**params, **extra})
        rows = expected_list(world, scope, family, params, now)
    except Refused:
        return assert_error(response, "invalid_parameter", credential)
    except Missing:
        assert_error(response, "not_found", credential)
        assert without_request_id(response.get_json()) == unknown_answer(
            client, credential, family, {**params, **extra}, headers
        )
        return
    assert response.status_code == 200, text
    resource = family.rsplit("/", 1)[1]
    assert response.headers["Content-Disposition"] == f'attachment; filename="{resource}.{media}"'
    if media == "ndjson":
        assert response.mimetype == "application/x-ndjson"
        lines = text.split("\n")
        assert lines[-1] == ""
        got = [json.loads(line) for line in lines[:-1]]
        assert ordered(got) == ordered(rows)
        assert_rows_within_scope(world, scope, family, got)
    else:
        assert response.mimetype == "text/csv"
        table = list(csv.reader(io.StringIO(text, newline="")))
        columns = COLUMNS[family]
        assert table[0] == list(columns)
        assert table[1:] == [[csv_cell(row[column]) for column in columns] for row in rows]


def callers(world, unknown_user, unknown_key):
    """Every user's JWT, every key (active or not), a stranger's JWT and a key never issued."""
    return (
        [(("user", u), make_token(u)) for u in world.users]
        + [(("key", k.secret), k.secret) for k in world.keys.values()]
        + [(("user", unknown_user), make_token(unknown_user)), (("key", unknown_key), unknown_key)]
    )


def reset(conn, world):
    UNKNOWN_ANSWERS.clear()
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


FAST = dict(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


# --- properties over random worlds ---------------------------------------------------------


def draw_stranger(data, world):
    """A user id that is nobody in the world."""
    return str(
        data.draw(
            st.uuids().filter(lambda u: str(u) not in world.users and str(u) != NOWHERE),
            label="stranger",
        )
    )


def filter_strategies(world, odds=40):
    return {family: filter_params(world, family, odds) for family in FAMILIES}


@settings(max_examples=32, **FAST)
@given(world=worlds(), data=st.data())
def test_every_caller_gets_exactly_the_model_on_every_endpoint(app, rw, world, data):
    """Every caller, every list under random filters (recent and paginated, totals
    included), stats and keys/current: exactly the model, nothing from outside the scope;
    an out-of-scope projectId answered exactly as an unknown one."""
    reset(rw, world)
    client = app.test_client()
    stranger = draw_stranger(data, world)
    filters = filter_strategies(world)
    for caller, credential in callers(world, stranger, secret_for(stranger)):
        for family in FAMILIES:
            # All three paging parameters: each endpoint reads its own.
            params = {
                **data.draw(PARAMS, label="paging"),
                **data.draw(filters[family], label=f"{family} filters"),
            }
            for path in (RECENT[family], family):
                check(client, world, caller, credential, path, params)
        # Stats read only the projectId among them; keys/current reads none.
        for path in (STATS, CURRENT_KEY):
            check(client, world, caller, credential, path, params)


@settings(max_examples=12, **FAST)
@given(
    world=worlds(
        users=st.integers(1, 3),
        projects=st.integers(1, 3),
        keys=st.integers(0, 2),
        sessions=st.integers(0, 2),
        uploads=st.integers(0, 2),
    ),
    data=st.data(),
)
def test_every_id_and_project_of_the_world_by_every_caller(app, rw, world, data):
    """Each session and upload by id, and each project as a list's projectId (recent,
    paginated or export): the model's row when in scope, else the very 404 a nonexistent
    id gets. keys/current too; one 200 of each caller revalidates to 304."""
    reset(rw, world)
    client = app.test_client()
    stranger = draw_stranger(data, world)
    for caller, credential in callers(world, stranger, secret_for(stranger)):
        answered = []  # (path, params, response)
        for family, items in ((SESSIONS, world.sessions), (UPLOADS, world.uploads)):
            for id in [*items, NOWHERE]:
                path = f"{family}/{id}"
                answered.append((path, {}, check(client, world, caller, credential, path, {})))
            for project in [*world.projects, NOWHERE]:
                params = {"projectId": project, "pageSize": "100", "limit": "50"}
                path = data.draw(st.sampled_from([RECENT[family], family, "export"]))
                if path == "export":
                    check_export(
                        client,
                        world,
                        caller,
                        credential,
                        family,
                        params,
                        data.draw(EXPORT_REQUESTS),
                    )
                else:
                    answered.append(
                        (path, params, check(client, world, caller, credential, path, params))
                    )
        answered.append(
            (CURRENT_KEY, {}, check(client, world, caller, credential, CURRENT_KEY, {}))
        )
        answered = [entry for entry in answered if entry[2].status_code == 200]
        if answered:
            path, params, response = data.draw(st.sampled_from(answered), label="revalidated")
            check_not_modified(client, credential, path, params, response)


def other_letter(text, index):
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def check_foreign_cursor(client, world, caller, credential, family, cursor, data):
    """A cursor works only for its own list and caller (a user's other token is the same
    caller; a caller without a scope is 401), and only as it was given."""
    now = datetime.now(UTC)
    others = [
        (c, other) for c, other in callers(world, NOWHERE, secret_for(NOWHERE)) if c != caller
    ]
    if caller[0] == "user":
        others.append((caller, make_token(caller[1], jti="another token")))
    other, other_credential = data.draw(st.sampled_from(others), label="cursor's other caller")
    response = get(client, other_credential, family, {"cursor": cursor})
    if scope_of(world, other, now) is None:
        assert_error(response, "unauthorized", other_credential)
    elif other == caller:
        assert response.status_code == 200, response.get_data(as_text=True)
    else:
        assert_error(response, "invalid_parameter", other_credential)
    other_list = UPLOADS if family == SESSIONS else SESSIONS
    assert_error(
        get(client, credential, other_list, {"cursor": cursor}), "invalid_parameter", credential
    )
    payload, _, signature = cursor.rpartition(".")
    for forged in (
        f"{other_letter(payload, len(payload) // 2)}.{signature}",
        f"{payload}.{other_letter(signature, len(signature) - 1)}",
    ):
        assert_error(
            get(client, credential, family, {"cursor": forged}), "invalid_parameter", credential
        )


@settings(max_examples=20, **FAST)
@given(world=worlds(), data=st.data())
def test_cursor_walks_and_exports_are_exactly_the_filtered_list(app, rw, world, data):
    """Some callers (any kind, valid or not) walk each list by cursor under random filters
    (repeated beside the cursor or not) and export it as CSV or NDJSON: the model's list,
    whole and in order. The first cursor of each list is then tried by another caller, on
    the other list and forged: 400 (401 for a caller without a scope)."""
    reset(rw, world)
    client = app.test_client()
    stranger = draw_stranger(data, world)
    everyone = callers(world, stranger, secret_for(stranger))
    chosen = data.draw(
        st.lists(st.sampled_from(range(len(everyone))), min_size=2, max_size=6, unique=True),
        label="callers",
    )
    filters, valid_filters = filter_strategies(world), filter_strategies(world, odds=10**6)
    tried = set()
    for caller, credential in (everyone[index] for index in chosen):
        for family in FAMILIES:
            params = {
                **data.draw(valid_filters[family], label="walk filters"),
                "pageSize": data.draw(st.sampled_from(["1", "2", "3", "03"])),
            }
            cursor = walk(
                client,
                world,
                caller,
                credential,
                family,
                params,
                data.draw(st.booleans(), label="repeat filters"),
            )
            if cursor and family not in tried:
                tried.add(family)
                check_foreign_cursor(client, world, caller, credential, family, cursor, data)
            check_export(
                client,
                world,
                caller,
                credential,
                family,
                data.draw(filters[family], label="export filters"),
                data.draw(EXPORT_REQUESTS),
            )


def test_a_cursor_sent_without_a_valid_credential_is_401_not_400(app, rw):
    """SPEC §4: on a known path authentication comes first (401 before 400), whatever the
    cursor: a real one of another caller, or none the service ever gave."""
    project = Project(str(uuid.uuid4()), "Acme", str(uuid.uuid4()), NOW - timedelta(days=9))
    world = World(users={project.owner: "Ada"}, projects={project.id: project})
    for _ in range(3):
        session = Session(
            str(uuid.uuid4()),
            project.id,
            NOW - timedelta(days=1),
            NOW + MARGIN,
            "active",
            None,
            False,
            {},
        )
        world.sessions[session.id] = session
    key_ids = [str(uuid.uuid4()) for _ in range(3)]
    active, revoked, expired = (
        Key(key_ids[0], project.id, secret_for(key_ids[0]), NOW - MARGIN, None, None),
        Key(key_ids[1], project.id, secret_for(key_ids[1]), NOW - MARGIN, None, NOW - MARGIN),
        Key(key_ids[2], project.id, secret_for(key_ids[2]), NOW - MARGIN, NOW - MARGIN, None),
    )
    world.keys = {key.id: key for key in (active, revoked, expired)}
    reset(rw, world)
    client = app.test_client()
    first = get(client, active.secret, SESSIONS, {"cursor": "", "pageSize": "1"}).get_json()
    refused = []
    for credential in (
        revoked.secret,
        expired.secret,
        secret_for(str(uuid.uuid4())),
        make_token(str(uuid.uuid4())),
    ):
        for cursor in ("", first["nextCursor"], "not-a-cursor"):
            response = get(client, credential, SESSIONS, {"cursor": cursor})
            if response.status_code != 401:
                refused.append(
                    (
                        credential[:12],
                        cursor[:12],
                        response.status_code,
                        response.get_json()["error"],
                    )
                )
    assert not refused, refused


@st.composite
def large_worlds(draw):
    """Two projects of one owner with more uploads than an export batch (100) and a page
    (100): built from one seeded Random, as hypothesis draws for hundreds of rows would
    overrun its buffer."""
    rnd = draw(st.randoms(use_true_random=False))
    count = iter(range(1, 10**6))

    def new_id():  # random high bits, a counter below: never twice the same
        return str(uuid.UUID(int=rnd.getrandbits(64) << 64 | next(count), version=4))

    world, owner = World(), new_id()
    world.users[owner] = "owner"
    pool = [
        NOW - timedelta(seconds=rnd.randrange(95 * DAY), microseconds=rnd.randrange(10**6))
        for _ in range(12)
    ]
    for name, sessions in (("Big", rnd.randint(40, 45)), ("Other", rnd.randint(5, 8))):
        project = Project(new_id(), name, owner, NOW - timedelta(days=400))
        world.projects[project.id] = project
        key_id = new_id()
        world.keys[key_id] = Key(
            key_id, project.id, secret_for(key_id), NOW - MARGIN, None, None, name=f"{name} key"
        )
        for _ in range(sessions):
            session = Session(
                new_id(),
                project.id,
                rnd.choice(pool),
                NOW + MARGIN * 2,
                rnd.choice(SESSION_STATUSES),
                rnd.choice([None, ["x"]]),
                False,
                {new_id(): rnd.choice(DESTINATION_TYPES) for _ in range(2)},
            )
            world.sessions[session.id] = session
            for _ in range(3):
                upload = Upload(
                    new_id(),
                    session.id,
                    "a.jpg",
                    rnd.randrange(10**6),
                    "image/jpeg",
                    rnd.choice(SOURCES),
                    False,
                    rnd.choice(pool),
                    {
                        d: rnd.choice(DELIVERY_STATUSES)
                        for d in session.destinations
                        if rnd.random() < 0.7
                    },
                )
                world.uploads[upload.id] = upload
    return world


@settings(max_examples=3, **FAST)
@given(world=large_worlds(), data=st.data())
def test_walks_and_exports_longer_than_a_batch(app, rw, world, data):
    """Past 100 rows: a cursor walk at the largest page (pageSize 150 is 100) and an export
    spanning several batches still give each row once, in order."""
    reset(rw, world)
    client = app.test_client()
    (user,) = world.users
    valid_filters = filter_strategies(world, odds=10**6)
    everyone = [(("user", user), make_token(user))] + [
        (("key", k.secret), k.secret) for k in world.keys.values()
    ]
    for caller, credential in everyone:
        for family in FAMILIES:
            for params in ({}, data.draw(valid_filters[family])):
                walk(
                    client,
                    world,
                    caller,
                    credential,
                    family,
                    {**params, "pageSize": "150"},
                    repeat_filters=True,
                )
                check_export(
                    client, world, caller, credential, family, params, data.draw(EXPORT_REQUESTS)
                )
                check(
                    client,
                    world,
                    caller,
                    credential,
                    family,
                    {**params, "page": "2", "pageSize": "100"},
                )


@settings(max_examples=15, **FAST)
@given(
    world=worlds(
        users=st.just(1),
        projects=st.integers(10, 13),
        keys=st.just(0),
        sessions=st.integers(1, 2),
        uploads=st.just(0),
        created=THIS_MONTH,
        names=st.sampled_from(["Beta", "beta"]),
    )
)
def test_top_projects_keep_the_first_ten_in_order(app, rw, world):
    """Many ties in sessions and names, so the cut at ten depends on every sort key."""
    reset(rw, world)
    client = app.test_client()
    for user in world.users:
        check(client, world, ("user", user), make_token(user), "/api/v1/stats", {})


@settings(max_examples=10, **FAST)
@given(
    world=worlds(
        users=st.just(1),
        projects=st.just(1),
        keys=st.just(1),
        sessions=st.integers(49, 53),
        uploads=st.integers(0, 1),
    ),
    limits=st.lists(LIMITS, min_size=1, max_size=3),
)
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
    for id, name in zip(ids, ["alpha", "Zeta", "Östra", "Zeta"], strict=True):
        world.projects[id] = Project(id, name, "u", NOW)
        world.sessions[f"s{id}"] = Session(
            f"s{id}", id, MONTH_START, NOW, "active", None, False, {}
        )
    top = expected_stats(world, set(ids), NOW)["topProjects"]
    assert [(p["name"], p["id"]) for p in top] == [
        ("Zeta", ids[1]),
        ("Zeta", ids[3]),
        ("alpha", ids[0]),
        ("Östra", ids[2]),
    ]
    assert timestamp(datetime(2026, 1, 2, 3, 4, 5, 999_999, UTC)) == "2026-01-02T03:04:05.999Z"
    assert [
        upload_status(s)
        for s in (
            [],
            ["sent"],
            ["pending", "sent"],
            ["pending", "failed"],
            ["sent", "failed", "pending"],
        )
    ] == ["stored_only", "delivered", "pending", "failed", "partial"]


# --- a live world: every change shows on the next request ----------------------------------


class LiveWorld(RuleBasedStateMachine):
    """Direct SQL changes to a loaded world; after each, callers must see exactly the model."""

    conn = client = None  # set by the test that runs the machine

    def __init__(self):
        super().__init__()
        self.world = None

    @initialize(
        world=worlds(
            users=st.integers(1, 3),
            projects=st.integers(1, 3),
            keys=st.integers(0, 2),
            sessions=st.integers(0, 2),
        ),
        data=st.data(),
    )
    def load(self, world, data):
        reset(self.conn, world)
        self.world = world
        self.stranger = draw_stranger(data, world)
        self.etags = {}  # (caller, path) -> (ETag, the model's answer it was given for)

    def ids(self, data):
        w = self.world
        taken = [
            *w.users,
            *w.projects,
            *w.keys,
            *w.sessions,
            *w.uploads,
            *(d for s in w.sessions.values() for d in s.destinations),
        ]
        return Ids(data.draw, taken)

    def sql(self, query, *args):
        return (
            self.conn.execute(query, args).fetchone()
            if "RETURNING" in query
            else self.conn.execute(query, args)
        )

    # memberships

    def free_memberships(self):
        return [
            (p, u)
            for p in self.world.projects
            for u in self.world.users
            if (p, u) not in self.world.members
        ]

    @precondition(lambda self: self.world and self.free_memberships())
    @rule(data=st.data(), role=st.sampled_from(["admin", "member"]))
    def add_membership(self, data, role):
        project, user = data.draw(st.sampled_from(self.free_memberships()))
        self.sql(
            "INSERT INTO members (project_id, user_id, role) VALUES (%s, %s, %s)",
            project,
            user,
            role,
        )
        self.world.members[(project, user)] = role

    @precondition(lambda self: self.world and self.world.members)
    @rule(data=st.data())
    def remove_membership(self, data):
        project, user = data.draw(st.sampled_from(sorted(self.world.members)))
        self.sql("DELETE FROM members WHERE project_id = %s AND user_id = %s", project, user)
        del self.world.members[(project, user)]

    # keys: one rule, so key changes get no more steps than the other kinds

    KEY_CHANGES: ClassVar[dict] = {
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
        row = self.sql(
            f"UPDATE api_keys SET {column} = {value_sql} WHERE id = %s RETURNING {column} AS value",
            key,
        )
        setattr(self.world.keys[key], column, row["value"])

    # sessions, uploads, deliveries

    def some_created(self, data):
        """A creation date, often one already used (ties)."""
        used = [s.created_at for s in self.world.sessions.values()] + [
            u.created_at for u in self.world.uploads.values()
        ]
        return data.draw(st.one_of(st.sampled_from(used), CREATED) if used else CREATED)

    @precondition(lambda self: self.world)
    @rule(data=st.data())
    def add_session(self, data):
        project = data.draw(st.sampled_from(sorted(self.world.projects)))
        s = draw_session(data.draw, self.ids(data), project, self.some_created(data))
        self.sql(
            "INSERT INTO upload_sessions (id, project_id, created_at, expires_at, status, "
            "tags, long_polling_enabled) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            s.id,
            s.project,
            s.created_at,
            s.expires_at,
            s.status,
            s.tags,
            s.long_polling,
        )
        for destination, type in s.destinations.items():
            self.sql(
                "INSERT INTO destinations (id, session_id, type) VALUES (%s, %s, %s)",
                destination,
                s.id,
                type,
            )
        self.world.sessions[s.id] = s

    @precondition(lambda self: self.world and self.world.sessions)
    @rule(data=st.data())
    def add_upload(self, data):
        session = self.world.sessions[data.draw(st.sampled_from(sorted(self.world.sessions)))]
        u = draw_upload(data.draw, self.ids(data), session, self.some_created(data))
        self.sql(
            "INSERT INTO uploads (id, session_id, project_id, filename, size_bytes, "
            "mime_type, source, is_encrypted, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            u.id,
            session.id,
            session.project,
            u.filename,
            u.size,
            u.mime,
            u.source,
            u.encrypted,
            u.created_at,
        )
        for destination, status in u.deliveries.items():
            self.sql(
                "INSERT INTO deliveries (upload_id, destination_id, session_id, project_id, "
                "status) VALUES (%s, %s, %s, %s, %s)",
                u.id,
                destination,
                session.id,
                session.project,
                status,
            )
        self.world.uploads[u.id] = u

    @precondition(lambda self: self.world and self.world.sessions)
    @rule(
        data=st.data(),
        status=st.sampled_from(SESSION_STATUSES),
        tags=TAGS,
        expires_at=st.one_of(PAST, FUTURE),
    )
    def change_session(self, data, status, tags, expires_at):
        """What the session filters read: reported status (through expiry too) and tags."""
        session = self.world.sessions[data.draw(st.sampled_from(sorted(self.world.sessions)))]
        self.sql(
            "UPDATE upload_sessions SET status = %s, tags = %s, expires_at = %s WHERE id = %s",
            status,
            tags,
            expires_at,
            session.id,
        )
        session.status, session.tags, session.expires_at = status, tags, expires_at

    @precondition(lambda self: self.world and self.world.uploads)
    @rule(data=st.data())
    def delete_upload(self, data):
        upload = data.draw(st.sampled_from(sorted(self.world.uploads)))
        self.sql("DELETE FROM uploads WHERE id = %s", upload)
        del self.world.uploads[upload]

    def deliveries(self):
        return sorted((u.id, d) for u in self.world.uploads.values() for d in u.deliveries)

    @precondition(lambda self: self.world and self.deliveries())
    @rule(data=st.data())
    def delete_delivery(self, data):
        """An upload's status and destination types change with its deliveries."""
        upload, destination = data.draw(st.sampled_from(self.deliveries()))
        self.sql(
            "DELETE FROM deliveries WHERE upload_id = %s AND destination_id = %s",
            upload,
            destination,
        )
        del self.world.uploads[upload].deliveries[destination]

    @precondition(lambda self: self.world and self.deliveries())
    @rule(data=st.data(), status=st.sampled_from(DELIVERY_STATUSES))
    def change_delivery_status(self, data, status):
        upload, destination = data.draw(st.sampled_from(self.deliveries()))
        self.sql(
            "UPDATE deliveries SET status = %s WHERE upload_id = %s AND destination_id = %s",
            status,
            upload,
            destination,
        )
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

    @precondition(lambda self: self.world)
    @rule(data=st.data())
    def a_random_caller_filters_walks_exports_and_gets_by_id(self, data):
        """Every list under random filters, walked by cursor and exported, and every id."""
        credentials = callers(self.world, self.stranger, secret_for(self.stranger))
        caller, credential = data.draw(st.sampled_from(credentials))
        strategies = filter_strategies(self.world)
        for family, items in ((SESSIONS, self.world.sessions), (UPLOADS, self.world.uploads)):
            params = data.draw(strategies[family])
            for path in (RECENT[family], family):
                check(self.client, self.world, caller, credential, path, params)
            walk(
                self.client,
                self.world,
                caller,
                credential,
                family,
                {**params, "pageSize": data.draw(st.sampled_from(["1", "2", "5"]))},
                repeat_filters=data.draw(st.booleans()),
            )
            check_export(
                self.client,
                self.world,
                caller,
                credential,
                family,
                params,
                data.draw(EXPORT_REQUESTS),
            )
            for id in items:
                check(self.client, self.world, caller, credential, f"{family}/{id}", {})

    def check_revalidating(self, caller, credential, path, params):
        """Sent with the ETag of the caller's previous look: 304 exactly when the model's
        answer has not changed since, else the new answer under another ETag."""
        etag, before = self.etags.pop((caller, path), (None, None))
        status, expected = expected_response(self.world, caller, path, params, datetime.now(UTC))
        if etag is not None and status == 200 and expected == before:
            response = get(self.client, credential, path, params, {"If-None-Match": etag})
            note(f"{caller} {path} If-None-Match -> {response.status_code}")
            assert response.status_code == 304, response.get_data(as_text=True)
            assert response.get_data() == b"" and response.headers["ETag"] == etag
            self.etags[(caller, path)] = (etag, before)
            return
        response = check(
            self.client,
            self.world,
            caller,
            credential,
            path,
            params,
            {"If-None-Match": etag} if etag else None,
        )
        if response.status_code == 200:
            assert response.headers["ETag"] != etag
            self.etags[(caller, path)] = (response.headers["ETag"], expected)

    @invariant()
    def every_caller_sees_exactly_the_model(self):
        if self.world is None:
            return
        # Whole lists (no world here outgrows a page), stats and keys/current; the recent
        # lists run the same rows through a limit, and the rules above cover them.
        params = {"pageSize": "100"}
        for caller, credential in callers(self.world, self.stranger, secret_for(self.stranger)):
            for path in (SESSIONS, UPLOADS, STATS, CURRENT_KEY):
                self.check_revalidating(caller, credential, path, params)


def test_live_world_changes_show_on_the_next_request(app, rw):
    LiveWorld.conn, LiveWorld.client = rw, app.test_client()
    run_state_machine_as_test(
        LiveWorld, settings=settings(max_examples=10, stateful_step_count=15, **FAST)
    )
