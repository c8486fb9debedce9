"""The outbox: notifications written in the same transaction as the change that caused them.

Core code calls `enqueue` inside its transaction; the delivery side (handlers/delivery.py,
run right after a request and by `chatops worker`) sends them. The key is unique and the
insert does nothing on a conflict, so enqueueing the same notification twice — from a retry,
or from two workers at the same moment — leaves one row and no error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from chatops.db import insert_if_absent
from models import OutboxMessage


def enqueue(
    session: Session,
    *,
    key: str,
    kind: str,
    now: datetime,
    case_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> bool:
    """Add a notification unless one with the same key exists; True if it was added."""
    return insert_if_absent(
        session, OutboxMessage, notice(key, kind, now, case_id, payload), ["key"]
    )


@dataclass(frozen=True)
class Notice:
    """A notification to enqueue with others in one statement (`enqueue_many`)."""

    key: str
    kind: str
    case_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)


def notice(
    key: str, kind: str, now: datetime, case_id: int | None, payload: dict[str, Any] | None
) -> dict[str, Any]:
    """The outbox row's values for a new notification."""
    return {
        "key": key,
        "kind": kind,
        "case_id": case_id,
        "payload": payload or {},
        "status": "pending",
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }


def enqueue_many(session: Session, notices: list[Notice], now: datetime) -> int:
    """`enqueue` for many notifications in one INSERT … ON CONFLICT DO NOTHING (a sweep with
    hundreds due would otherwise pay a round trip each); returns how many were added."""
    if not notices:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = [notice(n.key, n.kind, now, n.case_id, n.payload) for n in notices]
    # The rows go as parameters of one single-row statement (SQLAlchemy batches them into
    # multi-row INSERTs when it executes): one compiled statement whatever the count, where
    # `.values(rows)` compiled a new one for every count, ~1,600 parameters at 200 rows.
    statement = (
        insert(OutboxMessage)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(OutboxMessage.id)  # type: ignore[arg-type]
    )
    return len(session.execute(statement, rows).all())


# Parked rows that cannot be sent again: a verification code is wiped from its row once
# its DM is done or parked (a code lives in the outbox only until then), so a requeued one
# would go out empty. The agent asks for a new code instead (SC-22).
NOT_REQUEUED_KINDS = frozenset({"verification.code"})


def requeue_parked(session: Session, now: datetime, keys: Iterable[str] | None) -> set[str]:
    """Put parked notifications back in the queue (those with `keys`, or all when None):
    pending, due at `now`, a fresh attempt count and no lease. Returns the keys queued;
    kinds in `NOT_REQUEUED_KINDS` stay parked."""
    statement = (
        update(OutboxMessage)
        .where(
            col(OutboxMessage.status) == "parked",
            col(OutboxMessage.kind).not_in(NOT_REQUEUED_KINDS),
        )
        .values(
            status="pending",
            attempts=0,
            next_attempt_at=now,
            lease_owner=None,
            lease_until=None,
            sent_at=None,
        )
        .returning(OutboxMessage.key)  # type: ignore[arg-type]
        .execution_options(synchronize_session=False)
    )
    if keys is not None:
        statement = statement.where(col(OutboxMessage.key).in_(list(keys)))
    return set(session.execute(statement).scalars().all())


def parked_not_requeued(session: Session, keys: Iterable[str] | None) -> set[str]:
    """The parked rows (with `keys`, or all) that `requeue_parked` leaves parked."""
    statement = select(OutboxMessage.key).where(
        col(OutboxMessage.status) == "parked", col(OutboxMessage.kind).in_(NOT_REQUEUED_KINDS)
    )
    if keys is not None:
        statement = statement.where(col(OutboxMessage.key).in_(list(keys)))
    return set(session.exec(statement).all())
