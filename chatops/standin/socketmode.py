"""Slack's Socket Mode end of the stand-in: the app connects out, Slack pushes envelopes in.

:class:`SocketModeServer` adds ``apps.connections.open`` to a
:class:`~chatops.standin.webapi.SlackStandIn` (called with the app-level ``xapp-`` token, it
hands out a one-use ``ws://127.0.0.1:PORT/link/?ticket=...`` URL) and runs the WebSocket
server behind that URL. A connected app gets ``{"type": "hello", ...}``, then envelopes

    {"envelope_id": "...", "type": "slash_commands" | "interactive" | "events_api",
     "payload": {...}, "accepts_response_payload": true | false}

and answers each with an acknowledgement ``{"envelope_id": "...", "payload": {...}}`` (the
payload, when there is one, is what an HTTP app would have put in its response body: the
ephemeral reply to a command, a ``response_action`` for a modal).

:class:`SocketModeSender` is :class:`~chatops.standin.client.SlackSender` with the transport
swapped: the same slash commands, clicks, submissions and events, with the same payloads,
travel as envelopes instead of signed HTTP requests, and the acknowledgement comes back as the
:class:`~chatops.standin.client.Response` body. So every helper built on the sender (and the
tests' ``Desk`` helpers) works unchanged over Socket Mode.

The WebSocket protocol itself comes from the ``websockets`` package (its threaded server), a
test dependency; the rest of the stand-in needs only the standard library.
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from chatops.standin.client import Response, SlackSender
from chatops.standin.webapi import JSONDict, SlackStandIn, _ApiError

__all__ = ["Ack", "SocketModeSender", "SocketModeServer"]

#: Interaction types Slack lets the app answer in the acknowledgement (Slack sets
#: ``accepts_response_payload`` for these; button clicks are answered via response_url).
_ANSWERABLE_INTERACTIONS = frozenset({"view_submission", "block_suggestion"})


@dataclass
class Ack:
    """One envelope and the app's acknowledgement of it (``acked`` False: none came)."""

    envelope_id: str
    envelope: JSONDict
    payload: JSONDict | None = None
    acked: bool = False
    elapsed: float = 0.0


