"""What holds after a case action: the SLA report counts a case answered by its
resolution as answered (SC-17, SC-23), a reply to an unclaimed Sev A case acknowledges its
page as a Claim does, an old downgrade offer moves no case that is not Sev A any more
(SC-16) and says nothing is due on an answered one, and a Claim's audit entry names the
status the case was in."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlmodel import Session, select

from models import Page
from tests.conftest import OPEN_HOURS, Desk
from tests.test_worker import WED_0840, _rows, downgrade_offer


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# --- the SLA report: a resolution answers the requester -------------------------------


def test_a_case_resolved_before_its_due_is_not_an_sla_breach_in_the_report(desk: Desk) -> None:
    # Sev A, due at T0 + 60 min. The agent claims it and resolves it after 20 minutes; the
    # resolution note goes to the requester's DM (they were answered, 40 minutes early).
    desk.clock.set(OPEN_HOURS)
    case = desk.open_case(
        "U0ALICE",
        severity="A",
        title="Mail down",
        business_impact="Nobody can send mail.",
        available_contact="Alice Chen",
    )
    desk.press("U0AGENT1", case, "claim_case")
    desk.standin.wait_for("chat.update")
    desk.clock.set(OPEN_HOURS + timedelta(minutes=20))
    desk.press("U0AGENT1", case, "case_resolve")
    desk.submit_modal("U0AGENT1", text="Restarted the transport service; mail flows again.")
    desk.wait_until(lambda: desk.fresh(case).status == "resolved", "resolved")
    dm = desk.standin.dm_channel("U0ALICE")
    desk.standin.wait_for(
        "chat.postMessage",
        lambda c: c.args["channel"] == dm and "Restarted the transport" in _text(c.args),
    )
    # the desk itself never calls it a breach: the worker sends no breach notice
    desk.run_worker(OPEN_HOURS + timedelta(hours=2), step=timedelta(minutes=10))
    assert not [m for m in desk.outbox() if m.kind == "sla.breach"]
    # ... but the lead's report does
    body = _text(desk.ask("U0LEAD", "report 1"))
    assert "*All cases*: 1 case" in body
    assert "breaches 0" in body and "1 unanswered past due" not in body, body


# --- the SC-16 downgrade answer on an answered case ------------------------------------


def test_downgrade_of_an_answered_case_does_not_announce_a_past_due(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    case = _sev_a(desk)
    desk.press("U0AGENT1", case, "claim_case")
    desk.standin.wait_for("chat.update")
    # the owner answers in 10 minutes (SC-17 met); the customer then goes quiet
    desk.clock.set(WED_0840 + timedelta(minutes=10))
    desk.press("U0AGENT1", case, "case_reply")
    desk.submit_modal("U0AGENT1", text="Looking at it now: can you send the NDR?")
    desk.wait_until(lambda: desk.fresh(case).first_responded_at is not None, "answered")
    desk.run_worker(WED_0840 + timedelta(hours=2), step=timedelta(minutes=5))
    channel = desk.standin.dm_channel("U0AGENT1")
    offer = desk.standin.wait_for(
        "chat.postMessage",
        lambda c: c.args["channel"] == channel and "downgrade_case" in _text(c.args),
    )[0]
    message = desk.standin.message(channel, offer.response["ts"])
    desk.slack.click_in("U0AGENT1", message, "downgrade_case", channel_id=channel)
    answer = _text(desk.standin.wait_for("response_url")[-1].args)
    assert desk.fresh(case).severity == "B"
    # the case was answered at 08:50: nothing is "now due"; the answer named 09:40, the
    # Sev A due that had passed an hour before and no longer applies to anything
    assert "now due" not in answer, answer


# --- the audit trail of a Claim names the status it found ------------------------------


def test_claiming_a_reopened_unowned_case_records_its_real_status(desk: Desk) -> None:
    case = desk.open_case("U0ALICE", title="Duplicate of another case?")
    # an agent resolves it unclaimed (a duplicate), the requester's reopening brings it back
    desk.press("U0AGENT1", case, "case_resolve")
    desk.submit_modal("U0AGENT1", text="Looks like a duplicate of CS-00000.")
    desk.wait_until(lambda: desk.fresh(case).status == "resolved", "resolved")
    desk.card_offers(case, "case_reopen")
    desk.press("U0AGENT1", case, "case_reopen")
    desk.wait_until(lambda: desk.fresh(case).status == "in_progress", "reopened")
    desk.settle()
    desk.card_offers(case, "claim_case")
    desk.press("U0AGENT2", case, "claim_case")
    desk.wait_until(lambda: desk.fresh(case).assignee_id is not None, "claimed")
    [claimed] = desk.events("claimed")
    # the timeline (`/support case`) shows "claimed new → claimed" for a case that was in
    # progress, and the case's status goes back from in progress to claimed
    assert claimed.from_value == "in_progress", (claimed.from_value, claimed.to_value)


# --- paging and the downgrade offer ------------------------------------------------


def _sev_a(desk: Desk):  # type: ignore[no-untyped-def]
    return desk.open_case(
        "U0ALICE", severity="A", business_impact="mail down", available_contact="Alice"
    )


def test_replying_to_an_unclaimed_sev_a_case_stops_its_paging(desk: Desk) -> None:
    # README: "replying to an unclaimed case claims it" and "claiming a Sev A case
    # acknowledges its page". Dana answers the customer straight from the card: she owns the
    # case and has given the first response, so nobody else should be paged for it.
    desk.clock.set(WED_0840)
    case = _sev_a(desk)
    desk.press("U0AGENT1", case, "case_reply")
    desk.submit_modal("U0AGENT1", text="We are on it; mail flow is being restored.")
    desk.settle()
    [stored] = desk.cases()
    assert stored.assignee_id is not None and stored.first_responded_at is not None
    desk.run_worker(WED_0840 + timedelta(minutes=30))
    steps = sorted({m.payload["step"] for m in _rows(desk, "page.notify")})
    with Session(desk.engine) as session:
        [page] = session.exec(select(Page)).all()
    assert steps == [0], f"paging went on after the owner replied: steps {steps}"
    assert page.acknowledged_by == "U0AGENT1"


def test_a_stale_downgrade_offer_does_not_raise_a_sev_c_case_to_b(desk: Desk) -> None:
    # SC-16: the offer lowers a *Sev A* case to B. Once the owner has set the case to C
    # themselves, the old offer's button must not move it back up to B (with a reason saying
    # "Sev A lowered to B").
    desk.clock.set(WED_0840)
    case = _sev_a(desk)
    channel, message = downgrade_offer(desk, case)
    desk.press("U0AGENT1", case, "case_severity")
    desk.submit_modal("U0AGENT1", text="a how-to question after all", severity="C")
    desk.settle()
    assert desk.cases()[0].severity == "C"
    desk.slack.click_in(
        "U0AGENT1", message, "downgrade_case", channel_id=channel, is_ephemeral=False
    )
    desk.settle()
    [stored] = desk.cases()
    changes = [(e.from_value, e.to_value) for e in desk.events("severity_changed")]
    assert stored.severity == "C", f"the stale offer changed the case: {changes}"
