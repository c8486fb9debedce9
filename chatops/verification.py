"""Caller verification (SC-22): is the person on the phone entitled to speak for the case's
organisation?

An agent enters the number the caller is calling from.

* **Registered number.** The organisation's registered numbers are the phone numbers of its
  admins in the directory (`Person.phone`; SC-1: assisted support is for administrators). A
  match verifies the caller at once (`same_number`: a number on file in national form
  matches national forms only).
* **One-time code.** Otherwise a 6-digit code (`secrets.randbelow`) goes to the
  organisation's registered admins — a Slack DM through the outbox (kind
  `verification.code`, written in the same transaction as the verification) and, when
  `CHATOPS_SMTP_URL` is set, an e-mail to their registered addresses — and the caller reads
  it back to the agent.

Rules for the code:

* Only a hash is stored: `hashlib.scrypt` (n=2**14, r=8, p=1, 32 bytes) over the code with a
  random 16-byte salt per code (`kdf` records the parameters). With a million possible codes
  a hash does not make the code unguessable to someone who can read the database — it keeps
  the code out of plain sight (backups, query logs) and makes each guess cost ~50 ms of CPU
  and 16 MiB, so trying all of them takes hours while a code lives ten minutes. The real
  protection is the expiry and the attempt limit.
* It expires 10 minutes after it was issued, on the desk's clock.
* Five attempts. Each attempt is counted by one conditional UPDATE (`attempts = attempts + 1
  WHERE status = 'pending' AND attempts < 5 AND expires_at > now`) *before* the comparison,
  so any number of concurrent submissions makes at most five comparisons. The fifth wrong
  code locks it (status `failed`); a right code after that is refused.
* The comparison is `hmac.compare_digest` of the stored and the computed hash.
* Every attempt writes a `CaseEvent` (kind `caller_verification`: outcome, attempt number,
  number) — never the code. Nothing here logs the code.
* Only the agent who asked for a code can enter it; starting a new verification of the same
  case supersedes a pending one (its code stops working).
* Only an open case verifies a caller: a code read back after the case was resolved or
  closed is refused (not counted), and a code DM still waiting for Slack is not sent.

While the DM is waiting in the outbox its payload holds the code (a conscious trade-off: the
outbox guarantees the DM is not lost and not sent twice, and the code has to be somewhere for
that). Whenever a verification of the case is started or checked, the codes of rows that
were already sent or parked, or whose verification is no longer pending, are blanked
(`scrub_codes`).

Number matching: spaces, dashes, dots, slashes and brackets are ignored; a leading `+` or
`00` marks an international number (country code included), in which a bracketed trunk zero
("+44 (0)20 7946 0000") is dropped: it is not dialled from abroad. A number must then have 7
to 15 digits (E.164). Two international numbers match when their digits are equal. A
national number (no `+`/`00`) loses one leading trunk `0` and matches an international
number that ends with it after a 0–3 digit country code ("010 5555 0101" or "10 5555 0101"
match "+86 10 5555 0101"; "+1 10 5555 0101" does not). Two national numbers match when equal
without their trunk `0`. At least 7 significant digits must match, so a bare extension or a
local number without its area code never matches.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import smtplib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import Engine, bindparam, update
from sqlmodel import Session, col, select

from chatops.cases.events import record_event
from chatops.cases.notices import CARD_REFRESH
from chatops.cases.states import OPEN_STATUSES
from chatops.db import transaction
from chatops.directory import admins_of, find_person, is_agent
from chatops.outbox import enqueue
from chatops.policy import SupportRules
from chatops.timefmt import format_instant
from models import Case, Organisation, OutboxMessage, Person
from models.verification import (
    EXPIRED,
    FAILED,
    PENDING,
    SUPERSEDED,
    VERIFIED,
    VIA_CODE,
    VIA_REGISTERED_NUMBER,
    CallerVerification,
)

log = logging.getLogger(__name__)

CODE_NOTICE = "verification.code"  # outbox kind: the code, by DM, to one admin
EVENT_KIND = "caller_verification"  # CaseEvent kind of every step
CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
SMTP_ENV = "CHATOPS_SMTP_URL"

_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
KDF = "scrypt:n=16384,r=8,p=1,dklen=32"
_SEPARATORS = re.compile(r"[\s\-./()\[\]]")
_BRACKETED_TRUNK = re.compile(r"\(\s*0\s*\)")
_DIGITS = re.compile(r"[0-9]{7,15}")
_CODE_SEPARATORS = re.compile(r"[\s\-]")
_CODE = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")
MIN_SIGNIFICANT = 7
MAX_COUNTRY_CODE = 3


# --- numbers -------------------------------------------------------------------------------


def normalise_number(text: str | None) -> str | None:
    """`+` and digits for an international number, digits for a national one; None when it
    is not a phone number (letters, extensions, fewer than 7 or more than 15 digits)."""
    text = (text or "").strip()
    raw = _SEPARATORS.sub("", text)
    international = False
    if raw.startswith(("+", "00")):
        # "+44 (0)20 …" (a common way to write a number on file): the 0 is the trunk prefix
        # of national dialling, never part of the number a call from it shows
        raw = _SEPARATORS.sub("", _BRACKETED_TRUNK.sub("", text))
    if raw.startswith("+"):
        raw, international = raw[1:], True
    elif raw.startswith("00"):
        raw, international = raw[2:], True
    if not _DIGITS.fullmatch(raw):
        return None
    return ("+" if international else "") + raw


def same_number(caller: str, registered: str) -> bool:
    """Does the caller's number (normalised, see `normalise_number`) name the registered
    line? A caller's number in national form (how a domestic call shows) matches a
    registered international one ending in the same digits after a country code; a
    registered number in national form matches only national forms — it says nothing of its
    country, so "010 5555 0101" on file must not let "+44 10 5555 0101" in (any country
    code would do)."""
    a_int, b_int = caller.startswith("+"), registered.startswith("+")
    da, db = caller.lstrip("+"), registered.lstrip("+")
    if a_int and b_int:
        return da == db
    if not a_int and not b_int:
        na, nb = da.removeprefix("0"), db.removeprefix("0")
        return len(na) >= MIN_SIGNIFICANT and na == nb
    if a_int:  # an international caller against a national registration: unknown country
        return False
    national, full = da, db
    significant = national.removeprefix("0")
    return (
        len(significant) >= MIN_SIGNIFICANT
        and full.endswith(significant)
        and len(full) - len(significant) <= MAX_COUNTRY_CODE
    )


def masked(number: str) -> str:
    """A number for display with all but its last four digits hidden: "…0101"."""
    return "…" + number[-4:]


# --- codes ---------------------------------------------------------------------------------


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(code: str, salt: bytes) -> bytes:
    return hashlib.scrypt(code.encode("ascii"), salt=salt, **_SCRYPT)  # type: ignore[arg-type]


def clean_code(text: str | None) -> str | None:
    """The code as typed without spaces or dashes, or None unless it is six digits."""
    cleaned = _CODE_SEPARATORS.sub("", text or "")
    return cleaned if _CODE.fullmatch(cleaned) else None


# --- outcomes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Admin:
    slack_id: str
    name: str
    email: str | None


@dataclass(frozen=True)
class StartOutcome:
    """What `start_verification` did.

    outcome: "verified" (registered number) | "code_sent" | "no_contact" (the organisation
    has no registered admin to send a code to) | "invalid_number" | "not_agent" | "no_case" |
    "case_closed" (resolved or closed: `case_status` says which).
    """

    outcome: str
    case_id: int | None = None
    case_number: str | None = None
    case_status: str | None = None
    organisation: str | None = None
    verification_id: int | None = None
    number: str | None = None
    matched_name: str | None = None  # registered number: whose it is
    agent_name: str | None = None
    admins: tuple[Admin, ...] = ()
    expires_at: datetime | None = None
    # The plain code, for the e-mail sent right after the request; never stored, never
    # printed (repr=False keeps it out of logs of the outcome).
    code: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CheckOutcome:
    """What `check_code` did.

    outcome: "verified" | "wrong" (attempts left) | "locked" (this attempt or an earlier one
    used up the five) | "expired" | "malformed" (not six digits; not counted) |
    "already_verified" | "superseded" | "not_requester" | "not_agent" | "no_verification" |
    "case_closed" (the case was resolved or closed meanwhile; not counted).
    """

    outcome: str
    case_id: int | None = None
    case_number: str | None = None
    case_status: str | None = None
    verification_id: int | None = None
    number: str | None = None
    attempt: int | None = None
    attempts_left: int | None = None
    expires_at: datetime | None = None
    requested_by: str | None = None
    # "superseded": who started the newer verification (Slack id, name), so the agent
    # holding the old form knows whose form the caller's new code belongs in
    superseded_by: str | None = None
    superseded_by_name: str | None = None


# --- starting ------------------------------------------------------------------------------


def start_verification(
    engine: Engine,
    case_id: int,
    agent_slack_id: str,
    number: str | None,
    now: datetime,
    rules: SupportRules,
) -> StartOutcome:
    """Verify the caller of a case by the number they call from, or send a one-time code to
    the case's organisation's admins (DM via the outbox in the same transaction)."""
    normalised = normalise_number(number)
    # scrypt is slow on purpose: do it before taking the database's write lock.
    code = new_code()
    salt = secrets.token_bytes(16)
    digest = hash_code(code, salt)
    with transaction(engine) as session:
        agent = find_person(session, agent_slack_id)
        if not is_agent(agent):
            return StartOutcome("not_agent")
        assert agent is not None
        # Locked, so that two agents starting at once take turns: the second supersedes the
        # first's pending code rather than missing it (not committed yet) and leaving two
        # codes working; and a resolve cannot cross it.
        case = session.get(Case, case_id, with_for_update=True)
        if case is None:
            return StartOutcome("no_case")
        organisation = session.get(Organisation, case.organisation_id)
        assert organisation is not None
        base: dict[str, Any] = {
            "case_id": case.id,
            "case_number": case.number,
            "case_status": case.status,
            "organisation": organisation.name,
            "agent_name": agent.name,
        }
        if case.status not in OPEN_STATUSES:
            return StartOutcome("case_closed", **base)
        if normalised is None:
            return StartOutcome("invalid_number", **base)
        base["number"] = normalised
        # A new verification replaces a pending one: its code stops working.
        session.exec(  # type: ignore[call-overload]
            update(CallerVerification)
            .where(
                col(CallerVerification.case_id) == case_id,
                col(CallerVerification.status) == PENDING,
            )
            .values(status=SUPERSEDED)
        )
        match = registered_match(
            session, organisation.id or 0, normalised, set(rules.policy.admin_roles)
        )
        if match is not None:
            row = CallerVerification(
                case_id=case_id,
                number=normalised,
                status=VERIFIED,
                requested_by=agent.slack_user_id,
                requested_at=now,
                verified_by=agent.slack_user_id,
                verified_at=now,
                via=VIA_REGISTERED_NUMBER,
                matched_person_id=match.id,
            )
            session.add(row)
            session.flush()
            _audit(session, case_id, agent, now, "verified", row, via=VIA_REGISTERED_NUMBER)
            _refresh_card(session, case_id, row, now)
            scrub_codes(session, case_id, now)
            return StartOutcome("verified", verification_id=row.id, matched_name=match.name, **base)
        admins = tuple(
            Admin(p.slack_user_id, p.name, p.email)
            for p in admins_of(session, organisation.id or 0, set(rules.policy.admin_roles))
        )
        if not admins:
            row = CallerVerification(
                case_id=case_id,
                number=normalised,
                status=FAILED,
                requested_by=agent.slack_user_id,
                requested_at=now,
            )
            session.add(row)
            session.flush()
            _audit(session, case_id, agent, now, "no_contact", row)
            return StartOutcome("no_contact", verification_id=row.id, **base)
        expires_at = now + CODE_TTL
        row = CallerVerification(
            case_id=case_id,
            number=normalised,
            status=PENDING,
            code_hash=digest.hex(),
            salt=salt.hex(),
            kdf=KDF,
            expires_at=expires_at,
            attempts=0,
            requested_by=agent.slack_user_id,
            requested_at=now,
        )
        session.add(row)
        session.flush()
        scrub_codes(session, case_id, now)  # the older rows' codes; the new ones are live
        for admin in admins:
            enqueue(
                session,
                key=f"{case_id}:verification:{row.id}:code:{admin.slack_id}",
                kind=CODE_NOTICE,
                case_id=case_id,
                now=now,
                payload={
                    "to": "user",
                    "user": admin.slack_id,
                    "code": code,
                    "verification_id": row.id,
                    "requested_by": agent.slack_user_id,
                    "number": normalised,
                    "expires_at": expires_at.isoformat(),
                },
            )
        _audit(
            session,
            case_id,
            agent,
            now,
            "code_sent",
            row,
            sent_to=[a.slack_id for a in admins],
            expires_at=expires_at.isoformat(),
        )
        return StartOutcome(
            "code_sent",
            verification_id=row.id,
            admins=admins,
            expires_at=expires_at,
            code=code,
            **base,
        )


def registered_match(
    session: Session, organisation_id: int, number: str, admin_roles: set[str]
) -> Person | None:
    """The admin of this organisation whose directory phone is `number`, if any. Only an
    admin's number counts as registered: assisted support, calling included, is for
    administrators (SC-1), so anyone else calling goes through the admins' code (SC-22)."""
    people = session.exec(
        select(Person)
        .where(Person.organisation_id == organisation_id, col(Person.phone).is_not(None))
        .order_by(col(Person.id))
    ).all()
    for person in people:
        if not admin_roles.intersection(person.roles):
            continue
        registered = normalise_number(person.phone)
        if registered is not None and same_number(number, registered):
            return person
    return None


