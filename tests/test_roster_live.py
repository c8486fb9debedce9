"""Reloading the roster while the desk holds live work: what happens to the open cases, the
pages and the conversations of the people a new file leaves out, demotes or moves."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatops.directory.roster import LoadSummary, load_roster
from tests.conftest import ROSTER, TRIAGE, Desk, posts, texts

ALICE, BILL, FRANK, DANA, ELI, LEE = (
    "U0ALICE",
    "U0BILL",
    "U0FRANK",
    "U0AGENT1",
    "U0AGENT2",
    "U0LEAD",
)


def _edited_roster(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    data = yaml.safe_load(ROSTER.read_text())
    edit(data)
    path = tmp_path / f"roster-{len(list(tmp_path.glob('roster-*.yml')))}.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def _without(slack_id: str) -> Callable[[dict[str, Any]], None]:
    """Take someone out of the file, and out of its rotations and overrides (the roster
    refuses a rotation member who is not in people)."""

    def edit(data: dict[str, Any]) -> None:
        data["people"] = [p for p in data["people"] if p["slack_id"] != slack_id]
        for rotation in data.get("rotations", []):
            rotation["members"] = [m for m in rotation["members"] if m != slack_id]
        data["overrides"] = [
            o for o in data.get("overrides", []) if slack_id not in (o["person"], o.get("covers"))
        ]

    return edit


def _load(desk: Desk, path: Path) -> LoadSummary:
    return load_roster(desk.engine, path, desk.service.rules.policy, desk.clock.now)


def _deliver(desk: Desk) -> None:
    """What `chatops worker` does next: deliver what the load wrote."""
    desk.run_worker(desk.clock.now() + timedelta(minutes=1), step=timedelta(minutes=1))


def _thread(desk: Desk, case_ts: str) -> list[str]:
    return texts([c for c in posts(desk.standin, TRIAGE) if c.args.get("thread_ts") == case_ts])


def _claimed_by(desk: Desk, case: Any, agent: str) -> None:
    desk.press(agent, case, "claim_case")
    desk.wait_until(lambda: desk.fresh(case).assignee_id is not None, "claimed")
    desk.settle()


# --- an agent who leaves the support team ----------------------------------------------------


def test_an_agent_left_out_hands_their_open_cases_back_to_the_unclaimed_queue(
    desk: Desk, tmp_path: Path
) -> None:
    """Dana owns Alice's case and leaves the team: the case must not stay with someone who
    can no longer work it (out of every agent's queue, her SLA notices going to nobody who
    may act). It goes back to the unclaimed queue, the triage thread says so, and Eli can
    claim it. Loading the same file again changes and sends nothing."""
    case = desk.open_case(ALICE)
    _claimed_by(desk, case, DANA)
    roster = _edited_roster(tmp_path, _without(DANA))
    summary = _load(desk, roster)
    assert summary.people_retired == 1 and summary.cases_released == 1
    stored = desk.fresh(case)
    assert (stored.assignee_id, stored.status, stored.claimed_at) == (None, "new", None)
    [released] = desk.events("released")
    assert released.detail["owner"] == DANA and released.from_value == "claimed"
    _deliver(desk)
    card = desk.card(case)
    assert "_Unclaimed_" in json.dumps(card) and "claim_case" in json.dumps(card)
    assert any("back in the unclaimed queue" in t for t in _thread(desk, stored.card_ts))
    assert "CS-00001" in json.dumps(desk.ask(ELI, "list unclaimed"))
    sent = len(desk.standin.calls("chat.postMessage"))
    again = _load(desk, roster)
    assert not again.changed and again.cases_released == 0
    _deliver(desk)
    assert len(desk.standin.calls("chat.postMessage")) == sent
    _claimed_by(desk, case, ELI)
    assert desk.fresh(case).status == "claimed"


def test_an_agent_demoted_to_no_role_hands_back_a_case_in_progress(
    desk: Desk, tmp_path: Path
) -> None:
    """A case already answered stays in progress (its first response stands); only its owner
    goes."""

    def demote(data: dict[str, Any]) -> None:
        _without(DANA)(data)
        data["people"].append({"slack_id": DANA, "name": "Dana Park", "roles": []})

    case = desk.open_case(ALICE)
    _claimed_by(desk, case, DANA)
    desk.press(DANA, case, "case_reply")
    desk.submit_modal(DANA, text="Looking at it now.")
    desk.wait_until(lambda: desk.fresh(case).status == "in_progress", "replied")
    assert _load(desk, _edited_roster(tmp_path, demote)).cases_released == 1
    stored = desk.fresh(case)
    assert (stored.assignee_id, stored.status) == (None, "in_progress")
    assert stored.first_responded_at is not None


def test_a_sev_a_case_whose_owner_leaves_pages_on_call_again(desk: Desk, tmp_path: Path) -> None:
    """SC-17: a Sev A case is worked continuously; once its owner is gone, nobody is on it,
    so on-call is paged for it as for a new one."""
    case = desk.open_case(
        ALICE, severity="A", title="Mail down", business_impact="mail down", available_contact="A"
    )
    desk.settle()
    _claimed_by(desk, case, DANA)
    pages_before = len([m for m in desk.outbox() if m.kind == "page.notify"])
    assert _load(desk, _edited_roster(tmp_path, _without(DANA))).cases_released == 1
    _deliver(desk)
    paged = [m for m in desk.outbox() if m.kind == "page.notify"][pages_before:]
    assert paged and all(m.payload.get("user") != DANA for m in paged)
    eli = desk.standin.dm_channel(ELI)  # primary now that Dana has left the rotation
    assert any("You are paged" in json.dumps(m.get("blocks")) for m in desk.standin.messages(eli))


# --- a customer admin who moves, is demoted or leaves --------------------------------------


def _moves_to_fabrikam(slack_id: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        for person in data["people"]:
            if person["slack_id"] == slack_id:
                person["organisation"] = "fabrikam"

    return edit


def _dms(desk: Desk, user: str) -> list[str]:
    return texts(posts(desk.standin, desk.standin.dm_channel(user)))


def _requester_thread_case(desk: Desk) -> Any:
    case = desk.open_case(ALICE)
    desk.card(case)
    desk.wait_until(lambda: desk.fresh(case).requester_thread_ts, "requester DM thread")
    desk.settle()
    return desk.fresh(case)


def test_a_requester_who_moves_organisation_no_longer_hears_of_the_old_one_s_case(
    desk: Desk, tmp_path: Path
) -> None:
    """Alice opened a Contoso case and moves to Fabrikam: the case stays Contoso's, and
    Contoso's cases are invisible to her now, so support's replies must no longer reach her
    DMs, her words in the old thread are not relayed as the requester's, and she cannot
    reopen it. The triage thread is told once, with the admins Contoso has now."""
    from tests.test_long_text import work

    case = _requester_thread_case(desk)
    _load(desk, _edited_roster(tmp_path, _moves_to_fabrikam(ALICE)))
    _deliver(desk)
    told = [t for t in _thread(desk, case.card_ts) if "no longer" in t]
    assert len(told) == 1 and "Contoso" in told[0]
    [notice] = [c for c in posts(desk.standin, TRIAGE) if "no longer" in c.args["text"]]
    assert BILL in json.dumps(notice.args["blocks"])  # whom support may turn to
    seen = len(_dms(desk, ALICE))
    work(desk, DANA, case, "case_reply", "The forwarding rule on sales@ was removed; see here.")
    _deliver(desk)
    assert len(_dms(desk, ALICE)) == seen  # no Contoso reply in a Fabrikam admin's DMs
    before = len(desk.events("customer_replied"))
    desk.slack.message(
        ALICE, desk.standin.dm_channel(ALICE), "still broken", thread_ts=case.requester_thread_ts
    )
    desk.settle()
    assert len(desk.events("customer_replied")) == before
    desk.slack.message(
        ALICE, desk.standin.dm_channel(ALICE), "hello?", thread_ts=case.requester_thread_ts
    )
    desk.settle()
    _deliver(desk)
    assert len(desk.events("customer_replied")) == before
    # she is told, once, why her words go nowhere
    assert _dms(desk, ALICE)[seen:] == ["CS-00001 is no longer followed with you"]
    # loading the file again tells nobody twice
    _load(desk, _edited_roster(tmp_path, _moves_to_fabrikam(ALICE)))
    _deliver(desk)
    assert len([t for t in _thread(desk, case.card_ts) if "no longer" in t]) == 1


def test_a_requester_who_moved_organisation_cannot_reopen_the_old_one_s_case(
    desk: Desk, tmp_path: Path
) -> None:
    from chatops.cases import lifecycle
    from tests.test_long_text import work

    case = _requester_thread_case(desk)
    work(desk, DANA, case, "case_resolve", "Rule restored.")
    _load(desk, _edited_roster(tmp_path, _moves_to_fabrikam(ALICE)))
    try:
        lifecycle.reopen(desk.engine, case.id, ALICE, desk.clock.now(), desk.service.rules)
    except lifecycle.CaseActionRefused as refused:
        assert "admins" in str(refused)
    else:
        raise AssertionError("an admin of another organisation reopened a Contoso case")
    assert desk.fresh(case).status == "resolved"


def _demoted(slack_id: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        for person in data["people"]:
            if person["slack_id"] == slack_id:
                person["roles"] = []

    return edit


@pytest.mark.parametrize("change", [_without, _demoted, _moves_to_fabrikam])
def test_a_requester_who_no_longer_speaks_for_the_organisation_cannot_rate_its_case(
    desk: Desk, tmp_path: Path, change: Callable[[str], Callable[[dict[str, Any]], None]]
) -> None:
    """SC-1: Alice's case was resolved and she has the survey in her DMs; a load then leaves
    her out, takes her admin role away or moves her to Fabrikam. As with Reopen, her rating
    and her comment are refused, she is told why, and nothing is recorded."""
    from sqlmodel import Session, select

    from models import SurveyAnswer
    from tests.test_keeping_informed import _resolved_by_dana

    case, dm, resolved = _resolved_by_dana(desk)
    _load(desk, _edited_roster(tmp_path, change(ALICE)))
    events = len(desk.events())
    views = len(desk.standin.calls("views.open"))
    for count, action in enumerate(("survey_rate_5", "survey_comment", "case_reopen"), 1):
        desk.slack.click_in(ALICE, resolved, action, channel_id=dm, is_ephemeral=False)
        desk.standin.wait_for("response_url", count=count)
    desk.settle()
    told = [str(c.args["text"]) for c in desk.standin.calls("response_url")]
    assert all("admins" in t and case.number in t for t in told), told
    assert "Thank you" not in told[0]
    assert len(desk.standin.calls("views.open")) == views  # no comment form
    with Session(desk.engine) as session:
        assert session.exec(select(SurveyAnswer)).all() == []
    assert len(desk.events()) == events
    assert desk.fresh(case).status == "resolved"


def test_a_requester_left_out_gets_no_more_updates(desk: Desk, tmp_path: Path) -> None:
    from tests.test_long_text import work

    case = _requester_thread_case(desk)
    _load(desk, _edited_roster(tmp_path, _without(ALICE)))
    seen = len(_dms(desk, ALICE))
    work(desk, DANA, case, "case_reply", "Fixed on our side.")
    _deliver(desk)
    assert len(_dms(desk, ALICE)) == seen


# --- a rotation taken out of the file ----------------------------------------------------------


def test_a_rotation_taken_out_of_the_file_no_longer_puts_anyone_on_call(
    desk: Desk, tmp_path: Path
) -> None:
    """The lead disbands the secondary rotation: nobody may be paged or handed a shift from
    it any more, as for a person left out. Loading the file again changes nothing."""

    def no_secondary(data: dict[str, Any]) -> None:
        data["rotations"] = [r for r in data["rotations"] if r["name"] != "secondary"]

    roster = _edited_roster(tmp_path, no_secondary)
    assert _load(desk, roster).rotations_removed == 1
    oncall = json.dumps(desk.ask("U0CARL", "oncall"))
    assert "*primary*" in oncall and "secondary" not in oncall
    assert not _load(desk, roster).changed


# --- a page waiting on an agent who leaves ---------------------------------------------------


def _page_dms(desk: Desk, user: str) -> list[dict[str, Any]]:
    channel = desk.standin.dm_channel(user)
    return [
        m for m in desk.standin.messages(channel) if "You are paged" in json.dumps(m.get("blocks"))
    ]


def test_a_page_to_an_agent_who_leaves_goes_on_to_the_next_step_at_once(
    desk: Desk, tmp_path: Path
) -> None:
    """Dana is primary and paged for a Sev A case; before she sees it (Slack failed the DM,
    a retry waits) she leaves the team. The page DM is not sent to her (she may not
    acknowledge, and the case is no longer hers to see), and the escalation does not wait
    out her five minutes: the next step pages at the worker's next pass."""
    desk.settle()
    desk.standin.fail_next("conversations.open", status=500, times=2)
    desk.open_case(
        ALICE, severity="A", title="Mail down", business_impact="mail down", available_contact="A"
    )
    desk.settle()
    assert _page_dms(desk, DANA) == []
    pages = [m for m in desk.outbox() if m.kind == "page.notify" and m.payload.get("to") == "user"]
    assert [m.payload["user"] for m in pages] == [DANA]
    _load(desk, _edited_roster(tmp_path, _without(DANA)))
    desk.run_worker(desk.clock.now() + timedelta(minutes=2), step=timedelta(seconds=30))
    assert _page_dms(desk, DANA) == []
    steps = [
        (m.payload["step"], m.payload["user"])
        for m in desk.outbox()
        if m.kind == "page.notify" and m.payload.get("to") == "user"
    ]
    assert steps[0] == (0, DANA) and len(steps) > 1 and steps[1][0] == 1


