"""The topology docs/scaling.md recommends, built whole on loopback, and the faults it must
survive: a primary, a streaming hot standby, PgBouncer (transaction mode, deploy/pgbouncer.ini)
in front of the standby, two gunicorn instances reading through it with the primary as
libpq's fallback, and nginx (deploy/nginx.conf) balancing over both.

tests/test_topology.py runs the phases briefly and checks the outcome; `make chaos` runs
them longer and prints the table (`python -m tests.topology --seconds N`).
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import psycopg
import requests
from psycopg.conninfo import make_conninfo

import database
import embedded_postgres
from fixture import load_fixture
from queries.migrations import API_ROLE, apply_migrations
from tests.builders import NOW, World
from tests.conftest import TEST_SECRET, make_token
from tests.servers import GUNICORN, NGINX, REPO, free_port, running_nginx
from tests.spec import ENDPOINTS

PGBOUNCER = shutil.which("pgbouncer") or next(
    (path for path in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(path).exists()), None
)
PG_CTL = embedded_postgres.pg_binary("pg_ctl")
INITDB = embedded_postgres.pg_binary("initdb")
PG_BASEBACKUP = embedded_postgres.pg_binary("pg_basebackup")
MISSING = [
    name
    for name, path in (
        ("pgbouncer", PGBOUNCER),
        ("nginx", NGINX),
        ("initdb", INITDB),
        ("pg_ctl", PG_CTL),
        ("pg_basebackup", PG_BASEBACKUP),
    )
    if path is None
]
DATABASE = "apertur"
API_PASSWORD = "topology-test-password"  # PgBouncer's SCRAM login needs one
# deploy/nginx.conf limits each credential to 20 requests/s and each address to 50; the
# load stays below both (everything comes from 127.0.0.1).
REQUESTS_PER_SECOND_EACH = 9


def _run(*command):
    """A PostgreSQL or PgBouncer program, as the unprivileged user the servers run as."""
    return embedded_postgres.run_as_owner([str(part) for part in command])


def _owned_dir(path):
    path.mkdir(mode=0o700, parents=True)
    owner = embedded_postgres.server_owner()
    if owner:
        shutil.chown(path, owner, owner)
    return path


class Postgres:
    """One PostgreSQL server on 127.0.0.1:port, its socket in its data dir."""

    def __init__(self, data_dir, port):
        self.data_dir, self.port = data_dir, port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"

    def start(self):
        _run(
            PG_CTL,
            "-D",
            self.data_dir,
            "-l",
            self.data_dir / "server.log",
            "-w",
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {self.port} "
            f"-c unix_socket_directories='{self.data_dir}' -c hot_standby=on",
            "start",
        )

    def stop(self, mode="fast"):
        if (self.data_dir / "postmaster.pid").exists():
            _run(PG_CTL, "-D", self.data_dir, "-m", mode, "-w", "stop")

    def restart(self):
        self.stop()
        self.start()

    def connect(self):
        return database.connect(self.url, autocommit=True)


class PgBouncer:
    """deploy/pgbouncer.ini as shipped but for where it listens, its server and its files."""

    def __init__(self, directory, port, server_port, userlist='"pgbouncer_auth" ""'):
        self.directory, self.port = directory, port
        shipped = (REPO / "deploy" / "pgbouncer.ini").read_text()
        local = {
            "apertur = host=127.0.0.1 port=5432 dbname=apertur": (
                f"{DATABASE} = host=127.0.0.1 port={server_port} dbname={DATABASE}"
            ),
            "listen_addr = *": "listen_addr = 127.0.0.1",
            "listen_port = 6432": f"listen_port = {port}\nunix_socket_dir =",
            "/etc/pgbouncer/userlist.txt": str(directory / "userlist.txt"),
            "/var/log/postgresql/pgbouncer.log": str(directory / "pgbouncer.log"),
            "/var/run/postgresql/pgbouncer.pid": str(directory / "pgbouncer.pid"),
        }
        for shipped_line, ours in local.items():
            assert shipped_line in shipped, f"deploy/pgbouncer.ini no longer has {shipped_line!r}"
            shipped = shipped.replace(shipped_line, ours)
        (directory / "pgbouncer.ini").write_text(shipped)
        # As shipped only auth_user is listed: every other login is looked up on the server.
        (directory / "userlist.txt").write_text(userlist + "\n")
        for path in directory.iterdir():
            path.chmod(0o644)

    def start(self):
        _run(PGBOUNCER, "-d", self.directory / "pgbouncer.ini")

    def stop(self):
        """Immediate shutdown (SIGTERM), as a crash or a restart by systemd looks to clients."""
        pidfile = self.directory / "pgbouncer.pid"
        if not pidfile.exists():
            return
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        pidfile.unlink(missing_ok=True)

    def restart(self):
        self.stop()
        self.start()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid)


def _proc_state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def _children(pid):
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        found += [int(child) for child in children]
    return found


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class AppInstance:
    """`gunicorn wsgi:app` on a fixed port, so that it comes back where nginx expects it."""

    def __init__(self, port, env, log):
        self.port, self.env, self.log = port, env, log
        self.process = None

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [str(GUNICORN), "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "wsgi:app"],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(self.base + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn not ready:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def workers(self):
        return _children(self.process.pid) if self.process else []

    def kill_master(self):
        """kill -9 the master; its orphaned workers finish what they hold and exit when they
        notice (gunicorn checks the parent between requests). Wait for that, so the port is
        free for the next start."""
        orphans = self.workers()
        self.process.kill()
        self.process.wait()
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in orphans) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in orphans:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def world():
    """Four callers with their own projects (two users by JWT, two projects by API key), so
    that any answer with another caller's data differs from that caller's own."""
    built = World()
    credentials = {}
    for index, name in enumerate(("Ada", "Grace", "Linus", "Barbara")):
        user = built.user(name)
        project = built.project(user, f"{name}'s project")
        for session_index in range(3):
            session = built.session(
                project,
                created_at=NOW - timedelta(hours=10 * session_index + index + 1),
                tags=[name.lower()],
            )
            for upload_index in range(index + 2):
                built.upload(
                    session,
                    ["sent", "failed", "pending"][: 1 + (upload_index % 3)],
                    created_at=NOW - timedelta(hours=10 * session_index, minutes=upload_index),
                )
        credentials[name] = make_token(user) if index % 2 == 0 else built.api_key(project)
    return built, credentials


@dataclass
class Answer:
    started: float
    ended: float
    status: int
    verdict: str  # "ok", "unavailable" (a 503 JSON), or what was wrong with it


@dataclass
class Load:
    """Client threads through nginx, one per caller at a bounded rate, each checking every
    answer against its own caller's expected body."""

    base: str
    expected: dict  # (credential, path) -> the exact body
    answers: list = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, credential):
        session = requests.Session()
        paths = [path for cred, path in self.expected if cred == credential]
        interval, turn = 1.0 / REQUESTS_PER_SECOND_EACH, 0
        next_at = time.monotonic()
        while not self.stop.is_set():
            path = paths[turn % len(paths)]
            turn += 1
            started = time.monotonic()
            try:
                response = session.get(
                    self.base + path, headers={"Authorization": f"Bearer {credential}"}, timeout=20
                )
                verdict = self.judge(response, self.expected[credential, path])
                status = response.status_code
            except requests.RequestException as exc:
                verdict, status = f"no answer: {type(exc).__name__}", 0
                session = requests.Session()
            self.answers.append(Answer(started, time.monotonic(), status, verdict))
            next_at = max(next_at + interval, time.monotonic() - interval)
            self.stop.wait(max(0.0, next_at - time.monotonic()))

    @staticmethod
    def judge(response, expected):
        if response.status_code == 200:
            return "ok" if response.content == expected else "wrong body"
        try:
            body = response.json()
        except ValueError:
            return f"non-JSON {response.status_code}"
        if response.status_code == 503 and body.get("error") == "unavailable":
            return "unavailable"
        return f"{response.status_code} {body.get('error')}"

    @contextmanager
    def running(self):
        credentials = sorted({credential for credential, _ in self.expected})
        threads = [threading.Thread(target=self.run, args=(c,), daemon=True) for c in credentials]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(30)


