"""Tests for chatops.calendars: edge cases, DST, holidays, and properties vs a naive reference."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatops.calendars import (
    BusinessCalendar,
    adjusted_working_days,
    parse_windows,
    public_holidays,
)

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
LON = ZoneInfo("Europe/London")
MINUTE = timedelta(minutes=1)
YEARS = range(2024, 2031)


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)


# --- calendars used throughout --------------------------------------------------------------

SH_LATE = BusinessCalendar.from_spec("Asia/Shanghai", {"daily": "09:00-24:00"})
SH_OFFICE = BusinessCalendar.from_spec(
    "Asia/Shanghai",
    {"weekdays": "09:00-17:00"},
    closed_dates=public_holidays("CN", YEARS),
    extra_open_dates=adjusted_working_days("CN", YEARS),
)
SH_PLAIN_OFFICE = BusinessCalendar.from_spec("Asia/Shanghai", {"weekdays": "09:00-17:00"})
NY_SPLIT = BusinessCalendar.from_spec(
    "America/New_York",
    {"weekdays": "08:00-12:00,13:00-17:30", "sat": "10:00-14:00"},
    closed_dates=public_holidays("US", YEARS, subdivision="NY"),
)
# Boundaries inside the US DST gap (02:00-03:00 in March) and fold (01:00-02:00 in November).
NY_NASTY = BusinessCalendar.from_spec(
    "America/New_York", {"daily": "00:00-01:30,01:45-02:15,02:30-03:30,22:00-24:00"}
)
# 24 h every local day, but with a closed date so the general (non-timedelta) path runs.
LON_FULL_DAYS = BusinessCalendar.from_spec(
    "Europe/London", {"daily": "00:00-24:00"}, closed_dates={date(2035, 1, 1)}
)
ALWAYS_SH = BusinessCalendar.always("Asia/Shanghai")
# Chile changes clocks at midnight (spring: 00:00 -> 01:00; autumn: Sunday 00:00 -> Saturday 23:00).
SANTIAGO = BusinessCalendar.from_spec(
    "America/Santiago", {"daily": "00:00-00:30,08:00-18:00,23:30-24:00", "sun": "10:00-12:00"}
)

CALENDARS = {
    "always": ALWAYS_SH,
    "sh_late": SH_LATE,
    "sh_office_cn_holidays": SH_OFFICE,
    "ny_split": NY_SPLIT,
    "ny_nasty_dst": NY_NASTY,
    "london_full_days": LON_FULL_DAYS,
    "santiago_midnight_dst": SANTIAGO,
}

# --- naive reference implementation ---------------------------------------------------------


def ref_intervals(cal: BusinessCalendar, day: date) -> list[tuple[datetime, datetime]]:
    """Day's open intervals in UTC, converting every boundary with plain zoneinfo (fold=0)."""
    tz = cal.tzinfo
    midnight = datetime.combine(day, time(0), tzinfo=tz)

    def conv(minute: int) -> datetime:
        return (midnight + timedelta(minutes=minute)).astimezone(UTC)

    low, high = conv(0), conv(1440)
    raw = sorted((max(conv(s), low), min(conv(e), high)) for s, e in cal.windows_on(day))
    merged: list[tuple[datetime, datetime]] = []
    for s, e in raw:
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def ref_add(cal: BusinessCalendar, start: datetime, minutes: int) -> datetime:
    """Walk every day, every window; no week skipping, no offset shortcuts."""
    remaining = timedelta(minutes=minutes)
    day = start.astimezone(cal.tzinfo).date() - timedelta(days=1)
    while True:
        for s, e in ref_intervals(cal, day):
            if e <= start:
                continue
            begin = max(s, start)
            if minutes == 0 or e - begin >= remaining:
                return begin + remaining
            remaining -= e - begin
            start = e
        day += timedelta(days=1)


def ref_between(cal: BusinessCalendar, a: datetime, b: datetime) -> float:
    total = timedelta(0)
    day = a.astimezone(cal.tzinfo).date() - timedelta(days=1)
    last = b.astimezone(cal.tzinfo).date() + timedelta(days=1)
    while day <= last:
        for s, e in ref_intervals(cal, day):
            lo, hi = max(s, a), min(e, b)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total / MINUTE


def wall_clock_open(cal: BusinessCalendar, at: datetime) -> bool:
    """Is the local wall-clock time inside one of its local date's windows?"""
    loc = at.astimezone(cal.tzinfo)
    minute = loc.hour * 60 + loc.minute + loc.second / 60
    return any(s <= minute < e for s, e in cal.windows_on(loc.date()))


def is_window_end(cal: BusinessCalendar, at: datetime) -> bool:
    day = at.astimezone(cal.tzinfo).date()
    return any(
        end == at
        for offset in (-1, 0, 1)
        for _, end in cal.intervals_on(day + timedelta(days=offset))
    )


