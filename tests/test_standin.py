"""Tests of the local Slack stand-in itself (server, recording, failure injection, client)."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from chatops.standin import SlackSender, SlackStandIn, WebApiCall, element_state

SECRET = "test-signing-secret"
TOKEN = "xoxb-test"


class FakeClock:
    """Injectable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Captured:
    """A request the receiver got."""

    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in urllib.parse.parse_qs(self.body.decode()).items()}

    def payload(self) -> dict[str, Any]:
        return json.loads(self.form()["payload"])


Reply = tuple[int, str, dict[str, str]]


@dataclass
class Receiver:
    """A tiny HTTP server standing in for the app: captures what the sender sends."""

    reply: Callable[[Captured], Reply] = lambda req: (200, "", {})
    requests: list[Captured] = field(default_factory=list)

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                captured = Captured(dict(self.headers.items()), self.rfile.read(length))
                receiver.requests.append(captured)
                status, body, headers = receiver.reply(captured)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/slack/events"

    @property
    def last(self) -> Captured:
        return self.requests[-1]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def standin(clock: FakeClock) -> Iterator[SlackStandIn]:
    users = {
        "U1": {"name": "alice", "real_name": "Alice Liddell"},
        "U2": {"name": "bob", "tz": "Europe/London", "email": "bob@acme.test"},
    }
    with SlackStandIn(users=users, clock=clock) as server:
        yield server


@pytest.fixture
def client(standin: SlackStandIn) -> WebClient:
    return WebClient(token=TOKEN, base_url=standin.api_url, retry_handlers=[])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as app:
        yield app


@pytest.fixture
def sender(standin: SlackStandIn, receiver: Receiver) -> SlackSender:
    return SlackSender(receiver.url, SECRET, standin)


def button_message() -> list[dict[str, Any]]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Ticket #7*"}},
        {
            "type": "actions",
            "block_id": "ticket_actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "ack",
                    "text": {"type": "plain_text", "text": "Acknowledge"},
                    "value": "7",
                    "style": "primary",
                },
                {
                    "type": "button",
                    "action_id": "close",
                    "text": {"type": "plain_text", "text": "Close"},
                    "value": "7",
                },
            ],
        },
    ]


def opt(value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": value.title()}, "value": value}


def sample_modal() -> dict[str, Any]:
    def input_block(block_id: str, element: dict[str, Any], optional: bool = False) -> dict:
        return {
            "type": "input",
            "block_id": block_id,
            "optional": optional,
            "label": {"type": "plain_text", "text": block_id},
            "element": element,
        }

    return {
        "type": "modal",
        "callback_id": "new_ticket",
        "private_metadata": '{"channel": "C_GENERAL"}',
        "title": {"type": "plain_text", "text": "New ticket"},
        "submit": {"type": "plain_text", "text": "Create"},
        "blocks": [
            input_block("title", {"type": "plain_text_input", "action_id": "title_input"}),
            input_block(
                "category",
                {
                    "type": "static_select",
                    "action_id": "category_select",
                    "option_groups": [
                        {
                            "label": {"type": "plain_text", "text": "IT"},
                            "options": [opt("laptop"), opt("network")],
                        },
                        {
                            "label": {"type": "plain_text", "text": "HR"},
                            "options": [opt("payroll")],
                        },
                    ],
                },
            ),
            input_block(
                "priority",
                {
                    "type": "radio_buttons",
                    "action_id": "priority_radio",
                    "options": [opt("p1"), opt("p2"), opt("p3")],
                    "initial_option": opt("p3"),
                },
            ),
            input_block(
                "flags",
                {
                    "type": "checkboxes",
                    "action_id": "flags_cb",
                    "options": [opt("urgent"), opt("vip")],
                },
                optional=True,
            ),
            input_block("email", {"type": "email_text_input", "action_id": "email_in"}, True),
            input_block(
                "count",
                {"type": "number_input", "action_id": "count_in", "is_decimal_allowed": False},
                True,
            ),
            input_block("link", {"type": "url_text_input", "action_id": "link_in"}, True),
            input_block("assignee", {"type": "users_select", "action_id": "assignee_in"}, True),
            input_block("due", {"type": "datepicker", "action_id": "due_in"}, True),
            input_block(
                "details",
                {
                    "type": "plain_text_input",
                    "action_id": "details_in",
                    "multiline": True,
                    "initial_value": "n/a",
                },
                True,
            ),
        ],
    }


# ------------------------------------------------------------------------------ Web API


def test_post_update_and_thread(standin: SlackStandIn, client: WebClient) -> None:
    first = client.chat_postMessage(channel="C1", text="hello", blocks=button_message())
    second = client.chat_postMessage(channel="C1", text="again")
    assert first["ok"] and first["channel"] == "C1"
    assert first["message"]["text"] == "hello"
    assert float(second["ts"]) > float(first["ts"])
    assert len(first["ts"].split(".")[1]) == 6
    # blocks arrived as a JSON string (form-encoded) and were parsed and given block ids
    stored = standin.message("C1", first["ts"])
    assert stored["blocks"][1]["block_id"] == "ticket_actions"
    assert stored["blocks"][0]["block_id"]
    call = standin.calls("chat.postMessage")[0]
    assert isinstance(call.args["blocks"], list) and call.token == TOKEN

    updated = client.chat_update(channel="C1", ts=first["ts"], text="edited", blocks=[])
    assert updated["ts"] == first["ts"] and updated["text"] == "edited"
    assert standin.message("C1", first["ts"])["text"] == "edited"
    assert "blocks" not in standin.message("C1", first["ts"])

    reply = client.chat_postMessage(channel="C1", text="in thread", thread_ts=first["ts"])
    assert reply["message"]["thread_ts"] == first["ts"]
    thread = standin.messages("C1", thread_ts=first["ts"])
    assert [m["text"] for m in thread] == ["edited", "in thread"]
    assert thread[0]["reply_count"] == 1
    assert [m["text"] for m in standin.messages("C1")] == ["edited", "again", "in thread"]

    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C1", ts="1.000001", text="x")
    assert err.value.response["error"] == "message_not_found"
    link = client.chat_getPermalink(channel="C1", message_ts=first["ts"])
    assert link["permalink"].endswith(first["ts"].replace(".", ""))


def test_ts_unique_under_concurrency(standin: SlackStandIn) -> None:
    stamps: list[str] = []

    def post() -> None:
        web = WebClient(token=TOKEN, base_url=standin.api_url)
        for _ in range(5):
            stamps.append(web.chat_postMessage(channel="C2", text="x")["ts"])

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(stamps)) == 20
    assert [m["ts"] for m in standin.messages("C2")] == sorted(stamps, key=float)


