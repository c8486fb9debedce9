"""Sev A paging (SC-17): page on-call at once, escalate until someone acknowledges.

The escalation chain comes from the policy (`paging.escalation`, run `paging.repeats`
times). Who is on call is read when each step is taken, so a handoff in the middle of an
escalation pages the new person. A step is taken by a conditional update on the page's
`step` (its task token), so two workers sweeping at once take it once; the notices of a
step carry unique outbox keys, so they are sent once.

A page is called off (`stop_pages`) when its case leaves Sev A (an SC-16 downgrade or any
other) or is resolved: its Acknowledge answers so and changes nothing from then on, while a
page whose every step ran unanswered may still be acknowledged (SC-17 wants someone on the
case). Raising the case to Sev A again starts a new page.

Each step's DM to a person is its own outbox row; when several of them wait for one person
at once, the delivery side sends them as one message with an Acknowledge all button
(handlers/delivery.py). `acknowledge_group` takes every page such a message lists, by the
same rule as `acknowledge`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine, bindparam, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from chatops.cases.events import record_event
from chatops.cases.notices import GROUP_PAGES, PAGE, PAGE_ACKNOWLEDGED
from chatops.cases.ownership import take_unclaimed
from chatops.cases.states import OPEN_STATUSES
from chatops.db import transaction
from chatops.directory import find_person, is_agent, is_lead
from chatops.outbox import enqueue
from chatops.policy import SupportRules
from chatops.schedule import who_is_on_call
from models import Case, CaseEvent, OutboxMessage, Page, Person

T = TypeVar("T")

# A step that finds nobody to page is skipped at once, at most this many times in a row.
_MAX_EMPTY_STEPS = 20


def total_steps(rules: SupportRules) -> int:
    return len(rules.policy.paging.escalation) * rules.policy.paging.repeats


def start_page(session: Session, case: Case, rules: SupportRules, now: datetime) -> Page:
    """Open a page for a Sev A case and take its first step (same transaction as the
    change that made the case Sev A)."""
    existing = session.exec(
        select(Page).where(
            Page.case_id == case.id,
            Page.acknowledged_at.is_(None),  # type: ignore[union-attr]
            Page.exhausted.is_(False),  # type: ignore[attr-defined]
        )
    ).first()
    if existing is not None:
        return existing
    page = Page(case_id=case.id, step=0, created_at=now, next_step_at=None)  # type: ignore[arg-type]
    session.add(page)
    session.flush()
    _take_steps_from(session, page, case, 0, rules, now)
    return page


def stop_pages(session: Session, case_id: int, now: datetime) -> None:
    """Call off the unacknowledged pages of a case (it is no longer Sev A, or it is
    resolved): their escalation ends and their Acknowledge no longer takes the case.

    A page whose steps all ran unanswered is called off too: its Acknowledge would
    otherwise still make someone owner of a case nobody pages for any more."""
    session.exec(  # type: ignore[call-overload]
        update(Page)
        .where(
            Page.case_id == case_id,
            Page.acknowledged_at.is_(None),  # type: ignore[union-attr]
            Page.stopped_at.is_(None),  # type: ignore[union-attr]
        )
        .values(exhausted=True, next_step_at=None, stopped_at=now)
    )


def _targets(session: Session, spec: str, rules: SupportRules, now: datetime) -> list[str]:
    """Slack ids a step pages; ["<channel>"] for the channel step; [] when nobody is there."""
    if spec == "channel":
        return ["<channel>"]
    if spec == "leads":
        people = session.exec(select(Person)).all()
        return sorted(p.slack_user_id for p in people if is_lead(p))
    rotation = spec.removeprefix("rotation:")
    shift = who_is_on_call(session, rotation, now)
    if shift is None or not shift.person:
        return []
    # SC-17: a page goes to someone who may acknowledge it. An on-call person who is not a
    # support agent (roles changed, the rota not yet) is skipped like a gap, rather than
    # spending the step on a page they would be refused.
    if not is_agent(find_person(session, shift.person)):
        return []
    return [shift.person]


def _take_steps_from(
    session: Session, page: Page, case: Case, step: int, rules: SupportRules, now: datetime
) -> None:
    """Page step `step`; skip straight on past steps with nobody to page."""
    escalation = rules.policy.paging.escalation
    wait = timedelta(minutes=rules.duration_minutes(rules.policy.paging.acknowledge_within))
    last = total_steps(rules)
    for _ in range(_MAX_EMPTY_STEPS):
        if step >= last:
            page.step, page.next_step_at, page.exhausted = step, None, True
            _notice(session, page, case, step, "exhausted", [], now)
            return
        spec = escalation[step % len(escalation)]
        targets = _targets(session, spec, rules, now)
        if targets:
            page.step, page.next_step_at = step, now + wait
            _notice(session, page, case, step, spec, targets, now)
            return
        _notice(session, page, case, step, spec, [], now)  # "nobody on call for …"
        step += 1
    page.step, page.next_step_at = step, now + wait


def _notice(
    session: Session,
    page: Page,
    case: Case,
    step: int,
    spec: str,
    targets: list[str],
    now: datetime,
) -> None:
    base = {"page_id": page.id, "step": step, "spec": spec, "targets": targets}
    enqueue(
        session,
        key=f"page:{page.id}:{step}:thread",
        kind=PAGE,
        case_id=case.id,
        now=now,
        payload={**base, "to": "thread"},
    )
    for user in targets:
        if user != "<channel>":
            enqueue(
                session,
                key=f"page:{page.id}:{step}:dm:{user}",
                kind=PAGE,
                case_id=case.id,
                now=now,
                payload={**base, "to": "user", "user": user},
            )


def hurry_pages_of_leavers(session: Session, now: datetime) -> int:
    """Pages whose current step paged only people who are no longer support agents (a
    roster load took them out, or their role away) take their next step at the next sweep
    instead of waiting out the acknowledge window: nobody left on that step may acknowledge,
    and a Sev A case waits for nobody (SC-17). Returns how many were hurried."""
    waiting = session.exec(
        select(Page).where(
            Page.acknowledged_at.is_(None),  # type: ignore[union-attr]
            Page.exhausted.is_(False),  # type: ignore[attr-defined]
            Page.stopped_at.is_(None),  # type: ignore[union-attr]
            Page.next_step_at > now,  # type: ignore[operator]
        )
    ).all()
    hurried = 0
    for page in waiting:
        step_key = f"page:{page.id}:{page.step}:thread"
        row = session.exec(select(OutboxMessage).where(OutboxMessage.key == step_key)).first()
        targets = ((row.payload or {}).get("targets") or []) if row is not None else []
        people = [t for t in targets if t != "<channel>"]
        if not people or len(people) != len(targets):
            continue  # the channel step, or a step this page never wrote down
        if any(is_agent(find_person(session, person)) for person in people):
            continue
        page.next_step_at = now
        hurried += 1
    return hurried


def escalate_due_pages(engine: Engine, rules: SupportRules, now: datetime) -> int:
    """Take the next step of every unacknowledged page whose wait is over."""
    with Session(engine) as session:
        due = session.exec(
            select(Page.id, Page.step).where(
                Page.next_step_at <= now,  # type: ignore[operator]
                Page.acknowledged_at.is_(None),  # type: ignore[union-attr]
                Page.exhausted.is_(False),  # type: ignore[attr-defined]
            )
        ).all()
    taken = 0
    for page_id, step in due:
        with transaction(engine) as session:
            claimed = session.exec(  # type: ignore[call-overload]
                update(Page)
                .where(
                    Page.id == page_id,
                    Page.step == step,
                    Page.acknowledged_at.is_(None),  # type: ignore[union-attr]
                    Page.exhausted.is_(False),  # type: ignore[attr-defined]
                )
                .values(step=step + 1)
            )
            if claimed.rowcount != 1:
                continue  # another worker took this step, or it was acknowledged
            page = session.get(Page, page_id, populate_existing=True)
            assert page is not None
            case = session.get(Case, page.case_id)
            assert case is not None
            _take_steps_from(session, page, case, step + 1, rules, now)
            taken += 1
    return taken


@dataclass(frozen=True)
class AckOutcome:
    # "acknowledged" | "already" | "not_open" | "called_off" | "not_agent" | "no_page"
    outcome: str
    page: Page | None = None
    case: Case | None = None
    # Slack id of who acknowledged (the winner); for "not_open", of who resolved or
    # closed the case (None when nobody did by hand: the auto-close); for "called_off" of a
    # case below Sev A, of who set its present severity
    by: str | None = None
    claimed: bool = False  # the acknowledger became the owner
    paged_again: bool = False  # "called_off": the case has a newer page since

    @property
    def won(self) -> bool:
        return self.outcome == "acknowledged"


# An acknowledgement locks a page's case before the page, as a claim and a resolve do; an
# Acknowledge all takes several cases, in the order of their pages, and may still meet
# another in a deadlock, which aborts one transaction on PostgreSQL; the conditional
# updates make a retry safe, so it is retried this many times.
_DEADLOCK_RETRIES = 3


def _is_deadlock(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "40P01"


def _retrying_deadlocks(engine: Engine, work: Callable[[Session], T]) -> T:
    """`work` in a transaction of its own, run again when PostgreSQL aborted it as one
    side of a deadlock."""
    for attempt in range(_DEADLOCK_RETRIES):
        try:
            with transaction(engine) as session:
                return work(session)
        except OperationalError as exc:
            if not _is_deadlock(exc) or attempt == _DEADLOCK_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _acknowledge_one(
    session: Session,
    page_id: int,
    person: Person,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> AckOutcome:
    """One page, inside the caller's transaction: `UPDATE … WHERE acknowledged_at IS NULL`
    decides; the winner's audit event, ownership and thread notice are written with it.

    The page's case is locked first (the order of a claim and a resolve: the case, then its
    pages) and read: a page still unacknowledged when its case was resolved or closed (the
    resolve stopped its escalation) is not acknowledged at all ("not_open", with who
    resolved or closed the case): the case is neither taken nor reopened, and the page is
    not recorded as taken on by someone who never worked the case. Nor is a page called off
    before anyone acknowledged it ("called_off"): its case left Sev A, and a case raised
    again has a new page of its own.
    """
    slack_id = person.slack_user_id
    page = session.get(Page, page_id, populate_existing=True)
    if page is None:
        return AckOutcome("no_page")
    case = session.get(Case, page.case_id, with_for_update=True, populate_existing=True)
    assert case is not None
    if page.acknowledged_at is None and case.status not in OPEN_STATUSES:
        return AckOutcome("not_open", page, case, _ended_by(session, case))
    result = session.exec(  # type: ignore[call-overload]
        update(Page)
        .where(
            Page.id == page_id,
            Page.acknowledged_at.is_(None),  # type: ignore[union-attr]
            Page.stopped_at.is_(None),  # type: ignore[union-attr]
        )
        .values(acknowledged_at=now, acknowledged_by=slack_id, next_step_at=None)
    )
    page = session.get(Page, page_id, populate_existing=True)
    assert page is not None
    if result.rowcount != 1:
        if page.acknowledged_at is None:  # so the update found it called off
            return _called_off(session, page, case)
        return AckOutcome("already", page, case, page.acknowledged_by)
    claimed = take_unclaimed(session, case.id, person, now, via="page", status=case.status)  # type: ignore[arg-type]
    record_event(
        session,
        case.id,
        "page_acknowledged",
        now,
        actor_id=person.id,
        detail={"page": page_id, "step": page.step, **(detail or {})},
    )
    enqueue(
        session,
        key=f"page:{page_id}:acknowledged",
        kind=PAGE_ACKNOWLEDGED,
        case_id=case.id,
        now=now,
        payload={"to": "thread", "page_id": page_id, "by": slack_id, "claimed": claimed},
    )
    return AckOutcome("acknowledged", page, case, slack_id, claimed)


def _called_off(session: Session, page: Page, case: Case) -> AckOutcome:
    """The answer to an Acknowledge on a page called off before anyone acknowledged it."""
    if case.severity != "A":
        return AckOutcome("called_off", page, case, _set_by(session, case, "severity_changed"))
    newer = session.exec(
        select(Page.id).where(Page.case_id == case.id, Page.id > page.id)  # type: ignore[operator]
    ).first()
    return AckOutcome("called_off", page, case, paged_again=newer is not None)


def _ended_by(session: Session, case: Case) -> str | None:
    """Slack id of who moved the case to its present (resolved or closed) status, from its
    audit trail; None when nobody did by hand (the auto-close)."""
    return _set_by(session, case, "status_changed")


def _set_by(session: Session, case: Case, kind: str) -> str | None:
    """Slack id of who last set the case's present status ("status_changed") or severity
    ("severity_changed"), from its audit trail; None when nobody did by hand."""
    present = case.status if kind == "status_changed" else case.severity
    event = session.exec(
        select(CaseEvent)
        .where(
            CaseEvent.case_id == case.id,
            CaseEvent.kind == kind,
            CaseEvent.to_value == present,
        )
        .order_by(CaseEvent.id.desc())  # type: ignore[union-attr]
    ).first()
    if event is None or event.actor_id is None:
        return None
    actor = session.get(Person, event.actor_id)
    return actor.slack_user_id if actor is not None else None


def acknowledge(engine: Engine, page_id: int, slack_id: str, now: datetime) -> AckOutcome:
    """Acknowledge a page; the first acknowledgement wins and stops the escalation.

    Any support agent may acknowledge, on call or not (they take the page on; the page
    records who). If the case has no owner yet, the acknowledger becomes its owner. A page
    of a case resolved or closed before anyone acknowledged it is left as it is.
    """

    def work(session: Session) -> AckOutcome:
        person = find_person(session, slack_id)
        if not is_agent(person):
            return AckOutcome("not_agent")
        assert person is not None
        return _acknowledge_one(session, page_id, person, now)

    return _retrying_deadlocks(engine, work)


def group_page_ids(session: Session, row_id: int) -> list[int]:
    """The pages one page DM lists: those of its group, or its own page when it went out
    alone; [] when the row is not a page DM."""
    row = session.get(OutboxMessage, row_id)
    if row is None or row.kind != PAGE:
        return []
    payload = row.payload or {}
    if payload.get("to") != "user" or "page_id" not in payload:
        return []
    listed = payload.get(GROUP_PAGES) or [[payload["page_id"], payload.get("step", 0)]]
    return list(dict.fromkeys(int(page_id) for page_id, _step in listed))


@dataclass(frozen=True)
class GroupAckOutcome:
    """What Acknowledge all did: the pages this click won, those someone had already
    acknowledged (reported, never taken over), those whose case was resolved or closed
    before anyone acknowledged them and those called off since (both reported, left as
    they were)."""

    outcome: str  # "acknowledged" (even if every page was taken already) | "not_agent" | "no_page"
    won: list[AckOutcome] = field(default_factory=list)
    already: list[AckOutcome] = field(default_factory=list)
    ended: list[AckOutcome] = field(default_factory=list)
    called_off: list[AckOutcome] = field(default_factory=list)

    @property
    def claimed(self) -> int:
        return sum(1 for item in self.won if item.claimed)


def acknowledge_group(engine: Engine, row_id: int, slack_id: str, now: datetime) -> GroupAckOutcome:
    """Acknowledge every page a grouped page DM (outbox row `row_id`) lists, in one
    transaction and by the same rule as `acknowledge`: agents only, first acknowledgement
    wins per page. Pages are taken in id order so two such clicks queue rather than
    deadlock; a double click finds every page already acknowledged by the first."""

    def work(session: Session) -> GroupAckOutcome:
        person = find_person(session, slack_id)
        if not is_agent(person):
            return GroupAckOutcome("not_agent")
        assert person is not None
        page_ids = group_page_ids(session, row_id)
        if not page_ids:
            return GroupAckOutcome("no_page")
        won, already, ended, called_off = [], [], [], []
        for page_id in sorted(page_ids):
            one = _acknowledge_one(session, page_id, person, now, {"group": row_id})
            if one.won:
                won.append(one)
            elif one.outcome == "already":
                already.append(one)
            elif one.outcome == "not_open":
                ended.append(one)
            elif one.outcome == "called_off":
                called_off.append(one)
        return GroupAckOutcome("acknowledged", won, already, ended, called_off)

    return _retrying_deadlocks(engine, work)


# Built once: every winning Claim click asks it, Sev A or not.
_OPEN_PAGES_OF_CASE = select(Page.id).where(
    Page.case_id == bindparam("case_id"),
    Page.acknowledged_at.is_(None),  # type: ignore[union-attr]
    Page.exhausted.is_(False),  # type: ignore[attr-defined]
)


def acknowledge_by_claim(session: Session, case_id: int, slack_id: str, now: datetime) -> None:
    """Claiming a Sev A case acknowledges its open page: the owner has it in hand."""
    pages = session.exec(_OPEN_PAGES_OF_CASE, params={"case_id": case_id}).all()
    for page_id in pages:
        result = session.exec(  # type: ignore[call-overload]
            update(Page)
            .where(
                Page.id == page_id,
                Page.acknowledged_at.is_(None),  # type: ignore[union-attr]
                Page.stopped_at.is_(None),  # type: ignore[union-attr]
            )
            .values(acknowledged_at=now, acknowledged_by=slack_id, next_step_at=None)
        )
        if result.rowcount == 1:
            enqueue(
                session,
                key=f"page:{page_id}:acknowledged",
                kind=PAGE_ACKNOWLEDGED,
                case_id=case_id,
                now=now,
                payload={"to": "thread", "page_id": page_id, "by": slack_id, "claimed": True},
            )
