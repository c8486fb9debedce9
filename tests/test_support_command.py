"""`/support` through the front door: who gets what answer (SC-1, SC-3, SC-5, SC-6, SC-25)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from sqlalchemy import event

from chatops.clock import ManualClock
from chatops.config import Settings
from chatops.directory.roster import load_roster
from chatops.kb import load_articles
from chatops.policy.rules import default_policy_path
from chatops.standin import SlackSender, SlackStandIn
from handlers.server import ThreadedServer, build_service
from tests.conftest import OPEN_HOURS, ROOT, ROSTER, SECRET, Desk


def _text(reply: dict) -> str:
    return json.dumps(reply)


def test_empty_and_help_show_usage(desk: Desk) -> None:
    for text in ("", "help", "  HELP  "):
        reply = desk.ask("U0ALICE", text)
        assert "here is what `/support` can do" in _text(reply)
        assert "/support help" in _text(reply)
    assert desk.cases() == []


def test_a_question_that_starts_with_a_subcommand_without_arguments_is_searched(
    desk: Desk,
) -> None:
    # SC-6: `help` and `hours` take no arguments, so words after them are a question (the
    # usage says so), not a subcommand with arguments it would ignore.
    for question in ("help me set up mail forwarding", "Hours of mail forwarding"):
        body = _text(desk.ask("U0ALICE", question))
        assert "Help articles that may answer it" in body, body[:300]
        assert "contact_support" in body
        assert "here is what `/support` can do" not in body
    usage = _text(desk.ask("U0ALICE", "help"))
    assert "Words after `help` or `hours` (no arguments) make a question" in usage
    assert "Support hours" in _text(desk.ask("U0ALICE", "hours"))
    assert desk.cases() == []


def test_subcommands_that_take_arguments_keep_their_meaning(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    body = _text(desk.ask("U0ALICE", f"case {case.id}"))
    assert case.number in body and "Help articles" not in body
    assert "No case CS-00012 that you can see" in _text(desk.ask("U0ALICE", "case 12"))
    assert "Help articles" not in _text(desk.ask("U0ALICE", "list mine"))


def test_admin_question_offers_contact_support(desk: Desk) -> None:
    reply = desk.ask("U0ALICE", "mail forwarding stopped")
    body = _text(reply)
    assert "mail forwarding stopped" in body
    assert "service health" in body  # SC-5 before a case
    assert "Help articles" in body  # SC-6 self-help
    assert "Help articles that may answer it" in body and "orward" in body  # the KB matches
    buttons = [e for b in reply["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == ["contact_support"]
    assert desk.cases() == []


def test_a_question_uses_one_database_connection(desk: Desk) -> None:
    # The search, its index check and the asker's lookups share one checkout: on PostgreSQL
    # each checkout costs a pre-ping round trip and a rollback.
    checkouts: list[int] = []
    listener = lambda *_args: checkouts.append(1)  # noqa: E731
    event.listen(desk.engine, "checkout", listener)
    try:
        for user in ("U0ALICE", "U0CARL"):
            reply = desk.ask(user, "mail forwarding stopped")
            assert "Help articles" in _text(reply)
    finally:
        event.remove(desk.engine, "checkout", listener)
    assert len(checkouts) == 2


def test_non_admin_is_told_who_the_admins_are(desk: Desk) -> None:
    # SC-1: only admins open cases; SC-25: self-help for everyone.
    body = _text(desk.ask("U0CARL", "outlook keeps asking for my password"))
    assert "Only your organisation's *admins* can open support cases" in body
    for admin in ("Alice Chen", "Bill Zhou", "Helen Wu"):
        assert admin in body
    assert "Frank Li" not in body  # another organisation's admin
    assert "Self-help is open to everyone" in body
    assert "Help articles that may answer it" in body  # SC-25: non-admins can search
    assert "contact_support" not in body
    assert desk.cases() == []


def test_an_admin_whose_role_opens_no_category_gets_self_help(tmp_path: Path) -> None:
    # SC-25: self-help is for everyone. A policy may list an admin role in no category's
    # allowed_roles (`chatops policy check` accepts it); such an admin gets the matching
    # articles like a non-admin does, then the reason they can't open a case.
    policy = yaml.safe_load(default_policy_path().read_text())
    for category in policy["categories"].values():
        category["allowed_roles"] = [r for r in category["allowed_roles"] if r != "user_admin"]
    policy_file = tmp_path / "policy.yml"
    policy_file.write_text(yaml.safe_dump(policy, allow_unicode=True))
    roster = yaml.safe_load(ROSTER.read_text())
    roster["people"].append(
        {
            "slack_id": "U0UMA",
            "name": "Uma Qian",
            "email": "uma@contoso.example",
            "organisation": "contoso",
            "tz": "Asia/Shanghai",
            "roles": ["user_admin"],
        }
    )
    roster_file = tmp_path / "roster.yml"
    roster_file.write_text(yaml.safe_dump(roster))
    standin = SlackStandIn().start()
    settings = Settings(
        slack_bot_token=standin.bot_token,
        slack_signing_secret=SECRET,
        slack_api_url=standin.api_url,
        database_url=f"sqlite:///{tmp_path / 'desk.db'}",
        policy_file=policy_file,
        channel_pace_seconds=0.02,
    )
    service = build_service(settings, clock=ManualClock(OPEN_HOURS))
    load_roster(service.engine, roster_file, service.rules.policy)
    load_articles(service.engine, ROOT / "examples" / "kb")
    server = ThreadedServer(service.wsgi).start()
    try:
        sender = SlackSender(server.url + "/slack/events", SECRET, standin)
        carl = _text(sender.command("U0CARL", "mail forwarding stopped").json())
        assert "Help articles that may answer it" in carl
        uma = _text(sender.command("U0UMA", "mail forwarding stopped").json())
        articles = uma.find("Help articles that may answer it")
        refused = uma.find("Your admin role can't open support cases.")
        assert 0 <= articles < refused, uma
        assert "contact_support" not in uma
    finally:
        server.stop()
        service.close()
        standin.stop()


def test_unknown_person_is_not_registered(desk: Desk) -> None:
    body = _text(desk.ask("U0STRANGER", "please help me"))
    assert "not registered with any customer organisation" in body
    assert "contact_support" not in body
    assert desk.cases() == []


def test_partner_only_organisation_goes_to_its_partner(desk: Desk) -> None:
    # SC-3
    body = _text(desk.ask("U0NORA", "we need more licences"))
    assert "Litware Partners" in body
    assert "support@litware.example" in body
    assert "contact_support" not in body
    # SC-25: self-help is open to everyone, a partner-only organisation's admin included
    body = _text(desk.ask("U0NORA", "mail forwarding stopped"))
    assert "Forward mail to another address" in body and "Litware Partners" in body


def test_unknown_subcommand_gets_a_clear_answer(desk: Desk) -> None:
    body = _text(desk.ask("U0ALICE", "frobnicate"))
    assert "`frobnicate` is not a `/support` subcommand" in body
    body = _text(desk.ask("U0ALICE", "hepl"))
    assert "Did you mean `/support help`?" in body
    assert desk.cases() == []


def test_oversized_question_is_refused_with_the_limit(desk: Desk) -> None:
    reply = desk.ask("U0ALICE", "word " * 400)
    assert "keep `/support` under 500" in _text(reply)
    assert desk.cases() == []


def test_question_text_is_escaped(desk: Desk) -> None:
    reply = desk.ask("U0ALICE", "<!channel> help & <http://evil|click>")
    shown = _text([b["text"] for b in reply["blocks"] if b["type"] == "section"])
    assert "&lt;!channel&gt; help &amp; &lt;http://evil|click&gt;" in shown
    assert "<!channel>" not in shown


def test_hours_on_a_weekday_morning(desk: Desk) -> None:
    # SC-19..SC-21 at Wed 10:00 Beijing time: every line is open
    body = _text(desk.ask("U0CARL", "hours"))  # anyone may ask
    for line in (
        "Technical, Sev A",
        "Technical, Sev B/C",
        "Billing &amp; subscriptions, Sev B/C",
        "Pre-sales, Sev B/C",
        "Billing by phone",
    ):
        assert line in body, line
    assert "closed" not in body
    assert "+86 400-089-0365" in body


def test_hours_on_a_saturday_night(desk: Desk) -> None:
    from datetime import UTC, datetime

    desk.clock.set(datetime(2026, 11, 28, 16, 30, tzinfo=UTC))  # Sun 00:30 Beijing
    body = _text(desk.ask("U0ALICE", "hours"))
    assert "open now" in body  # Sev A and phone technical: 24x7 (SC-19, SC-21)
    # pre-sales by phone shares the number but keeps the weekday calendar (SC-20, SC-21)
    presales = body[body.index("Pre-sales by phone") :].split("\\n\\n")[0]  # JSON text
    assert "closed" in presales and "Mon 30 Nov, 09:00" in presales, presales
    # technical B/C open at 09:00 the same day; billing waits for Monday (SC-20)
    assert "opens" in body and "Sun 29 Nov, 09:00 Beijing time" in body
    assert "Mon 30 Nov, 09:00 Beijing time" in body


def test_a_question_with_the_word_payload_is_answered(desk: Desk) -> None:
    # A form body containing "payload" is still a slash command, not an interaction.
    for question in ("webhook payload rejected", "payload=1 & payload too large"):
        body = _text(desk.ask("U0ALICE", question))
        assert "Contact support" in body, body
        assert "payload" in body
