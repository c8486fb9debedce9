"""(being written)"""

from __future__ import annotations

from typing import Any

SUBCOMMANDS: dict[str, Any] = {}


def register(app: Any, desk: Any) -> None:
    """Listeners of this surface."""
