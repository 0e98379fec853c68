"""The OpenAPI document (openapi.py): valid, complete, and what the service really answers.

The fuzzing runs schemathesis in process against the WSGI app with valid credentials:
positive and negative examples for every operation (bounded, so the suite stays fast),
checking for server errors, answers that break the document, negative data accepted,
and requests without credentials answered. Ids, projects, tags and destination types are
often drawn from the loaded world (schemathesis dictionaries), so single rows, filters and
exports answer with data rather than only with 404s and empty lists.
"""

from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from apispec_webframeworks.flask import FlaskPlugin
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft4Validator
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from tests.builders import NOW, World
from tests.conftest import bearer, ensure_loaded, make_token

DOCUMENT = "/api/v1/openapi.json"
SECURED = [
    "/api/v1/sessions/recent",
    "/api/v1/sessions",
    "/api/v1/sessions/{session_id}",
    "/api/v1/uploads/recent",
    "/api/v1/uploads",
    "/api/v1/uploads/{upload_id}",
    "/api/v1/stats",
    "/api/v1/stats/series",
    "/api/v1/keys/current",
]
OPEN = ["/healthz", "/readyz", DOCUMENT]
LISTS = ["/api/v1/sessions", "/api/v1/uploads"]
# Named rather than left to schemathesis' defaults, so the test says what it proves.
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    ignored_auth,
    unsupported_method,
]
NOWHERE = "00000000-0000-4000-8000-000000000000"


def build_world():
    """A small world in which every field has a value to check against the document, and
    every filter something to match: a project the key and the owner see, one only the
    owner sees (as a member), and one neither sees."""
    world = World()
    owner, stranger = world.user("Fuzz Owner"), world.user("Someone Else")
    project = world.project(owner, "Fuzz")
    shared = world.project(stranger, "Shared")
    world.member(shared, owner)
    foreign = world.project(stranger, "Foreign")
    key = world.api_key(project, expires_at=NOW.replace(year=NOW.year + 1), name="fuzz key")
    outcomes = [(), ("sent",), ("failed", "pending"), ("sent", "failed"), ("pending",)]
    sources = ["camera", "url", "google_drive", "dropbox", "box"]
    for index, (where, destinations, tags, status) in enumerate(
        [
            (project, (), None, "active"),
            (project, ("webhook",), ["t"], "completed"),
            (project, ("s3", "webhook"), ["t", "wedding"], "pending"),
            (shared, ("google_drive", "s3"), ["wedding"], "failed"),
            (foreign, ("webhook",), ["t"], "active"),
        ]
    ):
        session = world.session(
            where,
            created_at=NOW.replace(microsecond=index * 1111),
            tags=tags,
            status=status,
            destinations=destinations,
        )
        for turn in range(2):
            world.upload(
                session,
                outcomes[(index + turn) % len(outcomes)][: len(destinations)],
                source=sources[(index + turn) % len(sources)],
                created_at=NOW.replace(microsecond=index * 1111 + turn),
            )
    return world, owner, key


WORLD, OWNER, KEY = build_world()
DOC = WORLD.doc


def dictionaries(doc):
    """Values from the world for schemathesis to use often (not always) for a parameter."""
    return {
        "session_ids": [s["id"] for s in doc["sessions"]] + [NOWHERE],
        "upload_ids": [u["id"] for u in doc["uploads"]] + [NOWHERE],
        "project_ids": [p["id"] for p in doc["projects"]] + [NOWHERE],
        "tags": sorted({t for s in doc["sessions"] for t in s["tags"] or []}),
        "destination_types": sorted(
            {d["type"] for s in doc["sessions"] for d in s["destinations"]}
        ),
    }


BINDINGS = {
    "path.session_id": "session_ids",
    "path.upload_id": "upload_ids",
    "query.projectId": "project_ids",
    "query.tag": "tags",
    "query.destinationType": "destination_types",
}


@pytest.fixture
def loaded(database_url):
    ensure_loaded(database_url, DOC, OWNER)


@pytest.fixture
def document(client):
    response = client.get(DOCUMENT)
    assert response.status_code == 200 and response.is_json
    return response.get_json()


def test_the_document_is_valid_openapi_3_and_needs_no_credentials(document):
    validate(document)
    assert document["openapi"].startswith("3.")


