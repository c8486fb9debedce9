"""The open work of the desk as of an instant: what a shift handoff hands over."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, select

from chatops.cases.states import OPEN_STATUSES
from chatops.policy import SEVERITY_ORDER
from models import Case, Page


@dataclass
class OpenWork:
    by_severity: dict[str, int] = field(default_factory=dict)
    unclaimed: list[Case] = field(default_factory=list)  # most urgent first
    at_risk: list[Case] = field(default_factory=list)  # warning time passed, not yet due
    in_breach: list[Case] = field(default_factory=list)
    sev_a: list[Case] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)  # opened during the last shift

    @property
    def total(self) -> int:
        return sum(self.by_severity.values())


def _urgency(case: Case) -> tuple[int, datetime]:
    far = datetime.max.replace(tzinfo=case.opened_at.tzinfo)
    return (SEVERITY_ORDER.index(case.severity), case.first_response_due or far)


def open_work(session: Session, now: datetime, shift_started: datetime | None) -> OpenWork:
    """Open cases by severity, the unclaimed, those at risk or in breach with their due,
    Sev A in flight, and the pages of the shift that is ending."""
    cases = session.exec(select(Case).where(Case.status.in_(OPEN_STATUSES))).all()  # type: ignore[attr-defined]
    work = OpenWork(by_severity={s: 0 for s in SEVERITY_ORDER})
    for case in sorted(cases, key=_urgency):
        work.by_severity[case.severity] = work.by_severity.get(case.severity, 0) + 1
        if case.assignee_id is None:
            work.unclaimed.append(case)
        if case.severity == "A":
            work.sev_a.append(case)
        due, warn = case.first_response_due, case.sla_warn_at
        if case.first_responded_at is None and due is not None:
            if due <= now:
                work.in_breach.append(case)
            elif warn is not None and warn <= now:
                work.at_risk.append(case)
    if shift_started is not None:
        work.pages = list(
            session.exec(
                select(Page)
                .where(Page.created_at >= shift_started, Page.created_at <= now)  # type: ignore[operator]
                .order_by(Page.id)  # type: ignore[arg-type]
            ).all()
        )
    return work
