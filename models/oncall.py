"""On-call: rotations from the roster, overrides, and Sev A pages."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class RotationRecord(SQLModel, table=True):
    """A rotation as the roster file defines it (see chatops/oncall.py for the arithmetic)."""

    name: str = Field(primary_key=True, max_length=64)
    members: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    shift: str = Field(max_length=16)
    handoff: str = Field(max_length=5)  # "09:00"
    timezone: str = Field(max_length=64)
    start: date


class OnCallOverride(SQLModel, table=True):
    """ "Bo covers Ann from Tue 18:00 to Wed 09:00": beats the rotation for its interval."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)  # idempotent loads and double submissions
    rotation: str = Field(max_length=64, index=True)
    person: str = Field(max_length=32)
    covers: str | None = Field(default=None, max_length=32)
    starts_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ends_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    created_by: str | None = Field(default=None, max_length=32)


class Page(SQLModel, table=True):
    """One Sev A page and its escalation. `step` is the task token: a sweep advances it with
    `UPDATE … WHERE step = <the step it read>`, so two workers never both take a step.

    `exhausted`: the escalation is over, whether every step ran unanswered (the page may
    still be acknowledged: someone answering at last is what it asks for) or the page was
    called off. `stopped_at`: when it was called off, because its case left Sev A or was
    resolved before anyone acknowledged it; such a page is exhausted too, and can no longer
    be acknowledged."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    step: int = 0
    next_step_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), index=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    acknowledged_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    acknowledged_by: str | None = Field(default=None, max_length=32)
    exhausted: bool = False
    stopped_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
