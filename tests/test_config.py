"""Settings from the environment: defaults, and a clear refusal for every bad value."""

import re
import runpy

import pytest

import config
from config import ConfigError, load_settings

DB = "postgresql://example/db"


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean environment holding only DATABASE_URL; the dev secret goes to a temp file."""
    for name in list(config.os.environ):
        if name.startswith(
            ("DB_", "JWT_", "APERTUR_", "DATABASE_", "CORS_", "TRUSTED_", "METRICS_", "CURSOR_")
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", DB)
    monkeypatch.setattr(config, "DEV_SECRET_FILE", tmp_path / "jwt-secret")
    return monkeypatch


def test_defaults(env):
    settings = load_settings()
    assert (settings.jwt_algorithm, settings.environment) == ("HS256", "development")
    assert (settings.pool_min_size, settings.pool_max_size, settings.pool_timeout_seconds) == (
        1,
        4,
        3.0,
    )
    assert (settings.statement_timeout_ms, settings.idle_in_transaction_timeout_ms) == (2000, 10000)
    assert (settings.cors_origins, settings.trusted_proxies) == ((), 0)
    assert (settings.pool_max_lifetime_seconds, settings.prepared_statements) == (300.0, True)
    assert [str(n) for n in settings.metrics_allow] == ["127.0.0.1/32", "::1/128"]
    assert settings.jwt_config()["JWT_DECODE_ALGORITHMS"] == ["HS256"]


def test_timeouts_nest_inside_each_other(env):
    """statement < pool here; gunicorn's timeout (gunicorn.conf.py) is above both."""
    env.setenv("DB_STATEMENT_TIMEOUT_MS", "3000")
    with pytest.raises(ConfigError, match="must be below DB_POOL_TIMEOUT_SECONDS"):
        load_settings()
    env.setenv("DB_POOL_TIMEOUT_SECONDS", "4")
    assert load_settings().statement_timeout_ms == 3000
    gunicorn = runpy.run_path(str(config.PROJECT_DIR / "gunicorn.conf.py"))
    assert gunicorn["timeout"] > 4 and gunicorn["graceful_timeout"] <= gunicorn["timeout"]
    nginx = (config.PROJECT_DIR / "deploy" / "nginx.conf").read_text()
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", nginx).group(1))
    assert read_timeout > gunicorn["timeout"]


def test_pool_lifetime_and_prepared_statements(env):
    env.setenv("DB_POOL_MAX_LIFETIME_SECONDS", "12.5")
    env.setenv("DB_PREPARED_STATEMENTS", " OFF ")
    settings = load_settings()
    assert (settings.pool_max_lifetime_seconds, settings.prepared_statements) == (12.5, False)


def test_cors_origins_and_trusted_proxies(env):
    env.setenv("CORS_ORIGINS", " https://dash.example.com/, http://localhost:5173 ")
    env.setenv("TRUSTED_PROXIES", "1")
    settings = load_settings()
    assert settings.cors_origins == ("https://dash.example.com", "http://localhost:5173")
    assert settings.trusted_proxies == 1


def test_development_generates_one_secret_and_keeps_it(env):
    first = load_settings().jwt_secret_key
    assert len(first) >= 32 and load_settings().jwt_secret_key == first
    assert oct(config.DEV_SECRET_FILE.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "variables, message",
    [
        ({"DATABASE_URL": ""}, "DATABASE_URL is not set"),
        ({"APERTUR_ENV": "staging"}, "APERTUR_ENV"),
        ({"APERTUR_ENV": "production"}, "JWT_SECRET_KEY is required outside development"),
        ({"JWT_ALGORITHM": "none"}, "JWT_ALGORITHM must be one of"),
        ({"JWT_ALGORITHM": "RS256"}, "JWT_PUBLIC_KEY"),
        ({"JWT_ALGORITHM": "ES256", "JWT_PUBLIC_KEY_FILE": "/nonexistent.pem"}, "cannot read"),
        ({"DB_POOL_TIMEOUT_SECONDS": "soon"}, "must be a number"),
        ({"DB_POOL_MAX_SIZE": "0"}, "at least 1"),
        ({"DB_STATEMENT_TIMEOUT_MS": "1.5"}, "must be an integer"),
        ({"DB_POOL_MAX_LIFETIME_SECONDS": "0.5"}, "at least 1.0"),
        ({"DB_PREPARED_STATEMENTS": "no"}, "DB_PREPARED_STATEMENTS must be on or off"),
        ({"CORS_ORIGINS": "*"}, "is not an origin"),
        ({"CORS_ORIGINS": "dash.example.com"}, "is not an origin"),
        ({"TRUSTED_PROXIES": "-1"}, "at least 0"),
        ({"METRICS_ALLOW": "10.0.0.0/8, not-an-address"}, "METRICS_ALLOW"),
    ],
)
def test_bad_settings_refuse_to_start(env, variables, message):
    for name, value in variables.items():
        env.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_public_key_from_a_file(env, tmp_path):
    pem = tmp_path / "public.pem"
    pem.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    env.setenv("JWT_ALGORITHM", "RS256")
    env.setenv("JWT_PUBLIC_KEY_FILE", str(pem))
    settings = load_settings()
    assert settings.jwt_public_key == pem.read_text() and settings.jwt_secret_key is None
    assert settings.jwt_config()["JWT_DECODE_ALGORITHMS"] == ["RS256"]


def test_cursors_are_signed_with_their_own_secret_or_the_jwt_secret(env, tmp_path):
    """CURSOR_SECRET when given; else the HS* JWT secret; with a key pair outside
    development there is no secret to fall back on, so the service refuses to start."""
    env.setenv("APERTUR_ENV", "production")
    env.setenv("JWT_SECRET_KEY", "s" * 40)
    assert load_settings().cursor_secret == "s" * 40
    env.setenv("CURSOR_SECRET", "c" * 40)
    assert load_settings().cursor_secret == "c" * 40
    pem = tmp_path / "public.pem"
    pem.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    env.setenv("JWT_ALGORITHM", "RS256")
    env.setenv("JWT_PUBLIC_KEY_FILE", str(pem))
    assert load_settings().cursor_secret == "c" * 40
    env.delenv("CURSOR_SECRET")
    with pytest.raises(ConfigError, match="CURSOR_SECRET is required with RS256"):
        load_settings()
