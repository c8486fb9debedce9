"""Due-date arithmetic speed: calls per second for 1-hour, 1-day and 30-day targets on the
shipped policy's calendars. The cost must not grow with the span (no minute loops).

    python -m bench.calendar_bench [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import platform
import random
import time
from datetime import UTC, datetime, timedelta

from chatops.policy import load_policy


def _rate(fn, starts: list[datetime], minutes: int, seconds: float) -> float:  # type: ignore[no-untyped-def]
    calls = 0
    deadline = time.perf_counter() + seconds
    began = time.perf_counter()
    while time.perf_counter() < deadline:
        for start in starts:
            fn(start, minutes)
        calls += len(starts)
    return calls / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, Python {platform.python_version()}")
    run(args.seconds)


def run(seconds: float = 1.0) -> None:
    """Print the table (also used by `python -m bench calendar`)."""
    rules = load_policy()
    rng = random.Random(7)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    starts = [base + timedelta(minutes=rng.randrange(0, 3 * 365 * 24 * 60)) for _ in range(200)]
    print(f"{'calendar':<22}{'span':>10}{'calls/s':>14}{'µs/call':>10}")
    spans = {"1 hour": 60, "1 day": 24 * 60, "30 days": 30 * 24 * 60}
    for name, calendar in rules.calendars.items():
        for label, minutes in spans.items():
            rate = _rate(calendar.add_business_minutes, starts, minutes, seconds)
            print(f"{name:<22}{label:>10}{rate:>14,.0f}{1e6 / rate:>10.1f}")


if __name__ == "__main__":
    main()
