"""The small demo world `make run` serves: a few users and projects, months of history.

It is an ordinary fixture document (SPEC §6), so it goes through the same validation
and loader as any import. Ids and the demo API key are fixed, so `make run` can print
working credentials every time; timestamps are relative to now, so "this month" and
"expired" always have something to show.
"""

import random
import uuid
from datetime import UTC, datetime, timedelta

from schemas.vocabulary import SOURCES

DEMO_USER_ID = "0a1d0000-0000-4000-8000-000000000001"  # Ada: owns Acme, member of Globex
DEMO_API_KEY = "aptr_demo_acme_0123456789abcdefghijklmnopqrstuv"  # Acme's key; demo only

USERS = [
    (DEMO_USER_ID, "ada@example.com", "Ada Lovelace"),
    ("0a1d0000-0000-4000-8000-000000000002", "grace@example.com", "Grace Hopper"),
    ("0a1d0000-0000-4000-8000-000000000003", "linus@example.com", "Linus Torvalds"),
    ("0a1d0000-0000-4000-8000-000000000004", "margaret@example.com", "Margaret Hamilton"),
]
# (id, name, owner index, members as (user index, role))
PROJECTS = [
    ("0b1d0000-0000-4000-8000-000000000001", "Acme Photos", 0, [(2, "member")]),
    ("0b1d0000-0000-4000-8000-000000000002", "Globex Events", 1, [(0, "admin")]),
    ("0b1d0000-0000-4000-8000-000000000003", "Initech Claims", 3, []),
]
DESTINATION_TYPES = ["webhook", "s3", "google_drive", "dropbox", "azure_blob"]
TAGS = ["wedding", "insurance", "event", "kyc", "real-estate", "team"]
MIME_TYPES = [
    ("jpg", "image/jpeg"),
    ("png", "image/png"),
    ("heic", "image/heic"),
    ("webp", "image/webp"),
]
# Delivery result mixes that, between them, produce every upload status.
DELIVERY_MIXES = [
    ["sent"],
    ["sent", "sent"],
    ["failed"],
    ["sent", "failed"],
    ["pending"],
    ["sent", "pending"],
    ["failed", "pending"],
    [],
]


def _iso(moment):
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _uuid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# (project index, key, name, age in months, and when it was revoked or expired if it was)
API_KEYS = [
    (0, DEMO_API_KEY, "demo", 3, {}),
    (0, "aptr_demo_revoked_key_not_usable_0000000000", "old ci", 5, {"revokedAt": 1}),
    (1, "aptr_demo_expired_key_not_usable_0000000000", "trial", 4, {"expiresAt": 2}),
    (2, "aptr_demo_initech_key_0000000000000000000000", "claims app", 2, {}),
]


def _api_keys(now):
    month = timedelta(days=30)
    return [
        {
            "id": f"0c1d0000-0000-4000-8000-{n:012d}",
            "projectId": PROJECTS[project][0],
            "key": key,
            "name": name,
            "createdAt": _iso(now - age * month),
            **{field: _iso(now - ago * month) for field, ago in ended.items()},
        }
        for n, (project, key, name, age, ended) in enumerate(API_KEYS, start=1)
    ]


def _session(rng, project_id, created, now):
    lifetime = timedelta(days=rng.choice([1, 7, 30]))
    expires = created + lifetime
    stored = rng.choice(["active", "active", "pending", "completed", "completed", "failed"])
    if expires <= now and stored in ("pending", "active") and rng.random() < 0.5:
        stored = "expired"  # some expiries recorded, others only derived
    tags = rng.choice([None, [], rng.sample(TAGS, rng.randint(1, 2))])
    destinations = [
        {"id": _uuid(rng), "type": kind}
        for kind in rng.sample(DESTINATION_TYPES, rng.randint(0, 3))
    ]
    return {
        "id": _uuid(rng),
        "projectId": project_id,
        "createdAt": _iso(created),
        "expiresAt": _iso(expires),
        "status": stored,
        "tags": tags,
        "longPollingEnabled": rng.random() < 0.3,
        "destinations": destinations,
    }


def _uploads(rng, session, now):
    created = datetime.fromisoformat(session["createdAt"])
    uploads = []
    for _ in range(rng.randint(0, 6)):
        moment = created + timedelta(seconds=rng.randint(10, 36_000))
        if moment >= now:  # a session opened minutes ago has uploads from those minutes
            moment = created + (now - created) * rng.random()
        extension, mime = rng.choice(MIME_TYPES)
        destinations = session["destinations"]
        mix = rng.choice(DELIVERY_MIXES)
        deliveries = (
            [
                {"destinationId": d["id"], "status": mix[i % len(mix)]}
                for i, d in enumerate(destinations)
            ]
            if mix
            else []
        )
        uploads.append(
            {
                "id": _uuid(rng),
                "sessionId": session["id"],
                "filename": f"IMG_{rng.randint(1000, 9999)}.{extension}",
                "sizeBytes": rng.randint(20_000, 12_000_000),
                "mimeType": mime,
                "source": rng.choice(SOURCES),
                "isEncrypted": rng.random() < 0.15,
                "createdAt": _iso(moment),
                "deliveries": deliveries,
            }
        )
    return uploads


def demo_document(now=None, seed=2026):
    """The demo world as a fixture document."""
    rng = random.Random(seed)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    sessions = []
    for project_id, _, _, _ in PROJECTS:
        for _ in range(rng.randint(8, 14)):
            sessions.append(
                _session(rng, project_id, now - timedelta(days=rng.uniform(0, 170), minutes=1), now)
            )
        # A few sessions from the last hours, so "this month" is never empty.
        sessions.append(_session(rng, project_id, now - timedelta(minutes=rng.randint(1, 30)), now))
    return {
        "users": [{"id": i, "email": e, "name": n} for i, e, n in USERS],
        "projects": [
            {
                "id": pid,
                "name": name,
                "ownerId": USERS[owner][0],
                "createdAt": _iso(now - timedelta(days=200)),
            }
            for pid, name, owner, _ in PROJECTS
        ],
        "members": [
            {"projectId": pid, "userId": USERS[user][0], "role": role}
            for pid, _, _, members in PROJECTS
            for user, role in members
        ],
        "apiKeys": _api_keys(now),
        "sessions": sessions,
        "uploads": [u for s in sessions for u in _uploads(rng, s, now)],
    }
