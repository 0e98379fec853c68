"""`make bench [SIZE=N]`: latency and throughput of every endpoint on a world of N uploads.

For one data size this script keeps a dedicated embedded PostgreSQL in .dev/pgbench-<N>
(generated once, migrated and reused later), serves the API and a constant-JSON framework
floor with real gunicorn, and measures every endpoint for three callers (heavy JWT user,
light JWT user, API key): one sequential client (p50/p99) and wrk with 16 connections
(req/s, p50/p99). It also times each endpoint's two statements (caller check + data query)
alone with pgbench for every caller (the database floor), records EXPLAIN (ANALYZE,
BUFFERS) of every data statement for every caller, and checks the issue's targets. Issue 6
adds filtered rows (status, a 1- and 7-day window), a cursor walk's first and deep steps, a
single upload, the key's own description, and a streamed CSV and NDJSON export of about 1M
rows (where the world has them) with rows/s and the serving worker's RSS. Results go to
bench/results.md, bench/results-<N>.json, bench/explain-<N>.txt and bench/latency.png.
"""

import http.client
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import jwt
import matplotlib
import psycopg

matplotlib.use("Agg")  # the plot is a file: no display needed (before pyplot is imported)

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

import database  # noqa: E402
import embedded_postgres  # noqa: E402
from auth import hash_api_key  # noqa: E402
from processes import free_port, worker_rss_kib  # noqa: E402
from queries import SQL_DIR, list_bounds, parse_queries  # noqa: E402
from queries.generate import generate_world  # noqa: E402
from queries.migrations import apply_migrations  # noqa: E402
from queries.uploads import list_uploads  # noqa: E402

SIZE = int(os.environ.get("SIZE") or (sys.argv[1] if len(sys.argv) > 1 else 1_000_000))
DATA_DIR = REPO / ".dev" / f"pgbench-{SIZE}"
SECRET = "bench-secret-not-for-production-use-0123456789abcdef"
SEQUENTIAL_WARMUP, SEQUENTIAL_REQUESTS, SEQUENTIAL_BUDGET_S = 20, 200, 10
WRK_ARGS = ["-t2", "-c16", "-d5s", "--timeout", "10s", "--latency"]
PGBENCH_SECONDS = 3

CURSOR_DEPTH = 9_900  # the deep cursor step starts where page 100 of 100 rows does
EXPORT_ROWS = 1_000_000  # the heavy user's export is cut to about this many rows by ?from
DAY = timedelta(days=1)


class Endpoint(NamedTuple):
    """One measured endpoint. `label` names its rows in every table and is the request
    path unless `path` gives it per world and caller; `statement` is the (sql file, query)
    the API sends after the caller check, and `params` gives that query's parameters for
    (world, caller) as the Python in queries/ takes them (created_to and after become
    before_at/before_id as there; every parameter not given is NULL)."""

    label: str
    statement: tuple
    params: Callable
    path: Callable = None
    callers: tuple = ("heavy JWT", "light JWT", "API key")


def listed(limit, offset=0, with_total=True, **filters):
    """Fixed parameters of a list query: page mode counts its total; recent lists, cursor
    steps and export batches do not (with_total=False)."""
    return lambda world, caller: dict(filters, limit=limit, offset=offset, with_total=with_total)


def windowed(span):
    """A page of 20 uploads in the world's last full `span` ("day" or "week")."""
    return lambda world, caller: dict(
        limit=20, offset=0, with_total=True, created_from=world[span][0], created_to=world[span][1]
    )


def window_path(span):
    return lambda world, caller: (
        f"/api/v1/uploads?from={iso_z(world[span][0])}&to={iso_z(world[span][1])}"
    )


UPLOADS, SESSIONS = ("uploads.sql", "list_uploads"), ("sessions.sql", "list_sessions")
ENDPOINTS = [
    Endpoint("/api/v1/stats", ("stats.sql", "project_stats"), lambda world, caller: {}),
    Endpoint("/api/v1/sessions/recent", SESSIONS, listed(10, with_total=False)),
    Endpoint("/api/v1/uploads/recent", UPLOADS, listed(10, with_total=False)),
    Endpoint("/api/v1/sessions", SESSIONS, listed(20)),
    Endpoint("/api/v1/sessions?pageSize=100", SESSIONS, listed(100)),
    Endpoint("/api/v1/sessions?page=100&pageSize=100", SESSIONS, listed(100, 9900)),
    Endpoint("/api/v1/uploads", UPLOADS, listed(20)),
    Endpoint("/api/v1/uploads?pageSize=100", UPLOADS, listed(100)),
    Endpoint("/api/v1/uploads?page=100&pageSize=100", UPLOADS, listed(100, 9900)),
    # Issue 6: filters, cursor walks, single resources, the key's own description.
    Endpoint("/api/v1/uploads?status=failed", UPLOADS, listed(20, statuses=["failed"])),
    Endpoint("/api/v1/uploads?status=delivered", UPLOADS, listed(20, statuses=["delivered"])),
    Endpoint("/api/v1/uploads?from=…&to=… (1 day)", UPLOADS, windowed("day"), window_path("day")),
    Endpoint(
        "/api/v1/uploads?from=…&to=… (7 days)", UPLOADS, windowed("week"), window_path("week")
    ),
    Endpoint("/api/v1/sessions?status=expired", SESSIONS, listed(20, statuses=["expired"])),
    # A cursor step reads one row more than its page, to tell whether the walk goes on.
    Endpoint("/api/v1/uploads?cursor=&pageSize=100", UPLOADS, listed(101, with_total=False)),
    Endpoint(
        f"/api/v1/uploads?cursor=…&pageSize=100 (after {CURSOR_DEPTH:,} rows)",
        UPLOADS,
        lambda world, caller: dict(
            limit=101, offset=0, with_total=False, after=world["cursor"][caller]["after"]
        ),
        lambda world, caller: (
            "/api/v1/uploads?pageSize=100&cursor=" + world["cursor"][caller]["token"]
        ),
    ),
    Endpoint(
        "/api/v1/uploads/{id}",
        UPLOADS,
        lambda world, caller: dict(
            limit=1, offset=0, with_total=False, upload_id=world["cursor"][caller]["next_id"]
        ),
        lambda world, caller: f"/api/v1/uploads/{world['cursor'][caller]['next_id']}",
    ),
    Endpoint(
        "/api/v1/keys/current",
        ("callers.sql", "describe_api_key"),
        lambda world, caller: {},
        callers=("API key",),
    ),
]
# BENCH_ONLY=<regex> measures only the endpoints whose label it finds, without exports, to
# try a change quickly: it prints its table and keeps the full run's result files.
PARTIAL = bool(os.environ.get("BENCH_ONLY"))
if PARTIAL:
    ENDPOINTS = [e for e in ENDPOINTS if re.search(os.environ["BENCH_ONLY"], e.label)]
