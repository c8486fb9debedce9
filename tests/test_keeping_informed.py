"""Who hears of a change nobody asked them about: the requester when support changes the
severity they were promised (SC-15, SC-16; SC-23 keeps the admins informed), and support
when the requester reopens a resolved case (the card edited in place alerts nobody)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from models import Case
from tests.conftest import TRIAGE, Desk, posts


def test_the_requester_is_told_when_support_lowers_the_severity(desk: Desk) -> None:
    case = desk.open_case(
        "U0ALICE", severity="A", business_impact="Nobody can send mail", available_contact="Alice"
    )
    desk.slack.click_in("U0AGENT1", desk.card(case), "claim_case", channel_id=TRIAGE)
    desk.standin.wait_for("chat.update")
    desk.settle()
    desk.clock.advance(timedelta(minutes=10))
    desk.slack.click_in("U0AGENT1", desk.card(case), "case_severity", channel_id=TRIAGE)
    desk.standin.wait_for("views.open", lambda c: c.args["view"]["callback_id"] != "intake")
    response = desk.slack.submit_view("U0AGENT1", {"severity": "B", "text": "one mailbox"})
    assert response.status == 200 and "errors" not in (response.body or ""), response.body
    desk.settle()
    [stored] = desk.cases()
    assert stored.severity == "B"
    dm = desk.standin.dm_channel("U0ALICE")
    told = [c.args for c in posts(desk.standin, dm) if "changed the severity" in json.dumps(c.args)]
    assert len(told) == 1 and told[0]["thread_ts"] == stored.requester_thread_ts
    text = json.dumps(told[0]["blocks"])
    assert "from Sev A to *Sev B" in text and "First response by" in text, text
    assert "one mailbox" not in text  # the agent's reason is support's own
    assert "one mailbox" not in json.dumps(desk.ask("U0ALICE", f"case {case.number}"))
    assert "one mailbox" in json.dumps(desk.ask("U0AGENT1", f"case {case.number}"))


def test_support_hears_when_the_requester_reopens(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    desk.slack.click_in("U0AGENT1", desk.card(case), "claim_case", channel_id=TRIAGE)
    desk.standin.wait_for("chat.update")
    desk.settle()
    desk.slack.click_in("U0AGENT1", desk.card(case), "case_resolve", channel_id=TRIAGE)
    desk.standin.wait_for("views.open", lambda c: c.args["view"]["callback_id"] != "intake")
    assert desk.slack.submit_view("U0AGENT1", {"text": "Rule re-enabled."}).status == 200
    dm = desk.standin.dm_channel("U0ALICE")
    call = desk.standin.wait_for("chat.postMessage", lambda c: "is resolved" in json.dumps(c.args))
    resolved = desk.standin.message(dm, call[0].response["ts"])
    desk.settle()
    before = len(posts(desk.standin))
    desk.clock.advance(timedelta(hours=3))
    desk.slack.click_in("U0ALICE", resolved, "case_reopen", channel_id=dm, is_ephemeral=False)
    desk.standin.wait_for("response_url")
    desk.settle()
    [stored] = desk.cases()
    assert stored.status == "in_progress"
    new = [c.args for c in posts(desk.standin)[before:] if "was reopened" in json.dumps(c.args)]
    owner_dm = desk.standin.dm_channel("U0AGENT1")
    assert sorted((m["channel"], m.get("thread_ts")) for m in new) == sorted(
        [(TRIAGE, stored.card_ts), (owner_dm, None)]
    )
    assert "(requester)" in json.dumps(new)


def test_an_owner_who_reopens_is_not_told_of_it(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    desk.slack.click_in("U0AGENT1", desk.card(case), "claim_case", channel_id=TRIAGE)
    desk.standin.wait_for("chat.update")
    desk.slack.click_in("U0AGENT1", desk.card(case), "case_resolve", channel_id=TRIAGE)
    desk.standin.wait_for("views.open", lambda c: c.args["view"]["callback_id"] != "intake")
    assert desk.slack.submit_view("U0AGENT1", {"text": "Rule re-enabled."}).status == 200
    desk.settle()
    desk.wait_until(lambda: "case_reopen" in json.dumps(desk.card(case)), "card offers Reopen")
    desk.slack.click_in("U0AGENT1", desk.card(case), "case_reopen", channel_id=TRIAGE)
    desk.settle()
    new = [c.args for c in posts(desk.standin) if "was reopened" in json.dumps(c.args)]
    assert [m["channel"] for m in new] == [TRIAGE]  # the thread only


def _written_after_end_answers(desk: Desk, channel: str) -> list[str]:
    return [
        json.dumps(c.args["blocks"])
        for c in posts(desk.standin, channel)
        if "nobody is working on it" in json.dumps(c.args)
    ]


def test_a_requester_writing_on_a_resolved_or_closed_case_is_told_what_to_do(
    desk: Desk,
) -> None:
    """Nobody works a resolved or closed case, so a message there would wait for nobody: the
    requester is told (once while it stays so) to press Reopen, or, once it is closed, to
    open a new case; the message still reaches the case's thread."""
    case = desk.open_case("U0ALICE")
    desk.slack.click_in("U0AGENT1", desk.card(case), "case_resolve", channel_id=TRIAGE)
    desk.standin.wait_for("views.open", lambda c: c.args["view"]["callback_id"] != "intake")
    assert desk.slack.submit_view("U0AGENT1", {"text": "Rule re-enabled."}).status == 200
    desk.settle()
    [stored] = desk.cases()
    dm, thread = desk.standin.dm_channel("U0ALICE"), stored.requester_thread_ts
    for words in ("still broken", "really, still broken"):
        assert desk.slack.message("U0ALICE", dm, words, thread_ts=thread).status == 200
        desk.settle()
    [told] = _written_after_end_answers(desk, dm)
    assert "is resolved" in told and "Reopen" in told
    relayed = json.dumps([c.args for c in posts(desk.standin, TRIAGE)])
    assert "really, still broken" in relayed
    desk.run_worker(desk.clock.now() + timedelta(days=6), step=timedelta(hours=12))
    assert desk.cases()[0].status == "closed"
    assert desk.slack.message("U0ALICE", dm, "hello?", thread_ts=thread).status == 200
    desk.settle()
    answers = _written_after_end_answers(desk, dm)
    assert len(answers) == 2 and "is closed" in answers[1] and "new case" in answers[1]