def test_argument_errors_and_unknown_method(client: WebClient, standin: SlackStandIn) -> None:
    with pytest.raises(SlackApiError) as err, pytest.warns(UserWarning):
        client.chat_postMessage(channel="C1")
    assert err.value.response["error"] == "no_text"
    with pytest.raises(SlackApiError) as err:
        client.api_call("chat.postMessage", params={"text": "no channel"})
    assert err.value.response["error"] == "invalid_arguments"
    with pytest.raises(SlackApiError) as err:
        client.api_call("chat.doesNotExist")
    assert err.value.response.status_code == 200
    assert err.value.response["error"] == "unknown_method"
    too_many = [{"type": "divider"}] * 51
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="x", blocks=too_many)
    assert err.value.response["error"] == "invalid_blocks"
    assert all(c.failed for c in standin.calls())


def test_invalid_token(standin: SlackStandIn) -> None:
    bad = WebClient(token="xoxb-wrong", base_url=standin.api_url)
    with pytest.raises(SlackApiError) as err:
        bad.auth_test()
    assert err.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as err:
        WebClient(base_url=standin.api_url).auth_test()
    assert err.value.response["error"] == "not_authed"
    assert [c.token for c in standin.calls("auth.test")] == ["xoxb-wrong", None]


def test_ephemeral(client: WebClient, standin: SlackStandIn) -> None:
    result = client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert result["message_ts"]
    [shown] = standin.ephemerals("U1")
    assert shown["text"] == "only you" and shown["channel"] == "C1"
    assert shown["ts"] == result["message_ts"]
    assert standin.ephemerals("U2") == [] and standin.messages("C1") == []