CALLERS = ("heavy JWT", "light JWT", "API key")
FLOOR = "(framework floor)"

# The targets: medians with one client, set for 10M uploads (checked at any size).
TARGET_P50_MS = {
    "/api/v1/stats": 1.5,
    "/api/v1/sessions/recent": 1.5,
    "/api/v1/uploads/recent": 1.5,
    "/api/v1/sessions": 2.5,
    "/api/v1/uploads": 2.5,
    "/api/v1/sessions?pageSize=100": 6,
    "/api/v1/uploads?pageSize=100": 6,
    "/api/v1/sessions?page=100&pageSize=100": 25,
    "/api/v1/uploads?page=100&pageSize=100": 25,
    # Issue 6: a status filter and a date window, each p50 <= 20 ms.
    "/api/v1/uploads?status=failed": 20,
    "/api/v1/uploads?status=delivered": 20,
    "/api/v1/sessions?status=expired": 20,
    "/api/v1/uploads?from=…&to=… (1 day)": 20,
    "/api/v1/uploads?from=…&to=… (7 days)": 20,
}
TARGET_EXPORT_RSS_RISE_MB = 50  # issue 6: a streamed export holds one batch at a time
TARGET_SHARE_OF_FLOOR = {"/api/v1/uploads/recent": 0.35, "/api/v1/stats": 0.50}  # wrk req/s
TARGET_RSS_MB = 150
SCALING_SIZE, TARGET_SCALING = 100_000, 1.3  # p50 at most 1.3x its p50 at 100k uploads


# ---------------------------------------------------------------- database


def prepare_database():
    """Start this size's PostgreSQL, generate the world once, migrate; return (url, callers).

    A database generated by an earlier version is kept (generating 10M uploads takes long)
    but gets the migrations added since; after any, VACUUM ANALYZE so new indexes are
    planned with fresh statistics and walked index-only.
    """
    url = tune_server(embedded_postgres.start(DATA_DIR))
    callers_file = DATA_DIR / "bench-callers.json"
    with database.connect(url) as conn:
        applied = apply_migrations(conn)
        if applied:
            print(f"applied migrations: {', '.join(applied)}", flush=True)
        if callers_file.exists():
            callers = json.loads(callers_file.read_text())
        else:
            callers = generate(conn)  # generate_world ends with its own VACUUM ANALYZE
            callers_file.write_text(json.dumps(callers))
    if applied:
        with database.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    return url, callers


# The bench server is tuned as a production one would be for this machine (defaults
# assume 128 MB of shared buffers and spinning disks); see docs/scaling.md.
SERVER_SETTINGS = {
    "shared_buffers": "4GB",
    "effective_cache_size": "12GB",
    "random_page_cost": "1.1",
    "work_mem": "16MB",
}


def tune_server(url):
    """Apply SERVER_SETTINGS (ALTER SYSTEM), restarting the server when one needs it."""
    with database.connect(url, autocommit=True) as conn:
        current = {name: conn.execute(f"SHOW {name}").fetchone()[name] for name in SERVER_SETTINGS}
        changed = {name: value for name, value in SERVER_SETTINGS.items() if current[name] != value}
        for name, value in changed.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    if not changed:
        return url
    print(f"server settings: {changed}; restarting PostgreSQL", flush=True)
    embedded_postgres.stop(DATA_DIR)
    return embedded_postgres.start(DATA_DIR)


def generate(conn):
    """Generate SIZE uploads; return the callers and how long it took (shown in results.md)."""
    print(f"generating {SIZE:,} uploads (once per size) ...", flush=True)
    started = time.monotonic()
    row = generate_world(conn, uploads=SIZE, seed=1)
    seconds = time.monotonic() - started
    print(f"generated in {seconds:.0f} s", flush=True)
    return {
        "heavy_user_id": str(row["heavy_user_id"]),
        "light_user_id": str(row["light_user_id"]),
        "api_key": row["api_key"],
        "generated_seconds": round(seconds),
    }


def caller_scopes(callers):
    """The scope arguments of each caller, as auth.Caller.scope passes them to the SQL."""
    return {
        "heavy JWT": {"user_id": callers["heavy_user_id"], "key_hash": None},
        "light JWT": {"user_id": callers["light_user_id"], "key_hash": None},
        "API key": {"user_id": None, "key_hash": hash_api_key(callers["api_key"])},
    }


