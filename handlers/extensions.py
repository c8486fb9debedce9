"""Surfaces that plug into `/support` and into the Bolt app: each module listed here offers
`SUBCOMMANDS` (a dict of name → (help text, function(desk, user_id, rest) -> blocks)) and
`register(app, desk)` for its listeners."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

MODULES = ("handlers.health", "handlers.verification", "handlers.caselife", "handlers.queues")


def modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in MODULES]


def subcommands() -> dict[str, tuple[str, Callable[..., list[dict[str, Any]]]]]:
    found: dict[str, tuple[str, Callable[..., list[dict[str, Any]]]]] = {}
    for module in modules():
        found.update(getattr(module, "SUBCOMMANDS", {}))
    return found
