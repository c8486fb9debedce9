"""Long text, whole: what the Reply and Resolve modals accept reaches the requester and the
triage thread entire; a requester's long message is kept and relayed entire (up to 40,000
characters, Slack's own limit for a message); a busy case's view shows its latest events; a
reopened Sev A case is reminded again. Every message stays within Slack's limits (3,000
characters a section, 50 blocks a message), with what people typed escaped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from chatops.cases.lifecycle import CUSTOMER_MESSAGE_MAX, MESSAGE_MAX
from handlers.text import escape, escaped_pieces
from models import Case, CaseMessage
from tests.conftest import TRIAGE, Desk

WED_0840 = datetime(2026, 11, 25, 0, 40, tzinfo=UTC)


def work(
    desk: Desk, user: str, case: Case, action: str, text: str, **values: Any
) -> dict[str, Any]:
    """Press `action` on the card, type `text` (and `values`) in the modal it opens and
    submit; the modal."""
    card = desk.card(case)
    before = len(desk.standin.calls("views.open"))
    r = desk.slack.click_in(user, card, action, channel_id=TRIAGE, is_ephemeral=False)
    assert r.status == 200
    [opened] = desk.standin.wait_for("views.open", count=before + 1)[-1:]
    r = desk.slack.submit_view(user, {"text": text, **values})
    assert r.status == 200 and "errors" not in (r.body or ""), r.body
    desk.settle()
    return dict(opened.args["view"])


def _posts(desk: Desk, channel: str, marker: str) -> list[dict[str, Any]]:
    return [
        c.args
        for c in desk.standin.calls("chat.postMessage")
        if c.args["channel"] == channel and marker in json.dumps(c.args)
    ]


def _sections(post: dict[str, Any]) -> list[str]:
    """The section texts of a message, checked against Slack's limits on the way."""
    items = post["blocks"]
    if isinstance(items, str):
        items = json.loads(items)
    assert len(items) <= 50
    texts = [b["text"]["text"] for b in items if b["type"] == "section"]
    assert all(0 < len(t) <= 3000 for t in texts), [len(t) for t in texts]
    return texts


def _words(text: str) -> list[str]:
    return text.split()


def _unquoted(texts: list[str]) -> str:
    return "\n".join(line.removeprefix(">") for t in texts for line in t.split("\n"))