# --- unit edge cases ------------------------------------------------------------------------


def test_window_to_midnight_rolls_to_next_morning() -> None:
    due = SH_LATE.add_business_minutes(local(SH, 2026, 3, 2, 23, 30), 60)
    assert due == local(SH, 2026, 3, 3, 9, 30)
    assert due.tzinfo is UTC


def test_window_to_midnight_ends_at_midnight() -> None:
    due = SH_LATE.add_business_minutes(local(SH, 2026, 3, 2, 23, 30), 30)
    assert due == local(SH, 2026, 3, 3, 0, 0)  # the window's end, not 09:00 next day
    assert not SH_LATE.is_open(due)
    assert SH_LATE.is_open(local(SH, 2026, 3, 2, 23, 59, 59))
    assert SH_LATE.next_opening(due) == local(SH, 2026, 3, 3, 9, 0)


def test_opened_outside_hours_starts_at_next_opening() -> None:
    due = SH_PLAIN_OFFICE.add_business_minutes(local(SH, 2026, 3, 3, 6, 12), 45)
    assert due == local(SH, 2026, 3, 3, 9, 45)
    # Saturday: starts on Monday.
    due = SH_PLAIN_OFFICE.add_business_minutes(local(SH, 2026, 3, 7, 12, 0), 30)
    assert due == local(SH, 2026, 3, 9, 9, 30)


def test_opened_exactly_at_closing_starts_next_opening() -> None:
    closing = local(SH, 2026, 3, 3, 17, 0)
    assert not SH_PLAIN_OFFICE.is_open(closing)
    assert SH_PLAIN_OFFICE.next_opening(closing) == local(SH, 2026, 3, 4, 9, 0)
    assert SH_PLAIN_OFFICE.add_business_minutes(closing, 60) == local(SH, 2026, 3, 4, 10, 0)


def test_opened_exactly_at_opening() -> None:
    opening = local(SH, 2026, 3, 3, 9, 0)
    assert SH_PLAIN_OFFICE.is_open(opening)
    assert SH_PLAIN_OFFICE.next_opening(opening) == opening
    assert SH_PLAIN_OFFICE.add_business_minutes(opening, 480) == local(SH, 2026, 3, 3, 17, 0)


def test_friday_afternoon_over_the_weekend() -> None:
    friday_16 = local(SH, 2026, 3, 6, 16, 0)
    # 1 h on Friday + 7 h on Monday (09:00-16:00).
    assert SH_PLAIN_OFFICE.add_business_minutes(friday_16, 8 * 60) == local(SH, 2026, 3, 9, 16)
    assert SH_PLAIN_OFFICE.add_business_minutes(friday_16, 7 * 60) == local(SH, 2026, 3, 9, 15)


def test_landing_on_window_end_is_not_rolled_forward() -> None:
    due = SH_PLAIN_OFFICE.add_business_minutes(local(SH, 2026, 3, 6, 16, 0), 60)
    assert due == local(SH, 2026, 3, 6, 17, 0)  # Friday 17:00, not Monday 09:00


def test_exact_multiple_of_a_week_ends_at_friday_close() -> None:
    saturday = local(SH, 2026, 3, 7, 12, 0)
    weekly = SH_PLAIN_OFFICE.weekly_open_minutes
    assert weekly == 2400
    for weeks in (1, 3, 52):
        due = SH_PLAIN_OFFICE.add_business_minutes(saturday, weeks * weekly)
        assert due == local(SH, 2026, 3, 13, 17, 0) + timedelta(weeks=weeks - 1)
        assert SH_PLAIN_OFFICE.business_minutes_between(saturday, due) == weeks * weekly


def test_zero_minutes() -> None:
    open_now = local(SH, 2026, 3, 3, 10, 17, 5)
    assert SH_PLAIN_OFFICE.add_business_minutes(open_now, 0) == open_now
    closed_now = local(SH, 2026, 3, 3, 20, 0)
    assert SH_PLAIN_OFFICE.add_business_minutes(closed_now, 0) == local(SH, 2026, 3, 4, 9)


def test_fractional_minutes_and_timedelta_api() -> None:
    start = local(SH, 2026, 3, 3, 16, 59)
    assert SH_PLAIN_OFFICE.add_business_minutes(start, 1.5) == local(SH, 2026, 3, 4, 9, 0, 30)
    due = SH_PLAIN_OFFICE.add_business_time(start, timedelta(seconds=90))
    assert due == local(SH, 2026, 3, 4, 9, 0, 30)
    assert SH_PLAIN_OFFICE.business_time_between(start, due) == timedelta(seconds=90)
    assert SH_PLAIN_OFFICE.business_minutes_between(start, due) == 1.5


