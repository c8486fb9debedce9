"""Instants in words for people: "Wed 25 Nov, 17:00 Beijing time", "in 3 h 10 min"."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def format_instant(instant: datetime, timezone: str, zone_label: str | None = None) -> str:
    """The instant as a wall-clock time in `timezone`, with the zone named."""
    local = instant.astimezone(ZoneInfo(timezone))
    label = zone_label or local.tzname() or timezone
    return f"{local:%a %d %b}, {local:%H:%M} {label}"
