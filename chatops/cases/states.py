"""Case states. The case-lifecycle work adds transitions; sweeps and lists need the sets."""

OPEN_STATUSES = ("new", "claimed", "in_progress", "awaiting_customer")
