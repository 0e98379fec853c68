"""GET /api/v1/stats (SPEC §5): every figure, its order, the current UTC month and the
caller's scope."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.conftest import make_token

# Month bounds are computed once; a run straddling midnight UTC at a month's end may fail
# spuriously.
NOW = datetime.now(UTC)
MONTH_START = NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
NEXT_MONTH_START = (MONTH_START + timedelta(days=32)).replace(day=1)
LAST_MONTH = MONTH_START - timedelta(days=10)
TINY = timedelta(microseconds=1)
# Inside this month and never in the future.
THIS_MONTH = MONTH_START + (NOW - MONTH_START) / 2

STATS_KEYS = [
    "sessionsThisMonth",
    "sessionsTotal",
    "imagesUploaded",
    "imagesDelivered",
    "deliverySuccessRate",
    "totalProjects",
    "activeKeys",
    "topProjects",
]
ZERO = {
    "sessionsThisMonth": 0,
    "sessionsTotal": 0,
    "imagesUploaded": 0,
    "imagesDelivered": 0,
    "deliverySuccessRate": 0,
    "totalProjects": 0,
    "activeKeys": 0,
    "topProjects": [],
}


def stats(get, credential):
    """The stats body, after checking status, content type and field order."""
    response = get("/api/v1/stats", credential)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert list(body) == STATS_KEYS
    for entry in body["topProjects"]:
        assert list(entry) == ["id", "name", "sessions"]
    return body


def figures(**changes):
    return {**ZERO, **changes}


def build_ada(world):
    """Ada owns Acme and is a member of Bob's Beta; Bob's Gamma is outside her scope."""
    ada, bob = world.user("Ada"), world.user("Bob")
    acme = world.project(ada, "Acme")
    beta = world.project(bob, "Beta")
    gamma = world.project(bob, "Gamma")
    world.member(beta, ada)

    s1 = world.session(acme, created_at=THIS_MONTH, destinations=("webhook", "s3"))
    world.upload(s1, ["sent", "failed"])
    world.upload(s1, ["pending", "pending"])
    world.upload(s1, ["failed", "failed"])
    s2 = world.session(acme, created_at=LAST_MONTH, destinations=("webhook",))
    world.upload(s2, ["sent"])
    s3 = world.session(acme, created_at=THIS_MONTH, destinations=())
    world.upload(s3, [])
    b1 = world.session(beta, created_at=THIS_MONTH, destinations=("webhook", "s3"))
    world.upload(b1, ["sent", "sent"])

    acme_key = world.api_key(acme)
    world.api_key(acme, revoked_at=NOW - timedelta(days=1))
    world.api_key(beta, expires_at=NOW - timedelta(days=1))
    world.api_key(beta, revoked_at=NOW + timedelta(days=1))
    return {
        "ada": ada,
        "bob": bob,
        "acme": acme,
        "beta": beta,
        "gamma": gamma,
        "acme_key": acme_key,
    }


def ada_expected(ids):
    # sent 4, failed 3 (pending ignored): 400/7 = 57.14 -> 57.
    return {
        "sessionsThisMonth": 3,
        "sessionsTotal": 4,
        "imagesUploaded": 6,
        "imagesDelivered": 3,
        "deliverySuccessRate": 57,
        "totalProjects": 2,
        "activeKeys": 2,
        "topProjects": [
            {"id": ids["acme"], "name": "Acme", "sessions": 2},
            {"id": ids["beta"], "name": "Beta", "sessions": 1},
        ],
    }


def build_heavy_tenant(world, bob, gamma):
    """Lots of out-of-scope data: sessions this month, uploads, failures, active keys."""
    for i in range(15):
        project = gamma if i < 3 else world.project(bob, f"AAA {i:02}")
        for _ in range(4):
            session = world.session(project, created_at=THIS_MONTH, destinations=("webhook", "s3"))
            world.upload(session, ["failed", "failed"])
            world.upload(session, ["sent", "pending"])
        world.session(project, created_at=LAST_MONTH, destinations=())
        world.api_key(project)


def test_whole_body_on_a_small_world(world, get):
    ids = build_ada(world)
    world.load()
    assert stats(get, make_token(ids["ada"])) == ada_expected(ids)


def test_other_tenants_data_changes_no_figure(world, get):
    ids = build_ada(world)
    build_heavy_tenant(world, ids["bob"], ids["gamma"])
    world.load()
    assert stats(get, make_token(ids["ada"])) == ada_expected(ids)
    # The heavy tenant really is there: Bob sees it.
    assert stats(get, make_token(ids["bob"]))["sessionsTotal"] == 15 * 5 + 1


def test_api_key_scope_is_only_its_project(world, get):
    ids = build_ada(world)
    build_heavy_tenant(world, ids["bob"], ids["gamma"])
    world.load()
    # Acme alone: sent 2, failed 3 -> 40.
    assert stats(get, ids["acme_key"]) == {
        "sessionsThisMonth": 2,
        "sessionsTotal": 3,
        "imagesUploaded": 5,
        "imagesDelivered": 2,
        "deliverySuccessRate": 40,
        "totalProjects": 1,
        "activeKeys": 1,
        "topProjects": [{"id": ids["acme"], "name": "Acme", "sessions": 2}],
    }


def test_member_only_user_sees_only_that_project(world, get):
    ids = build_ada(world)
    carol = world.user("Carol")
    world.member(ids["beta"], carol)
    world.load()
    assert stats(get, make_token(carol)) == {
        "sessionsThisMonth": 1,
        "sessionsTotal": 1,
        "imagesUploaded": 1,
        "imagesDelivered": 1,
        "deliverySuccessRate": 100,
        "totalProjects": 1,
        "activeKeys": 1,
        "topProjects": [{"id": ids["beta"], "name": "Beta", "sessions": 1}],
    }


def test_user_without_projects_gets_zeros(world, get):
    ids = build_ada(world)
    build_heavy_tenant(world, ids["bob"], ids["gamma"])
    loner = world.user("Loner")
    world.load()
    assert stats(get, make_token(loner)) == ZERO


def test_sessions_this_month_is_the_current_utc_calendar_month(world, get):
    ada = world.user("Ada")
    acme = world.project(ada, "Acme")
    for created in (MONTH_START, MONTH_START + TINY, THIS_MONTH):
        world.session(acme, created_at=created, destinations=())
    for created in (
        MONTH_START - TINY,
        LAST_MONTH,
        MONTH_START.replace(year=MONTH_START.year - 1),
        NEXT_MONTH_START,
    ):
        world.session(acme, created_at=created, destinations=())
    world.load()
    assert stats(get, make_token(ada)) == figures(
        sessionsThisMonth=3,
        sessionsTotal=7,
        totalProjects=1,
        topProjects=[{"id": acme, "name": "Acme", "sessions": 3}],
    )


def test_future_session_later_this_month_counts(world, get):
    """createdAt is all that matters: a future-dated session inside this month is this month's."""
    ada = world.user("Ada")
    acme = world.project(ada, "Acme")
    world.session(acme, created_at=NEXT_MONTH_START - TINY, destinations=())
    world.load()
    assert stats(get, make_token(ada))["sessionsThisMonth"] == 1