def test_business_minutes_between_basics() -> None:
    mon = local(SH, 2026, 3, 2, 0, 0)
    assert SH_PLAIN_OFFICE.business_minutes_between(mon, mon + timedelta(days=7)) == 2400
    assert SH_PLAIN_OFFICE.business_minutes_between(mon + timedelta(days=7), mon) == 0
    assert SH_PLAIN_OFFICE.business_minutes_between(mon, mon) == 0
    # Mixed time zones in the arguments are fine: they are instants.
    a = local(SH, 2026, 3, 2, 16, 30)
    b = local(NY, 2026, 3, 2, 21, 0)  # = Tuesday 2026-03-03 10:00 in Shanghai
    assert SH_PLAIN_OFFICE.business_minutes_between(a, b) == 90


def test_cn_national_day_is_skipped() -> None:
    # 2026-10-01 (Thu) .. 10-07 are days off; Sunday 09-20 and Saturday 10-10 are work days.
    assert date(2026, 10, 1) in SH_OFFICE.closed_dates
    assert not SH_OFFICE.is_open(local(SH, 2026, 10, 1, 10, 0))
    due = SH_OFFICE.add_business_minutes(local(SH, 2026, 9, 30, 16, 0), 120)
    assert due == local(SH, 2026, 10, 8, 10, 0)
    # Without holidays it would have been Thursday morning.
    plain = SH_PLAIN_OFFICE.add_business_minutes(local(SH, 2026, 9, 30, 16, 0), 120)
    assert plain == local(SH, 2026, 10, 1, 10, 0)


def test_cn_make_up_working_days_are_open() -> None:
    assert SH_OFFICE.is_open(local(SH, 2026, 9, 20, 10, 0))  # Sunday, make-up day
    assert SH_OFFICE.is_open(local(SH, 2026, 10, 10, 10, 0))  # Saturday, make-up day
    assert not SH_OFFICE.is_open(local(SH, 2026, 9, 19, 10, 0))  # ordinary Saturday
    due = SH_OFFICE.add_business_minutes(local(SH, 2026, 9, 18, 16, 30), 60)
    assert due == local(SH, 2026, 9, 20, 9, 30)


def test_cn_holiday_helpers() -> None:
    national_day = public_holidays("CN", range(2026, 2027))
    assert {date(2026, 10, d) for d in (1, 2, 3, 5, 6, 7)} <= national_day
    assert all(d.year == 2026 for d in national_day)
    assert adjusted_working_days("CN", range(2026, 2027)) == {
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    }
    assert all(d.weekday() >= 5 for d in adjusted_working_days("CN", range(2024, 2027)))
    assert adjusted_working_days("US", range(2026, 2027)) == set()
    assert public_holidays("CN", []) == set()


def test_holidays_crossing_years_are_filtered_by_date() -> None:
    # New Year 2022 fell on a Saturday; US federal holiday observed on Friday 2021-12-31.
    assert date(2021, 12, 31) in public_holidays("US", [2021])
    assert date(2021, 12, 31) not in public_holidays("US", [2022])


def test_holiday_helpers_reject_unknown_country() -> None:
    with pytest.raises(ValueError, match="holidays"):
        public_holidays("XX", [2026])
    with pytest.raises(ValueError, match="holidays"):
        adjusted_working_days("US", [2026], subdivision="ZZ")


def test_extra_open_date_with_own_hours_overrides_closed_date() -> None:
    holiday = date(2026, 3, 4)  # Wednesday
    sunday = date(2026, 3, 8)
    cal = BusinessCalendar.from_spec(
        "Asia/Shanghai",
        {"weekdays": "09:00-17:00"},
        closed_dates={holiday, date(2026, 3, 5)},
        extra_open_dates={sunday: "10:00-12:00", date(2026, 3, 5): "13:00-14:00"},
    )
    assert cal.windows_on(holiday) == ()
    assert cal.windows_on(sunday) == ((600, 720),)
    assert cal.windows_on(date(2026, 3, 5)) == ((780, 840),)
    # Tue 16:30 + 90 min: 30 min Tue, Wed closed, 60 min Thu 13:00-14:00.
    due = cal.add_business_minutes(local(SH, 2026, 3, 3, 16, 30), 90)
    assert due == local(SH, 2026, 3, 5, 14, 0)
    due = cal.add_business_minutes(local(SH, 2026, 3, 3, 16, 30), 30 + 60 + 480 + 30)
    assert due == local(SH, 2026, 3, 8, 10, 30)