# --- checking a code -----------------------------------------------------------------------


def check_code(
    engine: Engine, verification_id: int, agent_slack_id: str, code: str | None, now: datetime
) -> CheckOutcome:
    """Check a code the caller read back. At most five comparisons per code, whatever the
    concurrency; every attempt is audited."""
    cleaned = clean_code(code)
    with Session(engine) as session:
        found = session.get(CallerVerification, verification_id)
        salt = found.salt if found is not None else None
    # The slow hash outside the write transaction; the salt never changes.
    candidate = hash_code(cleaned, bytes.fromhex(salt)) if cleaned and salt else None
    with transaction(engine) as session:
        agent = find_person(session, agent_slack_id)
        row = session.get(CallerVerification, verification_id)
        if row is None:
            return CheckOutcome("no_verification")
        # Locked like a resolve locks it, so the two cannot cross.
        case = session.get(Case, row.case_id, with_for_update=True)
        assert case is not None
        base: dict[str, Any] = {
            "case_id": case.id,
            "case_number": case.number,
            "case_status": case.status,
            "verification_id": row.id,
            "number": row.number,
            "expires_at": row.expires_at,
            "requested_by": row.requested_by,
        }
        if not is_agent(agent):
            _audit(session, case.id or 0, agent, now, "not_agent", row, by=agent_slack_id)
            return CheckOutcome("not_agent", **base)
        assert agent is not None
        if row.requested_by != agent.slack_user_id:
            _audit(session, case.id or 0, agent, now, "not_requester", row)
            return CheckOutcome("not_requester", **base)
        if case.status not in OPEN_STATUSES:
            # resolved or closed while the caller was reading the code: starting a
            # verification needs an open case, and so does finishing one
            _audit(session, case.id or 0, agent, now, "case_closed", row)
            return CheckOutcome("case_closed", **base)
        if candidate is None or row.code_hash is None:
            if row.code_hash is None:  # no code to check (registered number, no admins)
                outcome = "already_verified" if row.status == VERIFIED else "locked"
                _audit(session, case.id or 0, agent, now, outcome, row)
                return CheckOutcome(outcome, attempts_left=0, **base)
            _audit(session, case.id or 0, agent, now, "malformed", row)
            return CheckOutcome("malformed", attempts_left=MAX_ATTEMPTS - row.attempts, **base)
        counted = session.exec(  # type: ignore[call-overload]
            update(CallerVerification)
            .where(
                col(CallerVerification.id) == verification_id,
                col(CallerVerification.status) == PENDING,
                col(CallerVerification.attempts) < MAX_ATTEMPTS,
                col(CallerVerification.expires_at) > now,
            )
            .values(attempts=CallerVerification.attempts + 1)
        )
        if counted.rowcount != 1:
            outcome = _why_not_counted(session, verification_id, now)
            row = session.get(CallerVerification, verification_id, populate_existing=True)
            assert row is not None
            _audit(session, case.id or 0, agent, now, outcome, row)
            scrub_codes(session, case.id or 0, now)
            if outcome == "superseded":
                base.update(_newer_requester(session, row))
            return CheckOutcome(outcome, attempts_left=0, **base)
        row = session.get(CallerVerification, verification_id, populate_existing=True)
        assert row is not None and row.code_hash is not None
        attempt = row.attempts
        if hmac.compare_digest(bytes.fromhex(row.code_hash), candidate):
            session.exec(  # type: ignore[call-overload]
                update(CallerVerification)
                .where(
                    col(CallerVerification.id) == verification_id,
                    col(CallerVerification.status) == PENDING,
                )
                .values(
                    status=VERIFIED,
                    verified_by=agent.slack_user_id,
                    verified_at=now,
                    via=VIA_CODE,
                )
            )
            _audit(
                session, case.id or 0, agent, now, "verified", row, attempt=attempt, via=VIA_CODE
            )
            _refresh_card(session, case.id or 0, row, now)
            scrub_codes(session, case.id or 0, now)
            return CheckOutcome("verified", attempt=attempt, **base)
        left = MAX_ATTEMPTS - attempt
        if left <= 0:
            session.exec(  # type: ignore[call-overload]
                update(CallerVerification)
                .where(
                    col(CallerVerification.id) == verification_id,
                    col(CallerVerification.status) == PENDING,
                )
                .values(status=FAILED)
            )
            _audit(session, case.id or 0, agent, now, "wrong_locked", row, attempt=attempt)
            scrub_codes(session, case.id or 0, now)
            return CheckOutcome("locked", attempt=attempt, attempts_left=0, **base)
        _audit(session, case.id or 0, agent, now, "wrong", row, attempt=attempt)
        return CheckOutcome("wrong", attempt=attempt, attempts_left=left, **base)


