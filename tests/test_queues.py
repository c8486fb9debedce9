"""`/support list`, the App Home tab and the scoping rule behind them: who sees which cases
(organisation isolation), what the queues hold and in which order, Slack's block limits."""

from __future__ import annotations

import json
import re
import sys
import types
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from chatops import queues
from chatops.db import transaction
from chatops.directory import find_person
from chatops.standin.webapi import validate_blocks
from models import Case, Person
from tests.conftest import INTAKE_DEFAULTS, OPEN_HOURS, TRIAGE, Desk

AGENTS = ("U0AGENT1", "U0LEAD")


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _person(session: Session, user: str) -> Person | None:
    return find_person(session, user)


def _ids(desk: Desk, user: str) -> set[int]:
    """The ids of the cases `user` may see, through the scoping rule."""
    with Session(desk.engine) as session:
        person = _person(session, user)
        rows = session.exec(queues.visible_cases(session, person, desk.service.rules)).all()
        return {c.id for c in rows if c.id is not None}


def _home(desk: Desk, user: str) -> dict[str, Any]:
    """Open the Home tab as `user`; return the view once the app has published it."""
    old = desk.standin.home_view(user)
    response = desk.slack.app_home_opened(user)
    assert response.status == 200

    def published() -> dict[str, Any] | None:
        view = desk.standin.home_view(user)
        return view if view is not None and (old is None or view["hash"] != old["hash"]) else None

    view: dict[str, Any] = desk.wait_until(published, "Home view published")
    return view


def _update_case(desk: Desk, case_id: int | None, **values: Any) -> None:
    with transaction(desk.engine) as session:
        row = session.get(Case, case_id)
        assert row is not None
        for key, value in values.items():
            setattr(row, key, value)
        session.add(row)


def _blocks_without_ids(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in block.items() if k != "block_id"} for block in view["blocks"]]


def _claim(desk: Desk, user: str, case: Case) -> None:
    card = desk.card(case)
    response = desk.slack.click_in(user, card, "claim_case", channel_id=TRIAGE, is_ephemeral=False)
    assert response.status == 200

    def claimed() -> bool:  # the claim is written after the ack
        with Session(desk.engine) as session:
            fresh = session.get(Case, case.id)
            assert fresh is not None
            return fresh.assignee_id is not None

    desk.wait_until(claimed, "claim recorded")


def _open_billing(desk: Desk, user: str = "U0ALICE", **values: Any) -> Case:
    before = len(desk.cases())
    desk.open_intake(user)
    desk.choose(user, "intake_category", "billing")
    response = desk.submit(user, category="billing", topic="invoice", **values)
    assert response.status == 200 and "errors" not in (response.body or ""), response.body
    cases = desk.cases()
    assert len(cases) == before + 1
    return cases[-1]


def _sev_a(desk: Desk, title: str) -> Case:
    return desk.open_case(
        "U0ALICE",
        severity="A",
        title=title,
        business_impact="Nobody can send mail.",
        available_contact="Alice Chen",
    )


def _two_organisations(desk: Desk) -> tuple[Case, Case]:
    contoso = desk.open_case("U0ALICE", title="Contoso <!channel> mail & more")
    fabrikam = desk.open_case("U0FRANK", title="Fabrikam printer secret")
    return contoso, fabrikam


# --- the scoping rule -------------------------------------------------------------------


def test_visible_cases_agent_admin_non_admin_stranger(desk: Desk) -> None:
    contoso, fabrikam = _two_organisations(desk)
    helen = desk.open_case("U0HELEN", title="Helen's case")  # another Contoso admin
    everything = {contoso.id, fabrikam.id, helen.id}
    for agent in AGENTS:
        assert _ids(desk, agent) == everything
    assert _ids(desk, "U0ALICE") == {contoso.id, helen.id}  # the whole organisation's
    assert _ids(desk, "U0BILL") == {contoso.id, helen.id}
    assert _ids(desk, "U0FRANK") == {fabrikam.id}
    assert _ids(desk, "U0NORA") == set()  # an admin of an organisation with no cases
    assert _ids(desk, "U0CARL") == set()  # a non-admin of Contoso
    assert _ids(desk, "U0STRANGER") == set()  # not in the directory
    with Session(desk.engine) as session:
        assert session.exec(queues.visible_cases(session, None, desk.service.rules)).all() == []