def test_an_sla_warning_waiting_for_an_owner_who_leaves_is_not_sent_to_them(
    desk: Desk, tmp_path: Path
) -> None:
    """Slack refused the warning to Dana, the case's owner, and a retry waits; she leaves
    the team before it: the warning is still posted in the case's thread, but nothing about
    the case reaches her DMs any more."""
    case = desk.open_case(ALICE)
    _claimed_by(desk, case, DANA)
    warn_at = desk.fresh(case).sla_warn_at
    assert warn_at is not None
    desk.run_worker(warn_at - timedelta(minutes=1), step=timedelta(hours=1))
    desk.settle()
    desk.standin.fail_next("chat.postMessage", status=500, times=2)  # the thread's and hers
    desk.run_worker(warn_at + timedelta(seconds=1), step=timedelta(minutes=1))
    warning = [m for m in desk.outbox() if m.kind == "sla.warning"]
    assert {m.payload.get("to") for m in warning} == {"thread", "user"}
    assert [m.status for m in warning if m.payload.get("to") == "user"] == ["pending"]
    _load(desk, _edited_roster(tmp_path, _without(DANA)))
    desk.run_worker(desk.clock.now() + timedelta(minutes=30), step=timedelta(minutes=1))
    to_dana = json.dumps([c.args for c in posts(desk.standin, desk.standin.dm_channel(DANA))])
    assert "about to miss" not in to_dana
    assert any("about to miss" in t for t in _thread(desk, desk.fresh(case).card_ts))


