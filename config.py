"""Settings read from the environment, with their defaults, checked once at start-up."""

import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent
# Where development keeps its generated JWT secret, so that `make run`, `issue-token`
# and gunicorn agree on one secret without anybody choosing it.
DEV_SECRET_FILE = PROJECT_DIR / ".dev" / "jwt-secret"

SUPPORTED_ALGORITHMS = (
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "ES256",
    "ES384",
    "ES512",
)


# The timeouts the service runs with unless configured; also what init-db stores on the
# read-only role when it is given no settings (database.session_settings).
DEFAULT_STATEMENT_TIMEOUT_MS = 2000
DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS = 10000


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the service refuses to start."""


def _env(name, default=None):
    value = os.environ.get(name, "").strip()
    return value if value else default


def _number(name, default, minimum, parse=int):
    """A numeric setting of at least `minimum`, parsed with `parse` (int or float)."""
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(
            f"{name} must be {'an integer' if parse is int else 'a number'}, got {raw!r}"
        ) from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _switch(name, default):
    """An on/off setting."""
    raw = (_env(name) or default).lower()
    if raw not in ("on", "off"):
        raise ConfigError(f"{name} must be on or off, got {raw!r}")
    return raw == "on"


def _origins(name):
    """Comma-separated web origins (scheme://host[:port]) allowed to call from a browser."""
    origins = tuple(
        part.strip().rstrip("/") for part in (_env(name) or "").split(",") if part.strip()
    )
    for origin in origins:
        if origin == "*" or not origin.startswith(("https://", "http://")):
            raise ConfigError(f"{name}: {origin!r} is not an origin like https://dash.example.com")
    return origins


def _networks(name, default):
    """Comma-separated IP addresses or CIDR networks."""
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in _env(name, default).split(",")
            if part.strip()
        )
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _key(name):
    """A PEM key given inline (NAME) or as a file path (NAME_FILE)."""
    inline, path = _env(name), _env(f"{name}_FILE")
    if inline:
        return inline.replace("\\n", "\n")
    if path:
        try:
            return Path(path).read_text(encoding="ascii")
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    return None


