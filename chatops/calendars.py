"""Business-time calendars: when is the support desk open, and how much open time has passed.

A :class:`BusinessCalendar` describes support hours in one IANA time zone:

* a weekly pattern: for each weekday (0 = Monday … 6 = Sunday) a sorted tuple of
  ``(start_minute, end_minute)`` windows in *local wall time*, minutes from local midnight;
  ``end_minute`` may be 1440, meaning 24:00 (the window runs to the next local midnight);
* ``closed_dates``: local dates with no hours at all (public holidays);
* ``extra_open_dates``: local dates that are working days despite the weekly pattern or a
  holiday (for example China's make-up working days on a weekend), each with its own windows;
* ``always_open``: 24×7 (the weekly pattern becomes 00:00–24:00 every day).

Precedence for a local date: ``extra_open_dates`` > ``closed_dates`` > weekly pattern.

Time model
----------
All public methods take timezone-aware datetimes (a naive one raises ``ValueError``) and return
datetimes in UTC (``datetime.UTC``). Internally every instant is an integer number of
microseconds since the Unix epoch, so the arithmetic is exact: business durations are whole
microseconds and ``business_minutes_between`` / ``add_business_minutes`` are exact inverses.

Open windows are half-open intervals ``[start, end)`` of real (UTC) time. "Business minutes"
are real elapsed minutes inside windows, so across a daylight-saving transition a window's
length changes (00:00–24:00 on a spring-forward day in Europe/London is 23 hours; on the
fall-back day it is 25 hours).

Daylight saving: each window boundary is local wall time on its date, converted to UTC with
``zoneinfo``'s ``fold=0`` semantics:

* a wall time inside a DST *gap* (it never shows on the clock) is read with the offset in
  force *before* the transition, i.e. it lands as far after the transition as it is after the
  gap's start (02:30 on the US spring-forward day becomes 03:30 EDT);
* a wall time inside a DST *fold* (it shows twice) means its *first* occurrence.

24:00 is the next date's local midnight (also ``fold=0``). A day's converted windows are
clipped to ``[local midnight, next local midnight]`` and merged if the conversion made them
overlap, so the whole timeline is a sorted sequence of disjoint intervals.

End-of-window rule
------------------
:meth:`BusinessCalendar.add_business_minutes` returns the *earliest* instant at which the
requested amount of open time has elapsed. If that instant is the end of a window it is
returned as is (it is *not* rolled forward to the next opening), so a due time can be "17:00"
on a 09:00–17:00 calendar. ``minutes == 0`` is special: it returns ``start`` if the calendar is
open then, otherwise the next opening (the clock "starts" at the next opening).

Performance
-----------
Work is proportional to the number of days spanned, and runs of whole regular weeks (no
closed/extra date and no UTC-offset change) are skipped arithmetically, because such a week
contains exactly the weekly pattern's number of open minutes. Instances are immutable and
safe to share between threads; the only caches are ``functools.lru_cache`` tables keyed by
(zone name, year), which are thread-safe.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "MINUTES_PER_DAY",
    "BusinessCalendar",
    "DayWindows",
    "Window",
    "adjusted_working_days",
    "parse_windows",
    "public_holidays",
]

Window = tuple[int, int]
"""A ``(start_minute, end_minute)`` window in local wall time, minutes from midnight."""

DayWindows = tuple[Window, ...]
"""The sorted, non-overlapping windows of one day."""

MINUTES_PER_DAY = 1440

_US_PER_MINUTE = 60_000_000
_US_PER_DAY = MINUTES_PER_DAY * _US_PER_MINUTE
_ONE_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY: DayWindows = ((0, MINUTES_PER_DAY),)

# --------------------------------------------------------------------------------------------
# Public holidays (thin wrappers around the ``holidays`` package)
# --------------------------------------------------------------------------------------------


def _holiday_table(
    country: str, years: Iterable[int], subdivision: str | None
) -> tuple[Any, set[int]]:
    """Build a ``holidays`` table for ``years`` ± 1 (observed/substituted days cross years)."""
    import holidays  # local import: only needed when building calendars from holiday data

    wanted = sorted(set(years))
    if not wanted:
        return None, set()
    span = range(wanted[0] - 1, wanted[-1] + 2)
    try:
        table = holidays.country_holidays(country, subdiv=subdivision, years=span)
    except NotImplementedError as exc:  # unknown country or subdivision
        raise ValueError(f"holidays: {exc}") from exc
    return table, set(wanted)


def public_holidays(
    country: str, years: Iterable[int], subdivision: str | None = None
) -> set[date]:
    """Return the public-holiday dates of ``country`` that fall in ``years``.

    Uses the ``holidays`` package's default ("public") category, including its observed and
    substituted days off (e.g. for China the extra days off of each "golden week", labelled
    "Day off (substituted from …)"). Holidays are looked up for one extra year on each side
    and then filtered by the date's own year, so a day off in ``years`` that is caused by a
    neighbouring year's holiday (US New Year's Day observed on 31 December) is included and
    one falling outside ``years`` is not.

    Feed the result to ``closed_dates``. Unknown countries/subdivisions raise ``ValueError``.
    """
    table, wanted = _holiday_table(country, years, subdivision)
    if table is None:
        return set()
    return {d for d in table if d.year in wanted}


def adjusted_working_days(
    country: str, years: Iterable[int], subdivision: str | None = None
) -> set[date]:
    """Return official make-up working days (weekend days that are working days) in ``years``.

    Some countries move working days onto weekends to build long holidays: China's State
    Council "调休" schedule (e.g. Sunday 2026-09-20 and Saturday 2026-10-10 are working days
    for the 2026 National Day week), and also Russia, Belarus, Kazakhstan, Uzbekistan,
    Vietnam, Taiwan… The ``holidays`` package exposes them as the ``weekend_workdays`` set of
    a country table; countries without such days give an empty set.

    The package only knows these days for years whose official schedule it contains (China
    publishes next year's schedule around November); for later years the holidays are
    computed by rule and no make-up days are known. Feed the result to ``extra_open_dates``.
    """
    table, wanted = _holiday_table(country, years, subdivision)
    if table is None:
        return set()
    return {d for d in getattr(table, "weekend_workdays", ()) if d.year in wanted}


# --------------------------------------------------------------------------------------------
# Parsing helpers
# --------------------------------------------------------------------------------------------

_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")
_CLOSED_WORDS = frozenset({"", "closed", "none", "off"})


def _parse_time(text: str, *, is_end: bool, where: str) -> int:
    match = _TIME_RE.match(text.strip())
    if not match:
        raise ValueError(f"{where}: bad time {text.strip()!r}, expected HH:MM")
    hour, minute = int(match.group(1)), int(match.group(2))
    if minute > 59 or hour > 24 or (hour == 24 and minute != 0):
        raise ValueError(f"{where}: time {text.strip()!r} out of range 00:00-24:00")
    if hour == 24 and not is_end:
        raise ValueError(f"{where}: 24:00 is only allowed as the end of a window")
    return hour * 60 + minute


def parse_windows(spec: str | Sequence[str] | None, *, where: str = "hours") -> DayWindows:
    """Parse a human day spec into sorted windows.

    Accepts ``"09:00-17:00"``, ``"09:00-12:00, 13:00-18:00"``, a list of such strings, and
    ``None`` / ``""`` / ``"closed"`` for a closed day. Times are ``H:MM`` or ``HH:MM`` from
    00:00 to 23:59; ``24:00`` is allowed only as an end. Windows may be given in any order;
    touching windows are merged; overlapping or empty ones raise ``ValueError`` (the message
    starts with ``where``).
    """
    if spec is None:
        return ()
    if isinstance(spec, str):
        if spec.strip().lower() in _CLOSED_WORDS:
            return ()
        parts = spec.split(",")
    elif isinstance(spec, Sequence) and all(isinstance(p, str) for p in spec):
        parts = [piece for p in spec for piece in p.split(",")]
    else:
        raise ValueError(f"{where}: expected a string like '09:00-17:00', got {spec!r}")
    windows: list[Window] = []
    for part in parts:
        chunk = part.strip()
        pieces = re.split(r"\s*[-–]\s*", chunk)
        if len(pieces) != 2:
            raise ValueError(f"{where}: bad window {chunk!r}, expected 'HH:MM-HH:MM'")
        start = _parse_time(pieces[0], is_end=False, where=where)
        end = _parse_time(pieces[1], is_end=True, where=where)
        if end <= start:
            raise ValueError(f"{where}: window {chunk!r} ends before it starts")
        windows.append((start, end))
    windows.sort()
    return _check_windows(windows, where=where)


def _check_windows(windows: Iterable[Any], *, where: str) -> DayWindows:
    """Validate sorted, non-overlapping integer windows; merge touching ones."""
    out: list[Window] = []
    for item in windows:
        try:
            start, end = item
        except (TypeError, ValueError):
            raise ValueError(f"{where}: window {item!r} is not a (start, end) pair") from None
        if isinstance(start, bool) or isinstance(end, bool):
            raise ValueError(f"{where}: window {item!r} must hold integer minutes")
        if not (isinstance(start, int) and isinstance(end, int)):
            raise ValueError(f"{where}: window {item!r} must hold integer minutes")
        if not 0 <= start < end <= MINUTES_PER_DAY:
            raise ValueError(
                f"{where}: window {item!r} must satisfy 0 <= start < end <= {MINUTES_PER_DAY}"
            )
        if out and start < out[-1][1]:
            raise ValueError(f"{where}: windows must be sorted and non-overlapping: {item!r}")
        if out and start == out[-1][1]:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return tuple(out)


def _check_date(value: Any, *, where: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValueError(f"{where}: expected a datetime.date, got {value!r}")
    return value


def _to_us(value: datetime, name: str = "datetime") -> int:
    """Aware datetime → integer microseconds since the epoch (exact)."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return (value - _EPOCH) // _ONE_US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _minutes_to_us(minutes: float, name: str = "minutes") -> int:
    if isinstance(minutes, bool) or not isinstance(minutes, int | float):
        raise TypeError(f"{name} must be a number, got {minutes!r}")
    if isinstance(minutes, float) and not math.isfinite(minutes):
        raise ValueError(f"{name} must be finite, got {minutes!r}")
    if minutes < 0:
        raise ValueError(f"{name} must be >= 0, got {minutes!r}")
    if isinstance(minutes, int):
        return minutes * _US_PER_MINUTE
    return round(minutes * _US_PER_MINUTE)


def _duration_to_us(duration: timedelta) -> int:
    if not isinstance(duration, timedelta):
        raise TypeError(f"duration must be a timedelta, got {duration!r}")
    if duration < timedelta(0):
        raise ValueError(f"duration must be >= 0, got {duration!r}")
    return duration // _ONE_US


@lru_cache(maxsize=1024)
def _offset_change_ordinals(zone: str, year: int) -> tuple[tuple[int, ...], frozenset[int]]:
    """Local dates of ``year`` whose midnight UTC offset differs from the next midnight's.

    Those are the days that contain a UTC-offset change (DST or a zone-rule change); every
    other day has a constant offset, so its windows are plain shifts of local minutes.
    """
    tz = ZoneInfo(zone)
    first = date(year, 1, 1).toordinal()
    last = date(year + 1, 1, 1).toordinal()
    previous = datetime(year, 1, 1, tzinfo=tz).utcoffset()
    found: list[int] = []
    for ordinal in range(first, last):
        following = datetime.fromordinal(ordinal + 1).replace(tzinfo=tz).utcoffset()
        if following != previous:
            found.append(ordinal)
        previous = following
    return tuple(found), frozenset(found)


def _restore(kwargs: dict[str, Any]) -> BusinessCalendar:
    return BusinessCalendar(**kwargs)


# --------------------------------------------------------------------------------------------
# The calendar
# --------------------------------------------------------------------------------------------


class BusinessCalendar:
    """Support hours in one time zone, with holidays and make-up days. Immutable.

    Build one with :meth:`from_spec` (human strings), :meth:`always` (24×7) or the
    constructor (integer minute windows). See the module docstring for the time model,
    DST rules and the end-of-window rule.
    """

    __slots__ = (
        "_always_open",
        "_closed",
        "_closed_ords",
        "_exception_ords",
        "_extra",
        "_extra_ords",
        "_hash",
        "_timezone",
        "_trivial",
        "_tz",
        "_week_us",
        "_weekly",
    )

    def __init__(
        self,
        timezone: str,
        weekly_hours: Sequence[Iterable[Window]] | Mapping[int, Iterable[Window]] = (),
        *,
        always_open: bool = False,
        closed_dates: Iterable[date] = (),
        extra_open_dates: Mapping[date, Iterable[Window]] | None = None,
    ) -> None:
        """Create a calendar.

        ``weekly_hours`` is a sequence of 7 window lists (Monday first) or a mapping
        ``weekday -> windows`` (missing weekdays are closed); windows are integer
        ``(start_minute, end_minute)`` pairs, sorted and non-overlapping, ``end <= 1440``.
        With ``always_open=True`` the weekly pattern is 00:00–24:00 every day and
        ``weekly_hours`` must be empty. ``closed_dates`` and ``extra_open_dates`` still apply
        to an always-open calendar. A calendar must be open at least once a week.
        Invalid input raises ``ValueError``.
        """
        if not isinstance(timezone, str) or not timezone:
            raise ValueError(f"timezone must be an IANA zone name, got {timezone!r}")
        try:
            tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {timezone!r}") from exc

        if always_open:
            if weekly_hours:
                raise ValueError("weekly_hours must be empty when always_open=True")
            weekly: tuple[DayWindows, ...] = (_FULL_DAY,) * 7
        else:
            if isinstance(weekly_hours, Mapping):
                bad = [k for k in weekly_hours if k not in range(7) or isinstance(k, bool)]
                if bad:
                    raise ValueError(f"weekly_hours keys must be weekdays 0..6, got {bad!r}")
                days = [weekly_hours.get(i, ()) for i in range(7)]
            else:
                days = list(weekly_hours)
                if len(days) != 7:
                    raise ValueError(
                        f"weekly_hours must have 7 entries (Monday..Sunday), got {len(days)}"
                    )
            weekly = tuple(
                _check_windows(day, where=f"weekly_hours[{_WEEKDAY_NAMES[i]}]")
                for i, day in enumerate(days)
            )
            if not any(weekly):
                raise ValueError(
                    "calendar has no weekly opening hours; add windows or use always_open=True"
                )

        closed = frozenset(_check_date(d, where="closed_dates") for d in closed_dates)
        extra: dict[date, DayWindows] = {}
        for day, windows in (extra_open_dates or {}).items():
            _check_date(day, where="extra_open_dates")
            checked = _check_windows(windows, where=f"extra_open_dates[{day.isoformat()}]")
            if not checked:
                raise ValueError(
                    f"extra_open_dates[{day.isoformat()}]: an extra open date needs windows"
                )
            extra[day] = checked
        extra = dict(sorted(extra.items()))

        setattr_ = object.__setattr__
        setattr_(self, "_timezone", timezone)
        setattr_(self, "_tz", tz)
        setattr_(self, "_always_open", bool(always_open))
        setattr_(self, "_weekly", weekly)
        setattr_(self, "_closed", closed)
        setattr_(self, "_extra", MappingProxyType(extra))
        setattr_(self, "_closed_ords", frozenset(d.toordinal() for d in closed))
        setattr_(self, "_extra_ords", {d.toordinal(): w for d, w in extra.items()})
        setattr_(self, "_exception_ords", tuple(sorted({d.toordinal() for d in (*closed, *extra)})))
        week_minutes = sum(end - start for day in weekly for start, end in day)
        setattr_(self, "_week_us", week_minutes * _US_PER_MINUTE)
        # Every local day fully open and no exceptions: open time is all time.
        setattr_(
            self, "_trivial", all(day == _FULL_DAY for day in weekly) and not closed and not extra
        )
        setattr_(
            self,
            "_hash",
            hash((timezone, weekly, self._always_open, closed, tuple(extra.items()))),
        )

    # -- construction helpers ---------------------------------------------------------------

    @classmethod
    def always(cls, timezone: str = "UTC") -> BusinessCalendar:
        """A 24×7 calendar: every instant is open, business time equals wall-clock time."""
        return cls(timezone, always_open=True)

    @classmethod
    def from_spec(
        cls,
        timezone: str,
        hours: Mapping[str, str | Sequence[str] | None] | None = None,
        *,
        always_open: bool = False,
        closed_dates: Iterable[date] = (),
        extra_open_dates: Mapping[date, str | Sequence[str] | None] | Iterable[date] = (),
        extra_open_hours: str | Sequence[str] | None = None,
    ) -> BusinessCalendar:
        """Build a calendar from human strings (e.g. a YAML policy file).

        ``hours`` keys (case-insensitive): ``mon`` … ``sun`` (or full names ``monday`` …),
        and the shortcuts ``daily`` (all days), ``weekdays`` (Mon–Fri) and ``weekends``
        (Sat–Sun). A specific day overrides ``weekdays``/``weekends``, which override
        ``daily``; days not mentioned are closed. Values: ``"09:00-17:00"``,
        ``"09:00-12:00,13:00-18:00"``, ``"09:00-24:00"``; ``""``/``None``/``"closed"`` for a
        closed day.

        ``extra_open_dates`` is either a mapping ``date -> hours string`` or a plain
        iterable of dates (e.g. :func:`adjusted_working_days`); plain dates get
        ``extra_open_hours`` or, if that is not given, Monday's hours (a make-up working day
        works like a normal weekday).

        Example::

            BusinessCalendar.from_spec(
                "Asia/Shanghai",
                {"weekdays": "09:00-18:00"},
                closed_dates=public_holidays("CN", range(2025, 2029)),
                extra_open_dates=adjusted_working_days("CN", range(2025, 2029)),
            )
        """
        if always_open and hours:
            raise ValueError("give either hours or always_open=True, not both")
        weekly: list[DayWindows] = [()] * 7
        if hours:
            if not isinstance(hours, Mapping):
                raise ValueError(f"hours must be a mapping of day -> window spec, got {hours!r}")
            # (level, weekdays, windows) per key; applied by precedence so key order is moot.
            parsed: list[tuple[int, tuple[int, ...], DayWindows]] = []
            seen: dict[tuple[int, int], str] = {}
            for raw_key, value in hours.items():
                targets, level = _day_key(str(raw_key).strip().lower())
                for day in targets:
                    if (level, day) in seen:
                        raise ValueError(
                            f"hours: {_WEEKDAY_NAMES[day]} given twice "
                            f"({seen[level, day]!r} and {raw_key!r})"
                        )
                    seen[level, day] = str(raw_key)
                parsed.append((level, targets, parse_windows(value, where=f"hours[{raw_key!r}]")))
            for _level, targets, windows in sorted(parsed, key=lambda item: item[0]):
                for day in targets:
                    weekly[day] = windows
        elif not always_open:
            raise ValueError("hours is required unless always_open=True")

        extra: dict[date, DayWindows] = {}
        if isinstance(extra_open_dates, Mapping):
            for day, value in extra_open_dates.items():
                _check_date(day, where="extra_open_dates")
                extra[day] = parse_windows(value, where=f"extra_open_dates[{day.isoformat()}]")
        else:
            if extra_open_hours is not None:
                default = parse_windows(extra_open_hours, where="extra_open_hours")
            else:
                default = _FULL_DAY if always_open else weekly[0]
            for day in extra_open_dates:
                _check_date(day, where="extra_open_dates")
                if not default:
                    raise ValueError(
                        "extra_open_dates: plain dates need hours; Monday is closed, so pass "
                        "a non-empty extra_open_hours"
                    )
                extra[day] = default

        return cls(
            timezone,
            () if always_open else weekly,
            always_open=always_open,
            closed_dates=closed_dates,
            extra_open_dates=extra,
        )

    # -- value semantics -------------------------------------------------------------------

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BusinessCalendar):
            return NotImplemented
        return (
            self._timezone == other._timezone
            and self._weekly == other._weekly
            and self._always_open == other._always_open
            and self._closed == other._closed
            and dict(self._extra) == dict(other._extra)
        )

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        if self._always_open:
            hours = "always_open=True"
        else:
            hours = ", ".join(
                f"{name}={_format_windows(day)}"
                for name, day in zip(_WEEKDAY_NAMES, self._weekly, strict=True)
            )
        return (
            f"BusinessCalendar({self._timezone!r}, {hours}, "
            f"closed_dates={len(self._closed)}, extra_open_dates={len(self._extra)})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _restore,
            (
                {
                    "timezone": self._timezone,
                    "weekly_hours": () if self._always_open else self._weekly,
                    "always_open": self._always_open,
                    "closed_dates": self._closed,
                    "extra_open_dates": dict(self._extra),
                },
            ),
        )

    # -- read-only attributes --------------------------------------------------------------

    @property
    def timezone(self) -> str:
        """The IANA time zone name the windows are expressed in."""
        return self._timezone

    @property
    def tzinfo(self) -> ZoneInfo:
        """The ``ZoneInfo`` for :attr:`timezone`."""
        return self._tz

    @property
    def always_open(self) -> bool:
        """True for a 24×7 weekly pattern (closed/extra dates may still apply)."""
        return self._always_open

    @property
    def weekly_hours(self) -> tuple[DayWindows, ...]:
        """Seven tuples of ``(start_minute, end_minute)`` windows, Monday first."""
        return self._weekly

    @property
    def closed_dates(self) -> frozenset[date]:
        """Local dates with no hours at all."""
        return self._closed

    @property
    def extra_open_dates(self) -> Mapping[date, DayWindows]:
        """Local dates open despite the weekly pattern/holidays, with their windows."""
        return self._extra

    @property
    def weekly_open_minutes(self) -> int:
        """Open minutes in a regular week (no closed/extra date, no DST change)."""
        return self._week_us // _US_PER_MINUTE

    # -- per-day windows ---------------------------------------------------------------------

    def windows_on(self, day: date) -> DayWindows:
        """Local ``(start_minute, end_minute)`` windows of a local date (precedence applied)."""
        _check_date(day, where="day")
        return self._local_windows(day.toordinal())

    def intervals_on(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The real open intervals ``[start, end)`` of a local date, as UTC datetimes.

        This is :meth:`windows_on` after the DST conversion (``fold=0``), clipping to the
        day's local midnights and merging described in the module docstring.
        """
        _check_date(day, where="day")
        return tuple(
            (_from_us(start), _from_us(end)) for start, end in self._utc_windows(day.toordinal())
        )

    def _local_windows(self, ordinal: int) -> DayWindows:
        extra = self._extra_ords.get(ordinal)
        if extra is not None:
            return extra
        if ordinal in self._closed_ords:
            return ()
        return self._weekly[(ordinal - 1) % 7]

    def _wall_us(self, ordinal: int, minute: int) -> int:
        """Local wall time (date ordinal, minute of day, fold=0) → UTC microseconds."""
        local = datetime.fromordinal(ordinal).replace(tzinfo=self._tz) + timedelta(minutes=minute)
        return ((local.replace(tzinfo=None) - _NAIVE_EPOCH) - local.utcoffset()) // _ONE_US

    def _utc_windows(self, ordinal: int) -> tuple[tuple[int, int], ...]:
        """The day's windows as disjoint, sorted UTC microsecond intervals."""
        local = self._local_windows(ordinal)
        if not local:
            return ()
        year = date.fromordinal(ordinal).year
        if ordinal not in _offset_change_ordinals(self._timezone, year)[1]:
            midnight = self._wall_us(ordinal, 0)
            return tuple(
                (midnight + start * _US_PER_MINUTE, midnight + end * _US_PER_MINUTE)
                for start, end in local
            )
        # The UTC offset changes during this day: convert each boundary separately.
        low = self._wall_us(ordinal, 0)
        high = self._wall_us(ordinal + 1, 0)
        converted = sorted(
            (max(self._wall_us(ordinal, start), low), min(self._wall_us(ordinal, end), high))
            for start, end in local
        )
        merged: list[tuple[int, int]] = []
        for start, end in converted:
            if end <= start:
                continue
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return tuple(merged)

    def _local_ordinal(self, us: int) -> int:
        return _from_us(us).astimezone(self._tz).toordinal()

    def _next_irregular(self, ordinal: int, limit: int) -> int:
        """Smallest ordinal >= ``ordinal`` that is a closed/extra date or an offset-change
        day, or ``limit`` if there is none before ``limit``."""
        best = limit
        exceptions = self._exception_ords
        index = bisect_left(exceptions, ordinal)
        if index < len(exceptions) and exceptions[index] < best:
            best = exceptions[index]
        year = date.fromordinal(ordinal).year
        while year <= date.fromordinal(best).year:
            changes = _offset_change_ordinals(self._timezone, year)[0]
            index = bisect_left(changes, ordinal)
            if index < len(changes):
                best = min(best, changes[index])
                break
            year += 1
        return best

    # -- core arithmetic in microseconds -----------------------------------------------------

    def _next_open_us(self, at: int) -> int:
        if self._trivial:
            return at
        ordinal = self._local_ordinal(at) - 1
        while True:
            for start, end in self._utc_windows(ordinal):
                if end > at:
                    return start if start > at else at
            ordinal += 1

    def _add_us(self, start: int, amount: int) -> int:
        if amount == 0:
            return self._next_open_us(start)
        if self._trivial:
            return start + amount
        week = self._week_us
        first = self._local_ordinal(start)
        # Days after first + 1 lie entirely after ``start`` whatever the zone does at midnight.
        ordinal = first - 1
        remaining = amount
        cursor = start
        irregular = -1
        while True:
            if ordinal > first + 1 and remaining > week:
                weeks_wanted = (remaining - 1) // week  # keep > 0 left for the final day walk
                if irregular < ordinal:
                    irregular = self._next_irregular(ordinal, ordinal + 7 * weeks_wanted + 1)
                weeks = min(weeks_wanted, (irregular - ordinal) // 7)
                if weeks > 0:
                    remaining -= weeks * week
                    ordinal += 7 * weeks
            for window_start, window_end in self._utc_windows(ordinal):
                if window_end <= cursor:
                    continue
                begin = window_start if window_start > cursor else cursor
                available = window_end - begin
                if available >= remaining:
                    return begin + remaining
                remaining -= available
                cursor = window_end
            ordinal += 1

    def _between_us(self, a: int, b: int) -> int:
        if b <= a:
            return 0
        if self._trivial:
            return b - a
        week = self._week_us
        first = self._local_ordinal(a)
        last = self._local_ordinal(b) + 1
        ordinal = first - 1
        total = 0
        irregular = -1
        while ordinal <= last:
            # Whole weeks strictly inside (first + 1, last - 2] are fully inside [a, b).
            if ordinal > first + 1:
                weeks_max = (last - 1 - ordinal) // 7
                if weeks_max > 0:
                    if irregular < ordinal:
                        irregular = self._next_irregular(ordinal, ordinal + 7 * weeks_max + 1)
                    weeks = min(weeks_max, (irregular - ordinal) // 7)
                    if weeks > 0:
                        total += weeks * week
                        ordinal += 7 * weeks
            for window_start, window_end in self._utc_windows(ordinal):
                if window_start >= b:
                    return total
                if window_end <= a:
                    continue
                total += min(window_end, b) - max(window_start, a)
            ordinal += 1
        return total

    # -- public API --------------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        """True if ``at`` lies inside an open window (windows are ``[start, end)``, so the
        instant a window closes is not open unless another window starts right there)."""
        at_us = _to_us(at, "at")
        return self._next_open_us(at_us) == at_us

    def next_opening(self, at: datetime) -> datetime:
        """The first open instant at or after ``at`` (``at`` itself, in UTC, if open now)."""
        return _from_us(self._next_open_us(_to_us(at, "at")))

    def add_business_minutes(self, start: datetime, minutes: float) -> datetime:
        """The instant at which ``minutes`` of open time have elapsed after ``start``.

        Rules: if ``start`` is outside hours the clock starts at the next opening; the result
        is the *earliest* instant with that much open time behind it, so landing exactly on a
        window's end returns that end (no roll-forward to the next opening). ``minutes == 0``
        returns ``start`` if open, else the next opening. ``minutes`` may be fractional (it is
        rounded to the microsecond); negative values raise ``ValueError``.

        Consequences: ``business_minutes_between(start, result) == minutes`` always, and
        ``add(add(s, a), b) == add(s, a + b)`` for every ``b > 0`` (for ``b == 0`` the left
        side is ``next_opening(add(s, a))``, which differs when ``add(s, a)`` is a window end).
        """
        return _from_us(self._add_us(_to_us(start, "start"), _minutes_to_us(minutes)))

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """Like :meth:`add_business_minutes` but with an exact ``timedelta`` amount."""
        return _from_us(self._add_us(_to_us(start, "start"), _duration_to_us(duration)))

    def business_minutes_between(self, a: datetime, b: datetime) -> float:
        """Open minutes in ``[a, b)`` as a float (0 if ``b <= a``); real elapsed minutes."""
        return self._between_us(_to_us(a, "a"), _to_us(b, "b")) / _US_PER_MINUTE

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Open time in ``[a, b)`` as an exact ``timedelta`` (zero if ``b <= a``)."""
        return timedelta(microseconds=self._between_us(_to_us(a, "a"), _to_us(b, "b")))


def _day_key(key: str) -> tuple[tuple[int, ...], int]:
    """Map an ``hours`` key to (weekdays, precedence level)."""
    if key == "daily":
        return tuple(range(7)), 0
    if key in ("weekdays", "weekday"):
        return (0, 1, 2, 3, 4), 1
    if key in ("weekends", "weekend"):
        return (5, 6), 1
    for index, name in enumerate(_WEEKDAY_NAMES):
        full = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        if key in (name, full[index]):
            return (index,), 2
    raise ValueError(
        f"hours: unknown day key {key!r}; use mon..sun, monday..sunday, daily, weekdays, weekends"
    )


def _format_windows(windows: DayWindows) -> str:
    if not windows:
        return "closed"
    return ",".join(f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in windows)
