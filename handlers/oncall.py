"""`/support oncall` (who is on call now and next; leads add overrides) and the buttons of
pages and SC-16 downgrade offers."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt import Ack, App, Respond
from sqlmodel import Session

from chatops.cases.clock import ClockChangeRefused, change_severity
from chatops.paging import AckOutcome, GroupAckOutcome, acknowledge, acknowledge_group
from chatops.schedule import OverrideRefused, add_override, now_and_next
from handlers import blocks
from handlers.desk import Desk
from handlers.notices import (
    ACKNOWLEDGE_PAGE,
    ACKNOWLEDGE_PAGES,
    DOWNGRADE_CASE,
    PermanentFailure,
    render_page_group,
)
from handlers.text import escape, mention, record_id
from models import OutboxMessage

OVERRIDE_USAGE = (
    "Usage: `/support oncall override ROTATION @person FROM UNTIL` — times as "
    "`2026-11-26T18:00` in support time (or with an offset, `+08:00`); e.g. "
    "`/support oncall override primary @lee 2026-11-26T18:00 2026-11-27T09:00`."
)
_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^@?([UW][A-Z0-9]{2,})$")


def oncall_reply(desk: Desk, user_id: str, rest: str) -> list[dict[str, Any]]:
    """`/support oncall [override …]`."""
    words = rest.split()
    if words and words[0].lower() == "override":
        return blocks.plain(_override(desk, user_id, words[1:]))
    now = desk.clock.now()
    with Session(desk.engine) as session:
        schedule = now_and_next(session, now)
    if not schedule:
        return blocks.plain("No on-call rotations are loaded (add `rotations:` to the roster).")
    lines = []
    for rotation, current, following in schedule:
        if current.person:
            who = f"{mention(current.person)}" + (" (override)" if current.is_override else "")
        else:
            who = "*nobody*"
        until = f" until {blocks.when(current.ends_at, desk.rules)}" if current.ends_at else ""
        line = f"*{escape(rotation.name)}*: {who}{until}"
        if following is not None:
            nxt = mention(following.person) if following.person else "nobody"
            line += f"; next {nxt}"
        lines.append(line)
    return blocks.plain("*On call now*\n" + "\n".join(lines))


def _parse_time(text: str, desk: Desk) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(desk.rules.policy.support_timezone))
    return value


def _override(desk: Desk, user_id: str, args: list[str]) -> str:
    if len(args) != 4:
        return OVERRIDE_USAGE
    rotation, who, start_text, end_text = args
    match = _MENTION.match(who)
    if match is None:
        return f"`{escape(who)}` is not a person. " + OVERRIDE_USAGE
    person = match.group(1) or match.group(2)
    try:
        starts, ends = _parse_time(start_text, desk), _parse_time(end_text, desk)
    except ValueError:
        return "I could not read those times. " + OVERRIDE_USAGE
    try:
        add_override(desk.engine, rotation, person, starts, ends, user_id, desk.clock.now())
    except OverrideRefused as exc:
        # the reason may quote what the lead typed (an unknown rotation name)
        return escape(str(exc)) + " Nothing was changed."
    return (
        f"{mention(person)} is on call for *{escape(rotation)}* from "
        f"{blocks.when(starts, desk.rules)} until {blocks.when(ends, desk.rules)}."
    )


_NAMED = 10  # case numbers named in an Acknowledge all answer; the rest are counted


def _numbers(items: list[str]) -> str:
    named = ", ".join(items[:_NAMED])
    return named + (f" and {len(items) - _NAMED} more" if len(items) > _NAMED else "")


def group_ack_reply(outcome: GroupAckOutcome) -> str:
    """What the person who pressed Acknowledge all is told (only they see it)."""
    if outcome.outcome == "not_agent":
        return "Only support agents can acknowledge a page. Nothing was changed."
    if outcome.outcome == "no_page":
        return "That page does not exist any more."
    parts = []
    if outcome.won:
        numbers = [item.case.number for item in outcome.won if item.case is not None]
        parts.append(f"You acknowledged the pages for {len(numbers)} cases: {_numbers(numbers)}.")
        if outcome.claimed:
            parts.append(f"You own {outcome.claimed} of them now.")
    if outcome.already:
        by_whom: dict[str, list[str]] = {}
        for item in outcome.already:
            if item.case is not None:
                by_whom.setdefault(item.by or "", []).append(item.case.number)
        taken = "; ".join(f"{_numbers(n)} by {mention(who)}" for who, n in by_whom.items())
        parts.append(f"Already acknowledged, left as they were: {taken}.")
    if outcome.ended:
        ended = [_ended(item) for item in outcome.ended if item.case is not None]
        parts.append(f"No longer open, nothing to acknowledge: {_numbers(ended)}.")
    if outcome.called_off:
        called_off = [_called_off(item) for item in outcome.called_off if item.case is not None]
        parts.append(f"Called off, nothing to acknowledge: {_numbers(called_off)}.")
    return " ".join(parts)


def _ended(outcome: AckOutcome) -> str:
    """`CS-00001 (resolved by @lee)`: a paged case resolved or closed before anyone
    acknowledged its page."""
    assert outcome.case is not None
    by = f" by {mention(outcome.by)}" if outcome.by else ""
    return f"{outcome.case.number} ({outcome.case.status}{by})"


def _called_off(outcome: AckOutcome) -> str:
    """`CS-00001 (now Sev B, by @dana)`: a paged case whose page was called off before
    anyone acknowledged it."""
    assert outcome.case is not None
    if outcome.case.severity != "A":
        by = f", by {mention(outcome.by)}" if outcome.by else ""
        return f"{outcome.case.number} (now Sev {outcome.case.severity}{by})"
    return outcome.case.number + (" (paged again since)" if outcome.paged_again else "")


def _called_off_reply(outcome: AckOutcome) -> str:
    """What the person who pressed Acknowledge on a called-off page is told: why it no
    longer counts, and how to take the case on if they will."""
    assert outcome.case is not None
    number = outcome.case.number
    if outcome.case.severity != "A":
        by = f" (changed by {mention(outcome.by)})" if outcome.by else ""
        return (
            f"This page was called off: {number} is now Sev {outcome.case.severity}{by}. "
            "Nothing was changed; claim it from the case card if you will take it."
        )
    if outcome.paged_again:
        return (
            f"This page was called off before anyone acknowledged it; {number} was paged "
            "again since: acknowledge the newer page, or claim it from the case card. "
            "Nothing was changed."
        )
    return (
        "This page was called off before anyone acknowledged it. Nothing was changed; "
        f"claim {number} from the case card if you will take it."
    )


def register(app: App, desk: Desk) -> None:
    @app.action(ACKNOWLEDGE_PAGE)
    def acknowledge_page(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        ack()
        user_id = body["user"]["id"]
        page_id = record_id(action.get("value"))
        outcome = acknowledge(desk.engine, page_id, user_id, desk.clock.now())
        if outcome.won:
            assert outcome.case is not None
            desk.deliver(outcome.case.id)
            text = f"You acknowledged the page for {outcome.case.number}."
            if outcome.claimed:
                text += " You own the case now."
        elif outcome.outcome == "not_agent":
            text = "Only support agents can acknowledge a page. Nothing was changed."
        elif outcome.outcome == "no_page":
            text = "That page does not exist any more."
        elif outcome.outcome == "not_open":  # resolved or closed before anyone acknowledged
            assert outcome.case is not None
            by = f" (by {mention(outcome.by)})" if outcome.by else ""
            text = f"{outcome.case.number} was {outcome.case.status}{by}; nothing to acknowledge."
        elif outcome.outcome == "called_off":  # it left Sev A before anyone acknowledged
            text = _called_off_reply(outcome)
        else:
            assert outcome.case is not None
            text = (
                f"The page for {outcome.case.number} was already acknowledged by "
                f"{mention(outcome.by or '')}."
            )
        respond(replace_original=False, response_type="ephemeral", text=text)

    @app.action(ACKNOWLEDGE_PAGES)
    def acknowledge_pages(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        ack()
        user_id = body["user"]["id"]
        group_id = record_id(action.get("value"))
        outcome = acknowledge_group(desk.engine, group_id, user_id, desk.clock.now())
        if outcome.outcome == "acknowledged":
            # the DM itself shows who took which case, for whoever looks at it later
            with Session(desk.engine) as session:
                row = session.get(OutboxMessage, group_id)
                try:
                    text, body_blocks = render_page_group(session, row, desk.rules)  # type: ignore[arg-type]
                except PermanentFailure:
                    text, body_blocks = "", []
            if body_blocks:
                respond(replace_original=True, text=text, blocks=body_blocks)
        respond(replace_original=False, response_type="ephemeral", text=group_ack_reply(outcome))
        if outcome.won:
            desk.deliver(None)  # thread notices, card refreshes, requester notices

    @app.action(DOWNGRADE_CASE)
    def downgrade(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        ack()
        user_id = body["user"]["id"]
        case_id = record_id(action.get("value"))
        minutes = desk.rules.duration_minutes(desk.rules.policy.sev_a.downgrade_after_silence)
        reason = f"SC-16: no response from the customer for {minutes} minutes; Sev A lowered to B"
        try:
            change = change_severity(
                desk.engine,
                case_id,
                "B",
                user_id,
                reason,
                desk.rules,
                desk.clock.now(),
                quiet_for=timedelta(minutes=minutes),  # the reason must still hold (SC-16)
                from_severity="A",  # an older offer cannot move a case set to C up to B
            )
        except ClockChangeRefused as exc:
            respond(
                replace_original=False,
                response_type="ephemeral",
                text=f"{exc} Nothing was changed.",
            )
            return
        desk.deliver(case_id)
        if change.answered:  # its old due passed or was met: nothing is due
            due = "It has had its first response, so no response target applies."
        elif change.new_due:
            due = f"First response now due {blocks.when(change.new_due, desk.rules)}."
        else:
            due = "Its response clock is paused."
        respond(
            replace_original=False,
            response_type="ephemeral",
            text=f"Lowered to Sev B ({reason}). {due}",
        )
