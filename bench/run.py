"""`make bench [SIZE=N]`: latency and throughput of every endpoint on a world of N uploads.

For one data size this script keeps a dedicated embedded PostgreSQL in .dev/pgbench-<N>
(generated once, reused later), serves the API and a constant-JSON framework floor with
real gunicorn, and measures every endpoint for three callers (heavy JWT user, light JWT
user, API key): one sequential client (p50/p99) and wrk with 16 connections (req/s,
p50/p99). It also times each endpoint's SQL alone with pgbench (the database floor) and
records EXPLAIN (ANALYZE, BUFFERS) for the heavy user. Results go to bench/results.md,
bench/results-<N>.json, bench/explain-<N>.txt and bench/latency.svg.
"""

import http.client
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape

import jwt
import psycopg

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))

import database  # noqa: E402
import embedded_postgres  # noqa: E402
from processes import free_port, worker_rss_kib  # noqa: E402
from queries import SQL_DIR, parse_queries  # noqa: E402
from queries.generate import generate_world  # noqa: E402
from queries.migrations import apply_migrations  # noqa: E402

SIZE = int(os.environ.get("SIZE") or (sys.argv[1] if len(sys.argv) > 1 else 1_000_000))
DATA_DIR = REPO / ".dev" / f"pgbench-{SIZE}"
SECRET = "bench-secret-not-for-production-use-0123456789abcdef"
SEQUENTIAL_WARMUP, SEQUENTIAL_REQUESTS, SEQUENTIAL_BUDGET_S = 20, 200, 10
WRK_ARGS = ["-t2", "-c16", "-d5s", "--timeout", "10s", "--latency"]
PGBENCH_SECONDS = 5

# Each endpoint and the named queries it runs: (sql file, query name, limit/offset).
# A page beyond the total skips its list query, as api._paged does.
ENDPOINTS = [
    ("/api/v1/stats", [("stats.sql", "project_stats", None)]),
    ("/api/v1/sessions/recent", [("sessions.sql", "list_sessions", (10, 0))]),
    ("/api/v1/uploads/recent", [("uploads.sql", "list_uploads", (10, 0))]),
    ("/api/v1/sessions", [("sessions.sql", "count_sessions", None),
                          ("sessions.sql", "list_sessions", (20, 0))]),
    ("/api/v1/uploads", [("uploads.sql", "count_uploads", None),
                         ("uploads.sql", "list_uploads", (20, 0))]),
    ("/api/v1/uploads?pageSize=100", [("uploads.sql", "count_uploads", None),
                                      ("uploads.sql", "list_uploads", (100, 0))]),
    ("/api/v1/uploads?page=100&pageSize=100", [("uploads.sql", "count_uploads", None),
                                               ("uploads.sql", "list_uploads", (100, 9900))]),
]
CALLERS = ("heavy JWT", "light JWT", "API key")
FLOOR = "(framework floor)"


# ---------------------------------------------------------------- database

def prepare_database():
    """Start this size's PostgreSQL; generate the world once; return (url, callers)."""
    url = embedded_postgres.start(DATA_DIR)
    callers_file = DATA_DIR / "bench-callers.json"
    if callers_file.exists():
        return url, json.loads(callers_file.read_text())
    with database.connect(url) as conn:
        apply_migrations(conn)
        print(f"generating {SIZE:,} uploads (once per size) ...", flush=True)
        started = time.monotonic()
        row = generate_world(conn, uploads=SIZE, seed=1)
        print(f"generated in {time.monotonic() - started:.0f} s", flush=True)
    with database.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    callers = {"heavy_user_id": str(row["heavy_user_id"]),
               "light_user_id": str(row["light_user_id"]), "api_key": row["api_key"]}
    callers_file.write_text(json.dumps(callers))
    return url, callers


def heavy_project_ids(conn, user_id):
    """Every project the heavy user owns or is a member of."""
    rows = conn.execute(
        "SELECT id FROM projects WHERE owner_id = %(u)s "
        "UNION SELECT project_id FROM members WHERE user_id = %(u)s", {"u": user_id}).fetchall()
    return [row["id"] for row in rows]


