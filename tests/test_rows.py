"""SPEC §5 session and upload rows on the four list endpoints: fields, derivations, order."""

import re
from datetime import UTC, datetime, timedelta

import pytest

import database
from fixture import load_fixture
from tests.builders import NOW, World
from tests.conftest import bearer, empty_tables, make_token
from tests.rowmodel import SESSION_FIELDS, UPLOAD_FIELDS
from tests.spec import SOURCES

SESSION_PATHS = ["/api/v1/sessions/recent?limit=50", "/api/v1/sessions?pageSize=100"]
UPLOAD_PATHS = ["/api/v1/uploads/recent?limit=50", "/api/v1/uploads?pageSize=100"]

PAGE_FIELDS = ["data", "total", "page", "pageSize", "totalPages"]
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


@pytest.fixture(params=SESSION_PATHS, ids=["recent", "paged"])
def session_path(request):
    return request.param


@pytest.fixture(params=UPLOAD_PATHS, ids=["recent", "paged"])
def upload_path(request):
    return request.param


def fetch(get, path, credential):
    """The rows of a list endpoint: the array itself, or the wrapper's data."""
    response = get(path, credential)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    if "/recent" in path:
        return body
    assert list(body) == PAGE_FIELDS
    return body["data"]


def owned_project(world, name="Acme"):
    """A user, a project they own, and a JWT for them."""
    user = world.user("Ada")
    project = world.project(user, name)
    return user, project, make_token(user)


def breakdown(*pairs):
    """A destinationsBreakdown value from (type, count) pairs."""
    return [{"type": t, "count": c} for t, c in pairs]


# --- whole rows ---------------------------------------------------------------------------


@pytest.mark.parametrize("credential", ["owner_jwt", "member_jwt", "api_key"])
def test_session_row_has_every_field_exact_and_in_order(world, get, credential):
    """One session with uploads: the whole row, values and key order, on both lists."""
    owner = world.user("Ada")
    member = world.user("Bob")
    project = world.project(owner, "Acme ✓ Östra", id="3f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b")
    world.member(project, member)
    key = world.api_key(project)
    session = world.session(
        project,
        id="9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d",
        created_at="2026-11-20T10:11:12.345678Z",
        expires_at="2099-01-02T03:04:05.678901Z",
        status="active",
        tags=["wedding", "2026"],
        long_polling=True,
        destinations=("webhook", "s3"),
    )
    world.upload(session, ["sent", "pending"])
    world.upload(session, ["failed", "pending"])
    world.load()
    credentials = {"owner_jwt": make_token(owner), "member_jwt": make_token(member), "api_key": key}
    for path in SESSION_PATHS:
        rows = fetch(get, path, credentials[credential])
        assert rows == [
            {
                "id": "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d",
                "createdAt": "2026-11-20T10:11:12.345Z",
                "expiresAt": "2099-01-02T03:04:05.678Z",
                "status": "active",
                "projectId": "3f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
                "projectName": "Acme ✓ Östra",
                "imagesCount": 2,
                "imagesDelivered": 1,
                "imagesFailed": 1,
                "destinationsCount": 2,
                "tags": ["wedding", "2026"],
                "longPollingEnabled": True,
            }
        ], path
        assert list(rows[0]) == SESSION_FIELDS


