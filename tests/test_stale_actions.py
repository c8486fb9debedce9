"""Buttons pressed on messages older than the case's state: a Claim on a card from before
the case was resolved or closed, an Acknowledge on a page DM after the case was resolved or
its page was called off (the case left Sev A); and on-call people who may not acknowledge a
page (a roster naming them is refused, one already stored is skipped like a gap)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from chatops.cases.ownership import take_unclaimed
from chatops.db import transaction
from chatops.directory import find_person
from chatops.directory.roster import load_roster
from chatops.policy import load_policy
from chatops.yamlfile import FileError
from models import Case, Page, Person
from tests.conftest import ROSTER, TRIAGE, Desk
from tests.test_long_text import work
from tests.test_metrics import _scrape, _value
from tests.test_page_coalescing import _button

WED_0840 = datetime(2026, 11, 25, 0, 40, tzinfo=UTC)  # Eli (U0AGENT2) is primary till 09:00
ALICE, DANA, ELI, LEE = "U0ALICE", "U0AGENT1", "U0AGENT2", "U0LEAD"
ELI_AS_AGENT = "  - slack_id: U0AGENT2\n    name: Eli Gomez\n    email: eli@support.example\n"
RULES = load_policy()


def _resolve(desk: Desk, user: str, card: dict[str, Any], text: str = "Fixed.") -> None:
    before = len(desk.standin.calls("views.open"))
    r = desk.slack.click_in(user, card, "case_resolve", channel_id=TRIAGE, is_ephemeral=False)
    assert r.status == 200
    desk.standin.wait_for("views.open", count=before + 1)
    r = desk.slack.submit_view(user, {"text": text})
    assert r.status == 200 and "errors" not in (r.body or ""), r.body
    desk.settle()


def _requester_dms(desk: Desk) -> int:
    channel = desk.standin.dm_channel(ALICE)
    return len([c for c in desk.standin.calls("chat.postMessage") if c.args["channel"] == channel])


def _sla_notices(desk: Desk) -> list[str]:
    return [m.kind for m in desk.outbox() if m.kind.startswith("sla.")]


def _stale_claim(desk: Desk, user: str, card: dict[str, Any]) -> str:
    """Press Claim on `card` as `user`; the ephemeral answer they get."""
    before = len(desk.standin.calls("chat.postEphemeral"))
    r = desk.slack.click_in(user, card, "claim_case", channel_id=TRIAGE, is_ephemeral=False)
    assert r.status == 200
    told = desk.standin.wait_for("chat.postEphemeral", count=before + 1)[-1]
    assert told.args["user"] == user and told.args["channel"] == TRIAGE
    desk.settle()
    return str(told.args["text"])


# --- Claim on a card from before the case was resolved or closed ---------------------------


def test_claim_on_a_stale_card_of_a_resolved_case_is_refused(desk: Desk) -> None:
    case = desk.open_case(ALICE)
    stale = copy.deepcopy(desk.card(case))  # the card as Eli's Slack still shows it
    _resolve(desk, DANA, stale)  # resolved without anyone claiming it
    [before] = desk.cases()
    assert before.status == "resolved" and before.assignee_id is None
    events, dms, updates = desk.events(), _requester_dms(desk), desk.standin.calls("chat.update")
    told = _stale_claim(desk, ELI, stale)
    assert "CS-00001 is resolved, so it cannot be claimed" in told
    assert "Nothing was changed" in told
    [after] = desk.cases()
    assert (after.status, after.assignee_id, after.resolved_at, after.claimed_at) == (
        "resolved",
        None,
        before.resolved_at,
        None,
    )
    assert [e.id for e in desk.events()] == [e.id for e in events]
    assert _requester_dms(desk) == dms  # nobody "has your case"
    assert len(desk.standin.calls("chat.update")) == len(updates)
    # no first-response warnings for it, and it still closes on time
    desk.run_worker(desk.clock.now() + timedelta(days=6), step=timedelta(hours=1))
    assert _sla_notices(desk) == []
    assert desk.cases()[0].status == "closed"


def test_claim_on_a_stale_card_of_a_closed_case_is_refused(desk: Desk) -> None:
    case = desk.open_case(ALICE)
    stale = copy.deepcopy(desk.card(case))
    _resolve(desk, DANA, stale)
    desk.run_worker(desk.clock.now() + timedelta(days=6), step=timedelta(hours=1))
    [before] = desk.cases()
    assert before.status == "closed" and before.assignee_id is None
    events, dms = desk.events(), _requester_dms(desk)
    told = _stale_claim(desk, ELI, stale)
    assert "CS-00001 is closed, so it cannot be claimed" in told
    assert "Nothing was changed" in told
    [after] = desk.cases()
    assert (after.status, after.assignee_id, after.closed_at) == ("closed", None, before.closed_at)
    assert [e.id for e in desk.events()] == [e.id for e in events]
    assert _requester_dms(desk) == dms
    desk.run_worker(desk.clock.now() + timedelta(days=2), step=timedelta(hours=1))
    assert _sla_notices(desk) == []
    assert desk.cases()[0].status == "closed"


# --- Acknowledge on a page of a case resolved since ----------------------------------------


def _sev_a(desk: Desk, title: str = "Mail is down for everyone") -> Case:
    return desk.open_case(
        ALICE, severity="A", title=title, business_impact="mail down", available_contact="Alice"
    )


def _page_dms(desk: Desk, user: str) -> list[dict[str, Any]]:
    channel = desk.standin.dm_channel(user)
    return [
        m for m in desk.standin.messages(channel) if "You are paged" in json.dumps(m.get("blocks"))
    ]


def _pages(desk: Desk) -> list[Page]:
    with Session(desk.engine) as session:
        return list(session.exec(select(Page).order_by(Page.id)).all())  # type: ignore[arg-type]


def _ephemeral_answer(desk: Desk, count: int = 1) -> str:
    calls = desk.standin.wait_for(
        "response_url", lambda c: c.args.get("response_type") == "ephemeral", count=count
    )
    return str(calls[-1].args["text"])


def test_acknowledge_after_resolve_neither_takes_nor_reopens_the_case(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    case = _sev_a(desk)
    dm = desk.wait_until(lambda: _page_dms(desk, ELI), "Eli paged")[0]
    _resolve(desk, LEE, desk.card(case), "Was a false alarm; mail flows.")
    [before] = desk.cases()
    assert before.status == "resolved" and before.assignee_id is None
    events, dms = desk.events(), _requester_dms(desk)
    r = desk.slack.click_in(
        ELI, dm, "acknowledge_page", channel_id=desk.standin.dm_channel(ELI), is_ephemeral=False
    )
    assert r.status == 200
    told = _ephemeral_answer(desk)
    desk.settle()
    assert told == f"CS-00001 was resolved (by <@{LEE}>); nothing to acknowledge."
    [after] = desk.cases()
    assert (after.status, after.assignee_id, after.resolved_at) == (
        "resolved",
        None,
        before.resolved_at,
    )
    assert [e.id for e in desk.events()] == [e.id for e in events]  # no claim, no acknowledgement
    [page] = _pages(desk)
    assert page.acknowledged_at is None and page.exhausted  # the resolve stopped it
    assert not [m for m in desk.outbox() if m.kind == "page.acknowledged"]
    assert _requester_dms(desk) == dms


def _three_pages_in_one_dm(desk: Desk) -> tuple[list[Case], dict[str, Any]]:
    """Three Sev A cases whose pages wait for Eli at once: the cases, and the one DM that
    lists them with Acknowledge all."""
    desk.clock.set(WED_0840)
    delivery = desk.service.desk.delivery
    delivery.deliver_pending = lambda *args, **kwargs: 0  # type: ignore[method-assign]
    try:
        cases = [_sev_a(desk, f"Outage {n}") for n in range(3)]
        desk.settle()
    finally:
        del delivery.deliver_pending
    delivery.deliver_pending()
    [dm] = _page_dms(desk, ELI)
    assert "Sev A cases" in json.dumps(dm["blocks"])
    return cases, dm


def test_acknowledge_all_leaves_a_case_resolved_since_as_it_is(desk: Desk) -> None:
    cases, dm = _three_pages_in_one_dm(desk)
    gone = cases[1]
    _resolve(desk, LEE, desk.card(gone), "Duplicate of the first outage.")
    r = desk.slack.click_in(
        ELI, dm, "acknowledge_pages", channel_id=desk.standin.dm_channel(ELI), is_ephemeral=False
    )
    assert r.status == 200
    told = _ephemeral_answer(desk)
    desk.settle()
    assert "You acknowledged the pages for 2 cases: CS-00001, CS-00003." in told
    assert f"No longer open, nothing to acknowledge: CS-00002 (resolved by <@{LEE}>)." in told
    by_id = {c.id: c for c in desk.cases()}
    assert (by_id[gone.id].status, by_id[gone.id].assignee_id) == ("resolved", None)
    pages = {p.case_id: p for p in _pages(desk)}
    assert pages[gone.id].acknowledged_at is None
    assert {pages[c.id].acknowledged_by for c in cases if c.id != gone.id} == {ELI}
    assert sorted(e.case_id for e in desk.events("page_acknowledged")) == [
        cases[0].id,
        cases[2].id,
    ]
    assert gone.id not in {e.case_id for e in desk.events("claimed")}


# --- Acknowledge on a page called off since: the case left Sev A --------------------------


def _lower(desk: Desk, user: str, case: Case) -> None:
    work(desk, user, case, "case_severity", "impact is one mailbox, not the company", severity="B")


def _acknowledge(
    desk: Desk, user: str, dm: dict[str, Any], action: str = "acknowledge_page"
) -> str:
    """`user` presses `action` on `dm`, a page DM to Eli; the ephemeral answer."""
    calls = desk.standin.calls("response_url")
    before = len([c for c in calls if c.args.get("response_type") == "ephemeral"])
    r = desk.slack.click_in(
        user, dm, action, channel_id=desk.standin.dm_channel(ELI), is_ephemeral=False
    )
    assert r.status == 200
    told = _ephemeral_answer(desk, before + 1)
    desk.settle()
    return told


def _acknowledgements_counted(desk: Desk) -> float:
    return _value(_scrape(desk), "chatops_pages_total", event="acknowledged")


def test_acknowledge_on_a_page_called_off_by_a_downgrade_changes_nothing(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    case = _sev_a(desk)
    dm = desk.wait_until(lambda: _page_dms(desk, ELI), "Eli paged")[0]
    _lower(desk, DANA, case)
    [before] = desk.cases()
    assert (before.severity, before.assignee_id) == ("B", None)
    events, outbox, counted = desk.events(), desk.outbox(), _acknowledgements_counted(desk)
    told = _acknowledge(desk, ELI, dm)
    assert told == (
        f"This page was called off: CS-00001 is now Sev B (changed by <@{DANA}>). Nothing "
        "was changed; claim it from the case card if you will take it."
    )
    [after] = desk.cases()
    assert (after.status, after.assignee_id, after.claimed_at) == (before.status, None, None)
    assert [e.id for e in desk.events()] == [e.id for e in events]  # no page_acknowledged
    assert [m.id for m in desk.outbox()] == [m.id for m in outbox]  # nothing told anyone
    [page] = _pages(desk)
    assert (page.acknowledged_at, page.acknowledged_by) == (None, None)
    assert page.stopped_at is not None
    assert _acknowledgements_counted(desk) == counted
    # the escalation never resumes: step 1 was the last the page took
    desk.run_worker(WED_0840 + timedelta(hours=1), step=timedelta(minutes=5))
    assert {m.payload["step"] for m in desk.outbox() if m.kind == "page.notify"} == {0}


def test_a_called_off_page_stays_called_off_when_the_case_is_raised_again(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    case = _sev_a(desk)
    old = desk.wait_until(lambda: _page_dms(desk, ELI), "Eli paged")[0]
    desk.clock.set(WED_0840 + timedelta(minutes=2))
    _lower(desk, DANA, case)
    desk.clock.set(WED_0840 + timedelta(minutes=4))
    work(desk, DANA, case, "case_severity", "the outage is back for everyone", severity="A")
    new = desk.wait_until(lambda: _page_dms(desk, ELI)[1:], "Eli paged again")[0]
    told = _acknowledge(desk, ELI, old)
    assert told == (
        "This page was called off before anyone acknowledged it; CS-00001 was paged again "
        "since: acknowledge the newer page, or claim it from the case card. Nothing was changed."
    )
    assert desk.fresh(case).assignee_id is None
    assert desk.events("page_acknowledged") == []
    # the newer page is the one that takes the case
    told = _acknowledge(desk, ELI, new)
    assert told == "You acknowledged the page for CS-00001. You own the case now."
    called_off, paged_again = _pages(desk)
    assert called_off.acknowledged_at is None and called_off.stopped_at is not None
    assert paged_again.acknowledged_by == ELI and paged_again.stopped_at is None
    [event] = desk.events("page_acknowledged")
    assert event.detail["page"] == paged_again.id
    assert desk.fresh(case).assignee_id is not None


def test_a_page_dm_still_queued_when_its_page_is_called_off_is_not_sent(desk: Desk) -> None:
    # Slack answers 500 to the DMs of the case's opening (the requester's and Eli's page),
    # so both wait in the outbox for their retry; meanwhile the case is lowered.
    desk.clock.set(WED_0840)
    desk.standin.fail_next("conversations.open", status=500, times=2)
    case = _sev_a(desk)
    desk.settle()
    assert _page_dms(desk, ELI) == []
    _lower(desk, DANA, case)
    desk.run_worker(WED_0840 + timedelta(minutes=30), step=timedelta(minutes=1))
    desk.settle()
    # nobody is paged for a case nobody pages for any more; the requester still hears
    assert _page_dms(desk, ELI) == []
    requester = desk.standin.messages(desk.standin.dm_channel(ALICE))
    assert any("is open" in json.dumps(m) for m in requester)
    [step] = [m for m in desk.outbox() if m.kind == "page.notify" and m.payload.get("to") == "user"]
    assert step.status == "sent"  # done with: never retried
    [page] = _pages(desk)
    assert page.stopped_at is not None and page.acknowledged_at is None


def _exhausted_page(desk: Desk) -> tuple[Case, dict[str, Any]]:
    """A Sev A case whose page ran every step with nobody answering; Eli's first page DM."""
    desk.clock.set(WED_0840)
    case = _sev_a(desk)
    dm = desk.wait_until(lambda: _page_dms(desk, ELI), "Eli paged")[0]
    desk.run_worker(WED_0840 + timedelta(hours=1), step=timedelta(minutes=5))
    [page] = _pages(desk)
    assert page.exhausted and page.acknowledged_at is None
    return case, dm


