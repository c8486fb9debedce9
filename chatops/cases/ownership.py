"""Taking an unclaimed case: one conditional update decides who owns it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam
from sqlmodel import Session

from chatops.cases.events import record_event
from chatops.cases.notices import CARD_REFRESH, REQUESTER_NOTICE
from chatops.cases.states import OPEN_STATUSES
from chatops.outbox import Notice, enqueue_many
from models import Case, Person

# Built once, on the table: the SET clause is the parameters given (every Claim click that
# may win runs it). Only an open case is taken: a resolved or closed one keeps its status
# whatever an older card or page DM still offers.
_CASES = Case.__table__  # type: ignore[attr-defined]
_TAKE_IF_UNOWNED = _CASES.update().where(
    _CASES.c.id == bindparam("take_case_id"),
    _CASES.c.assignee_id.is_(None),
    _CASES.c.status.in_(OPEN_STATUSES),
)


def take_unclaimed(
    session: Session, case_id: int, person: Person, now: datetime, via: str = "claim"
) -> bool:
    """Make `person` the owner if the case has none and is open; True for exactly one caller.

    `UPDATE … WHERE assignee_id IS NULL AND status IN (open statuses)` is the arbiter: under
    any number of concurrent attempts (Claim clicks, page acknowledgements) one sees a
    changed row, so one audit event, one card refresh and one notice to the requester are
    written; an attempt on a resolved or closed case sees none and changes nothing (the
    caller reads the case to say why).
    """
    result = session.execute(
        _TAKE_IF_UNOWNED,
        {"take_case_id": case_id, "assignee_id": person.id, "claimed_at": now, "status": "claimed"},
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    record_event(
        session,
        case_id,
        "claimed",
        now,
        actor_id=person.id,
        from_value="new",
        to_value="claimed",
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
