"""Who is calling, and reads limited to the projects that caller may see.

Two credentials are accepted as `Authorization: Bearer <credential>`: an API key
(`aptr_…`, looked up by its SHA-256 digest; scope is its project) or a dashboard
JWT verified by flask-jwt-extended (scope is every project the user owns or is a
member of). The scope itself is defined once, in SQL (caller_projects), and resolved
inside every read. Every failure is the same JSON 401; the reason given stays generic.
"""

import functools
import hashlib
import re
import time
from dataclasses import dataclass

import jwt
from flask import current_app, g, request
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException

import database
from errors import Unauthorized
from queries import callers

API_KEY_PREFIX = "aptr_"
# Exactly one credential of printable ASCII after the scheme and its spaces (RFC 6750).
_BEARER = re.compile(r"Bearer +([!-~]+)", re.IGNORECASE)
# The only white space HTTP allows around a field value (RFC 9110 OWS: SP and HTAB). A
# plain str.strip() would also drop Unicode white space (U+00A0, U+0085, U+3000, …), so a
# key followed by a no-break space would pass as that key.
_OPTIONAL_WHITESPACE = " \t"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_BAD_TOKEN = "Invalid or expired token."
_BAD_KEY = "Invalid or inactive API key."


@dataclass(frozen=True)
class Caller:
    """A credential that passed its offline checks: a user (verified JWT) or an API key
    (by digest). Whether it is still good (user exists; key neither revoked nor expired)
    is asked of the database with every read, in the same round trip."""

    kind: str
    user_id: str | None = None
    key_hash: bytes | None = None

    @property
    def scope(self):
        """The arguments every scoped query passes to sql caller_projects()."""
        return {"user_id": self.user_id, "key_hash": self.key_hash}


def hash_api_key(key):
    """The SHA-256 digest under which an API key is stored."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def bearer_credential():
    """The single bearer credential of the request; raises Unauthorized otherwise."""
    header = request.headers.get("Authorization", "").strip(_OPTIONAL_WHITESPACE)
    if not header:
        raise Unauthorized(
            "Authentication required: send Authorization: Bearer <token>.", "missing_credential"
        )
    match = _BEARER.fullmatch(header)
    if match is None:
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.", "malformed_header")
    return match.group(1)


def verified_claims(token):
    """The claims of a valid dashboard access token; raises Unauthorized otherwise."""
    try:
        claims = decode_token(token)
    except (JWTExtendedException, jwt.PyJWTError) as exc:
        reason = "expired_token" if isinstance(exc, jwt.ExpiredSignatureError) else None
        raise Unauthorized(_BAD_TOKEN, reason or "invalid_token") from None
    if "exp" not in claims:
        raise Unauthorized(_BAD_TOKEN)
    if claims.get("type") != "access":
        raise Unauthorized("Only access tokens are accepted.", "wrong_token_type")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not _UUID.fullmatch(subject):
        raise Unauthorized(_BAD_TOKEN)
    return claims


def verified_token_cache(maxsize=4096):
    """A per-app memo of verified_claims: a dashboard sends the same token on every call,
    and verifying it (PyJWT and flask-jwt-extended) costs ~0.3 ms, more than the rest of
    a request's Python. Keyed by the exact token text; refusals are never kept."""
    return functools.lru_cache(maxsize=maxsize)(verified_claims)


def current_claims(token):
    """The claims of a valid access token, verified once per process; its expiry is
    checked again on every use (nbf needs no second look: time only moves forward)."""
    claims = current_app.extensions["verified_tokens"](token)
    if claims["exp"] <= time.time() - current_app.config["JWT_DECODE_LEEWAY"]:
        raise Unauthorized(_BAD_TOKEN, "expired_token")
    return claims


def require_caller():
    """before_request hook: the request's caller, checked offline, in g.caller.

    A forged or expired token costs no database work and is refused even while the
    database is down.
    """
    credential = bearer_credential()
    if credential.startswith(API_KEY_PREFIX):
        g.caller = Caller(kind="api_key", key_hash=hash_api_key(credential))
    else:
        g.caller = Caller(kind="user", user_id=current_claims(credential)["sub"].lower())


def read_in_scope(send, begin=None, **params):
    """The rows of `send(conn, user_id=…, key_hash=…, **params)` for the current caller.

    The statement goes in one round trip with the check that the caller is still good;
    raises Unauthorized when it is not (its rows are then discarded; they would be
    empty anyway, as the scope of an unknown caller is empty). `begin`, when given, opens
    a transaction first (a BEGIN statement), which the check and the statement are then in.
    """
    caller = g.caller

    def send_all(conn):
        if begin:
            conn.execute(begin)
        return _send_check(conn, caller), send(conn, **caller.scope, **params)

    check, rows = database.pipelined(send_all)
    _confirm(caller, check)
    return rows.fetchall()


def confirm_caller():
    """Check the current caller alone, for answers that read nothing (401 before 400)."""
    caller = g.caller
    (check,) = database.pipelined(lambda conn: (_send_check(conn, caller),))
    _confirm(caller, check)


def _send_check(conn, caller):
    if caller.kind == "api_key":
        return callers.find_api_key(conn, key_hash=caller.key_hash)
    return callers.find_user(conn, user_id=caller.user_id)


def _confirm(caller, check):
    row = check.fetchone()
    if row is None:
        if caller.kind == "api_key":
            raise Unauthorized(_BAD_KEY, "unknown_key")
        raise Unauthorized(_BAD_TOKEN, "unknown_user")
    g.caller_id = str(row["id"])  # the user's or the key's id, for the request log
