"""The request is answered as soon as its listener acks: Bolt's 10 ms poll for the ack never
runs, a listener that fails before acking is answered at once, and work after the ack goes
on without holding the answer back."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from slack_bolt import Ack, App, BoltResponse
from slack_bolt.listener import thread_runner
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from sqlmodel import Session, select

from chatops.db import DeskBusy, make_engine, transaction
from chatops.standin import SlackStandIn
from handlers.app import BUSY_TEXT, ParsedRequest, answer_busy, answer_late
from handlers.listener_pool import LISTENER_THREADS, ListenerPool, WakingAck
from handlers.slack_body import parse_slack_body
from models import Person
from tests.conftest import Desk

SECRET = "pool-test-secret"


@pytest.fixture
def bolt_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every sleep of Bolt's wait-for-the-ack loop (only that module's `time` is replaced)."""
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(thread_runner, "time", SimpleNamespace(time=time.time, sleep=sleep))
    return sleeps


def test_the_desk_answers_without_polling_for_the_ack(desk: Desk, bolt_sleeps: list[float]) -> None:
    for _ in range(10):
        reply = desk.ask("U0ALICE", "mail forwarding stopped")
        assert reply.get("blocks"), reply
    help_reply = desk.ask("U0ALICE", "help")
    assert "/support" in str(help_reply)
    assert bolt_sleeps == []


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    standin = SlackStandIn().start()
    yield standin
    standin.stop()


def _app(pool: ListenerPool, slack: SlackStandIn) -> App:
    app = App(
        client=WebClient(token=slack.bot_token, base_url=slack.api_url),
        signing_secret=SECRET,
        token_verification_enabled=False,
        request_verification_enabled=False,
        listener_executor=pool,
    )
    app.middleware(pool.middleware)
    return app


def _command(text: str) -> BoltRequest:
    body = f"command=%2Fsupport&text={text}&user_id=U1&team_id=T1&channel_id=C1"
    return BoltRequest(body=body, headers={"content-type": "application/x-www-form-urlencoded"})


def test_work_after_the_ack_does_not_hold_the_answer(
    slack: SlackStandIn, bolt_sleeps: list[float]
) -> None:
    pool = ListenerPool(4)
    release = threading.Event()
    finished = threading.Event()
    seen: list[Any] = []
    app = _app(pool, slack)

    @app.command("/support")
    def support(ack: Ack) -> None:
        seen.append(ack)
        ack(text="on it")
        release.wait(5)
        finished.set()

    started = time.monotonic()
    response = app.dispatch(_command("x"))
    assert response.status == 200 and "on it" in response.body
    assert time.monotonic() - started < 1.0
    assert not finished.is_set()  # the listener is still working after its ack
    assert isinstance(seen[0], WakingAck)
    release.set()
    assert finished.wait(5)
    assert bolt_sleeps == []
    pool.shutdown()


def test_a_burst_of_work_after_acks_does_not_hold_up_the_next_acks(slack: SlackStandIn) -> None:
    # 60 clicks whose listeners ack and then wait (as claims do, queued on the database's
    # write lock) while more clicks arrive: each next click must still be answered at once,
    # not after a busy thread frees up (with 32 threads the 33rd waited Slack's whole 3 s).
    pool = ListenerPool(LISTENER_THREADS)
    release = threading.Event()
    app = _app(pool, slack)

    @app.command("/support")
    def support(ack: Ack) -> None:
        ack(text="on it")
        release.wait(10)

    try:
        answer_times = []
        for _ in range(60):
            started = time.monotonic()
            response = app.dispatch(_command("x"))
            answer_times.append(time.monotonic() - started)
            assert response.status == 200 and "on it" in response.body
        assert max(answer_times) < 1.0, max(answer_times)
    finally:
        release.set()
        pool.shutdown()


def test_a_listener_failing_before_its_ack_is_answered_at_once(slack: SlackStandIn) -> None:
    pool = ListenerPool(2)
    app = _app(pool, slack)

    @app.command("/support")
    def support(ack: Ack) -> None:
        raise RuntimeError("boom before the ack")

    started = time.monotonic()
    response = app.dispatch(_command("x"))
    # Bolt's own answer for a failed listener, without waiting out the 3 s ack timeout
    assert response.status == 500
    assert time.monotonic() - started < 1.0
    pool.shutdown()


def test_lazy_listeners_after_the_ack_do_not_wait(slack: SlackStandIn) -> None:
    pool = ListenerPool(4)
    app = _app(pool, slack)
    release = threading.Event()
    lazy_ran = threading.Event()

    def acknowledge(ack: Ack) -> None:
        ack(text="queued")

    def later() -> None:
        release.wait(5)
        lazy_ran.set()

    app.command("/support")(ack=acknowledge, lazy=[later])
    response = app.dispatch(_command("x"))
    assert response.status == 200 and "queued" in response.body
    assert not lazy_ran.is_set()  # answered while the lazy listener still waits
    release.set()
    assert lazy_ran.wait(5)
    pool.shutdown()


