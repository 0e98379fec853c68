"""The buckets of a usage series, and the rollup cells that add up to each.

A bucket is a whole local day, ISO week (from Monday 00:00) or month (from the 1st, 00:00)
in an IANA time zone: 23 or 25 hours long across a DST change, starting on the half or
quarter hour in zones offset that way. The series rollups count in UTC cells of six grains
(month, week, day, 6 hours, hour, quarter hour; sql/schema/0009), so each bucket is written
as an exact signed sum of cells: round both ends to the nearest edge of the coarsest grain
whose cells the bucket fills at least half of, take the cells between them, and cover the
two short ends (added, or taken away) the same way with the finer grains. A Berlin day is
its UTC day, plus the hour before it, minus its own last hour; a Kolkata day adds and takes
away a 6-hour cell and two quarters. What no cell covers (an instant off the quarter hour,
as in the local mean times of the 19th century, or a sub-day end for the rollups that keep
days only) is a raw piece, counted from the base tables.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, available_timezones

INTERVALS = ("day", "week", "month")
# Buckets before `end` when `from` is not given.
DEFAULT_BUCKETS = {"day": 30, "week": 12, "month": 12}
MAX_BUCKETS = 1000
# The cells kept over all uploads, and those kept by status, source and destination type.
GRAINS = ("month", "week", "day", "6h", "hour", "quarter")
GROUP_GRAINS = ("month", "week", "day")
_STEPS = {
    "week": timedelta(days=7),
    "day": timedelta(days=1),
    "6h": timedelta(hours=6),
    "hour": timedelta(hours=1),
    "quarter": timedelta(minutes=15),
}
_ORIGIN = datetime(1, 1, 1, tzinfo=UTC)  # a Monday: cells count from it, as in SQL
# A grain read cell by cell costs an index descent each, about what reading this many
# consecutive cells does: past that, a grain's cells are read as one range.
_CELLS_PER_DESCENT = 3
# Zone names that are no IANA zone, though the system's zone directory holds them.
_NOT_ZONES = {"localtime", "posixrules"}


class RangeError(ValueError):
    """The asked range is not a series this API answers; `parameter` names the culprit."""

    def __init__(self, parameter, message):
        super().__init__(message)
        self.parameter = parameter


def zone_names():
    """Every IANA zone name, as the zone database spells it."""
    return available_timezones() - _NOT_ZONES


def bucket_starts(interval, zone, start_from=None, end_to=None, now=None):
    """The boundaries of the series' buckets as UTC instants: each bucket's start, then the
    end. `start_from` lies in the first bucket; the end is the first boundary at or after
    `end_to` (without it, the end of the bucket holding `now`); without `start_from`, the
    series has DEFAULT_BUCKETS buckets. Raises RangeError for an empty or too long range."""
    if start_from is not None and end_to is not None and end_to <= start_from:
        raise RangeError("to", "must be after 'from'")
    try:
        if end_to is None:
            last = _floor(interval, _local_date(now or datetime.now(UTC), zone))
            end_date = _step(interval, last, 1)
        else:
            end_date = _floor(interval, _local_date(end_to, zone))
            if _day_start(end_date, zone) < end_to:
                end_date = _step(interval, end_date, 1)
        if start_from is None:
            start_date = _step(interval, end_date, -DEFAULT_BUCKETS[interval])
        else:
            start_date = _floor(interval, _local_date(start_from, zone))
        count = _buckets_between(interval, start_date, end_date)
        if count > MAX_BUCKETS:
            raise RangeError(
                "from",
                f"the range from 'from' to 'to' holds {count:,} "
                f"{interval} buckets; at most {MAX_BUCKETS:,}",
            )
        dates = [_step(interval, start_date, n) for n in range(count + 1)]
        starts = [_day_start(day, zone) for day in dates]
    except RangeError:
        raise
    except (OverflowError, ValueError):
        raise RangeError("from" if start_from else "to", "is outside the calendar") from None
    # A local day that never happened (Samoa skipped 2011-12-30) is no bucket.
    starts = [t for n, t in enumerate(starts) if n == 0 or t > starts[n - 1]]
    if len(starts) < 2:
        raise RangeError("to", "leaves no bucket")
    return starts


def _local_date(moment, zone):
    return moment.astimezone(zone).date()


def _floor(interval, day):
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def _step(interval, day, n):
    if interval == "month":
        months = day.year * 12 + day.month - 1 + n
        return date(months // 12, months % 12 + 1, 1)
    return day + (timedelta(days=7 * n) if interval == "week" else timedelta(days=n))


def _buckets_between(interval, first, last):
    if interval == "month":
        return (last.year - first.year) * 12 + last.month - first.month
    return (last - first).days // (7 if interval == "week" else 1)


def _day_start(day, zone):
    """The first instant whose local date is `day` or later: local midnight, or where the
    clocks skip midnight, the moment they jump past it."""
    midnight = datetime.combine(day, time())
    candidates = [midnight.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
    start = min((t for t in candidates if _local_date(t, zone) >= day), default=candidates[0])
    if _local_date(start - timedelta(microseconds=1), zone) < day:
        return start
    # The clocks jumped over midnight from earlier on: find the jump, to the second.
    early = start - timedelta(hours=3)
    while start - early > timedelta(seconds=1):
        middle = early + (start - early) / 2
        if _local_date(middle, zone) >= day:
            start = middle
        else:
            early = middle
    return start.replace(microsecond=0)


# --- cells -------------------------------------------------------------------------------


def cell_floor(grain, moment):
    """The start of the UTC cell of `grain` that holds `moment`."""
    if grain == "month":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    step = _STEPS[grain]
    return moment - (moment - _ORIGIN) % step


def cell_after(grain, cell):
    """The start of the cell after `cell`."""
    if grain == "month":
        months = cell.year * 12 + cell.month
        return cell.replace(year=months // 12, month=months % 12 + 1)
    return cell + _STEPS[grain]


def _nearest_edge(grain, moment):
    floor = cell_floor(grain, moment)
    after = cell_after(grain, floor)
    return floor if moment - floor <= after - moment else after


def cover(start, end, grains=GRAINS):
    """[(grain, cell start, sign)] and raw [("raw", start, end, sign)] pieces whose signed
    sum counts exactly what lies in [start, end)."""
    if start >= end:
        return []
    for n, grain in enumerate(grains):
        # A cell is worth rounding to only if the piece fills at least half of one.
        floor = cell_floor(grain, start)
        if 2 * (end - start) < cell_after(grain, floor) - floor:
            continue
        low, high = _nearest_edge(grain, start), _nearest_edge(grain, end)
        if low < high:
            cells = []
            while low < high:
                cells.append((grain, low, 1))
                low = cell_after(grain, low)
            finer = grains[n + 1 :]
            return (
                cells
                + _signed(start, _nearest_edge(grain, start), finer)
                + _signed(high, end, finer)
            )
    return [("raw", start, end, 1)]


def _signed(first, second, grains):
    """The piece [first, second), or minus [second, first) when it runs backwards."""
    if first <= second:
        return cover(first, second, grains)
    return [(*piece[:-1], -piece[-1]) for piece in cover(second, first, grains)]


@dataclass
class Reading:
    """What the series statement reads for a range of buckets: cells by grain and minute
    of the UTC day (the rollups' key order), each such run read as one span or cell by
    cell; which bucket each cell adds to (or takes from); and the raw pieces."""

    spans: list = field(default_factory=list)  # (grain, minute, first cell, after the last)
    points: list = field(default_factory=list)  # (grain, minute, cell)
    cells: list = field(default_factory=list)  # (bucket, grain, cell, sign)
    raw: list = field(default_factory=list)  # (bucket, start, end, sign)

    def params(self):
        """The reading as the array parameters of sql/series.sql: span_grain, span_minute, …
        (which bucket each cell and raw piece adds to stays here: usage.tally applies it)."""
        columns = {
            "span": (self.spans, ("grain", "minute", "from", "to")),
            "point": (self.points, ("grain", "minute", "at")),
            "raw": (self.raw, (None, "from", "to", None)),
        }
        return {
            f"{kind}_{name}": [row[n] for row in rows]
            for kind, (rows, names) in columns.items()
            for n, name in enumerate(names)
            if name
        }


def minute_of_day(cell):
    """The minute of the UTC day a cell starts at (as the rollups store it)."""
    return cell.hour * 60 + cell.minute


def reading(starts, grains=GRAINS):
    """The Reading of the buckets between consecutive `starts`."""
    plan = Reading()
    for bucket, (start, end) in enumerate(pairwise(starts)):
        for piece in cover(start, end, grains):
            if piece[0] == "raw":
                plan.raw.append((bucket, *piece[1:]))
            else:
                plan.cells.append((bucket, *piece))
    runs = {}
    for _, grain, cell, _ in plan.cells:
        runs.setdefault((grain, minute_of_day(cell)), set()).add(cell)
    for (grain, minute), needed in runs.items():
        needed = sorted(needed)
        # The cells of this grain at this time of day between the first and the last.
        step = timedelta(days=1) if grain in ("6h", "hour", "quarter") else None
        span = _cells_between(grain, needed[0], needed[-1], step)
        if span <= _CELLS_PER_DESCENT * len(needed):
            plan.spans.append((grain, minute, needed[0], needed[-1] + timedelta(microseconds=1)))
        else:
            plan.points.extend((grain, minute, cell) for cell in needed)
    return plan


def _cells_between(grain, first, last, step):
    """How many cells of `grain` at `first`'s time of day lie from `first` to `last`."""
    if step:
        return (last - first) // step + 1
    count, cell = 1, first
    while cell < last:
        cell = cell_after(grain, cell)
        count += 1
    return count


def zone(name):
    """The ZoneInfo of an IANA zone name."""
    return ZoneInfo(name)
