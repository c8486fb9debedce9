"""The life of a case after it is opened (DESIGN; SC-16, SC-23).

new → claimed → in_progress ⇄ awaiting_customer → resolved → closed, with reopen. Every
transition and field change writes a CaseEvent (who, when, from → to, why) and its
notifications in the same transaction. Rules:

* Agents reply to the requester (delivered in the requester's DM thread for the case) or
  leave internal notes (the triage thread only). The first reply stops the first-response
  clock; an agent who replies to an unclaimed case becomes its owner.
* *Awaiting customer* pauses the clock where the policy says so; the requester's reply
  resumes it, and counts as the customer being heard from (SC-16).
* Resolve needs a resolution note; the requester is told and asked for a survey (one answer
  per case). Resolved cases close after `lifecycle.auto_close_after_days`; the requester or an
  agent may reopen a resolved case until then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, update
from sqlmodel import Session, select

from chatops.cases import states
from chatops.cases.clock import end_wait, pause_case_clock, resume_case_clock
from chatops.cases.events import record_event
from chatops.cases.notices import (
    CARD_REFRESH,
    CASE_MESSAGE,
    CASE_REOPENED,
    DM_GUIDANCE,
    REQUESTER_NOTICE,
)
from chatops.cases.ownership import take_unclaimed
from chatops.cases.severity import next_update_reminder
from chatops.db import insert_if_absent, transaction
from chatops.directory import find_person, is_admin_of, is_agent
from chatops.outbox import enqueue
from chatops.paging import acknowledge_by_claim, stop_pages
from chatops.policy import SupportRules
from models import Case, CaseEvent, CaseMessage, Person, SurveyAnswer

MESSAGE_MAX = 3000  # what the Reply, Note and Resolve modals take; delivered whole
# A requester's message in their case's DM thread is kept and relayed whole up to Slack's
# own limit for a message; the relay says how much of a longer one was not kept.
CUSTOMER_MESSAGE_MAX = 40_000


# The one notice a requester who no longer speaks for the case's organisation still gets:
# why what they write in the case's thread goes nowhere.
NO_LONGER_ADMIN = "no_longer_admin"


# The one answer to a requester's button or form (rate, comment, reopen) pressed by someone
# whose case it is not, and to one carrying an id no case has (DESIGN: org isolation): told
# apart, they would tell a forger which case ids exist.
NOT_YOUR_CASE = "That is not a case of yours, or it does not exist. Nothing was changed."


class CaseActionRefused(Exception):
    """The action is not allowed now or for this person; the message says why."""


@dataclass(frozen=True)
class Done:
    case: Case
    message: str = ""


def _agent(session: Session, slack_id: str) -> Person:
    person = find_person(session, slack_id)
    if not is_agent(person):
        raise CaseActionRefused("Only support agents can do that. Nothing was changed.")
    assert person is not None
    return person


def _case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id, with_for_update=True)
    if case is None:
        raise CaseActionRefused("That case does not exist.")
    return case


def _requesters_case(
    session: Session,
    case_id: int,
    user_id: str,
    rules: SupportRules,
    to_do: str,
    lock: bool = False,
    then: str = "",
) -> tuple[Case, Person]:
    """The case `user_id` opened and its requester, while they still speak for its
    organisation. Anyone else gets NOT_YOUR_CASE, as for a case that does not exist. The
    requester who has left the roster, lost the admin role or moved to another organisation
    since is told they may no longer `to_do` it (SC-1), then `then`."""
    case = session.get(Case, case_id, with_for_update=lock)
    requester = session.get(Person, case.requester_id) if case is not None else None
    if case is None or requester is None or requester.slack_user_id != user_id:
        raise CaseActionRefused(NOT_YOUR_CASE)
    if not is_admin_of(requester, case.organisation_id, set(rules.policy.admin_roles)):
        raise CaseActionRefused(
            f"The support desk's directory no longer lists you as one of the admins of the "
            f"organisation {case.number} was opened for, so you cannot {to_do} it (SC-1)."
            f"{then} Nothing was changed."
        )
    return case, requester


def _text(text: str, what: str) -> str:
    text = (text or "").strip()
    if not text:
        raise CaseActionRefused(f"Write the {what} first.")
    if len(text) > MESSAGE_MAX:
        raise CaseActionRefused(f"Keep the {what} under {MESSAGE_MAX} characters.")
    return text


def _event(
    session: Session,
    case: Case,
    actor: Person | None,
    kind: str,
    now: datetime,
    old: str | None = None,
    new: str | None = None,
    **detail: object,
) -> None:
    record_event(
        session,
        case.id,
        kind,
        now,
        actor_id=actor.id if actor else None,
        from_value=old,
        to_value=new,
        detail=dict(detail),
    )


def _first_response(session: Session, case: Case, agent: Person, now: datetime, via: str) -> bool:
    """Record the case's first response (SC-17: it stops the first-response clock), on time
    or not; False when it had one already."""
    if case.first_responded_at is not None:
        return False
    case.first_responded_at = now
    due = case.first_response_due
    _event(
        session,
        case,
        agent,
        "first_response",
        now,
        due=due.isoformat() if due else None,
        on_time=bool(due is None or now <= due),
        via=via,
    )
    return True


def _set_status(
    session: Session,
    case: Case,
    actor: Person | None,
    status: str,
    now: datetime,
    why: str | None = None,
) -> None:
    old = case.status
    if old == status:
        return
    case.status = status
    _event(session, case, actor, "status_changed", now, old, status, reason=why)
    enqueue(
        session,
        key=f"{case.id}:card:{status}:{now.isoformat()}",
        kind=CARD_REFRESH,
        case_id=case.id,
        now=now,
    )


def _message(
    session: Session,
    case: Case,
    author: str,
    kind: str,
    text: str,
    now: datetime,
    event_id: str | None = None,
    left_out: int = 0,
) -> CaseMessage | None:
    """Store a message once (a Slack event id is unique) and post it in the triage thread;
    `left_out` characters of it were not kept (the relay says so)."""
    if event_id is not None:
        if not insert_if_absent(
            session,
            CaseMessage,
            {
                "case_id": case.id,
                "at": now,
                "author": author,
                "kind": kind,
                "text": text,
                "slack_event_id": event_id,
            },
            ["slack_event_id"],
        ):
            return None
        message = session.exec(
            select(CaseMessage).where(CaseMessage.slack_event_id == event_id)
        ).one()
    else:
        message = CaseMessage(case_id=case.id, at=now, author=author, kind=kind, text=text)  # type: ignore[arg-type]
        session.add(message)
        session.flush()
    enqueue(
        session,
        key=f"{case.id}:message:{message.id}:thread",
        kind=CASE_MESSAGE,
        case_id=case.id,
        now=now,
        payload={"to": "thread", "message_id": message.id}
        | ({"left_out": left_out} if left_out else {}),
    )
    return message


def reply(engine: Engine, case_id: int, agent_id: str, text: str, now: datetime) -> Done:
    """An agent's reply to the requester; the first one stops the first-response clock."""
    text = _text(text, "reply")
    with transaction(engine) as session:
        agent = _agent(session, agent_id)
        case = _case(session, case_id)
        if case.status not in states.OPEN_STATUSES:
            raise CaseActionRefused(states.not_open_reason(case.number, case.status, "reply"))
        if case.assignee_id is None:
            # Replying takes an unclaimed case, and taking a Sev A case acknowledges its
            # page as a Claim does (SC-17): the escalation stops at whoever answered.
            if take_unclaimed(session, case_id, agent, now, via="reply", status=case.status):
                acknowledge_by_claim(session, case_id, agent.slack_user_id, now)
            session.refresh(case)
        message = _message(session, case, agent_id, "reply", text, now)
        assert message is not None
        _first_response(session, case, agent, now, via="reply")
        if case.status in (states.NEW, states.CLAIMED):
            _set_status(session, case, agent, states.IN_PROGRESS, now)
        enqueue(
            session,
            key=f"{case_id}:requester:reply:{message.id}",
            kind=REQUESTER_NOTICE,
            case_id=case_id,
            now=now,
            payload={"event": "reply", "message_id": message.id},
        )
        return Done(case)


