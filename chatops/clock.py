"""Clocks. The core never calls datetime.now() itself: it is handed a Clock, so the tests,
the demo and `chatops tick --at` can move time freely."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests, the demo)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("ManualClock needs timezone-aware instants")
        with self._lock:
            self._now = instant.astimezone(UTC)


class FileClock:
    """The instant written in a file (ISO-8601), read at every call.

    For rehearsals and multi-process drills (`CHATOPS_CLOCK_FILE`): every `serve` and
    `worker` process pointed at the same file lives at the same simulated instant, which the
    operator moves by rewriting the file. An unreadable or malformed file is an error, not a
    silent fall back to wall-clock time, so a drill never mixes the two.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        # Read every time: a cache keyed on mtime would miss two writes within the file
        # system's timestamp granularity, and the file is tiny.
        text = self.path.read_text(encoding="utf-8").strip()
        instant = datetime.fromisoformat(text)
        if instant.tzinfo is None:
            raise ValueError(f"{self.path}: {text!r} has no UTC offset")
        return instant.astimezone(UTC)

    @staticmethod
    def write(path: Path, instant: datetime) -> None:
        """Move every process reading `path` to `instant` (atomically: write, then rename)."""
        if instant.tzinfo is None:
            raise ValueError("FileClock needs timezone-aware instants")
        partial = path.with_name(path.name + ".part")
        partial.write_text(instant.astimezone(UTC).isoformat(), encoding="utf-8")
        partial.replace(path)


def clock_for(clock_file: Path | None) -> Clock:
    """The process clock: wall-clock time, or the drill clock when a file is configured."""
    return FileClock(clock_file) if clock_file else SystemClock()
