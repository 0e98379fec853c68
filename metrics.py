"""Prometheus metrics at GET /metrics, for the addresses in METRICS_ALLOW only.

Under gunicorn every worker writes its figures to PROMETHEUS_MULTIPROC_DIR (set up by
gunicorn.conf.py before the workers fork), and a scrape of any worker adds them all up
(prometheus_client's multiprocess mode); without that directory, as in tests and
`flask run`, the figures are the one process's own.
"""

import ipaddress
import os
import time

from flask import Blueprint, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from werkzeug.exceptions import NotFound

bp = Blueprint("metrics", __name__)

REQUESTS = Counter(
    "apertur_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "apertur_http_request_duration_seconds",
    "Time to answer a request.",
    ["route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
POOL = Gauge(
    "apertur_db_pool_connections",
    "Pooled database connections, by state.",
    ["state"],
    multiprocess_mode="livesum",
)
DATABASE_ERRORS = Counter(
    "apertur_db_errors_total",
    "Requests answered 503: database unreachable or a query cancelled.",
    ["kind"],
)
AUTH_FAILURES = Counter("apertur_auth_failures_total", "Requests refused with 401.", ["reason"])


def observe(response):
    """after_request: count the request, time it, and note the pool's state."""
    route = request.url_rule.rule if request.url_rule else "(unmatched)"
    status = str(response.status_code)
    REQUESTS.labels(request.method, route, status).inc()
    LATENCY.labels(route, status).observe(
        time.perf_counter() - g.get("started", time.perf_counter())
    )
    stats = current_app.extensions["db_pool"].get_stats()
    size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
    POOL.labels("open").set(size)
    POOL.labels("in_use").set(size - idle)
    POOL.labels("waiting").set(stats.get("requests_waiting", 0))
    return response


@bp.get("/metrics", provide_automatic_options=False)
def scrape():
    """The metrics, in Prometheus' text format; 404 for any address not allowed."""
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:  # e.g. a unix socket: no address to allow
        raise NotFound() from None
    if not any(address in network for network in current_app.config["SETTINGS"].metrics_allow):
        raise NotFound()
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
