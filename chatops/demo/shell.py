"""The demo's command loop: type as someone, see what the bot shows, press its buttons."""

from __future__ import annotations

import contextlib
import difflib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from chatops.demo.lines import LineSource
from chatops.demo.modal import ModalWalker
from chatops.demo.render import JSONDict, Renderer, Style, visible_len, wrap
from chatops.demo.summary import LAST_SHOWN, SUMMARY_FROM, SUMMARY_OVER, show_summary
from chatops.demo.world import GENERAL, LATEST, DemoPerson, World
from chatops.standin import WebApiCall

HELP = [
    ("/support <question>", "ask the desk as the current person (also: /support help)"),
    ("press N", "press button [N] of a message shown above"),
    ("as NAME", "become someone else (first name or Slack id); `who` lists everyone"),
    ("triage, general", "show a channel (also `channel NAME`); `dm` shows your DMs with the bot"),
    ("cases", "the cases in the database"),
    ("write CS-00001 TEXT", "as the case's requester, write in its DM thread with the bot"),
    (
        "advance 2h|30m|1d",
        "move the demo clock forward; `now` shows the time. A day or more that brings over "
        f"{SUMMARY_OVER} messages is summed up: counts, breaches and pages, the last "
        f"{LAST_SHOWN} whole (`advance 30d all` shows every one)",
    ),
    ("help, quit", "this list; leave the demo (Ctrl-D at this prompt works too)"),
]
FORM_HELP = (
    "In a form, answer each field in turn: a number or an option's name for a choice, a line "
    "of text for text (\\n for a new line); Enter keeps the value shown; cancel (or Ctrl-D) "
    "closes it without sending anything."
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


@dataclass
class Button:
    """A button the demo has shown, and the message it was in (as it was shown)."""

    number: int
    label: str
    action_id: str
    block_id: str | None
    value: str | None
    message: JSONDict
    channel: str
    only_for: str | None  # the one user who can see it (ephemeral message, DM), or None
    gone: bool = False  # its message was updated without it (a claimed card's Claim)


class Shell:
    """Reads commands from a line source and shows what Slack would show."""

    def __init__(
        self,
        world: World,
        lines: LineSource,
        out: TextIO,
        style: Style,
        width: int,
        roster: Path,
    ) -> None:
        self.world = world
        self.lines = lines
        self.out = out
        self.style = style
        self.width = width
        self.roster = roster
        self.renderer = Renderer(world.display_name, style, width)
        admins = [p for p in world.people if p.is_admin]
        self.me: DemoPerson = admins[0] if admins else world.people[0]
        self.buttons: dict[int, Button] = {}
        self._button_keys: dict[tuple[Any, ...], int] = {}
        self._seen_ephemerals: set[tuple[str, str]] = set()
        self.cursor = len(world.standin.calls())  # calls to the stand-in already shown
        self.ended = False
        self.failed = False  # a script went out of step: exit code 1

    # --- output helpers ------------------------------------------------------------------

    def write(self, line: str = "") -> None:
        self.out.write(line + "\n")

    def warn(self, message: str) -> None:
        for line in wrap(self.style.warn("⚠ " + message), self.width, "  ", "    "):
            self.write(line)

    def note(self, message: str) -> None:
        for line in wrap(self.style.dim(message), self.width, "  ", "  "):
            self.write(line)

    def rule(self, label: str, aside: str = "") -> None:
        """``── label ───── aside``: the heading above each thing the bot showed."""
        head = "── " + self.style.accent(label) + " "
        tail = (" " + self.style.dim(aside)) if aside else ""
        room = min(self.width, 88) - visible_len(head) - visible_len(tail)
        self.write(head + self.style.dim("─" * max(3, room)) + tail)

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> int:
        self.banner()
        while not self.ended:
            self.write("")
            self.out.flush()
            try:
                line = self.lines.read(self.prompt(), skip_blank=True)
            except KeyboardInterrupt:
                self.write("")
                continue
            if line is None:
                break
            try:
                self.execute(line.strip())
            except KeyboardInterrupt:
                self.write("")
                self.note("(interrupted)")
            self.out.flush()
        self.note("Bye. The demo database and the local Slack stand-in are gone with it.")
        self.out.flush()
        return 1 if self.failed else 0

    def prompt(self) -> str:
        return self.style.accent(self.me.short) + "> "

    def execute(self, line: str) -> None:
        self.catch_up()
        word, _, rest = line.partition(" ")
        word, rest = word.lower(), rest.strip()
        if word.startswith("/"):
            self.slash(word, rest)
            return
        simple = {
            "help": self.help,
            "?": self.help,
            "who": self.who,
            "cases": self.cases,
            "now": self.now,
        }
        if word in simple and not rest:
            if word in ("help", "?", "who"):
                self.write("")
            simple[word]()
        elif word in ("quit", "exit", "bye"):
            self.ended = True
        elif word in ("press", "click", "p"):
            self.press(rest)
        elif word == "as":
            self.become(rest)
        elif word in ("channel", "ch"):
            self.channel(rest)
        elif word == "dm":
            self.dm(rest)
        elif word == "write":
            self.write_in_thread(rest)
        elif word == "advance":
            self.advance(rest)
        elif self.world.channel_by_name(word) and not rest:
            self.channel(word)
        elif word in simple or self.world.channel_by_name(word):
            self.note(f"`{word}` takes nothing after it; type just `{word}`.")
        else:
            self.unknown(word)

    def unknown(self, word: str) -> None:
        if len(word) > 40:  # the line is echoed above already
            word = word[:39] + "…"
        known = ["help", "who", "cases", "now", "quit", "press", "as", "channel", "dm", "advance"]
        known.append("write")
        known += list(self.world.channels.values())
        close = difflib.get_close_matches(word, known, n=1)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        self.note(f"I don't know `{word}`.{hint} Type `help` for the commands.")

    # --- banner, help, who ---------------------------------------------------------------

    def banner(self) -> None:
        style = self.style
        self.write(style.bold("chatops demo") + " — the support desk, offline in your terminal")
        self.write("")
        intro = (
            f"The real Slack app is running at {self.world.server.url}. A local stand-in plays "
            "Slack: it sends your /support commands, button presses and forms to the app, "
            "and shows what the bot posts and where. Cases go into a throwaway SQLite "
            "database; time is a demo clock you can move."
        )
        for line in wrap(intro, self.width):
            self.write(line)
        self.write("")
        self.write(style.bold(f"People (from {_shown_path(self.roster)})"))
        self.who(heading=False)
        self.write("")
        channels = []
        purposes = {"general": "where you type /support", "triage": "new case cards"}
        for channel_id, name in self.world.channels.items():
            what = purposes.get(name)
            channels.append(f"#{name} ({channel_id})" + (f" {what}" if what else ""))
        for line in wrap("Channels: " + " · ".join(channels), self.width):
            self.write(line)
        self.write("")
        self.help()
        self.write("")
        me = self.me
        self.write(f"You are {style.accent(me.short)} — {me.describe()}")
        self.note("Try: /support outlook stopped forwarding mail")

    def help(self) -> None:
        self.write(self.style.bold("Commands"))
        width = max(len(cmd) for cmd, _ in HELP) + 2
        for command, what in HELP:
            lines = wrap(what, self.width, "  " + command.ljust(width), " " * (width + 2))
            for line in lines:
                self.write(line)
        for line in wrap(self.style.dim(FORM_HELP), self.width):
            self.write(line)

    def who(self, heading: bool = True) -> None:
        if heading:
            self.write(self.style.bold("People"))
        rows = [("", "who", "Slack id", "name", "organisation", "roles")]
        for p in self.world.people:
            roles = ", ".join(p.role_labels) or "— (no admin role)"
            here = "▸" if p is self.me else ""
            rows.append((here, p.short, p.slack_id, p.name, p.organisation or "(support)", roles))
        self.table(rows)
        if heading:
            self.note(f"You are {self.me.short}. `as NAME` switches.")

    def table(self, rows: list[tuple[str, ...]], head: bool = True) -> None:
        """Rows in aligned columns, the first dimmed as a heading unless ``head`` is false."""
        widths = [max(visible_len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for n, row in enumerate(rows):
            cells = [cell + " " * (widths[i] - visible_len(cell)) for i, cell in enumerate(row)]
            text = " " + "  ".join(cells).rstrip()
            self.write(self.style.dim(text) if head and n == 0 else text)

    def become(self, word: str) -> None:
        if not word:
            self.note("Say who: `as dana` (first name or Slack id). `who` lists everyone.")
            return
        person = self.world.find(word)
        if person is None:
            names = ", ".join(p.short for p in self.world.people)
            self.note(f"No one called `{word}` in the roster. People: {names}.")
            return
        self.me = person
        self.write(f"  You are now {self.style.accent(person.short)} — {person.describe()}")

    # --- /support ------------------------------------------------------------------------

    def slash(self, command: str, text: str) -> None:
        if command != "/support":
            self.note(f"This workspace has no {command} command; the desk answers /support.")
            return
        world, me = self.world, self.me.slack_id
        response = world.sender.command(me, text, channel_id=GENERAL)
        shown = False
        if response.status != 200:
            self.warn(f"The app answered HTTP {response.status}: {response.body[:200]}")
        for problem in response.problems:
            self.warn(problem)
        for message in world.standin.ephemerals(me, GENERAL):
            if message.get("source") == "ack" and self._new_ephemeral(me, message):
                self.write("")
                self.rule("only visible to you", "in #general")
                self.show_message(message, GENERAL, only_for=me)
                shown = True
        self.follow(shown)

    # --- buttons -------------------------------------------------------------------------

    def _button_by_label(self, label: str) -> int | None:
        """The newest button whose label starts with `label`, among those this person can
        reach (messages only they see, their DMs, or channels)."""
        wanted = label.lower()
        me = self.me.slack_id
        for number in sorted(self.buttons, reverse=True):
            button = self.buttons[number]
            if button.gone or not button.label.lower().startswith(wanted):
                continue
            if button.only_for not in (None, me):
                continue
            if button.channel.startswith("D") and button.channel != f"D{me}":
                continue
            return number
        return None

    def press(self, rest: str) -> None:
        number = rest.strip().lstrip("[").rstrip("]")
        # str.isdigit() also takes ² and ①, which int() refuses: only 0-9 make a number
        is_number = re.fullmatch(r"[0-9]+", number) is not None
        if number and not is_number:
            found = self._button_by_label(number)
            if found is None:
                self.note(f"No button labelled `{number}` that you can press.")
                return
            number = str(found)
        if not number:
            self.note(
                "Press which button? e.g. `press 1` (the numbers are shown as [1], [2] …) "
                "or `press Claim` (the newest button with that label)."
            )
            return
        button = self.buttons.get(int(number))
        if button is None:
            self.note(f"There is no button [{number}] yet.")
            return
        if button.only_for and button.only_for != self.me.slack_id:
            owner = self.world.person(button.only_for)
            name = owner.short if owner else button.only_for
            self.note(
                f"Button [{button.number}] is in a message only {owner.name if owner else name} "
                f"can see. `as {name}` first."
            )
            return
        world, me = self.world, self.me.slack_id
        late = " (a button no longer on the updated message)" if button.gone else ""
        self.note(f"{self.me.name} presses [{button.number}] {button.label}{late}")
        try:
            response = world.sender.click_in(
                me,
                button.message,
                button.action_id,
                channel_id=button.channel,
                value=button.value,
                block_id=button.block_id,
                is_ephemeral=button.only_for is not None and not button.channel.startswith("D"),
            )
        except (LookupError, ValueError) as exc:
            self.warn(f"Could not press it: {exc}")
            return
        if response.status != 200:
            self.warn(f"The app answered HTTP {response.status}: {response.body[:200]}")
        for problem in response.problems:
            self.warn(problem)
        self.follow(expect=response.status == 200)

    def _register(self, block: JSONDict, element: JSONDict, context: JSONDict) -> int:
        message, channel, only_for = context["message"], context["channel"], context["only_for"]
        key = (
            channel,
            only_for,
            message.get("ts"),
            block.get("block_id"),
            element.get("action_id"),
            element.get("value"),
        )
        number = self._button_keys.get(key)
        if number is None:
            number = len(self.buttons) + 1
            self._button_keys[key] = number
        text = element.get("text")
        label = self.renderer.text(text) if text else str(element.get("action_id"))
        self.buttons[number] = Button(
            number=number,
            label=label,
            action_id=str(element.get("action_id")),
            block_id=block.get("block_id"),
            value=element.get("value"),
            message=message,
            channel=channel,
            only_for=only_for,
        )
        return number

    # --- what the bot did ----------------------------------------------------------------

    def show_message(
        self, message: JSONDict, channel: str, only_for: str | None, indent: str = "  "
    ) -> None:
        context = {"message": message, "channel": channel, "only_for": only_for}

        def sink(block: JSONDict, element: JSONDict) -> int | None:
            if element.get("url"):
                return None  # a link button opens a page, nothing to press here
            return self._register(block, element, context)

        for line in self.renderer.message(message, indent, sink):
            self.write(line)

    def follow(self, shown: bool = False, *, expect: bool = False) -> None:
        """Show what the app did after an action; walk any form it opened for me."""
        shown = self._show_new(self.world.settle(self.cursor, expect=expect)) or shown
        while self.world.standin.open_view(self.me.slack_id) is not None:
            result = ModalWalker(self).walk()
            shown = True
            if result.ended:
                self.ended = True
                self.failed = self.failed or result.failed
                return
            if result.submitted_at is None:
                self.catch_up()
                break
            self.world.settle(result.submitted_at, expect=True)
            self.catch_up()
        if not shown:
            self.note("(Nothing visible happened.)")

    def show_meanwhile(self, since: int) -> None:
        """Show what the app sent while a form stays open: a caller-verification code goes
        to the admins by DM while the agent's form waits for it to be read back."""
        self.world.settle(since)
        self.catch_up()

    def catch_up(self) -> None:
        """Show what arrived after the last wait (a slow delivery) before the next command."""
        self._show_new(self.world.standin.calls()[self.cursor :])

    def _show_new(self, calls: list[WebApiCall]) -> bool:
        self.cursor += len(calls)
        return self.show_calls(calls)

    def show_calls(self, calls: list[WebApiCall]) -> bool:
        shown = False
        for call in calls:
            if call.failed:
                what = call.error or f"HTTP {call.status}"
                self.write("")
                self.warn(f"Slack refused {call.method}: {what}")
                shown = True
                continue
            handler = getattr(self, "_call_" + call.method.replace(".", "_"), None)
            if handler is not None and handler(call):
                shown = True
        return shown

    def where(self, channel: str) -> str:
        """Where a bot message went: ``#triage (C0TRIAGE)`` or ``DM to Alice Chen``."""
        if channel.startswith("D"):
            return f"DM to {self.world.display_name(channel[1:]) or channel[1:]}"
        return self.world.channel_label(channel)

    def _thread_note(self, message: JSONDict) -> str:
        thread = message.get("thread_ts")
        return "reply in thread" if thread and thread != message.get("ts") else ""

    def _call_chat_postMessage(self, call: WebApiCall) -> bool:
        response = call.response if isinstance(call.response, dict) else {}
        channel, message = str(response.get("channel")), response.get("message") or {}
        self.write("")
        self.rule(self.where(channel), self._thread_note(message))
        self.show_message(message, channel, only_for=_dm_user(channel))
        return True

    def _call_chat_update(self, call: WebApiCall) -> bool:
        response = call.response if isinstance(call.response, dict) else {}
        channel, message = str(response.get("channel")), response.get("message") or {}
        label = "updated " + ("" if channel.startswith("D") else "message in ")
        label += self.where(channel)
        for button in self.buttons.values():  # those still on it are registered again below
            if button.channel == channel and button.message.get("ts") == message.get("ts"):
                button.gone = True
        self.write("")
        self.rule(label, self._thread_note(message))
        self.show_message(message, channel, only_for=_dm_user(channel))
        return True

    def _call_chat_postEphemeral(self, call: WebApiCall) -> bool:
        user, channel = str(call.args.get("user")), str(call.args.get("channel"))
        ts = (call.response or {}).get("message_ts") if isinstance(call.response, dict) else None
        stored = next(
            (m for m in self.world.standin.ephemerals(user) if m.get("ts") == ts),
            {"text": call.args.get("text") or "", "blocks": call.args.get("blocks"), "ts": ts},
        )
        self._seen_ephemerals.add((user, str(ts)))
        self.write("")
        self.rule(self.visible_to(user), f"in {self.world.channel_label(channel)}")
        self.show_message(stored, str(stored.get("channel") or channel), only_for=user)
        return True

    def _call_response_url(self, call: WebApiCall) -> bool:
        args, me = call.args, self.me.slack_id
        if str(args.get("delete_original")).lower() == "true":
            self.write("")
            self.rule("a message only visible to you was removed")
            return True
        fresh = next(
            (
                m
                for m in self.world.standin.ephemerals(me)
                if m.get("source") == "response_url"
                and (me, str(m.get("ts"))) not in self._seen_ephemerals
            ),
            None,
        )
        self.write("")
        if str(args.get("response_type")) == "in_channel":
            self.rule("posted in the channel")
            self.show_message(args, GENERAL, only_for=None)
        elif fresh is not None:
            self._seen_ephemerals.add((me, str(fresh.get("ts"))))
            message = fresh
            channel = str(message.get("channel") or GENERAL)
            self.rule("only visible to you", f"in {self.world.channel_label(channel)}")
            self.show_message(message, channel, only_for=me)
        else:
            self.rule("updated a message only visible to you")
            self.show_message(args, GENERAL, only_for=me)
        return True

    def _call_views_open(self, call: WebApiCall) -> bool:
        view = (call.response or {}).get("view") if isinstance(call.response, dict) else None
        mine = self.world.standin.open_view(self.me.slack_id)
        if view and mine and mine.get("id") == view.get("id"):
            return True  # the form walk shows it
        title = self.renderer.text((view or {}).get("title")) or "a form"
        self.write("")
        self.rule(f"a form opened: {title}")
        return True

    def _call_views_push(self, call: WebApiCall) -> bool:
        return self._call_views_open(call)

    def _call_views_publish(self, call: WebApiCall) -> bool:
        user = str(call.args.get("user_id"))
        self.write("")
        self.rule(f"App Home updated for {self.world.display_name(user) or user}")
        return True

    def _call_chat_delete(self, call: WebApiCall) -> bool:
        channel = str(call.args.get("channel"))
        self.write("")
        self.rule(f"a message was deleted in {self.world.channel_label(channel)}")
        return True

    def visible_to(self, user: str) -> str:
        """Who sees an ephemeral message: ``only visible to you`` or to whom."""
        if user == self.me.slack_id:
            return "only visible to you"
        return f"only visible to {self.world.display_name(user) or user}"

    def _new_ephemeral(self, user: str, message: JSONDict) -> bool:
        key = (user, str(message.get("ts")))
        if key in self._seen_ephemerals:
            return False
        self._seen_ephemerals.add(key)
        return True

    # --- conversations -------------------------------------------------------------------

    def channel(self, word: str) -> None:
        if not word:
            names = ", ".join(f"#{n}" for n in self.world.channels.values())
            self.note(f"Which channel? {names}")
            return
        channel = self.world.channel_by_name(word)
        if channel is None:
            names = ", ".join(f"#{n}" for n in self.world.channels.values())
            self.note(f"No channel `{word}` here. Channels: {names}.")
            return
        self.conversation(channel, self.world.channel_label(channel), only_for=None)

    def dm(self, word: str) -> None:
        person = self.world.find(word) if word else self.me
        if person is None:
            self.note(f"No one called `{word}` in the roster.")
            return
        channel = self.world.standin.dm_channel(person.slack_id)
        whose = "your" if person is self.me else f"{person.name}'s"
        self.conversation(channel, f"{whose} DMs with the bot", only_for=person.slack_id)

    def write_in_thread(self, rest: str) -> None:
        """The requester writes in their case's DM thread, as they would in Slack: the app
        relays it to the case's triage thread (a message event, like any other)."""
        from chatops.queues import parse_case_reference
        from models import Case, Person

        reference, _, text = rest.partition(" ")
        text = text.strip().replace("\\n", "\n")
        case_id = parse_case_reference(reference) if reference else None
        if case_id is None or not text:
            self.note("Say which case and what to write: `write CS-00001 the forwarding is back`.")
            return
        with Session(self.world.engine) as session:
            case = session.get(Case, case_id)
            row = session.get(Person, case.requester_id) if case else None
            requester = self.world.person(row.slack_user_id) if row else None
            thread_ts = case.requester_thread_ts if case else None
        if case is None:
            self.note(f"There is no case {reference.upper()}; `cases` lists them.")
            return
        if requester is None or requester.slack_id != self.me.slack_id:
            who = f"`as {requester.short}` first" if requester else "its requester"
            self.note(
                f"Only the requester writes in {case.number}'s DM thread with the bot: {who}."
            )
            return
        if thread_ts is None:
            self.note(f"{case.number}'s DM thread has not been posted yet; try again in a moment.")
            return
        channel = self.world.standin.dm_channel(self.me.slack_id)
        response = self.world.sender.message(self.me.slack_id, channel, text, thread_ts=thread_ts)
        if response.status != 200:
            self.warn(f"The app answered HTTP {response.status}: {response.body[:200]}")
        self.write("")
        self.rule(f"you wrote in {case.number}'s DM thread")
        self.follow()

    def conversation(self, channel: str, title: str, only_for: str | None) -> None:
        messages = self.world.standin.messages(channel)
        top = [m for m in messages if m.get("thread_ts") in (None, m.get("ts"))]
        count = f"{len(top)} message" + ("" if len(top) == 1 else "s")
        self.write("")
        self.rule(title, count)
        if not top:
            self.note("(nothing here yet)")
        for n, message in enumerate(top):
            if n:
                self.write("")
            self._conversation_message(message, channel, only_for, "  ")
            replies = [
                m
                for m in messages
                if m.get("thread_ts") == message.get("ts") and m.get("ts") != message.get("ts")
            ]
            if replies:
                what = f"{len(replies)} repl" + ("y" if len(replies) == 1 else "ies")
                self.write("  " + self.style.dim(f"↳ thread, {what}:"))
            for reply in replies:
                self._conversation_message(reply, channel, only_for, "      ")

    def _conversation_message(
        self, message: JSONDict, channel: str, only_for: str | None, indent: str
    ) -> None:
        author = self.world.display_name(str(message.get("user"))) or "someone"
        edited = " (edited)" if message.get("edited") else ""
        self.write(indent + self.style.dim(f"{author}{edited}:"))
        self.show_message(message, channel, only_for=only_for, indent=indent + "  ")

    # --- cases and time ------------------------------------------------------------------

    def cases(self) -> None:
        from models import Case, Organisation, Person

        policy = self.world.rules.policy
        with Session(self.world.engine) as session:
            cases = list(session.exec(select(Case).order_by(Case.id)).all())  # type: ignore[arg-type]
            orgs = {o.id: o.name for o in session.exec(select(Organisation)).all()}
            people = {p.id: p.name for p in session.exec(select(Person)).all()}
        self.write("")
        if not cases:
            self.note(
                "No cases yet. An admin opens one with /support <question> → Contact support."
            )
            return
        zone = ZoneInfo(policy.support_timezone)
        rows = [
            (
                "case",
                "sev",
                "status",
                "organisation",
                "owner",
                f"first response due ({policy.support_timezone_label})",
                "title",
            )
        ]
        for case in cases:
            due = "—"
            if case.first_response_due is not None:
                due = f"{case.first_response_due.astimezone(zone):%a %d %b, %H:%M}"
            owner = people.get(case.assignee_id, "—") if case.assignee_id else "—"
            title = case.title if len(case.title) <= 40 else case.title[:39] + "…"
            rows.append(
                (
                    case.number,
                    case.severity,
                    case.status,
                    orgs.get(case.organisation_id, "?"),
                    owner,
                    due,
                    title,
                )
            )
        self.table(rows)

    def now(self) -> None:
        policy = self.world.rules.policy
        now = self.world.clock.now()
        local = now.astimezone(ZoneInfo(policy.support_timezone))
        moved = now - self.world.started_at
        self.write(
            f"  {now:%a %d %b %Y, %H:%M} UTC · {local:%a %d %b, %H:%M} "
            f"{policy.support_timezone_label}"
        )
        if moved > timedelta(0):
            self.note(f"({_duration(moved)} after the demo's start)")

    def advance(self, text: str) -> None:
        """Move the clock as a running worker sees time pass, then show what it sent: every
        message, or for a long advance that sent many a summary (`all` shows every one)."""
        words = text.split()
        everything = bool(words) and words[-1].lower() == "all"
        spec = "".join(words[:-1] if everything else words).lower()
        parts = _DURATION.findall(spec)
        if not spec or not parts or _DURATION.sub("", spec):
            self.note("Advance by how much? e.g. `advance 2h`, `advance 30m`, `advance 1d 4h`.")
            return
        try:
            delta = timedelta(**_sum_units(parts))
            target = self.world.clock.now() + delta
        except OverflowError:
            target = LATEST
        if target >= LATEST:
            self.note(f"The demo clock cannot go past {LATEST:%Y-%m-%d}.")
            return
        if delta <= timedelta(0):
            self.note("The demo clock only moves forward.")
            return
        since = self.world.clock.now()
        self.world.tick_until(target)
        self.write(f"  The demo clock moved forward {_duration(delta)}.")
        self.now()
        # what the worker sent while time passed: warnings, pages, handoffs
        calls = self.world.settle(self.cursor)
        shown = [n for n, call in enumerate(calls) if self._shows(call)]
        if everything or delta < SUMMARY_FROM or len(shown) <= SUMMARY_OVER:
            self._show_new(calls)
            return
        last = shown[-LAST_SHOWN]
        with self._muted():
            # as if shown: buttons keep their numbers, cards updated since lose theirs
            self._show_new(calls[:last])
        show_summary(self, [calls[n] for n in shown], since, target)
        self.write("")
        self.write("  " + self.style.bold(f"The last {LAST_SHOWN} messages:"))
        self._show_new(calls[last:])
        self.write("")
        command = " ".join(words[:-1] if everything else words)
        self.note(
            f"`advance {command} all` shows every message as it comes; the commands beside "
            "the places above show theirs."
        )

    def _shows(self, call: WebApiCall) -> bool:
        """Whether the demo shows this call (a message, a form, a refusal) or only counts it
        (conversations.open before a DM)."""
        return call.failed or hasattr(self, "_call_" + call.method.replace(".", "_"))

    @contextlib.contextmanager
    def _muted(self) -> Iterator[None]:
        out = self.out
        self.out = io.StringIO()
        try:
            yield
        finally:
            self.out = out


def _dm_user(channel: str) -> str | None:
    return channel[1:] if channel.startswith("D") else None


def _sum_units(parts: list[tuple[str, str]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for amount, unit in parts:
        key = _UNITS[unit[0]]
        total[key] = total.get(key, 0.0) + float(amount)
    return total


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{mins} min" if mins else "",
    ]
    return " ".join(p for p in parts if p) or f"{int(delta.total_seconds())} s"


def _shown_path(path: Path) -> str:
    """The path relative to the current folder when it is under it, else as it is."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
