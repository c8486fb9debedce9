"""The Web API client: slack_sdk's WebClient, keeping its connections to Slack open.

slack_sdk's WebClient opens a new connection for every call (urllib sends
`Connection: close`): against slack.com that is a TCP and a TLS handshake per message, several
round trips before the request is even sent, and most of a delivery's CPU on the desk's side.
`KeepAliveWebClient` sends the same requests over one persistent HTTP/1.1 connection per
thread and host instead (the client is shared by the listener and delivery threads, and an
`http.client` connection is not thread-safe).

Everything above the socket is slack_sdk's own: request building, the response parsing,
`SlackApiError`, the retry handlers (429 `Retry-After`, connection errors). Error behaviour
matches urllib's, which that code expects: a status outside 2xx is raised as
`urllib.error.HTTPError`, and a failure to connect or send as `urllib.error.URLError`.
Redirects are not followed (urllib would; Slack's Web API does not send them): a 3xx is an
error like any other status outside 2xx.

A kept connection is not reused blindly. One idle for longer than `IDLE_REUSE_SECONDS`
is closed first (load balancers drop idle connections without telling anyone, and Slack's do
after about a minute), and one whose socket has become readable while idle is closed too: the
server has either closed it or has nothing legitimate to say before a request. Either way the
request goes out on a fresh connection and is never sent twice. A connection the server closes
between that check and the request fails the call like any dropped connection; slack_sdk's
connection-error retry handler then tries once more, as it does with urllib.

A proxy (`proxy=` or the `HTTPS_PROXY` environment variable) falls back to slack_sdk's urllib
path, connection per call.
"""

from __future__ import annotations

import http.client
import io
import os
import select
import threading
import time
import urllib.parse
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request

from slack_sdk import WebClient

# Reuse a connection only if it was used this recently; Slack's edge closes idle ones after
# about a minute, and a request racing that close would fail.
IDLE_REUSE_SECONDS = 30.0


class _KeptConnection:
    __slots__ = ("connection", "last_used")

    def __init__(self, connection: http.client.HTTPConnection) -> None:
        self.connection = connection
        self.last_used = time.monotonic()


def _closed_by_server(connection: http.client.HTTPConnection) -> bool:
    """True when an idle connection's socket is readable: the server closed it (EOF) or sent
    something unasked, and a request on it would fail or read a stale answer."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        # poll, not select: select cannot take a descriptor numbered 1024 or more
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):  # closed or unusable descriptor
        return True


class KeepAliveWebClient(WebClient):
    """A WebClient whose calls reuse one HTTP/1.1 connection per thread and host."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept = threading.local()

    def close_connections(self) -> None:
        """Close the calling thread's kept connections (the others close with their threads)."""
        kept: dict[tuple[str, str, int], _KeptConnection] = getattr(self._kept, "by_host", {})
        for entry in kept.values():
            entry.connection.close()
        kept.clear()

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        parts = urllib.parse.urlsplit(url)
        if self.proxy is not None or parts.scheme not in ("http", "https") or not parts.hostname:
            return super()._perform_urllib_http_request_internal(url, req)  # type: ignore[no-any-return]
        key, entry = self._connection_for(parts)
        connection = entry.connection
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        headers = {name: value for name, value in req.header_items()}
        headers.pop("Connection", None)
        try:
            try:
                connection.request("POST", path, body=req.data, headers=headers)
            except OSError as exc:  # as urllib reports a failure to connect or send
                raise URLError(exc) from exc
            response = connection.getresponse()
            raw = response.read()
        except BaseException:
            # Whatever went wrong (a refused connection, a header value http.client refuses,
            # a timeout mid-answer, an interrupt), the connection may hold half a request or
            # an unread answer: it is dropped, and the next call opens a new one.
            self._drop(key, entry)
            raise
        entry.last_used = time.monotonic()
        if not 200 <= response.status < 300:
            body = io.BytesIO(raw)
            raise HTTPError(url, response.status, response.reason, response.headers, body)
        if response.headers.get_content_type() == "application/gzip":
            return {"status": response.status, "headers": response.headers, "body": raw}
        charset = response.headers.get_content_charset() or "utf-8"
        return {"status": response.status, "headers": response.headers, "body": raw.decode(charset)}

    def _drop(self, key: tuple[str, str, int], entry: _KeptConnection) -> None:
        entry.connection.close()
        kept = getattr(self._kept, "by_host", {})
        if kept.get(key) is entry:
            del kept[key]

    def _connection_for(
        self, parts: urllib.parse.SplitResult
    ) -> tuple[tuple[str, str, int], _KeptConnection]:
        kept: dict[tuple[str, str, int], _KeptConnection] | None = getattr(
            self._kept, "by_host", None
        )
        if kept is None or self._kept.pid != os.getpid():
            # A forked child inherits its parent's sockets: two processes talking on one
            # connection would read each other's answers. The child opens its own.
            kept = self._kept.by_host = {}
            self._kept.pid = os.getpid()
        default_port = 443 if parts.scheme == "https" else 80
        key = (parts.scheme, parts.hostname or "", parts.port or default_port)
        entry = kept.get(key)
        now = time.monotonic()
        if entry is not None and (
            now - entry.last_used > IDLE_REUSE_SECONDS or _closed_by_server(entry.connection)
        ):
            entry.connection.close()
            entry = None
        if entry is None:
            connection: http.client.HTTPConnection
            if parts.scheme == "https":
                connection = http.client.HTTPSConnection(
                    key[1], key[2], timeout=self.timeout, context=self.ssl
                )
            else:
                connection = http.client.HTTPConnection(key[1], key[2], timeout=self.timeout)
            entry = kept[key] = _KeptConnection(connection)
        return key, entry