def _why_not_counted(session: Session, verification_id: int, now: datetime) -> str:
    row = session.get(CallerVerification, verification_id, populate_existing=True)
    assert row is not None
    if row.status == PENDING and row.expires_at is not None and row.expires_at <= now:
        session.exec(  # type: ignore[call-overload]
            update(CallerVerification)
            .where(
                col(CallerVerification.id) == verification_id,
                col(CallerVerification.status) == PENDING,
            )
            .values(status=EXPIRED)
        )
        return "expired"
    return {
        VERIFIED: "already_verified",
        EXPIRED: "expired",
        SUPERSEDED: "superseded",
    }.get(row.status, "locked")


def _newer_requester(session: Session, row: CallerVerification) -> dict[str, str | None]:
    """Who started the verification that superseded `row` (the newest one of its case)."""
    newer = session.exec(
        select(CallerVerification)
        .where(
            col(CallerVerification.case_id) == row.case_id,
            col(CallerVerification.id) > (row.id or 0),
        )
        .order_by(col(CallerVerification.id).desc())
        .limit(1)
    ).first()
    if newer is None:
        return {}
    person = find_person(session, newer.requested_by)
    return {
        "superseded_by": newer.requested_by,
        "superseded_by_name": person.name if person else None,
    }


# --- shared pieces -------------------------------------------------------------------------


