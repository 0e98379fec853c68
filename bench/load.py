"""The HTTP side of a run: every row for every caller, one sequential client (p50, p99)
and wrk at 16 connections, with the API workers' RSS sampled throughout; the cursor walk
the deep cursor rows continue; and the export section, the heavy user's whole lists
streamed beside their database floor."""

import http.client
import json
import re
import subprocess
import threading
import time
from contextlib import contextmanager

from plan import ENDPOINTS, EXPORT_FORMATS, EXPORTS, request_path
from processes import worker_rss_kib
from servers import get
from statements import export_floor

SEQUENTIAL_WARMUP, SEQUENTIAL_REQUESTS, SEQUENTIAL_BUDGET_S = 20, 200, 10
WRK_ARGS = ["-t2", "-c16", "-d5s", "--timeout", "10s", "--latency"]
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def http_side(api_pid, port, floor_port, credentials, world):
    """Measure every row for every caller, and the floor, sampling the API workers' RSS
    after every row; return (rows, floor, end RSS, max RSS so far)."""
    rows, peaks = [], {}
    for endpoint in ENDPOINTS:
        for caller in endpoint.callers:
            result = measure(port, request_path(endpoint, world, caller), credentials[caller])
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


def export_side(url, api_pid, port, credential, project_ids, peaks):
    """The export section: per resource, its database floor (over the caller's
    `project_ids`), then its whole export in each format through gunicorn, so each export is
    judged against a floor measured moments before on the same machine. Returns (exports,
    {resource: floor})."""
    exports, floors = [], {}
    for resource, table in EXPORTS.items():
        floor = floors[resource] = export_floor(url, table, project_ids)
        print(
            f"export floor {resource}: psql \\copy of {floor['rows']:,} rows in "
            f"{floor['seconds']:.2f} s ({floor['rows_per_s']:,.0f} rows/s; median of "
            f"{', '.join(f'{s:.2f}' for s in floor['runs_s'])} s)",
            flush=True,
        )
        for export_format in EXPORT_FORMATS:
            export = measure_export(api_pid, port, credential, resource, export_format, peaks)
            export["expected_rows"] = floor["rows"]
            exports.append(export)
            _print_export(export, floor)
    return exports, floors


def measure_export(api_pid, port, credential, resource, export_format, peaks):
    """Stream the caller's whole `resource` once: rows received (lines, less CSV's
    header), seconds and the first body byte's wait, both from sending the request, and
    the serving worker's RSS before, at most during and 2 s after. Which worker serves it
    is gunicorn's choice, so the serving one is taken to be the one whose RSS rose most."""
    path = f"/api/v1/{resource}?format={export_format}"
    before = worker_rss_kib(api_pid)
    with rss_peaks_while(api_pid, before) as during:
        received = _stream(port, path, credential)
    time.sleep(2)  # what the worker still holds once the answer is gone
    after = worker_rss_kib(api_pid)
    pid = max(before, key=lambda p: during.get(p, 0) - before[p])
    for worker, kib in during.items():
        peaks[str(worker)] = max(kib, peaks.get(str(worker), 0))
    rows = received["lines"] - (1 if export_format == "csv" else 0)
    return dict(
        received,
        resource=resource,
        format=export_format,
        path=path,
        rows=rows,
        rows_per_s=rows / received["seconds"],
        worker=pid,
        rss_before_kib=before[pid],
        rss_max_kib=during[pid],
        rss_after_kib=after.get(pid),
    )


@contextmanager
def rss_peaks_while(master_pid, start):
    """The workers' RSS at most (pid -> KiB, from `start`) while the block runs, sampled
    every 50 ms: a streamed export's memory can rise and fall between two requests."""
    peaks = dict(start)
    done = threading.Event()

    def sampler():
        while not done.wait(0.05):
            for pid, kib in worker_rss_kib(master_pid).items():
                peaks[pid] = max(kib, peaks.get(pid, 0))

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        done.set()
        thread.join()


def _stream(port, path, credential):
    """Read a streamed answer to its end: {lines, bytes, complete (not cut short),
    first_byte_ms, seconds}, both times from sending the request (read1 hands over each
    chunk as it arrives, so the first one is the first body byte)."""
    lines = size = 0
    complete, first_byte_s = True, None
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        started = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": f"Bearer {credential}"})
        response = conn.getresponse()
        if response.status != 200:
            raise SystemExit(f"GET {path} answered {response.status}: {response.read()[:300]!r}")
        try:
            while chunk := response.read1(1 << 16):
                if first_byte_s is None:
                    first_byte_s = time.perf_counter() - started
                lines += chunk.count(b"\n")
                size += len(chunk)
        except http.client.IncompleteRead as exc:  # the stream was cut short
            lines += exc.partial.count(b"\n")
            complete = False
        seconds = time.perf_counter() - started
    finally:
        conn.close()
    return {
        "lines": lines,
        "bytes": size,
        "complete": complete,
        "first_byte_ms": (first_byte_s or seconds) * 1000,
        "seconds": seconds,
    }


def _print_export(export, floor):
    """One line as each export ends, so a long run shows its progress."""
    print(
        f"export {export['resource']} {export['format']}: {export['rows']:,} rows of "
        f"{export['expected_rows']:,} in {export['seconds']:.1f} s "
        f"({export['rows_per_s']:,.0f} rows/s, {export['rows_per_s'] / floor['rows_per_s']:.2f}"
        f"x the floor); first byte {export['first_byte_ms']:.0f} ms; worker RSS "
        f"{export['rss_before_kib'] / 1024:.1f} -> max {export['rss_max_kib'] / 1024:.1f} MiB",
        flush=True,
    )