def test_images_delivered_counts_uploads_with_a_sent_delivery(world, get):
    ada = world.user("Ada")
    acme = world.project(ada, "Acme")
    session = world.session(acme, created_at=LAST_MONTH, destinations=("webhook", "s3"))
    for statuses in (
        ["sent", "sent"],
        ["sent", "failed"],
        ["pending", "sent"],
        ["failed", "pending"],
        ["pending"],
        ["failed", "failed"],
        [],
    ):
        world.upload(session, statuses)
    world.load()
    # sent 4, failed 4 -> 50.
    assert stats(get, make_token(ada)) == figures(
        sessionsTotal=1,
        imagesUploaded=7,
        imagesDelivered=3,
        deliverySuccessRate=50,
        totalProjects=1,
    )


@pytest.mark.parametrize(
    "sent, failed, pending, rate",
    [
        (0, 0, 0, 0),
        (0, 0, 3, 0),
        (1, 7, 0, 13),  # 12.5: half up, not to even
        (3, 5, 0, 38),  # 37.5
        (5, 3, 0, 63),  # 62.5: half up, not to even
        (1, 2, 0, 33),  # 33.33
        (2, 1, 0, 67),  # 66.67
        (1, 1, 0, 50),
        (1, 1, 5, 50),  # pending ignored
        (7, 1, 0, 88),  # 87.5
        (7, 1, 9, 88),
        (1, 39, 0, 3),  # 2.5
        (39, 1, 0, 98),  # 97.5
        (4, 0, 0, 100),
        (4, 0, 2, 100),
        (0, 4, 0, 0),
        (0, 4, 2, 0),
    ],
)
def test_delivery_success_rate(world, get, sent, failed, pending, rate):
    ada = world.user("Ada")
    acme = world.project(ada, "Acme")
    session = world.session(acme, created_at=LAST_MONTH, destinations=("webhook",))
    for status in ["sent"] * sent + ["failed"] * failed + ["pending"] * pending:
        world.upload(session, [status])
    world.upload(session, [])  # an upload with no delivery at all changes nothing
    world.load()
    assert stats(get, make_token(ada))["deliverySuccessRate"] == rate


