"""The hostile-input suite: a permission matrix over roles × commands and buttons, fuzzed
commands and payloads, and mrkdwn injection in everything a person can type."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.worker import tick
from tests.conftest import TRIAGE, Desk

HOSTILE = "<!channel> <!here> <!everyone> <@UHOSTILE> <http://evil.example|click> & *b*"
RAW = ("<!channel>", "<!here>", "<!everyone>", "<@UHOSTILE>", "<http://evil.example|click>")

# who may press which card button: agents (and leads) work cases; nobody else does
CARD_ACTIONS = [
    "claim_case",
    "case_reply",
    "case_note",
    "case_await",
    "case_resolve",
    "case_severity",
    "verify_caller",
]
ROLES = {
    "U0ALICE": "global admin (requester)",
    "U0BILL": "billing admin, same org",
    "U0CARL": "non-admin, same org",
    "U0FRANK": "admin of another org",
    "U0STRANGER": "not in the directory",
    "U0AGENT1": "agent",
    "U0LEAD": "lead",
}
STAFF = {"U0AGENT1", "U0LEAD"}


_DATA_FIELDS = re.compile(r'"(value|initial_value|private_metadata)": "(?:[^"\\]|\\.)*"')


def _all_output(desk: Desk, acks: list[str]) -> str:
    """Everything the bot made visible (Web API calls, response_url posts, acks), without
    the data fields Slack never renders as text (button values, input values, metadata)."""
    text = json.dumps([c.args for c in desk.standin.calls()]) + "".join(acks)
    return _DATA_FIELDS.sub("", text)


@pytest.mark.parametrize("user", sorted(ROLES))
@pytest.mark.parametrize("action", CARD_ACTIONS)
def test_card_buttons_by_role(desk: Desk, user: str, action: str) -> None:
    case = desk.open_case("U0ALICE")
    card = desk.card(case)
    before_events = len(desk.events())
    response = desk.slack.click_in(user, card, action, channel_id=TRIAGE, is_ephemeral=False)
    assert response.status == 200
    if user in STAFF:
        if action == "claim_case":
            desk.standin.wait_for("chat.update", timeout=5)  # the card follows
            assert len(desk.events()) > before_events
        elif action == "case_await":  # allowed, but only after a first response (SC-17)
            refusal = desk.standin.wait_for("response_url", timeout=5)[0]
            assert "Reply to the requester first" in json.dumps(refusal.args)
            assert len(desk.events()) == before_events
        elif action != "verify_caller":
            desk.standin.wait_for("views.open", count=2)  # intake + the action's modal
        return
    # everyone else: a clear refusal (ephemeral), nothing changed, no modal
    refusal = desk.standin.wait_for(
        "chat.postEphemeral" if action == "claim_case" else "response_url", timeout=5
    )[0]
    assert "Only support agents" in json.dumps(refusal.args)
    assert len(desk.events()) == before_events
    [stored] = desk.cases()
    assert stored.status == "new" and stored.assignee_id is None
    assert [c.args["view"]["callback_id"] for c in desk.standin.calls("views.open")] == ["intake"]


COMMANDS: dict[str, set[str] | None] = {
    # subcommand -> who gets a real answer (None: everyone)
    "help": None,
    "hours": None,
    "oncall": None,
    "list": {"U0ALICE", "U0BILL", "U0FRANK", "U0AGENT1", "U0LEAD"},
    "report": {"U0AGENT1", "U0LEAD"},
    "case CS-00001": {"U0ALICE", "U0BILL", "U0AGENT1", "U0LEAD"},
}


@pytest.mark.parametrize("user", sorted(ROLES))
def test_commands_by_role(desk: Desk, user: str) -> None:
    desk.open_case("U0ALICE")
    cases_before = len(desk.cases())
    for text, allowed in COMMANDS.items():
        response = desk.slack.command(user, text)
        assert response.status == 200, (text, response.body)
        body = json.dumps(response.json())
        if allowed is None or user in allowed:
            assert "can see" not in body or text.startswith("case") is False, (text, body)
            if text.startswith("case"):
                assert "Timeline" in body, (user, body)
        elif text.startswith("case"):
            assert "No case CS-00001 that you can see" in body
        else:
            assert any(
                phrase in body
                for phrase in ("Only", "only", "not registered", "admins", "staff", "support")
            ), (user, text, body)
    # an override is a lead's alone
    body = json.dumps(
        desk.slack.command(
            user, "oncall override primary <@U0AGENT1> 2026-11-25T12:00 2026-11-25T13:00"
        ).json()
    )
    assert ("is on call for" in body) == (user == "U0LEAD"), body
    assert len(desk.cases()) == cases_before


def test_forged_view_submissions_for_another_case(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    view = {
        "id": "VFORGED",
        "type": "modal",
        "callback_id": "case_resolve_view",
        "private_metadata": json.dumps({"case_id": case.id}),
        "blocks": [],
        "state": {"values": {"text": {"text": {"type": "plain_text_input", "value": "done"}}}},
    }
    for user in ("U0FRANK", "U0ALICE", "U0CARL", "U0STRANGER"):
        reply = desk.slack.raw_view_submission(user, view).json()
        assert reply["response_action"] == "errors"
        assert "Only support agents" in json.dumps(reply)
    [stored] = desk.cases()
    assert stored.status == "new"


def test_forged_form_metadata_nested_too_deep_is_answered_like_any_forged_form(
    desk: Desk,
) -> None:
    """`private_metadata` is JSON the desk wrote; one nested deeper than json.loads goes
    is read as none (the form is refused as for a case that does not exist), not a 500."""
    case = desk.open_case("U0ALICE")
    for callback in (
        "case_note_view",
        "case_severity_view",
        "verify_caller",
        "verify_caller_code",
        "intake",
        "health_update",
    ):
        view = {
            "id": "VFORGED",
            "type": "modal",
            "callback_id": callback,
            "private_metadata": "[" * 100_000,
            "blocks": [],
            "state": {"values": {"text": {"text": {"type": "plain_text_input", "value": "hi"}}}},
        }
        response = desk.slack.raw_view_submission("U0AGENT1", view)
        assert response.status == 200, (callback, response.body)
    desk.settle()
    [stored] = desk.cases()
    assert stored.id == case.id and desk.events("note") == []


def test_mrkdwn_injection_everywhere(desk: Desk) -> None:
    """Every field a person types, echoed anywhere, arrives escaped."""
    acks: list[str] = []
    desk.clock.set(datetime(2026, 11, 25, 0, 40, tzinfo=UTC))
    acks.append(desk.slack.command("U0ALICE", f"question {HOSTILE}").body)
    case = desk.open_case(
        "U0ALICE",
        severity="A",
        title=HOSTILE[:150],
        description=HOSTILE,
        business_impact=HOSTILE,
        available_contact=HOSTILE[:200],
    )
    card = desk.card(case)
    desk.slack.click_in("U0AGENT1", card, "case_reply", channel_id=TRIAGE, is_ephemeral=False)
    desk.standin.wait_for("views.open", count=2)
    acks.append(desk.slack.submit_view("U0AGENT1", {"text": HOSTILE}).body)
    desk.slack.click_in("U0AGENT1", card, "case_note", channel_id=TRIAGE, is_ephemeral=False)
    desk.standin.wait_for("views.open", count=3)
    acks.append(desk.slack.submit_view("U0AGENT1", {"text": HOSTILE}).body)
    thread_ts = desk.wait_until(
        lambda: desk.cases()[0].requester_thread_ts, "the requester's DM thread opened"
    )
    desk.slack.message("U0ALICE", desk.standin.dm_channel("U0ALICE"), HOSTILE, thread_ts=thread_ts)
    # the event is acked before it is handled: its relay, escaped, before the case is resolved
    desk.standin.wait_for(
        "chat.postMessage",
        lambda c: c.args["channel"] == TRIAGE and "(requester) wrote" in json.dumps(c.args),
    )
    desk.slack.click_in("U0AGENT1", card, "case_resolve", channel_id=TRIAGE, is_ephemeral=False)
    desk.standin.wait_for("views.open", count=4)
    acks.append(desk.slack.submit_view("U0AGENT1", {"text": HOSTILE}).body)
    for text in ("list", "case CS-00001", "report 7"):
        acks.append(desk.slack.command("U0LEAD", text).body)
    acks.append(desk.slack.command("U0ALICE", "list").body)
    desk.slack.app_home_opened("U0AGENT1")
    desk.slack.app_home_opened("U0ALICE")
    desk.standin.wait_for("views.publish", count=2)
    report, _sent = tick(desk.service.desk, datetime(2026, 11, 25, 1, 1, tzinfo=UTC))
    assert report.handoffs == 1
    desk.standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "C0HANDOFF")
    desk.settle()  # everything the clicks and submissions sent after their acks is in
    output = _all_output(desk, acks)
    assert "&lt;!channel&gt;" in output
    for raw in RAW:
        where = output.find(raw)
        assert where < 0, (raw, output[max(0, where - 400) : where + 100])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=600))
def test_fuzzed_command_text(desk: Desk, text: str) -> None:
    cases_before = len(desk.cases())
    response = desk.slack.command("U0ALICE", text)
    assert response.status == 200
    assert not response.problems, response.problems  # e.g. an answer Slack would not show
    reply = response.json()
    if reply is not None and "blocks" in reply:
        assert len(reply["blocks"]) <= 50
        for block in reply["blocks"]:
            section = (block.get("text") or {}).get("text", "")
            assert len(section) <= 3000
    assert len(desk.cases()) == cases_before


payload_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(
        [
            "block_actions",
            "view_submission",
            "view_closed",
            "shortcut",
            "message_action",
            "nonsense",
        ]
    ),
    junk=st.dictionaries(
        st.sampled_from(
            [
                "actions",
                "view",
                "user",
                "container",
                "channel",
                "message",
                "trigger_id",
                "response_url",
                "state",
            ]
        ),
        payload_values,
        max_size=6,
    ),
)
def test_fuzzed_interactivity_payloads(desk: Desk, kind: str, junk: dict[str, Any]) -> None:
    events_before = len(desk.events())
    payload = {"type": kind, "team": {"id": "T0001"}, **junk}
    if not isinstance(payload.get("user"), dict):
        payload["user"] = {"id": "U0ALICE"}
    response = desk.slack.post_payload(payload)
    assert response.status < 500, response.body
    assert len(desk.events()) == events_before
    assert desk.cases() == []


def test_handoff_and_warnings_escape_titles(desk: Desk) -> None:
    desk.clock.set(datetime(2026, 11, 25, 0, 30, tzinfo=UTC))
    desk.open_case("U0ALICE", severity="C", title=HOSTILE[:150])
    tick(desk.service.desk, datetime(2026, 11, 25, 0, 30, tzinfo=UTC) + timedelta(minutes=31))
    desk.settle()  # the submission's own delivery (card, DM) is in the output too
    output = _all_output(desk, [])
    for raw in RAW:
        assert raw not in output