def note(engine: Engine, case_id: int, agent_id: str, text: str, now: datetime) -> Done:
    """An internal note: the triage thread only, never the requester."""
    text = _text(text, "note")
    with transaction(engine) as session:
        agent = _agent(session, agent_id)
        case = _case(session, case_id)
        _message(session, case, agent_id, "note", text, now)
        _event(session, case, agent, "note", now)
        return Done(case)


def await_customer(
    engine: Engine, case_id: int, agent_id: str, rules: SupportRules, now: datetime
) -> Done:
    """Waiting on the requester: pause the clock where the policy says so. Only after the
    requester has had a first response (SC-17)."""
    with transaction(engine) as session:
        agent = _agent(session, agent_id)
        case = _case(session, case_id)
        if case.status not in (states.CLAIMED, states.IN_PROGRESS, states.NEW):
            raise CaseActionRefused(f"{case.number} is {case.status.replace('_', ' ')}.")
        if case.first_responded_at is None:
            # SC-17: waiting on the requester before anyone answered them would stop the
            # initial-response clock (and tell them support waits for an answer to a
            # question nobody asked): the reply comes first, and it is the first response.
            raise CaseActionRefused(
                f"Nobody has replied on {case.number} yet. Reply to the requester first: the "
                "reply is the first response (SC-17); then mark the case as waiting for them. "
                "Nothing was changed."
            )
        _set_status(session, case, agent, states.AWAITING_CUSTOMER, now)
        enqueue(
            session,
            key=f"{case_id}:requester:awaiting:{now.isoformat()}",
            kind=REQUESTER_NOTICE,
            case_id=case_id,
            now=now,
            payload={"event": "awaiting"},
        )
        pause_case_clock(session, case, rules, now)  # with the status: one commit
    return Done(case)