def test_a_page_nobody_answered_can_still_be_acknowledged(desk: Desk) -> None:
    # SC-17: someone answering at last is what the exhausted page asks for
    _exhausted_page(desk)
    told = _acknowledge(desk, ELI, _page_dms(desk, ELI)[0])
    assert told == "You acknowledged the page for CS-00001. You own the case now."
    [page] = _pages(desk)
    assert page.acknowledged_by == ELI


def test_a_page_nobody_answered_is_called_off_when_the_case_leaves_sev_a(desk: Desk) -> None:
    case, dm = _exhausted_page(desk)
    _lower(desk, LEE, case)
    events = desk.events()
    told = _acknowledge(desk, ELI, dm)
    assert told.startswith(
        f"This page was called off: CS-00001 is now Sev B (changed by <@{LEE}>)."
    )
    assert desk.fresh(case).assignee_id is None
    assert [e.id for e in desk.events()] == [e.id for e in events]
    [page] = _pages(desk)
    assert page.acknowledged_at is None


def test_acknowledge_all_leaves_a_case_lowered_since_as_it_is(desk: Desk) -> None:
    cases, dm = _three_pages_in_one_dm(desk)
    lowered = cases[1]
    _lower(desk, DANA, lowered)
    told = _acknowledge(desk, ELI, dm, "acknowledge_pages")
    assert "You acknowledged the pages for 2 cases: CS-00001, CS-00003." in told
    assert f"Called off, nothing to acknowledge: CS-00002 (now Sev B, by <@{DANA}>)." in told
    assert desk.fresh(lowered).assignee_id is None
    pages = {p.case_id: p for p in _pages(desk)}
    assert pages[lowered.id].acknowledged_at is None
    assert sorted(e.case_id for e in desk.events("page_acknowledged")) == [
        cases[0].id,
        cases[2].id,
    ]
    # the DM shows the called-off case as such, and no button is left to press
    [shown] = _page_dms(desk, ELI)
    lines = [
        line
        for block in shown["blocks"]
        for line in str((block.get("text") or {}).get("text", "")).splitlines()
    ]
    assert [line for line in lines if "called off" in line] == [
        next(line for line in lines if "CS-00002" in line)
    ]
    assert _button(shown, "acknowledge_pages") is None


