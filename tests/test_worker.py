"""The worker over simulated time: warnings, pages, escalation, handoffs — each once, at its
instant, and never while a clock is stopped (SC-16, SC-17, SC-19)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from chatops.db import transaction
from handlers.worker import tick
from models import Case, OutboxMessage, Page
from tests.conftest import TRIAGE, Desk

BJ = timedelta(hours=8)
WED_0840 = datetime(2026, 11, 25, 0, 40, tzinfo=UTC)  # Wed 08:40 Beijing


def _rows(desk: Desk, kind: str) -> list[OutboxMessage]:
    return [m for m in desk.outbox() if m.kind == kind]


def _sev_a(desk: Desk) -> int:
    case = desk.open_case(
        "U0ALICE", severity="A", business_impact="mail down", available_contact="Alice"
    )
    assert case.id is not None
    return case.id


def test_a_simulated_day_sends_each_notice_once_at_its_instant(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    sev_a = _sev_a(desk)
    desk.run_worker(WED_0840 + timedelta(hours=3))
    # Paging: step 1 at once to the primary on call (Eli until 09:00), then every 5 minutes
    # (secondary Lee, the leads, the channel, and round again) until 8 steps are spent.
    pages = _rows(desk, "page.notify")
    thread_steps = sorted(
        (m.payload["step"], m.created_at) for m in pages if m.payload["to"] == "thread"
    )
    assert [s for s, _ in thread_steps] == list(range(9))  # steps 0..7 + "exhausted"
    for step, created in thread_steps:
        assert created == WED_0840 + timedelta(minutes=5 * step)
    dm_targets = [
        (m.payload["step"], m.payload["user"]) for m in pages if m.payload["to"] == "user"
    ]
    assert (0, "U0AGENT2") in dm_targets  # Eli, primary before 09:00
    assert (1, "U0LEAD") in dm_targets  # Lee, secondary this week
    assert (2, "U0LEAD") in dm_targets  # the leads
    # Round two starts at 09:00, when Dana has taken the primary pager over from Eli: who is
    # on call is read at each step.
    assert (4, "U0AGENT1") in dm_targets and (4, "U0AGENT2") not in dm_targets
    # SLA: warning 15 min before the 09:40 due, breach at 09:40 (SC-17), once each
    warnings = [m for m in _rows(desk, "sla.warning") if m.case_id == sev_a]
    breaches = [m for m in _rows(desk, "sla.breach") if m.case_id == sev_a]
    assert {m.created_at for m in warnings} == {WED_0840 + timedelta(minutes=45)}
    assert {m.created_at for m in breaches} == {WED_0840 + timedelta(minutes=60)}
    assert len(warnings) == 1 and len(breaches) == 1  # thread only: nobody owns it
    # Sev A continuous effort: hourly reminders (SC-17); SC-16 downgrade offer after 2 h
    reminders = sorted(m.created_at for m in _rows(desk, "sev_a.update_reminder"))
    assert reminders == [WED_0840 + timedelta(hours=h) for h in (1, 2, 3)]
    offers = _rows(desk, "sev_a.downgrade_offer")
    assert [m.created_at for m in offers] == [WED_0840 + timedelta(hours=2)]
    # The 09:00 primary handoff: channel post and DM to Dana, once
    handoffs = _rows(desk, "oncall.handoff")
    assert {(m.payload["to"], m.created_at) for m in handoffs} == {
        ("channel", WED_0840 + timedelta(minutes=20)),
        ("user", WED_0840 + timedelta(minutes=20)),
    }
    assert all(m.status == "sent" for m in desk.outbox())
    # running the same instants again sends nothing new
    before = len(desk.standin.calls("chat.postMessage"))
    tick(desk.service.desk, desk.clock.now())
    assert len(desk.standin.calls("chat.postMessage")) == before


def test_no_warning_while_the_clock_is_stopped_overnight(desk: Desk) -> None:
    # Sev B technical runs 09:00-24:00 (SC-19). Opened Wed 23:30 Beijing: 30 min count on
    # Wednesday, the remaining 870 on Thursday -> due Thu 23:30, warned 2 business hours
    # before, at Thu 21:30 — nothing overnight.
    opened = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)
    desk.clock.set(opened)
    case = desk.open_case("U0ALICE")
    assert case.first_response_due == datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
    desk.run_worker(opened + timedelta(hours=10), step=timedelta(minutes=5))  # through the night
    assert [m for m in desk.outbox() if m.kind.startswith("sla.")] == []
    desk.clock.set(datetime(2026, 11, 26, 13, 0, tzinfo=UTC))
    desk.run_worker(datetime(2026, 11, 26, 16, 0, tzinfo=UTC))
    [warning] = _rows(desk, "sla.warning")
    [breach] = _rows(desk, "sla.breach")
    assert warning.created_at == datetime(2026, 11, 26, 13, 30, tzinfo=UTC)
    assert breach.created_at == datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
    posted = [
        c
        for c in desk.standin.calls("chat.postMessage")
        if c.args.get("thread_ts") and c.args["channel"] == TRIAGE
    ]
    text = json.dumps([c.args["blocks"] for c in posted])
    assert "about to miss" in text and "missed its first-response target" in text
    # unclaimed: the lead and the primary on call are mentioned (Eli is primary on Thursday)
    assert "<@U0LEAD>" in text and "<@U0AGENT2>" in text


def test_a_warning_that_falls_on_closing_time_comes_at_the_next_opening(desk: Desk) -> None:
    """SC-17, SC-19: a Sev B technical case opened Wed 11:00 Beijing is due Thu 11:00; two
    business hours before that is Wed 24:00 as much as Thu 09:00. At 24:00 the desk has
    just closed, so the warning comes at 09:00, when someone is there to act on it."""
    wed_11 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    thu_09 = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    desk.clock.set(wed_11)
    case = desk.open_case("U0ALICE")
    assert case.first_response_due == datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    assert case.sla_warn_at == thu_09
    desk.run_worker(thu_09 - timedelta(minutes=1), step=timedelta(minutes=15))
    assert _rows(desk, "sla.warning") == []
    desk.run_worker(thu_09)
    warnings = _rows(desk, "sla.warning")
    assert warnings and {m.created_at for m in warnings} == {thu_09}


def test_a_severity_change_at_night_warns_when_the_clock_starts_again(desk: Desk) -> None:
    """SC-17, SC-19: the pre-breach warning comes in business time. A change that leaves a
    case inside its warning lead while its calendar is closed warns when the calendar
    opens, not while the clock is stopped."""
    # A Sev C technical case opened Wed 10:00 Beijing has used 14 business hours by midnight
    # (09:00-24:00). At Thu 01:00 the night agent raises it to Sev B: one business hour is
    # left, so it is due Thu 10:00, inside the 2-hour lead, and its clock runs from 09:00.
    wed_10 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    thu_01 = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
    thu_09 = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    desk.clock.set(wed_10)
    case = desk.open_case("U0ALICE", severity="C")
    desk.settle()
    desk.clock.set(thu_01)
    desk.slack.click_in(
        "U0AGENT1", desk.card(case), "case_severity", channel_id=TRIAGE, is_ephemeral=False
    )
    desk.standin.wait_for("views.open", lambda c: c.args["view"]["callback_id"] != "intake")
    response = desk.slack.submit_view(
        "U0AGENT1", {"text": "customer's CEO is affected", "severity": "B"}
    )
    assert response.status == 200
    desk.settle()
    [stored] = desk.cases()
    assert stored.severity == "B"
    assert stored.first_response_due == datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # Thu 10:00
    assert stored.sla_warn_at == thu_09
    desk.run_worker(thu_09 - timedelta(minutes=1), step=timedelta(minutes=15))
    assert _rows(desk, "sla.warning") == []
    desk.clock.set(thu_09)
    tick(desk.service.desk, thu_09)
    warnings = _rows(desk, "sla.warning")
    assert warnings and {m.created_at for m in warnings} == {thu_09}


def test_a_breach_found_late_marks_the_case_warned_and_keeps_earlier_warnings(
    desk: Desk,
) -> None:
    # SC-17: no warning after the breach. Case 1 was warned on time; case 2 has no warning
    # instant (as when its target is shorter than the warning's lead). The worker's first
    # tick after the due finds both in breach.
    desk.clock.set(WED_0840)
    warned = desk.open_case("U0ALICE", severity="C")
    silent = desk.open_case("U0ALICE", severity="C")
    assert warned.first_response_due is not None and warned.sla_warn_at is not None
    desk.settle()
    with transaction(desk.engine) as session:
        session.get(Case, silent.id).sla_warn_at = None  # type: ignore[union-attr]
    warned_at = warned.sla_warn_at + timedelta(seconds=30)
    tick(desk.service.desk, warned_at)
    late = warned.first_response_due + timedelta(minutes=7)
    tick(desk.service.desk, late)
    tick(desk.service.desk, late + timedelta(minutes=5))
    by_case = {
        case_id: sorted(
            m.kind for m in desk.outbox() if m.case_id == case_id and m.kind.startswith("sla.")
        )
        for case_id in (warned.id, silent.id)
    }
    assert by_case == {
        warned.id: ["sla.breach", "sla.warning"],  # in the thread (nobody owns them)
        silent.id: ["sla.breach"],
    }
    stored = {case.id: case for case in desk.cases()}
    assert stored[warned.id].sla_warning_sent_at == warned_at  # kept, not moved to the breach
    assert stored[silent.id].sla_warning_sent_at == late  # counts as warned: no warning now
    assert stored[warned.id].sla_breach_sent_at == stored[silent.id].sla_breach_sent_at == late
    # what the agents saw in the cards' threads: two breaches, one warning, nothing twice
    thread_posts = [
        json.dumps(c.args["blocks"])
        for c in desk.standin.calls("chat.postMessage")
        if c.args.get("thread_ts") and c.args["channel"] == TRIAGE
    ]
    assert sum("missed its first-response target" in text for text in thread_posts) == 2
    assert sum("about to miss" in text for text in thread_posts) == 1


def test_a_breach_found_late_on_postgres(pg_desk: Desk) -> None:
    test_a_breach_found_late_marks_the_case_warned_and_keeps_earlier_warnings(pg_desk)


def test_warning_goes_to_the_owner_too(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    case = desk.open_case("U0ALICE", severity="C")
    desk.slack.click_in("U0AGENT1", desk.card(case), "claim_case", channel_id=TRIAGE)
    desk.standin.wait_for("chat.update")
    assert case.first_response_due is not None
    desk.run_worker(case.first_response_due, step=timedelta(minutes=30))
    owner_dm = desk.standin.dm_channel("U0AGENT1")
    dms = [c for c in desk.standin.calls("chat.postMessage") if c.args["channel"] == owner_dm]
    assert any("about to miss" in json.dumps(c.args["blocks"]) for c in dms)
    assert any("missed its first-response target" in json.dumps(c.args["blocks"]) for c in dms)


def _page_dm(desk: Desk, user: str) -> dict:
    channel = desk.standin.dm_channel(user)
    call = desk.standin.wait_for(
        "chat.postMessage",
        lambda c: c.args["channel"] == channel and "You are paged" in json.dumps(c.args),
    )[0]
    return desk.standin.message(channel, call.response["ts"])


def test_acknowledge_stops_the_escalation_and_first_ack_wins(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    _sev_a(desk)
    dm = _page_dm(desk, "U0AGENT2")  # Eli is primary before 09:00
    results: list[int] = []
    barrier = threading.Barrier(2)

    def press(user: str) -> None:
        barrier.wait()
        channel = desk.standin.dm_channel("U0AGENT2")
        results.append(
            desk.slack.click_in(
                user, dm, "acknowledge_page", channel_id=channel, is_ephemeral=False
            ).status
        )

    threads = [threading.Thread(target=press, args=(u,)) for u in ("U0AGENT2", "U0LEAD")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == [200, 200]
    answers = desk.standin.wait_for("response_url", count=2)
    texts = [json.dumps(a.args) for a in answers]
    assert sum("You acknowledged the page" in t for t in texts) == 1
    assert sum("already acknowledged by" in t for t in texts) == 1
    assert len(desk.events("page_acknowledged")) == 1
    with Session(desk.engine) as session:
        [page] = session.exec(select(Page)).all()
    assert page.acknowledged_by in ("U0AGENT2", "U0LEAD")  # any agent may acknowledge
    [case] = desk.cases()
    assert case.status == "claimed"  # the acknowledger owns the unclaimed case
    desk.run_worker(WED_0840 + timedelta(minutes=30))
    steps = {m.payload["step"] for m in _rows(desk, "page.notify")}
    assert steps == {0}  # no escalation after the acknowledgement


def test_non_agent_cannot_acknowledge(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    _sev_a(desk)
    dm = _page_dm(desk, "U0AGENT2")
    desk.slack.click_in(
        "U0ALICE",
        dm,
        "acknowledge_page",
        channel_id=desk.standin.dm_channel("U0AGENT2"),
        is_ephemeral=False,
    )
    answer = desk.standin.wait_for("response_url")[0]
    assert "Only support agents can acknowledge" in json.dumps(answer.args)
    with Session(desk.engine) as session:
        [page] = session.exec(select(Page)).all()
    assert page.acknowledged_at is None


def test_claiming_a_sev_a_case_acknowledges_its_page(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    case_id = _sev_a(desk)
    case = next(c for c in desk.cases() if c.id == case_id)
    desk.slack.click_in("U0AGENT1", desk.card(case), "claim_case", channel_id=TRIAGE)
    desk.standin.wait_for("chat.update")
    desk.run_worker(WED_0840 + timedelta(minutes=20))
    assert {m.payload["step"] for m in _rows(desk, "page.notify")} == {0}
    with Session(desk.engine) as session:
        [page] = session.exec(select(Page)).all()
    assert page.acknowledged_by == "U0AGENT1"


def test_raising_a_case_to_sev_a_pages(desk: Desk) -> None:
    from chatops.cases.clock import change_severity

    desk.clock.set(WED_0840)
    case = desk.open_case("U0ALICE")
    assert _rows(desk, "page.notify") == []
    change_severity(
        desk.engine,
        case.id,
        "A",
        "U0AGENT1",
        "outage spread",
        desk.service.rules,
        WED_0840 + timedelta(minutes=3),
    )
    tick(desk.service.desk, WED_0840 + timedelta(minutes=3))
    assert {m.payload["step"] for m in _rows(desk, "page.notify")} == {0}


def test_handoff_summarises_long_lists(desk: Desk) -> None:
    desk.clock.set(datetime(2026, 11, 25, 0, 30, tzinfo=UTC))
    for i in range(12):
        desk.open_case("U0ALICE", severity="C", title=f"Question {i}")
    desk.run_worker(datetime(2026, 11, 25, 1, 1, tzinfo=UTC), step=timedelta(minutes=10))
    posts = [c for c in desk.standin.calls("chat.postMessage") if c.args["channel"] == "C0HANDOFF"]
    assert len(posts) == 1
    text = json.dumps(posts[0].args["blocks"])
    assert "Open cases: 12" in text and "Unclaimed (12)" in text and "and 7 more" in text
    assert len(posts[0].args["blocks"]) <= 50


def downgrade_offer(desk: Desk, case: Case) -> tuple[str, dict[str, Any]]:
    """Agent 1 claims the Sev A `case` opened at WED_0840; two quiet hours of the worker
    later, the SC-16 offer in their DM: (the DM channel, the offer as Slack shows it)."""
    desk.slack.click_in("U0AGENT1", desk.card(case), "claim_case", channel_id=TRIAGE)
    desk.standin.wait_for("chat.update")
    desk.run_worker(WED_0840 + timedelta(hours=2), step=timedelta(minutes=5))
    channel = desk.standin.dm_channel("U0AGENT1")
    offer = desk.standin.wait_for(
        "chat.postMessage",
        lambda c: c.args["channel"] == channel and "downgrade_case" in json.dumps(c.args),
    )[0]
    return channel, desk.standin.message(channel, offer.response["ts"])


def test_downgrade_offer_is_recorded_with_who_and_why(desk: Desk) -> None:
    # SC-16: after 2 h without a customer response the owner may lower Sev A
    desk.clock.set(WED_0840)
    case_id = _sev_a(desk)
    case = next(c for c in desk.cases() if c.id == case_id)
    channel, message = downgrade_offer(desk, case)
    desk.slack.click_in(
        "U0ALICE", message, "downgrade_case", channel_id=channel, is_ephemeral=False
    )
    refused = desk.standin.wait_for("response_url")[0]
    assert "Only support agents" in json.dumps(refused.args)
    desk.slack.click_in(
        "U0AGENT1", message, "downgrade_case", channel_id=channel, is_ephemeral=False
    )
    desk.standin.wait_for("response_url", count=2)
    [event] = desk.events("severity_changed")
    assert (event.from_value, event.to_value) == ("A", "B")
    assert "SC-16" in event.detail["reason"]
    [stored] = desk.cases()
    assert stored.severity == "B" and stored.next_update_reminder_at is None


def test_a_busy_delivery_pass_is_not_a_warning_each_second(caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    from handlers.worker import _BusyDeliveryFilter

    log = logging.getLogger("apscheduler.scheduler.test-filter")
    log.addFilter(_BusyDeliveryFilter())
    with caplog.at_level(logging.INFO, logger=log.name):
        log.warning(
            'Execution of job "run_worker.<locals>.deliver (trigger: interval[0:00:01])" '
            "skipped: maximum number of running instances reached (1)"
        )
        log.warning('Run time of job "sweep" was missed by 0:00:31')
    assert [r.getMessage() for r in caplog.records] == [
        'Run time of job "sweep" was missed by 0:00:31'
    ]
    assert all(r.levelname == "WARNING" for r in caplog.records)
