"""The intake modal: opening it (Contact support), keeping it in step with the chosen
category and severity, and turning its submission into a case."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from chatops.cases.intake import IntakeForm, IntakeRejected, OutOfScope, refusal_for_requester
from chatops.cases.service import open_case
from chatops.db import reading
from chatops.directory import find_requester, learn_timezone
from handlers import blocks
from handlers.desk import Desk
from handlers.health import intake_notice, with_intake_notice
from handlers.text import view_metadata

log = logging.getLogger(__name__)

FIELDS = (
    "category",
    "topic",
    "severity",
    "title",
    "description",
    "contact_method",
    "phone",
    "email",
    "business_impact",
    "available_contact",
)


def register(app: App, desk: Desk) -> None:
    @app.action(blocks.CONTACT_SUPPORT)
    def contact_support(
        ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        ack()
        user_id = body["user"]["id"]
        question = ""
        for action in body.get("actions", []):
            if action.get("action_id") == blocks.CONTACT_SUPPORT:
                question = str(action.get("value") or "")[: blocks.QUESTION_MAX]
        choices, refusal = initial_choices(desk, user_id, question)
        if choices is None:
            respond(
                replace_original=False,
                response_type="ephemeral",
                text=blocks.submission_refused(refusal or ""),
            )
            return
        try:
            client.views_open(
                trigger_id=body["trigger_id"],
                view=blocks.intake_modal(choices, desk.rules, desk.clock.now()),
            )
        except SlackApiError as exc:
            log.warning("views.open failed: %s", exc.response.get("error"))
            respond(
                replace_original=False,
                response_type="ephemeral",
                text="Slack did not let me open the form in time. Press *Contact support* again.",
            )
            return
        if choices.requester_tz is None:
            # After the modal is open (trigger_id lives 3 s): learn the admin's time zone so
            # the form and the confirmation can show times in it from now on.
            try:
                profile = client.users_info(user=user_id)
                learn_timezone(desk.engine, user_id, (profile.get("user") or {}).get("tz"))
            except SlackApiError as exc:
                log.info("users.info failed: %s", exc.response.get("error"))

    @app.action(blocks.INTAKE_CATEGORY)
    @app.action(blocks.INTAKE_SEVERITY)
    @app.action(blocks.INTAKE_TOPIC)
    def refresh_modal(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        view = body.get("view") or {}
        user_id = body["user"]["id"]
        values = view.get("state", {}).get("values", {})
        form = read_form(values)
        question = view_metadata(view).get("question", "")
        choices, _ = initial_choices(desk, user_id, question)
        if choices is None:
            return
        if form.category in choices.categories:
            choices = _with(desk, choices, form.category or choices.category, form.severity)
        modal = blocks.intake_modal(choices, desk.rules, desk.clock.now())
        if form.category == choices.category and form.topic:
            # SC-5: a known incident on that service comes first, with Follow this incident
            with reading(desk.engine) as session:
                notice = intake_notice(
                    session,
                    form.topic,
                    desk.rules,
                    desk.clock.now(),
                    user_id=user_id,
                    reader_tz=choices.requester_tz,
                )
            modal = with_intake_notice(modal, notice)
        client.views_update(view_id=view["id"], hash=view.get("hash"), view=modal)

    @app.view(blocks.INTAKE_CALLBACK)
    def submit(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user_id = body["user"]["id"]
        form = read_form(view.get("state", {}).get("values", {}))
        present = _block_ids(view)
        try:
            case = open_case(desk.engine, user_id, form, desk.rules, desk.clock.now())
        except IntakeRejected as rejected:
            ack(response_action="errors", errors=_errors_for_view(rejected.errors, present))
            return
        except OutOfScope as out_of_scope:
            ack(
                response_action="update",
                view=blocks.out_of_scope_view(out_of_scope.key, desk.rules),
            )
            return
        ack()
        desk.deliver(case.id)


def initial_choices(
    desk: Desk, user_id: str, question: str
) -> tuple[blocks.IntakeChoices | None, str | None]:
    """The modal's starting state for this person, or the reason they get no modal."""
    with reading(desk.engine) as session:
        person, organisation = find_requester(session, user_id)
        refusal = refusal_for_requester(person, organisation, desk.rules)
        if refusal is not None:
            return None, refusal
        assert person is not None and organisation is not None
        categories = desk.rules.categories_for(person.roles)
        choices = blocks.IntakeChoices(
            categories=categories,
            category=categories[0],
            severities=desk.rules.severities_for(
                categories[0], organisation.online_services_agreement
            ),
            severity=None,
            phone=person.phone,
            email=person.email,
            question=question,
            requester_name=person.name,
            has_agreement=organisation.online_services_agreement,
            requester_tz=person.tz,
        )
        return choices, None


def _with(
    desk: Desk, choices: blocks.IntakeChoices, category: str, severity: str | None
) -> blocks.IntakeChoices:
    severities = desk.rules.severities_for(category, choices.has_agreement)
    return blocks.IntakeChoices(
        categories=choices.categories,
        category=category,
        severities=severities,
        severity=severity if severity in severities else None,
        phone=choices.phone,
        email=choices.email,
        question=choices.question,
        requester_name=choices.requester_name,
        has_agreement=choices.has_agreement,
        requester_tz=choices.requester_tz,
    )


def read_form(values: dict[str, Any]) -> IntakeForm:
    """Read the modal's state values; every field is optional here, the core checks them."""
    found: dict[str, str | None] = dict.fromkeys(FIELDS)
    for block_id, actions in values.items():
        if block_id not in found or not isinstance(actions, dict):
            continue
        for state in actions.values():
            if isinstance(state, dict):
                found[block_id] = _state_value(state)
    return IntakeForm(**found)  # type: ignore[arg-type]


def _state_value(state: dict[str, Any]) -> str | None:
    option = state.get("selected_option")
    value = option.get("value") if isinstance(option, dict) else state.get("value")
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _block_ids(view: dict[str, Any]) -> list[str]:
    return [b.get("block_id") for b in view.get("blocks", []) if b.get("type") == "input"]


def _errors_for_view(errors: dict[str, str], present: list[str]) -> dict[str, str]:
    """Slack shows an error only under an input block the view has; put the others on the
    first field so nothing is lost (e.g. a refusal of the person, or a forged field)."""
    shown: dict[str, str] = {}
    spill: list[str] = []
    for field, message in errors.items():
        if field == "_":
            spill.append(blocks.submission_refused(message))
        elif field in present:
            shown[field] = message
        else:
            spill.append(message)
    if spill:
        target = "severity" if "severity" in present else (present[0] if present else "title")
        shown[target] = " ".join([*spill, shown.get(target, "")]).strip()
    return shown
