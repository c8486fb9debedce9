"""What each outbox row says and where it goes, read from the database at send time.

`prepare` runs inside a short read-only session; the delivery side then makes the Slack
calls with no database lock held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from sqlalchemy import bindparam
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from chatops.cases.lifecycle import CUSTOMER_MESSAGE_MAX, NO_LONGER_ADMIN
from chatops.cases.notices import (
    CARD,
    CARD_REFRESH,
    CASE_MESSAGE,
    CASE_RELEASED,
    CASE_REOPENED,
    DM_GUIDANCE,
    DOWNGRADE_OFFER,
    GROUP_PAGES,
    HANDOFF,
    ONCALL_GAP,
    PAGE,
    PAGE_ACKNOWLEDGED,
    REQUESTER_GONE,
    REQUESTER_NOTICE,
    SLA_BREACH,
    SLA_WARNING,
    UPDATE_REMINDER,
)
from chatops.cases.states import CLOSED, OPEN_STATUSES, RESOLVED
from chatops.directory import (
    admins_of,
    channel_for,
    find_person,
    is_admin_of,
    is_agent,
    is_lead,
)
from chatops.health import HEALTH_UPDATE
from chatops.paging import total_steps
from chatops.policy import SupportRules
from chatops.queues import is_customer_admin
from chatops.schedule import who_is_on_call
from chatops.sla import format_time_left
from chatops.verification import CODE_NOTICE, code_notice_text, verification_line
from chatops.workload import OpenWork, open_work
from handlers import blocks
from handlers.health import render_health_update
from handlers.text import clip, escape, escaped_clip, escaped_pieces, mention
from models import Case, CaseMessage, Organisation, OutboxMessage, Page, Person

ACKNOWLEDGE_PAGE = "acknowledge_page"
ACKNOWLEDGE_PAGES = blocks.ACKNOWLEDGE_PAGES
DOWNGRADE_CASE = blocks.DOWNGRADE_CASE
LIST_LIMIT = 5  # most urgent items listed by name in a handoff; the rest are counted
SECTION_MAX = blocks.SECTION_MAX
MESSAGE_BLOCKS = blocks.MESSAGE_BLOCKS_MAX
# The sections one message gives a person's text (with its heading); the rest of its
# blocks: notes of anything left out, the survey's buttons after a resolution note.
TEXT_SECTIONS_MAX = MESSAGE_BLOCKS - 5


class PermanentFailure(Exception):
    """Slack refused, or the message cannot be built, in a way a retry will not fix."""


@dataclass
class Outgoing:
    """One Slack call to make for an outbox row."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    channel: str | None = None  # a channel id; or
    user: str | None = None  # a person to DM (conversations.open at send time)
    thread_ts: str | None = None
    update_ts: str | None = None  # chat.update of this message instead of a post
    record: str | None = None  # "card" | "requester_thread": case columns to fill after
    skip: bool = False  # nothing to send (e.g. refresh of a card not posted yet)


def _as_dicts(items: list[Block]) -> list[dict[str, Any]]:
    if len(items) > MESSAGE_BLOCKS:
        raise PermanentFailure(f"a message of {len(items)} blocks (Slack takes {MESSAGE_BLOCKS})")
    return [item.to_dict() for item in items]


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_MAX)))


def _whole_text(head: str, text: str, prefix: str = "") -> list[str]:
    """`head`, then what a person wrote, escaped and whole, as the texts of consecutive
    section blocks: at most TEXT_SECTIONS_MAX of them, then one saying how much is left out.
    A reply, note or resolution (3,000 characters) always fits, and so does a customer's
    message of 40,000 (Slack's own limit) unless it is mostly `&`, `<` and `>`."""
    texts = escaped_pieces(text, SECTION_MAX, prefix, head=head)
    left_out = texts[TEXT_SECTIONS_MAX:]
    texts = texts[:TEXT_SECTIONS_MAX]
    if left_out:
        missing = sum(len(piece) for piece in left_out)
        texts.append(
            f"_… the rest (about {missing:,} characters) is not shown: a Slack message holds "
            f"at most {MESSAGE_BLOCKS} blocks. The whole text is kept with the case._"
        )
    return texts