def test_extra_open_dates_as_plain_dates_use_monday_or_given_hours() -> None:
    sat = date(2026, 3, 7)
    cal = BusinessCalendar.from_spec(
        "Asia/Shanghai", {"mon": "08:00-12:00", "tue": "09:00-17:00"}, extra_open_dates=[sat]
    )
    assert cal.windows_on(sat) == ((480, 720),)
    cal = BusinessCalendar.from_spec(
        "Asia/Shanghai",
        {"weekdays": "09:00-17:00"},
        extra_open_dates=[sat],
        extra_open_hours="10:00-11:00",
    )
    assert cal.windows_on(sat) == ((600, 660),)
    with pytest.raises(ValueError, match="extra_open_hours"):
        BusinessCalendar.from_spec("Asia/Shanghai", {"tue": "09:00-17:00"}, extra_open_dates=[sat])


# --- daylight saving ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "spring", "autumn"),
    [
        (LON, date(2026, 3, 29), date(2026, 10, 25)),
        (NY, date(2026, 3, 8), date(2026, 11, 1)),
        (NY, date(2025, 3, 9), date(2025, 11, 2)),
    ],
)
@pytest.mark.parametrize("with_exception", [False, True])
def test_full_local_days_are_23_and_25_hours(
    tz: ZoneInfo, spring: date, autumn: date, with_exception: bool
) -> None:
    cal = BusinessCalendar.from_spec(
        tz.key,
        {"daily": "00:00-24:00"},
        closed_dates={date(2040, 1, 1)} if with_exception else (),
    )

    def midnight(d: date) -> datetime:
        return datetime.combine(d, time(0), tzinfo=tz)

    one = timedelta(days=1)
    assert cal.business_minutes_between(midnight(spring), midnight(spring + one)) == 23 * 60
    assert cal.business_minutes_between(midnight(autumn), midnight(autumn + one)) == 25 * 60
    assert cal.business_minutes_between(midnight(spring - one), midnight(spring)) == 24 * 60
    start = midnight(spring)
    assert cal.add_business_minutes(start, 23 * 60) == midnight(spring + one)
    assert cal.add_business_minutes(start, 24 * 60) == midnight(spring + one) + timedelta(hours=1)
    start = midnight(autumn)
    assert cal.add_business_minutes(start, 25 * 60) == midnight(autumn + one)
    (interval,) = cal.intervals_on(autumn)
    assert interval[1] - interval[0] == timedelta(hours=25)


def test_one_to_three_window_on_spring_forward_day() -> None:
    ny = BusinessCalendar.from_spec("America/New_York", {"daily": "01:00-03:00"})
    # 01:00 EST .. 03:00 EDT is one real hour.
    assert ny.intervals_on(date(2026, 3, 8)) == (
        (datetime(2026, 3, 8, 6, 0, tzinfo=UTC), datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
    )
    assert ny.add_business_minutes(local(NY, 2026, 3, 8, 1, 30), 30) == local(NY, 2026, 3, 8, 3)
    assert ny.add_business_minutes(local(NY, 2026, 3, 8, 1, 30), 31) == local(NY, 2026, 3, 9, 1, 1)
    # 01:00 EDT .. 03:00 EST on the fall-back day is three real hours.
    assert ny.business_minutes_between(local(NY, 2026, 11, 1), local(NY, 2026, 11, 2)) == 180
    # London: 01:00 is the gap's start (read as GMT: 01:00Z), 03:00 BST is 02:00Z.
    lon = BusinessCalendar.from_spec("Europe/London", {"daily": "01:00-03:00"})
    assert lon.intervals_on(date(2026, 3, 29)) == (
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), datetime(2026, 3, 29, 2, 0, tzinfo=UTC)),
    )
    assert lon.business_minutes_between(local(LON, 2026, 10, 25), local(LON, 2026, 10, 26)) == 180


def test_gap_and_fold_boundaries_use_fold_zero() -> None:
    ny = BusinessCalendar.from_spec("America/New_York", {"daily": "02:30-04:00"})
    # 02:30 does not exist on 2026-03-08; fold=0 reads it with EST, i.e. 03:30 EDT.
    (interval,) = ny.intervals_on(date(2026, 3, 8))
    assert interval == (local(NY, 2026, 3, 8, 3, 30), local(NY, 2026, 3, 8, 4, 0))
    # 01:30 happens twice on 2026-11-01; fold=0 is the first (EDT) occurrence.
    ny = BusinessCalendar.from_spec("America/New_York", {"daily": "01:30-02:00"})
    (interval,) = ny.intervals_on(date(2026, 11, 1))
    assert interval == (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), local(NY, 2026, 11, 1, 2, 0))
    assert interval[1] - interval[0] == timedelta(minutes=90)


