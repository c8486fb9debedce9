"""The log as production writes it (`chatops.logs.configure`, set up before the app is
built, as `chatops serve` does): nothing in it that would let a reader act as the bot or
as a verified caller, even at DEBUG."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

import handlers.caselife
from chatops import logs
from handlers.app import request_case
from models.case import case_number
from tests.conftest import SECRET, TRIAGE, Desk, _make_desk
from tests.test_verification import UNREGISTERED, enter_code, enter_number, the_code, wrong


@pytest.fixture
def production_log(tmp_path: pytest.TempPathFactory) -> Iterator[tuple[io.StringIO, Desk]]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("slack_sdk", "slack_bolt")}
    stream = io.StringIO()
    logs.configure(level="DEBUG", fmt="json", secrets=[SECRET])
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    try:
        for desk in _make_desk(f"sqlite:///{tmp_path}/desk.db"):  # type: ignore[operator]
            yield stream, desk
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def test_a_verification_code_and_the_tokens_never_reach_the_log_even_at_debug(
    production_log: tuple[io.StringIO, Desk],
) -> None:
    stream, desk = production_log
    case = desk.open_case("U0ALICE")
    enter_number(desk, case, UNREGISTERED)
    code = the_code(desk)
    enter_code(desk, wrong(code))
    enter_code(desk, code)
    desk.settle()
    text = stream.getvalue()
    assert text  # the desk did log, at DEBUG
    found = re.compile(rf"(?<![0-9]){code}(?![0-9])")
    assert not [line for line in text.splitlines() if found.search(line)]
    assert desk.standin.bot_token not in text and SECRET not in text
    assert desk.slack.verification_token not in text  # Slack's legacy token in each payload
    # the Slack libraries log what the desk answered and sent at DEBUG: people's words
    below_info = [
        entry
        for entry in map(json.loads, text.splitlines())
        if entry["logger"].startswith(("slack_bolt", "slack_sdk"))
        and entry["level"] not in ("INFO", "WARNING", "ERROR", "CRITICAL")
    ]
    assert not below_info, below_info[:3]


def _entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_carry_the_slack_request_and_the_case(
    production_log: tuple[io.StringIO, Desk],
) -> None:
    """An operator follows one request, or one case, through the log by a field."""
    stream, desk = production_log
    reply = desk.ask("U0ALICE", "mail forwarding stopped")
    desk.standin.fail_next("views.open", error="expired_trigger_id")
    click = desk.slack.click_in("U0ALICE", reply, "contact_support", channel_id="C_GENERAL")
    assert click.status == 200
    desk.settle()
    [refused] = [e for e in _entries(stream) if "views.open failed" in e["message"]]
    assert refused["request_id"] == click.sent["trigger_id"]  # the listener's own thread
    assert refused["kind"] == "block_actions"

    desk.standin.fail_next("chat.postMessage", error="channel_not_found")
    case = desk.open_case("U0ALICE")
    desk.settle()
    [parked] = [e for e in _entries(stream) if "parked" in e["message"]]
    assert parked["case"] == case_number(case.id or 0)


def _lines(stream: io.StringIO, words: str) -> list[dict[str, Any]]:
    return [e for e in _entries(stream) if words in e["message"]]


def test_a_click_on_a_case_card_is_logged_with_its_case(
    production_log: tuple[io.StringIO, Desk],
) -> None:
    """What a listener logs while it works a case from its card names the case, as the
    delivery of the case's messages does: an operator finds both by one field."""
    stream, desk = production_log
    case = desk.open_case("U0ALICE")
    number = case_number(case.id or 0)
    card = desk.card(case)
    desk.settle()

    desk.standin.fail_next("views.open", error="expired_trigger_id")
    desk.press("U0AGENT1", case, "case_reply")
    desk.settle()
    [refused] = _lines(stream, "views.open failed")
    assert refused["case"] == number and refused["kind"] == "block_actions"

    # a listener that fails after its ack: the error line names the case too
    desk.standin.fail_next("chat.postEphemeral", error="channel_not_found")
    click = desk.slack.click_in("U0ALICE", card, "claim_case", channel_id=TRIAGE)
    assert click.status == 200
    desk.settle()
    [failed] = _lines(stream, "listener failed")
    assert failed["case"] == number
    assert failed["request_id"] == click.sent["trigger_id"]


def test_a_modal_submitted_for_a_case_is_logged_with_its_case(
    production_log: tuple[io.StringIO, Desk], monkeypatch: pytest.MonkeyPatch
) -> None:
    stream, desk = production_log
    case = desk.open_case("U0ALICE")
    # nothing listens there: the code's e-mail fails after the modal's answer, and says so
    monkeypatch.setenv("CHATOPS_SMTP_URL", "smtp://127.0.0.1:1")
    enter_number(desk, case, UNREGISTERED)
    desk.settle()
    [unsent] = _lines(stream, "not sent")
    assert unsent["case"] == case_number(case.id or 0)
    assert unsent["kind"] == "view_submission"


def test_a_command_about_a_case_is_logged_with_its_case(
    production_log: tuple[io.StringIO, Desk], monkeypatch: pytest.MonkeyPatch
) -> None:
    stream, desk = production_log
    case = desk.open_case("U0ALICE")

    def broken(*_args: Any) -> None:
        raise RuntimeError("the case could not be read")

    monkeypatch.setattr(handlers.caselife, "find_case", broken)
    desk.slack.command("U0AGENT1", f"case cs{case.id}")
    desk.settle()
    [failed] = _lines(stream, "listener failed")
    assert failed["case"] == case_number(case.id or 0) and failed["kind"] == "command"


