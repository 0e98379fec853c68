"""SPEC §3 authentication: every way a credential can fail is one generic 401; valid ones pass."""

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app import create_app
from tests.builders import NOW, World, new_id
from tests.conftest import TEST_SECRET, bearer, make_token
from tests.spec import ENDPOINTS

PATH = "/api/v1/sessions/recent"
ISSUER, AUDIENCE = "https://apertur.test", "dashboard"


def assert_unauthorized(response, credential=None):
    """The one 401 of SPEC §3: JSON envelope, Bearer challenge, credential never echoed."""
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")
    body = response.get_json()
    assert list(body) in (["error", "message"], ["error", "message", "requestId"])
    assert body["error"] == "unauthorized"
    assert isinstance(body["message"], str) and body["message"]
    if credential:
        assert credential not in response.get_data(as_text=True)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def claims(sub, **extra):
    now = int(time.time())
    return {"sub": sub, "type": "access", "iat": now, "exp": now + 3600, **extra}


def hand_token(payload, alg="HS256", secret=TEST_SECRET):
    """A JWT built by hand, so PyJWT's own refusals (alg none, PEM as HMAC key) cannot stop us."""
    signing_input = f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(payload)}"
    if alg == "none":
        return signing_input + "."
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    digest = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(digest)}"


def build_tenant():
    """One user owning one project with one session, and API keys in every lifecycle state."""
    world = World()
    user = world.user("Ada")
    project = world.project(user, "Acme")
    world.session(project)
    keys = {
        "valid": world.api_key(project),
        "revoked_past": world.api_key(project, revoked_at=NOW - timedelta(days=1)),
        "revoked_future": world.api_key(project, revoked_at=NOW + timedelta(days=1)),
        "expired": world.api_key(project, expires_at=NOW - timedelta(days=1)),
        "expires_future": world.api_key(project, expires_at=NOW + timedelta(days=1)),
    }
    return SimpleNamespace(doc=world.doc, user=user, project=project, keys=keys)


@pytest.fixture
def client(app):
    """The test client without conftest's per-test TRUNCATE (these tests never write)."""
    return app.test_client()


# --- a representative subset on every endpoint ---------------------------------------------

REPRESENTATIVE = {
    "no credential": lambda t: None,
    "garbage token": lambda t: "abc.def",
    "expired token": lambda t: make_token(t.user, expires_in=-3600),
    "wrong secret": lambda t: make_token(t.user, secret="not-the-secret-0123456789-abcdef"),
    "user does not exist": lambda t: make_token(new_id()),
    "unknown api key": lambda t: "aptr_" + "x" * 43,
    "revoked api key": lambda t: t.keys["revoked_past"],
}


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("case", REPRESENTATIVE)
def test_bad_credential_is_401_on_every_endpoint(get, tenant, path, case):
    credential = REPRESENTATIVE[case](tenant)
    assert_unauthorized(get(path, credential), credential)


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("kind", ["jwt", "api_key"])
def test_valid_credential_is_200_on_every_endpoint(get, tenant, path, kind):
    credential = make_token(tenant.user) if kind == "jwt" else tenant.keys["valid"]
    assert get(path, credential).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/sessions?page=abc",
        "/api/v1/uploads?pageSize=-1",
        "/api/v1/sessions/recent?limit=0",
        "/api/v1/uploads/recent?limit=x",
    ],
)
def test_authentication_comes_before_parameter_validation(get, tenant, path):
    assert_unauthorized(get(path))


# --- the Authorization header itself -------------------------------------------------------

