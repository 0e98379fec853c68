"""The targets a run is held to, and the check of each against its figures. Latency
targets are one client's median at 10,000,000 uploads (checked at any size); a row's
target may differ per caller."""

import json

from plan import BENCH_DIR, SIZE

# The first rows' targets: within ~1 ms of the framework floor; pages of 100; deep pages.
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
    # The filters: a status and a date window.
    "/api/v1/uploads?status=failed": 20,
    "/api/v1/uploads?status=delivered": 20,
    "/api/v1/sessions?status=expired": 20,
    "/api/v1/uploads?from=…&to=… (1 day)": 20,
    "/api/v1/uploads?from=…&to=… (7 days)": 20,
    # Usage series: whole days in UTC, in an hour's offset and in a half hour's.
    "/api/v1/stats/series (30 days, UTC)": 10,
    "/api/v1/stats/series (30 days, Europe/Berlin)": 15,
    "/api/v1/stats/series (30 days, Asia/Kolkata)": {
        "heavy JWT": 30,
        "light JWT": 10,
        "API key": 10,
    },
    "/api/v1/stats/series (52 weeks)": 15,
    "/api/v1/stats/series (24 months)": 15,
    "/api/v1/stats/series?groupBy=project": {"heavy JWT": 40},
    "/api/v1/stats/series?groupBy=status": 20,
    "/api/v1/stats/series?groupBy=destinationType": 20,
    "/api/v1/stats?projectId=": 3,
}
TARGET_EXPORT_RSS_RISE_MB = 50  # a streamed export holds one batch at a time
# An export's rows/s against its floor's (psql \copy of the same rows), and its first byte.
TARGET_EXPORT_SHARE_OF_FLOOR, TARGET_EXPORT_FIRST_BYTE_MS = 0.30, 200
TARGET_SHARE_OF_FLOOR = {"/api/v1/uploads/recent": 0.35, "/api/v1/stats": 0.50}  # wrk req/s
TARGET_RSS_MB = 150
SCALING_SIZE, TARGET_SCALING = 100_000, 1.3  # p50 at most 1.3x its p50 at 100k uploads


def p50_target(path, caller):
    """The row's 1-client p50 target in ms for this caller, or None."""
    target = TARGET_P50_MS.get(path)
    return target.get(caller) if isinstance(target, dict) else target


def target_checks(results, baseline):
    """Every target against this run, per row and caller: [(met, text)].

    met is None where a target cannot be judged here. baseline maps (path, caller) to the
    1-client p50 at SCALING_SIZE, or is None when there is no larger-size comparison.
    """
    checks = []
    for row in results["rows"]:
        path, p50, rps = row["path"], row["seq_p50_ms"], row["wrk"]["rps"]
        name = f"`{path}` {row['caller']}"
        limit = p50_target(path, row["caller"])
        if limit is not None:
            checks.append((p50 <= limit, f"{name}: 1-client p50 {p50:.2f} ms (<= {limit} ms)"))
        if path in TARGET_SHARE_OF_FLOOR:
            share, floor_rps = TARGET_SHARE_OF_FLOOR[path], results["floor"]["wrk"]["rps"]
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
    checks += export_checks(results.get("exports", []), results.get("export_floors", {}))
    if baseline is None:
        checks.append(
            (
                None,
                f"flat scaling: judged only for sizes above {SCALING_SIZE:,}, "
                f"against bench/results-{SCALING_SIZE}.json",
            )
        )
    return checks


def export_checks(exports, floors):
    """Each export: its speed against its floor, its first byte, memory held flat, and
    every matching row received. Runs saved before the floor was measured (their exports
    were cut by ?from) cannot be judged on speed."""
    checks = []
    for e in exports:
        name = f"export {export_label(e)} ({e['rows']:,} rows)"
        checks.append(_speed_check(name, e, floors))
        checks.append(
            (
                e["first_byte_ms"] <= TARGET_EXPORT_FIRST_BYTE_MS,
                f"{name}: first byte after {e['first_byte_ms']:.0f} ms "
                f"(<= {TARGET_EXPORT_FIRST_BYTE_MS} ms)",
            )
        )
        checks.append(
            (
                rss_rise_mb(e) < TARGET_EXPORT_RSS_RISE_MB,
                f"{name}: serving worker's RSS rose {rss_rise_mb(e):.1f} MB "
                f"(< {TARGET_EXPORT_RSS_RISE_MB} MB)",
            )
        )
        checks.append(
            (
                e["complete"] and e["rows"] == e["expected_rows"],
                f"export {export_label(e)}: {e['rows']:,} rows received of "
                f"{e['expected_rows']:,} matching",
            )
        )
    return checks


def _speed_check(name, export, floors):
    """The rows/s target, as a share of the floor measured in the same run: the machine's
    load moves both alike, so the ratio holds where a fixed rows/s would not."""
    speed = f"{name}: {export['rows_per_s']:,.0f} rows/s"
    goal = f"(>= {TARGET_EXPORT_SHARE_OF_FLOOR:.2f}x the DB floor's)"
    ratio = floor_ratio(export, floors)
    if ratio is None:
        return None, f"{speed}; no DB floor measured in this run {goal}"
    floor_rps = floors[export["resource"]]["rows_per_s"]
    return (
        ratio >= TARGET_EXPORT_SHARE_OF_FLOOR,
        f"{speed}, {ratio:.2f}x the DB floor's {floor_rps:,.0f} {goal}",
    )


def export_label(export):
    """Its resource and format, as "uploads csv" (runs saved before sessions were
    exported have no resource: they exported uploads)."""
    return f"{export.get('resource', 'uploads')} {export['format']}"


def floor_ratio(export, floors):
    """The export's rows/s over its resource's DB floor's, or None without a floor."""
    floor = floors.get(export.get("resource"))
    return export["rows_per_s"] / floor["rows_per_s"] if floor else None


def rss_rise_mb(export):
    """The serving worker's RSS at most during the export less before it, in MB."""
    return (export["rss_max_kib"] - export["rss_before_kib"]) * 1024 / 1e6


def scaling_baseline(size=SIZE):
    """{(path, caller): 1-client p50} at SCALING_SIZE, for a run of `size` uploads when it
    is larger and that run exists."""
    path = BENCH_DIR / f"results-{SCALING_SIZE}.json"
    if size <= SCALING_SIZE or not path.exists():
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
        f"Targets (one client, medians, set for 10,000,000 uploads; checked here at "
        f"{size:,}): {sum(judged)} of {len(judged)} met"
    )
