"""The outbox: notifications written in the same transaction as the change that caused them.

Core code calls `enqueue` inside its transaction; the delivery side (handlers/delivery.py,
run right after a request and by `chatops worker`) sends them. The key is unique and the
insert does nothing on a conflict, so enqueueing the same notification twice — from a retry,
or from two workers at the same moment — leaves one row and no error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

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
        session,
        OutboxMessage,
        {
            "key": key,
            "kind": kind,
            "case_id": case_id,
            "payload": payload or {},
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        },
        ["key"],
    )
