"""The first-response clock of a stored case: severity changes and pauses (SC-16, SC-17).

The case keeps `sla_elapsed_minutes` (business time already counted against its target)
and `sla_checkpoint_at` (up to when). Every change first banks the business time since the
checkpoint on the calendar that was in force, then computes the new due from the banked
time. So however many changes a case sees, each stretch of time is measured on the
calendar that applied to it:

* **severity change**: the time already spent counts against the new target; the rest runs
  on the new severity's calendar. If the time spent already exceeds the new target, the
  case is due (breached) at the moment of the change.
* **pause** (awaiting customer, only where the policy says so for that category and
  severity): the due is cleared while paused, and recomputed from the banked time on resume.

Each change writes an audit event with the old and the new due.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from chatops.cases import states
from chatops.cases.events import record_event
from chatops.cases.notices import CARD_REFRESH, REQUESTER_NOTICE
from chatops.cases.severity import on_severity_set
from chatops.db import transaction
from chatops.directory import find_person, is_agent, organisation_of
from chatops.outbox import enqueue
from chatops.policy import SupportRules
from chatops.sla import elapsed_business_minutes, recompute_due_on_severity_change
from models import Case, CasePause, Person


class ClockChangeRefused(Exception):
    """The change is not allowed; the message says why, for the person who asked."""


@dataclass(frozen=True)
class DueChange:
    old_due: datetime | None
    new_due: datetime | None
    answered: bool = False  # the first response was given: nothing is due


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _bank(case: Case, rules: SupportRules, now: datetime) -> float:
    """Business minutes counted so far, measured on the calendar in force since the
    checkpoint; a paused clock banks nothing."""
    checkpoint = case.sla_checkpoint_at or case.opened_at
    if case.sla_paused or now <= checkpoint:
        return case.sla_elapsed_minutes
    calendar = rules.calendar_for(case.category, case.severity)
    return case.sla_elapsed_minutes + elapsed_business_minutes(calendar, checkpoint, now)


def run_clock(case: Case, rules: SupportRules, elapsed: float, now: datetime) -> None:
    """(Re)start the clock at `now` with `elapsed` business minutes already spent: set the
    due, the pre-breach warning instant, and forget the notices sent for an earlier due.

    The warning comes `notifications.sla_warning_before[severity]` of *business* time before
    the due, so a clock that is stopped overnight does not warn at 03:00 (SC-17, SC-19), nor
    at the instant its calendar closes. A case already inside that lead is warned now if
    its calendar is open, else when it opens.
    """
    calendar = rules.calendar_for(case.category, case.severity)
    target = rules.target_minutes(case.category, case.severity)
    due = recompute_due_on_severity_change(calendar, now, now, elapsed, target)
    assert due is not None  # no pauses are passed, so the due is always defined
    lead_spec = rules.policy.notifications.sla_warning_before.get(case.severity)  # type: ignore[call-overload]
    lead = (
        rules.duration_minutes(lead_spec, rules.calendar_name_for(case.category, case.severity))
        if lead_spec
        else 0
    )
    remaining = target - elapsed
    case.sla_elapsed_minutes = elapsed
    case.sla_checkpoint_at = now
    case.first_response_due = due
    # Two business hours before an 11:00 due are as much 09:00 as the previous day's closing
    # instant: the warning comes at the opening, when someone is there to act on it.
    case.sla_warn_at = calendar.next_opening(
        calendar.add_business_minutes(now, max(remaining - lead, 0))
    )
    case.sla_warning_sent_at = None
    case.sla_breach_sent_at = None


def _stop_clock(case: Case) -> None:
    case.first_response_due = None
    case.sla_warn_at = None


def _agent(session: Session, slack_user_id: str) -> Person:
    person = find_person(session, slack_user_id)
    if not is_agent(person):
        raise ClockChangeRefused("Only support agents can change a case's severity or clock.")
    assert person is not None
    return person


def change_severity(
    engine: Engine,
    case_id: int,
    new_severity: str,
    actor_slack_id: str,
    reason: str,
    rules: SupportRules,
    now: datetime,
    quiet_for: timedelta | None = None,
    from_severity: str | None = None,
) -> DueChange:
    """Set a new severity (agent only, with a reason) and recompute the due (SC-15, SC-16).

    `quiet_for`: the change is for the customer's silence (SC-16's downgrade offer), so it
    is refused if the customer has written within that time — checked on the locked case,
    so a message arriving after the offer keeps the case at its severity. `from_severity`:
    the change was offered for a case at that severity (the offer lowers Sev A), so it is
    refused once the case is at another one (someone changed it since): the offer, or the
    form an agent chose the new severity in, was about a case that is no longer so."""
    reason = reason.strip()
    if not reason:
        raise ClockChangeRefused("Give a reason for the severity change.")
    with transaction(engine) as session:
        actor = _agent(session, actor_slack_id)
        case = session.get(Case, case_id, with_for_update=True)
        if case is None:
            raise ClockChangeRefused("That case does not exist.")
        if case.status not in states.OPEN_STATUSES:
            # a modal left open while someone resolved the case, or a forged one: raising a
            # resolved case to Sev A would page the on-call engineer for nothing
            raise ClockChangeRefused(
                states.not_open_reason(case.number, case.status, "change its severity")
            )
        requester = session.get(Person, case.requester_id)
        organisation = organisation_of(session, requester) if requester else None
        allowed = rules.severities_for(
            case.category, bool(organisation and organisation.online_services_agreement)
        )
        if new_severity not in allowed:
            raise ClockChangeRefused(
                f"Sev {new_severity} is not available for this case "
                f"(allowed: {', '.join(allowed)})."
            )
        if new_severity == case.severity:
            raise ClockChangeRefused(f"{case.number} is already Sev {new_severity}.")
        if from_severity is not None and case.severity != from_severity:
            raise ClockChangeRefused(
                f"{case.number} is Sev {case.severity} now, not Sev {from_severity}: someone "
                "changed it since."
            )
        seen = case.customer_last_seen_at
        if quiet_for is not None and seen is not None and now - seen < quiet_for:
            minutes = int((now - seen).total_seconds() // 60)
            raise ClockChangeRefused(
                f"The customer wrote on {case.number} {minutes} minutes ago, so it stays "
                f"Sev {case.severity}: it is lowered for {int(quiet_for.total_seconds() // 60)} "
                "minutes without a word from them (SC-16)."
            )
        old_severity, old_due = case.severity, case.first_response_due
        elapsed = _bank(case, rules, now)
        case.severity = new_severity
        case.sla_elapsed_minutes = elapsed
        case.sla_checkpoint_at = now
        if case.sla_paused and not _pauses(rules, case):
            _close_pause(session, case, now)  # e.g. raised to Sev A, whose clock never stops
        if case.first_responded_at is not None:
            pass  # the first response was given: nothing is due any more
        elif case.sla_paused:
            _stop_clock(case)
        else:
            run_clock(case, rules, elapsed, now)
        on_severity_set(session, case, old_severity, rules, now)
        record_event(
            session,
            case_id,
            "severity_changed",
            now,
            actor_id=actor.id,
            from_value=old_severity,
            to_value=new_severity,
            detail={
                "reason": reason[:500],
                "old_due": _iso(old_due),
                "new_due": _iso(case.first_response_due),
                "elapsed_business_minutes": round(elapsed, 3),
            },
        )
        enqueue(
            session,
            key=f"{case_id}:card:severity:{now.isoformat()}",
            kind=CARD_REFRESH,
            case_id=case_id,
            now=now,
        )
        # The requester was promised a severity and a first-response time (their DM when
        # the case opened): they are told what holds now (SC-23: admins kept informed).
        enqueue(
            session,
            key=f"{case_id}:requester:severity:{now.isoformat()}",
            kind=REQUESTER_NOTICE,
            case_id=case_id,
            now=now,
            payload={"event": "severity", "from": old_severity, "to": new_severity},
        )
        return DueChange(old_due, case.first_response_due, case.first_responded_at is not None)


def _pauses(rules: SupportRules, case: Case) -> bool:
    target = rules.policy.categories[case.category].targets[case.severity]  # type: ignore[index]
    return target.pause_while_awaiting_customer


def _close_pause(session: Session, case: Case, now: datetime) -> None:
    open_pause = session.exec(
        select(CasePause).where(CasePause.case_id == case.id, CasePause.ended_at.is_(None))  # type: ignore[union-attr]
    ).first()
    if open_pause is not None:
        open_pause.ended_at = now
    case.sla_paused = False
    case.sla_checkpoint_at = now


def _on_locked_case(
    engine: Engine, case_id: int, change: Callable[[Session, Case], DueChange]
) -> DueChange:
    """`change` in a transaction of its own, on the case locked for it."""
    with transaction(engine) as session:
        case = session.get(Case, case_id, with_for_update=True)
        if case is None:
            raise ClockChangeRefused("That case does not exist.")
        return change(session, case)


def pause_clock(engine: Engine, case_id: int, rules: SupportRules, now: datetime) -> DueChange:
    """Stop the first-response clock while the case awaits the customer, where the policy
    says so; otherwise leave it running. Idempotent."""
    return _on_locked_case(
        engine, case_id, lambda session, case: pause_case_clock(session, case, rules, now)
    )


def pause_case_clock(session: Session, case: Case, rules: SupportRules, now: datetime) -> DueChange:
    """`pause_clock` inside the caller's transaction, on a case it has locked: the status
    change that pauses the clock and the pause commit together or not at all."""
    case_id = case.id
    old_due = case.first_response_due
    if case.sla_paused or not _pauses(rules, case):
        return DueChange(old_due, old_due)
    case.sla_elapsed_minutes = _bank(case, rules, now)
    case.sla_checkpoint_at = now
    case.sla_paused = True
    already_breached = old_due is not None and old_due <= now
    if not already_breached:  # a breach that happened stays on record with its instant
        _stop_clock(case)
    session.add(CasePause(case_id=case_id, started_at=now))
    record_event(
        session,
        case_id,
        "clock_paused",
        now,
        detail={"old_due": _iso(old_due), "new_due": _iso(case.first_response_due)},
    )
    return DueChange(old_due, case.first_response_due)


def resume_clock(engine: Engine, case_id: int, rules: SupportRules, now: datetime) -> DueChange:
    """Restart a paused clock; the due moves by the business time spent paused."""
    return _on_locked_case(
        engine, case_id, lambda session, case: resume_case_clock(session, case, rules, now)
    )


def resume_case_clock(
    session: Session, case: Case, rules: SupportRules, now: datetime
) -> DueChange:
    """`resume_clock` inside the caller's transaction, on a case it has locked."""
    case_id = case.id
    if not case.sla_paused:
        return DueChange(case.first_response_due, case.first_response_due)
    old_due = case.first_response_due
    _close_pause(session, case, now)
    if old_due is None and case.first_responded_at is None:
        run_clock(case, rules, case.sla_elapsed_minutes, now)
    record_event(
        session,
        case_id,
        "clock_resumed",
        now,
        detail={"old_due": _iso(old_due), "new_due": _iso(case.first_response_due)},
    )
    return DueChange(old_due, case.first_response_due)


def end_wait(session: Session, case: Case, now: datetime) -> None:
    """The case stops waiting for the customer because it is resolved: the waiting stretch
    is recorded as ending now, and no clock runs again (the resolve answered the case)."""
    if not case.sla_paused:
        return
    due = case.first_response_due
    _close_pause(session, case, now)
    record_event(
        session,
        case.id,
        "clock_resumed",
        now,
        detail={"old_due": _iso(due), "new_due": _iso(due), "reason": "resolved"},
    )
