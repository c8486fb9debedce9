"""The kinds of notification the core writes to the outbox. The delivery side renders each
kind; one outbox row is one Slack message, so a retry can never repeat half of a notice."""

CARD = "case.card"  # the triage card
CARD_REFRESH = "case.card_refresh"  # chat.update of the card after a change
REQUESTER_NOTICE = "case.requester_notice"  # DM thread with the requester
SLA_WARNING = "sla.warning"  # before the first-response due (thread + owner DM)
SLA_BREACH = "sla.breach"  # at the due
UPDATE_REMINDER = "sev_a.update_reminder"  # SC-17 continuous effort
DOWNGRADE_OFFER = "sev_a.downgrade_offer"  # SC-16
PAGE = "page.notify"  # a Sev A page step
PAGE_ACKNOWLEDGED = "page.acknowledged"
HANDOFF = "oncall.handoff"  # shift change: channel post and DM to the incoming person
ONCALL_GAP = "oncall.gap"  # nobody on call
CASE_MESSAGE = "case.message"  # a reply, note or customer message, in the triage thread
CASE_REOPENED = "case.reopened"  # the triage thread, and the owner if someone else reopened
CASE_RELEASED = "case.released"  # the triage thread: its owner left the support team
# the triage thread: its requester no longer speaks for its organisation (roster)
REQUESTER_GONE = "case.requester_gone"
DM_GUIDANCE = "dm.guidance"  # someone wrote to the bot outside a case's thread

# Where a notice goes, in its payload: {"to": "thread"} (the case card's thread in the
# triage channel), {"to": "user", "user": U} (a DM), {"to": "channel", "channel": purpose}.

# Page DMs to one person that are waiting at the same moment go out as one message (the
# delivery side groups them). The oldest row of the group is its lead and carries, in its
# payload, GROUP_PAGES: [[page id, step], ...] for every page the message lists (what
# Acknowledge all acknowledges) and GROUP_ROWS: the outbox ids of the group. The other rows
# are marked sent with COALESCED_INTO: the lead's id.
GROUP_PAGES = "group_pages"
GROUP_ROWS = "group_rows"
COALESCED_INTO = "coalesced_into"
