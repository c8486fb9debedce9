"""The log as production writes it (`chatops.logs.configure`, set up before the app is
built, as `chatops serve` does): nothing in it that would let a reader act as the bot or
as a verified caller, even at DEBUG."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from chatops import logs
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
