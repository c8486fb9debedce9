"""`/support list`, `/support report` and the App Home tab.

Every case shown here is read through `chatops.queues` (whose `visible_cases` is the one
scoping rule): an admin of one organisation never sees another's cases, whichever surface.

Slack limits: a command reply holds at most 50 blocks and a section at most 3000 characters,
so every list shows its total and only its most urgent cases, then "…and N more". Blocks are
built with slack_sdk.models, which checks the other limits before anything is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from slack_bolt import App
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View
from sqlmodel import Session, col, func, select

from chatops import queues
from chatops.cases import states
from chatops.directory import admins_of, find_person, is_agent, organisation_of
from chatops.policy import SEVERITY_ORDER, SupportRules
from chatops.reports import (
    Row,
    SlaReport,
    format_duration,
    format_percent,
    format_survey,
    sla_report,
)
from chatops.sla import format_time_left
from chatops.timefmt import format_instant
from handlers import blocks
from handlers.desk import Desk
from handlers.extensions import AfterAck, Subcommand
from handlers.text import clip, escape, escaped_clip, mention
from models import Case, Organisation, Person

log = logging.getLogger(__name__)

MESSAGE_BLOCKS_MAX = blocks.MESSAGE_BLOCKS_MAX
HOME_BLOCKS_MAX = 100  # a Home tab view
SECTION_MAX = blocks.SECTION_MAX  # 3000
TITLE_SHOWN = 80  # characters of a case title in a list line

SUMMARY_TOP = 5  # cases shown per queue in the agents' summary and per severity
QUEUE_TOP = 20  # cases shown for one queue (`/support list unclaimed`) or an admin's list
HOME_TOP = 10  # cases shown per section of the Home tab

LIST_USAGE = (
    "Usage: `/support list` (a summary of the queues), `/support list unclaimed`, "
    "`/support list mine`, `/support list risk` (about to breach or in breach), "
    "`/support list sev` (open cases by severity) or `/support list sev A` (one severity). "
    f"A queue longer than {QUEUE_TOP} cases has pages: `/support list unclaimed 2`."
)
PAGE_MAX = 10_000  # pages of QUEUE_TOP: far beyond any desk's queue, and a bounded OFFSET
REPORT_DEFAULT_DAYS = 7
REPORT_MAX_DAYS = 365
# Up to this many cases the report is the command's answer itself (well under a second);
# above it, it follows the ack (`report_reply`).
REPORT_IN_ACK_CASES = 2_000
REPORT_USAGE = (
    "Usage: `/support report [days]` — the first-response SLA report over the cases opened "
    f"in the last `days` days: a whole number from 1 to {REPORT_MAX_DAYS} "
    f"(default {REPORT_DEFAULT_DAYS})."
)

STATUS_LABELS = {
    states.NEW: "new",
    states.CLAIMED: "claimed",
    states.IN_PROGRESS: "in progress",
    states.AWAITING_CUSTOMER: "awaiting customer",
    states.RESOLVED: "resolved",
    states.CLOSED: "closed",
}


# --- lines and sections -----------------------------------------------------------------


class _Names:
    """Owners' and organisations' names for the cases shown, fetched once per reply."""

    def __init__(self, session: Session, cases: Iterable[Case]) -> None:
        cases = list(cases)
        person_ids = {c.assignee_id for c in cases if c.assignee_id is not None}
        org_ids = {c.organisation_id for c in cases}
        self.people: dict[int, Person] = {}
        self.orgs: dict[int, Organisation] = {}
        if person_ids:
            for person in session.exec(select(Person).where(col(Person.id).in_(person_ids))):
                self.people[person.id or 0] = person
        if org_ids:
            for org in session.exec(select(Organisation).where(col(Organisation.id).in_(org_ids))):
                self.orgs[org.id or 0] = org


def _due(case: Case, rules: SupportRules, now: datetime, reader_tz: str | None) -> str:
    if case.first_responded_at is not None:
        return "first response given"
    if case.first_response_due is None:
        return "clock paused (awaiting customer)"
    due = case.first_response_due
    return f"first response due {blocks.when(due, rules, reader_tz)}, {format_time_left(due - now)}"


def case_line(
    case: Case,
    names: _Names,
    rules: SupportRules,
    now: datetime,
    reader_tz: str | None,
    *,
    with_organisation: bool,
) -> str:
    """One case in a list: number, severity, title (escaped), status, owner, due."""
    owner = names.people.get(case.assignee_id or 0)
    who = f"{mention(owner.slack_user_id)}" if owner else "_unclaimed_"
    parts = [
        f"*{case.number}*",
        f"Sev {escape(case.severity)}",
        escaped_clip(case.title, TITLE_SHOWN),
    ]
    if with_organisation:
        org = names.orgs.get(case.organisation_id)
        parts.append(escaped_clip(org.name, 60) if org else "?")
    status = STATUS_LABELS.get(case.status, escape(case.status))
    parts += [status, who, _due(case, rules, now, reader_tz)]
    return " · ".join(parts)


def _packed_sections(heading: str, lines: list[str]) -> list[Block]:
    """The heading and lines in as few sections as fit Slack's 3000 characters each."""
    out: list[Block] = []
    current = heading
    for line in lines:
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > SECTION_MAX:
            out.append(SectionBlock(text=MarkdownTextObject(text=clip(current, SECTION_MAX))))
            current = line
        else:
            current = candidate
    if current:
        out.append(SectionBlock(text=MarkdownTextObject(text=clip(current, SECTION_MAX))))
    return out


