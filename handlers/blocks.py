"""Every Block Kit message and modal the bot sends, built with slack_sdk.models so Slack's
limits (section text, button labels, modal titles) are checked before anything is sent."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    EmailInputElement,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    OptionGroup,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from chatops.cases.intake import (
    CONTACT_METHODS,
    DESCRIPTION_MAX,
    IMPACT_MAX,
    NAME_MAX,
    OUT_OF_SCOPE_PREFIX,
    TITLE_MAX,
)
from chatops.cases.states import AWAITING_CUSTOMER, CLOSED, RESOLVED
from chatops.kb import ArticleHit
from chatops.policy import SupportRules
from chatops.policy.hours import SupportLine
from chatops.sla import format_time_left
from chatops.timefmt import format_instant
from handlers.text import clip, escape, escaped_clip, escaped_pieces, mention, slack_date
from models import Case, Organisation, Person

SECTION_MAX = 3000  # characters in a section block's text (Slack)
MESSAGE_BLOCKS_MAX = 50  # blocks in one message, or in an ephemeral command reply (Slack)
QUESTION_MAX = 500
INTAKE_CALLBACK = "intake"

# action ids, one place so listeners and builders agree
CONTACT_SUPPORT = "contact_support"
INTAKE_CATEGORY = "intake_category"
INTAKE_SEVERITY = "intake_severity"
INTAKE_TOPIC = "intake_topic"
CLAIM_CASE = "claim_case"
CASE_REPLY = "case_reply"
CASE_NOTE = "case_note"
CASE_AWAIT = "case_await"
CASE_SEVERITY = "case_severity"
CASE_RESOLVE = "case_resolve"
CASE_REOPEN = "case_reopen"
VERIFY_CALLER = "verify_caller"
SURVEY_RATE = "survey_rate"
SURVEY_COMMENT = "survey_comment"
DOWNGRADE_CASE = "downgrade_case"
# The buttons whose value is the id of the case they act on (a rating's, `survey_rate_<n>`,
# is "<case id>:<n>"): each request from one is logged with its case (handlers/app.py
# `request_case`). A new case button belongs here.
CASE_BUTTONS = frozenset(
    {
        CLAIM_CASE,
        CASE_REPLY,
        CASE_NOTE,
        CASE_AWAIT,
        CASE_SEVERITY,
        CASE_RESOLVE,
        CASE_REOPEN,
        VERIFY_CALLER,
        SURVEY_COMMENT,
        DOWNGRADE_CASE,
    }
)

STATUS_LABELS = {
    "new": "New",
    "claimed": "Claimed",
    "in_progress": "In progress",
    "awaiting_customer": "Awaiting customer",
    "resolved": "Resolved",
    "closed": "Closed",
}


def when(instant: datetime, rules: SupportRules, reader_tz: str | None = None) -> str:
    """An instant for a reader: in their own time zone when the directory knows it, else as
    Slack's date token (each client shows it in its own zone); always also in the support
    time zone, which is what the contract's hours are in."""
    policy = rules.policy
    support = format_instant(instant, policy.support_timezone, policy.support_timezone_label)
    if reader_tz and reader_tz != policy.support_timezone:
        return f"{format_instant(instant, reader_tz)} your time ({support})"
    if reader_tz:
        return support
    return f"{slack_date(instant, support)} ({support})"


def _as_dicts(blocks: list[Block]) -> list[dict[str, Any]]:
    return [block.to_dict() for block in blocks]


def _mrkdwn(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_MAX)))


# --- /support replies -------------------------------------------------------------------


def usage(
    subcommands: list[tuple[str, str]], without_arguments: Sequence[str] = ()
) -> list[dict[str, Any]]:
    lines = "\n".join(f"• `/support {name}` — {what}" for name, what in subcommands)
    rule = "A question needs at least two words; a single word is read as a subcommand."
    if without_arguments:
        names = " or ".join(f"`{name}`" for name in without_arguments)
        rule += f" Words after {names} (no arguments) make a question that starts with it."
    return _as_dicts(
        [
            _mrkdwn("*Support desk* — here is what `/support` can do:\n" + lines),
            ContextBlock(elements=[MarkdownTextObject(text=rule)]),
        ]
    )


