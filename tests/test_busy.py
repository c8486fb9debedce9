"""A write the desk must make before it answers, when the database cannot take it in time.

Slack waits 3 s for an answer and then shows the person an error. A modal whose submission
writes (the intake opens a case) answers after its write; if another process holds the
database's write lock, or locks what the write needs, past the desk's write budget (2 s from
the request's arrival), the write is abandoned and the person is told, under the form they
can submit again, that nothing was saved. Nothing is half written. Writes made after an ack
(a Claim) have no such deadline: they wait for the database as long as it takes.

A read before the answer held up as long (a table lock) is answered busy by the desk itself
at its answer budget (2.5 s), and nothing else is said or done for that request afterwards.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from chatops.db import SQLITE_BUSY_TIMEOUT_MS, DeskBusy, make_engine, transaction, write_deadline
from handlers.app import BUSY_TEXT
from handlers.listener_pool import ANSWER_BUDGET, WRITE_BUDGET
from models import OnCallOverride, Person
from tests.conftest import TRIAGE, Desk, posts


@contextmanager
def sqlite_write_lock(desk: Desk) -> Iterator[None]:
    """Another process's write transaction on the desk's SQLite database."""
    other_process = sqlite3.connect(str(desk.engine.url.database), isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other_process.execute("ROLLBACK")
        other_process.close()


@contextmanager
def postgres_table_lock(desk: Desk, table: str, mode: str = "EXCLUSIVE") -> Iterator[None]:
    """Another session locking a table (a long migration, say): EXCLUSIVE stops every write
    to it, ACCESS EXCLUSIVE every read as well."""
    engine = make_engine(str(desk.engine.url.render_as_string(hide_password=False)))
    try:
        with engine.connect() as conn, conn.begin():
            conn.exec_driver_sql(f'LOCK TABLE "{table}" IN {mode} MODE')
            yield
    finally:
        engine.dispose()


def postgres_case_table_lock(desk: Desk) -> Any:
    return postgres_table_lock(desk, "case")


def _stored(desk: Desk) -> tuple[int, int, int]:
    return len(desk.cases()), len(desk.events()), len(desk.outbox())


def _busy_then_saved(desk: Desk, lock: Callable[[Desk], Any]) -> None:
    desk.open_intake("U0ALICE")
    before = _stored(desk)
    with lock(desk):
        started = time.monotonic()
        busy = desk.submit("U0ALICE", title="Mail stuck in the outbox")
        took = time.monotonic() - started
        assert busy.status == 200, busy.body
        answer = busy.json()
        assert answer is not None and answer["response_action"] == "errors", busy.body
        assert list(answer["errors"].values()) == [BUSY_TEXT]
        assert "nothing was saved" in BUSY_TEXT
        # answered within Slack's 3 s, after waiting its budget for the lock
        assert WRITE_BUDGET - 0.3 <= took < 2.9, took
        desk.settle()
        assert _stored(desk) == before  # no case, no audit event, no notification
    # the form is still open with what was typed: Submit again once the database is free
    again = desk.submit("U0ALICE", title="Mail stuck in the outbox")
    assert again.status == 200 and "errors" not in again.body, again.body
    [case] = desk.cases()[before[0] :]
    assert case.title == "Mail stuck in the outbox"
    cards = desk.standin.wait_for("chat.postMessage", lambda c: c.args.get("channel") == TRIAGE)
    assert len(cards) == 1
    desk.settle()
    assert len(posts(desk.standin, TRIAGE)) == 1


def test_submission_answered_busy_when_sqlite_is_locked_past_the_budget(desk: Desk) -> None:
    _busy_then_saved(desk, sqlite_write_lock)


@pytest.mark.postgres
def test_submission_answered_busy_when_postgres_locks_past_the_budget(pg_desk: Desk) -> None:
    _busy_then_saved(pg_desk, postgres_case_table_lock)


def test_a_command_that_writes_is_answered_busy_and_changes_nothing(desk: Desk) -> None:
    # `/support oncall override` writes before it answers, like a modal's submission
    desk.clock.set(datetime(2026, 11, 25, 0, 40, tzinfo=UTC))
    override = "oncall override primary <@U0LEAD|lee> 2026-11-25T08:45 2026-11-25T12:00"
    before = _overrides(desk)
    with sqlite_write_lock(desk):
        started = time.monotonic()
        busy = desk.slack.command("U0LEAD", override)
        assert time.monotonic() - started < 2.9
        assert busy.status == 200, busy.body
        assert busy.json() == {"response_type": "ephemeral", "text": BUSY_TEXT}
        desk.settle()
        assert _overrides(desk) == before
    assert "is on call for *primary*" in json.dumps(desk.ask("U0LEAD", override))
    assert _overrides(desk) == before + 1


def _overrides(desk: Desk) -> int:
    with Session(desk.engine) as session:
        return len(session.exec(select(OnCallOverride)).all())


def test_a_claim_after_its_ack_waits_for_the_database_as_long_as_it_takes(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    card = desk.card(case)
    desk.settle()
    with sqlite_write_lock(desk):
        response = desk.slack.click(
            "U0AGENT1", TRIAGE, card["ts"], "claim_case", value=str(case.id)
        )
        assert response.status == 200
        time.sleep(WRITE_BUDGET + 0.5)  # longer than a write before an ack may wait
        assert desk.events("claimed") == []
    desk.wait_until(lambda: desk.events("claimed"), "the claim, once the lock is gone")
    desk.standin.wait_for("chat.update")


def test_a_customer_message_waits_for_the_database_as_long_as_it_takes(desk: Desk) -> None:
    # Slack's event is acked before its listener runs, so the relay is work after an ack:
    # no write deadline. (With one, a reply written while the database was busy was lost.)
    desk.open_case("U0ALICE")
    desk.settle()
    [case] = desk.cases()
    dm = desk.standin.dm_channel("U0ALICE")
    with sqlite_write_lock(desk):
        reply = desk.slack.message(
            "U0ALICE", dm, "Here are the headers", thread_ts=case.requester_thread_ts
        )
        assert reply.status == 200
        time.sleep(WRITE_BUDGET + 0.5)  # longer than a write before an ack may wait
    desk.standin.wait_for(
        "chat.postMessage", lambda c: "Here are the headers" in json.dumps(c.args), timeout=10
    )


def test_transaction_past_its_deadline_stores_nothing(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'deadline.db'}")
    Person.metadata.create_all(engine)
    try:
        late = write_deadline(time.monotonic() - 0.1)
        with late, pytest.raises(DeskBusy), transaction(engine) as session:
            session.add(Person(slack_user_id="U1", name="Late"))
        with write_deadline(time.monotonic() + 5), transaction(engine) as session:
            session.add(Person(slack_user_id="U2", name="In time"))
            # a deadline shortens SQLite's wait for another process's lock…
            timeout = session.exec(text("PRAGMA busy_timeout")).scalar_one()  # type: ignore[call-overload]
            assert 0 < timeout <= 5000
        with transaction(engine) as session:
            # …and only that transaction's: the pooled connection gets its usual wait back
            timeout = session.exec(text("PRAGMA busy_timeout")).scalar_one()  # type: ignore[call-overload]
            assert timeout == SQLITE_BUSY_TIMEOUT_MS
            names = session.exec(text("SELECT name FROM person")).scalars().all()  # type: ignore[call-overload]
        assert names == ["In time"]
    finally:
        engine.dispose()


# --- a read before the answer held up: the desk answers busy itself by ANSWER_BUDGET --------


@pytest.mark.postgres
def test_a_question_whose_read_is_held_up_is_answered_busy_in_time(pg_desk: Desk) -> None:
    desk = pg_desk
    assert desk.ask("U0ALICE")["blocks"]  # the search has run once (its index is known)
    desk.settle()
    calls, shown = len(desk.standin.calls()), desk.standin.ephemerals("U0ALICE")
    with postgres_table_lock(desk, "article", "ACCESS EXCLUSIVE"):
        started = time.monotonic()
        busy = desk.slack.command("U0ALICE", "mail forwarding stopped")
        took = time.monotonic() - started
        assert busy.status == 200, busy.body
        assert busy.json() == {"response_type": "ephemeral", "text": BUSY_TEXT}
        assert ANSWER_BUDGET - 0.3 <= took < 2.9, took
    # the held-up listener goes on once the lock is gone and is stopped at its answer: no
    # second answer (Bolt would have passed the request to a catch-all at 3 s) and no message
    desk.settle()
    assert len(desk.standin.calls()) == calls
    assert [e["text"] for e in desk.standin.ephemerals("U0ALICE")[len(shown) :]] == [BUSY_TEXT]
    reply = desk.ask("U0ALICE")
    assert "Contact support" in json.dumps(reply)
