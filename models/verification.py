"""Caller verification (SC-22): one row per attempt to establish that a caller speaks for the
case's organisation, by a registered number or by a one-time code read back.

The code itself is never stored: only `code_hash` (scrypt over the code with the row's own
random `salt`; `kdf` names the parameters so they can change later). `attempts` is raised
with a conditional UPDATE (`WHERE status = 'pending' AND attempts < 5 AND expires_at > now`),
which is what keeps any number of concurrent guesses at five. See chatops/verification.py.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime

# status values
PENDING = "pending"  # a code is out; the caller has not read it back yet
VERIFIED = "verified"  # registered number, or the right code in time
FAILED = "failed"  # five wrong codes: this code is locked
EXPIRED = "expired"  # the code's ten minutes ran out
SUPERSEDED = "superseded"  # a newer verification of the same case replaced this pending one

# via values
VIA_REGISTERED_NUMBER = "registered_number"
VIA_CODE = "code"


class CallerVerification(SQLModel, table=True):
    """One verification of a caller on a case."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    # The number the caller calls from, normalised ("+861055550101", or national digits).
    number: str = Field(max_length=32)
    status: str = Field(max_length=16, index=True)
    # Code path only: hex scrypt digest and hex salt; never the code.
    code_hash: str | None = Field(default=None, max_length=128)
    salt: str | None = Field(default=None, max_length=64)
    kdf: str | None = Field(default=None, max_length=64)
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    attempts: int = 0
    requested_by: str = Field(max_length=32)  # Slack id of the agent who started it
    requested_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    verified_by: str | None = Field(default=None, max_length=32)  # Slack id
    verified_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    via: str | None = Field(default=None, max_length=24)  # registered_number | code
    # Registered-number path: whose directory entry the number matched.
    matched_person_id: int | None = Field(default=None, foreign_key="person.id")
