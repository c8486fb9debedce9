"""The desk under test: the real app served over HTTP on 127.0.0.1, the Slack stand-in
answering its Web API calls, a movable clock, and a database loaded with the example
roster. Tests act as Slack does (signed requests) and assert on what people would see."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from chatops.clock import ManualClock
from chatops.config import Settings
from chatops.db import create_schema, make_engine
from chatops.directory.roster import load_roster
from chatops.kb import load_articles
from chatops.standin import SlackSender, SlackStandIn, WebApiCall
from handlers.server import Service, ThreadedServer, build_service
from handlers.worker import tick
from models import Case, CaseEvent, OutboxMessage
from tests.postgres import fresh_database, postgres_cluster

ROOT = Path(__file__).resolve().parent.parent
ROSTER = ROOT / "examples" / "workspace.yml"
SECRET = "test-signing-secret"
TRIAGE = "C0TRIAGE"
# Wednesday 25 Nov 2026, 10:00 in Beijing: every support line is open.
OPEN_HOURS = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)

INTAKE_DEFAULTS: dict[str, Any] = {
    "category": "technical",
    "topic": "mail",
    "severity": "B",
    "title": "Forwarding to shared mailbox stopped",
    "description": "Since Monday mail sent to sales@ is no longer forwarded.",
    "contact_method": "chat",
}


class ListenerRuns:
    """Every listener run the desk's Bolt app hands to its listener pool, recorded so a test
    can wait for what listeners do after their ack (the request is answered at the ack)."""

    def __init__(self, pool: Any) -> None:
        self._runs: list[Future[Any]] = []
        self._lock = threading.Lock()
        submit = pool.submit

        def recorded(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
            run = submit(fn, *args, **kwargs)  # returns once the listener has acked
            with self._lock:
                self._runs.append(run)
            return run

        pool.submit = recorded  # this instance only: Bolt calls it for every listener

    def wait(self, timeout: float) -> bool:
        """True once every run recorded so far has finished; False if `timeout` passes."""
        with self._lock:
            runs = [r for r in self._runs if not r.done()]
            self._runs = runs
        return not wait(runs, timeout).not_done


@dataclass
class Desk:
    """A running desk and the handles a test needs."""

    service: Service
    standin: SlackStandIn
    slack: SlackSender
    clock: ManualClock
    users: dict[str, str] = field(default_factory=dict)
    listeners: ListenerRuns = field(init=False)

    def __post_init__(self) -> None:
        self.listeners = ListenerRuns(self.service.wsgi.app.listener_runner.listener_executor)

    def wait_until(self, predicate: Callable[[], Any], what: str = "", timeout: float = 5) -> Any:
        """Call `predicate` until it returns something true (returned here); fail after
        `timeout`. Listeners answer Slack at their ack and may write after it, so a test
        looks again rather than reading once: the predicate must read afresh each call
        (`desk.cases()`, a new Session — one SQLite read transaction never sees later
        commits, and `expire_all()` does not end it)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            assert time.monotonic() < deadline, f"not within {timeout}s: {what or predicate}"
            time.sleep(0.02)

    def settle(self, timeout: float = 5) -> None:
        """Wait until every listener run so far has finished, including its work after the
        ack, and the delivery pump has sent what they asked for. For a test that asserts
        that something did *not* happen, or that must know nothing is still on its way."""
        deadline = time.monotonic() + timeout
        assert self.listeners.wait(timeout), f"listeners still running after {timeout}s"
        pump = self.service.desk.pump
        while pump is not None and not pump.idle():
            assert time.monotonic() < deadline, f"delivery pump still busy after {timeout}s"
            time.sleep(0.02)

    def run_worker(self, until: datetime, step: timedelta = timedelta(minutes=1)) -> None:
        """Tick like `chatops worker` would, every `step` of the desk's clock up to `until`,
        delivering as it goes."""
        at = self.clock.now()
        while at < until:
            at = min(until, at + step)
            self.clock.set(at)
            tick(self.service.desk, at)

    @property
    def engine(self) -> Any:
        return self.service.engine

    def cases(self) -> list[Case]:
        with Session(self.engine) as session:
            return list(session.exec(select(Case).order_by(Case.id)).all())  # type: ignore[arg-type]

    def events(self, kind: str | None = None) -> list[CaseEvent]:
        with Session(self.engine) as session:
            query = select(CaseEvent)
            if kind:
                query = query.where(CaseEvent.kind == kind)
            return list(session.exec(query.order_by(CaseEvent.id)).all())  # type: ignore[arg-type]

    def outbox(self) -> list[OutboxMessage]:
        with Session(self.engine) as session:
            return list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all())  # type: ignore[arg-type]

    def ask(self, user: str, question: str = "mail forwarding stopped") -> dict[str, Any]:
        """/support <question>; returns the ephemeral reply (the ack body)."""
        response = self.slack.command(user, question)
        assert response.status == 200, response.body
        reply = response.json()
        assert reply is not None, f"no reply body: {response.body!r}"
        return reply

    def open_intake(self, user: str, question: str = "mail forwarding stopped") -> dict[str, Any]:
        """/support <question> then Contact support; returns the modal Slack shows."""
        reply = self.ask(user, question)
        before = len(self.standin.calls("views.open"))
        response = self.slack.click_in(user, reply, "contact_support", channel_id="C_GENERAL")
        assert response.status == 200
        self.standin.wait_for("views.open", count=before + 1)
        view = self.standin.open_view(user)
        assert view is not None, "no modal opened"
        return view

    def choose(self, user: str, action_id: str, value: str) -> dict[str, Any]:
        """Pick a value in a dispatching select/radio of the open modal; return the new view."""
        before = len(self.standin.calls("views.update"))
        response = self.slack.view_action(user, action_id, value)
        assert response.status == 200
        self.standin.wait_for("views.update", count=before + 1)
        view = self.standin.open_view(user)
        assert view is not None
        return view

    def submit(self, user: str, force: bool = False, **values: Any) -> Any:
        fields = {**INTAKE_DEFAULTS, **values}
        fields = {k: v for k, v in fields.items() if v is not None}
        return self.slack.submit_view(user, fields, force=force)

    def open_case(self, user: str = "U0ALICE", **values: Any) -> Case:
        """The whole intake through the front door; returns the stored case."""
        before = len(self.cases())
        self.open_intake(user)
        if values.get("severity", INTAKE_DEFAULTS["severity"]) != INTAKE_DEFAULTS["severity"]:
            self.choose(user, "intake_severity", values["severity"])
        response = self.submit(user, **values)
        assert response.status == 200, response.body
        assert not response.body or "errors" not in response.body, response.body
        cases = self.cases()  # the case is written before the ack (its delivery after)
        assert len(cases) == before + 1
        return cases[-1]

    def card(self, case: Case) -> dict[str, Any]:
        """The case card as the triage channel shows it now."""
        self.standin.wait_for(
            "chat.postMessage", lambda c: c.args.get("channel") == TRIAGE, timeout=5
        )

        return self.standin.message(
            TRIAGE, self.wait_until(lambda: self.fresh(case).card_ts, "card delivered")
        )

    def fresh(self, case: Case) -> Case:
        """The case as stored now (a new session: see `wait_until`)."""
        with Session(self.engine) as session:
            stored = session.get(Case, case.id)
            assert stored is not None
            return stored

    def press(self, user: str, case: Case, action: str) -> None:
        """`user` clicks the card's `action` button in the triage channel."""
        response = self.slack.click_in(
            user, self.card(case), action, channel_id=TRIAGE, is_ephemeral=False
        )
        assert response.status == 200

    def submit_modal(self, user: str, **values: Any) -> dict[str, Any]:
        """`user` submits the modal a card button opened (Reply, Resolve, …) with `values`;
        the answer's JSON ({} for a bare ack)."""
        self.standin.wait_for("views.open", lambda c: c.args["view"]["callback_id"] != "intake")
        response = self.slack.submit_view(user, values)
        assert response.status == 200
        return response.json() or {}

    def card_offers(self, case: Case, action: str) -> None:
        """Wait until the case card shows the `action` button."""
        self.wait_until(lambda: action in json.dumps(self.card(case)), f"card offers {action}")