def test_a_customer_given_a_staff_role_is_not_staff(desk: Desk) -> None:
    # Fail closed: a misconfigured roster line must not open every organisation's cases.
    _contoso, fabrikam = _two_organisations(desk)
    with transaction(desk.engine) as session:
        carl = _person(session, "U0CARL")
        frank = _person(session, "U0FRANK")
        assert carl is not None and frank is not None
        carl.roles = ["agent"]
        frank.roles = ["global_admin", "lead"]
        session.add(carl)
        session.add(frank)
    assert _ids(desk, "U0CARL") == set()
    assert _ids(desk, "U0FRANK") == {fabrikam.id}
    body = _text(desk.ask("U0FRANK", "list"))
    assert "Fabrikam printer secret" in body and "Contoso" not in body


def test_case_detail_and_search_are_scoped(desk: Desk) -> None:
    contoso, fabrikam = _two_organisations(desk)
    rules = desk.service.rules
    with Session(desk.engine) as session:
        alice = _person(session, "U0ALICE")
        frank = _person(session, "U0FRANK")
        agent = _person(session, "U0AGENT1")
        carl = _person(session, "U0CARL")
        assert queues.find_case(session, alice, rules, contoso.number) is not None
        assert queues.find_case(session, alice, rules, fabrikam.number) is None
        assert queues.find_case(session, alice, rules, fabrikam.id or 0) is None
        assert queues.find_case(session, frank, rules, f"cs-{fabrikam.id}") is not None
        assert queues.find_case(session, agent, rules, contoso.number) is not None
        assert queues.find_case(session, carl, rules, contoso.number) is None
        assert queues.find_case(session, agent, rules, "CS-99999") is None
        assert queues.find_case(session, agent, rules, "nonsense") is None
        assert queues.search_cases(session, alice, rules, "printer").total == 0
        assert queues.search_cases(session, frank, rules, "PRINTER").total == 1
        assert queues.search_cases(session, agent, rules, "mail").total == 1
        assert queues.search_cases(session, agent, rules, "%").total == 0  # literal
        assert queues.search_cases(session, agent, rules, "").total == 0


# --- /support list ----------------------------------------------------------------------


def test_admin_list_shows_only_their_organisations_open_cases(desk: Desk) -> None:
    contoso, fabrikam = _two_organisations(desk)
    helen = desk.open_case("U0HELEN", title="Helen's case")
    body = _text(desk.ask("U0ALICE", "list"))
    assert contoso.number in body and helen.number in body
    assert "Contoso &lt;!channel&gt; mail &amp; more" in body  # escaped
    assert "<!channel>" not in body
    assert fabrikam.number not in body and "Fabrikam" not in body
    assert "*Open cases* (2)" in body
    assert "first response due" in body and "_unclaimed_" in body
    # an argument does not widen an admin's view
    for arg in ("unclaimed", "risk", "sev", "mine"):
        assert fabrikam.number not in _text(desk.ask("U0ALICE", f"list {arg}"))
    frank = _text(desk.ask("U0FRANK", "list"))
    assert fabrikam.number in frank and contoso.number not in frank
    assert "Contoso" not in frank


def test_admin_list_leaves_out_resolved_cases_and_shows_owner(desk: Desk) -> None:
    first = desk.open_case("U0ALICE", title="First")
    second = desk.open_case("U0ALICE", title="Second")
    _claim(desk, "U0AGENT1", first)
    _update_case(desk, second.id, status="resolved")
    body = _text(desk.ask("U0ALICE", "list"))
    assert first.number in body and second.number not in body
    assert "<@U0AGENT1>" in body and "claimed" in body
    assert "*Open cases* (1)" in body


def test_non_admin_stranger_and_partner_admin_list_and_home(desk: Desk) -> None:
    _two_organisations(desk)
    carl = _text(desk.ask("U0CARL", "list"))
    assert "Only your organisation's *admins* can see its support cases" in carl
    assert "Alice Chen" in carl and "CS-0" not in carl
    stranger = _text(desk.ask("U0STRANGER", "list"))
    assert "not registered with any customer organisation" in stranger
    assert "CS-0" not in stranger
    nora = _text(desk.ask("U0NORA", "list"))
    assert "Your organisation has no open cases" in nora and "CS-0" not in nora
    # the Home tab says the same
    carl = _text(_home(desk, "U0CARL")["blocks"])
    assert "Only your organisation's *admins* can see its support cases" in carl
    assert "Self-help is open to everyone" in carl and "CS-0" not in carl
    stranger = _text(_home(desk, "U0STRANGER")["blocks"])
    assert "not registered" in stranger and "CS-0" not in stranger