def test_views_open_push_update_publish(
    client: WebClient, standin: SlackStandIn, clock: FakeClock
) -> None:
    trigger = standin.issue_trigger_id("U1")
    opened = client.views_open(trigger_id=trigger, view=sample_modal())["view"]
    assert opened["id"].startswith("V") and opened["hash"]
    assert opened["callback_id"] == "new_ticket" and opened["root_view_id"] == opened["id"]
    assert standin.open_view("U1")["id"] == opened["id"]

    with pytest.raises(SlackApiError) as err:  # used once only
        client.views_open(trigger_id=trigger, view=sample_modal())
    assert err.value.response["error"] == "exchanged_trigger_id"
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id="123.456.abc", view=sample_modal())
    assert err.value.response["error"] == "invalid_trigger_id"
    late = standin.issue_trigger_id("U1")
    clock.now += 3.01
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id=late, view=sample_modal())
    assert err.value.response["error"] == "expired_trigger_id"

    small = {"type": "modal", "title": {"type": "plain_text", "text": "Step 2"}, "blocks": []}
    pushed = client.views_push(trigger_id=standin.issue_trigger_id("U1"), view=small)["view"]
    assert pushed["previous_view_id"] == opened["id"]
    assert [v["id"] for v in standin.view_stack("U1")] == [opened["id"], pushed["id"]]

    with pytest.raises(SlackApiError) as err:
        client.views_update(view_id=opened["id"], hash="stale", view=small)
    assert err.value.response["error"] == "hash_conflict"
    renamed = dict(small, title={"type": "plain_text", "text": "Renamed"})
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=renamed)
    assert updated["view"]["id"] == opened["id"] and updated["view"]["hash"] != opened["hash"]
    assert standin.view(opened["id"])["title"]["text"] == "Renamed"
    with pytest.raises(SlackApiError) as err:
        client.views_update(view_id="VNOPE", view=small)
    assert err.value.response["error"] == "not_found"

    section = {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}
    home = {"type": "home", "blocks": [section]}
    published = client.views_publish(user_id="U1", view=home)["view"]
    again = client.views_publish(user_id="U1", view=home)["view"]
    assert again["id"] == published["id"]
    assert standin.home_view("U1")["blocks"][0]["text"]["text"] == "hi"


def test_view_validation_like_slack(client: WebClient, standin: SlackStandIn) -> None:
    view = sample_modal()
    view["title"]["text"] = "A title that is far too long for Slack"
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id=standin.issue_trigger_id("U1"), view=view)
    assert err.value.response["error"] == "invalid_arguments"
    assert any("/view/title/text" in m for m in err.value.response["response_metadata"]["messages"])
    no_submit = sample_modal()
    del no_submit["submit"]
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id=standin.issue_trigger_id("U1"), view=no_submit)
    assert "submit" in " ".join(err.value.response["response_metadata"]["messages"])


def test_view_as_form_encoded_json_string(standin: SlackStandIn, client: WebClient) -> None:
    trigger = standin.issue_trigger_id("U2")
    result = client.api_call(
        "views.open", params={"trigger_id": trigger, "view": json.dumps(sample_modal())}
    )
    assert result["view"]["callback_id"] == "new_ticket"
    assert isinstance(standin.calls("views.open")[0].args["view"], dict)


def test_people_and_workspace(client: WebClient, standin: SlackStandIn) -> None:
    auth = client.auth_test()
    assert (auth["user_id"], auth["team_id"], auth["bot_id"]) == ("UBOT", "T0001", "B0BOT")
    dm = client.conversations_open(users="U1")["channel"]["id"]
    again = client.conversations_open(users=["U1"])
    assert dm == again["channel"]["id"] == standin.dm_channel("U1") and again["already_open"]
    assert dm.startswith("D")
    alice = client.users_info(user="U1")["user"]
    assert alice["real_name"] == "Alice Liddell" and alice["tz"] == "UTC"
    assert alice["tz_offset"] == 0
    standin.add_user("U3", name="carol", tz="America/New_York", tz_offset=-18000)
    assert client.users_info(user="U3")["user"]["tz_offset"] == -18000
    with pytest.raises(SlackApiError) as err:
        client.users_info(user="UNOBODY")
    assert err.value.response["error"] == "user_not_found"
    assert client.users_lookupByEmail(email="bob@acme.test")["user"]["id"] == "U2"
    assert client.team_info()["team"]["domain"] == "acme"
    client.chat_postMessage(channel="U1", text="dm via user id")
    assert standin.messages(dm)[0]["text"] == "dm via user id"


def test_recording_and_wait_for(standin: SlackStandIn, client: WebClient) -> None:
    def later() -> None:
        time.sleep(0.1)
        client.chat_postMessage(channel="C1", text="first")
        client.chat_postMessage(channel="C1", text="second")

    threading.Thread(target=later).start()
    calls = standin.wait_for(
        "chat.postMessage", lambda c: c.args["channel"] == "C1", timeout=3, count=2
    )
    assert [c.args["text"] for c in calls] == ["first", "second"]
    assert isinstance(calls[0], WebApiCall) and calls[0].ok and calls[0].at <= time.time()
    with pytest.raises(AssertionError) as err:
        standin.wait_for("views.open", timeout=0.05)
    assert "chat.postMessage" in str(err.value)
    standin.reset()
    assert standin.calls() == []
    assert len(standin.messages("C1")) == 2  # reset() keeps what users see
    standin.reset(state=True)
    assert standin.messages("C1") == []


