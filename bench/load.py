"""The HTTP side of a run: every row for every caller, one sequential client (p50, p99)
and wrk at 16 connections, with the API workers' RSS sampled throughout; the cursor walk
the deep cursor rows continue; and the streamed exports, timed to their last byte."""

import http.client
import json
import re
import subprocess
import threading
import time

from plan import ENDPOINTS, iso_z
from processes import worker_rss_kib
from servers import get

SEQUENTIAL_WARMUP, SEQUENTIAL_REQUESTS, SEQUENTIAL_BUDGET_S = 20, 200, 10
WRK_ARGS = ["-t2", "-c16", "-d5s", "--timeout", "10s", "--latency"]
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def http_side(api_pid, port, floor_port, credentials, world):
    """Measure every row for every caller, and the floor, sampling the API workers' RSS
    after every row; return (rows, floor, end RSS, max RSS so far)."""
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


def measure(port, path, credential):
    """Both load shapes for one path and credential."""
    p50, p99 = one_client(port, path, credential)
    return {"seq_p50_ms": p50, "seq_p99_ms": p99, "wrk": run_wrk(port, path, credential)}


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
        status, body = get(port, path, credential)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}: {body[:300]!r}")
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


def _wrk_ms(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS_MS[unit]


def run_wrk(port, path, credential):
    """wrk -t2 -c16 -d5s on one path; return {rps, p50_ms, p99_ms, non_2xx, socket_errors}."""
    headers = ["-H", f"Authorization: Bearer {credential}"] if credential else []
    command = ["wrk", *WRK_ARGS, *headers, f"http://127.0.0.1:{port}{path}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _wrk_ms(re.search(r"\s50%\s+(\S+)", output).group(1)),
        "p99_ms": _wrk_ms(re.search(r"\s99%\s+(\S+)", output).group(1)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else None,
    }


def sample_rss(master_pid, peaks):
    """The workers' RSS now (pid -> KiB), folded into peaks (pid -> max KiB so far)."""
    now = {str(pid): kib for pid, kib in worker_rss_kib(master_pid).items()}
    for pid, kib in now.items():
        peaks[pid] = max(kib, peaks.get(pid, 0))
    return now


def get_json(port, path, credential):
    """One GET; its JSON body (fails on a non-200)."""
    status, body = get(port, path, credential, timeout=60)
    if status != 200:
        raise SystemExit(f"GET {path} answered {status}: {body[:300]!r}")
    return json.loads(body)


def walk_cursors(port, credentials, world):
    """Walk each caller's uploads by cursor (100 a step) to the depth world_facts chose,
    keeping the cursor there; check that the step after it starts at the row the
    database put there, so the HTTP and database rows measure the same thing."""
    for caller, facts in world["cursor"].items():
        token = ""
        for _ in range(facts["depth"] // 100):
            page = get_json(
                port, f"/api/v1/uploads?pageSize=100&cursor={token}", credentials[caller]
            )
            token = page["nextCursor"]
        page = get_json(port, f"/api/v1/uploads?pageSize=100&cursor={token}", credentials[caller])
        first = page["data"][0]["id"] if page["data"] else None
        if first != (str(facts["next_id"]) if facts["next_id"] else None):
            raise SystemExit(
                f"{caller}: the cursor walk after {facts['depth']} rows starts at "
                f"{first}, the database says {facts['next_id']}"
            )
        facts["token"] = token


def export_path(world, export_format):
    """The heavy user's export of about EXPORT_ROWS uploads."""
    created_from = world["export"]["created_from"]
    return f"/api/v1/uploads?format={export_format}" + (
        f"&from={iso_z(created_from)}" if created_from else ""
    )


def measure_export(api_pid, port, credential, world, export_format, peaks):
    """Stream the heavy user's export once through gunicorn: rows received (lines, less
    CSV's header), rows/s, the first byte's wait, and the serving worker's RSS before, at
    most during (sampled every 50 ms) and 2 s after (the worker whose RSS rose most)."""
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
    started = time.perf_counter()
    lines, size, complete, first_byte_s = _stream(port, path, credential, started)
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


def _stream(port, path, credential, started):
    """Read a streamed answer to its end: (lines, bytes, whether whole, first byte's wait)."""
    lines = size = 0
    complete = True
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
    return lines, size, complete, first_byte_s