def data_params(query, endpoint, world, caller, scope):
    """The data query's parameters for one caller, as queries/ fills them: the scope, the
    endpoint's own, before_at/before_id from (created_to, after) via queries.list_bounds,
    and NULL for every other parameter the statement declares."""
    given = dict(endpoint.params(world, caller))
    if "created_to" in given or "after" in given:
        given["before_at"], given["before_id"] = list_bounds(
            given.pop("created_to", None), given.pop("after", None)
        )
    unknown = set(given) - query.params
    required = {"limit", "offset", "with_total"} & query.params
    if unknown or required - set(given):
        raise SystemExit(
            f"{endpoint.label}: {query.name} does not take {sorted(unknown)} "
            f"or misses {sorted(required - set(given))}"
        )
    params = dict.fromkeys(query.params)
    params.update({name: value for name, value in scope.items() if name in query.params})
    params.update(given)
    return params


def endpoint_statements(cursor, queries, endpoint, world, caller, scope):
    """The endpoint's two statements for one caller, rendered with literal parameters:
    the caller check and the data query, as auth.read_in_scope sends them."""
    filename, name = endpoint.statement
    if scope["key_hash"] is None:
        check = ("find_user", {"user_id": scope["user_id"]})
    else:
        check = ("find_api_key", {"key_hash": scope["key_hash"]})
    query = queries[filename][name]
    params = data_params(query, endpoint, world, caller, scope)
    return [
        pgbench_safe(cursor.mogrify(queries["callers.sql"][check[0]].sql, check[1])),
        pgbench_safe(cursor.mogrify(query.sql, params)),
    ]


_TIMESTAMP_LITERAL = re.compile(
    r"'(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d(?:\.\d+)?)\+00(?::00)?'::timestamptz"
)


def pgbench_safe(statement):
    """The statement without colons in literals: pgbench reads `:name` in a script as a
    variable (so '… 12:05:00+00' would be), hence timestamps (always UTC here) are written
    as make_timestamptz(…, 'UTC'), the same instant to the microsecond."""
    statement = _TIMESTAMP_LITERAL.sub(
        lambda m: "make_timestamptz({}, {}, {}, {}, {}, {}, 'UTC')".format(
            *(int(part) for part in m.groups()[:5]), m.group(6)
        ),
        statement,
    )
    if re.search(r"(?<!:):(?=\w)", statement):
        raise SystemExit("a literal with a colon would reach pgbench: " + statement[:200])
    return statement


def db_floor(url, statements):
    """pgbench one client for PGBENCH_SECONDS on the statements; return (avg ms, tps).

    -M prepared: plans are made once per connection, as psycopg does for the API's
    repeated queries, so the figure is execution time only.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write("".join(statement + ";\n" for statement in statements))
    try:
        output = subprocess.run(
            [
                embedded_postgres.pg_binary("pgbench"),
                "-n",
                "-M",
                "prepared",
                "-f",
                script.name,
                "-T",
                str(PGBENCH_SECONDS),
                "-c",
                "1",
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    latency = float(re.search(r"latency average = ([\d.]+) ms", output).group(1))
    tps = float(re.search(r"tps = ([\d.]+)", output).group(1))
    return latency, tps


def explain_all(conn, rendered):
    """EXPLAIN (ANALYZE, BUFFERS) text of every endpoint's data statement, per caller."""
    parts = []
    for (path, caller), (_, statement) in rendered.items():
        plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement).fetchall()
        parts.append(
            f"=== {path} ({caller})\n" + "\n".join(row["QUERY PLAN"] for row in plan) + "\n"
        )
    return "\n".join(parts)


# ---------------------------------------------------------------- servers


def start_gunicorn(app_spec, env):
    """Start gunicorn on app_spec with the production config (gunicorn.conf.py, read from
    the repository root); return (process, port) once it answers."""
    port = free_port()
    log = DATA_DIR / f"gunicorn-{app_spec.replace(':', '-')}.log"  # a JSON line per request
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                app_spec,
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            get(port, "/", None)
            return server, port
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"gunicorn {app_spec} did not start; see {log}")


def stop(server):
    """Terminate a gunicorn master and wait for it."""
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()