@dataclass
class Phase:
    name: str
    started: float
    ended: float = 0.0
    fault_at: float = 0.0
    notes: dict = field(default_factory=dict)

    def summary(self, answers):
        mine = sorted(
            (a for a in answers if self.started <= a.started < self.ended), key=lambda a: a.ended
        )
        by_status, longest, run_start, last_bad = {}, 0.0, None, None
        for answer in mine:
            by_status[answer.status] = by_status.get(answer.status, 0) + 1
            if answer.status == 200:
                run_start = None
                continue
            run_start = answer.started if run_start is None else run_start
            longest = max(longest, answer.ended - run_start)
            last_bad = answer
        recovered = (
            next((a.ended for a in mine if a.status == 200 and a.started > last_bad.ended), None)
            if last_bad
            else None
        )
        return {
            "phase": self.name,
            "requests": len(mine),
            "by_status": dict(sorted(by_status.items())),
            "wrong": sorted({a.verdict for a in mine if a.verdict not in ("ok", "unavailable")}),
            "longest_non_200_s": round(longest, 2),
            "slowest_s": round(max((a.ended - a.started for a in mine), default=0.0), 2),
            "recovered_after_s": round(recovered - self.fault_at, 2) if recovered else 0.0,
            **self.notes,
        }


class Topology:
    """Everything above, started under `root` (which the servers' user must be able to
    traverse) and stopped by `close`."""

    def __init__(self, root, pool_lifetime_seconds):
        self.root = root
        self.lifetime = pool_lifetime_seconds
        self.stack = ExitStack()

    def __enter__(self):
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _build(self):
        shutil.rmtree(self.root, ignore_errors=True)
        _owned_dir(self.root).chmod(0o755)  # nginx's workers (nobody) reach their temp dirs
        self.primary = Postgres(self.root / "primary", free_port())
        self.standby = Postgres(self.root / "standby", free_port())
        self.stack.callback(shutil.rmtree, self.root, ignore_errors=True)
        self.stack.callback(self.primary.stop, "immediate")
        self.stack.callback(self.standby.stop, "immediate")
        self._start_primary()
        self._start_standby()
        self.pgbouncer = PgBouncer(
            _owned_dir(self.root / "pgbouncer"), free_port(), self.standby.port
        )
        self.pgbouncer.start()
        self.stack.callback(self.pgbouncer.stop)
        self.apps = [self._app(name) for name in ("a", "b")]
        for instance in self.apps:
            instance.start()
            self.stack.callback(instance.stop)
        self.nginx_base = self.stack.enter_context(
            running_nginx(
                _plain_dir(self.root / "nginx"), [f"127.0.0.1:{app.port}" for app in self.apps]
            )
        )

    def _start_primary(self):
        embedded_postgres.init_cluster(self.primary.data_dir)
        self.primary.start()
        server = make_conninfo(self.primary.url, dbname="postgres")
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        self.world, self.credentials = world()
        with database.connect(self.primary.url) as conn:
            apply_migrations(conn)
            load_fixture(conn, self.world.doc)
            conn.execute(f"ALTER ROLE {API_ROLE} PASSWORD '{API_PASSWORD}'")
            conn.execute((REPO / "deploy" / "pgbouncer-auth.sql").read_text())

    def _start_standby(self):
        _owned_dir(self.standby.data_dir)
        _run(
            PG_BASEBACKUP,
            "-D",
            self.standby.data_dir,
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",
            "-d",
            f"host=127.0.0.1 port={self.primary.port} user=postgres",
        )
        for stale in self.standby.data_dir.glob(".s.PGSQL.*"):
            stale.unlink()
        (self.standby.data_dir / "postmaster.pid").unlink(missing_ok=True)
        self.standby.start()

    def _app(self, name):
        url = (
            f"postgresql://{API_ROLE}:{API_PASSWORD}@127.0.0.1:{self.pgbouncer.port},"
            f"127.0.0.1:{self.primary.port}/{DATABASE}?target_session_attrs=prefer-standby"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "JWT_"))}
        env.update(
            DATABASE_URL=url,
            DB_PREPARED_STATEMENTS="off",
            DB_POOL_MAX_LIFETIME_SECONDS=str(self.lifetime),
            JWT_SECRET_KEY=TEST_SECRET,
            TRUSTED_PROXIES="1",
            PROMETHEUS_MULTIPROC_DIR=str(_plain_dir(self.root / f"metrics-{name}")),
        )
        return AppInstance(free_port(), env, self.root / f"gunicorn-{name}.log")

    def close(self):
        self.stack.close()

    def api_connections_on_primary(self):
        """The app's connections to the primary (its fallback)."""
        with self.primary.connect() as conn:
            return conn.execute(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'apertur-api'"
            ).fetchone()["n"]

    def api_sessions_on_standby(self):
        """PgBouncer's sessions on the standby for the app's role: there only once an app
        connection through PgBouncer has run a query (its lookups run as pgbouncer_auth)."""
        with self.standby.connect() as conn:
            return conn.execute(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = %s", [API_ROLE]
            ).fetchone()["n"]

    def wait_until_back_on_standby(self, within):
        """Seconds until the standby serves the app again, and until no app connection is
        left on the primary (each None if not within `within` seconds)."""
        started = time.monotonic()
        serving = back = None
        while time.monotonic() - started < within and back is None:
            elapsed = round(time.monotonic() - started, 2)
            if serving is None and self.api_sessions_on_standby():
                serving = elapsed
            if self.api_connections_on_primary() == 0:
                back = elapsed
                serving = elapsed if serving is None else serving
            time.sleep(0.1)
        return serving, back

    def readyz_roles(self, asks=8):
        """The database roles the instances' /readyz name, over a few asks (any worker)."""
        return sorted(
            {
                _role_or_error(requests.get(app.base + "/readyz", timeout=5).json())
                for app in self.apps
                for _ in range(asks)
            }
        )

    def expected_bodies(self):
        """Every caller's answer for every endpoint from an instance reading the primary
        directly, with the default settings: what each answer through the topology must be."""
        env = dict(self.apps[0].env, DATABASE_URL=self.primary.url)
        for name in ("DB_PREPARED_STATEMENTS", "DB_POOL_MAX_LIFETIME_SECONDS"):
            env.pop(name)
        reference = AppInstance(free_port(), env, self.root / "gunicorn-reference.log")
        expected = {}
        try:
            reference.start()
            for credential in self.credentials.values():
                for path in ENDPOINTS:
                    response = requests.get(
                        reference.base + path,
                        headers={"Authorization": f"Bearer {credential}"},
                        timeout=10,
                    )
                    assert response.status_code == 200, (path, response.text)
                    expected[credential, path] = response.content
        finally:
            reference.stop()
        return expected

    def login_cached_by_pgbouncer(self):
        """The trap the shipped auth_query avoids: a PgBouncer that knows the password itself
        accepts a login with the standby gone, from its cache, saying in_hot_standby=on, so
        libpq settles on it and only the first query fails. Returns (port libpq chose,
        in_hot_standby it was told, the first query's error) with the standby stopped."""
        listed = f'"{API_ROLE}" "{API_PASSWORD}"'
        cached = PgBouncer(
            _owned_dir(self.root / "pgbouncer-cached"), free_port(), self.standby.port, listed
        )
        cached.start()
        url = (
            f"postgresql://{API_ROLE}:{API_PASSWORD}@127.0.0.1:{cached.port},"
            f"127.0.0.1:{self.primary.port}/{DATABASE}"
            "?target_session_attrs=prefer-standby&connect_timeout=5"
        )
        try:
            with psycopg.connect(url) as conn:  # PgBouncer now has the standby's parameters
                conn.execute("SELECT 1")
            self.standby.stop()
            with psycopg.connect(url, autocommit=True) as conn:
                chosen = (conn.info.port, conn.info.parameter_status("in_hot_standby"))
                try:
                    conn.execute("SELECT 1")
                    error = None
                except psycopg.OperationalError as exc:
                    error = str(exc)
            return (*chosen, error)
        finally:
            cached.stop()
            self.standby.start()

    def reconcile(self):
        env = {**os.environ, "DATABASE_URL": self.primary.url, "JWT_SECRET_KEY": TEST_SECRET}
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "reconcile"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )


