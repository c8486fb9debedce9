"""Filling in a modal at the terminal, field by field, the way a person does in Slack.

Selects and radio buttons list numbered options; text inputs read a line (Enter keeps the
value shown). A field that dispatches actions (category, severity) tells the app right away,
so the form changes like it does in Slack, and the walk goes on with the updated form. On
submit, errors the app sends back are shown under their fields and only those are asked again.
`cancel`, Ctrl-C or Ctrl-D at a terminal close the form like its close button in Slack: nothing
is sent and the demo goes on. A script or pipe that ends inside a form ends the demo.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatops.demo.render import JSONDict, wrap

if TYPE_CHECKING:
    from chatops.demo.shell import Shell

_SELECTS = {"static_select", "radio_buttons", "external_select"}
_MULTI = {"checkboxes", "multi_static_select"}


class _Keep:
    """Enter on a field: leave it as it is."""


KEEP = _Keep()


class Cancelled(Exception):
    """The person typed `cancel`."""


class Dismissed(Cancelled):
    """Ctrl-D at a terminal: the form closes as the modal's close button does in Slack, and
    the demo goes on (a second Ctrl-D, at the prompt, ends it)."""


class InputEnded(Exception):
    """A script or piped input ended with the form open."""


class ScriptMismatch(Exception):
    """A script's answer does not fit the form (e.g. an option that is not offered)."""


@dataclass
class WalkResult:
    submitted_at: int | None  # index into the stand-in's calls just before the last submit
    ended: bool  # the input ran out, or a script went out of step with the form
    failed: bool = False  # a script went out of step with the form


def _options(element: JSONDict) -> list[JSONDict]:
    options = [o for o in element.get("options") or [] if isinstance(o, dict)]
    for group in element.get("option_groups") or []:
        if isinstance(group, dict):
            options += [o for o in group.get("options") or [] if isinstance(o, dict)]
    return options


def _group_headings(element: JSONDict) -> dict[int, str]:
    """Where each option group starts in the flat option list, with its label, when a
    select has more than one group (e.g. the topics support handles, then those it does not)."""
    groups = [g for g in element.get("option_groups") or [] if isinstance(g, dict)]
    if len(groups) < 2:
        return {}
    headings, index = {}, len([o for o in element.get("options") or [] if isinstance(o, dict)])
    for group in groups:
        label = group.get("label")
        headings[index] = str(label.get("text") if isinstance(label, dict) else label or "")
        index += len([o for o in group.get("options") or [] if isinstance(o, dict)])
    return headings


