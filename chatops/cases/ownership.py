"""Taking an unclaimed case: one conditional update decides who owns it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, case
from sqlmodel import Session

from chatops.cases.events import record_event
from chatops.cases.notices import CARD_REFRESH, REQUESTER_NOTICE
from chatops.cases.states import OPEN_STATUSES
from chatops.outbox import Notice, enqueue_many
from models import Case, Person

# Built once, on the table (every Claim click that may win runs it). Only an open case is
# taken: a resolved or closed one keeps its status whatever an older card or page DM still
# offers. A new case becomes claimed; one already further on (reopened without an owner: in
# progress) keeps its status, so its clock and its card stay as they are.
_CASES = Case.__table__  # type: ignore[attr-defined]
_TAKE_IF_UNOWNED = (
    _CASES.update()
    .where(
        _CASES.c.id == bindparam("take_case_id"),
        _CASES.c.assignee_id.is_(None),
        _CASES.c.status.in_(OPEN_STATUSES),
    )
    .values(
        assignee_id=bindparam("take_assignee_id"),
        claimed_at=bindparam("take_claimed_at"),
        status=case((_CASES.c.status == "new", "claimed"), else_=_CASES.c.status),
    )
)


def take_unclaimed(
    session: Session,
    case_id: int,
    person: Person,
    now: datetime,
    via: str = "claim",
    status: str = "new",
) -> bool:
    """Make `person` the owner if the case has none and is open; True for exactly one caller.

    `UPDATE … WHERE assignee_id IS NULL AND status IN (open statuses)` is the arbiter: under
    any number of concurrent attempts (Claim clicks, page acknowledgements) one sees a
    changed row, so one audit event, one card refresh and one notice to the requester are
    written; an attempt on a resolved or closed case sees none and changes nothing (the
    caller reads the case to say why). `status`: the case's status as the caller read it,
    for the audit trail ("new → claimed"; a case in progress stays in progress).
    """
    result = session.execute(
        _TAKE_IF_UNOWNED,
        {"take_case_id": case_id, "take_assignee_id": person.id, "take_claimed_at": now},
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    record_event(
        session,
        case_id,
        "claimed",
        now,
        actor_id=person.id,
        from_value=status,
        to_value="claimed" if status == "new" else status,
        detail={"owner": person.slack_user_id, "via": via},
    )
    notify = {"event": "claimed", "owner": person.slack_user_id}
    enqueue_many(
        session,
        [
            Notice(f"{case_id}:card:claimed", CARD_REFRESH, case_id),
            Notice(f"{case_id}:requester:claimed", REQUESTER_NOTICE, case_id, notify),
        ],
        now,
    )
    return True
