"""Who is on call, from the rotations and overrides stored by `chatops load` and by leads."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from chatops.db import insert_if_absent, transaction
from chatops.directory import find_person, is_agent, is_lead
from chatops.oncall import Override, Rotation, Shift, next_shift, on_call_at
from models import OnCallOverride, RotationRecord, SweepMark

HANDOFF_MARK = "handoff"
"""The sweep mark up to which changes of who is on call have been handed off."""


def rotation_from(record: RotationRecord) -> Rotation:
    hour, minute = (int(part) for part in record.handoff.split(":"))
    return Rotation(
        name=record.name,
        members=tuple(record.members),
        shift=record.shift,
        handoff=time(hour, minute),
        timezone=record.timezone,
        start=record.start,
    )


def load_rotations(session: Session) -> dict[str, Rotation]:
    """Every rotation, by name."""
    records = session.exec(select(RotationRecord).order_by(RotationRecord.name)).all()
    return {record.name: rotation_from(record) for record in records}


READ_HORIZON = datetime(9000, 1, 1, tzinfo=UTC)
"""Stored overrides are read as ending here at the latest.

:func:`add_override` keeps new ones within a year, but a row stored before that check (or by
the roster, or by hand) may end in year 9999, where the rotation arithmetic after it and
showing it in a time zone east of UTC overflow. Read this way, such a row still puts its
person on call for as long as anyone will care, and `/support oncall` keeps answering."""


def load_overrides(session: Session, rotation: str, after: datetime) -> list[Override]:
    """Overrides of a rotation that end after `after`, oldest first (later ones win); ends
    past :data:`READ_HORIZON` are read as ending there (rows starting after it are skipped)."""
    rows = session.exec(
        select(OnCallOverride)
        .where(OnCallOverride.rotation == rotation, OnCallOverride.ends_at > after)  # type: ignore[operator]
        .order_by(OnCallOverride.id)  # type: ignore[arg-type]
    ).all()
    return [
        Override(
            rotation=row.rotation,
            person=row.person,
            starts_at=row.starts_at,
            ends_at=min(row.ends_at, READ_HORIZON),
            covers=row.covers,
        )
        for row in rows
        if row.starts_at < READ_HORIZON
    ]


def who_is_on_call(session: Session, rotation_name: str, at: datetime) -> Shift | None:
    """The shift on at `at` (its person may be None: a gap); None if no such rotation."""
    rotation = load_rotations(session).get(rotation_name)
    if rotation is None:
        return None
    return on_call_at(rotation, load_overrides(session, rotation_name, at), at)


def now_and_next(session: Session, at: datetime) -> list[tuple[Rotation, Shift, Shift | None]]:
    """For `/support oncall`: each rotation with its current and next shift."""
    out = []
    for name, rotation in load_rotations(session).items():
        overrides = load_overrides(session, name, at)
        out.append(
            (rotation, on_call_at(rotation, overrides, at), next_shift(rotation, overrides, at))
        )
    return out


class OverrideRefused(ValueError):
    """An override that cannot be added; the message says why (plain text: it may contain
    what the lead typed, so whoever shows it in Slack escapes it)."""


OVERRIDE_GRACE = timedelta(hours=24)
"""How long ago an override may have started (a cover that began earlier today)."""

OVERRIDE_HORIZON = timedelta(days=366)
"""How far ahead of now an override may end."""

OVERRIDE_MAX_LENGTH = timedelta(days=31)
"""How long one override may last; longer arrangements belong in the roster's rotations."""


def check_override_times(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    """Raise :class:`OverrideRefused` unless ``[starts_at, ends_at)`` is an interval a support
    desk would mean by an override. Accepted intervals:

    * end after they start, and have not already ended at ``now``;
    * start no earlier than 24 hours before ``now`` (:data:`OVERRIDE_GRACE`): a lead may
      record a cover that began earlier today, but an override does not rewrite older history;
    * end no later than 366 days after ``now`` (:data:`OVERRIDE_HORIZON`): rotas are planned
      months ahead, not decades;
    * last at most 31 days (:data:`OVERRIDE_MAX_LENGTH`): a holiday or a leave, not a new
      rotation (change the roster for that).

    So every stored override lies within about a year of the day it was added, far from the
    ends of ``datetime`` (year 1 and year 9999 overflowed storing it or the schedule
    arithmetic after it). The window is checked by comparing aware datetimes, which never
    overflows, before anything converts them.
    """
    if ends_at <= starts_at:
        raise OverrideRefused("The end must be after the start.")
    if ends_at <= now:
        raise OverrideRefused("That interval is already over.")
    if starts_at < now - OVERRIDE_GRACE:
        hours = OVERRIDE_GRACE // timedelta(hours=1)
        raise OverrideRefused(f"An override cannot start more than {hours} hours ago.")
    if ends_at > now + OVERRIDE_HORIZON:
        raise OverrideRefused(
            f"An override cannot end more than a year ({OVERRIDE_HORIZON.days} days) from now."
        )
    # both are within a year of now here, so converting them is safe; UTC so that a DST
    # change inside the interval counts as the real hour it is
    if ends_at.astimezone(UTC) - starts_at.astimezone(UTC) > OVERRIDE_MAX_LENGTH:
        raise OverrideRefused(
            f"An override can last at most {OVERRIDE_MAX_LENGTH.days} days; "
            "for longer changes, change the rotation in the roster."
        )


def add_override(
    engine: Engine,
    rotation: str,
    person: str,
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    now: datetime,
    covers: str | None = None,
) -> bool:
    """A lead puts someone on call for an interval (beats the rotation). Idempotent: the
    same override submitted twice is stored once. Returns True if it was new. Raises
    :class:`OverrideRefused` for a non-lead, an unknown rotation, a person who is not an
    agent, or times outside the window of :func:`check_override_times`."""
    with transaction(engine) as session:
        lead = find_person(session, created_by)
        if not is_lead(lead):
            raise OverrideRefused("Only support leads can change who is on call.")
        if rotation not in load_rotations(session):
            names = ", ".join(load_rotations(session)) or "none are loaded"
            raise OverrideRefused(f"There is no rotation `{rotation}` (rotations: {names}).")
        if not is_agent(find_person(session, person)):
            raise OverrideRefused("Only support agents can be put on call.")
        check_override_times(starts_at, ends_at, now)
        added = insert_if_absent(
            session,
            OnCallOverride,
            {
                "key": f"slack:{rotation}:{person}:{starts_at.isoformat()}:{ends_at.isoformat()}",
                "rotation": rotation,
                "person": person,
                "covers": covers,
                "starts_at": starts_at,
                "ends_at": ends_at,
                "created_by": created_by,
            },
            ["key"],
        )
        if added:
            reopen_handoffs(session, starts_at)
        return added


def reopen_handoffs(session: Session, changed_from: datetime) -> None:
    """Take the handoff sweep's mark back to just before `changed_from` if it has passed it.

    Call it in the transaction that stores an override, or changes one, from `changed_from`
    on (:func:`add_override`, and the roster's load). The sweep hands off the changes after
    its mark, so an override from an instant it has already swept ("from now", typed seconds
    into the minute) would change who is on call with nobody told. Its next sweep reports the
    change; changes it reported before keep their outbox keys and are not sent again. Locking
    the mark orders this against a sweep running now: either that sweep reads the new
    override, or this sees the mark it moved.
    """
    mark = session.exec(
        select(SweepMark).where(SweepMark.name == HANDOFF_MARK).with_for_update()
    ).first()
    if mark is not None and mark.swept_until >= changed_from:
        mark.swept_until = changed_from - timedelta(microseconds=1)
