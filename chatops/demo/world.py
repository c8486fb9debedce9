"""The desk the demo runs: the real Bolt app on 127.0.0.1, the Slack stand-in, SQLite in a
temporary folder, the roster loaded and a movable clock (the same wiring as the tests)."""

from __future__ import annotations

import secrets
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from chatops.clock import ManualClock
from chatops.standin import SlackSender, SlackStandIn, WebApiCall

GENERAL = "C_GENERAL"  # where people type /support
# The desk works out due times, shift windows and reports days to years either side of now,
# and datetime ends at the years 1 and 9999: the demo clock stays well inside both.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class DemoPerson:
    """Someone in the roster, as the demo shows and addresses them."""

    short: str  # `alice`: what `as` takes
    slack_id: str
    name: str
    organisation: str | None
    roles: tuple[str, ...]  # role keys
    role_labels: tuple[str, ...]
    is_admin: bool

    @property
    def first_name(self) -> str:
        return self.name.split()[0]

    def describe(self) -> str:
        """One sentence: name, Slack id, roles and organisation, ending with a full stop."""
        roles = ", ".join(self.role_labels) or "no admin role"
        where = f" at {self.organisation}" if self.organisation else ""
        text = f"{self.name} ({self.slack_id}), {roles}{where}"
        return text if text.endswith(".") else text + "."


@dataclass
class World:
    """A running desk and the handles the shell needs."""

    standin: SlackStandIn
    sender: SlackSender
    clock: ManualClock
    service: Any  # handlers.server.Service (imported lazily: slack_bolt)
    server: Any  # handlers.server.ThreadedServer
    people: list[DemoPerson]
    channels: dict[str, str]  # channel id -> name (`triage`, `general`, ...)
    database: Path
    started_at: datetime
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def rules(self) -> Any:
        return self.service.rules

    @property
    def engine(self) -> Any:
        return self.service.engine

    # --- lookups -------------------------------------------------------------------------

    def person(self, slack_id: str) -> DemoPerson | None:
        return next((p for p in self.people if p.slack_id == slack_id), None)

    def find(self, word: str) -> DemoPerson | None:
        """A person by short name, first name, full name or Slack id (case-insensitive)."""
        key = word.strip().lstrip("@").lower()
        for person in self.people:
            names = {person.short, person.first_name.lower(), person.name.lower()}
            if key in names or key == person.slack_id.lower():
                return person
        return None

    def display_name(self, slack_id: str) -> str | None:
        person = self.person(slack_id)
        if person is not None:
            return person.name
        user = self.standin.user(slack_id)
        if user is not None:
            return str(user.get("real_name") or user.get("name") or slack_id)
        return None

    def channel_label(self, channel_id: str) -> str:
        """``#triage (C0TRIAGE)``, or ``DM with Alice Chen`` for a bot DM channel."""
        if channel_id.startswith("D"):
            return f"DM with {self.display_name(channel_id[1:]) or channel_id[1:]}"
        name = self.channels.get(channel_id)
        return f"#{name} ({channel_id})" if name else channel_id

    def channel_by_name(self, word: str) -> str | None:
        key = word.strip().lstrip("#")
        for channel_id, name in self.channels.items():
            if key.lower() in (name.lower(), channel_id.lower()):
                return channel_id
        return None

    # --- waiting for the app -------------------------------------------------------------

    def settle(
        self, since: int, quiet: float = 0.3, limit: float = 3.0, *, expect: bool = False
    ) -> list[WebApiCall]:
        """Wait until the stand-in has had no new calls for ``quiet`` seconds (at most
        ``limit``), then return the calls made after the first ``since``.

        With ``expect`` (a button press, a submitted form: the app always answers those with
        some call) the quiet time only starts counting once a call after ``since`` arrived.
        """
        deadline = time.monotonic() + limit
        count = len(self.standin.calls())
        changed = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.02)
            now_count = len(self.standin.calls())
            if now_count != count:
                count, changed = now_count, time.monotonic()
            elif (
                time.monotonic() - changed >= quiet
                and (not expect or count > since)
                and not self.outbox_busy()
            ):
                break
        return self.standin.calls()[since:]

    def outbox_busy(self) -> bool:
        """The app still owes a message that is due now (being sent, or about to be)."""
        from sqlmodel import Session, select

        from models import OutboxMessage

        with Session(self.engine) as session:
            row = session.exec(
                select(OutboxMessage.id).where(
                    OutboxMessage.status == "pending",
                    OutboxMessage.next_attempt_at <= self.clock.now(),  # type: ignore[operator]
                )
            ).first()
        return row is not None

    def tick_until(self, target: datetime) -> None:
        """Move the clock to `target` the way a running worker would see time pass: sweep at
        every step (a minute, or finer grained for long jumps at most 600 steps), delivering
        what falls due, so warnings, pages and handoffs appear at their instants, in order."""
        from handlers.worker import tick

        start = self.clock.now()
        step = max(timedelta(minutes=1), (target - start) / 600)
        at = start
        while at < target:
            at = min(target, at + step)
            self.clock.set(at)
            tick(self.service.desk, at)

    def close(self) -> None:
        try:
            self.server.stop()
        finally:
            self.service.close()
            self.standin.stop()
            if self._tmp is not None:
                self._tmp.cleanup()


