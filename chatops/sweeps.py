"""The worker's jobs, as idempotent sweeps "as of" an instant.

Each sweep finds what is due with an indexed query, claims each item with a conditional
update (the database is the arbiter, so any number of workers may sweep at once), and
writes the notices to the outbox in the same transaction, under unique keys. Running a sweep
twice for the same instant, or from two processes, sends nothing twice; `chatops tick --at`
runs them all for any instant (catching up after downtime, or moving time in tests and the
demo).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, literal, update
from sqlmodel import Session, col, select

from chatops.cases.lifecycle import close_resolved
from chatops.cases.notices import (
    CARD_REFRESH,
    DOWNGRADE_OFFER,
    HANDOFF,
    ONCALL_GAP,
    SLA_BREACH,
    SLA_WARNING,
    UPDATE_REMINDER,
)
from chatops.cases.states import OPEN_STATUSES
from chatops.db import insert_if_absent, transaction
from chatops.directory import is_lead
from chatops.oncall import changes_between, on_call_at
from chatops.outbox import Notice, enqueue, enqueue_many
from chatops.paging import escalate_due_pages
from chatops.policy import SupportRules
from chatops.schedule import HANDOFF_MARK, OVERRIDE_GRACE, load_overrides, load_rotations
from models import Case, OutboxMessage, Person, SweepMark
from models.types import UTCDateTime

log = logging.getLogger(__name__)

# How far back a handoff sweep looks the first time: older shift changes are history, not
# news. After downtime, or an override added late (cover that began earlier today), it
# looks back as far as an override may start, so that such an override is handed off.
HANDOFF_LOOKBACK = timedelta(hours=12)
HANDOFF_CATCH_UP = OVERRIDE_GRACE


@dataclass
class SweepReport:
    warnings: int = 0
    breaches: int = 0
    reminders: int = 0
    downgrade_offers: int = 0
    page_steps: int = 0
    handoffs: int = 0
    gaps: int = 0
    closed: int = 0
    notes: list[str] = field(default_factory=list)

    def total(self) -> int:
        return (
            self.warnings
            + self.breaches
            + self.reminders
            + self.downgrade_offers
            + self.page_steps
            + self.handoffs
            + self.gaps
            + self.closed
        )


def run_sweeps(engine: Engine, rules: SupportRules, now: datetime) -> SweepReport:
    """Every job once, as of `now`."""
    report = SweepReport()
    report.breaches = sweep_breaches(engine, now)
    report.warnings = sweep_warnings(engine, now)
    report.reminders = sweep_update_reminders(engine, rules, now)
    report.downgrade_offers = sweep_downgrade_offers(engine, rules, now)
    report.page_steps = escalate_due_pages(engine, rules, now)
    report.handoffs = sweep_handoffs(engine, now)
    report.gaps = sweep_gaps(engine, rules, now)
    report.closed = close_resolved(engine, rules, now)
    return report


def _open_clock():  # type: ignore[no-untyped-def]
    """Cases whose first-response clock is running."""
    return (
        Case.status.in_(OPEN_STATUSES),  # type: ignore[attr-defined]
        Case.first_responded_at.is_(None),  # type: ignore[union-attr]
        Case.sla_paused.is_(False),  # type: ignore[attr-defined]
    )


def _thread_and_owner(
    case_id: int, owner_slack_id: str | None, kind: str, key: str, extra: dict
) -> list[Notice]:
    """A notice in the case's triage thread, the same to its owner by DM, and a refresh of
    the card so its "time left" is current at the moments that matter."""
    notices = [
        Notice(f"{key}:card", CARD_REFRESH, case_id),
        Notice(f"{key}:thread", kind, case_id, {"to": "thread", **extra}),
    ]
    if owner_slack_id is not None:
        payload = {"to": "user", "user": owner_slack_id, **extra}
        notices.append(Notice(f"{key}:owner", kind, case_id, payload))
    return notices


# Cases one transaction of an SLA sweep takes: a burst of due cases costs a few statements
# per chunk, not a transaction per case.
SWEEP_CHUNK = 200


def _sla_sweep(
    engine: Engine, now: datetime, instant: Any, marker: Any, kind: str, label: str
) -> int:
    """Cases whose `instant` column has passed and whose `marker` is unset: take them (row
    locks; rows another worker holds are skipped — it notifies those), set the marker, and
    notify, a chunk of cases per transaction."""
    with Session(engine) as session:
        due = session.exec(
            select(Case.id).where(instant <= now, marker.is_(None), *_open_clock())
        ).all()
    sent = 0
    for start in range(0, len(due), SWEEP_CHUNK):
        chunk = sorted(due[start : start + SWEEP_CHUNK])  # type: ignore[type-var]
        with transaction(engine) as session:
            # Asked again under the lock: since the read above, a reply may have answered
            # the case (SC-17), a resolve ended it, or a severity change moved its due
            taken = session.exec(
                select(Case.id)
                .where(Case.id.in_(chunk), marker.is_(None))  # type: ignore[union-attr]
                .where(instant <= now, *_open_clock())
                .order_by(Case.id)  # type: ignore[arg-type]
                .with_for_update(skip_locked=True)
            ).all()
            if not taken:
                continue
            # One UPDATE marks the chunk and returns what the notices need: no Case objects
            # to load, nor dirty ones to flush back row by row.
            marks: dict[str, Any] = {marker.key: now}
            if kind == SLA_BREACH:  # no warning after the breach
                marks["sla_warning_sent_at"] = func.coalesce(
                    Case.sla_warning_sent_at, literal(now, UTCDateTime())
                )
            cases = sorted(
                session.execute(
                    update(Case)
                    .where(Case.id.in_(taken))  # type: ignore[union-attr]
                    .values(marks)
                    .returning(Case.id, Case.first_response_due, Case.assignee_id)  # type: ignore[arg-type]
                    .execution_options(synchronize_session=False)  # no Case loaded here
                ).all()
            )
            owner_ids = {assignee for _id, _due, assignee in cases if assignee is not None}
            owners: dict[int, str] = {}
            if owner_ids:
                owners = dict(
                    session.execute(  # type: ignore[arg-type]
                        select(Person.id, Person.slack_user_id).where(Person.id.in_(owner_ids))  # type: ignore[union-attr]
                    ).all()
                )
            notices: list[Notice] = []
            for case_id, first_response_due, assignee_id in cases:
                if first_response_due is None:
                    continue
                if kind == SLA_WARNING and first_response_due <= now:
                    continue  # already in breach: the breach notice says so, not a warning
                due_at = first_response_due.isoformat()
                key = f"{case_id}:{label}:{due_at}"
                owner = owners.get(assignee_id)  # type: ignore[arg-type]
                notices += _thread_and_owner(case_id, owner, kind, key, {"due": due_at})
                sent += 1
            enqueue_many(session, notices, now)
    return sent


def sweep_warnings(engine: Engine, now: datetime) -> int:
    """Pre-breach warnings (SC-17): `sla_warn_at` was computed in business time."""
    return _sla_sweep(
        engine, now, Case.sla_warn_at, Case.sla_warning_sent_at, SLA_WARNING, "sla_warning"
    )


def sweep_breaches(engine: Engine, now: datetime) -> int:
    """Breach notices at the due instant (SC-17)."""
    return _sla_sweep(
        engine, now, Case.first_response_due, Case.sla_breach_sent_at, SLA_BREACH, "sla_breach"
    )


def sweep_update_reminders(engine: Engine, rules: SupportRules, now: datetime) -> int:
    """SC-17 continuous effort: while a Sev A case is open, remind its owner to post an
    update every `notifications.sev_a_update_every`."""
    every = timedelta(minutes=rules.duration_minutes(rules.policy.notifications.sev_a_update_every))
    with Session(engine) as session:
        due = session.exec(
            select(Case.id, Case.next_update_reminder_at).where(
                Case.severity == "A",
                Case.status.in_(OPEN_STATUSES),  # type: ignore[attr-defined]
                Case.next_update_reminder_at <= now,  # type: ignore[operator]
            )
        ).all()
    sent = 0
    for case_id, reminder_at in due:
        with transaction(engine) as session:
            following = reminder_at + every
            if following <= now:  # after downtime: one reminder now, then the usual rhythm
                following = now + every
            won = (
                session.exec(  # type: ignore[call-overload]
                    update(Case)
                    .where(Case.id == case_id, Case.next_update_reminder_at == reminder_at)
                    .values(next_update_reminder_at=following)
                ).rowcount
                == 1
            )
            case = session.get(Case, case_id, populate_existing=True)
            if not won or case is None:
                continue
            key = f"{case_id}:update_reminder:{reminder_at.isoformat()}"
            if case.assignee_id is None:
                enqueue(
                    session,
                    key=f"{key}:thread",
                    kind=UPDATE_REMINDER,
                    case_id=case_id,
                    now=now,
                    payload={"to": "thread"},
                )
            else:
                owner = session.get(Person, case.assignee_id)
                assert owner is not None
                enqueue(
                    session,
                    key=f"{key}:owner",
                    kind=UPDATE_REMINDER,
                    case_id=case_id,
                    now=now,
                    payload={"to": "user", "user": owner.slack_user_id},
                )
            sent += 1
    return sent


def sweep_downgrade_offers(engine: Engine, rules: SupportRules, now: datetime) -> int:
    """SC-16: a Sev A case whose customer has not responded for the policy's reasonable
    time offers its owner a Downgrade button (once per silence)."""
    silence = timedelta(minutes=rules.duration_minutes(rules.policy.sev_a.downgrade_after_silence))
    with Session(engine) as session:
        due = session.exec(
            select(Case.id).where(
                Case.severity == "A",
                Case.status.in_(OPEN_STATUSES),  # type: ignore[attr-defined]
                Case.downgrade_offered_at.is_(None),  # type: ignore[union-attr]
                Case.customer_last_seen_at <= now - silence,  # type: ignore[operator]
            )
        ).all()
    sent = 0
    for case_id in due:
        with transaction(engine) as session:
            won = (
                session.exec(  # type: ignore[call-overload]
                    update(Case)
                    .where(Case.id == case_id, Case.downgrade_offered_at.is_(None))  # type: ignore[union-attr]
                    # still so when taken: the customer may have written since the read
                    # above (SC-16), or the case been lowered or resolved
                    .where(
                        Case.severity == "A",
                        Case.status.in_(OPEN_STATUSES),  # type: ignore[attr-defined]
                        Case.customer_last_seen_at <= now - silence,  # type: ignore[operator]
                    )
                    .values(downgrade_offered_at=now)
                ).rowcount
                == 1
            )
            case = session.get(Case, case_id, populate_existing=True)
            if not won or case is None or case.customer_last_seen_at is None:
                continue
            seen = case.customer_last_seen_at.isoformat()
            target: dict = {"to": "thread"}
            if case.assignee_id is not None:
                owner = session.get(Person, case.assignee_id)
                assert owner is not None
                target = {"to": "user", "user": owner.slack_user_id}
            enqueue(
                session,
                key=f"{case_id}:downgrade_offer:{seen}",
                kind=DOWNGRADE_OFFER,
                case_id=case_id,
                now=now,
                payload={**target, "customer_last_seen": seen},
            )
            sent += 1
    return sent


def _advance_mark(session: Session, name: str, now: datetime) -> datetime:
    """Where the last sweep of this kind stopped (HANDOFF_LOOKBACK ago the first time, at
    most HANDOFF_CATCH_UP ago); move it on."""
    first = now - HANDOFF_LOOKBACK
    insert_if_absent(session, SweepMark, {"name": name, "swept_until": first}, ["name"])
    mark = session.exec(select(SweepMark).where(SweepMark.name == name).with_for_update()).one()
    since = max(now - HANDOFF_CATCH_UP, mark.swept_until)
    if now > mark.swept_until:
        mark.swept_until = now
    return since


def sweep_handoffs(engine: Engine, now: datetime) -> int:
    """A handoff notice at every change of who is on call (channel post + DM to the
    incoming person), for changes since the last sweep (or since an override added for an
    instant already swept took the mark back)."""
    sent = 0
    with transaction(engine) as session:
        since = _advance_mark(session, HANDOFF_MARK, now)
        if since >= now:
            return 0
        for name, rotation in load_rotations(session).items():
            overrides = load_overrides(session, name, since)
            for instant, outgoing, incoming in changes_between(rotation, overrides, since, now):
                payload = {
                    "rotation": name,
                    "at": instant.isoformat(),
                    "outgoing": outgoing.person,
                    "incoming": incoming.person,
                    "shift_ends": incoming.ends_at.isoformat() if incoming.ends_at else None,
                    "previous_started": outgoing.starts_at.isoformat(),
                }
                # An override added late may change who comes on at an instant already
                # handed off (`add_override`): a different handoff, so a different key; the
                # kind and end of the incoming stretch tell a later override that puts the
                # rotation's own person back (over another override) from the first handoff.
                ends = incoming.ends_at.isoformat() if incoming.ends_at else "open"
                kind = "override" if incoming.is_override else "rotation"
                key = (
                    f"handoff:{name}:{instant.isoformat()}:{incoming.person or 'nobody'}"
                    f":{kind}:{ends}"
                )
                if _handed_off_under_older_key(session, payload):
                    continue
                enqueue(
                    session,
                    key=f"{key}:channel",
                    kind=HANDOFF,
                    now=now,
                    payload={**payload, "to": "channel", "channel": "handoff"},
                )
                if incoming.person:
                    enqueue(
                        session,
                        key=f"{key}:dm",
                        kind=HANDOFF,
                        now=now,
                        payload={**payload, "to": "user", "user": incoming.person},
                    )
                sent += 1
    return sent


def _handed_off_under_older_key(session: Session, handoff: dict[str, Any]) -> bool:
    """Whether this handoff was sent under the key an earlier version gave it.

    That key named only the rotation and instant at first, then also the incoming person; a
    desk upgraded since keeps those rows, and when an override takes the mark back across a
    handoff one of them records, the sweep reports it again under today's key. It is the
    same handoff if the row names the same incoming person and end of their stretch (its
    payload says; whether the stretch was an override's it does not, nor does the message
    show it). Every version wrote the channel post and the DM together, so the channel's
    row answers for both."""
    at = f"handoff:{handoff['rotation']}:{handoff['at']}"
    older = [f"{at}:channel", f"{at}:{handoff['incoming'] or 'nobody'}:channel"]
    payloads = session.exec(
        select(OutboxMessage.payload).where(col(OutboxMessage.key).in_(older))
    ).all()
    return any(
        (sent.get("incoming"), sent.get("shift_ends"))
        == (handoff["incoming"], handoff["shift_ends"])
        for sent in payloads
    )


def sweep_gaps(engine: Engine, rules: SupportRules, now: datetime) -> int:
    """Tell the triage channel and the leads when a rotation the paging chain uses has
    nobody on call (once per gap)."""
    paged = [
        step.removeprefix("rotation:")
        for step in rules.policy.paging.escalation
        if step.startswith("rotation:")
    ]
    sent = 0
    with transaction(engine) as session:
        rotations = load_rotations(session)
        for name in dict.fromkeys(paged):
            rotation = rotations.get(name)
            if rotation is None:
                gap_start, gap_end = None, None
            else:
                shift = on_call_at(rotation, load_overrides(session, name, now), now)
                if shift.person is not None:
                    continue
                gap_start, gap_end = shift.starts_at, shift.ends_at
            payload = {
                "rotation": name,
                "until": gap_end.isoformat() if gap_end else None,
                "missing": rotation is None,
            }
            key = f"gap:{name}:{gap_start.isoformat() if gap_start else 'undefined'}"
            enqueue(
                session,
                key=f"{key}:channel",
                kind=ONCALL_GAP,
                now=now,
                payload={**payload, "to": "channel", "channel": "triage"},
            )
            leads = session.exec(select(Person)).all()
            for lead in (p for p in leads if is_lead(p)):
                enqueue(
                    session,
                    key=f"{key}:lead:{lead.slack_user_id}",
                    kind=ONCALL_GAP,
                    now=now,
                    payload={**payload, "to": "user", "user": lead.slack_user_id},
                )
            sent += 1
    return sent
