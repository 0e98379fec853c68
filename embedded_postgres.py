"""A local PostgreSQL for development and tests, used only when DATABASE_URL is unset.

First choice is the `pgserver` wheel (CPython <= 3.12; as root it runs the server as
a `pgserver` system user). Otherwise the PostgreSQL binaries on PATH (or Debian's
/usr/lib/postgresql/*/bin) are used. If neither is available, say exactly what to install.
"""

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

from config import PROJECT_DIR

DEV_DATA_DIR = PROJECT_DIR / ".dev" / "pgdata"
TEST_DATA_DIR = PROJECT_DIR / ".dev" / "pgtest"


class EmbeddedPostgresError(RuntimeError):
    """No way to run a local PostgreSQL here."""


def start(data_dir):
    """Start (or reuse) a server on data_dir and return its connection URL.

    The server keeps running after this process exits, so `make run`, `flask`
    commands and gunicorn workers can share it; `stop(data_dir)` ends it.
    """
    data_dir = Path(data_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        import pgserver
    except ImportError:
        pgserver = None
    if pgserver is not None:
        try:
            server = pgserver.get_server(data_dir, cleanup_mode=None)
            server.ensure_postgres_running()  # the handle is cached per process; it may be stopped
            return server.get_uri()
        except Exception as exc:  # pgserver's own failure modes are many; fall back
            print(f"pgserver could not start ({exc}); trying PostgreSQL on PATH", file=sys.stderr)
    return _start_from_path(data_dir)


def stop(data_dir):
    """Stop the server on data_dir, if one is running."""
    pg_ctl = pg_binary("pg_ctl")
    if pg_ctl and (Path(data_dir) / "postmaster.pid").exists():
        run_as_owner([pg_ctl, "-D", str(data_dir), "-m", "fast", "-w", "stop"])


def pg_binary(name):
    """Path of a PostgreSQL program: pgserver's own, else PATH, else Debian's; or None."""
    try:
        import pgserver

        candidate = Path(pgserver.__file__).parent / "pginstall" / "bin" / name
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which(name)
    if found:
        return found
    debian = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return debian[-1] if debian else None


def server_owner():
    """The user the server runs as: ourselves, or an unprivileged account when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("pgserver", "postgres", "nobody"):
        if subprocess.run(["id", "-u", name], capture_output=True).returncode == 0:
            return name
    raise EmbeddedPostgresError(
        "running as root and no unprivileged user (postgres, nobody) exists"
    )


def run_as_owner(command):
    """Run a PostgreSQL program as the user that owns the server's data."""
    owner = server_owner()
    if owner:
        command = ["runuser", "-u", owner, "--"] + command
    return subprocess.run(command, check=True, capture_output=True, text=True)


def init_cluster(data_dir):
    """initdb a new data dir, owned by the server's user, as every local server here is
    made: superuser postgres, trusted local connections, UTF8, C.UTF-8."""
    owner = server_owner()
    data_dir.mkdir(parents=True, exist_ok=True)
    if owner:
        shutil.chown(data_dir, owner)
    run_as_owner(
        [
            pg_binary("initdb"),
            "-D",
            str(data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]
    )


def _start_from_path(data_dir):
    initdb, pg_ctl = pg_binary("initdb"), pg_binary("pg_ctl")
    if not (initdb and pg_ctl):
        raise EmbeddedPostgresError(
            "No PostgreSQL available: DATABASE_URL is unset, the pgserver wheel is not "
            f"installed (it exists for CPython <= 3.12; this is {sys.version.split()[0]}), and "
            "initdb/pg_ctl are not on PATH. Install PostgreSQL (apt-get install postgresql) "
            "or set DATABASE_URL."
        )
    if not (data_dir / "PG_VERSION").exists():
        init_cluster(data_dir)
    if not (data_dir / "postmaster.pid").exists():
        run_as_owner(
            [
                pg_ctl,
                "-D",
                str(data_dir),
                "-w",
                "-l",
                str(data_dir / "server.log"),
                "-o",
                f"-c listen_addresses='' -c unix_socket_directories='{data_dir}'",
                "start",
            ]
        )
    return f"postgresql://postgres:@/postgres?host={data_dir}"
