"""The intake modal and case creation through the front door (SC-2, SC-7, SC-15, SC-18)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from chatops.directory import find_person
from tests.conftest import Desk


def _input_ids(view: dict) -> list[str]:
    return [b["block_id"] for b in view["blocks"] if b["type"] == "input"]


def _block(view: dict, block_id: str) -> dict:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def _options(view: dict, block_id: str) -> list[str]:
    element = _block(view, block_id)["element"]
    if "option_groups" in element:
        return [o["value"] for g in element["option_groups"] for o in g["options"]]
    return [o["value"] for o in element["options"]]


def test_modal_has_the_intake_fields_prefilled(desk: Desk) -> None:
    view = desk.open_intake("U0ALICE")
    assert view["title"]["text"] == "Contact support"
    assert _input_ids(view) == [
        "category",
        "topic",
        "severity",
        "title",
        "description",
        "contact_method",
        "phone",
        "email",
    ]
    assert _options(view, "category") == ["technical", "billing", "presales"]
    assert _options(view, "severity") == ["A", "B", "C"]  # Contoso has the agreement
    assert _options(view, "contact_method") == ["chat", "email", "phone"]
    # SC-7: phone and email from the directory, to confirm or correct
    assert _block(view, "phone")["element"]["initial_value"] == "+86 10 5555 0101"
    assert _block(view, "email")["element"]["initial_value"] == "alice@contoso.example"
    # SC-12..SC-14 one-line definitions on the severity choices
    descriptions = [
        o["description"]["text"] for o in _block(view, "severity")["element"]["options"]
    ]
    assert descriptions[0].startswith("Service down or unusable")
    # SC-7: the expected wait is on the form
    wait = json.dumps(_block(view, "expected_wait"))
    assert "Expected wait" in wait and "First response by" in wait


def test_choosing_sev_a_asks_for_impact_and_available_person(desk: Desk) -> None:
    desk.open_intake("U0ALICE")
    view = desk.choose("U0ALICE", "intake_severity", "A")
    assert "business_impact" in _input_ids(view)
    assert "available_contact" in _input_ids(view)
    view = desk.choose("U0ALICE", "intake_severity", "C")
    assert "business_impact" not in _input_ids(view)


def test_billing_offers_no_sev_a(desk: Desk) -> None:
    # SC-15: billing & subscriptions is capped at Sev B
    desk.open_intake("U0ALICE")
    view = desk.choose("U0ALICE", "intake_category", "billing")
    assert _options(view, "severity") == ["B", "C"]
    assert "trial_or_buy" in _options(view, "topic")


def test_no_agreement_no_sev_a(desk: Desk) -> None:
    # SC-15: Sev A needs an online-services agreement
    view = desk.open_intake("U0FRANK")
    assert _options(view, "severity") == ["B", "C"]


def test_helpdesk_admin_cannot_open_billing(desk: Desk) -> None:
    # SC-2 Reading: billing needs a global or billing admin
    view = desk.open_intake("U0HELEN")
    assert _options(view, "category") == ["technical", "presales"]


def test_submission_creates_case_card_and_confirmation(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    assert case.number == "CS-00001"
    assert case.status == "new" and case.assignee_id is None
    assert case.contact_phone == "+86 10 5555 0101"
    # Sev B technical: one support day (15 h) on 09:00-24:00 Beijing: Wed 10:00 -> Thu 10:00
    assert case.first_response_due == datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    card = desk.card(case)
    card_text = json.dumps(card["blocks"])
    for expected in (
        "CS-00001",
        "Contoso Trading Co.",
        "Alice Chen",
        "Technical",
        "Mail",
        "Sev B (high)",
        "Forwarding to shared mailbox stopped",
        "First response due",
        "Unclaimed",
    ):
        assert expected in card_text, expected
    assert "claim_case" in card_text
    dm = desk.standin.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == desk.standin.dm_channel("U0ALICE")
    )[0]
    dm_text = json.dumps(dm.args.get("blocks"))
    assert "CS-00001" in dm_text and "Sev B (high)" in dm_text
    assert "Thu 26 Nov, 10:00 Beijing time" in dm_text
    assert "1 business day" in dm_text
    assert [e.kind for e in desk.events()] == ["opened"]


def test_sev_a_case_records_impact_and_contact(desk: Desk) -> None:
    case = desk.open_case(
        "U0ALICE",
        severity="A",
        business_impact="No one in the company can send mail.",
        available_contact="Alice Chen, +86 10 5555 0101",
    )
    assert case.severity == "A"
    assert case.business_impact == "No one in the company can send mail."
    # SC-17: Sev A within 1 hour, 24x7
    assert case.first_response_due == datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    assert "No one in the company can send mail." in json.dumps(desk.card(case)["blocks"])


def test_missing_fields_come_back_as_inline_errors(desk: Desk) -> None:
    desk.open_intake("U0ALICE")
    response = desk.submit("U0ALICE", title=None, description=None, topic=None)
    reply = response.json()
    assert reply["response_action"] == "errors"
    assert set(reply["errors"]) == {"title", "description", "topic"}
    assert desk.cases() == []
    assert desk.standin.open_view("U0ALICE") is not None  # the modal stays open


def test_sev_a_without_impact_statement_is_refused(desk: Desk) -> None:
    # SC-18
    desk.open_intake("U0ALICE")
    desk.choose("U0ALICE", "intake_severity", "A")
    reply = desk.submit("U0ALICE", severity="A", available_contact="").json()
    assert reply["response_action"] == "errors"
    assert "business_impact" in reply["errors"] and "available_contact" in reply["errors"]
    assert desk.cases() == []


def test_forged_sev_a_for_billing_is_refused(desk: Desk) -> None:
    # SC-15, enforced on the server whatever the modal offered
    desk.open_intake("U0ALICE")
    desk.choose("U0ALICE", "intake_category", "billing")
    reply = desk.submit(
        "U0ALICE", category="billing", topic="invoice", severity="A", force=True
    ).json()
    assert "highest is Sev B" in reply["errors"]["severity"]
    assert desk.cases() == []


def test_forged_sev_a_without_agreement_is_refused(desk: Desk) -> None:
    desk.open_intake("U0FRANK")
    reply = desk.submit("U0FRANK", severity="A", force=True).json()
    assert "online-services agreement" in reply["errors"]["severity"]
    assert desk.cases() == []


def test_forged_billing_case_from_helpdesk_admin_is_refused(desk: Desk) -> None:
    desk.open_intake("U0HELEN")
    reply = desk.submit("U0HELEN", category="billing", topic="invoice", force=True).json()
    assert "can't open Billing & subscriptions cases" in reply["errors"]["category"]
    assert desk.cases() == []


def test_view_submission_from_non_admin_is_refused(desk: Desk) -> None:
    # A modal can be forged: Carl is not an admin and never got one.
    desk.open_intake("U0ALICE")
    view = desk.standin.open_view("U0ALICE")
    response = desk.slack.raw_view_submission("U0CARL", view)
    reply = response.json()
    assert reply["response_action"] == "errors"
    assert "Only your organisation's admins" in json.dumps(reply["errors"])
    assert desk.cases() == []


def test_invalid_contact_details(desk: Desk) -> None:
    desk.open_intake("U0ALICE")
    reply = desk.submit(
        "U0ALICE", contact_method="phone", phone="call me maybe", email="not-an-email"
    ).json()
    assert set(reply["errors"]) >= {"phone", "email"}
    assert desk.cases() == []


@pytest.mark.parametrize("phone", ["(010) 5555 0101", "+86 (10) 5555 0101", "+(86) 10 5555 0101"])
def test_a_phone_number_with_its_area_code_in_brackets_is_taken(desk: Desk, phone: str) -> None:
    # SC-7, SC-18: the admin confirms or corrects their number, and the error message says
    # brackets are fine; "(010) 5555 0101" is the usual way to write an area code.
    desk.open_intake("U0ALICE")
    response = desk.submit("U0ALICE", phone=phone, email="alice@contoso.example")
    assert response.status == 200
    assert "errors" not in (response.body or ""), response.body
    [case] = desk.cases()
    assert case.contact_phone == phone


@pytest.mark.parametrize("phone", ["(", "()", "((((((((", "(abc) 5555 0101", "+-------"])
def test_brackets_alone_are_not_a_phone_number(desk: Desk, phone: str) -> None:
    desk.open_intake("U0ALICE")
    reply = desk.submit("U0ALICE", phone=phone, email="alice@contoso.example").json()
    assert "phone" in reply["errors"]
    assert desk.cases() == []


def test_user_text_is_escaped_in_every_message(desk: Desk) -> None:
    hostile = "<!channel> <@U0LEAD> <http://x|y> & co"
    desk.open_case("U0ALICE", title=hostile, description=hostile)
    desk.standin.wait_for("chat.postMessage", count=2)
    for call in desk.standin.calls("chat.postMessage"):
        posted = json.dumps(call.args.get("blocks")) + str(call.args.get("text"))
        assert "<!channel>" not in posted
        assert "<http://x|y>" not in posted
        assert "<@U0LEAD>" not in posted
        assert "&lt;!channel&gt;" in posted


def test_out_of_scope_topic_gets_the_owner_not_a_case(desk: Desk) -> None:
    # SC-11: third-party add-ins and the customer's own network are answered, not worked
    view = desk.open_intake("U0ALICE")
    assert "oos:customer_network" in _options(view, "topic")
    response = desk.submit("U0ALICE", topic="oos:customer_network")
    reply = response.json()
    assert reply["response_action"] == "update"
    shown = json.dumps(reply["view"])
    assert "your organisation's network team" in shown
    assert "No case was opened" in shown
    assert desk.cases() == []
    assert desk.outbox() == []


def test_expected_wait_when_billing_is_closed(desk: Desk) -> None:
    # SC-7 + SC-20: Saturday 11:00 Beijing, billing closed until Monday 09:00;
    # one billing support day (8 h) -> Monday 17:00
    desk.clock.set(datetime(2026, 11, 28, 3, 0, tzinfo=UTC))
    desk.open_intake("U0BILL")
    view = desk.choose("U0BILL", "intake_category", "billing")
    wait = json.dumps(_block(view, "expected_wait"))
    # Bill's roster time zone is the support one: times are spelled out once
    assert "support is closed now; it opens Mon 30 Nov, 09:00 Beijing time." in wait
    assert "First response by Mon 30 Nov, 17:00 Beijing time." in wait
    # technical B/C is open on Saturdays (SC-19)
    view = desk.choose("U0BILL", "intake_category", "technical")
    assert "closed" not in json.dumps(_block(view, "expected_wait"))


def test_billing_case_opened_on_a_holiday_starts_the_next_working_day(desk: Desk) -> None:
    # SC-20 Reading: public holidays (CN National Day, 1-7 Oct 2026) are closed days
    desk.clock.set(datetime(2026, 10, 2, 2, 0, tzinfo=UTC))  # Fri 2 Oct, 10:00 Beijing
    desk.open_intake("U0BILL")
    desk.choose("U0BILL", "intake_category", "billing")
    desk.submit("U0BILL", category="billing", topic="invoice")
    [case] = desk.cases()
    # the days off run to Wed 7 Oct; Thu 8 Oct 09:00-17:00 is the first support day
    assert case.first_response_due == datetime(2026, 10, 8, 9, 0, tzinfo=UTC)


def test_times_in_the_requesters_own_time_zone_once_known(desk: Desk) -> None:
    # Frank's Slack profile says Europe/London: learnt when his first modal opens
    desk.open_intake("U0FRANK")
    desk.standin.wait_for("users.info")

    def learnt() -> bool:  # written after the modal opened, long after the click's ack
        with Session(desk.engine) as session:
            frank = find_person(session, "U0FRANK")
            return frank is not None and frank.tz == "Europe/London"

    desk.wait_until(learnt, "Frank's time zone learnt")
    desk.slack.close_view("U0FRANK")
    view = desk.open_intake("U0FRANK")
    wait = json.dumps(_block(view, "expected_wait"))
    # Sev B technical opened Wed 10:00 Beijing is due Thu 10:00 Beijing = 02:00 in London
    assert "Thu 26 Nov, 02:00 GMT your time (Thu 26 Nov, 10:00 Beijing time)" in wait
    desk.submit("U0FRANK")
    dm = desk.standin.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == desk.standin.dm_channel("U0FRANK")
    )[0]
    assert "02:00 GMT your time" in json.dumps(dm.args["blocks"])


def test_a_title_of_ampersands_is_escaped_within_limits(desk: Desk) -> None:
    # every & becomes &amp;: the card must still fit and be delivered
    case = desk.open_case("U0ALICE", title="&" * 150, description="<" * 3000)
    card = desk.card(case)
    assert "&amp;" in json.dumps(card["blocks"])


def test_a_submission_keeps_every_character_it_was_typed_with(desk: Desk) -> None:
    # The submission arrives as percent-encoded JSON; "+", "%", "=" and non-ASCII letters
    # each take their own way through its decoding (handlers/app.py decode_form_value).
    title = "Coût 100% = 2+2 — 東京 ✓ a%2Bb"
    description = "Line one\nline two\twith a tab = + % é"
    case = desk.open_case("U0ALICE", title=title, description=description)
    assert (case.title, case.description) == (title, description)
    card = desk.card(case)
    assert title in json.dumps(card["blocks"], ensure_ascii=False)
