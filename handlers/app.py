"""The Bolt app and the WSGI application that serves it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from slack_bolt import App, BoltContext, BoltResponse
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine

from chatops import logs, metrics
from chatops.clock import Clock
from chatops.config import Settings
from chatops.db import DeskBusy
from chatops.policy import SupportRules
from chatops.queues import parse_case_reference
from chatops.readiness import DatabaseCheck
from handlers import actions, blocks, commands, extensions, intake, oncall
from handlers.delivery import OutboxDelivery
from handlers.desk import Desk
from handlers.listener_pool import ANSWER_BUDGET, LISTENER_THREADS, RECEIVED_AT, ListenerPool
from handlers.pump import DeliveryPump
from handlers.slack_body import parse_slack_body
from handlers.text import record_id, view_metadata
from handlers.webapi import KeepAliveWebClient
from models.case import case_number

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY = 1_000_000  # Slack's own payloads are far smaller


def build_desk(
    settings: Settings,
    engine: Engine,
    rules: SupportRules,
    clock: Clock,
    pump: bool = False,
) -> Desk:
    """The listeners' shared parts; `pump` starts the delivery threads of a serving process."""
    client = KeepAliveWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    delivery = OutboxDelivery(
        engine,
        client,
        rules,
        clock,
        settings.channel_pace_seconds,
        settings.delivery_lease_seconds,
    )
    threads = settings.delivery_threads
    return Desk(engine, rules, clock, delivery, DeliveryPump(delivery, threads) if pump else None)


def _request_setup(pool: ListenerPool, client: WebClient) -> Callable[..., None]:
    """The desk's one middleware: the listener pool's ack (`ListenerPool.middleware`), and
    the desk's Web API client for the listeners. (One middleware, not two: Bolt works out
    every argument a middleware could ask for on each call, a tenth of a bare request.)

    Bolt builds a plain WebClient
    for every request (so that a listener changing its token cannot affect another's), which
    opens a new connection to Slack per call; the desk's listeners never change the token,
    and the desk's client keeps its connections open, so a modal opens without a TCP and TLS
    handshake first, well inside its trigger_id's 3 s. What Bolt's per-request client would
    add and the desk does not use: the request's `team_id` (an org-wide Enterprise Grid
    install) and a workflow function's token (`app.function` listeners)."""

    def set_up(context: BoltContext, body: dict[str, Any], next: Callable[[], None]) -> None:
        context["client"] = client
        pool.middleware(context, body, next)

    return set_up