# Each case: the raw header, and the part of it that must never be echoed.
HEADERS = {
    "Basic scheme": lambda t: ("Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    "Token scheme": lambda t: ("Token abcdefgh", "abcdefgh"),
    "Bearer alone": lambda t: ("Bearer", None),
    "Bearer and empty credential": lambda t: ("Bearer ", None),
    "garbage token": lambda t: ("Bearer abc.def", "abc.def"),
    "two-part token": lambda t: with_bearer(make_token(t.user).rsplit(".", 1)[0]),
    "two credentials": lambda t: ("Bearer a b", None),
    "two bearer credentials": lambda t: with_bearer(
        f"{make_token(t.user)}, Bearer {make_token(t.user)}"
    ),
    "valid token without scheme": lambda t: (make_token(t.user), make_token(t.user)),
    "valid key without scheme": lambda t: (t.keys["valid"], t.keys["valid"]),
    "valid key and token": lambda t: (
        f"Bearer {t.keys['valid']} {make_token(t.user)}",
        t.keys["valid"],
    ),
}


def with_bearer(credential):
    return f"Bearer {credential}", credential


@pytest.mark.parametrize("case", HEADERS)
def test_malformed_authorization_header_is_401(client, tenant, case):
    header, secret = HEADERS[case](tenant)
    assert_unauthorized(client.get(PATH, headers={"Authorization": header}), secret)


def test_missing_authorization_header_is_401(client, tenant):
    assert_unauthorized(client.get(PATH))


# --- JWT claims and signatures -------------------------------------------------------------

TOKENS = {
    "alg none": lambda t: hand_token(claims(t.user), alg="none"),
    "HS512 with the right secret": lambda t: make_token(t.user, algorithm="HS512"),
    "HS384 with the right secret": lambda t: make_token(t.user, algorithm="HS384"),
    "wrong secret": lambda t: make_token(t.user, secret="another-secret-0123456789-abcdefgh"),
    "tampered payload": lambda t: ".".join(
        [
            make_token(t.user).split(".")[0],
            segment(claims(new_id())),
            make_token(t.user).split(".")[2],
        ]
    ),
    "expired": lambda t: make_token(t.user, expires_in=-3600),
    "missing exp": lambda t: make_token(t.user, expires_in=None),
    "nbf in the future": lambda t: make_token(t.user, nbf=int(time.time()) + 3600),
    "refresh token": lambda t: make_token(t.user, type="refresh"),
    "sub missing": lambda t: make_token(None),
    "sub an integer": lambda t: hand_token(claims(12345)),
    "sub not a uuid": lambda t: make_token("ada@example.com"),
    "sub a uuid of no user": lambda t: make_token(new_id()),
}


# The test secret is deliberately short for HS384/HS512; PyJWT's warning about it is noise here.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("case", TOKENS)
def test_bad_token_is_401(get, tenant, case):
    token = TOKENS[case](tenant)
    assert_unauthorized(get(PATH, token), token)


def test_valid_token_of_existing_user_is_200(get, tenant):
    response = get(PATH, make_token(tenant.user))
    assert response.status_code == 200
    assert len(response.get_json()) == 1


def test_a_token_accepted_once_is_still_refused_once_it_expires(get, tenant):
    """Verified tokens are remembered per process; their expiry is checked on every use."""
    token = make_token(tenant.user, expires_in=None, exp=int(time.time()) + 2)
    assert get(PATH, token).status_code == 200
    assert get(PATH, token).status_code == 200  # now served from the memo
    time.sleep(
        max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] - time.time() + 0.05)
    )
    assert_unauthorized(get(PATH, token), token)


def test_a_token_not_yet_valid_is_refused_until_its_nbf(get, tenant):
    token = make_token(tenant.user, nbf=int(time.time()) + 2)
    assert_unauthorized(get(PATH, token), token)
    assert_unauthorized(get(PATH, token), token)  # refusals are never remembered
    time.sleep(
        max(0.0, jwt.decode(token, options={"verify_signature": False})["nbf"] - time.time() + 0.05)
    )
    assert get(PATH, token).status_code == 200


@pytest.mark.parametrize("header", ["Bearer  {}", "bearer {}", "BEARER {}", " Bearer {} "])
def test_scheme_is_case_insensitive_and_may_be_followed_by_several_spaces(client, tenant, header):
    # RFC 6750: "Bearer" 1*SP b64token, and auth schemes are case-insensitive (RFC 9110).
    response = client.get(PATH, headers={"Authorization": header.format(make_token(tenant.user))})
    assert response.status_code == 200


