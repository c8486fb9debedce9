"""Block Kit and mrkdwn as terminal text.

Messages are rendered to lists of lines: mentions become names, dates their fallback text,
links ``label (url)``, entities are decoded, ``*bold*`` is bold when the output is a terminal
(plain otherwise), and everything is wrapped to the terminal width.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

JSONDict = dict[str, Any]

#: Looks up a Slack user id and returns a display name (or None when unknown).
NameLookup = Callable[[str], str | None]
#: Called for each button shown; returns the number the person types to press it.
ButtonSink = Callable[[JSONDict, JSONDict], int | None]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ANGLE = re.compile(r"<([^<>\n]+)>")
# A date token followed by its own fallback in brackets (the support-time-zone spelling next to
# Slack's local-time token): in the terminal both read the same, so show it once.
_DATE_TWICE = re.compile(r"<!date\^[^|<>\n]*\|([^<>\n]*)> \(\1\)")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])")
_CODE = re.compile(r"`([^`\n]+)`")


@dataclass(frozen=True)
class Style:
    """ANSI styling, or none at all when the output is not a terminal."""

    color: bool = False

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and text else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def italic(self, text: str) -> str:
        return self._wrap("3", text)

    def underline(self, text: str) -> str:
        return self._wrap("4", text)

    def strike(self, text: str) -> str:
        return self._wrap("9", text)

    def code(self, text: str) -> str:
        return self._wrap("36", text) if self.color else f"`{text}`"

    def accent(self, text: str) -> str:
        """Where things went, button numbers, the prompt: cyan and bold."""
        return self._wrap("1;36", text)

    def good(self, text: str) -> str:
        return self._wrap("32", text)

    def warn(self, text: str) -> str:
        return self._wrap("33", text)

    def bad(self, text: str) -> str:
        return self._wrap("31", text)

    def button(self, text: str, style: str | None = None) -> str:
        code = {"primary": "1;32", "danger": "1;31"}.get(style or "", "1")
        return self._wrap(code, text)


def visible_len(text: str) -> int:
    """Length as shown on a terminal (ANSI escapes take no room)."""
    return len(_ANSI.sub("", text))


def unescape(text: str) -> str:
    """Decode the three entities Slack uses in text (``&lt; &gt; &amp;``)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _angle(token: str, names: NameLookup) -> str:
    """One ``<...>`` token of mrkdwn as a reader sees it."""
    target, _, label = token.partition("|")
    if target.startswith("@"):
        name = names(target[1:])
        return "@" + (name or label or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!date^"):
        return label or target
    if target.startswith("!subteam^"):
        return label or "@group"
    if target.startswith("!"):
        return "@" + target[1:]
    if label and label != target:
        return f"{label} ({target})"
    return target


def mrkdwn(text: str, names: NameLookup, style: Style) -> str:
    """Slack mrkdwn as terminal text (may contain ANSI escapes when ``style.color``)."""

    def angle(match: re.Match[str]) -> str:
        return _angle(match.group(1), names)

    out = _ANGLE.sub(angle, _DATE_TWICE.sub(lambda m: m.group(1), text))
    codes: list[str] = []

    def keep_code(match: re.Match[str]) -> str:
        codes.append(match.group(1))
        return f"\x00{len(codes) - 1}\x00"

    out = unescape(_CODE.sub(keep_code, out))  # no bold/italic inside code
    out = _BOLD.sub(lambda m: style.bold(m.group(1)), out)
    out = _ITALIC.sub(lambda m: style.italic(m.group(1)), out)
    out = _STRIKE.sub(lambda m: style.strike(m.group(1)), out)
    return re.sub(r"\x00(\d+)\x00", lambda m: style.code(unescape(codes[int(m.group(1))])), out)


def wrap(text: str, width: int, indent: str = "", subsequent: str | None = None) -> list[str]:
    """Word-wrap ``text`` (which may hold ANSI escapes and newlines) to ``width`` columns.

    Words longer than a line (URLs) are kept whole rather than broken.
    """
    subsequent = indent if subsequent is None else subsequent
    lines: list[str] = []
    first = True
    for paragraph in text.split("\n"):
        prefix = indent if first else subsequent
        first = False
        words = paragraph.split()
        hang = subsequent
        if words and _ANSI.sub("", words[0]) in ("•", "-", "◦", "▪"):
            hang = subsequent + "  "  # a bullet's continuation lines hang under its text
        if not words:
            lines.append(prefix.rstrip())
            continue
        line, used = prefix, visible_len(prefix)
        start = True
        for word in words:
            size = visible_len(word)
            if not start and used + 1 + size > width:
                lines.append(line)
                line, used, start = hang, visible_len(hang), True
            if start:
                line += word
                used += size
                start = False
            else:
                line += " " + word
                used += 1 + size
        lines.append(line)
    return lines


@dataclass
class Renderer:
    """Turns blocks and messages into lines for one terminal."""

    names: NameLookup
    style: Style
    width: int = 100

    def text(self, obj: Any) -> str:
        """A text object (plain_text or mrkdwn) or a bare string, rendered."""
        if isinstance(obj, str):
            return mrkdwn(obj, self.names, self.style)
        if not isinstance(obj, dict):
            return ""
        raw = str(obj.get("text") or "")
        if obj.get("type") == "mrkdwn":
            return mrkdwn(raw, self.names, self.style)
        return unescape(raw)

    def message(self, message: JSONDict, indent: str, buttons: ButtonSink | None) -> list[str]:
        """A whole message: its blocks (or its text when it has none), then attachments."""
        lines: list[str] = []
        blocks = message.get("blocks")
        if isinstance(blocks, list) and blocks:
            lines += self.blocks(blocks, indent, buttons)
        elif message.get("text"):
            lines += wrap(self.text(str(message["text"])), self.width, indent)
        for attachment in message.get("attachments") or []:
            if not isinstance(attachment, dict):
                continue
            inner = indent + "┃ "
            if isinstance(attachment.get("blocks"), list):
                lines += self.blocks(attachment["blocks"], inner, buttons)
            elif attachment.get("text") or attachment.get("fallback"):
                body = str(attachment.get("text") or attachment.get("fallback"))
                lines += wrap(self.text(body), self.width, inner)
        return lines

    def blocks(self, blocks: list[Any], indent: str, buttons: ButtonSink | None) -> list[str]:
        lines: list[str] = []
        for block in blocks:
            if isinstance(block, dict):
                lines += self.block(block, indent, buttons)
        return lines

    def block(self, block: JSONDict, indent: str, buttons: ButtonSink | None) -> list[str]:
        kind = block.get("type")
        if kind == "header":
            title = self.text(block.get("text"))
            rule = "─" * min(visible_len(title), max(10, self.width - len(indent)))
            return [*wrap(self.style.bold(title), self.width, indent), indent + rule]
        if kind == "section":
            return self._section(block, indent, buttons)
        if kind == "context":
            parts = []
            for element in block.get("elements") or []:
                if isinstance(element, dict) and element.get("type") == "image":
                    parts.append(f"[image: {element.get('alt_text') or 'image'}]")
                elif isinstance(element, dict):
                    parts.append(self.text(element))
            text = self.style.dim(_ANSI.sub("", "  ".join(p for p in parts if p)))
            return wrap(text, self.width, indent + "  ")
        if kind == "divider":
            return [indent + self.style.dim("─" * max(10, min(60, self.width - len(indent))))]
        if kind == "actions":
            shown = [self.element(b_el, block, buttons) for b_el in block.get("elements") or []]
            return wrap("   ".join(s for s in shown if s), self.width, indent)
        if kind == "image":
            return [indent + f"[image: {block.get('alt_text') or block.get('title') or ''}]"]
        if kind == "input":
            label = self.text(block.get("label"))
            return [indent + f"{label}: {self.element(block.get('element') or {}, block, None)}"]
        if kind == "rich_text":
            return wrap(_rich_text(block), self.width, indent)
        return []

    def _section(self, block: JSONDict, indent: str, buttons: ButtonSink | None) -> list[str]:
        lines: list[str] = []
        if block.get("text"):
            lines += wrap(self.text(block["text"]), self.width, indent)
        fields = [f for f in block.get("fields") or [] if isinstance(f, dict)]
        if fields:
            pairs = [self._field(f) for f in fields]
            width = max((len(label) for label, _ in pairs if label), default=0)
            for label, value in pairs:
                if not label:
                    lines += wrap(value, self.width, indent)
                    continue
                head = self.style.bold(f"{label}:") + " " * (width - len(label) + 1)
                pad = indent + " " * (width + 2)
                lines += wrap(value, self.width, indent + head, pad)
        accessory = block.get("accessory")
        if isinstance(accessory, dict):
            shown = self.element(accessory, block, buttons)
            if shown:
                lines += wrap(shown, self.width, indent)
        return lines

    def _field(self, field: JSONDict) -> tuple[str, str]:
        """A section field written as ``*Label*\\nvalue`` becomes ("Label", "value")."""
        raw = str(field.get("text") or "")
        head, newline, rest = raw.partition("\n")
        match = re.fullmatch(r"\*([^*]+)\*", head.strip())
        if newline and match and field.get("type") == "mrkdwn":
            value = mrkdwn(rest, self.names, self.style).replace("\n", " ")
            return unescape(match.group(1)), value
        return "", self.text(field)

    def element(self, element: Any, block: JSONDict, buttons: ButtonSink | None) -> str:
        if not isinstance(element, dict):
            return ""
        kind = element.get("type")
        label = self.text(element.get("text")) if element.get("text") else ""
        if kind == "button":
            number = buttons(block, element) if buttons else None
            if element.get("url"):
                label = f"{label} ({element['url']})"
            shown = self.style.button(label, element.get("style"))
            return f"[{self.style.accent(str(number))}] {shown}" if number else f"[{shown}]"
        if kind == "image":
            return f"[image: {element.get('alt_text') or ''}]"
        if kind in ("static_select", "radio_buttons", "checkboxes", "overflow"):
            options = [self.text(o.get("text")) for o in element.get("options") or []]
            return f"[menu: {' / '.join(options)}]"
        placeholder = self.text(element.get("placeholder")) if element.get("placeholder") else ""
        return f"[{placeholder or str(kind).replace('_', ' ')}]"


def _rich_text(block: JSONDict) -> str:
    """Plain text of a rich_text block (enough for what people type)."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "text":
                out.append(str(node.get("text") or ""))
            elif node.get("type") == "link":
                out.append(str(node.get("text") or node.get("url") or ""))
            elif node.get("type") == "user":
                out.append("@" + str(node.get("user_id")))
            for child in node.get("elements") or []:
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(block.get("elements"))
    return "".join(out)
