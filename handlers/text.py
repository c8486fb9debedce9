"""Text between the desk and Slack: people's words put into messages safely, and the ids
buttons and modals carry read back."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chatops.db import parse_row_id


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn gives meaning to.

    Anything a person typed goes through here before it reaches mrkdwn, so `<!channel>`
    in a case title never pings a channel and `<http://x|y>` never becomes a disguised link.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """Shorten text to at most `limit` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + "…"


def escaped_clip(text: str, limit: int) -> str:
    """Escape, then shorten to at most `limit` characters, never cutting an entity in half."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    pieces: list[str] = []
    used = 0
    for char in text:
        piece = escape(char)
        if used + len(piece) > limit - 1:
            break
        pieces.append(piece)
        used += len(piece)
    return "".join(pieces).rstrip() + "…"


def escaped_pieces(text: str, limit: int, prefix: str = "", head: str = "") -> list[str]:
    """Escape `text` and cut it into pieces of at most `limit` characters (one section block
    each), losing nothing: at line breaks where possible; a line longer than a piece at a
    space, else anywhere but inside an entity (`&amp;`). The line break or space at a cut is
    dropped: the next piece starts a new block. Every line, and the rest of a line cut in
    two, starts with `prefix` (`">"` quotes the text). `head`, mrkdwn already, is the first
    line of the first piece."""
    if limit - len(prefix) < 5 or len(head) > limit:  # 5: the longest entity, `&amp;`
        raise ValueError(f"pieces of {limit} characters cannot hold {head!r} or a line")
    pieces: list[str] = []
    current = [head] if head else []
    used = len(head)  # the length of "\n".join(current)

    def room() -> int:
        return limit - len(prefix) - (used + 1 if current else 0)

    for line in text.split("\n"):
        units = [escape(char) for char in line]
        while True:
            size = sum(len(unit) for unit in units)
            if size <= room():
                current.append(prefix + "".join(units))
                used = len("\n".join(current))
                break
            end, taken = 0, 0
            while end < len(units) and taken + len(units[end]) <= room():
                taken += len(units[end])
                end += 1
            space = max((i for i in range(1, end) if units[i] == " "), default=None)
            whole_line_fits_alone = size <= limit - len(prefix)
            if current and (whole_line_fits_alone or (space is None and end < len(units))):
                pieces.append("\n".join(current))  # start the line (or word) on a new piece
                current, used = [], 0
                continue
            if space is None:  # a word longer than a piece
                cut, units = units[:end], units[end:]
            else:
                cut, units = units[:space], units[space + 1 :]
            current.append(prefix + "".join(cut))
            pieces.append("\n".join(current))
            current, used = [], 0
    pieces.append("\n".join(current))
    return pieces


def slack_date(instant: datetime, fallback: str) -> str:
    """A time Slack shows in each reader's own time zone, with a fallback for old clients."""
    ts = int(instant.timestamp())
    return f"<!date^{ts}^{{date_short_pretty}} {{time}}|{escape(fallback)}>"


def mention(slack_user_id: str) -> str:
    return f"<@{slack_user_id}>"


def record_id(value: object) -> int:
    """The id of a case, page or incident that a button's value or a modal's metadata
    carries; -1 (found nowhere) when it cannot be a row id (`parse_row_id`), as in a forged
    click."""
    row_id = parse_row_id(str(value))
    return -1 if row_id is None else row_id


def view_metadata(view: dict[str, Any]) -> dict[str, Any]:
    """What a modal was opened with (its `private_metadata`, JSON the desk wrote there); {}
    when it carries none, or nothing the desk could have written (a forged form)."""
    text = view.get("private_metadata")
    try:
        data = json.loads(text) if isinstance(text, str) and text else {}
    except (ValueError, RecursionError):  # nested deeper than json.loads goes: forged
        return {}
    return data if isinstance(data, dict) else {}