# White space that is not HTTP's optional white space (RFC 9110 OWS is SP and HTAB only),
# though Python's str.strip() would remove every one of them.
NOT_OWS = {
    "U+00A0 no-break space": "\u00a0",
    "U+0085 next line": "\u0085",
    "U+001C file separator": "\x1c",
    "U+001D group separator": "\x1d",
    "U+001E record separator": "\x1e",
    "U+001F unit separator": "\x1f",
    "U+3000 ideographic space": "\u3000",
}
PLACES = {
    "after the credential": "Bearer {credential}{space}",
    "before the credential": "Bearer {space}{credential}",
    "in place of the space after Bearer": "Bearer{space}{credential}",
    "before the scheme": "{space}Bearer {credential}",
}


def credential_of(tenant, kind):
    return tenant.keys["valid"] if kind == "API key" else make_token(tenant.user)


@pytest.mark.parametrize("kind", ["API key", "JWT"])
@pytest.mark.parametrize("space", NOT_OWS)
@pytest.mark.parametrize("place", PLACES)
def test_a_credential_with_unicode_white_space_is_not_that_credential(
    client, tenant, kind, space, place
):
    """The header is compared exactly as sent: only SP and HTAB around it are trimmed."""
    credential = credential_of(tenant, kind)
    header = PLACES[place].format(credential=credential, space=NOT_OWS[space])
    assert_unauthorized(client.get(PATH, headers={"Authorization": header}), credential)


@pytest.mark.parametrize("kind", ["API key", "JWT"])
@pytest.mark.parametrize("header", ["Bearer {}\t", "\tBearer {}", " \t Bearer {} \t "])
def test_spaces_and_tabs_around_the_header_are_trimmed(client, tenant, kind, header):
    credential = credential_of(tenant, kind)
    response = client.get(PATH, headers={"Authorization": header.format(credential)})
    assert response.status_code == 200, response.get_json()


def test_hand_built_hs256_token_is_accepted(get, tenant):
    # Control for the hand-built cases: the builder itself makes tokens the app accepts.
    assert get(PATH, hand_token(claims(tenant.user))).status_code == 200


# --- credentials anywhere but the Authorization header -------------------------------------


@pytest.mark.parametrize("param", ["jwt", "access_token", "token", "api_key"])
@pytest.mark.parametrize("kind", ["jwt", "api_key"])
def test_credential_in_query_string_is_401(client, tenant, param, kind):
    credential = make_token(tenant.user) if kind == "jwt" else tenant.keys["valid"]
    response = client.get(PATH, query_string={param: credential})
    assert_unauthorized(response, credential)


@pytest.mark.parametrize("cookie", ["access_token_cookie", "access_token", "jwt", "token"])
def test_token_in_cookie_is_401(client, tenant, cookie):
    token = make_token(tenant.user)
    client.set_cookie(cookie, token)
    assert_unauthorized(client.get(PATH), token)


# --- API keys ------------------------------------------------------------------------------

BAD_KEYS = {
    "unknown": lambda t: "aptr_" + "Q" * 43,
    "revoked in the past": lambda t: t.keys["revoked_past"],
    "expired": lambda t: t.keys["expired"],
    "uppercase prefix": lambda t: "APTR_" + t.keys["valid"][len("aptr_") :],
    "one extra character": lambda t: t.keys["valid"] + "a",
    "last character dropped": lambda t: t.keys["valid"][:-1],
    "prefix alone": lambda t: "aptr_",
}


@pytest.mark.parametrize("case", BAD_KEYS)
def test_bad_api_key_is_401(get, tenant, case):
    key = BAD_KEYS[case](tenant)
    assert_unauthorized(get(PATH, key), key)


@pytest.mark.parametrize("case", ["valid", "revoked_future", "expires_future"])
def test_usable_api_key_is_200(get, tenant, case):
    response = get(PATH, tenant.keys[case])
    assert response.status_code == 200
    assert len(response.get_json()) == 1


# --- RS256 and ES256 configurations --------------------------------------------------------


