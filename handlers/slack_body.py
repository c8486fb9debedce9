"""What Slack sent, parsed once and checked before any listener sees it.

A request whose signature is good can still carry what Slack never sends — a forged or
replayed body, a proxy's mistake, a new Slack field of another type. The listeners, and
Bolt's own code that reads the envelope (`authorizations`, `enterprise`, `team`), index
into the body assuming Slack's shapes; a list where a dict belongs would raise inside them
and answer 500. So the shapes they rely on are checked here, and anything else is answered
400 before it reaches them (`parse_slack_body` returns None).

Text is cleaned here too. JSON can spell two things no Slack client sends and the desk
cannot store: NUL (`\\u0000`; PostgreSQL refuses it in a text column) and half of a UTF-16
surrogate pair (`\\ud800`; no UTF-8 encoder takes one, so SQLite's driver and the Web API
client both raise). Wherever they occur in a payload, a NUL is dropped and a lone surrogate
becomes U+FFFD (the replacement character), so a title or a reply with one is stored and
shown like any other text instead of failing the request. A command's form is cleaned of
NUL the same way.

Socket Mode envelopes (handlers/socket_mode.py) come from Slack over the app's own
authenticated connection, so no one else can put a body on it; their payloads get the same
checks and cleaning all the same (`check_envelope_payload`), so that one Slack sends in a
new shape is answered and counted instead of failing in a listener, as over HTTP.
"""

from __future__ import annotations

import binascii
import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

# A JSON escape of NUL or of a surrogate (a lone one, or half of a pair json.loads will
# join): only a body containing one is walked for unsafe characters.
_UNSAFE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_UNSAFE_CHARACTER = re.compile("[\x00\ud800-\udfff]")

# The fields of an event that the listeners read as text.
_EVENT_TEXT_FIELDS = ("text", "channel", "channel_type", "subtype", "ts", "thread_ts", "bot_id")
# What an action's or an input's state may carry, by type: Slack's own shapes.
_STATE_TEXT_FIELDS = (
    "type",
    "value",
    "selected_date",
    "selected_time",
    "selected_date_time",
    "selected_user",
    "selected_channel",
    "selected_conversation",
)
_STATE_LIST_FIELDS = ("selected_options", "selected_users", "selected_channels")


def parse_slack_body(body: str, content_type: str) -> tuple[str, dict[str, Any]] | None:
    """What Slack sent — JSON (events) or a form (commands; interactivity as `payload=`
    JSON) — as (kind, the body Bolt's listeners read), or None when it is malformed."""
    try:
        if content_type.startswith("application/json"):
            document = _load_json(body)
            if not (isinstance(document, dict) and _envelope_ok(document)):
                return None
            return str(document.get("type") or "event"), document
        if body.startswith("payload=") and "&" not in body:  # every interaction Slack sends
            form = {"payload": decode_form_value(body[len("payload=") :])}
        else:
            form = dict(parse_qsl(body, keep_blank_values=True))
        if "payload" in form:
            payload = _load_json(form["payload"])
            if isinstance(payload, dict) and _interaction_shape_ok(payload):
                return str(payload["type"]), payload
            return None
        if "\x00" in body or "%00" in body:
            form = {key: value.replace("\x00", "") for key, value in form.items()}
        if "command" in form:
            return ("command", form) if form.get("user_id") and form["command"] else None
        return ("ssl_check", form) if "ssl_check" in form else None
    except ValueError:
        return None


def check_envelope_payload(envelope_type: str, payload: Any) -> dict[str, Any] | None:
    """A Socket Mode envelope's payload (`slash_commands`, `interactive`, `events_api`),
    checked and cleaned as `parse_slack_body` checks and cleans an HTTP body; None when it
    has a shape Slack never sends."""
    if not isinstance(payload, dict):
        return None
    # json.dumps spells NUL and every surrogate as an escape, as a raw JSON body would.
    if _UNSAFE_ESCAPE.search(json.dumps(payload)):
        payload = _cleaned(payload)
    if envelope_type == "slash_commands":
        # a command's form fields, as JSON: text only
        if not all(isinstance(value, str) for value in payload.values()):
            return None
        return payload if payload.get("user_id") and payload.get("command") else None
    if envelope_type == "interactive":
        return payload if _interaction_shape_ok(payload) else None
    if envelope_type == "events_api":
        return payload if _envelope_ok(payload) else None
    return None


def _load_json(text: str) -> Any:
    document = json.loads(text)
    if _UNSAFE_ESCAPE.search(text):
        return _cleaned(document)
    return document


