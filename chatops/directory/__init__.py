"""The directory of organisations, people and channels."""

from chatops.directory.lookup import (
    admins_of,
    channel_for,
    find_person,
    find_requester,
    is_admin_of,
    is_agent,
    is_lead,
    learn_timezone,
    organisation_of,
)

__all__ = [
    "admins_of",
    "channel_for",
    "find_person",
    "find_requester",
    "is_admin_of",
    "is_agent",
    "is_lead",
    "learn_timezone",
    "organisation_of",
]