def dev_secret():
    """The development JWT secret, generated on first use and kept in DEV_SECRET_FILE."""
    if not DEV_SECRET_FILE.exists():
        DEV_SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
        DEV_SECRET_FILE.write_text(secrets.token_urlsafe(48), encoding="ascii")
        DEV_SECRET_FILE.chmod(0o600)
    return DEV_SECRET_FILE.read_text(encoding="ascii").strip()


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the defaults documented in the README."""

    database_url: str
    environment: str
    jwt_algorithm: str
    jwt_secret_key: str | None
    jwt_public_key: str | None
    jwt_private_key: str | None
    jwt_issuer: str | None
    jwt_audience: str | None
    jwt_leeway_seconds: int
    token_minutes: int
    pool_min_size: int
    pool_max_size: int
    pool_timeout_seconds: float
    statement_timeout_ms: int
    idle_in_transaction_timeout_ms: int
    cursor_secret: str
    cors_origins: tuple = ()
    trusted_proxies: int = 0
    metrics_allow: tuple = ()
    # An export's own bound (it outlives the statement timeout): past it the body is cut.
    export_timeout_seconds: int = 600
    # How long a pooled connection lives: after a failover to the primary, the bound on
    # coming back to a standby (each replacement is made by libpq's host rules again).
    pool_max_lifetime_seconds: float = 300.0
    # Off for PgBouncer in transaction mode: no prepared statements, no startup options.
    prepared_statements: bool = True

    @property
    def uses_hmac(self):
        """Whether tokens are signed with a shared secret rather than a key pair."""
        return self.jwt_algorithm.startswith("HS")

    def jwt_config(self):
        """The flask-jwt-extended configuration for these settings."""
        config = {
            "JWT_ALGORITHM": self.jwt_algorithm,
            "JWT_DECODE_ALGORITHMS": [self.jwt_algorithm],
            "JWT_TOKEN_LOCATION": ["headers"],
            "JWT_COOKIE_CSRF_PROTECT": False,  # header tokens only: no csrf claim
            "JWT_IDENTITY_CLAIM": "sub",
            "JWT_DECODE_LEEWAY": self.jwt_leeway_seconds,
            "JWT_DECODE_ISSUER": self.jwt_issuer,
            "JWT_DECODE_AUDIENCE": self.jwt_audience,
            "JWT_ENCODE_ISSUER": self.jwt_issuer,
            "JWT_ENCODE_AUDIENCE": self.jwt_audience,
        }
        if self.uses_hmac:
            config["JWT_SECRET_KEY"] = self.jwt_secret_key
        else:
            config["JWT_PUBLIC_KEY"] = self.jwt_public_key
            config["JWT_PRIVATE_KEY"] = self.jwt_private_key
        return config


def load_settings():
    """Read and check every setting; raise ConfigError naming the first bad one."""
    environment = _env("APERTUR_ENV", "development")
    if environment not in ("development", "production"):
        raise ConfigError(f"APERTUR_ENV must be development or production, got {environment!r}")
    algorithm = _env("JWT_ALGORITHM", "HS256")
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise ConfigError(f"JWT_ALGORITHM must be one of {', '.join(SUPPORTED_ALGORITHMS)}")
    secret = public_key = private_key = None
    if algorithm.startswith("HS"):
        secret = _env("JWT_SECRET_KEY")
        if secret is None:
            if environment != "development":
                raise ConfigError("JWT_SECRET_KEY is required outside development")
            secret = dev_secret()
    else:
        public_key, private_key = _key("JWT_PUBLIC_KEY"), _key("JWT_PRIVATE_KEY")
        if public_key is None:
            raise ConfigError(
                f"JWT_PUBLIC_KEY (or JWT_PUBLIC_KEY_FILE) is required for {algorithm}"
            )
    # Cursors are signed with their own secret when given; else with the JWT secret (under
    # another salt, so neither signature can stand in for the other).
    cursor_secret = _env("CURSOR_SECRET") or secret
    if cursor_secret is None:
        if environment != "development":
            raise ConfigError(f"CURSOR_SECRET is required with {algorithm} outside development")
        cursor_secret = dev_secret()
    database_url = _env("DATABASE_URL")
    if database_url is None:
        raise ConfigError("DATABASE_URL is not set (make run and make test set it for you)")
    pool_min = _number("DB_POOL_MIN_SIZE", 1, 0)
    pool_timeout = _number("DB_POOL_TIMEOUT_SECONDS", 3.0, 0.1, float)
    statement_timeout = _number("DB_STATEMENT_TIMEOUT_MS", DEFAULT_STATEMENT_TIMEOUT_MS, 1)
    # Each bound inside the next one out (statement < pool < gunicorn 10 s < nginx), so a
    # slow query is answered with our 503 before anything further out gives up on it.
    if statement_timeout >= pool_timeout * 1000:
        raise ConfigError(
            f"DB_STATEMENT_TIMEOUT_MS ({statement_timeout}) must be below "
            f"DB_POOL_TIMEOUT_SECONDS ({pool_timeout:g} s)"
        )
    return Settings(
        database_url=database_url,
        environment=environment,
        jwt_algorithm=algorithm,
        jwt_secret_key=secret,
        jwt_public_key=public_key,
        jwt_private_key=private_key,
        jwt_issuer=_env("JWT_ISSUER"),
        jwt_audience=_env("JWT_AUDIENCE"),
        jwt_leeway_seconds=_number("JWT_LEEWAY_SECONDS", 0, 0),
        token_minutes=_number("JWT_TOKEN_MINUTES", 60, 1),
        pool_min_size=pool_min,
        pool_max_size=_number("DB_POOL_MAX_SIZE", max(4, pool_min), max(1, pool_min)),
        pool_timeout_seconds=pool_timeout,
        statement_timeout_ms=statement_timeout,
        idle_in_transaction_timeout_ms=_number(
            "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS, 1
        ),
        cursor_secret=cursor_secret,
        cors_origins=_origins("CORS_ORIGINS"),
        trusted_proxies=_number("TRUSTED_PROXIES", 0, 0),
        metrics_allow=_networks("METRICS_ALLOW", "127.0.0.1/32,::1/128"),
        export_timeout_seconds=_number("EXPORT_TIMEOUT_SECONDS", 600, 1),
        pool_max_lifetime_seconds=_number("DB_POOL_MAX_LIFETIME_SECONDS", 300.0, 1.0, float),
        prepared_statements=_switch("DB_PREPARED_STATEMENTS", "on"),
    )