def support_hours(
    lines: list[SupportLine], rules: SupportRules, reader_tz: str | None = None
) -> list[dict[str, Any]]:
    """SC-19..SC-21: every line, open or closed now, next opening, the phone number."""
    policy = rules.policy
    rows = []
    for line in lines:
        if line.open_now:
            state = "open now"
        else:
            assert line.next_opening is not None
            state = f"closed — opens {when(line.next_opening, rules, reader_tz)}"
        rows.append(f"*{escape(line.label)}* — {escape(line.hours)}\n{state}")
    return _as_dicts(
        [
            HeaderBlock(text="Support hours"),
            _mrkdwn("\n\n".join(rows)),
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"Phone support: *{escape(policy.phone.number)}* "
                        "(phone lines and their hours are listed above)."
                    )
                ]
            ),
        ]
    )


def self_help_lines(rules: SupportRules) -> str:
    links = rules.policy.self_help.links
    return " · ".join(f"<{link.url}|{escape(link.label)}>" for link in links)


def article_matches(hits: list[ArticleHit]) -> list[dict[str, Any]]:
    """SC-6: the help articles that match the question, best first (titles and snippets
    are text from files: escaped like anything else)."""
    if not hits:
        return plain("No help article matches that; try other words.")
    lines = []
    for hit in hits:
        title = escaped_clip(hit.title, 150)
        link = f"<{hit.url}|{title}>" if hit.url else f"*{title}*"
        lines.append(f"• {link}\n{escaped_clip(hit.snippet, 200)}")
    return plain("*Help articles that may answer it:*\n" + "\n".join(lines))


def question_answer(
    question: str, rules: SupportRules, hits: list[ArticleHit]
) -> list[dict[str, Any]]:
    """SC-5, SC-6: matching articles and service health first, then the way to a case."""
    health_url = rules.policy.self_help.service_health_url
    return (
        _as_dicts([_mrkdwn(f"*Your question:* {escaped_clip(question, QUESTION_MAX)}")])
        + (article_matches(hits))
        + _as_dicts(
            [
                _mrkdwn(
                    f"Before opening a case, check <{health_url}|service health> — known issues "
                    f"are listed there — and the self-help: {self_help_lines(rules)}"
                ),
                ActionsBlock(
                    block_id="contact",
                    elements=[
                        ButtonElement(
                            text="Contact support",
                            action_id=CONTACT_SUPPORT,
                            value=clip(question, QUESTION_MAX),
                            style="primary",
                        )
                    ],
                ),
            ]
        )
    )


def not_registered() -> list[dict[str, Any]]:
    return _as_dicts(
        [
            _mrkdwn(
                "You are not registered with any customer organisation, so I can't open a "
                "case for you. Ask your organisation's admin to add you, or ask the support "
                "desk to add your organisation."
            )
        ]
    )


def not_admin(admins: list[Person], rules: SupportRules) -> list[dict[str, Any]]:
    """SC-1 + SC-25: only admins open cases; everyone gets self-help."""
    if admins:
        names = ", ".join(f"{escape(p.name)} ({mention(p.slack_user_id)})" for p in admins)
        who = f"Your organisation's admins are: {names}."
    else:
        who = "Your organisation has no admin registered with support yet."
    return _as_dicts(
        [
            _mrkdwn(
                "Only your organisation's *admins* can open support cases. "
                f"{who} Ask one of them to contact support for you."
            ),
            _mrkdwn(f"Self-help is open to everyone: {self_help_lines(rules)}"),
        ]
    )


def partner_only(organisation: Organisation) -> list[dict[str, Any]]:
    """SC-3: an organisation that bought everything through a partner goes to the partner."""
    partner = escape(organisation.partner_name or "your partner")
    contact = escape(organisation.partner_contact or "")
    return _as_dicts(
        [
            _mrkdwn(
                f"{escape(organisation.name)} bought its subscriptions through *{partner}*, "
                f"so {partner} provides your support. Contact them: {contact}"
            )
        ]
    )


def plain(text: str) -> list[dict[str, Any]]:
    return _as_dicts([_mrkdwn(text)])


# --- the intake modal (SC-7, SC-12..SC-15, SC-18) ---------------------------------------


@dataclass(frozen=True)
class IntakeChoices:
    """What the modal currently shows; rebuilt when the category or severity changes."""

    categories: list[str]
    category: str
    severities: list[str]
    severity: str | None
    phone: str | None
    email: str | None
    question: str
    requester_name: str
    has_agreement: bool
    requester_tz: str | None = None