def _queue_blocks(
    heading: str,
    queue: queues.Queue,
    line: Callable[[Case], str],
    *,
    empty: str,
    more_hint: str = "",
    pages: str | None = None,
) -> list[Block]:
    """A queue as sections: heading with its total, its listed cases, "…and N more".

    `pages`: the command that shows this queue (`/support list unclaimed`); given, the
    footer says which cases of the total these are and the commands for the next and the
    previous page, instead of `more_hint`."""
    title = f"*{heading}* ({queue.total})"
    if not queue.cases:
        return [SectionBlock(text=MarkdownTextObject(text=f"{title}\n_{empty}_"))]
    out = _packed_sections(title, [f"• {line(case)}" for case in queue.cases])
    if pages is not None:
        footer = _page_footer(queue, pages)
        if footer:
            out.append(ContextBlock(elements=[MarkdownTextObject(text=footer)]))
    elif queue.more:
        text = f"…and {queue.more} more" + (f" — {more_hint}" if more_hint else "")
        out.append(ContextBlock(elements=[MarkdownTextObject(text=text)]))
    return out


def _page_footer(queue: queues.Queue, command: str) -> str:
    """Where this page is in its queue and how to turn it; "" for a queue of one page."""
    page = queue.offset // QUEUE_TOP + 1
    if page == 1 and not queue.more:
        return ""
    parts = []
    if page > 1:
        last = queue.offset + len(queue.cases)
        parts.append(f"Cases {queue.offset + 1}–{last} of {queue.total}")
    if queue.more:
        parts.append(f"…and {queue.more} more — next page: `{command} {page + 1}`")
    else:
        parts.append("the last page")
    if page > 1:
        parts.append(f"previous: `{command} {page - 1}`")
    return " · ".join(parts)


