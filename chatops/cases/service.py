"""Opening and claiming cases. Each change writes its audit event and the notifications it
causes in the same transaction (the outbox)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, select

from chatops.cases.clock import run_clock
from chatops.cases.events import record_event
from chatops.cases.intake import (
    IntakeForm,
    IntakeRejected,
    OutOfScope,
    check_intake,
    out_of_scope_key,
    refusal_for_requester,
)
from chatops.cases.notices import CARD, REQUESTER_NOTICE
from chatops.cases.ownership import take_unclaimed
from chatops.cases.severity import on_severity_set
from chatops.cases.states import OPEN_STATUSES
from chatops.db import reading, transaction
from chatops.directory import find_person, find_requester, is_agent
from chatops.outbox import enqueue
from chatops.paging import acknowledge_by_claim
from chatops.policy import SupportRules
from models import Case, CaseEvent, Person

_CASES = Case.__table__  # type: ignore[attr-defined]
_INSERT_CASE = _CASES.insert().returning(_CASES.c.id)


def open_case(
    engine: Engine, requester_slack_id: str, form: IntakeForm, rules: SupportRules, now: datetime
) -> Case:
    """Create a case from an intake submission.

    Raises IntakeRejected with field errors, or OutOfScope when the topic is one support does
    not work (SC-11). Nothing is written unless every check passes.

    Who is asking and whether the form passes are read and worked out before the write
    transaction, so that only the inserts hold the database's write lock (on SQLite every
    process's writers take turns on it). A roster change landing in between is read as if
    it had come a moment later.
    """
    with reading(engine) as session:
        person, organisation = find_requester(session, requester_slack_id)
    refusal = refusal_for_requester(person, organisation, rules)
    if refusal is not None:
        raise IntakeRejected({"_": refusal})
    assert person is not None and organisation is not None
    out_of_scope = out_of_scope_key(form.topic, rules)
    if out_of_scope is not None:
        raise OutOfScope(out_of_scope)
    errors = check_intake(form, person, organisation, rules)
    if errors:
        raise IntakeRejected(errors)
    assert form.category and form.severity
    case = Case(
        organisation_id=organisation.id,  # type: ignore[arg-type]
        requester_id=person.id,  # type: ignore[arg-type]
        category=form.category,
        topic=form.topic or "",
        severity=form.severity,
        title=form.title or "",
        description=form.description or "",
        contact_method=form.contact_method or "chat",
        contact_phone=form.phone,
        contact_email=form.email,
        business_impact=form.business_impact if form.severity == "A" else None,
        available_contact=form.available_contact if form.severity == "A" else None,
        opened_at=now,
        customer_last_seen_at=now,
    )
    run_clock(case, rules, 0.0, now)
    with transaction(engine) as session:
        # Plain INSERTs rather than the ORM's unit of work, which was a third of opening a
        # case under load; the case then joins the session as the row just written, so a
        # change made below (a Sev A case's reminder) is saved as an UPDATE.
        values = {column.key: getattr(case, column.key) for column in _CASES.columns}
        del values["id"]
        case.id = session.execute(_INSERT_CASE, values).scalar_one()
        make_transient_to_detached(case)
        session.add(case)
        record_event(
            session,
            case.id,
            "opened",
            now,
            actor_id=person.id,
            to_value="new",
            detail={
                "severity": case.severity,
                "category": case.category,
                "first_response_due": case.first_response_due.isoformat()
                if case.first_response_due
                else None,
            },
        )
        enqueue(session, key=f"{case.id}:card", kind=CARD, case_id=case.id, now=now)
        # A Sev A case's page is enqueued right behind its card, ahead of the requester's
        # notice: delivery goes in row order, and the on-call person comes first.
        on_severity_set(session, case, None, rules, now)
        enqueue(
            session,
            key=f"{case.id}:requester:opened",
            kind=REQUESTER_NOTICE,
            case_id=case.id,
            now=now,
            payload={"event": "opened"},
        )
        return case


@dataclass(frozen=True)
class ClaimOutcome:
    """The result of a Claim click: `won` is True for exactly one clicker."""

    outcome: str  # "claimed" | "already_claimed" | "not_open" | "not_agent" | "no_case"
    case: Case | None = None
    owner: Person | None = None

    @property
    def won(self) -> bool:
        return self.outcome == "claimed"


def claim_case(engine: Engine, case_id: int, agent_slack_id: str, now: datetime) -> ClaimOutcome:
    """Make the agent the case owner if nobody is; first click wins (take_unclaimed).

    A click that cannot win (not an agent, no such case, a case that is resolved or closed
    or has an owner: a card seen before it changed, a double click) is answered from a
    read. Only a click that may win writes, so a burst of late clicks does not queue on the
    database's write lock (one writer at a time on SQLite) behind the one that won. A case
    that is no longer open is never taken, owner or not ("not_open"): the conditional
    UPDATE checks the status too, so a click racing the Resolve cannot bring it back.
    """
    with reading(engine) as session:
        agent = find_person(session, agent_slack_id)
        if not is_agent(agent):
            return ClaimOutcome("not_agent")
        case = session.get(Case, case_id)
        if case is None:
            return ClaimOutcome("no_case")
        if case.status not in OPEN_STATUSES or case.assignee_id is not None:
            return _refused(session, case)
        status = case.status
    assert agent is not None
    with transaction(engine) as session:
        # the conditional UPDATE decides; the agent read above stands (roles do not change
        # within a click)
        won = take_unclaimed(session, case_id, agent, now, status=status)
        case = session.get(Case, case_id, populate_existing=True)
        if case is None:
            return ClaimOutcome("no_case")
        if not won:
            return _refused(session, case)
        acknowledge_by_claim(session, case_id, agent.slack_user_id, now)
        return ClaimOutcome("claimed", case, agent)


def _refused(session: Session, case: Case) -> ClaimOutcome:
    """Why a click did not take the case: it is resolved or closed, or someone owns it."""
    owner = session.get(Person, case.assignee_id) if case.assignee_id else None
    if case.status not in OPEN_STATUSES:
        return ClaimOutcome("not_open", case, owner)
    return ClaimOutcome("already_claimed", case, owner)


def get_case(session: Session, case_id: int) -> Case | None:
    return session.get(Case, case_id)


def case_events(session: Session, case_id: int) -> list[CaseEvent]:
    """The audit trail of a case, oldest first."""
    return list(
        session.exec(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)  # type: ignore[arg-type]
        ).all()
    )