_REQUESTER = aliased(Person)
_OWNER = aliased(Person)
# The case with its organisation, requester and owner in one round trip (a message to
# deliver needs them all); built once, the case id bound per call.
_CASE_CONTEXT = (
    select(Case, Organisation, _REQUESTER, _OWNER)
    .join(Organisation, col(Organisation.id) == col(Case.organisation_id))
    .join(_REQUESTER, col(_REQUESTER.id) == col(Case.requester_id))
    .outerjoin(_OWNER, col(_OWNER.id) == col(Case.assignee_id))
    .where(col(Case.id) == bindparam("case_id"))
)


def case_context(
    session: Session, case_id: int | None, rules: SupportRules | None = None
) -> blocks.CaseContext:
    """What a message about the case shows; with `rules`, also the card's verification line."""
    found = (
        session.exec(_CASE_CONTEXT, params={"case_id": case_id}).first()  # type: ignore[call-overload]
        if case_id is not None
        else None
    )
    if found is None:
        raise PermanentFailure(f"case {case_id} does not exist")
    case, organisation, requester, owner = found
    verification = None
    if rules is not None:
        policy = rules.policy
        verification = verification_line(
            session, case, policy.support_timezone, policy.support_timezone_label
        )
    return blocks.CaseContext(case, organisation, requester, owner, verification)


def prepare(session: Session, row: OutboxMessage, rules: SupportRules, now: datetime) -> Outgoing:
    """Build the message for one outbox row from the current state."""
    payload = row.payload or {}
    if row.kind == HANDOFF:
        return _handoff(session, payload, rules, now)
    if row.kind == ONCALL_GAP:
        return _routed(session, None, payload, _gap_text(payload, rules), [])
    if row.kind == HEALTH_UPDATE:
        try:
            text, body = render_health_update(session, payload, rules, now)
        except LookupError as exc:
            raise PermanentFailure(str(exc)) from None
        return Outgoing(text=text, blocks=body, user=payload["user"])
    if row.kind == DM_GUIDANCE:
        text = _dm_guidance(session, str(payload.get("user") or ""), rules)
        return Outgoing(text=text, blocks=_as_dicts([_section(text)]), user=payload["user"])
    # only the card shows the verification line: other messages skip its query
    ctx = case_context(session, row.case_id, rules if row.kind in (CARD, CARD_REFRESH) else None)
    case = ctx.case
    if row.kind == CODE_NOTICE:
        text = code_notice_text(
            session,
            row.case_id,
            payload,
            now,
            rules.policy.support_timezone,
            rules.policy.support_timezone_label,
            admin_roles=set(rules.policy.admin_roles),
        )
        if text is None:
            # blanked, verification over or expired, or the admin left the roster
            return Outgoing(text="", skip=True)
        out = _routed(session, case, payload, text, [])
        out.text = f"Verification code requested for {case.number}"  # no code in previews
        return out
    if row.kind == CARD:
        triage = channel_for(session, "triage")
        if triage is None:
            raise PermanentFailure("no triage channel configured")
        return Outgoing(
            text=blocks.case_card_text(ctx),
            blocks=blocks.case_card(ctx, rules, now),
            channel=triage,
            record="card",
        )
    if row.kind == CARD_REFRESH:
        if case.card_ts is None:
            return Outgoing(text="", skip=True)  # when the card goes out it is current
        return Outgoing(
            text=blocks.case_card_text(ctx),
            blocks=blocks.case_card(ctx, rules, now),
            channel=case.card_channel,
            update_ts=case.card_ts,
        )
    if row.kind == REQUESTER_NOTICE:
        return _requester(session, ctx, payload, rules, now)
    if row.kind == PAGE and _page_over(session, payload):
        return Outgoing(text="", skip=True)
    if row.kind in _STAFF_DMS and _to_leaver(session, payload):
        return Outgoing(text="", skip=True)
    if row.kind == SLA_WARNING and _warning_over(case, payload):
        return Outgoing(text="", skip=True)
    if row.kind in (UPDATE_REMINDER, DOWNGRADE_OFFER) and _sev_a_notice_over(case, payload):
        return Outgoing(text="", skip=True)
    text, extra = _case_notice(session, row.kind, ctx, payload, rules, now)
    return _routed(session, case, payload, text, extra)


