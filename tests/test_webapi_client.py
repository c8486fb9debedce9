"""The desk's Web API client keeps its connections to Slack open, and behaves like slack_sdk's
own client in everything else: answers, Slack's errors, 429 with Retry-After, 500, a Slack
that went away, a connection Slack closed while it sat idle."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from urllib.error import URLError

import pytest
from slack_sdk.errors import SlackApiError

from chatops.standin import SlackStandIn
from handlers import webapi
from handlers.webapi import KeepAliveWebClient
from tests.conftest import TRIAGE, Desk


@pytest.fixture
def standin() -> Iterator[SlackStandIn]:
    with SlackStandIn() as server:
        server.add_channel("C1", "general")
        yield server


def _client(standin: SlackStandIn, **kwargs: object) -> KeepAliveWebClient:
    return KeepAliveWebClient(token=standin.bot_token, base_url=standin.api_url, **kwargs)  # type: ignore[arg-type]


def test_calls_from_one_thread_share_one_connection(standin: SlackStandIn) -> None:
    client = _client(standin)
    for n in range(20):
        assert client.chat_postMessage(channel="C1", text=f"message {n}")["ok"]
    assert [m["text"] for m in standin.messages("C1")] == [f"message {n}" for n in range(20)]
    assert standin.connections_opened == 1


def test_a_server_that_closes_each_connection_is_answered_call_by_call() -> None:
    with SlackStandIn(keep_alive=False) as standin:
        standin.add_channel("C1", "general")
        client = _client(standin, retry_handlers=[])
        for n in range(3):
            assert client.chat_postMessage(channel="C1", text=f"m{n}")["ok"]
        assert [m["text"] for m in standin.messages("C1")] == ["m0", "m1", "m2"]
        assert standin.connections_opened == 3  # HTTP/1.0: a connection per call


def test_each_thread_has_its_own_connection(standin: SlackStandIn) -> None:
    client = _client(standin)
    errors: list[BaseException] = []

    def post(thread: int) -> None:
        try:
            for n in range(10):
                client.chat_postMessage(channel="C1", text=f"{thread}-{n}")
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    texts = sorted(m["text"] for m in standin.messages("C1"))
    assert texts == sorted(f"{t}-{n}" for t in range(6) for n in range(10))
    assert standin.connections_opened == 6


def test_slack_errors_and_http_errors_are_slack_sdk_s(standin: SlackStandIn) -> None:
    client = _client(standin, retry_handlers=[])
    standin.fail_next("chat.postMessage", error="channel_not_found")
    with pytest.raises(SlackApiError) as not_found:
        client.chat_postMessage(channel="C1", text="x")
    assert not_found.value.response["error"] == "channel_not_found"

    standin.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        client.chat_postMessage(channel="C1", text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert limited.value.response["error"] == "ratelimited"

    standin.fail_next("chat.postMessage", status=500)
    with pytest.raises(SlackApiError) as failed:
        client.chat_postMessage(channel="C1", text="x")
    assert failed.value.response.status_code == 500

    # The error answers were read to the end: the same connection carries the next call.
    assert client.chat_postMessage(channel="C1", text="after")["ok"]
    assert [m["text"] for m in standin.messages("C1")] == ["after"]
    assert standin.connections_opened == 1


def test_a_429_is_retried_after_its_retry_after_by_slack_sdk_s_handler(
    standin: SlackStandIn,
) -> None:
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    client = _client(standin, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    standin.fail_next("chat.postMessage", status=429, retry_after=0)
    assert client.chat_postMessage(channel="C1", text="once")["ok"]
    assert [m["text"] for m in standin.messages("C1")] == ["once"]
    assert [c.status for c in standin.calls("chat.postMessage")] == [429, 200]


def test_a_connection_slack_closed_while_idle_is_not_used_again(standin: SlackStandIn) -> None:
    client = _client(standin, retry_handlers=[])  # no retry may hide a failed send
    assert client.chat_postMessage(channel="C1", text="before")["ok"]
    port = standin.port
    standin.stop()  # closes every kept connection, as Slack's edge does with idle ones
    with SlackStandIn(port=port) as back:
        back.add_channel("C1", "general")
        assert client.chat_postMessage(channel="C1", text="after")["ok"]
        assert [m["text"] for m in back.messages("C1")] == ["after"]  # sent once
        assert back.connections_opened == 1


def test_a_slack_that_is_gone_fails_the_call_like_urllib(standin: SlackStandIn) -> None:
    client = _client(standin, retry_handlers=[])
    assert client.chat_postMessage(channel="C1", text="before")["ok"]
    standin.stop()
    with pytest.raises(URLError):  # what the desk's delivery catches and retries later
        client.chat_postMessage(channel="C1", text="while away")


def test_a_connection_idle_too_long_is_replaced(
    standin: SlackStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(standin)
    client.chat_postMessage(channel="C1", text="one")
    client.chat_postMessage(channel="C1", text="two")
    assert standin.connections_opened == 1
    monkeypatch.setattr(webapi, "IDLE_REUSE_SECONDS", 0.0)
    client.chat_postMessage(channel="C1", text="three")
    assert standin.connections_opened == 2
    assert [m["text"] for m in standin.messages("C1")] == ["one", "two", "three"]


def test_close_connections_closes_the_thread_s_connection(standin: SlackStandIn) -> None:
    client = _client(standin)
    client.chat_postMessage(channel="C1", text="one")
    client.close_connections()
    client.chat_postMessage(channel="C1", text="two")
    assert standin.connections_opened == 2


def test_a_proxy_falls_back_to_a_connection_per_call(standin: SlackStandIn) -> None:
    # The stand-in answers a proxy-form request line (absolute URL) like a direct one, so the
    # stand-in can play the proxy: urllib's path is taken, one connection per call.
    client = _client(standin, proxy=standin.base_url)
    client.chat_postMessage(channel="C1", text="one")
    client.chat_postMessage(channel="C1", text="two")
    assert [m["text"] for m in standin.messages("C1")] == ["one", "two"]
    assert standin.connections_opened == 2


def test_the_desk_delivers_many_cases_over_a_few_kept_connections(desk: Desk) -> None:
    """Through the front door: twelve cases opened, each card and requester notice delivered
    once, over far fewer connections than calls."""
    opened = desk.standin.connections_opened
    for n in range(12):
        desk.open_case("U0ALICE", title=f"Case {n}")
    desk.settle()
    desk.service.desk.delivery.deliver_pending()
    cards = [
        c for c in desk.standin.calls("chat.postMessage") if c.ok and c.args["channel"] == TRIAGE
    ]
    assert len(cards) == 12
    assert len({c.args["text"] for c in cards}) == 12
    calls = len(desk.standin.calls())
    assert calls >= 36  # views.open and the card and notice of each case, at least
    # A connection per thread that called Slack (listener and delivery threads), not per call.
    connections = desk.standin.connections_opened - opened
    assert connections <= calls // 3, (connections, calls)


def test_a_forked_child_opens_its_own_connection(standin: SlackStandIn) -> None:
    import os

    client = _client(standin)
    client.chat_postMessage(channel="C1", text="parent")
    pid = os.fork()
    if pid == 0:  # the child: post on the client it inherited, then leave at once
        try:
            client.chat_postMessage(channel="C1", text="child")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    client.chat_postMessage(channel="C1", text="parent again")
    assert [m["text"] for m in standin.messages("C1")] == ["parent", "child", "parent again"]
    assert standin.connections_opened == 2


def test_a_call_that_fails_while_sending_leaves_the_next_call_working(
    standin: SlackStandIn,
) -> None:
    client = _client(standin, retry_handlers=[])
    client.chat_postMessage(channel="C1", text="one")
    with pytest.raises(ValueError):  # http.client refuses a header value with a line break
        client.api_call(
            "chat.postMessage", params={"channel": "C1", "text": "x"}, headers={"X-Trace": "a\r\nb"}
        )
    assert client.chat_postMessage(channel="C1", text="two")["ok"]
    assert [m["text"] for m in standin.messages("C1")] == ["one", "two"]


def test_keep_alive_holds_with_many_files_open(standin: SlackStandIn) -> None:
    # select() cannot look at a descriptor numbered 1024 or more; the idle check must not
    # mistake that for a closed connection and reconnect on every call.
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("this machine allows fewer than 1,200 open files")
    if soft != resource.RLIM_INFINITY and soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    held = [open(os.devnull) for _ in range(1100)]  # noqa: SIM115 (closed below)
    try:
        client = _client(standin)
        for n in range(5):
            client.chat_postMessage(channel="C1", text=f"m{n}")
        assert standin.connections_opened == 1
    finally:
        for f in held:
            f.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
