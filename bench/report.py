"""What a run prints and keeps: aligned tables on the console, its section of
bench/results.md, and bench/results-<N>.json (which the pictures are drawn from).

Run alone (`make bench-report`), it judges every saved run against the targets again, the
scaling target against the 100k run saved now, and rewrites results.md from them: a run
at 100k measured after the larger ones then counts for them too."""

import json
import os
import platform
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run alone: the repository

from plan import BENCH_DIR, FLOOR, POOLING_CONFIGURATIONS, iso_z
from statements import PGBENCH_SECONDS
from targets import (
    export_label,
    floor_ratio,
    rss_rise_mb,
    scaling_baseline,
    target_checks,
    targets_heading,
    verdict,
)

HEADERS = [
    "endpoint",
    "caller",
    "1-client p50 ms",
    "p99 ms",
    "16-conn req/s",
    "p50 ms",
    "p99 ms",
    "% of floor req/s",
    "DB floor ms",
]
EXPORT_HEADERS = [
    "export",
    "rows received",
    "of expected",
    "seconds",
    "rows/s",
    "DB floor rows/s",
    "ratio to floor",
    "first byte ms",
    "MB/s",
    "worker RSS before MiB",
    "max MiB",
    "after MiB",
    "RSS rise MB",
]

POOLING_HEADERS = [
    "row",
    "caller",
    "1-client p50 ms prepared",
    "unprepared",
    "via PgBouncer",
    "unprepared ÷ prepared",
    "16-conn req/s prepared",
    "unprepared",
    "via PgBouncer",
]


def machine_note():
    """CPU model, core count, memory and OS in one line."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return (
        f"{model}, {os.cpu_count()} CPUs, {mem_kib / 1048576:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}; "
        "wrk, gunicorn and PostgreSQL share the machine"
    )


def table_rows(results):
    """One list of cells per measured row, in display order."""
    if not results["rows"]:
        return []  # BENCH_<SECTION>_ONLY: no rows, and no framework floor to compare with
    floor_rps = results["floor"]["wrk"]["rps"]
    rows = []
    for entry in results["rows"] + [dict(results["floor"], path=FLOOR, caller="-")]:
        wrk, db = entry["wrk"], entry.get("db_floor_ms")
        rows.append(
            [
                entry["path"],
                entry["caller"],
                f"{entry['seq_p50_ms']:.1f}",
                f"{entry['seq_p99_ms']:.1f}",
                f"{wrk['rps']:.0f}",
                f"{wrk['p50_ms']:.1f}",
                f"{wrk['p99_ms']:.1f}",
                f"{100 * wrk['rps'] / floor_rps:.0f} %",
                "-" if db is None else f"{db:.2f}",
            ]
        )
    return rows


def export_rows(results):
    """One list of cells per export measurement."""
    floors = results.get("export_floors", {})
    cells = []
    for e in results.get("exports", []):
        after, ratio = e["rss_after_kib"], floor_ratio(e, floors)
        cells.append(
            [
                export_label(e),
                f"{e['rows']:,}",
                f"{e['expected_rows']:,}",
                f"{e['seconds']:.1f}",
                f"{e['rows_per_s']:,.0f}",
                "-" if ratio is None else f"{floors[e['resource']]['rows_per_s']:,.0f}",
                "-" if ratio is None else f"{ratio:.2f}",
                f"{e['first_byte_ms']:.0f}",
                f"{e['bytes'] / e['seconds'] / 1e6:.1f}",
                f"{e['rss_before_kib'] / 1024:.1f}",
                f"{e['rss_max_kib'] / 1024:.1f}",
                "-" if after is None else f"{after / 1024:.1f}",
                f"{rss_rise_mb(e):.1f}",
            ]
        )
    return cells


def pooling_figures(row):
    """A pooling row's (p50 ms, req/s) per configuration, in POOLING_CONFIGURATIONS order."""
    figures = [row["configurations"][name] for name in POOLING_CONFIGURATIONS]
    return [f["seq_p50_ms"] for f in figures], [f["wrk"]["rps"] for f in figures]


def pooling_rows(results):
    """One list of cells per row and caller of the pooling section."""
    cells = []
    for row in results.get("pooling", []):
        p50, rps = pooling_figures(row)
        cells.append(
            [row["path"], row["caller"]]
            + [f"{ms:.2f}" for ms in p50]
            + [f"{p50[1] / p50[0]:.2f}"]
            + [f"{rate:.0f}" for rate in rps]
        )
    return cells


