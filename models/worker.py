"""Bookkeeping for the worker's sweeps and Slack's per-channel pace."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class SweepMark(SQLModel, table=True):
    """Up to when a sweep has looked (e.g. rotation changes already handed off)."""

    name: str = Field(primary_key=True, max_length=64)
    swept_until: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ChannelPace(SQLModel, table=True):
    """The next instant (wall clock) a message may be posted to a channel: Slack allows
    about one message per second per channel, across all our processes."""

    channel_id: str = Field(primary_key=True, max_length=32)
    next_slot: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
