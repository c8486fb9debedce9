"""SC-16 ("2 hours without customer response on a Sev A case prompts the case owner to
downgrade"; support may lower the severity if the customer "does not respond to the
investigation within a reasonable time"): the silence counts on the Sev A case only, and a
downgrade offer the customer has answered since can no longer be taken."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tests.conftest import TRIAGE, Desk
from tests.test_long_text import work
from tests.test_worker import WED_0840, downgrade_offer

WED_10 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # Wed 10:00 Beijing


def test_a_case_raised_to_sev_a_counts_the_silence_from_the_raise(desk: Desk) -> None:
    desk.clock.set(WED_10)
    case = desk.open_case("U0ALICE")  # Sev B, Contoso has the agreement
    raised_at = WED_10 + timedelta(hours=3)  # 13:00 Beijing, three quiet hours after opening
    desk.clock.set(raised_at)
    work(desk, "U0AGENT1", case, "case_severity", "whole company down now", severity="A")
    assert desk.cases()[0].severity == "A"
    desk.run_worker(raised_at + timedelta(minutes=119), step=timedelta(minutes=7))
    assert [m for m in desk.outbox() if m.kind == "sev_a.downgrade_offer"] == []
    desk.run_worker(raised_at + timedelta(minutes=125), step=timedelta(minutes=3))
    assert [m for m in desk.outbox() if m.kind == "sev_a.downgrade_offer"]


def test_downgrade_button_after_the_customer_responded(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    case = desk.open_case(
        "U0ALICE", severity="A", business_impact="mail down", available_contact="Alice"
    )
    channel, message = downgrade_offer(desk, case)
    # 10:45 Beijing: the customer answers in the case's DM thread
    desk.clock.set(WED_0840 + timedelta(hours=2, minutes=5))
    [stored] = desk.cases()
    dm = desk.standin.dm_channel("U0ALICE")
    sent = desk.slack.message(
        "U0ALICE", dm, "Here is the trace you asked for", thread_ts=stored.requester_thread_ts
    )
    assert sent.status == 200
    desk.wait_until(lambda: desk.events("customer_replied"), "customer reply recorded")
    # 10:50: the owner presses the (now stale) Downgrade button
    desk.clock.set(WED_0840 + timedelta(hours=2, minutes=10))
    desk.slack.click_in(
        "U0AGENT1", message, "downgrade_case", channel_id=channel, is_ephemeral=False
    )
    desk.settle()
    changed = desk.events("severity_changed")
    [stored] = desk.cases()
    assert stored.severity == "A" and changed == [], (
        stored.severity,
        [e.detail.get("reason") for e in changed],
    )
    refusal = desk.standin.wait_for("response_url", timeout=5)[-1]
    assert "stays Sev A" in json.dumps(refusal.args)


def test_a_reopened_sev_a_case_counts_the_silence_from_the_reopening(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    case = desk.open_case(
        "U0ALICE", severity="A", business_impact="mail down", available_contact="Alice"
    )
    work(desk, "U0AGENT1", case, "case_reply", "Looking at it now.")
    work(desk, "U0AGENT1", case, "case_resolve", "Transport restarted.")
    reopened = WED_0840 + timedelta(hours=3)  # the customer's last word was three hours ago
    desk.clock.set(reopened)
    response = desk.slack.click_in(
        "U0AGENT1", desk.card(case), "case_reopen", channel_id=TRIAGE, is_ephemeral=False
    )
    assert response.status == 200
    desk.settle()
    assert desk.cases()[0].status == "in_progress"

    def offers() -> list[object]:
        return [m for m in desk.outbox() if m.kind == "sev_a.downgrade_offer"]

    desk.run_worker(reopened + timedelta(minutes=115), step=timedelta(minutes=5))
    assert offers() == []
    desk.run_worker(reopened + timedelta(minutes=125), step=timedelta(minutes=5))
    assert offers()
