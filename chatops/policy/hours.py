"""Support lines and whether they are open (SC-19..SC-21), for `/support hours`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chatops.policy.rules import SupportRules


@dataclass(frozen=True)
class SupportLine:
    """One way to reach support with its hours: e.g. "Technical, Sev B/C"."""

    label: str
    hours: str
    open_now: bool
    next_opening: datetime | None  # None when open now


def support_lines(rules: SupportRules, now: datetime) -> list[SupportLine]:
    """Each category's severities grouped by the calendar they run on, then the phone
    lines; in policy order."""
    policy = rules.policy
    lines: list[SupportLine] = []
    for category in policy.categories.values():
        by_calendar: dict[str, list[str]] = {}
        for severity, target in category.targets.items():
            by_calendar.setdefault(target.calendar, []).append(severity)
        for calendar_name, severities in by_calendar.items():
            lines.append(
                _line(
                    rules,
                    f"{category.label}, Sev {'/'.join(severities)}",
                    calendar_name,
                    now,
                )
            )
    for phone_line in policy.phone.lines.values():
        lines.append(_line(rules, phone_line.label, phone_line.calendar, now))
    return lines


def _line(rules: SupportRules, label: str, calendar_name: str, now: datetime) -> SupportLine:
    calendar = rules.calendars[calendar_name]
    is_open = calendar.is_open(now)
    return SupportLine(
        label=label,
        hours=rules.policy.calendars[calendar_name].label,
        open_now=is_open,
        next_opening=None if is_open else calendar.next_opening(now),
    )