def customer_message(
    engine: Engine,
    channel: str,
    thread_ts: str,
    user_id: str,
    text: str,
    event_id: str,
    rules: SupportRules,
    now: datetime,
) -> Done | None:
    """The requester wrote in their case's DM thread: relay it to the triage thread once
    (Slack's retries carry the same event id), note the customer was heard from (SC-16),
    and resume a paused clock."""
    with transaction(engine) as session:
        case = session.exec(
            select(Case)
            .where(Case.requester_channel == channel, Case.requester_thread_ts == thread_ts)
            .with_for_update()  # its clock may be resumed below
        ).first()
        if case is None:
            return None
        requester = session.get(Person, case.requester_id)
        if requester is None or requester.slack_user_id != user_id:
            return None  # only the requester's own words are relayed
        if not is_admin_of(requester, case.organisation_id, set(rules.policy.admin_roles)):
            # SC-1: they no longer speak for the case's organisation (left, no admin role,
            # moved to another one): nothing is relayed, and they are told why, once.
            enqueue(
                session,
                key=f"{case.id}:requester:not_admin:{requester.id}",
                kind=REQUESTER_NOTICE,
                case_id=case.id,
                now=now,
                payload={"event": NO_LONGER_ADMIN},
            )
            return None
        message = _message(
            session,
            case,
            user_id,
            "customer",
            text[:CUSTOMER_MESSAGE_MAX],
            now,
            event_id=event_id,
            left_out=max(0, len(text) - CUSTOMER_MESSAGE_MAX),
        )
        if message is None:
            return None  # a retry of an event already relayed
        case.customer_last_seen_at = now
        case.downgrade_offered_at = None
        _event(session, case, requester, "customer_replied", now)
        if case.status == states.AWAITING_CUSTOMER:
            _set_status(session, case, requester, states.IN_PROGRESS, now, "customer replied")
            resume_case_clock(session, case, rules, now)  # with the status: one commit
        ended = case.closed_at if case.status == states.CLOSED else case.resolved_at
        if case.status in (states.RESOLVED, states.CLOSED) and ended is not None:
            # Nobody works a resolved or closed case: the requester is told what to do
            # instead (once while it stays so, not for every message).
            enqueue(
                session,
                key=f"{case.id}:requester:written:{case.status}:{ended.isoformat()}",
                kind=REQUESTER_NOTICE,
                case_id=case.id,
                now=now,
                payload={"event": "written_after_end"},
            )
    return Done(case)


def direct_message(engine: Engine, user_id: str, now: datetime) -> bool:
    """Someone wrote to the bot in its DMs, not in a case's thread: nothing reads it there,
    so they are told where their words would reach support. At most once in each hour of
    the clock per person (a retried event, or a few lines typed one after another, get one
    answer, not one each); True when an answer was queued."""
    with transaction(engine) as session:
        return enqueue(
            session,
            key=f"dm_guidance:{user_id}:{now:%Y-%m-%dT%H}",
            kind=DM_GUIDANCE,
            now=now,
            payload={"to": "user", "user": user_id},
        )


