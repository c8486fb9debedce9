"""Forged, stale, malformed and unknown requests: a clear answer, nothing stored."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest

from tests.conftest import Desk

COMMAND_BODY = urlencode(
    {
        "command": "/support",
        "text": "mail is down",
        "user_id": "U0ALICE",
        "team_id": "T0001",
        "channel_id": "C_GENERAL",
        "trigger_id": "1.2.3",
        "response_url": "http://127.0.0.1:9/nowhere",
    }
)
FORM = "application/x-www-form-urlencoded"


def _nothing_happened(desk: Desk) -> None:
    assert desk.cases() == []
    assert desk.outbox() == []
    api_calls = [c for c in desk.standin.calls() if c.method != "auth.test"]
    assert api_calls == []


def test_forged_signature_is_401(desk: Desk) -> None:
    response = desk.slack.post(COMMAND_BODY, FORM, secret="not-the-secret")
    assert response.status == 401
    _nothing_happened(desk)


def test_stale_timestamp_is_401(desk: Desk) -> None:
    response = desk.slack.post(COMMAND_BODY, FORM, timestamp=int(time.time()) - 301)
    assert response.status == 401
    _nothing_happened(desk)


def test_future_timestamp_is_401(desk: Desk) -> None:
    response = desk.slack.post(COMMAND_BODY, FORM, timestamp=int(time.time()) + 600)
    assert response.status == 401
    _nothing_happened(desk)


@pytest.mark.parametrize("drop", ["X-Slack-Signature", "X-Slack-Request-Timestamp"])
def test_missing_headers_are_401(desk: Desk, drop: str) -> None:
    response = desk.slack.post(COMMAND_BODY, FORM, headers={drop: None})
    assert response.status == 401
    _nothing_happened(desk)


def test_body_altered_after_signing_is_401(desk: Desk) -> None:
    signed_ts = int(time.time())
    signature = desk.slack.sign(COMMAND_BODY, signed_ts)
    altered = COMMAND_BODY.replace("U0ALICE", "U0BILL")
    response = desk.slack.post(altered, FORM, timestamp=signed_ts, signature=signature)
    assert response.status == 401
    _nothing_happened(desk)


@pytest.mark.parametrize(
    "body",
    [
        "payload=%7Bnot+json",
        "payload=%5B1%2C2%5D",
        "payload=",
        "garbage-without-fields",
    ],
)
def test_malformed_payload_is_400(desk: Desk, body: str) -> None:
    response = desk.slack.post(body, FORM)
    assert response.status == 400
    assert "malformed" in response.body
    _nothing_happened(desk)


def test_unknown_action_gets_an_ephemeral_answer(desk: Desk) -> None:
    reply = desk.ask("U0ALICE")
    reply["blocks"][-1]["elements"][0]["action_id"] = "self_destruct"
    response = desk.slack.click_in("U0ALICE", reply, "self_destruct", channel_id="C_GENERAL")
    assert response.status == 200
    posted = desk.standin.wait_for("response_url")[0]
    assert "That button is not one I know" in json.dumps(posted.args)
    assert desk.cases() == []


def test_unknown_view_is_answered(desk: Desk) -> None:
    view = desk.open_intake("U0ALICE")
    forged = {**view, "callback_id": "launch_rockets"}
    response = desk.slack.raw_view_submission("U0ALICE", forged)
    assert response.status == 200
    reply = response.json()
    assert reply["response_action"] == "update"
    assert "not one I know" in json.dumps(reply["view"])
    assert desk.cases() == []


def test_claim_with_a_garbage_case_id_changes_nothing(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    card = desk.card(case)
    card["blocks"][-1]["elements"][0]["value"] = "DROP TABLE case"
    desk.slack.click_in("U0AGENT1", card, "claim_case", channel_id="C0TRIAGE")
    ephemeral = desk.standin.wait_for("chat.postEphemeral")[0]
    assert "does not exist" in ephemeral.args["text"]
    [stored] = desk.cases()
    assert stored.assignee_id is None


def test_healthz(desk: Desk) -> None:
    import urllib.request

    url = desk.slack.app_url.replace("/slack/events", "/healthz")
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert response.read() == b"ok"
