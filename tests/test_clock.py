"""The drill clock (`CHATOPS_CLOCK_FILE`): processes sharing a file share "now"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from chatops.clock import FileClock, SystemClock, clock_for


def test_every_reader_sees_the_instant_written(tmp_path: Path) -> None:
    path = tmp_path / "now"
    start = datetime(2026, 11, 25, 9, 0, tzinfo=timezone(timedelta(hours=8)))
    FileClock.write(path, start)
    first, second = FileClock(path), FileClock(path)
    assert first.now() == second.now() == start
    assert first.now().tzinfo == UTC
    FileClock.write(path, start + timedelta(hours=3))
    assert first.now() == second.now() == start + timedelta(hours=3)


def test_a_bad_file_is_an_error_not_wall_clock_time(tmp_path: Path) -> None:
    path = tmp_path / "now"
    path.write_text("2026-11-25T09:00:00")  # no offset
    with pytest.raises(ValueError, match="no UTC offset"):
        FileClock(path).now()
    path.write_text("soon")
    with pytest.raises(ValueError):
        FileClock(path).now()
    with pytest.raises(FileNotFoundError):
        FileClock(tmp_path / "missing").now()


def test_the_system_clock_unless_a_file_is_set(tmp_path: Path) -> None:
    assert isinstance(clock_for(None), SystemClock)
    assert isinstance(clock_for(tmp_path / "now"), FileClock)
