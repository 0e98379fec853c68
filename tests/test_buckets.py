"""Series buckets (buckets.py): whole local days, weeks and months in any zone, and the
signed rollup cells whose sum is exactly each bucket. No database here: the statement
that sums the cells is checked against a model in test_series."""

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import buckets
from buckets import GRAINS, GROUP_GRAINS, RangeError, bucket_starts, cell_after, cover
from tests.spec import SERIES_ZONES

# Beyond the series' zones: a skipped day (Apia), DST changes at midnight (Havana).
ZONES = [*SERIES_ZONES, "Pacific/Apia", "America/Havana", "America/Los_Angeles"]
NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def local(moment, zone):
    return moment.astimezone(ZoneInfo(zone))


def starts(interval, zone, start_from=None, end_to=None, now=NOW):
    return bucket_starts(interval, ZoneInfo(zone), start_from, end_to, now)


# --- buckets ---------------------------------------------------------------------------


def test_berlin_days_last_23_and_25_hours_across_the_changes():
    spring = starts("day", "Europe/Berlin", utc(2026, 3, 28, 12), utc(2026, 3, 30, 12))
    assert [b - a for a, b in itertools.pairwise(spring)] == [
        timedelta(hours=24),
        timedelta(hours=23),
        timedelta(hours=24),
    ]
    autumn = starts("day", "Europe/Berlin", utc(2026, 10, 24, 12), utc(2026, 10, 26, 12))
    assert [b - a for a, b in itertools.pairwise(autumn)] == [
        timedelta(hours=24),
        timedelta(hours=25),
        timedelta(hours=24),
    ]
    assert spring[0] == utc(2026, 3, 27, 23)  # midnight CET
    assert autumn[-1] == utc(2026, 10, 26, 23)  # midnight CET again


@pytest.mark.parametrize(
    ("zone", "first"),
    [
        ("Asia/Kolkata", utc(2026, 11, 30, 18, 30)),
        ("Asia/Kathmandu", utc(2026, 11, 30, 18, 15)),
        ("America/St_Johns", utc(2026, 12, 1, 3, 30)),
        ("Australia/Lord_Howe", utc(2026, 11, 30, 13)),  # +11 in (southern) summer
        ("Pacific/Kiritimati", utc(2026, 12, 1, 10)),  # already the 2nd there
    ],
)
def test_days_start_at_local_midnight_off_the_hour(zone, first):
    bounds = starts("day", zone, utc(2026, 12, 1, 12), utc(2026, 12, 2, 12))
    assert bounds[0] == first
    assert all(local(b, zone).time() == datetime.min.time() for b in bounds)


def test_a_day_a_zone_skipped_is_no_bucket():
    """Samoa went from 2011-12-29 straight to 2011-12-31."""
    bounds = starts("day", "Pacific/Apia", utc(2011, 12, 29, 12), utc(2011, 12, 30, 12))
    assert [local(b, "Pacific/Apia").date() for b in bounds] == [
        date(2011, 12, 29),
        date(2011, 12, 31),
        date(2012, 1, 1),
    ]


def test_a_day_whose_midnight_is_skipped_starts_when_the_clocks_jump():
    """Havana moves from 00:00 to 01:00 on the second Sunday of March."""
    bounds = starts("day", "America/Havana", utc(2026, 3, 8, 12), utc(2026, 3, 8, 13))
    assert bounds == [utc(2026, 3, 8, 5), utc(2026, 3, 9, 4)]
    assert local(bounds[0], "America/Havana").hour == 1


def test_weeks_start_on_monday_and_months_on_the_first():
    weeks = starts("week", "Europe/Berlin", utc(2026, 11, 4), utc(2026, 11, 20))
    assert [local(b, "Europe/Berlin").date() for b in weeks] == [
        date(2026, 11, 2),
        date(2026, 11, 9),
        date(2026, 11, 16),
        date(2026, 11, 23),
    ]
    months = starts("month", "Asia/Kolkata", utc(2026, 1, 15), utc(2026, 2, 28, 18, 30))
    assert [local(b, "Asia/Kolkata").date() for b in months] == [
        date(2026, 1, 1),
        date(2026, 2, 1),
        date(2026, 3, 1),
    ]


def test_end_is_the_first_boundary_at_or_after_to():
    assert starts("day", "UTC", utc(2026, 11, 1), utc(2026, 11, 3))[-1] == utc(2026, 11, 3)
    assert starts("day", "UTC", utc(2026, 11, 1), utc(2026, 11, 3, 0, 0, 1))[-1] == utc(2026, 11, 4)
    assert starts("day", "UTC", utc(2026, 11, 1, 23), utc(2026, 11, 2))[0] == utc(2026, 11, 1)


@pytest.mark.parametrize(("interval", "count"), [("day", 30), ("week", 12), ("month", 12)])
def test_without_from_and_to_the_buckets_end_with_the_one_holding_now(interval, count):
    bounds = starts(interval, "Europe/Berlin")
    assert len(bounds) == count + 1
    assert bounds[-2] <= NOW < bounds[-1]


def test_without_from_the_default_count_ends_at_to():
    bounds = starts("week", "UTC", end_to=utc(2026, 6, 1))
    assert len(bounds) == 13 and bounds[-1] == utc(2026, 6, 1)


@pytest.mark.parametrize(
    ("start_from", "end_to", "parameter"),
    [
        (utc(2026, 11, 2), utc(2026, 11, 2), "to"),
        (utc(2026, 11, 2), utc(2026, 11, 1), "to"),
        (utc(2020, 1, 1), utc(2026, 1, 1), "from"),  # 2,192 days
    ],
)
def test_ranges_that_are_no_series_are_refused(start_from, end_to, parameter):
    with pytest.raises(RangeError) as refused:
        starts("day", "UTC", start_from, end_to)
    assert refused.value.parameter == parameter


