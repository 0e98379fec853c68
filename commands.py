"""Admin commands: `flask --app app init-db | load-fixture | demo-data | create-api-key |
issue-token | reconcile`."""

import json
import secrets
import uuid
from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_jwt_extended import create_access_token

import database
import demo
from auth import API_KEY_PREFIX, hash_api_key
from fixture import FixtureError, load_fixture
from queries import callers, load_queries
from queries.generate import generate_world
from queries.migrations import apply_migrations
from queries.rollups import rebuild_rollups, rollup_drift

_SQL = load_queries(
    "keys.sql",
    {
        "find_project": {"project_id"},
        "insert_generated_key": {"id", "project_id", "key_hash", "name"},
    },
)


def _connect():
    return database.connect(current_app.config["SETTINGS"].database_url)


def _echo_warning(diagnostic):
    """Show the server's warnings (not its notices) on standard error."""
    if diagnostic.severity_nonlocalized == "WARNING":
        click.echo(f"warning: {diagnostic.message_primary}", err=True)


def generate_api_key():
    """A new secret: the prefix and 256 bits from the OS's CSPRNG."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Create or migrate the schema (idempotent); set up the read-only role."""
    settings = current_app.config["SETTINGS"]
    with _connect() as conn:
        conn.add_notice_handler(_echo_warning)
        applied = apply_migrations(conn, database.api_session_settings(settings))
    click.echo(f"applied {', '.join(applied)}" if applied else "schema is up to date")


@click.command("load-fixture")
@with_appcontext
@click.argument("path", type=click.File("r", encoding="utf-8"))
def load_fixture_command(path):
    """Load a JSON fixture document (SPEC §6) from PATH, or - for standard input."""
    try:
        document = json.load(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"not valid JSON: {exc}") from None
    try:
        with _connect() as conn:
            counts = load_fixture(conn, document)
    except FixtureError as exc:
        raise click.ClickException("invalid fixture, nothing was written:\n" + str(exc)) from None
    click.echo("loaded " + ", ".join(f"{count} {name}" for name, count in counts.items()))


@click.command("demo-data")
@with_appcontext
@click.option(
    "--uploads",
    type=click.IntRange(min=1),
    default=None,
    help="Generate a large benchmark world with this many uploads instead.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="With --uploads: the seed that makes the world reproducible.",
)
def demo_data_command(uploads, seed):
    """Load the small demo world, or with --uploads N generate a large benchmark world.

    The large world ends with one JSON line naming a heavy user, a light user and an API
    key of one of the heavy user's projects.
    """
    if uploads is not None:
        with _connect() as conn:
            generated = generate_world(conn, uploads=uploads, seed=seed)
        click.echo(
            json.dumps(
                {
                    "heavyUserId": str(generated["heavy_user_id"]),
                    "lightUserId": str(generated["light_user_id"]),
                    "apiKey": generated["api_key"],
                }
            )
        )
        return
    try:
        with _connect() as conn:
            counts = load_fixture(conn, demo.demo_document())
    except FixtureError as exc:
        raise click.ClickException("demo data not loaded:\n" + str(exc)) from None
    click.echo("loaded demo " + ", ".join(f"{count} {name}" for name, count in counts.items()))


@click.command("create-api-key")
@with_appcontext
@click.option("--project", "project_id", required=True, type=click.UUID, help="Project id.")
@click.option("--name", default="cli", show_default=True, help="A label for the key.")
def create_api_key_command(project_id, name):
    """Create an API key for a project and print it; it is shown only this once."""
    key = generate_api_key()
    with _connect() as conn:
        if _SQL["find_project"].one(conn, project_id=project_id) is None:
            raise click.ClickException(f"no project {project_id}")
        _SQL["insert_generated_key"].execute(
            conn, id=uuid.uuid4(), project_id=project_id, key_hash=hash_api_key(key), name=name
        )
    click.echo(key)


@click.command("issue-token")
@with_appcontext
@click.option("--user", "user_id", required=True, type=click.UUID, help="User id (the sub claim).")
@click.option(
    "--minutes",
    type=click.IntRange(min=1),
    default=None,
    help="Lifetime; defaults to JWT_TOKEN_MINUTES.",
)
def issue_token_command(user_id, minutes):
    """Print a dashboard access token (JWT) for a user."""
    settings = current_app.config["SETTINGS"]
    if not settings.uses_hmac and not settings.jwt_private_key:
        raise click.ClickException(
            f"JWT_PRIVATE_KEY (or JWT_PRIVATE_KEY_FILE) is needed to sign {settings.jwt_algorithm}"
        )
    with _connect() as conn:
        if not callers.user_exists(conn, user_id):
            raise click.ClickException(f"no user {user_id}")
    lifetime = timedelta(minutes=minutes or settings.token_minutes)
    click.echo(create_access_token(identity=str(user_id), expires_delta=lifetime))


@click.command("reconcile")
@with_appcontext
@click.option("--fix", is_flag=True, help="Rebuild every rollup from the base tables.")
def reconcile_command(fix):
    """Compare every rollup with a fresh count; report drift, and with --fix repair it."""
    with _connect() as conn:
        drift = rollup_drift(conn)
        for row in drift[:50]:
            click.echo(
                f"drift {row['rollup']} {row['key']}: stored {row['stored']}, "
                f"expected {row['expected']}"
            )
        if len(drift) > 50:
            click.echo(f"... and {len(drift) - 50} more")
        click.echo(f"{len(drift)} rollup rows drifted")
        if fix and drift:
            rebuild_rollups(conn)
            click.echo(f"rebuilt; {len(rollup_drift(conn))} rollup rows drift now")
    if drift and not fix:
        raise SystemExit(1)


def register(app):
    """Attach every command to the app's CLI."""
    for command in (
        init_db_command,
        load_fixture_command,
        demo_data_command,
        create_api_key_command,
        issue_token_command,
        reconcile_command,
    ):
        app.cli.add_command(command)
