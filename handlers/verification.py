"""Caller verification (SC-22) in Slack: the case card's **Verify caller** button, the modal
that asks for the caller's number, and the step that takes the code the caller reads back.
The rules live in chatops/verification.py."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View
from sqlmodel import Session

from chatops.cases.states import OPEN_STATUSES, not_open_reason
from chatops.directory import find_person, is_agent
from chatops.verification import (
    CODE_TTL,
    MAX_ATTEMPTS,
    CheckOutcome,
    StartOutcome,
    check_code,
    masked,
    send_code_email,
    smtp_url,
    start_verification,
)
from handlers.blocks import when
from handlers.desk import Desk
from handlers.text import clip, escape, mention, record_id, view_metadata
from models import Case, Organisation

log = logging.getLogger(__name__)

VERIFY_CALLER = "verify_caller"  # the card's button (value: case id) and the first modal
CODE_CALLBACK = "verify_caller_code"  # the second modal: the code read back
NUMBER_BLOCK, NUMBER_ACTION = "caller_number", "number"
CODE_BLOCK, CODE_ACTION = "verification_code", "code"
TITLE = "Verify caller"
VERIFY_TO_DO = "verify a caller"  # as in "CS-00042 is resolved; reopen it to verify a caller"

SUBCOMMANDS: dict[str, Any] = {}


def verify_caller_button(case_id: int) -> ButtonElement:
    """The card's button (for claimed and open cases)."""
    return ButtonElement(text=TITLE, action_id=VERIFY_CALLER, value=str(case_id))


# --- views ---------------------------------------------------------------------------------


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, 3000)))


def _modal(
    callback_id: str | None,
    blocks: list[Block],
    metadata: dict[str, Any] | None = None,
    submit: str | None = None,
    close: str = "Cancel",
) -> dict[str, Any]:
    return View(
        type="modal",
        callback_id=callback_id,
        title=PlainTextObject(text=TITLE),
        submit=PlainTextObject(text=submit) if submit else None,
        close=PlainTextObject(text=close),
        private_metadata=json.dumps(metadata or {}),
        blocks=blocks,
    ).to_dict()


def number_modal(case: Case, organisation: Organisation) -> dict[str, Any]:
    return _modal(
        VERIFY_CALLER,
        [
            _section(
                f"*{case.number}* · {escape(organisation.name)}\n"
                "Ask the caller which number they are calling from. A number registered on "
                "the organisation's profile is verified at once; for any other number a "
                "one-time code goes to the organisation's admins and the caller reads it back "
                "to you (SC-22)."
            ),
            InputBlock(
                block_id=NUMBER_BLOCK,
                label=PlainTextObject(text="Caller's phone number"),
                element=PlainTextInputElement(
                    action_id=NUMBER_ACTION,
                    placeholder=PlainTextObject(text="+86 10 5555 0101"),
                    max_length=40,
                ),
                hint=PlainTextObject(
                    text="With the country code (+86 …) if you have it; spaces and dashes are fine."
                ),
            ),
        ],
        {"case_id": case.id},
        submit="Check number",
    )


def code_modal(outcome: StartOutcome, desk: Desk, emailed: bool) -> dict[str, Any]:
    admins = ", ".join(f"{mention(a.slack_id)} ({escape(a.name)})" for a in outcome.admins)
    channels = "Slack DM" + (" and e-mail" if emailed else "")
    expires = when(outcome.expires_at, desk.rules) if outcome.expires_at else "soon"
    return _modal(
        CODE_CALLBACK,
        [
            _section(
                f"*{outcome.case_number}* · {escape(outcome.organisation or '')}\n"
                f"`{escape(outcome.number or '')}` is not registered on the organisation's "
                f"profile. A one-time code was sent by {channels} to its admins: {admins}.\n"
                "Ask the caller to read it back to you."
            ),
            InputBlock(
                block_id=CODE_BLOCK,
                label=PlainTextObject(text="Code the caller reads back"),
                element=PlainTextInputElement(
                    action_id=CODE_ACTION,
                    placeholder=PlainTextObject(text="6 digits"),
                    max_length=12,
                ),
            ),
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"The code expires {expires} "
                        f"({int(CODE_TTL.total_seconds() // 60)} minutes) and allows "
                        f"{MAX_ATTEMPTS} attempts."
                    )
                ]
            ),
        ],
        {"verification_id": outcome.verification_id, "case_id": outcome.case_id},
        submit="Verify",
    )


def verified_modal(case_number: str | None, text: str) -> dict[str, Any]:
    return _modal(
        None,
        [_section(f":white_check_mark: *Caller verified* for *{case_number}*.\n{text}")],
        close="Done",
    )


# --- listeners -----------------------------------------------------------------------------


def _typed(view: dict[str, Any], block_id: str, action_id: str) -> str | None:
    values = (view.get("state") or {}).get("values") or {}
    state = (values.get(block_id) or {}).get(action_id) or {}
    value = state.get("value") if isinstance(state, dict) else None
    return str(value) if value is not None else None


_START_REFUSALS = {
    "not_agent": "Only support agents can verify callers. Nothing was changed.",
    "no_case": "That case does not exist any more.",
    "invalid_number": "That is not a phone number: 7 to 15 digits, optionally starting "
    "with + and the country code (spaces, dashes and brackets are fine).",
    "no_contact": "The organisation has no registered admin to send a code to, so this "
    "caller cannot be verified (SC-22). The attempt is recorded.",
}