class ModalWalker:
    """Walks the modal open for the shell's current person until it closes."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.world = shell.world
        self.user = shell.me.slack_id
        self.entered: dict[str, Any] = {}  # block_id -> raw value for submit_view
        self.answered: set[str] = set()
        self.errors: dict[str, str] = {}
        self.shown: set[str] = set()  # static blocks already shown (by their text)
        self.submitted = False  # a submission reached the app, so closing now sends nothing

    # --- the walk ------------------------------------------------------------------------

    def walk(self) -> WalkResult:
        view = self.world.standin.open_view(self.user)
        submitted_at: int | None = None
        if view is None:
            return WalkResult(None, False)
        self._header(view)
        try:
            while view is not None:
                updated = self._fields(view)
                if updated is not None:
                    view = updated
                    continue
                submitted_at = len(self.world.standin.calls())
                view = self._submit(view)
        except Dismissed:
            self._close("Form closed" + self._unsent() + ".")
            self.shell.note("(Ctrl-D closes a form; at the prompt it leaves the demo.)")
            return WalkResult(None, False)
        except (Cancelled, KeyboardInterrupt):
            self._close("Form closed" + self._unsent() + ".")
            return WalkResult(None, False)
        except InputEnded:
            self._close("The input ended with the form open: closed it" + self._unsent() + ".")
            return WalkResult(None, True)
        except ScriptMismatch as mismatch:
            self.shell.warn(f"The script is out of step with the form: {mismatch}. Stopping here.")
            self._close("Closed the form" + self._unsent() + ".")
            return WalkResult(None, True, failed=True)
        except _Closed:
            return WalkResult(None, False)
        return WalkResult(submitted_at, False)

    def _unsent(self) -> str:
        """What closing leaves unsent: all of it, or (after a step that reached the app,
        such as a caller's number) only the step on screen."""
        return "; the last step was not sent" if self.submitted else "; nothing was sent"

    def _fields(self, view: JSONDict) -> JSONDict | None:
        """Ask every unanswered input; return the new view when the app changed it."""
        blocks = [b for b in view.get("blocks") or [] if isinstance(b, dict)]
        for index, block in enumerate(blocks):
            if block.get("type") != "input":
                self._static(block)
                continue
            block_id = str(block.get("block_id"))
            if block_id in self.answered:
                continue
            for following in blocks[index + 1 :]:  # e.g. the expected wait under severity
                if following.get("type") != "context":
                    break
                self._static(following)
            answer = self._ask(view, block)
            self.answered.add(block_id)
            self.errors.pop(block_id, None)
            if isinstance(answer, _Keep):
                continue
            changed = answer != self._current(view, block)
            self.entered[block_id] = answer
            if block.get("dispatch_action") and changed:
                updated = self._dispatch(view, block, answer)
                if updated is not None:
                    return updated
        if not any(b.get("type") == "input" for b in blocks) and not view.get("submit"):
            # nothing to fill in and nothing to submit: read it, then close it
            close = self.shell.renderer.text(view.get("close")) or "Close"
            self.shell.write("")
            self.shell.write(
                "  "
                + self.shell.style.accent(f"[{close}]")
                + self.shell.style.dim(" pressed (nothing to fill in)")
            )
            self._close("")
            raise _Closed
        return None

    def _static(self, block: JSONDict) -> None:
        renderer = self.shell.renderer
        lines = renderer.block(block, "  ", None)
        key = "\n".join(lines)
        if not lines or key in self.shown:
            return
        self.shown.add(key)
        self.shell.write("")
        for line in lines:
            self.shell.write(line)

    # --- one field -----------------------------------------------------------------------

    def _ask(self, view: JSONDict, block: JSONDict) -> Any:
        shell, style = self.shell, self.shell.style
        element = block.get("element") or {}
        kind = str(element.get("type") or "")
        label = shell.renderer.text(block.get("label")) or str(block.get("block_id"))
        shell.write("")
        optional = style.dim("  (optional)") if block.get("optional") else ""
        shell.write("  " + style.bold(label) + optional)
        if block.get("hint"):
            for line in wrap(style.dim(shell.renderer.text(block["hint"])), shell.width, "    "):
                shell.write(line)
        error = self.errors.get(str(block.get("block_id")))
        if error:
            for line in wrap(style.bad("✗ " + error), shell.width, "    ", "      "):
                shell.write(line)
        current = self._current(view, block)
        if kind in _SELECTS | _MULTI and _options(element):
            return self._choose(element, label, current, multi=kind in _MULTI)
        return self._type(element, current)

    def _read(self) -> str:
        line = self.shell.lines.read("  > ")
        if line is None:
            # a terminal reads on after Ctrl-D; a script or a pipe has nothing more to give
            raise Dismissed if self.shell.lines.interactive else InputEnded
        if line.strip().lower() == "cancel":
            raise Cancelled
        return line

    def _choose(self, element: JSONDict, label: str, current: Any, *, multi: bool) -> Any:
        shell, style = self.shell, self.shell.style
        options = _options(element)
        values = [str(o.get("value")) for o in options]
        chosen = set(current) if isinstance(current, list) else {current}
        headings = _group_headings(element)
        for number, option in enumerate(options, 1):
            if number - 1 in headings:
                shell.write(style.dim(f"    {headings[number - 1]}:"))
            text = shell.renderer.text(option.get("text"))
            if option.get("description"):
                text += style.dim(" — " + shell.renderer.text(option["description"]))
            mark = style.accent("  ← current") if str(option.get("value")) in chosen else ""
            lines = wrap(f"{number}) {text}{mark}", shell.width, "    ", "       ")
            for line in lines:
                shell.write(line)
        if current:
            names = self._labels(options, current)
            shell.write(style.dim(f"    Enter keeps {names}."))
        how = "numbers separated by commas" if multi else f"a number 1–{len(options)}"
        while True:
            line = self._read().strip()
            if not line:
                return KEEP if current else ([] if multi else None)
            picked = (
                [_match(options, part.strip()) for part in line.split(",")]
                if multi
                else [_match(options, line)]
            )
            if all(p is not None for p in picked) and picked:
                chosen_values = [values[p] for p in picked if p is not None]
                if line.strip().lower() != self._labels(options, chosen_values).lower():
                    shell.write(style.dim("    → " + self._labels(options, chosen_values)))
                return chosen_values if multi else chosen_values[0]
            if not shell.lines.interactive:
                # a script cannot answer again: its next lines are meant for other fields
                raise ScriptMismatch(f"`{line}` is not one of the choices for {label}")
            shell.write(
                style.warn(f"    Type {how}, or an option's name (cancel closes the form).")
            )

    def _labels(self, options: list[JSONDict], values: Any) -> str:
        wanted = values if isinstance(values, list) else [values]
        names = [
            self.shell.renderer.text(o.get("text")) for o in options if o.get("value") in wanted
        ]
        return ", ".join(names) or "nothing"

    def _type(self, element: JSONDict, current: Any) -> Any:
        shell, style = self.shell, self.shell.style
        if current:
            for line in wrap(style.dim(f"now: {current} (Enter keeps it)"), shell.width, "    "):
                shell.write(line)
        line = self._read()
        if not line.strip():
            if current:
                return KEEP
            return ""
        if element.get("multiline"):
            line = line.replace("\\n", "\n")
        if element.get("type") == "users_select":
            person = self.world.find(line)
            return person.slack_id if person else line
        return line.strip()

    def _current(self, view: JSONDict, block: JSONDict) -> Any:
        """What the field holds now: typed before, else in the view's state, else initial."""
        block_id = str(block.get("block_id"))
        if block_id in self.entered:
            return self.entered[block_id]
        element = block.get("element") or {}
        action_id = str(element.get("action_id"))
        state = ((view.get("state") or {}).get("values") or {}).get(block_id, {}).get(action_id)
        if isinstance(state, dict):
            if isinstance(state.get("selected_option"), dict):
                return state["selected_option"].get("value")
            if state.get("selected_options"):
                return [o.get("value") for o in state["selected_options"]]
            if state.get("value"):
                return state["value"]
        if isinstance(element.get("initial_option"), dict):
            return element["initial_option"].get("value")
        if element.get("initial_options"):
            return [o.get("value") for o in element["initial_options"]]
        for key in ("initial_value", "initial_user", "initial_date", "initial_time"):
            if element.get(key):
                return element[key]
        return None

    # --- talking to the app --------------------------------------------------------------

    def _dispatch(self, view: JSONDict, block: JSONDict, value: Any) -> JSONDict | None:
        """Tell the app about a choice in a dispatching field; return the updated view."""
        world, sender = self.world, self.world.sender
        element = block.get("element") or {}
        since = len(world.standin.calls())
        updates = len(world.standin.calls("views.update"))
        response = sender.view_action(
            self.user,
            str(element.get("action_id")),
            value,
            values={k: v for k, v in self.entered.items() if k != block.get("block_id")},
            block_id=str(block.get("block_id")),
        )
        if response.status != 200:
            self.shell.warn(f"The app answered HTTP {response.status} to that choice.")
        else:
            # the app answers a choice by updating the form (views.update), or leaves it be
            with contextlib.suppress(AssertionError):
                world.standin.wait_for("views.update", count=updates + 1, timeout=3)
        world.settle(since, quiet=0.05)
        updated = world.standin.open_view(self.user)
        if updated is None:
            raise _Closed
        if updated.get("hash") == view.get("hash"):
            return None
        before = _input_labels(view, self.shell)
        after = _input_labels(updated, self.shell)
        added = [label for key, label in after.items() if key not in before]
        removed = [label for key, label in before.items() if key not in after]
        old_choices, new_choices = _choices(view), _choices(updated)
        rechosen = [
            label
            for key, label in after.items()
            if key in before and old_choices.get(key) != new_choices.get(key)
        ]
        changes = []
        if added:
            changes.append("new fields: " + ", ".join(added))
        if removed:
            changes.append("fields gone: " + ", ".join(removed))
        if rechosen:
            changes.append("other choices for " + ", ".join(rechosen))
        note = "The app updated the form" + (" — " + "; ".join(changes) if changes else "")
        for key in before:
            if key not in after:
                self.entered.pop(key, None)
                self.answered.discard(key)
        self.shell.write("")
        for line in wrap(self.shell.style.accent("↻ " + note), self.shell.width, "  ", "    "):
            self.shell.write(line)
        return updated

    def _submit(self, view: JSONDict) -> JSONDict | None:
        """Press the submit button; return the view still open (errors, update) or None."""
        shell, style = self.shell, self.shell.style
        submit = shell.renderer.text(view.get("submit")) or "Submit"
        shell.write("")
        shell.write("  " + style.accent(f"[{submit}]") + style.dim(" pressed"))
        since = len(self.world.standin.calls())
        response = self.world.sender.submit_view(self.user, self.entered)
        self.submitted = True
        for problem in response.problems:
            shell.warn(problem)
        if response.status != 200:
            shell.warn(f"The app answered HTTP {response.status}; Slack would show an error.")
            self._close("Closed the form.")
            return None
        body = response.json()
        still_open = self.world.standin.open_view(self.user)
        if still_open is None:
            shell.write("  " + style.good("✓ Sent; the form closed."))
            return None
        shell.show_meanwhile(since)
        if isinstance(body, dict) and body.get("response_action") == "errors":
            return self._errors(view, body.get("errors") or {})
        if still_open.get("id") != view.get("id") or still_open.get("hash") != view.get("hash"):
            self.entered, self.answered, self.errors, self.shown = {}, set(), {}, set()
            self._header(still_open)
        return still_open

    def _errors(self, view: JSONDict, errors: dict[str, Any]) -> JSONDict | None:
        shell, style = self.shell, self.shell.style
        labels = _input_labels(view, shell)
        shell.write("  " + style.warn("The form came back with problems:"))
        for block_id, message in errors.items():
            text = f"✗ {labels.get(block_id, block_id)}: {message}"
            for line in wrap(style.bad(text), shell.width, "    ", "      "):
                shell.write(line)
        again = {k: str(v) for k, v in errors.items() if k in labels}
        if not again:
            self._close("None of those are fields I can ask again; closed the form.")
            return None
        self.errors = again
        self.answered -= set(again)
        shell.write(style.dim("  Asking those again."))
        return self.world.standin.open_view(self.user) or view

    def _header(self, view: JSONDict) -> None:
        title = self.shell.renderer.text(view.get("title")) or "Form"
        has_inputs = any(
            isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or []
        )
        how = "type cancel (or Ctrl-D)" if self.shell.lines.interactive else "type cancel"
        self.shell.write("")
        self.shell.rule(f"Form: {title}", f"{how} at any prompt to close it" if has_inputs else "")

    def _close(self, message: str) -> None:
        if self.world.standin.open_view(self.user) is not None:
            self.world.sender.close_view(self.user)
        if message:
            self.shell.write("  " + self.shell.style.dim(message))


class _Closed(Exception):
    """The modal closed under us (or had nothing to ask)."""


def _input_labels(view: JSONDict, shell: Shell) -> dict[str, str]:
    return {
        str(b.get("block_id")): shell.renderer.text(b.get("label")) or str(b.get("block_id"))
        for b in view.get("blocks") or []
        if isinstance(b, dict) and b.get("type") == "input"
    }


def _choices(view: JSONDict) -> dict[str, list[Any]]:
    """The option values each input offers, by block id."""
    return {
        str(b.get("block_id")): [o.get("value") for o in _options(b.get("element") or {})]
        for b in view.get("blocks") or []
        if isinstance(b, dict) and b.get("type") == "input"
    }


def _match(options: list[JSONDict], answer: str) -> int | None:
    """The option a person meant: its number, its value, or (the start of) its label."""
    if re.fullmatch(r"\d+", answer):
        number = int(answer)
        return number - 1 if 1 <= number <= len(options) else None
    key = answer.strip().lower()
    if not key:
        return None
    labels = [_plain_label(o).lower() for o in options]
    for i, option in enumerate(options):
        if str(option.get("value", "")).lower() == key or labels[i] == key:
            return i
    starts = [i for i, label in enumerate(labels) if label.startswith(key)]
    return starts[0] if len(starts) == 1 else None


def _plain_label(option: JSONDict) -> str:
    text = option.get("text")
    return str(text.get("text") if isinstance(text, dict) else text or "")
