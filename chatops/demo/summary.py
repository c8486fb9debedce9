"""The summary of what a long advance sent: how many messages of which kind went where, the
SLA warnings, breaches, pages and on-call gaps among them, so days of time stay readable."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from chatops.cases import notices
from chatops.cases.notices import COALESCED_INTO
from chatops.standin import WebApiCall

if TYPE_CHECKING:  # the shell imports this module to write the summary
    from chatops.demo.shell import Shell

# A year of shift handoffs alone is some 800 messages: an advance of a day or more that
# brings more than SUMMARY_OVER is summed up, with the last few messages shown whole.
SUMMARY_FROM = timedelta(days=1)
SUMMARY_OVER = 12
LAST_SHOWN = 3
NOTABLE_SHOWN = 8
_KIND_LABELS = {
    notices.CARD: "new case card",
    notices.CARD_REFRESH: "case card updated",
    notices.REQUESTER_NOTICE: "to the requester",
    notices.SLA_WARNING: "SLA warning",
    notices.SLA_BREACH: "SLA breach",
    notices.UPDATE_REMINDER: "Sev A update reminder",
    notices.DOWNGRADE_OFFER: "Sev A downgrade offer",
    notices.PAGE: "page",
    notices.PAGE_ACKNOWLEDGED: "page acknowledged",
    notices.HANDOFF: "shift handoff",
    notices.ONCALL_GAP: "nobody on call",
    notices.CASE_MESSAGE: "case message",
    notices.CASE_REOPENED: "case reopened",
    notices.CASE_RELEASED: "case released",
    notices.REQUESTER_GONE: "requester gone",
    notices.DM_GUIDANCE: "DM guidance",
}
_NOTABLE = (notices.SLA_WARNING, notices.SLA_BREACH, notices.PAGE, notices.ONCALL_GAP)


def show_summary(shell: Shell, calls: list[WebApiCall], since: datetime, until: datetime) -> None:
    """Write, in the shell's style, how many messages went where and of which kind between
    ``since`` and ``until``, and the ones worth a look; ``calls`` are the ones it would show."""
    shell.write("")
    count = f"{len(calls)} messages while the clock moved"
    shell.rule(count, "a summary")
    engine = shell.world.engine
    kinds = _kinds_sent(engine, since, until)
    if kinds:
        shell.write("  " + shell.style.bold("By kind:"))
        _counts(shell, [(label, n, "") for label, n in kinds.most_common()])
    places: Counter[tuple[str, str]] = Counter(_place(shell, call) for call in calls)
    shell.write("  " + shell.style.bold("By place:"))
    _counts(shell, [(where, n, command) for (where, command), n in places.most_common()])
    refused = sum(1 for call in calls if call.failed)
    if refused:
        shell.warn(f"Slack refused {refused} of them.")
    notable = _notable(engine, since, until)
    if not notable:
        shell.note("No SLA warnings or breaches, pages or on-call gaps in that time.")
        return
    policy = shell.world.rules.policy
    zone = ZoneInfo(policy.support_timezone)
    heading = "Worth a look: SLA warnings and breaches, pages, on-call gaps"
    shell.write("  " + shell.style.bold(heading) + f" ({policy.support_timezone_label})")
    if len(notable) > NOTABLE_SHOWN:
        shell.note(f"  … {len(notable) - NOTABLE_SHOWN} earlier, then the last {NOTABLE_SHOWN}:")
    rows = [
        (f"   {at.astimezone(zone):%a %d %b, %H:%M}", shell.style.warn(what), case)
        for at, what, case in notable[-NOTABLE_SHOWN:]
    ]
    shell.table(rows, head=False)


def _counts(shell: Shell, rows: list[tuple[str, int, str]]) -> None:
    """Labels, their counts right-aligned, and the command that shows them."""
    digits = max(len(str(n)) for _, n, _ in rows)
    shell.table(
        [
            ("   " + label, str(n).rjust(digits), f"`{command}`" if command else "")
            for label, n, command in rows
        ],
        head=False,
    )


def _place(shell: Shell, call: WebApiCall) -> tuple[str, str]:
    """Where a call's message went, and the command that shows that place."""
    world = shell.world
    response = call.response if isinstance(call.response, dict) else {}
    channel = str(response.get("channel") or call.args.get("channel") or "")
    if call.method == "views.publish":
        return "App Home", ""
    if call.method == "chat.postEphemeral":
        where = world.channel_label(channel)
        return f"{shell.visible_to(str(call.args.get('user')))} in {where}", ""
    if channel.startswith("D"):
        person = world.person(channel[1:])
        return shell.where(channel), f"dm {person.short}" if person else ""
    if channel in world.channels:
        return shell.where(channel), world.channels[channel]
    return channel or call.method, ""


def _kinds_sent(engine: Engine, since: datetime, until: datetime) -> Counter[str]:
    """The notices the app delivered in (since, until], by kind, as a person names them."""
    from models import OutboxMessage

    with Session(engine) as session:
        rows = session.exec(
            select(OutboxMessage.kind, OutboxMessage.payload).where(
                OutboxMessage.status == "sent",
                col(OutboxMessage.sent_at) > since,
                col(OutboxMessage.sent_at) <= until,
            )
        ).all()
    kinds: Counter[str] = Counter()
    for kind, payload in rows:
        if COALESCED_INTO not in (payload or {}):  # went out in another row's message
            kinds[_KIND_LABELS.get(kind, kind)] += 1
    return kinds


def _notable(engine: Engine, since: datetime, until: datetime) -> list[tuple[datetime, str, str]]:
    """SLA warnings and breaches, pages and on-call gaps sent in (since, until], oldest
    first, once each (a breach goes to the case's thread and to its owner)."""
    from models import Case, OutboxMessage

    with Session(engine) as session:
        rows = session.exec(
            select(OutboxMessage)
            .where(
                col(OutboxMessage.kind).in_(_NOTABLE),
                OutboxMessage.status == "sent",
                col(OutboxMessage.sent_at) > since,
                col(OutboxMessage.sent_at) <= until,
            )
            .order_by(col(OutboxMessage.sent_at), col(OutboxMessage.id))
        ).all()
        cases = {c.id: c for c in session.exec(select(Case)).all()}
    seen: set[tuple[str, int | None, datetime | None]] = set()
    notable: list[tuple[datetime, str, str]] = []
    for row in rows:
        key = (row.kind, row.case_id, row.sent_at)
        if key in seen or row.sent_at is None:
            continue
        seen.add(key)
        case = cases.get(row.case_id)
        about = ""
        if case is not None:
            title = case.title if len(case.title) <= 40 else case.title[:39] + "…"
            about = f"{case.number} · Sev {case.severity} · {title}"
        notable.append((row.sent_at, _KIND_LABELS.get(row.kind, row.kind), about))
    return notable
