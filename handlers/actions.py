"""Buttons on case cards, and the answer to buttons the bot no longer knows."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from chatops.cases.service import claim_case
from chatops.cases.states import RESOLVED
from handlers import blocks
from handlers.desk import Desk
from handlers.text import mention, record_id


def register_claim(app: App, desk: Desk) -> None:
    """The Claim button. Bolt tries listeners in the order they were registered, at some
    20 µs each; Claim is the button clicked most, so it is registered near the front."""

    @app.action(blocks.CLAIM_CASE)
    def claim(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        ack()
        user_id = body["user"]["id"]
        channel_id = (body.get("channel") or {}).get("id") or body.get("container", {}).get(
            "channel_id"
        )
        case_id = record_id(action.get("value"))
        outcome = claim_case(desk.engine, case_id, user_id, desk.clock.now())
        if outcome.won:
            desk.deliver(case_id)
            return
        if outcome.outcome == "not_agent":
            text = "Only support agents can claim cases. Nothing was changed."
        elif outcome.outcome == "no_case":
            text = "That case does not exist any more."
        elif outcome.outcome == "not_open":  # a card from before it was resolved or closed
            assert outcome.case is not None
            text = f"{outcome.case.number} is {outcome.case.status}, so it cannot be claimed"
            if outcome.case.status == RESOLVED:
                text += " (Reopen it on its card first)"
            text += ". Nothing was changed."
        else:
            assert outcome.case is not None
            who = mention(outcome.owner.slack_user_id) if outcome.owner else "someone else"
            text = f"{outcome.case.number} is already claimed by {who}."
        if channel_id:
            client.chat_postEphemeral(channel=channel_id, user=user_id, text=text)


def register_fallbacks(app: App) -> None:
    """Answers for buttons and forms nobody else handles; registered last, as Bolt runs
    the first listener that matches."""

    @app.action(re.compile(".*"))
    def unknown_action(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        if body.get("response_url"):
            respond(
                replace_original=False,
                response_type="ephemeral",
                text="That button is not one I know (it may be from an older message). "
                "Nothing was changed; try `/support help`.",
            )

    @app.view(re.compile(".*"))
    def unknown_view(ack: Ack) -> None:
        ack(
            response_action="update",
            view={
                "type": "modal",
                "title": {"type": "plain_text", "text": "Support"},
                "close": {"type": "plain_text", "text": "Close"},
                "blocks": [
                    {
                        "type": "section",
                        "text": {
                            "type": "mrkdwn",
                            "text": "This form is not one I know any more. Nothing was saved; "
                            "start again with `/support`.",
                        },
                    }
                ],
            },
        )