def intake_modal(choices: IntakeChoices, rules: SupportRules, now: datetime) -> dict[str, Any]:
    policy = rules.policy
    category = policy.categories[choices.category]
    category_options = [
        Option(value=key, label=policy.categories[key].label) for key in choices.categories
    ]
    topic_groups = [
        OptionGroup(
            label=clip(f"{category.label} topics", 75),
            options=[
                Option(value=key, label=clip(topic.label, 75))
                for key, topic in category.topics.items()
            ],
        )
    ]
    if policy.out_of_scope:
        # SC-11: offered so the admin learns who owns it, instead of opening a dead case.
        topic_groups.append(
            OptionGroup(
                label="Not handled by support",
                options=[
                    Option(value=OUT_OF_SCOPE_PREFIX + key, label=clip(spec.label, 75))
                    for key, spec in policy.out_of_scope.items()
                ],
            )
        )
    severity_options = [
        Option(
            value=sev,
            label=policy.severities[sev].label,  # type: ignore[index]
            description=policy.severities[sev].summary,  # type: ignore[index]
        )
        for sev in choices.severities
    ]
    initial_severity = next((o for o in severity_options if o.value == choices.severity), None)
    blocks: list[Block] = []
    if choices.question:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"*Your question:* {escaped_clip(choices.question, QUESTION_MAX)}"
                    )
                ]
            )
        )
    blocks += [
        InputBlock(
            block_id="category",
            label="Category",
            dispatch_action=True,
            element=StaticSelectElement(
                action_id=INTAKE_CATEGORY,
                options=category_options,
                initial_option=next(o for o in category_options if o.value == choices.category),
            ),
        ),
        InputBlock(
            block_id="topic",
            label="Topic",
            # a known incident for the chosen service is shown at once (SC-5)
            dispatch_action=True,
            hint=clip(category.description, 150),
            element=StaticSelectElement(
                action_id=INTAKE_TOPIC, placeholder="Choose a topic", option_groups=topic_groups
            ),
        ),
        InputBlock(
            block_id="severity",
            label="Severity",
            dispatch_action=True,
            element=RadioButtonsElement(
                action_id=INTAKE_SEVERITY,
                options=severity_options,
                initial_option=initial_severity,
            ),
        ),
    ]
    blocks.append(_expected_wait(choices, rules, now))
    blocks += [
        InputBlock(
            block_id="title",
            label="Title",
            element=PlainTextInputElement(action_id="title", max_length=TITLE_MAX),
        ),
        InputBlock(
            block_id="description",
            label="Description of the problem",
            element=PlainTextInputElement(
                action_id="description", multiline=True, max_length=DESCRIPTION_MAX
            ),
        ),
    ]
    if choices.severity == "A":
        blocks += [
            InputBlock(
                block_id="business_impact",
                label="Business impact (required for Sev A)",
                element=PlainTextInputElement(
                    action_id="business_impact", multiline=True, max_length=IMPACT_MAX
                ),
            ),
            InputBlock(
                block_id="available_contact",
                label="Who stays available to work with support",
                hint="Sev A needs a named person who stays reachable until it is resolved.",
                element=PlainTextInputElement(
                    action_id="available_contact",
                    max_length=NAME_MAX,
                    initial_value=clip(choices.requester_name, NAME_MAX),
                ),
            ),
        ]
    contact_options = [Option(value=k, label=v) for k, v in CONTACT_METHODS.items()]
    blocks += [
        InputBlock(
            block_id="contact_method",
            label="Preferred contact method",
            element=RadioButtonsElement(
                action_id="contact_method",
                options=contact_options,
                initial_option=contact_options[0],
            ),
        ),
        InputBlock(
            block_id="phone",
            label="Phone (confirm or correct)",
            element=PlainTextInputElement(
                action_id="phone", max_length=40, initial_value=choices.phone or None
            ),
        ),
        InputBlock(
            block_id="email",
            label="Email (confirm or correct)",
            element=EmailInputElement(action_id="email", initial_value=choices.email or None),
        ),
    ]
    # Not ASCII-escaped: "\u90ae" is six characters of Slack's 3000 for one of the question's,
    # and a 500-character question in Chinese would not fit
    metadata = json.dumps({"question": clip(choices.question, QUESTION_MAX)}, ensure_ascii=False)
    return View(
        type="modal",
        callback_id=INTAKE_CALLBACK,
        title=PlainTextObject(text="Contact support"),
        submit=PlainTextObject(text="Open case"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=metadata,
        blocks=blocks,
    ).to_dict()


def _expected_wait(choices: IntakeChoices, rules: SupportRules, now: datetime) -> Block:
    """SC-7: the expected wait, shown on the form: for the chosen severity, or for each
    severity on offer until one is chosen. Times show in the reader's own time zone (Slack's
    date token) and, spelled out, in the support time zone; a closed line says when it
    opens (SC-19, SC-20)."""
    policy = rules.policy
    severities = [choices.severity] if choices.severity else choices.severities
    lines = []
    for severity in severities:
        due = rules.first_response_due(choices.category, severity, now)
        calendar = rules.calendar_for(choices.category, severity)
        line = f"• Sev {severity} (target {rules.target_label(choices.category, severity)}): "
        if not calendar.is_open(now):
            opens = when(calendar.next_opening(now), rules, choices.requester_tz)
            line += f"support is closed now; it opens {opens}. "
        line += f"First response by {when(due, rules, choices.requester_tz)}."
        lines.append(line)
    text = f"*Expected wait — {escape(policy.categories[choices.category].label)}*\n" + "\n".join(
        lines
    )
    return ContextBlock(block_id="expected_wait", elements=[MarkdownTextObject(text=text)])


def out_of_scope_view(key: str, rules: SupportRules) -> dict[str, Any]:
    """SC-11: the reason and the right owner, in place of the intake form."""
    spec = rules.policy.out_of_scope[key]
    return View(
        type="modal",
        title=PlainTextObject(text="Not a support case"),
        close=PlainTextObject(text="Close"),
        blocks=[
            _mrkdwn(f"*{escape(spec.label)}*\n{escape(spec.reason)}"),
            _mrkdwn(f"Who can help: *{escape(spec.owner)}*."),
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text="No case was opened. If the problem is in the service itself, "
                        "start again with `/support` and choose a topic of support's."
                    )
                ]
            ),
        ],
    ).to_dict()