def test_ratelimit_429(standin: SlackStandIn, client: WebClient) -> None:
    standin.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    assert err.value.response["error"] == "ratelimited"
    assert client.chat_postMessage(channel="C1", text="x")["ok"]
    first, second = standin.calls("chat.postMessage")
    assert first.failed and first.injected and first.status == 429
    assert second.ok and not second.injected
    assert len(standin.messages("C1")) == 1


def test_500_and_injected_error(standin: SlackStandIn, client: WebClient) -> None:
    standin.fail_next("chat.postMessage", status=500, times=2)
    standin.fail_next("chat.postMessage", error="channel_not_found")
    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            client.chat_postMessage(channel="C1", text="x")
        assert err.value.response.status_code == 500
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 200
    assert err.value.response["error"] == "channel_not_found"
    assert [c.status for c in standin.calls()] == [500, 500, 200]
    assert client.chat_postMessage(channel="C1", text="x")["ok"]


def test_delay(standin: SlackStandIn, client: WebClient) -> None:
    standin.delay("auth.test", 0.2)
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started >= 0.2
    standin.delay("auth.test", 0)
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started < 0.2


def test_response_url(standin: SlackStandIn, client: WebClient) -> None:
    url = standin.new_response_url("U1", "C1")
    assert url.startswith(f"http://127.0.0.1:{standin.port}/response/")
    hook = WebhookClient(url)
    assert hook.send(text="working on it").body == "ok"
    assert [e["text"] for e in standin.ephemerals("U1")] == ["working on it"]
    hook.send(text="done", replace_original=True)
    assert [e["text"] for e in standin.ephemerals("U1")] == ["done"]
    hook.send(text="for everyone", response_type="in_channel")
    assert standin.messages("C1")[0]["text"] == "for everyone"
    [first, *_] = standin.calls("response_url")
    assert first.args["text"] == "working on it" and first.url == url
    # replace_original on a message the interaction came from
    posted = client.chat_postMessage(channel="C1", text="original", blocks=button_message())
    from_click = standin.new_response_url("U1", "C1", message_ts=posted["ts"])
    WebhookClient(from_click).send(text="replaced", replace_original=True)
    assert standin.message("C1", posted["ts"])["text"] == "replaced"
    WebhookClient(from_click).send(delete_original=True)
    with pytest.raises(KeyError):
        standin.message("C1", posted["ts"])
    assert WebhookClient(url.replace("/response/", "/response/x")).send(text="?").status_code == 404


def test_response_url_refuses_what_slack_would(standin: SlackStandIn) -> None:
    url = standin.new_response_url("U1", "C1")
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    too_many = WebhookClient(url).send(text="many", blocks=[section] * 51)
    assert (too_many.status_code, too_many.body) == (400, "invalid_blocks")
    too_long = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    assert WebhookClient(url).send(text="long", blocks=[too_long]).status_code == 400
    assert WebhookClient(url).send(text="x" * 40_001).status_code == 400
    assert standin.ephemerals("U1") == []
    assert [c.failed for c in standin.calls("response_url")] == [True, True, True]
    assert WebhookClient(url).send(text="fine", blocks=[section]).body == "ok"


# ------------------------------------------------------------------------------ SlackSender


def test_signatures_verify(sender: SlackSender, receiver: Receiver) -> None:
    response = sender.command("U1", "printer on fire")
    assert response.status == 200 and response.body == "" and response.json() is None
    req = receiver.last
    ts = req.headers["X-Slack-Request-Timestamp"]
    assert abs(int(ts) - time.time()) < 5
    assert req.headers["X-Slack-Signature"].startswith("v0=")
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(req.body, ts, req.headers["X-Slack-Signature"])
    assert not SignatureVerifier("other").is_valid(req.body, ts, req.headers["X-Slack-Signature"])

    sender.event({"type": "app_mention", "user": "U1", "text": "<@UBOT> hi", "channel": "C1"})
    req = receiver.last
    assert req.headers["Content-Type"] == "application/json"
    ts = req.headers["X-Slack-Request-Timestamp"]
    assert verifier.is_valid(req.body, ts, req.headers["X-Slack-Signature"])
    assert sender.sign("abc", 123) == sender.sign(b"abc", "123")
    now = int(time.time())
    assert verifier.is_valid("abc", str(now), sender.sign("abc", now))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=60))
def test_any_command_text_arrives_intact_and_signed(
    sender: SlackSender, receiver: Receiver, text: str
) -> None:
    sender.command("U1", text)
    req = receiver.last
    assert req.form().get("text", "") == text
    ts = req.headers["X-Slack-Request-Timestamp"]
    assert SignatureVerifier(SECRET).is_valid(req.body, ts, req.headers["X-Slack-Signature"])


