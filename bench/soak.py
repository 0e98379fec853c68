"""`make soak`: wrk against real gunicorn on the demo world, then again across a database restart.

Phase 1 (SOAK_SECONDS, default 60 s, 32 connections): every answer must be 2xx, no socket
errors, and worker RSS must grow less than 10 %. Phase 2 (30 s): PostgreSQL is stopped
10 s in and started 5 s later; answers may only be 200 or 503, and only 200 again
shortly after the restart. Prints a table and exits non-zero if a check fails.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import demo  # noqa: E402
import devserver  # noqa: E402
import embedded_postgres  # noqa: E402
from processes import worker_rss_kib  # noqa: E402
from servers import start_gunicorn  # noqa: E402

SOAK_DATA_DIR = REPO / ".dev" / "pgsoak"
SOAK_SECONDS = int(os.environ.get("SOAK_SECONDS", "60"))
CONNECTIONS = int(os.environ.get("SOAK_CONNECTIONS", "32"))
OUTAGE_AT, OUTAGE_FOR, RESTART_RUN = 10, 5, 30
RECOVERY_GRACE = 3  # seconds after the restart in which a 503 is still acceptable


def run_wrk(port, seconds, env):
    """Run wrk with the soak script; return its SOAK_RESULT summary."""
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(REPO / "bench" / "soak.lua"),
            f"http://127.0.0.1:{port}",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("SOAK_RESULT "))
    return json.loads(line.removeprefix("SOAK_RESULT "))


def statuses(result):
    total = {}
    for bucket in result["timeline"].values():
        for status, count in bucket.items():
            total[status] = total.get(status, 0) + count
    return total


def socket_errors(result):
    errors = result["errors"]
    return errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]


def steady_phase(port, master_pid, env):
    run_wrk(port, 5, env)  # warm-up: pools filled, code paths and caches touched
    before = worker_rss_kib(master_pid)
    result = run_wrk(port, SOAK_SECONDS, env)
    after = worker_rss_kib(master_pid)
    growth = max((after[pid] - before[pid]) / before[pid] for pid in before if pid in after)
    counts = statuses(result)
    return {
        "requests": result["requests"],
        "rps": result["requests"] / (result["duration_us"] / 1e6),
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "non_2xx": sum(c for s, c in counts.items() if not s.startswith("2")),
        "socket_errors": socket_errors(result),
        "rss_growth_pct": 100 * growth,
        "same_workers": set(before) == set(after),
    }


def restart_phase(port, env):
    box = {}
    runner = threading.Thread(target=lambda: box.update(result=run_wrk(port, RESTART_RUN, env)))
    started = time.time()
    runner.start()
    time.sleep(OUTAGE_AT)
    stopped_at = time.time()
    embedded_postgres.stop(SOAK_DATA_DIR)
    time.sleep(OUTAGE_FOR)
    embedded_postgres.start(SOAK_DATA_DIR)
    restarted_at = time.time()
    runner.join()
    result = box["result"]
    unexpected, late_503, first_ok = 0, 0, None
    for second, bucket in sorted(result["timeline"].items()):
        second = int(second)
        for status, count in bucket.items():
            if status not in ("200", "503"):
                unexpected += count
            elif status == "503" and (
                second < int(stopped_at) or second > restarted_at + RECOVERY_GRACE
            ):
                late_503 += count
        if second >= int(restarted_at) and first_ok is None and bucket.get("200"):
            first_ok = second
    counts = statuses(result)
    return {
        "requests": result["requests"],
        "ok": counts.get("200", 0),
        "unavailable": counts.get("503", 0),
        "unexpected_status": unexpected,
        "503_outside_outage": late_503,
        "socket_errors": socket_errors(result),
        "recovered_after_s": None if first_ok is None else max(0, first_ok - int(restarted_at)),
        "run_s": round(time.time() - started),
        "timeline": {
            "stopped": int(stopped_at),
            "restarted": int(restarted_at),
            "statuses_per_second": dict(sorted(result["timeline"].items())),
        },
    }


def main():
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    if os.environ.get("DATABASE_URL"):
        raise SystemExit("make soak restarts its own embedded PostgreSQL; unset DATABASE_URL")
    env = dict(os.environ, DATABASE_URL=embedded_postgres.start(SOAK_DATA_DIR))
    os.environ.update(env)
    devserver.prepare_database(env["DATABASE_URL"])
    env.update(AUTH_JWT=devserver.demo_token(), AUTH_KEY=demo.DEMO_API_KEY)
    # Every core a worker, and no planned recycling: a changed worker pid means a crash.
    server, port = start_gunicorn(
        "wsgi:app",
        env,
        SOAK_DATA_DIR.parent / "soak-gunicorn.log",
        ["--workers", str(os.cpu_count() or 2), "--max-requests", "0"],
    )
    try:
        steady = steady_phase(port, server.pid, env)
        restart = restart_phase(port, env)
    finally:
        server.terminate()
        server.wait(10)
        embedded_postgres.stop(SOAK_DATA_DIR)
    print(
        f"\nsoak: {SOAK_SECONDS} s steady, {CONNECTIONS} connections, "
        f"{os.cpu_count()} sync workers, demo world"
    )
    print(f"{'phase':<9}{'figure':<22}{'value':>12}")
    timeline = restart.pop("timeline")
    for phase, figures in (("steady", steady), ("restart", restart)):
        for name, value in figures.items():
            shown = f"{value:.2f}" if isinstance(value, float) else str(value)
            print(f"{phase:<9}{name:<22}{shown:>12}")
    failures = []
    if steady["non_2xx"] or steady["socket_errors"]:
        failures.append("steady phase had non-2xx answers or socket errors")
    if steady["rss_growth_pct"] >= 10 or not steady["same_workers"]:
        failures.append("worker memory grew 10 % or more, or a worker was replaced")
    if restart["unexpected_status"] or restart["503_outside_outage"] or restart["socket_errors"]:
        failures.append("restart phase answered something other than 200/503 around the outage")
    if restart["recovered_after_s"] is None:
        failures.append("no recovery after the database restart")
    if failures:
        print("restart timeline:", json.dumps(timeline))
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
