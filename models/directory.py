"""The directory: customer organisations, the people Slack knows, and the bot's channels."""

from __future__ import annotations

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class Organisation(SQLModel, table=True):
    """A customer organisation (SC-1, SC-3, SC-15)."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, unique=True, max_length=64)
    name: str = Field(max_length=200)
    # SC-3: "direct" when at least one subscription was bought directly, "partner" when all
    # of them were bought through a partner.
    subscription: str = Field(default="direct", max_length=16)
    partner_name: str | None = Field(default=None, max_length=200)
    partner_contact: str | None = Field(default=None, max_length=300)
    # SC-15: an online-services agreement signed in advance makes Sev A available.
    online_services_agreement: bool = False


class Person(SQLModel, table=True):
    """Someone the bot knows by Slack user id: a customer admin or user, or support staff."""

    id: int | None = Field(default=None, primary_key=True)
    slack_user_id: str = Field(index=True, unique=True, max_length=32)
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    # IANA time zone: from the roster, or learnt from Slack (users.info) on first contact.
    tz: str | None = Field(default=None, max_length=64)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class BotChannel(SQLModel, table=True):
    """Where the bot posts a kind of message (purpose "triage", "handoff", ...)."""

    purpose: str = Field(primary_key=True, max_length=32)
    channel_id: str = Field(max_length=32)
