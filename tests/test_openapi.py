"""The OpenAPI document (openapi.py): valid, complete, and what the service really answers.

The fuzzing runs schemathesis in process against the WSGI app with valid credentials:
positive and negative examples for every operation (bounded, so the suite stays fast),
checking for server errors, answers that break the document, negative data accepted,
and requests without credentials answered.
"""

import pytest
import schemathesis
from apispec_webframeworks.flask import FlaskPlugin
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.config import SchemathesisConfig
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, ignored_auth,
                                               negative_data_rejection,
                                               positive_data_acceptance,
                                               response_schema_conformance,
                                               status_code_conformance, unsupported_method)

from tests.builders import NOW, World
from tests.conftest import ensure_loaded, make_token

DOCUMENT = "/api/v1/openapi.json"
SECURED = ["/api/v1/sessions/recent", "/api/v1/sessions", "/api/v1/uploads/recent",
           "/api/v1/uploads", "/api/v1/stats"]
OPEN = ["/healthz", "/readyz", DOCUMENT]
# Named rather than left to schemathesis' defaults, so the test says what it proves.
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance, negative_data_rejection, positive_data_acceptance,
          ignored_auth, unsupported_method]


def build_world():
    """A small world in which every field has a value to check against the document."""
    world = World()
    owner = world.user("Fuzz Owner")
    project = world.project(owner, "Fuzz")
    key = world.api_key(project)
    for index, destinations in enumerate([(), ("webhook",), ("s3", "webhook")]):
        session = world.session(project, created_at=NOW, tags=["t"] if index else None,
                                destinations=destinations)
        statuses = [("sent", "failed", "pending")[index % 3]] * len(destinations)
        world.upload(session, statuses)
    return world.doc, owner, key


DOC, OWNER, KEY = build_world()


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
    routes = {(FlaskPlugin.flaskpath2openapi(rule.rule), method) for rule in app.url_map.iter_rules()
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method.upper()) for path, item in document["paths"].items()
                  for method in item}
    assert routes <= documented, routes - documented
    assert documented == routes


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


def test_parameters_say_their_defaults_bounds_and_clamping(document):
    limit, = document["paths"]["/api/v1/uploads/recent"]["get"]["parameters"]
    assert (limit["name"], limit["schema"]) == ("limit", {"type": "integer", "default": 10,
                                                         "minimum": 1})
    assert "above 50 are treated as 50" in limit["description"]
    page, size = document["paths"]["/api/v1/uploads"]["get"]["parameters"]
    assert page["schema"] == {"type": "integer", "default": 1, "minimum": 1,
                              "maximum": 2147483647}
    assert size["schema"]["default"] == 20 and "above 100 are treated as 100" in size["description"]
    assert "parameters" not in document["paths"]["/api/v1/stats"]["get"]


def test_answers_have_exact_types_and_nullability(document):
    schemas = document["components"]["schemas"]
    session = schemas["SessionRow"]
    assert session["required"] == list(session["properties"])
    assert session["properties"]["tags"] == {"type": "array", "items": {"type": "string"},
                                             "nullable": True}
    assert session["properties"]["createdAt"] == {"type": "string", "format": "date-time"}
    assert session["properties"]["status"]["enum"] == ["pending", "active", "expired",
                                                       "completed", "failed"]
    assert schemas["UploadRow"]["properties"]["status"]["enum"] == [
        "stored_only", "delivered", "pending", "failed", "partial"]
    assert schemas["Error"]["required"] == ["error", "message"]
    for path in SECURED:
        codes = set(document["paths"][path]["get"]["responses"])
        assert {"200", "401", "405", "500", "503"} <= codes


@pytest.fixture(params=["api key", "dashboard jwt"])
def fuzzed_schema(request, app, loaded):
    """The document, loaded by schemathesis from the app itself, with valid credentials."""
    credential = KEY if request.param == "api key" else make_token(OWNER)
    config = SchemathesisConfig.from_dict({"headers": {"Authorization": f"Bearer {credential}"}})
    return schemathesis.openapi.from_wsgi(DOCUMENT, app, config=config)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=lambda mode: mode.value)
def test_fuzzing_from_the_document_finds_no_fault(fuzzed_schema, mode):
    """Every operation, 15 examples each way: no 5xx, every answer as documented, negative
    data refused with 4xx, and no answer to a request whose credentials were left out."""
    operations = [result.ok() for result in fuzzed_schema.get_all_operations()]
    assert set(SECURED + ["/healthz", "/readyz"]) <= {op.path for op in operations}
    if mode is GenerationMode.NEGATIVE:  # only parameters can be made invalid
        operations = [op for op in operations if op.query]
    for operation in operations:
        @settings(max_examples=15, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            case.call_and_validate(checks=CHECKS)

        check()


def test_the_browsable_page_uses_only_assets_served_here(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "/api/v1/openapi.json" in html and "http://" not in html and "https://" not in html
    for asset, mimetype in [("swagger-ui.css", "text/css"),
                            ("swagger-ui-bundle.js", "text/javascript"),
                            ("swagger-ui-standalone-preset.js", "text/javascript")]:
        assert f"/api/v1/docs/{asset}" in html
        response = client.get(f"/api/v1/docs/{asset}")
        assert response.status_code == 200 and response.mimetype == mimetype
        assert len(response.get_data()) > 1000
    for other in ("index.html", "../config.py", "swagger-initializer.js"):
        assert client.get(f"/api/v1/docs/{other}").status_code == 404