def test_windows_overlapping_after_gap_conversion_are_merged() -> None:
    ny = BusinessCalendar.from_spec("America/New_York", {"daily": "01:00-02:30,03:00-04:00"})
    # 02:30 -> 03:30 EDT overlaps the 03:00 EDT window: one interval 01:00 EST .. 04:00 EDT.
    assert ny.intervals_on(date(2026, 3, 8)) == (
        (datetime(2026, 3, 8, 6, 0, tzinfo=UTC), datetime(2026, 3, 8, 8, 0, tzinfo=UTC)),
    )
    start = local(NY, 2026, 3, 8, 0, 0)
    assert ny.business_minutes_between(start, start + timedelta(days=1)) == 120
    # A window entirely inside the gap lands after the next window's start: sorted, merged.
    ny = BusinessCalendar.from_spec("America/New_York", {"daily": "02:30-02:45,03:00-03:40"})
    assert ny.intervals_on(date(2026, 3, 8)) == (
        (datetime(2026, 3, 8, 7, 0, tzinfo=UTC), datetime(2026, 3, 8, 7, 45, tzinfo=UTC)),
    )
    assert ny.business_minutes_between(start, start + timedelta(days=1)) == 45


def test_nasty_dst_windows_exact_intervals() -> None:
    utc = lambda *args: datetime(*args, tzinfo=UTC)  # noqa: E731
    # 02:15 and 02:30 fall in the gap (read as EST); 02:30-03:30 becomes empty.
    assert NY_NASTY.intervals_on(date(2026, 3, 8)) == (
        (utc(2026, 3, 8, 5, 0), utc(2026, 3, 8, 6, 30)),
        (utc(2026, 3, 8, 6, 45), utc(2026, 3, 8, 7, 15)),
        (utc(2026, 3, 9, 2, 0), utc(2026, 3, 9, 4, 0)),
    )
    assert NY_NASTY.next_opening(utc(2026, 3, 8, 7, 20)) == utc(2026, 3, 9, 2, 0)
    assert not NY_NASTY.is_open(utc(2026, 3, 8, 7, 30))
    # 01:30 and 01:45 are ambiguous (first = EDT occurrence); 02:15 is EST.
    assert NY_NASTY.intervals_on(date(2026, 11, 1)) == (
        (utc(2026, 11, 1, 4, 0), utc(2026, 11, 1, 5, 30)),
        (utc(2026, 11, 1, 5, 45), utc(2026, 11, 1, 7, 15)),
        (utc(2026, 11, 1, 7, 30), utc(2026, 11, 1, 8, 30)),
        (utc(2026, 11, 2, 3, 0), utc(2026, 11, 2, 5, 0)),
    )


def test_skipped_local_day_has_no_hours() -> None:
    # Samoa skipped Friday 2011-12-30 entirely (UTC-10 -> UTC+14 at midnight).
    apia = ZoneInfo("Pacific/Apia")
    cal = BusinessCalendar.from_spec("Pacific/Apia", {"weekdays": "09:00-17:00"})
    assert cal.intervals_on(date(2011, 12, 30)) == ()
    due = cal.add_business_minutes(local(apia, 2011, 12, 29, 16), 120)
    assert due == local(apia, 2012, 1, 2, 10)


def test_fall_back_across_midnight_keeps_full_days_continuous() -> None:
    # Antarctica/Casey 2010-03-05 02:00 (+11) -> 2010-03-04 23:00 (+08): the fold spans midnight.
    casey = ZoneInfo("Antarctica/Casey")
    cal = BusinessCalendar.from_spec(
        "Antarctica/Casey", {"daily": "00:00-24:00"}, closed_dates={date(2099, 1, 1)}
    )
    a = local(casey, 2010, 3, 3).astimezone(UTC)
    for hours in (0, 1, 24, 26, 27, 40, 99):
        b = a + timedelta(hours=hours)
        assert cal.business_minutes_between(a, b) == hours * 60
        assert cal.add_business_minutes(a, hours * 60) == b
    second_pass = datetime(2010, 3, 4, 15, 30, tzinfo=UTC)  # 23:30 +08, local date 03-04
    assert second_pass.astimezone(casey).date() == date(2010, 3, 4)
    assert cal.is_open(second_pass)
    assert cal.add_business_minutes(second_pass, 10) == second_pass + 10 * MINUTE