def test_low_level_post_forgeries(sender: SlackSender, receiver: Receiver) -> None:
    stale = int(time.time()) - 301
    sender.post("a=b", "application/x-www-form-urlencoded", timestamp=stale)
    assert receiver.last.headers["X-Slack-Request-Timestamp"] == str(stale)
    sender.post("a=b", "application/x-www-form-urlencoded", secret="wrong")
    assert not SignatureVerifier(SECRET).is_valid(
        receiver.last.body,
        receiver.last.headers["X-Slack-Request-Timestamp"],
        receiver.last.headers["X-Slack-Signature"],
    )
    sender.post(
        "{",
        "application/json",
        signature="v0=deadbeef",
        headers={"X-Slack-Request-Timestamp": None, "X-Extra": "1"},
    )
    assert receiver.last.headers["X-Slack-Signature"] == "v0=deadbeef"
    assert "X-Slack-Request-Timestamp" not in receiver.last.headers
    assert receiver.last.headers["X-Extra"] == "1" and receiver.last.body == b"{"
    sender.post("a=b", "application/x-www-form-urlencoded", drop_headers=["x-slack-signature"])
    assert "X-Slack-Signature" not in receiver.last.headers


def test_command_fields_and_ack_body(
    sender: SlackSender, receiver: Receiver, standin: SlackStandIn, client: WebClient
) -> None:
    receiver.reply = lambda req: (200, "Got it!", {"Content-Type": "text/plain"})
    response = sender.command("U1", "vpn down", channel_id="C_GENERAL")
    form = receiver.last.form()
    assert form["command"] == "/support" and form["text"] == "vpn down"
    assert form["user_id"] == "U1" and form["user_name"] == "alice"
    assert form["channel_id"] == "C_GENERAL" and form["channel_name"] == "general"
    assert form["team_id"] == "T0001" and form["team_domain"] == "acme"
    assert form["api_app_id"] == "A0APP" and form["is_enterprise_install"] == "false"
    assert form["response_url"] == response.response_url
    assert {"token", "trigger_id"} <= set(form)
    # the ack body is shown to the user as an ephemeral message
    assert [e["text"] for e in standin.ephemerals("U1", "C_GENERAL")] == ["Got it!"]
    # the trigger id is accepted by views.open
    view = client.views_open(trigger_id=form["trigger_id"], view=sample_modal())["view"]
    assert standin.open_view("U1")["id"] == view["id"]


def test_a_command_answer_slack_would_refuse_is_a_problem_not_shown(
    sender: SlackSender, receiver: Receiver, standin: SlackStandIn
) -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    answer = json.dumps({"text": "too long", "blocks": [section]})
    receiver.reply = lambda req: (200, answer, {"Content-Type": "application/json"})
    response = sender.command("U1", "vpn down", channel_id="C_GENERAL")
    assert response.status == 200
    assert any("Slack would not show the answer" in p for p in response.problems)
    assert standin.ephemerals("U1", "C_GENERAL") == []


def test_click_builds_block_actions(
    sender: SlackSender, receiver: Receiver, standin: SlackStandIn, client: WebClient
) -> None:
    posted = client.chat_postMessage(channel="C_GENERAL", text="ticket", blocks=button_message())
    response = sender.click("U2", "C_GENERAL", posted["ts"], "ack")
    assert response.status == 200
    req = receiver.last
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    payload = req.payload()
    assert payload["type"] == "block_actions"
    assert payload["user"] == {"id": "U2", "username": "bob", "name": "bob", "team_id": "T0001"}
    assert payload["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": "C_GENERAL",
        "is_ephemeral": False,
    }
    assert payload["channel"] == {"id": "C_GENERAL", "name": "general"}
    assert payload["team"] == {"id": "T0001", "domain": "acme"}
    assert payload["enterprise"] is None and payload["is_enterprise_install"] is False
    assert payload["message"]["ts"] == posted["ts"] and payload["message"]["blocks"]
    assert payload["state"] == {"values": {}}
    [action] = payload["actions"]
    assert action["action_id"] == "ack" and action["block_id"] == "ticket_actions"
    assert action["value"] == "7" and action["type"] == "button"
    assert action["text"]["text"] == "Acknowledge" and action["action_ts"]
    with pytest.raises(LookupError, match="no element with action_id 'nope'"):
        sender.click("U2", "C_GENERAL", posted["ts"], "nope")
    with pytest.raises(LookupError, match="no message"):
        sender.click("U2", "C_GENERAL", "1.000000", "ack")
    with pytest.raises(LookupError, match="has value"):
        sender.click("U2", "C_GENERAL", posted["ts"], "close", value="8")

    # trigger id and response_url work (replace_original with text only drops the blocks)
    client.views_open(trigger_id=payload["trigger_id"], view=sample_modal())
    WebhookClient(payload["response_url"]).send(text="Acked by bob", replace_original=True)
    assert standin.message("C_GENERAL", posted["ts"])["text"] == "Acked by bob"
    assert "blocks" not in standin.message("C_GENERAL", posted["ts"])


