"""The benchmark pictures, drawn from every bench/results-<N>.json (also on their own:
`python bench/pictures.py`, or `make bench-pictures`):

- bench/latency.png: one small panel per row, 1-client p50 against world size, a line per
  caller and the framework floor dashed; a flat line is cost that does not grow with data;
- bench/throughput.png: each row's requests per second at 16 connections as a share of
  the framework floor's, per caller, at the largest size measured.
"""

import json
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # the pictures are files: no display needed (before pyplot)

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, NullLocator

BENCH_DIR = Path(__file__).resolve().parent
FLOOR = "(framework floor)"
CALLER_COLOURS = {"heavy JWT": "#d62728", "light JWT": "#2ca02c", "API key": "#1f77b4"}


def load_runs():
    """Every saved run, smallest world first."""
    runs = [json.loads(path.read_text()) for path in BENCH_DIR.glob("results-*.json")]
    return sorted(runs, key=lambda run: run["size"])


def row_labels(runs):
    """Every row's label, in the order the largest run measured them (older ones after)."""
    labels = []
    for run in reversed(runs):
        for row in run["rows"]:
            if row["path"] not in labels:
                labels.append(row["path"])
    return labels


def draw_latency(runs, path=BENCH_DIR / "latency.png"):
    """One panel per row: p50 against size, a line per caller, the floor dashed."""
    labels = row_labels(runs)
    columns = 4
    fig, axes = plt.subplots(
        math.ceil(len(labels) / columns),
        columns,
        figsize=(4.2 * columns, 2.6 * math.ceil(len(labels) / columns)),
        squeeze=False,
    )
    sizes = [run["size"] for run in runs]
    floor = [run["floor"]["seq_p50_ms"] for run in runs]
    for ax, label in zip(axes.flat, labels, strict=False):
        for caller, colour in CALLER_COLOURS.items():
            points = [
                (run["size"], row["seq_p50_ms"])
                for run in runs
                for row in run["rows"]
                if row["path"] == label and row["caller"] == caller
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, color=colour, marker="o", markersize=3, label=caller)
        ax.plot(sizes, floor, color="black", linestyle="--", linewidth=1, label=FLOOR)
        ax.set_title(_wrapped(label), fontsize=8.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes, [_size(size) for size in sizes], fontsize=7)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda ms, _: f"{ms:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda ms, _: ""))
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(True, which="major", color="#eee")
    for ax in list(axes.flat)[len(labels) :]:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.suptitle(
        "1-client p50 latency (ms, log scale) against uploads in the world", y=0.995, fontsize=13
    )
    fig.legend(
        handles,
        names,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.982),
        ncol=4,
        frameon=False,
        fontsize=10,
    )
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def draw_throughput(runs, path=BENCH_DIR / "throughput.png"):
    """Horizontal bars: each row's 16-connection req/s as a % of the floor's, per caller."""
    run = runs[-1]
    floor = run["floor"]["wrk"]["rps"]
    labels = row_labels([run])
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(labels) + 1.2))
    height = 0.26
    for n, (caller, colour) in enumerate(CALLER_COLOURS.items()):
        shares = {
            row["path"]: 100 * row["wrk"]["rps"] / floor
            for row in run["rows"]
            if row["caller"] == caller
        }
        ys = [i + (n - 1) * height for i, label in enumerate(labels) if label in shares]
        ax.barh(
            ys,
            [shares[label] for label in labels if label in shares],
            height=height,
            color=colour,
            label=caller,
        )
    ax.set_yticks(range(len(labels)), [_wrapped(label, 60) for label in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"req/s at 16 connections, % of the framework floor's {floor:,.0f}")
    ax.set_title(f"Throughput as a share of the floor, {run['size']:,} uploads", fontsize=11)
    ax.grid(True, axis="x", color="#eee")
    ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.7 / len(labels) - 0.03), ncol=3, frameon=False
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _size(size):
    return f"{size // 1_000_000}M" if size >= 1_000_000 else f"{size // 1000}k"


def _wrapped(label, width=44):
    """A long row label on two lines, broken at a space or a query's ? or &."""
    if len(label) <= width:
        return label
    cut = max(label.rfind(mark, 0, width) for mark in (" ", "?", "&"))
    cut = cut if cut > 0 else width
    return label[:cut] + "\n" + label[cut:].lstrip()


def draw_all():
    """Both pictures from every saved run."""
    runs = load_runs()
    if runs:
        draw_latency(runs)
        draw_throughput(runs)


if __name__ == "__main__":
    draw_all()
    sys.exit(0)
