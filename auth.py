"""Resolve the caller of a request into the set of projects it may see.

Two credentials are accepted as `Authorization: Bearer <credential>`: an API key
(`aptr_…`, looked up by its SHA-256 digest; scope is its project) or a dashboard
JWT verified by flask-jwt-extended (scope is every project the user owns or is a
member of). Every failure is the same JSON 401; the reason given stays generic.
"""

import hashlib
import re
from dataclasses import dataclass

import jwt
from flask import g, request
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException

from database import request_connection
from errors import Unauthorized
from queries import callers

API_KEY_PREFIX = "aptr_"
# Exactly one credential of printable ASCII after the scheme and its spaces (RFC 6750).
_BEARER = re.compile(r"Bearer +([!-~]+)", re.IGNORECASE)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: a user (JWT) or an API key, and the projects in its scope."""

    kind: str
    id: str
    project_ids: list


def hash_api_key(key):
    """The SHA-256 digest under which an API key is stored."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def bearer_credential():
    """The single bearer credential of the request; raises Unauthorized otherwise."""
    header = request.headers.get("Authorization", "").strip()
    if not header:
        raise Unauthorized("Authentication required: send Authorization: Bearer <token>.")
    match = _BEARER.fullmatch(header)
    if match is None:
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
    return match.group(1)


def caller_from_api_key(conn, key):
    """The caller for an `aptr_` key; raises Unauthorized if unknown, revoked or expired."""
    row = callers.find_api_key(conn, key_hash=hash_api_key(key))
    if row is None:
        raise Unauthorized("Invalid or inactive API key.")
    return Caller(kind="api_key", id=str(row["id"]), project_ids=[row["project_id"]])


def verified_claims(token):
    """The claims of a valid dashboard access token; raises Unauthorized otherwise."""
    try:
        claims = decode_token(token)
    except (JWTExtendedException, jwt.PyJWTError):
        raise Unauthorized("Invalid or expired token.") from None
    if "exp" not in claims:
        raise Unauthorized("Invalid or expired token.")
    if claims.get("type") != "access":
        raise Unauthorized("Only access tokens are accepted.")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not _UUID.fullmatch(subject):
        raise Unauthorized("Invalid or expired token.")
    return claims


def caller_for_user(conn, user_id):
    """The caller for a verified token's user; raises Unauthorized if the user does not exist."""
    row = callers.find_user_projects(conn, user_id=user_id)
    if row is None:
        raise Unauthorized("Invalid or expired token.")
    return Caller(kind="user", id=user_id, project_ids=row["project_ids"])


def resolve_caller():
    """Authenticate the current request; raises Unauthorized.

    Tokens are verified before a connection is taken, so a forged token costs no
    database work and is refused even while the database is down.
    """
    credential = bearer_credential()
    if credential.startswith(API_KEY_PREFIX):
        return caller_from_api_key(request_connection(), credential)
    user_id = verified_claims(credential)["sub"].lower()
    return caller_for_user(request_connection(), user_id)


def require_caller():
    """before_request hook: resolve the caller once and keep it in g.caller."""
    g.caller = resolve_caller()
