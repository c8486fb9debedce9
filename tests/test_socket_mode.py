"""`chatops serve --socket-mode`: the desk taking Slack's requests over a WebSocket.

The stand-in plays Slack's side of Socket Mode (apps.connections.open with the app-level
token, a WebSocket that pushes envelopes and reads the acknowledgements); the tests act as
people do, through that front door, and assert on what they would see.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from chatops.clock import ManualClock
from chatops.config import Settings
from chatops.directory.roster import load_roster
from chatops.kb import load_articles
from chatops.standin import SlackStandIn
from chatops.standin.socketmode import SocketModeSender, SocketModeServer
from handlers.server import build_service
from handlers.socket_mode import SocketModeService, start_socket_mode
from tests.conftest import INTAKE_DEFAULTS, OPEN_HOURS, ROOT, ROSTER, SECRET, TRIAGE, Desk
from tests.postgres import _free_port

pytestmark = pytest.mark.timeout(90)

APP_TOKEN = "xapp-1-A0APP-1-test"


@dataclass
class SocketDesk:
    """The desk connected over Socket Mode, and Slack's end of the socket."""

    desk: Desk
    socket: SocketModeServer
    running: SocketModeService


@pytest.fixture
def socket_desk(tmp_path: Path) -> Iterator[SocketDesk]:
    standin = SlackStandIn().start()
    socket = SocketModeServer(standin, APP_TOKEN).start()
    for uid, name, tz in [("U0ALICE", "alice", "Asia/Shanghai")]:
        standin.add_user(uid, name=name, tz=tz)
    clock = ManualClock(OPEN_HOURS)
    settings = Settings(
        slack_bot_token=standin.bot_token,
        slack_app_token=APP_TOKEN,
        slack_signing_secret=SECRET,  # accepted when given, though envelopes are not signed
        slack_api_url=standin.api_url,
        database_url=f"sqlite:///{tmp_path / 'socket.db'}",
        channel_pace_seconds=0.02,
    )
    service = build_service(settings, clock=clock)
    load_roster(service.engine, ROSTER, service.rules.policy)
    load_articles(service.engine, ROOT / "examples" / "kb")
    running = start_socket_mode(settings, service, port=_free_port())
    try:
        socket.wait_connected()
        desk = Desk(service, standin, SocketModeSender(socket), clock)
        yield SocketDesk(desk, socket, running)
    finally:
        running.close()
        socket.stop()
        standin.stop()


def _text(reply: dict) -> str:
    return json.dumps(reply)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _monitor_url(running: SocketModeService) -> str:
    assert running.monitor is not None
    return running.monitor.url


def test_app_connects_with_the_app_level_token(socket_desk: SocketDesk) -> None:
    [call] = socket_desk.desk.standin.calls("apps.connections.open")
    assert call.ok and call.token == APP_TOKEN
    assert call.response["url"].startswith(f"ws://127.0.0.1:{socket_desk.socket.port}/link/")
    assert socket_desk.socket.connections() == 1 and socket_desk.running.connected()


def test_tokens_are_not_interchangeable(socket_desk: SocketDesk) -> None:
    """Like Slack: the app-level token opens connections only, the bot token cannot."""
    standin = socket_desk.desk.standin
    with pytest.raises(SlackApiError) as bot_token:
        WebClient(base_url=standin.api_url).apps_connections_open(app_token=standin.bot_token)
    assert bot_token.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as app_token:
        WebClient(token=APP_TOKEN, base_url=standin.api_url).chat_postMessage(
            channel=TRIAGE, text="hi"
        )
    assert app_token.value.response["error"] == "not_allowed_token_type"


def test_support_command_is_answered_in_the_ack(socket_desk: SocketDesk) -> None:
    desk = socket_desk.desk
    usage = desk.ask("U0ALICE", "help")
    assert "/support help" in _text(usage)
    reply = desk.ask("U0ALICE", "mail forwarding stopped")
    assert "contact_support" in _text(reply)
    assert "Help articles" in _text(reply)
    # the ack payload is shown to the person as Slack shows a command's answer
    shown = desk.standin.ephemerals("U0ALICE")
    assert any("contact_support" in json.dumps(m) for m in shown)


def test_intake_opens_a_case_and_claim_wins(socket_desk: SocketDesk) -> None:
    desk = socket_desk.desk
    view = desk.open_intake("U0ALICE")  # Contact support → views.open on the stand-in
    assert view["callback_id"]
    response = desk.submit("U0ALICE")  # view_submission envelope; empty ack closes the modal
    assert response.status == 200 and "errors" not in response.body, response.body
    assert desk.standin.open_view("U0ALICE") is None
    [case] = desk.cases()
    card = desk.card(case)  # the case card in the triage channel
    assert "claim_case" in json.dumps(card["blocks"])
    click = desk.slack.click_in("U0AGENT1", card, "claim_case", channel_id=TRIAGE)
    assert click.status == 200
    desk.standin.wait_for("chat.update", lambda c: c.args["ts"] == card["ts"])
    shown = json.dumps(desk.standin.message(TRIAGE, card["ts"])["blocks"])
    assert "<@U0AGENT1>" in shown and "claim_case" not in shown
    assert [e.kind for e in desk.events()] == ["opened", "claimed"]


