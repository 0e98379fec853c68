"""GET /api/v1/stats/series and /api/v1/stats?projectId: whole bodies against a model
computed in Python from the fixture document, in every interval, grouping and listed
zone, for a user and a key; the same numbers as the lists; CSV; every refusal.

The model places each session, upload and delivery in the bucket whose [start, end) holds
its createdAt (its upload's), with bucket starts computed the plain way (local midnight
through zoneinfo), independently of buckets.py's cells."""

import bisect
import csv
import io
import json
import random
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import database
from fixture import load_fixture
from queries.rollups import rollup_drift
from tests.builders import World, iso
from tests.conftest import bearer, empty_tables, make_token, ordered
from tests.rowmodel import upload_status
from tests.spec import SERIES_ZONES, SOURCES, UPLOAD_STATUSES

PATH = "/api/v1/stats/series"
ZONES = SERIES_ZONES
METRICS = [
    "sessions",
    "uploads",
    "bytes",
    "deliveriesSent",
    "deliveriesFailed",
    "deliveriesPending",
]
TYPES = ["webhook", "s3", "google_drive", "a_b"]
# Both of Europe's DST changes of 2026 lie inside these spans.
SPANS = [
    (datetime(2026, 3, 20, tzinfo=UTC), datetime(2026, 4, 12, tzinfo=UTC)),
    (datetime(2026, 10, 18, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)),
]
FROM, TO = "2026-03-01T00:00:00Z", "2026-12-01T00:00:00Z"


def build_tenant():
    """Ada owns "Zeta" and "alpha" and is a member of "Östra" (names in an order no locale
    gives); Bob's project, with a key of its own, is never Ada's. Sessions, uploads and
    deliveries at random instants around both DST changes, every status, source and type."""
    rng = random.Random(12)
    world = World()
    ada, bob = world.user("Ada"), world.user("Bob")
    zeta, alpha = world.project(ada, "Zeta"), world.project(ada, "alpha")
    ostra, foreign = world.project(bob, "Östra"), world.project(bob, "Foreign")
    world.member(ostra, ada)
    key = world.api_key(alpha)
    foreign_key = world.api_key(foreign)

    # Half the instants fall within minutes of some listed zone's local midnight, where a
    # wrong cell would show.
    edges = [
        datetime.combine(day, time(), tzinfo=ZoneInfo(zone)).astimezone(UTC)
        for zone in ZONES
        for start, end in SPANS
        for day in (start.date() + timedelta(days=n) for n in range((end - start).days))
    ]

    def instant():
        if rng.random() < 0.5:
            return rng.choice(edges) + timedelta(seconds=rng.randint(-1800, 1800))
        start, end = rng.choice(SPANS)
        seconds = rng.randrange(int((end - start).total_seconds()))
        return start + timedelta(seconds=seconds, microseconds=rng.randrange(1000000))

    for project in (zeta, alpha, ostra, foreign, alpha):
        for _ in range(20):
            session = world.session(
                project,
                created_at=instant(),
                destinations=rng.sample(TYPES, rng.randint(0, 3)),
            )
            for _ in range(rng.randint(0, 5)):
                world.upload(
                    session,
                    [rng.choice(["sent", "failed", "pending"]) for _ in range(3)],
                    created_at=instant(),
                    size=rng.choice([0, 1, 2048, 9_000_000_000]),
                    source=rng.choice(SOURCES),
                )
    return SimpleNamespace(
        doc=world.doc,
        user=ada,
        ada=ada,
        key=key,
        foreign_key=foreign_key,
        mine=[zeta, alpha, ostra],
        alpha=alpha,
        foreign=foreign,
    )


@pytest.fixture
def client(app):
    """The test client without conftest's per-test emptying: the world is read-only here,
    but for tests that ask for `changed`."""
    return app.test_client()


@pytest.fixture
def changed(db, module_tenant):
    """The world loaded afresh for a test that changes it, and gone after it (the next
    test loads it again)."""
    load_fixture(db, module_tenant.doc)
    yield module_tenant
    empty_tables(db)


# --- the model ---------------------------------------------------------------------------


def parse(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def first_day(interval, day):
    if interval == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1) if interval == "month" else day


def next_day(interval, day):
    if interval == "month":
        return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return day + timedelta(days=7 if interval == "week" else 1)