def test_total_projects_counts_owned_and_member_projects_once(world, get):
    ada, bob = world.user("Ada"), world.user("Bob")
    world.project(ada, "Owned")
    owned_and_listed = world.project(ada, "Listed")
    world.member(owned_and_listed, ada, role="admin")
    joined = world.project(bob, "Joined")
    world.member(joined, ada)
    world.project(bob, "Not Ada's")
    world.load()
    assert stats(get, make_token(ada)) == figures(totalProjects=3)


@pytest.mark.parametrize(
    "expires_at, revoked_at, active",
    [
        (None, None, 1),
        (None, NOW - timedelta(minutes=5), 0),
        (None, NOW + timedelta(days=1), 1),  # a scheduled revocation
        (NOW - timedelta(minutes=5), None, 0),
        (NOW + timedelta(days=1), None, 1),
        (NOW + timedelta(days=1), NOW - timedelta(minutes=5), 0),
        (NOW - timedelta(minutes=5), NOW + timedelta(days=1), 0),
        (NOW + timedelta(days=1), NOW + timedelta(days=1), 1),
    ],
)
def test_active_keys(world, get, expires_at, revoked_at, active):
    ada, bob = world.user("Ada"), world.user("Bob")
    acme = world.project(ada, "Acme")
    world.api_key(acme, expires_at=expires_at, revoked_at=revoked_at)
    theirs = world.project(bob, "Theirs")
    world.api_key(theirs)
    world.api_key(theirs)
    world.load()
    assert stats(get, make_token(ada)) == figures(totalProjects=1, activeKeys=active)


def test_active_keys_sums_over_every_project_in_scope(world, get):
    ada, bob = world.user("Ada"), world.user("Bob")
    acme = world.project(ada, "Acme")
    joined = world.project(bob, "Joined")
    world.member(joined, ada)
    theirs = world.project(bob, "Theirs")
    for project in (acme, acme, joined, theirs, theirs, theirs):
        world.api_key(project)
    world.api_key(joined, revoked_at=NOW - timedelta(days=2))
    world.load()
    assert stats(get, make_token(ada)) == figures(totalProjects=2, activeKeys=3)