DM_CASES_LISTED = 5


def _dm_guidance(session: Session, user_id: str, rules: SupportRules) -> str:
    """Where what someone writes to the bot reaches support, for who they are: a requester's
    words reach it in their case's thread here, a new question through `/support`."""
    person = find_person(session, user_id)
    if is_agent(person):
        return (
            "I don't read messages written to me here. Cases are worked from their cards in "
            "the triage channel; `/support help` lists what the desk can do."
        )
    ask = "To ask a question or open a case, type `/support` and your question"
    if person is None or not is_customer_admin(person, rules):
        return (
            f"I don't read messages written to me here. {ask}: the help articles come "
            "first, and your organisation's admins can contact support."
        )
    cases = session.exec(
        select(Case)
        .where(
            col(Case.requester_id) == person.id,
            col(Case.organisation_id) == person.organisation_id,
            col(Case.status).in_(OPEN_STATUSES),
            col(Case.requester_thread_ts).is_not(None),
        )
        .order_by(col(Case.id).desc())
        .limit(DM_CASES_LISTED + 1)
    ).all()
    if not cases:
        return f"I don't read messages written to me here. {ask}."
    numbers = ", ".join(f"*{case.number}*" for case in cases[:DM_CASES_LISTED])
    more = " and more" if len(cases) > DM_CASES_LISTED else ""
    return (
        "I don't read messages written to me here, only in your cases' threads. To add to "
        f"an open case ({numbers}{more}), reply in the thread under its message above: it "
        f"goes straight to the person working on it. {ask}."
    )


def _page_over(session: Session, payload: dict[str, Any]) -> bool:
    """The page a waiting page notice is about was acknowledged or called off while the
    notice waited (a retry, Slack's pace): paging anyone for it now would call them to a
    case someone has taken, or that nobody pages for any more."""
    page_id = payload.get("page_id")
    page = session.get(Page, page_id) if page_id is not None else None
    return page is not None and (page.acknowledged_at is not None or page.stopped_at is not None)


# Notices about a case that go to support staff by DM (its owner, whoever is paged).
_STAFF_DMS = frozenset(
    {SLA_WARNING, SLA_BREACH, UPDATE_REMINDER, DOWNGRADE_OFFER, PAGE, CASE_REOPENED}
)


def _to_leaver(session: Session, payload: dict[str, Any]) -> bool:
    """A waiting DM to support staff (a page, an owner's SLA notice) whose recipient is no
    longer a support agent (the roster took them out or their role away meanwhile): they
    may not act on it, and the case is no longer theirs to read about. The case's thread
    has the same notice; a page's escalation goes on without them."""
    user = payload.get("user") if payload.get("to") == "user" else None
    return user is not None and not is_agent(find_person(session, str(user)))


def _warning_over(case: Case, payload: dict[str, Any]) -> bool:
    """A warning that waited (a retry, Slack's pace) for a due that no longer stands: the
    case was answered (SC-17), resolved, paused or given another due since. "About to miss
    its target" would send people after a case that needs nothing, or at the wrong time
    (the new due has its own warning). A breach, once it happened, is still told."""
    due = payload.get("due")
    return (
        case.first_responded_at is not None
        or case.status not in OPEN_STATUSES
        or case.sla_paused
        or due is None
        or case.first_response_due != datetime.fromisoformat(due)
    )