class SocketModeServer:
    """Socket Mode for a stand-in: ``apps.connections.open`` and the WebSocket server.

    Args:
        standin: the stand-in whose Web API gains ``apps.connections.open``.
        app_token: the only token ``apps.connections.open`` accepts (an app-level token).
        host / port: where the WebSocket server listens (default 127.0.0.1, a free port).
    """

    def __init__(
        self,
        standin: SlackStandIn,
        app_token: str = "xapp-1-A0APP-test",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.standin = standin
        self.app_token = app_token
        self.host = host
        self._requested_port = port
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._tickets: set[str] = set()
        self._connections: list[ServerConnection] = []  # oldest first
        self._pending: dict[str, Ack] = {}
        self._opened = 0  # connections ever opened (a reconnect opens a new one)
        standin.add_method("apps.connections.open", self._connections_open, token=app_token)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> SocketModeServer:
        """Listen on ``host`` and accept connections in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("SocketModeServer already started")
        # Slack's own client neither compresses nor needs our pings (it pings itself); a short
        # close timeout keeps stop() quick when the app has already gone.
        self._server = serve(
            self._serve_connection,
            self.host,
            self._requested_port,
            compression=None,
            ping_interval=None,
            close_timeout=2,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="slack-socket-mode", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection (``going away``) and the listening socket.  Idempotent."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> SocketModeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port (only after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("SocketModeServer is not started")
        return int(self._server.socket.getsockname()[1])

    # ---------------------------------------------------------------- connections

    def connections(self) -> int:
        """How many apps are connected now."""
        with self._cond:
            return len(self._connections)

    def opened(self) -> int:
        """How many connections were ever opened (a reconnect counts again)."""
        with self._cond:
            return self._opened

    def wait_connected(self, timeout: float = 10.0, count: int = 1) -> None:
        """Block until ``count`` connections are open; AssertionError after ``timeout``."""
        self._wait(lambda: len(self._connections) >= count, timeout, f"{count} connection(s)")

    def wait_disconnected(self, timeout: float = 10.0) -> None:
        """Block until no connection is open; AssertionError after ``timeout``."""
        self._wait(lambda: not self._connections, timeout, "every connection to close")

    def _wait(self, ready: Any, timeout: float, what: str) -> None:
        with self._cond:
            if not self._cond.wait_for(ready, timeout):
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; "
                    f"{len(self._connections)} open, {self._opened} ever opened"
                )

    def ask_to_reconnect(self, reason: str = "refresh_requested") -> None:
        """Send ``{"type": "disconnect"}`` as Slack does before it recycles a connection."""
        self._send_raw({"type": "disconnect", "reason": reason, "debug_info": {"host": "standin"}})

    # ---------------------------------------------------------------- envelopes

    def send(
        self,
        kind: str,
        payload: JSONDict,
        *,
        accepts_response_payload: bool | None = None,
        timeout: float = 10.0,
        extra: Mapping[str, Any] | None = None,
    ) -> Ack:
        """Send one envelope of ``kind`` (``slash_commands``, ``interactive``, ``events_api``)
        to the newest connection and wait up to ``timeout`` seconds for its acknowledgement.

        ``accepts_response_payload`` defaults to what Slack sets for that kind of payload.
        Raises AssertionError when no app is connected; an envelope nobody acknowledges in time
        comes back with ``acked`` False.
        """
        if accepts_response_payload is None:
            accepts_response_payload = kind == "slash_commands" or (
                kind == "interactive" and payload.get("type") in _ANSWERABLE_INTERACTIONS
            )
        envelope: JSONDict = {
            "envelope_id": str(uuid.uuid4()),
            "payload": copy.deepcopy(payload),
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
            **(extra or {}),
        }
        ack = Ack(envelope["envelope_id"], envelope)
        with self._cond:
            self._pending[ack.envelope_id] = ack
        started = time.monotonic()
        try:
            self._send_raw(envelope)
            with self._cond:
                self._cond.wait_for(lambda: ack.acked, timeout)
        finally:
            with self._cond:
                self._pending.pop(ack.envelope_id, None)
        ack.elapsed = time.monotonic() - started
        return ack

    def _send_raw(self, message: JSONDict) -> None:
        with self._cond:
            connection = self._connections[-1] if self._connections else None
        if connection is None:
            raise AssertionError("no app is connected to the Socket Mode server")
        connection.send(json.dumps(message))

    # ---------------------------------------------------------------- server side

    def _connections_open(self, args: JSONDict) -> JSONDict:
        if self._server is None:
            raise _ApiError("internal_error")
        ticket = secrets.token_hex(16)
        with self._cond:
            self._tickets.add(ticket)
        query = urllib.parse.urlencode({"ticket": ticket, "app_id": self.standin.app_id})
        return {"url": f"ws://{self.host}:{self.port}/link/?{query}"}

    def _serve_connection(self, connection: ServerConnection) -> None:
        """One app's connection: check the ticket, say hello, then read acknowledgements."""
        request = connection.request
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path if request else "").query)
        ticket = (query.get("ticket") or [""])[0]
        with self._cond:
            valid = ticket in self._tickets
            self._tickets.discard(ticket)  # a URL is good for one connection
        if not valid:
            connection.close(code=1008, reason="invalid ticket")
            return
        with self._cond:
            self._connections.append(connection)
            self._opened += 1
            number, open_now = self._opened, len(self._connections)
            self._cond.notify_all()
        try:
            connection.send(
                json.dumps(
                    {
                        "type": "hello",
                        "num_connections": open_now,
                        "debug_info": {
                            "host": f"standin-{number}",
                            "approximate_connection_time": 18060,
                        },
                        "connection_info": {"app_id": self.standin.app_id},
                    }
                )
            )
            for message in connection:
                self._on_message(message)
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                self._connections.remove(connection)
                self._cond.notify_all()

    def _on_message(self, message: str | bytes) -> None:
        try:
            document = json.loads(message)
        except (TypeError, ValueError):
            return  # Slack ignores what it cannot read; the envelope stays unacknowledged
        if not isinstance(document, dict):
            return
        with self._cond:
            ack = self._pending.get(str(document.get("envelope_id")))
            if ack is None or ack.acked:
                return
            payload = document.get("payload")
            ack.payload = payload if isinstance(payload, dict) else None
            ack.acked = True
            self._cond.notify_all()


