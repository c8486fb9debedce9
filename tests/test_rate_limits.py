"""Slack's rate limits (429 with Retry-After) hold up what they limit and nothing else: the
channel Slack limited gets no post before its Retry-After, a rate-limited message waits
instead of counting a failed attempt (so it never parks for that alone), and messages
waiting out a Retry-After do not hide newer ones that are due."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chatops import health as core
from handlers.worker import tick
from tests.conftest import TRIAGE, Desk
from tests.test_health import LEAD, _post, _status_form


def _triage_posts(desk: Desk) -> list[Any]:
    return [
        c
        for c in desk.standin.calls("chat.postMessage")
        if c.args.get("channel") == TRIAGE and c.ok
    ]


def test_a_due_message_is_not_starved_by_200_older_messages_waiting_out_a_retry_after(
    desk: Desk,
) -> None:
    """200 follower DMs that Slack rate-limited (429, Retry-After 600) are older than a case
    card whose first post failed with a 500: the worker's pass reads on past them, so the
    card goes out when its own back-off ends, not ten minutes later."""
    incident = _post(desk)
    assert incident.id is not None
    for i in range(200):
        core.follow(desk.engine, incident.id, f"U0FOLLOW{i:03d}", desk.clock.now())
    # Slack rate-limits opening 200 DM channels at once (conversations.open is Tier 3)
    desk.standin.fail_next("conversations.open", status=429, retry_after=600, times=200)
    _status_form(desk, "health_update_open", incident.id)
    assert desk.slack.submit_view(LEAD, {"status": "Still investigating."}).status == 200
    desk.settle(timeout=30)
    dms = [m for m in desk.outbox() if m.kind == core.HEALTH_UPDATE]
    # waiting out Slack's Retry-After: pending, not a failed attempt
    assert len(dms) == 200
    assert all(m.status == "pending" and "ratelimited" in (m.last_error or "") for m in dms)

    desk.standin.fail_next("chat.postMessage", status=500)  # the card's first post fails
    desk.open_case("U0ALICE")
    desk.settle()
    card = next(m for m in desk.outbox() if m.kind == "case.card")
    assert card.status == "pending" and card.attempts == 1
    assert _triage_posts(desk) == []

    desk.clock.advance(timedelta(seconds=30))  # the card's back-off (2 s) is long over
    tick(desk.service.desk, desk.clock.now())
    card = next(m for m in desk.outbox() if m.kind == "case.card")
    assert card.status == "sent", (
        f"card still {card.status} after its back-off: the worker looked only at the 200 "
        "older rows that are not due"
    )


def test_after_a_429_for_the_triage_channel_nothing_more_is_posted_there_before_retry_after(
    desk: Desk,
) -> None:
    """Slack answered 429 with Retry-After: 30 to a post in the triage channel: the next
    case's card waits too, not only the message that was limited (DESIGN: "honours 429
    Retry-After")."""
    desk.standin.fail_next("chat.postMessage", status=429, retry_after=30)
    desk.open_case("U0ALICE")
    desk.standin.wait_for("chat.postMessage", lambda c: c.status == 429)
    desk.settle()
    rate_limited = next(c for c in desk.standin.calls("chat.postMessage") if c.status == 429).args[
        "channel"
    ]
    assert rate_limited == TRIAGE
    desk.open_case("U0ALICE", title="Second problem")
    desk.settle()
    early = [c for c in _triage_posts(desk)]
    assert early == [], (
        f"{len(early)} post(s) to {TRIAGE} while Slack's Retry-After (30 s) for it was running"
    )


def test_rate_limiting_alone_does_not_park_a_message(desk: Desk) -> None:
    """Eight 429 answers in a row to the card (Slack busy for a while, Retry-After: 1) do
    not park it: a rate limit says nothing is wrong with the message and when to try again,
    so it stays pending and goes out once Slack lets it."""
    # 16: the requester's DM (also chat.postMessage) takes its share of them
    desk.standin.fail_next("chat.postMessage", status=429, retry_after=1, times=16)
    desk.open_case("U0ALICE")
    desk.settle()
    for _ in range(20):
        desk.clock.advance(timedelta(seconds=2))
        desk.service.desk.delivery.deliver_pending()
    card = next(m for m in desk.outbox() if m.kind == "case.card")
    assert card.status == "sent", f"card {card.status} after {card.attempts} rate limits"
    assert len(_triage_posts(desk)) == 1