def pooling_note(results):
    """The pooling section in sentences: what ran, when, and its medians over the rows."""
    figures = [pooling_figures(row) for row in results["pooling"]]
    unprepared = [p50[1] / p50[0] for p50, _ in figures]
    bouncer_ms = [p50[2] - p50[1] for p50, _ in figures]
    dated = f", measured {results['pooling_date']}" if "pooling_date" in results else ""
    return (
        f"Prepared statements and PgBouncer{dated}: each row and caller on three more "
        "gunicorns (the production config) logged in as the read-only role `apertur_api`, "
        "measured in turn (the first of the three turning with each row): prepared = "
        "statements prepared on first use (the default); unprepared = "
        "`DB_PREPARED_STATEMENTS=off`, straight to PostgreSQL; via PgBouncer = the same "
        "through PgBouncer in transaction mode (deploy/pgbouncer.ini's pooling settings, "
        "trust auth) on the same server. 1 client and 16 conn as above. Over these "
        f"{len(figures)} rows the median ratio unprepared ÷ prepared of the 1-client p50 is "
        f"{statistics.median(unprepared):.2f} ({min(unprepared):.2f}–{max(unprepared):.2f}); "
        f"PgBouncer adds a median {statistics.median(bouncer_ms):.2f} ms to the unprepared "
        f"p50 ({min(bouncer_ms):.2f}–{max(bouncer_ms):.2f}); median req/s, prepared / "
        "unprepared / via PgBouncer: "
        + " / ".join(
            f"{statistics.median(rps[i] for _, rps in figures):.0f}"
            for i in range(len(POOLING_CONFIGURATIONS))
        )
        + "."
    )


def export_floor_note(results):
    """The exports' DB floors in one sentence: the command, and each resource's runs."""
    floors = results.get("export_floors")
    if not floors:
        return "No DB floor was measured for these exports."
    runs = "; ".join(
        f"{resource} {floor['rows']:,} rows, {', '.join(f'{s:.2f}' for s in floor['runs_s'])} s"
        for resource, floor in floors.items()
    )
    command = floors["uploads"]["statement"]
    dated = f" Exports measured on {results['exports_date']}." if "exports_date" in results else ""
    return (
        f'DB floor, just before each resource\'s exports: `psql -c "{command}"` into '
        f"/dev/null (sessions: the same over upload_sessions), wall clock, the median of "
        f"these runs: {runs}.{dated}"
    )


def print_aligned(rows, left_columns):
    """Rows of cells as a text table, the first `left_columns` left-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(w) if i < left_columns else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def mib_list(rss_kib):
    """Worker RSS figures in MiB, comma-separated."""
    return ", ".join(f"{kib / 1024:.0f} MiB" for kib in rss_kib.values())


def print_results(results):
    """The whole run on the console: the world, the rows, the exports, the targets."""
    print(f"\nbench: {results['size']:,} uploads; {results['machine']}")
    print(results["world"])
    load = results["load_average"]
    print(
        f"1-minute load average at the start and end of the HTTP measurements: "
        f"{load[0]:.1f}, {load[1]:.1f}"
    )
    if results["rows"]:
        print_aligned([HEADERS] + table_rows(results), 2)
    if results.get("exports"):
        print("\nexports (heavy JWT, whole lists, through gunicorn):")
        print(export_floor_note(results).replace("`", ""))
        print_aligned([EXPORT_HEADERS] + export_rows(results), 1)
    if results.get("pooling"):
        print(f"\n{pooling_note(results)}".replace("`", ""))
        print_aligned([POOLING_HEADERS] + pooling_rows(results), 2)
    print(
        f"max worker RSS during the run: {mib_list(results['max_rss_kib'])} "
        f"(at the end: {mib_list(results['rss_kib'])})"
    )
    print(f"\n{targets_heading(results['size'], results['targets'])}")
    for met, text in results["targets"]:
        print(f"  {verdict(met):<6} {text.replace('`', '')}")
    for name, wrk in wrk_runs(results):
        if wrk["non_2xx"] or wrk["socket_errors"]:
            print(
                f"WARNING: {name}: {wrk['non_2xx']} non-2xx, socket errors {wrk['socket_errors']}"
            )
    for e in results.get("exports", []):
        if not e["complete"] or e["rows"] != e["expected_rows"]:
            print(
                f"WARNING: export {export_label(e)}: {e['rows']:,} rows of "
                f"{e['expected_rows']:,}{'' if e['complete'] else ', cut short'}"
            )


def wrk_runs(results):
    """(name, wrk figures) of every wrk run: the rows', and the pooling section's."""
    for row in results["rows"]:
        yield f"{row['path']} {row['caller']}", row["wrk"]
    for row in results.get("pooling", []):
        for configuration, figures in row["configurations"].items():
            yield f"{row['path']} {row['caller']} {configuration}", figures["wrk"]


def world_note(world):
    """What the rows read in this world, in one paragraph."""
    depths = ", ".join(
        f"{caller} {facts['depth']:,} (of {facts['total']:,} uploads)"
        for caller, facts in world["cursor"].items()
    )
    return (
        f"Date windows are the last full UTC day "
        f"({iso_z(world['day'][0])} .. {iso_z(world['day'][1])}) and the last 7 full days "
        f"(from {iso_z(world['week'][0])}) before the day of the world's newest upload "
        f"({iso_z(world['newest_upload'])}; recent days are the densest), where the series "
        f"end too; `status` rows are page 1 of 20 with their total. The cursor rows walk by "
        f"100 (`pageSize=100`); the deep step starts after (caller: rows) {depths}, the "
        f"same rows as page 100 where the list is that long. `/uploads/{{id}}` reads the "
        f"upload just after that position (with its deliveries); `/stats?projectId=` the "
        f"key's project (the light user's own). Exports: the heavy user's whole uploads "
        f"and sessions."
    )


def markdown_table(headers, rows, left_columns):
    """A Markdown table's lines, the first `left_columns` left-aligned, request paths in
    the first column as code."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(["---"] * left_columns + ["---:"] * (len(headers) - left_columns)) + "|",
    ]
    for first, *rest in rows:
        first = f"`{first}`" if first.startswith("/") else first
        lines.append("| " + " | ".join([first, *rest]) + " |")
    return lines