def submission_refused(reason: str) -> str:
    return {
        "not_registered": "You are not registered with any customer organisation.",
        "not_admin": "Only your organisation's admins can open support cases.",
        "partner_only": "Your organisation's support is provided by its partner.",
        "no_category": "Your admin role can't open support cases.",
    }.get(reason, "This request can't become a case.")


# --- the case card and notices ----------------------------------------------------------


@dataclass(frozen=True)
class CaseContext:
    case: Case
    organisation: Organisation
    requester: Person
    owner: Person | None
    verification: str | None = None  # "Caller verified by … at …" (SC-22), already mrkdwn


def _due_text(case: Case, rules: SupportRules, now: datetime, reader_tz: str | None = None) -> str:
    if case.first_responded_at is not None:
        return f"answered {when(case.first_responded_at, rules, reader_tz)}"
    if case.first_response_due is None:
        return "clock paused (awaiting customer)"
    left = format_time_left(case.first_response_due - now)
    return f"{when(case.first_response_due, rules, reader_tz)}, {left}"


def case_card(
    ctx: CaseContext,
    rules: SupportRules,
    now: datetime,
    extra_lines: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The triage channel's card for a case; its buttons follow the case's state.
    `extra_lines` are already-safe mrkdwn lines (e.g. "caller verified by …")."""
    case, policy = ctx.case, rules.policy
    category = policy.categories.get(case.category)
    category_label = category.label if category else case.category
    topic = category.topics.get(case.topic) if category else None
    severity = policy.severities.get(case.severity)  # type: ignore[call-overload]
    owner = (
        f"{mention(ctx.owner.slack_user_id)} ({escape(ctx.owner.name)})"
        if ctx.owner
        else "_Unclaimed_"
    )
    blocks: list[Block] = [
        # Slack decodes the three entities in every text field, plain_text included.
        HeaderBlock(text=escaped_clip(f"{case.number} · Sev {case.severity} · {case.title}", 150)),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*Organisation*\n{escape(ctx.organisation.name)}"),
                MarkdownTextObject(
                    text=f"*Requester*\n{mention(ctx.requester.slack_user_id)} "
                    f"({escape(ctx.requester.name)})"
                ),
                MarkdownTextObject(
                    text=f"*Category*\n{escape(category_label)} › "
                    f"{escape(topic.label if topic else case.topic)}"
                ),
                MarkdownTextObject(
                    text=f"*Severity*\n{severity.label if severity else case.severity}"
                ),
                MarkdownTextObject(text=f"*First response due*\n{_due_text(case, rules, now)}"),
                MarkdownTextObject(text=f"*Owner*\n{owner}"),
                MarkdownTextObject(text=f"*Status*\n{STATUS_LABELS.get(case.status, case.status)}"),
            ]
        ),
    ]
    # SC-7: the description is the case; agents read all of it (up to 3,000 characters,
    # over several sections when escaping makes it longer than one).
    head = f"*{escaped_clip(case.title, 300)}*"
    blocks += [
        _mrkdwn(piece) for piece in escaped_pieces(case.description or "", SECTION_MAX, head=head)
    ]
    contact = [f"Prefers {CONTACT_METHODS.get(case.contact_method, case.contact_method)}"]
    if case.contact_phone:
        contact.append(f"phone {escape(case.contact_phone)}")
    if case.contact_email:
        contact.append(f"email {escape(case.contact_email)}")
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=" · ".join(contact))]))
    if case.severity == "A" and (case.business_impact or case.available_contact):
        blocks.append(
            _mrkdwn(
                f"*Business impact:* {escaped_clip(case.business_impact or '—', 1000)}\n"
                f"*Available contact:* {escaped_clip(case.available_contact or '—', NAME_MAX)}"
            )
        )
    extra_lines = [*(extra_lines or []), *([ctx.verification] if ctx.verification else [])]
    if extra_lines:
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=clip(" · ".join(extra_lines), 3000))])
        )
    buttons = case_buttons(case, ctx.owner is not None)
    if buttons:
        blocks += [DividerBlock(), ActionsBlock(block_id="case_actions", elements=buttons)]
    return _as_dicts(blocks)


def case_buttons(case: Case, claimed: bool) -> list[ButtonElement]:
    """The card's buttons follow the case's state."""
    value = str(case.id)
    if case.status == CLOSED:
        return []
    if case.status == RESOLVED:
        return [ButtonElement(text="Reopen", action_id=CASE_REOPEN, value=value)]
    buttons = []
    if not claimed:
        buttons.append(
            ButtonElement(text="Claim", action_id=CLAIM_CASE, value=value, style="primary")
        )
    buttons += [
        ButtonElement(text="Reply", action_id=CASE_REPLY, value=value),
        ButtonElement(text="Note", action_id=CASE_NOTE, value=value),
    ]
    if case.status != AWAITING_CUSTOMER:
        buttons.append(ButtonElement(text="Awaiting customer", action_id=CASE_AWAIT, value=value))
    buttons += [
        ButtonElement(text="Change severity", action_id=CASE_SEVERITY, value=value),
        ButtonElement(text="Verify caller", action_id=VERIFY_CALLER, value=value),
        ButtonElement(text="Resolve", action_id=CASE_RESOLVE, value=value, style="danger"),
    ]
    return buttons


def case_card_text(ctx: CaseContext) -> str:
    """The notification text of the card (shown in push notifications and by old clients)."""
    case = ctx.case
    return clip(
        f"{case.number} Sev {case.severity} from {escape(ctx.organisation.name)}: "
        f"{escape(case.title)}",
        300,
    )


def requester_opened(ctx: CaseContext, rules: SupportRules, now: datetime) -> list[dict[str, Any]]:
    """The admin's confirmation (DM): number, severity, first-response target as a time."""
    case, policy = ctx.case, rules.policy
    severity = policy.severities.get(case.severity)  # type: ignore[call-overload]
    return _as_dicts(
        [
            _mrkdwn(
                f"Your case *{case.number}* is open: *{escaped_clip(case.title, 300)}*\n"
                f"Severity: {severity.label if severity else case.severity} · first response "
                f"by {_due_text(case, rules, now, ctx.requester.tz)}, "
                f"target {rules.target_label(case.category, case.severity)}."
            ),
            ContextBlock(
                elements=[
                    MarkdownTextObject(text="Updates on this case will be posted in this thread.")
                ]
            ),
        ]
    )


def requester_severity_changed(
    ctx: CaseContext, rules: SupportRules, now: datetime, old: str, new: str
) -> list[dict[str, Any]]:
    """The admin told of a severity change (SC-15, SC-16): what the first response is due by
    now, or that it was given."""
    case = ctx.case
    labels = rules.policy.severities
    label = labels[new].label if new in labels else f"Sev {new}"  # type: ignore[index]
    head = f"Support changed the severity of *{case.number}* from Sev {old} to *{label}*."
    if case.first_responded_at is not None:
        tail = "Support has answered you already; updates come in this thread."
    elif case.severity != new:  # changed again since: the next message says what holds
        tail = ""
    else:
        tail = (
            f"First response by {_due_text(case, rules, now, ctx.requester.tz)}, "
            f"target {rules.target_label(case.category, case.severity)}."
        )
    return _as_dicts([_mrkdwn(f"{head}\n{tail}".strip())])


def requester_claimed(ctx: CaseContext) -> list[dict[str, Any]]:
    assert ctx.owner is not None
    method = CONTACT_METHODS.get(ctx.case.contact_method, ctx.case.contact_method)
    method = method[:1].lower() + method[1:]  # "chat (Slack)", not "chat (slack)"
    return _as_dicts(
        [
            _mrkdwn(
                f"{mention(ctx.owner.slack_user_id)} ({escape(ctx.owner.name)}) from support "
                f"has your case *{ctx.case.number}* and will contact you by {method}."
            )
        ]
    )


# --- grouped Sev A pages ------------------------------------------------------------------

ACKNOWLEDGE_PAGES = "acknowledge_pages"
PAGE_GROUP_LIST = 30  # cases listed by name in one grouped page DM; the rest are counted
_PAGE_LINES_PER_SECTION = 10  # ~250 characters a line at most: well inside SECTION_MAX


@dataclass(frozen=True)
class PagedCase:
    """One case a grouped page DM lists, as it stands when the message is rendered."""

    number: str
    organisation: str
    title: str
    step: int  # 0-based step of the escalation this DM was for
    acknowledged_by: str | None = None
    called_off: bool = False  # the case left Sev A (or was resolved) before anyone answered


def _steps_label(cases: list[PagedCase], of: int) -> str:
    steps = sorted({c.step + 1 for c in cases})
    if len(steps) == 1:
        return f"step {steps[0]} of {of}"
    return f"steps {steps[0]}–{steps[-1]} of {of}"


def page_group(
    group_id: int, cases: list[PagedCase], of: int, limit: int = PAGE_GROUP_LIST
) -> tuple[str, list[dict[str, Any]]]:
    """The one DM that pages a person for several Sev A cases at once: the first `limit`
    cases by name, the rest counted, and one **Acknowledge all** button while any is still
    unacknowledged. The button carries only `group_id` (the lead outbox row): the pages it
    acknowledges are kept server-side, so its value stays far below Slack's 2000 characters
    however many cases are listed."""
    total = len(cases)
    open_cases = [c for c in cases if c.acknowledged_by is None and not c.called_off]
    head = f":rotating_light: You are paged for *{total}* Sev A cases ({_steps_label(cases, of)}):"
    lines = []
    for case in cases[:limit]:
        line = (
            f"• *{case.number}* · {escaped_clip(case.organisation, 40)} · "
            f"{escaped_clip(case.title, 80)}"
        )
        if case.acknowledged_by:
            line += f" — :white_check_mark: {mention(case.acknowledged_by)}"
        elif case.called_off:
            line += " — called off"
        lines.append(line)
    if total > limit:
        lines.append(f"…and {total - limit} more")
    items: list[Block] = [_mrkdwn(head)]
    for start in range(0, len(lines), _PAGE_LINES_PER_SECTION):
        items.append(_mrkdwn("\n".join(lines[start : start + _PAGE_LINES_PER_SECTION])))
    acknowledgers = list(dict.fromkeys(c.acknowledged_by for c in cases if c.acknowledged_by))
    if acknowledgers:
        who = ", ".join(mention(a) for a in acknowledgers)
        taken = sum(1 for c in cases if c.acknowledged_by)
        items.append(_mrkdwn(f"*Acknowledged: {taken} of {total}* (by {who})."))
    if open_cases:
        items.append(
            ActionsBlock(
                block_id="page_group",
                elements=[
                    ButtonElement(
                        text="Acknowledge all",
                        action_id=ACKNOWLEDGE_PAGES,
                        value=str(group_id),
                        style="primary",
                    )
                ],
            )
        )
        items.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text="Acknowledge all takes on every page listed here. To take one "
                        "case alone, use Acknowledge in its thread in the triage channel."
                    )
                ]
            )
        )
    # the notification's text names the cases, so two groups never read alike
    numbers = ", ".join(case.number for case in cases[:20]) + (" …" if total > 20 else "")
    text = clip(f"You are paged for {total} Sev A cases: {numbers}", 300)
    return text, _as_dicts(items)
