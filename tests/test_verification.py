"""Caller verification (SC-22): a registered number verifies at once; any other number gets a
one-time code to the organisation's admins, read back by the caller. Driven through the front
door (signed clicks and submissions), asserting on what the agent sees and what was written."""

from __future__ import annotations

import copy
import email
import email.policy
import hmac
import json
import logging
import re
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

import chatops.verification as verification
from chatops.cases.intake import IntakeForm
from chatops.cases.service import open_case
from chatops.db import create_schema, transaction
from chatops.directory.roster import load_roster
from chatops.policy import SupportRules, load_policy
from chatops.verification import (
    CODE_NOTICE,
    check_code,
    code_notice_text,
    normalise_number,
    same_number,
    send_code_email,
    start_verification,
    verification_line,
)
from handlers.verification import verify_caller_button
from models import Case, OutboxMessage, Person
from models.verification import CallerVerification
from tests.conftest import INTAKE_DEFAULTS, OPEN_HOURS, ROSTER, TRIAGE, Desk

AGENT = "U0AGENT1"
CONTOSO_ADMINS = {"U0ALICE", "U0BILL", "U0HELEN"}  # global, billing, helpdesk admin
UNREGISTERED = "+44 20 7946 0000"


# --- helpers -------------------------------------------------------------------------------


def open_verify(desk: Desk, agent: str, case: Case) -> Any:
    """Press Verify caller on the case card (added to the card for open cases; a card
    without it yet gets the button this surface offers)."""
    card = copy.deepcopy(desk.card(case))
    if "verify_caller" not in json.dumps(card["blocks"]):
        card["blocks"].append(
            {
                "type": "actions",
                "block_id": "verify_actions",
                "elements": [verify_caller_button(case.id or 0).to_dict()],
            }
        )
    return desk.slack.click_in(agent, card, "verify_caller", channel_id=TRIAGE, is_ephemeral=False)


def verify_modal(desk: Desk, case: Case, agent: str = AGENT) -> dict[str, Any]:
    before = len(desk.standin.calls("views.open"))
    response = open_verify(desk, agent, case)
    assert response.status == 200
    desk.standin.wait_for("views.open", count=before + 1)
    view = desk.standin.open_view(agent)
    assert view is not None and view["callback_id"] == "verify_caller"
    return view


def enter_number(desk: Desk, case: Case, number: str, agent: str = AGENT) -> dict[str, Any]:
    """Open the modal, type the number, submit; return the modal shown afterwards."""
    verify_modal(desk, case, agent)
    response = desk.slack.submit_view(agent, {"caller_number": number})
    assert response.status == 200 and not response.problems, response.problems
    view = desk.standin.open_view(agent)
    assert view is not None
    return view


def enter_code(desk: Desk, code: str, agent: str = AGENT) -> Any:
    response = desk.slack.submit_view(agent, {"verification_code": code})
    assert response.status == 200 and not response.problems, response.problems
    return response


def code_rows(desk: Desk) -> list[OutboxMessage]:
    return [row for row in desk.outbox() if row.kind == CODE_NOTICE]


def delivered_codes(desk: Desk) -> list[str]:
    """The codes the admins received by DM (what they would read to the agent), in order."""
    found = []
    for call in desk.standin.calls("chat.postMessage"):
        match = re.search(
            r"Verification code for support case [^`]*`(\d{6})`", json.dumps(call.args)
        )
        if match:
            found.append(match.group(1))
    return found


def the_code(desk: Desk) -> str:
    """The newest code, as delivered to the organisation's admins."""
    desk.standin.wait_for(
        "chat.postMessage", lambda c: "Verification code for support case" in json.dumps(c.args)
    )
    desk.wait_until(
        lambda: not any(row.status == "pending" for row in code_rows(desk)), "code DMs delivered"
    )
    return delivered_codes(desk)[-1]


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def verifications(desk: Desk) -> list[CallerVerification]:
    with Session(desk.engine) as session:
        return list(session.exec(select(CallerVerification)).all())


def outcomes(desk: Desk) -> list[str]:
    return [e.detail["outcome"] for e in desk.events("caller_verification")]


def line_for(desk: Desk, case: Case) -> str | None:
    policy = desk.service.rules.policy
    with Session(desk.engine) as session:
        fresh = session.get(Case, case.id)
        assert fresh is not None
        return verification_line(
            session, fresh, policy.support_timezone, policy.support_timezone_label
        )


