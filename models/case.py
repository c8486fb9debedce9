"""Cases and their audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime

SEV_A_SILENCE = "severity = 'A' AND downgrade_offered_at IS NULL"


class Case(SQLModel, table=True):
    """A support case opened by a customer admin. Its number is `CS-` + the zero-padded id."""

    # The SC-16 downgrade sweep looks for Sev A cases whose customer has been silent: a
    # partial index over the few Sev A cases not yet offered one keeps that sweep an index
    # range scan however many B and C cases there are.
    __table_args__ = (
        Index(
            "ix_case_sev_a_silence",
            "customer_last_seen_at",
            postgresql_where=text(SEV_A_SILENCE),
            sqlite_where=text(SEV_A_SILENCE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    requester_id: int = Field(foreign_key="person.id", index=True)
    category: str = Field(max_length=32)
    topic: str = Field(max_length=64)
    severity: str = Field(max_length=1)
    title: str = Field(max_length=150)
    description: str = Field(sa_column=Column(Text, nullable=False))
    contact_method: str = Field(max_length=16)
    contact_phone: str | None = Field(default=None, max_length=40)
    contact_email: str | None = Field(default=None, max_length=254)
    business_impact: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    available_contact: str | None = Field(default=None, max_length=200)
    status: str = Field(default="new", max_length=24, index=True)
    assignee_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    opened_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    claimed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    first_response_due: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), index=True)
    )
    # The SLA clock, kept exact across severity changes and pauses: business minutes
    # already counted against the target up to `sla_checkpoint_at` (chatops/cases/clock.py).
    sla_elapsed_minutes: float = 0.0
    sla_checkpoint_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    sla_paused: bool = False
    # When to warn before the due (business-time aware) and which notices went out for the
    # current due; reset whenever the due is recomputed (chatops/cases/clock.py: set_due).
    sla_warn_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), index=True))
    sla_warning_sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    sla_breach_sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # The first agent reply stops the first-response clock (set by the case lifecycle).
    first_responded_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # SC-17 continuous effort and SC-16 downgrade, for Sev A cases.
    next_update_reminder_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), index=True)
    )
    customer_last_seen_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    downgrade_offered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # The end of the case's life (chatops/cases/lifecycle.py).
    resolved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    resolution_note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # Where the triage card and the requester's DM thread live, once delivered.
    card_channel: str | None = Field(default=None, max_length=32)
    card_ts: str | None = Field(default=None, max_length=32)
    requester_channel: str | None = Field(default=None, max_length=32)
    requester_thread_ts: str | None = Field(default=None, max_length=32)

    @property
    def number(self) -> str:
        return case_number(self.id or 0)


def case_number(case_id: int) -> str:
    """The human-friendly case number, e.g. CS-00042."""
    return f"CS-{case_id:05d}"


class CaseEvent(SQLModel, table=True):
    """One change to a case: who did what, when, from which value to which."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    actor_id: int | None = Field(default=None, foreign_key="person.id")
    kind: str = Field(max_length=32)
    from_value: str | None = Field(default=None, max_length=200)
    to_value: str | None = Field(default=None, max_length=200)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class CasePause(SQLModel, table=True):
    """An interval during which the first-response clock stood still (awaiting customer)."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class SurveyAnswer(SQLModel, table=True):
    """The requester's rating of a resolved case (SC-23): one per case."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", unique=True)
    rating: int  # 1..5
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    answered_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    answered_by: str = Field(max_length=32)


class CaseMessage(SQLModel, table=True):
    """A reply to the requester, an internal note, or the requester's own message (relayed
    from their DM thread). `slack_event_id` makes a relayed event count once."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    author: str = Field(max_length=32)  # Slack user id
    kind: str = Field(max_length=16)  # reply | note | customer
    text: str = Field(sa_column=Column(Text, nullable=False))
    slack_event_id: str | None = Field(default=None, max_length=64, unique=True)