@pytest.mark.parametrize("credential", ["owner_jwt", "api_key"])
def test_upload_row_has_every_field_exact_and_in_order(world, get, credential):
    """One upload with mixed deliveries: the whole row, values and key order, on both lists."""
    owner = world.user("Ada")
    project = world.project(owner, "Ünïcode 工作室", id="0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
    key = world.api_key(project)
    session = world.session(
        project,
        id="fedcba98-7654-4321-8fed-cba987654321",
        destinations=("webhook", "s3", "webhook", "google_drive"),
    )
    world.upload(
        session,
        ["sent", "failed", "pending", "sent"],
        id="11111111-2222-4333-8444-555555555555",
        created_at="2026-11-27T23:59:59.999999Z",
        filename="Привет мир 📷 é.heic",
        size=9_876_543_210,
        mime="image/heic",
        source="google_photos",
        encrypted=True,
    )
    world.load()
    credentials = {"owner_jwt": make_token(owner), "api_key": key}
    for path in UPLOAD_PATHS:
        rows = fetch(get, path, credentials[credential])
        assert rows == [
            {
                "id": "11111111-2222-4333-8444-555555555555",
                "filename": "Привет мир 📷 é.heic",
                "sizeBytes": 9_876_543_210,
                "mimeType": "image/heic",
                "source": "google_photos",
                "isEncrypted": True,
                "createdAt": "2026-11-27T23:59:59.999Z",
                "sessionId": "fedcba98-7654-4321-8fed-cba987654321",
                "projectId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                "projectName": "Ünïcode 工作室",
                "destinationsTotal": 4,
                "destinationsDelivered": 2,
                "destinationsFailed": 1,
                "destinationsBreakdown": breakdown(("google_drive", 1), ("s3", 1), ("webhook", 2)),
                "status": "partial",
            }
        ], path
        assert list(rows[0]) == UPLOAD_FIELDS
        assert all(list(item) == ["type", "count"] for item in rows[0]["destinationsBreakdown"])


# --- counts over several rows -------------------------------------------------------------


def session_counts(get, token):
    """(id, imagesCount, imagesDelivered, imagesFailed, destinationsCount) per row, both lists."""
    lists = [
        [
            (
                r["id"],
                r["imagesCount"],
                r["imagesDelivered"],
                r["imagesFailed"],
                r["destinationsCount"],
            )
            for r in fetch(get, path, token)
        ]
        for path in SESSION_PATHS
    ]
    assert lists[0] == lists[1]
    return lists[0]


def test_session_image_and_destination_counts(world, get):
    """imagesDelivered/imagesFailed count uploads with >=1 sent/failed delivery, both if mixed."""
    _, project, token = owned_project(world)
    busy = world.session(
        project, created_at=NOW - timedelta(hours=1), destinations=("webhook", "s3", "webhook")
    )
    for statuses in (
        ["sent", "sent", "sent"],
        ["failed", "failed", "failed"],
        ["sent", "failed", "pending"],
        ["pending", "pending", "pending"],
        [],
        ["sent"],
        ["pending", "failed"],
        ["failed", "sent"],
    ):
        world.upload(busy, statuses)
    quiet = world.session(
        project, created_at=NOW - timedelta(hours=2), destinations=("webhook", "s3")
    )
    bare = world.session(project, created_at=NOW - timedelta(hours=3), destinations=())
    world.upload(bare)
    world.upload(bare)
    world.load()
    assert session_counts(get, token) == [
        (busy, 8, 4, 4, 3),
        (quiet, 0, 0, 0, 2),
        (bare, 2, 0, 0, 0),
    ]


def test_session_counts_do_not_leak_between_sessions(world, get):
    """Each row counts only its own uploads and destinations."""
    _, project, token = owned_project(world)
    first = world.session(project, created_at=NOW - timedelta(hours=1), destinations=("s3",))
    second = world.session(
        project,
        created_at=NOW - timedelta(hours=2),
        destinations=("s3", "webhook", "dropbox", "box"),
    )
    world.upload(first, ["sent"])
    world.upload(second, ["failed", "failed", "failed", "failed"])
    world.upload(second, ["pending", "pending", "pending", "pending"])
    world.load()
    assert session_counts(get, token) == [(first, 1, 1, 0, 1), (second, 2, 0, 1, 4)]


def test_upload_counts_do_not_leak_between_uploads(world, get):
    """Each upload row counts only its own deliveries."""
    _, project, token = owned_project(world)
    session = world.session(project, destinations=("webhook", "s3"))
    newer = world.upload(session, ["sent", "sent"], created_at=NOW - timedelta(minutes=1))
    older = world.upload(session, ["failed"], created_at=NOW - timedelta(minutes=2))
    oldest = world.upload(session, [], created_at=NOW - timedelta(minutes=3))
    world.load()
    for path in UPLOAD_PATHS:
        summary = [
            (r["id"], r["status"], r["destinationsTotal"], r["destinationsBreakdown"])
            for r in fetch(get, path, token)
        ]
        assert summary == [
            (newer, "delivered", 2, breakdown(("s3", 1), ("webhook", 1))),
            (older, "failed", 1, breakdown(("webhook", 1))),
            (oldest, "stored_only", 0, []),
        ], path


# --- one row per case: every matrix is loaded once, one user and project per case ----------

SESSION_STATUS_CASES = [
    # (stored status, expiresAt relative to now or "now", reported status)
    ("pending", timedelta(days=1), "pending"),
    ("active", timedelta(days=1), "active"),
    ("expired", timedelta(days=1), "expired"),
    ("completed", timedelta(days=1), "completed"),
    ("failed", timedelta(days=1), "failed"),
    ("pending", timedelta(minutes=10), "pending"),
    ("active", timedelta(minutes=10), "active"),
    ("pending", -timedelta(days=1), "expired"),
    ("active", -timedelta(days=1), "expired"),
    ("pending", -timedelta(seconds=1), "expired"),
    ("active", -timedelta(seconds=1), "expired"),
    ("pending", "now", "expired"),
    ("active", "now", "expired"),
    ("expired", -timedelta(days=1), "expired"),
    ("completed", -timedelta(days=1), "completed"),
    ("failed", -timedelta(days=1), "failed"),
    ("completed", "now", "completed"),
    ("failed", "now", "failed"),
]
TAG_CASES = [
    (["wedding", "beach", "2026"], ["wedding", "beach", "2026"]),
    (["z", "a", "m"], ["z", "a", "m"]),
    (["été", "日本", "a b"], ["été", "日本", "a b"]),
    (["same", "same"], ["same", "same"]),
    ([""], [""]),
    (None, None),
    ([], None),
    ("omitted", None),
]
TIMESTAMP_CASES = [
    ("2026-03-04T05:06:07.999999Z", "2026-03-04T05:06:07.999Z"),
    ("2026-03-04T05:06:07.123456Z", "2026-03-04T05:06:07.123Z"),
    ("2026-03-04T05:06:07.000999Z", "2026-03-04T05:06:07.000Z"),
    ("2026-03-04T05:06:07Z", "2026-03-04T05:06:07.000Z"),
    ("2026-03-04T05:06:07.5Z", "2026-03-04T05:06:07.500Z"),
    ("2026-03-04T07:06:07.123456+02:00", "2026-03-04T05:06:07.123Z"),
    ("2026-03-04T01:30:00.250+02:00", "2026-03-03T23:30:00.250Z"),
    ("2026-12-31T20:00:00.999999-05:30", "2027-01-01T01:30:00.999Z"),
    ("2026-03-04T05:06:07.999999+00:00", "2026-03-04T05:06:07.999Z"),
]
SIZES = [0, 1, 2**31, 2**32 + 7, 2**53 + 1, 2**62 + 3, 2**63 - 1]
NAME_CASES = [
    ("a.jpg", "image/jpeg"),
    ("Ωmega — fïle №1.png", "image/png"),
    ("家族写真.webp", "image/webp"),
    ("🎉 party 🎉.gif", "image/gif"),
    ('quote " and \\ backslash.jpg', "image/jpeg"),
    ("  spaced  .tiff", "image/tiff; charset=binary"),
]
# The session always has three destinations: stored_only depends on deliveries only.
STATUS_DESTINATIONS = ("webhook", "s3", "dropbox")
UPLOAD_STATUS_CASES = [
    # (delivery statuses, status, total, delivered, failed)
    ((), "stored_only", 0, 0, 0),
    (("sent",), "delivered", 1, 1, 0),
    (("sent", "sent", "sent"), "delivered", 3, 3, 0),
    (("pending",), "pending", 1, 0, 0),
    (("pending", "pending", "pending"), "pending", 3, 0, 0),
    (("sent", "pending"), "pending", 2, 1, 0),
    (("pending", "sent", "sent"), "pending", 3, 2, 0),
    (("failed",), "failed", 1, 0, 1),
    (("failed", "failed", "failed"), "failed", 3, 0, 3),
    (("failed", "pending"), "failed", 2, 0, 1),
    (("pending", "pending", "failed"), "failed", 3, 0, 1),
    (("sent", "failed"), "partial", 2, 1, 1),
    (("sent", "failed", "pending"), "partial", 3, 1, 1),
    (("failed", "sent", "sent"), "partial", 3, 2, 1),
]
BREAKDOWN_CASES = {
    "mixed-types": (
        ("b_x", "a", "z9", "webhook"),
        ("sent", "failed", "pending", "sent"),
        breakdown(("a", 1), ("b_x", 1), ("webhook", 1), ("z9", 1)),
    ),
    "same-type-twice": (
        ("webhook", "s3", "webhook"),
        ("sent", "sent", "failed"),
        breakdown(("s3", 1), ("webhook", 2)),
    ),
    # Code point order: digits < "_" < letters, and a prefix sorts first.
    "code-point-order": (
        ("bx", "b_x", "b1", "b", "a_", "a0"),
        ("pending",) * 6,
        breakdown(("a0", 1), ("a_", 1), ("b", 1), ("b1", 1), ("b_x", 1), ("bx", 1)),
    ),
    "one-type": (
        ("webhook", "webhook", "webhook"),
        ("failed", "sent", "pending"),
        breakdown(("webhook", 3)),
    ),
    "same-type-same-status": (
        ("webhook", "s3", "webhook", "webhook"),
        ("sent",) * 4,
        breakdown(("s3", 1), ("webhook", 3)),
    ),
    # Only the types this upload has deliveries to: the s3 destinations got none.
    "partial-dispatch": (("webhook", "s3", "s3"), ("sent",), breakdown(("webhook", 1))),
    "no-deliveries": (("webhook", "s3"), (), []),
    "no-destinations": ((), (), []),
}


def case_key(group, *params):
    return group, repr(params)


def build_cases(world):
    """Add every matrix case under its own user and project; returns case key -> JWT."""
    tokens = {}

    def project_for(key):
        user = world.user("Case")
        tokens[key] = make_token(user)
        return world.project(user, "Acme")

    def upload_case(key, destinations=("webhook",), **upload_kwargs):
        session = world.session(project_for(key), destinations=destinations)
        world.upload(session, **upload_kwargs)

    for stored, expires, _ in SESSION_STATUS_CASES:
        # "now" is taken at build time, so by the time a request runs it is not in the future.
        moment = datetime.now(UTC) + (timedelta(0) if expires == "now" else expires)
        world.session(
            project_for(case_key("status", stored, expires)),
            status=stored,
            expires_at=moment,
            created_at=NOW - timedelta(days=2),
        )
    for tags, _ in TAG_CASES:
        world.session(project_for(case_key("tags", tags)), tags=None if tags == "omitted" else tags)
        if tags == "omitted":
            del world.doc["sessions"][-1]["tags"]
    for enabled in (True, False):
        world.session(project_for(case_key("polling", enabled)), long_polling=enabled)
    for stored, _ in TIMESTAMP_CASES:
        # completed: a past expiresAt must not matter here.
        world.session(
            project_for(case_key("session-time", stored)),
            created_at=stored,
            expires_at=stored,
            status="completed",
        )
        upload_case(case_key("upload-time", stored), created_at=stored)
    for size in SIZES:
        upload_case(case_key("size", size), size=size)
    for encrypted in (True, False):
        upload_case(case_key("encrypted", encrypted), encrypted=encrypted)
    for source in SOURCES:
        upload_case(case_key("source", source), source=source)
    for filename, mime in NAME_CASES:
        upload_case(case_key("name", filename, mime), filename=filename, mime=mime)
    for statuses, *_ in UPLOAD_STATUS_CASES:
        upload_case(
            case_key("upload-status", statuses), destinations=STATUS_DESTINATIONS, statuses=statuses
        )
    for name, (destinations, statuses, _) in BREAKDOWN_CASES.items():
        upload_case(case_key("breakdown", name), destinations=destinations, statuses=statuses)
    return tokens


@pytest.fixture(scope="class")
def cases(app, database_url):
    """Every matrix case loaded once into an emptied database: case key -> JWT.

    The tests reading it only read, so one load serves the whole class and keeps the
    file fast; the next test that uses `db` empties the tables again.
    """
    world = World()
    tokens = build_cases(world)
    with database.connect(database_url, autocommit=True) as conn:
        empty_tables(conn)
        load_fixture(conn, world.doc)
    return tokens


class TestOneRowPerCase:
    """Each case's user sees exactly one row, from data loaded once for the whole class."""

    @pytest.fixture
    def row(self, app, cases):
        """The single row a case's user sees on a list endpoint."""
        client = app.test_client()

        def call(path, group, *params):
            [only] = fetch(
                lambda p, c: client.get(p, headers=bearer(c)), path, cases[case_key(group, *params)]
            )
            return only

        return call

    @pytest.mark.parametrize("stored, expires, reported", SESSION_STATUS_CASES)
    def test_session_status_is_stored_unless_open_and_past_expiry(
        self, row, session_path, stored, expires, reported
    ):
        """pending/active whose expiresAt is not in the future read as expired; others as stored."""
        assert row(session_path, "status", stored, expires)["status"] == reported

    @pytest.mark.parametrize(
        "tags, reported",
        TAG_CASES,
        ids=[
            "plain",
            "unsorted",
            "unicode",
            "duplicates",
            "empty-string",
            "null",
            "empty-array",
            "omitted",
        ],
    )
    def test_session_tags_in_stored_order_or_null(self, row, session_path, tags, reported):
        """tags come back in stored order; none set (omitted, null or []) reads as null."""
        result = row(session_path, "tags", tags)
        assert "tags" in result and result["tags"] == reported

    @pytest.mark.parametrize("enabled", [True, False])
    def test_session_long_polling_flag(self, row, session_path, enabled):
        """longPollingEnabled is the stored boolean."""
        assert row(session_path, "polling", enabled)["longPollingEnabled"] is enabled

    @pytest.mark.parametrize("stored, reported", TIMESTAMP_CASES)
    def test_session_timestamps_utc_millis_truncated(self, row, session_path, stored, reported):
        """createdAt and expiresAt: UTC, three digits, truncated not rounded."""
        result = row(session_path, "session-time", stored)
        assert (result["createdAt"], result["expiresAt"]) == (reported, reported)

    @pytest.mark.parametrize("stored, reported", TIMESTAMP_CASES)
    def test_upload_created_at_utc_millis_truncated(self, row, upload_path, stored, reported):
        """createdAt: UTC, three digits, truncated not rounded."""
        assert row(upload_path, "upload-time", stored)["createdAt"] == reported

    @pytest.mark.parametrize("size", SIZES)
    def test_upload_size_bytes_exact_up_to_bigint(self, row, upload_path, size):
        """sizeBytes is reported as an exact JSON integer, even past 2**53."""
        reported = row(upload_path, "size", size)["sizeBytes"]
        assert isinstance(reported, int) and reported == size

    @pytest.mark.parametrize("encrypted", [True, False])
    def test_upload_is_encrypted_flag(self, row, upload_path, encrypted):
        """isEncrypted is the stored boolean."""
        assert row(upload_path, "encrypted", encrypted)["isEncrypted"] is encrypted

    @pytest.mark.parametrize("source", SOURCES)
    def test_upload_source_as_stored(self, row, upload_path, source):
        """Every source value comes back unchanged."""
        assert row(upload_path, "source", source)["source"] == source

    @pytest.mark.parametrize("filename, mime", NAME_CASES)
    def test_upload_filename_and_mime_as_stored(self, row, upload_path, filename, mime):
        """filename and mimeType are reported character for character, unicode included."""
        result = row(upload_path, "name", filename, mime)
        assert (result["filename"], result["mimeType"]) == (filename, mime)

    @pytest.mark.parametrize("statuses, status, total, delivered, failed", UPLOAD_STATUS_CASES)
    def test_upload_status_and_delivery_counts(
        self, row, upload_path, statuses, status, total, delivered, failed
    ):
        """Every row of the derived-status table, with its destination counts."""
        result = row(upload_path, "upload-status", statuses)
        assert (
            result["status"],
            result["destinationsTotal"],
            result["destinationsDelivered"],
            result["destinationsFailed"],
        ) == (status, total, delivered, failed)

    @pytest.mark.parametrize("name", list(BREAKDOWN_CASES))
    def test_upload_destinations_breakdown(self, row, upload_path, name):
        """Deliveries grouped per destination type, counted whatever their status, sorted by
        type."""
        result = row(upload_path, "breakdown", name)
        assert result["destinationsBreakdown"] == BREAKDOWN_CASES[name][2]
        assert all(list(item) == ["type", "count"] for item in result["destinationsBreakdown"])

    def test_upload_without_session_destinations_is_stored_only(self, row, upload_path):
        """A session with no destinations at all gives a stored_only upload with zero counts."""
        result = row(upload_path, "breakdown", "no-destinations")
        assert (
            result["status"],
            result["destinationsTotal"],
            result["destinationsDelivered"],
            result["destinationsFailed"],
        ) == ("stored_only", 0, 0, 0)


# --- timestamps and UUIDs on every list ---------------------------------------------------


def test_every_timestamp_has_the_exact_format(world, get):
    """Every timestamp on all four lists is YYYY-MM-DDTHH:MM:SS.mmmZ."""
    _, project, token = owned_project(world)
    for hours in range(3):
        session = world.session(project, created_at=NOW - timedelta(hours=hours, microseconds=7))
        world.upload(session, ["sent"], created_at=NOW - timedelta(minutes=hours, microseconds=3))
    world.load()
    stamps = [
        row[field]
        for path in SESSION_PATHS
        for row in fetch(get, path, token)
        for field in ("createdAt", "expiresAt")
    ]
    stamps += [row["createdAt"] for path in UPLOAD_PATHS for row in fetch(get, path, token)]
    assert len(stamps) == 18
    assert all(TIMESTAMP.fullmatch(stamp) for stamp in stamps), stamps


def test_uppercase_uuids_come_back_lowercase(world, get):
    """Ids loaded in upper case are reported in lowercase canonical form everywhere."""
    user = world.user("Ada", id="AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE")
    project = world.project(user, id="ABCDEF01-2345-4678-9ABC-DEF012345678")
    key = world.api_key(project)
    session = world.session(
        project, id="FEDCBA98-7654-4321-8FED-CBA987654321", destinations=("webhook",)
    )
    world.doc["sessions"][0]["destinations"][0]["id"] = "D0D0D0D0-E1E1-4F2F-A3A3-B4B4B4B4B4B4"
    world.upload(session, ["sent"], id="C0FFEE00-ABCD-4EF0-8123-456789ABCDEF")
    world.load()
    for credential in (make_token(user.lower()), key):
        for path in SESSION_PATHS:
            [row] = fetch(get, path, credential)
            assert (row["id"], row["projectId"]) == (session.lower(), project.lower())
        for path in UPLOAD_PATHS:
            [row] = fetch(get, path, credential)
            assert (row["id"], row["sessionId"], row["projectId"]) == (
                "c0ffee00-abcd-4ef0-8123-456789abcdef",
                session.lower(),
                project.lower(),
            )


# --- ordering -----------------------------------------------------------------------------

# Ids whose canonical lowercase hex order is the tie-break; some are given in upper case,
# so ordering by the text as written ("B" < "a") would differ from ordering by value.
TIE_IDS = [
    "00000000-0000-4000-8000-000000000001",
    "0000000F-0000-4000-8000-000000000000",
    "9fffffff-ffff-4fff-bfff-ffffffffffff",
    "a0000000-0000-4000-8000-000000000000",
    "B0000000-0000-4000-8000-000000000000",
    "ffffffff-0000-4000-8000-000000000000",
    "FFFFFFFF-0000-4000-8000-00000000000A",
    "ffffffff-0000-4000-8000-000000000009",
]
TIE_MOMENT = datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=UTC)
# One row just newer and one just older than the tied rows, with ids that would sort the
# other way: createdAt decides before id does.
TIE_ENTRIES = [(TIE_MOMENT, i) for i in TIE_IDS] + [
    (TIE_MOMENT + timedelta(microseconds=1), "00000000-0000-4000-8000-0000000000ff"),
    (TIE_MOMENT - timedelta(microseconds=1), "ffffffff-ffff-4fff-bfff-fffffffffffe"),
]