def endpoint_statements(conn, queries, project_ids, endpoint_queries):
    """The endpoint's SQL rendered as literal statements for the given project scope."""
    cursor = psycopg.ClientCursor(conn)
    statements = []
    for filename, name, paging in endpoint_queries:
        params = {"project_ids": project_ids}
        if paging:
            params.update(limit=paging[0], offset=paging[1])
            count = queries[filename][name.replace("list_", "count_")]
            total = conn.execute(count.sql, {"project_ids": project_ids}).fetchone()["total"]
            if paging[1] and paging[1] >= total:
                continue  # the API answers a page past the end without the list query
        statements.append(cursor.mogrify(queries[filename][name].sql, params))
    return statements


def db_floor(url, statements):
    """pgbench one client for PGBENCH_SECONDS on the statements; return (avg ms, tps).

    -M prepared: plans are made once per connection, as psycopg does for the API's
    repeated queries, so the figure is execution time only.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write("".join(statement + ";\n" for statement in statements))
    try:
        output = subprocess.run(
            [embedded_postgres.pg_binary("pgbench"), "-n", "-M", "prepared", "-f", script.name,
             "-T", str(PGBENCH_SECONDS), "-c", "1", url],
            capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    latency = float(re.search(r"latency average = ([\d.]+) ms", output).group(1))
    tps = float(re.search(r"tps = ([\d.]+)", output).group(1))
    return latency, tps


def explain_all(conn, rendered):
    """EXPLAIN (ANALYZE, BUFFERS) text of every endpoint's statements."""
    parts = []
    for path, statements in rendered.items():
        for statement in statements:
            plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement).fetchall()
            code = [line for line in statement.splitlines() if not line.startswith("--")]
            first_line = " ".join(" ".join(code).split())[:80]
            parts.append(f"=== {path}\n--- {first_line} ...\n"
                         + "\n".join(row["QUERY PLAN"] for row in plan) + "\n")
    return "\n".join(parts)


# ---------------------------------------------------------------- servers

