"""The rows the API must answer for a fixture document (SPEC §5), computed in Python from
the document alone, for tests that compare whole bodies (test_resources, test_exports)."""

from datetime import UTC, datetime

SESSION_FIELDS = [
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
]
UPLOAD_FIELDS = [
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
]
DELIVERY_FIELDS = ["destinationId", "type", "status"]
KEY_FIELDS = ["id", "name", "projectId", "projectName", "createdAt", "expiresAt"]


def moment(value):
    """A fixture timestamp (ISO text or datetime) as an aware datetime."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def ms(value):
    """The API's rendering: UTC, three fractional digits truncated, Z."""
    when = moment(value).astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def upload_status(statuses):
    """SPEC §5 derived upload status from the delivery statuses."""
    sent, failed = statuses.count("sent"), statuses.count("failed")
    if not statuses:
        return "stored_only"
    if sent == len(statuses):
        return "delivered"
    if failed == 0:
        return "pending"
    return "failed" if sent == 0 else "partial"


def newest_first(entries):
    """Fixture entries in list order: createdAt descending, then id descending."""
    return sorted(entries, key=lambda e: (moment(e["createdAt"]), e["id"].lower()), reverse=True)


class Model:
    """Expected JSON rows of one fixture document, as of `now` (for expired sessions)."""

    def __init__(self, doc, now=None):
        self.doc = doc
        self.now = now or datetime.now(UTC)
        self.project_names = {p["id"]: p["name"] for p in doc["projects"]}
        self.sessions = {s["id"]: s for s in doc["sessions"]}
        self.types = {d["id"]: d["type"] for s in doc["sessions"] for d in s["destinations"]}
        self.uploads = {u["id"]: u for u in doc["uploads"]}
        self.session_uploads = {s["id"]: [] for s in doc["sessions"]}
        for u in doc["uploads"]:
            self.session_uploads[u["sessionId"]].append(u)

    def project_of(self, entry):
        """The project id of a session or upload entry."""
        if "projectId" in entry:
            return entry["projectId"]
        return self.sessions[entry["sessionId"]]["projectId"]

    def session_status(self, s):
        stored = s["status"]
        if stored in ("pending", "active") and moment(s["expiresAt"]) <= self.now:
            return "expired"
        return stored

    def session_row(self, session_id):
        s = self.sessions[session_id]
        uploads = self.session_uploads[session_id]
        statuses = [[d["status"] for d in u["deliveries"]] for u in uploads]
        return {
            "id": s["id"].lower(),
            "createdAt": ms(s["createdAt"]),
            "expiresAt": ms(s["expiresAt"]),
            "status": self.session_status(s),
            "projectId": s["projectId"].lower(),
            "projectName": self.project_names[s["projectId"]],
            "imagesCount": len(uploads),
            "imagesDelivered": sum("sent" in st for st in statuses),
            "imagesFailed": sum("failed" in st for st in statuses),
            "destinationsCount": len(s["destinations"]),
            "tags": s.get("tags") or None,
            "longPollingEnabled": s["longPollingEnabled"],
        }

    def upload_row(self, upload_id):
        u = self.uploads[upload_id]
        session = self.sessions[u["sessionId"]]
        statuses = [d["status"] for d in u["deliveries"]]
        types = sorted({self.types[d["destinationId"]] for d in u["deliveries"]})
        return {
            "id": u["id"].lower(),
            "filename": u["filename"],
            "sizeBytes": u["sizeBytes"],
            "mimeType": u["mimeType"],
            "source": u["source"],
            "isEncrypted": u["isEncrypted"],
            "createdAt": ms(u["createdAt"]),
            "sessionId": session["id"].lower(),
            "projectId": session["projectId"].lower(),
            "projectName": self.project_names[session["projectId"]],
            "destinationsTotal": len(statuses),
            "destinationsDelivered": statuses.count("sent"),
            "destinationsFailed": statuses.count("failed"),
            "destinationsBreakdown": [
                {
                    "type": t,
                    "count": sum(self.types[d["destinationId"]] == t for d in u["deliveries"]),
                }
                for t in types
            ],
            "status": upload_status(statuses),
        }

    def upload_detail(self, upload_id):
        """The single-upload answer: the list row plus its deliveries by type, then id."""
        deliveries = [
            {
                "destinationId": d["destinationId"].lower(),
                "type": self.types[d["destinationId"]],
                "status": d["status"],
            }
            for d in self.uploads[upload_id]["deliveries"]
        ]
        deliveries.sort(key=lambda d: (d["type"], d["destinationId"]))
        return {**self.upload_row(upload_id), "deliveries": deliveries}

    def session_rows(self, projects, keep=lambda entry, row: True):
        """Session rows of `projects`, newest first, kept where keep(entry, row) holds."""
        entries = [s for s in self.doc["sessions"] if s["projectId"] in projects]
        rows = [(s, self.session_row(s["id"])) for s in newest_first(entries)]
        return [row for s, row in rows if keep(s, row)]

    def upload_rows(self, projects, keep=lambda entry, row: True):
        """Upload rows of `projects`, newest first, kept where keep(entry, row) holds."""
        entries = [u for u in self.doc["uploads"] if self.project_of(u) in projects]
        rows = [(u, self.upload_row(u["id"])) for u in newest_first(entries)]
        return [row for u, row in rows if keep(u, row)]

    def delivery_types(self, upload_entry):
        """The destination types an upload has deliveries to."""
        return {self.types[d["destinationId"]] for d in upload_entry["deliveries"]}