def _sev_a_notice_over(case: Case, payload: dict[str, Any]) -> bool:
    """A Sev A reminder (SC-17) or downgrade offer (SC-16) that waited for its retry while
    the case was resolved or left Sev A — or, for the offer, while the customer wrote: the
    continuous effort it asks for, or the silence it offers to act on, is over."""
    if case.status not in OPEN_STATUSES or case.severity != "A":
        return True
    seen = payload.get("customer_last_seen")
    return seen is not None and (
        case.customer_last_seen_at is None
        or case.customer_last_seen_at != datetime.fromisoformat(seen)
    )


def _routed(
    session: Session,
    case: Case | None,
    payload: dict[str, Any],
    text: str,
    extra: list[Block],
) -> Outgoing:
    body = _as_dicts([_section(text), *extra])
    to = payload.get("to")
    if to == "user":
        return Outgoing(text=clip(text, 300), blocks=body, user=payload["user"])
    if to == "thread" and case is not None:
        if case.card_ts and case.card_channel:
            return Outgoing(
                text=clip(text, 300),
                blocks=body,
                channel=case.card_channel,
                thread_ts=case.card_ts,
            )
        to, payload = "channel", {"channel": "triage"}  # the card never went out
    purpose = payload.get("channel") or "triage"
    channel = channel_for(session, purpose) or channel_for(session, "triage")
    if channel is None:
        raise PermanentFailure(f"no {purpose} channel configured")
    return Outgoing(text=clip(text, 300), blocks=body, channel=channel)


def _requester(
    session: Session,
    ctx: blocks.CaseContext,
    payload: dict[str, Any],
    rules: SupportRules,
    now: datetime,
) -> Outgoing:
    event = payload.get("event")
    if not is_admin_of(ctx.requester, ctx.case.organisation_id, set(rules.policy.admin_roles)):
        # SC-1 and one organisation never seeing another's cases: a requester who has left
        # the roster, lost the admin role or moved to another organisation since (a notice
        # waiting for a retry, or written after) hears nothing more of the case, only why
        # what they write in its thread goes nowhere. The triage thread was told at the load.
        if event != NO_LONGER_ADMIN:
            return Outgoing(text="", skip=True)
        org = escape(ctx.organisation.name)
        text = (
            f"You are no longer one of {org}'s admins in the support desk's directory, so "
            f"*{ctx.case.number}* is no longer followed with you here and what you write in "
            f"this thread does not reach support. {org}'s admins can follow it with "
            f"`/support case {ctx.case.number}`."
        )
        return Outgoing(
            text=f"{ctx.case.number} is no longer followed with you",
            blocks=_as_dicts([_section(text)]),
            channel=ctx.case.requester_channel,
            user=ctx.requester.slack_user_id,
            thread_ts=ctx.case.requester_thread_ts,
        )
    if event in ("reply", "awaiting", "resolved", "reopened", "written_after_end"):
        text, body = _requester_update(session, ctx, event, payload)
        if not body:
            return Outgoing(text="", skip=True)
        return Outgoing(
            text=text,
            blocks=body,
            channel=ctx.case.requester_channel,
            user=ctx.requester.slack_user_id,
            thread_ts=ctx.case.requester_thread_ts,
            record="requester_thread" if ctx.case.requester_thread_ts is None else None,
        )
    if event == "opened":
        body, text = (
            blocks.requester_opened(ctx, rules, now),
            f"Your case {ctx.case.number} is open.",
        )
    elif event == "claimed":
        if ctx.owner is None:
            return Outgoing(text="", skip=True)
        body, text = blocks.requester_claimed(ctx), f"Your case {ctx.case.number} has an owner."
    elif event == "severity":
        body = blocks.requester_severity_changed(ctx, rules, now, payload["from"], payload["to"])
        text = f"{ctx.case.number} is Sev {payload['to']} now."
    else:
        raise PermanentFailure(f"unknown requester notice {event!r}")
    return Outgoing(
        text=text,
        blocks=body,
        channel=ctx.case.requester_channel,
        user=ctx.requester.slack_user_id,
        thread_ts=ctx.case.requester_thread_ts,
        record="requester_thread" if ctx.case.requester_thread_ts is None else None,
    )


