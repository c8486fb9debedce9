"""The SLA clock: due instants and elapsed business time on top of a :class:`BusinessCalendar`.

The clock counts *business time* (open time of the case's calendar) from the moment a case is
opened, minus *pauses* (e.g. "waiting on customer"). A pause is a ``(start, end)`` pair of
aware datetimes; ``end=None`` means the case is still paused. Pauses may overlap each other
and may start before the case was opened; only their union after ``opened_at`` matters.

All arithmetic is exact to the microsecond (it goes through
:meth:`BusinessCalendar.add_business_time` / :meth:`BusinessCalendar.business_time_between`),
and all returned datetimes are UTC. Naive datetimes raise ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from chatops.calendars import BusinessCalendar

__all__ = [
    "Pause",
    "due_at",
    "elapsed_business_minutes",
    "format_time_left",
    "recompute_due_on_severity_change",
    "time_left",
]

Pause = tuple[datetime, datetime | None]
"""``(start, end)``; ``end is None`` while the pause is still running."""

_ZERO = timedelta(0)


def _check_aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value


def _minutes(value: float, name: str) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of minutes, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    if isinstance(value, int):
        return timedelta(minutes=value)
    return timedelta(microseconds=round(value * 60_000_000))


def _normalise_pauses(
    pauses: Iterable[Pause], since: datetime
) -> tuple[list[tuple[datetime, datetime]], datetime | None]:
    """Clip pauses to ``[since, ∞)`` and merge them.

    Returns the closed pauses as sorted disjoint intervals (none of which starts inside an
    open pause), and the start of the open-ended pause (``None`` if nothing is paused now).
    """
    closed: list[tuple[datetime, datetime]] = []
    open_from: datetime | None = None
    for index, pause in enumerate(pauses):
        try:
            start, end = pause
        except (TypeError, ValueError):
            raise ValueError(
                f"pauses[{index}] must be a (start, end) pair, got {pause!r}"
            ) from None
        _check_aware(start, f"pauses[{index}] start")
        if end is None:
            start = max(start, since)
            open_from = start if open_from is None else min(open_from, start)
            continue
        _check_aware(end, f"pauses[{index}] end")
        if end < start:
            raise ValueError(f"pauses[{index}] ends before it starts: {start} > {end}")
        start = max(start, since)
        if end > start:
            closed.append((start, end))
    closed.sort()
    merged: list[tuple[datetime, datetime]] = []
    for start, end in closed:
        if open_from is not None and start >= open_from:
            break
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    if open_from is not None and merged and merged[-1][1] >= open_from:
        # A closed pause running into the open one: the whole thing is one open pause.
        open_from = min(open_from, merged.pop()[0])
    return merged, open_from


def _run_clock(
    calendar: BusinessCalendar,
    start: datetime,
    target: timedelta,
    pauses: Sequence[tuple[datetime, datetime]],
    open_from: datetime | None,
) -> datetime | None:
    """Spend ``target`` business time from ``start``, skipping the (normalised) pauses."""
    cursor = start
    remaining = target
    stops = [*pauses, (open_from, None)] if open_from is not None else list(pauses)
    for pause_start, pause_end in stops:
        if pause_start <= cursor:  # already inside this pause (only possible at the start)
            if pause_end is None:
                return None
            cursor = max(cursor, pause_end)
            continue
        candidate = calendar.add_business_time(cursor, remaining)
        if candidate <= pause_start:
            return candidate
        remaining -= calendar.business_time_between(cursor, pause_start)
        if pause_end is None:
            return None
        cursor = pause_end
    return calendar.add_business_time(cursor, remaining)


def due_at(
    calendar: BusinessCalendar,
    opened_at: datetime,
    target_minutes: float,
    pauses: Iterable[Pause] = (),
) -> datetime | None:
    """When the SLA target is reached: ``target_minutes`` of unpaused business time after
    ``opened_at``, in UTC.

    Rules:

    * the clock starts at ``opened_at`` (or the calendar's next opening if it is closed then)
      and only runs while the calendar is open and no pause is active;
    * the due instant is the *earliest* instant with the full target behind it, so it can be
      exactly a window's end (see :meth:`BusinessCalendar.add_business_minutes`);
    * a pause just stops the clock, so a pause that covers ``x`` minutes of business time
      pushes the due back by exactly ``x`` business minutes; pauses outside hours change
      nothing;
    * an open pause (``end is None``) stops the clock indefinitely, so the due is undefined
      and ``None`` is returned — *unless* the target was already used up before that pause
      began (a breached case that is now waiting on the customer): then the (past) due
      instant is well-defined and is returned.
    * ``target_minutes == 0`` gives the first open, unpaused instant at or after
      ``opened_at``.
    """
    _check_aware(opened_at, "opened_at")
    target = _minutes(target_minutes, "target_minutes")
    closed, open_from = _normalise_pauses(pauses, opened_at)
    return _run_clock(calendar, opened_at, target, closed, open_from)


def elapsed_business_minutes(
    calendar: BusinessCalendar,
    opened_at: datetime,
    now: datetime,
    pauses: Iterable[Pause] = (),
) -> float:
    """Business minutes counted against the target between ``opened_at`` and ``now``.

    Business time of ``calendar`` in ``[opened_at, now)`` minus the business time covered by
    pauses; an open pause counts as paused up to ``now``. Returns 0 if ``now <= opened_at``.
    This is the inverse of :func:`due_at`: ``elapsed(opened, due_at(opened, n)) == n``.
    """
    return _elapsed(calendar, opened_at, now, pauses) / timedelta(minutes=1)


def _elapsed(
    calendar: BusinessCalendar,
    opened_at: datetime,
    now: datetime,
    pauses: Iterable[Pause],
) -> timedelta:
    _check_aware(opened_at, "opened_at")
    _check_aware(now, "now")
    if now <= opened_at:
        return _ZERO
    closed, open_from = _normalise_pauses(pauses, opened_at)
    stops = [*closed, (open_from, now)] if open_from is not None else closed
    total = _ZERO
    cursor = opened_at
    for pause_start, pause_end in stops:
        if pause_start >= now:
            break
        total += calendar.business_time_between(cursor, pause_start)
        cursor = max(cursor, pause_end)
    total += calendar.business_time_between(cursor, now)
    return total


def recompute_due_on_severity_change(
    new_calendar: BusinessCalendar,
    opened_at: datetime,
    changed_at: datetime,
    elapsed_minutes: float,
    new_target_minutes: float,
    pauses: Iterable[Pause] = (),
) -> datetime | None:
    """The new due instant after a case's severity (hence calendar/target) changed.

    Rule: business time already spent stays spent. ``elapsed_minutes`` is the business time
    counted on the *old* calendar from ``opened_at`` up to ``changed_at`` (excluding pauses,
    e.g. from :func:`elapsed_business_minutes`); it counts against the new target, and the
    remainder ``new_target_minutes - elapsed_minutes`` runs on the *new* calendar from
    ``changed_at`` on, skipping pauses after ``changed_at``.

    If ``elapsed_minutes >= new_target_minutes`` (e.g. 5 business hours spent on a Sev B
    case that is raised to Sev A with a 60-minute target) the case is breached at once and
    the due is ``changed_at`` itself — not a back-dated instant, because the stricter target
    did not apply before the change, and not the new calendar's next opening, because the
    breach is already certain. Otherwise the same rules as :func:`due_at` apply (a pause
    still open at or after ``changed_at`` gives ``None``).
    """
    _check_aware(opened_at, "opened_at")
    _check_aware(changed_at, "changed_at")
    if changed_at < opened_at:
        raise ValueError(f"changed_at {changed_at} is before opened_at {opened_at}")
    elapsed = _minutes(elapsed_minutes, "elapsed_minutes")
    target = _minutes(new_target_minutes, "new_target_minutes")
    if elapsed >= target:
        return _to_utc(changed_at)
    closed, open_from = _normalise_pauses(pauses, changed_at)
    return _run_clock(new_calendar, changed_at, target - elapsed, closed, open_from)


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def time_left(due: datetime, now: datetime) -> timedelta:
    """Wall-clock time from ``now`` until ``due``; negative when overdue.

    This is real time, not business time: it answers "how long until the breach".
    """
    return _check_aware(due, "due") - _check_aware(now, "now")


def format_time_left(left: timedelta) -> str:
    """Human text for :func:`time_left`: ``"in 45 min"``, ``"in 3 h 10 min"``,
    ``"in 2 days 4 h"``, ``"overdue by 12 min"``, ``"overdue by 1 day"``, ``"due now"``.

    The magnitude is rounded *up* to whole minutes (44 min 10 s left shows "in 45 min", and
    10 s overdue already shows "overdue by 1 min"); exactly zero is "due now". From one day
    on, minutes are dropped (``"2 days 4 h"``).
    """
    if not isinstance(left, timedelta):
        raise TypeError(f"expected a timedelta, got {left!r}")
    if left == _ZERO:
        return "due now"
    magnitude = -left if left < _ZERO else left
    minutes = -(-magnitude // timedelta(minutes=1))  # ceiling division
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        text = f"{days} day" if days == 1 else f"{days} days"
        if hours:
            text += f" {hours} h"
    elif hours:
        text = f"{hours} h" + (f" {mins} min" if mins else "")
    else:
        text = f"{mins} min"
    return f"overdue by {text}" if left < _ZERO else f"in {text}"
