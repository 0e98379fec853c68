"""Opaque, tamper-evident cursors for walking a list newest first.

A cursor holds the last row's position (createdAt to the microsecond, and id) and the
filters of the walk. It is signed (itsdangerous, HMAC-SHA1) with CURSOR_SECRET under a
salt naming the list and the caller, so a cursor altered, minted elsewhere, or brought
to another list or by another caller fails its signature check and is refused.
"""

import uuid
from datetime import datetime

from flask import current_app, g
from itsdangerous import BadData, URLSafeSerializer

from errors import InvalidParameter

_FOREIGN = "Invalid parameter 'cursor': not a cursor this list gave to this caller."


def _serializer(resource):
    caller = g.caller
    who = caller.user_id if caller.kind == "user" else caller.key_hash.hex()
    return URLSafeSerializer(
        current_app.config["SETTINGS"].cursor_secret,
        salt=f"apertur.cursor.{resource}.{caller.kind}.{who}",
    )


def encode(resource, filters, row):
    """The cursor that continues `resource` after `row` under `filters`."""
    payload = {
        "at": row["created_at"].isoformat(),
        "id": str(row["id"]),
        "filters": {name: _text(value) for name, value in filters.items()},
    }
    return _serializer(resource).dumps(payload)


def decode(resource, token):
    """(filters, (created_at, id)) of a cursor; raises InvalidParameter when it is not one."""
    serializer = _serializer(resource)
    try:
        payload = serializer.loads(token)
        # base64 leaves spare bits in a last character that decoding ignores: only the
        # one spelling this service writes is accepted.
        if serializer.dumps(payload) != token:
            raise BadData("not the canonical spelling")
        position = (datetime.fromisoformat(payload["at"]), uuid.UUID(payload["id"]))
        filters = {name: _value(name, text) for name, text in payload["filters"].items()}
    except (BadData, KeyError, TypeError, ValueError, AttributeError):
        raise InvalidParameter(_FOREIGN) from None
    return filters, position


def _text(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _value(name, text):
    if name in ("created_from", "created_to"):
        return datetime.fromisoformat(text)
    if name == "project_id":
        return uuid.UUID(text)
    return text