def resolutions(session: Session, case_id: int) -> int:
    """How many times the case has been resolved (each reopening makes room for another)."""
    return len(
        session.exec(
            select(CaseEvent.id).where(
                CaseEvent.case_id == case_id,
                CaseEvent.kind == "status_changed",
                CaseEvent.to_value == states.RESOLVED,
            )
        ).all()
    )


def resolve(
    engine: Engine,
    case_id: int,
    agent_id: str,
    resolution: str,
    now: datetime,
    resolutions_seen: int | None = None,
) -> Done:
    """Resolve with a note; the requester is told and gets the survey (SC-23).

    `resolutions_seen`: how many times the case had been resolved when the agent began the
    note. If someone resolved it since (and it was reopened), the note answers a case that
    has moved on — the reopening says the problem is back — so it is refused."""
    resolution = _text(resolution, "resolution note")
    with transaction(engine) as session:
        agent = _agent(session, agent_id)
        case = _case(session, case_id)
        if case.status not in states.OPEN_STATUSES:
            raise CaseActionRefused(f"{case.number} is already {case.status}.")
        if resolutions_seen is not None and resolutions(session, case_id) != resolutions_seen:
            raise CaseActionRefused(
                f"{case.number} was resolved and reopened since you began this note: read its "
                "thread for why, then resolve it again if your note still answers it. "
                "Nothing was changed."
            )
        case.resolved_at = now
        case.resolution_note = resolution
        case.next_update_reminder_at = None
        # The resolution note goes to the requester (SC-23): that answers them, so the
        # first-response target is met or missed now, as by a reply.
        _first_response(session, case, agent, now, via="resolve")
        # A wait for the customer ends with the resolve: left open, it would run through the
        # resolved days, and a wait after a reopen would not be recorded as one of its own
        end_wait(session, case, now)
        _set_status(session, case, agent, states.RESOLVED, now, resolution[:200])
        stop_pages(session, case_id, now)
        enqueue(
            session,
            key=f"{case_id}:requester:resolved:{now.isoformat()}",
            kind=REQUESTER_NOTICE,
            case_id=case_id,
            now=now,
            payload={"event": "resolved"},
        )
        return Done(case)


def reopen(engine: Engine, case_id: int, who: str, now: datetime, rules: SupportRules) -> Done:
    """The requester or an agent reopens a resolved case. The requester only while still
    one of the case's organisation's admins (SC-1: someone who has left, lost the role or
    moved to another organisation works no case of it). A Sev A case is open work again:
    its owner is asked for updates as before (SC-17), the first after the policy's
    interval."""
    with transaction(engine) as session:
        person = find_person(session, who)
        if is_agent(person):
            case = _case(session, case_id)
            requester = session.get(Person, case.requester_id)
        else:
            case, requester = _requesters_case(
                session,
                case_id,
                who,
                rules,
                "reopen",
                lock=True,
                then=" If the problem is back, one of them can open a new case.",
            )
        is_requester = requester is not None and requester.slack_user_id == who
        if case.status == states.CLOSED:
            raise CaseActionRefused(f"{case.number} is closed; open a new case instead.")
        if case.status != states.RESOLVED:
            if resolutions(session, case_id):
                # a second press (the requester in the DM, an agent on the card): the first
                # one did it, and "not resolved" would read as if the resolve never happened
                raise CaseActionRefused(
                    f"{case.number} is open again already; support is working on it."
                )
            raise CaseActionRefused(f"{case.number} is not resolved.")
        case.resolved_at = None
        if case.severity == "A":
            case.next_update_reminder_at = next_update_reminder(rules, now)
            # SC-16's silence on the reopened case counts from the reopening, which is the
            # customer's word or the agent's, not from the customer's last message before
            case.customer_last_seen_at = now
            case.downgrade_offered_at = None
        _set_status(session, case, person, states.IN_PROGRESS, now, "reopened")
        enqueue(
            session,
            key=f"{case_id}:requester:reopened:{now.isoformat()}",
            kind=REQUESTER_NOTICE,
            case_id=case_id,
            now=now,
            payload={"event": "reopened"},
        )
        # An edited card alerts nobody: the thread says so, and the owner hears of it
        # unless they reopened it themselves.
        owner = session.get(Person, case.assignee_id) if case.assignee_id else None
        audience = [{"to": "thread"}]
        if owner is not None and owner.slack_user_id != who:
            audience.append({"to": "user", "user": owner.slack_user_id})
        for where in audience:
            enqueue(
                session,
                key=f"{case_id}:reopened:{where.get('user', 'thread')}:{now.isoformat()}",
                kind=CASE_REOPENED,
                case_id=case_id,
                now=now,
                payload={**where, "by": who, "requester": is_requester},
            )
        return Done(case)


