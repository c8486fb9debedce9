"""`chatops demo`: the whole desk offline in the terminal, like Hubot's shell.

The real Bolt app is served on 127.0.0.1, a local stand-in plays Slack, cases go to SQLite in
a temporary folder, the roster is loaded and the clock is a demo clock that starts at the
real time and moves on `advance`. You type as any person in the roster (`as dana`), run
`/support`, press the buttons the bot shows and fill in its forms field by field.

Modules: ``world`` wires the desk, ``shell`` is the command loop, ``modal`` walks a form,
``render`` turns Block Kit into terminal text, ``lines`` reads a script or the keyboard,
``summary`` sums up what a long `advance` sent.
Nothing here imports slack_bolt until :func:`run_demo` runs.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

__all__ = ["default_roster", "run_demo"]

EXAMPLE_ROSTER = Path("examples") / "workspace.yml"


def default_roster() -> Path | None:
    """examples/workspace.yml next to the code (a checkout), or in the current folder."""
    for base in (Path(__file__).resolve().parents[2], Path.cwd()):
        candidate = base / EXAMPLE_ROSTER
        if candidate.is_file():
            return candidate
    return None


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _width(tty: bool) -> int:
    if tty:
        columns = shutil.get_terminal_size((100, 24)).columns
    else:
        try:
            columns = int(os.environ.get("COLUMNS") or 100)
        except ValueError:
            columns = 100
    return max(50, min(columns, 120))


def _end_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # as a shell reports it, after the clean-up below ran


def _catch_terminal_signals() -> dict[int, Any]:
    """Make SIGTERM (`kill`) and SIGHUP (a closed terminal) end the demo through its
    clean-up, which removes the demo database; by default they end the process on the spot.
    Returns the handlers to put back."""
    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread may set handlers
    previous: dict[int, Any] = {}
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None:
            previous[signum] = signal.signal(signum, _end_on_signal)
    return previous


def run_demo(
    roster: Path | None = None,
    script: Path | None = None,
    out: TextIO = sys.stdout,
    inp: TextIO = sys.stdin,
    start: datetime | None = None,
) -> int:
    """Run the demo until `quit` or the end of the input.

    `start` sets the demo clock's first instant (default: now), so a script can rely on
    what is open and who is on call.

    Returns 0 on a normal end, 1 when a script went out of step with a form (an answer that
    is not one of the choices), 2 when the roster or the script cannot be read.
    """
    from chatops.demo.lines import open_lines
    from chatops.demo.render import Style
    from chatops.demo.shell import Shell
    from chatops.demo.world import EARLIEST, LATEST, start_world
    from chatops.verification import SMTP_ENV
    from chatops.yamlfile import FileError

    roster = roster or default_roster()
    if roster is None:
        out.write(f"error: no roster given and {EXAMPLE_ROSTER} not found; use --roster FILE\n")
        return 2
    if not roster.is_file():
        out.write(f"error: the roster {roster} does not exist\n")
        return 2
    if start is not None and start.tzinfo is not None and not EARLIEST <= start < LATEST:
        out.write(f"error: --start must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}\n")
        return 2
    if script is not None and not script.is_file():
        out.write(f"error: the script {script} does not exist\n")
        return 2
    tty = _is_tty(out) and not os.environ.get("NO_COLOR")

    root = logging.getLogger()
    previous_level = root.level
    root.setLevel(logging.WARNING)  # the app's INFO chatter would drown the conversation
    handlers = _catch_terminal_signals()
    # The roster's addresses are examples and the demo is offline: an operator's SMTP
    # setting must not make Verify caller e-mail codes out of it.
    smtp = os.environ.pop(SMTP_ENV, None)
    try:
        try:
            world = start_world(roster, start)
        except FileError as exc:
            out.write(f"error: the roster {exc.path} is invalid:\n")
            for problem in exc.problems:
                out.write(f"  {problem}\n")
            return 2
        except OSError as exc:
            out.write(f"error: could not start the demo: {exc}\n")
            return 2
        try:
            if not world.people:
                out.write(f"error: the roster {roster} has no people to play\n")
                return 2
            try:
                lines = open_lines(script, inp, out)
            except OSError as exc:
                out.write(f"error: the script {script} cannot be read: {exc.strerror or exc}\n")
                return 2
            shell = Shell(world, lines, out, Style(color=tty), _width(tty), roster)
            return shell.run()
        finally:
            world.close()
    finally:
        if smtp is not None:
            os.environ[SMTP_ENV] = smtp
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        root.setLevel(previous_level)
        out.flush()
