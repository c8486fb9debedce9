"""Hostile shapes and characters at the front door: what Slack never sends but a forged or
garbled request can — odd types anywhere in a payload or its envelope, ids no database
holds, digits of other scripts, NUL and lone surrogates — gets a clear answer or a 400,
never a 500, and changes nothing it should not. Also: the survey's comment button shows a
case to its requester only, and a resolved case's severity cannot be changed (a raise to
Sev A would page the on-call engineer)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sqlmodel import Session, select

from models import CaseMessage
from tests.conftest import TRIAGE, Desk

HUGE = "99999999999999999999"  # a whole number no database row id can be (SQLite: 2**63 - 1)


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def _click(desk: Desk, user: str, action_id: str, value: str, **extra: Any) -> Any:
    """A click on a button carrying `value`, in a message of the triage channel."""
    message = {
        "ts": "1.0",
        "blocks": [
            {
                "type": "actions",
                "block_id": "forged",
                "elements": [
                    {
                        "type": "button",
                        "action_id": action_id,
                        "value": value,
                        "text": {"type": "plain_text", "text": "Press"},
                    }
                ],
            }
        ],
    }
    if not extra:
        return desk.slack.click_in(user, message, action_id, channel_id=TRIAGE, is_ephemeral=True)
    capture: dict[str, Any] = {}
    original = desk.slack.post_payload

    def doctored(payload: dict[str, Any]) -> Any:
        capture["payload"] = payload
        return original({**payload, **extra})

    desk.slack.post_payload = doctored  # type: ignore[method-assign]
    try:
        return desk.slack.click_in(user, message, action_id, channel_id=TRIAGE, is_ephemeral=True)
    finally:
        desk.slack.post_payload = original  # type: ignore[method-assign]


def _modal(callback_id: str, metadata: Any, values: Any) -> dict[str, Any]:
    return {
        "id": "VFORGED",
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": metadata,
        "blocks": [],
        "state": {"values": values},
    }


# --- ids and numbers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "text", "answer"),
    [
        ("U0ALICE", "case CS-²", "Which case"),  # "²".isdigit() is True; int("²") raises
        ("U0ALICE", "case ①", "Which case"),
        ("U0AGENT1", "case ١٢", "Which case"),  # int() reads Arabic-Indic digits as 12
        ("U0ALICE", f"case CS-{HUGE}", "Which case"),  # beyond any row id
        ("U0AGENT1", "report ²", "/support report"),
    ],
)
def test_numbers_no_row_can_have_get_a_clear_answer(
    desk: Desk, caplog: pytest.LogCaptureFixture, user: str, text: str, answer: str
) -> None:
    desk.open_case("U0ALICE")
    response = desk.slack.command(user, text)
    assert response.status == 200, response.body
    assert answer in response.body, response.body
    assert not _errors(caplog)


@pytest.mark.parametrize("action_id", ["claim_case", "case_reply", "survey_comment"])
def test_buttons_carrying_ids_no_row_can_have_are_answered(
    desk: Desk, caplog: pytest.LogCaptureFixture, action_id: str
) -> None:
    case = desk.open_case("U0ALICE")
    desk.card(case)
    user = "U0ALICE" if action_id == "survey_comment" else "U0AGENT1"
    for value in (HUGE, "١", "-1", "0"):
        assert _click(desk, user, action_id, value).status == 200
    answer = "chat.postEphemeral" if action_id == "claim_case" else "response_url"
    answers = desk.standin.wait_for(answer, count=4, timeout=5)
    assert all("does not exist" in json.dumps(a.args) for a in answers)
    assert not _errors(caplog)
    [stored] = desk.cases()
    assert stored.assignee_id is None


def test_a_form_for_an_id_no_row_can_have_is_answered(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    values = {"text": {"text": {"type": "plain_text_input", "value": "hello"}}}
    view = _modal("case_reply_view", json.dumps({"case_id": int(HUGE)}), values)
    reply = desk.slack.raw_view_submission("U0AGENT1", view)
    assert reply.status == 200
    assert "does not exist" in reply.body
    assert not _errors(caplog)


# --- shapes Slack never sends -------------------------------------------------------------


def _intake_submission(desk: Desk) -> dict[str, Any]:
    return desk.open_intake("U0ALICE")


MODAL_SHAPES = {
    "metadata a number": lambda view: view.update(private_metadata=5),
    "state values a list": lambda view: view["state"].update(values=["x"]),
    "state a string": lambda view: view.update(state="x"),
    "a block that is not a dict": lambda view: view["blocks"].append("junk"),
    "blocks a dict": lambda view: view.update(blocks={"type": "input"}),
    "an input's state a list": lambda view: view["state"]["values"].update(title=[1]),
    "a typed value a number": lambda view: view["state"]["values"].update(
        title={"title": {"type": "plain_text_input", "value": 5}}
    ),
    "a chosen option a string": lambda view: view["state"]["values"].update(
        category={"category": {"type": "static_select", "selected_option": "technical"}}
    ),
}


@pytest.mark.parametrize("shape", sorted(MODAL_SHAPES))
def test_modal_submissions_of_shapes_slack_never_sends_are_400(
    desk: Desk, caplog: pytest.LogCaptureFixture, shape: str
) -> None:
    view = desk.open_intake("U0ALICE")
    view.setdefault("state", {}).setdefault("values", {})
    MODAL_SHAPES[shape](view)
    response = desk.slack.raw_view_submission("U0ALICE", view)
    assert response.status == 400, response.body
    assert desk.cases() == [] and desk.outbox() == []
    assert not _errors(caplog)


EVENT = {"type": "app_home_opened", "user": "U0ALICE", "tab": "home"}
ENVELOPES = {
    "authorizations a string": {"authorizations": "x"},
    "an authorization a number": {"authorizations": [5]},
    "an authorization's enterprise a number": {"authorizations": [{"enterprise": 5}]},
    "enterprise a number": {"enterprise": 5},
    "team a number": {"team": 5},
    "team_id a list": {"team_id": ["T0001"]},
    "event a string": {"event": "message"},
    "event a list": {"event": [1]},
    "event type a number": {"event": {"type": 5}},
    "external shared channel, event a string": {"is_ext_shared_channel": True, "event": "x"},
    "a message's text a list": {
        "event": {
            "type": "message",
            "channel_type": "im",
            "channel": "D1",
            "user": "U0ALICE",
            "ts": "2.0",
            "thread_ts": "1.0",
            "text": ["x"],
        }
    },
    "a message's user a dict": {
        "event": {"type": "message", "channel": "D1", "user": {"id": "U0ALICE"}, "ts": "2.0"}
    },
}


@pytest.mark.parametrize("shape", sorted(ENVELOPES))
def test_event_envelopes_of_shapes_slack_never_sends_are_400(
    desk: Desk, caplog: pytest.LogCaptureFixture, shape: str
) -> None:
    document = {"type": "event_callback", "team_id": "T0001", "event": EVENT, **ENVELOPES[shape]}
    response = desk.slack.post_json(document)
    assert response.status == 400, response.body
    assert not _errors(caplog)


@pytest.mark.parametrize(
    "extra",
    [{"authorizations": "x"}, {"enterprise": 5}, {"trigger_id": 5}, {"response_url": ["x"]}],
    ids=str,
)
def test_clicks_with_envelopes_slack_never_sends_are_400(
    desk: Desk, caplog: pytest.LogCaptureFixture, extra: dict[str, Any]
) -> None:
    case = desk.open_case("U0ALICE")
    response = _click(desk, "U0AGENT1", "claim_case", str(case.id), **extra)
    assert response.status == 400, response.body
    [stored] = desk.cases()
    assert stored.assignee_id is None
    assert not _errors(caplog)


@pytest.mark.parametrize("drop", ["user_id", "command"])
def test_a_command_without_who_or_what_is_400(desk: Desk, drop: str) -> None:
    form = {"command": "/support", "text": "help", "user_id": "U0ALICE", "team_id": "T0001"}
    del form[drop]
    body = "&".join(f"{key}={value.replace('/', '%2F')}" for key, value in form.items())
    response = desk.slack.post(body, "application/x-www-form-urlencoded")
    assert response.status == 400, response.body


# --- characters no store or encoder takes -------------------------------------------------


def _reply_as_agent(desk: Desk, text: str) -> Any:
    case = desk.open_case("U0ALICE")
    card = desk.card(case)
    desk.slack.click_in("U0AGENT1", card, "case_reply", channel_id=TRIAGE, is_ephemeral=False)
    desk.standin.wait_for("views.open", count=2)
    return desk.slack.submit_view("U0AGENT1", {"text": text})


def _messages(desk: Desk) -> list[str]:
    with Session(desk.engine) as session:
        return [m.text for m in session.exec(select(CaseMessage))]


def _nul_and_surrogates_are_cleaned(desk: Desk) -> None:
    desk.open_intake("U0ALICE")
    response = desk.submit("U0ALICE", title="Mail\x00 broken \ud800 since Monday")
    assert response.status == 200, response.body
    [case] = desk.cases()
    assert case.title == "Mail broken \ufffd since Monday"
    desk.settle()
    card = desk.card(case)
    assert "Mail broken \ufffd since Monday" in json.dumps(card, ensure_ascii=False)
    desk.slack.click_in("U0AGENT1", card, "case_reply", channel_id=TRIAGE, is_ephemeral=False)
    desk.standin.wait_for("views.open", count=2)
    answer = desk.slack.submit_view("U0AGENT1", {"text": "on it\x00 \udfff"})
    assert answer.status == 200, answer.body
    assert "on it \ufffd" in _messages(desk)


def test_nul_and_lone_surrogates_in_typed_text_are_cleaned(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    _nul_and_surrogates_are_cleaned(desk)
    assert not _errors(caplog)


def test_nul_and_lone_surrogates_are_cleaned_on_postgresql(
    pg_desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    # PostgreSQL refuses NUL in a text column: the request used to fail with a 500
    _nul_and_surrogates_are_cleaned(pg_desk)
    question = pg_desk.slack.command("U0ALICE", "mail \x00 forwarding stopped")
    assert question.status == 200 and "Forward mail" in question.body
    assert not _errors(caplog)


def test_a_requester_message_with_a_lone_surrogate_is_relayed(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    case = desk.open_case("U0ALICE")
    desk.card(case)
    thread_ts = desk.wait_until(lambda: desk.cases()[0].requester_thread_ts, "the DM thread")
    dm = desk.standin.dm_channel("U0ALICE")
    response = desk.slack.message("U0ALICE", dm, "still broken \ud800", thread_ts=thread_ts)
    assert response.status == 200
    desk.wait_until(lambda: "still broken \ufffd" in _messages(desk), "the relayed message")
    relayed = desk.standin.wait_for(
        "chat.postMessage", lambda c: "still broken" in json.dumps(c.args), timeout=5
    )
    assert relayed
    assert not _errors(caplog)


@pytest.mark.parametrize(
    "question",
    [
        ("邮件转发 " + "共享邮箱的邮件自周一起不再转发到销售组" * 26)[:500],
        "mail 📨" + "📨" * 494,
        'mail "forwarding" ' + '\\"' * 160,
    ],
    ids=["Chinese", "emoji", "quotes and backslashes"],
)
def test_the_longest_question_in_any_script_opens_the_form(desk: Desk, question: str) -> None:
    # the question rides in the form's private_metadata (3000 characters at most); written
    # as JSON escapes, 500 Chinese characters took 3000 and the form never opened
    assert len(question) <= 500
    reply = desk.ask("U0ALICE", question)
    before = len(desk.standin.calls("views.open"))
    response = desk.slack.click_in("U0ALICE", reply, "contact_support", channel_id="C_GENERAL")
    assert response.status == 200
    [opened] = desk.standin.wait_for("views.open", count=before + 1, timeout=5)[before:]
    assert opened.ok, opened.error
    assert json.loads(opened.args["view"]["private_metadata"])["question"] == question


# --- who may see and change what -----------------------------------------------------------

SECRET_TITLE = "Contoso merger: CFO mailbox compromised"


def test_the_survey_comment_button_shows_a_case_to_its_requester_only(desk: Desk) -> None:
    case = desk.open_case("U0ALICE", title=SECRET_TITLE)
    opened_before = len(desk.standin.calls("views.open"))
    for user in ("U0FRANK", "U0STRANGER", "U0CARL", "U0AGENT1"):
        assert _click(desk, user, "survey_comment", str(case.id)).status == 200
    refusals = desk.standin.wait_for("response_url", count=4, timeout=5)
    assert all("does not exist" in json.dumps(r.args) for r in refusals)
    assert len(desk.standin.calls("views.open")) == opened_before
    # the requester gets the comment form
    assert _click(desk, "U0ALICE", "survey_comment", str(case.id)).status == 200
    [form] = desk.standin.wait_for("views.open", count=opened_before + 1)[opened_before:]
    assert form.args["view"]["callback_id"] == "survey_comment_view"
    assert SECRET_TITLE in json.dumps(form.args)


def test_a_resolved_case_keeps_its_severity_and_pages_nobody(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")  # Contoso has the online-services agreement: A allowed
    card = desk.card(case)
    desk.slack.click_in("U0AGENT1", card, "case_resolve", channel_id=TRIAGE, is_ephemeral=False)
    desk.standin.wait_for("views.open", count=2)
    assert desk.slack.submit_view("U0AGENT1", {"text": "fixed"}).status == 200
    desk.settle()
    posts_before = len(desk.standin.calls("chat.postMessage"))
    values = {
        "severity": {"severity": {"type": "static_select", "selected_option": {"value": "A"}}},
        "text": {"text": {"type": "plain_text_input", "value": "customer escalated"}},
    }
    view = _modal("case_severity_view", json.dumps({"case_id": case.id}), values)
    reply = desk.slack.raw_view_submission("U0AGENT1", view)
    assert reply.status == 200
    assert reply.json()["response_action"] == "errors"
    assert "is resolved; reopen it to change its severity" in reply.body
    desk.settle()
    [stored] = desk.cases()
    assert (stored.status, stored.severity) == ("resolved", "B")
    assert desk.events("severity_changed") == []
    assert len(desk.standin.calls("chat.postMessage")) == posts_before  # no page, no notice
