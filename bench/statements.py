"""Each row's SQL, run without HTTP: the database floor (the request's two statements,
caller check and data query, through pgbench) and the EXPLAIN (ANALYZE, BUFFERS) of every
data statement, written to bench/plans/ (generated, not kept in git); and the exports'
floor, the same rows copied out by psql."""

import os
import re
import statistics
import subprocess
import tempfile
import time

import psycopg

import database
import embedded_postgres
from plan import ENDPOINTS, PARTIAL, PLANS_DIR, SIZE, iso_z, run_date
from queries import SQL_DIR, list_bounds, parse_queries
from world import world_facts

PGBENCH_SECONDS = 3
EXPORT_FLOOR_RUNS = 3  # the median of three: one slow run (a checkpoint, a cold page) is noise


def database_side(url, scopes):
    """World facts, the DB floor of every row and caller, and the plans file.

    Returns ({(label, caller): (ms, tps)}, the number of projects in the heavy user's
    scope, the world facts).
    """
    queries = {path.name: parse_queries(path.read_text("utf-8")) for path in SQL_DIR.glob("*.sql")}
    with database.connect(url, autocommit=True) as conn:
        started = time.monotonic()
        world = world_facts(conn, scopes)
        print(
            f"world facts in {time.monotonic() - started:.1f} s: windows ending "
            f"{iso_z(world['day'][1])}; cursor depths "
            f"{ {c: f['depth'] for c, f in world['cursor'].items()} }",
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
        heavy_projects = len(world["heavy_projects"])
        PLANS_DIR.mkdir(exist_ok=True)
        (PLANS_DIR / f"explain-{SIZE}{'-partial' if PARTIAL else ''}.txt").write_text(
            f"EXPLAIN (ANALYZE, BUFFERS) of each row's data statement per caller (heavy user: "
            f"{heavy_projects} projects), {SIZE:,} uploads, {run_date()}; windows: 1 day "
            f"{iso_z(world['day'][0])} .. {iso_z(world['day'][1])}, 7 days from "
            f"{iso_z(world['week'][0])}\n\n" + explain_all(conn, rendered)
        )
    floors = {}
    for (label, caller), statements in rendered.items():
        floors[label, caller] = ms, tps = db_floor(url, statements)
        print(f"DB floor {label} {caller}: {ms:.2f} ms ({tps:.0f} tps)", flush=True)
    return floors, heavy_projects, world


def data_params(query, endpoint, world, caller, scope):
    """The data query's parameters for one caller, as queries/ fills them: the scope, the
    row's own, before_at/before_id from (created_to, after) via queries.list_bounds,
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
    """The row's two statements for one caller, rendered with literal parameters: the
    caller check and the data query, as auth.read_in_scope sends them."""
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


_TIMESTAMP = r"(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d(?:\.\d+)?)\+00(?::00)?"
_TIMESTAMP_LITERAL = re.compile(f"'{_TIMESTAMP}'::timestamptz")
_TIMESTAMP_ARRAY = re.compile(r"'\{((?:\"[^\"]*\",?)*)\}'::timestamptz\[\]")


def _make_timestamptz(match):
    parts = [int(part) for part in match.groups()[:5]]
    return "make_timestamptz({}, {}, {}, {}, {}, {}, 'UTC')".format(*parts, match.group(6))


def pgbench_safe(statement):
    """The statement without colons in literals: pgbench reads `:name` in a script as a
    variable (so '… 12:05:00+00' would be), hence timestamps (always UTC here), alone or in
    arrays, are written as make_timestamptz(…, 'UTC'), the same instant to the microsecond."""
    statement = _TIMESTAMP_ARRAY.sub(
        lambda m: "ARRAY[{}]::timestamptz[]".format(
            ", ".join(_make_timestamptz(t) for t in re.finditer(_TIMESTAMP, m.group(1)))
        ),
        statement,
    )
    statement = _TIMESTAMP_LITERAL.sub(_make_timestamptz, statement)
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
    command = [embedded_postgres.pg_binary("pgbench"), "-n", "-M", "prepared", "-f"]
    command += [script.name, "-T", str(PGBENCH_SECONDS), "-c", "1", url]
    try:
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    latency = float(re.search(r"latency average = ([\d.]+) ms", output).group(1))
    tps = float(re.search(r"tps = ([\d.]+)", output).group(1))
    return latency, tps


def explain_all(conn, rendered):
    """EXPLAIN (ANALYZE, BUFFERS) text of every row's data statement, per caller."""
    parts = []
    for (path, caller), (_, statement) in rendered.items():
        plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement).fetchall()
        parts.append(
            f"=== {path} ({caller})\n" + "\n".join(row["QUERY PLAN"] for row in plan) + "\n"
        )
    return "\n".join(parts)


def export_floor(url, table, project_ids):
    """What the database alone needs to hand over an export's rows: psql \\copy of the
    same rows in the same order as CSV into /dev/null, timed on the wall clock from psql's
    start to its exit, EXPORT_FLOOR_RUNS times. Returns {statement (the projects elided),
    rows, runs_s, seconds (the median), rows_per_s}."""
    listed = ", ".join(f"'{project_id}'" for project_id in project_ids)
    command = [embedded_postgres.pg_binary("psql"), "-X", "-c", copy_statement(table, listed)]
    runs = []
    for _ in range(EXPORT_FLOOR_RUNS):
        started = time.perf_counter()
        done = subprocess.run([*command, url], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        runs.append(time.perf_counter() - started)
        if done.returncode:
            raise SystemExit(f"psql \\copy from {table} failed: {done.stderr.decode()[:300]}")
    with database.connect(url) as conn:
        rows = conn.execute(
            f"SELECT count(*) AS n FROM {table} WHERE project_id = ANY(%s::uuid[])",
            (project_ids,),
        ).fetchone()["n"]
    seconds = statistics.median(runs)
    return {
        "statement": copy_statement(table, f"<the heavy user's {len(project_ids)} projects>"),
        "rows": rows,
        "runs_s": runs,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
    }


def copy_statement(table, projects):
    """The floor's psql command: the table's rows in `projects` (a list of literals), in
    the export's order (newest first), as CSV."""
    return (
        f"\\copy (SELECT * FROM {table} WHERE project_id IN ({projects}) "
        "ORDER BY created_at DESC, id DESC) TO STDOUT WITH (FORMAT csv)"
    )
