"""The roster file: organisations, people and their roles, and the bot's channels.

`load_roster` validates the whole file before touching the database and upserts everything
in one transaction, so an invalid file changes nothing and loading the same file twice is a
no-op. People and organisations missing from a later file are kept: the roster adds and
updates, it never deletes (cases refer to them), but someone left out loses their roles and
phone, and the open cases of an owner who is no longer support staff go back to the
unclaimed queue (:func:`_release_cases`). The roster's own on-call overrides follow the
file (see :func:`load_roster`); those leads add from Slack are left alone while their person
is support staff.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Engine
from sqlmodel import Session, select

from chatops.cases import states
from chatops.cases.events import record_event
from chatops.cases.notices import CARD_REFRESH, CASE_RELEASED, REQUESTER_GONE
from chatops.db import insert_if_absent, transaction
from chatops.directory.lookup import is_admin_of, is_agent, known_zone
from chatops.oncall import parse_shift
from chatops.outbox import Notice, enqueue_many
from chatops.paging import hurry_pages_of_leavers, start_page
from chatops.policy import Policy, SupportRules
from chatops.schedule import reopen_handoffs
from chatops.yamlfile import FileError, explain, problem_at, read_with_lines
from models import BotChannel, Case, OnCallOverride, Organisation, Person, RotationRecord

STAFF_ROLES = {"agent": "Support agent", "lead": "Support lead"}
ROSTER_AUTHOR = "roster"
"""`created_by` of the overrides the roster file stores (a Slack-added one names its lead)."""
# At most 32 characters, the columns' length (models/directory.py): a longer id would load
# on SQLite and fail the whole load on PostgreSQL.
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,31}$")
_SLACK_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,31}$")
_EMAIL = re.compile(r"^(?=.{3,254}$)[^@\s]+@[^@\s]+\.[^@\s]+$")
# An area code may come first in brackets, "(010) 5555 0101"; the intake form takes the
# same forms (cases/intake.py) and caller verification ignores the brackets (SC-22).
_PHONE = re.compile(r"^\+?\(?[0-9][0-9 ()\-]{5,30}$")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartnerEntry(_Entry):
    name: str = Field(min_length=1, max_length=200)
    contact: str = Field(min_length=1, max_length=300)


class OrganisationEntry(_Entry):
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    subscription: Literal["direct", "partner"] = "direct"
    partner: PartnerEntry | None = None
    online_services_agreement: bool = False


class PersonEntry(_Entry):
    slack_id: str
    name: str = Field(min_length=1, max_length=200)
    email: str | None = None
    phone: str | None = None
    organisation: str | None = None
    roles: list[str] = []
    tz: str | None = None  # IANA zone; learnt from Slack when not given

    @field_validator("tz")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        if value is not None and not known_zone(value):
            raise ValueError(f"unknown time zone {value!r}")
        return value

    @field_validator("slack_id")
    @classmethod
    def _slack_id(cls, value: str) -> str:
        if not _SLACK_USER.match(value):
            raise ValueError(f"{value!r} is not a Slack user id (like U012ABCDEF)")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an email address")
        return value

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, value: object) -> object:
        if value is not None and not _PHONE.match(str(value)):
            raise ValueError(f"{value!r} is not a phone number")
        return None if value is None else str(value)


class RotationEntry(_Entry):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    members: list[str]
    shift: str = "weekly"  # daily | weekly | 12h, 8h … (whole hours)
    handoff: str = Field(default="09:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    timezone: str
    start: date

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        if not known_zone(value):
            raise ValueError(f"unknown time zone {value!r}")
        return value

    @field_validator("shift")
    @classmethod
    def _shift(cls, value: str) -> str:
        parse_shift(value)  # raises ValueError with the reason
        return value


class OverrideEntry(_Entry):
    rotation: str
    person: str
    covers: str | None = None
    starts: datetime = Field(alias="from")
    ends: datetime = Field(alias="until")

    @field_validator("starts", "ends")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give the time zone offset, e.g. 2026-11-26T18:00+08:00")
        return value


class RosterFile(_Entry):
    channels: dict[str, str]
    organisations: list[OrganisationEntry] = []
    people: list[PersonEntry] = []
    rotations: list[RotationEntry] = []
    overrides: list[OverrideEntry] = []


@dataclass(frozen=True)
class LoadSummary:
    """What a load changed."""

    organisations_added: int = 0
    organisations_updated: int = 0
    people_added: int = 0
    people_updated: int = 0
    people_retired: int = 0  # stored, not in the file: roles and phone taken away
    channels_set: int = 0
    rotations_set: int = 0
    rotations_removed: int = 0  # stored, not in the file: nobody is on call from it any more
    overrides_added: int = 0
    overrides_updated: int = 0  # `until` or `covers` edited in the file
    overrides_removed: int = 0  # stored, not in the file: ended now, or dropped if not begun
    cases_released: int = 0  # open cases whose owner is no longer support staff: unclaimed
    requesters_gone: int = 0  # open cases whose requester is no longer an admin of its org

    @property
    def changed(self) -> bool:
        return any(
            (
                self.organisations_added,
                self.organisations_updated,
                self.people_added,
                self.people_updated,
                self.people_retired,
                self.channels_set,
                self.rotations_set,
                self.rotations_removed,
                self.overrides_added,
                self.overrides_updated,
                self.overrides_removed,
                self.cases_released,
                self.requesters_gone,
            )
        )


def read_roster(path: str | Path, policy: Policy) -> RosterFile:
    """Validate a roster file completely (shape and cross-references) without side effects."""
    name = str(path)
    data, lines = read_with_lines(path)
    try:
        roster = RosterFile.model_validate(data)
    except ValidationError as exc:
        raise explain(exc, lines, name) from None
    known_roles = set(policy.admin_roles) | set(STAFF_ROLES)
    problems: list[str] = []
    if "triage" not in roster.channels:
        problems.append(problem_at(("channels",), "a `triage` channel is required", lines))
    for purpose, channel in roster.channels.items():
        if not _SLACK_CHANNEL.match(str(channel)):
            problems.append(
                problem_at(("channels", purpose), f"{channel!r} is not a channel id", lines)
            )
    org_keys: set[str] = set()
    for i, org in enumerate(roster.organisations):
        if org.key in org_keys:
            problems.append(problem_at(("organisations", i, "key"), "duplicate key", lines))
        org_keys.add(org.key)
        if org.subscription == "partner" and org.partner is None:
            problems.append(
                problem_at(
                    ("organisations", i),
                    "an organisation that buys through a partner needs `partner` "
                    "(name and contact)",
                    lines,
                )
            )
    slack_ids: set[str] = set()
    for i, person in enumerate(roster.people):
        if person.slack_id in slack_ids:
            problems.append(problem_at(("people", i, "slack_id"), "duplicate Slack id", lines))
        slack_ids.add(person.slack_id)
        for j, role in enumerate(person.roles):
            if role not in known_roles:
                problems.append(
                    problem_at(
                        ("people", i, "roles", j),
                        f"unknown role {role!r} (known: {', '.join(sorted(known_roles))})",
                        lines,
                    )
                )
        if person.organisation is not None and person.organisation not in org_keys:
            problems.append(
                problem_at(
                    ("people", i, "organisation"),
                    f"no organisation with key {person.organisation!r}",
                    lines,
                )
            )
        is_admin = any(role in policy.admin_roles for role in person.roles)
        if is_admin and person.organisation is None:
            problems.append(
                problem_at(("people", i), "an admin must belong to an organisation", lines)
            )
        if person.organisation is not None and any(role in STAFF_ROLES for role in person.roles):
            problems.append(
                problem_at(
                    ("people", i),
                    "support agents and leads belong to no customer organisation (a "
                    "customer with a staff role would work other organisations' cases)",
                    lines,
                )
            )
    # SC-17: who is on call is paged for Sev A and must be able to acknowledge the page
    staff = {
        person.slack_id: person.name
        for person in roster.people
        if any(role in STAFF_ROLES for role in person.roles)
    }
    names = {person.slack_id: person.name for person in roster.people}
    rotation_names: set[str] = set()
    for i, rotation in enumerate(roster.rotations):
        if rotation.name in rotation_names:
            problems.append(problem_at(("rotations", i, "name"), "duplicate rotation", lines))
        rotation_names.add(rotation.name)
        for j, member in enumerate(rotation.members):
            if member not in slack_ids:
                problems.append(
                    problem_at(
                        ("rotations", i, "members", j), f"{member!r} is not in people", lines
                    )
                )
            elif member not in staff:
                problems.append(
                    problem_at(
                        ("rotations", i, "members", j),
                        f"{member!r} ({names[member]}) is in rotation {rotation.name!r} but is "
                        "not a support agent or lead: only they can be on call (and "
                        "acknowledge a Sev A page)",
                        lines,
                    )
                )
    # an override is known by its rotation, person and start (its stored key): a second
    # entry with all three would be the same override with another end
    override_starts: set[tuple[str, str, datetime]] = set()
    for i, override in enumerate(roster.overrides):
        same = (override.rotation, override.person, override.starts)
        if same in override_starts:
            problems.append(
                problem_at(
                    ("overrides", i),
                    "duplicate override (the same rotation, person and `from`)",
                    lines,
                )
            )
        override_starts.add(same)
        if override.rotation not in rotation_names:
            problems.append(
                problem_at(
                    ("overrides", i, "rotation"), f"no rotation {override.rotation!r}", lines
                )
            )
        for field in ("person", "covers"):
            who = getattr(override, field)
            if who is not None and who not in slack_ids:
                problems.append(
                    problem_at(("overrides", i, field), f"{who!r} is not in people", lines)
                )
        if override.person in slack_ids and override.person not in staff:
            problems.append(
                problem_at(
                    ("overrides", i, "person"),
                    f"{override.person!r} ({names[override.person]}) is put on call for "
                    f"{override.rotation!r} but is not a support agent or lead: only they "
                    "can be on call (and acknowledge a Sev A page)",
                    lines,
                )
            )
        if override.ends <= override.starts:
            problems.append(problem_at(("overrides", i), "`until` must be after `from`", lines))
    if problems:
        raise FileError(name, problems)
    return roster


def load_roster(
    engine: Engine,
    path: str | Path,
    policy: Policy,
    now: Callable[[], datetime] | None = None,
) -> LoadSummary:
    """Validate the file, then upsert it in one transaction.

    The overrides the roster stored before are made to match the file's, as of `now` (the
    process clock; the wall clock when not given). An override is known by its rotation,
    person and `from`:

    * a new one is stored; an edited `until` (or `covers`) is applied to the stored one,
      which keeps its place among the overrides (a later-added one still beats it);
    * one the file no longer lists is dropped if it has not begun, ends now if it is running
      (who held the pager until now stays true), and is kept if it is over (it is history);
    * overrides added from Slack are left alone, unless their person is no longer support
      staff after the load: those are ended or dropped the same way.

    Adding, editing or ending an override changes who is on call from its start. Unless it
    is all over (it ended before `now`, and did before the edit), it is handed off as a
    Slack-added override is: the handoff sweep's mark goes back to its start
    (:func:`chatops.schedule.reopen_handoffs`), and the next sweep posts each change of person
    from then that was not posted before. A stretch with another end is another handoff, so
    the change at its start is posted again with the new end (the incoming person learns how
    long they hold the pager). As for any sweep, changes more than a day old
    (``OVERRIDE_GRACE``) are not posted.
    """
    roster = read_roster(path, policy)
    stamp = (now or (lambda: datetime.now(UTC)))()
    with transaction(engine) as session:
        return _upsert(session, roster, policy, stamp)


def _upsert(session: Session, roster: RosterFile, policy: Policy, now: datetime) -> LoadSummary:
    counts = dict.fromkeys(
        (
            "organisations_added",
            "organisations_updated",
            "people_added",
            "people_updated",
            "people_retired",
            "channels_set",
            "rotations_set",
            "rotations_removed",
            "overrides_added",
            "overrides_updated",
            "overrides_removed",
            "cases_released",
            "requesters_gone",
        ),
        0,
    )
    admin_roles = set(policy.admin_roles)
    speaking = _speaking_for(session, admin_roles)
    for purpose, channel_id in roster.channels.items():
        row = session.get(BotChannel, purpose)
        if row is None:
            session.add(BotChannel(purpose=purpose, channel_id=channel_id))
            counts["channels_set"] += 1
        elif row.channel_id != channel_id:
            row.channel_id = channel_id
            counts["channels_set"] += 1
    org_ids: dict[str, int] = {}
    for entry in roster.organisations:
        wanted = {
            "name": entry.name,
            "subscription": entry.subscription,
            "partner_name": entry.partner.name if entry.partner else None,
            "partner_contact": entry.partner.contact if entry.partner else None,
            "online_services_agreement": entry.online_services_agreement,
        }
        org = session.exec(select(Organisation).where(Organisation.key == entry.key)).first()
        if org is None:
            org = Organisation(key=entry.key, **wanted)
            session.add(org)
            counts["organisations_added"] += 1
        elif _apply(org, wanted):
            counts["organisations_updated"] += 1
        session.flush()
        assert org.id is not None
        org_ids[entry.key] = org.id
    for entry in roster.people:
        wanted_person = {
            "name": entry.name,
            "email": entry.email,
            "phone": entry.phone,
            "organisation_id": org_ids[entry.organisation] if entry.organisation else None,
            "roles": list(entry.roles),
        }
        if entry.tz is not None:  # otherwise keep what Slack told us
            wanted_person["tz"] = entry.tz
        person = session.exec(select(Person).where(Person.slack_user_id == entry.slack_id)).first()
        if person is None:
            session.add(Person(slack_user_id=entry.slack_id, **wanted_person))
            counts["people_added"] += 1
        elif _apply(person, wanted_person):
            counts["people_updated"] += 1
    # The file is the whole directory: someone no longer in it keeps their row (their cases
    # and the audit trail refer to it) but nothing it granted — no roles (they can no longer
    # open, see or work cases, or be on call) and no phone (it no longer verifies a caller,
    # and no verification code goes to them).
    listed = {entry.slack_id for entry in roster.people}
    for person in session.exec(select(Person)):
        if person.slack_user_id not in listed and _apply(person, {"roles": [], "phone": None}):
            counts["people_retired"] += 1
    for entry in roster.rotations:
        wanted_rotation = {
            "members": list(entry.members),
            "shift": entry.shift,
            "handoff": entry.handoff,
            "timezone": entry.timezone,
            "start": entry.start,
        }
        record = session.get(RotationRecord, entry.name)
        if record is None:
            session.add(RotationRecord(name=entry.name, **wanted_rotation))
            counts["rotations_set"] += 1
        elif _apply(record, wanted_rotation):
            counts["rotations_set"] += 1
    # Rotations are the file's too: one taken out of it pages and hands shifts to nobody
    # (its step in the escalation is skipped like a gap). Nothing refers to its row.
    rotation_names = {entry.name for entry in roster.rotations}
    for record in session.exec(select(RotationRecord)).all():
        if record.name not in rotation_names:
            session.delete(record)
            counts["rotations_removed"] += 1
    _sync_overrides(session, roster.overrides, now, counts)
    _release_cases(session, policy, now, counts)  # after the rotations: a page reads them
    hurry_pages_of_leavers(session, now)
    for case_id in sorted(speaking - _speaking_for(session, admin_roles)):
        enqueue_many(
            session,
            [
                Notice(
                    f"{case_id}:requester_gone:{now.isoformat()}",
                    REQUESTER_GONE,
                    case_id,
                    {"to": "thread"},
                )
            ],
            now,
        )
        counts["requesters_gone"] += 1
    return LoadSummary(**counts)


def _speaking_for(session: Session, admin_roles: set[str]) -> set[int]:
    """The open cases whose requester is one of the case's organisation's admins.

    One who is not any more (left out of the file, admin role taken away, moved to another
    organisation) no longer hears of the case or acts on it (SC-1; one organisation never
    sees another's cases; :func:`chatops.directory.is_admin_of`): the case stays its
    organisation's and support works it on, told at the load in its triage thread, with the
    organisation's admins now, since replies no longer reach anyone. It is the load that
    changes this, so only the load that does says so."""
    return {
        case.id
        for case, requester in session.exec(
            select(Case, Person)
            .join(Person, Person.id == Case.requester_id)  # type: ignore[arg-type]
            .where(Case.status.in_(states.OPEN_STATUSES))  # type: ignore[attr-defined]
        ).all()
        if case.id is not None and is_admin_of(requester, case.organisation_id, admin_roles)
    }


def _release_cases(session: Session, policy: Policy, now: datetime, counts: dict[str, int]) -> None:
    """Hand the open cases of owners who are no longer support staff (left out of the file,
    no agent or lead role any more, moved into a customer organisation) back to the
    unclaimed queue.

    Such an owner can no longer work the case, and while they own it nobody else can claim
    it, it is in nobody's *mine* queue, and its SLA notices and Sev A reminders go to them.
    A claimed case becomes new again; one further on keeps its status (its first response
    stands). The triage thread is told, and a Sev A case pages on-call as a new one does
    (SC-17: continuous effort needs someone on it). A case already released has no owner,
    so loading the file again releases nothing."""
    owned = session.exec(
        select(Case, Person)
        .join(Person, Person.id == Case.assignee_id)  # type: ignore[arg-type]
        .where(Case.status.in_(states.OPEN_STATUSES))  # type: ignore[attr-defined]
        .order_by(Case.id)  # type: ignore[arg-type]
        .with_for_update()
    ).all()
    rules: SupportRules | None = None
    for case, owner in owned:
        if is_agent(owner):
            continue
        status = case.status
        case.assignee_id = None
        case.claimed_at = None
        if status == states.CLAIMED:
            case.status = states.NEW
        record_event(
            session,
            case.id,
            "released",
            now,
            from_value=status,
            to_value=case.status,
            detail={
                "owner": owner.slack_user_id,
                "reason": f"{owner.name} is no longer on the support team (roster)",
            },
        )
        paged = case.severity == "A"
        stamp = now.isoformat()
        enqueue_many(
            session,
            [
                Notice(f"{case.id}:card:released:{stamp}", CARD_REFRESH, case.id),
                Notice(
                    f"{case.id}:released:{owner.slack_user_id}:{stamp}",
                    CASE_RELEASED,
                    case.id,
                    {"to": "thread", "owner": owner.slack_user_id, "paged": paged},
                ),
            ],
            now,
        )
        if paged:  # after the notice: the thread says why before it pages
            rules = rules or SupportRules(policy)
            start_page(session, case, rules, now)
        counts["cases_released"] += 1


def _sync_overrides(
    session: Session, entries: list[OverrideEntry], now: datetime, counts: dict[str, int]
) -> None:
    """Make the roster's stored overrides the file's (see :func:`load_roster`)."""
    stored = {
        row.key: row
        for row in session.exec(
            select(OnCallOverride).where(OnCallOverride.created_by == ROSTER_AUTHOR)
        )
    }
    for entry in entries:
        key = f"roster:{entry.rotation}:{entry.person}:{entry.starts.isoformat()}"
        row = stored.pop(key, None)
        if row is None:
            added = insert_if_absent(
                session,
                OnCallOverride,
                {
                    "key": key,
                    "rotation": entry.rotation,
                    "person": entry.person,
                    "covers": entry.covers,
                    "starts_at": entry.starts,
                    "ends_at": entry.ends,
                    "created_by": ROSTER_AUTHOR,
                },
                ["key"],
            )
            if added:  # else a load running beside this one stored it (and hands it off)
                counts["overrides_added"] += 1
                _hand_off(session, entry.starts, entry.ends, now)
            continue
        ended_before = row.ends_at
        if _apply(row, {"ends_at": entry.ends, "covers": entry.covers}):
            counts["overrides_updated"] += 1
            if row.ends_at != ended_before:
                _hand_off(session, row.starts_at, max(row.ends_at, ended_before), now)
    for row in stored.values():  # no longer in the file
        _end_override(session, row, now, counts)
    # Cover added from Slack is the lead's, except for someone no longer on the support
    # team: it would keep them on call (listed by /support oncall, handed shifts with the
    # open work of every organisation) though no page may reach them.
    slack_added = session.exec(
        select(OnCallOverride).where(
            OnCallOverride.created_by != ROSTER_AUTHOR,
            OnCallOverride.ends_at > now,  # type: ignore[operator]
        )
    ).all()
    for row in slack_added:
        if not is_agent(
            session.exec(select(Person).where(Person.slack_user_id == row.person)).first()
        ):
            _end_override(session, row, now, counts)


def _end_override(
    session: Session, row: OnCallOverride, now: datetime, counts: dict[str, int]
) -> None:
    """Drop an override that has not begun, end one running at `now`, keep one over."""
    if row.ends_at <= now:
        return  # over: who was on call then stays on record
    counts["overrides_removed"] += 1
    reopen_handoffs(session, row.starts_at)
    if row.starts_at >= now:
        session.delete(row)  # it never put anyone on call
    else:
        row.ends_at = now  # who held the pager until now stays on record


def _hand_off(session: Session, starts: datetime, ends: datetime, now: datetime) -> None:
    """Hand off an override stored or changed over ``[starts, ends)`` unless it is over: one
    that ended before `now` changes nobody's pager now, and a handoff would be old news."""
    if ends > now:
        reopen_handoffs(session, starts)


def _apply(row: object, wanted: dict[str, object]) -> bool:
    changed = False
    for field, value in wanted.items():
        if getattr(row, field) != value:
            setattr(row, field, value)
            changed = True
    return changed
