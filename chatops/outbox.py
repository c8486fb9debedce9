"""The outbox: notifications written in the same transaction as the change that caused them.

Core code calls `enqueue` inside its transaction; the delivery side (handlers/delivery.py,
run right after a request and by `chatops worker`) sends them. Because the key is unique,
enqueueing the same notification twice leaves one row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from models import OutboxMessage


def enqueue(
    session: Session,
    *,
    key: str,
    kind: str,
    now: datetime,
    case_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> OutboxMessage:
    """Add a notification unless one with the same key exists; return the row."""
    existing = session.exec(select(OutboxMessage).where(OutboxMessage.key == key)).first()
    if existing is not None:
        return existing
    message = OutboxMessage(
        key=key,
        kind=kind,
        case_id=case_id,
        payload=payload or {},
        created_at=now,
        next_attempt_at=now,
    )
    session.add(message)
    return message