def start_gunicorn(app_spec, env):
    """Start gunicorn (2 sync workers) on app_spec; return (process, port) once it answers."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), app_spec, "--workers", "2",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"], cwd=REPO, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            get(port, "/", None)
            return server, port
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"gunicorn {app_spec} did not start")


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
    while len(timings) < SEQUENTIAL_REQUESTS and (len(timings) < 20
                                                   or time.monotonic() < deadline):
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
    output = subprocess.run(["wrk", *WRK_ARGS, *headers, f"http://127.0.0.1:{port}{path}"],
                            capture_output=True, text=True, check=True).stdout
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
    model = next((line.split(":", 1)[1].strip()
                  for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return (f"{model}, {os.cpu_count()} CPUs, {mem_kib / 1048576:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}; "
            "wrk, gunicorn and PostgreSQL share the machine")


def table_rows(results):
    """One list of cells per measured row, in display order."""
    floor_rps = results["floor"]["wrk"]["rps"]
    rows = []
    for entry in results["rows"] + [dict(results["floor"], path=FLOOR, caller="-")]:
        wrk = entry["wrk"]
        db = entry.get("db_floor_ms")
        rows.append([entry["path"], entry["caller"], f"{entry['seq_p50_ms']:.1f}",
                     f"{entry['seq_p99_ms']:.1f}", f"{wrk['rps']:.0f}", f"{wrk['p50_ms']:.1f}",
                     f"{wrk['p99_ms']:.1f}", f"{100 * wrk['rps'] / floor_rps:.0f} %",
                     "-" if db is None else f"{db:.2f}"])
    return rows


HEADERS = ["endpoint", "caller", "1-client p50 ms", "p99 ms", "16-conn req/s", "p50 ms",
           "p99 ms", "% of floor req/s", "DB floor ms"]


def print_table(results):
    """The results as an aligned text table."""
    rows = [HEADERS] + table_rows(results)
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    for row in rows:
        print("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))))


def markdown_section(results):
    """The Markdown section of bench/results.md for this size."""
    rss = ", ".join(f"{kib / 1024:.0f} MiB" for kib in results["rss_kib"].values())
    lines = [f"## {results['size']:,} uploads", "",
             f"Run {results['date']} on {results['machine']}. Heavy user: "
             f"{results['heavy_projects']} projects in scope. gunicorn: 2 sync workers; "
             "1 client = sequential requests on fresh connections (200 after 20 warm-up, or "
             "as many as fit in 10 s, at least 20); "
             "16 conn = `wrk -t2 -c16 -d5s`; DB floor = the endpoint's SQL alone for the heavy "
             "user (pgbench -M prepared, 1 client, literals; no auth lookup, no transaction "
             f"wrapper). Worker RSS at the end: {rss}.",
             "", "| " + " | ".join(HEADERS) + " |",
             "|" + "|".join(["---"] * 2 + ["---:"] * (len(HEADERS) - 2)) + "|"]
    for row in table_rows(results):
        endpoint = f"`{row[0]}`" if row[0].startswith("/") else row[0]
        lines.append("| " + " | ".join([endpoint] + row[1:]) + " |")
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
    header = ("# Benchmarks\n\nGenerated by `make bench SIZE=N` (bench/run.py); "
              "plans in bench/explain-N.txt, raw numbers in bench/results-N.json, "
              "1-client p50 against size in bench/latency.svg.\n")
    path.write_text(header + "".join("\n" + sections[size] for size in sorted(sections)))


SERIES_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
CALLER_DASHES = {"heavy JWT": "", "light JWT": "6,3", "API key": "2,3"}


def write_svg():
    """Plot 1-client p50 against size, from every bench/results-*.json, to bench/latency.svg."""
    runs = sorted((json.loads(p.read_text()) for p in BENCH_DIR.glob("results-*.json")),
                  key=lambda run: run["size"])
    series = {}
    for run in runs:
        for row in run["rows"]:
            series.setdefault((row["path"], row["caller"]), []).append(
                (run["size"], row["seq_p50_ms"]))
        series.setdefault((FLOOR, "-"), []).append((run["size"], run["floor"]["seq_p50_ms"]))
    sizes = [run["size"] for run in runs]
    lo, hi = math.log10(min(sizes)) - 0.3, math.log10(max(sizes)) + 0.3
    top = max(ms for points in series.values() for _, ms in points) * 1.1
    left, width, plot_top, height = 60, 560, 30, 360

    def x(size):
        return left + width * (math.log10(size) - lo) / (hi - lo)

    def y(ms):
        return plot_top + height * (1 - ms / top)

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="440" '
           'font-family="sans-serif" font-size="11">',
           '<text x="60" y="18" font-size="13">1-client p50 latency (ms) against uploads '
           'in the database</text>',
           f'<line x1="{left}" y1="{plot_top + height}" x2="{left + width}" '
           f'y2="{plot_top + height}" stroke="black"/>',
           f'<line x1="{left}" y1="{plot_top}" x2="{left}" y2="{plot_top + height}" '
           'stroke="black"/>']
    for i in range(6):
        ms = top * i / 5
        out.append(f'<text x="{left - 6}" y="{y(ms) + 4:.1f}" text-anchor="end">{ms:.1f}</text>')
        out.append(f'<line x1="{left}" y1="{y(ms):.1f}" x2="{left + width}" y2="{y(ms):.1f}" '
                   'stroke="#eee"/>')
    for size in sizes:
        out.append(f'<text x="{x(size):.1f}" y="{plot_top + height + 16}" '
                   f'text-anchor="middle">{size:,}</text>')
    paths = [path for path, _ in ENDPOINTS] + [FLOOR]
    for (path, caller), points in series.items():
        colour = SERIES_COLOURS[paths.index(path)] if path != FLOOR else "black"
        dash = CALLER_DASHES.get(caller, "")
        coords = " ".join(f"{x(s):.1f},{y(ms):.1f}" for s, ms in points)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"'
                   + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
        out += [f'<circle cx="{x(s):.1f}" cy="{y(ms):.1f}" r="2.5" fill="{colour}"/>'
                for s, ms in points]
    legend_y = plot_top
    for index, path in enumerate(paths):
        colour = SERIES_COLOURS[index] if path != FLOOR else "black"
        out.append(f'<line x1="650" y1="{legend_y}" x2="680" y2="{legend_y}" stroke="{colour}" '
                   f'stroke-width="2"/><text x="686" y="{legend_y + 4}">{escape(path)}</text>')
        legend_y += 18
    legend_y += 10
    for caller, dash in CALLER_DASHES.items():
        out.append(f'<line x1="650" y1="{legend_y}" x2="680" y2="{legend_y}" stroke="gray" '
                   f'stroke-width="2"' + (f' stroke-dasharray="{dash}"' if dash else "")
                   + f'/><text x="686" y="{legend_y + 4}">{caller}</text>')
        legend_y += 18
    out.append("</svg>")
    (BENCH_DIR / "latency.svg").write_text("\n".join(out) + "\n")


# ---------------------------------------------------------------- main

def database_side(url, heavy_user_id):
    """DB floor per endpoint and the EXPLAIN file, for the heavy user.

    Returns ({path: (ms, tps)}, the number of projects in the heavy user's scope).
    """
    queries = {name: parse_queries((SQL_DIR / name).read_text(encoding="utf-8"))
               for name in ("stats.sql", "sessions.sql", "uploads.sql")}
    with database.connect(url, autocommit=True) as conn:
        project_ids = heavy_project_ids(conn, heavy_user_id)
        rendered = {path: endpoint_statements(conn, queries, project_ids, endpoint_queries)
                    for path, endpoint_queries in ENDPOINTS}
        (BENCH_DIR / f"explain-{SIZE}.txt").write_text(
            f"EXPLAIN (ANALYZE, BUFFERS) for the heavy user ({len(project_ids)} projects), "
            f"{SIZE:,} uploads, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n\n"
            + explain_all(conn, rendered))
    floors = {}
    for path, statements in rendered.items():
        floors[path] = db_floor(url, statements)
        print(f"DB floor {path}: {floors[path][0]:.2f} ms ({floors[path][1]:.0f} tps)", flush=True)
    return floors, len(project_ids)


def http_side(port, floor_port, credentials):
    """Measure every endpoint for every caller, and the floor; return (rows, floor)."""
    rows = []
    for path, _ in ENDPOINTS:
        for caller in CALLERS:
            result = measure(port, path, credentials[caller])
            rows.append(dict(result, path=path, caller=caller))
            print(f"{path:<40} {caller:<10} 1-client p50 {result['seq_p50_ms']:6.1f} ms   "
                  f"wrk {result['wrk']['rps']:6.0f} req/s", flush=True)
    return rows, measure(floor_port, "/", None)


def main():
    """Prepare, serve, measure, report; always stop what was started."""
    url, callers = prepare_database()
    floors, heavy_projects = database_side(url, callers["heavy_user_id"])
    env = dict(os.environ, DATABASE_URL=url, JWT_SECRET_KEY=SECRET, APERTUR_ENV="production")
    credentials = {"heavy JWT": mint_token(callers["heavy_user_id"]),
                   "light JWT": mint_token(callers["light_user_id"]),
                   "API key": callers["api_key"]}
    servers = []
    try:
        api, port = start_gunicorn("wsgi:app", env)
        servers.append(api)
        floor_server, floor_port = start_gunicorn("bench.floor:app", env)
        servers.append(floor_server)
        rows, floor = http_side(port, floor_port, credentials)
        rss = worker_rss_kib(api.pid)
    finally:
        for server in servers:
            stop(server)
        embedded_postgres.stop(DATA_DIR)
    for row in rows:
        if row["caller"] == "heavy JWT":
            row["db_floor_ms"], row["db_floor_tps"] = floors[row["path"]]
    results = {"size": SIZE, "date": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
               "machine": machine_note(), "heavy_projects": heavy_projects,
               "rss_kib": {str(pid): kib for pid, kib in rss.items()},
               "rows": rows, "floor": floor}
    (BENCH_DIR / f"results-{SIZE}.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results)
    write_svg()
    print(f"\nbench: {SIZE:,} uploads; {results['machine']}")
    print_table(results)
    print("worker RSS: " + ", ".join(f"pid {pid} {kib / 1024:.1f} MiB"
                                     for pid, kib in rss.items()))
    bad = [r for r in rows if r["wrk"]["non_2xx"] or r["wrk"]["socket_errors"]]
    for row in bad:
        print(f"WARNING: {row['path']} {row['caller']}: {row['wrk']['non_2xx']} non-2xx, "
              f"socket errors {row['wrk']['socket_errors']}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