# --- who may be on call ---------------------------------------------------------------------


def _roles(engine: Any, slack_id: str) -> list[str]:
    with Session(engine) as session:
        person = session.exec(select(Person).where(Person.slack_user_id == slack_id)).one()
        return list(person.roles)


def test_roster_refuses_a_rotation_member_who_is_not_an_agent(
    sqlite_engine: Any, tmp_path: Path
) -> None:
    load_roster(sqlite_engine, ROSTER, RULES.policy)
    text = ROSTER.read_text()
    assert ELI_AS_AGENT + "    roles: [agent]\n" in text
    edited = tmp_path / "eli-moved.yml"  # Eli moved to account management; the rota not edited
    edited.write_text(
        text.replace(ELI_AS_AGENT + "    roles: [agent]\n", ELI_AS_AGENT + "    roles: []\n")
    )
    with pytest.raises(FileError) as raised:
        load_roster(sqlite_engine, edited, RULES.policy)
    message = str(raised.value)
    assert (
        "rotations[0].members[1]: 'U0AGENT2' (Eli Gomez) is in rotation 'primary' but is not "
        "a support agent or lead" in message
    )
    assert "rotations[1].members[0]: 'U0AGENT2' (Eli Gomez) is in rotation 'secondary'" in message
    assert "line " in message
    assert _roles(sqlite_engine, ELI) == ["agent"]  # nothing was loaded