def _past_the_end(heading: str, queue: queues.Queue, command: str, empty: str) -> list[Block]:
    """A page after the queue's last: say how many pages there are, show nothing else."""
    if not queue.total:
        text = f"*{heading}* (0)\n_{empty}_"
    else:
        pages = -(-queue.total // QUEUE_TOP)
        last = f"`{command} {pages}`" if pages > 1 else f"`{command}`"
        text = (
            f"*{heading}* ({queue.total}) has {pages} page{'s' if pages > 1 else ''} of "
            f"{QUEUE_TOP} cases; page {queue.offset // QUEUE_TOP + 1} is past its end. "
            f"The last page: {last}."
        )
    return [SectionBlock(text=MarkdownTextObject(text=text))]


def _fit_blocks(items: list[Block], limit: int) -> list[Block]:
    """Never more blocks than Slack takes (the lists above are bounded; this is the guard)."""
    if len(items) > limit:
        items = [
            *items[: limit - 1],
            ContextBlock(elements=[MarkdownTextObject(text="…more not shown")]),
        ]
    return items


def _fit(items: list[Block], limit: int) -> list[dict[str, Any]]:
    return [item.to_dict() for item in _fit_blocks(items, limit)]


# --- who is asking ----------------------------------------------------------------------


def _refusal(session: Session, person: Person | None, rules: SupportRules) -> list[Block]:
    """Why someone who is neither staff nor an admin sees no case."""
    if person is None or person.organisation_id is None:
        return [
            SectionBlock(
                text=MarkdownTextObject(
                    text="You are not registered with any customer organisation, so there "
                    "are no cases to show you. Ask your organisation's admin to add you."
                )
            )
        ]
    admins = admins_of(session, person.organisation_id, set(rules.policy.admin_roles))
    if admins:
        names = ", ".join(f"{escape(p.name)} ({mention(p.slack_user_id)})" for p in admins)
        who = f"Your organisation's admins are: {names}."
    else:
        who = "Your organisation has no admin registered with support yet."
    return [
        SectionBlock(
            text=MarkdownTextObject(
                text=clip(
                    f"Only your organisation's *admins* can see its support cases. {who}",
                    SECTION_MAX,
                )
            )
        ),
        SectionBlock(
            text=MarkdownTextObject(
                text=clip(
                    f"Self-help is open to everyone: {blocks.self_help_lines(rules)}", SECTION_MAX
                )
            )
        ),
    ]


# --- /support list ----------------------------------------------------------------------


def _list_words(rest: str) -> tuple[list[str], int | None]:
    """The words of `/support list …` and its page (a trailing whole number), if any; a
    page of 0 or past PAGE_MAX comes back as -1, for the usage answer."""
    words = rest.lower().split()
    if words and words[-1].isdecimal():
        number = words.pop()
        page = int(number) if len(number) <= 6 else -1
        return words, page if 1 <= page <= PAGE_MAX else -1
    return words, None


def list_reply(desk: Desk, user_id: str, rest: str) -> list[dict[str, Any]]:
    """`/support list [unclaimed|mine|risk|sev [A|B|C]] [page]`."""
    words, page = _list_words(rest)
    now = desk.clock.now()
    rules = desk.rules
    with Session(desk.engine) as session:
        person = find_person(session, user_id)
        if is_agent(person):
            assert person is not None
            return _fit(_agent_list(session, person, rules, now, words, page), MESSAGE_BLOCKS_MAX)
        if queues.is_customer_admin(person, rules):
            assert person is not None
            if page == -1:
                return _fit(_usage(f"Usage: `/support list [page]`, from 1 to {PAGE_MAX}."), 1)
            return _fit(_admin_list(session, person, rules, now, page or 1), MESSAGE_BLOCKS_MAX)
        return _fit(_refusal(session, person, rules), MESSAGE_BLOCKS_MAX)


def _usage(text: str = LIST_USAGE) -> list[Block]:
    return [SectionBlock(text=MarkdownTextObject(text=text))]


def _admin_list(
    session: Session, person: Person, rules: SupportRules, now: datetime, page: int
) -> list[Block]:
    organisation = organisation_of(session, person)
    org_name = organisation.name if organisation else "your organisation"
    offset = (page - 1) * QUEUE_TOP
    queue = queues.open_cases_for_org(session, person, rules, limit=QUEUE_TOP, offset=offset)
    names = _Names(session, queue.cases)
    out: list[Block] = [HeaderBlock(text=escaped_clip(f"Open cases — {org_name}", 150))]
    empty = "Your organisation has no open cases."
    if not queue.cases and page > 1:
        out += _past_the_end("Open cases", queue, "/support list", empty)
    else:
        out += _queue_blocks(
            "Open cases",
            queue,
            lambda c: case_line(c, names, rules, now, person.tz, with_organisation=False),
            empty=empty,
            pages="/support list",
        )
    out.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text="Most urgent first (severity, then first-response due). "
                    "To ask a question or open a case: `/support &lt;your question&gt;`."
                )
            ]
        )
    )
    return out


