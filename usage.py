"""Usage series answers (GET /api/v1/stats/series): how each grouping reads the series
rollups, how the statement's sums add up into buckets and groups, and the series' CSV."""

import csv
import io
from dataclasses import dataclass

from schemas.vocabulary import SOURCES, UPLOAD_STATUSES

# Every metric, in answer order, with the statement's column that holds it.
METRICS = {
    "sessions": "sessions",
    "uploads": "uploads",
    "bytes": "bytes",
    "deliveriesSent": "sent",
    "deliveriesFailed": "failed",
    "deliveriesPending": "pending",
}
COLUMN_OF = {name: n for n, name in enumerate(METRICS)}  # a figure's place in tally's lists
UPLOAD_METRICS = tuple(name for name in METRICS if name != "sessions")
DELIVERY_METRICS = ("deliveriesSent", "deliveriesFailed", "deliveriesPending")


@dataclass(frozen=True)
class Grouping:
    """One way of grouping a series: which rollup dimension it reads, whether per project,
    the values it answers whether or not they occur, its `by` key and its metrics."""

    dimension: str
    by_project: bool = False
    values: tuple = ()
    key: str | None = None
    metrics: tuple = tuple(METRICS)

    @property
    def by_keys(self):
        """The keys of each group's `by` object (and the CSV's columns after `start`)."""
        if self.by_project:
            return ("projectId", "projectName")
        return (self.key,) if self.key else ()

    def groups(self, rows, reading, buckets):
        """The answer's groups, in order, from the statement's rows (sql/series.sql)."""
        figures = tally(rows, reading, buckets)
        if self.by_project:
            projects = sorted((r["name"], r["key"]) for r in rows if r["kind"] == "project")
            return [
                self.group(figures, id, {"projectId": id, "projectName": name}, buckets)
                for name, id in projects
            ]
        if self.key is None:
            return [self.group(figures, "", {}, buckets)]
        values = self.values or sorted(
            key for key, numbers in figures.items() if any(map(any, numbers))
        )
        return [self.group(figures, value, {self.key: value}, buckets) for value in values]

    def group(self, figures, key, by, buckets):
        """One group as {by, totals, series}."""
        numbers = figures.get(key) or [[0] * buckets for _ in METRICS]
        series = {name: numbers[COLUMN_OF[name]] for name in self.metrics}
        return {
            "by": by,
            "totals": {name: sum(values) for name, values in series.items()},
            "series": series,
        }


GROUPINGS = {
    None: Grouping(""),
    "project": Grouping("", by_project=True),
    "status": Grouping("status", values=UPLOAD_STATUSES, key="status", metrics=UPLOAD_METRICS),
    "source": Grouping("source", values=SOURCES, key="source", metrics=UPLOAD_METRICS),
    "destinationType": Grouping("type", key="destinationType", metrics=DELIVERY_METRICS),
}


def tally(rows, reading, buckets):
    """{group key: per figure (in METRICS' order), one number per bucket}: every cell's
    (and raw piece's) sums added to, or taken from, the buckets the reading says."""
    shares = {}
    for bucket, grain, at, sign in reading.cells:
        shares.setdefault((grain, at), []).append((bucket, sign))
    columns = list(METRICS.values())
    figures = {}
    for row in rows:
        if row["kind"] == "cell":
            targets = shares[row["grain"], row["at"]]
        elif row["kind"] == "raw":
            bucket, _, _, sign = reading.raw[row["piece"] - 1]
            targets = ((bucket, sign),)
        else:
            continue
        numbers = figures.get(row["key"])
        if numbers is None:
            numbers = figures[row["key"]] = [[0] * buckets for _ in columns]
        amounts = [int(row[column]) for column in columns]
        for bucket, sign in targets:
            for values, amount in zip(numbers, amounts, strict=True):
                values[bucket] += sign * amount
    return figures


def as_csv(answer, grouping):
    """The series as long-form CSV (RFC 4180, with a header): a line per group and bucket,
    groups in their order, buckets in time order."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["start", *grouping.by_keys, *grouping.metrics])
    for group in answer["groups"]:
        by = [group["by"][key] for key in grouping.by_keys]
        for n, start in enumerate(answer["intervals"]):
            writer.writerow([start, *by, *(group["series"][name][n] for name in grouping.metrics)])
    return text.getvalue()
