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