def _requester_update(
    session: Session, ctx: blocks.CaseContext, event: str, payload: dict[str, Any]
) -> tuple[str, list[dict[str, Any]]]:
    """Updates in the requester's DM thread: replies, waiting, resolved (+ survey), reopened."""
    case = ctx.case
    if event == "reply":
        message = session.get(CaseMessage, payload["message_id"])
        if message is None:
            raise PermanentFailure(f"message {payload['message_id']} does not exist")
        author = find_person(session, message.author)
        name = escape(author.name) if author else "Support"
        texts = _whole_text(f"*{name}* (support) on {case.number}:", message.text)
        return f"Reply on {case.number}", _as_dicts([_section(text) for text in texts])
    if event == "awaiting":
        text = (
            f"Support is waiting for your answer on *{case.number}*. Reply in this thread "
            "and it goes straight to the person working on your case."
        )
        return f"{case.number} is waiting for you", _as_dicts([_section(text)])
    if event == "reopened":
        return f"{case.number} reopened", _as_dicts(
            [_section(f"*{case.number}* is open again; support is on it.")]
        )
    if event == "written_after_end":
        if case.status == CLOSED:
            text = (
                f"*{case.number}* is closed, so nobody is working on it any more. If you "
                f"still need help, ask with `/support` and open a new case (mention "
                f"{case.number})."
            )
        elif case.status == RESOLVED:
            text = (
                f"*{case.number}* is resolved, so nobody is working on it now. If the problem "
                "is back, press *Reopen* on the message above that says it is resolved."
            )
        else:  # reopened since: the message reached the people working on it
            return "", []
        return f"{case.number} is {case.status}", _as_dicts([_section(text)])
    resolved = _whole_text(
        f":white_check_mark: *{case.number}* is resolved.", case.resolution_note or ""
    )
    items: list[Block] = [
        *(_section(text) for text in resolved),
        _section("How did we do? Rate this case (one answer per case):"),
        ActionsBlock(
            block_id="survey",
            elements=[
                # Slack wants a distinct action_id per button in a block
                ButtonElement(
                    text=str(n), action_id=f"{blocks.SURVEY_RATE}_{n}", value=f"{case.id}:{n}"
                )
                for n in range(1, 6)
            ],
        ),
        ActionsBlock(
            block_id="after_resolve",
            elements=[
                ButtonElement(
                    text="Add a comment", action_id=blocks.SURVEY_COMMENT, value=str(case.id)
                ),
                ButtonElement(text="Reopen", action_id=blocks.CASE_REOPEN, value=str(case.id)),
            ],
        ),
    ]
    return f"{case.number} is resolved", _as_dicts(items)


def _who(session: Session, slack_id: str | None) -> str:
    if not slack_id:
        return "nobody"
    person = find_person(session, slack_id)
    return f"{mention(slack_id)}" + (f" ({escape(person.name)})" if person else "")


def _case_line(case: Case, rules: SupportRules, now: datetime) -> str:
    due = ""
    if case.first_response_due is not None and case.first_responded_at is None:
        due = f" — due {blocks.when(case.first_response_due, rules)}, " + format_time_left(
            case.first_response_due - now
        )
    return f"*{case.number}* Sev {case.severity} {escaped_clip(case.title, 80)}{due}"