def test_roster_refuses_an_override_for_someone_who_is_not_an_agent(
    sqlite_engine: Any, tmp_path: Path
) -> None:
    text = ROSTER.read_text()
    override = "    person: U0LEAD\n    covers: U0AGENT1\n"
    assert override in text
    edited = tmp_path / "carl-covers.yml"  # Carl is a customer's user, not support staff
    edited.write_text(text.replace(override, "    person: U0CARL\n    covers: U0AGENT1\n"))
    with pytest.raises(FileError) as raised:
        load_roster(sqlite_engine, edited, RULES.policy)
    assert (
        "overrides[0].person: 'U0CARL' (Carl Ma) is put on call for 'primary' but is not a "
        "support agent or lead" in str(raised.value)
    )


def test_paging_skips_a_stored_on_call_person_who_is_not_an_agent(
    desk: Desk, tmp_path: Path
) -> None:
    # The roster refuses a rotation member who is not an agent and removes rotations it no
    # longer lists, so only a row edited by hand takes Eli's agent role away while the
    # stored primary rotation still names him.
    with transaction(desk.engine) as session:
        eli = find_person(session, ELI)
        assert eli is not None
        eli.roles = []
    desk.clock.set(WED_0840)  # Eli is the stored primary until 09:00; Lee the secondary
    _sev_a(desk)
    desk.settle()
    notices = [m.payload for m in desk.outbox() if m.kind == "page.notify"]
    assert [(n["step"], n["spec"], n["targets"], n["to"]) for n in notices] == [
        (0, "rotation:primary", [], "thread"),  # skipped like a gap, said in the thread
        (1, "rotation:secondary", [LEE], "thread"),
        (1, "rotation:secondary", [LEE], "user"),
    ]
    assert _page_dms(desk, ELI) == []
    desk.wait_until(lambda: _page_dms(desk, LEE), "Lee paged at once")
    thread = [
        c.args["text"]
        for c in desk.standin.calls("chat.postMessage")
        if c.args["channel"] == TRIAGE
    ]
    assert any("nobody to page for `rotation:primary`" in t for t in thread)


