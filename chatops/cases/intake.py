"""The intake form (SC-7) and the rules a submission must meet before it becomes a case.

Every check runs on the server, whatever the modal offered: a modal can be forged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatops.policy import SupportRules
from models import Organisation, Person

CONTACT_METHODS = {"chat": "Chat (Slack)", "email": "Email", "phone": "Phone"}
TITLE_MAX = 150
DESCRIPTION_MAX = 3000  # Slack's plain_text_input limit
IMPACT_MAX = 2000
NAME_MAX = 200
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# An area code may come first in brackets, "(010) 5555 0101"; a digit must follow it, so
# brackets and dashes alone are refused. Same as the directory's check (directory/roster.py),
# whose number the form offers to confirm.
_PHONE = re.compile(r"^\+?\(?[0-9][0-9 ()\-]{5,30}$")


@dataclass(frozen=True)
class IntakeForm:
    """What the admin submitted, already stripped of surrounding whitespace."""

    category: str | None
    topic: str | None
    severity: str | None
    title: str | None
    description: str | None
    contact_method: str | None
    phone: str | None
    email: str | None
    business_impact: str | None = None
    available_contact: str | None = None


OUT_OF_SCOPE_PREFIX = "oos:"


class OutOfScope(Exception):
    """SC-11: the request belongs to someone else; `key` names the policy's reason."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def out_of_scope_key(topic: str | None, rules: SupportRules) -> str | None:
    """The out-of-scope entry a topic choice names, if it names one (SC-11)."""
    if topic and topic.startswith(OUT_OF_SCOPE_PREFIX):
        key = topic[len(OUT_OF_SCOPE_PREFIX) :]
        if key in rules.policy.out_of_scope:
            return key
    return None


class IntakeRejected(Exception):
    """The submission cannot become a case; `errors` maps form fields to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def refusal_for_requester(
    person: Person | None, organisation: Organisation | None, rules: SupportRules
) -> str | None:
    """Why this person may not open a case at all, or None if they may (SC-1, SC-3)."""
    if person is None or organisation is None:
        return "not_registered"
    if not rules.is_admin(person.roles):
        return "not_admin"
    if organisation.subscription == "partner":
        return "partner_only"
    if not rules.categories_for(person.roles):
        return "no_category"
    return None


def check_intake(
    form: IntakeForm, person: Person, organisation: Organisation, rules: SupportRules
) -> dict[str, str]:
    """Field-by-field problems with a submission (empty when it may become a case)."""
    errors: dict[str, str] = {}
    policy = rules.policy
    categories = rules.categories_for(person.roles)
    if not form.category or form.category not in policy.categories:
        errors["category"] = "Choose a category."
    elif form.category not in categories:
        # SC-2: e.g. billing needs a global or billing admin.
        errors["category"] = (
            f"Your admin role can't open {policy.categories[form.category].label} cases."
        )
    category = policy.categories.get(form.category or "")
    if category is not None:
        if not form.topic or form.topic not in category.topics:
            errors["topic"] = "Choose a topic in this category."
        allowed = rules.severities_for(form.category or "", organisation.online_services_agreement)
        if form.severity not in allowed:
            if form.severity == "A" and category.max_severity != "A":
                errors["severity"] = (
                    f"Sev A is not available for {category.label}; the highest is Sev B."
                )
            elif form.severity == "A":
                errors["severity"] = (
                    "Sev A needs an online-services agreement signed in advance through "
                    "your account manager."
                )
            else:
                errors["severity"] = "Choose a severity."
    _check_text(errors, "title", form.title, TITLE_MAX, "Give the case a short title.")
    _check_text(errors, "description", form.description, DESCRIPTION_MAX, "Describe the problem.")
    if form.contact_method not in CONTACT_METHODS:
        errors["contact_method"] = "Choose how support should contact you."
    # SC-7, SC-18: every case needs accurate contact details, both the phone and the email
    # (the form fills them in from the directory: the admin confirms or corrects them),
    # whichever contact method is preferred.
    if not form.email:
        errors["email"] = "Confirm an email address support can write to you at (SC-7, SC-18)."
    elif not _EMAIL.match(form.email):
        errors["email"] = "That is not an email address."
    if not form.phone:
        errors["phone"] = "Confirm a phone number support can reach you on (SC-7, SC-18)."
    elif not _PHONE.match(form.phone):
        errors["phone"] = "That is not a phone number (digits, spaces, +, -, brackets)."
    if form.severity == "A" and "severity" not in errors:
        # SC-18: Sev A needs an impact statement and a person who stays available.
        required = set(policy.sev_a.requires)
        if "business_impact" in required:
            _check_text(
                errors,
                "business_impact",
                form.business_impact,
                IMPACT_MAX,
                "Sev A needs a business-impact statement.",
            )
        if "available_contact" in required:
            _check_text(
                errors,
                "available_contact",
                form.available_contact,
                NAME_MAX,
                "Sev A needs the name of a person who stays available to work with support.",
            )
    return errors


def _check_text(
    errors: dict[str, str], field: str, value: str | None, limit: int, missing: str
) -> None:
    if not value:
        errors[field] = missing
    elif len(value) > limit:
        errors[field] = f"Keep it under {limit} characters (it has {len(value)})."
