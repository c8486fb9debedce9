"""The audit trail: one CaseEvent row for each change to a case."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from models import CaseEvent

_INSERT_EVENT = CaseEvent.__table__.insert()  # type: ignore[attr-defined]


def record_event(
    session: Session,
    case_id: int | None,
    kind: str,
    at: datetime,
    actor_id: int | None = None,
    from_value: str | None = None,
    to_value: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an event to the session's transaction.

    Every event of the desk is written here, as a plain INSERT built once: events go with
    the busiest writes (opening, claiming, every status change), where the ORM's unit of
    work for one row cost more than the INSERT itself. It runs at once (after the session
    has flushed what it holds), so events keep the order they were recorded in.
    """
    session.execute(
        _INSERT_EVENT,
        {
            "case_id": case_id,
            "at": at,
            "actor_id": actor_id,
            "kind": kind,
            "from_value": from_value,
            "to_value": to_value,
            "detail": detail or {},
        },
    )