def test_the_conditional_update_takes_no_case_that_is_not_open(desk: Desk) -> None:
    # What decides a Claim, a reply or an acknowledgement that read the case while it was
    # open, and writes after the Resolve committed: the UPDATE itself checks the status.
    case = desk.open_case(ALICE)
    _resolve(desk, DANA, desk.card(case))
    events = desk.events()
    with transaction(desk.engine) as session:
        eli = find_person(session, ELI)
        assert eli is not None and case.id is not None
        assert take_unclaimed(session, case.id, eli, desk.clock.now()) is False
    [after] = desk.cases()
    assert (after.status, after.assignee_id) == ("resolved", None)
    assert [e.id for e in desk.events()] == [e.id for e in events]


# --- a form opened before a colleague changed the case ------------------------------------


def _open_form(desk: Desk, user: str, card: dict[str, Any], action: str) -> None:
    before = len(desk.standin.calls("views.open"))
    r = desk.slack.click_in(user, card, action, channel_id=TRIAGE, is_ephemeral=False)
    assert r.status == 200
    desk.standin.wait_for("views.open", count=before + 1)


def test_a_severity_form_opened_before_a_colleagues_change_changes_nothing(desk: Desk) -> None:
    # Dana and Eli both open Change severity on the Sev B case. Eli raises it to Sev A (the
    # on-call engineer is paged); Dana's form, chosen against Sev B, would lower it to C and
    # call the page off without Dana ever seeing that it had become Sev A.
    case = desk.open_case(ALICE)
    card = copy.deepcopy(desk.card(case))
    _open_form(desk, DANA, card, "case_severity")
    _open_form(desk, ELI, card, "case_severity")
    r = desk.slack.submit_view(ELI, {"severity": "A", "text": "the whole company is down"})
    assert r.status == 200 and "errors" not in (r.body or ""), r.body
    desk.settle()
    assert desk.fresh(case).severity == "A"
    r = desk.slack.submit_view(DANA, {"severity": "C", "text": "only one user"})
    assert r.status == 200
    answer = r.json() or {}
    assert answer.get("response_action") == "errors", answer
    said = json.dumps(answer["errors"])
    assert "is Sev A now, not Sev B: someone changed it since" in said, said
    desk.settle()
    after = desk.fresh(case)
    assert after.severity == "A"
    assert [(e.from_value, e.to_value) for e in desk.events("severity_changed")] == [("B", "A")]
    assert all(p.stopped_at is None for p in _pages(desk))


