"""Case states (DESIGN, issue "case life"):

new → claimed → in_progress ⇄ awaiting_customer → resolved → closed (auto-close after the
policy's number of days); resolved cases can be reopened (→ in_progress) by the requester or
an agent.
"""

NEW = "new"
CLAIMED = "claimed"
IN_PROGRESS = "in_progress"
AWAITING_CUSTOMER = "awaiting_customer"
RESOLVED = "resolved"
CLOSED = "closed"

OPEN_STATUSES = (NEW, CLAIMED, IN_PROGRESS, AWAITING_CUSTOMER)


def not_open_reason(number: str, status: str, to_do: str) -> str:
    """Why `to_do` ("reply", "change its severity") cannot be done on a case that is not
    open: a resolved case can be reopened first; a closed one cannot (a new case is the way)."""
    if status == CLOSED:
        return f"{number} is closed, so you cannot {to_do}; a closed case is not reopened."
    return f"{number} is {status}; reopen it to {to_do}."
