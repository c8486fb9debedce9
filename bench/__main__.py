"""Benchmarks of the desk (not tests: they print numbers and never fail on them).

    python -m bench [--quick]                 # everything
    python -m bench frontdoor [--quick] [--db sqlite|postgres] [--pace S] [--seconds S]
    python -m bench sweep [--quick]
    python -m bench storm [--quick] [--db postgres|sqlite]
    python -m bench calendar [--quick]

See bench/README.md for what each measures and the numbers of a run on this machine.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from typing import Any

from bench.common import load_average, machine, postgres_version, say


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the servers and the PostgreSQL we started stop."""

    def handler(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _frontdoor(args: argparse.Namespace) -> None:
    from bench import frontdoor

    databases = tuple(args.db) if getattr(args, "db", None) else ("sqlite", "postgres")
    frontdoor.run(
        args.quick,
        databases=databases,
        workers=args.workers,
        threads=args.threads,
        pace=args.pace,
        seconds=getattr(args, "seconds", None),
    )


def _sweep(args: argparse.Namespace) -> None:
    from bench import sweep

    sweep.run(args.quick, max_cases=getattr(args, "max_cases", None))


def _storm(args: argparse.Namespace) -> None:
    from bench import storm

    storm.run(
        args.quick,
        database=getattr(args, "storm_db", None) or "postgres",
        workers=args.workers,
        threads=args.threads,
    )


def _calendar(args: argparse.Namespace) -> None:
    from bench import calendar_bench

    say()
    say("Calendar arithmetic — due-date calls per second (must not grow with the span)")
    calendar_bench.run(0.2 if args.quick else 1.0)


RUNNERS = {
    "frontdoor": _frontdoor,
    "sweep": _sweep,
    "storm": _storm,
    "calendar": _calendar,
}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: an option given before the subcommand is not reset by the subcommand's default
    hide = argparse.SUPPRESS
    common.add_argument("--quick", action="store_true", default=hide, help="smaller counts")
    common.add_argument("--workers", type=int, default=hide, help="gunicorn workers (2)")
    common.add_argument("--threads", type=int, default=hide, help="threads per worker (8)")
    common.add_argument(
        "--pace",
        type=float,
        default=hide,
        help="front door: CHATOPS_CHANNEL_PACE_SECONDS of the desk (default 0: the "
        "after-ack posts are not held back; the storm runs with Slack's 1 s pace)",
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--pace", type=float, default=0.0)
    sub = parser.add_subparsers(dest="command")
    front = sub.add_parser("frontdoor", parents=[common], help="ack throughput/latency vs bare")
    front.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    front.add_argument("--seconds", type=float, default=None, help="time per level")
    sweep = sub.add_parser("sweep", parents=[common], help="SLA sweep tick vs open cases")
    sweep.add_argument("--max-cases", type=int, default=None, help="stop at this many cases")
    storm = sub.add_parser("storm", parents=[common], help="500 Sev A cases in 60 s")
    storm.add_argument("--db", dest="storm_db", choices=["sqlite", "postgres"], default=None)
    sub.add_parser("calendar", parents=[common], help="due-date arithmetic speed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    _stop_on_sigterm()
    began = time.monotonic()
    mode = "quick" if args.quick else "full"
    say(f"chatops benchmarks ({mode} mode), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    say(f"machine: {machine()}")
    say(f"PostgreSQL: {postgres_version()}")
    say(f"load average at start (1/5/15 min): {load_average()}")
    names = [args.command] if args.command else list(RUNNERS)
    for name in names:
        started = time.monotonic()
        try:
            RUNNERS[name](args)
        except KeyboardInterrupt:
            say(f"\n{name}: interrupted")
            break
        except Exception:  # a benchmark that breaks reports it and the others still run
            say(f"\n{name}: FAILED to run:\n{traceback.format_exc()}")
        say(f"({name} took {time.monotonic() - started:.0f} s; load average {load_average()})")
    say(f"\nall done in {time.monotonic() - began:.0f} s (benchmarks never fail: exit 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
