"""Where the demo's input comes from: a script file, or the keyboard (or a pipe).

Both give the shell one line per prompt; a script's lines are echoed after the prompt so the
transcript reads like a session typed by hand.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, TextIO


class LineSource(Protocol):
    """One line per prompt; None at the end of the input."""

    interactive: bool

    def read(self, prompt: str, *, skip_blank: bool = False) -> str | None:
        """Show ``prompt`` and return the next line (without its newline).

        Lines starting with ``#`` are comments and skipped; with ``skip_blank`` empty lines
        are skipped too (at the command prompt; in a form an empty line keeps a value).
        """
        ...


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(line: str) -> str:
    """Bytes that were not UTF-8 (kept as surrogates by the C locale) as U+FFFD: they could
    not be sent to Slack, or to the app, as they are."""
    return _SURROGATE.sub("\ufffd", line)


def _skipped(line: str, skip_blank: bool) -> bool:
    stripped = line.strip()
    return stripped.startswith("#") or (skip_blank and not stripped)


class ScriptLines:
    """Lines from a file (or any iterable of lines), echoed after the prompt."""

    interactive = False

    def __init__(self, lines: Iterator[str] | list[str], out: TextIO) -> None:
        self._lines = iter(lines)
        self._out = out

    @classmethod
    def from_file(cls, path: Path, out: TextIO) -> ScriptLines:
        return cls(path.read_bytes().decode("utf-8", errors="replace").splitlines(), out)

    def read(self, prompt: str, *, skip_blank: bool = False) -> str | None:
        for raw in self._lines:
            line = _clean(raw.rstrip("\r\n"))
            if _skipped(line, skip_blank):
                continue
            self._out.write(prompt + line + "\n")
            self._out.flush()
            return line
        return None


class KeyboardLines:
    """Lines typed at a terminal."""

    interactive = True

    def __init__(self, inp: TextIO, out: TextIO) -> None:
        self._inp = inp
        self._out = out
        # On the real console, input() gets line editing and history from readline.
        self._use_input = inp is sys.stdin and out is sys.stdout and _isatty(out)
        if self._use_input:
            with contextlib.suppress(ImportError):  # not on every platform
                import readline  # noqa: F401

    def read(self, prompt: str, *, skip_blank: bool = False) -> str | None:
        while True:
            line = self._read_one(prompt)
            if line is None:
                self._out.write("\n")
                return None
            line = _clean(line)
            if not _skipped(line, skip_blank):
                return line

    def _read_one(self, prompt: str) -> str | None:
        if self._use_input:
            try:
                # readline must be told which prompt characters take no room (colours)
                return input(re.sub(r"(\x1b\[[0-9;]*m)", "\x01\\1\x02", prompt))
            except EOFError:
                return None
        self._out.write(prompt)
        self._out.flush()
        raw = self._inp.readline()
        return None if raw == "" else raw.rstrip("\r\n")


def open_lines(script: Path | None, inp: TextIO, out: TextIO) -> LineSource:
    """The script when given; else the keyboard, or piped input read like a script."""
    reconfigure = getattr(inp, "reconfigure", None)
    if script is None and callable(reconfigure):
        # a byte that is not UTF-8 would otherwise end the demo with a UnicodeDecodeError
        with contextlib.suppress(ValueError, OSError):
            reconfigure(errors="replace")
    if script is not None:
        return ScriptLines.from_file(script, out)
    if _isatty(inp):
        return KeyboardLines(inp, out)
    return ScriptLines(iter(inp), out)


def _isatty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):
        return False
