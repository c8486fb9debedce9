"""The client that plays Slack calling the app: signed slash commands, interactions and events.

:class:`SlackSender` sends real HTTP requests to the app's request URL, signed exactly as Slack
signs them (``v0=`` HMAC-SHA256 over ``v0:{timestamp}:{body}``), with payloads shaped like
Slack's.  It works together with a :class:`~chatops.standin.webapi.SlackStandIn`: trigger ids
and response URLs come from it, buttons are looked up in the messages and views it stores, and
what the app answers to a ``view_submission`` is applied to the user's modal stack there.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dtime
from typing import Any

from chatops.standin.webapi import JSONDict, SlackStandIn, iter_interactive_elements

__all__ = ["Response", "SlackSender", "build_view_state", "element_state"]

# --------------------------------------------------------------------------------------------
# Element state, the way Slack reports it in ``state.values`` and in ``actions``
# --------------------------------------------------------------------------------------------

_TEXT_INPUTS = frozenset({"plain_text_input", "email_text_input", "url_text_input", "number_input"})
_SINGLE_OPTION = frozenset({"static_select", "external_select", "radio_buttons"})
_MULTI_OPTION = frozenset({"multi_static_select", "multi_external_select", "checkboxes"})
_SINGLE_VALUE = {
    "users_select": ("selected_user", "initial_user"),
    "conversations_select": ("selected_conversation", "initial_conversation"),
    "channels_select": ("selected_channel", "initial_channel"),
    "datepicker": ("selected_date", "initial_date"),
    "timepicker": ("selected_time", "initial_time"),
    "datetimepicker": ("selected_date_time", "initial_date_time"),
}
_MULTI_VALUE = {
    "multi_users_select": ("selected_users", "initial_users"),
    "multi_conversations_select": ("selected_conversations", "initial_conversations"),
    "multi_channels_select": ("selected_channels", "initial_channels"),
}
#: Element types whose value Slack keeps in ``view.state.values``.
STATEFUL_TYPES = (
    _TEXT_INPUTS
    | _SINGLE_OPTION
    | _MULTI_OPTION
    | set(_SINGLE_VALUE)
    | set(_MULTI_VALUE)
    | {"rich_text_input", "file_input"}
)

_MISSING: Any = object()


def _plain(text: str) -> JSONDict:
    return {"type": "plain_text", "text": text, "emoji": True}


def _offered_options(element: JSONDict) -> list[JSONDict]:
    options = [o for o in element.get("options") or [] if isinstance(o, dict)]
    for group in element.get("option_groups") or []:
        if isinstance(group, dict):
            options += [o for o in group.get("options") or [] if isinstance(o, dict)]
    return options


def _pick_option(element: JSONDict, raw: Any, *, force: bool) -> JSONDict:
    """Find the offered option whose value is ``raw`` (a value string or an option dict)."""
    value = raw.get("value") if isinstance(raw, dict) else str(raw)
    offered = _offered_options(element)
    for option in offered:
        if option.get("value") == value:
            return copy.deepcopy(option)
    if force or element.get("type", "").endswith("external_select"):
        if isinstance(raw, dict):
            return copy.deepcopy(raw)
        return {"text": _plain(str(value)), "value": str(value)}
    raise ValueError(
        f"option {value!r} is not offered by element {element.get('action_id')!r}; "
        f"offered values: {[o.get('value') for o in offered]} (pass force=True to forge it)"
    )


def _initial_state(element: JSONDict) -> JSONDict:
    """The state Slack reports for an element the user has not touched."""
    kind = element.get("type", "")
    if kind in _TEXT_INPUTS:
        initial = element.get("initial_value")
        return {"type": kind, "value": initial if initial not in (None, "") else None}
    if kind in _SINGLE_OPTION:
        return {"type": kind, "selected_option": copy.deepcopy(element.get("initial_option"))}
    if kind in _MULTI_OPTION:
        initial_options = copy.deepcopy(element.get("initial_options") or [])
        return {"type": kind, "selected_options": initial_options}
    if kind in _SINGLE_VALUE:
        key, initial_key = _SINGLE_VALUE[kind]
        return {"type": kind, key: element.get(initial_key)}
    if kind in _MULTI_VALUE:
        key, initial_key = _MULTI_VALUE[kind]
        return {"type": kind, key: list(element.get(initial_key) or [])}
    if kind == "rich_text_input":
        return {"type": kind, "rich_text_value": copy.deepcopy(element.get("initial_value"))}
    if kind == "file_input":
        return {"type": kind, "files": []}
    return {"type": kind, "value": None}


def element_state(element: JSONDict, raw: Any = _MISSING, *, force: bool = False) -> JSONDict:
    """The ``state.values`` entry Slack reports for ``element`` holding the user's input ``raw``.

    ``raw`` by element type: text inputs take a string (``""``/None mean empty; numbers are sent
    as strings); selects/radio buttons take an option value (or option dict); checkboxes and
    multi-selects take a list of values; ``users_select`` a user id; ``datepicker`` a
    ``YYYY-MM-DD`` string or ``date``; ``timepicker`` ``HH:MM`` or ``time``; ``datetimepicker``
    a unix timestamp or ``datetime``.  Without ``raw`` the element's initial value is reported.
    Options that the element does not offer raise ``ValueError`` unless ``force=True``.
    """
    if raw is _MISSING:
        return _initial_state(element)
    kind = element.get("type", "")
    if kind in _TEXT_INPUTS:
        return {"type": kind, "value": None if raw in (None, "") else str(raw)}
    if kind in _SINGLE_OPTION:
        option = None if raw is None else _pick_option(element, raw, force=force)
        return {"type": kind, "selected_option": option}
    if kind in _MULTI_OPTION:
        values = [] if raw is None else [raw] if isinstance(raw, str | dict) else list(raw)
        return {
            "type": kind,
            "selected_options": [_pick_option(element, v, force=force) for v in values],
        }
    if kind in _SINGLE_VALUE:
        key = _SINGLE_VALUE[kind][0]
        if isinstance(raw, datetime):
            raw = int(raw.timestamp())
        elif isinstance(raw, date):
            raw = raw.isoformat()
        elif isinstance(raw, dtime):
            raw = raw.strftime("%H:%M")
        return {"type": kind, key: raw}
    if kind in _MULTI_VALUE:
        key = _MULTI_VALUE[kind][0]
        values = [] if raw is None else [raw] if isinstance(raw, str) else list(raw)
        return {"type": kind, key: values}
    if kind == "rich_text_input":
        if isinstance(raw, str):
            raw = {
                "type": "rich_text",
                "elements": [
                    {"type": "rich_text_section", "elements": [{"type": "text", "text": raw}]}
                ],
            }
        return {"type": kind, "rich_text_value": raw}
    if kind == "file_input":
        return {"type": kind, "files": list(raw or [])}
    if force:
        return {"type": kind, "value": raw}
    raise ValueError(f"element type {kind!r} ({element.get('action_id')!r}) holds no input")


def _is_empty(state: JSONDict) -> bool:
    return all(value in (None, "", []) for key, value in state.items() if key != "type")


def build_view_state(
    view: JSONDict,
    overrides: Mapping[tuple[str, str], JSONDict] | None = None,
) -> dict[str, dict[str, JSONDict]]:
    """``state.values`` for a view: every input block, plus other touched stateful elements.

    Uses, in order: ``overrides`` keyed by ``(block_id, action_id)``, what is stored in
    ``view["state"]["values"]``, then the element's initial value.
    """
    overrides = overrides or {}
    stored = (view.get("state") or {}).get("values") or {}
    values: dict[str, dict[str, JSONDict]] = {}
    for block, element in iter_interactive_elements(view.get("blocks")):
        if element.get("type") not in STATEFUL_TYPES:
            continue
        key = (str(block.get("block_id")), str(element.get("action_id")))
        if key in overrides:
            state = overrides[key]
        elif key[1] in stored.get(key[0], {}):
            state = stored[key[0]][key[1]]
        elif block.get("type") == "input" or not _is_empty(_initial_state(element)):
            state = _initial_state(element)
        else:
            continue
        values.setdefault(key[0], {})[key[1]] = copy.deepcopy(state)
    return values


def _find_element(
    blocks: Any,
    action_id: str,
    *,
    where: str,
    value: Any = None,
    block_id: str | None = None,
) -> tuple[JSONDict, JSONDict]:
    everything = list(iter_interactive_elements(blocks))
    candidates = [
        (b, e)
        for b, e in everything
        if e.get("action_id") == action_id and (block_id is None or b.get("block_id") == block_id)
    ]
    if not candidates:
        present = [e.get("action_id") for _b, e in everything]
        raise LookupError(
            f"no element with action_id {action_id!r} in {where}; action_ids there: {present}"
        )
    if len(candidates) > 1 and value is not None:
        narrowed = [c for c in candidates if c[1].get("value") == value]
        candidates = narrowed or candidates
    if len(candidates) > 1:
        raise LookupError(
            f"{len(candidates)} elements with action_id {action_id!r} in {where}; "
            "pass block_id= (or value= for buttons) to pick one"
        )
    block, element = candidates[0]
    if element.get("type") == "button" and value is not None and element.get("value") != value:
        raise LookupError(
            f"button {action_id!r} in {where} has value {element.get('value')!r}, not {value!r}"
        )
    return block, element


def _message_blocks(message: JSONDict) -> list[JSONDict]:
    blocks = list(message.get("blocks") or [])
    for attachment in message.get("attachments") or []:
        if isinstance(attachment, dict):
            blocks += attachment.get("blocks") or []
    return blocks


# --------------------------------------------------------------------------------------------
# Response
# --------------------------------------------------------------------------------------------


@dataclass
class Response:
    """What the app answered.

    ``sent`` is the payload that was sent (parsed), ``elapsed`` the round-trip seconds and
    ``problems`` anything the stand-in found wrong with the answer (too slow, invalid view in a
    ``response_action``).  ``response_url``/``trigger_id``/``event_id`` are those that were sent.
    """

    status: int
    body: str
    headers: dict[str, str]
    elapsed: float = 0.0
    sent: Any = None
    problems: list[str] = field(default_factory=list)
    response_url: str | None = None
    trigger_id: str | None = None
    event_id: str | None = None

    def json(self) -> Any | None:
        """The body parsed as JSON, or None when it is empty or not JSON (a bare ack is empty)."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except json.JSONDecodeError:
            return None

    def header(self, name: str) -> str | None:
        """A response header, looked up case-insensitively."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# --------------------------------------------------------------------------------------------
# The sender
# --------------------------------------------------------------------------------------------


class SlackSender:
    """Plays Slack calling the app at ``app_url`` (e.g. ``http://127.0.0.1:3000/slack/events``).

    Args:
        app_url: the app's request URL (events, commands and interactivity all go there).
        signing_secret: the app's signing secret; every request is signed with it.
        standin: the :class:`SlackStandIn` that issues trigger ids / response URLs and holds
            the messages and views users interact with.
        team_id / team_domain: workspace identity in payloads (default: the stand-in's).
        verification_token: the legacy ``token`` field Slack still puts in payloads.
        timeout: HTTP timeout in seconds.
        ack_timeout: Slack gives up on an app that takes longer than this to answer (3 s); a
            late answer is noted in ``Response.problems`` and not shown/applied.  None disables.
    """

    def __init__(
        self,
        app_url: str,
        signing_secret: str,
        standin: SlackStandIn,
        team_id: str | None = None,
        team_domain: str | None = None,
        *,
        verification_token: str = "legacy-verification-token",
        timeout: float = 10.0,
        ack_timeout: float | None = 3.0,
    ) -> None:
        self.app_url = app_url
        self.signing_secret = signing_secret
        self.standin = standin
        self.team_id = team_id or standin.team_id
        self.team_domain = team_domain or standin.team_domain
        self.verification_token = verification_token
        self.timeout = timeout
        self.ack_timeout = ack_timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

    # ---------------------------------------------------------------- signing & transport

    def sign(self, body: str | bytes, timestamp: str | int, secret: str | None = None) -> str:
        """Slack's request signature: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
        raw = body.encode("utf-8") if isinstance(body, str) else body
        key = (secret if secret is not None else self.signing_secret).encode("utf-8")
        base = b"v0:" + str(timestamp).encode("ascii") + b":" + raw
        return "v0=" + hmac.new(key, base, hashlib.sha256).hexdigest()

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
        """Send a raw, signed POST to the app.

        ``timestamp`` defaults to now; ``signature`` defaults to a correct one (computed with
        ``secret`` if given, e.g. a wrong secret).  ``headers`` adds or overrides headers; a
        value of None removes that header (e.g. ``{"X-Slack-Signature": None}``), as does
        naming it in ``drop_headers``.
        """
        raw = body.encode("utf-8") if isinstance(body, str) else body
        ts = str(timestamp if timestamp is not None else int(time.time()))
        all_headers: dict[str, str] = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature if signature is not None else self.sign(raw, ts, secret),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "Accept": "application/json,*/*",
        }
        removals: dict[str, str | None] = {name: None for name in drop_headers}
        for name, value in {**(headers or {}), **removals}.items():
            for existing in [k for k in all_headers if k.lower() == name.lower()]:
                del all_headers[existing]
            if value is not None:
                all_headers[name] = value
        request = urllib.request.Request(self.app_url, data=raw, headers=all_headers, method="POST")
        started = time.monotonic()
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                status = answer.status
                text = answer.read().decode("utf-8", "replace")
                got_headers = dict(answer.headers.items())
        except urllib.error.HTTPError as error:
            status = error.code
            text = error.read().decode("utf-8", "replace")
            got_headers = dict(error.headers.items()) if error.headers else {}
        return Response(
            status=status, body=text, headers=got_headers, elapsed=time.monotonic() - started
        )

    def post_form(self, fields: Mapping[str, Any]) -> Response:
        """POST form-encoded fields (as Slack sends slash commands)."""
        body = urllib.parse.urlencode({k: "" if v is None else v for k, v in fields.items()})
        response = self.post(body, "application/x-www-form-urlencoded")
        response.sent = dict(fields)
        return response

    def post_payload(self, payload: JSONDict) -> Response:
        """POST ``payload=<json>`` form-encoded (as Slack sends interactivity payloads)."""
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        response = self.post(body, "application/x-www-form-urlencoded")
        response.sent = payload
        return response

    def post_json(self, document: JSONDict) -> Response:
        """POST a JSON document (as Slack sends Events API requests)."""
        response = self.post(json.dumps(document), "application/json")
        response.sent = document
        return response

    # ---------------------------------------------------------------- payload pieces

    def _user(self, user_id: str) -> JSONDict:
        info = self.standin.user(user_id)
        name = info["name"] if info else user_id.lower()
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _team(self) -> JSONDict:
        return {"id": self.team_id, "domain": self.team_domain}

    def _late(self, response: Response) -> bool:
        if self.ack_timeout is not None and response.elapsed > self.ack_timeout:
            response.problems.append(
                f"the app took {response.elapsed:.2f}s to acknowledge; Slack gives up after "
                f"{self.ack_timeout}s and shows the user an error"
            )
            return True
        return False

    def _interaction_base(self, user_id: str) -> JSONDict:
        return {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": self.standin.app_id,
            "token": self.verification_token,
            "trigger_id": self.standin.issue_trigger_id(user_id),
            "team": self._team(),
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _action(
        self, block: JSONDict, element: JSONDict, raw: Any, *, force: bool
    ) -> tuple[JSONDict, JSONDict | None]:
        kind = element.get("type", "")
        action: JSONDict = {
            "type": kind,
            "action_id": element.get("action_id"),
            "block_id": block.get("block_id"),
        }
        state: JSONDict | None = None
        if kind == "button":
            action["text"] = copy.deepcopy(element.get("text"))
            if "value" in element:
                action["value"] = element["value"]
            if "style" in element:
                action["style"] = element["style"]
        elif kind == "overflow":
            if raw is None:
                raise ValueError(f"overflow {element.get('action_id')!r} needs an option value")
            action["selected_option"] = _pick_option(element, raw, force=force)
        elif kind in STATEFUL_TYPES:
            if raw is None and kind not in _MULTI_OPTION | set(_MULTI_VALUE):
                raise ValueError(
                    f"{kind} {element.get('action_id')!r} needs a value to select/enter"
                )
            state = element_state(element, raw, force=force)
            action.update({k: v for k, v in state.items() if k != "type"})
            if element.get("placeholder") is not None:
                action["placeholder"] = copy.deepcopy(element["placeholder"])
        elif not force:
            raise ValueError(f"element type {kind!r} cannot be acted on")
        action["action_ts"] = self.standin.next_ts()
        return action, state

    def _typed_overrides(
        self,
        view: JSONDict,
        values: Mapping[str, Any] | None,
        *,
        force: bool,
        strict: bool = False,
        ignored: list[str] | None = None,
    ) -> dict[tuple[str, str], JSONDict]:
        """Resolve ``{block_id or action_id: raw}`` against a view's stateful elements.

        Keys that match no input (a person cannot type into an input that is not shown) are
        skipped and appended to ``ignored``; with ``strict`` they raise ``KeyError``.
        """
        overrides: dict[tuple[str, str], JSONDict] = {}
        if not values:
            return overrides
        stateful = [
            (b, e)
            for b, e in iter_interactive_elements(view.get("blocks"))
            if e.get("type") in STATEFUL_TYPES
        ]
        for key, raw in values.items():
            matches = [(b, e) for b, e in stateful if b.get("block_id") == key]
            if not matches:
                matches = [(b, e) for b, e in stateful if e.get("action_id") == key]
            if not matches and not strict:
                if ignored is not None:
                    ignored.append(key)
                continue
            if len(matches) != 1:
                known = [f"{b.get('block_id')}/{e.get('action_id')}" for b, e in stateful]
                problem = "no" if not matches else "more than one"
                raise KeyError(
                    f"{problem} input matches {key!r} in view {view.get('callback_id')!r}; "
                    f"inputs (block_id/action_id): {known}"
                )
            block, element = matches[0]
            overrides[(str(block.get("block_id")), str(element.get("action_id")))] = element_state(
                element, raw, force=force
            )
        return overrides

    @staticmethod
    def _nested(overrides: Mapping[tuple[str, str], JSONDict]) -> dict[str, dict[str, JSONDict]]:
        nested: dict[str, dict[str, JSONDict]] = {}
        for (block_id, action_id), state in overrides.items():
            nested.setdefault(block_id, {})[action_id] = state
        return nested

    # ---------------------------------------------------------------- slash commands

    def command(
        self,
        user_id: str,
        text: str,
        command: str = "/support",
        channel_id: str = "C_GENERAL",
        user_name: str | None = None,
    ) -> Response:
        """Send a slash command as ``user_id`` typed it in ``channel_id``.

        A non-empty acknowledgement body is shown to the user like Slack does: as an ephemeral
        message (or in the channel for ``response_type: in_channel``).
        """
        channel = self.standin.resolve_channel(channel_id)
        response_url = self.standin.new_response_url(user_id, channel)
        trigger_id = self.standin.issue_trigger_id(user_id)
        fields = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel,
            "channel_name": self.standin.channel_name(channel),
            "user_id": user_id,
            "user_name": user_name or self._user(user_id)["name"],
            "command": command,
            "text": text,
            "api_app_id": self.standin.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        response = self.post_form(fields)
        response.response_url, response.trigger_id = response_url, trigger_id
        if response.status == 200 and response.body.strip() and not self._late(response):
            parsed = response.json()
            payload = parsed if isinstance(parsed, dict) else {"text": response.body}
            if any(payload.get(k) for k in ("text", "blocks", "attachments")):
                refused = self.standin.deliver_response(response_url, payload)
                response.problems += [f"Slack would not show the answer: {p}" for p in refused]
        return response

    # ---------------------------------------------------------------- message interactions

    def click(
        self,
        user_id: str,
        channel: str,
        ts: str,
        action_id: str,
        value: Any = None,
        *,
        block_id: str | None = None,
        force: bool = False,
    ) -> Response:
        """Click a button (or pick ``value`` in a select/overflow) in channel message ``ts``.

        For buttons, ``value`` picks among buttons sharing ``action_id`` and must match the
        button's value.  Raises ``LookupError`` if the message or element is not there.
        """
        resolved = self.standin.resolve_channel(channel)
        try:
            message = self.standin.message(resolved, ts)
        except KeyError as error:
            raise LookupError(str(error.args[0])) from None
        return self._click_message(
            user_id,
            message,
            action_id,
            resolved,
            value,
            is_ephemeral=False,
            include_message=True,
            block_id=block_id,
            force=force,
        )

    def click_in(
        self,
        user_id: str,
        message: JSONDict,
        action_id: str,
        channel_id: str | None = None,
        value: Any = None,
        *,
        is_ephemeral: bool | None = None,
        include_message: bool | None = None,
        block_id: str | None = None,
        force: bool = False,
    ) -> Response:
        """Click in a message given as a dict (an ephemeral, a slash-command answer, or a
        possibly doctored copy of a channel message).

        ``channel_id`` defaults to ``message["channel"]``.  ``is_ephemeral`` defaults to False
        when the stand-in holds a channel message with the message's ``ts`` in that channel,
        else True.  Slack leaves ``message`` out of block_actions payloads from ephemeral
        messages; ``include_message`` overrides that.  The dict's blocks are used as given.
        """
        channel = channel_id or message.get("channel")
        if not channel:
            raise ValueError("click_in needs channel_id (the message has no 'channel')")
        channel = self.standin.resolve_channel(str(channel))
        if is_ephemeral is None:
            ts = message.get("ts")
            is_ephemeral = not (ts and any(m["ts"] == ts for m in self.standin.messages(channel)))
        return self._click_message(
            user_id,
            message,
            action_id,
            str(channel),
            value,
            is_ephemeral=is_ephemeral,
            include_message=(not is_ephemeral) if include_message is None else include_message,
            block_id=block_id,
            force=force,
        )

    def click_ephemeral(
        self,
        user_id: str,
        action_id: str,
        value: Any = None,
        *,
        channel_id: str | None = None,
        block_id: str | None = None,
        force: bool = False,
    ) -> Response:
        """Click ``action_id`` in the newest ephemeral message shown to ``user_id`` that has it."""
        for message in reversed(self.standin.ephemerals(user_id, channel_id)):
            has_it = any(
                e.get("action_id") == action_id
                for _b, e in iter_interactive_elements(_message_blocks(message))
            )
            if has_it:
                return self.click_in(
                    user_id, message, action_id, value=value, block_id=block_id, force=force
                )
        raise LookupError(
            f"no ephemeral message shown to {user_id} has an element with action_id {action_id!r}"
        )

    def _click_message(
        self,
        user_id: str,
        message: JSONDict,
        action_id: str,
        channel: str,
        value: Any,
        *,
        is_ephemeral: bool,
        include_message: bool,
        block_id: str | None,
        force: bool,
    ) -> Response:
        where = f"message ts={message.get('ts')} in {channel}"
        block, element = _find_element(
            _message_blocks(message), action_id, where=where, value=value, block_id=block_id
        )
        action, state = self._action(block, element, value, force=force)
        ts = str(message.get("ts") or self.standin.next_ts())
        response_url = self.standin.new_response_url(
            user_id, channel, message_ts=ts, is_ephemeral=is_ephemeral
        )
        container: JSONDict = {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel,
            "is_ephemeral": is_ephemeral,
        }
        if message.get("thread_ts"):
            container["thread_ts"] = message["thread_ts"]
        payload = self._interaction_base(user_id)
        payload.update(
            {
                "container": container,
                "channel": {"id": channel, "name": self.standin.channel_name(channel)},
                "state": {
                    "values": {action["block_id"]: {action["action_id"]: state}} if state else {}
                },
                "response_url": response_url,
                "actions": [action],
            }
        )
        if include_message:
            payload["message"] = copy.deepcopy(message)
        response = self.post_payload(payload)
        response.response_url, response.trigger_id = response_url, payload["trigger_id"]
        self._late(response)
        return response

    # ---------------------------------------------------------------- views

    def _current_view(self, user_id: str, *, home: bool) -> JSONDict:
        view = self.standin.home_view(user_id) if home else self.standin.open_view(user_id)
        if view is None:
            what = "home view published" if home else "modal open"
            raise LookupError(f"user {user_id} has no {what}")
        return view

    def fill_view(
        self,
        user_id: str,
        values: Mapping[str, Any],
        *,
        home: bool = False,
        force: bool = False,
        strict: bool = False,
    ) -> list[str]:
        """Type into the open modal without sending anything (Slack sends nothing on typing).

        Returns the keys that matched no input in the view (``strict=True`` raises instead).
        """
        view = self._current_view(user_id, home=home)
        ignored: list[str] = []
        overrides = self._typed_overrides(view, values, force=force, strict=strict, ignored=ignored)
        self.standin.set_view_state(view["id"], self._nested(overrides))
        return ignored

    def view_action(
        self,
        user_id: str,
        action_id: str,
        selected_option_value: Any = None,
        *,
        value: Any = None,
        values: Mapping[str, Any] | None = None,
        block_id: str | None = None,
        home: bool = False,
        force: bool = False,
    ) -> Response:
        """Act on an element of the open modal (or App Home with ``home=True``).

        Sends ``block_actions`` with ``container.type == "view"``, the view, and its
        ``state.values`` holding what was typed so far (``values`` is typed first, as with
        :meth:`fill_view`).  For selects/radio buttons/checkboxes/date pickers pass the chosen
        ``selected_option_value`` (a list for checkboxes); for buttons ``value`` picks the button.
        """
        view = self._current_view(user_id, home=home)
        ignored: list[str] = []
        if values:
            ignored = self.fill_view(user_id, values, home=home, force=force)
            view = self._current_view(user_id, home=home)
        where = f"view {view['id']} ({view.get('callback_id')!r})"
        block, element = _find_element(
            view.get("blocks"), action_id, where=where, value=value, block_id=block_id
        )
        raw = selected_option_value if selected_option_value is not None else value
        action, state = self._action(block, element, raw, force=force)
        if state is not None:
            self.standin.set_view_state(
                view["id"], {action["block_id"]: {action["action_id"]: state}}
            )
            view = self._current_view(user_id, home=home)
        view["state"] = {"values": build_view_state(view)}
        payload = self._interaction_base(user_id)
        payload.update(
            {
                "container": {"type": "view", "view_id": view["id"]},
                "view": view,
                "actions": [action],
                "state": copy.deepcopy(view["state"]),
            }
        )
        response = self.post_payload(payload)
        response.trigger_id = payload["trigger_id"]
        if ignored:
            response.problems.append(f"values for inputs not in the view were ignored: {ignored}")
        self._late(response)
        return response

    def click_view_button(
        self, user_id: str, action_id: str, value: Any = None, *, block_id: str | None = None
    ) -> Response:
        """Click a button inside the open modal."""
        return self.view_action(user_id, action_id, value=value, block_id=block_id)

    def click_home(
        self, user_id: str, action_id: str, value: Any = None, *, block_id: str | None = None
    ) -> Response:
        """Click a button (or pick ``value`` in a select) in ``user_id``'s App Home."""
        return self.view_action(user_id, action_id, value=value, block_id=block_id, home=True)

    def submit_view(
        self,
        user_id: str,
        values: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
        strict: bool = False,
    ) -> Response:
        """Press Submit on ``user_id``'s open modal after entering ``values``.

        ``values`` maps block_id (or action_id) to the raw input (see :func:`element_state`);
        inputs not mentioned keep what was typed before or their initial value, else are sent
        empty.  Keys matching no input in the view are skipped (noted in
        ``Response.problems``).  With ``strict=True`` raise where Slack's own client would
        refuse to submit (required input empty, text too short/long, bad number/email/url:
        ``ValueError``) and for keys matching no input (``KeyError``).  ``force`` allows
        options that the element does not offer.

        The answer is applied to the stand-in like Slack would: empty/``clear`` closes,
        ``update``/``push`` change the stack, ``errors`` keeps the modal open.
        """
        view = self._current_view(user_id, home=False)
        ignored: list[str] = []
        overrides = self._typed_overrides(view, values, force=force, strict=strict, ignored=ignored)
        if overrides:
            self.standin.set_view_state(view["id"], self._nested(overrides))
            view = self._current_view(user_id, home=False)
        view["state"] = {"values": build_view_state(view)}
        if strict:
            problems = _client_side_problems(view)
            if problems:
                raise ValueError("Slack would not submit this modal: " + "; ".join(problems))
        response = self._send_view_submission(user_id, view)
        if ignored:
            response.problems.append(f"values for inputs not in the view were ignored: {ignored}")
        if response.status == 200 and not self._late(response):
            body: Any = response.json() if response.body.strip() else None
            if response.body.strip() and body is None:
                response.problems.append(f"acknowledgement is not JSON: {response.body[:200]!r}")
            else:
                response.problems += self.standin.apply_view_response(user_id, body)
        return response

    def raw_view_submission(self, user_id: str, view: JSONDict) -> Response:
        """Send a ``view_submission`` with a fully forged ``view`` (no state is changed)."""
        return self._send_view_submission(user_id, view)

    def _send_view_submission(self, user_id: str, view: JSONDict) -> Response:
        payload: JSONDict = {
            "type": "view_submission",
            "team": self._team(),
            "user": self._user(user_id),
            "api_app_id": self.standin.app_id,
            "token": self.verification_token,
            "trigger_id": self.standin.issue_trigger_id(user_id),
            "view": copy.deepcopy(view),
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        response = self.post_payload(payload)
        response.trigger_id = payload["trigger_id"]
        return response

    def close_view(self, user_id: str) -> Response | None:
        """Press Cancel/close on the open modal; sends ``view_closed`` if it asked to be told."""
        view = self.standin.open_view(user_id)
        if view is None:
            raise LookupError(f"user {user_id} has no modal open")
        clear = bool(view.get("clear_on_close"))
        self.standin.close_view(user_id, clear=clear)
        if not view.get("notify_on_close"):
            return None
        view["state"] = {"values": build_view_state(view)}
        return self.post_payload(
            {
                "type": "view_closed",
                "team": self._team(),
                "user": self._user(user_id),
                "api_app_id": self.standin.app_id,
                "token": self.verification_token,
                "view": view,
                "is_cleared": clear,
                "is_enterprise_install": False,
                "enterprise": None,
            }
        )

    # ---------------------------------------------------------------- Events API

    def event(
        self,
        event: JSONDict,
        retry_num: int | None = None,
        *,
        retry_reason: str = "http_timeout",
        event_id: str | None = None,
        event_time: int | None = None,
    ) -> Response:
        """Deliver an Events API ``event_callback`` wrapping ``event``.

        ``event_ts`` is filled in when missing.  With ``retry_num`` the ``X-Slack-Retry-Num``
        and ``X-Slack-Retry-Reason`` headers are sent; pass the first delivery's
        ``Response.event_id`` as ``event_id`` to make it a true redelivery.
        """
        event = copy.deepcopy(event)
        event.setdefault("event_ts", self.standin.next_ts())
        event_id = event_id or "Ev" + secrets.token_hex(5).upper()
        envelope: JSONDict = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": None,
            "api_app_id": self.standin.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": event_time if event_time is not None else int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.standin.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + secrets.token_hex(16),
        }
        body = json.dumps(envelope)
        headers: dict[str, str | None] = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        response = self.post(body, "application/json", headers=headers)
        response.sent, response.event_id = envelope, event_id
        return response

    def message(
        self, user_id: str, channel: str, text: str, *, thread_ts: str | None = None
    ) -> Response:
        """``user_id`` writes ``text`` in ``channel`` (a user id means the DM with the bot).

        The message is stored in the stand-in, then a ``message`` event is delivered.
        """
        return self._user_message("message", user_id, channel, text, thread_ts)

    def mention(
        self, user_id: str, channel: str, text: str, *, thread_ts: str | None = None
    ) -> Response:
        """Like :meth:`message`, but delivers the ``app_mention`` event Slack sends for it."""
        return self._user_message("app_mention", user_id, channel, text, thread_ts)

    def _user_message(
        self, event_type: str, user_id: str, channel: str, text: str, thread_ts: str | None
    ) -> Response:
        resolved = self.standin.resolve_channel(channel)
        stored = self.standin.add_message(
            resolved,
            text,
            user=user_id,
            thread_ts=thread_ts,
            client_msg_id=secrets.token_hex(16),
        )
        event: JSONDict = {
            "type": event_type,
            "channel": resolved,
            "user": user_id,
            "text": text,
            "ts": stored["ts"],
            "event_ts": stored["ts"],
            "team": self.team_id,
            "client_msg_id": stored["client_msg_id"],
        }
        if event_type == "message":
            event["channel_type"] = "im" if resolved.startswith("D") else "channel"
        if stored.get("thread_ts"):
            event["thread_ts"] = stored["thread_ts"]
        return self.event(event)

    def app_home_opened(self, user_id: str, tab: str = "home") -> Response:
        """``user_id`` opens the app's Home (or Messages) tab."""
        event: JSONDict = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": self.standin.dm_channel(user_id),
            "tab": tab,
        }
        home = self.standin.home_view(user_id)
        if home is not None and tab == "home":
            event["view"] = home
        return self.event(event)

    def url_verification(self, challenge: str) -> Response:
        """Send the ``url_verification`` handshake Slack sends when the request URL is set."""
        return self.post_json(
            {"token": self.verification_token, "challenge": challenge, "type": "url_verification"}
        )


def _client_side_problems(view: JSONDict) -> list[str]:
    """What Slack's own client checks before it lets a user submit a modal."""
    problems: list[str] = []
    state = view["state"]["values"]
    for block in view.get("blocks") or []:
        if not isinstance(block, dict) or block.get("type") != "input":
            continue
        element = block.get("element") or {}
        block_id, action_id = block.get("block_id"), element.get("action_id")
        entry = state.get(block_id, {}).get(action_id) or {}
        if _is_empty(entry):
            if not block.get("optional"):
                problems.append(f"{block_id}: required")
            continue
        value = entry.get("value")
        kind = element.get("type")
        if kind == "plain_text_input" and isinstance(value, str):
            if element.get("min_length") is not None and len(value) < element["min_length"]:
                problems.append(f"{block_id}: shorter than {element['min_length']}")
            if element.get("max_length") is not None and len(value) > element["max_length"]:
                problems.append(f"{block_id}: longer than {element['max_length']}")
        elif kind == "number_input" and isinstance(value, str):
            try:
                number = float(value) if element.get("is_decimal_allowed") else int(value)
            except ValueError:
                problems.append(f"{block_id}: not a number")
                continue
            low, high = element.get("min_value"), element.get("max_value")
            if low is not None and number < float(low):
                problems.append(f"{block_id}: below {low}")
            if high is not None and number > float(high):
                problems.append(f"{block_id}: above {high}")
        elif kind == "email_text_input" and isinstance(value, str) and "@" not in value:
            problems.append(f"{block_id}: not an email address")
        elif (
            kind == "url_text_input"
            and isinstance(value, str)
            and not value.startswith(("http://", "https://"))
        ):
            problems.append(f"{block_id}: not a URL")
    return problems