def _role_or_error(readiness):
    return readiness.get("role") or readiness.get("error")


def _plain_dir(path):
    path.mkdir(mode=0o777, parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


def run_phases(topology, hold):
    """Each fault under load, `hold` seconds per step; return (phase summaries, facts)."""
    load = Load(topology.nginx_base, topology.expected_bodies())
    phases = []
    survivor = topology.apps[1]

    def phase(name, fault=None):
        """A new phase, begun by `fault` (timed from there) if there is one."""
        current = Phase(name, time.monotonic())
        phases.append(current)
        if fault:
            current.fault_at = time.monotonic()
            fault()
        return current

    def note_way_back(current):
        serving, back = topology.wait_until_back_on_standby(topology.lifetime * 3 + 5)
        current.notes.update(standby_serves_s=serving, back_on_standby_s=back)

    def end(current):
        current.ended = time.monotonic()

    with load.running():
        current = phase("steady")
        time.sleep(hold)
        rss_before = {pid: rss_mb(pid) for pid in survivor.workers()}
        end(current)

        current = phase("app instance killed (kill -9 master)", topology.apps[0].kill_master)
        time.sleep(hold)
        topology.apps[0].start()
        current.notes["both_serve"] = all(
            requests.get(app.base + "/readyz", timeout=5).status_code == 200
            for app in topology.apps
        )
        time.sleep(hold)
        end(current)

        # A crash: no goodbye to PgBouncer.
        current = phase("standby stopped (immediate)", lambda: topology.standby.stop("immediate"))
        time.sleep(max(hold, 4.0))
        current.notes["on_primary"] = topology.api_connections_on_primary()
        current.notes["readyz_roles"] = topology.readyz_roles()
        end(current)

        current = phase("standby started", topology.standby.start)
        note_way_back(current)
        current.notes["readyz_roles"] = topology.readyz_roles()
        time.sleep(hold)
        end(current)

        current = phase("primary restarted", topology.primary.restart)
        time.sleep(hold)
        end(current)

        current = phase("PgBouncer restarted", topology.pgbouncer.restart)
        note_way_back(current)
        time.sleep(hold)
        end(current)

        current = phase("steady again")
        time.sleep(hold)
        end(current)
        rss_after = {pid: rss_mb(pid) for pid in survivor.workers()}
    summaries = [p.summary(load.answers) for p in phases]
    facts = {
        "rss_growth_mb": max(
            (rss_after[pid] - rss_before[pid] for pid in rss_before if pid in rss_after),
            default=None,
        ),
        "answers": len(load.answers),
    }
    return summaries, facts


COLUMNS = (
    "phase",
    "requests",
    "answers by status",
    "wrong",
    "longest non-200 run (s)",
    "recovered after (s)",
    "slowest answer (s)",
    "standby serves (s)",
    "all back on standby (s)",
)


def print_table(summaries, facts):
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + " --- |" * len(COLUMNS))
    for row in summaries:
        statuses = ", ".join(f"{status}: {count}" for status, count in row["by_status"].items())
        cells = (
            row["phase"],
            row["requests"],
            statuses,
            len(row["wrong"]),
            row["longest_non_200_s"],
            row["recovered_after_s"],
            row["slowest_s"],
            row.get("standby_serves_s", ""),
            row.get("back_on_standby_s", ""),
        )
        print("| " + " | ".join(str(cell) for cell in cells) + " |")
    print(f"\nworker RSS growth (surviving instance): {facts['rss_growth_mb']:.1f} MB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="load held per step")
    parser.add_argument("--lifetime", type=float, default=10.0, help="DB_POOL_MAX_LIFETIME_SECONDS")
    args = parser.parse_args()
    if MISSING:
        sys.exit(f"make chaos needs {', '.join(MISSING)} (apt-get install pgbouncer nginx)")
    root = REPO / ".dev" / f"chaos-{os.getpid()}"
    with Topology(root, args.lifetime) as topology:
        summaries, facts = run_phases(topology, args.seconds)
        done = topology.reconcile()
    print_table(summaries, facts)
    print(f"reconcile: {done.stdout.strip().splitlines()[-1] if done.stdout else done.stderr}")
    failed = [row["phase"] for row in summaries if row["wrong"]]
    sys.exit(f"wrong answers in: {', '.join(failed)}" if failed or done.returncode else 0)


if __name__ == "__main__":
    main()
