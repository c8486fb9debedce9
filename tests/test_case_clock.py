"""The stored case's first-response clock: severity changes and pauses (SC-15..SC-17,
SC-19..SC-21). Cases are opened through the front door; the changes call the core, since
the buttons that drive them belong to the case-lifecycle work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from chatops.cases.clock import ClockChangeRefused, change_severity, pause_clock, resume_clock
from chatops.cases.lifecycle import await_customer, customer_message, reply
from chatops.cases.service import claim_case
from tests.conftest import Desk

WED_10_BJ = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def _reload(desk: Desk, case_id: int):  # type: ignore[no-untyped-def]
    return next(c for c in desk.cases() if c.id == case_id)


def test_raise_b_to_a_after_five_business_hours_is_due_at_once(desk: Desk) -> None:
    # SC-17: Sev A 1 hour; elapsed business time counts against the new target
    case = desk.open_case("U0ALICE")
    changed_at = WED_10_BJ + timedelta(hours=5)
    change = change_severity(
        desk.engine,
        case.id,
        "A",
        "U0AGENT1",
        "whole company affected",
        desk.service.rules,
        changed_at,
    )
    assert change.old_due == datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    assert change.new_due == changed_at
    [event] = desk.events("severity_changed")
    assert (event.from_value, event.to_value) == ("B", "A")
    assert event.detail["old_due"] == change.old_due.isoformat()
    assert event.detail["new_due"] == changed_at.isoformat()
    assert event.detail["reason"] == "whole company affected"


def test_lower_a_to_b_runs_the_rest_on_the_b_calendar(desk: Desk) -> None:
    # Sev A opened Wed 10:00 Beijing; lowered at 10:30 (30 min spent on the 24x7 calendar):
    # 900 - 30 = 870 business minutes remain on 09:00-24:00: Wed 10:30-24:00 is 810, then
    # 60 more -> Thu 10:00 Beijing (SC-19, SC-21)
    case = desk.open_case(
        "U0ALICE", severity="A", business_impact="mail down", available_contact="Alice"
    )
    change = change_severity(
        desk.engine,
        case.id,
        "B",
        "U0AGENT1",
        "only one mailbox",
        desk.service.rules,
        WED_10_BJ + timedelta(minutes=30),
    )
    assert change.new_due == datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def test_each_stretch_is_measured_on_its_own_calendar(desk: Desk) -> None:
    # B (09-24) for 1 h, then A (24x7) overnight for 10 h, then back to B.
    case = desk.open_case("U0ALICE", severity="C")
    rules = desk.service.rules
    change_severity(
        desk.engine, case.id, "B", "U0AGENT1", "worse", rules, WED_10_BJ + timedelta(hours=1)
    )
    change_severity(
        desk.engine, case.id, "C", "U0AGENT1", "better", rules, WED_10_BJ + timedelta(hours=2)
    )
    stored = _reload(desk, case.id)
    assert stored.sla_elapsed_minutes == pytest.approx(120)
    # C: 3 support days = 2700 min; 120 spent; 2580 left from Wed 12:00 Beijing
    # Wed 12-24 = 720, Thu 900, Fri 900 -> 2520, 60 more on Sat from 09:00 -> Sat 10:00
    assert stored.first_response_due == datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def test_severity_change_is_checked(desk: Desk) -> None:
    case = desk.open_case("U0FRANK")  # Fabrikam: no agreement, so no Sev A (SC-15)
    rules = desk.service.rules
    with pytest.raises(ClockChangeRefused, match="not available"):
        change_severity(desk.engine, case.id, "A", "U0AGENT1", "x", rules, WED_10_BJ)
    with pytest.raises(ClockChangeRefused, match="Only support agents"):
        change_severity(desk.engine, case.id, "C", "U0FRANK", "x", rules, WED_10_BJ)
    with pytest.raises(ClockChangeRefused, match="reason"):
        change_severity(desk.engine, case.id, "C", "U0AGENT1", "  ", rules, WED_10_BJ)
    assert desk.events("severity_changed") == []


def test_pause_moves_the_due_by_the_business_time_paused(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")  # Sev B, due Thu 10:00 Beijing
    rules = desk.service.rules
    paused = pause_clock(desk.engine, case.id, rules, WED_10_BJ + timedelta(hours=1))
    assert paused.new_due is None
    # resumed Thu 02:00 Beijing, outside hours: only Wed 11:00-24:00 (13 h) was paused
    resumed = resume_clock(desk.engine, case.id, rules, datetime(2026, 11, 25, 18, 0, tzinfo=UTC))
    # 60 min spent; 840 left from the next opening Thu 09:00 -> Thu 23:00 Beijing
    assert resumed.new_due == datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    kinds = [e.kind for e in desk.events()]
    assert kinds[-2:] == ["clock_paused", "clock_resumed"]


def test_sev_a_clock_never_pauses(desk: Desk) -> None:
    # Sev A is continuous effort (SC-17): its policy target does not pause
    case = desk.open_case(
        "U0ALICE", severity="A", business_impact="mail down", available_contact="Alice"
    )
    change = pause_clock(desk.engine, case.id, desk.service.rules, WED_10_BJ)
    assert change.new_due == change.old_due
    assert desk.events("clock_paused") == []


def test_raising_a_paused_case_to_a_restarts_its_clock(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    rules = desk.service.rules
    pause_clock(desk.engine, case.id, rules, WED_10_BJ + timedelta(minutes=10))
    change = change_severity(
        desk.engine, case.id, "A", "U0AGENT1", "escalated", rules, WED_10_BJ + timedelta(hours=3)
    )
    # 10 min spent before the pause; 50 min left on 24x7 from the change
    assert change.new_due == WED_10_BJ + timedelta(hours=3, minutes=50)
    assert _reload(desk, case.id).sla_paused is False


def test_awaiting_and_the_customer_reply_each_commit_once(desk: Desk) -> None:
    # The status, its notice and the clock's pause (or resume) are one transaction: a crash
    # between them would leave a case waiting on the customer with its clock running.
    rules = desk.service.rules
    case = desk.open_case("U0ALICE")
    assert claim_case(desk.engine, case.id, "U0AGENT1", WED_10_BJ).won
    # SC-17: the first response comes before waiting on the requester
    reply(desk.engine, case.id, "U0AGENT1", "Could you send the headers?", WED_10_BJ)
    desk.settle()  # the card and the requester's DM thread are out: nothing else commits
    commits: list[int] = []
    listener = lambda *_args: commits.append(1)  # noqa: E731
    event.listen(desk.engine, "commit", listener)
    try:
        await_customer(desk.engine, case.id, "U0AGENT1", rules, WED_10_BJ + timedelta(hours=1))
        assert len(commits) == 1
        stored = _reload(desk, case.id)
        assert stored.status == "awaiting_customer" and stored.sla_paused
        assert stored.requester_channel and stored.requester_thread_ts
        commits.clear()
        at = WED_10_BJ + timedelta(hours=2)
        done = customer_message(
            desk.engine,
            stored.requester_channel,
            stored.requester_thread_ts,
            "U0ALICE",
            "Here are the headers",
            "Ev-clock-1",
            rules,
            at,
        )
        assert done is not None and len(commits) == 1
    finally:
        event.remove(desk.engine, "commit", listener)
    stored = _reload(desk, case.id)
    assert stored.status == "in_progress" and not stored.sla_paused
    kinds = [e.kind for e in desk.events()]
    assert kinds[-3:] == ["customer_replied", "status_changed", "clock_resumed"]