def test_events_arrive_as_events_api_envelopes(socket_desk: SocketDesk) -> None:
    desk = socket_desk.desk
    response = desk.slack.app_home_opened("U0ALICE")
    assert response.status == 200 and response.body == ""  # a bare ack
    [publish] = desk.standin.wait_for("views.publish", timeout=10)
    assert publish.args["user_id"] == "U0ALICE"
    assert desk.standin.home_view("U0ALICE") is not None


def test_refused_submission_comes_back_in_the_ack(socket_desk: SocketDesk) -> None:
    desk = socket_desk.desk
    desk.open_intake("U0ALICE")
    response = desk.submit("U0ALICE", title="")  # a required field left empty
    reply = response.json()
    assert reply is not None and reply.get("response_action") == "errors", response.body
    assert desk.standin.open_view("U0ALICE") is not None  # the modal stays open
    assert desk.cases() == []


@pytest.mark.parametrize(
    "kind, payload",
    [
        ("interactive", {"type": "block_actions", "user": "U0ALICE", "actions": "claim_case"}),
        ("interactive", {"type": "block_actions", "user": {"id": "U0ALICE"}, "actions": [7]}),
        ("interactive", {"type": "view_submission", "user": {"id": "U0ALICE"}, "view": []}),
        ("slash_commands", {"command": "/support", "text": "help"}),  # no user_id
        ("slash_commands", {"command": "/support", "user_id": ["U0ALICE"], "text": "help"}),
        ("events_api", {"type": "event_callback", "event": "app_home_opened"}),
        ("events_api", {"type": "event_callback", "authorizations": {"team_id": "T0"}}),
        ("interactive", ["not", "an", "object"]),
    ],
)
def test_malformed_envelope_is_acked_and_changes_nothing(
    socket_desk: SocketDesk, kind: str, payload: object
) -> None:
    """What Slack never sends gets a bare acknowledgement (Slack would otherwise send it
    again and again), is counted as malformed, and reaches no listener."""
    desk = socket_desk.desk
    answerable = kind == "slash_commands"
    ack = socket_desk.socket.send(kind, payload, accepts_response_payload=answerable)  # type: ignore[arg-type]
    assert ack.acked and not ack.payload
    _status, metrics = _get(_monitor_url(socket_desk.running) + "/metrics")
    assert 'outcome="malformed"' in metrics
    assert desk.cases() == [] and desk.events() == []
    # the connection is still good for the next request
    assert "/support help" in _text(desk.ask("U0ALICE", "help"))


def test_unsafe_characters_in_envelopes_are_cleaned(socket_desk: SocketDesk) -> None:
    """NUL and half a surrogate pair, as JSON can spell them, are cleaned as over HTTP: the
    case is opened with what the person typed (a lone surrogate shown as U+FFFD)."""
    desk = socket_desk.desk
    reply = desk.ask("U0ALICE", "mail\x00 forwarding stopped")
    assert "Help articles" in _text(reply)
    desk.open_intake("U0ALICE")
    response = desk.submit("U0ALICE", title="Mail \ud800 stopped\x00")
    assert response.status == 200 and "errors" not in response.body, response.body
    [case] = desk.cases()
    assert case.title == "Mail \ufffd stopped"


