"""Service health (SC-5): incidents support leads post, their history, and who follows them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class HealthIncident(SQLModel, table=True):
    """A known problem with one or more services, shown before anyone opens a case for it.

    `services` holds topic keys of the policy's technical category (install, mail, …);
    `status` is the latest status text (the full history is in HealthUpdate).
    """

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=150)
    services: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    impact: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default="active", max_length=16, index=True)  # active | resolved
    posted_by: str = Field(max_length=32)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), index=True))


class HealthUpdate(SQLModel, table=True):
    """One entry in an incident's history: posted, a status update, or resolved."""

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="healthincident.id", index=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    by: str = Field(max_length=32)
    status: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(max_length=16)  # posted | updated | resolved


class IncidentFollower(SQLModel, table=True):
    """Someone who asked for the incident's updates by DM until it is resolved."""

    __table_args__ = (UniqueConstraint("incident_id", "slack_user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="healthincident.id", index=True)
    slack_user_id: str = Field(max_length=32)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