class SocketModeSender(SlackSender):
    """:class:`SlackSender` over Socket Mode: payloads go out as envelopes and the
    acknowledgement's payload is the :class:`Response` body (empty for a bare ack).

    A ``Response`` has status 200 when the app acknowledged, 504 when it did not within
    ``envelope_timeout`` seconds (Slack would show the person an error after 3 s; slower
    acknowledgements are noted in ``Response.problems`` as over HTTP).
    """

    def __init__(
        self,
        server: SocketModeServer,
        *,
        envelope_timeout: float = 10.0,
        ack_timeout: float | None = 3.0,
    ) -> None:
        # Socket Mode requests are not signed: there is no request URL and no secret.
        super().__init__(f"ws://{server.host}", "", server.standin, ack_timeout=ack_timeout)
        self.server = server
        self.envelope_timeout = envelope_timeout

    def post(
        self,
        body: str | bytes,
        content_type: str,
        timestamp: str | int | None = None,
        signature: str | None = None,
        secret: str | None = None,
        headers: Mapping[str, str | None] | None = None,
        drop_headers: Iterable[str] = (),
    ) -> Response:
        """Events API documents (JSON) as ``events_api`` envelopes; a retry header becomes
        the envelope's ``retry_attempt``/``retry_reason``. Nothing else is sent raw."""
        if not content_type.startswith("application/json"):
            raise ValueError("Socket Mode sends payloads, not raw bodies: use post_form/payload")
        document = json.loads(body)
        if document.get("type") != "event_callback":
            raise ValueError(f"Socket Mode does not carry {document.get('type')!r} requests")
        lowered = {k.lower(): v for k, v in (headers or {}).items() if v is not None}
        retry = lowered.get("x-slack-retry-num")
        extra = {
            "retry_attempt": int(retry) if retry else 0,
            "retry_reason": lowered.get("x-slack-retry-reason", "") if retry else "",
        }
        return self._envelope("events_api", document, extra)

    def post_form(self, fields: Mapping[str, Any]) -> Response:
        """A slash command as a ``slash_commands`` envelope (the form fields as JSON)."""
        payload = {k: "" if v is None else str(v) for k, v in fields.items()}
        response = self._envelope("slash_commands", payload)
        response.sent = dict(fields)
        return response

    def post_payload(self, payload: JSONDict) -> Response:
        """An interaction (click, submission, shortcut) as an ``interactive`` envelope."""
        return self._envelope("interactive", payload)

    def post_json(self, document: JSONDict) -> Response:
        """An Events API callback as an ``events_api`` envelope."""
        return self.post(json.dumps(document), "application/json")

    def _envelope(
        self, kind: str, payload: JSONDict, extra: Mapping[str, Any] | None = None
    ) -> Response:
        ack = self.server.send(kind, payload, timeout=self.envelope_timeout, extra=extra)
        if not ack.acked:
            return Response(
                status=504,
                body="",
                headers={},
                elapsed=ack.elapsed,
                sent=payload,
                problems=[f"no acknowledgement within {self.envelope_timeout}s"],
            )
        body = json.dumps(ack.payload) if ack.payload else ""
        return Response(
            status=200,
            body=body,
            headers={"Content-Type": "application/json"},
            elapsed=ack.elapsed,
            sent=payload,
        )