def test_health_metrics_and_no_request_url(socket_desk: SocketDesk) -> None:
    url = _monitor_url(socket_desk.running)
    socket_desk.desk.ask("U0ALICE", "help")
    assert _get(url + "/healthz") == (200, "ok")
    status, body = _get(url + "/metrics")
    assert status == 200
    assert 'chatops_requests_total{kind="command",outcome="ok"}' in body
    # no unsigned door: Slack's requests only come over the socket
    request = urllib.request.Request(url + "/slack/events", data=b"command=/support", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 404


def test_reconnects_when_slack_recycles_the_connection(socket_desk: SocketDesk) -> None:
    socket = socket_desk.socket
    socket.ask_to_reconnect()
    deadline = time.monotonic() + 20
    while socket.opened() < 2 or socket.connections() != 1:
        assert time.monotonic() < deadline, "the app did not reconnect"
        time.sleep(0.05)
    assert len(socket_desk.desk.standin.calls("apps.connections.open")) == 2
    assert "/support help" in _text(socket_desk.desk.ask("U0ALICE", "help"))


def test_health_reports_a_lost_connection(socket_desk: SocketDesk) -> None:
    url = _monitor_url(socket_desk.running)
    socket_desk.socket.stop()  # Slack unreachable: reconnects fail
    deadline = time.monotonic() + 20
    while _get(url + "/healthz")[0] != 503:
        assert time.monotonic() < deadline, "/healthz still says ok without a connection"
        time.sleep(0.1)
    assert _get(url + "/healthz") == (503, "not connected to Slack")


# ------------------------------------------------------------------ the real process


_SERVE = [sys.executable, "-m", "chatops.cli", "serve", "--socket-mode", "--host", "127.0.0.1"]


def _env(standin: SlackStandIn, database: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN")
    }
    env.update(
        SLACK_BOT_TOKEN=standin.bot_token,
        SLACK_API_URL=standin.api_url,
        DATABASE_URL=f"sqlite:///{database}",
        CHATOPS_CHANNEL_PACE_SECONDS="0.02",
    )
    env.update(extra)
    return env


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*_SERVE, "--port", str(port), "--threads", "4"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read().decode() if process.stderr else "exited")
        try:
            if _get(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("chatops serve --socket-mode did not become healthy")


def test_serve_socket_mode_process_without_signing_secret(tmp_path: Path) -> None:
    with SlackStandIn() as standin, SocketModeServer(standin, APP_TOKEN) as socket:
        env = _env(standin, tmp_path / "serve.db", SLACK_APP_TOKEN=APP_TOKEN)
        subprocess.run(
            [sys.executable, "-m", "chatops.cli", "load", str(ROSTER)],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        port = _free_port()
        process = _serve(env, port)
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
            socket.wait_connected()
            slack = SocketModeSender(socket)
            reply = slack.command("U0ALICE", "mail forwarding stopped")
            assert reply.status == 200 and "contact_support" in reply.body
            slack.click_in("U0ALICE", reply.json(), "contact_support", channel_id="C_GENERAL")
            standin.wait_for("views.open", timeout=10)
            submitted = slack.submit_view("U0ALICE", INTAKE_DEFAULTS)
            assert submitted.status == 200 and "errors" not in submitted.body, submitted.body
            [card] = standin.wait_for(
                "chat.postMessage", lambda c: c.args["channel"] == TRIAGE, timeout=10
            )
            assert "claim_case" in json.dumps(card.args["blocks"])
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            code = process.wait(timeout=30)
        assert code == 0, process.stderr.read().decode() if process.stderr else code
        socket.wait_disconnected()


def _serve_fails(env: dict[str, str]) -> tuple[int, str]:
    result = subprocess.run(
        [*_SERVE, "--port", str(_free_port())],
        env=env,
        capture_output=True,
        timeout=60,
    )
    return result.returncode, result.stderr.decode()


def test_missing_app_token_is_a_clear_error(tmp_path: Path) -> None:
    with SlackStandIn() as standin:
        code, stderr = _serve_fails(_env(standin, tmp_path / "x.db"))
        assert code == 2
        assert "missing required setting(s): SLACK_APP_TOKEN" in stderr
        assert "SLACK_SIGNING_SECRET" not in stderr


def test_wrong_or_refused_app_token_is_a_clear_error(tmp_path: Path) -> None:
    with SlackStandIn() as standin, SocketModeServer(standin, APP_TOKEN):
        code, stderr = _serve_fails(
            _env(standin, tmp_path / "x.db", SLACK_APP_TOKEN=standin.bot_token)
        )
        assert code == 2 and "app-level token (xapp-" in stderr
        code, stderr = _serve_fails(
            _env(standin, tmp_path / "x.db", SLACK_APP_TOKEN="xapp-1-A0APP-1-revoked")
        )
        assert code == 2
        assert "Slack refused SLACK_APP_TOKEN (apps.connections.open: invalid_auth)" in stderr


def test_slack_out_of_reach_is_a_clear_error(tmp_path: Path) -> None:
    """No outbound route to Slack (a firewall, a wrong SLACK_API_URL): one line, no
    traceback."""
    with SlackStandIn() as standin:
        unreachable = f"http://127.0.0.1:{_free_port()}/api/"  # nobody listens there
        code, stderr = _serve_fails(
            _env(standin, tmp_path / "x.db", SLACK_APP_TOKEN=APP_TOKEN, SLACK_API_URL=unreachable)
        )
    assert code == 2, stderr
    assert "Traceback" not in stderr, stderr
    [line] = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert f"Slack could not be reached at {unreachable}" in line, line
    assert APP_TOKEN not in stderr


def test_a_monitoring_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with (
        SlackStandIn() as standin,
        SocketModeServer(standin, APP_TOKEN),
        socket.socket() as taken,
    ):
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*_SERVE, "--port", str(port)],
            env=_env(standin, tmp_path / "x.db", SLACK_APP_TOKEN=APP_TOKEN),
            capture_output=True,
            timeout=60,
        )
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert "Traceback" not in stderr, stderr
    [line] = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert f"127.0.0.1:{port}" in line and "in use" in line, line
