"""Load a fixture document (SPEC §6): validate it whole, then write it in one transaction."""

import psycopg
from marshmallow import ValidationError

from auth import hash_api_key
from queries import load_queries
from schemas.fixture import Fixture, error_paths

_SQL = load_queries(
    "fixture.sql",
    {
        "find_users": {"ids"},
        "find_projects": {"ids"},
        "find_sessions": {"ids"},
        "find_destinations": {"ids"},
        "find_taken_ids": {
            "user_ids",
            "project_ids",
            "api_key_ids",
            "key_hashes",
            "session_ids",
            "destination_ids",
            "upload_ids",
        },
        "insert_user": {"id", "email", "name"},
        "insert_project": {"id", "name", "owner_id", "created_at"},
        "insert_member": {"project_id", "user_id", "role"},
        "insert_api_key": {
            "id",
            "project_id",
            "key_hash",
            "name",
            "created_at",
            "expires_at",
            "revoked_at",
        },
        "insert_session": {
            "id",
            "project_id",
            "created_at",
            "expires_at",
            "status",
            "tags",
            "long_polling_enabled",
        },
        "insert_destination": {"id", "session_id", "type"},
        "insert_upload": {
            "id",
            "session_id",
            "project_id",
            "filename",
            "size_bytes",
            "mime_type",
            "source",
            "is_encrypted",
            "created_at",
        },
        "insert_deliveries": {
            "upload_ids",
            "destination_ids",
            "session_ids",
            "project_ids",
            "statuses",
        },
    },
)

FIXTURE_SCHEMA = Fixture()


class FixtureError(ValueError):
    """The document is invalid; `problems` lists each offending entry by its path."""

    SHOWN = 20

    def __init__(self, problems):
        shown = problems[: self.SHOWN]
        if len(problems) > self.SHOWN:
            shown.append(f"... and {len(problems) - self.SHOWN} more")
        super().__init__("\n".join(shown))
        self.problems = problems


def validate_document(raw):
    """The loaded document, or FixtureError listing every shape problem by path."""
    if not isinstance(raw, dict):
        raise FixtureError(["document: must be a JSON object"])
    try:
        return FIXTURE_SCHEMA.load(raw)
    except ValidationError as exc:
        raise FixtureError(error_paths(exc.normalized_messages())) from None


def _entries(doc, key):
    """(path, entry) for every entry of a top-level list, paths spelled as in the document."""
    name = "apiKeys" if key == "api_keys" else key
    return [(f"{name}[{i}]", entry) for i, entry in enumerate(doc[key])]


def _destinations(doc):
    """(path, destination) for every destination of every session."""
    return [
        (f"{path}.destinations[{j}]", d)
        for path, s in _entries(doc, "sessions")
        for j, d in enumerate(s["destinations"])
    ]


class _References:
    """What ids resolve to, from the document first and the database second."""

    def __init__(self, conn, doc):
        self.users = {u["id"] for u in doc["users"]}
        self.projects = {p["id"] for p in doc["projects"]}
        self.session_project = {s["id"]: s["project_id"] for s in doc["sessions"]}
        self.destination_session = {
            d["id"]: s["id"] for s in doc["sessions"] for d in s["destinations"]
        }
        self._add_existing(conn, doc)

    def _add_existing(self, conn, doc):
        wanted_users = {p["owner_id"] for p in doc["projects"]} | {
            m["user_id"] for m in doc["members"]
        }
        wanted_projects = {
            e["project_id"] for key in ("members", "api_keys", "sessions") for e in doc[key]
        }
        wanted_sessions = {u["session_id"] for u in doc["uploads"]}
        wanted_destinations = {d["destination_id"] for u in doc["uploads"] for d in u["deliveries"]}
        self.users |= {
            r["id"] for r in _SQL["find_users"].all(conn, ids=list(wanted_users - self.users))
        }
        self.projects |= {
            r["id"]
            for r in _SQL["find_projects"].all(conn, ids=list(wanted_projects - self.projects))
        }
        for row in _SQL["find_sessions"].all(
            conn, ids=list(wanted_sessions - set(self.session_project))
        ):
            self.session_project[row["id"]] = row["project_id"]
        for row in _SQL["find_destinations"].all(
            conn, ids=list(wanted_destinations - set(self.destination_session))
        ):
            self.destination_session[row["id"]] = row["session_id"]


def taken_problems(conn, doc):
    """Entries whose id (or API key) the database already holds, by path."""
    destinations = _destinations(doc)
    taken = {
        (row["entity"], row["taken"])
        for row in _SQL["find_taken_ids"].all(
            conn,
            user_ids=[u["id"] for u in doc["users"]],
            project_ids=[p["id"] for p in doc["projects"]],
            api_key_ids=[k["id"] for k in doc["api_keys"]],
            key_hashes=[hash_api_key(k["key"]) for k in doc["api_keys"]],
            session_ids=[s["id"] for s in doc["sessions"]],
            destination_ids=[d["id"] for _, d in destinations],
            upload_ids=[u["id"] for u in doc["uploads"]],
        )
    }
    # find_taken_ids names each entity as the document's top-level key does.
    entries = [
        entry
        for key in ("users", "projects", "api_keys", "sessions", "uploads")
        for entry in _entries(doc, key)
    ]
    problems = [
        f"{path}.id: {entry['id']} is already in the database"
        for path, entry in entries
        if (path.split("[")[0], str(entry["id"])) in taken
    ]
    problems += [
        f"{path}.key: this key is already in the database"
        for path, entry in _entries(doc, "api_keys")
        if ("apiKeys.key", hash_api_key(entry["key"]).hex()) in taken
    ]
    problems += [
        f"{path}.id: {d['id']} is already in the database"
        for path, d in destinations
        if ("destinations", str(d["id"])) in taken
    ]
    return problems


