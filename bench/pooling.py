"""The pooling section: what preparing every statement is worth, and what PgBouncer in
transaction mode adds, measured side by side in one run.

Three more gunicorns with the production config read the bench's PostgreSQL as the
read-only role, as production does: prepared statements on (the default); off
(DB_PREPARED_STATEMENTS=off, as PgBouncer needs: every statement planned anew, with its
values); and off through a real PgBouncer in transaction mode. Off, the session settings
come from the role (init-db, and prepare_database's migration, store them there), so each
server's /readyz must answer 200 before anything is measured. Each row and caller is
measured on all three before the next, the first of them turning with every row: this
machine is noisy, and a slow minute should fall on all three alike.
"""

import configparser
import pwd
import shutil
import socket
import subprocess
import time
from contextlib import ExitStack, contextmanager

from psycopg.conninfo import conninfo_to_dict, make_conninfo

import embedded_postgres
from load import measure
from plan import DATA_DIR, POOLING_CONFIGURATIONS, POOLING_ENDPOINTS, REPO, request_path
from processes import free_port
from queries.migrations import API_ROLE
from servers import get, start_gunicorn, stop

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"  # Debian's 1.18
# Taken from deploy/pgbouncer.ini as deployed; where it listens, the server it leads to and
# how clients log in (trust: authentication is not what is measured) are the bench's own.
SHIPPED_SETTINGS = (
    "pool_mode",
    "default_pool_size",
    "max_client_conn",
    "server_login_retry",
    "query_wait_timeout",
    "server_connect_timeout",
)
READY_WAIT_SECONDS = 10


def pooling_side(url, env, credentials, world):
    """Serve the three configurations, check each is ready, measure every pooling row on
    each; stop them all afterwards, also on failure. Returns the measured rows."""
    with ExitStack() as stack:
        bouncer_url = stack.enter_context(pgbouncer(url))
        ports = {}
        for name, settings in configurations(url, bouncer_url).items():
            log = DATA_DIR / f"gunicorn-pooling-{name.split()[-1].lower()}.log"
            server, ports[name] = start_gunicorn("wsgi:app", env | settings, log)
            stack.callback(stop, server)
            wait_ready(ports[name], name)
        return measure_rows(ports, credentials, world)


def configurations(url, bouncer_url):
    """Each configuration's settings over the run's environment. All log in as the
    read-only role, whose stored settings the unprepared ones rely on."""
    direct = make_conninfo(url, user=API_ROLE)
    settings = (
        {"DATABASE_URL": direct, "DB_PREPARED_STATEMENTS": "on"},
        {"DATABASE_URL": direct, "DB_PREPARED_STATEMENTS": "off"},
        {"DATABASE_URL": bouncer_url, "DB_PREPARED_STATEMENTS": "off"},
    )
    return dict(zip(POOLING_CONFIGURATIONS, settings, strict=True))


def wait_ready(port, name):
    """Wait for /readyz to answer 200: a session without the service's settings (the
    wrong time zone, no timeouts, custom plans) would measure something else. The workers'
    pools connect in the background, so the first answers may still be 503."""
    deadline = time.monotonic() + READY_WAIT_SECONDS
    while (answer := get(port, "/readyz", None))[0] != 200:
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: /readyz answered {answer[0]}: {answer[1][:300]!r}")
        time.sleep(0.2)


def measure_rows(ports, credentials, world):
    """Every pooling row and caller on each configuration in turn, the first of them
    turning with each row (so no configuration always goes first, after a pause)."""
    rows = []
    for endpoint in POOLING_ENDPOINTS:
        for caller in endpoint.callers:
            path = request_path(endpoint, world, caller)
            turn = len(rows) % len(POOLING_CONFIGURATIONS)
            order = POOLING_CONFIGURATIONS[turn:] + POOLING_CONFIGURATIONS[:turn]
            measured = {name: measure(ports[name], path, credentials[caller]) for name in order}
            rows.append(
                {
                    "path": endpoint.label,
                    "caller": caller,
                    "configurations": {name: measured[name] for name in POOLING_CONFIGURATIONS},
                }
            )
            _print_row(rows[-1])
    return rows


def _print_row(row):
    """One line as each row ends, so the section shows its progress."""
    figures = [row["configurations"][name] for name in POOLING_CONFIGURATIONS]
    p50 = " / ".join(f"{figure['seq_p50_ms']:.2f}" for figure in figures)
    rps = " / ".join(f"{figure['wrk']['rps']:.0f}" for figure in figures)
    print(f"{row['path']:<50} {row['caller']:<10} p50 {p50} ms   wrk {rps} req/s", flush=True)


@contextmanager
def pgbouncer(url):
    """PgBouncer in transaction mode in front of the server at `url`, for the read-only
    role, on a free local port; yields the API's URL through it, and stops it afterwards.

    PgBouncer refuses to run as root, so it runs as the server's owner, with its files in
    a directory of that user's beside the server's data.
    """
    owner = _owner()
    directory = DATA_DIR.parent / f"{DATA_DIR.name}-pgbouncer"
    directory.mkdir(exist_ok=True)
    if owner:
        shutil.chown(directory, owner.pw_uid, owner.pw_gid)
    port, server = free_port(), conninfo_to_dict(url)
    config = write_config(directory, port, server)
    as_owner = dict(user=owner.pw_uid, group=owner.pw_gid, extra_groups=[]) if owner else {}
    process = subprocess.Popen(
        [PGBOUNCER, str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # it logs to its logfile as well
        **as_owner,
    )
    try:
        _wait_listening(process, port, directory / "pgbouncer.log")
        yield make_conninfo("", host="127.0.0.1", port=port, dbname=server["dbname"], user=API_ROLE)
    finally:
        stop(process)


def _owner():
    """The password entry of the server's owner, or None when we are not root."""
    owner = embedded_postgres.server_owner()
    return pwd.getpwnam(owner) if owner else None


def write_config(directory, port, server):
    """pgbouncer.ini and its auth_file in `directory`; return the ini's path. The server is
    reached as libpq's `server` (conninfo_to_dict) names it: a unix socket directory or a
    host."""
    shipped = configparser.ConfigParser()
    shipped.read(REPO / "deploy" / "pgbouncer.ini")
    userlist = directory / "userlist.txt"
    userlist.write_text(f'"{API_ROLE}" ""\n')
    dbname = server["dbname"]
    lines = [
        "[databases]",
        f"{dbname} = host={server['host']} port={server.get('port') or 5432} dbname={dbname}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = trust",
        f"auth_file = {userlist}",
        f"logfile = {directory / 'pgbouncer.log'}",
        *(f"{name} = {shipped['pgbouncer'][name]}" for name in SHIPPED_SETTINGS),
    ]
    config = directory / "pgbouncer.ini"
    config.write_text("\n".join(lines) + "\n")
    return config


def _wait_listening(process, port, log):
    """Return once PgBouncer accepts connections; fail if it exits or takes too long."""
    deadline = time.monotonic() + READY_WAIT_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"PgBouncer did not start; see {log}")
