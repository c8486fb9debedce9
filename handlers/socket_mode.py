"""`chatops serve --socket-mode`: the same Bolt app, connected out to Slack over Socket Mode.

For workspaces that cannot expose a public request URL. The process opens a WebSocket to
Slack with the app-level token (`SLACK_APP_TOKEN`, `xapp-…`, scope `connections:write`):
`apps.connections.open` hands out the URL, Slack pushes slash commands, interactions and
events down it as envelopes, and the app acknowledges each envelope on the same socket — the
acknowledgement's payload is what an HTTP response body would have carried (the ephemeral
reply, a modal's `response_action`). Everything after the ack (Web API calls, the outbox
delivery) is unchanged. slack_sdk's builtin client does the WebSocket work without any extra
dependency and reconnects by itself when Slack recycles a connection.

Decisions:

* **No signing secret needed.** Envelopes arrive on a connection the app opened with its own
  token, so they are not signed; `SLACK_SIGNING_SECRET` is accepted and ignored.
* **Envelopes are checked like HTTP bodies.** Their payloads get the front door's shape
  checks and cleaning (`handlers/slack_body.check_envelope_payload`); one Slack never sends
  is acknowledged bare (unacknowledged, Slack would send it again), counted with outcome
  `malformed`, and reaches no listener.
* **The HTTP port stays, for operators only.** `--host`/`--port` serve `GET /healthz` and
  `GET /metrics` — nothing else, in particular no `/slack/events` (an unsigned door must not
  open). `/healthz` answers 503 while the socket is not connected, as well as when the
  database does not answer, so a supervisor sees a desk that Slack cannot reach.
  `chatops_requests_total` and `chatops_ack_seconds` count envelopes with the same kinds and
  outcomes as HTTP requests.
* **One connection per process.** `--threads` sizes the pool handling envelopes; `--workers`
  does not apply. For more capacity or a rolling restart run more processes: Slack spreads
  envelopes over up to 10 connections of one app.
* **Graceful stop.** SIGTERM or SIGINT closes the socket (Slack sends new envelopes to the
  app's other connections, if any), waits for envelopes being handled, lets the delivery
  threads finish the message in hand, and exits 0.
"""

from __future__ import annotations

import logging
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from slack_bolt.adapter.socket_mode.builtin import SocketModeHandler
from slack_bolt.adapter.socket_mode.internals import run_bolt_app, send_response
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from chatops import logs, metrics
from chatops.config import Settings, SettingsError, load_settings
from handlers.app import SlackWsgi, request_case, slack_request_id
from handlers.server import Service, ThreadedServer, build_service, tune_collector_for_serving
from handlers.slack_body import check_envelope_payload

log = logging.getLogger("chatops.socket_mode")

APP_TOKEN_PREFIX = "xapp-"


def socket_mode_settings() -> Settings:
    """Settings for Socket Mode: the bot token and the app-level token, no signing secret.

    Raises SettingsError naming what is missing, like `load_settings` does for HTTP mode.
    """
    settings = load_settings(require_signing=False, require_app_token=True)
    if not settings.slack_app_token.startswith(APP_TOKEN_PREFIX):
        raise SettingsError(
            "SLACK_APP_TOKEN must be an app-level token (xapp-…, scope connections:write), "
            "not a bot or user token"
        )
    return settings


def _kind(req: SocketModeRequest) -> str:
    """The same kind labels the HTTP front door counts (command, block_actions, …)."""
    if req.type == "slash_commands":
        return "command"
    if req.type in ("interactive", "events_api") and isinstance(req.payload, dict):
        kind = req.payload.get("type")
        return kind if isinstance(kind, str) and kind else req.type
    return str(req.type)


