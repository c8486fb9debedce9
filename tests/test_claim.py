"""Claiming a case: first click wins, refusals change nothing (DESIGN: first click wins)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest

from tests.conftest import TRIAGE, Desk


def _claim(desk: Desk, user: str, card: dict) -> int:
    """Click Claim on the card as this person's Slack client shows it (possibly stale: a
    second clicker still sees the button the first click removed)."""
    response = desk.slack.click_in(user, card, "claim_case", channel_id=TRIAGE, is_ephemeral=False)
    return response.status


def test_agent_claims_card_updates_requester_told(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    card = desk.card(case)
    assert _claim(desk, "U0AGENT1", card) == 200
    update = desk.standin.wait_for("chat.update")[0]
    assert update.args["ts"] == card["ts"] and update.args["channel"] == TRIAGE
    shown = desk.standin.message(TRIAGE, card["ts"])
    text = json.dumps(shown["blocks"])
    assert "<@U0AGENT1> (Dana Park)" in text
    assert "claim_case" not in text  # the button is gone once claimed
    dm_channel = desk.standin.dm_channel("U0ALICE")
    notices = desk.standin.wait_for(
        "chat.postMessage",
        lambda c: c.args.get("channel") == dm_channel and "Dana Park" in json.dumps(c.args),
    )
    root = desk.standin.calls("chat.postMessage")
    first_dm = next(c for c in root if c.args.get("channel") == dm_channel)
    assert notices[0].args.get("thread_ts") == first_dm.response["ts"]  # in the case thread
    [stored] = desk.cases()
    assert stored.status == "claimed" and stored.claimed_at is not None
    assert [e.kind for e in desk.events()] == ["opened", "claimed"]


def test_second_click_is_told_who_has_it(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    card = desk.card(case)
    _claim(desk, "U0AGENT1", card)
    desk.standin.wait_for("chat.update")
    _claim(desk, "U0AGENT2", card)
    ephemeral = desk.standin.wait_for("chat.postEphemeral")[0]
    assert ephemeral.args["user"] == "U0AGENT2"
    assert "CS-00001 is already claimed by <@U0AGENT1>" in ephemeral.args["text"]
    _claim(desk, "U0AGENT1", card)  # a double click by the owner changes nothing either
    desk.standin.wait_for("chat.postEphemeral", count=2)
    assert len(desk.standin.calls("chat.update")) == 1
    assert [e.kind for e in desk.events()] == ["opened", "claimed"]


def test_late_clicks_are_told_without_waiting_for_the_database_writer(desk: Desk) -> None:
    # A click that cannot win (the case has an owner) needs no write: it is told at once even
    # while another process holds SQLite's write lock, instead of queueing for it.
    case = desk.open_case("U0ALICE")
    card = desk.card(case)
    _claim(desk, "U0AGENT1", card)
    desk.standin.wait_for("chat.update")
    desk.settle()
    other_process = sqlite3.connect(str(desk.engine.url.database), isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")
    try:
        for n, user in enumerate(["U0AGENT2", "U0LEAD", "U0AGENT1"], start=1):
            assert _claim(desk, user, card) == 200
            told = desk.standin.wait_for("chat.postEphemeral", count=n, timeout=2)[-1]
            assert told.args["user"] == user
            assert "CS-00001 is already claimed by <@U0AGENT1>" in told.args["text"]
    finally:
        other_process.execute("ROLLBACK")
        other_process.close()
    assert [e.kind for e in desk.events()] == ["opened", "claimed"]


def test_non_agent_click_is_refused_and_changes_nothing(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    card = desk.card(case)
    _claim(desk, "U0ALICE", card)  # the requester, not an agent
    ephemeral = desk.standin.wait_for("chat.postEphemeral")[0]
    assert ephemeral.args["user"] == "U0ALICE"
    assert "Only support agents can claim cases" in ephemeral.args["text"]
    [stored] = desk.cases()
    assert stored.assignee_id is None and stored.status == "new"
    assert desk.standin.calls("chat.update") == []
    assert [e.kind for e in desk.events()] == ["opened"]


def _concurrent_claims(desk: Desk, clickers: list[str]) -> None:
    case = desk.open_case("U0ALICE")
    card = desk.card(case)
    barrier = threading.Barrier(len(clickers))
    statuses: list[int] = []

    def click(user: str) -> None:
        barrier.wait()
        statuses.append(_claim(desk, user, card))

    threads = [threading.Thread(target=click, args=(u,)) for u in clickers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert statuses == [200] * len(clickers)
    desk.standin.wait_for("chat.postEphemeral", count=len(clickers) - 1, timeout=20)
    desk.standin.wait_for("chat.update")
    [stored] = desk.cases()
    assert stored.assignee_id is not None
    assert len(desk.standin.calls("chat.update")) == 1
    assert len(desk.events("claimed")) == 1
    losers = desk.standin.calls("chat.postEphemeral")
    assert len(losers) == len(clickers) - 1
    assert all("already claimed by" in c.args["text"] for c in losers)


AGENTS = ["U0AGENT1", "U0AGENT2", "U0LEAD"]


def test_twenty_concurrent_claims_one_winner_sqlite(desk: Desk) -> None:
    _concurrent_claims(desk, [AGENTS[i % 3] for i in range(20)])


@pytest.mark.postgres
def test_twenty_concurrent_claims_one_winner_postgres(pg_desk: Desk) -> None:
    _concurrent_claims(pg_desk, [AGENTS[i % 3] for i in range(20)])


def test_clicks_are_answered_at_once_while_earlier_claims_wait_on_the_database(
    desk: Desk,
) -> None:
    # Another process holds SQLite's write lock, so every claim waits after its ack. A burst
    # of clicks must still be answered at once (Slack gives up after 3 s); when the lock
    # goes, the first claim wins and every other click is told who has the case.
    case = desk.open_case("U0ALICE")
    card = desk.card(case)
    desk.settle()
    other_process = sqlite3.connect(str(desk.engine.url.database), isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")
    clickers = [AGENTS[i % 3] for i in range(40)]
    try:
        answer_times = []
        for user in clickers:
            started = time.monotonic()
            assert _claim(desk, user, card) == 200
            answer_times.append(time.monotonic() - started)
        assert max(answer_times) < 1.0, [round(t, 2) for t in answer_times]
        assert desk.events("claimed") == []  # nothing could be written yet
    finally:
        other_process.execute("ROLLBACK")
        other_process.close()
    losers = desk.standin.wait_for("chat.postEphemeral", count=len(clickers) - 1, timeout=30)
    assert all("already claimed by" in c.args["text"] for c in losers)
    desk.standin.wait_for("chat.update")
    assert len(desk.events("claimed")) == 1
    [stored] = desk.cases()
    assert stored.assignee_id is not None
