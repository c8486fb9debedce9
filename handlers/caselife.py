"""Working a case from its card: reply, note, awaiting customer, change severity, resolve,
reopen; the requester's replies from their DM thread; the survey; `/support case CS-…`."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    InputBlock,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View
from sqlmodel import Session, select

from chatops.cases import lifecycle, states
from chatops.cases.clock import ClockChangeRefused, change_severity
from chatops.directory import find_person, is_agent
from chatops.queues import find_case, parse_case_reference
from handlers import blocks
from handlers.desk import Desk
from handlers.text import clip, escape, escaped_clip, mention, record_id, view_metadata
from models import Case, CaseEvent, CaseMessage, Organisation, Person, SurveyAnswer

log = logging.getLogger(__name__)

REPLY_VIEW, NOTE_VIEW, SEVERITY_VIEW, RESOLVE_VIEW, COMMENT_VIEW = (
    "case_reply_view",
    "case_note_view",
    "case_severity_view",
    "case_resolve_view",
    "survey_comment_view",
)


def _text_modal(
    callback: str,
    title: str,
    label: str,
    submit: str,
    case: Case,
    hint: str | None = None,
    **seen: int,
) -> dict[str, Any]:
    return View(
        type="modal",
        callback_id=callback,
        title=PlainTextObject(text=clip(title, 24)),
        submit=PlainTextObject(text=submit),
        close=PlainTextObject(text="Cancel"),
        private_metadata=json.dumps({"case_id": case.id, **seen}),
        blocks=[
            SectionBlock(
                text=f"*{case.number}* · Sev {case.severity} · {escaped_clip(case.title, 200)}"
            ),
            InputBlock(
                block_id="text",
                label=label,
                hint=hint,
                element=PlainTextInputElement(
                    action_id="text", multiline=True, max_length=lifecycle.MESSAGE_MAX
                ),
            ),
        ],
    ).to_dict()


def _severity_modal(desk: Desk, case: Case, allowed: list[str]) -> dict[str, Any]:
    options = [
        Option(value=s, label=desk.rules.policy.severities[s].label)  # type: ignore[index]
        for s in allowed
        if s != case.severity
    ]
    return View(
        type="modal",
        callback_id=SEVERITY_VIEW,
        title=PlainTextObject(text="Change severity"),
        submit=PlainTextObject(text="Change"),
        close=PlainTextObject(text="Cancel"),
        # the severity the agent saw: a colleague's change made meanwhile is not overridden
        # by a choice made against the old one
        private_metadata=json.dumps({"case_id": case.id, "severity": case.severity}),
        blocks=[
            SectionBlock(
                text=f"*{case.number}* is Sev {case.severity}. The time already "
                "spent counts against the new target."
            ),
            InputBlock(
                block_id="severity",
                label="New severity",
                element=StaticSelectElement(action_id="severity", options=options),
            ),
            InputBlock(
                block_id="text",
                label="Reason",
                element=PlainTextInputElement(action_id="text", max_length=500),
            ),
        ],
    ).to_dict()


def _load(desk: Desk, case_id: int) -> Case | None:
    with Session(desk.engine) as session:
        return session.get(Case, case_id)


def _metadata_case(view: dict[str, Any]) -> int:
    return record_id(view_metadata(view).get("case_id"))


def _metadata(view: dict[str, Any], key: str) -> Any:
    """What the form was opened with under `key` (None on a form from before it carried
    one, or a forged one): the state of the case the person saw."""
    return view_metadata(view).get(key)


def _value(view: dict[str, Any], block: str) -> str:
    state = view.get("state", {}).get("values", {}).get(block, {})
    for item in state.values() if isinstance(state, dict) else []:
        if isinstance(item, dict):
            option = item.get("selected_option")
            raw = option.get("value") if isinstance(option, dict) else item.get("value")
            return str(raw or "")
    return ""


def register(app: App, desk: Desk) -> None:
    def refuse(respond: Respond, text: str) -> None:
        respond(replace_original=False, response_type="ephemeral", text=text)

    def open_modal(
        body: dict[str, Any], client: WebClient, respond: Respond, view: dict[str, Any]
    ) -> None:
        try:
            client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            log.warning("views.open failed: %s", exc.response.get("error"))
            refuse(respond, "Slack did not let me open the form in time. Press the button again.")

    def agent_and_case(
        body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> Case | None:
        with Session(desk.engine) as session:
            if not is_agent(find_person(session, body["user"]["id"])):
                refuse(respond, "Only support agents can work cases. Nothing was changed.")
                return None
        case = _load(desk, record_id(action.get("value")))
        if case is None:
            refuse(respond, "That case does not exist.")
        return case

    def open_case_for(
        body: dict[str, Any], action: dict[str, Any], respond: Respond, to_do: str
    ) -> Case | None:
        """The case of a form button, if it is still open. A card seen before a colleague
        resolved the case still offers the button: the agent is told now, not after
        writing a whole reply or resolution into a form that can only be refused."""
        case = agent_and_case(body, action, respond)
        if case is None or case.status in states.OPEN_STATUSES:
            return case
        if to_do == "resolve" and case.status == states.RESOLVED:
            refuse(respond, f"{case.number} is already resolved.")
        else:
            refuse(respond, states.not_open_reason(case.number, case.status, to_do))
        return None

    @app.action(blocks.CASE_REPLY)
    def reply_button(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        ack()
        case = open_case_for(body, action, respond, "reply")
        if case is not None:
            open_modal(
                body,
                client,
                respond,
                _text_modal(
                    REPLY_VIEW,
                    "Reply to requester",
                    "Your reply",
                    "Send",
                    case,
                    "The requester sees this in their DM thread for the case.",
                ),
            )

    @app.action(blocks.CASE_NOTE)
    def note_button(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        ack()
        case = agent_and_case(body, action, respond)
        if case is not None:
            open_modal(
                body,
                client,
                respond,
                _text_modal(
                    NOTE_VIEW,
                    "Internal note",
                    "Note",
                    "Add note",
                    case,
                    "Only support sees notes (the case's triage thread).",
                ),
            )

    @app.action(blocks.CASE_RESOLVE)
    def resolve_button(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        ack()
        case = open_case_for(body, action, respond, "resolve")
        if case is not None:
            with Session(desk.engine) as session:
                # what the note is written against: a resolve and reopen meanwhile is news
                resolved_before = lifecycle.resolutions(session, case.id)  # type: ignore[arg-type]
            open_modal(
                body,
                client,
                respond,
                _text_modal(
                    RESOLVE_VIEW,
                    "Resolve case",
                    "Resolution",
                    "Resolve",
                    case,
                    "Sent to the requester with a short survey.",
                    resolutions=resolved_before,
                ),
            )

    @app.action(blocks.CASE_SEVERITY)
    def severity_button(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        ack()
        case = open_case_for(body, action, respond, "change its severity")
        if case is None:
            return
        with Session(desk.engine) as session:
            organisation = session.get(Organisation, case.organisation_id)
        allowed = desk.rules.severities_for(
            case.category, bool(organisation and organisation.online_services_agreement)
        )
        open_modal(body, client, respond, _severity_modal(desk, case, allowed))

    @app.action(blocks.CASE_AWAIT)
    def await_button(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        ack()
        try:
            done = lifecycle.await_customer(
                desk.engine,
                record_id(action.get("value")),
                body["user"]["id"],
                desk.rules,
                desk.clock.now(),
            )
        except lifecycle.CaseActionRefused as exc:
            refuse(respond, str(exc))
            return
        desk.deliver(done.case.id)

    @app.action(blocks.CASE_REOPEN)
    def reopen_button(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        ack()
        try:
            done = lifecycle.reopen(
                desk.engine,
                record_id(action.get("value")),
                body["user"]["id"],
                desk.clock.now(),
                desk.rules,
            )
        except lifecycle.CaseActionRefused as exc:
            refuse(respond, str(exc))
            return
        desk.deliver(done.case.id)
        refuse(respond, f"{done.case.number} is open again.")

    def submit_text(ack: Ack, body: dict[str, Any], view: dict[str, Any], action: Any) -> None:
        text = _value(view, "text")
        try:
            done = action(
                desk.engine, _metadata_case(view), body["user"]["id"], text, desk.clock.now()
            )
        except lifecycle.CaseActionRefused as exc:
            ack(response_action="errors", errors={"text": str(exc)})
            return
        ack()
        desk.deliver(done.case.id)

    @app.view(REPLY_VIEW)
    def reply_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        submit_text(ack, body, view, lifecycle.reply)

    @app.view(NOTE_VIEW)
    def note_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        submit_text(ack, body, view, lifecycle.note)

    @app.view(RESOLVE_VIEW)
    def resolve_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        seen = _metadata(view, "resolutions")
        seen = seen if isinstance(seen, int) and not isinstance(seen, bool) else None
        submit_text(
            ack,
            body,
            view,
            lambda *args: lifecycle.resolve(*args, resolutions_seen=seen),
        )

    @app.view(SEVERITY_VIEW)
    def severity_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        case_id = _metadata_case(view)
        seen = _metadata(view, "severity")
        try:
            change_severity(
                desk.engine,
                case_id,
                _value(view, "severity"),
                body["user"]["id"],
                _value(view, "text"),
                desk.rules,
                desk.clock.now(),
                from_severity=seen if isinstance(seen, str) else None,
            )
        except ClockChangeRefused as exc:
            field = "text" if "reason" in str(exc) else "severity"
            ack(response_action="errors", errors={field: str(exc)})
            return
        ack()
        desk.deliver(case_id)

    @app.action(re.compile(rf"^{blocks.SURVEY_RATE}_[1-5]$"))
    def rate(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        ack()
        case_part, _, rating = str(action.get("value") or "").partition(":")
        try:
            outcome = lifecycle.answer_survey(
                desk.engine,
                record_id(case_part),
                body["user"]["id"],
                record_id(rating),
                None,
                desk.rules,
                desk.clock.now(),
            )
        except lifecycle.CaseActionRefused as exc:
            refuse(respond, str(exc))
            return
        refuse(
            respond,
            "Thank you for rating this case."
            if outcome == "thanks"
            else "You have already rated this case — thank you. Only the first rating counts.",
        )

    @app.action(blocks.SURVEY_COMMENT)
    def comment_button(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        ack()
        # only the requester rates and comments: anyone else learns nothing of the case
        try:
            case = lifecycle.requester_case(
                desk.engine,
                record_id(action.get("value")),
                body["user"]["id"],
                desk.rules,
                "comment on",
            )
        except lifecycle.CaseActionRefused as exc:
            refuse(respond, str(exc))
            return
        open_modal(
            body,
            client,
            respond,
            _text_modal(
                COMMENT_VIEW,
                "Your comment",
                "Comment",
                "Send",
                case,
                "Added to your rating (rate the case first with the buttons).",
            ),
        )

    @app.view(COMMENT_VIEW)
    def comment_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        case_id = _metadata_case(view)
        try:
            lifecycle.answer_survey_comment(
                desk.engine,
                case_id,
                body["user"]["id"],
                _value(view, "text"),
                desk.rules,
                desk.clock.now(),
            )
        except lifecycle.CaseActionRefused as exc:
            ack(response_action="errors", errors={"text": str(exc)})
            return
        ack()

    @app.event("message")
    def relay(event: dict[str, Any], body: dict[str, Any]) -> None:
        """The requester's replies in their case's DM thread reach the triage thread; a
        message written to the bot outside a case's thread is answered with where to write."""
        if event.get("channel_type") != "im" or event.get("bot_id"):
            return
        if (event.get("subtype") or None) not in RELAYED_SUBTYPES:
            return
        thread_ts, user = event.get("thread_ts"), event.get("user")
        if not user or not isinstance(user, str):
            return
        if not thread_ts:
            # Written to the bot, not in a case's thread: nothing reads it here, so the
            # writer is told where their words would reach support.
            if lifecycle.direct_message(desk.engine, user, desk.clock.now()):
                desk.deliver(None)
            return
        done = lifecycle.customer_message(
            desk.engine,
            event.get("channel", ""),
            thread_ts,
            user,
            _relayed_text(event),
            body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}",
            desk.rules,
            desk.clock.now(),
        )
        if done is not None:
            desk.deliver(done.case.id)


