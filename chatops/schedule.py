"""Who is on call, from the rotations and overrides stored by `chatops load` and by leads."""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import Engine
from sqlmodel import Session, select

from chatops.db import insert_if_absent, transaction
from chatops.directory import find_person, is_agent, is_lead
from chatops.oncall import Override, Rotation, Shift, next_shift, on_call_at
from models import OnCallOverride, RotationRecord


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


def load_overrides(session: Session, rotation: str, after: datetime) -> list[Override]:
    """Overrides of a rotation that end after `after`, oldest first (later ones win)."""
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
            ends_at=row.ends_at,
            covers=row.covers,
        )
        for row in rows
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
    """An override that cannot be added; the message says why."""


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
    same override submitted twice is stored once. Returns True if it was new."""
    with transaction(engine) as session:
        lead = find_person(session, created_by)
        if not is_lead(lead):
            raise OverrideRefused("Only support leads can change who is on call.")
        if rotation not in load_rotations(session):
            names = ", ".join(load_rotations(session)) or "none are loaded"
            raise OverrideRefused(f"There is no rotation `{rotation}` (rotations: {names}).")
        if not is_agent(find_person(session, person)):
            raise OverrideRefused("Only support agents can be put on call.")
        if ends_at <= starts_at:
            raise OverrideRefused("The end must be after the start.")
        if ends_at <= now:
            raise OverrideRefused("That interval is already over.")
        return insert_if_absent(
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
