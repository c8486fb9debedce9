"""Reading the directory: who someone is, which organisation, which channel."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, bindparam, update
from sqlmodel import Session, select

from chatops.db import transaction
from models import BotChannel, Organisation, Person

# Built once: nearly every request asks who the sender is, and building the statement costs
# more than the database answering it.
_PERSON = select(Person).where(Person.slack_user_id == bindparam("slack_user_id"))
_REQUESTER = (
    select(Person, Organisation)
    .join(Organisation, Person.organisation_id == Organisation.id, isouter=True)  # type: ignore[arg-type]
    .where(Person.slack_user_id == bindparam("slack_user_id"))
)

_CHANNEL_ID = select(BotChannel.channel_id).where(BotChannel.purpose == bindparam("purpose"))


def find_person(session: Session, slack_user_id: str) -> Person | None:
    """The person with this Slack user id, or None if the directory does not know them."""
    return session.exec(_PERSON, params={"slack_user_id": slack_user_id}).first()


def find_requester(
    session: Session, slack_user_id: str
) -> tuple[Person | None, Organisation | None]:
    """`find_person` and `organisation_of` in one query: what every request from a customer
    asks first (who is this, which organisation), one round trip instead of two."""
    row = session.exec(_REQUESTER, params={"slack_user_id": slack_user_id}).first()
    if row is None:
        return None, None
    return row[0], row[1]


def organisation_of(session: Session, person: Person) -> Organisation | None:
    """The customer organisation a person belongs to (None for support staff)."""
    if person.organisation_id is None:
        return None
    return session.get(Organisation, person.organisation_id)


def admins_of(session: Session, organisation_id: int, admin_roles: set[str]) -> list[Person]:
    """The admins of an organisation (SC-1: the people a non-admin should ask)."""
    people = session.exec(
        select(Person).where(Person.organisation_id == organisation_id).order_by(Person.name)
    ).all()
    return [p for p in people if any(role in admin_roles for role in p.roles)]


def is_admin_of(person: Person | None, organisation_id: int, admin_roles: set[str]) -> bool:
    """SC-1: `person` is one of this organisation's admins now. A case's requester speaks
    for its organisation only while this holds: one who has left the roster, lost the admin
    role or moved to another organisation no longer hears of the case nor acts on it (one
    organisation never sees another's cases)."""
    return (
        person is not None
        and person.organisation_id == organisation_id
        and any(role in admin_roles for role in person.roles)
    )


def is_agent(person: Person | None) -> bool:
    """Support staff who may work cases: agents and leads, who belong to no customer
    organisation. The roster refuses a staff role for someone in an organisation; a row
    stored with both (edited by hand, or from before that check) fails closed: a customer
    must never work another organisation's cases."""
    return (
        person is not None
        and person.organisation_id is None
        and ("agent" in person.roles or "lead" in person.roles)
    )


def is_lead(person: Person | None) -> bool:
    """A support lead (staff, as `is_agent`)."""
    return is_agent(person) and person is not None and "lead" in person.roles


def channel_for(session: Session, purpose: str) -> str | None:
    """The channel id configured for a purpose ("triage", "handoff", ...)."""
    return session.exec(_CHANNEL_ID, params={"purpose": purpose}).first()  # type: ignore[no-any-return]


def known_zone(name: str) -> bool:
    """True for an IANA time zone name this machine knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def learn_timezone(engine: Engine, slack_user_id: str, tz: str | None) -> None:
    """Remember the time zone Slack reports for someone the roster gave none for."""
    if not tz or not known_zone(tz):
        return
    with transaction(engine) as session:
        session.exec(  # type: ignore[call-overload]
            update(Person)
            .where(Person.slack_user_id == slack_user_id, Person.tz.is_(None))  # type: ignore[union-attr]
            .values(tz=tz)
        )