def _agent_list(
    session: Session,
    person: Person,
    rules: SupportRules,
    now: datetime,
    words: list[str],
    page: int | None,
) -> list[Block]:
    def line(names: _Names) -> Callable[[Case], str]:
        return lambda c: case_line(c, names, rules, now, person.tz, with_organisation=True)

    which = words[0] if words else ""
    if page == -1 or (page is not None and which in ("", "summary", "all")):
        # the summary shows the head of each queue; its pages are the queues' own
        return _usage()
    if len(words) > (2 if which in ("sev", "severity") else 1):
        return _usage()
    if which in ("", "summary", "all"):
        parts = {
            "unclaimed": queues.unclaimed(session, person, rules, limit=SUMMARY_TOP),
            "mine": queues.mine(session, person, rules, limit=SUMMARY_TOP),
            "risk": queues.at_risk(session, person, rules, now, limit=SUMMARY_TOP),
        }
        severities = queues.by_severity(session, person, rules, limit=0)
        names = _Names(session, [c for q in parts.values() for c in q.cases])
        counts = " · ".join(f"Sev {s}: {severities[s].total}" for s in SEVERITY_ORDER)
        out: list[Block] = [
            HeaderBlock(text="Support queues"),
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"*Open:* {sum(q.total for q in severities.values())} ({counts}) · "
                    f"*Unclaimed:* {parts['unclaimed'].total} · *Mine:* {parts['mine'].total}"
                    f" · *At risk:* {parts['risk'].total}"
                )
            ),
        ]
        for key, heading, empty in (
            ("risk", "At risk or in breach", "Nothing about to breach."),
            ("unclaimed", "Unclaimed", "Every open case has an owner."),
            ("mine", "Mine", "You own no open case."),
        ):
            out.append(DividerBlock())
            out += _queue_blocks(
                heading, parts[key], line(names), empty=empty, more_hint=f"`/support list {key}`"
            )
        return out
    offset = ((page or 1) - 1) * QUEUE_TOP
    if which in ("unclaimed", "mine", "risk"):
        if which == "unclaimed":
            queue = queues.unclaimed(session, person, rules, limit=QUEUE_TOP, offset=offset)
            heading, empty = "Unclaimed", "Every open case has an owner."
        elif which == "mine":
            queue = queues.mine(session, person, rules, limit=QUEUE_TOP, offset=offset)
            heading, empty = "Mine", "You own no open case."
        else:
            queue = queues.at_risk(session, person, rules, now, limit=QUEUE_TOP, offset=offset)
            heading, empty = "At risk or in breach", "Nothing about to breach."
        return _queue_page(session, heading, queue, line, empty, f"/support list {which}")
    if which in ("sev", "severity") and len(words) == 2:
        severity = words[1].upper().removeprefix("SEV")
        if severity not in SEVERITY_ORDER:
            return _usage()
        queue = queues.of_severity(session, person, rules, severity, limit=QUEUE_TOP, offset=offset)
        heading = _severity_label(rules, severity)
        return _queue_page(
            session, heading, queue, line, "None open.", f"/support list sev {severity}"
        )
    if which in ("sev", "severity") and page is None:
        severities = queues.by_severity(session, person, rules, limit=SUMMARY_TOP)
        names = _Names(session, [c for q in severities.values() for c in q.cases])
        out = [HeaderBlock(text="Open cases by severity")]
        for severity, queue in severities.items():
            out += _queue_blocks(
                _severity_label(rules, severity),
                queue,
                line(names),
                empty="None open.",
                more_hint=f"`/support list sev {severity}`",
            )
        return out
    return _usage()


def _severity_label(rules: SupportRules, severity: str) -> str:
    spec = rules.policy.severities.get(severity)  # type: ignore[call-overload]
    return spec.label if spec else f"Sev {severity}"


def _queue_page(
    session: Session,
    heading: str,
    queue: queues.Queue,
    line: Callable[[_Names], Callable[[Case], str]],
    empty: str,
    command: str,
) -> list[Block]:
    """One page of one queue, or where its pages end when asked past them."""
    if not queue.cases and queue.offset:
        return [HeaderBlock(text=heading), *_past_the_end(heading, queue, command, empty)]
    names = _Names(session, queue.cases)
    return [
        HeaderBlock(text=heading),
        *_queue_blocks(heading, queue, line(names), empty=empty, pages=command),
    ]


# --- /support report --------------------------------------------------------------------


def report_reply(desk: Desk, user_id: str, rest: str) -> list[dict[str, Any]] | AfterAck:
    """`/support report [days]`: support staff only.

    A report over more than `REPORT_IN_ACK_CASES` cases is worked out after the ack (Slack
    gives up on a command after 3 s; a year of a busy desk takes longer than that): the lead
    sees "Working out the report…" at once, replaced by the report when it is ready."""
    with Session(desk.engine) as session:
        person = find_person(session, user_id)
        if not is_agent(person):
            if queues.is_customer_admin(person, desk.rules):
                return blocks.plain(
                    "The SLA report is for the support team. `/support list` shows your "
                    "organisation's open cases."
                )
            return _fit(_refusal(session, person, desk.rules), MESSAGE_BLOCKS_MAX)
        days = parse_days(rest)
        if days is None:
            return blocks.plain(REPORT_USAGE)
        until = desk.clock.now()
        since = until - timedelta(days=days)
        cases = session.exec(
            select(func.count())
            .select_from(Case)
            .where(col(Case.opened_at) >= since, col(Case.opened_at) < until)
        ).one()

    def answer() -> list[dict[str, Any]]:
        with Session(desk.engine) as session:
            report = sla_report(session, since, until, desk.rules)
        return report_blocks(report, days, desk.rules)

    if cases <= REPORT_IN_ACK_CASES:
        return answer()
    return AfterAck(
        f"Working out the SLA report of the last {days} day{'s' if days != 1 else ''} "
        f"({cases:,} cases); it appears here in a moment.",
        answer,
    )