# A plain reply has no subtype; Slack gives one to a reply with a file attached and to one
# also sent to the conversation, and those are the requester's words as much. Every other
# subtype is an edit, a deletion or a system message: relaying it would repeat or invent a
# reply. A tuple, so that a subtype of a shape Slack never sends compares unequal.
RELAYED_SUBTYPES: tuple[str | None, ...] = (None, "file_share", "thread_broadcast")


def _relayed_text(event: dict[str, Any]) -> str:
    """The reply's words, then a line per attached file: only text is relayed, so support
    learns that a file came, by name and link when the event carries them. It is stored
    and escaped with the words (notices: user text is escaped when shown)."""
    text, listed = event.get("text"), event.get("files")
    lines = [text if isinstance(text, str) else ""]
    files: list[Any] = listed if isinstance(listed, list) else []
    if event.get("subtype") == "file_share" and not files:
        files = [{}]
    for item in files:
        file: dict[str, Any] = item if isinstance(item, dict) else {}
        name = next(
            (v for v in (file.get("name"), file.get("title")) if isinstance(v, str) and v.strip()),
            "a file",
        )
        link = file.get("permalink")
        where = f" {link}" if isinstance(link, str) and link.startswith("https://") else ""
        lines.append(f"[file attached: {name}{where}]")
    return "\n".join(line for line in lines if line)