_CHECK_ERRORS = {
    "malformed": "The code has 6 digits. This entry did not count as an attempt.",
    "locked": "Too many wrong codes: this code is locked. Close this form and press "
    '"Verify caller" again to send a new one.',
    "expired": 'This code has expired. Close this form and press "Verify caller" again to '
    "send a new one.",
    "superseded": "A newer code was sent for this case; this one no longer works.",
    "already_verified": "This caller is already verified.",
    "not_requester": "Only the agent who asked for this code can enter it.",
    "not_agent": "Only support agents can verify callers. Nothing was changed.",
    "no_verification": "This verification does not exist any more.",
}


def register(app: App, desk: Desk) -> None:
    @app.action(VERIFY_CALLER)
    def verify_clicked(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        ack()
        user_id = body["user"]["id"]
        view, refusal = _number_modal_for(desk, user_id, record_id(action.get("value")))
        if view is None:
            respond(replace_original=False, response_type="ephemeral", text=refusal)
            return
        try:
            client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            log.warning("views.open failed: %s", exc.response.get("error"))
            respond(
                replace_original=False,
                response_type="ephemeral",
                text="Slack did not let me open the form in time. Press *Verify caller* again.",
            )

    @app.view(VERIFY_CALLER)
    def number_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user_id = body["user"]["id"]
        case_id = record_id(view_metadata(view).get("case_id"))
        number = _typed(view, NUMBER_BLOCK, NUMBER_ACTION)
        outcome = start_verification(
            desk.engine, case_id, user_id, number, desk.clock.now(), desk.rules
        )
        if outcome.outcome == "verified":
            ack(
                response_action="update",
                view=verified_modal(
                    outcome.case_number,
                    f"`{escape(outcome.number or '')}` is registered on "
                    f"{escape(outcome.organisation or '')}'s profile "
                    f"({escape(outcome.matched_name or '')}). Verified by {mention(user_id)} "
                    f"at {when(desk.clock.now(), desk.rules)}.",
                ),
            )
            desk.deliver(outcome.case_id)
            return
        if outcome.outcome != "code_sent":
            ack(response_action="errors", errors={NUMBER_BLOCK: _start_refusal(outcome)})
            return
        emailed = bool(smtp_url()) and any(a.email for a in outcome.admins)
        ack(response_action="update", view=code_modal(outcome, desk, emailed))
        desk.deliver(outcome.case_id)
        policy = desk.rules.policy
        send_code_email(outcome, policy.support_timezone, policy.support_timezone_label)

    @app.view(CODE_CALLBACK)
    def code_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user_id = body["user"]["id"]
        verification_id = record_id(view_metadata(view).get("verification_id"))
        code = _typed(view, CODE_BLOCK, CODE_ACTION)
        outcome = check_code(desk.engine, verification_id, user_id, code, desk.clock.now())
        if outcome.outcome == "verified":
            ack(
                response_action="update",
                view=verified_modal(
                    outcome.case_number,
                    f"The caller read back the right code (calling from "
                    f"`{escape(masked(outcome.number or ''))}`). Verified by "
                    f"{mention(user_id)} at {when(desk.clock.now(), desk.rules)}.",
                ),
            )
            desk.deliver(outcome.case_id)
            return
        ack(response_action="errors", errors={CODE_BLOCK: _check_error(outcome)})


def _number_modal_for(desk: Desk, user_id: str, case_id: int) -> tuple[dict[str, Any] | None, str]:
    """The first modal for this agent and case, or the reason there is none."""
    with Session(desk.engine) as session:
        if not is_agent(find_person(session, user_id)):
            return None, _START_REFUSALS["not_agent"]
        case = session.get(Case, case_id)
        organisation = session.get(Organisation, case.organisation_id) if case else None
        if case is None or organisation is None:
            return None, _START_REFUSALS["no_case"]
        if case.status not in OPEN_STATUSES:
            return None, not_open_reason(case.number, case.status, VERIFY_TO_DO)
        return number_modal(case, organisation), ""


def _start_refusal(outcome: StartOutcome) -> str:
    if outcome.outcome == "case_closed":
        return not_open_reason(outcome.case_number or "", outcome.case_status or "", VERIFY_TO_DO)
    return _START_REFUSALS[outcome.outcome]


def _check_error(outcome: CheckOutcome) -> str:
    if outcome.outcome == "case_closed":
        return not_open_reason(outcome.case_number or "", outcome.case_status or "", VERIFY_TO_DO)
    if outcome.outcome == "wrong":
        left = outcome.attempts_left or 0
        return f"That is not the code. {left} attempt{'s' if left != 1 else ''} left."
    if outcome.outcome == "superseded" and outcome.superseded_by:
        # An input error is plain text: a name, not a mention.
        if outcome.superseded_by == outcome.requested_by:
            return (
                "You sent a newer code for this case; this one no longer works. Enter the "
                "caller's code in the newer form."
            )
        name = outcome.superseded_by_name or "another agent"
        return (
            f"{name} sent a newer code for this case; this one no longer works. Only "
            f'{name} can enter it, or press "Verify caller" again to send another.'
        )
    return _CHECK_ERRORS.get(outcome.outcome, "That did not work. Nothing was changed.")