def test_office_hours_across_dst() -> None:
    ny = BusinessCalendar.from_spec("America/New_York", {"weekdays": "09:00-17:00"})
    # Friday before spring-forward, 16:00 EST + 2 h -> Monday 10:00 EDT.
    assert ny.add_business_minutes(local(NY, 2026, 3, 6, 16), 120) == local(NY, 2026, 3, 9, 10)
    assert ny.add_business_minutes(local(NY, 2026, 10, 30, 16), 120) == local(NY, 2026, 11, 2, 10)
    # 09:00-17:00 is always 8 real hours; the UTC instants shift by an hour.
    assert ny.intervals_on(date(2026, 3, 9))[0][0] == datetime(2026, 3, 9, 13, tzinfo=UTC)
    assert ny.intervals_on(date(2026, 3, 6))[0][0] == datetime(2026, 3, 6, 14, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cal", "start"),
    [
        (NY_SPLIT, datetime(2026, 3, 6, 12, tzinfo=UTC)),
        (NY_SPLIT, datetime(2026, 10, 30, 12, tzinfo=UTC)),
        (
            BusinessCalendar.from_spec("America/New_York", {"daily": "01:00-03:00"}),
            datetime(2026, 3, 6, tzinfo=UTC),
        ),
        (
            BusinessCalendar.from_spec("America/New_York", {"daily": "01:00-03:00"}),
            datetime(2026, 10, 30, tzinfo=UTC),
        ),
        (
            BusinessCalendar.from_spec("Europe/London", {"daily": "01:00-03:00,09:00-24:00"}),
            datetime(2026, 3, 27, tzinfo=UTC),
        ),
        (
            BusinessCalendar.from_spec("Europe/London", {"daily": "01:00-03:00,09:00-24:00"}),
            datetime(2026, 10, 23, tzinfo=UTC),
        ),
    ],
)
def test_minute_by_minute_wall_clock_reference_across_dst(
    cal: BusinessCalendar, start: datetime
) -> None:
    """Over 5 days around a transition, is_open matches the local wall clock every minute,
    and the open minutes add up (boundaries here avoid the DST gap/fold)."""
    count = 0
    for i in range(5 * 1440):
        at = start + i * MINUTE
        expected = wall_clock_open(cal, at)
        assert cal.is_open(at) == expected, at
        count += expected
    assert cal.business_minutes_between(start, start + 5 * 1440 * MINUTE) == count
    assert cal.add_business_minutes(start, count) <= start + 5 * 1440 * MINUTE


# --- long spans against the reference ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CALENDARS))
def test_very_long_spans_match_reference(name: str) -> None:
    cal = CALENDARS[name]
    start = datetime(2025, 2, 3, 7, 13, 11, 123456, tzinfo=UTC)
    minutes = 10_000 * 60
    due = cal.add_business_minutes(start, minutes)
    assert due == ref_add(cal, start, minutes)
    assert cal.business_minutes_between(start, due) == minutes
    end = start + timedelta(days=1500, hours=5)
    assert cal.business_minutes_between(start, end) == ref_between(cal, start, end)


def test_always_open_is_timedelta_arithmetic() -> None:
    for tz in ("UTC", "Europe/London", "America/New_York", "Asia/Shanghai"):
        cal = BusinessCalendar.always(tz)
        start = datetime(2026, 3, 7, 22, 45, tzinfo=UTC)
        for minutes in (0, 1, 59, 1440, 10_000, 600_000):
            assert cal.add_business_minutes(start, minutes) == start + minutes * MINUTE
            assert cal.business_minutes_between(start, start + minutes * MINUTE) == minutes
        assert cal.is_open(start)
        assert cal.next_opening(start) == start


# --- construction & validation ---------------------------------------------------------------


def test_from_spec_precedence_and_shortcuts() -> None:
    cal = BusinessCalendar.from_spec(
        "Asia/Shanghai",
        {"fri": "09:00-15:00", "Weekdays": "09:00-17:00", "daily": "10:00-16:00", "SUN": None},
    )
    assert cal.weekly_hours == (
        ((540, 1020),),
        ((540, 1020),),
        ((540, 1020),),
        ((540, 1020),),
        ((540, 900),),
        ((600, 960),),
        (),
    )
    assert cal.weekly_open_minutes == 4 * 480 + 360 + 360


def test_parse_windows() -> None:
    assert parse_windows("09:00-12:00, 13:00-18:00") == ((540, 720), (780, 1080))
    assert parse_windows("13:00-18:00,9:00-12:00") == ((540, 720), (780, 1080))
    assert parse_windows("09:00-12:00,12:00-24:00") == ((540, 1440),)
    assert parse_windows(["09:00-12:00", "13:00-14:00"]) == ((540, 720), (780, 840))
    for closed in ("", "  ", None, "closed"):
        assert parse_windows(closed) == ()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("24:00-25:00", "24:00 is only allowed"),
        ("09:00-25:00", "out of range"),
        ("09:60-10:00", "out of range"),
        ("24:30", "bad window"),
        ("17:00-09:00", "ends before it starts"),
        ("09:00-09:00", "ends before it starts"),
        ("09:00-12:00,11:00-13:00", "non-overlapping"),
        ("9am-5pm", "bad time"),
        ("09:00-12:00,", "bad window"),
        ("09:00", "bad window"),
    ],
)
def test_bad_hours_raise_clear_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar.from_spec("Asia/Shanghai", {"mon": spec})


