"""Slack answering 429 or 500: the case is still opened, the message is delivered later,
once, and in order; a refusal that retries cannot fix is parked, not dropped."""

from __future__ import annotations

import time
from datetime import timedelta

from tests.conftest import TRIAGE, Desk


def _triage_posts(desk: Desk) -> list:
    return [
        c
        for c in desk.standin.calls("chat.postMessage")
        if c.args.get("channel") == TRIAGE and c.ok
    ]


def _eventually(check, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def _card_attempts(desk: Desk) -> int:
    return next(m for m in desk.outbox() if m.kind == "case.card").attempts


def _deliver(desk: Desk) -> int:
    return desk.service.desk.delivery.deliver_pending()


def _delivered_once(desk: Desk) -> None:
    """Whoever sends it (this sweep or the request's own delivery still running), the card
    goes out exactly once."""
    _deliver(desk)
    desk.standin.wait_for("chat.postMessage", lambda c: c.args.get("channel") == TRIAGE and c.ok)
    _deliver(desk)
    assert len(_triage_posts(desk)) == 1


def test_500_from_slack_is_retried_later_and_sent_once(desk: Desk) -> None:
    desk.standin.fail_next("chat.postMessage", status=500)
    case = desk.open_case("U0ALICE")  # the admin's submission still succeeds
    desk.standin.wait_for("chat.postMessage", lambda c: not c.ok)
    desk.standin.wait_for("chat.postMessage", lambda c: c.ok)  # the DM lane is not held up
    _eventually(lambda: _card_attempts(desk) == 1)
    card_row = next(m for m in desk.outbox() if m.kind == "case.card")
    assert card_row.status == "pending" and card_row.attempts == 1
    assert "500" in (card_row.last_error or "") or card_row.last_error
    assert _triage_posts(desk) == []
    assert _deliver(desk) == 0  # backing off: not due yet
    desk.clock.advance(timedelta(seconds=5))
    _delivered_once(desk)
    assert all(m.status == "sent" for m in desk.outbox())
    assert desk.card(case)["blocks"]


def test_429_waits_for_retry_after(desk: Desk) -> None:
    desk.standin.fail_next("chat.postMessage", status=429, retry_after=30)
    desk.open_case("U0ALICE")
    desk.standin.wait_for("chat.postMessage", lambda c: c.status == 429)
    _eventually(lambda: _card_attempts(desk) == 1)
    desk.clock.advance(timedelta(seconds=20))
    _deliver(desk)
    assert _triage_posts(desk) == []  # Retry-After (30 s) not over yet
    desk.clock.advance(timedelta(seconds=11))
    _delivered_once(desk)


def test_claim_waits_for_the_card_it_updates(desk: Desk) -> None:
    # The card could not be posted; a claim meanwhile must not be lost or reordered:
    # once Slack is back the card goes out (already showing the owner), and no
    # chat.update is attempted on a card that never existed.
    desk.standin.fail_next("chat.postMessage", status=500)
    case = desk.open_case("U0ALICE")
    desk.standin.wait_for("chat.postMessage", lambda c: not c.ok)
    _eventually(lambda: _card_attempts(desk) == 1)
    from chatops.cases.service import claim_case

    assert claim_case(desk.engine, case.id, "U0AGENT1", desk.clock.now()).won
    desk.clock.advance(timedelta(seconds=5))
    _delivered_once(desk)
    [post] = _triage_posts(desk)
    assert "Dana Park" in str(post.args["blocks"])
    assert "claim_case" not in str(post.args["blocks"])
    assert all(c.ok for c in desk.standin.calls("chat.update"))


def test_permanent_refusal_is_parked_not_retried(desk: Desk) -> None:
    desk.standin.fail_next("chat.postMessage", error="channel_not_found")
    desk.open_case("U0ALICE")
    desk.standin.wait_for("chat.postMessage", lambda c: c.error == "channel_not_found")
    _eventually(lambda: next(m for m in desk.outbox() if m.kind == "case.card").status != "pending")
    card_row = next(m for m in desk.outbox() if m.kind == "case.card")
    assert card_row.status == "parked"
    assert "channel_not_found" in (card_row.last_error or "")
    desk.clock.advance(timedelta(minutes=10))
    _deliver(desk)
    assert _triage_posts(desk) == []


def _book_channel(desk: Desk, channel: str, seconds: float) -> None:
    """Another deliverer has reserved `channel`'s slots this far ahead (a burst of posts)."""
    from datetime import UTC, datetime

    from sqlmodel import Session

    from models import ChannelPace

    with Session(desk.engine) as session:
        row = session.get(ChannelPace, channel) or ChannelPace(channel_id=channel)
        row.next_slot = datetime.now(UTC) + timedelta(seconds=seconds)
        session.add(row)
        session.commit()


def test_a_busy_channel_holds_up_neither_the_deliverer_nor_other_channels(desk: Desk) -> None:
    # With the triage channel's slots taken 30 s ahead, the deliverer must not sleep on the
    # card holding its lease (past the lease another process would post it again): it lets
    # the card go, sends the requester's DM meanwhile, and a later pass posts the card once.
    _book_channel(desk, TRIAGE, 30)
    case = desk.open_case("U0ALICE")
    desk.standin.wait_for("chat.postMessage", lambda c: c.args.get("channel") != TRIAGE)
    desk.settle()  # the submission's own delivery, after its ack, has let the card go too
    started = time.monotonic()
    _deliver(desk)
    assert time.monotonic() - started < 3  # waited at most slot_wait, not 30 s
    card_row = next(m for m in desk.outbox() if m.kind == "case.card")
    assert card_row.status == "pending" and card_row.attempts == 0  # not a failure
    assert card_row.lease_owner is None  # let go: any deliverer may take it
    assert _triage_posts(desk) == []
    _book_channel(desk, TRIAGE, 0)
    _delivered_once(desk)
    assert desk.card(case)["blocks"]
    assert all(m.status == "sent" for m in desk.outbox())


def test_the_dm_channel_is_asked_for_once_per_person(desk: Desk) -> None:
    for _ in range(3):
        desk.open_case("U0ALICE")
    _eventually(lambda: all(m.status == "sent" for m in desk.outbox()))
    opened = [
        c for c in desk.standin.calls("conversations.open") if "U0ALICE" in str(c.args.get("users"))
    ]
    assert len(opened) == 1
    dms = [c for c in desk.standin.calls("chat.postMessage") if c.args.get("channel") != TRIAGE]
    assert len(dms) >= 3 and len({c.args["channel"] for c in dms}) == 1