def _duplicates(label, keyed):
    """A problem for every (path, key) whose key was seen before."""
    seen, problems = set(), []
    for path, key in keyed:
        if key in seen:
            problems.append(f"{path}: duplicate {label} {key}")
        seen.add(key)
    return problems


def duplicate_problems(doc):
    """Ids, keys and memberships that the document gives twice."""
    problems = []
    for key, field, label in (
        ("users", "id", "user id"),
        ("projects", "id", "project id"),
        ("api_keys", "id", "API key id"),
        ("api_keys", "key", "API key"),
        ("sessions", "id", "session id"),
        ("uploads", "id", "upload id"),
    ):
        problems += _duplicates(
            label, ((f"{path}.{field}", e[field]) for path, e in _entries(doc, key))
        )
    problems += _duplicates(
        "destination id", ((f"{path}.id", d["id"]) for path, d in _destinations(doc))
    )
    problems += _duplicates(
        "membership",
        ((path, (m["project_id"], m["user_id"])) for path, m in _entries(doc, "members")),
    )
    for path, upload in _entries(doc, "uploads"):
        problems += _duplicates(
            "delivery to destination",
            (
                (f"{path}.deliveries[{j}].destinationId", d["destination_id"])
                for j, d in enumerate(upload["deliveries"])
            ),
        )
    return problems


def reference_problems(doc, refs):
    """Every reference that resolves neither in the document nor in the database, by path."""
    checks = [
        ("projects", "owner_id", "ownerId", "user", refs.users),
        ("members", "project_id", "projectId", "project", refs.projects),
        ("members", "user_id", "userId", "user", refs.users),
        ("api_keys", "project_id", "projectId", "project", refs.projects),
        ("sessions", "project_id", "projectId", "project", refs.projects),
        ("uploads", "session_id", "sessionId", "session", refs.session_project),
    ]
    problems = [
        f"{path}.{name}: no {kind} {entry[field]}"
        for key, field, name, kind, known in checks
        for path, entry in _entries(doc, key)
        if entry[field] not in known
    ]
    for path, upload in _entries(doc, "uploads"):
        for j, delivery in enumerate(upload["deliveries"]):
            if refs.destination_session.get(delivery["destination_id"]) != upload["session_id"]:
                problems.append(
                    f"{path}.deliveries[{j}].destinationId: "
                    f"{delivery['destination_id']} is not a destination of session "
                    f"{upload['session_id']}"
                )
    return problems


def _insert(conn, doc, refs):
    _SQL["insert_user"].execute_many(conn, doc["users"])
    _SQL["insert_project"].execute_many(conn, doc["projects"])
    _SQL["insert_member"].execute_many(conn, doc["members"])
    _SQL["insert_api_key"].execute_many(
        conn,
        (
            {**{k: v for k, v in key.items() if k != "key"}, "key_hash": hash_api_key(key["key"])}
            for key in doc["api_keys"]
        ),
    )
    _SQL["insert_session"].execute_many(
        conn, ({k: v for k, v in s.items() if k != "destinations"} for s in doc["sessions"])
    )
    _SQL["insert_destination"].execute_many(
        conn, ({**d, "session_id": s["id"]} for s in doc["sessions"] for d in s["destinations"])
    )
    _SQL["insert_upload"].execute_many(
        conn,
        (
            {
                **{k: v for k, v in u.items() if k != "deliveries"},
                "project_id": refs.session_project[u["session_id"]],
            }
            for u in doc["uploads"]
        ),
    )
    deliveries = [(u, d) for u in doc["uploads"] for d in u["deliveries"]]
    if deliveries:
        _SQL["insert_deliveries"].execute(
            conn,
            upload_ids=[u["id"] for u, _ in deliveries],
            destination_ids=[d["destination_id"] for _, d in deliveries],
            session_ids=[u["session_id"] for u, _ in deliveries],
            project_ids=[refs.session_project[u["session_id"]] for u, _ in deliveries],
            statuses=[d["status"] for _, d in deliveries],
        )


def load_fixture(conn, raw):
    """Validate a parsed JSON document and write it in one transaction; return row counts.

    Raises FixtureError, and writes nothing, when the document is invalid or clashes
    with rows already in the database (loading the same document twice is an error).
    """
    doc = validate_document(raw)
    try:
        with conn.transaction():
            refs = _References(conn, doc)
            problems = (
                duplicate_problems(doc) + taken_problems(conn, doc) + reference_problems(doc, refs)
            )
            if problems:
                raise FixtureError(problems)
            _insert(conn, doc, refs)
    except psycopg.errors.UniqueViolation as exc:
        raise FixtureError([f"already in the database: {exc.diag.message_detail}"]) from None
    except (psycopg.IntegrityError, psycopg.DataError) as exc:
        raise FixtureError(
            [
                f"rejected by the database: {exc.diag.message_primary}; "
                f"{exc.diag.message_detail or ''}".strip()
            ]
        ) from None
    return {
        name: len(doc[name])
        for name in ("users", "projects", "members", "api_keys", "sessions", "uploads")
    }