class DeskSocketModeHandler(SocketModeHandler):
    """Bolt's builtin Socket Mode handler, counting envelopes in the request metrics and
    letting the envelopes in hand be acknowledged before it closes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_flight = 0
        self._idle = threading.Condition()
        self.client.message_listeners.append(self._unreadable_envelope)

    def _unreadable_envelope(
        self, client: BaseSocketModeClient, message: dict[str, Any], _raw: str | None
    ) -> None:
        """slack_sdk makes no request of an envelope whose payload is neither an object nor
        a string; acknowledge it here, or Slack sends it again and again."""
        if "envelope_id" not in message or isinstance(message.get("payload"), (dict, str)):
            return
        if "payload" not in message:
            return
        log.warning("malformed %s envelope", message.get("type"))
        metrics.REQUESTS.labels(str(message.get("type")), "malformed").inc()
        client.send_socket_mode_response(SocketModeResponse(envelope_id=message["envelope_id"]))

    def handle(self, client: BaseSocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        """Dispatch one envelope to the app and acknowledge it (Bolt's own two steps)."""
        started = time.perf_counter()
        kind, outcome = _kind(req), "error"
        with self._idle:
            self._in_flight += 1
        try:
            payload = check_envelope_payload(req.type, req.payload)
            if payload is None:
                # Acknowledged, or Slack would send it again; no listener sees it.
                outcome = "malformed"
                log.warning("malformed %s envelope", req.type)
                client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
                return
            req.payload = payload
            with logs.context(
                request_id=slack_request_id(payload) or req.envelope_id,
                kind=kind,
                case=request_case(payload),
            ):
                response = run_bolt_app(self.app, req)
            outcome = "ok" if response.status < 400 else f"http_{response.status}"
            send_response(client, req, response, started)
        finally:
            metrics.REQUESTS.labels(kind, outcome).inc()
            metrics.ACK_SECONDS.labels(kind).observe(time.perf_counter() - started)
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def close(self, drain_seconds: float = 5.0) -> None:
        """Close the socket once no envelope is between arrival and ack (at most
        `drain_seconds`): an ack cannot be sent on a closed socket, and Slack would show the
        person an error for a command that was in fact handled."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, drain_seconds)
        super().close()


class MonitoringWsgi:
    """`GET /healthz` (database and Slack connection) and `GET /metrics`; 404 otherwise."""

    def __init__(self, wsgi: SlackWsgi, connected: Callable[[], bool]) -> None:
        self.wsgi = wsgi
        self.connected = connected

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") == "GET" and path in ("/healthz", "/metrics"):
            if path == "/healthz" and not self.connected():
                return _text(start_response, "503 Service Unavailable", "not connected to Slack")
            return self.wsgi(environ, start_response)
        # Slack's requests come over the socket; no request URL is served.
        return _text(start_response, "404 Not Found", "not found (Socket Mode)")


def _text(start_response: Callable[..., Any], status: str, message: str) -> Iterable[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [message.encode("utf-8")]


@dataclass
class SocketModeService:
    """A desk connected over Socket Mode, with its optional monitoring server."""

    service: Service
    handler: DeskSocketModeHandler
    monitor: ThreadedServer | None = None

    def connected(self) -> bool:
        """Whether the WebSocket to Slack is open now."""
        return self.handler.client.is_connected()

    def close(self) -> None:
        """Close the socket, finish the envelopes in hand, then stop delivery and the pool."""
        self.handler.close()
        if self.monitor is not None:
            self.monitor.stop()
        self.service.close()


def start_socket_mode(
    settings: Settings,
    service: Service | None = None,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    threads: int = 8,
) -> SocketModeService:
    """Connect the desk (built from `settings` unless given) to Slack; returns once the
    first connection is attempted. With `port`, serve /healthz and /metrics there.

    Raises SettingsError when Slack refuses the app-level token or cannot be reached, or
    the monitoring port cannot be served.
    """
    if service is None:
        if not settings.slack_signing_secret:
            # build_service also wires the HTTP front door, whose verifier refuses an empty
            # secret. That door is never served here; an unguessable secret keeps it shut.
            unused = secrets.token_hex(32)
            settings = settings.model_copy(update={"slack_signing_secret": unused})
        service = build_service(settings)
    handler = DeskSocketModeHandler(
        service.wsgi.app, app_token=settings.slack_app_token, concurrency=threads
    )
    try:
        handler.connect()
    except SlackApiError as exc:
        handler.close()
        service.close()
        error = exc.response.get("error") if exc.response is not None else str(exc)
        raise SettingsError(
            f"Slack refused SLACK_APP_TOKEN (apps.connections.open: {error})"
        ) from None
    except OSError as exc:  # no route to Slack: refused, unresolvable, timed out (URLError)
        handler.close()
        service.close()
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise SettingsError(
            f"Slack could not be reached at {settings.slack_api_url} (apps.connections.open: "
            f"{reason}); check the outbound network, HTTPS_PROXY and SLACK_API_URL"
        ) from None
    running = SocketModeService(service, handler)
    if port is not None:
        monitoring = MonitoringWsgi(service.wsgi, running.connected)
        try:
            running.monitor = ThreadedServer(monitoring, host, port).start()
        except OSError as exc:
            running.close()
            raise SettingsError(
                f"cannot serve /healthz and /metrics on {host}:{port} (--host/--port): "
                f"{exc.strerror or exc}"
            ) from None
    return running


def run_socket_mode(settings: Settings, host: str, port: int, threads: int) -> None:
    """`chatops serve --socket-mode`: connected until SIGTERM/SIGINT, then a graceful stop."""
    stopping = threading.Event()

    def stop(signum: int, _frame: Any) -> None:
        log.info("socket mode stopping (%s)", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    running = start_socket_mode(settings, host=host, port=port, threads=threads)
    tune_collector_for_serving()
    log.info(
        "socket mode: %s to Slack; /healthz and /metrics on http://%s:%s",
        "connected" if running.connected() else "connecting",
        host,
        port,
    )
    try:
        # a timed wait keeps the main thread responsive to signals on every platform
        while not stopping.wait(1):
            pass
    finally:
        running.close()
        log.info("socket mode stopped")