def test_a_lazy_listener_gets_the_body_parsed_once(slack: SlackStandIn) -> None:
    # The copy Bolt makes for a lazy listener keeps the parsed body: Bolt's own parser
    # would drop a command whose text contains the word "payload".
    pool = ListenerPool(4)
    app = _app(pool, slack)
    texts: list[str] = []
    done = threading.Event()

    def acknowledge(ack: Ack) -> None:
        ack(text="queued")

    def later(body: dict[str, Any]) -> None:
        texts.append(body.get("text", ""))
        done.set()

    app.command("/support")(ack=acknowledge, lazy=[later])
    raw = "command=%2Fsupport&text=webhook+payload+rejected&user_id=U1&team_id=T1&channel_id=C1"
    parsed = parse_slack_body(raw, "application/x-www-form-urlencoded")
    assert parsed is not None and parsed[0] == "command"
    headers = {"content-type": "application/x-www-form-urlencoded"}
    response = app.dispatch(ParsedRequest(raw, parsed[1], "", headers))
    assert response.status == 200 and "queued" in response.body
    assert done.wait(5)
    assert texts == ["webhook payload rejected"]
    pool.shutdown()


# --- every request answered within the answer budget ---------------------------------------

BUDGET = 0.5  # the pool's answer budget in these tests (the desk's is ANSWER_BUDGET)


@pytest.fixture
def people_db(tmp_path: Path) -> Iterator[Any]:
    """A SQLite database with the people table, for listeners that write."""
    engine = make_engine(f"sqlite:///{tmp_path / 'people.db'}")
    Person.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _late_pool(
    slack: SlackStandIn, threads: int = 4, ack_timeout: float = 3.0, budget: float = BUDGET
) -> tuple[ListenerPool, App]:
    pool = ListenerPool(
        threads,
        ack_timeout=ack_timeout,
        late_answer=lambda body, context: answer_late(body, context, pool),
        answer_budget=budget,
        write_budget=budget - 0.2,
    )
    app = _app(pool, slack)
    app.error(answer_busy)
    return pool, app


def _store_person(engine: Any, name: str, refused: list[BaseException]) -> None:
    """A listener's write; a refusal is kept in `refused` and raised on."""
    try:
        with transaction(engine) as session:
            session.add(Person(slack_user_id=f"U-{name}", name=name))
    except DeskBusy as exc:
        refused.append(exc)
        raise


def _click(slack: SlackStandIn, user: str = "U1") -> BoltRequest:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": "T1"},
        "channel": {"id": "C1"},
        "container": {"type": "message", "channel_id": "C1", "message_ts": "1.1"},
        "response_url": slack.new_response_url(user, "C1", message_ts="1.1"),
        "actions": [{"action_id": "claim_case", "block_id": "b", "type": "button", "value": "1"}],
    }
    body = urllib.parse.urlencode({"payload": json.dumps(payload)})
    return BoltRequest(body=body, headers={"content-type": "application/x-www-form-urlencoded"})


def test_a_listener_that_has_not_acked_in_time_is_answered_busy_and_stopped_at_its_ack(
    slack: SlackStandIn,
) -> None:
    pool, app = _late_pool(slack)
    release = threading.Event()
    after_ack: list[str] = []
    fell_through: list[str] = []
    stopped: list[BaseException] = []

    @app.command("/support")
    def slow(ack: Ack) -> None:
        release.wait(5)  # a read held up by a lock, say
        try:
            ack(text="too late")
        except DeskBusy as exc:
            stopped.append(exc)
            raise
        after_ack.append("claimed")  # work after the ack must not happen

    @app.command(re.compile(".*"))
    def catch_all(ack: Ack) -> None:  # Bolt's next listener for an un-acked request
        fell_through.append("catch-all")
        ack(text="not one I know")

    started = time.monotonic()
    response = app.dispatch(_command("x"))
    took = time.monotonic() - started
    assert response.status == 200
    assert json.loads(response.body) == {"response_type": "ephemeral", "text": BUSY_TEXT}
    assert BUDGET - 0.05 <= took < BUDGET + 0.5, took
    release.set()
    pool.shutdown(wait=True)
    assert len(stopped) == 1 and after_ack == [] and fell_through == []


def test_a_write_before_the_ack_is_refused_once_the_request_was_answered_busy(
    slack: SlackStandIn, people_db: Any
) -> None:
    pool, app = _late_pool(slack)
    release = threading.Event()
    refused: list[BaseException] = []

    @app.command("/support")
    def slow_then_write(ack: Ack) -> None:
        release.wait(5)
        _store_person(people_db, "Too late", refused)
        ack(text="saved")

    response = app.dispatch(_command("x"))
    assert json.loads(response.body)["text"] == BUSY_TEXT
    release.set()
    pool.shutdown(wait=True)
    assert len(refused) == 1
    with Session(people_db) as session:
        assert session.exec(select(Person)).all() == []  # "nothing was saved" holds