def errors_of(response: Any) -> dict[str, str]:
    body = response.json()
    assert body and body.get("response_action") == "errors", response.body
    return body["errors"]


# --- registered number ---------------------------------------------------------------------


def test_registered_number_is_verified_at_once(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    view = verify_modal(desk, case)
    assert "CS-00001" in json.dumps(view["blocks"])
    # Bill's number, dialled nationally with the trunk 0: the same line as +86 10 5555 0102.
    response = desk.slack.submit_view(AGENT, {"caller_number": "010-5555-0102"})
    assert response.status == 200 and not response.problems
    shown = desk.standin.open_view(AGENT)
    assert shown is not None and shown["callback_id"] == ""
    text = json.dumps(shown["blocks"])
    assert "Caller verified" in text and "Bill Zhou" in text and "Contoso" in text
    [row] = verifications(desk)
    assert (row.status, row.via, row.verified_by) == ("verified", "registered_number", AGENT)
    assert row.number == "01055550102" and row.code_hash is None and row.attempts == 0
    assert code_rows(desk) == []  # nothing sent to anyone
    [event] = desk.events("caller_verification")
    assert event.detail["outcome"] == "verified" and event.detail["via"] == "registered_number"
    assert line_for(desk, case) == (
        "Caller verified by <@U0AGENT1> at Wed 25 Nov, 10:00 Beijing time (registered number …0102)"
    )
    # the card is refreshed so it can show the line
    assert any(
        r.kind == "case.card_refresh" and r.key.endswith(f"verification:{row.id}")
        for r in desk.outbox()
    )


# --- code path -----------------------------------------------------------------------------


def test_unregistered_number_sends_code_to_the_organisations_admins(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    view = enter_number(desk, case, UNREGISTERED)
    assert view["callback_id"] == "verify_caller_code"
    text = json.dumps(view["blocks"])
    assert "+442079460000" in text and "<@U0ALICE>" in text and "Slack DM" in text
    assert "e-mail" not in text  # SMTP is not configured
    rows = code_rows(desk)
    assert {r.payload["user"] for r in rows} == CONTOSO_ADMINS  # not Carl, not another org
    code = the_code(desk)
    assert re.fullmatch(r"[0-9]{6}", code)
    for r in rows:
        assert r.case_id == case.id and r.payload["to"] == "user"
        assert r.payload["requested_by"] == AGENT
    [row] = verifications(desk)
    assert row.status == "pending" and row.attempts == 0
    assert row.expires_at == OPEN_HOURS + timedelta(minutes=10)
    assert code not in (row.code_hash or "") and len(row.salt or "") == 32
    assert row.kdf and row.kdf.startswith("scrypt")
    assert line_for(desk, case) is None

    desk.clock.advance(timedelta(minutes=3))
    response = enter_code(desk, f"{code[:3]} {code[3:]}")  # spaces as read aloud are fine
    assert response.json()["response_action"] == "update"
    shown = desk.standin.open_view(AGENT)
    assert shown is not None and "Caller verified" in json.dumps(shown["blocks"])
    [row] = verifications(desk)
    assert (row.status, row.via, row.verified_by, row.attempts) == ("verified", "code", AGENT, 1)
    assert outcomes(desk) == ["code_sent", "verified"]
    assert line_for(desk, case) == (
        "Caller verified by <@U0AGENT1> at Wed 25 Nov, 10:03 Beijing time "
        "(one-time code, calling from …0000)"
    )
    # the code does not linger in the outbox once its verification is over
    assert all(r.payload.get("code") is None for r in code_rows(desk))


def test_wrong_code_is_an_inline_error_and_counts(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    enter_number(desk, case, UNREGISTERED)
    code = the_code(desk)
    response = enter_code(desk, wrong(code))
    assert errors_of(response) == {"verification_code": "That is not the code. 4 attempts left."}
    view = desk.standin.open_view(AGENT)
    assert view is not None and view["callback_id"] == "verify_caller_code"  # still open
    assert errors_of(enter_code(desk, "12ab"))["verification_code"].startswith(
        "The code has 6 digits"
    )
    # another agent forging a submission of this form is refused and does not count
    forged = copy.deepcopy(view)
    forged["state"] = {"values": {"verification_code": {"code": {"value": code}}}}
    refused = desk.slack.raw_view_submission("U0AGENT2", forged)
    assert "Only the agent who asked" in errors_of(refused)["verification_code"]
    [row] = verifications(desk)
    assert row.attempts == 1 and row.status == "pending"
    assert outcomes(desk) == ["code_sent", "wrong", "malformed", "not_requester"]
    wrong_event = desk.events("caller_verification")[1]
    assert wrong_event.detail["attempt"] == 1 and wrong_event.detail["number"] == "+442079460000"


def test_five_wrong_codes_lock_it_even_for_the_right_one(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    enter_number(desk, case, UNREGISTERED)
    code = the_code(desk)
    messages = [errors_of(enter_code(desk, wrong(code)))["verification_code"] for _ in range(5)]
    assert messages[:4] == [
        f"That is not the code. {n} attempt{'s' if n != 1 else ''} left." for n in (4, 3, 2, 1)
    ]
    assert messages[4].startswith("Too many wrong codes")
    sixth = errors_of(enter_code(desk, code))["verification_code"]
    assert sixth.startswith("Too many wrong codes")
    [row] = verifications(desk)
    assert (row.status, row.attempts, row.verified_at) == ("failed", 5, None)
    assert outcomes(desk) == [
        "code_sent",
        "wrong",
        "wrong",
        "wrong",
        "wrong",
        "wrong_locked",
        "locked",
    ]
    assert line_for(desk, case) is None


def test_code_expires_after_ten_minutes(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    enter_number(desk, case, UNREGISTERED)
    code = the_code(desk)
    desk.clock.advance(timedelta(minutes=10))
    message = errors_of(enter_code(desk, code))["verification_code"]
    assert message.startswith("This code has expired")
    [row] = verifications(desk)
    assert (row.status, row.attempts) == ("expired", 0)
    assert outcomes(desk) == ["code_sent", "expired"]
    assert all(r.payload.get("code") is None for r in code_rows(desk))


def test_a_new_code_supersedes_the_pending_one(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    enter_number(desk, case, UNREGISTERED)
    first = the_code(desk)
    first_view = desk.standin.open_view(AGENT)
    enter_number(desk, case, UNREGISTERED)  # the agent starts over
    second = the_code(desk)
    assert second != first or len(set(delivered_codes(desk))) == 1  # a fresh random code
    assert not [r for r in code_rows(desk) if r.payload.get("code")]  # none kept once sent
    old, new = sorted(verifications(desk), key=lambda v: v.id or 0)
    assert (old.status, new.status) == ("superseded", "pending")
    assert first_view is not None
    stale = copy.deepcopy(first_view)
    stale["state"] = {"values": {"verification_code": {"code": {"value": first}}}}
    refused = desk.slack.raw_view_submission(AGENT, stale)
    assert errors_of(refused)["verification_code"] == (
        "You sent a newer code for this case; this one no longer works. Enter the caller's "
        "code in the newer form."
    )


def test_an_agent_whose_code_was_superseded_is_told_by_whom(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    enter_number(desk, case, UNREGISTERED)
    first = the_code(desk)
    first_view = desk.standin.open_view(AGENT)
    assert first_view is not None
    enter_number(desk, case, UNREGISTERED, agent="U0AGENT2")  # a colleague takes the call
    stale = copy.deepcopy(first_view)
    stale["state"] = {"values": {"verification_code": {"code": {"value": first}}}}
    refused = desk.slack.raw_view_submission(AGENT, stale)
    name = "Eli Gomez"  # U0AGENT2 in the example roster
    assert errors_of(refused)["verification_code"] == (
        f"{name} sent a newer code for this case; this one no longer works. Only {name} can "
        'enter it, or press "Verify caller" again to send another.'
    )
    old, new = sorted(verifications(desk), key=lambda v: v.id or 0)
    assert (old.status, new.status, new.requested_by) == ("superseded", "pending", "U0AGENT2")


# --- who may, and for whom -----------------------------------------------------------------


def test_non_agent_is_refused_and_nothing_changes(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    opens = len(desk.standin.calls("views.open"))
    assert open_verify(desk, "U0ALICE", case).status == 200
    deadline = time.monotonic() + 5
    while not desk.standin.ephemerals("U0ALICE", TRIAGE) and time.monotonic() < deadline:
        time.sleep(0.02)
    [refusal] = desk.standin.ephemerals("U0ALICE", TRIAGE)
    assert "Only support agents can verify callers" in refusal["text"]
    assert len(desk.standin.calls("views.open")) == opens
    # a forged form from a non-agent is refused too
    forged = {
        "type": "modal",
        "callback_id": "verify_caller",
        "private_metadata": json.dumps({"case_id": case.id}),
        "blocks": [],
        "state": {"values": {"caller_number": {"number": {"value": UNREGISTERED}}}},
    }
    response = desk.slack.raw_view_submission("U0CARL", forged)
    assert "Only support agents" in errors_of(response)["caller_number"]
    assert verifications(desk) == [] and code_rows(desk) == []
    assert desk.events("caller_verification") == []


def test_an_organisation_without_admins_gets_no_code(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    with transaction(desk.engine) as session:  # nobody at Contoso is an admin any more
        query = select(Person).where(Person.organisation_id == case.organisation_id)
        for person in session.exec(query).all():
            person.roles = []
            session.add(person)
    verify_modal(desk, case)
    response = desk.slack.submit_view(AGENT, {"caller_number": UNREGISTERED})
    assert "no registered admin" in errors_of(response)["caller_number"]
    assert code_rows(desk) == []
    [row] = verifications(desk)
    assert row.status == "failed" and row.code_hash is None
    assert outcomes(desk) == ["no_contact"]


def test_invalid_number_is_an_inline_error(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    verify_modal(desk, case)
    response = desk.slack.submit_view(AGENT, {"caller_number": "call me maybe"})
    assert "not a phone number" in errors_of(response)["caller_number"]
    assert verifications(desk) == []


def test_codes_go_only_to_the_cases_own_organisation(desk: Desk) -> None:
    case = desk.open_case("U0FRANK")  # Fabrikam
    # Alice's number is registered for Contoso, not for Fabrikam: not a registered number here
    view = enter_number(desk, case, "+86 10 5555 0101")
    assert view["callback_id"] == "verify_caller_code"
    assert {r.payload["user"] for r in code_rows(desk)} == {"U0FRANK"}
    # Frank's own number verifies at once on his organisation's case
    shown = enter_number(desk, case, "+86 21 5555 0201")
    assert "Frank Li" in json.dumps(shown["blocks"])
    assert {r.payload["user"] for r in code_rows(desk)} == {"U0FRANK"}


# --- secrets -------------------------------------------------------------------------------


def test_hashes_are_compared_in_constant_time(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    case = desk.open_case("U0ALICE")
    rules, now = desk.service.rules, desk.clock.now()
    started = start_verification(desk.engine, case.id or 0, AGENT, UNREGISTERED, now, rules)
    assert started.outcome == "code_sent" and started.code
    calls: list[tuple[Any, Any]] = []
    original = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(verification.hmac, "compare_digest", spy)
    assert check_code(desk.engine, started.verification_id or 0, AGENT, wrong(started.code), now)
    assert (
        check_code(desk.engine, started.verification_id or 0, AGENT, started.code, now).outcome
        == "verified"
    )
    assert len(calls) == 2
    for stored, typed in calls:
        assert isinstance(stored, bytes) and isinstance(typed, bytes) and len(stored) == 32
    assert started.code not in repr(started)  # the outcome never prints its code


def test_the_code_is_never_audited_or_logged(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="chatops")
    caplog.set_level(logging.DEBUG, logger="handlers")
    case = desk.open_case("U0ALICE")
    enter_number(desk, case, UNREGISTERED)
    code = the_code(desk)
    enter_code(desk, wrong(code))
    enter_code(desk, code)
    found = re.compile(rf"(?<![0-9]){code}(?![0-9])")
    assert not [r.getMessage() for r in caplog.records if found.search(r.getMessage())]
    audit = json.dumps([e.model_dump(mode="json") for e in desk.events()])
    assert not found.search(audit)
    stored = json.dumps([v.model_dump(mode="json") for v in verifications(desk)])
    assert not found.search(stored)
    assert all(r.payload.get("code") is None for r in code_rows(desk))


# --- concurrency ---------------------------------------------------------------------------


def test_ten_parallel_wrong_codes_make_at_most_five_attempts(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    view = enter_number(desk, case, UNREGISTERED)
    bad = wrong(the_code(desk))
    forged = copy.deepcopy(view)
    forged["state"] = {"values": {"verification_code": {"code": {"value": bad}}}}
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def submit() -> None:
        barrier.wait()
        statuses.append(desk.slack.raw_view_submission(AGENT, forged).status)

    threads = [threading.Thread(target=submit) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 10
    [row] = verifications(desk)
    assert (row.attempts, row.status) == (5, "failed")
    counted = Counter(outcomes(desk))
    assert counted == {"code_sent": 1, "wrong": 4, "wrong_locked": 1, "locked": 5}


def _case_on_postgres(pg_engine: Any) -> tuple[SupportRules, Case]:
    """The example roster on an empty PostgreSQL database, and Alice's case opened there."""
    rules = load_policy()
    create_schema(pg_engine)
    load_roster(pg_engine, ROSTER, rules.policy)
    form = IntakeForm(
        **{**INTAKE_DEFAULTS, "phone": "+86 10 5555 0101", "email": "alice@contoso.example"}
    )
    return rules, open_case(pg_engine, "U0ALICE", form, rules, OPEN_HOURS)


@pytest.mark.postgres
def test_ten_threads_check_code_on_postgres(pg_engine: Any) -> None:
    rules, case = _case_on_postgres(pg_engine)
    started = start_verification(pg_engine, case.id or 0, AGENT, UNREGISTERED, OPEN_HOURS, rules)
    assert started.outcome == "code_sent" and started.code
    bad = wrong(started.code)
    barrier = threading.Barrier(10)
    results: list[str] = []

    def attempt() -> None:
        barrier.wait()
        outcome = check_code(pg_engine, started.verification_id or 0, AGENT, bad, OPEN_HOURS)
        results.append(outcome.outcome)

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(results) == {"wrong": 4, "locked": 6}
    right = check_code(pg_engine, started.verification_id or 0, AGENT, started.code, OPEN_HOURS)
    assert right.outcome == "locked"
    with Session(pg_engine) as session:
        row = session.get(CallerVerification, started.verification_id)
        assert row is not None and (row.attempts, row.status) == (5, "failed")


@pytest.mark.postgres
def test_two_agents_starting_at_once_leave_one_live_code_on_postgres(pg_engine: Any) -> None:
    # a new verification supersedes a pending one: two agents pressing "Check number" on
    # the same case at the same instant must not leave two codes working
    rules, case = _case_on_postgres(pg_engine)
    agents = ["U0AGENT1", "U0AGENT2", "U0LEAD"] * 2
    barrier = threading.Barrier(len(agents))
    results: list[str] = []

    def start(agent: str) -> None:
        barrier.wait()
        outcome = start_verification(
            pg_engine, case.id or 0, agent, UNREGISTERED, OPEN_HOURS, rules
        )
        results.append(outcome.outcome)

    threads = [threading.Thread(target=start, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["code_sent"] * len(agents)
    with Session(pg_engine) as session:
        statuses = Counter(v.status for v in session.exec(select(CallerVerification)).all())
    assert statuses == {"pending": 1, "superseded": len(agents) - 1}


# --- e-mail --------------------------------------------------------------------------------


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO, MAIL, RCPT, DATA, QUIT."""

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        mail: dict[str, Any] = {"rcpt": []}
        lines: list[bytes] = []
        in_data = False
        while line := self.rfile.readline():
            if in_data:
                if line.rstrip(b"\r\n") == b".":
                    in_data = False
                    mail["data"] = b"".join(lines).decode("utf-8", "replace")
                    self.server.received.append(mail)  # type: ignore[attr-defined]
                    mail, lines = {"rcpt": []}, []
                    self.wfile.write(b"250 queued\r\n")
                else:
                    lines.append(line[1:] if line.startswith(b"..") else line)
                continue
            verb = line[:4].decode("ascii", "replace").upper()
            if verb == "RCPT":
                mail["rcpt"].append(line.decode().strip().split(":", 1)[1])
            if verb == "DATA":
                in_data = True
                self.wfile.write(b"354 go ahead\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server() -> Iterator[socketserver.ThreadingTCPServer]:
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_code_is_also_emailed_when_smtp_is_configured(
    desk: Desk, smtp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = smtp_server.server_address[1]
    monkeypatch.setenv("CHATOPS_SMTP_URL", f"smtp://127.0.0.1:{port}?from=desk@support.example")
    case = desk.open_case("U0ALICE")
    view = enter_number(desk, case, UNREGISTERED)
    assert "Slack DM and e-mail" in json.dumps(view["blocks"])
    code = the_code(desk)
    deadline = time.monotonic() + 5
    while not smtp_server.received and time.monotonic() < deadline:
        time.sleep(0.02)
    [mail] = smtp_server.received
    assert sorted(mail["rcpt"]) == [
        "<alice@contoso.example>",
        "<bill@contoso.example>",
        "<helen@contoso.example>",
    ]
    message = email.message_from_string(mail["data"], policy=email.policy.default)
    assert message["From"] == "desk@support.example"
    assert message["Subject"] == "Verification code for support case CS-00001"
    body = message.get_content()  # type: ignore[attr-defined]
    assert f"Verification code: {code}" in body and "Dana Park" in body
    assert "only if you are on that call" in body and "10:10 Beijing time" in body


def test_email_failure_is_logged_without_the_code(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    case = desk.open_case("U0ALICE")
    rules = desk.service.rules
    started = start_verification(
        desk.engine, case.id or 0, AGENT, UNREGISTERED, desk.clock.now(), rules
    )
    assert started.code
    caplog.set_level(logging.INFO, logger="chatops")
    sent = send_code_email(started, "Asia/Shanghai", url="smtp://127.0.0.1:1")  # nothing there
    assert sent == []
    assert "not sent" in caplog.text and started.code not in caplog.text
    assert send_code_email(started, "Asia/Shanghai", url="") == []  # not configured


# --- pieces --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "registered", "same"),
    [
        ("+86 10 5555 0101", "+86 10 5555 0101", True),
        ("0086-10-5555-0101", "+86 10 5555 0101", True),
        ("(010) 5555 0101", "+86 10 5555 0101", True),  # national, trunk 0
        ("10 5555 0101", "+86 10 5555 0101", True),
        ("86 10 5555 0101", "+86 10 5555 0101", True),  # country code without +
        ("+1 10 5555 0101", "+86 10 5555 0101", False),  # another country
        ("5555 0101", "+86 10 5555 0101", False),  # no area code: too little matches
        ("010 5555 0101", "10-5555-0101", True),  # two national forms
        ("+86 10 5555 0102", "+86 10 5555 0101", False),
        # a national number on file says nothing of its country: no foreign caller matches
        ("+44 10 5555 0101", "010 5555 0101", False),
        ("+86 10 5555 0101", "010 5555 0101", False),
        # "+44 (0)20 …": the bracketed trunk 0 is not dialled from abroad (nor shown as the
        # caller's number), however the number is written on file
        ("+44 20 7946 0000", "+44 (0)20 7946 0000", True),
        ("+44 (0) 20 7946 0000", "+44 20 7946 0000", True),
        ("0044 (0)20 7946 0000", "+44 20 7946 0000", True),
        ("020 7946 0000", "+44 (0)20 7946 0000", True),
        ("+44 (0)20 7946 0001", "+44 20 7946 0000", False),
    ],
)
def test_number_matching(caller: str, registered: str, same: bool) -> None:
    a, b = normalise_number(caller), normalise_number(registered)
    assert a is not None and b is not None
    assert same_number(a, b) is same
    if a.startswith("+") == b.startswith("+"):  # the same form both ways round
        assert same_number(b, a) is same


@pytest.mark.parametrize("text", ["", "12345", "call me", "+86 10 5555 0101 ext 3", "1" * 16])
def test_not_phone_numbers(text: str) -> None:
    assert normalise_number(text) is None


def test_dm_text_for_the_admins(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    enter_number(desk, case, UNREGISTERED)
    # Delivery blanks the code in the outbox once it is sent, so take it from the DM and
    # rebuild the payload as it was when the row was written.
    code = the_code(desk)
    [row] = [r for r in code_rows(desk) if r.payload["user"] == "U0ALICE"]
    assert row.payload["code"] is None
    payload = {**row.payload, "code": code}
    admins = set(desk.service.rules.policy.admin_roles)
    with Session(desk.engine) as session:
        text = code_notice_text(
            session,
            case.id,
            payload,
            desk.clock.now(),
            "Asia/Shanghai",
            "Beijing time",
            admin_roles=admins,
        )
        assert text is not None
        assert f"`{code}`" in text and "CS-00001" in text and "<@U0AGENT1> (Dana Park)" in text
        assert "only if you are on that call with them" in text
        assert "Wed 25 Nov, 10:10 Beijing time" in text and "+442079460000" in text
        later = desk.clock.now() + timedelta(minutes=10)
        assert (
            code_notice_text(session, case.id, payload, later, "Asia/Shanghai", admin_roles=admins)
            is None
        )
        now = desk.clock.now()
        blanked = row.payload
        assert (
            code_notice_text(session, case.id, blanked, now, "Asia/Shanghai", admin_roles=admins)
            is None
        )


def test_a_non_admins_phone_is_not_a_registered_number(desk: Desk, tmp_path: Path) -> None:
    # SC-1: assisted support (calling included) is for administrators, so a call from a
    # non-admin's phone goes through the admins' one-time code (SC-22)
    import yaml

    from chatops.directory.roster import load_roster

    data = yaml.safe_load(ROSTER.read_text())
    for person in data["people"]:
        if person["slack_id"] == "U0CARL":  # Contoso, no admin role
            person["phone"] = "+86 10 5555 0177"
    roster = tmp_path / "carl-with-a-phone.yml"
    roster.write_text(yaml.safe_dump(data))
    load_roster(desk.engine, roster, desk.service.rules.policy)
    case = desk.open_case("U0ALICE")
    view = enter_number(desk, case, "+86 10 5555 0177")
    assert "Caller verified" not in json.dumps(view)
    assert {"U0ALICE", "U0BILL"} <= {row.payload["user"] for row in code_rows(desk)}
    assert "U0CARL" not in {row.payload["user"] for row in code_rows(desk)}


# --- while the code is out -----------------------------------------------------------------


def code_dms_to(desk: Desk, user: str) -> list[dict[str, Any]]:
    """The code DMs `user` has received."""
    return [
        m
        for m in desk.standin.messages(desk.standin.dm_channel(user))
        if "Verification code for support case" in json.dumps(m)
    ]


def code_dms_held_back(desk: Desk) -> None:
    """The card is out; Slack answers the next code DMs with a 500, so they wait in the
    outbox for their retry."""
    desk.settle()
    desk.standin.fail_next("chat.postMessage", status=500, times=len(CONTOSO_ADMINS))


def test_a_waiting_code_dm_does_not_go_to_an_admin_dropped_meanwhile(
    desk: Desk, tmp_path: Path
) -> None:
    # SC-22: the code goes to the admins registered on the profile *when it is sent*; the
    # roster says a person no longer in it gets no verification code (SC-1)
    import yaml

    case = desk.open_case("U0ALICE")
    code_dms_held_back(desk)
    enter_number(desk, case, UNREGISTERED)
    desk.settle()
    assert {r.status for r in code_rows(desk)} == {"pending"}
    data = yaml.safe_load(ROSTER.read_text())
    data["people"] = [p for p in data["people"] if p["slack_id"] != "U0BILL"]  # Bill left
    for person in data["people"]:
        if person["slack_id"] == "U0HELEN":
            person["roles"] = []  # Helen is no longer an admin
    roster = tmp_path / "without-bill.yml"
    roster.write_text(yaml.safe_dump(data))
    load_roster(desk.engine, roster, desk.service.rules.policy)
    desk.run_worker(desk.clock.now() + timedelta(minutes=1), step=timedelta(seconds=10))
    assert len(code_dms_to(desk, "U0ALICE")) == 1
    assert code_dms_to(desk, "U0BILL") == [] and code_dms_to(desk, "U0HELEN") == []
    assert all(r.payload.get("code") is None for r in code_rows(desk))


def test_a_code_is_not_accepted_once_the_case_is_resolved(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    enter_number(desk, case, UNREGISTERED)
    code = the_code(desk)
    desk.press("U0AGENT2", case, "case_resolve")  # a colleague resolves it meanwhile
    desk.wait_until(lambda: desk.standin.open_view("U0AGENT2"), "the resolve form")
    desk.submit_modal("U0AGENT2", text="Fixed by the customer's own network team.")
    desk.wait_until(lambda: desk.fresh(case).status == "resolved", "resolved")
    message = errors_of(enter_code(desk, code))["verification_code"]
    assert message == "CS-00001 is resolved; reopen it to verify a caller."
    [row] = verifications(desk)
    assert row.status == "pending" and row.attempts == 0 and row.verified_at is None
    assert outcomes(desk) == ["code_sent", "case_closed"]
    assert line_for(desk, case) is None


def test_a_number_entered_after_the_case_was_closed_is_not_told_to_reopen_it(
    desk: Desk,
) -> None:
    case = desk.open_case("U0ALICE")
    verify_modal(desk, case)
    with transaction(desk.engine) as session:  # auto-closed while the form was open
        stored = session.get(Case, case.id)
        assert stored is not None
        stored.status = "closed"
    response = desk.slack.submit_view(AGENT, {"caller_number": UNREGISTERED})
    assert errors_of(response)["caller_number"] == (
        "CS-00001 is closed, so you cannot verify a caller; a closed case is not reopened."
    )
    assert verifications(desk) == [] and code_rows(desk) == []


def test_a_waiting_code_dm_is_not_sent_once_the_case_is_resolved(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    code_dms_held_back(desk)
    enter_number(desk, case, UNREGISTERED)
    desk.settle()
    with transaction(desk.engine) as session:  # resolved from elsewhere while Slack was down
        stored = session.get(Case, case.id)
        assert stored is not None
        stored.status = "resolved"
    desk.run_worker(desk.clock.now() + timedelta(minutes=1), step=timedelta(seconds=10))
    assert not any(code_dms_to(desk, admin) for admin in CONTOSO_ADMINS)
    assert all(r.payload.get("code") is None for r in code_rows(desk))


def test_a_code_dm_parked_after_failed_retries_keeps_no_code(desk: Desk) -> None:
    # the outbox keeps a code only until its DM is done or parked (chatops outbox retry
    # leaves such a row parked): Slack failing until the row parks is no exception
    case = desk.open_case("U0ALICE")
    desk.settle()
    desk.standin.fail_next("chat.postMessage", status=500, times=1000)
    enter_number(desk, case, UNREGISTERED)
    desk.run_worker(desk.clock.now() + timedelta(minutes=6), step=timedelta(seconds=10))
    rows = code_rows(desk)
    assert rows and {r.status for r in rows} == {"parked"}
    assert all(r.payload.get("code") is None for r in rows)
    [row] = verifications(desk)
    assert row.status == "pending"  # nothing else touched the case to scrub it


def test_a_number_on_file_with_a_bracketed_trunk_zero_is_registered(
    desk: Desk, tmp_path: Path
) -> None:
    import yaml

    data = yaml.safe_load(ROSTER.read_text())
    for person in data["people"]:
        if person["slack_id"] == "U0HELEN":  # on file as many UK admins write it
            person["phone"] = "+44 (0)20 7946 0000"
    roster = tmp_path / "helen-in-london.yml"
    roster.write_text(yaml.safe_dump(data))
    load_roster(desk.engine, roster, desk.service.rules.policy)
    case = desk.open_case("U0ALICE")
    shown = enter_number(desk, case, UNREGISTERED)  # her line as the phone shows it
    assert "Caller verified" in json.dumps(shown) and "Helen Wu" in json.dumps(shown)
    assert code_rows(desk) == []


def test_the_code_dm_tells_an_admin_abroad_the_expiry_in_their_own_time(
    desk: Desk, tmp_path: Path
) -> None:
    # the desk's other DMs give a time in the reader's zone first (SC-19's Beijing time
    # after it); a code that lives ten minutes is no place for mental arithmetic
    import yaml

    data = yaml.safe_load(ROSTER.read_text())
    for person in data["people"]:
        if person["slack_id"] == "U0HELEN":
            person["tz"] = "Europe/London"
    roster = tmp_path / "helen-in-london.yml"
    roster.write_text(yaml.safe_dump(data))
    load_roster(desk.engine, roster, desk.service.rules.policy)
    case = desk.open_case("U0ALICE")
    enter_number(desk, case, UNREGISTERED)
    the_code(desk)
    [helen] = code_dms_to(desk, "U0HELEN")
    assert (
        "expires at Wed 25 Nov, 02:10 GMT your time (Wed 25 Nov, 10:10 Beijing time)"
        in json.dumps(helen)
    )
    [alice] = code_dms_to(desk, "U0ALICE")  # in Beijing: once is enough
    assert "expires at Wed 25 Nov, 10:10 Beijing time." in json.dumps(alice)