def test_a_forged_case_in_a_request_is_logged_without_one_and_answered_as_ever(
    production_log: tuple[io.StringIO, Desk],
) -> None:
    """The log names the case a listener acts on, never one a forged value spells out;
    and reading it never stands in the way of the request's own answer."""
    stream, desk = production_log
    case = desk.open_case("U0ALICE")
    card = desk.card(case)
    desk.settle()
    card["blocks"][-1]["elements"][0]["value"] = "DROP TABLE case"

    desk.standin.fail_next("chat.postEphemeral", error="channel_not_found")
    click = desk.slack.click_in("U0AGENT1", card, "claim_case", channel_id=TRIAGE)
    assert click.status == 200
    desk.settle()
    [failed] = _lines(stream, "listener failed")
    assert "case" not in failed and failed["request_id"] == click.sent["trigger_id"]

    click = desk.slack.click_in("U0AGENT1", card, "claim_case", channel_id=TRIAGE)
    assert click.status == 200
    told = desk.standin.wait_for("chat.postEphemeral", lambda c: c.ok)[0]
    assert "does not exist" in told.args["text"]

    for metadata in (
        json.dumps({"case_id": "CS-00001; DROP TABLE case"}),
        json.dumps({"case_id": True}),
        json.dumps({"case_id": {"id": case.id}}),
        json.dumps([case.id]),
        "[" * 100_000,  # deeper than json.loads goes
        "not JSON",
    ):
        view = {
            "id": "VFORGED",
            "type": "modal",
            "callback_id": "case_note_view",
            "private_metadata": metadata,
            "blocks": [],
            "state": {"values": {"text": {"text": {"type": "plain_text_input", "value": "hi"}}}},
        }
        response = desk.slack.raw_view_submission("U0AGENT1", view)
        assert response.status == 200, (metadata[:40], response.body)
        assert "does not exist" in json.dumps(response.json()), metadata[:40]

    answer = desk.slack.command("U0AGENT1", "case CS-1; DROP TABLE case").json()
    assert "Which case?" in json.dumps(answer)
    desk.settle()
    named = [e for e in _entries(stream) if "case" in e and "request_id" in e]
    assert not named, "a forged case was logged"
    assert [c.id for c in desk.cases()] == [case.id] and desk.events("note") == []


def test_only_a_case_id_the_desk_put_in_a_request_names_its_case() -> None:
    def click(action_id: str, value: Any) -> dict[str, Any]:
        return {"type": "block_actions", "actions": [{"action_id": action_id, "value": value}]}

    def form(metadata: dict[str, Any]) -> dict[str, Any]:
        return {"type": "view_submission", "view": {"private_metadata": json.dumps(metadata)}}

    assert request_case(click("survey_rate_4", "42:4")) == "CS-00042"
    assert request_case(click("downgrade_case", "42")) == "CS-00042"
    assert request_case(form({"case_id": 42, "severity": "B"})) == "CS-00042"
    assert request_case({"command": "/support", "text": "case  CS-00042 "}) == "CS-00042"
    for other in (
        click("acknowledge_page", "42"),  # a page's id, an incident's: not a case's
        click("follow_incident", "42"),
        form({"incident_id": 42}),
        form({"verification_id": 42}),
        click("claim_case", None),
        click("claim_case", "0"),
        {"type": "block_actions", "actions": [["claim_case"]]},
        {"type": "view_submission", "view": "42"},
        {"command": "/support", "text": "list mine 42"},
        {"command": "/support", "text": ""},
        {"command": "/support", "text": "case"},
        {"command": "/support"},
        {"type": "event_callback", "event": {"type": "message", "thread_ts": "1.2"}},
    ):
        assert request_case(other) is None, other


def test_the_passwords_in_the_database_and_mail_urls_are_masked() -> None:
    environ = {
        "SLACK_APP_TOKEN": "xapp-1-A0-secret-app-token",
        "DATABASE_URL": "postgresql+psycopg://desk:s3cr%40t-db-pw@db.internal/desk",
        "CHATOPS_SMTP_URL": "smtps://mailer:long-mail-password@smtp.example:465",
        "SLACK_SIGNING_SECRET": "",
    }
    secrets = logs.configured_secrets(environ)
    line = (
        "connect to postgresql+psycopg://desk:s3cr%40t-db-pw@db.internal/desk failed "
        "(password s3cr@t-db-pw); smtp login mailer/long-mail-password refused"
    )
    masked = logs.SecretFilter(secrets)
    record = logging.LogRecord("chatops", logging.ERROR, __file__, 1, line, None, None)
    masked.filter(record)
    shown = record.getMessage()
    assert "s3cr" not in shown and "long-mail-password" not in shown, shown
    assert "desk:***@db.internal" in shown
    # a URL without a password, or one that is not a URL, adds nothing
    assert logs.configured_secrets({"DATABASE_URL": "sqlite:///desk.db"}) == []
    assert logs.configured_secrets({"CHATOPS_SMTP_URL": "smtp://[::1"}) == []