def _resolved_by_dana(desk: Desk) -> tuple[Case, str, dict[str, Any]]:
    """Alice's case, resolved by Dana from its card: the case, Alice's DM channel and the
    "is resolved" message there (with its Reopen button)."""
    case = desk.open_case("U0ALICE")
    desk.slack.click_in("U0AGENT1", desk.card(case), "case_resolve", channel_id=TRIAGE)
    desk.standin.wait_for("views.open", lambda c: c.args["view"]["callback_id"] != "intake")
    assert desk.slack.submit_view("U0AGENT1", {"text": "Rule re-enabled."}).status == 200
    desk.settle()
    dm = desk.standin.dm_channel("U0ALICE")
    call = desk.standin.wait_for("chat.postMessage", lambda c: "is resolved" in json.dumps(c.args))
    resolved = desk.standin.message(dm, call[0].response["ts"])
    return case, dm, resolved


def test_reopen_pressed_twice_reopens_once_and_says_it_is_open_already(desk: Desk) -> None:
    # Alice presses Reopen in her DM; Dana, who saw the thread, presses it on the card. The
    # second press is told the case is open again already, not that it "is not resolved".
    case, dm, resolved = _resolved_by_dana(desk)
    stale_card = desk.card(case)
    desk.slack.click_in("U0ALICE", resolved, "case_reopen", channel_id=dm, is_ephemeral=False)
    desk.standin.wait_for("response_url")
    desk.settle()
    desk.slack.click_in("U0AGENT1", stale_card, "case_reopen", channel_id=TRIAGE)
    answers = desk.standin.wait_for("response_url", count=2)
    desk.settle()
    second = json.dumps(answers[1].args)
    assert "CS-00001 is open again already" in second and "not resolved" not in second, second
    assert len([e for e in desk.events("status_changed") if e.to_value == "in_progress"]) == 1
    assert len([c for c in posts(desk.standin) if "was reopened" in json.dumps(c.args)]) == 1


def _reopened_at_once(desk: Desk) -> None:
    """The requester (DM) and an agent (card) press Reopen at the same moment: one reopens,
    the other is told it is open again already; one notice each, nothing twice."""
    import threading

    case, dm, resolved = _resolved_by_dana(desk)
    desk.card_offers(case, "case_reopen")
    card = desk.card(case)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def press(user: str, message: dict, channel: str) -> None:  # type: ignore[type-arg]
        barrier.wait()
        statuses.append(
            desk.slack.click_in(user, message, "case_reopen", channel_id=channel).status
        )

    threads = [
        threading.Thread(target=press, args=("U0ALICE", resolved, dm)),
        threading.Thread(target=press, args=("U0AGENT1", card, TRIAGE)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert statuses == [200, 200]
    answers = [json.dumps(c.args) for c in desk.standin.wait_for("response_url", count=2)]
    desk.settle()
    assert sorted("open again already" in a for a in answers) == [False, True], answers
    assert len([e for e in desk.events("status_changed") if e.to_value == "in_progress"]) == 1
    assert desk.fresh(case).status == "in_progress"
    reopened = [c for c in posts(desk.standin) if "was reopened" in json.dumps(c.args)]
    assert len(reopened) == 1
    assert len([c for c in posts(desk.standin, dm) if "is open again" in json.dumps(c.args)]) == 1


def test_reopen_pressed_by_two_at_once(desk: Desk) -> None:
    _reopened_at_once(desk)


@pytest.mark.postgres
def test_reopen_pressed_by_two_at_once_on_postgres(pg_desk: Desk) -> None:
    _reopened_at_once(pg_desk)