# --- cover a lead added from Slack for someone who leaves ------------------------------------


def _handoff_dms(desk: Desk, user: str) -> list[str]:
    desk.settle()
    return [t for t in _dms(desk, user) if t.startswith("Shift handoff")]


def test_slack_added_cover_of_an_agent_who_leaves_ends_with_them(
    desk: Desk, tmp_path: Path
) -> None:
    """A lead put Eli on call from Slack for this afternoon, and for a stretch running now;
    Eli leaves the team. Neither keeps him on call: /support oncall names who is really
    there, and no shift handoff (with every organisation's open work) goes to his DMs."""
    from tests.test_oncall_commands import _put_on_call

    desk.clock.set(desk.clock.now() - timedelta(hours=1))  # 09:00 Beijing
    _put_on_call(desk, "<@U0AGENT2>", "2026-11-25T09:30", "2026-11-25T12:00")
    _put_on_call(desk, "<@U0AGENT2>", "2026-11-25T14:00", "2026-11-25T18:00")
    desk.clock.set(desk.clock.now() + timedelta(hours=1))  # 10:00, Eli covering
    oncall = json.dumps(desk.ask("U0CARL", "oncall"))
    assert "*primary*: <@U0AGENT2>" in oncall
    handoffs_to_eli = len(_handoff_dms(desk, ELI))
    summary = _load(desk, _edited_roster(tmp_path, _without(ELI)))
    assert summary.overrides_removed == 2
    oncall = json.dumps(desk.ask("U0CARL", "oncall"))
    assert "U0AGENT2" not in oncall
    desk.run_worker(desk.clock.now() + timedelta(hours=9), step=timedelta(minutes=30))
    assert len(_handoff_dms(desk, ELI)) == handoffs_to_eli
    assert not _load(desk, _edited_roster(tmp_path, _without(ELI))).changed


@pytest.mark.postgres
def test_release_on_postgres(pg_desk: Desk, tmp_path: Path) -> None:
    test_an_agent_left_out_hands_their_open_cases_back_to_the_unclaimed_queue(pg_desk, tmp_path)


@pytest.mark.postgres
def test_requester_moving_on_postgres(pg_desk: Desk, tmp_path: Path) -> None:
    test_a_requester_who_moves_organisation_no_longer_hears_of_the_old_one_s_case(pg_desk, tmp_path)