def local_start(day, zone):
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def model_starts(interval, zone_name, start_from, end_to):
    zone = ZoneInfo(zone_name)
    day = first_day(interval, start_from.astimezone(zone).date())
    last = first_day(interval, end_to.astimezone(zone).date())
    if local_start(last, zone) < end_to:
        last = next_day(interval, last)
    starts = [local_start(day, zone)]
    while day < last:
        day = next_day(interval, day)
        starts.append(local_start(day, zone))
    return starts


def model(doc, scope, interval="day", zone="UTC", start_from=FROM, end_to=TO, group_by=None):
    """The body the API must answer for a caller who sees `scope` (project ids)."""
    starts = model_starts(interval, zone, parse(start_from), parse(end_to))
    buckets = len(starts) - 1
    projects = {p["id"]: p["name"] for p in doc["projects"] if p["id"] in scope}
    sessions = {s["id"]: s for s in doc["sessions"] if s["projectId"] in projects}
    types = {d["id"]: d["type"] for s in sessions.values() for d in s["destinations"]}

    def bucket(created):
        n = bisect.bisect_right(starts, parse(created)) - 1
        return n if 0 <= n < buckets else None

    figures = {}  # group key -> metric -> [per bucket]

    def add(key, n, **amounts):
        row = figures.setdefault(key, {m: [0] * buckets for m in METRICS})
        for metric, amount in amounts.items():
            row[metric][n] += amount

    for session in sessions.values():
        n = bucket(session["createdAt"])
        if n is not None:
            add(("all",), n, sessions=1)
            add(("project", session["projectId"]), n, sessions=1)
    for upload in doc["uploads"]:
        session = sessions.get(upload["sessionId"])
        n = bucket(upload["createdAt"]) if session else None
        if n is None:
            continue
        deliveries = upload["deliveries"]
        counts = {
            f"deliveries{s.capitalize()}": [d["status"] for d in deliveries].count(s)
            for s in ("sent", "failed", "pending")
        }
        for key in (
            ("all",),
            ("project", session["projectId"]),
            ("status", upload_status([d["status"] for d in deliveries])),
            ("source", upload["source"]),
        ):
            add(key, n, uploads=1, bytes=upload["sizeBytes"], **counts)
        for delivery in deliveries:
            status = f"deliveries{delivery['status'].capitalize()}"
            add(("type", types[delivery["destinationId"]]), n, **{status: 1})

    def group(key, by, metrics):
        numbers = figures.get(key, {m: [0] * buckets for m in METRICS})
        series = {m: numbers[m] for m in metrics}
        return {"by": by, "totals": {m: sum(v) for m, v in series.items()}, "series": series}

    upload_metrics = METRICS[1:]
    if group_by == "project":
        ordered_projects = sorted(projects.items(), key=lambda p: (p[1].encode("utf-32-be"), p[0]))
        groups = [
            group(("project", id), {"projectId": id, "projectName": name}, METRICS)
            for id, name in ordered_projects
        ]
    elif group_by in ("status", "source"):
        values = UPLOAD_STATUSES if group_by == "status" else SOURCES
        groups = [group((group_by, v), {group_by: v}, upload_metrics) for v in values]
    elif group_by == "destinationType":
        present = sorted(
            (key[1] for key in figures if key[0] == "type"),
            key=lambda t: t.encode("utf-32-be"),
        )
        groups = [group(("type", t), {"destinationType": t}, METRICS[3:]) for t in present]
    else:
        groups = [group(("all",), {}, METRICS)]
    return {
        "interval": interval,
        "timezone": zone,
        "start": ms(starts[0]),
        "end": ms(starts[-1]),
        "intervals": [ms(s) for s in starts[:-1]],
        "groups": groups,
    }


def ms(moment):
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def query(**params):
    pairs = {"interval": "day", "from": FROM, "to": TO} | params
    return PATH + "?" + "&".join(f"{k}={v}" for k, v in pairs.items() if v is not None)


# --- whole bodies -------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("interval", ["day", "week", "month"])
@pytest.mark.parametrize("group_by", [None, "project", "status", "source", "destinationType"])
def test_whole_bodies_equal_the_model(get, tenant, zone, interval, group_by):
    response = get(
        query(interval=interval, timezone=zone, groupBy=group_by), make_token(tenant.ada)
    )
    assert response.status_code == 200, response.get_json()
    expected = model(tenant.doc, tenant.mine, interval, zone, group_by=group_by)
    assert ordered(response.get_json()) == ordered(expected)