def test_bad_calendar_arguments() -> None:
    with pytest.raises(ValueError, match="unknown day key"):
        BusinessCalendar.from_spec("Asia/Shanghai", {"funday": "09:00-17:00"})
    with pytest.raises(ValueError, match="given twice"):
        BusinessCalendar.from_spec("UTC", {"mon": "09:00-17:00", "monday": "10:00-11:00"})
    with pytest.raises(ValueError, match="unknown time zone"):
        BusinessCalendar.from_spec("Mars/Olympus", {"mon": "09:00-17:00"})
    with pytest.raises(ValueError, match="no weekly opening hours"):
        BusinessCalendar.from_spec("UTC", {"daily": "closed"})
    with pytest.raises(ValueError, match="hours is required"):
        BusinessCalendar.from_spec("UTC")
    with pytest.raises(ValueError, match="7 entries"):
        BusinessCalendar("UTC", [[(0, 60)]])
    with pytest.raises(ValueError, match="sorted and non-overlapping"):
        BusinessCalendar("UTC", {0: [(600, 700), (0, 60)]})
    with pytest.raises(ValueError, match="0 <= start < end"):
        BusinessCalendar("UTC", {0: [(0, 1441)]})
    with pytest.raises(ValueError, match=r"datetime\.date"):
        BusinessCalendar("UTC", {0: [(0, 60)]}, closed_dates=[datetime(2026, 1, 1)])
    with pytest.raises(ValueError, match="needs windows"):
        BusinessCalendar("UTC", {0: [(0, 60)]}, extra_open_dates={date(2026, 1, 3): []})
    with pytest.raises(ValueError, match="weekly_hours must be empty"):
        BusinessCalendar("UTC", {0: [(0, 60)]}, always_open=True)


def test_naive_datetimes_and_negative_minutes_are_rejected() -> None:
    naive = datetime(2026, 3, 3, 10, 0)
    for call in (
        lambda: SH_OFFICE.is_open(naive),
        lambda: SH_OFFICE.next_opening(naive),
        lambda: SH_OFFICE.add_business_minutes(naive, 5),
        lambda: SH_OFFICE.business_minutes_between(naive, naive),
    ):
        with pytest.raises(ValueError, match="timezone-aware"):
            call()
    with pytest.raises(ValueError, match=">= 0"):
        SH_OFFICE.add_business_minutes(local(SH, 2026, 3, 3), -1)
    with pytest.raises(ValueError, match="finite"):
        SH_OFFICE.add_business_minutes(local(SH, 2026, 3, 3), float("nan"))


def test_constructor_equivalent_to_spec_and_value_semantics() -> None:
    built = BusinessCalendar("Asia/Shanghai", {i: [(540, 1020)] for i in range(5)})
    assert built == SH_PLAIN_OFFICE
    assert hash(built) == hash(SH_PLAIN_OFFICE)
    assert built != SH_OFFICE
    assert pickle.loads(pickle.dumps(SH_OFFICE)) == SH_OFFICE
    assert pickle.loads(pickle.dumps(ALWAYS_SH)) == ALWAYS_SH
    with pytest.raises(AttributeError):
        built.timezone = "UTC"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        built._weekly = ()
    with pytest.raises(TypeError):
        built.extra_open_dates[date(2026, 1, 1)] = ((0, 60),)  # type: ignore[index]
    assert "Asia/Shanghai" in repr(SH_OFFICE)


# --- properties ---------------------------------------------------------------------------------

ANY_INSTANT = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31, 23, 59), timezones=st.just(UTC)
)


@st.composite
def instants(draw: st.DrawFn, cal: BusinessCalendar) -> datetime:
    """Random instants, plus instants at / next to window boundaries (where bugs live)."""
    if draw(st.booleans()):
        return draw(ANY_INSTANT)
    day = draw(st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31)))
    intervals = cal.intervals_on(day)
    if not intervals:
        return datetime.combine(day, time(12), tzinfo=cal.tzinfo).astimezone(UTC)
    edge = draw(st.sampled_from([t for interval in intervals for t in interval]))
    return edge + draw(st.sampled_from([timedelta(0), timedelta(microseconds=-1), MINUTE]))


PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
CAL_NAMES = st.sampled_from(sorted(CALENDARS))
AMOUNTS = st.integers(min_value=0, max_value=50_000)


