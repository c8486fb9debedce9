"""`/support` and its subcommands."""

from __future__ import annotations

import difflib
import logging
from typing import Any

from slack_bolt import Ack, App, Respond

from chatops.cases.intake import refusal_for_requester
from chatops.db import reading
from chatops.directory import admins_of, find_person, find_requester
from chatops.kb import search_articles
from chatops.policy.hours import support_lines
from handlers import blocks, extensions
from handlers.desk import Desk
from handlers.extensions import AfterAck, Subcommand
from handlers.oncall import oncall_reply
from handlers.text import escape

log = logging.getLogger(__name__)

# Slack sends at most a few thousand characters; a question longer than this belongs in the
# case description, not in the search box.
QUESTION_LIMIT = blocks.QUESTION_MAX

SUBCOMMANDS: list[tuple[str, str]] = [
    ("help", "this list"),
    ("hours", "support hours: which lines are open now, the phone number"),
    ("oncall", "who is on call now and next (leads: `oncall override …`)"),
    ("&lt;your question&gt;", "search help, then *Contact support* to open a case (admins)"),
]
# These take no arguments, so words after one are a question that starts with it ("help me
# set up mail forwarding"); the others keep their meaning with words after them (`case 12`,
# `oncall override …`).
WITHOUT_ARGUMENTS = ("help", "hours")


def register(app: App, desk: Desk) -> None:
    handlers: dict[str, Subcommand] = {
        "help": lambda _desk, _user, _rest: blocks.usage(SUBCOMMANDS),
        "hours": lambda desk, user, _rest: blocks.support_hours(
            support_lines(desk.rules, desk.clock.now()), desk.rules, _reader_tz(desk, user)
        ),
        "oncall": oncall_reply,
    }
    for name, (_help, function) in extensions.subcommands().items():
        handlers[name] = function
    usage_lines = (
        SUBCOMMANDS[:-1]
        + [(name, help_text) for name, (help_text, _f) in extensions.subcommands().items()]
        + SUBCOMMANDS[-1:]
    )
    handlers["help"] = lambda _desk, _user, _rest: blocks.usage(usage_lines, WITHOUT_ARGUMENTS)

    @app.command("/support")
    def support(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        text = (command.get("text") or "").strip()
        user_id = command["user_id"]
        if not text:
            ack(blocks=blocks.usage(usage_lines, WITHOUT_ARGUMENTS), text="How to use /support")
            return
        if len(text) > QUESTION_LIMIT:
            message = (
                f"That is {len(text)} characters; keep `/support` under "
                f"{QUESTION_LIMIT} and put the details in the case description."
            )
            ack(blocks=blocks.plain(message), text=message)
            return
        # Any space separates words: Slack keeps an ideographic or no-break space as typed.
        word, rest = [*text.split(maxsplit=1), ""][:2]
        word = word.lower()
        if word in handlers and not (rest and word in WITHOUT_ARGUMENTS):
            answer = handlers[word](desk, user_id, rest)
            if isinstance(answer, AfterAck):
                ack(blocks=blocks.plain(answer.notice), text=answer.notice)
                _answer_after_ack(respond, answer, word)
                return
            ack(blocks=answer, text="/support")
            return
        # Subcommands are ASCII words. Chinese or Japanese write a whole question without a
        # space, and a lone Hebrew word is no typo of one: those are searched (SC-6, SC-25).
        if not rest and not _other_script(word):
            ack(blocks=blocks.plain(_unknown_subcommand(word, list(handlers))), text="Unknown")
            return
        ack(blocks=question_reply(desk, user_id, text), text="Support")


def _answer_after_ack(respond: Respond, answer: AfterAck, word: str) -> None:
    """Put a slow subcommand's answer where its notice is (only the asker sees either)."""
    try:
        body = answer.answer()
    except Exception:
        log.exception("/support %s failed after its ack", word)
        body = blocks.plain(f"`/support {word}` failed; nothing was changed. Try again.")
    respond(blocks=body, text="/support", response_type="ephemeral", replace_original=True)


def _reader_tz(desk: Desk, user_id: str) -> str | None:
    with reading(desk.engine) as session:
        person = find_person(session, user_id)
        return person.tz if person else None


def _other_script(word: str) -> bool:
    """True when the word has a letter outside ASCII."""
    return any(char.isalpha() and not char.isascii() for char in word)


def _unknown_subcommand(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    hint = f" Did you mean `/support {close[0]}`?" if close else ""
    names = ", ".join(f"`{name}`" for name in known)
    return (
        f"`{escape(word[:40])}` is not a `/support` subcommand.{hint} Subcommands: {names}. "
        "To ask a question, write a few words, e.g. `/support mail forwarding stopped`."
    )


def question_reply(desk: Desk, user_id: str, question: str) -> list[dict[str, Any]]:
    """What `/support <question>` answers, by who is asking (SC-1, SC-3, SC-25)."""
    # SC-25: self-help is for everyone, so everyone gets the matching articles.
    with reading(desk.engine) as session:
        hits = search_articles(session, question, limit=3)
        person, organisation = find_requester(session, user_id)
        refusal = refusal_for_requester(person, organisation, desk.rules)
        if refusal == "not_registered":
            return blocks.article_matches(hits) + blocks.not_registered()
        assert organisation is not None
        if refusal == "not_admin":
            admins = admins_of(session, organisation.id or 0, set(desk.rules.policy.admin_roles))
            return blocks.article_matches(hits) + blocks.not_admin(admins, desk.rules)
        if refusal == "partner_only":  # SC-3 for cases, SC-25 for self-help all the same
            return blocks.article_matches(hits) + blocks.partner_only(organisation)
        if refusal == "no_category":  # an admin all the same: SC-25 before the refusal
            return blocks.article_matches(hits) + blocks.plain(blocks.submission_refused(refusal))
        return blocks.question_answer(question, desk.rules, hits)