class _TokenFromClientFilter(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment when it is given no token and, as it
    is also given the desk's client, warns at every start that "`token` will be unused":
    read by an operator as the bot token being ignored. The client carries that very token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


logging.getLogger("slack_bolt.App").addFilter(_TokenFromClientFilter())


def build_app(settings: Settings, desk: Desk) -> App:
    """The Bolt app with every listener registered, order mattering for the catch-alls."""
    pool = ListenerPool(
        LISTENER_THREADS, late_answer=lambda body, context: answer_late(body, context, pool)
    )
    app = App(
        client=desk.delivery.client,
        signing_secret=settings.slack_signing_secret,
        token_verification_enabled=False,
        # `SlackWsgi` has checked the signature before parsing the body (a forged request
        # gets 401 before anything reads it); Socket Mode requests are not signed.
        request_verification_enabled=False,
        process_before_response=False,
        listener_executor=pool,  # answers as soon as the listener acks
    )
    app.middleware(_request_setup(pool, desk.delivery.client))
    app.error(answer_busy)
    commands.register(app, desk)
    actions.register_claim(app, desk)
    intake.register(app, desk)
    oncall.register(app, desk)
    for module in extensions.modules():
        module.register(app, desk)
    actions.register_fallbacks(app)  # last: the catch-all listeners
    return app


BUSY_TEXT = (
    "The support desk is very busy right now and nothing was saved. Please try again in a moment."
)


def answer_busy(
    error: Exception, body: dict[str, Any], response: BoltResponse | None, context: BoltContext
) -> BoltResponse | None:
    """What a listener that failed before its ack answers. A write that missed its deadline
    (`DeskBusy`: rolled back, nothing stored) says so, where the person will see it: under
    the modal's first field, which stays open with what they typed, or as a reply to the
    command. Anything else is logged and answered as Bolt does (500)."""
    if not isinstance(error, DeskBusy):
        log.error("listener failed: %r", error, exc_info=error)
        return None
    kind = _request_kind(body)
    if getattr(context.get("ack"), "expired", False):  # `answer_late` answered and counted it
        log.info("listener stopped after its request was answered busy (%s): %s", kind, error)
        return None
    log.warning("answered busy (%s): %s", kind, error)
    metrics.BUSY.labels(kind).inc()
    if response is None:  # already answered: the person saw the ack, the rest is logged
        return None
    return busy_response(kind, body)


def answer_late(body: dict[str, Any], context: BoltContext, pool: ListenerPool) -> BoltResponse:
    """The pool's answer for a listener that has not acked within `ANSWER_BUDGET` of the
    request's arrival (the listener is stopped at its ack, so nothing it would have done
    happens): the busy answer, and for a click, whose answer Slack shows nobody, the same
    words as an ephemeral message."""
    kind = _request_kind(body)
    log.warning("answered busy (%s): no answer within %.1f s of arrival", kind, ANSWER_BUDGET)
    metrics.BUSY.labels(kind).inc()
    respond = context.respond
    if kind == "block_actions" and respond is not None:
        try:
            pool.run_later(_tell_busy, respond)
        except RuntimeError:  # shutting down: the answer itself still goes
            log.warning("could not tell the clicker the desk is busy: shutting down")
    return busy_response(kind, body)


def _tell_busy(respond: Callable[..., Any]) -> None:
    try:
        respond(text=BUSY_TEXT, response_type="ephemeral", replace_original=False)
    except Exception as exc:  # the click was answered; this message is a courtesy
        log.warning("could not tell the clicker the desk is busy: %s", exc)


def _request_kind(body: dict[str, Any]) -> str:
    return str(body.get("type") or ("command" if "command" in body else "unknown"))


def busy_response(kind: str, body: dict[str, Any]) -> BoltResponse:
    """The busy answer (`BUSY_TEXT`) where the person will see it: under a modal's first
    field (the modal stays open with what they typed), or as the reply to a command."""
    if kind == "view_submission":
        blocks = (body.get("view") or {}).get("blocks") or []
        inputs = [
            b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("type") == "input"
        ]
        if inputs:
            answer = {"response_action": "errors", "errors": {inputs[0]: BUSY_TEXT}}
            return _json_response(answer)
    if kind == "command":
        return _json_response({"response_type": "ephemeral", "text": BUSY_TEXT})
    return BoltResponse(status=200, body="")


def _json_response(document: dict[str, Any]) -> BoltResponse:
    return BoltResponse(
        status=200,
        body=json.dumps(document),
        headers={"content-type": "application/json;charset=utf-8"},
    )


class SlackWsgi:
    """`POST /slack/events` for Bolt, `GET /healthz`; forged requests get 401 before any
    parsing, malformed ones 400, never a 500."""

    def __init__(self, app: App, engine: Engine, signing_secret: str) -> None:
        self.app = app
        self.engine = engine
        self.verifier = SignatureVerifier(signing_secret)
        self.database_check = DatabaseCheck(engine)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz" and method == "GET":
            return self._health(start_response)
        if path == "/metrics" and method == "GET":
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [metrics.render(self.engine)]
        if path != EVENTS_PATH or method != "POST":
            return self._route_other(path, method, start_response)
        started = time.perf_counter()
        received = time.monotonic()
        kind, outcome = "unknown", "error"
        try:
            kind, outcome, result = self._events(environ, start_response, received)
            return result
        finally:
            metrics.REQUESTS.labels(kind, outcome).inc()
            metrics.ACK_SECONDS.labels(kind).observe(time.perf_counter() - started)

    def _route_other(
        self, path: str, method: str, start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if path != EVENTS_PATH:
            return _reply(start_response, 404, "not found")
        return _reply(start_response, 405, "use POST")

    def _events(
        self, environ: dict[str, Any], start_response: Callable[..., Any], received: float
    ) -> tuple[str, str, Iterable[bytes]]:
        """Verify, parse and dispatch one Slack request: (kind, outcome, body)."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY:
            return "unknown", "too_large", _reply(start_response, 413, "request too large")
        raw = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "unknown", "malformed", _reply(start_response, 400, "body is not UTF-8")
        if not self._signed(body, headers):
            return "unknown", "unauthorized", _reply(start_response, 401, "invalid signature")
        parsed = parse_slack_body(body, headers.get("content-type", ""))
        if parsed is None:
            return "unknown", "malformed", _reply(start_response, 400, "malformed payload")
        kind, document = parsed
        try:
            request = ParsedRequest(
                body,
                document,
                query=environ.get("QUERY_STRING", ""),
                headers=headers,
                context={RECEIVED_AT: received},
            )
        except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
            # Bolt reading an envelope field of a shape parse_slack_body does not check
            log.warning("malformed %s payload: %r", kind, exc)
            return kind, "malformed", _reply(start_response, 400, "malformed payload")
        with logs.context(
            request_id=slack_request_id(document), kind=kind, case=request_case(document)
        ):
            response = self.app.dispatch(request)
        out_headers = [(k, v) for k, values in response.headers.items() for v in values]
        start_response(f"{response.status} {_REASONS.get(response.status, 'OK')}", out_headers)
        outcome = "ok" if response.status < 400 else f"http_{response.status}"
        return kind, outcome, [response.body.encode("utf-8")]

    def _signed(self, body: str, headers: dict[str, str]) -> bool:
        """Slack's v0 signature, within five minutes either way of our clock."""
        timestamp = headers.get("x-slack-request-timestamp", "")
        signature = headers.get("x-slack-signature", "")
        if not timestamp.isdigit() or not signature:
            return False
        return self.verifier.is_valid(body=body, timestamp=timestamp, signature=signature)

    def _health(self, start_response: Callable[..., Any]) -> Iterable[bytes]:
        problem = self.database_check.problem()
        if problem:
            return _reply(start_response, 503, problem)
        return _reply(start_response, 200, "ok")


def slack_request_id(document: dict[str, Any]) -> str | None:
    """What names one Slack request in the log: an event's id, else the trigger id Slack
    gives each command and interaction."""
    for key in ("event_id", "trigger_id"):
        value = document.get(key)
        if isinstance(value, str) and value:
            return value[:64]
    return None


def request_case(document: dict[str, Any]) -> str | None:
    """The case a Slack request is about, as the log names it (`CS-00042`), read from what
    the desk itself put in the request: a case button's value (`blocks.CASE_BUTTONS`), a
    case form's `private_metadata`, `/support case CS-00042`. Read as the listener reads it,
    so a forged value names no case here either. A reply in a case's DM thread names none:
    its case is found by a query, which the log alone does not warrant on every message."""
    kind = document.get("type")
    case_id: int | None = None
    if kind == "block_actions":
        actions = document.get("actions")
        # Bolt hands a click to the listener of its first action
        action = actions[0] if isinstance(actions, list) and actions else None
        if isinstance(action, dict) and isinstance(action.get("action_id"), str):
            action_id, value = action["action_id"], action.get("value")
            if action_id in blocks.CASE_BUTTONS:
                case_id = record_id(value)
            elif action_id.startswith(f"{blocks.SURVEY_RATE}_") and isinstance(value, str):
                case_id = record_id(value.partition(":")[0])
    elif kind == "view_submission":
        view = document.get("view")
        if isinstance(view, dict):
            case_id = record_id(view_metadata(view).get("case_id"))
    elif document.get("command") == "/support" and isinstance(document.get("text"), str):
        word, rest = [*document["text"].split(maxsplit=1), "", ""][:2]
        if word.lower() == "case":  # as handlers.caselife.case_detail reads it
            case_id = parse_case_reference(rest.strip() or "-")
    return case_number(case_id) if case_id is not None and case_id > 0 else None


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


def _reply(start_response: Callable[..., Any], status: int, message: str) -> Iterable[bytes]:
    start_response(
        f"{status} {_REASONS.get(status, 'Error')}",
        [("Content-Type", "text/plain; charset=utf-8")],
    )
    return [message.encode("utf-8")]


class ParsedRequest(BoltRequest):
    """A Bolt request whose body was parsed once, here. Bolt's own form parser is skipped: it
    reads any form containing the word "payload" as an interaction and drops it, so
    `/support webhook payload rejected` would reach no listener. The raw body stays for
    Bolt's signature check."""

    def __init__(
        self,
        raw_body: str,
        document: dict[str, Any],
        query: Any,
        headers: Any,
        context: dict[str, Any] | None = None,
    ) -> None:
        # Bolt takes a ready dict only in its Socket Mode form; the request is HTTP.
        super().__init__(
            body=document, query=query, headers=headers, context=context, mode="socket_mode"
        )
        self.mode = "http"
        self.raw_body = raw_body

    def to_copyable(self) -> BoltRequest:
        """The copy Bolt gives a lazy listener keeps the parsed body (Bolt's would re-parse
        the raw one)."""
        return ParsedRequest(
            self.raw_body, self.body, self.query, self.headers, self.context.to_copyable()
        )