@PROPERTY_SETTINGS
@given(data=st.data(), name=CAL_NAMES, minutes=AMOUNTS)
def test_prop_due_is_open_or_window_end_and_matches_reference(
    data: st.DataObject, name: str, minutes: int
) -> None:
    cal = CALENDARS[name]
    start = data.draw(instants(cal))
    if data.draw(st.booleans()):  # whole weeks: the arithmetic week skip's edge case
        minutes = cal.weekly_open_minutes * data.draw(st.integers(0, 30))
    due = cal.add_business_minutes(start, minutes)
    assert due >= start
    assert cal.is_open(due) or is_window_end(cal, due)
    if minutes == 0:
        assert due == cal.next_opening(start)
    assert cal.business_minutes_between(start, due) == minutes
    assert due == ref_add(cal, start, minutes)


@PROPERTY_SETTINGS
@given(data=st.data(), name=CAL_NAMES, a=AMOUNTS, b=AMOUNTS)
def test_prop_add_composes(data: st.DataObject, name: str, a: int, b: int) -> None:
    """add(add(s, a), b) == add(s, a + b) for b > 0; for b == 0 the left side is the next
    opening after add(s, a) (which is later when add(s, a) is a window's end)."""
    cal = CALENDARS[name]
    start = data.draw(instants(cal))
    first = cal.add_business_minutes(start, a)
    if b > 0:
        assert cal.add_business_minutes(first, b) == cal.add_business_minutes(start, a + b)
    else:
        assert cal.add_business_minutes(first, 0) == cal.next_opening(first)
        if cal.is_open(first):
            assert cal.add_business_minutes(first, 0) == first
    assert cal.add_business_minutes(start, a) <= cal.add_business_minutes(start, a + b)


@PROPERTY_SETTINGS
@given(data=st.data(), name=CAL_NAMES, span_minutes=st.integers(0, 60 * 24 * 200))
def test_prop_between_matches_reference_and_is_additive(
    data: st.DataObject, name: str, span_minutes: int
) -> None:
    cal = CALENDARS[name]
    a = data.draw(instants(cal))
    b = a + timedelta(minutes=span_minutes, microseconds=data.draw(st.integers(0, 10**6)))
    mid = a + (b - a) / 3
    total = cal.business_minutes_between(a, b)
    assert total == ref_between(cal, a, b)
    assert cal.business_time_between(a, mid) + cal.business_time_between(
        mid, b
    ) == cal.business_time_between(a, b)
    assert 0 <= total <= (b - a) / MINUTE


@PROPERTY_SETTINGS
@given(data=st.data(), name=CAL_NAMES)
def test_prop_is_open_and_next_opening_agree(data: st.DataObject, name: str) -> None:
    cal = CALENDARS[name]
    at = data.draw(instants(cal))
    nxt = cal.next_opening(at)
    assert nxt >= at
    assert cal.is_open(nxt)
    assert (nxt == at) == cal.is_open(at)
    assert cal.business_minutes_between(at, nxt) == 0
    if nxt > at:
        assert not cal.is_open(nxt - timedelta(microseconds=1))
    assert any(s <= nxt < e for d in _days_around(cal, nxt) for s, e in ref_intervals(cal, d))


def _days_around(cal: BusinessCalendar, at: datetime) -> list[date]:
    day = at.astimezone(cal.tzinfo).date()
    return [day - timedelta(days=1), day, day + timedelta(days=1)]


@settings(max_examples=100, deadline=None)
@given(
    tz=st.sampled_from(["UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe"]),
    start=ANY_INSTANT,
    minutes=st.integers(0, 200_000),
)
def test_prop_always_open_equals_timedelta(tz: str, start: datetime, minutes: int) -> None:
    for cal in (
        BusinessCalendar.always(tz),
        # Same hours but with a far-away closed date: forces the general day-walking path.
        BusinessCalendar.from_spec(tz, {"daily": "00:00-24:00"}, closed_dates={date(2099, 1, 1)}),
    ):
        assert cal.add_business_minutes(start, minutes) == start + minutes * MINUTE
        assert cal.business_minutes_between(start, start + minutes * MINUTE) == minutes


@PROPERTY_SETTINGS
@given(data=st.data(), name=CAL_NAMES, minutes=AMOUNTS, later=st.integers(0, 60 * 24 * 20))
def test_prop_a_later_start_is_never_due_earlier(
    data: st.DataObject, name: str, minutes: int, later: int
) -> None:
    """A case opened later is never due earlier, and its due moves by exactly the open time
    between the two openings."""
    cal = CALENDARS[name]
    start = data.draw(instants(cal))
    moved = start + timedelta(minutes=later, microseconds=data.draw(st.integers(0, 10**6)))
    due, moved_due = (
        cal.add_business_minutes(start, minutes),
        cal.add_business_minutes(moved, minutes),
    )
    assert moved_due >= due
    assert cal.next_opening(moved) >= cal.next_opening(start)
    # the later start lost exactly the open time between the two starts
    assert cal.business_time_between(due, moved_due) == cal.business_time_between(start, moved)