def test_click_in_ephemeral(
    sender: SlackSender, receiver: Receiver, standin: SlackStandIn, client: WebClient
) -> None:
    client.chat_postEphemeral(channel="C1", user="U1", text="confirm?", blocks=button_message())
    sender.click_ephemeral("U1", "close")
    payload = receiver.last.payload()
    assert payload["container"]["is_ephemeral"] is True
    assert payload["container"]["channel_id"] == "C1"
    assert "message" not in payload
    WebhookClient(payload["response_url"]).send(text="closed", replace_original=True)
    assert [e["text"] for e in standin.ephemerals("U1")] == ["closed"]
    message = {"blocks": button_message(), "ts": "1.000001"}
    sender.click_in("U1", message, "ack", channel_id="C9")
    assert receiver.last.payload()["channel"]["id"] == "C9"
    # a (doctored) copy of a channel message is clicked as a channel message
    card = client.chat_postMessage(channel="C9", text="card", blocks=button_message())["message"]
    card["blocks"][1]["elements"][0]["value"] = "forged"
    sender.click_in("U1", card, "ack", channel_id="C9")
    payload = receiver.last.payload()
    assert payload["container"]["is_ephemeral"] is False
    assert payload["actions"][0]["value"] == "forged" and payload["message"]["ts"] == card["ts"]
    with pytest.raises(LookupError):
        sender.click_ephemeral("U2", "close")


def test_submit_view_state_for_each_element(
    sender: SlackSender, receiver: Receiver, standin: SlackStandIn, client: WebClient
) -> None:
    opened = client.views_open(trigger_id=standin.issue_trigger_id("U1"), view=sample_modal())
    receiver.reply = lambda req: (
        200,
        json.dumps({"response_action": "errors", "errors": {"title": "Too vague"}}),
        {"Content-Type": "application/json"},
    )
    response = sender.submit_view(
        "U1",
        {
            "title": "Printer on fire",
            "category_select": "network",  # an action_id works as well as a block_id
            "flags": ["urgent", "vip"],
            "email": "a@b.c",
            "count": 3,
            "link": "https://x.test",
            "assignee": "U2",
            "due": "2030-01-31",
        },
    )
    assert response.json()["response_action"] == "errors"
    payload = receiver.last.payload()
    assert payload["type"] == "view_submission"
    view = payload["view"]
    assert view["id"] == opened["view"]["id"] and view["callback_id"] == "new_ticket"
    assert view["private_metadata"] == '{"channel": "C_GENERAL"}'
    assert view["hash"] and view["blocks"]
    values = view["state"]["values"]
    assert values["title"]["title_input"] == {
        "type": "plain_text_input",
        "value": "Printer on fire",
    }
    assert values["category"]["category_select"] == {
        "type": "static_select",
        "selected_option": opt("network"),
    }
    assert values["priority"]["priority_radio"] == {
        "type": "radio_buttons",
        "selected_option": opt("p3"),
    }
    assert values["flags"]["flags_cb"] == {
        "type": "checkboxes",
        "selected_options": [opt("urgent"), opt("vip")],
    }
    assert values["email"]["email_in"] == {"type": "email_text_input", "value": "a@b.c"}
    assert values["count"]["count_in"] == {"type": "number_input", "value": "3"}
    assert values["link"]["link_in"] == {"type": "url_text_input", "value": "https://x.test"}
    assert values["assignee"]["assignee_in"] == {"type": "users_select", "selected_user": "U2"}
    assert values["due"]["due_in"] == {"type": "datepicker", "selected_date": "2030-01-31"}
    assert values["details"]["details_in"] == {"type": "plain_text_input", "value": "n/a"}
    # errors keep the modal open; what was typed stays
    assert standin.open_view("U1")["id"] == view["id"]

    receiver.reply = lambda req: (200, "", {})
    sender.submit_view("U1", {"title": "Printer on fire, 3rd floor"})
    values = receiver.last.payload()["view"]["state"]["values"]
    assert values["title"]["title_input"]["value"] == "Printer on fire, 3rd floor"
    assert values["category"]["category_select"]["selected_option"]["value"] == "network"
    assert standin.open_view("U1") is None  # an empty ack closes the modal