@pytest.mark.parametrize("group_by", [None, "project", "status", "destinationType"])
def test_an_api_key_sees_its_project_only(get, tenant, group_by):
    response = get(query(timezone="Europe/Berlin", groupBy=group_by), tenant.key)
    expected = model(tenant.doc, [tenant.alpha], "day", "Europe/Berlin", group_by=group_by)
    assert ordered(response.get_json()) == ordered(expected)


def test_project_id_narrows_to_that_project(get, tenant):
    response = get(query(projectId=tenant.alpha, groupBy="project"), make_token(tenant.ada))
    assert ordered(response.get_json()) == ordered(
        model(tenant.doc, [tenant.alpha], group_by="project")
    )


@pytest.mark.parametrize("who", ["ada", "key"])
def test_a_project_out_of_scope_or_unknown_is_404(get, tenant, who):
    credential = make_token(tenant.ada) if who == "ada" else tenant.key
    for project in (tenant.foreign, "0f0f0f0f-1234-4abc-8def-0123456789ab"):
        response = get(query(projectId=project), credential)
        assert (response.status_code, response.get_json()["error"]) == (404, "not_found")


def test_a_user_without_projects_gets_zeros_and_no_project_groups(get, changed, db):
    loner = db.execute(
        "INSERT INTO users (id, email, name) VALUES (gen_random_uuid(), 'n@x', 'N') RETURNING id"
    ).fetchone()["id"]
    token = make_token(str(loner))
    tenant = changed
    assert get(query(), token).get_json()["groups"] == model(tenant.doc, [])["groups"]
    assert get(query(groupBy="project"), token).get_json()["groups"] == []
    assert get(query(groupBy="destinationType"), token).get_json()["groups"] == []


# --- the same numbers as the lists ------------------------------------------------------


def total(get, credential, path):
    return get(path + "&pageSize=1", credential).get_json()["total"]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kathmandu"])
def test_totals_equal_the_lists_over_the_same_range(get, tenant, zone):
    token = make_token(tenant.ada)
    body = get(query(timezone=zone, groupBy="status"), token).get_json()
    window = f"from={body['start']}&to={body['end']}"
    for group in body["groups"]:
        status = group["by"]["status"]
        listed = total(get, token, f"/api/v1/uploads?{window}&status={status}")
        assert group["totals"]["uploads"] == listed, status
    everything = get(query(timezone=zone), token).get_json()["groups"][0]["totals"]
    assert everything["uploads"] == total(get, token, f"/api/v1/uploads?{window}")
    assert everything["sessions"] == total(get, token, f"/api/v1/sessions?{window}")
    rows, page = [], 1
    while True:
        data = get(f"/api/v1/uploads?{window}&pageSize=100&page={page}", token).get_json()["data"]
        if not data:
            break
        rows += data
        page += 1
    assert everything["deliveriesSent"] == sum(row["destinationsDelivered"] for row in rows)
    assert everything["deliveriesFailed"] == sum(row["destinationsFailed"] for row in rows)
    assert everything["bytes"] == sum(row["sizeBytes"] for row in rows)


# --- CSV ----------------------------------------------------------------------------------


@pytest.mark.parametrize("group_by", [None, "project", "status", "destinationType"])
def test_csv_holds_the_same_numbers_in_long_form(get, tenant, group_by):
    token = make_token(tenant.ada)
    body = get(query(timezone="Asia/Kolkata", groupBy=group_by), token).get_json()
    response = get(query(timezone="Asia/Kolkata", groupBy=group_by, format="csv"), token)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="series.csv"'
    text = response.get_data(as_text=True)
    assert "\r\n" in text
    lines = list(csv.reader(io.StringIO(text)))
    metrics = list(body["groups"][0]["series"]) if body["groups"] else []
    by_keys = list(body["groups"][0]["by"]) if body["groups"] else []
    assert lines[0][: 1 + len(by_keys)] == ["start", *by_keys]
    expected = [
        [start, *group["by"].values(), *(str(group["series"][m][n]) for m in metrics)]
        for group in body["groups"]
        for n, start in enumerate(body["intervals"])
    ]
    assert lines[1:] == expected
    assert lines[0][1 + len(by_keys) :] == metrics