def start_world(roster: Path, start: datetime | None = None) -> World:
    """Start the desk; raises chatops.yamlfile.FileError when the roster is invalid."""
    from chatops.config import Settings
    from chatops.directory.roster import STAFF_ROLES, load_roster
    from handlers.server import ThreadedServer, build_service  # slack_bolt: only here
    from models import BotChannel, Organisation, Person

    tmp = tempfile.TemporaryDirectory(prefix="chatops-demo-")
    database = Path(tmp.name) / "demo.db"
    secret = secrets.token_hex(16)
    standin = SlackStandIn(team_name="Demo workspace", team_domain="demo").start()
    started = start or datetime.now(UTC)
    clock = ManualClock(started)
    service = None
    try:
        settings = Settings(
            slack_bot_token=standin.bot_token,
            slack_signing_secret=secret,
            slack_api_url=standin.api_url,
            database_url=f"sqlite:///{database}",
            # The stand-in has no rate limit to respect; pacing would only slow the demo.
            channel_pace_seconds=0,
        )
        service = build_service(settings, clock=clock)
        load_roster(service.engine, roster, service.rules.policy, clock.now)
        articles = roster.parent / "kb"
        if articles.is_dir():  # the example roster ships with examples/kb beside it
            from chatops.kb import load_articles

            load_articles(service.engine, articles)
        admin_roles: dict[str, str] = dict(service.rules.policy.admin_roles)
        labels = {**STAFF_ROLES, **admin_roles}
        with Session(service.engine) as session:
            orgs = {o.id: o.name for o in session.exec(select(Organisation)).all()}
            rows = list(session.exec(select(Person).order_by(Person.id)).all())  # type: ignore[arg-type]
            bot_channels = {c.channel_id: c.purpose for c in session.exec(select(BotChannel))}
        people = _people(rows, orgs, labels, set(admin_roles))
        zones = {row.slack_user_id: getattr(row, "tz", None) for row in rows}
        for person in people:
            extra = {"tz": zones[person.slack_id]} if zones.get(person.slack_id) else {}
            standin.add_user(person.slack_id, name=person.short, real_name=person.name, **extra)
        channels = {GENERAL: "general", **bot_channels}
        for channel_id, name in channels.items():
            standin.add_channel(channel_id, name)
        server = ThreadedServer(service.wsgi).start()
    except BaseException:
        if service is not None:
            service.close()
        standin.stop()
        tmp.cleanup()
        raise
    sender = SlackSender(server.url + "/slack/events", secret, standin)
    return World(standin, sender, clock, service, server, people, channels, database, started, tmp)


def _people(
    rows: list[Any], orgs: dict[Any, str], labels: dict[str, str], admin_roles: set[str]
) -> list[DemoPerson]:
    people: list[DemoPerson] = []
    taken: set[str] = set()
    for row in rows:
        short = row.name.split()[0].lower() if row.name.split() else row.slack_user_id.lower()
        if short in taken:
            short = row.slack_user_id.lower()
        taken.add(short)
        roles = tuple(row.roles or ())
        people.append(
            DemoPerson(
                short=short,
                slack_id=row.slack_user_id,
                name=row.name,
                organisation=orgs.get(row.organisation_id),
                roles=roles,
                role_labels=tuple(labels.get(r, r) for r in roles),
                is_admin=any(r in admin_roles for r in roles),
            )
        )
    return people