def test_a_thousand_buckets_is_the_most():
    assert (
        len(starts("day", "UTC", utc(2026, 1, 1), utc(2026, 1, 1) + timedelta(days=1000))) == 1001
    )
    with pytest.raises(RangeError):
        starts("day", "UTC", utc(2026, 1, 1), utc(2026, 1, 1) + timedelta(days=1001))


def test_the_calendar_s_ends_are_refused_not_crashed_on():
    with pytest.raises(RangeError):
        starts("month", "Asia/Tokyo", utc(9999, 12, 1), utc(9999, 12, 31, 23))
    with pytest.raises(RangeError):
        starts("day", "Asia/Tokyo", utc(1, 1, 1, 1), utc(1, 1, 3))


moments = st.datetimes(min_value=datetime(1890, 1, 1), max_value=datetime(2060, 1, 1)).map(
    lambda moment: moment.replace(tzinfo=UTC)
)


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    interval=st.sampled_from(buckets.INTERVALS),
    start_from=moments,
    length=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=400)),
)
def test_buckets_are_whole_local_days_weeks_or_months(zone, interval, start_from, length):
    end_to = start_from + length
    try:
        bounds = starts(interval, zone, start_from, end_to)
    except RangeError:
        assert interval == "day" and length > timedelta(days=998)
        return
    assert bounds == sorted(set(bounds))
    assert bounds[0] <= start_from < bounds[1] and bounds[-2] < end_to <= bounds[-1]
    days = [local(b, zone).date() for b in bounds]
    for day, bound in zip(days, bounds, strict=True):
        # Each boundary is the first instant of its local date.
        assert local(bound - timedelta(microseconds=1), zone).date() < day
        if interval == "week":
            assert day.weekday() == 0
        if interval == "month":
            assert day.day == 1


# --- cells ------------------------------------------------------------------------------


def piece_extent(piece):
    """(start, end, sign) of a cell or raw piece."""
    if piece[0] == "raw":
        return piece[1], piece[2], piece[3]
    grain, cell, sign = piece
    return cell, cell_after(grain, cell), sign


def assert_tiles(pieces, start, end):
    """The signed pieces count every instant of [start, end) once and nothing else."""
    extents = [piece_extent(piece) for piece in pieces]
    points = sorted({start, end} | {p for a, b, _ in extents for p in (a, b)})
    for left, right in itertools.pairwise(points):
        covered = sum(sign for a, b, sign in extents if a <= left and right <= b)
        assert covered == (1 if start <= left and right <= end else 0), (left, right)


quarters = st.integers(0, 4 * 24 * 365 * 3).map(
    lambda n: utc(2024, 1, 1) + n * timedelta(minutes=15)
)


@settings(max_examples=500, deadline=None)
@given(start=quarters, length=st.integers(1, 4 * 24 * 120))
def test_a_cover_of_quarter_aligned_ends_needs_no_raw_piece(start, length):
    end = start + length * timedelta(minutes=15)
    pieces = cover(start, end, GRAINS)
    assert_tiles(pieces, start, end)
    assert all(piece[0] != "raw" for piece in pieces)


@settings(max_examples=300, deadline=None)
@given(start=moments, length=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=90)))
def test_any_cover_is_exact(start, length):
    for grains in (GRAINS, GROUP_GRAINS):
        pieces = cover(start, start + length, grains)
        assert_tiles(pieces, start, start + length)
        raw = [piece for piece in pieces if piece[0] == "raw"]
        finest = timedelta(minutes=15) if grains == GRAINS else timedelta(days=1)
        assert all(piece[2] - piece[1] < finest for piece in raw)


@pytest.mark.parametrize(
    ("zone", "interval", "most_cells_per_bucket"),
    [
        ("UTC", "day", 1),
        ("UTC", "week", 1),
        ("UTC", "month", 1),
        ("Europe/Berlin", "day", 3),
        ("Asia/Kolkata", "day", 7),
        ("Europe/Berlin", "month", 5),
    ],
)
def test_buckets_cost_a_few_cells(zone, interval, most_cells_per_bucket):
    bounds = starts(interval, zone)
    for start, end in itertools.pairwise(bounds):
        pieces = cover(start, end, GRAINS)
        assert_tiles(pieces, start, end)
        assert len(pieces) <= most_cells_per_bucket, pieces


@pytest.mark.parametrize(
    ("zone", "interval"),
    [
        ("Asia/Kolkata", "day"),
        ("Europe/Berlin", "month"),
        ("UTC", "week"),
        ("Asia/Kathmandu", "week"),
    ],
)
def test_a_reading_assigns_every_cell_to_its_bucket_and_reads_each_once(zone, interval):
    bounds = starts(interval, zone)
    plan = buckets.reading(bounds)
    read = {(g, c) for g, _, c in plan.points}
    for grain, minute, first, after in plan.spans:
        cell = first
        while cell < after:
            assert buckets.minute_of_day(cell) == minute
            read.add((grain, cell))
            cell = (
                cell + timedelta(days=1)
                if grain in ("6h", "hour", "quarter")
                else cell_after(grain, cell)
            )
    assert {(g, c) for _, g, c, _ in plan.cells} <= read
    assert len(plan.points) == len(set(plan.points))
    for bucket, (start, end) in enumerate(itertools.pairwise(bounds)):
        assert_tiles([(g, c, s) for b, g, c, s in plan.cells if b == bucket], start, end)
    # What a heavy caller reads per project: a few index ranges, few single cells.
    assert len(plan.spans) <= 4 and len(plan.points) <= 2 * len(bounds)