@pytest.mark.parametrize(
    ("action", "said"),
    [
        ("case_reply", "CS-00001 is resolved; reopen it to reply."),
        ("case_severity", "CS-00001 is resolved; reopen it to change its severity."),
        ("case_resolve", "CS-00001 is already resolved."),
    ],
)
def test_a_form_button_on_a_stale_card_of_a_resolved_case_says_so_at_once(
    desk: Desk, action: str, said: str
) -> None:
    # Eli's copy of the card still offers Reply; Dana resolved the case meanwhile. A form
    # Eli would fill in only to be refused at Send: he is told at the click instead.
    case = desk.open_case(ALICE)
    stale = copy.deepcopy(desk.card(case))
    _resolve(desk, DANA, stale)
    forms = len(desk.standin.calls("views.open"))
    r = desk.slack.click_in(ELI, stale, action, channel_id=TRIAGE, is_ephemeral=False)
    assert r.status == 200
    assert said in _ephemeral_answer(desk)
    desk.settle()
    assert len(desk.standin.calls("views.open")) == forms
    assert desk.fresh(case).status == "resolved"


def test_a_resolve_form_opened_before_a_resolve_and_a_reopen_resolves_nothing(
    desk: Desk,
) -> None:
    # Eli opens Resolve and leaves it open; Dana resolves the case, Alice reopens it ("still
    # broken"). Eli's note was written for the case before either: sent now, it would close
    # the requester's reopening with an answer to the earlier problem.
    case = desk.open_case(ALICE)
    card = copy.deepcopy(desk.card(case))
    _open_form(desk, ELI, card, "case_resolve")
    _open_form(desk, DANA, card, "case_resolve")
    r = desk.slack.submit_view(DANA, {"text": "Forwarding rule re-enabled."})
    assert r.status == 200 and "errors" not in (r.body or ""), r.body
    desk.settle()
    dm = desk.standin.dm_channel(ALICE)
    call = desk.standin.wait_for("chat.postMessage", lambda c: "is resolved" in json.dumps(c.args))
    resolved = desk.standin.message(dm, call[0].response["ts"])
    desk.slack.click_in(ALICE, resolved, "case_reopen", channel_id=dm, is_ephemeral=False)
    desk.standin.wait_for("response_url")
    desk.settle()
    assert desk.fresh(case).status == "in_progress"
    r = desk.slack.submit_view(ELI, {"text": "Mailbox permissions fixed."})
    answer = r.json() or {}
    assert answer.get("response_action") == "errors", answer
    assert "reopened" in json.dumps(answer["errors"]), answer
    desk.settle()
    after = desk.fresh(case)
    assert after.status == "in_progress"
    assert after.resolution_note == "Forwarding rule re-enabled."
    assert "Mailbox permissions fixed" not in json.dumps(
        [c.args for c in desk.standin.calls("chat.postMessage")]
    )
