"""Text between the desk and Slack: people's words put into messages safely, and the ids
buttons and modals carry read back."""

from __future__ import annotations

from datetime import datetime

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