def test_top_projects_only_with_a_session_this_month(world, get):
    ada = world.user("Ada")
    current = world.project(ada, "Current")
    old = world.project(ada, "Old")
    future = world.project(ada, "Future")
    world.project(ada, "Empty")
    world.session(current, created_at=THIS_MONTH, destinations=())
    world.session(current, created_at=LAST_MONTH, destinations=())
    world.session(old, created_at=LAST_MONTH, destinations=())
    world.session(future, created_at=NEXT_MONTH_START, destinations=())
    world.load()
    assert stats(get, make_token(ada)) == figures(
        sessionsThisMonth=1,
        sessionsTotal=4,
        totalProjects=4,
        topProjects=[{"id": current, "name": "Current", "sessions": 1}],
    )


LOCALE_COLLATIONS = ("en-US-x-icu", "und-x-icu", "unicode", "en_US.utf8", "en_US.UTF-8", "en_US")


def usable_locale_collation(db):
    """A linguistic collation this server can really use, or None."""
    for name in LOCALE_COLLATIONS:
        try:
            db.execute(f"SELECT 'a' < 'B' COLLATE \"{name}\"")
        except psycopg.Error:
            continue
        return name
    return None


@pytest.fixture(params=["default", "locale"])
def project_name_collation(request, db):
    """Optionally give projects.name a linguistic collation, as on a server whose default is
    en_US."""
    if request.param == "default":
        yield
        return
    collation = usable_locale_collation(db)
    if collation is None:
        pytest.skip("this server has no usable linguistic collation")
    db.execute(f'ALTER TABLE projects ALTER COLUMN name TYPE text COLLATE "{collation}"')
    yield
    db.execute('ALTER TABLE projects ALTER COLUMN name TYPE text COLLATE "default"')


def test_top_projects_order_and_limit(project_name_collation, world, get):
    ada, bob = world.user("Ada"), world.user("Bob")
    low_id = "00000000-0000-4000-8000-000000000001"
    high_id = "ffffffff-0000-4000-8000-000000000001"

    def project(name, this_month, last_month=0, id=None):
        project = world.project(ada, name, id=id)
        for _ in range(this_month):
            world.session(project, created_at=THIS_MONTH, destinations=())
        for _ in range(last_month):
            world.session(project, created_at=LAST_MONTH, destinations=())
        return project

    fillers = {name: project(name, 1) for name in ("f05", "f03", "f01", "f04", "f02")}
    same_high = project("Same", 2, id=high_id)
    osta = project("Östra", 3)
    alpha = project("alpha", 3)
    zeta = project("Zeta", 3)
    # Ranked on this month only: 10 older sessions must not lift it above "Other".
    mid = project("Mid", 5, last_month=10)
    same_low = project("Same", 2, id=low_id)
    other = project("Other", 6)
    # Out of scope, and it would top the list.
    outsider = world.project(bob, "AAA")
    for _ in range(20):
        world.session(outsider, created_at=THIS_MONTH, destinations=())
    world.load()

    body = stats(get, make_token(ada))
    assert body["topProjects"] == [
        {"id": other, "name": "Other", "sessions": 6},
        {"id": mid, "name": "Mid", "sessions": 5},
        {"id": zeta, "name": "Zeta", "sessions": 3},
        {"id": alpha, "name": "alpha", "sessions": 3},
        {"id": osta, "name": "Östra", "sessions": 3},
        {"id": same_low, "name": "Same", "sessions": 2},
        {"id": same_high, "name": "Same", "sessions": 2},
        {"id": fillers["f01"], "name": "f01", "sessions": 1},
        {"id": fillers["f02"], "name": "f02", "sessions": 1},
        {"id": fillers["f03"], "name": "f03", "sessions": 1},
    ]
    assert body["sessionsThisMonth"] == 6 + 5 + 3 * 3 + 2 * 2 + 5
    assert body["totalProjects"] == 12


def test_stats_ignores_other_endpoints_parameters(world, get):
    ids = build_ada(world)
    world.load()
    response = get("/api/v1/stats?limit=abc&page=-1&pageSize=x", make_token(ids["ada"]))
    assert response.status_code == 200
    assert response.get_json() == ada_expected(ids)