def test_a_listener_that_stored_something_gives_its_own_answer_even_late(
    slack: SlackStandIn, people_db: Any
) -> None:
    # a budget whose write part a busy machine's stall cannot use up: the write must land
    budget = 1.5
    pool, app = _late_pool(slack, budget=budget)

    @app.command("/support")
    def write_then_slow(ack: Ack) -> None:
        _store_person(people_db, "Stored in time", [])
        time.sleep(budget + 0.3)  # then something holds it up before its answer
        ack(text="case opened")

    response = app.dispatch(_command("x"))
    # "busy, nothing was saved" would be untrue: the pool waits for the listener's answer
    assert response.status == 200 and response.body == "case opened"
    pool.shutdown(wait=True)
    with Session(people_db) as session:
        assert [p.name for p in session.exec(select(Person)).all()] == ["Stored in time"]


def test_a_click_waiting_for_a_thread_is_answered_busy_told_why_and_never_run(
    slack: SlackStandIn,
) -> None:
    pool, app = _late_pool(slack, threads=1)
    release = threading.Event()
    ran: list[str] = []

    @app.command("/support")
    def hog(ack: Ack) -> None:
        ack(text="on it")
        release.wait(5)  # holds the only thread after its ack

    @app.action("claim_case")
    def claim(ack: Ack) -> None:
        ran.append("claim")
        ack()

    assert "on it" in app.dispatch(_command("x")).body
    started = time.monotonic()
    response = app.dispatch(_click(slack))
    assert response.status == 200 and response.body == ""
    assert time.monotonic() - started < BUDGET + 0.5
    release.set()
    deadline = time.monotonic() + 5
    while not slack.ephemerals("U1") and time.monotonic() < deadline:
        time.sleep(0.02)
    [ephemeral] = slack.ephemerals("U1")
    assert ephemeral["text"] == BUSY_TEXT and ephemeral["source"] == "response_url"
    pool.shutdown(wait=True)
    assert ran == []  # its request was answered while it waited: it never runs


def test_an_event_acked_by_bolt_runs_without_the_write_deadline(
    slack: SlackStandIn, people_db: Any
) -> None:
    # Bolt acks an event before its listener runs: the listener's writes (a customer's
    # message relayed to the case) have all the time they need, like any work after an ack
    pool, app = _late_pool(slack)
    done = threading.Event()
    failures: list[BaseException] = []

    @app.event("message")
    def relay() -> None:
        time.sleep(BUDGET + 0.1)  # past the answer budget, and the write budget
        try:
            _store_person(people_db, "Relayed", failures)
        finally:
            done.set()

    event = {
        "type": "event_callback",
        "team_id": "T1",
        "event": {"type": "message", "user": "U1", "channel": "D1", "text": "hi", "ts": "1.2"},
    }
    request = BoltRequest(body=json.dumps(event), headers={"content-type": "application/json"})
    assert app.dispatch(request).status == 200
    assert done.wait(5)
    pool.shutdown(wait=True)
    assert failures == []
    with Session(people_db) as session:
        assert [p.name for p in session.exec(select(Person)).all()] == ["Relayed"]


def test_the_busy_answer_stands_whatever_the_listener_does_after_it() -> None:
    ack = WakingAck(deadline=time.monotonic())
    busy = BoltResponse(status=200, body="busy")
    assert ack.expire(lambda: busy)
    ack.response = BoltResponse(status=500, body="")  # Bolt's answer for a failed listener
    ack.response = None  # Bolt's after a failure following an ack
    assert ack.response is busy
    with pytest.raises(DeskBusy):
        ack(text="too late")
    assert ack.response is busy and not ack.may_commit()


def test_an_answer_that_cannot_be_built_leaves_the_listener_its_own() -> None:
    ack = WakingAck(deadline=time.monotonic())

    def failing() -> BoltResponse:
        raise RuntimeError("cannot schedule the follow-up")

    with pytest.raises(RuntimeError):
        ack.expire(failing)
    assert not ack.expired
    assert ack(text="mine").body == "mine"


def test_a_listener_that_stored_something_and_never_acks_in_time_gets_an_empty_answer(
    slack: SlackStandIn, people_db: Any
) -> None:
    # not the catch-all's ("this form is not one I know… nothing was saved"), which Bolt
    # would run once its own wait is over
    # the write has most of the budget, so that a busy machine's stall cannot refuse it
    pool, app = _late_pool(slack, ack_timeout=1.0, budget=0.9)
    fell_through: list[str] = []

    @app.command("/support")
    def write_then_stall(ack: Ack) -> None:
        _store_person(people_db, "Stored in time", [])
        time.sleep(1.5)
        ack(text="case opened")

    @app.command(re.compile(".*"))
    def catch_all(ack: Ack) -> None:
        fell_through.append("catch-all")
        ack(text="not one I know")

    response = app.dispatch(_command("x"))
    assert response.status == 200 and response.body == ""
    pool.shutdown(wait=True)
    assert fell_through == []