def posts(standin: SlackStandIn, channel: str | None = None) -> list[WebApiCall]:
    """Successful chat.postMessage calls (to one channel, or all), in the order answered."""
    return [
        c
        for c in standin.calls("chat.postMessage")
        if c.ok and (channel is None or c.args.get("channel") == channel)
    ]


def identity(call: WebApiCall, with_blocks: bool = True) -> tuple[Any, ...]:
    """What a person sees: where, in which thread, what. With the blocks, two messages that
    only differ in them (the two days' handoff posts share their fallback text) stay apart."""
    key: tuple[Any, ...] = (call.args["channel"], call.args.get("thread_ts"), call.args["text"])
    if with_blocks:
        key += (json.dumps(call.args.get("blocks"), sort_keys=True),)
    return key


def texts(calls: list[WebApiCall]) -> list[str]:
    return [str(c.args["text"]) for c in calls]


def _make_desk(database_url: str) -> Iterator[Desk]:
    standin = SlackStandIn().start()
    for uid, name, tz in [
        ("U0ALICE", "alice", "Asia/Shanghai"),
        ("U0FRANK", "frank", "Europe/London"),
    ]:
        standin.add_user(uid, name=name, tz=tz)
    clock = ManualClock(OPEN_HOURS)
    settings = Settings(
        slack_bot_token=standin.bot_token,
        slack_signing_secret=SECRET,
        slack_api_url=standin.api_url,
        database_url=database_url,
        # Slack's real pace (1 s) is tested on its own; most tests need not wait for it.
        channel_pace_seconds=0.02,
    )
    service = build_service(settings, clock=clock)
    load_roster(service.engine, ROSTER, service.rules.policy)
    load_articles(service.engine, ROOT / "examples" / "kb")
    server = ThreadedServer(service.wsgi).start()
    sender = SlackSender(server.url + "/slack/events", SECRET, standin)
    try:
        yield Desk(service, standin, sender, clock)
    finally:
        server.stop()
        service.close()
        standin.stop()


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    yield from _make_desk(f"sqlite:///{tmp_path / 'desk.db'}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture
def pg_desk(postgres_server: str) -> Iterator[Desk]:
    yield from _make_desk(fresh_database(postgres_server))


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Any]:
    """A SQLite database with the schema and nothing in it."""
    engine = make_engine(f"sqlite:///{tmp_path / 'bare.db'}")
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(postgres_server: str) -> Any:
    engine = make_engine(fresh_database(postgres_server))
    yield engine
    engine.dispose()