def _audit(
    session: Session,
    case_id: int,
    actor: Person | None,
    now: datetime,
    outcome: str,
    row: CallerVerification,
    attempt: int | None = None,
    **extra: Any,
) -> None:
    """One audit event per step. Never the code (nor its hash)."""
    record_event(
        session,
        case_id,
        EVENT_KIND,
        now,
        actor_id=actor.id if actor else None,
        to_value=outcome,
        detail={
            "outcome": outcome,
            "verification_id": row.id,
            "attempt": attempt,
            "max_attempts": MAX_ATTEMPTS if row.code_hash else None,
            "number": row.number,
            **extra,
        },
    )


def _refresh_card(session: Session, case_id: int, row: CallerVerification, now: datetime) -> None:
    enqueue(
        session,
        key=f"{case_id}:card:verification:{row.id}",
        kind=CARD_REFRESH,
        case_id=case_id,
        now=now,
    )


def scrub_codes(session: Session, case_id: int, now: datetime) -> int:
    """Blank the code in this case's code DMs that no longer need it: sent or parked ones,
    and those whose verification is not pending any more (or expired). Returns how many."""
    live = set(
        session.exec(
            select(CallerVerification.id).where(
                col(CallerVerification.case_id) == case_id,
                col(CallerVerification.status) == PENDING,
                col(CallerVerification.expires_at) > now,
            )
        ).all()
    )
    rows = session.exec(
        select(OutboxMessage).where(
            col(OutboxMessage.case_id) == case_id, col(OutboxMessage.kind) == CODE_NOTICE
        )
    ).all()
    scrubbed = 0
    for message in rows:
        payload = dict(message.payload or {})
        if payload.get("code") is None:
            continue
        if message.status == "pending" and payload.get("verification_id") in live:
            continue
        payload["code"] = None
        session.exec(  # type: ignore[call-overload]
            update(OutboxMessage).where(col(OutboxMessage.id) == message.id).values(payload=payload)
        )
        scrubbed += 1
    return scrubbed