def test_agents_get_the_queues_most_urgent_first(desk: Desk) -> None:
    t0 = OPEN_HOURS  # Wed 25 Nov 10:00 Beijing time
    desk.clock.set(t0)
    sev_c = desk.open_case("U0ALICE", severity="C", title="Sev C question")
    desk.clock.set(t0 + timedelta(minutes=5))
    billing_b = _open_billing(desk, title="Billing B")  # due Thu 10:05 (billing hours)
    desk.clock.set(t0 + timedelta(minutes=10))
    tech_b = desk.open_case("U0FRANK", title="Tech B")  # due Thu 10:10
    desk.clock.set(t0 + timedelta(minutes=15))
    sev_a = _sev_a(desk, "Sev A outage")
    desk.clock.set(t0 + timedelta(minutes=20))
    mine_b = desk.open_case("U0HELEN", title="Mine B")
    _claim(desk, "U0AGENT1", mine_b)
    rules = desk.service.rules
    with Session(desk.engine) as session:
        agent = _person(session, "U0AGENT1")
        eli = _person(session, "U0AGENT2")
        unclaimed = queues.unclaimed(session, agent, rules)
        assert [c.id for c in unclaimed.cases] == [sev_a.id, billing_b.id, tech_b.id, sev_c.id]
        assert unclaimed.total == 4 and unclaimed.more == 0
        short = queues.unclaimed(session, agent, rules, limit=2)
        assert [c.id for c in short.cases] == [sev_a.id, billing_b.id]
        assert short.total == 4 and short.more == 2
        assert [c.id for c in queues.mine(session, agent, rules).cases] == [mine_b.id]
        assert queues.mine(session, eli, rules).total == 0
        severities = queues.by_severity(session, agent, rules)
        assert list(severities) == ["A", "B", "C"]
        assert [c.id for c in severities["B"].cases] == [billing_b.id, tech_b.id, mine_b.id]
        assert severities["A"].total == 1 and severities["C"].total == 1
        open_all = queues.open_cases_for_org(session, agent, rules)
        assert open_all.total == 5
        contoso_only = queues.open_cases_for_org(
            session, agent, rules, organisation_id=sev_c.organisation_id
        )
        assert tech_b.id not in [c.id for c in contoso_only.cases]
        assert contoso_only.total == 4

    body = _text(desk.ask("U0AGENT1", "list"))
    assert "Support queues" in body
    assert "*Unclaimed:* 4" in body and "*Mine:* 1" in body and "*At risk:* 0" in body
    assert "Sev A: 1 · Sev B: 3 · Sev C: 1" in body
    assert "Fabrikam Design" in body and "Contoso Trading Co." in body  # staff see all
    one = _text(desk.ask("U0AGENT1", "list unclaimed"))
    positions = [one.index(c.number) for c in (sev_a, billing_b, tech_b, sev_c)]
    assert positions == sorted(positions)
    assert mine_b.number not in one
    mine = _text(desk.ask("U0AGENT1", "list mine"))
    assert mine_b.number in mine and sev_a.number not in mine
    by_sev = _text(desk.ask("U0LEAD", "list sev"))
    assert by_sev.index(sev_a.number) < by_sev.index(billing_b.number) < by_sev.index(sev_c.number)
    usage = _text(desk.ask("U0AGENT1", "list everything"))
    assert "Usage: `/support list`" in usage


