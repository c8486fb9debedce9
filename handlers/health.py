"""Service health in Slack (SC-5): `/support health` for everyone, the leads' forms to post,
update and resolve incidents, **Follow this incident** (before an intake, or from the list),
the intake hook and the follower's DM.

Slash-command subcommands get no trigger_id here, so the forms open from buttons: the reply
to `/support health` carries **Post an incident** (leads), and **Update** / **Resolve** on
each current incident (leads). Every button and submission checks again on the server that
the person is a lead: a forged click or form changes nothing.

Kept free of `handlers.desk` / `handlers.notices` at import time so that handlers/notices.py
can import `render_health_update` from here without an import cycle.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticMultiSelectElement,
)
from slack_sdk.models.views import View
from sqlmodel import Session

from chatops import health as core
from chatops.directory import find_person, is_lead
from chatops.policy import SupportRules
from handlers.blocks import SECTION_MAX, when
from handlers.text import clip, escape, escaped_clip, record_id, view_metadata
from models.health import HealthIncident, HealthUpdate

if TYPE_CHECKING:
    from handlers.desk import Desk

log = logging.getLogger(__name__)

# action ids and callback ids, one place so listeners and builders agree
POST_OPEN = "health_post_open"
UPDATE_OPEN = "health_update_open"
RESOLVE_OPEN = "health_resolve_open"
FOLLOW = "follow_incident"
POST_CALLBACK = "health_post"
UPDATE_CALLBACK = "health_update"
RESOLVE_CALLBACK = "health_resolve"
NOTICE_PREFIX = (
    "health_notice_"  # block ids of intake_notice's blocks: health_notice_<id>[_actions]
)

LIST_LIMIT = 10  # incidents listed per group in `/support health`; the rest are counted
NOTICE_LIMIT = 3  # incidents shown in an intake notice
FOLLOW_NOTE = "You will get updates by DM until it is resolved; you can still open a case."

Blocks = list[dict[str, Any]]


# --- building blocks ---------------------------------------------------------------------


def _mrkdwn(text: str, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(block_id=block_id, text=MarkdownTextObject(text=clip(text, SECTION_MAX)))


def _context(text: str, block_id: str | None = None) -> ContextBlock:
    return ContextBlock(block_id=block_id, elements=[MarkdownTextObject(text=clip(text, 3000))])


def _dicts(items: list[Block]) -> Blocks:
    return [item.to_dict() for item in items]


def services_text(incident: HealthIncident, rules: SupportRules) -> str:
    labels = core.service_labels(rules)
    return ", ".join(escape(labels.get(key, key)) for key in incident.services or []) or "—"


def _incident_text(
    incident: HealthIncident, rules: SupportRules, reader_tz: str | None, *, icon: str
) -> str:
    return (
        f"{icon} *{escaped_clip(incident.title, core.TITLE_MAX)}*\n"
        f"*Services:* {services_text(incident, rules)} · since "
        f"{when(incident.created_at, rules, reader_tz)}\n"
        f"*Impact:* {escaped_clip(incident.impact, 700)}\n"
        f"*Latest* ({when(incident.updated_at, rules, reader_tz)}): "
        f"{escaped_clip(incident.status, 1200)}"
    )


def _packed(head: str, lines: list[str]) -> list[Block]:
    """Lines in as few sections as fit, never cutting a line (an escaped entity or a date
    token cut in half would show as garbage)."""
    sections: list[Block] = []
    text = head
    for line in lines:
        if len(text) + 1 + len(line) > SECTION_MAX:
            sections.append(_mrkdwn(text))
            text = line
        else:
            text += "\n" + line
    sections.append(_mrkdwn(text))
    return sections


def _follow_button(incident_id: int | None, text: str = "Follow this incident") -> ButtonElement:
    return ButtonElement(text=text, action_id=FOLLOW, value=str(incident_id))


def status_blocks(
    session: Session,
    rules: SupportRules,
    now: datetime,
    *,
    lead: bool = False,
    reader_tz: str | None = None,
    post_button: bool = True,
) -> Blocks:
    """What `/support health` shows: current incidents, those resolved in the last 7 days,
    and for leads the buttons that open the forms."""
    items: list[Block] = [HeaderBlock(text="Service health")]
    active = core.active_incidents(session)
    if not active:
        items.append(_mrkdwn(":large_green_circle: *No known issues right now.*"))
    else:
        items.append(_mrkdwn(f"*Current incidents ({len(active)})*"))
        for incident in active[:LIST_LIMIT]:
            items.append(_mrkdwn(_incident_text(incident, rules, reader_tz, icon=":warning:")))
            buttons = [_follow_button(incident.id, "Follow")]
            if lead:
                buttons += [
                    ButtonElement(text="Update", action_id=UPDATE_OPEN, value=str(incident.id)),
                    ButtonElement(
                        text="Resolve",
                        action_id=RESOLVE_OPEN,
                        value=str(incident.id),
                        style="primary",
                    ),
                ]
            items.append(ActionsBlock(block_id=f"health_incident_{incident.id}", elements=buttons))
        if len(active) > LIST_LIMIT:
            items.append(_context(f"…and {len(active) - LIST_LIMIT} more current incidents."))
    resolved = core.recent(session, now)
    if resolved:
        lines = []
        for incident in resolved[:LIST_LIMIT]:
            assert incident.resolved_at is not None
            lines.append(
                f"• :white_check_mark: *{escaped_clip(incident.title, core.TITLE_MAX)}* "
                f"({services_text(incident, rules)}) — resolved "
                f"{when(incident.resolved_at, rules, reader_tz)}: "
                f"{escaped_clip(incident.status, 200)}"
            )
        if len(resolved) > LIST_LIMIT:
            lines.append(f"…and {len(resolved) - LIST_LIMIT} more")
        items += _packed(f"*Resolved in the last {core.RECENT_DAYS} days ({len(resolved)})*", lines)
    else:
        items.append(_mrkdwn(f"*Resolved in the last {core.RECENT_DAYS} days:* none"))
    if lead and post_button:
        items.append(
            ActionsBlock(
                block_id="health_lead",
                elements=[
                    ButtonElement(text="Post an incident", action_id=POST_OPEN, style="primary")
                ],
            )
        )
    url = rules.policy.self_help.service_health_url
    items.append(
        _context(
            f"Follow an incident to get its updates by DM until it is resolved. "
            f"The full dashboard: <{url}|service health>."
        )
    )
    return _dicts(items)


def intake_notice(
    session: Session,
    topic_key: str | None,
    rules: SupportRules,
    now: datetime,
    *,
    user_id: str | None = None,
    reader_tz: str | None = None,
) -> Blocks | None:
    """SC-5 for the intake form: the active incidents affecting the chosen technical topic,
    each with **Follow this incident** (action `follow_incident`, value the incident id);
    None when the topic is not a service or nothing is known to be wrong with it.

    Block ids are `health_notice_<id>` and `health_notice_<id>_actions`: a click from a
    modal replaces exactly these with a confirmation and keeps the rest of the form."""
    del now  # the notice shows stored instants only; kept for a stable signature
    if not topic_key or topic_key not in core.service_labels(rules):
        return None
    incidents = core.incidents_for_topic(session, topic_key)
    if not incidents:
        return None
    items: list[Block] = []
    for incident in incidents[:NOTICE_LIMIT]:
        text = (
            _incident_text(incident, rules, reader_tz, icon=":warning: Known issue:")
            + "\nIf this is your problem, follow the incident instead of opening a duplicate "
            "case: you get its updates by DM until it is resolved. You can still open a case."
        )
        items.append(_mrkdwn(text, block_id=f"{NOTICE_PREFIX}{incident.id}"))
        if user_id and incident.id is not None and core.is_following(session, incident.id, user_id):
            items.append(
                _context(
                    f":white_check_mark: You follow this incident. {FOLLOW_NOTE}",
                    block_id=f"{NOTICE_PREFIX}{incident.id}_actions",
                )
            )
        else:
            items.append(
                ActionsBlock(
                    block_id=f"{NOTICE_PREFIX}{incident.id}_actions",
                    elements=[_follow_button(incident.id)],
                )
            )
    if len(incidents) > NOTICE_LIMIT:
        items.append(
            _context(
                f"…and {len(incidents) - NOTICE_LIMIT} more: see `/support health`.",
                block_id=f"{NOTICE_PREFIX}more",
            )
        )
    return _dicts(items)


def with_intake_notice(modal: dict[str, Any], notice: Blocks | None) -> dict[str, Any]:
    """The intake modal with `notice` (from intake_notice) right after its topic input; the
    modal unchanged when there is no notice."""
    if not notice:
        return modal
    blocks = list(modal.get("blocks") or [])
    at = next((i + 1 for i, b in enumerate(blocks) if b.get("block_id") == "topic"), 0)
    return {**modal, "blocks": blocks[:at] + notice + blocks[at:]}


def render_health_update(
    session: Session, payload: dict[str, Any], rules: SupportRules, now: datetime
) -> tuple[str, Blocks]:
    """The DM to one follower about one update (outbox kind `health.update`): the incident,
    its services, the status of *this* update and whether it is resolved. Raises LookupError
    when the incident or the update no longer exists (a retry cannot fix that)."""
    del now
    incident = session.get(HealthIncident, payload.get("incident_id"))
    entry = session.get(HealthUpdate, payload.get("update_id"))
    if incident is None or entry is None or entry.incident_id != incident.id:
        raise LookupError(
            f"health incident {payload.get('incident_id')} / update "
            f"{payload.get('update_id')} does not exist"
        )
    person = find_person(session, str(payload.get("user") or ""))
    reader_tz = person.tz if person else None
    title = escaped_clip(incident.title, core.TITLE_MAX)
    resolved = entry.kind == "resolved"
    if resolved:
        head = f":white_check_mark: *Resolved: {title}*"
        text = f"Resolved: {title}"
        footer = (
            "This incident is resolved: this is the last update about it. If the problem "
            "persists, ask with `/support <your question>` and open a case."
        )
    else:
        head = f":warning: *Service health update: {title}*"
        text = f"Service health update: {title}"
        footer = (
            "You follow this incident: its updates come here until it is resolved. "
            "`/support health` shows every current incident."
        )
    body = (
        f"{head}\n*Services:* {services_text(incident, rules)}\n"
        f"*Status* ({when(entry.at, rules, reader_tz)}): {escaped_clip(entry.status, 2000)}"
    )
    return clip(text, 300), _dicts([_mrkdwn(body), _context(footer)])


# --- the forms ---------------------------------------------------------------------------


def post_modal(rules: SupportRules) -> dict[str, Any]:
    options = [
        Option(value=key, label=clip(label, 75))
        for key, label in core.service_labels(rules).items()
    ]
    return View(
        type="modal",
        callback_id=POST_CALLBACK,
        title=PlainTextObject(text="Post an incident"),
        submit=PlainTextObject(text="Post"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            InputBlock(
                block_id="services",
                label="Affected services",
                element=StaticMultiSelectElement(
                    action_id="services", placeholder="Choose services", options=options
                ),
            ),
            InputBlock(
                block_id="title",
                label="Title",
                hint="What customers see first, e.g. “Mail delivery delayed”.",
                element=PlainTextInputElement(action_id="title", max_length=core.TITLE_MAX),
            ),
            InputBlock(
                block_id="impact",
                label="Impact",
                hint="Who is affected and how.",
                element=PlainTextInputElement(
                    action_id="impact", multiline=True, max_length=core.IMPACT_MAX
                ),
            ),
            InputBlock(
                block_id="status",
                label="Status",
                hint="What is known and what is being done.",
                element=PlainTextInputElement(
                    action_id="status", multiline=True, max_length=core.STATUS_MAX
                ),
            ),
        ],
    ).to_dict()


def status_modal(incident: HealthIncident, rules: SupportRules, *, resolve: bool) -> dict[str, Any]:
    """Update (a new status) or resolve (a closing status) an incident."""
    return View(
        type="modal",
        callback_id=RESOLVE_CALLBACK if resolve else UPDATE_CALLBACK,
        title=PlainTextObject(text="Resolve incident" if resolve else "Update incident"),
        submit=PlainTextObject(text="Resolve" if resolve else "Post update"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=json.dumps({"incident_id": incident.id}),
        blocks=[
            _mrkdwn(_incident_text(incident, rules, None, icon=":warning:")),
            InputBlock(
                block_id="status",
                label="Closing status" if resolve else "New status",
                hint=(
                    "What was wrong and what fixed it. Followers get this as the last update."
                    if resolve
                    else "What is known now and what is being done. Followers get it by DM."
                ),
                element=PlainTextInputElement(
                    action_id="status", multiline=True, max_length=core.STATUS_MAX
                ),
            ),
        ],
    ).to_dict()


def message_view(title: str, text: str) -> dict[str, Any]:
    return View(
        type="modal",
        title=PlainTextObject(text=clip(title, 24)),
        close=PlainTextObject(text="Close"),
        blocks=[_mrkdwn(text)],
    ).to_dict()


# --- `/support health` -------------------------------------------------------------------


def health_reply(desk: Desk, user_id: str, rest: str) -> Blocks:
    """`/support health [post]`: the status for anyone; leads get the buttons."""
    word = rest.strip().lower()
    now = desk.clock.now()
    with Session(desk.engine) as session:
        person = find_person(session, user_id)
        lead = is_lead(person)
        reader_tz = person.tz if person else None
        listing = status_blocks(
            session, desk.rules, now, lead=lead, reader_tz=reader_tz, post_button=word != "post"
        )
    if word == "post":
        if not lead:
            refusal = "Only support leads can post service-health incidents."
            return _dicts([_mrkdwn(refusal)]) + listing
        return (
            _dicts(
                [
                    _mrkdwn("Press *Post an incident* to open the form."),
                    ActionsBlock(
                        block_id="health_post",
                        elements=[
                            ButtonElement(
                                text="Post an incident", action_id=POST_OPEN, style="primary"
                            )
                        ],
                    ),
                ]
            )
            + listing
        )
    if word:
        usage = "`/support health` shows the service health" + (
            "; `/support health post` posts an incident." if lead else "."
        )
        return _dicts([_mrkdwn(f"`{escape(word[:40])}` is not a health subcommand. {usage}")]) + (
            listing
        )
    return listing


SUBCOMMANDS: dict[str, tuple[str, Callable[..., Blocks]]] = {
    "health": (
        "service health: current incidents and those resolved in the last 7 days "
        "(leads: `health post`)",
        health_reply,
    ),
}


# --- listeners ---------------------------------------------------------------------------


def _answer(body: dict[str, Any], client: WebClient, respond: Respond, text: str) -> None:
    """An ephemeral answer to a click: through the response URL when the click came from a
    message, else (a click in a modal) by DM."""
    if body.get("response_url"):
        respond(replace_original=False, response_type="ephemeral", text=text)
        return
    try:
        client.chat_postMessage(channel=body["user"]["id"], text=text)
    except SlackApiError as exc:
        log.warning("health answer by DM failed: %s", exc.response.get("error"))


def _state(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    values = (view.get("state") or {}).get("values") or {}
    actions = values.get(block_id)
    if not isinstance(actions, dict):
        return {}
    state = actions.get(block_id) or next(iter(actions.values()), None)
    return state if isinstance(state, dict) else {}


def _text_value(view: dict[str, Any], block_id: str) -> str | None:
    value = _state(view, block_id).get("value")
    return value if isinstance(value, str) else None


def _selected(view: dict[str, Any], block_id: str) -> list[str]:
    options = _state(view, block_id).get("selected_options")
    if not isinstance(options, list):
        return []
    return [str(o.get("value")) for o in options if isinstance(o, dict) and o.get("value")]


def _errors_for_view(errors: dict[str, str], view: dict[str, Any]) -> dict[str, str]:
    """Slack shows an error only under an input block the view has; anything else goes on
    the first input so nothing is lost."""
    present = [b.get("block_id") for b in view.get("blocks") or [] if b.get("type") == "input"] or [
        "status"
    ]
    shown = {k: v for k, v in errors.items() if k in present}
    spill = [v for k, v in errors.items() if k not in present]
    if spill:
        target = str(present[0])
        shown[target] = " ".join([*spill, shown.get(target, "")]).strip()
    return shown


def _with_follow_note(view: dict[str, Any], incident_id: int, note: str) -> dict[str, Any]:
    """The same modal with this incident's notice replaced by `note`; the form's inputs keep
    their block and action ids, so what the admin typed stays."""
    keep = ("type", "callback_id", "title", "submit", "close", "private_metadata")
    spec: dict[str, Any] = {k: view[k] for k in keep if view.get(k) is not None}
    for flag in ("clear_on_close", "notify_on_close"):
        if view.get(flag):
            spec[flag] = True
    if view.get("external_id"):
        spec["external_id"] = view["external_id"]
    notice, buttons = f"{NOTICE_PREFIX}{incident_id}", f"{NOTICE_PREFIX}{incident_id}_actions"
    blocks: list[dict[str, Any]] = []
    placed = False
    for block in view.get("blocks") or []:
        block_id = block.get("block_id")
        if block_id == buttons:
            continue
        if block_id == notice:
            blocks.append(_context(note, block_id=notice).to_dict())
            placed = True
        else:
            blocks.append(block)
    if not placed:
        blocks.insert(0, _context(note, block_id=notice).to_dict())
    spec["blocks"] = blocks
    return spec


def register(app: App, desk: Desk) -> None:
    def lead(user_id: str) -> bool:
        with Session(desk.engine) as session:
            return is_lead(find_person(session, user_id))

    def open_form(
        body: dict[str, Any], client: WebClient, respond: Respond, view: dict[str, Any]
    ) -> None:
        try:
            client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            log.warning("views.open failed: %s", exc.response.get("error"))
            _answer(
                body,
                client,
                respond,
                "Slack did not let me open the form in time. Press the button again.",
            )

    @app.action(POST_OPEN)
    def open_post(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        if not lead(body["user"]["id"]):
            _answer(
                body,
                client,
                respond,
                "Only support leads can post service-health incidents. Nothing was changed.",
            )
            return
        if not core.service_labels(desk.rules):
            _answer(body, client, respond, "The policy has no technical topics to post against.")
            return
        open_form(body, client, respond, post_modal(desk.rules))

    def open_status(
        body: dict[str, Any],
        action: dict[str, Any],
        client: WebClient,
        respond: Respond,
        *,
        resolve: bool,
    ) -> None:
        user_id = body["user"]["id"]
        verb = "resolve" if resolve else "update"
        if not lead(user_id):
            _answer(
                body,
                client,
                respond,
                f"Only support leads can {verb} service-health incidents. Nothing was changed.",
            )
            return
        with Session(desk.engine) as session:
            incident = session.get(HealthIncident, record_id(action.get("value")))
        if incident is None:
            _answer(body, client, respond, "That incident does not exist.")
            return
        if incident.state != core.ACTIVE:
            _answer(
                body,
                client,
                respond,
                f"“{escaped_clip(incident.title, core.TITLE_MAX)}” is already resolved.",
            )
            return
        open_form(body, client, respond, status_modal(incident, desk.rules, resolve=resolve))

    @app.action(UPDATE_OPEN)
    def open_update(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        ack()
        open_status(body, action, client, respond, resolve=False)

    @app.action(RESOLVE_OPEN)
    def open_resolve(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        ack()
        open_status(body, action, client, respond, resolve=True)

    @app.view(POST_CALLBACK)
    def submit_post(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            incident = core.post_incident(
                desk.engine,
                body["user"]["id"],
                title=_text_value(view, "title"),
                services=_selected(view, "services"),
                impact=_text_value(view, "impact"),
                status=_text_value(view, "status"),
                rules=desk.rules,
                now=desk.clock.now(),
            )
        except core.HealthRefused as exc:
            ack(
                response_action="update",
                view=message_view("Not posted", f"{escape(str(exc))} Nothing was saved."),
            )
            return
        except core.HealthInputError as exc:
            ack(response_action="errors", errors=_errors_for_view(exc.errors, view))
            return
        ack(
            response_action="update",
            view=message_view(
                "Incident posted",
                f"*{escaped_clip(incident.title, core.TITLE_MAX)}* is posted for "
                f"{services_text(incident, desk.rules)}. Everyone sees it with `/support "
                "health`, and admins starting a case for these services are shown it first "
                "and offered to follow it.",
            ),
        )

    def submit_status(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], *, resolve: bool
    ) -> None:
        incident_id = record_id(view_metadata(view).get("incident_id"))
        change = core.resolve_incident if resolve else core.update_incident
        try:
            change(
                desk.engine,
                incident_id,
                body["user"]["id"],
                _text_value(view, "status"),
                desk.clock.now(),
            )
        except core.HealthRefused as exc:
            ack(
                response_action="update",
                view=message_view("Not saved", f"{escape(str(exc))} Nothing was changed."),
            )
            return
        except core.HealthInputError as exc:
            ack(response_action="errors", errors=_errors_for_view(exc.errors, view))
            return
        with Session(desk.engine) as session:
            incident = session.get(HealthIncident, incident_id)
            count = len(core.followers(session, incident_id))
        assert incident is not None
        title = escaped_clip(incident.title, core.TITLE_MAX)
        told = f"{count} follower{'s' if count != 1 else ''} will get it by DM."
        ack(
            response_action="update",
            view=message_view(
                "Incident resolved" if resolve else "Update posted",
                (f"*{title}* is resolved. " if resolve else f"Posted the update to *{title}*. ")
                + told,
            ),
        )
        desk.deliver(None)  # the followers' DMs, now; the worker retries what fails

    @app.view(UPDATE_CALLBACK)
    def submit_update(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        submit_status(ack, body, view, resolve=False)

    @app.view(RESOLVE_CALLBACK)
    def submit_resolve(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        submit_status(ack, body, view, resolve=True)

    @app.action(FOLLOW)
    def follow_clicked(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        ack()
        user_id = body["user"]["id"]
        incident_id = record_id(action.get("value"))
        try:
            new = core.follow(desk.engine, incident_id, user_id, desk.clock.now())
        except core.HealthRefused as exc:
            note = f"{escape(str(exc))} If you still have a problem, you can open a case."
        else:
            with Session(desk.engine) as session:
                incident = session.get(HealthIncident, incident_id)
            assert incident is not None
            title = escaped_clip(incident.title, core.TITLE_MAX)
            already = "" if new else " (already)"
            note = f":white_check_mark: You follow *{title}*{already}. {FOLLOW_NOTE}"
        container = body.get("container") or {}
        view = body.get("view")
        if container.get("type") == "view" and isinstance(view, dict) and view.get("id"):
            try:
                client.views_update(
                    view_id=view["id"],
                    hash=view.get("hash"),
                    view=_with_follow_note(view, incident_id, note),
                )
                return
            except SlackApiError as exc:  # e.g. the form changed meanwhile: say it by DM
                log.info("views.update after follow failed: %s", exc.response.get("error"))
        _answer(body, client, respond, note)