# --- what people read ----------------------------------------------------------------------


def _escape(text: str) -> str:
    """Slack mrkdwn's three special characters (as handlers/text.py escape)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Built once: every card posted or refreshed asks it.
_LATEST_VERIFIED = (
    select(CallerVerification)
    .where(
        col(CallerVerification.case_id) == bindparam("case_id"),
        col(CallerVerification.status) == VERIFIED,
    )
    .order_by(col(CallerVerification.verified_at).desc(), col(CallerVerification.id).desc())
    .limit(1)
)


def verification_line(
    session: Session, case: Case, timezone: str, zone_label: str | None = None
) -> str | None:
    """The case card's line for the latest successful verification (mrkdwn), e.g.
    "Caller verified by <@U0AGENT1> at Wed 25 Nov, 10:05 Beijing time (registered number
    …0101)"; None when the caller of this case was never verified."""
    row = session.exec(_LATEST_VERIFIED, params={"case_id": case.id}).first()
    if row is None or row.verified_at is None or row.verified_by is None:
        return None
    how = (
        f"registered number {masked(row.number)}"
        if row.via == VIA_REGISTERED_NUMBER
        else f"one-time code, calling from {masked(row.number)}"
    )
    at = format_instant(row.verified_at, timezone, zone_label)
    return f"Caller verified by <@{row.verified_by}> at {at} ({how})"