def test_at_risk_is_warned_or_due_and_not_yet_answered(desk: Desk) -> None:
    t0 = OPEN_HOURS
    desk.clock.set(t0)
    sev_a = _sev_a(desk, "Outage")  # due t0 + 60 min, warned 15 min before
    tech_b = desk.open_case("U0FRANK", title="Tech B")  # due Thu 10:00 Beijing time
    rules = desk.service.rules

    def risk(now: datetime) -> list[int | None]:
        with Session(desk.engine) as session:
            agent = _person(session, "U0AGENT1")
            return [c.id for c in queues.at_risk(session, agent, rules, now).cases]

    assert risk(t0 + timedelta(minutes=44)) == []
    assert risk(t0 + timedelta(minutes=45)) == [sev_a.id]  # the warning instant
    assert risk(t0 + timedelta(days=1)) == [sev_a.id, tech_b.id]  # both due
    _update_case(desk, sev_a.id, first_responded_at=t0 + timedelta(minutes=50))
    assert risk(t0 + timedelta(days=1)) == [tech_b.id]  # answered: no longer at risk
    desk.clock.set(t0 + timedelta(days=1, minutes=1))
    body = _text(desk.ask("U0AGENT1", "list risk"))
    assert tech_b.number in body and sev_a.number not in body
    assert "overdue by 1 min" in body
    with Session(desk.engine) as session:  # Frank sees his own at-risk case only
        frank = _person(session, "U0FRANK")
        alice = _person(session, "U0ALICE")
        now = t0 + timedelta(days=1)
        assert [c.id for c in queues.at_risk(session, frank, rules, now).cases] == [tech_b.id]
        assert queues.at_risk(session, alice, rules, now).total == 0


# --- App Home ---------------------------------------------------------------------------


def test_home_for_an_agent_shows_mine_unclaimed_and_at_risk(desk: Desk) -> None:
    t0 = OPEN_HOURS
    desk.clock.set(t0)
    sev_a = _sev_a(desk, "Outage <@U0LEAD>")
    mine_b = desk.open_case("U0FRANK", title="Frank's B")
    _claim(desk, "U0AGENT1", mine_b)
    desk.clock.set(t0 + timedelta(minutes=50))
    view = _home(desk, "U0AGENT1")
    assert view["type"] == "home"
    body = _text(view["blocks"])
    assert "*My cases* (1)" in body and "*Unclaimed* (1)" in body
    assert "*At risk or in breach* (1)" in body
    assert mine_b.number in body and sev_a.number in body
    assert "Outage &lt;@U0LEAD&gt;" in body and "<@U0LEAD>" not in body
    assert "in 10 min" in body  # the due time, shown with the time left
    assert validate_blocks(view["blocks"], surface="home") == []


def test_home_for_admins_is_their_organisations_only(desk: Desk) -> None:
    contoso, fabrikam = _two_organisations(desk)
    frank = _text(_home(desk, "U0FRANK")["blocks"])
    assert fabrikam.number in frank and "Fabrikam printer secret" in frank
    assert contoso.number not in frank and "Contoso" not in frank
    alice = _text(_home(desk, "U0ALICE")["blocks"])
    assert contoso.number in alice and "Contoso &lt;!channel&gt; mail &amp; more" in alice
    assert fabrikam.number not in alice and "Fabrikam" not in alice
    assert "/support &lt;your question&gt;" in alice


def test_home_shows_active_health_incidents_to_admins(desk: Desk, monkeypatch: Any) -> None:
    incident = types.SimpleNamespace(
        title="Mail delays <!here>",
        services=["mail", "chat"],
        status="Investigating & mitigating",
        created_at=OPEN_HOURS - timedelta(hours=1),
    )
    fake = types.ModuleType("chatops.health")
    fake.active_incidents = lambda session: [incident]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "chatops.health", fake)
    body = _text(_home(desk, "U0ALICE")["blocks"])
    assert "active incidents (1)" in body
    assert "Mail delays &lt;!here&gt;" in body and "<!here>" not in body
    assert "Mail, Chat and meetings" in body  # service keys shown as the policy's labels
    assert "Investigating &amp; mitigating" in body

    def broken(session: Any) -> list[Any]:
        raise RuntimeError("health table missing")

    fake.active_incidents = broken  # type: ignore[attr-defined]
    body = _text(_home(desk, "U0ALICE")["blocks"])
    assert "Service health is unavailable" in body and "open cases" in body
    monkeypatch.setitem(sys.modules, "chatops.health", None)  # not installed: ImportError
    body = _text(_home(desk, "U0ALICE")["blocks"])
    assert "Service health" not in body and "open cases" in body