def markdown_section(results):
    """The Markdown section of bench/results.md for this size."""
    generated = results.get("generated_seconds")
    load = results.get("load_average")
    lines = [
        f"## {results['size']:,} uploads",
        "",
        f"Run {results['date']} on {results['machine']}. "
        + (f"Database generated in {generated:,} s. " if generated is not None else "")
        + f"Heavy user: {results['heavy_projects']} projects in scope. gunicorn: the "
        f"production config, {len(results['rss_kib'])} sync workers; 1 client = "
        "sequential requests on fresh connections (200 after 20 warm-up, or as many as "
        "fit in 10 s, at least 20); 16 conn = `wrk -t2 -c16 -d5s`; DB floor = the "
        "row's two statements for that caller: caller check + data query (pgbench -M "
        f"prepared, 1 client, {PGBENCH_SECONDS} s, literals; sent one after the other, no "
        f"transaction wrapper). Max worker RSS during the run: "
        f"{mib_list(results['max_rss_kib'])} (at the end: {mib_list(results['rss_kib'])})."
        + (
            f" 1-minute load average when the HTTP measurements began and ended: "
            f"{load[0]:.1f}, {load[1]:.1f} (2 CPUs; above ~2, other work shared the machine)."
            if load
            else ""
        ),
        "",
        *markdown_table(HEADERS, table_rows(results), 2),
    ]
    if results.get("world"):
        lines += ["", results["world"]]
    if results.get("exports"):
        lines += [
            "",
            "Streamed exports through the same gunicorn, the heavy user's "
            + ", ".join(f"`{e['path']}`" for e in results["exports"])
            + "; rows counted as received lines, less CSV's header; seconds and the first "
            "body byte from sending the request; ratio = rows/s over the DB floor's; RSS of "
            "the worker that served it, sampled every 50 ms, and 2 s after the end. "
            + export_floor_note(results),
            "",
            *markdown_table(EXPORT_HEADERS, export_rows(results), 1),
        ]
    if results.get("pooling"):
        lines += ["", pooling_note(results), ""]
        lines += markdown_table(POOLING_HEADERS, pooling_rows(results), 2)
    lines += ["", targets_heading(results["size"], results["targets"]) + ".", ""]
    lines += [f"- {verdict(met)}: {text}" for met, text in results["targets"]]
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
    header = (
        "# Benchmarks\n\nGenerated by `make bench SIZE=N` (bench/run.py); raw numbers in "
        "bench/results-N.json, plans in bench/plans/ (not kept), pictures in "
        "bench/latency.png and bench/throughput.png; how to read them: "
        "[docs/benchmarks.md](../docs/benchmarks.md).\n"
    )
    path.write_text(header + "".join("\n" + sections[size] for size in sorted(sections)))


def rejudge_saved_runs():
    """Every bench/results-<N>.json judged again and written back, with its section."""
    for path in sorted(BENCH_DIR.glob("results-*.json"), key=lambda p: int(p.stem[8:])):
        results = json.loads(path.read_text())
        results["targets"] = target_checks(results, scaling_baseline(results["size"]))
        path.write_text(json.dumps(results, indent=2) + "\n")
        write_markdown(results)
        print(f"{path.name}: {targets_heading(results['size'], results['targets'])}")


if __name__ == "__main__":
    rejudge_saved_runs()