def code_notice_text(
    session: Session,
    case_id: int | None,
    payload: dict[str, Any],
    now: datetime,
    timezone: str,
    zone_label: str | None = None,
    *,
    admin_roles: set[str],
) -> str | None:
    """The DM to an admin for an outbox row of kind `verification.code` (mrkdwn), or None
    when there is nothing worth sending any more (code blanked, verification no longer
    pending, or expired, case resolved or closed) or the recipient is no longer an admin
    of the case's organisation (a DM that waited for a retry while the roster dropped
    them: SC-22 sends the code to the admins registered on the profile, and only to them)."""
    code = payload.get("code")
    row = session.get(CallerVerification, payload.get("verification_id") or -1)
    case = session.get(Case, case_id) if case_id is not None else None
    if (
        not code
        or row is None
        or case is None
        or case.status not in OPEN_STATUSES
        or row.status != PENDING
        or row.expires_at is None
        or row.expires_at <= now
    ):
        return None
    recipient = find_person(session, payload.get("user") or "")
    if (
        recipient is None
        or recipient.organisation_id != case.organisation_id
        or not admin_roles.intersection(recipient.roles)
    ):
        return None
    organisation = session.get(Organisation, case.organisation_id)
    agent = find_person(session, row.requested_by)
    agent_text = f"<@{row.requested_by}>" + (f" ({_escape(agent.name)})" if agent else "")
    org = _escape(organisation.name) if organisation else "your organisation"
    until = format_instant(row.expires_at, timezone, zone_label)
    if recipient.tz and recipient.tz != timezone:  # as the desk's other DMs: theirs first
        until = f"{format_instant(row.expires_at, recipient.tz)} your time ({until})"
    return (
        f":lock: *Verification code for support case {case.number}*: `{code}`\n"
        f"{agent_text} from support is on the phone with someone who says they speak for "
        f"{org} and calls from {row.number}, a number not registered on your "
        f"organisation's profile (SC-22).\n"
        f"Read this code to the support agent *only if you are on that call with them*. "
        f"It expires at {until}. If you are not on a call with support, do not share it."
    )