def several_projects(world):
    """A user who owns two projects and is a member of a third; returns (token, projects)."""
    ada = world.user("Ada")
    bob = world.user("Bob")
    mine = [world.project(ada, "Acme"), world.project(ada, "Zeta")]
    theirs = world.project(bob, "Bobco")
    world.member(theirs, ada)
    world.project(bob, "Hidden")
    return make_token(ada), mine + [theirs]


def expected_order(entries):
    """Lowercase ids of (createdAt, id) pairs: createdAt descending, then id descending."""
    return [i for _, i in sorted(((c, i.lower()) for c, i in entries), reverse=True)]


def test_sessions_ordered_by_created_at_then_id_desc(world, get):
    """Identical createdAt across projects: ties broken by id descending."""
    token, projects = several_projects(world)
    for n, (created, id) in enumerate(TIE_ENTRIES):
        world.session(projects[n % 3], created_at=created, id=id)
    world.load()
    for path in SESSION_PATHS:
        assert [r["id"] for r in fetch(get, path, token)] == expected_order(TIE_ENTRIES), path


def test_uploads_ordered_by_created_at_then_id_desc(world, get):
    """Identical createdAt across projects and sessions: ties broken by id descending."""
    token, projects = several_projects(world)
    sessions = [world.session(p, created_at=NOW - timedelta(days=1)) for p in projects]
    for n, (created, id) in enumerate(TIE_ENTRIES):
        world.upload(sessions[n % 3], ["sent"], created_at=created, id=id)
    world.load()
    for path in UPLOAD_PATHS:
        assert [r["id"] for r in fetch(get, path, token)] == expected_order(TIE_ENTRIES), path