def mint_token(user_id):
    """An HS256 access token for user_id, valid for an hour."""
    claims = {"sub": user_id, "type": "access", "exp": int(time.time()) + 3600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


# ---------------------------------------------------------------- load


def get(port, path, credential):
    """One GET on a fresh connection; return its status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def percentile(sorted_values, pct):
    """Nearest-rank percentile of an already sorted list."""
    index = max(0, -(-len(sorted_values) * pct // 100) - 1)
    return sorted_values[int(index)]


def one_client(port, path, credential):
    """Sequential requests after a warm-up; return (p50 ms, p99 ms). Fails on a non-200.

    Slow endpoints stop early, after SEQUENTIAL_BUDGET_S with at least 20 timed requests,
    to keep the run within minutes.
    """
    deadline = time.monotonic() + SEQUENTIAL_BUDGET_S / 4
    for count in range(SEQUENTIAL_WARMUP):
        status = get(port, path, credential)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}")
        if count >= 2 and time.monotonic() > deadline:
            break
    timings = []
    deadline = time.monotonic() + SEQUENTIAL_BUDGET_S
    while len(timings) < SEQUENTIAL_REQUESTS and (len(timings) < 20 or time.monotonic() < deadline):
        started = time.perf_counter()
        get(port, path, credential)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return percentile(timings, 50), percentile(timings, 99)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _wrk_ms(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS_MS[unit]


def run_wrk(port, path, credential):
    """wrk -t2 -c16 -d5s on one path; return {rps, p50_ms, p99_ms, errors}."""
    headers = ["-H", f"Authorization: Bearer {credential}"] if credential else []
    output = subprocess.run(
        ["wrk", *WRK_ARGS, *headers, f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _wrk_ms(re.search(r"\s50%\s+(\S+)", output).group(1)),
        "p99_ms": _wrk_ms(re.search(r"\s99%\s+(\S+)", output).group(1)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else None,
    }


def measure(port, path, credential):
    """Both load shapes for one path and credential."""
    p50, p99 = one_client(port, path, credential)
    return {"seq_p50_ms": p50, "seq_p99_ms": p99, "wrk": run_wrk(port, path, credential)}


# ---------------------------------------------------------------- reporting


def machine_note():
    """CPU model, core count, memory and OS in one line."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return (
        f"{model}, {os.cpu_count()} CPUs, {mem_kib / 1048576:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}; "
        "wrk, gunicorn and PostgreSQL share the machine"
    )


def table_rows(results):
    """One list of cells per measured row, in display order."""
    floor_rps = results["floor"]["wrk"]["rps"]
    rows = []
    for entry in results["rows"] + [dict(results["floor"], path=FLOOR, caller="-")]:
        wrk = entry["wrk"]
        db = entry.get("db_floor_ms")
        rows.append(
            [
                entry["path"],
                entry["caller"],
                f"{entry['seq_p50_ms']:.1f}",
                f"{entry['seq_p99_ms']:.1f}",
                f"{wrk['rps']:.0f}",
                f"{wrk['p50_ms']:.1f}",
                f"{wrk['p99_ms']:.1f}",
                f"{100 * wrk['rps'] / floor_rps:.0f} %",
                "-" if db is None else f"{db:.2f}",
            ]
        )
    return rows


HEADERS = [
    "endpoint",
    "caller",
    "1-client p50 ms",
    "p99 ms",
    "16-conn req/s",
    "p50 ms",
    "p99 ms",
    "% of floor req/s",
    "DB floor ms",
]


def print_table(results):
    """The results as an aligned text table."""
    rows = [HEADERS] + table_rows(results)
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def mib_list(rss_kib):
    """Worker RSS figures in MiB, comma-separated."""
    return ", ".join(f"{kib / 1024:.0f} MiB" for kib in rss_kib.values())


def world_note(world):
    """What the issue-6 rows read in this world, in one paragraph."""
    depths = ", ".join(
        f"{caller} {facts['depth']:,} (of {facts['total']:,} uploads)"
        for caller, facts in world["cursor"].items()
    )
    export = world["export"]
    window = (
        f"`from` = the createdAt of its {EXPORT_ROWS:,}th newest upload, "
        f"{iso_z(export['created_from'])}"
        if export["created_from"]
        else "all of its uploads (it has fewer than the 1M aimed at)"
    )
    return (
        f"Issue-6 rows: date windows are the last full UTC day "
        f"({iso_z(world['day'][0])} .. {iso_z(world['day'][1])}) and the last 7 full days "
        f"(from {iso_z(world['week'][0])}) before the day of the world's newest upload "
        f"({iso_z(world['newest_upload'])}; recent days are the densest); `status` rows "
        f"are page 1 of 20 with their total. The cursor rows walk by 100 "
        f"(`pageSize=100`); the deep step starts after (caller: rows) {depths}, the same "
        f"rows as page 100 where the list is that long. `/uploads/{{id}}` reads the upload "
        f"just after that position (with its deliveries). Exports: the heavy user's "
        f"uploads, {window}: {export['rows']:,} rows."
    )


EXPORT_HEADERS = [
    "export",
    "rows received",
    "of expected",
    "seconds",
    "rows/s",
    "MB/s",
    "first byte ms",
    "worker RSS before MiB",
    "max MiB",
    "after MiB",
    "rise MiB",
]


def export_rows(results):
    """One list of cells per export measurement."""
    cells = []
    for e in results.get("exports", []):
        after = e["rss_after_kib"]
        cells.append(
            [
                e["format"],
                f"{e['rows']:,}",
                f"{e['expected_rows']:,}",
                f"{e['seconds']:.1f}",
                f"{e['rows_per_s']:,.0f}",
                f"{e['bytes'] / e['seconds'] / 1e6:.1f}",
                f"{e['first_byte_ms']:.0f}",
                f"{e['rss_before_kib'] / 1024:.1f}",
                f"{e['rss_max_kib'] / 1024:.1f}",
                "-" if after is None else f"{after / 1024:.1f}",
                f"{(e['rss_max_kib'] - e['rss_before_kib']) / 1024:.1f}",
            ]
        )
    return cells