def test_every_route_of_the_app_is_in_the_document(app, document):
    routes = {
        (FlaskPlugin.flaskpath2openapi(rule.rule), method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    assert routes <= documented, routes - documented
    assert documented == routes
    assert {(path, "GET") for path in SECURED + OPEN} <= documented


def test_security_schemes_and_who_needs_them(document):
    schemes = document["components"]["securitySchemes"]
    assert {scheme["scheme"] for scheme in schemes.values()} == {"bearer"}
    assert {scheme["bearerFormat"] for scheme in schemes.values()} == {"JWT", "aptr_…"}
    assert document["security"] == [{"dashboardJwt": []}, {"apiKey": []}]
    for path in SECURED:
        operation = document["paths"][path]["get"]
        assert "security" not in operation and "401" in operation["responses"]
    for path in OPEN:
        assert document["paths"][path]["get"]["security"] == []


def parameters(document, path):
    """An operation's parameters by name."""
    return {p["name"]: p for p in document["paths"][path]["get"].get("parameters", [])}


def test_parameters_say_their_defaults_bounds_and_clamping(document):
    limit = parameters(document, "/api/v1/uploads/recent")["limit"]
    assert limit["schema"] == {"type": "integer", "default": 10, "minimum": 1}
    assert "above 50 are treated as 50" in limit["description"]
    listed = parameters(document, "/api/v1/uploads")
    assert listed["page"]["schema"] == {
        "type": "integer",
        "default": 1,
        "minimum": 1,
        "maximum": 2147483647,
    }
    assert listed["pageSize"]["schema"]["default"] == 20
    assert "above 100 are treated as 100" in listed["pageSize"]["description"]
    assert "parameters" not in document["paths"]["/api/v1/keys/current"]["get"]
    assert list(parameters(document, "/api/v1/stats")) == ["projectId"]


FILTERS = {
    "/api/v1/sessions": {"projectId", "status", "tag", "from", "to"},
    "/api/v1/uploads": {"projectId", "status", "source", "destinationType", "from", "to"},
}


def test_every_list_documents_its_filters_and_only_its_own(document):
    for family, filters in FILTERS.items():
        assert set(parameters(document, family + "/recent")) == filters | {"limit"}
        assert set(parameters(document, family)) == filters | {
            "page",
            "pageSize",
            "cursor",
            "format",
        }
        for path in (family, family + "/recent"):
            found = parameters(document, path)
            assert all(p["in"] == "query" and not p["required"] for p in found.values())
            assert found["projectId"]["schema"] == {"type": "string", "format": "uuid"}
            for bound in ("from", "to"):
                assert found[bound]["schema"] == {"type": "string", "format": "date-time"}
            assert "404" in document["paths"][path]["get"]["responses"]
    sessions = parameters(document, "/api/v1/sessions")
    assert sessions["status"]["schema"]["pattern"] == (
        "^(pending|active|expired|completed|failed)(,(pending|active|expired|completed|failed))*$"
    )
    assert sessions["tag"]["schema"] == {"type": "string", "pattern": "^[^\\x00]*$"}
    uploads = parameters(document, "/api/v1/uploads")
    assert "stored_only" in uploads["status"]["schema"]["pattern"]
    assert "google_photos" in uploads["source"]["schema"]["pattern"]
    assert "[a-z][a-z0-9_]{0,31}" in uploads["destinationType"]["schema"]["pattern"]
    assert uploads["cursor"]["schema"] == {"type": "string"}
    assert uploads["format"]["schema"]["enum"] == ["json", "csv", "ndjson"]


def test_single_rows_and_the_current_key_are_documented(document):
    for path, name in (
        ("/api/v1/sessions/{session_id}", "session_id"),
        ("/api/v1/uploads/{upload_id}", "upload_id"),
    ):
        (parameter,) = document["paths"][path]["get"]["parameters"]
        assert (parameter["name"], parameter["in"], parameter["required"]) == (name, "path", True)
        assert parameter["schema"] == {"type": "string", "format": "uuid"}
        assert "404" in document["paths"][path]["get"]["responses"]
    assert "400" in document["paths"]["/api/v1/keys/current"]["get"]["responses"]


def schema_of(document, path, media="application/json"):
    return document["paths"][path]["get"]["responses"]["200"]["content"][media]["schema"]


def test_answers_have_exact_types_and_nullability(document):
    schemas = document["components"]["schemas"]
    session = schemas["SessionRow"]
    assert session["required"] == list(session["properties"])
    assert session["properties"]["tags"] == {
        "type": "array",
        "items": {"type": "string"},
        "nullable": True,
    }
    assert session["properties"]["createdAt"] == {"type": "string", "format": "date-time"}
    assert session["properties"]["status"]["enum"] == [
        "pending",
        "active",
        "expired",
        "completed",
        "failed",
    ]
    assert schemas["UploadRow"]["properties"]["status"]["enum"] == [
        "stored_only",
        "delivered",
        "pending",
        "failed",
        "partial",
    ]
    assert schemas["Error"]["required"] == ["error", "message"]
    for path in SECURED:
        codes = set(document["paths"][path]["get"]["responses"])
        assert {"200", "304", "401", "405", "500", "503"} <= codes


def test_new_answers_are_documented_exactly(document):
    schemas = document["components"]["schemas"]
    detail = schemas["UploadDetail"]
    assert list(detail["properties"]) == list(schemas["UploadRow"]["properties"]) + ["deliveries"]
    assert detail["required"] == list(detail["properties"])
    assert schemas["Delivery"]["properties"]["status"]["enum"] == ["pending", "sent", "failed"]
    assert list(schemas["Delivery"]["properties"]) == ["destinationId", "type", "status"]
    for row in ("SessionRow", "UploadRow"):
        cursor_page = schemas[f"{row}CursorPage"]
        assert list(cursor_page["properties"]) == ["data", "nextCursor"]
        assert cursor_page["properties"]["nextCursor"]["nullable"] is True
    key = schemas["ApiKey"]
    assert list(key["properties"]) == [
        "id",
        "name",
        "projectId",
        "projectName",
        "createdAt",
        "expiresAt",
    ]
    assert key["properties"]["expiresAt"]["nullable"] is True
    for path, row in zip(LISTS, ("SessionRow", "UploadRow"), strict=True):
        assert schema_of(document, path)["oneOf"] == [
            {"$ref": f"#/components/schemas/{row}Page"},
            {"$ref": f"#/components/schemas/{row}CursorPage"},
        ]
        content = document["paths"][path]["get"]["responses"]["200"]["content"]
        assert {"application/json", "text/csv", "application/x-ndjson"} <= set(content)
    assert schema_of(document, "/api/v1/uploads/{upload_id}") == {
        "$ref": "#/components/schemas/UploadDetail"
    }
    assert schema_of(document, "/api/v1/keys/current") == {"$ref": "#/components/schemas/ApiKey"}


def test_answers_the_fuzzing_found_are_in_the_document(app, loaded):
    """Answers the service gives (found by the fuzzing below) that the document leaves out,
    each checked directly so that all of them show at once:
    - a tag cannot hold NUL (PostgreSQL text cannot store it), so `tag=a%00b` is a 400:
      the document must not offer it as a valid tag;
    - a Swagger UI file that is not one of the three is a 404: it must be listed;
    - every answer with an ETag is a 304 for If-None-Match: it must be listed."""
    client = app.test_client()
    document = client.get(DOCUMENT).get_json()
    missing = []
    for path in ("/api/v1/sessions/recent", "/api/v1/sessions"):
        response = client.get(path, headers=bearer(KEY), query_string={"tag": "a\x00b"})
        assert response.status_code == 400, response.get_data(as_text=True)
        tag = parameters(document, path)["tag"]["schema"]
        if Draft4Validator(tag).is_valid("a\x00b"):
            missing.append(f"GET {path}?tag=a%00b is 400, but the tag schema {tag} admits it")
    assert client.get("/api/v1/docs/index.html").status_code == 404
    if "404" not in document["paths"]["/api/v1/docs/{asset}"]["get"]["responses"]:
        missing.append("GET /api/v1/docs/index.html is 404, undocumented")
    for path, example in (
        ("/api/v1/openapi.json", None),
        ("/api/v1/docs", None),
        ("/api/v1/docs/{asset}", "/api/v1/docs/swagger-ui.css"),
        ("/healthz", None),
        ("/readyz", None),
    ):
        etag = client.get(example or path).headers.get("ETag")
        if etag is None:
            continue
        again = client.get(example or path, headers={"If-None-Match": etag})
        assert again.status_code == 304
        if "304" not in document["paths"][path]["get"]["responses"]:
            missing.append(f"GET {example or path} with If-None-Match is 304, undocumented")
    assert not missing, "\n".join(missing)


CREDENTIALS = ["api key", "dashboard jwt"]


def credential_for(kind):
    return KEY if kind == "api key" else make_token(OWNER)


@pytest.fixture(params=CREDENTIALS)
def credential(request):
    return credential_for(request.param)


@pytest.fixture
def fuzzed_schema(app, loaded, credential):
    """The document, loaded by schemathesis from the app itself, with valid credentials and
    the world's ids, projects, tags and destination types to draw from."""
    config = SchemathesisConfig.from_dict(
        {
            "headers": {"Authorization": f"Bearer {credential}"},
            "dictionaries": {
                name: {"values": values} for name, values in dictionaries(DOC).items()
            },
            "parameters": {
                parameter: {"dictionary": name, "probability": 0.5}
                for parameter, name in BINDINGS.items()
            },
        }
    )
    return schemathesis.openapi.from_wsgi(DOCUMENT, app, config=config)


def with_a_real_cursor(client, credential, case):
    """A cursor is opaque: one the service never gave is rightly refused, so a generated
    non-empty cursor becomes a real one of the same walk (the next page after the first
    row under the case's filters), or the start of the walk when there is no next page."""
    if case.path not in LISTS or not (case.query or {}).get("cursor"):
        return
    filters = {k: v for k, v in case.query.items() if k not in ("cursor", "page", "format")}
    first = client.get(
        case.path,
        headers=bearer(credential),
        query_string={**filters, "cursor": "", "pageSize": "1"},
    )
    cursor = first.get_json().get("nextCursor") if first.status_code == 200 else None
    case.query["cursor"] = cursor or ""


def with_a_valid_range(case):
    """A series' range is a pair: `to` after `from`, at most 1,000 buckets, within the
    calendar. The document cannot say so, so a generated pair that is not one becomes the
    day after `from` (or the 30 days before 2026-12-01)."""
    if case.path != "/api/v1/stats/series":
        return
    query = case.query or {}
    ends = []
    for name in ("from", "to"):
        try:
            ends.append(datetime.fromisoformat(query[name]) if query.get(name) else None)
        except ValueError:
            return  # not a date: refused as the document says
    start, end = ends
    plausible = all(e is None or 1900 < e.year < 2100 for e in ends)
    # Without `to`, the range runs from `from` to now: long, unless `from` is recent.
    end = end or (datetime.now(UTC) if start else None)
    if plausible and (start is None or timedelta(0) < end - start < timedelta(days=300)):
        return
    base = start if start and 1900 < start.year < 2100 else datetime(2026, 11, 1, tzinfo=UTC)
    query["from"], query["to"] = base.isoformat(), (base + timedelta(days=1)).isoformat()


def describe(exc):
    """A failure as schemathesis words it (with the request that reproduces it)."""
    return f"{type(exc).__name__}: {exc}"[:3000]


@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda mode: mode.value
)
def test_fuzzing_from_the_document_finds_no_fault(app, fuzzed_schema, credential, mode):
    """Every operation, 15 examples each way (25 for the filtered lists): no 5xx, every
    answer as documented, negative data refused with 4xx, and no answer to a request whose
    credentials were left out. Every 200 that carries an ETag is asked again with
    If-None-Match: a 304, checked against the document too.

    keys/current answers a dashboard token with a documented 400 (there is no key to
    describe); for that one pairing the exact 400 is asserted instead of the generic
    "valid data is accepted"."""
    client = app.test_client()
    operations = [result.ok() for result in fuzzed_schema.get_all_operations()]
    assert set(SECURED + ["/healthz", "/readyz"]) <= {op.path for op in operations}
    if mode is GenerationMode.NEGATIVE:  # only parameters can be made invalid
        operations = [op for op in operations if op.query or op.path_parameters]
    is_jwt = not credential.startswith("aptr_")
    failures = []
    for operation in operations:
        examples = 25 if operation.path in LISTS or operation.path.endswith("/recent") else 15
        refused_by_design = is_jwt and operation.path == "/api/v1/keys/current"

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            if mode is GenerationMode.POSITIVE:
                with_a_real_cursor(client, credential, case)
                with_a_valid_range(case)
            if refused_by_design:  # noqa: B023 (check runs within this iteration)
                response = case.call()
                case.validate_response(
                    response, checks=[c for c in CHECKS if c is not positive_data_acceptance]
                )
                assert response.status_code == 400
                assert response.json()["error"] == "invalid_parameter"
                return
            response = case.call_and_validate(checks=CHECKS)
            etag = response.headers.get("etag")  # lowercase keys, lists of values
            if response.status_code == 200 and etag:
                again = case.call(headers={"If-None-Match": etag[0]})
                case.validate_response(again, checks=CHECKS)
                assert again.status_code == 304 and again.content == b""

        try:
            check()
        # Every operation is fuzzed and all their faults reported (schemathesis raises a
        # BaseExceptionGroup of its failures).
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}:\n{describe(exc)}")
    assert not failures, "\n\n".join(failures)


def test_the_browsable_page_uses_only_assets_served_here(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "/api/v1/openapi.json" in html and "http://" not in html and "https://" not in html
    for asset, mimetype in [
        ("swagger-ui.css", "text/css"),
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui-standalone-preset.js", "text/javascript"),
    ]:
        assert f"/api/v1/docs/{asset}" in html
        response = client.get(f"/api/v1/docs/{asset}")
        assert response.status_code == 200 and response.mimetype == mimetype
        assert len(response.get_data()) > 1000
    for other in ("index.html", "../config.py", "swagger-initializer.js"):
        assert client.get(f"/api/v1/docs/{other}").status_code == 404
