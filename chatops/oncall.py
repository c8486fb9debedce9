"""On-call rotation arithmetic: who holds the pager at an instant, who is next, when it changes.

Pure and database-free (PagerDuty / Grafana OnCall style schedules); used by the paging
escalation, ``/support oncall`` and the shift-handoff posts.

A :class:`Rotation` hands the pager round ``members`` in order, forever, from its ``start``:
``members[0]`` takes the first shift at ``handoff`` local time on ``start``, ``members[1]`` the
next one, and so on cyclically.

* ``daily`` / ``weekly`` shifts change at the local ``handoff`` wall time, so the handoff stays
  at 09:00 local across daylight saving and the shift that contains a transition lasts 23 or
  25 real hours (a weekly one 167 or 169).
* ``"<N>h"`` shifts (1 ≤ N ≤ 336) are real durations of N hours from the first handoff: across
  daylight saving their local handoff time drifts by the offset change ("24h" ≠ "daily").

Handoff wall times are converted with ``zoneinfo``'s ``fold=0`` rule, like
:mod:`chatops.calendars`: a time in a DST gap is read with the offset before the transition
(02:30 on the US spring-forward day is 03:30 EDT), a time in a fold means its first occurrence.

:class:`Override` intervals ("Bo covers Ann from Tue 18:00 to Wed 09:00") are laid on top of
the rotation; where overrides overlap, the one listed later wins. Overrides of other rotations
(``override.rotation != rotation.name``) are ignored, so callers may pass one list for all.

Shifts
------
The effective schedule is a sequence of :class:`Shift` values: maximal half-open intervals
``[starts_at, ends_at)`` during which the same *source* puts the same person on call. The
source is either the rotation or one particular override. Consequently:

* consecutive rotation slots of the same person are one shift (a one-member rotation is one
  shift from its first handoff, forever: ``ends_at`` is None);
* an override is one shift even if rotation handoffs happen underneath it; it is cut only where
  a later-listed override takes over. The rotation's shifts are clipped at override edges;
* an override for the person already on call is still a shift of its own (``is_override``),
  so its edges are shift changes, though not changes of *person*.

Nobody is on call (``person`` None) before the first handoff and, forever, in a rotation with
no members, except where an override says otherwise. Such a gap has no beginning; its
``starts_at`` is :data:`DISTANT_PAST` (``datetime.min`` in UTC), which callers should compare
against rather than display (converting it to a zone west of UTC overflows).

All functions take timezone-aware datetimes (naive ones raise ``ValueError``) and return
shifts with UTC datetimes. Everything is compared in UTC: Python compares two datetimes that
share a ``tzinfo`` by wall time, ignoring ``fold``, which would misorder instants in a DST fold.

Cost
----
The rotation slot holding an instant is computed arithmetically (local days since ``start``
for daily/weekly, elapsed hours for custom shifts), so a rotation that started years ago
costs the same as a new one. :func:`on_call_at` and :func:`next_shift` are O(overrides);
:func:`changes_between` sweeps its window once, O(shifts in the window + overrides · log).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DISTANT_PAST",
    "MAX_SHIFT_HOURS",
    "Override",
    "Rotation",
    "Shift",
    "changes_between",
    "next_shift",
    "on_call_at",
    "parse_shift",
]

DISTANT_PAST = datetime.min.replace(tzinfo=UTC)
"""``starts_at`` of a gap that has always been there (before a rotation's first shift)."""

MAX_SHIFT_HOURS = 336
"""Longest custom shift, in hours (two weeks)."""

_CALENDAR_SHIFT_DAYS = {"daily": 1, "weekly": 7}
_HOURS_RE = re.compile(r"^([0-9]+)\s*h$")
_ONE_US = timedelta(microseconds=1)

# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


def parse_shift(text: str) -> timedelta | str:
    """Parse a shift length: ``"daily"`` / ``"weekly"`` (returned as such) or ``"<N>h"``.

    Daily and weekly shifts follow the local calendar (they are not fixed durations), so they
    come back as their name; ``"<N>h"`` comes back as ``timedelta(hours=N)``. Case and
    surrounding spaces are ignored. N must be a whole number from 1 to :data:`MAX_SHIFT_HOURS`;
    anything else raises ``ValueError`` saying what is accepted (the roster loader shows it).
    """
    if not isinstance(text, str):
        raise ValueError(f"shift must be a string like 'daily', 'weekly' or '12h', got {text!r}")
    key = text.strip().lower()
    if key in _CALENDAR_SHIFT_DAYS:
        return key
    match = _HOURS_RE.match(key)
    if not match:
        raise ValueError(f"shift must be 'daily', 'weekly' or whole hours like '12h', got {text!r}")
    hours = int(match.group(1))
    if not 1 <= hours <= MAX_SHIFT_HOURS:
        raise ValueError(f"shift {text!r}: hours must be from 1 to {MAX_SHIFT_HOURS}")
    return timedelta(hours=hours)


def _utc(value: datetime, name: str) -> datetime:
    """Aware datetime → the same instant in UTC; naive → ``ValueError``."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Rotation:
    """A rotation of ``members`` through shifts of one length, from ``start`` on, forever.

    ``handoff`` is the local wall time in ``timezone`` at which shifts change (for ``"<N>h"``
    shifts: at which the first one starts); ``members[0]`` takes the shift that begins at
    ``handoff`` on the local date ``start``. ``members`` may be empty (a rotation nobody
    staffs yet) and may repeat a person. A list is accepted and stored as a tuple; ``shift``
    is stored in canonical form (``"daily"``, ``"weekly"``, ``"12h"``). Invalid values raise
    ``ValueError`` naming the rotation.
    """

    name: str
    members: tuple[str, ...]
    shift: str
    handoff: time
    timezone: str
    start: date

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"rotation name must be a non-empty string, got {self.name!r}")
        where = f"rotation {self.name!r}"
        members = self.members
        if isinstance(members, str) or not isinstance(members, Sequence):
            raise ValueError(f"{where}: members must be a sequence of user ids, got {members!r}")
        members = tuple(members)
        bad = [m for m in members if not isinstance(m, str) or not m.strip()]
        if bad:
            raise ValueError(f"{where}: members must be non-empty strings, got {bad!r}")
        try:
            parsed = parse_shift(self.shift)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        canonical = parsed if isinstance(parsed, str) else f"{parsed // timedelta(hours=1)}h"
        if not isinstance(self.handoff, time):
            raise ValueError(f"{where}: handoff must be a datetime.time, got {self.handoff!r}")
        if self.handoff.tzinfo is not None:
            raise ValueError(
                f"{where}: handoff is a local wall time in {self.timezone!r}; give a naive time"
            )
        if not isinstance(self.timezone, str) or not self.timezone:
            raise ValueError(f"{where}: timezone must be an IANA zone name, got {self.timezone!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{where}: unknown time zone {self.timezone!r}") from exc
        if isinstance(self.start, datetime) or not isinstance(self.start, date):
            raise ValueError(f"{where}: start must be a datetime.date, got {self.start!r}")
        # Normalise so equal rotations compare (and cache) equal; fold=0 per the module rules.
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "shift", canonical)
        object.__setattr__(self, "handoff", self.handoff.replace(fold=0))


@dataclass(frozen=True)
class Override:
    """``person`` is on call for ``rotation`` during ``[starts_at, ends_at)``.

    ``covers`` (whom they stand in for) is informational only: the override applies whoever
    the rotation had on call. Both instants must be aware and ``ends_at > starts_at``.
    """

    rotation: str
    person: str
    starts_at: datetime
    ends_at: datetime
    covers: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.rotation, str) or not self.rotation.strip():
            raise ValueError(f"override rotation must be a non-empty string, got {self.rotation!r}")
        if not isinstance(self.person, str) or not self.person.strip():
            raise ValueError(f"override person must be a non-empty string, got {self.person!r}")
        starts = _utc(self.starts_at, "override starts_at")
        ends = _utc(self.ends_at, "override ends_at")
        if ends <= starts:
            raise ValueError(
                f"override for {self.person!r} must end after it starts "
                f"({self.starts_at.isoformat()} .. {self.ends_at.isoformat()})"
            )
        if self.covers is not None and not isinstance(self.covers, str):
            raise ValueError(f"override covers must be a user id or None, got {self.covers!r}")


@dataclass(frozen=True)
class Shift:
    """One stretch of the effective schedule, ``[starts_at, ends_at)`` in UTC.

    ``person`` None means nobody is on call. ``starts_at`` is :data:`DISTANT_PAST` for a gap
    that was always there; ``ends_at`` None means the shift never ends (nobody forever, or a
    one-member rotation with no later override). ``is_override`` tells an override's stretch
    from the rotation's own.
    """

    rotation: str
    person: str | None
    starts_at: datetime
    ends_at: datetime | None
    is_override: bool

    def contains(self, at: datetime) -> bool:
        """Whether the aware instant ``at`` falls in ``[starts_at, ends_at)``."""
        instant = _utc(at, "at")
        return self.starts_at <= instant and (self.ends_at is None or instant < self.ends_at)


# --------------------------------------------------------------------------------------------
# Rotation slots
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """A rotation prepared for arithmetic. Slot ``k`` is ``[boundary(k), boundary(k + 1))``;
    slots ``k < 0`` are before the rotation starts (nobody on call)."""

    tz: ZoneInfo
    days: int  # 1 (daily) or 7 (weekly); 0 for a fixed-length "<N>h" shift
    step: timedelta  # the fixed length when days == 0
    first: datetime  # UTC instant of the first handoff (slot 0 starts)
    start_ordinal: int
    handoff: time
    members: tuple[str, ...]
    # For member i: how many slots right before / after it have the same person (cyclically).
    # Unused when all members are the same person (the run never ends).
    same_before: tuple[int, ...]
    same_after: tuple[int, ...]
    uniform: bool

    def boundary(self, k: int) -> datetime:
        """UTC start of slot ``k``."""
        if not self.days:
            return self.first + k * self.step
        day = date.fromordinal(self.start_ordinal + k * self.days)
        return datetime.combine(day, self.handoff, tzinfo=self.tz).astimezone(UTC)

    def slot_at(self, at: datetime) -> int:
        """The slot holding the UTC instant ``at``, by arithmetic rather than by stepping.

        For calendar shifts the local date gives the slot, or the one before when ``at`` is
        earlier than that date's handoff; comparing real boundaries (rather than wall times)
        settles that, and any odd zone-rule day, in a step or two.
        """
        if not self.days:
            return (at - self.first) // self.step
        local_day = at.astimezone(self.tz).date().toordinal()
        k = (local_day - self.start_ordinal) // self.days
        while self.boundary(k) > at:
            k -= 1
        while self.boundary(k + 1) <= at:
            k += 1
        return k

    def run_at(self, at: datetime) -> tuple[datetime, datetime | None, str | None]:
        """The maximal run of rotation slots around ``at`` with one person: (start, end, who)."""
        if not self.members:
            return DISTANT_PAST, None, None
        k = self.slot_at(at)
        if k < 0:
            return DISTANT_PAST, self.boundary(0), None
        index = k % len(self.members)
        person = self.members[index]
        if self.uniform:
            return self.boundary(0), None, person
        first = max(0, k - self.same_before[index])
        return self.boundary(first), self.boundary(k + self.same_after[index] + 1), person


def _same_run(members: tuple[str, ...], direction: int) -> tuple[int, ...]:
    """For each member, the count of neighbours in ``direction`` (cyclic) who are the same."""
    n = len(members)
    out = []
    for i, person in enumerate(members):
        count = 0
        while count < n - 1 and members[(i + direction * (count + 1)) % n] == person:
            count += 1
        out.append(count)
    return tuple(out)


@lru_cache(maxsize=512)
def _plan(rotation: Rotation) -> _Plan:
    tz = ZoneInfo(rotation.timezone)
    parsed = parse_shift(rotation.shift)
    members = rotation.members
    uniform = bool(members) and len(set(members)) == 1
    varied = bool(members) and not uniform
    return _Plan(
        tz=tz,
        days=_CALENDAR_SHIFT_DAYS[parsed] if isinstance(parsed, str) else 0,
        step=parsed if isinstance(parsed, timedelta) else timedelta(0),
        first=datetime.combine(rotation.start, rotation.handoff, tzinfo=tz).astimezone(UTC),
        start_ordinal=rotation.start.toordinal(),
        handoff=rotation.handoff,
        members=members,
        same_before=_same_run(members, -1) if varied else (),
        same_after=_same_run(members, +1) if varied else (),
        uniform=uniform,
    )


# --------------------------------------------------------------------------------------------
# Overrides on top
# --------------------------------------------------------------------------------------------

_Interval = tuple[datetime, datetime, str]  # (starts_at UTC, ends_at UTC, person)


def _overrides_of(rotation: Rotation, overrides: Sequence[Override]) -> list[_Interval]:
    """This rotation's overrides in listed order (later wins), as UTC intervals."""
    if not isinstance(rotation, Rotation):
        raise TypeError(f"rotation must be a Rotation, got {type(rotation).__name__}")
    if isinstance(overrides, Override):
        raise TypeError("overrides must be a sequence of Override, got a single Override")
    out: list[_Interval] = []
    for item in overrides:
        if not isinstance(item, Override):
            raise TypeError(f"overrides must hold Override values, got {type(item).__name__}")
        if item.rotation == rotation.name:
            out.append((item.starts_at.astimezone(UTC), item.ends_at.astimezone(UTC), item.person))
    return out


def _shift_at(rotation: Rotation, plan: _Plan, overrides: list[_Interval], at: datetime) -> Shift:
    """The maximal shift holding the UTC instant ``at``; O(len(overrides))."""
    winner = None
    for j in range(len(overrides) - 1, -1, -1):
        starts, ends, _person = overrides[j]
        if starts <= at < ends:
            winner = j
            break
    if winner is not None:
        starts, ends, person = overrides[winner]
        # Later-listed overrides cut this one: those that ended by `at` push the start
        # forward, those starting after `at` pull the end back. None of them covers `at`.
        for later_start, later_end, _who in overrides[winner + 1 :]:
            if starts < later_end <= at:
                starts = later_end
            elif at < later_start < ends:
                ends = later_start
        return Shift(rotation.name, person, starts, ends, is_override=True)
    starts, ends, person = plan.run_at(at)
    # No override covers `at`: each one ended by `at` or starts after it.
    for other_start, other_end, _who in overrides:
        if starts < other_end <= at:
            starts = other_end
        elif at < other_start and (ends is None or other_start < ends):
            ends = other_start
    return Shift(rotation.name, person, starts, ends, is_override=False)


# --------------------------------------------------------------------------------------------
# Public queries
# --------------------------------------------------------------------------------------------


def on_call_at(rotation: Rotation, overrides: Sequence[Override], at: datetime) -> Shift:
    """The shift in force at ``at`` (intervals are ``[start, end)``: at a boundary, the new one).

    Its person may be None (nobody on call). See the module docstring for what one shift spans.
    """
    instant = _utc(at, "at")
    return _shift_at(rotation, _plan(rotation), _overrides_of(rotation, overrides), instant)


def next_shift(rotation: Rotation, overrides: Sequence[Override], at: datetime) -> Shift | None:
    """The shift that follows the one in force at ``at`` ("who is next"), or None if none does.

    It starts exactly when the current shift ends and differs from it in person or source
    (rotation vs. a particular override), so it may be the same person: e.g. the rotation
    shift of someone whose own override just ended. None when the current shift never ends
    (a rotation with no members, or one person forever, and no override to come).
    """
    instant = _utc(at, "at")
    plan = _plan(rotation)
    intervals = _overrides_of(rotation, overrides)
    current = _shift_at(rotation, plan, intervals, instant)
    if current.ends_at is None:
        return None
    return _shift_at(rotation, plan, intervals, current.ends_at)


def changes_between(
    rotation: Rotation, overrides: Sequence[Override], start: datetime, end: datetime
) -> list[tuple[datetime, Shift, Shift]]:
    """Every instant ``t`` in ``(start, end]`` where the *person* on call changes, in order.

    Each item is ``(t, outgoing, incoming)``: the shift that ends at ``t`` and the one that
    begins there. Shift changes that keep the person (an override for whoever is already on,
    a rotation shift picking up after that person's override) are not reported; nobody (None)
    counts as a person, so the edges of a gap are reported. Windows are half-open on the left
    so consecutive sweeps ``(a, b]``, ``(b, c]`` report each change exactly once.

    One pass over the window: the override edges inside it are sorted and swept with a heap
    of active overrides (the highest listed index wins); between edges with no override in
    force the rotation's person runs are stepped through arithmetically.
    """
    low = _utc(start, "start")
    high = _utc(end, "end")
    if high < low:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    plan = _plan(rotation)
    intervals = _overrides_of(rotation, overrides)
    first = _shift_at(rotation, plan, intervals, low)
    if first.ends_at is None or first.ends_at > high:
        return []

    active: set[int] = set()
    heap: list[int] = []  # negated indices: the top is the latest-listed candidate
    events: list[tuple[datetime, int, int]] = []  # (instant, +1 start / -1 end, index)
    for j, (starts, ends, _person) in enumerate(intervals):
        if ends <= low or starts > high:
            continue
        if starts <= low:
            active.add(j)
            heapq.heappush(heap, -j)
        else:
            events.append((starts, 1, j))
        if ends <= high:
            events.append((ends, -1, j))
    events.sort()

    def winner() -> int | None:
        while heap and -heap[0] not in active:
            heapq.heappop(heap)
        return -heap[0] if heap else None

    # A source is the override index, or -1 for the rotation; a shift is a (source, person).
    boundaries: list[tuple[datetime, int, str | None]] = []
    current = winner()
    run_end: datetime | None = None
    if current is None:
        _run_start, run_end, person = plan.run_at(low)
        source = (-1, person)
    else:
        source = (current, intervals[current][2])
    position = 0
    while True:
        next_event = events[position][0] if position < len(events) else None
        if current is None:
            # Rotation person changes strictly before the next override edge (or up to `end`).
            while run_end is not None and (
                run_end < next_event if next_event is not None else run_end <= high
            ):
                instant = run_end
                _run_start, run_end, person = plan.run_at(instant)
                if (-1, person) != source:
                    source = (-1, person)
                    boundaries.append((instant, -1, person))
        if next_event is None:
            break
        while position < len(events) and events[position][0] == next_event:
            _when, kind, j = events[position]
            if kind > 0:
                active.add(j)
                heapq.heappush(heap, -j)
            else:
                active.discard(j)
            position += 1
        current = winner()
        if current is None:
            _run_start, run_end, person = plan.run_at(next_event)
            incoming = (-1, person)
        else:
            incoming = (current, intervals[current][2])
        if incoming != source:
            source = incoming
            boundaries.append((next_event, incoming[0], incoming[1]))

    shifts = [first]
    for i, (instant, index, person) in enumerate(boundaries):
        if i + 1 < len(boundaries):
            shifts.append(
                Shift(rotation.name, person, instant, boundaries[i + 1][0], is_override=index >= 0)
            )
        else:  # the last one may run past `end`: find where it really ends
            shifts.append(_shift_at(rotation, plan, intervals, instant))
    return [
        (instant, shifts[i], shifts[i + 1])
        for i, (instant, _index, person) in enumerate(boundaries)
        if person != shifts[i].person
    ]