def test_submit_view_missing_forced_and_strict(
    sender: SlackSender, receiver: Receiver, standin: SlackStandIn, client: WebClient
) -> None:
    client.views_open(trigger_id=standin.issue_trigger_id("U1"), view=sample_modal())
    with pytest.raises(ValueError, match="not offered"):
        sender.submit_view("U1", {"category": "printer"})
    with pytest.raises(KeyError):
        sender.submit_view("U1", {"no_such_block": "x"}, strict=True)
    with pytest.raises(ValueError, match="required"):
        sender.submit_view("U1", {}, strict=True)
    receiver.reply = lambda req: (
        200,
        json.dumps({"response_action": "errors", "errors": {"category": "Pick one"}}),
        {},
    )
    response = sender.submit_view("U1", {"category": "printer", "nope": 1}, force=True)
    assert "nope" in response.problems[0]
    values = receiver.last.payload()["view"]["state"]["values"]
    assert values["category"]["category_select"]["selected_option"]["value"] == "printer"
    assert values["title"]["title_input"] == {"type": "plain_text_input", "value": None}
    assert values["due"]["due_in"] == {"type": "datepicker", "selected_date": None}
    assert values["flags"]["flags_cb"] == {"type": "checkboxes", "selected_options": []}
    untouched = element_state({"type": "users_select", "action_id": "u"})
    assert untouched == {"type": "users_select", "selected_user": None}


def test_view_action_and_response_actions(
    sender: SlackSender, receiver: Receiver, standin: SlackStandIn, client: WebClient
) -> None:
    modal = sample_modal()
    modal["blocks"][1]["dispatch_action"] = True
    modal["blocks"].append(
        {
            "type": "actions",
            "block_id": "extra",
            "elements": [
                {
                    "type": "button",
                    "action_id": "more",
                    "text": {"type": "plain_text", "text": "More"},
                    "value": "m",
                }
            ],
        }
    )
    view_id = client.views_open(trigger_id=standin.issue_trigger_id("U1"), view=modal)["view"]["id"]
    sender.view_action("U1", "category_select", "payroll", values={"title": "Salary missing"})
    payload = receiver.last.payload()
    assert payload["type"] == "block_actions"
    assert payload["container"] == {"type": "view", "view_id": view_id}
    assert payload["view"]["id"] == view_id and "response_url" not in payload
    [action] = payload["actions"]
    assert action["type"] == "static_select" and action["selected_option"] == opt("payroll")
    values = payload["view"]["state"]["values"]
    assert values["title"]["title_input"]["value"] == "Salary missing"
    assert values["category"]["category_select"]["selected_option"]["value"] == "payroll"
    sender.click_view_button("U1", "more")
    assert receiver.last.payload()["actions"][0]["value"] == "m"

    # the app updates the view (same block ids keep their typed values, like Slack)
    updated = sample_modal()
    updated["title"]["text"] = "New HR ticket"
    client.views_update(view_id=view_id, view=updated)
    receiver.reply = lambda req: (
        200,
        json.dumps({"response_action": "update", "view": sample_modal()}),
        {},
    )
    sender.submit_view("U1")
    values = receiver.last.payload()["view"]["state"]["values"]
    assert values["title"]["title_input"]["value"] == "Salary missing"
    assert standin.open_view("U1")["id"] == view_id
    too_long = sample_modal()
    too_long["title"]["text"] = "x" * 30
    push = json.dumps({"response_action": "push", "view": too_long})
    receiver.reply = lambda req: (200, push, {})
    assert sender.submit_view("U1").problems
    receiver.reply = lambda req: (200, json.dumps({"response_action": "clear"}), {})
    sender.submit_view("U1")
    assert standin.view_stack("U1") == []

    forged = dict(sample_modal(), id="VFORGED", state={"values": {"x": {"y": {"value": "1"}}}})
    sender.raw_view_submission("U1", forged)
    assert receiver.last.payload()["view"]["id"] == "VFORGED"


def test_events(sender: SlackSender, receiver: Receiver, standin: SlackStandIn) -> None:
    first = sender.event({"type": "app_mention", "user": "U1", "text": "hi", "channel": "C1"})
    envelope = json.loads(receiver.last.body)
    assert envelope["type"] == "event_callback" and envelope["event_id"] == first.event_id
    assert envelope["team_id"] == "T0001" and envelope["api_app_id"] == "A0APP"
    assert envelope["authorizations"][0]["user_id"] == "UBOT"
    assert envelope["event"]["event_ts"] and isinstance(envelope["event_time"], int)
    assert "X-Slack-Retry-Num" not in receiver.last.headers
    sender.event(envelope["event"], retry_num=1, event_id=first.event_id)
    assert receiver.last.headers["X-Slack-Retry-Num"] == "1"
    assert receiver.last.headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert json.loads(receiver.last.body)["event_id"] == first.event_id

    sender.message("U1", "U1", "help")  # a DM to the bot
    event = json.loads(receiver.last.body)["event"]
    assert event["channel"] == standin.dm_channel("U1") and event["channel_type"] == "im"
    assert standin.messages(standin.dm_channel("U1"))[0]["text"] == "help"

    receiver.reply = lambda req: (200, json.loads(req.body)["challenge"], {})
    assert sender.url_verification("abc123").body == "abc123"