def test_home_republished_on_retry_and_ignores_the_messages_tab(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    first = desk.slack.app_home_opened("U0ALICE")
    desk.standin.wait_for("views.publish", count=1)
    view = desk.standin.home_view("U0ALICE")
    assert view is not None
    # Slack re-sends the same event (same event_id) with X-Slack-Retry-Num: harmless.
    again = desk.slack.event(first.sent["event"], retry_num=1, event_id=first.event_id)
    assert again.status == 200
    desk.standin.wait_for("views.publish", count=2)
    retried = desk.standin.home_view("U0ALICE")
    assert retried is not None
    assert retried["id"] == view["id"]  # the same Home view, replaced in place
    assert _blocks_without_ids(retried) == _blocks_without_ids(view)
    assert case.number in _text(retried["blocks"])
    desk.slack.app_home_opened("U0ALICE", tab="messages")
    desk.settle()  # the event is acked before it is handled: wait for its listener to end
    assert len(desk.standin.calls("views.publish")) == 2


# --- Slack's limits with many cases -----------------------------------------------------


def test_sixty_open_cases_stay_within_slack_limits(desk: Desk) -> None:
    title = "A&B <C> " * 8 + "x" * 80  # escapes to far more than it types
    for n in range(60):
        desk.clock.set(OPEN_HOURS + timedelta(minutes=n))
        desk.open_case("U0ALICE", title=f"{n:02d} {title}"[:150])
    desk.clock.set(OPEN_HOURS + timedelta(days=2))  # every one in breach: all at risk
    for user, arg in [
        ("U0ALICE", ""),
        ("U0AGENT1", ""),
        ("U0AGENT1", "unclaimed"),
        ("U0AGENT1", "risk"),
        ("U0AGENT1", "sev"),
    ]:
        reply = desk.ask(user, f"list {arg}".strip())
        problems = validate_blocks(reply["blocks"], surface="message")
        assert problems == [], (user, arg, problems)
        assert len(reply["blocks"]) <= 50
        body = _text(reply)
        assert "…and" in body and "more" in body, (user, arg)
        assert "<C>" not in body
    admin = _text(desk.ask("U0ALICE", "list"))
    assert "*Open cases* (60)" in admin and "…and 40 more" in admin
    agent = _text(desk.ask("U0AGENT1", "list"))
    assert "*Unclaimed* (60)" in agent and "…and 55 more — `/support list unclaimed`" in agent
    for user in ("U0ALICE", "U0AGENT1"):
        view = _home(desk, user)
        assert validate_blocks(view["blocks"], surface="home") == []
        assert "…and 50 more" in _text(view["blocks"])


def test_every_case_line_is_bounded(desk: Desk) -> None:
    # Long titles are clipped before escaping so a section can never pass 3000 characters.
    desk.open_case("U0ALICE", title="&" * 37 + "x" * 113)
    reply = desk.ask("U0ALICE", "list")
    section = next(b for b in reply["blocks"] if b["type"] == "section")
    text = section["text"]["text"]
    assert "&amp;" * 15 + "…" in text  # cut at 80 characters, never inside an entity
    assert re.search(r"&(?!amp;|lt;|gt;)", text) is None
    assert len(text) < 400


def test_case_detail_names_the_cases_organisation_after_its_requester_moves(desk: Desk) -> None:
    # Alice opened the case for Contoso, then moved to Fabrikam (a roster load): the case is
    # still Contoso's, and Contoso's admins must not read another organisation's name on it.
    case = desk.open_case("U0ALICE", title="Contoso mail down")
    with transaction(desk.engine) as session:
        alice = _person(session, "U0ALICE")
        frank = _person(session, "U0FRANK")
        assert alice is not None and frank is not None
        alice.organisation_id = frank.organisation_id
        session.add(alice)
    for user in ("U0HELEN", "U0AGENT1"):
        body = _text(desk.ask(user, f"case {case.number}"))
        assert "Contoso mail down" in body, user
        assert "Contoso Trading Co." in body and "Fabrikam" not in body, (user, body)
    assert "No case" in _text(desk.ask("U0FRANK", f"case {case.number}"))


# --- pages of a long queue --------------------------------------------------------------

_CONTACTS = {
    "U0ALICE": ("+86 10 5555 0101", "alice@contoso.example"),
    "U0FRANK": ("+86 21 5555 0201", "frank@fabrikam.example"),
}


def _open_many(desk: Desk, user: str, count: int, severity: str = "B") -> list[str]:
    """`count` cases opened through the core (the intake itself is tested elsewhere), one a
    minute apart so their first-response dues, and so the queue's order, differ."""
    from chatops.cases.intake import IntakeForm
    from chatops.cases.service import open_case

    phone, email = _CONTACTS[user]
    numbers = []
    for n in range(count):
        desk.clock.set(OPEN_HOURS + timedelta(minutes=n))
        form = IntakeForm(
            **{**INTAKE_DEFAULTS, "severity": severity, "title": f"Paged case {user} {n:02d}"},
            phone=phone,
            email=email,
        )
        case = open_case(desk.engine, user, form, desk.service.rules, desk.clock.now())
        numbers.append(case.number)
    return numbers


def _listed(reply: dict[str, Any]) -> list[str]:
    return re.findall(r"\*(CS-\d+)\*", _text(reply))


def _footer(reply: dict[str, Any]) -> str:
    context = [b for b in reply["blocks"] if b["type"] == "context"]
    return context[0]["elements"][0]["text"] if context else ""


def test_a_long_queue_is_read_page_by_page(desk: Desk) -> None:
    numbers = _open_many(desk, "U0ALICE", 45)
    first = desk.ask("U0AGENT1", "list unclaimed")
    assert _listed(first) == numbers[:20]  # the most urgent: the earliest due first
    assert _footer(first) == "…and 25 more — next page: `/support list unclaimed 2`"
    second = desk.ask("U0AGENT1", "list unclaimed 2")
    assert _listed(second) == numbers[20:40]
    assert _footer(second) == (
        "Cases 21–40 of 45 · …and 5 more — next page: `/support list unclaimed 3` · "
        "previous: `/support list unclaimed 1`"
    )
    third = desk.ask("U0AGENT1", "list unclaimed 3")
    assert _listed(third) == numbers[40:]
    assert _footer(third) == (
        "Cases 41–45 of 45 · the last page · previous: `/support list unclaimed 2`"
    )
    for reply in (first, second, third):
        assert "*Unclaimed* (45)" in _text(reply)
        assert validate_blocks(reply["blocks"], surface="message") == []
    past = _text(desk.ask("U0AGENT1", "list unclaimed 4"))
    assert "has 3 pages of 20 cases; page 4 is past its end" in past
    assert "The last page: `/support list unclaimed 3`" in past
    assert _listed(desk.ask("U0AGENT1", "list unclaimed 4")) == []


def test_pages_of_one_severity_and_of_mine(desk: Desk) -> None:
    sev_c = _open_many(desk, "U0ALICE", 22, severity="C")
    summary = _text(desk.ask("U0AGENT1", "list sev"))
    assert "…and 17 more — `/support list sev C`" in summary
    page = desk.ask("U0AGENT1", "list sev c 2")  # letter case and "sev" as typed
    assert _listed(page) == sev_c[20:]
    assert "previous: `/support list sev C 1`" in _footer(page)
    assert _listed(desk.ask("U0AGENT1", "list sev B")) == []
    assert "None open." in _text(desk.ask("U0AGENT1", "list sev B"))
    # a queue of one page has no page footer
    assert _footer(desk.ask("U0AGENT1", "list mine")) == ""


def test_an_admins_pages_hold_only_their_organisations_cases(desk: Desk) -> None:
    contoso = _open_many(desk, "U0ALICE", 25)
    _open_many(desk, "U0FRANK", 25)
    first = desk.ask("U0ALICE", "list")
    assert _footer(first) == "…and 5 more — next page: `/support list 2`"
    second = desk.ask("U0ALICE", "list 2")
    assert _listed(first) + _listed(second) == contoso
    assert "Fabrikam" not in _text(second) and "U0FRANK" not in _text(second)
    assert "*Open cases* (25)" in _text(second)
    # Frank's second page is Fabrikam's, not Contoso's
    assert not set(_listed(desk.ask("U0FRANK", "list 2"))) & set(contoso)
    assert "page 3 is past its end" in _text(desk.ask("U0ALICE", "list 3"))


def test_a_page_that_cannot_be_gets_the_usage(desk: Desk) -> None:
    _open_many(desk, "U0ALICE", 3)
    for words in (
        "list unclaimed 0",
        "list unclaimed 99999999",
        "list 2",  # the agents' summary has no pages; each queue has its own
        "list sev D",
        "list sev 2",
        "list unclaimed mine",
        "list mine 1 2",
    ):
        reply = _text(desk.ask("U0AGENT1", words))
        assert "Usage: `/support list`" in reply, words
        assert "CS-" not in reply, words
    assert "Usage: `/support list [page]`" in _text(desk.ask("U0ALICE", "list 0"))
    # page 1 is the list itself
    assert _listed(desk.ask("U0AGENT1", "list unclaimed 1")) == _listed(
        desk.ask("U0AGENT1", "list unclaimed")
    )
