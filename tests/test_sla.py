"""Tests for chatops.sla: due instants, pauses, severity changes, time-left formatting."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatops.calendars import BusinessCalendar, public_holidays
from chatops.sla import (
    due_at,
    elapsed_business_minutes,
    format_time_left,
    recompute_due_on_severity_change,
    time_left,
)

SH = ZoneInfo("Asia/Shanghai")
MINUTE = timedelta(minutes=1)
# Sev B: office hours; Sev A: 24×7.
SEV_B = BusinessCalendar.from_spec("Asia/Shanghai", {"weekdays": "09:00-17:00"})
SEV_A = BusinessCalendar.always("Asia/Shanghai")


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


MON = (2026, 3, 2)  # Monday
TUE = (2026, 3, 3)


# --- due_at -------------------------------------------------------------------------------


def test_due_without_pauses() -> None:
    due = due_at(SEV_B, sh(*MON, 10), 240)
    assert due == sh(*MON, 14)
    assert due is not None and due.tzinfo is UTC
    assert due_at(SEV_A, sh(*MON, 10), 240) == sh(*MON, 14)
    assert due_at(SEV_B, sh(*MON, 16), 120) == sh(*TUE, 10)


def test_pause_extends_due_by_paused_business_time() -> None:
    opened = sh(*MON, 10)
    assert due_at(SEV_B, opened, 240, [(sh(*MON, 11), sh(*MON, 12))]) == sh(*MON, 15)
    # Paused Mon 16:00 -> Tue 10:00 covers 2 business hours (16-17 and 09-10).
    base = due_at(SEV_B, opened, 480)
    paused = due_at(SEV_B, opened, 480, [(sh(*MON, 16), sh(*TUE, 10))])
    assert base == sh(*TUE, 10)
    assert paused == sh(*TUE, 12)
    assert base is not None and paused is not None
    assert SEV_B.business_minutes_between(base, paused) == 120


def test_pause_outside_hours_changes_nothing() -> None:
    opened = sh(*MON, 10)
    pauses = [(sh(*MON, 18), sh(*MON, 23)), (sh(2026, 3, 7, 9), sh(2026, 3, 8, 20))]
    assert due_at(SEV_B, opened, 240, pauses) == due_at(SEV_B, opened, 240)


def test_pauses_are_clipped_and_merged() -> None:
    opened = sh(*MON, 10)
    # Started before the case was opened: only 10:00-11:00 counts.
    assert due_at(SEV_B, opened, 60, [(sh(2026, 3, 1, 12), sh(*MON, 11))]) == sh(*MON, 12)
    # Overlapping pauses count once: 11:00-12:30 = 90 min.
    pauses = [(sh(*MON, 11, 30), sh(*MON, 12, 30)), (sh(*MON, 11), sh(*MON, 12))]
    assert due_at(SEV_B, opened, 240, pauses) == sh(*MON, 15, 30)
    # Zero-length pause is ignored.
    assert due_at(SEV_B, opened, 60, [(sh(*MON, 10, 30), sh(*MON, 10, 30))]) == sh(*MON, 11)


def test_due_at_pause_start_is_the_due() -> None:
    # Target reached exactly when the pause starts.
    assert due_at(SEV_B, sh(*MON, 10), 60, [(sh(*MON, 11), sh(*MON, 15))]) == sh(*MON, 11)


def test_open_pause_makes_due_undefined() -> None:
    opened = sh(*MON, 10)
    assert due_at(SEV_B, opened, 240, [(sh(*MON, 11), None)]) is None
    assert due_at(SEV_B, opened, 240, [(sh(*MON, 9), None)]) is None
    # A closed pause that runs into the open one is part of it.
    assert due_at(SEV_B, opened, 240, [(sh(*MON, 11), sh(*MON, 13)), (sh(*MON, 12), None)]) is None


def test_closed_pauses_inside_an_open_pause_do_not_matter() -> None:
    opened = sh(*MON, 10)
    pauses = [
        (sh(*MON, 12), sh(*MON, 13)),
        (sh(*MON, 11), None),
        (sh(*MON, 14), sh(*MON, 15)),
    ]
    assert due_at(SEV_B, opened, 240, pauses) is None
    assert due_at(SEV_B, opened, 45, pauses) == sh(*MON, 10, 45)
    assert elapsed_business_minutes(SEV_B, opened, sh(*MON, 16), pauses) == 60


def test_open_pause_after_breach_keeps_the_past_due() -> None:
    # Target (60 min) used up at 11:00; the customer-wait pause only began at 14:00.
    assert due_at(SEV_B, sh(*MON, 10), 60, [(sh(*MON, 14), None)]) == sh(*MON, 11)


def test_zero_target() -> None:
    assert due_at(SEV_B, sh(*MON, 10), 0) == sh(*MON, 10)
    assert due_at(SEV_B, sh(*MON, 7), 0) == sh(*MON, 9)
    assert due_at(SEV_B, sh(*MON, 7), 0, [(sh(*MON, 8), sh(*MON, 9, 30))]) == sh(*MON, 9, 30)


def test_due_at_with_holidays() -> None:
    cal = BusinessCalendar.from_spec(
        "Asia/Shanghai",
        {"weekdays": "09:00-17:00"},
        closed_dates=public_holidays("CN", range(2026, 2027)),
    )
    assert date(2026, 10, 1) in cal.closed_dates
    assert due_at(cal, sh(2026, 9, 30, 16), 120) == sh(2026, 10, 8, 10)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(SEV_B, datetime(2026, 3, 2, 10), 60)
    with pytest.raises(ValueError, match="ends before it starts"):
        due_at(SEV_B, sh(*MON, 10), 60, [(sh(*MON, 12), sh(*MON, 11))])
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(SEV_B, sh(*MON, 10), 60, [(datetime(2026, 3, 2, 11), None)])
    with pytest.raises(ValueError, match=">= 0"):
        due_at(SEV_B, sh(*MON, 10), -5)
    with pytest.raises(ValueError, match="pair"):
        due_at(SEV_B, sh(*MON, 10), 5, [sh(*MON, 11)])  # type: ignore[list-item]


# --- elapsed --------------------------------------------------------------------------------


def test_elapsed_business_minutes() -> None:
    opened = sh(*MON, 10)
    assert elapsed_business_minutes(SEV_B, opened, sh(*MON, 16)) == 360
    assert elapsed_business_minutes(SEV_B, opened, sh(*TUE, 10)) == 480
    assert elapsed_business_minutes(SEV_B, opened, sh(*MON, 9)) == 0
    pauses = [(sh(*MON, 11), sh(*MON, 12))]
    assert elapsed_business_minutes(SEV_B, opened, sh(*MON, 16), pauses) == 300
    # Open pause counts as paused up to now.
    assert elapsed_business_minutes(SEV_B, opened, sh(*TUE, 10), [(sh(*MON, 12), None)]) == 120
    # Pause still running past "now".
    assert (
        elapsed_business_minutes(SEV_B, opened, sh(*MON, 12), [(sh(*MON, 11), sh(*TUE, 9))]) == 60
    )


# --- severity change ------------------------------------------------------------------------


def test_raised_severity_already_breached_is_due_now() -> None:
    opened, changed = sh(*MON, 9), sh(*MON, 14)
    elapsed = elapsed_business_minutes(SEV_B, opened, changed)
    assert elapsed == 300
    due = recompute_due_on_severity_change(SEV_A, opened, changed, elapsed, 60)
    assert due == changed
    assert due is not None and due.tzinfo is UTC
    # Exactly used up also means due now.
    assert recompute_due_on_severity_change(SEV_A, opened, changed, 60, 60) == changed


def test_raised_severity_with_time_left_runs_on_new_calendar() -> None:
    # Sev B case opened Friday 16:30, raised to Sev A (24×7, 60 min) at Saturday 08:00.
    opened, changed = sh(2026, 3, 6, 16, 30), sh(2026, 3, 7, 8)
    elapsed = elapsed_business_minutes(SEV_B, opened, changed)
    assert elapsed == 30
    due = recompute_due_on_severity_change(SEV_A, opened, changed, elapsed, 60)
    assert due == sh(2026, 3, 7, 8, 30)


def test_lowered_severity_remaining_runs_on_office_calendar() -> None:
    # Sev A (24×7) opened Saturday 10:00; lowered to Sev B (480 min, office hours) at 10:30.
    opened, changed = sh(2026, 3, 7, 10), sh(2026, 3, 7, 10, 30)
    elapsed = elapsed_business_minutes(SEV_A, opened, changed)
    assert elapsed == 30
    due = recompute_due_on_severity_change(SEV_B, opened, changed, elapsed, 480)
    assert due == sh(2026, 3, 9, 16, 30)  # Monday 09:00 + 450 min


def test_severity_change_with_pauses() -> None:
    opened, changed = sh(2026, 3, 7, 10), sh(2026, 3, 7, 10, 30)
    paused_monday = [(sh(2026, 3, 9, 10), sh(2026, 3, 9, 11))]
    due = recompute_due_on_severity_change(SEV_B, opened, changed, 30, 480, paused_monday)
    assert due == sh(2026, 3, 10, 9, 30)  # one paused business hour pushes past Monday close
    # A pause running at the change: undefined (unless already breached).
    still_paused = [(sh(2026, 3, 7, 10, 15), None)]
    assert recompute_due_on_severity_change(SEV_B, opened, changed, 30, 480, still_paused) is None
    assert recompute_due_on_severity_change(SEV_B, opened, changed, 30, 20, still_paused) == changed
    with pytest.raises(ValueError, match="before opened_at"):
        recompute_due_on_severity_change(SEV_B, changed, opened, 0, 60)


# --- time left ------------------------------------------------------------------------------


def test_time_left() -> None:
    due = sh(*MON, 12)
    assert time_left(due, sh(*MON, 11, 15)) == timedelta(minutes=45)
    assert time_left(due, sh(*MON, 12, 12)) == -timedelta(minutes=12)
    with pytest.raises(ValueError, match="timezone-aware"):
        time_left(due, datetime(2026, 3, 2, 12))


@pytest.mark.parametrize(
    ("left", "text"),
    [
        (timedelta(minutes=45), "in 45 min"),
        (timedelta(minutes=44, seconds=10), "in 45 min"),
        (timedelta(seconds=20), "in 1 min"),
        (timedelta(hours=3, minutes=10), "in 3 h 10 min"),
        (timedelta(hours=3), "in 3 h"),
        (timedelta(days=2, hours=4), "in 2 days 4 h"),
        (timedelta(days=2, hours=4, minutes=59), "in 2 days 4 h"),
        (timedelta(days=1), "in 1 day"),
        (timedelta(days=1, minutes=5), "in 1 day"),
        (timedelta(0), "due now"),
        (-timedelta(minutes=12), "overdue by 12 min"),
        (-timedelta(seconds=10), "overdue by 1 min"),
        (-timedelta(hours=1, minutes=1), "overdue by 1 h 1 min"),
        (-timedelta(days=3, hours=2), "overdue by 3 days 2 h"),
    ],
)
def test_format_time_left(left: timedelta, text: str) -> None:
    assert format_time_left(left) == text


# --- properties -----------------------------------------------------------------------------

CALS = {
    "office": BusinessCalendar.from_spec(
        "Asia/Shanghai",
        {"weekdays": "09:00-17:00"},
        closed_dates=public_holidays("CN", range(2025, 2028)),
    ),
    "late": BusinessCalendar.from_spec("Asia/Shanghai", {"daily": "09:00-24:00"}),
    "ny_split": BusinessCalendar.from_spec(
        "America/New_York", {"weekdays": "08:00-12:00,13:00-17:30"}
    ),
    "always": SEV_A,
}
BASE = datetime(2026, 1, 1, tzinfo=UTC)
OFFSETS = st.integers(0, 60 * 24 * 60)  # minutes after BASE, up to ~60 days


@st.composite
def pause_lists(draw: st.DrawFn) -> list[tuple[datetime, datetime | None]]:
    out: list[tuple[datetime, datetime | None]] = []
    for _ in range(draw(st.integers(0, 4))):
        start = BASE + draw(OFFSETS) * MINUTE
        out.append((start, start + draw(st.integers(0, 60 * 24 * 5)) * MINUTE))
    if draw(st.integers(0, 4)) == 0:
        out.append((BASE + draw(OFFSETS) * MINUTE, None))
    return out


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(sorted(CALS)),
    opened_offset=OFFSETS,
    target=st.integers(0, 5_000),
    pauses=pause_lists(),
)
def test_prop_due_and_elapsed_are_inverse(
    name: str, opened_offset: int, target: int, pauses: list[tuple[datetime, datetime | None]]
) -> None:
    cal = CALS[name]
    opened = BASE + opened_offset * MINUTE
    due = due_at(cal, opened, target, pauses)
    open_pause_starts = [max(s, opened) for s, e in pauses if e is None]
    if due is None:
        assert open_pause_starts
        far = max([opened, *open_pause_starts]) + timedelta(days=400)
        assert elapsed_business_minutes(cal, opened, far, pauses) < target or target == 0
        return
    assert due >= opened
    assert elapsed_business_minutes(cal, opened, due, pauses) == target
    if target > 0:
        # Earliest such instant.
        assert (
            elapsed_business_minutes(cal, opened, due - timedelta(microseconds=1), pauses) < target
        )
    if open_pause_starts:
        assert due <= min(open_pause_starts)
    # Without pauses the due can only be earlier.
    plain = due_at(cal, opened, target)
    assert plain is not None and plain <= due


@settings(max_examples=100, deadline=None)
@given(
    opened_offset=OFFSETS,
    change_after=st.integers(0, 60 * 24 * 10),
    old_target=st.integers(0, 3_000),
    new_target=st.integers(0, 3_000),
)
def test_prop_severity_change_counts_elapsed_time(
    opened_offset: int, change_after: int, old_target: int, new_target: int
) -> None:
    old, new = CALS["office"], CALS["late"]
    opened = BASE + opened_offset * MINUTE
    changed = opened + change_after * MINUTE
    elapsed = elapsed_business_minutes(old, opened, changed)
    due = recompute_due_on_severity_change(new, opened, changed, elapsed, new_target)
    assert due is not None
    if elapsed >= new_target:
        assert due == changed
    else:
        assert due > changed or new_target - elapsed == 0
        assert new.business_minutes_between(changed, due) == new_target - elapsed


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(sorted(CALS)),
    opened_offset=OFFSETS,
    later=st.integers(0, 60 * 24 * 10),
    target=st.integers(0, 5_000),
    pauses=pause_lists(),
)
def test_prop_a_later_opening_is_never_due_earlier(
    name: str,
    opened_offset: int,
    later: int,
    target: int,
    pauses: list[tuple[datetime, datetime | None]],
) -> None:
    cal = CALS[name]
    opened = BASE + opened_offset * MINUTE
    due = due_at(cal, opened, target, pauses)
    moved = due_at(cal, opened + later * MINUTE, target, pauses)
    if due is None:
        assert moved is None
    elif moved is not None:
        assert moved >= due


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(sorted(CALS)),
    opened_offset=OFFSETS,
    change_after=st.integers(0, 60 * 24 * 10),
    target=st.integers(1, 5_000),
    pauses=pause_lists(),
)
def test_prop_banking_at_a_change_to_the_same_calendar_keeps_the_due(
    name: str,
    opened_offset: int,
    change_after: int,
    target: int,
    pauses: list[tuple[datetime, datetime | None]],
) -> None:
    """Banking the time spent at a change and running the rest from there (what a case
    does at every severity change) gives the due the uninterrupted clock gives, when the
    calendar and target stay the same and the target is not used up yet."""
    cal = CALS[name]
    opened = BASE + opened_offset * MINUTE
    changed = opened + change_after * MINUTE
    elapsed = elapsed_business_minutes(cal, opened, changed, pauses)
    if elapsed >= target:
        return
    banked = recompute_due_on_severity_change(cal, opened, changed, elapsed, target, pauses)
    assert banked == due_at(cal, opened, target, pauses)
