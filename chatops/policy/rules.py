"""Questions the bot asks of the policy: who may open what, at which severity, due when."""

from __future__ import annotations

from datetime import date, datetime
from functools import cached_property
from pathlib import Path

from chatops.calendars import (
    BusinessCalendar,
    DayWindows,
    adjusted_working_days,
    parse_windows,
    public_holidays,
)
from chatops.policy.model import SEVERITY_ORDER, CalendarSpec, Duration, Policy
from chatops.yamlfile import FileError, load_model

# The years whose holidays the calendars know: up to 2100, where the `holidays` package's
# Chinese lunar tables end (a shorter span left a desk running past it without holidays,
# and nothing said so). It costs a few milliseconds at start-up.
_HOLIDAY_YEARS = range(2020, 2101)


class PolicyError(FileError):
    """The policy file is unusable."""


def default_policy_path() -> Path:
    return Path(__file__).with_name("default.yml")


def load_policy(path: str | Path | None = None) -> SupportRules:
    """Load and validate a policy file (the shipped default when `path` is None)."""
    path = Path(path) if path else default_policy_path()
    try:
        policy = load_model(Policy, path)
    except FileError as exc:
        raise PolicyError(exc.path, exc.problems) from None
    rules = SupportRules(policy)
    try:
        rules.calendars  # noqa: B018  (build them now so a bad calendar fails at start-up)
    except ValueError as exc:
        raise PolicyError(str(path), [f"calendars: {exc}"]) from None
    return rules


def build_calendar(spec: CalendarSpec) -> BusinessCalendar:
    """Turn a calendar entry of the policy into business-time arithmetic.

    Which rule decides a local date, strongest first: the operator's `open_dates`, the
    operator's `closed_dates`, the official make-up working days (`official_working_days`),
    the public holidays, the weekly `hours`. The operator's own dates beat the `holidays`
    package's data, so a desk that does not staff a make-up Sunday can close it (SC-20).
    """
    if spec.always_open:
        return BusinessCalendar.always(spec.timezone)
    # The weekly hours as the calendar reads them (day names in any case, spelled out or
    # not, a day beating `weekdays` beating `daily`), so make-up days follow the same reading.
    weekly = BusinessCalendar.from_spec(spec.timezone, spec.hours).weekly_hours
    closed: set[date] = set()
    open_dates: dict[date, DayWindows] = {}
    if spec.public_holidays:
        closed |= public_holidays(spec.public_holidays, _HOLIDAY_YEARS)
        if spec.official_working_days:
            workday_hours = _weekday_hours(weekly)
            for day in adjusted_working_days(spec.public_holidays, _HOLIDAY_YEARS):
                open_dates[day] = workday_hours
    closed -= set(open_dates)
    for day in spec.closed_dates:
        open_dates.pop(day, None)
    closed |= set(spec.closed_dates)
    for day, hours in spec.open_dates.items():
        open_dates[day] = parse_windows(hours, where=f"open_dates[{day.isoformat()}]")
    closed -= set(spec.open_dates)
    return BusinessCalendar(
        spec.timezone, weekly, closed_dates=frozenset(closed), extra_open_dates=open_dates
    )


def _weekday_hours(weekly: tuple[DayWindows, ...]) -> DayWindows:
    """A make-up working day works like a normal weekday: the first of Monday..Friday open."""
    for windows in weekly[:5]:
        if windows:
            return windows
    raise ValueError("official working days need weekday hours")


class SupportRules:
    """A validated policy plus the calendars it names, with the contract's questions."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    @cached_property
    def calendars(self) -> dict[str, BusinessCalendar]:
        return {name: build_calendar(spec) for name, spec in self.policy.calendars.items()}

    # --- who may ask (SC-1, SC-2, SC-3) -------------------------------------------------
    def is_admin(self, roles: list[str]) -> bool:
        """SC-1: any of the admin roles of SC-2."""
        return any(role in self.policy.admin_roles for role in roles)

    def categories_for(self, roles: list[str]) -> list[str]:
        """SC-2: the categories these roles may open, in policy order."""
        return [
            key
            for key, category in self.policy.categories.items()
            if any(role in category.allowed_roles for role in roles)
        ]

    # --- severity (SC-15) ----------------------------------------------------------------
    def severities_for(self, category: str, has_agreement: bool) -> list[str]:
        """The severities an organisation may choose for a category, most severe first.

        SC-15: Sev A needs an online-services agreement and a category that allows it.
        """
        spec = self.policy.categories[category]
        allowed = [s for s in SEVERITY_ORDER if s in spec.targets]
        if self.policy.sev_a.requires_agreement and not has_agreement:
            allowed = [s for s in allowed if s != "A"]
        return allowed

    # --- targets (SC-17, SC-19..SC-21) ------------------------------------------------------
    def calendar_name_for(self, category: str, severity: str) -> str:
        return self.policy.categories[category].targets[severity].calendar  # type: ignore[index]

    def calendar_for(self, category: str, severity: str) -> BusinessCalendar:
        target = self.policy.categories[category].targets[severity]  # type: ignore[index]
        return self.calendars[target.calendar]

    def target_minutes(self, category: str, severity: str) -> int:
        """The first-response target in business minutes of its calendar."""
        target = self.policy.categories[category].targets[severity]  # type: ignore[index]
        return self.duration_minutes(target.first_response, target.calendar)

    def duration_minutes(self, duration: Duration, calendar_name: str | None = None) -> int:
        """Minutes of a policy duration; business days are full support days (SC-21) of
        `calendar_name`."""
        if duration.minutes is not None:
            return duration.minutes
        if duration.hours is not None:
            return duration.hours * 60
        if duration.business_days is None or calendar_name is None:
            raise ValueError("business days need a calendar")
        return duration.business_days * self.support_day_minutes(calendar_name)

    def support_day_minutes(self, calendar_name: str) -> int:
        """SC-21 Reading: one support day is the longest day of the calendar's weekly hours."""
        calendar = self.calendars[calendar_name]
        if calendar.always_open:
            return 24 * 60
        return max(sum(end - start for start, end in day) for day in calendar.weekly_hours)

    def first_response_due(self, category: str, severity: str, opened_at: datetime) -> datetime:
        """When the first response is due for a case opened at `opened_at` (SC-17)."""
        calendar = self.calendar_for(category, severity)
        return calendar.add_business_minutes(opened_at, self.target_minutes(category, severity))

    def target_label(self, category: str, severity: str) -> str:
        """The target in words as the contract says it: "1 hour", "1 business day"."""
        target = self.policy.categories[category].targets[severity]  # type: ignore[index]
        duration = target.first_response
        if duration.business_days is not None:
            n = duration.business_days
            return f"{n} business day" + ("s" if n != 1 else "")
        if duration.hours is not None:
            return f"{duration.hours} hour" + ("s" if duration.hours != 1 else "")
        minutes = duration.minutes or 0
        if minutes % 60 == 0:
            hours = minutes // 60
            return f"{hours} hour" + ("s" if hours != 1 else "")
        return f"{minutes} minutes"