def _case_notice(
    session: Session,
    kind: str,
    ctx: blocks.CaseContext,
    payload: dict[str, Any],
    rules: SupportRules,
    now: datetime,
) -> tuple[str, list[Block]]:
    case = ctx.case
    if kind in (SLA_WARNING, SLA_BREACH):
        due = datetime.fromisoformat(payload["due"])
        if kind == SLA_WARNING:
            head = (
                f":warning: *{case.number}* (Sev {case.severity}) is about to miss its "
                f"first-response target: due {blocks.when(due, rules)}, "
                f"{format_time_left(due - now)}."
            )
        else:
            head = (
                f":rotating_light: *{case.number}* (Sev {case.severity}) missed its "
                f"first-response target at {blocks.when(due, rules)}."
            )
        if ctx.owner is None and payload.get("to") == "thread":
            first_rotation = next(
                (s[9:] for s in rules.policy.paging.escalation if s.startswith("rotation:")),
                None,
            )
            primary = who_is_on_call(session, first_rotation, now) if first_rotation else None
            leads = [p for p in session.exec(select(Person)).all() if is_lead(p)]
            people = [lead.slack_user_id for lead in leads]
            if primary is not None and primary.person:
                people.insert(0, primary.person)
            head += " Nobody has claimed it: " + ", ".join(
                mention(p) for p in dict.fromkeys(people)
            )
        elif ctx.owner is not None:
            head += f" Owner: {_who(session, ctx.owner.slack_user_id)}."
        return head, []
    if kind == UPDATE_REMINDER:
        return (
            f":hourglass: *{case.number}* is Sev A: post an update to the customer "
            f"(continuous effort until resolved). {escaped_clip(case.title, 150)}",
            [],
        )
    if kind == DOWNGRADE_OFFER:
        seen = datetime.fromisoformat(payload["customer_last_seen"])
        text = (
            f"*{case.number}* is Sev A, but the customer has not responded since "
            f"{blocks.when(seen, rules)}. If they cannot give what Sev A needs, you may "
            "lower the severity (SC-16)."
        )
        button = ActionsBlock(
            elements=[
                ButtonElement(
                    text="Downgrade to Sev B",
                    action_id=DOWNGRADE_CASE,
                    value=str(case.id),
                    style="danger",
                )
            ]
        )
        return text, [button]
    if kind == PAGE:
        return _page_text(session, ctx, payload, rules)
    if kind == CASE_MESSAGE:
        message = session.get(CaseMessage, payload["message_id"])
        if message is None:
            raise PermanentFailure(f"message {payload['message_id']} does not exist")
        heading = {
            "reply": f":outbox_tray: {_who(session, message.author)} replied to the requester:",
            "note": f":memo: Internal note from {_who(session, message.author)}:",
            "customer": f":speech_balloon: {_who(session, message.author)} (requester) wrote:",
        }.get(message.kind, "")
        first, *rest = _whole_text(heading, message.text, prefix=">")
        left_out = int(payload.get("left_out") or 0)
        if left_out:  # a message longer than the desk keeps (lifecycle.CUSTOMER_MESSAGE_MAX)
            rest.append(
                f"_… and {left_out:,} more characters that were not kept: the desk keeps "
                f"the first {CUSTOMER_MESSAGE_MAX:,} characters of a message._"
            )
        return first, [_section(text) for text in rest]
    if kind == CASE_REOPENED:
        by = _who(session, payload.get("by")) + (" (requester)" if payload.get("requester") else "")
        return (
            f":leftwards_arrow_with_hook: *{case.number}* was reopened by {by}: it is open "
            f"again. {escaped_clip(case.title, 150)}",
            [],
        )
    if kind == CASE_RELEASED:
        text = (
            f":leftwards_arrow_with_hook: *{case.number}* is back in the unclaimed queue: its "
            f"owner {_who(session, payload.get('owner'))} is no longer on the support team "
            "(roster). Claim it to take it over."
        )
        if payload.get("paged"):
            text += " It is Sev A: on-call is paged for it."
        return text, []
    if kind == REQUESTER_GONE:
        org = escape(ctx.organisation.name)
        admins = admins_of(session, ctx.organisation.id, set(rules.policy.admin_roles))  # type: ignore[arg-type]
        who = (
            f"{org}'s admins now: " + ", ".join(_who(session, a.slack_user_id) for a in admins)
            if admins
            else f"{org} has no admins in the directory now"
        )
        return (
            f":bust_in_silhouette: The requester of *{case.number}*, "
            f"{_who(session, ctx.requester.slack_user_id)}, is no longer one of {org}'s admins "
            f"(roster): updates on the case no longer reach them, and what they write is not "
            f"relayed. {who}.",
            [],
        )
    if kind == PAGE_ACKNOWLEDGED:
        text = f":white_check_mark: {_who(session, payload['by'])} acknowledged the page."
        if payload.get("claimed"):
            text += " They own the case now."
        return text, []
    raise PermanentFailure(f"unknown outbox kind {kind!r}")


