"""What follows from a case being (or becoming) a given severity: Sev A pages on-call and
asks its owner for regular updates (SC-17); leaving Sev A ends both."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from chatops.paging import start_page, stop_pages
from chatops.policy import SupportRules
from models import Case


def next_update_reminder(rules: SupportRules, now: datetime) -> datetime:
    """When a Sev A case's owner is next asked to post an update (SC-17)."""
    every = rules.duration_minutes(rules.policy.notifications.sev_a_update_every)
    return now + timedelta(minutes=every)


def on_severity_set(
    session: Session, case: Case, old_severity: str | None, rules: SupportRules, now: datetime
) -> None:
    """Called in the transaction that opened the case or changed its severity."""
    if case.severity == "A" and old_severity != "A":
        case.next_update_reminder_at = next_update_reminder(rules, now)
        case.downgrade_offered_at = None
        # SC-16 counts the customer's silence on a Sev A case: from when it became Sev A at
        # the latest (a case raised after hours of quiet was offered a downgrade at once)
        case.customer_last_seen_at = now
        session.flush()
        start_page(session, case, rules, now)
    elif old_severity == "A" and case.severity != "A":
        case.next_update_reminder_at = None
        stop_pages(session, case.id, now)  # type: ignore[arg-type]