def test_csv_header_without_groups(get, changed, db):
    db.execute("DELETE FROM deliveries")
    response = get(query(groupBy="destinationType", format="csv"), changed.key)
    assert response.get_data(as_text=True) == (
        "start,destinationType,deliveriesSent,deliveriesFailed,deliveriesPending\r\n"
    )


# --- defaults, caching, refusals ----------------------------------------------------------


@pytest.mark.parametrize(("interval", "count"), [("day", 30), ("week", 12), ("month", 12)])
def test_defaults_end_with_the_bucket_holding_now(get, tenant, interval, count):
    body = get(f"{PATH}?interval={interval}&timezone=Asia/Kolkata", tenant.key).get_json()
    starts = [parse(s) for s in body["intervals"]] + [parse(body["end"])]
    assert len(body["intervals"]) == count
    assert starts[-2] <= datetime.now(UTC) < starts[-1]
    assert body["timezone"] == "Asia/Kolkata" and body["interval"] == interval
    assert get(PATH, tenant.key).get_json()["interval"] == "day"
    assert get(PATH, tenant.key).get_json()["timezone"] == "UTC"


def test_empty_values_are_absent_and_other_parameters_ignored(get, tenant):
    plain = get(PATH, tenant.key).get_json()
    noisy = get(
        f"{PATH}?interval=&timezone=&groupBy=&format=&from=&to=&projectId=&limit=abc", tenant.key
    ).get_json()
    assert noisy == plain


def test_etag_and_304(get, tenant):
    first = get(query(), tenant.key)
    assert first.headers["Cache-Control"] == "private, no-cache" and first.headers["ETag"]
    again = get(query(), tenant.key, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ("interval=hour", "interval"),
        ("interval=Day", "interval"),
        ("groupBy=tag", "groupBy"),
        ("format=ndjson", "format"),
        ("timezone=europe/berlin", "timezone"),
        ("timezone=Europe/Berlin%20", "timezone"),
        ("timezone=CET%2B1", "timezone"),
        ("timezone=localtime", "timezone"),
        ("from=yesterday", "from"),
        ("to=2026-11-01", "to"),
        ("projectId=nope", "projectId"),
        ("from=2026-11-02T00:00:00Z&to=2026-11-02T00:00:00Z", "to"),
        ("from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", "to"),
        ("from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("interval=week&interval=day", "interval"),
    ],
)
def test_bad_values_are_400_naming_the_parameter(get, tenant, params, named):
    response = get(f"{PATH}?{params}", tenant.key)
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["error"] == "invalid_parameter" and f"'{named}'" in body["message"]


@pytest.mark.parametrize(
    "params", ["interval=hour", "from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", ""]
)
def test_401_comes_before_400(get, tenant, params):
    for credential in (
        None,
        "aptr_unknown_0000000000000000",
        make_token(tenant.ada, expires_in=-5),
    ):
        response = get(f"{PATH}?{params}", credential)
        assert response.status_code == 401


def test_a_thousand_buckets_are_answered(get, tenant):
    response = get(f"{PATH}?from=2024-01-01T00:00:00Z&to=2026-09-27T00:00:00Z", tenant.key)
    body = response.get_json()
    assert response.status_code == 200 and len(body["intervals"]) == 1000
    assert all(len(v) == 1000 for v in body["groups"][0]["series"].values())


def test_bytes_beyond_64_bits_are_exact(get, changed, db):
    db.execute("UPDATE uploads SET size_bytes = 9223372036854775807")
    body = json.loads(get(query(), changed.key).get_data())  # exact, where orjson reads floats
    uploads = body["groups"][0]["totals"]["uploads"]
    assert uploads > 1 and body["groups"][0]["totals"]["bytes"] == uploads * (2**63 - 1)


# --- /stats?projectId ---------------------------------------------------------------------


def test_stats_narrowed_to_a_project_equal_its_key_s_stats(get, tenant):
    narrowed = get(f"/api/v1/stats?projectId={tenant.alpha}", make_token(tenant.ada))
    assert narrowed.status_code == 200
    assert ordered(narrowed.get_json()) == ordered(get("/api/v1/stats", tenant.key).get_json())
    for project in (tenant.foreign, "0f0f0f0f-1234-4abc-8def-0123456789ab"):
        response = get(f"/api/v1/stats?projectId={project}", make_token(tenant.ada))
        assert response.status_code == 404
    assert get("/api/v1/stats?projectId=x", make_token(tenant.ada)).status_code == 400
    assert get("/api/v1/stats?projectId=x").status_code == 401
    assert (
        get("/api/v1/stats?projectId=", tenant.key).get_json()
        == get("/api/v1/stats", tenant.key).get_json()
    )


