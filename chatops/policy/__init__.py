"""The support contract as checked data: load it, validate it, ask it questions."""

from chatops.policy.model import SEVERITY_ORDER, Policy
from chatops.policy.rules import PolicyError, SupportRules, default_policy_path, load_policy

__all__ = [
    "SEVERITY_ORDER",
    "Policy",
    "PolicyError",
    "SupportRules",
    "default_policy_path",
    "load_policy",
]