def print_exports(results):
    """The export measurements as an aligned text table."""
    if not results.get("exports"):
        return
    rows = [EXPORT_HEADERS] + export_rows(results)
    widths = [max(len(row[i]) for row in rows) for i in range(len(EXPORT_HEADERS))]
    print(f"exports (heavy JWT, {results['exports'][0]['path'].split('&', 1)[-1]}):")
    for row in rows:
        print(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def markdown_section(results):
    """The Markdown section of bench/results.md for this size."""
    generated = results.get("generated_seconds")
    checks = results["targets"]
    lines = [
        f"## {results['size']:,} uploads",
        "",
        f"Run {results['date']} on {results['machine']}. "
        + (f"Database generated in {generated:,} s. " if generated is not None else "")
        + f"Heavy user: {results['heavy_projects']} projects in scope. gunicorn: the "
        f"production config, {len(results['rss_kib'])} sync workers; 1 client = "
        "sequential requests on fresh connections (200 after 20 warm-up, or as many as "
        "fit in 10 s, at least 20); "
        "16 conn = `wrk -t2 -c16 -d5s`; DB floor = the endpoint's two statements for that "
        "caller: caller check + data query (pgbench -M prepared, 1 client, "
        f"{PGBENCH_SECONDS} s, literals; sent one after the other, no transaction "
        f"wrapper). Max worker RSS during the run: {mib_list(results['max_rss_kib'])} "
        f"(at the end: {mib_list(results['rss_kib'])})."
        + (
            " 1-minute load average when the HTTP measurements began and ended: "
            f"{results['load_average'][0]:.1f}, {results['load_average'][1]:.1f} (2 CPUs; "
            "above ~2, other work shared the machine)."
            if results.get("load_average")
            else ""
        ),
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(HEADERS) - 2)) + "|",
    ]
    for row in table_rows(results):
        endpoint = f"`{row[0]}`" if row[0].startswith("/") else row[0]
        lines.append("| " + " | ".join([endpoint] + row[1:]) + " |")
    if results.get("world"):
        lines += ["", results["world"]]
    if results.get("exports"):
        lines += [
            "",
            "Streamed exports through the same gunicorn (the heavy user, "
            "`/api/v1/uploads?format=…` with the `from` above; rows counted as received "
            "lines, less CSV's header; RSS of the worker that served it, sampled every "
            "50 ms, and 2 s after the end):",
            "",
            "| " + " | ".join(EXPORT_HEADERS) + " |",
            "|---|" + "---:|" * (len(EXPORT_HEADERS) - 1),
        ]
        lines += ["| " + " | ".join(row) + " |" for row in export_rows(results)]
    lines += ["", targets_heading(results["size"], checks) + ".", ""]
    lines += [f"- {verdict(met)}: {text}" for met, text in checks]
    return "\n".join(lines) + "\n"


def write_markdown(results):
    """Replace (or add) this size's section of bench/results.md, sections ordered by size."""
    path = BENCH_DIR / "results.md"
    text = path.read_text() if path.exists() else ""
    sections = {}
    for chunk in re.split(r"(?m)^(?=## [\d,]+ uploads$)", text):
        match = re.match(r"## ([\d,]+) uploads", chunk)
        if match:
            sections[int(match.group(1).replace(",", ""))] = chunk.rstrip() + "\n"
    sections[results["size"]] = markdown_section(results)
    header = (
        "# Benchmarks\n\nGenerated by `make bench SIZE=N` (bench/run.py); "
        "plans in bench/explain-N.txt, raw numbers in bench/results-N.json, "
        "1-client p50 against size in bench/latency.png.\n"
    )
    path.write_text(header + "".join("\n" + sections[size] for size in sorted(sections)))


# matplotlib's tab10 without its grey, then tab20's lighter shades without its greys: one
# colour an endpoint; line style is the caller.
ENDPOINT_COLOURS = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#dbdb8d",
    "#9edae5",
]
CALLER_STYLES = {"heavy JWT": "-", "light JWT": "--", "API key": ":"}


