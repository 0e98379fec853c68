"""What the rollup triggers cost writers: the same writes with the triggers on and off.

Usage: DATABASE_URL=<server> python bench/trigger_cost.py [UPLOADS]  (default 5000).
Creates two scratch databases on that server, loads the same fixture document into each
(one with the rollup triggers disabled), then updates every delivery, and prints rows/s.
"""

import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import database
from fixture import load_fixture
from queries.migrations import apply_migrations
from tests.builders import NOW, World

# The rollup triggers are every user trigger on these tables (foreign keys are internal
# triggers) but the one that fills a delivery's copies of its parents' columns: that one
# belongs to the row, not to a rollup, and stays on in both runs.
ROLLUP_TABLES = ["upload_sessions", "destinations", "uploads", "deliveries"]
ROW_TRIGGERS = ["deliveries_copy_parents"]


def document(uploads):
    """Five projects, sessions of three destinations, nine uploads each, mixed results."""
    rng = random.Random(1)
    world = World()
    owner = world.user("Owner")
    projects = [world.project(owner, f"P{i}") for i in range(5)]
    for _ in range(uploads // 9):
        session = world.session(
            rng.choice(projects),
            created_at=NOW - timedelta(days=rng.randint(0, 90)),
            destinations=("webhook", "s3", "google_drive"),
        )
        for _ in range(9):
            world.upload(session, [rng.choice(["sent", "failed", "pending"]) for _ in range(3)])
    return world.doc


def rollup_triggers(conn):
    """(table, trigger) of every rollup trigger."""
    rows = conn.execute(
        "SELECT tgrelid::regclass::text AS table_name, tgname FROM pg_trigger "
        "WHERE NOT tgisinternal AND tgrelid::regclass::text = ANY(%s) "
        "AND NOT tgname = ANY(%s)",
        (ROLLUP_TABLES, ROW_TRIGGERS),
    ).fetchall()
    return [(row["table_name"], row["tgname"]) for row in rows]


def measure(server, name, doc, triggers):
    """Seconds to load `doc` and to update every delivery, in a fresh database."""
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(server, dbname=name)
    try:
        with database.connect(url) as conn:
            apply_migrations(conn)
            for table, trigger in [] if triggers else rollup_triggers(conn):
                conn.execute(
                    sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(
                        sql.Identifier(table), sql.Identifier(trigger)
                    )
                )
            conn.commit()
            started = time.perf_counter()
            load_fixture(conn, doc)
            loaded = time.perf_counter() - started
            started = time.perf_counter()
            with conn.transaction():
                updated = conn.execute(
                    "UPDATE deliveries SET status = CASE status "
                    "WHEN 'sent' THEN 'failed' ELSE 'sent' END"
                ).rowcount
            return loaded, time.perf_counter() - started, updated
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main():
    uploads = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    server = os.environ["DATABASE_URL"]
    doc = document(uploads)
    rows = len(doc["uploads"]) + sum(len(u["deliveries"]) for u in doc["uploads"])
    results = {
        on: measure(server, f"trigger_cost_{'on' if on else 'off'}", doc, on)
        for on in (False, True)
    }
    print(f"{'triggers':<9}{'load rows/s':>14}{'update rows/s':>15}")
    for on, (loaded, updated_s, updated) in results.items():
        print(f"{'on' if on else 'off':<9}{rows / loaded:>14,.0f}{updated / updated_s:>15,.0f}")
    off, on = results[False], results[True]
    print(
        f"cost of the triggers: load x{on[0] / off[0]:.2f}, update x{on[1] / off[1]:.2f} "
        f"({len(doc['uploads'])} uploads, {rows - len(doc['uploads'])} deliveries)"
    )


if __name__ == "__main__":
    main()
