"""SC-17: a case's first response is its initial response: *Awaiting customer* before any
reply would stop that clock and tell the requester support waits for an answer to a question
nobody asked, so it is refused until the requester has been answered. SC-7, SC-18: every
case needs accurate contact details: the intake form asks the admin to confirm both the
phone number and the email, whichever contact method they prefer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Desk

WED_10 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # Wed 10:00 Beijing
THU_10 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # Sev B technical: 1 business day later
WAITING = "waiting for your answer"


def _waiting_notices(desk: Desk) -> list[Any]:
    channel = desk.standin.dm_channel("U0ALICE")
    return [
        c
        for c in desk.standin.calls("chat.postMessage")
        if c.args["channel"] == channel and WAITING in json.dumps(c.args)
    ]


def _reply(desk: Desk, case: Any, text: str) -> None:
    desk.press("U0AGENT1", case, "case_reply")
    desk.standin.wait_for("views.open", lambda c: c.args["view"]["callback_id"] != "intake")
    assert desk.slack.submit_view("U0AGENT1", {"text": text}).status == 200
    desk.settle()


def test_awaiting_customer_needs_a_first_response(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")  # Sev B technical
    assert case.first_response_due == THU_10
    desk.settle()
    before = len(desk.events())
    desk.press("U0AGENT1", case, "case_await")
    [refusal] = desk.standin.wait_for("response_url", timeout=5)
    said = json.dumps(refusal.args)
    assert "Reply to the requester first" in said and "SC-17" in said, said
    assert "Nothing was changed" in said
    desk.settle()
    [stored] = desk.cases()
    assert (stored.status, stored.first_response_due, stored.sla_paused) == ("new", THU_10, False)
    assert stored.first_responded_at is None
    assert len(desk.events()) == before  # no status change, no pause
    assert _waiting_notices(desk) == []  # the requester was told nothing

    # after a reply (the first response), Awaiting customer works as before
    _reply(desk, case, "Could you send the message headers?")
    desk.press("U0AGENT1", case, "case_await")
    desk.standin.wait_for("chat.postMessage", lambda c: WAITING in json.dumps(c.args))
    [stored] = desk.cases()
    assert stored.status == "awaiting_customer" and stored.sla_paused
    assert stored.first_responded_at == WED_10
    assert len(_waiting_notices(desk)) == 1
    assert [e.kind for e in desk.events() if e.kind.startswith("clock_")] == ["clock_paused"]


def test_unanswered_case_is_in_breach_at_its_due_despite_awaiting_customer(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")  # Sev B technical: due Thu 10:00 Beijing
    desk.press("U0AGENT1", case, "case_await")  # no response was given yet
    desk.settle()
    desk.run_worker(THU_10 + timedelta(hours=1), step=timedelta(minutes=15))
    [stored] = desk.cases()
    breaches = [m for m in desk.outbox() if m.kind == "sla.breach"]
    assert len(breaches) == 1, (stored.status, stored.first_response_due, stored.sla_paused)
    assert breaches[0].created_at == THU_10 and stored.sla_breach_sent_at == THU_10
    assert stored.first_responded_at is None and not stored.sla_paused
    assert stored.first_response_due == THU_10


def test_intake_modal_asks_to_confirm_phone_and_email(desk: Desk) -> None:
    view = desk.open_intake("U0ALICE")
    inputs = {b["block_id"]: b for b in view["blocks"] if b.get("type") == "input"}
    for block_id in ("phone", "email"):
        assert not inputs[block_id].get("optional"), inputs[block_id]
    assert inputs["phone"]["element"]["initial_value"] == "+86 10 5555 0101"
    assert inputs["email"]["element"]["initial_value"] == "alice@contoso.example"


def _refused(desk: Desk, field: str, **values: Any) -> str:
    response = desk.submit("U0ALICE", **values)
    assert response.status == 200
    body = response.json() or {}
    assert body.get("response_action") == "errors", body
    assert desk.cases() == []
    return str(body["errors"].get(field))


@pytest.mark.parametrize(
    ("field", "contact_method", "says", "confirmed"),
    [
        ("phone", "chat", "Confirm a phone number", "+86 10 5555 0101"),
        ("email", "phone", "Confirm an email address", "alice@contoso.example"),
    ],
)
def test_a_case_without_a_phone_or_an_email_is_refused(
    desk: Desk, field: str, contact_method: str, says: str, confirmed: str
) -> None:
    desk.open_intake("U0ALICE")
    error = _refused(desk, field, contact_method=contact_method, **{field: ""})
    assert says in error and "SC-18" in error, error
    # confirming it opens the case (the modal stayed open with the error)
    response = desk.submit("U0ALICE", contact_method=contact_method, **{field: confirmed})
    assert response.status == 200 and "errors" not in (response.body or ""), response.body
    [case] = desk.cases()
    assert (case.contact_phone, case.contact_email) == ("+86 10 5555 0101", "alice@contoso.example")


def test_sev_a_without_any_contact_details_is_refused(desk: Desk) -> None:
    desk.open_intake("U0ALICE")
    desk.choose("U0ALICE", "intake_severity", "A")
    response = desk.submit(
        "U0ALICE",
        severity="A",
        business_impact="Mail send/receive failing for all 400 staff",
        available_contact="Alice Chen",
        contact_method="chat",
        phone="",
        email="",
    )
    assert response.status == 200
    body = response.json() or {}
    assert set(body.get("errors", {})) >= {"phone", "email"}, body
    assert desk.cases() == []
