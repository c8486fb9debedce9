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

from chatops import logs
from models.case import case_number
from tests.conftest import SECRET, Desk, _make_desk
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