def _cleaned(value: Any) -> Any:
    """`value` with NUL dropped and lone surrogates replaced in every string in it."""
    if isinstance(value, str):
        if _UNSAFE_CHARACTER.search(value) is None:
            return value
        return _UNSAFE_CHARACTER.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)
    if isinstance(value, dict):
        return {_cleaned(key): _cleaned(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_cleaned(item) for item in value]
    return value


def _optional(value: Any, kind: type | tuple[type, ...]) -> bool:
    return value is None or isinstance(value, kind)


def _context_fields_ok(part: dict[str, Any]) -> bool:
    """The fields Bolt reads to tell the workspace and organisation (from the envelope, each
    of its `authorizations`, or the event), with Slack's types."""
    return (
        _optional(part.get("enterprise"), (dict, str))
        and _optional(part.get("team"), (dict, str))
        and _optional(part.get("is_ext_shared_channel"), bool)
        and all(_optional(part.get(key), str) for key in ("team_id", "enterprise_id"))
    )


def _envelope_ok(document: dict[str, Any]) -> bool:
    """The envelope fields Bolt reads to build a request's context, and the event the
    listeners read, with Slack's types."""
    if not (_context_fields_ok(document) and _optional(document.get("api_app_id"), str)):
        return False
    authorizations = document.get("authorizations")
    if not _optional(authorizations, list) or not all(
        isinstance(a, dict) and _context_fields_ok(a) for a in authorizations or ()
    ):
        return False
    if "event" in document:
        event = document["event"]
        if not (isinstance(event, dict) and isinstance(event.get("type"), str)):
            return False
        if not _context_fields_ok(event):
            return False
        if not all(_optional(event.get(key), str) for key in _EVENT_TEXT_FIELDS):
            return False
        if event["type"] == "message" and not _optional(event.get("user"), str):
            return False
    return True


def _state_ok(state: Any) -> bool:
    """A modal's or a message's `state`: {"values": {block_id: {action_id: {…}}}}."""
    if not isinstance(state, dict):
        return False
    values = state.get("values", {})
    if not isinstance(values, dict):
        return False
    for actions in values.values():
        if not isinstance(actions, dict):
            return False
        for element in actions.values():
            if not (isinstance(element, dict) and _element_ok(element)):
                return False
    return True


def _element_ok(element: dict[str, Any]) -> bool:
    """An action, or an input's state: text where Slack sends text, an option a dict."""
    if not all(_optional(element.get(key), str) for key in _STATE_TEXT_FIELDS):
        return False
    option = element.get("selected_option")
    if not (_optional(option, dict) and _optional((option or {}).get("value"), str)):
        return False
    for key in _STATE_LIST_FIELDS:
        if not _optional(element.get(key), list):
            return False
    options = element.get("selected_options") or []
    return all(isinstance(o, dict) and _optional(o.get("value"), str) for o in options)


def _view_ok(view: Any) -> bool:
    if not isinstance(view, dict):
        return False
    for key in ("id", "hash", "callback_id", "private_metadata", "external_id"):
        if not _optional(view.get(key), str):
            return False
    blocks = view.get("blocks", [])
    if not (isinstance(blocks, list) and all(isinstance(b, dict) for b in blocks)):
        return False
    return "state" not in view or _state_ok(view["state"])


def _interaction_shape_ok(payload: dict[str, Any]) -> bool:
    """The fields Bolt and the listeners rely on, with the types Slack always sends."""
    user = payload.get("user")
    if not isinstance(payload.get("type"), str):
        return False
    if not (isinstance(user, dict) and isinstance(user.get("id"), str)):
        return False
    for key in ("container", "channel", "message", "team"):
        if key in payload and not isinstance(payload[key], dict):
            return False
    for key in ("trigger_id", "response_url", "callback_id"):
        if not _optional(payload.get(key), str):
            return False
    if not _envelope_ok(payload):
        return False
    if "view" in payload and not _view_ok(payload["view"]):
        return False
    if "state" in payload and not _state_ok(payload["state"]):
        return False
    kind = payload["type"]
    if kind == "block_actions":
        actions = payload.get("actions")
        return (
            isinstance(actions, list)
            and bool(actions)
            and all(
                isinstance(a, dict) and isinstance(a.get("action_id"), str) and _element_ok(a)
                for a in actions
            )
        )
    if kind in ("view_submission", "view_closed"):
        view = payload.get("view")
        return isinstance(view, dict) and isinstance(view.get("callback_id"), str)
    if kind in ("shortcut", "message_action"):
        return isinstance(payload.get("callback_id"), str)
    return True


def decode_form_value(encoded: str) -> str:
    """`urllib.parse.unquote_plus`, about ten times faster on what Slack sends.

    An interaction's `payload=` is JSON in which nearly every quote, brace and colon is a
    %-escape (about 1,900 in an intake submission); the standard decoder handles them one
    by one in Python, which under load was a tenth of a submission's CPU. Here they become
    quoted-printable escapes ("=XX", a literal "=" escaped first) decoded by
    `binascii.a2b_qp`, in C. What is not plainly encoded goes to the standard decoder, so
    the result is always the same: non-ASCII or a line break (a soft line break to a2b_qp),
    or a stray "%" (then the decoded length is not two less per "%").
    """
    if not encoded.isascii() or "\n" in encoded or "\r" in encoded:
        return unquote_plus(encoded)
    quoted_printable = encoded.replace("=", "=3D").replace("+", " ").replace("%", "=")
    raw = binascii.a2b_qp(quoted_printable.encode("ascii"))
    if len(raw) != len(encoded) - 2 * encoded.count("%"):
        return unquote_plus(encoded)
    return raw.decode("utf-8", "replace")