def close_resolved(engine: Engine, rules: SupportRules, now: datetime) -> int:
    """Sweep: close cases resolved more than `lifecycle.auto_close_after_days` ago."""
    days = rules.policy.lifecycle.auto_close_after_days
    limit = now - timedelta(days=days)
    with Session(engine) as session:
        due = session.exec(
            select(Case.id).where(Case.status == states.RESOLVED, Case.resolved_at <= limit)  # type: ignore[operator]
        ).all()
    closed = 0
    for case_id in due:
        with transaction(engine) as session:
            won = (
                session.exec(  # type: ignore[call-overload]
                    update(Case)
                    .where(Case.id == case_id, Case.status == states.RESOLVED)
                    .values(status=states.CLOSED, closed_at=now)
                ).rowcount
                == 1
            )
            if not won:
                continue
            case = session.get(Case, case_id, populate_existing=True)
            assert case is not None
            _event(
                session,
                case,
                None,
                "status_changed",
                now,
                states.RESOLVED,
                states.CLOSED,
                reason=f"auto-close after {days} days",
            )
            enqueue(
                session, key=f"{case_id}:card:closed", kind=CARD_REFRESH, case_id=case_id, now=now
            )
            closed += 1
    return closed


def answer_survey(
    engine: Engine,
    case_id: int,
    user_id: str,
    rating: int,
    comment: str | None,
    rules: SupportRules,
    now: datetime,
) -> str:
    """Record the requester's rating (once per case); a comment may be added to it later.
    Only while they still speak for the case's organisation (SC-1), as for a reopening.

    Returns "thanks", "commented", "already" (a second rating is kept as it was).
    """
    if not 1 <= rating <= 5:
        raise CaseActionRefused("Ratings go from 1 to 5.")
    comment = (comment or "").strip()[:MESSAGE_MAX] or None
    with transaction(engine) as session:
        case, requester = _requesters_case(session, case_id, user_id, rules, "rate")
        if case.status not in (states.RESOLVED, states.CLOSED):
            raise CaseActionRefused(f"{case.number} is not resolved yet.")
        created = insert_if_absent(
            session,
            SurveyAnswer,
            {
                "case_id": case_id,
                "rating": rating,
                "comment": comment,
                "answered_at": now,
                "answered_by": user_id,
            },
            ["case_id"],
        )
        if created:
            _event(session, case, requester, "survey_answered", now, new=str(rating))
            return "thanks"
        answer = session.exec(select(SurveyAnswer).where(SurveyAnswer.case_id == case_id)).one()
        if comment and not answer.comment:
            answer.comment = comment
            _event(session, case, requester, "survey_commented", now)
            return "commented"
        return "already"


def requester_case(
    engine: Engine, case_id: int, user_id: str, rules: SupportRules, to_do: str
) -> Case:
    """The case `user_id` opened, for a form they may `to_do` it with; refused as the
    action itself would be (NOT_YOUR_CASE to anyone else, SC-1 to a requester who no longer
    speaks for its organisation), so the form shows no one else what a case is about."""
    with Session(engine) as session:
        case, _ = _requesters_case(session, case_id, user_id, rules, to_do)
        return case


def answer_survey_comment(
    engine: Engine, case_id: int, user_id: str, comment: str, rules: SupportRules, now: datetime
) -> None:
    """The optional comment of a survey answer (after the rating; once), on the terms of
    the rating."""
    comment = _text(comment, "comment")
    with transaction(engine) as session:
        case, requester = _requesters_case(session, case_id, user_id, rules, "comment on")
        answer = session.exec(select(SurveyAnswer).where(SurveyAnswer.case_id == case_id)).first()
        if answer is None:
            raise CaseActionRefused("Rate the case first (the 1–5 buttons), then comment.")
        if answer.comment:
            raise CaseActionRefused("You have already commented on this case — thank you.")
        answer.comment = comment
        _event(session, case, requester, "survey_commented", now)