def new_private_key(algorithm):
    if algorithm.startswith("RS"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def private_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def public_pem(key):
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def extra_app(app, **changes):
    """A second app on the same database with changed settings; close its pool when done."""
    return create_app(replace(app.config["SETTINGS"], **changes))


def _signed_app(app, algorithm):
    key = new_private_key(algorithm)
    extra = extra_app(
        app,
        jwt_algorithm=algorithm,
        jwt_public_key=public_pem(key),
        jwt_private_key=private_pem(key),
        jwt_secret_key=None,
    )
    return SimpleNamespace(
        app=extra, algorithm=algorithm, key=key, other=new_private_key(algorithm)
    )


@pytest.fixture(scope="module")
def rs256_app(app):
    signed = _signed_app(app, "RS256")
    yield signed
    signed.app.extensions["db_pool"].close()


@pytest.fixture(scope="module")
def es256_app(app):
    signed = _signed_app(app, "ES256")
    yield signed
    signed.app.extensions["db_pool"].close()


@pytest.fixture(params=["RS256", "ES256"])
def signed(request):
    return request.getfixturevalue(f"{request.param.lower()}_app")


def signed_get(signed, token):
    return signed.app.test_client().get(PATH, headers=bearer(token))


def test_asymmetric_token_signed_with_the_configured_key_is_200(signed, tenant):
    token = make_token(tenant.user, secret=private_pem(signed.key), algorithm=signed.algorithm)
    response = signed_get(signed, token)
    assert response.status_code == 200
    assert len(response.get_json()) == 1


def test_asymmetric_config_refuses_hs256_signed_with_the_public_key(signed, tenant):
    # The classic algorithm-confusion attack: the public key used as an HMAC secret.
    token = hand_token(claims(tenant.user), secret=public_pem(signed.key))
    assert_unauthorized(signed_get(signed, token), token)


def test_asymmetric_config_refuses_another_key_pair(signed, tenant):
    token = make_token(tenant.user, secret=private_pem(signed.other), algorithm=signed.algorithm)
    assert_unauthorized(signed_get(signed, token), token)


def test_asymmetric_config_refuses_hs256_with_the_default_secret(signed, tenant):
    token = make_token(tenant.user)
    assert_unauthorized(signed_get(signed, token), token)


def test_asymmetric_config_refuses_alg_none(signed, tenant):
    token = hand_token(claims(tenant.user), alg="none")
    assert_unauthorized(signed_get(signed, token), token)


def test_asymmetric_config_still_applies_the_claim_rules(signed, tenant):
    key = private_pem(signed.key)
    for token in (
        make_token(tenant.user, secret=key, algorithm=signed.algorithm, expires_in=-3600),
        make_token(tenant.user, secret=key, algorithm=signed.algorithm, type="refresh"),
        make_token(new_id(), secret=key, algorithm=signed.algorithm),
    ):
        assert_unauthorized(signed_get(signed, token), token)


@pytest.mark.parametrize("algorithm", ["RS512", "PS256"])
def test_rs256_config_refuses_other_rsa_algorithms_with_the_right_key(rs256_app, tenant, algorithm):
    token = make_token(tenant.user, secret=private_pem(rs256_app.key), algorithm=algorithm)
    assert_unauthorized(signed_get(rs256_app, token), token)


def test_api_keys_still_work_under_an_asymmetric_config(signed, tenant):
    assert signed_get(signed, tenant.keys["valid"]).status_code == 200


# --- issuer and audience -------------------------------------------------------------------


@pytest.fixture(scope="module")
def issuer_app(app):
    extra = extra_app(app, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    yield extra
    extra.extensions["db_pool"].close()


def test_token_with_the_configured_issuer_and_audience_is_200(issuer_app, tenant):
    token = make_token(tenant.user, iss=ISSUER, aud=AUDIENCE)
    response = issuer_app.test_client().get(PATH, headers=bearer(token))
    assert response.status_code == 200


ISSUER_CASES = {
    "wrong issuer": {"iss": "https://evil.test", "aud": AUDIENCE},
    "missing issuer": {"aud": AUDIENCE},
    "wrong audience": {"iss": ISSUER, "aud": "billing"},
    "missing audience": {"iss": ISSUER},
}


@pytest.mark.parametrize("case", ISSUER_CASES)
def test_token_with_wrong_issuer_or_audience_is_401(issuer_app, tenant, case):
    token = make_token(tenant.user, **ISSUER_CASES[case])
    response = issuer_app.test_client().get(PATH, headers=bearer(token))
    assert_unauthorized(response, token)
