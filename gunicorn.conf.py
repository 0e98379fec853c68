"""gunicorn settings, read automatically by `gunicorn wsgi:app` run from this folder:
workers and timeouts as measured and nested below, Prometheus' multiprocess directory,
and gunicorn's own refusals (malformed or oversized requests, answered before the app
sees them) in the API's JSON error envelope instead of an HTML page.
"""

import json
import os
import tempfile
import uuid
from pathlib import Path

from gunicorn import util

# One sync worker per core (WEB_CONCURRENCY overrides), one request at a time each;
# nginx buffers slow clients. Measured on this 2-core machine (wrk, 16 connections, 10M
# uploads): 2 workers served /stats at 770 req/s and the constant-JSON floor at 2,560,
# against 720 / 2,350 with 3, 670 / 2,220 with 4 and 560 / 1,720 with 6 (PostgreSQL
# shares the cores). gthread was no better (req/s and p99 for /stats, /uploads/recent):
# sync 636 / 38 ms, 412 / 53 ms; 2 threads 767 / 58 ms, 371 / 99 ms; 4 threads
# 621 / 64 ms, 214 / 109 ms.
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
worker_class = "sync"

# Timeouts nest: statement (2 s) < pool wait (3 s) < worker timeout < nginx (deploy/), so
# a slow request is answered with the API's 503 before gunicorn would kill the worker.
timeout = 10
graceful_timeout = 10  # on SIGTERM, finish requests in flight, then stop
# Recycle each worker after ~10,000 requests (jittered so they do not all restart at once),
# which bounds any slow growth; every worker opens its own pool after the fork (no preload).
max_requests = 10000
max_requests_jitter = 1000
preload_app = False

_CODES = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "request_header_fields_too_large",
    500: "internal_error",
    501: "not_implemented",
}


def write_json_error(sock, status_int, reason, mesg):
    """gunicorn's write_error, answering with {"error", "message", "requestId"} instead of
    HTML (the request never reached the app, so the id is always a new one)."""
    request_id = uuid.uuid4().hex
    body = json.dumps(
        {
            "error": _CODES.get(status_int, "bad_request"),
            "message": f"{reason}.",
            "requestId": request_id,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
        f"X-Request-Id: {request_id}\r\n"
        f"Cache-Control: no-store\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = write_json_error

# gunicorn's control socket (one fixed path per host) is unused here, and two servers on
# one machine would fight over it.
control_socket_disable = True


def on_starting(server):
    """Before any worker forks: a clean directory where every worker keeps its Prometheus
    figures, so that a scrape of any one worker reports them all (metrics.py)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="apertur-metrics-")


def child_exit(server, worker):
    """A worker is gone: its live gauges (pool connections) no longer count."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """Let long exports tell the arbiter the worker is alive between batches: a sync
    worker otherwise reports only between requests and would be killed after `timeout`."""
    worker.wsgi.extensions["worker_heartbeat"] = worker.notify