def parse_days(rest: str) -> int | None:
    """`""` → the default; a whole number within 1..365 → it; anything else → None."""
    text = rest.strip()
    if not text:
        return REPORT_DEFAULT_DAYS
    if not (text.isascii() and text.isdigit()) or len(text) > 4:  # "²".isdigit() is True
        return None
    days = int(text)
    return days if 1 <= days <= REPORT_MAX_DAYS else None


def _row_line(row: Row) -> str:
    if not row.cases:
        return f"*{escape(row.label)}*: no cases"
    attainment = format_percent(row.attainment)
    judged = f"{row.on_time}/{row.judged} on time" if row.judged else "none judged yet"
    return (
        f"*{escape(row.label)}*: {row.cases} case{'s' if row.cases != 1 else ''} · "
        f"*{attainment}* ({judged}; {row.late} late, {row.open_breached} unanswered past due,"
        f" {row.pending} pending) · breaches {row.breaches}\n"
        f"    first response median {format_duration(row.first_response.median)}, "
        f"p90 {format_duration(row.first_response.p90)} "
        f"(business median {format_duration(row.first_response_business.median)}) · "
        f"resolve median {format_duration(row.resolve.median)}, "
        f"p90 {format_duration(row.resolve.p90)} · survey {format_survey(row)}"
    )


def report_blocks(report: SlaReport, days: int, rules: SupportRules) -> list[dict[str, Any]]:
    policy = rules.policy

    def at(instant: datetime) -> str:
        return format_instant(instant, policy.support_timezone, policy.support_timezone_label)

    period = f"Cases opened {at(report.since)} – {at(report.until)}"
    out: list[Block] = [
        HeaderBlock(text=f"First-response SLA — last {days} day{'s' if days != 1 else ''}"),
        ContextBlock(elements=[MarkdownTextObject(text=period)]),
        SectionBlock(text=MarkdownTextObject(text=clip(_row_line(report.overall), SECTION_MAX))),
        DividerBlock(),
    ]
    out += _packed_sections("*By severity*", [_row_line(r) for r in report.by_severity])
    out += _packed_sections("*By category*", [_row_line(r) for r in report.by_category])
    out.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text="Attainment = on time ÷ (on time + late + unanswered past due); "
                    "breaches = late + unanswered past due. Times are wall-clock from opening "
                    "(business: the case's calendar, pauses excluded); median and p90 by "
                    "nearest rank. Survey: average rating (answers)."
                )
            ]
        )
    )
    return _fit(out, MESSAGE_BLOCKS_MAX)


# --- App Home ---------------------------------------------------------------------------


def home_view(desk: Desk, user_id: str) -> dict[str, Any]:
    """The Home tab for this person: staff, customer admin, or anyone else."""
    now = desk.clock.now()
    rules = desk.rules
    with Session(desk.engine) as session:
        person = find_person(session, user_id)
        if is_agent(person):
            assert person is not None
            items = _agent_home(session, person, rules, now)
        elif queues.is_customer_admin(person, rules):
            assert person is not None
            items = _admin_home(session, person, rules, now)
        else:
            items = [HeaderBlock(text="Support desk"), *_refusal(session, person, rules)]
    items.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Updated {blocks.when(now, rules, person.tz if person else None)}. "
                    "Open this tab again to refresh; `/support help` lists what the desk can do."
                )
            ]
        )
    )
    return View(type="home", blocks=_fit_blocks(items, HOME_BLOCKS_MAX)).to_dict()


def _agent_home(
    session: Session, person: Person, rules: SupportRules, now: datetime
) -> list[Block]:
    parts = [
        (
            "My cases",
            queues.mine(session, person, rules, limit=HOME_TOP),
            "You own no open case.",
            "mine",
        ),
        (
            "Unclaimed",
            queues.unclaimed(session, person, rules, limit=HOME_TOP),
            "Every open case has an owner.",
            "unclaimed",
        ),
        (
            "At risk or in breach",
            queues.at_risk(session, person, rules, now, limit=HOME_TOP),
            "Nothing about to breach.",
            "risk",
        ),
    ]
    names = _Names(session, [c for _, q, _, _ in parts for c in q.cases])
    out: list[Block] = [HeaderBlock(text=escaped_clip(f"Support desk — {person.name}", 150))]
    for heading, queue, empty, key in parts:
        out.append(DividerBlock())
        out += _queue_blocks(
            heading,
            queue,
            lambda c: case_line(c, names, rules, now, person.tz, with_organisation=True),
            empty=empty,
            more_hint=f"`/support list {key}`",
        )
    return out