def case_detail(desk: Desk, user_id: str, rest: str) -> list[dict[str, Any]]:
    """`/support case CS-00042`: the case and its timeline, to those allowed to see it."""
    case_id = parse_case_reference(rest.strip() or "-")
    if case_id is None:
        return blocks.plain("Which case? e.g. `/support case CS-00042`.")
    with Session(desk.engine) as session:
        person = find_person(session, user_id)
        case = find_case(session, person, desk.rules, case_id)
        if case is None or person is None:
            # the same answer whether it exists or not: no probing other organisations
            return blocks.plain(f"No case CS-{case_id:05d} that you can see.")
        # the case's own organisation: its requester may have moved to another one since
        organisation = session.get(Organisation, case.organisation_id)
        events = session.exec(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)  # type: ignore[arg-type]
        ).all()
        people = {p.id: p for p in session.exec(select(Person)).all()}
        notes_hidden = not is_agent(person)
        messages = session.exec(
            select(CaseMessage).where(CaseMessage.case_id == case_id).order_by(CaseMessage.id)  # type: ignore[arg-type]
        ).all()
        survey = session.exec(select(SurveyAnswer).where(SurveyAnswer.case_id == case_id)).first()
    if notes_hidden:  # internal notes are support's: not even that one was written
        events = [event for event in events if event.kind != "note"]
    lines = []
    for event in events[-TIMELINE_EVENTS:]:
        who = people.get(event.actor_id) if event.actor_id else None
        change = (
            f"{event.from_value} → {event.to_value}" if event.from_value else (event.to_value or "")
        )
        reason = event.detail.get("reason") if isinstance(event.detail, dict) else None
        if notes_hidden and event.kind == "severity_changed":
            reason = None  # support's own words, kept from the requester's notice too
        lines.append(
            f"• {blocks.when(event.at, desk.rules)} — {escape(event.kind.replace('_', ' '))}"
            + (f" {escaped_clip(change, 300)}" if change else "")
            + (f" by {escape(who.name)}" if who else "")
            + (f" — {escaped_clip(str(reason), 200)}" if reason else "")
        )
    shown = [m for m in messages if not (notes_hidden and m.kind == "note")]
    head = (
        f"*{case.number}* · Sev {case.severity} · "
        f"{blocks.STATUS_LABELS.get(case.status, case.status)}\n"
        f"*{escaped_clip(case.title, 300)}* — "
        f"{escape(organisation.name) if organisation else ''}\n"
        f"Owner: {mention(people[case.assignee_id].slack_user_id) if case.assignee_id else '—'}"
        f" · {len(shown)} message(s)"
    )
    answer = blocks.plain(head) + blocks.plain(f"*Timeline*\n{_timeline(lines, len(events))}")
    if survey is not None and not notes_hidden:  # what the requester said of the case (SC-23)
        rated = f"*Survey:* {survey.rating}/5"
        answer += blocks.plain(
            f"{rated} — “{escaped_clip(survey.comment, 2000)}”" if survey.comment else rated
        )
    return answer


TIMELINE_EVENTS = 25  # the most a case's view lists; earlier ones are counted
TIMELINE_CHARS = 2900  # within one section, with the heading


def _timeline(lines: list[str], total: int) -> str:
    """The newest of the timeline's lines (of `total` events) that fit, whole, oldest first;
    "… N earlier events" above them when any are left out. A line is at most a few hundred
    characters (a change to 300, a reason to 200), so the newest always fits."""
    shown: list[str] = []
    room = TIMELINE_CHARS - len(_earlier(total)) - 1
    for line in reversed(lines):
        if len(line) + 1 > room:
            break
        shown.append(line)
        room -= len(line) + 1
    shown.reverse()
    if total > len(shown):
        shown.insert(0, _earlier(total - len(shown)))
    return "\n".join(shown) or "—"


def _earlier(count: int) -> str:
    return f"_… {count:,} earlier event{'s' if count != 1 else ''}_"


SUBCOMMANDS: dict[str, Any] = {
    "case": ("`/support case CS-00042` — a case and its timeline", case_detail),
}
