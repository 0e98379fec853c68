"""`make bench [SIZE=N]`: latency and throughput of every row on a world of N uploads.

For one data size, a dedicated PostgreSQL in .dev/pgbench-<N> (generated once, migrated and
reused later) serves the API and a constant-JSON framework floor under real gunicorn; every
row is measured for three callers (heavy JWT user, light JWT user, API key) with one
sequential client (p50/p99) and wrk at 16 connections, beside the database floor (its SQL
through pgbench); worker RSS is sampled throughout; and the heavy user's whole uploads and
sessions are exported as CSV and NDJSON beside their database floor (psql \\copy of the same
rows); and some rows are measured again with prepared statements on, off, and off through
PgBouncer, side by side (the pooling section). Results go to bench/results.md,
bench/results-<N>.json and the pictures; plans to bench/plans/. The modules beside this
one hold each part: plan (what is measured), world (the database), statements (DB floors
and plans), servers, load (HTTP), pooling, targets, report, pictures.
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's modules

import embedded_postgres
from load import export_side, http_side, sample_rss, walk_cursors
from pictures import draw_all
from plan import (
    BENCH_DIR,
    DATA_DIR,
    ENDPOINTS,
    MEASURE_EXPORTS,
    MEASURE_POOLING,
    ONLY_SECTIONS,
    PARTIAL,
    SECRET,
    SIZE,
    run_date,
)
from pooling import pooling_side
from report import machine_note, print_results, world_note, write_markdown
from servers import mint_token, start_gunicorn, stop
from statements import database_side
from targets import scaling_baseline, target_checks
from world import caller_scopes, prepare_database

# What each section that can be measured alone keeps in results-<N>.json.
SECTION_KEYS = {"exports": ("exports", "export_floors"), "pooling": ("pooling",)}


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
    rows, floor, max_rss, exports, export_floors, pooling = [], None, {}, [], {}, []
    try:
        api, port = start_gunicorn("wsgi:app", env)
        servers.append(api)
        load = [os.getloadavg()[0]]
        if ENDPOINTS or MEASURE_POOLING:
            walk_cursors(port, credentials, world)
        if ENDPOINTS:
            floor_server, floor_port = start_gunicorn("bench.floor:app", env)
            servers.append(floor_server)
            rows, floor, _, max_rss = http_side(api.pid, port, floor_port, credentials, world)
        if MEASURE_EXPORTS:
            exports, export_floors = export_side(
                url, api.pid, port, credentials["heavy JWT"], world["heavy_projects"], max_rss
            )
        if MEASURE_POOLING:
            pooling = pooling_side(url, env, credentials, world)
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
        "date": run_date(),
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
        "export_floors": export_floors,
        "pooling": pooling,
    }
    results["targets"] = target_checks(results, scaling_baseline())
    saved = BENCH_DIR / f"results-{SIZE}.json"
    if not PARTIAL:
        saved.write_text(json.dumps(results, indent=2) + "\n")
        write_markdown(results)
        draw_all()
    elif ONLY_SECTIONS and saved.exists():
        keep_sections(saved, results)
    print_results(results)


def keep_sections(saved, results):
    """Put the sections a BENCH_<SECTION>_ONLY run measured into the saved run of its size
    (the rest of that run kept, each such section dated), judged again."""
    whole = json.loads(saved.read_text())
    for section in ONLY_SECTIONS:
        whole.update({key: results[key] for key in SECTION_KEYS[section]})
        whole[f"{section}_date"] = results["date"]
    whole["targets"] = target_checks(whole, scaling_baseline())
    saved.write_text(json.dumps(whole, indent=2) + "\n")
    write_markdown(whole)


if __name__ == "__main__":
    main()
