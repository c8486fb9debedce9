"""A local stand-in for the Slack Web API.

:class:`SlackStandIn` is a small HTTP server (standard library only) that answers the Web API
methods this product calls, records every call, and keeps the state a person would see in Slack:
channel messages (with threads), ephemeral messages, the modal stack per user, and the published
App Home per user.  It also hosts ``response_url`` endpoints and can inject failures (429 / 500 /
``ok: false``) and latency.

Point ``slack_sdk.WebClient(token=..., base_url=standin.api_url)`` at it.  Everything is
thread-safe: the server answers on its own threads while tests read state from theirs.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import secrets
import socket
import sys
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "SlackStandIn",
    "WebApiCall",
    "iter_interactive_elements",
    "validate_blocks",
    "validate_view",
]

JSONDict = dict[str, Any]

#: Web API arguments that carry JSON (sent as JSON strings when the body is form-encoded).
JSON_ARGS = ("view", "blocks", "attachments", "metadata", "user_auth_blocks")

#: Element types that are not interactive when they appear as a section accessory.
_NON_INTERACTIVE = frozenset({"image", "plain_text", "mrkdwn"})

_MODAL_STACK_LIMIT = 3
_MAX_MESSAGE_TEXT = 40_000
_MAX_VIEW_BYTES = 250_000


# --------------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------------


@dataclass
class WebApiCall:
    """One request the stand-in received (Web API method call or ``response_url`` post).

    ``args`` holds the arguments with JSON strings (``view``, ``blocks`` ...) already parsed and
    without ``token``.  ``failed`` is true when the answer was not a success (HTTP error or
    ``ok: false``); ``injected`` is true when the failure came from :meth:`SlackStandIn.fail_next`.
    ``at`` is when the request arrived (wall clock, ``time.time()``).
    """

    method: str
    args: JSONDict
    token: str | None
    at: float
    status: int = 200
    response: Any = None
    failed: bool = False
    injected: bool = False
    url: str = ""

    @property
    def ok(self) -> bool:
        """True when the call succeeded (HTTP 200 and, for Web API calls, ``ok: true``)."""
        return not self.failed

    @property
    def error(self) -> str | None:
        """The ``error`` string of an ``ok: false`` answer, if any."""
        if isinstance(self.response, dict):
            err = self.response.get("error")
            return err if isinstance(err, str) else None
        return None

    def summary(self) -> str:
        """A one-line description, used in assertion messages."""
        keys = ", ".join(sorted(self.args))
        outcome = "ok" if self.ok else f"FAILED status={self.status} error={self.error}"
        return f"{self.method}({keys}) -> {outcome}"


@dataclass
class _Failure:
    status: int = 429
    retry_after: int | None = 1
    error: str | None = None


class _ApiError(Exception):
    """Raised by method handlers to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []

    def to_response(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error": self.error}
        if self.messages:
            body["response_metadata"] = {"messages": list(self.messages)}
        return body


# --------------------------------------------------------------------------------------------
# Block Kit helpers (shared with the client)
# --------------------------------------------------------------------------------------------


def iter_interactive_elements(blocks: Any) -> Iterator[tuple[JSONDict, JSONDict]]:
    """Yield ``(block, element)`` for every interactive element in a list of blocks.

    Covers ``actions`` block elements, ``section`` accessories (except images) and ``input``
    block elements.
    """
    if not isinstance(blocks, list):
        return
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "actions":
            for element in block.get("elements") or []:
                if isinstance(element, dict):
                    yield block, element
        elif kind == "section":
            accessory = block.get("accessory")
            if isinstance(accessory, dict) and accessory.get("type") not in _NON_INTERACTIVE:
                yield block, accessory
        elif kind == "input":
            element = block.get("element")
            if isinstance(element, dict):
                yield block, element


def _text_errors(
    obj: Any,
    ptr: str,
    *,
    max_len: int,
    plain_only: bool = False,
    required: bool = True,
) -> list[str]:
    if obj is None:
        return [f"[ERROR] missing required field [json-pointer:{ptr}]"] if required else []
    if not isinstance(obj, dict):
        return [f"[ERROR] must be a text object [json-pointer:{ptr}]"]
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in allowed:
        return [f"[ERROR] must be one of {list(allowed)} [json-pointer:{ptr}/type]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"[ERROR] must be more than 0 characters [json-pointer:{ptr}/text]"]
    if len(text) > max_len:
        return [f"[ERROR] must be less than {max_len + 1} characters [json-pointer:{ptr}/text]"]
    return []


def _str_errors(value: Any, ptr: str, *, max_len: int) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, str):
        return [f"[ERROR] must be a string [json-pointer:{ptr}]"]
    if len(value) > max_len:
        return [f"[ERROR] must be less than {max_len + 1} characters [json-pointer:{ptr}]"]
    return []


_OPTION_LIMITS = {
    "static_select": 100,
    "multi_static_select": 100,
    "radio_buttons": 10,
    "checkboxes": 10,
    "overflow": 5,
}


def _option_errors(option: Any, ptr: str, *, plain_only: bool) -> list[str]:
    if not isinstance(option, dict):
        return [f"[ERROR] must be an option object [json-pointer:{ptr}]"]
    errors = _text_errors(option.get("text"), f"{ptr}/text", max_len=75, plain_only=plain_only)
    value = option.get("value")
    if not isinstance(value, str) or not value:
        errors.append(f"[ERROR] must be more than 0 characters [json-pointer:{ptr}/value]")
    else:
        errors += _str_errors(value, f"{ptr}/value", max_len=150)
    errors += _text_errors(
        option.get("description"), f"{ptr}/description", max_len=75, required=False
    )
    return errors


def _element_errors(element: Any, ptr: str) -> list[str]:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return [f"[ERROR] must be an element object with a type [json-pointer:{ptr}]"]
    kind = element["type"]
    errors = _str_errors(element.get("action_id"), f"{ptr}/action_id", max_len=255)
    errors += _text_errors(
        element.get("placeholder"),
        f"{ptr}/placeholder",
        max_len=150,
        plain_only=True,
        required=False,
    )
    if kind == "button":
        errors += _text_errors(element.get("text"), f"{ptr}/text", max_len=75, plain_only=True)
        errors += _str_errors(element.get("value"), f"{ptr}/value", max_len=2000)
        errors += _str_errors(element.get("url"), f"{ptr}/url", max_len=3000)
        style = element.get("style")
        if style is not None and style not in ("primary", "danger"):
            errors.append(f"[ERROR] must be one of primary, danger [json-pointer:{ptr}/style]")
    elif kind in _OPTION_LIMITS:
        plain_only = kind in ("static_select", "multi_static_select", "overflow")
        options = element.get("options")
        groups = element.get("option_groups")
        offered: list[Any] = []
        if options is None and groups is None:
            errors.append(
                f"[ERROR] must provide either options or option_groups [json-pointer:{ptr}]"
            )
        if options is not None:
            if not isinstance(options, list) or not options:
                errors.append(f"[ERROR] must be a non-empty array [json-pointer:{ptr}/options]")
            else:
                if len(options) > _OPTION_LIMITS[kind]:
                    errors.append(
                        f"[ERROR] must be less than {_OPTION_LIMITS[kind] + 1} items "
                        f"[json-pointer:{ptr}/options]"
                    )
                for i, option in enumerate(options):
                    errors += _option_errors(option, f"{ptr}/options/{i}", plain_only=plain_only)
                offered += options
        if groups is not None:
            if not isinstance(groups, list) or not groups or len(groups) > 100:
                errors.append(f"[ERROR] must be 1-100 groups [json-pointer:{ptr}/option_groups]")
            else:
                for g, group in enumerate(groups):
                    gptr = f"{ptr}/option_groups/{g}"
                    if not isinstance(group, dict):
                        errors.append(f"[ERROR] must be an option group [json-pointer:{gptr}]")
                        continue
                    errors += _text_errors(
                        group.get("label"), f"{gptr}/label", max_len=75, plain_only=True
                    )
                    for i, option in enumerate(group.get("options") or []):
                        errors += _option_errors(option, f"{gptr}/options/{i}", plain_only=True)
                        offered.append(option)
        offered_values = {o.get("value") for o in offered if isinstance(o, dict)}
        initial = element.get("initial_option")
        if isinstance(initial, dict) and initial.get("value") not in offered_values:
            errors.append(
                f"[ERROR] must match one of the options [json-pointer:{ptr}/initial_option]"
            )
        for i, init in enumerate(element.get("initial_options") or []):
            if isinstance(init, dict) and init.get("value") not in offered_values:
                errors.append(
                    "[ERROR] must match one of the options "
                    f"[json-pointer:{ptr}/initial_options/{i}]"
                )
    elif kind == "plain_text_input":
        for key in ("max_length", "min_length"):
            value = element.get(key)
            if value is not None and (not isinstance(value, int) or not 0 <= value <= 3000):
                errors.append(f"[ERROR] must be between 0 and 3000 [json-pointer:{ptr}/{key}]")
        errors += _str_errors(element.get("initial_value"), f"{ptr}/initial_value", max_len=3000)
    return errors


_BLOCK_LIMITS = {"message": 50, "modal": 100, "home": 100}


def validate_blocks(blocks: Any, *, surface: str = "message", ptr: str = "/blocks") -> list[str]:
    """Check blocks against the Block Kit limits Slack enforces; return Slack-style messages.

    ``surface`` is ``"message"``, ``"modal"`` or ``"home"`` (messages allow 50 blocks, views 100).
    An empty list means the blocks would be accepted.
    """
    if not isinstance(blocks, list):
        return [f"[ERROR] must be an array [json-pointer:{ptr}]"]
    limit = _BLOCK_LIMITS.get(surface, 50)
    errors: list[str] = []
    if len(blocks) > limit:
        errors.append(f"[ERROR] must be less than {limit + 1} items [json-pointer:{ptr}]")
    seen_block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        bptr = f"{ptr}/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"[ERROR] must be a block object with a type [json-pointer:{bptr}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not block_id or len(block_id) > 255:
                errors.append(f"[ERROR] must be 1-255 characters [json-pointer:{bptr}/block_id]")
            elif block_id in seen_block_ids:
                errors.append(f"[ERROR] duplicate block_id {block_id!r} [json-pointer:{bptr}]")
            else:
                seen_block_ids.add(block_id)
        kind = block["type"]
        if kind == "section":
            if block.get("text") is None and block.get("fields") is None:
                errors.append(f"[ERROR] must provide either text or fields [json-pointer:{bptr}]")
            errors += _text_errors(block.get("text"), f"{bptr}/text", max_len=3000, required=False)
            fields = block.get("fields")
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > 10:
                    errors.append(f"[ERROR] must be at most 10 items [json-pointer:{bptr}/fields]")
                else:
                    for f, fld in enumerate(fields):
                        errors += _text_errors(fld, f"{bptr}/fields/{f}", max_len=2000)
            accessory = block.get("accessory")
            if isinstance(accessory, dict) and accessory.get("type") not in _NON_INTERACTIVE:
                errors += _element_errors(accessory, f"{bptr}/accessory")
        elif kind == "header":
            errors += _text_errors(block.get("text"), f"{bptr}/text", max_len=150, plain_only=True)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                errors.append(f"[ERROR] must be 1-10 items [json-pointer:{bptr}/elements]")
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
                errors.append(f"[ERROR] must be 1-25 items [json-pointer:{bptr}/elements]")
            else:
                action_ids: set[str] = set()
                for e, element in enumerate(elements):
                    errors += _element_errors(element, f"{bptr}/elements/{e}")
                    action_id = element.get("action_id") if isinstance(element, dict) else None
                    if isinstance(action_id, str):
                        if action_id in action_ids:
                            errors.append(
                                f"[ERROR] duplicate action_id {action_id!r} "
                                f"[json-pointer:{bptr}/elements/{e}]"
                            )
                        action_ids.add(action_id)
        elif kind == "input":
            errors += _text_errors(
                block.get("label"), f"{bptr}/label", max_len=2000, plain_only=True
            )
            errors += _text_errors(
                block.get("hint"), f"{bptr}/hint", max_len=2000, plain_only=True, required=False
            )
            if block.get("element") is None:
                errors.append(f"[ERROR] missing required field: element [json-pointer:{bptr}]")
            else:
                errors += _element_errors(block.get("element"), f"{bptr}/element")
    return errors


def validate_view(view: Any, *, ptr: str = "/view") -> list[str]:
    """Check a modal or home view the way ``views.open``/``views.publish`` do."""
    if not isinstance(view, dict):
        return [f"[ERROR] must be a view object [json-pointer:{ptr}]"]
    kind = view.get("type")
    if kind not in ("modal", "home"):
        return [f"[ERROR] must be one of modal, home [json-pointer:{ptr}/type]"]
    errors: list[str] = []
    if kind == "modal":
        errors += _text_errors(view.get("title"), f"{ptr}/title", max_len=24, plain_only=True)
        for key in ("close", "submit"):
            errors += _text_errors(
                view.get(key), f"{ptr}/{key}", max_len=24, plain_only=True, required=False
            )
        blocks = view.get("blocks")
        has_input = isinstance(blocks, list) and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        )
        if has_input and view.get("submit") is None:
            errors.append(f"[ERROR] missing required field: submit [json-pointer:{ptr}]")
    errors += _str_errors(view.get("private_metadata"), f"{ptr}/private_metadata", max_len=3000)
    errors += _str_errors(view.get("callback_id"), f"{ptr}/callback_id", max_len=255)
    errors += _str_errors(view.get("external_id"), f"{ptr}/external_id", max_len=255)
    errors += validate_blocks(view.get("blocks", []), surface=kind, ptr=f"{ptr}/blocks")
    return errors


# --------------------------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------------------------


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _tz_details(tz: str) -> tuple[int, str]:
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return 0, tz
    now = datetime.now(UTC).astimezone(zone)
    offset = now.utcoffset()
    return int(offset.total_seconds()) if offset else 0, now.tzname() or tz


class _Server(ThreadingHTTPServer):
    """Threaded server with a listen backlog big enough for bursts of concurrent calls.

    Connections stay open between calls (HTTP/1.1 keep-alive, as slack.com's do), so the
    server keeps track of them: a stopped stand-in closes them all, and a client that kept
    one finds Slack gone rather than talking to a server that has stopped.
    """

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self.connections_opened = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
            self.connections_opened += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            open_now, self._open = self._open, set()
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """HTTP plumbing; all logic lives in :class:`SlackStandIn`."""

    standin: SlackStandIn
    server_version = "SlackStandIn/1.0"
    protocol_version = "HTTP/1.1"  # keep-alive (`keep_alive`): every answer has a length
    timeout = 120  # an idle kept connection is let go after this long
    # The headers and the body are two writes; with Nagle's algorithm on, the body would
    # wait for the client's delayed ACK of the headers (40 ms) on a kept connection.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        self.standin._handle_http(self, "POST")

    def do_GET(self) -> None:
        self.standin._handle_http(self, "GET")

    def log_message(self, format: str, *args: Any) -> None:
        return


# --------------------------------------------------------------------------------------------
# The stand-in
# --------------------------------------------------------------------------------------------


class SlackStandIn:
    """A fake Slack workspace: Web API server, ``response_url`` host and visible state.

    Args:
        team_id: workspace id reported by ``auth.test``/``team.info`` and used in payloads.
        bot_user_id: the app's bot user (``auth.test`` ``user_id``, author of bot messages).
        bot_token: the only token accepted in ``Authorization: Bearer ...``.
        users: initial users, ``{user_id: {"name": ..., "real_name": ..., "tz": ..., ...}}``
            (keyword arguments of :meth:`add_user`).
        team_name / team_domain / bot_id / app_id: identity details used in answers.
        trigger_ttl: seconds a trigger id stays usable (Slack: 3).
        response_url_ttl / response_url_max_uses: validity of response URLs (Slack: 30 min, 5).
        clock: monotonic clock used for trigger and response_url expiry (inject a fake in tests).
        validate: check blocks and views against Block Kit limits like Slack does.
        record_limit: keep only the newest N recorded calls (for long benchmark runs).
        keep_alive: keep connections open between calls (HTTP/1.1, as slack.com does); False
            answers HTTP/1.0 and closes each connection after its call.
    """

    def __init__(
        self,
        team_id: str = "T0001",
        bot_user_id: str = "UBOT",
        bot_token: str = "xoxb-test",
        users: dict[str, dict[str, Any]] | None = None,
        *,
        team_name: str = "Acme",
        team_domain: str = "acme",
        bot_id: str = "B0BOT",
        app_id: str = "A0APP",
        host: str = "127.0.0.1",
        port: int = 0,
        trigger_ttl: float = 3.0,
        response_url_ttl: float = 1800.0,
        response_url_max_uses: int = 5,
        clock: Callable[[], float] = time.monotonic,
        validate: bool = True,
        record_limit: int | None = None,
        keep_alive: bool = True,
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_token = bot_token
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_id = bot_id
        self.app_id = app_id
        self.host = host
        self.keep_alive = keep_alive
        self.trigger_ttl = trigger_ttl
        self.response_url_ttl = response_url_ttl
        self.response_url_max_uses = response_url_max_uses
        self.clock = clock
        self.validate = validate
        self.record_limit = record_limit

        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._calls: list[WebApiCall] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._delays: dict[str, float] = {}
        self._method_tokens: dict[str, str] = {}  # methods taking another token than the bot's

        self._last_ts_us = 0
        self._id_counter = 0
        self._users: dict[str, JSONDict] = {}
        self._channels: dict[str, JSONDict] = {}
        self._messages: dict[str, list[JSONDict]] = {}
        self._ephemerals: dict[str, list[JSONDict]] = {}
        self._view_stacks: dict[str, list[JSONDict]] = {}
        self._home_views: dict[str, JSONDict] = {}
        self._views_by_id: dict[str, tuple[str, JSONDict]] = {}
        self._triggers: dict[str, JSONDict] = {}
        self._hooks: dict[str, JSONDict] = {}
        self._open_dms: set[str] = set()

        self._methods: dict[str, Callable[[JSONDict], JSONDict]] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "team.info": self._team_info,
        }

        self.add_user(bot_user_id, name="chatops", real_name="ChatOps", is_bot=True)
        for user_id, spec in (users or {}).items():
            self.add_user(user_id, **spec)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> SlackStandIn:
        """Bind ``host`` on a free port (unless one was given) and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("SlackStandIn already started")
        handler = type(
            "_BoundHandler",
            (_Handler,),
            {"standin": self, "protocol_version": "HTTP/1.1" if self.keep_alive else "HTTP/1.0"},
        )
        server = _Server((self.host, self._requested_port), handler)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="slack-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port.  Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port (only after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("SlackStandIn is not started")
        return int(self._server.server_address[1])

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted since :meth:`start` (clients keep them open between
        calls, so this counts connections, not calls)."""
        if self._server is None:
            raise RuntimeError("SlackStandIn is not started")
        return self._server.connections_opened

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Web API base URL with trailing slash, for ``WebClient(base_url=...)``."""
        return f"{self.base_url}/api/"

    # ---------------------------------------------------------------- configuration

    def add_user(
        self,
        user_id: str,
        name: str | None = None,
        real_name: str | None = None,
        tz: str = "UTC",
        tz_offset: int | None = None,
        *,
        email: str | None = None,
        is_bot: bool = False,
        is_admin: bool = False,
        deleted: bool = False,
        **extra: Any,
    ) -> JSONDict:
        """Register (or replace) a workspace member; returns the Slack user object.

        ``tz_offset`` defaults to the current UTC offset of ``tz`` in seconds; ``email``
        defaults to ``<name>@example.com`` for humans.  ``extra`` keys are merged into the user
        object (a ``profile`` dict is merged into the profile).
        """
        name = name or user_id.lower()
        real_name = real_name if real_name is not None else name
        offset, label = _tz_details(tz)
        if tz_offset is not None:
            offset = tz_offset
        if email is None and not is_bot:
            email = f"{name}@example.com"
        profile: JSONDict = {
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": name,
            "display_name_normalized": name,
            "team": self.team_id,
        }
        if email:
            profile["email"] = email
        if is_bot:
            profile["bot_id"] = self.bot_id if user_id == self.bot_user_id else f"B{user_id}"
        user: JSONDict = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": deleted,
            "real_name": real_name,
            "tz": tz,
            "tz_label": label,
            "tz_offset": offset,
            "profile": profile,
            "is_admin": is_admin,
            "is_owner": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": int(time.time()),
        }
        extra_profile = extra.pop("profile", None)
        user.update(extra)
        if isinstance(extra_profile, dict):
            profile.update(extra_profile)
        with self._lock:
            self._users[user_id] = user
        return copy.deepcopy(user)

    def add_channel(self, channel_id: str, name: str, *, is_private: bool = False) -> None:
        """Give a channel a name (used for ``#name`` lookups and in interaction payloads)."""
        with self._lock:
            self._channels[channel_id] = {"id": channel_id, "name": name, "is_private": is_private}

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: int | None = 1,
        times: int = 1,
        *,
        error: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail.

        * ``status=429`` (default): HTTP 429, ``Retry-After: retry_after``, body
          ``{"ok": false, "error": "ratelimited"}``.
        * ``status=500`` (or any other HTTP status): that status with ``ok: false``.
        * ``error="channel_not_found"``: HTTP 200 with ``{"ok": false, "error": ...}``.

        ``method`` may also be ``"response_url"``.  Rules queue up in order.
        """
        rule = _Failure(status=200 if error else status, retry_after=retry_after, error=error)
        with self._lock:
            self._failures.setdefault(method, []).extend(rule for _ in range(times))

    def add_method(
        self, method: str, handler: Callable[[JSONDict], JSONDict], *, token: str | None = None
    ) -> None:
        """Answer one more Web API method (e.g. Socket Mode's ``apps.connections.open``).

        ``handler`` gets the arguments and returns the answer's fields (``ok`` is added) or
        raises like the built-in methods.  With ``token`` the method takes that token (an
        app-level ``xapp-`` token) instead of the bot token; each refuses the other's token with
        ``not_allowed_token_type``, as Slack does.
        """
        with self._lock:
            self._methods[method] = handler
            if token is not None:
                self._method_tokens[method] = token

    def delay(self, method: str, seconds: float) -> None:
        """Answer ``method`` (or ``"*"`` for every method) after ``seconds``; 0 removes it."""
        with self._lock:
            if seconds > 0:
                self._delays[method] = seconds
            else:
                self._delays.pop(method, None)

    # ---------------------------------------------------------------- recording

    def calls(self, method: str | None = None) -> list[WebApiCall]:
        """Recorded calls, oldest first, optionally only those of ``method``."""
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def reset(self, *, state: bool = False) -> None:
        """Forget recorded calls, pending :meth:`fail_next` rules and :meth:`delay` settings.

        With ``state=True`` also forget messages, ephemerals, views, triggers and response URLs
        (users and channel names stay).
        """
        with self._lock:
            self._calls.clear()
            self._failures.clear()
            self._delays.clear()
            if state:
                self._messages.clear()
                self._ephemerals.clear()
                self._view_stacks.clear()
                self._home_views.clear()
                self._views_by_id.clear()
                self._triggers.clear()
                self._hooks.clear()
                self._open_dms.clear()

    def wait_for(
        self,
        method: str | None,
        predicate: Callable[[WebApiCall], bool] = lambda call: True,
        timeout: float = 5.0,
        count: int = 1,
    ) -> list[WebApiCall]:
        """Block until at least ``count`` calls of ``method`` satisfy ``predicate``.

        Returns all matching calls.  Raises ``AssertionError`` listing what was received if the
        timeout passes first.  ``method=None`` matches any method.  A predicate raising
        ``KeyError``/``IndexError``/``TypeError``/``AttributeError`` counts as no match.
        """
        deadline = time.monotonic() + timeout

        def matches(call: WebApiCall) -> bool:
            if method is not None and call.method != method:
                return False
            try:
                return bool(predicate(call))
            except (KeyError, IndexError, TypeError, AttributeError):
                return False  # e.g. predicate reads an argument this call does not have

        with self._cond:
            while True:
                matched = [c for c in self._calls if matches(c)]
                if len(matched) >= count:
                    return matched
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    shown = self._calls[-50:]
                    received = "\n  ".join(c.summary() for c in shown) or "(nothing)"
                    if len(self._calls) > len(shown):
                        received = f"... {len(self._calls) - len(shown)} earlier\n  " + received
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {count} matching "
                        f"{method or 'call'}(s); {len(matched)} matched. Received:\n  {received}"
                    )
                self._cond.wait(remaining)

    def _record(self, call: WebApiCall) -> None:
        with self._cond:
            self._calls.append(call)
            if self.record_limit is not None and len(self._calls) > self.record_limit:
                del self._calls[: len(self._calls) - self.record_limit]
            self._cond.notify_all()

    # ---------------------------------------------------------------- ids, triggers, hooks

    def next_ts(self) -> str:
        """A fresh message timestamp; strictly increasing and unique for this stand-in."""
        with self._lock:
            now_us = int(time.time() * 1_000_000)
            self._last_ts_us = max(now_us, self._last_ts_us + 1)
            us = self._last_ts_us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def _new_id(self, prefix: str, width: int = 10) -> str:
        with self._lock:
            self._id_counter += 1
            n = self._id_counter
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        out = ""
        while n:
            n, r = divmod(n, 36)
            out = digits[r] + out
        return prefix + out.rjust(width, "0")

    def _auto_id(self) -> str:
        return self._new_id("", width=5)

    def issue_trigger_id(self, user_id: str) -> str:
        """Issue a trigger id for ``user_id`` (usable once, within ``trigger_ttl`` seconds)."""
        trigger_id = f"{int(time.time())}.{self.team_id}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger_id] = {"user": user_id, "issued": self.clock(), "used": False}
        return trigger_id

    def new_response_url(
        self,
        user_id: str | None = None,
        channel_id: str | None = None,
        *,
        message_ts: str | None = None,
        is_ephemeral: bool = False,
    ) -> str:
        """Create a ``response_url`` hosted here.

        Ephemeral responses posted to it go to ``user_id``'s ephemerals in ``channel_id``.
        ``message_ts``/``is_ephemeral`` name the message the interaction came from, which
        ``replace_original``/``delete_original`` act on.
        """
        hook_id = secrets.token_hex(12)
        with self._lock:
            self._hooks[hook_id] = {
                "user": user_id,
                "channel": channel_id,
                "message_ts": message_ts,
                "is_ephemeral": is_ephemeral,
                "issued": self.clock(),
                "uses": 0,
                "last_ts": None,
            }
        return f"{self.base_url}/response/{hook_id}"

    # ---------------------------------------------------------------- state accessors

    def dm_channel(self, user_id: str) -> str:
        """The stable id of the bot's DM channel with ``user_id``."""
        return "D" + user_id

    def channel_name(self, channel_id: str) -> str:
        """The channel's name as Slack would put it in payloads."""
        with self._lock:
            known = self._channels.get(channel_id)
        if known:
            return str(known["name"])
        if channel_id.startswith("D"):
            return "directmessage"
        return channel_id.lower().removeprefix("c_")

    def user(self, user_id: str) -> JSONDict | None:
        """The Slack user object for ``user_id`` (a copy), or None."""
        with self._lock:
            user = self._users.get(user_id)
            return copy.deepcopy(user) if user else None

    def messages(self, channel: str, thread_ts: str | None = None) -> list[JSONDict]:
        """Messages in ``channel`` oldest first (copies).

        Without ``thread_ts`` every message is returned (top-level and thread replies); with it,
        the thread parent followed by its replies.
        """
        channel = self.resolve_channel(channel)
        with self._lock:
            items = self._messages.get(channel, [])
            if thread_ts is not None:
                items = [
                    m for m in items if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts
                ]
            return copy.deepcopy(items)

    def message(self, channel: str, ts: str) -> JSONDict:
        """The current content of message ``ts`` in ``channel``; ``KeyError`` if there is none."""
        channel = self.resolve_channel(channel)
        with self._lock:
            found = self._find_message(channel, ts)
            if found is None:
                have = [m["ts"] for m in self._messages.get(channel, [])]
                raise KeyError(f"no message ts={ts} in channel {channel} (messages there: {have})")
            return copy.deepcopy(found)

    def ephemerals(self, user: str, channel: str | None = None) -> list[JSONDict]:
        """Ephemeral messages shown to ``user`` (optionally only in ``channel``), oldest first.

        Each has ``channel``, ``ts``, ``text``, ``blocks`` and ``source`` (``chat.postEphemeral``,
        ``response_url`` or ``ack``).
        """
        with self._lock:
            items = self._ephemerals.get(user, [])
            if channel is not None:
                items = [e for e in items if e.get("channel") == channel]
            return copy.deepcopy(items)

    def open_view(self, user: str) -> JSONDict | None:
        """The modal on top of ``user``'s stack (a copy), or None if no modal is open."""
        with self._lock:
            stack = self._view_stacks.get(user) or []
            return copy.deepcopy(stack[-1]) if stack else None

    def view_stack(self, user: str) -> list[JSONDict]:
        """All modals open for ``user``, root first."""
        with self._lock:
            return copy.deepcopy(self._view_stacks.get(user) or [])

    def home_view(self, user: str) -> JSONDict | None:
        """The App Home view published for ``user``, or None."""
        with self._lock:
            view = self._home_views.get(user)
            return copy.deepcopy(view) if view else None

    def view(self, view_id: str) -> JSONDict | None:
        """A live (open modal or published home) view by id, or None."""
        with self._lock:
            entry = self._views_by_id.get(view_id)
            return copy.deepcopy(entry[1]) if entry else None

    # ---------------------------------------------------------------- state mutators (used by
    # the client that plays Slack, and by demos seeding a workspace)

    def add_message(
        self,
        channel: str,
        text: str = "",
        *,
        user: str,
        blocks: list[JSONDict] | None = None,
        thread_ts: str | None = None,
        **extra: Any,
    ) -> JSONDict:
        """Store a message written by ``user`` (a person typing in Slack); returns it."""
        channel = self.resolve_channel(channel)
        message: JSONDict = {"type": "message", "user": user, "text": text, "team": self.team_id}
        if blocks is not None:
            message["blocks"] = self._normalize_blocks(blocks)
        message.update(extra)
        with self._lock:
            return copy.deepcopy(self._store_message(channel, message, thread_ts))

    def set_view_state(self, view_id: str, values: dict[str, dict[str, JSONDict]]) -> None:
        """Merge typed-in element state (``{block_id: {action_id: state}}``) into a live view."""
        with self._lock:
            entry = self._views_by_id.get(view_id)
            if entry is None:
                raise KeyError(f"no live view {view_id}")
            state = entry[1].setdefault("state", {}).setdefault("values", {})
            for block_id, actions in values.items():
                state.setdefault(block_id, {}).update(copy.deepcopy(actions))

    def close_view(self, user: str, *, clear: bool = False) -> JSONDict | None:
        """Close the top modal (or all with ``clear=True``); returns the closed top view."""
        with self._lock:
            stack = self._view_stacks.get(user) or []
            if not stack:
                return None
            closed = stack[-1]
            removed = list(stack) if clear else [stack[-1]]
            del stack[len(stack) - len(removed) :]
            for view in removed:
                self._views_by_id.pop(view["id"], None)
            return copy.deepcopy(closed)

    def apply_view_response(self, user: str, body: Any) -> list[str]:
        """Apply a ``view_submission`` acknowledgement the way Slack's client does.

        Empty body closes the top view; ``clear`` closes all; ``update`` replaces the top view;
        ``push`` pushes one; ``errors`` keeps it.  Returns problems (an invalid view, unknown
        ``response_action``); the state is left unchanged when there are any.
        """
        if body in (None, "", b""):
            self.close_view(user)
            return []
        if not isinstance(body, dict):
            return [f"acknowledgement body is not a JSON object: {body!r}"]
        action = body.get("response_action")
        if action is None and not body:
            self.close_view(user)
            return []
        if action == "clear":
            self.close_view(user, clear=True)
            return []
        if action == "errors":
            errors = body.get("errors")
            if not isinstance(errors, dict) or not errors:
                return ["response_action errors needs a non-empty errors object"]
            return []
        if action in ("update", "push"):
            view = body.get("view")
            problems = validate_view(view) if self.validate else []
            if not isinstance(view, dict):
                problems = problems or ["response_action needs a view"]
            if problems:
                return problems
            with self._lock:
                stack = self._view_stacks.get(user) or []
                if action == "update":
                    if not stack:
                        return ["no open view to update"]
                    self._replace_view(stack[-1], view)
                else:
                    if len(stack) >= _MODAL_STACK_LIMIT:
                        return ["push_limit_reached"]
                    self._push_view(user, view)
            return []
        return [f"unknown response_action {action!r}"]

    def message_problems(self, payload: JSONDict) -> list[str]:
        """What Slack would refuse in a message given as a response_url post or a command's
        answer: its blocks against Block Kit's limits, its text against 40,000 characters."""
        problems: list[str] = []
        if payload.get("blocks") is not None:
            problems += validate_blocks(payload["blocks"], surface="message")
        text = payload.get("text")
        if isinstance(text, str) and len(text) > _MAX_MESSAGE_TEXT:
            problems.append(f"text longer than {_MAX_MESSAGE_TEXT} characters")
        return problems

    def deliver_response(self, response_url: str, payload: JSONDict | str) -> list[str]:
        """Show a payload as if posted to ``response_url``, without recording a call; what
        Slack would refuse in it (`message_problems`) is returned instead of shown.

        Used for slash-command acknowledgements that carry a body (Slack shows them as an
        ephemeral message, or in the channel for ``response_type: in_channel``).
        """
        hook_id = response_url.rstrip("/").rsplit("/", 1)[-1]
        if isinstance(payload, str):
            payload = {"text": payload}
        if self.validate and (problems := self.message_problems(payload)):
            return problems
        with self._lock:
            hook = self._hooks.get(hook_id)
            if hook is None:
                raise KeyError(f"unknown response_url {response_url}")
            self._apply_hook_payload(hook, payload, source="ack")
        return []

    # ---------------------------------------------------------------- internal state helpers

    def resolve_channel(self, channel: str) -> str:
        """Map ``#name`` to a registered channel id and a user id to the DM channel id."""
        if channel.startswith("#"):
            name = channel[1:]
            with self._lock:
                for cid, info in self._channels.items():
                    if info["name"] == name:
                        return cid
            return channel
        if channel[:1] in ("U", "W"):
            return self.dm_channel(channel)
        return channel

    def _find_message(self, channel: str, ts: str) -> JSONDict | None:
        for message in self._messages.get(channel, []):
            if message["ts"] == ts:
                return message
        return None

    def _store_message(self, channel: str, message: JSONDict, thread_ts: str | None) -> JSONDict:
        ts = self.next_ts()
        message["ts"] = ts
        if thread_ts:
            parent = self._find_message(channel, thread_ts)
            if parent is not None and parent.get("thread_ts") not in (None, parent["ts"]):
                thread_ts = parent["thread_ts"]
                parent = self._find_message(channel, thread_ts)
            message["thread_ts"] = thread_ts
            if parent is not None:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                users = parent.setdefault("reply_users", [])
                if message.get("user") not in users:
                    users.append(message.get("user"))
                parent["reply_users_count"] = len(users)
                parent["latest_reply"] = ts
        self._messages.setdefault(channel, []).append(message)
        return message

    def _normalize_blocks(self, blocks: list[JSONDict]) -> list[JSONDict]:
        """Copy blocks, filling in ``block_id``/``action_id`` where missing, like Slack does."""
        result = copy.deepcopy(blocks)
        for block in result:
            if isinstance(block, dict) and "block_id" not in block:
                block["block_id"] = self._auto_id()
        for _block, element in iter_interactive_elements(result):
            if "action_id" not in element:
                element["action_id"] = self._auto_id()
        return result

    def _bot_message(self, args: JSONDict, blocks: Any) -> JSONDict:
        message: JSONDict = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": args.get("text") or "",
        }
        if blocks:
            message["blocks"] = self._normalize_blocks(blocks)
            if not message["text"]:
                message["text"] = "This content can't be displayed."
        if args.get("attachments") is not None:
            message["attachments"] = args["attachments"]
        if args.get("metadata") is not None:
            message["metadata"] = args["metadata"]
        return message

    def _check_blocks(self, args: JSONDict, *, required_text: bool) -> Any:
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            if not blocks.strip():
                blocks = None
            else:
                raise _ApiError("invalid_blocks_format")
        if blocks is not None:
            if not isinstance(blocks, list):
                raise _ApiError("invalid_blocks_format")
            if self.validate:
                problems = validate_blocks(blocks, surface="message")
                if problems:
                    raise _ApiError("invalid_blocks", problems)
        text = args.get("text")
        if text is not None and not isinstance(text, str):
            text = args["text"] = str(text)
        if text and len(text) > _MAX_MESSAGE_TEXT:
            raise _ApiError("msg_too_long")
        if required_text and not text and not blocks and not args.get("attachments"):
            raise _ApiError("no_text")
        return blocks

    def _new_view(self, user: str, spec: JSONDict) -> JSONDict:
        view_id = self._new_id("V")
        view = self._view_object(view_id, spec)
        view["root_view_id"] = view_id
        view["previous_view_id"] = None
        self._views_by_id[view_id] = (user, view)
        return view

    def _view_object(self, view_id: str, spec: JSONDict) -> JSONDict:
        view: JSONDict = {
            "id": view_id,
            "team_id": self.team_id,
            "type": spec.get("type", "modal"),
            "private_metadata": spec.get("private_metadata", ""),
            "callback_id": spec.get("callback_id", ""),
            "external_id": spec.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": bool(spec.get("clear_on_close", False)),
            "notify_on_close": bool(spec.get("notify_on_close", False)),
            "app_id": self.app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        for key in ("title", "close", "submit"):
            if spec.get(key) is not None:
                view[key] = copy.deepcopy(spec[key])
        view["blocks"] = self._normalize_blocks(spec.get("blocks") or [])
        return view

    def _replace_view(self, view: JSONDict, spec: JSONDict) -> None:
        """Update a live view in place, keeping id, stack links and still-valid typed state."""
        fresh = self._view_object(view["id"], spec)
        if not fresh["external_id"]:
            fresh["external_id"] = view.get("external_id", "")
        fresh["root_view_id"] = view.get("root_view_id")
        fresh["previous_view_id"] = view.get("previous_view_id")
        old_state = view.get("state", {}).get("values", {})
        present = {
            (b.get("block_id"), e.get("action_id"))
            for b, e in iter_interactive_elements(fresh["blocks"])
        }
        kept: JSONDict = {}
        for block_id, actions in old_state.items():
            for action_id, value in actions.items():
                if (block_id, action_id) in present:
                    kept.setdefault(block_id, {})[action_id] = value
        fresh["state"] = {"values": kept}
        view.clear()
        view.update(fresh)

    def _push_view(self, user: str, spec: JSONDict) -> JSONDict:
        stack = self._view_stacks.setdefault(user, [])
        view = self._new_view(user, spec)
        if stack:
            view["root_view_id"] = stack[0]["id"]
            view["previous_view_id"] = stack[-1]["id"]
        stack.append(view)
        return view

    def _take_trigger(self, trigger_id: Any) -> str:
        if not isinstance(trigger_id, str) or trigger_id not in self._triggers:
            raise _ApiError("invalid_trigger_id")
        trigger = self._triggers[trigger_id]
        if trigger["used"]:
            raise _ApiError("exchanged_trigger_id")
        if self.clock() - trigger["issued"] > self.trigger_ttl:
            raise _ApiError("expired_trigger_id")
        trigger["used"] = True
        return str(trigger["user"])

    def _view_arg(self, args: JSONDict, *, kinds: tuple[str, ...]) -> JSONDict:
        view = args.get("view")
        if view is None:
            raise _ApiError("invalid_arguments", ["[ERROR] missing required field: view"])
        if not isinstance(view, dict):
            raise _ApiError("invalid_arguments", ["[ERROR] view must be a JSON object"])
        if len(json.dumps(view)) > _MAX_VIEW_BYTES:
            raise _ApiError("view_too_large")
        if view.get("type") not in kinds:
            raise _ApiError(
                "invalid_arguments", [f"[ERROR] view type must be one of {list(kinds)}"]
            )
        if self.validate:
            problems = validate_view(view)
            if problems:
                raise _ApiError("invalid_arguments", problems)
        return view

    def _check_external_id(self, view: JSONDict, exclude: str | None = None) -> None:
        external_id = view.get("external_id")
        if not external_id:
            return
        for view_id, (_user, live) in self._views_by_id.items():
            if view_id != exclude and live.get("external_id") == external_id:
                raise _ApiError("duplicate_external_id")

    @staticmethod
    def _require(args: JSONDict, *names: str) -> None:
        missing = [n for n in names if args.get(n) in (None, "")]
        if missing:
            raise _ApiError(
                "invalid_arguments",
                [f"[ERROR] missing required field: {name}" for name in missing],
            )

    # ---------------------------------------------------------------- Web API methods

    def _api_test(self, args: JSONDict) -> JSONDict:
        if args.get("error"):
            raise _ApiError(str(args["error"]))
        return {"args": args}

    def _auth_test(self, args: JSONDict) -> JSONDict:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self._users[self.bot_user_id]["name"],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: JSONDict) -> JSONDict:
        self._require(args, "channel")
        blocks = self._check_blocks(args, required_text=True)
        channel = self.resolve_channel(str(args["channel"]))
        if channel.startswith("#"):
            raise _ApiError("channel_not_found")
        message = self._bot_message(args, blocks)
        thread_ts = args.get("thread_ts") or None
        stored = self._store_message(channel, message, thread_ts)
        return {"channel": channel, "ts": stored["ts"], "message": copy.deepcopy(stored)}

    def _chat_update(self, args: JSONDict) -> JSONDict:
        self._require(args, "channel", "ts")
        blocks = self._check_blocks(args, required_text=False)
        channel = self.resolve_channel(str(args["channel"]))
        message = self._find_message(channel, str(args["ts"]))
        if message is None:
            raise _ApiError("message_not_found")
        if message.get("user") != self.bot_user_id:
            raise _ApiError("cant_update_message")
        if "text" in args:
            message["text"] = args.get("text") or ""
        if "blocks" in args:
            if blocks:
                message["blocks"] = self._normalize_blocks(blocks)
            else:
                message.pop("blocks", None)
        if "attachments" in args:
            message["attachments"] = args["attachments"]
        if "metadata" in args:
            message["metadata"] = args["metadata"]
        if not message.get("text") and message.get("blocks"):
            message["text"] = "This content can't be displayed."
        message["edited"] = {"user": self.bot_user_id, "ts": self.next_ts()}
        return {
            "channel": channel,
            "ts": message["ts"],
            "text": message.get("text", ""),
            "message": copy.deepcopy(message),
        }

    def _chat_delete(self, args: JSONDict) -> JSONDict:
        self._require(args, "channel", "ts")
        channel = self.resolve_channel(str(args["channel"]))
        message = self._find_message(channel, str(args["ts"]))
        if message is None:
            raise _ApiError("message_not_found")
        if message.get("user") != self.bot_user_id:
            raise _ApiError("cant_delete_message")
        self._messages[channel].remove(message)
        return {"channel": channel, "ts": message["ts"]}

    def _chat_post_ephemeral(self, args: JSONDict) -> JSONDict:
        self._require(args, "channel", "user")
        blocks = self._check_blocks(args, required_text=True)
        channel = self.resolve_channel(str(args["channel"]))
        user = str(args["user"])
        message = self._bot_message(args, blocks)
        message["ts"] = self.next_ts()
        message["channel"] = channel
        message["source"] = "chat.postEphemeral"
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        self._ephemerals.setdefault(user, []).append(message)
        return {"message_ts": message["ts"]}

    def _chat_get_permalink(self, args: JSONDict) -> JSONDict:
        self._require(args, "channel", "message_ts")
        channel = self.resolve_channel(str(args["channel"]))
        message = self._find_message(channel, str(args["message_ts"]))
        if message is None:
            raise _ApiError("message_not_found")
        ts = message["ts"]
        link = f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        if message.get("thread_ts") and message["thread_ts"] != ts:
            link += f"?thread_ts={message['thread_ts']}&cid={channel}"
        return {"channel": channel, "permalink": link}

    def _conversations_open(self, args: JSONDict) -> JSONDict:
        if args.get("channel"):
            channel_id = str(args["channel"])
            return {"no_op": True, "already_open": True, "channel": {"id": channel_id}}
        users = args.get("users")
        if isinstance(users, str):
            ids = [u.strip() for u in users.split(",") if u.strip()]
        elif isinstance(users, list):
            ids = [str(u) for u in users]
        else:
            ids = []
        if not ids:
            raise _ApiError("users_list_not_supplied")
        if len(ids) > 8:
            raise _ApiError("too_many_users")
        if len(ids) == 1:
            channel_id = self.dm_channel(ids[0])
        else:
            digest = hashlib.sha1(",".join(sorted(ids)).encode()).hexdigest()[:9].upper()
            channel_id = "G" + digest
        already = channel_id in self._open_dms
        self._open_dms.add(channel_id)
        channel: JSONDict = {"id": channel_id}
        if _truthy(args.get("return_im")) and len(ids) == 1:
            channel.update({"is_im": True, "user": ids[0], "created": int(time.time())})
        return {"no_op": already, "already_open": already, "channel": channel}

    def _channel_object(self, channel_id: str) -> JSONDict:
        is_im = channel_id.startswith("D")
        info = self._channels.get(channel_id, {})
        obj: JSONDict = {
            "id": channel_id,
            "name": self.channel_name(channel_id),
            "is_channel": not is_im and not info.get("is_private", False),
            "is_group": False,
            "is_im": is_im,
            "is_mpim": channel_id.startswith("G"),
            "is_private": is_im or bool(info.get("is_private", False)),
            "is_member": True,
            "context_team_id": self.team_id,
        }
        if is_im:
            obj["user"] = channel_id[1:]
        return obj

    def _conversations_info(self, args: JSONDict) -> JSONDict:
        self._require(args, "channel")
        channel = self.resolve_channel(str(args["channel"]))
        if channel.startswith("#"):
            raise _ApiError("channel_not_found")
        return {"channel": self._channel_object(channel)}

    def _conversations_history(self, args: JSONDict) -> JSONDict:
        self._require(args, "channel")
        channel = self.resolve_channel(str(args["channel"]))
        limit = int(args.get("limit") or 100)
        top = [m for m in self._messages.get(channel, []) if m.get("thread_ts") in (None, m["ts"])]
        newest_first = list(reversed(top))
        return {
            "messages": copy.deepcopy(newest_first[:limit]),
            "has_more": len(newest_first) > limit,
        }

    def _conversations_replies(self, args: JSONDict) -> JSONDict:
        self._require(args, "channel", "ts")
        channel = self.resolve_channel(str(args["channel"]))
        ts = str(args["ts"])
        if self._find_message(channel, ts) is None:
            raise _ApiError("thread_not_found")
        thread = [
            m for m in self._messages.get(channel, []) if m["ts"] == ts or m.get("thread_ts") == ts
        ]
        return {"messages": copy.deepcopy(thread), "has_more": False}

    def _views_open(self, args: JSONDict) -> JSONDict:
        trigger = args.get("trigger_id") or args.get("interactivity_pointer")
        if not trigger:
            raise _ApiError("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
        spec = self._view_arg(args, kinds=("modal",))
        self._check_external_id(spec)
        user = self._take_trigger(trigger)
        for old in self._view_stacks.get(user, []):
            self._views_by_id.pop(old["id"], None)
        self._view_stacks[user] = []
        view = self._push_view(user, spec)
        return {"view": copy.deepcopy(view)}

    def _views_push(self, args: JSONDict) -> JSONDict:
        trigger = args.get("trigger_id") or args.get("interactivity_pointer")
        if not trigger:
            raise _ApiError("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
        spec = self._view_arg(args, kinds=("modal",))
        self._check_external_id(spec)
        user = self._take_trigger(trigger)
        if len(self._view_stacks.get(user, [])) >= _MODAL_STACK_LIMIT:
            raise _ApiError("push_limit_reached")
        view = self._push_view(user, spec)
        return {"view": copy.deepcopy(view)}

    def _views_update(self, args: JSONDict) -> JSONDict:
        view_id = args.get("view_id")
        external_id = args.get("external_id")
        if not view_id and not external_id:
            raise _ApiError(
                "invalid_arguments", ["[ERROR] either view_id or external_id is required"]
            )
        spec = self._view_arg(args, kinds=("modal", "home"))
        target: JSONDict | None = None
        if view_id:
            entry = self._views_by_id.get(str(view_id))
            target = entry[1] if entry else None
        else:
            for _user, live in self._views_by_id.values():
                if live.get("external_id") == external_id:
                    target = live
                    break
        if target is None:
            raise _ApiError("not_found")
        if args.get("hash") and args["hash"] != target.get("hash"):
            raise _ApiError("hash_conflict")
        self._check_external_id(spec, exclude=target["id"])
        self._replace_view(target, spec)
        return {"view": copy.deepcopy(target)}

    def _views_publish(self, args: JSONDict) -> JSONDict:
        self._require(args, "user_id")
        spec = self._view_arg(args, kinds=("home",))
        user = str(args["user_id"])
        current = self._home_views.get(user)
        if current is not None:
            if args.get("hash") and args["hash"] != current.get("hash"):
                raise _ApiError("hash_conflict")
            self._replace_view(current, spec)
            return {"view": copy.deepcopy(current)}
        view = self._new_view(user, spec)
        self._home_views[user] = view
        return {"view": copy.deepcopy(view)}

    def _users_info(self, args: JSONDict) -> JSONDict:
        self._require(args, "user")
        user = self._users.get(str(args["user"]))
        if user is None:
            raise _ApiError("user_not_found")
        return {"user": copy.deepcopy(user)}

    def _users_lookup_by_email(self, args: JSONDict) -> JSONDict:
        self._require(args, "email")
        email = str(args["email"]).lower()
        for user in self._users.values():
            if str(user["profile"].get("email", "")).lower() == email:
                return {"user": copy.deepcopy(user)}
        raise _ApiError("users_not_found")

    def _team_info(self, args: JSONDict) -> JSONDict:
        return {
            "team": {
                "id": self.team_id,
                "name": self.team_name,
                "domain": self.team_domain,
                "email_domain": "example.com",
                "url": f"https://{self.team_domain}.slack.com/",
                "is_verified": False,
                "icon": {"image_default": True},
            }
        }

    # ---------------------------------------------------------------- response_url

    def _apply_hook_payload(self, hook: JSONDict, payload: JSONDict, *, source: str) -> None:
        channel = hook.get("channel")
        user = hook.get("user")
        blocks = payload.get("blocks")
        blocks = blocks if isinstance(blocks, list) else None
        target_ts = hook.get("message_ts") or hook.get("last_ts")
        target_ephemeral = bool(hook.get("is_ephemeral")) or (
            hook.get("message_ts") is None and hook.get("last_ts") is not None
        )

        def find_target() -> tuple[list[JSONDict], JSONDict] | None:
            if target_ts is None:
                return None
            if target_ephemeral:
                pool = self._ephemerals.get(str(user), [])
            else:
                pool = self._messages.get(str(channel), [])
            for message in pool:
                if message.get("ts") == target_ts:
                    return pool, message
            return None

        if _truthy(payload.get("delete_original")):
            found = find_target()
            if found is not None:
                found[0].remove(found[1])
            return
        if _truthy(payload.get("replace_original")):
            found = find_target()
            if found is not None:
                message = found[1]
                message["text"] = payload.get("text") or ""
                if blocks is not None:
                    message["blocks"] = self._normalize_blocks(blocks)
                else:
                    message.pop("blocks", None)
                if "attachments" in payload:
                    message["attachments"] = payload["attachments"]
                return
        message = self._bot_message(payload, blocks)
        if payload.get("response_type") == "in_channel" and channel:
            self._store_message(str(channel), message, payload.get("thread_ts"))
            hook["last_ts"] = None
            return
        if user is None:
            return
        message["ts"] = self.next_ts()
        message["channel"] = channel
        message["source"] = source
        self._ephemerals.setdefault(str(user), []).append(message)
        hook["last_ts"] = message["ts"]

    def _handle_response_url(
        self, req: BaseHTTPRequestHandler, hook_id: str, raw: bytes, arrived: float
    ) -> None:
        url = f"{self.base_url}/response/{hook_id}"
        delay = self._delay_for("response_url")
        if delay:
            time.sleep(delay)
        try:
            payload = json.loads(raw.decode("utf-8")) if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = None
        args = payload if isinstance(payload, dict) else {"_raw": raw.decode("utf-8", "replace")}
        with self._lock:
            failure = self._take_failure("response_url")
            hook = self._hooks.get(hook_id)
            status, text = 200, "ok"
            if failure is not None:
                status = failure.status if not failure.error else 200
                text = failure.error or ("rate_limited" if status == 429 else "internal_error")
            elif not isinstance(payload, dict):
                status, text = 400, "invalid_payload"
            elif hook is None:
                status, text = 404, "no_active_hooks"
            elif self.clock() - hook["issued"] > self.response_url_ttl:
                status, text = 404, "expired_url"
            elif hook["uses"] >= self.response_url_max_uses:
                status, text = 404, "used_url"
            elif not any(k in payload for k in ("text", "blocks", "attachments")) and not (
                _truthy(payload.get("delete_original"))
            ):
                status, text = 400, "no_text"
            elif self.validate and self.message_problems(payload):
                status, text = 400, "invalid_blocks"
            else:
                hook["uses"] += 1
                self._apply_hook_payload(hook, payload, source="response_url")
        headers = {}
        if failure is not None and failure.status == 429 and failure.retry_after is not None:
            headers["Retry-After"] = str(failure.retry_after)
        self._record(
            WebApiCall(
                method="response_url",
                args=copy.deepcopy(args),
                token=None,
                at=arrived,
                status=status,
                response=text,
                failed=status != 200 or text != "ok",
                injected=failure is not None,
                url=url,
            )
        )
        self._send(req, status, text.encode(), "text/html", headers)

    # ---------------------------------------------------------------- HTTP dispatch

    def _delay_for(self, method: str) -> float:
        with self._lock:
            return self._delays.get(method, self._delays.get("*", 0.0))

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if queue:
            return queue.pop(0)
        return None

    @staticmethod
    def _send(
        req: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        req.send_response(status)
        req.send_header("Content-Type", f"{content_type}; charset=utf-8")
        req.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(body)

    @staticmethod
    def _parse_args(query: str, raw: bytes, content_type: str) -> tuple[JSONDict, str | None]:
        args: JSONDict = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
        if raw:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return args, "invalid_charset"
            if content_type == "application/json":
                try:
                    body = json.loads(text)
                except json.JSONDecodeError:
                    return args, "invalid_json"
                if not isinstance(body, dict):
                    return args, "invalid_json"
                args.update(body)
            elif content_type in ("application/x-www-form-urlencoded", "text/plain", ""):
                form = urllib.parse.parse_qs(text, keep_blank_values=True)
                args.update({k: v[-1] for k, v in form.items()})
            else:
                return args, "invalid_post_type"
        for key in JSON_ARGS:
            value = args.get(key)
            if isinstance(value, str) and value.strip()[:1] in ("{", "["):
                # a malformed value stays a string; the method handler reports it
                with contextlib.suppress(json.JSONDecodeError):
                    args[key] = json.loads(value)
        return args, None

    def _handle_http(self, req: BaseHTTPRequestHandler, verb: str) -> None:
        parsed = urllib.parse.urlsplit(req.path)
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length > 0 else b""
        # When the call reached "Slack": what its rate limits count. Stamped before the
        # stand-in's own work (its lock, injected delays), which a busy machine can stretch
        # enough to bunch the answers of calls that arrived well apart.
        arrived = time.time()
        path = parsed.path
        if path.startswith("/response/") and verb == "POST":
            self._handle_response_url(req, path[len("/response/") :].strip("/"), raw, arrived)
            return
        if not path.startswith("/api/"):
            self._send(req, 404, b"not found", "text/plain")
            return
        method = path[len("/api/") :].strip("/")
        content_type = req.headers.get_content_type() if req.headers.get("Content-Type") else ""
        args, parse_error = self._parse_args(parsed.query, raw, content_type)
        auth = req.headers.get("Authorization", "")
        token: str | None = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        body_token = args.pop("token", None)
        token = token or (str(body_token) if body_token else None)

        delay = self._delay_for(method)
        if delay:
            time.sleep(delay)

        status = 200
        headers: dict[str, str] = {}
        injected = False
        with self._lock:
            failure = self._take_failure(method)
        if failure is not None:
            injected = True
            if failure.error:
                response: JSONDict = {"ok": False, "error": failure.error}
            elif failure.status == 429:
                status = 429
                response = {"ok": False, "error": "ratelimited"}
                if failure.retry_after is not None:
                    headers["Retry-After"] = str(failure.retry_after)
            else:
                status = failure.status
                response = {"ok": False, "error": "internal_error"}
        elif parse_error:
            response = {"ok": False, "error": parse_error}
        elif not token:
            response = {"ok": False, "error": "not_authed"}
        elif token != self._method_tokens.get(method, self.bot_token):
            known = token == self.bot_token or token in self._method_tokens.values()
            response = {"ok": False, "error": "not_allowed_token_type" if known else "invalid_auth"}
        elif method not in self._methods:
            response = {"ok": False, "error": "unknown_method", "req_method": method}
        else:
            try:
                with self._lock:
                    result = self._methods[method](args)
                response = {"ok": True, **result}
            except _ApiError as exc:
                response = exc.to_response()
            except Exception:  # a bug in the stand-in: answer like Slack, but be loud
                traceback.print_exc(file=sys.stderr)
                response = {"ok": False, "error": "fatal_error"}
        self._record(
            WebApiCall(
                method=method,
                args=copy.deepcopy(args),
                token=token,
                at=arrived,
                status=status,
                response=copy.deepcopy(response),
                failed=status != 200 or not response.get("ok"),
                injected=injected,
                url=f"{self.api_url}{method}",
            )
        )
        body = json.dumps(response).encode("utf-8")
        self._send(req, status, body, "application/json", headers)