def _page_text(
    session: Session, ctx: blocks.CaseContext, payload: dict[str, Any], rules: SupportRules
) -> tuple[str, list[Block]]:
    case = ctx.case
    step, spec, targets = payload["step"], payload["spec"], payload["targets"]
    of = total_steps(rules)
    if spec == "exhausted":
        return (
            f":rotating_light: Nobody acknowledged the page for *{case.number}* after {of} "
            "steps. Paging has stopped; someone must take this Sev A case now. <!here>",
            [],
        )
    if not targets:
        return (
            f"Page for *{case.number}*, step {step + 1} of {of}: nobody to page for `{spec}` "
            "(nobody on call); going on to the next step.",
            [],
        )
    summary = f"*{case.number}* Sev A · {escape(ctx.organisation.name)} · " + escaped_clip(
        case.title, 150
    )
    button = ActionsBlock(
        elements=[
            ButtonElement(
                text="Acknowledge",
                action_id=ACKNOWLEDGE_PAGE,
                value=str(payload["page_id"]),
                style="primary",
            )
        ]
    )
    if payload.get("to") == "user":
        return f":rotating_light: You are paged (step {step + 1} of {of}): {summary}", [button]
    who = "<!here>" if targets == ["<channel>"] else ", ".join(mention(t) for t in targets)
    return f":rotating_light: Paging {who} (step {step + 1} of {of}) for {summary}", [button]


def _gap_text(payload: dict[str, Any], rules: SupportRules) -> str:
    name = escape(payload["rotation"])
    if payload.get("missing"):
        return (
            f":warning: The paging chain uses rotation `{name}`, but no such rotation is "
            "loaded: nobody will be paged at that step. Add it to the roster."
        )
    until = payload.get("until")
    when = blocks.when(datetime.fromisoformat(until), rules) if until else "further notice"
    return f":warning: Nobody is on call for `{name}` until {when}; Sev A pages skip this step."


def _handoff(
    session: Session, payload: dict[str, Any], rules: SupportRules, now: datetime
) -> Outgoing:
    if _to_leaver(session, payload):
        # the open work of every organisation, for someone no longer on the support team
        return Outgoing(text="", skip=True)
    at = datetime.fromisoformat(payload["at"])
    ends = payload.get("shift_ends")
    started = datetime.fromisoformat(payload["previous_started"])
    work = open_work(session, now, started)
    head = (
        f"*Shift handoff — {escape(payload['rotation'])}*: {_who(session, payload['outgoing'])} "
        f"→ {_who(session, payload['incoming'])}\n"
        f"Shift from {blocks.when(at, rules)}"
        + (f" until {blocks.when(datetime.fromisoformat(ends), rules)}" if ends else "")
    )
    items: list[Block] = [HeaderBlock(text="Shift handoff"), _section(head)]
    items += _work_blocks(session, work, rules, now)
    text = clip(f"Shift handoff: {payload['rotation']}", 300)
    target = _routed(session, None, payload, text, [])
    target.blocks = _as_dicts(items)
    return target


def _listed(title: str, cases: list[Case], rules: SupportRules, now: datetime) -> str:
    if not cases:
        return f"*{title}:* none"
    lines = [_case_line(c, rules, now) for c in cases[:LIST_LIMIT]]
    if len(cases) > LIST_LIMIT:
        lines.append(f"…and {len(cases) - LIST_LIMIT} more")
    return f"*{title} ({len(cases)}):*\n" + "\n".join(f"• {line}" for line in lines)


