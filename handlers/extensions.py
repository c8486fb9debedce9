"""Surfaces that plug into `/support` and into the Bolt app: each module listed here offers
`SUBCOMMANDS` (a dict of name → (help text, function(desk, user_id, rest) -> blocks or
`AfterAck`)) and `register(app, desk)` for its listeners."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class AfterAck:
    """A subcommand's answer that takes too long to give before Slack's 3 s: `/support`
    acks with `notice` at once, then works `answer` out and puts it in the notice's place
    (the command's response_url). The replacement relies on Slack showing the ack first,
    which holds for the answers this is for: they take far longer than the ack's way back."""

    notice: str
    answer: Callable[[], list[dict[str, Any]]]


Subcommand = Callable[..., "list[dict[str, Any]] | AfterAck"]

MODULES = ("handlers.health", "handlers.verification", "handlers.caselife", "handlers.queues")


def modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in MODULES]


def subcommands() -> dict[str, tuple[str, Subcommand]]:
    found: dict[str, tuple[str, Subcommand]] = {}
    for module in modules():
        found.update(getattr(module, "SUBCOMMANDS", {}))
    return found