def _admin_home(
    session: Session, person: Person, rules: SupportRules, now: datetime
) -> list[Block]:
    organisation = organisation_of(session, person)
    org_name = organisation.name if organisation else "your organisation"
    queue = queues.open_cases_for_org(session, person, rules, limit=HOME_TOP)
    names = _Names(session, queue.cases)
    out: list[Block] = [
        HeaderBlock(text=escaped_clip(f"Support — {org_name}", 150)),
        *_queue_blocks(
            "Your organisation's open cases",
            queue,
            lambda c: case_line(c, names, rules, now, person.tz, with_organisation=False),
            empty="No open cases.",
            more_hint="`/support list` shows more",
        ),
        DividerBlock(),
    ]
    out += _health_blocks(session, rules, person.tz)
    out.append(
        SectionBlock(
            text=MarkdownTextObject(
                text=clip(
                    "Ask a question or open a case with `/support &lt;your question&gt;`. "
                    f"Self-help: {blocks.self_help_lines(rules)}",
                    SECTION_MAX,
                )
            )
        )
    )
    return out


def _health_blocks(session: Session, rules: SupportRules, reader_tz: str | None) -> list[Block]:
    """Active service-health incidents, when the health module is installed."""
    try:
        from chatops.health import active_incidents
    except ImportError:
        return []
    try:
        incidents = list(active_incidents(session))
    except Exception:  # the Home tab still shows the cases
        log.exception("reading active health incidents failed")
        return [
            SectionBlock(
                text=MarkdownTextObject(
                    text="*Service health*\n_Service health is unavailable right now._"
                )
            )
        ]
    if not incidents:
        return [
            SectionBlock(text=MarkdownTextObject(text="*Service health*\nNo active incidents."))
        ]
    technical = rules.policy.categories.get("technical")
    labels = {k: t.label for k, t in technical.topics.items()} if technical else {}
    lines = []
    for incident in incidents[:HOME_TOP]:
        services = incident.services
        if isinstance(services, list | tuple | set):
            services = ", ".join(labels.get(str(s), str(s)) for s in services)
        started = incident.created_at
        line = (
            f"• *{escaped_clip(str(incident.title), 150)}* — "
            f"{escaped_clip(str(services or ''), 200)} · {escaped_clip(str(incident.status), 40)}"
        )
        if isinstance(started, datetime):
            line += f" · since {blocks.when(started, rules, reader_tz)}"
        lines.append(line)
    out = _packed_sections(f"*Service health* — active incidents ({len(incidents)})", lines)
    if len(incidents) > HOME_TOP:
        out.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=f"…and {len(incidents) - HOME_TOP} more")]
            )
        )
    return out


SUBCOMMANDS: dict[str, tuple[str, Subcommand]] = {
    "list": (
        "open cases: admins see their organisation's; agents the queues "
        "(`list unclaimed|mine|risk|sev [A|B|C]`); a page number shows more (`list mine 2`)",
        list_reply,
    ),
    "report": (
        f"the first-response SLA report of the last N days (support team; default "
        f"{REPORT_DEFAULT_DAYS})",
        report_reply,
    ),
}


def register(app: App, desk: Desk) -> None:
    @app.event("app_home_opened")
    def app_home_opened(event: dict[str, Any], client: Any) -> None:
        """Publish the Home tab for whoever opened it.

        Slack retries an event it thinks we missed (X-Slack-Retry-Num); a retry publishes
        the same person's view again from the database's current state. `views.publish`
        replaces the whole view, so publishing twice is harmless and needs no dedup — and a
        retry after a failed publish is exactly what repairs the tab."""
        if event.get("tab", "home") != "home":
            return  # the Messages tab
        user_id = event.get("user")
        if not isinstance(user_id, str) or not user_id:
            return
        try:
            view = home_view(desk, user_id)
            client.views_publish(user_id=user_id, view=view)
        except Exception:
            log.exception("publishing the Home tab for %s failed", user_id)
