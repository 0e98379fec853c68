"""Terse construction of fixture documents (SPEC §6) for tests."""

import uuid
from datetime import UTC, datetime, timedelta

NOW = datetime.now(UTC)


def iso(moment):
    """A datetime as the fixture's ISO 8601 text (microseconds kept)."""
    if isinstance(moment, str):
        return moment
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def new_id():
    return str(uuid.uuid4())


class World:
    """A fixture document under construction; each method adds one entity and returns its id."""

    def __init__(self):
        self.doc = {
            "users": [],
            "projects": [],
            "members": [],
            "apiKeys": [],
            "sessions": [],
            "uploads": [],
        }
        self._sessions = {}

    def user(self, name="User", email=None, id=None):
        id = id or new_id()
        self.doc["users"].append(
            {"id": id, "email": email or f"{id[:8]}@example.com", "name": name}
        )
        return id

    def project(self, owner, name="Project", created_at=None, id=None):
        id = id or new_id()
        self.doc["projects"].append(
            {
                "id": id,
                "name": name,
                "ownerId": owner,
                "createdAt": iso(created_at or NOW - timedelta(days=400)),
            }
        )
        return id

    def member(self, project, user, role="member"):
        self.doc["members"].append({"projectId": project, "userId": user, "role": role})

    def api_key(self, project, key=None, expires_at=None, revoked_at=None, name="key", id=None):
        key = key or f"aptr_{uuid.uuid4().hex}{uuid.uuid4().hex}"
        self.doc["apiKeys"].append(
            {
                "id": id or new_id(),
                "projectId": project,
                "key": key,
                "name": name,
                "createdAt": iso(NOW - timedelta(days=30)),
                "expiresAt": iso(expires_at) if expires_at else None,
                "revokedAt": iso(revoked_at) if revoked_at else None,
            }
        )
        return key

    def session(
        self,
        project,
        created_at=None,
        expires_at=None,
        status="active",
        tags=None,
        long_polling=False,
        destinations=("webhook",),
        id=None,
    ):
        """Add a session; returns its id. Destination ids: world.destinations(session_id)."""
        id = id or new_id()
        created = created_at or NOW - timedelta(hours=1)
        entry = {
            "id": id,
            "projectId": project,
            "createdAt": iso(created),
            "expiresAt": iso(expires_at or NOW + timedelta(days=1)),
            "status": status,
            "tags": tags,
            "longPollingEnabled": long_polling,
            "destinations": [{"id": new_id(), "type": t} for t in destinations],
        }
        self.doc["sessions"].append(entry)
        self._sessions[id] = entry
        return id

    def destinations(self, session):
        """The destination ids of a session, in the order given."""
        return [d["id"] for d in self._sessions[session]["destinations"]]

    def upload(
        self,
        session,
        statuses=(),
        created_at=None,
        filename="a.jpg",
        size=1234,
        mime="image/jpeg",
        source="camera",
        encrypted=False,
        id=None,
    ):
        """Add an upload; `statuses` gives one delivery status per session destination, in order."""
        id = id or new_id()
        destinations = self.destinations(session)
        self.doc["uploads"].append(
            {
                "id": id,
                "sessionId": session,
                "filename": filename,
                "sizeBytes": size,
                "mimeType": mime,
                "source": source,
                "isEncrypted": encrypted,
                "createdAt": iso(created_at or NOW - timedelta(minutes=30)),
                # statuses may stop short: the remaining destinations get no delivery.
                "deliveries": [
                    {"destinationId": d, "status": s}
                    for d, s in zip(destinations, statuses, strict=False)
                ],
            }
        )
        return id