def test_the_model_itself_places_a_berlin_night_in_the_right_day():
    """Control for the model: 23:30 UTC on 2026-10-24 is already the 25th in Berlin."""
    doc = {
        "projects": [{"id": "p", "name": "P"}],
        "sessions": [
            {"id": "s", "projectId": "p", "createdAt": "2026-10-24T23:30:00Z", "destinations": []}
        ],
        "uploads": [],
    }
    body = model(
        doc,
        ["p"],
        zone="Europe/Berlin",
        start_from="2026-10-24T00:00:00Z",
        end_to="2026-10-26T00:00:00Z",
    )
    assert body["groups"][0]["series"]["sessions"] == [0, 1, 0]
    assert body["intervals"][1] == "2026-10-24T22:00:00.000Z"
    assert date.fromisoformat("2026-10-25") == parse(body["intervals"][2]).astimezone(
        ZoneInfo("Europe/Berlin")
    ).date() - timedelta(days=1)


def test_iso_helper_round_trips():
    assert parse(iso(datetime(2026, 1, 1, tzinfo=UTC))) == datetime(2026, 1, 1, tzinfo=UTC)


# --- random worlds, random writes ---------------------------------------------------------

WRITES = [
    "UPDATE deliveries SET status = %(status)s WHERE upload_id IN "
    "(SELECT upload_id FROM deliveries ORDER BY random() LIMIT 3)",
    "DELETE FROM uploads WHERE id IN (SELECT id FROM uploads ORDER BY random() LIMIT 2)",
    "DELETE FROM deliveries WHERE upload_id IN "
    "(SELECT upload_id FROM deliveries ORDER BY random() LIMIT 2)",
    "UPDATE uploads SET created_at = created_at + %(shift)s WHERE id IN "
    "(SELECT id FROM uploads ORDER BY random() LIMIT 3)",
    "UPDATE upload_sessions SET created_at = created_at - %(shift)s WHERE id IN "
    "(SELECT id FROM upload_sessions ORDER BY random() LIMIT 2)",
    "UPDATE destinations SET type = %(type)s WHERE id IN "
    "(SELECT id FROM destinations ORDER BY random() LIMIT 2)",
    "DELETE FROM destinations WHERE id IN (SELECT id FROM destinations ORDER BY random() LIMIT 1)",
    "DELETE FROM upload_sessions WHERE id IN "
    "(SELECT id FROM upload_sessions ORDER BY random() LIMIT 1)",
    "UPDATE uploads SET size_bytes = size_bytes + 1, source = %(source)s WHERE id IN "
    "(SELECT id FROM uploads ORDER BY random() LIMIT 2)",
]


def doc_from_db(conn):
    """The base tables as a fixture-shaped document, for the model."""

    def text(moment):
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

    sessions = {
        row["id"]: {
            "id": str(row["id"]),
            "projectId": str(row["project_id"]),
            "createdAt": text(row["created_at"]),
            "destinations": [],
        }
        for row in conn.execute("SELECT id, project_id, created_at FROM upload_sessions")
    }
    for row in conn.execute("SELECT id, session_id, type FROM destinations"):
        sessions[row["session_id"]]["destinations"].append(
            {"id": str(row["id"]), "type": row["type"]}
        )
    uploads = {
        row["id"]: {
            "id": str(row["id"]),
            "sessionId": str(row["session_id"]),
            "createdAt": text(row["created_at"]),
            "sizeBytes": row["size_bytes"],
            "source": row["source"],
            "deliveries": [],
        }
        for row in conn.execute(
            "SELECT id, session_id, created_at, size_bytes, source FROM uploads"
        )
    }
    for row in conn.execute("SELECT upload_id, destination_id, status FROM deliveries"):
        uploads[row["upload_id"]]["deliveries"].append(
            {"destinationId": str(row["destination_id"]), "status": row["status"]}
        )
    projects = [
        {"id": str(r["id"]), "name": r["name"]}
        for r in conn.execute("SELECT id, name FROM projects")
    ]
    return {
        "projects": projects,
        "sessions": list(sessions.values()),
        "uploads": list(uploads.values()),
    }