def write_png():
    """Plot 1-client p50 against size, from every bench/results-*.json, to bench/latency.png.

    Colour is the endpoint, line style the caller; the framework floor is black.
    """
    runs = sorted(
        (json.loads(p.read_text()) for p in BENCH_DIR.glob("results-*.json")),
        key=lambda run: run["size"],
    )
    series = {}
    for run in runs:
        for row in run["rows"] + [dict(run["floor"], path=FLOOR, caller="-")]:
            series.setdefault((row["path"], row["caller"]), []).append(
                (run["size"], row["seq_p50_ms"])
            )
    paths = [endpoint.label for endpoint in ENDPOINTS]
    paths += sorted({path for path, _ in series} - set(paths) - {FLOOR})  # older runs' paths
    colours = dict(zip(paths, ENDPOINT_COLOURS, strict=False), **{FLOOR: "black"})
    fig, ax = plt.subplots(figsize=(11, 6))
    for (path, caller), points in series.items():
        sizes, p50s = zip(*points, strict=True)
        ax.plot(
            sizes,
            p50s,
            color=colours.get(path, "grey"),
            marker="o",
            markersize=3,
            linestyle=CALLER_STYLES.get(caller, "-"),
            linewidth=1.5,
        )
    # Log on both axes: sizes grow tenfold, and equal ratios (the 1.3x flatness target)
    # should look equal whether an endpoint takes 2 ms or 200.
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([run["size"] for run in runs], [f"{run['size']:,}" for run in runs])
    ax.minorticks_off()
    ax.yaxis.set_major_formatter(FuncFormatter(lambda ms, _: f"{ms:g}"))
    ax.set_xlabel("uploads in the database")
    ax.set_ylabel("1-client p50 latency (ms)")
    ax.set_title("1-client p50 latency against data size")
    ax.grid(True, which="both", color="#eee")
    handles = [
        Line2D([], [], color=colours.get(path, "grey"), linewidth=2, label=path)
        for path in paths
        if any(key[0] == path for key in series)
    ]
    handles.append(Line2D([], [], color="black", linewidth=2, label=FLOOR))
    handles += [
        Line2D([], [], color="grey", linestyle=style, linewidth=2, label=caller)
        for caller, style in CALLER_STYLES.items()
    ]
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=9, frameon=False
    )
    fig.savefig(BENCH_DIR / "latency.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


# ---------------------------------------------------------------- targets


def target_checks(results, baseline):
    """The issue's targets against this run, per endpoint and caller: [(met, text)].

    met is None where a target cannot be judged here. baseline maps (path, caller) to the
    1-client p50 at SCALING_SIZE, or is None when there is no larger-size comparison.
    """
    floor_rps = results["floor"]["wrk"]["rps"]
    checks = []
    for row in results["rows"]:
        path, p50, rps = row["path"], row["seq_p50_ms"], row["wrk"]["rps"]
        name = f"`{path}` {row['caller']}"
        if path in TARGET_P50_MS:
            limit = TARGET_P50_MS[path]
            checks.append((p50 <= limit, f"{name}: 1-client p50 {p50:.2f} ms (<= {limit} ms)"))
        if path in TARGET_SHARE_OF_FLOOR:
            share = TARGET_SHARE_OF_FLOOR[path]
            checks.append(
                (
                    rps >= share * floor_rps,
                    f"{name}: 16 conn {rps:.0f} req/s, {rps / floor_rps:.0%} of the "
                    f"floor's {floor_rps:.0f} (>= {share:.0%})",
                )
            )
        base = (baseline or {}).get((path, row["caller"]))
        if base:
            checks.append(
                (
                    p50 <= TARGET_SCALING * base,
                    f"{name}: p50 {p50:.2f} ms, {p50 / base:.2f}x its {base:.2f} ms at "
                    f"{SCALING_SIZE:,} uploads (<= {TARGET_SCALING}x)",
                )
            )
    for pid, kib in results["max_rss_kib"].items():
        mb = kib * 1024 / 1e6
        checks.append(
            (mb < TARGET_RSS_MB, f"worker {pid}: max RSS {mb:.0f} MB (< {TARGET_RSS_MB} MB)")
        )
    for e in results.get("exports", []):
        rise = (e["rss_max_kib"] - e["rss_before_kib"]) * 1024 / 1e6
        checks.append(
            (
                rise < TARGET_EXPORT_RSS_RISE_MB,
                f"export {e['format']} ({e['rows']:,} rows): serving worker's RSS rose "
                f"{rise:.1f} MB (< {TARGET_EXPORT_RSS_RISE_MB} MB)",
            )
        )
        checks.append(
            (
                e["complete"] and e["rows"] == e["expected_rows"],
                f"export {e['format']}: {e['rows']:,} rows received of "
                f"{e['expected_rows']:,} matching",
            )
        )
    if baseline is None:
        checks.append(
            (
                None,
                f"flat scaling: judged only for sizes above {SCALING_SIZE:,}, "
                f"against bench/results-{SCALING_SIZE}.json",
            )
        )
    return checks


def scaling_baseline():
    """{(path, caller): 1-client p50} at SCALING_SIZE, when this run is larger and it exists."""
    path = BENCH_DIR / f"results-{SCALING_SIZE}.json"
    if SIZE <= SCALING_SIZE or not path.exists():
        return None
    return {
        (row["path"], row["caller"]): row["seq_p50_ms"]
        for row in json.loads(path.read_text())["rows"]
    }


def verdict(met):
    """met / missed / n/a."""
    return "n/a" if met is None else "met" if met else "missed"


def targets_heading(size, checks):
    """One line: how many targets this size met."""
    judged = [met for met, _ in checks if met is not None]
    return (
        f"Targets (issue: one client, medians, at 10,000,000 uploads; checked here at "
        f"{size:,}): {sum(judged)} of {len(judged)} met"
    )


# ---------------------------------------------------------------- main


def iso_z(moment):
    """A UTC instant as ISO 8601 with Z, to the microsecond when it has any."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def world_facts(conn, scopes):
    """What the new rows read, chosen from this world's data.

    - day / week: the last full UTC day / 7 days before the day of the newest upload
      (the world ends at its generation time and is densest there: recent sessions are
      weighted);
    - cursor: per caller, the position after CURSOR_DEPTH rows of its upload list (less,
      on a whole number of 100-row pages, when the list is shorter), the id of the row
      after it (the cursor step's first row, and the single upload read by /uploads/{id}),
      and the caller's upload total;
    - export: the heavy user's export window (from = the createdAt of its EXPORT_ROWS-th
      newest upload, or none when it has fewer) and the exact number of rows it holds.
    """
    newest = conn.execute("SELECT max(created_at) AS at FROM uploads").fetchone()["at"]
    end = newest.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    facts = {
        "newest_upload": newest,
        "day": (end - DAY, end),
        "week": (end - 7 * DAY, end),
        "cursor": {},
    }
    for caller, scope in scopes.items():
        total = list_uploads(conn, **scope, limit=1).fetchone()["total"]
        depth = max(0, min(CURSOR_DEPTH, (total - 1) // 100 * 100))
        after = None
        if depth:
            rows = list_uploads(
                conn, **scope, limit=100, offset=depth - 100, with_total=False
            ).fetchall()
            after = (rows[-1]["created_at"], rows[-1]["id"])
        following = list_uploads(conn, **scope, limit=1, after=after, with_total=False).fetchone()
        facts["cursor"][caller] = {
            "depth": depth,
            "after": after,
            "total": total,
            "next_id": following["id"],
        }
    heavy = scopes["heavy JWT"]
    created_from = None
    if facts["cursor"]["heavy JWT"]["total"] > EXPORT_ROWS:
        created_from = list_uploads(
            conn, **heavy, limit=1, offset=EXPORT_ROWS - 1, with_total=False
        ).fetchone()["created_at"]
    expected = list_uploads(conn, **heavy, limit=1, created_from=created_from).fetchone()["total"]
    facts["export"] = {"created_from": created_from, "rows": expected}
    return facts


def database_side(url, scopes):
    """World facts, DB floor per endpoint and caller, and the EXPLAIN file.

    Returns ({(label, caller): (ms, tps)}, the number of projects in the heavy user's
    scope, the world facts).
    """
    queries = {
        name: parse_queries((SQL_DIR / name).read_text(encoding="utf-8"))
        for name in ("callers.sql", "stats.sql", "sessions.sql", "uploads.sql")
    }
    with database.connect(url, autocommit=True) as conn:
        started = time.monotonic()
        world = world_facts(conn, scopes)
        print(
            f"world facts in {time.monotonic() - started:.1f} s: windows ending "
            f"{iso_z(world['day'][1])}; cursor depths "
            f"{ {c: f['depth'] for c, f in world['cursor'].items()} }; export from "
            f"{world['export']['created_from']} ({world['export']['rows']:,} rows)",
            flush=True,
        )
        cursor = psycopg.ClientCursor(conn)
        rendered = {
            (endpoint.label, caller): endpoint_statements(
                cursor, queries, endpoint, world, caller, scopes[caller]
            )
            for endpoint in ENDPOINTS
            for caller in endpoint.callers
        }
        heavy_projects = conn.execute(
            "SELECT count(*) AS n FROM caller_projects(%(user_id)s, %(key_hash)s)",
            scopes["heavy JWT"],
        ).fetchone()["n"]
        explain_file = BENCH_DIR / f"explain-{SIZE}{'-partial' if PARTIAL else ''}.txt"
        explain_file.write_text(
            f"EXPLAIN (ANALYZE, BUFFERS) of each endpoint's data statement per caller (heavy "
            f"user: {heavy_projects} projects), {SIZE:,} uploads, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; windows: 1 day "
            f"{iso_z(world['day'][0])} .. {iso_z(world['day'][1])}, 7 days from "
            f"{iso_z(world['week'][0])}\n\n" + explain_all(conn, rendered)
        )
    floors = {}
    for (label, caller), statements in rendered.items():
        floors[label, caller] = ms, tps = db_floor(url, statements)
        print(f"DB floor {label} {caller}: {ms:.2f} ms ({tps:.0f} tps)", flush=True)
    return floors, heavy_projects, world


def sample_rss(master_pid, peaks):
    """The workers' RSS now (pid -> KiB), folded into peaks (pid -> max KiB so far)."""
    now = {str(pid): kib for pid, kib in worker_rss_kib(master_pid).items()}
    for pid, kib in now.items():
        peaks[pid] = max(kib, peaks.get(pid, 0))
    return now


def get_json(port, path, credential):
    """One GET; its JSON body (fails on a non-200)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {credential}"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"GET {path} answered {response.status}: {body[:300]!r}")
        return json.loads(body)
    finally:
        conn.close()


def walk_cursors(port, credentials, world):
    """Walk each caller's uploads by cursor (100 a step) to the depth world_facts chose,
    keeping the cursor there; check that the step after it starts at the row the
    database put there, so the HTTP and database rows measure the same thing."""
    for caller, facts in world["cursor"].items():
        token = ""
        for _ in range(facts["depth"] // 100):
            token = get_json(
                port, f"/api/v1/uploads?pageSize=100&cursor={token}", credentials[caller]
            )["nextCursor"]
        data = get_json(port, f"/api/v1/uploads?pageSize=100&cursor={token}", credentials[caller])[
            "data"
        ]
        first = data[0]["id"] if data else None
        if first != (str(facts["next_id"]) if facts["next_id"] else None):
            raise SystemExit(
                f"{caller}: the cursor walk after {facts['depth']} rows starts at "
                f"{first}, the database says {facts['next_id']}"
            )
        facts["token"] = token


def http_side(api_pid, port, floor_port, credentials, world):
    """Measure every endpoint for every caller, and the floor, sampling the API workers'
    RSS after every row; return (rows, floor, end RSS, max RSS so far)."""
    rows, peaks = [], {}
    for endpoint in ENDPOINTS:
        for caller in endpoint.callers:
            path = endpoint.path(world, caller) if endpoint.path else endpoint.label
            result = measure(port, path, credentials[caller])
            rows.append(dict(result, path=endpoint.label, caller=caller))
            sample_rss(api_pid, peaks)
            print(
                f"{endpoint.label:<50} {caller:<10} 1-client p50 "
                f"{result['seq_p50_ms']:6.1f} ms   wrk {result['wrk']['rps']:6.0f} req/s",
                flush=True,
            )
    floor = measure(floor_port, "/", None)
    return rows, floor, sample_rss(api_pid, peaks), peaks


def export_path(world, export_format):
    created_from = world["export"]["created_from"]
    return f"/api/v1/uploads?format={export_format}" + (
        f"&from={iso_z(created_from)}" if created_from else ""
    )


def measure_export(api_pid, port, credential, world, export_format, peaks):
    """Stream the heavy user's export once through gunicorn: rows received (lines, less
    CSV's header), rows/s, and the serving worker's RSS before, at most during (sampled
    every 50 ms) and 2 s after. The serving worker is the one whose RSS rose most."""
    path = export_path(world, export_format)
    before = worker_rss_kib(api_pid)
    during = dict(before)
    done = threading.Event()

    def sampler():
        while not done.wait(0.05):
            for pid, kib in worker_rss_kib(api_pid).items():
                during[pid] = max(kib, during.get(pid, 0))

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    lines = size = 0
    complete = True
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {credential}"})
        response = conn.getresponse()
        if response.status != 200:
            raise SystemExit(f"GET {path} answered {response.status}: {response.read()[:300]!r}")
        first_byte_s = time.perf_counter() - started
        try:
            while chunk := response.read(1 << 16):
                lines += chunk.count(b"\n")
                size += len(chunk)
        except http.client.IncompleteRead as exc:  # the stream was cut short
            lines += exc.partial.count(b"\n")
            complete = False
    finally:
        conn.close()
    seconds = time.perf_counter() - started
    done.set()
    thread.join()
    time.sleep(2)
    after = worker_rss_kib(api_pid)
    pid = max(before, key=lambda p: during.get(p, 0) - before[p])
    for worker, kib in during.items():
        peaks[str(worker)] = max(kib, peaks.get(str(worker), 0))
    rows = lines - (1 if export_format == "csv" else 0)
    result = {
        "format": export_format,
        "path": path,
        "rows": rows,
        "expected_rows": world["export"]["rows"],
        "complete": complete,
        "bytes": size,
        "seconds": seconds,
        "first_byte_ms": first_byte_s * 1000,
        "rows_per_s": rows / seconds,
        "worker": pid,
        "rss_before_kib": before[pid],
        "rss_max_kib": during[pid],
        "rss_after_kib": after.get(pid),
    }
    print(
        f"export {export_format}: {rows:,} rows of {result['expected_rows']:,} in "
        f"{seconds:.1f} s ({result['rows_per_s']:,.0f} rows/s, {size / seconds / 1e6:.1f} "
        f"MB/s); worker RSS {before[pid] / 1024:.1f} -> max {during[pid] / 1024:.1f} -> "
        f"{(after.get(pid) or 0) / 1024:.1f} MiB",
        flush=True,
    )
    return result


def main():
    """Prepare, serve, measure, report; always stop what was started."""
    url, callers = prepare_database()
    floors, heavy_projects, world = database_side(url, caller_scopes(callers))
    env = dict(os.environ, DATABASE_URL=url, JWT_SECRET_KEY=SECRET, APERTUR_ENV="production")
    credentials = {
        "heavy JWT": mint_token(callers["heavy_user_id"]),
        "light JWT": mint_token(callers["light_user_id"]),
        "API key": callers["api_key"],
    }
    servers = []
    try:
        api, port = start_gunicorn("wsgi:app", env)
        servers.append(api)
        floor_server, floor_port = start_gunicorn("bench.floor:app", env)
        servers.append(floor_server)
        walk_cursors(port, credentials, world)
        load = [os.getloadavg()[0]]
        rows, floor, rss, max_rss = http_side(api.pid, port, floor_port, credentials, world)
        exports = (
            []
            if PARTIAL
            else [
                measure_export(api.pid, port, credentials["heavy JWT"], world, fmt, max_rss)
                for fmt in ("csv", "ndjson")
            ]
        )
        rss = sample_rss(api.pid, max_rss)
        load.append(os.getloadavg()[0])
    finally:
        for server in servers:
            stop(server)
        embedded_postgres.stop(DATA_DIR)
    for row in rows:
        row["db_floor_ms"], row["db_floor_tps"] = floors[row["path"], row["caller"]]
    results = {
        "size": SIZE,
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "machine": machine_note(),
        "load_average": load,
        "heavy_projects": heavy_projects,
        "generated_seconds": callers.get("generated_seconds"),
        "world": world_note(world),
        "rss_kib": rss,
        "max_rss_kib": max_rss,
        "rows": rows,
        "floor": floor,
        "exports": exports,
    }
    results["targets"] = target_checks(results, scaling_baseline())
    if not PARTIAL:
        (BENCH_DIR / f"results-{SIZE}.json").write_text(json.dumps(results, indent=2) + "\n")
        write_markdown(results)
        write_png()
    print(f"\nbench: {SIZE:,} uploads; {results['machine']}")
    print(results["world"])
    print(
        f"1-minute load average at the start and end of the HTTP measurements: "
        f"{load[0]:.1f}, {load[1]:.1f}"
    )
    print_table(results)
    print()
    print_exports(results)
    print(f"max worker RSS during the run: {mib_list(max_rss)} (at the end: {mib_list(rss)})")
    print(f"\n{targets_heading(SIZE, results['targets'])}")
    for met, text in results["targets"]:
        print(f"  {verdict(met):<6} {text.replace('`', '')}")
    bad = [r for r in rows if r["wrk"]["non_2xx"] or r["wrk"]["socket_errors"]]
    for row in bad:
        print(
            f"WARNING: {row['path']} {row['caller']}: {row['wrk']['non_2xx']} non-2xx, "
            f"socket errors {row['wrk']['socket_errors']}"
        )
    incomplete = [e for e in exports if not e["complete"] or e["rows"] != e["expected_rows"]]
    for export in incomplete:
        print(
            f"WARNING: export {export['format']}: {export['rows']:,} rows of "
            f"{export['expected_rows']:,} (complete body: {export['complete']})"
        )
    return 1 if bad or incomplete else 0


if __name__ == "__main__":
    sys.exit(main())