def _work_blocks(
    session: Session, work: OpenWork, rules: SupportRules, now: datetime
) -> list[Block]:
    counts = " · ".join(f"Sev {s}: {n}" for s, n in work.by_severity.items())
    parts = [
        _section(f"*Open cases: {work.total}* ({counts})"),
        _section(_listed("In breach", work.in_breach, rules, now)),
        _section(_listed("At risk", work.at_risk, rules, now)),
        _section(_listed("Unclaimed", work.unclaimed, rules, now)),
    ]
    if work.sev_a:
        lines = []
        for case in work.sev_a[:LIST_LIMIT]:
            owner = session.get(Person, case.assignee_id) if case.assignee_id else None
            who = _who(session, owner.slack_user_id) if owner else "_unclaimed_"
            lines.append(f"• *{case.number}* {escaped_clip(case.title, 80)} — {who}")
        if len(work.sev_a) > LIST_LIMIT:
            lines.append(f"…and {len(work.sev_a) - LIST_LIMIT} more")
        parts.append(_section(f"*Sev A in flight ({len(work.sev_a)}):*\n" + "\n".join(lines)))
    else:
        parts.append(_section("*Sev A in flight:* none"))
    acknowledged = sum(1 for p in work.pages if p.acknowledged_at is not None)
    parts.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Pages during the last shift: {len(work.pages)} "
                    f"({acknowledged} acknowledged)."
                )
            ]
        )
    )
    return parts


def lane_of(row: OutboxMessage) -> tuple[int, str] | None:
    """Messages in one lane go out in order: a case's card, its refreshes and the posts in
    its thread; a case's notices to the requester (the first opens the DM thread the others
    reply in); DMs to one person about one case."""
    if row.case_id is None:
        return None
    to = (row.payload or {}).get("to")
    if row.kind in (CARD, CARD_REFRESH) or to == "thread":
        return (row.case_id, "card")
    if row.kind == REQUESTER_NOTICE:
        return (row.case_id, "requester")
    return (row.case_id, f"dm:{(row.payload or {}).get('user')}")


def page_dm_user(row: OutboxMessage) -> str | None:
    """The person a page DM row pages (such rows may be sent grouped), else None."""
    payload = row.payload or {}
    if row.kind != PAGE or payload.get("to") != "user" or "page_id" not in payload:
        return None
    user = payload.get("user")
    return str(user) if user else None


def render_page_group(
    session: Session, row: OutboxMessage, rules: SupportRules
) -> tuple[str, list[dict[str, Any]]]:
    """The grouped page DM whose lead is `row`, from the current state: a page acknowledged
    since (here, from its thread, or by a claim) shows who took it."""
    cases: list[blocks.PagedCase] = []
    for page_id, step in (row.payload or {}).get(GROUP_PAGES) or []:
        page = session.get(Page, page_id)
        case = session.get(Case, page.case_id) if page is not None else None
        if page is None or case is None:
            continue  # nothing deletes pages or cases; a row naming none lists nothing
        organisation = session.get(Organisation, case.organisation_id)
        cases.append(
            blocks.PagedCase(
                number=case.number,
                organisation=organisation.name if organisation else "",
                title=case.title,
                step=int(step),
                acknowledged_by=page.acknowledged_by,
                called_off=page.stopped_at is not None,
            )
        )
    if not cases:
        raise PermanentFailure(f"page group {row.id} lists no page")
    assert row.id is not None
    return blocks.page_group(row.id, cases, total_steps(rules))


def prepare_pages(
    session: Session, rows: list[OutboxMessage], rules: SupportRules, now: datetime
) -> Outgoing:
    """The one DM for page rows to one person taken together (lead first). One row is the
    ordinary page, word for word; several are one message listing them all."""
    lead = rows[0]
    if len(rows) == 1:
        return prepare(session, lead, rules, now)
    if all(_page_over(session, row.payload or {}) for row in rows):
        return Outgoing(text="", skip=True)  # every page it would list is over
    if _to_leaver(session, lead.payload or {}):
        return Outgoing(text="", skip=True)
    text, body = render_page_group(session, lead, rules)
    return Outgoing(text=text, blocks=body, user=(lead.payload or {})["user"])
