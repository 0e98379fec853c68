"""The fixture document of SPEC §6, validated before anything is written."""

from datetime import UTC

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from schemas.vocabulary import DELIVERY_STATUSES, SESSION_STATUSES, SOURCES

MAX_BIGINT = 2**63 - 1


class Text(fields.String):
    """A string PostgreSQL can store: no NUL characters."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("must not contain NUL characters")
        return text


class StrictInteger(fields.Integer):
    """A JSON integer; booleans, floats and numeric strings are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("must be a JSON integer")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """A JSON true or false; "yes", 1 and friends are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("must be true or false")
        return value


def _timestamp(**kwargs):
    # A timestamp without an offset is read as UTC.
    return fields.AwareDateTime(default_timezone=UTC, **kwargs)


class Entry(Schema):
    """Every entry refuses fields it does not know, so typos surface."""

    class Meta:
        unknown = RAISE


class User(Entry):
    id = fields.UUID(required=True)
    email = Text(required=True)
    name = Text(required=True)


class Project(Entry):
    id = fields.UUID(required=True)
    name = Text(required=True)
    owner_id = fields.UUID(required=True, data_key="ownerId")
    created_at = _timestamp(required=True, data_key="createdAt")


class Member(Entry):
    project_id = fields.UUID(required=True, data_key="projectId")
    user_id = fields.UUID(required=True, data_key="userId")
    role = fields.String(required=True, validate=validate.OneOf(("admin", "member")))


class ApiKey(Entry):
    id = fields.UUID(required=True)
    project_id = fields.UUID(required=True, data_key="projectId")
    key = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^aptr_[!-~]{1,500}$", error="must be 'aptr_' followed by printable ASCII"
        ),
    )
    name = Text(required=True)
    created_at = _timestamp(required=True, data_key="createdAt")
    expires_at = _timestamp(load_default=None, allow_none=True, data_key="expiresAt")
    revoked_at = _timestamp(load_default=None, allow_none=True, data_key="revokedAt")


class Destination(Entry):
    id = fields.UUID(required=True)
    type = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z][a-z0-9_]{0,31}\Z", error="must match ^[a-z][a-z0-9_]{{0,31}}$"
        ),
    )


class Session(Entry):
    id = fields.UUID(required=True)
    project_id = fields.UUID(required=True, data_key="projectId")
    created_at = _timestamp(required=True, data_key="createdAt")
    expires_at = _timestamp(required=True, data_key="expiresAt")
    status = fields.String(required=True, validate=validate.OneOf(SESSION_STATUSES))
    tags = fields.List(Text(), load_default=None, allow_none=True)
    long_polling_enabled = StrictBoolean(load_default=False, data_key="longPollingEnabled")
    destinations = fields.List(fields.Nested(Destination), load_default=list)


class Delivery(Entry):
    destination_id = fields.UUID(required=True, data_key="destinationId")
    status = fields.String(required=True, validate=validate.OneOf(DELIVERY_STATUSES))


class Upload(Entry):
    id = fields.UUID(required=True)
    session_id = fields.UUID(required=True, data_key="sessionId")
    filename = Text(required=True)
    size_bytes = StrictInteger(
        required=True, data_key="sizeBytes", validate=validate.Range(min=0, max=MAX_BIGINT)
    )
    mime_type = Text(required=True, data_key="mimeType")
    source = fields.String(required=True, validate=validate.OneOf(SOURCES))
    is_encrypted = StrictBoolean(load_default=False, data_key="isEncrypted")
    created_at = _timestamp(required=True, data_key="createdAt")
    deliveries = fields.List(fields.Nested(Delivery), load_default=list)


class Fixture(Entry):
    """The whole document; every top-level list is optional."""

    users = fields.List(fields.Nested(User), load_default=list)
    projects = fields.List(fields.Nested(Project), load_default=list)
    members = fields.List(fields.Nested(Member), load_default=list)
    api_keys = fields.List(fields.Nested(ApiKey), load_default=list, data_key="apiKeys")
    sessions = fields.List(fields.Nested(Session), load_default=list)
    uploads = fields.List(fields.Nested(Upload), load_default=list)


def error_paths(messages, prefix=""):
    """Flatten marshmallow's nested messages into 'sessions[2].destinations[0].type: …' lines."""
    lines = []
    for key, value in messages.items():
        if isinstance(key, int):
            path = f"{prefix}[{key}]"
        elif key == "_schema":
            path = prefix or "document"
        else:
            path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            lines.extend(error_paths(value, path))
        else:
            lines.extend(f"{path}: {message}" for message in value)
    return lines