def test_home_and_close(
    sender: SlackSender, receiver: Receiver, standin: SlackStandIn, client: WebClient
) -> None:
    go = {
        "type": "button",
        "action_id": "go",
        "value": "1",
        "text": {"type": "plain_text", "text": "Go"},
    }
    home = {"type": "home", "blocks": [{"type": "actions", "elements": [go]}]}
    view_id = client.views_publish(user_id="U1", view=home)["view"]["id"]
    sender.app_home_opened("U1")
    event = json.loads(receiver.last.body)["event"]
    assert event["type"] == "app_home_opened" and event["view"]["id"] == view_id
    sender.click_home("U1", "go")
    payload = receiver.last.payload()
    assert payload["container"] == {"type": "view", "view_id": view_id}
    assert payload["view"]["type"] == "home"

    modal = dict(sample_modal(), notify_on_close=True, external_id="ticket-form")
    client.views_open(trigger_id=standin.issue_trigger_id("U1"), view=modal)
    sender.fill_view("U1", {"title": "half typed"})
    closed = sender.close_view("U1")
    assert closed is not None and closed.sent["type"] == "view_closed"
    assert closed.sent["view"]["state"]["values"]["title"]["title_input"]["value"] == "half typed"
    assert standin.open_view("U1") is None
    with pytest.raises(LookupError):
        sender.submit_view("U1", {})


# ------------------------------------------------------------------------------ with Bolt


class _QuietWSGIHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_end_to_end_with_bolt(standin: SlackStandIn) -> None:
    """A real Bolt app accepts what the sender sends and drives the stand-in's state."""
    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    app = App(
        signing_secret=SECRET,
        client=WebClient(token=TOKEN, base_url=standin.api_url),
        process_before_response=True,
    )

    @app.command("/support")
    def open_form(ack: Callable, body: dict, client: WebClient) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=sample_modal())

    @app.view("new_ticket")
    def submitted(ack: Callable, view: dict, body: dict, client: WebClient) -> None:
        title = view["state"]["values"]["title"]["title_input"]["value"]
        if len(title) < 5:
            ack(response_action="errors", errors={"title": "Too short"})
            return
        ack()
        client.chat_postMessage(channel="C_GENERAL", text=title, blocks=button_message())

    @app.action("ack")
    def acked(ack: Callable, body: dict, client: WebClient) -> None:
        ack()
        client.chat_update(
            channel=body["channel"]["id"],
            ts=body["message"]["ts"],
            text=f"Acked by <@{body['user']['id']}>",
        )

    @app.event("app_mention")
    def mentioned(event: dict, say: Callable) -> None:
        say("hello", thread_ts=event["ts"])

    server: WSGIServer = make_server(
        "127.0.0.1", 0, SlackRequestHandler(app), handler_class=_QuietWSGIHandler
    )
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        sender = SlackSender(f"http://127.0.0.1:{server.server_port}/slack/events", SECRET, standin)
        assert sender.command("U1", "").status == 200
        assert standin.open_view("U1")["callback_id"] == "new_ticket"
        rejected = sender.submit_view("U1", {"title": "abc", "category": "laptop"})
        assert rejected.json() == {"response_action": "errors", "errors": {"title": "Too short"}}
        assert standin.open_view("U1") is not None
        assert sender.submit_view("U1", {"title": "Laptop broken"}).status == 200
        assert standin.open_view("U1") is None
        [post] = standin.calls("chat.postMessage")
        assert sender.click("U2", "C_GENERAL", post.response["ts"], "ack").status == 200
        assert standin.message("C_GENERAL", post.response["ts"])["text"] == "Acked by <@U2>"

        mention = sender.mention("U1", "C_GENERAL", "<@UBOT> hi")
        assert mention.status == 200
        standin.wait_for("chat.postMessage", lambda c: c.args.get("text") == "hello")

        # Bolt rejects forged and stale requests
        form = "application/x-www-form-urlencoded"
        assert sender.post("a=b", form, secret="x").status == 401
        assert sender.post("a=b", form, timestamp=int(time.time()) - 301).status == 401
    finally:
        server.shutdown()
        server.server_close()