def test_a_reply_the_modal_accepts_reaches_requester_and_thread_whole(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    # one long paragraph (cut at spaces) full of characters escaping makes longer
    reply = ("rule <x> & <y> " * 300)[: MESSAGE_MAX - 4] + " END"
    assert len(reply) == MESSAGE_MAX and len(escape(reply)) > 2 * 3000
    view = work(desk, "U0AGENT1", case, "case_reply", reply)
    [text_input] = [b["element"] for b in view["blocks"] if b["type"] == "input"]
    assert text_input["max_length"] == MESSAGE_MAX

    [dm] = _posts(desk, desk.standin.dm_channel("U0ALICE"), "(support) on")
    texts = _sections(dm)
    assert len(texts) >= 3
    assert "(support) on CS-00001:\n" in texts[0]
    body = " ".join(texts).split("(support) on CS-00001:", 1)[1]
    assert _words(body) == _words(escape(reply))
    assert "<forwarding>" not in json.dumps(dm) and body.rstrip().endswith("END")

    [relayed] = _posts(desk, TRIAGE, "replied to the requester")
    texts = _sections(relayed)
    quoted = _unquoted(texts).split("replied to the requester:", 1)[1]
    assert _words(quoted) == _words(escape(reply))
    assert all(line.startswith(">") for t in texts for line in t.split("\n")[1:])


def test_a_long_resolution_note_reaches_the_requester_whole(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    lines = [f"Change {i:02d}: rule <{i}> corrected & verified with a test." for i in range(1, 60)]
    note = "\n".join(lines)[:MESSAGE_MAX]
    assert 2500 < len(note) <= MESSAGE_MAX
    work(desk, "U0AGENT1", case, "case_resolve", note)
    [dm] = _posts(desk, desk.standin.dm_channel("U0ALICE"), "is resolved")
    texts = _sections(dm)
    resolved = [t for t in texts if not t.startswith("How did we do")]
    assert resolved[0].startswith(":white_check_mark: *CS-00001* is resolved.\n")
    body = "\n".join(resolved).split("is resolved.\n", 1)[1]
    assert body == escape(note)  # cut at line breaks only: exactly the note
    assert "How did we do?" in texts[-1]
    assert [b["block_id"] for b in dm["blocks"] if b["type"] == "actions"] == [
        "survey",
        "after_resolve",
    ]


def _customer_thread(desk: Desk) -> tuple[str, str]:
    case = desk.open_case("U0ALICE")
    desk.card(case)
    thread = desk.wait_until(lambda: desk.cases()[0].requester_thread_ts, "requester DM thread")
    return desk.standin.dm_channel("U0ALICE"), thread


def _stored_customer_text(desk: Desk) -> str:
    with Session(desk.engine) as session:
        [message] = session.exec(select(CaseMessage).where(CaseMessage.kind == "customer")).all()
        return message.text


def test_a_long_customer_message_is_kept_and_relayed_whole(desk: Desk) -> None:
    channel, thread = _customer_thread(desk)
    # the message headers support asked for: 10,000 characters, with < > &
    headers = "\n".join(
        f"Received: from <relay{i}.contoso.example> by mx & co (hop {i})" for i in range(1, 400)
    )[:10_000]
    assert len(headers) == 10_000
    r = desk.slack.message("U0ALICE", channel, headers, thread_ts=thread)
    assert r.status == 200
    desk.standin.wait_for("chat.postMessage", lambda c: "(requester) wrote" in json.dumps(c.args))
    desk.settle()
    assert _stored_customer_text(desk) == headers
    [relayed] = _posts(desk, TRIAGE, "(requester) wrote")
    assert relayed.get("thread_ts")
    texts = _sections(relayed)
    quoted = _unquoted(texts).split("(requester) wrote:\n", 1)[1]
    assert quoted == escape(headers)
    assert "not shown" not in json.dumps(relayed) and "not kept" not in json.dumps(relayed)


def test_a_customer_message_past_slack_limits_says_what_is_left_out(desk: Desk) -> None:
    channel, thread = _customer_thread(desk)
    # past what a message can hold once escaped (each & is five characters)
    text = "\n".join(["& " * 99 + "&"] * 210)[:CUSTOMER_MESSAGE_MAX]
    r = desk.slack.message("U0ALICE", channel, text + "tail", thread_ts=thread)
    assert r.status == 200
    desk.standin.wait_for("chat.postMessage", lambda c: "(requester) wrote" in json.dumps(c.args))
    desk.settle()
    assert _stored_customer_text(desk) == text  # kept up to the documented maximum
    [relayed] = _posts(desk, TRIAGE, "(requester) wrote")
    texts = _sections(relayed)
    assert len(relayed["blocks"]) <= 50
    assert "is not shown: a Slack message holds at most 50 blocks" in texts[-2]
    assert "4 more characters that were not kept" in texts[-1]
    assert "&amp;" in texts[1] and "&&" not in json.dumps(relayed)


def test_the_case_view_shows_the_latest_events_and_counts_the_earlier(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    for i in range(30):  # a busy morning of internal notes, each a timeline event
        desk.clock.advance(timedelta(minutes=5))
        work(desk, "U0AGENT1", case, "case_note", f"checked hop {i}")
    desk.clock.advance(timedelta(minutes=5))
    work(desk, "U0AGENT1", case, "case_resolve", "Fixed the rule.")
    reply = desk.ask("U0AGENT2", f"case {case.number}")
    assert len(reply["blocks"]) <= 50
    timeline = reply["blocks"][-1]["text"]["text"]
    lines = timeline.split("\n")
    assert lines[0] == "*Timeline*"
    total = len(desk.events())
    shown = len(lines) - 2
    assert lines[1] == f"_… {total - shown} earlier events_" and total > shown
    assert "status changed" in lines[-1] and "resolved" in lines[-1]
    assert all(
        line.startswith("• <!date^") and line.count("<") == line.count(">") for line in lines[2:]
    )


def test_a_reopened_sev_a_case_is_reminded_again(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    case = desk.open_case(
        "U0ALICE", severity="A", business_impact="mail down", available_contact="Alice"
    )
    r = desk.slack.click_in(
        "U0AGENT1", desk.card(case), "claim_case", channel_id=TRIAGE, is_ephemeral=False
    )
    assert r.status == 200
    desk.settle()
    work(desk, "U0AGENT1", case, "case_resolve", "Restarted the transport service.")
    assert desk.cases()[0].next_update_reminder_at is None
    r = desk.slack.click_in(
        "U0AGENT1", desk.card(case), "case_reopen", channel_id=TRIAGE, is_ephemeral=False
    )
    assert r.status == 200
    desk.settle()
    [stored] = desk.cases()
    assert stored.status == "in_progress" and stored.severity == "A"
    reopened = desk.clock.now()

    def reminders() -> list[Any]:
        return [
            m
            for m in desk.outbox()
            if m.kind == "sev_a.update_reminder" and m.created_at > reopened
        ]

    desk.run_worker(reopened + timedelta(minutes=59))
    assert reminders() == []
    desk.run_worker(reopened + timedelta(hours=2, minutes=1))
    assert len(reminders()) == 2  # an hour after the reopen, and every hour after that
    owner_dm = desk.standin.dm_channel("U0AGENT1")
    assert _posts(desk, owner_dm, "post an update")


def test_pieces_never_cut_an_entity_and_lose_nothing() -> None:
    for text in ("&" * 700, "a&b " * 400, "<x>\n" * 800, "word " * 1000 + "x" * 4000):
        for prefix in ("", ">"):
            pieces = escaped_pieces(text, 3000, prefix)
            assert all(len(p) <= 3000 for p in pieces)
            joined = "".join(pieces)
            assert joined.count("&") == joined.count(";")
            assert "".join(_unquoted(pieces).split()) == "".join(escape(text).split())


def test_the_whole_description_is_on_the_card(desk: Desk) -> None:
    """SC-7: the form takes up to 3,000 characters of description, and the case card shows
    all of it (escaped, over several sections when escaping makes it longer than one)."""
    body = " ".join(f"step{n} <done> & checked." for n in range(110))
    description = body + " LAST-DETAIL-the-error-code-is-0x80070005"
    assert len(description) <= 3000
    case = desk.open_case("U0ALICE", description=description)
    card = desk.card(case)
    shown = " ".join(
        block["text"]["text"]
        for block in card["blocks"]
        if block["type"] == "section" and "text" in block
    )
    assert "LAST-DETAIL-the-error-code-is-0x80070005" in shown
    assert escape("step109 <done> & checked.") in shown
    assert all(len(b["text"]["text"]) <= 3000 for b in card["blocks"] if "text" in b)