# --- e-mail --------------------------------------------------------------------------------


def smtp_url() -> str:
    return os.environ.get(SMTP_ENV, "").strip()


def smtp_problem(url: str) -> str | None:
    """Why codes could not be e-mailed with `url` (never repeating it: it may hold a
    password), or None when it is usable or not set."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("smtp", "smtps", "smtp+starttls"):
        return "not an smtp://, smtps:// or smtp+starttls:// URL"
    try:
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError:
        return "the port is not a number (or out of range)"
    if not parts.hostname:
        return "no host (smtp://host:port?from=addr)"
    return None


def send_code_email(
    outcome: StartOutcome,
    timezone: str,
    zone_label: str | None = None,
    url: str | None = None,
) -> list[str]:
    """E-mail the code to the admins' registered addresses when SMTP is configured
    (`CHATOPS_SMTP_URL`: `smtp://[user:pass@]host[:port][?from=addr]`, `smtps://` for TLS
    from the start, `smtp+starttls://` to upgrade). Best effort after the request: the DM in
    the outbox is the guaranteed path. Returns the addresses it was sent to."""
    url = smtp_url() if url is None else url
    if not url or outcome.outcome != "code_sent" or not outcome.code:
        return []
    recipients = [a.email for a in outcome.admins if a.email]
    if not recipients:
        return []
    problem = smtp_problem(url)
    if problem:
        log.error("%s: %s", SMTP_ENV, problem)
        return []
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = str(parts.hostname)
    port = parts.port or (465 if scheme == "smtps" else 25)
    sender = parse_qs(parts.query).get("from", [f"support-desk@{host}"])[0]
    until = format_instant(outcome.expires_at, timezone, zone_label) if outcome.expires_at else ""
    message = EmailMessage()
    message["Subject"] = f"Verification code for support case {outcome.case_number}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content(
        f"Support case {outcome.case_number} ({outcome.organisation}): "
        f"{outcome.agent_name} from support is on the phone with someone who says they speak "
        f"for your organisation and calls from {outcome.number}, a number not "
        f"registered on your organisation's profile.\n\n"
        f"Verification code: {outcome.code}\n\n"
        f"Read this code to the support agent only if you are on that call with them. "
        f"It expires at {until}. If you are not on a call with support, do not share it.\n"
    )
    try:
        smtp_class = smtplib.SMTP_SSL if scheme == "smtps" else smtplib.SMTP
        with smtp_class(host, port, timeout=10) as smtp:
            if scheme == "smtp+starttls":
                smtp.starttls()
            if parts.username:
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning(
            "verification e-mail for %s not sent (%s); the Slack DM still goes out",
            outcome.case_number,
            type(exc).__name__,
        )
        return []
    log.info(
        "verification code for %s e-mailed to %d admin address(es)",
        outcome.case_number,
        len(recipients),
    )
    return recipients
