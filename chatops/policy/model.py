"""The support contract's shape (SC-2, SC-8..SC-21), validated by pydantic.

The values live in `default.yml`; this module only knows what a valid policy looks like and
answers questions about it. Nothing here hard-codes a target, a calendar or a time zone.
"""

from __future__ import annotations

from datetime import date
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SEVERITY_ORDER = ("A", "B", "C")  # most severe first (SC-12..SC-14)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(Strict):
    """A span given in exactly one unit. `business_days` means full support days of the
    calendar it runs on (SC-21 Reading)."""

    minutes: int | None = None
    hours: int | None = None
    business_days: int | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Duration:
        given = [v for v in (self.minutes, self.hours, self.business_days) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of minutes, hours, business_days")
        if given[0] <= 0:
            raise ValueError("must be positive")
        return self


class RealTimeDuration(Duration):
    """A span of real time (a reminder interval, a silence, a page's wait): nothing names a
    calendar for it, so `business_days` has no length here."""

    @model_validator(mode="after")
    def _no_business_days(self) -> RealTimeDuration:
        if self.business_days is not None:
            raise ValueError("business_days needs a calendar; give minutes or hours here")
        return self


class CalendarSpec(Strict):
    label: str
    timezone: str
    always_open: bool = False
    hours: dict[str, str] = {}
    public_holidays: str | None = None
    official_working_days: bool = False
    closed_dates: list[date] = []
    open_dates: dict[date, str] = {}

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _hours_or_always(self) -> CalendarSpec:
        if not self.always_open and not self.hours:
            raise ValueError("a calendar needs `hours` unless it is `always_open`")
        if self.always_open:
            # a 24×7 calendar never closes: hours or dates given with it would be dropped
            # without a word, and an operator would believe them in force
            given = [
                name
                for name in ("hours", "public_holidays", "closed_dates", "open_dates")
                if getattr(self, name)
            ] + (["official_working_days"] if self.official_working_days else [])
            if given:
                raise ValueError(
                    f"an `always_open` calendar is open around the clock every day: "
                    f"remove {', '.join(f'`{name}`' for name in given)} or `always_open`"
                )
        return self


class SeveritySpec(Strict):
    label: str = Field(max_length=40)
    # Shown as a radio option's description in the intake modal: Slack allows 75 characters.
    summary: str = Field(max_length=75)
    examples: list[str] = []


class TopicSpec(Strict):
    label: str
    examples: str = ""


class TargetSpec(Strict):
    first_response: Duration
    calendar: str
    # Whether the first-response clock stops while the case awaits the customer.
    pause_while_awaiting_customer: bool = True


class CategorySpec(Strict):
    label: str
    description: str
    allowed_roles: list[str]
    max_severity: Literal["A", "B", "C"]
    topics: dict[str, TopicSpec]
    targets: dict[Literal["A", "B", "C"], TargetSpec]

    @field_validator("topics")
    @classmethod
    def _some_topics(cls, value: dict[str, TopicSpec]) -> dict[str, TopicSpec]:
        if not value:
            raise ValueError("a category needs at least one topic")
        return value


class OutOfScopeSpec(Strict):
    label: str
    reason: str
    owner: str


class SevARules(Strict):
    requires_agreement: bool = True
    requires: list[Literal["business_impact", "available_contact"]] = []
    downgrade_after_silence: RealTimeDuration


class NotificationRules(Strict):
    sla_warning_before: dict[Literal["A", "B", "C"], Duration]
    sev_a_update_every: RealTimeDuration


class PagingRules(Strict):
    acknowledge_within: RealTimeDuration
    escalation: list[str]
    repeats: int = Field(ge=1, le=10)

    @field_validator("escalation")
    @classmethod
    def _steps(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one escalation step")
        for step in value:
            if not (step in ("leads", "channel") or (step.startswith("rotation:") and step[9:])):
                raise ValueError(
                    f"unknown escalation step {step!r} (use rotation:NAME, leads or channel)"
                )
        return value


class LifecycleRules(Strict):
    auto_close_after_days: int = Field(ge=1, le=365)


class PhoneLine(Strict):
    label: str
    calendar: str


class PhoneSpec(Strict):
    number: str
    lines: dict[str, PhoneLine]


class Link(Strict):
    label: str
    url: str


class SelfHelpSpec(Strict):
    links: list[Link]
    service_health_url: str


class Policy(Strict):
    """A whole, cross-checked policy."""

    version: Literal[1]
    name: str
    support_timezone: str
    support_timezone_label: str
    admin_roles: dict[str, str]
    calendars: dict[str, CalendarSpec]
    severities: dict[Literal["A", "B", "C"], SeveritySpec]
    categories: dict[str, CategorySpec]
    out_of_scope: dict[str, OutOfScopeSpec]
    sev_a: SevARules
    notifications: NotificationRules
    lifecycle: LifecycleRules
    paging: PagingRules
    phone: PhoneSpec
    self_help: SelfHelpSpec

    @field_validator("support_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return CalendarSpec._known_zone(value)

    @model_validator(mode="after")
    def _references(self) -> Policy:
        problems = []
        for key, category in self.categories.items():
            for role in category.allowed_roles:
                if role not in self.admin_roles:
                    problems.append(f"categories.{key}.allowed_roles: unknown role {role!r}")
            allowed = SEVERITY_ORDER[SEVERITY_ORDER.index(category.max_severity) :]
            for severity in allowed:
                if severity not in category.targets:
                    problems.append(f"categories.{key}.targets: no target for Sev {severity}")
            for severity, target in category.targets.items():
                if severity not in allowed:
                    problems.append(
                        f"categories.{key}.targets.{severity}: above max_severity "
                        f"{category.max_severity}"
                    )
                if target.calendar not in self.calendars:
                    problems.append(
                        f"categories.{key}.targets.{severity}.calendar: "
                        f"unknown calendar {target.calendar!r}"
                    )
        for key, line in self.phone.lines.items():
            if line.calendar not in self.calendars:
                problems.append(f"phone.lines.{key}.calendar: unknown calendar {line.calendar!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self