@pytest.mark.parametrize("kind", ["sessions", "uploads"])
def test_pages_concatenate_to_the_full_order(world, get, kind):
    """Walking small pages over tied rows yields each row once, in the same total order."""
    token, projects = several_projects(world)
    sessions = [world.session(p, created_at=NOW - timedelta(days=1)) for p in projects]
    for n, id in enumerate(TIE_IDS):
        if kind == "sessions":
            world.session(projects[n % 3], created_at=TIE_MOMENT, id=id)
        else:
            world.upload(sessions[n % 3], created_at=TIE_MOMENT, id=id)
    world.load()
    full = fetch(get, f"/api/v1/{kind}?pageSize=100", token)
    walked = []
    for page in range(1, 5):
        walked += fetch(get, f"/api/v1/{kind}?page={page}&pageSize=3", token)
    assert walked == full
    assert len({r["id"] for r in full}) == len(full)


# --- recent vs paginated ------------------------------------------------------------------


def varied_world(world):
    """A user's sessions and uploads in several shapes across three projects; returns a JWT."""
    token, projects = several_projects(world)
    shapes = [
        dict(status="active", tags=["x", "a"], long_polling=True, destinations=("webhook", "s3")),
        dict(status="pending", expires_at=NOW - timedelta(hours=1), destinations=()),
        dict(status="completed", tags=[], destinations=("b_x", "a", "z9", "webhook")),
        dict(status="failed", expires_at=NOW - timedelta(days=3), destinations=("s3",)),
        dict(status="expired", created_at=TIE_MOMENT, destinations=("webhook", "webhook")),
    ]
    for n, shape in enumerate(shapes):
        shape.setdefault("created_at", NOW - timedelta(hours=n + 1))
        session = world.session(projects[n % 3], **shape)
        width = len(shape["destinations"])
        for statuses in (["sent"] * width, ["failed", "pending", "sent", "sent"][:width], []):
            world.upload(
                session,
                statuses,
                created_at=NOW - timedelta(minutes=len(statuses)),
                size=2**63 - 1 - n,
                source=SOURCES[n],
                encrypted=bool(n % 2),
            )
    world.load()
    return token


@pytest.mark.parametrize("kind", ["sessions", "uploads"])
def test_paged_data_equals_recent_rows(world, get, kind):
    """The wrapper's data rows are the very rows of the recent list, same shape and order."""
    token = varied_world(world)
    recent = fetch(get, f"/api/v1/{kind}/recent?limit=50", token)
    assert recent == fetch(get, f"/api/v1/{kind}?pageSize=100", token)
    assert recent == fetch(get, f"/api/v1/{kind}?pageSize=50", token)
    fields = SESSION_FIELDS if kind == "sessions" else UPLOAD_FIELDS
    assert len(recent) == (5 if kind == "sessions" else 15)
    assert all(list(row) == fields for row in recent)
    # Without parameters, recent (10 rows) is the head of page 1 (20 rows).
    default_recent = fetch(get, f"/api/v1/{kind}/recent", token)
    assert default_recent == fetch(get, f"/api/v1/{kind}", token)[:10] == recent[:10]