def random_range(rng):
    start, end = rng.choice(SPANS)
    lo = start + timedelta(minutes=rng.randrange(int((end - start).total_seconds() // 60)))
    hi = lo + timedelta(minutes=rng.randint(1, 60 * 24 * 60))
    return ms(lo), ms(hi)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1))
def test_series_follow_random_writes_exactly(app, database_url, seed):
    """Random worlds and callers; after every random write, random series (zones, intervals,
    windows, groups, a project) equal the model of the base tables, and the lists agree."""
    rng = random.Random(seed)
    world = build_random_world(rng)
    client = app.test_client()
    with database.connect(database_url, autocommit=True) as conn:
        empty_tables(conn)
        load_fixture(conn, world.doc)
        for _ in range(4):
            doc = doc_from_db(conn)
            for credential, scope in world.callers(conn):
                start_from, end_to = random_range(rng)
                interval = rng.choice(["day", "week", "month"])
                zone = rng.choice(ZONES)
                group_by = rng.choice([None, "project", "status", "source", "destinationType"])
                narrowed = rng.choice([None, *scope]) if scope else None
                path = query(
                    interval=interval,
                    timezone=zone,
                    groupBy=group_by,
                    projectId=narrowed,
                    **{"from": start_from, "to": end_to},
                )
                response = client.get(path, headers=bearer(credential))
                if interval == "day" and response.status_code == 400:
                    continue  # over 1,000 days: refused, as it should be
                expected = model(
                    doc,
                    [narrowed] if narrowed else scope,
                    interval,
                    zone,
                    start_from,
                    end_to,
                    group_by,
                )
                assert ordered(response.get_json()) == ordered(expected), path
            write = rng.choice(WRITES)
            conn.execute(
                write,
                {
                    "status": rng.choice(["sent", "failed", "pending"]),
                    "shift": timedelta(minutes=rng.randint(1, 3000)),
                    "type": rng.choice(TYPES),
                    "source": rng.choice(SOURCES),
                },
            )
        assert rollup_drift(conn) == []
        empty_tables(conn)  # the module's read-only world is loaded again by `tenant`


def build_random_world(rng):
    """Two users (one a member of the other's project), keys, and 0-6 sessions per project
    with uploads near listed zones' midnights; callers as (credential, scope) pairs."""
    world = World()
    users = [world.user(f"U{n}") for n in range(2)]
    names = ["Zeta", "alpha", "Östra", "beta", "Zeta"]
    projects = [world.project(rng.choice(users), rng.choice(names)) for _ in range(3)]
    world.member(projects[0], users[1])
    keys = {world.api_key(p): p for p in projects[:2]}
    edges = [
        datetime.combine(
            start.date() + timedelta(days=n), time(), tzinfo=ZoneInfo(zone)
        ).astimezone(UTC)
        for zone in ZONES
        for start, end in SPANS
        for n in range(0, (end - start).days, 3)
    ]
    for project in projects:
        for _ in range(rng.randint(0, 6)):
            session = world.session(
                project,
                created_at=rng.choice(edges) + timedelta(seconds=rng.randint(-4000, 4000)),
                destinations=rng.sample(TYPES, rng.randint(0, 3)),
            )
            for _ in range(rng.randint(0, 4)):
                world.upload(
                    session,
                    [rng.choice(["sent", "failed", "pending"]) for _ in range(3)],
                    created_at=rng.choice(edges) + timedelta(seconds=rng.randint(-4000, 4000)),
                    size=rng.randint(0, 10**10),
                    source=rng.choice(SOURCES),
                )

    def callers(conn):
        """(credential, project ids in scope) for every user and key, as the database
        has them now."""
        pairs = []
        for user in users:
            scope = [
                str(r["id"])
                for r in conn.execute(
                    "SELECT id FROM projects WHERE owner_id = %s UNION "
                    "SELECT project_id FROM members WHERE user_id = %s",
                    [user, user],
                )
            ]
            pairs.append((make_token(user), scope))
        for key, project in keys.items():
            alive = conn.execute("SELECT 1 FROM projects WHERE id = %s", [project]).fetchone()
            if alive:
                pairs.append((key, [project]))
        return pairs

    world.callers = callers
    return world
