from tests.conftest import make_token


def test_sessions_recent_for_owner(world, get):
    ada = world.user("Ada")
    acme = world.project(ada, "Acme")
    session = world.session(acme, destinations=("webhook", "s3"))
    world.upload(session, ["sent", "failed"])
    world.load()
    response = get("/api/v1/sessions/recent", make_token(ada))
    assert response.status_code == 200
    [row] = response.get_json()
    assert row["id"] == session
    assert row["imagesDelivered"] == 1 and row["imagesFailed"] == 1
