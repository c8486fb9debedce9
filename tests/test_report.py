"""The SLA report: exact numbers on a constructed week, `/support report` and who may run it.

Cases are opened through the front door at controlled times; their first response,
resolution and survey answers are written straight into the database (the reply and
resolve flows are not what is under test here)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

import handlers.queues
from chatops.clock import FileClock
from chatops.db import transaction
from chatops.reports import (
    SlaReport,
    format_duration,
    format_report_text,
    nearest_rank,
    sla_report,
)
from chatops.standin.webapi import validate_blocks
from models import Case, SurveyAnswer
from tests.conftest import OPEN_HOURS, Desk
from tests.test_cli_errors import _cli

T0 = OPEN_HOURS  # Wed 25 Nov 2026, 10:00 Beijing time (02:00 UTC)
AS_OF = T0 + timedelta(days=2)  # Fri 27 Nov, 10:00 Beijing time
SINCE = AS_OF - timedelta(days=7)  # Fri 20 Nov, 10:00 Beijing time
M = timedelta(minutes=1)
H = timedelta(hours=1)


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _sev_a(desk: Desk) -> Case:
    return desk.open_case(
        "U0ALICE",
        severity="A",
        title="Mail down",
        business_impact="Nobody can send mail.",
        available_contact="Alice Chen",
    )


def _billing(desk: Desk) -> Case:
    before = len(desk.cases())
    desk.open_intake("U0ALICE")
    desk.choose("U0ALICE", "intake_category", "billing")
    response = desk.submit("U0ALICE", category="billing", topic="invoice", title="Invoice")
    assert response.status == 200 and "errors" not in (response.body or ""), response.body
    cases = desk.cases()
    assert len(cases) == before + 1
    return cases[-1]


def _record(
    desk: Desk,
    case: Case,
    responded: timedelta | None = None,
    resolved: timedelta | None = None,
    rating: int | None = None,
    rated_at: timedelta | None = None,
) -> None:
    """Set the first response / resolution (as offsets from the opening) and a survey."""
    with transaction(desk.engine) as session:
        row = session.get(Case, case.id)
        assert row is not None
        if responded is not None:
            row.first_responded_at = row.opened_at + responded
            row.status = "in_progress"
        if resolved is not None:
            row.resolved_at = row.opened_at + resolved
            row.status = "resolved"
        session.add(row)
        if rating is not None:
            session.add(
                SurveyAnswer(
                    case_id=case.id or 0,
                    rating=rating,
                    comment="thanks",
                    answered_at=row.opened_at + (rated_at or resolved or timedelta(0)) + M,
                    answered_by="U0ALICE",
                )
            )


@pytest.fixture
def week(desk: Desk) -> dict[str, Case]:
    """Six cases opened in the week and one before it; see each line for its fate."""
    cases: dict[str, Case] = {}
    desk.clock.set(T0 - timedelta(days=6))  # before the report's week: left out
    cases["old"] = desk.open_case("U0ALICE", title="Last week's")
    desk.clock.set(T0)
    cases["a_on_time"] = _sev_a(desk)  # due T0 + 60 min
    desk.clock.set(T0 + 1 * H)
    cases["a_late"] = _sev_a(desk)
    desk.clock.set(T0 + 3 * H)
    cases["b_unanswered"] = desk.open_case("U0ALICE", title="No answer")  # due Thu 13:00
    desk.clock.set(T0 + 4 * H)
    cases["billing_b"] = _billing(desk)  # due Thu 14:00 (billing hours)
    desk.clock.set(T0 + 5 * H)
    cases["c_pending"] = desk.open_case("U0FRANK", severity="C", title="Question")
    desk.clock.set(T0 + 13 * H)  # Wed 23:00: an hour of technical hours left today
    cases["b_overnight"] = desk.open_case("U0ALICE", title="Late evening")  # due Thu 23:00
    desk.clock.set(AS_OF)

    assert cases["a_on_time"].first_response_due == T0 + 60 * M
    assert cases["b_unanswered"].first_response_due == T0 + 27 * H  # Thu 13:00
    assert cases["billing_b"].first_response_due == T0 + 28 * H  # Thu 14:00
    assert cases["b_overnight"].first_response_due == T0 + 37 * H  # Thu 23:00
    c_due = cases["c_pending"].first_response_due
    assert c_due is not None and c_due > AS_OF

    _record(desk, cases["old"], responded=3 * 24 * H, resolved=4 * 24 * H, rating=1)
    _record(desk, cases["a_on_time"], responded=20 * M, resolved=2 * H, rating=5)
    _record(desk, cases["a_late"], responded=90 * M, resolved=5 * H, rating=3)
    _record(desk, cases["billing_b"], responded=30 * M)
    # answered after the report's instant: not counted yet
    _record(desk, cases["billing_b"], rating=1, rated_at=3 * 24 * H)
    # Wed 23:00 → Thu 10:00: 11 hours on the wall, 2 business hours (23-24, 09-10)
    _record(desk, cases["b_overnight"], responded=11 * H, resolved=24 * H, rating=4)
    return cases


def _row(rows: list[Any], key: str) -> Any:
    return next(r for r in rows if r.key == key)


def test_report_numbers_on_a_constructed_week(desk: Desk, week: dict[str, Case]) -> None:
    with Session(desk.engine) as session:
        report = sla_report(session, SINCE, AS_OF, desk.service.rules)
    overall = report.overall
    assert overall.cases == 6  # the case of the week before is left out
    assert (overall.on_time, overall.late, overall.open_breached, overall.pending) == (3, 1, 1, 1)
    assert overall.attainment == pytest.approx(60.0)
    assert overall.breaches == 2
    # first responses 20 min, 30 min, 90 min, 11 h: nearest rank ⌈0.5·4⌉ = 2, ⌈0.9·4⌉ = 4
    assert overall.first_response.count == 4
    assert overall.first_response.median == 30 * M
    assert overall.first_response.p90 == 11 * H
    # in business time the overnight case took 2 h: 20 min, 30 min, 90 min, 2 h
    assert overall.first_response_business.median == 30 * M
    assert overall.first_response_business.p90 == 2 * H
    # resolved in 2 h, 5 h, 24 h
    resolve = overall.resolve
    assert (resolve.count, resolve.median, resolve.p90) == (3, 5 * H, 24 * H)
    assert overall.survey_average == pytest.approx(4.0) and overall.survey_count == 3

    a = _row(report.by_severity, "A")
    assert (a.cases, a.on_time, a.late, a.breaches) == (2, 1, 1, 1)
    assert a.attainment == pytest.approx(50.0)
    assert (a.first_response.median, a.first_response.p90) == (20 * M, 90 * M)
    assert (a.resolve.median, a.resolve.p90) == (2 * H, 5 * H)
    assert (a.survey_average, a.survey_count) == (4.0, 2)
    b = _row(report.by_severity, "B")
    assert (b.cases, b.on_time, b.late, b.open_breached, b.breaches) == (3, 2, 0, 1, 1)
    assert b.attainment == pytest.approx(200 / 3)
    assert (b.first_response.median, b.first_response.p90) == (30 * M, 11 * H)
    assert (b.first_response_business.median, b.first_response_business.p90) == (30 * M, 2 * H)
    assert (b.resolve.median, b.resolve.p90) == (24 * H, 24 * H)
    assert (b.survey_average, b.survey_count) == (4.0, 1)
    c = _row(report.by_severity, "C")
    assert (c.cases, c.pending, c.breaches, c.attainment) == (1, 1, 0, None)
    assert c.first_response.median is None and c.survey_average is None
    assert [r.key for r in report.by_severity] == ["A", "B", "C"]

    technical = _row(report.by_category, "technical")
    assert (technical.cases, technical.on_time, technical.late) == (5, 2, 1)
    assert (technical.open_breached, technical.pending) == (1, 1)
    assert technical.attainment == pytest.approx(50.0)
    assert (technical.first_response.median, technical.first_response.p90) == (90 * M, 11 * H)
    assert (technical.survey_average, technical.survey_count) == (4.0, 3)
    billing = _row(report.by_category, "billing")
    assert (billing.cases, billing.on_time, billing.attainment) == (1, 1, 100.0)
    assert billing.first_response.median == 30 * M
    assert billing.survey_count == 0  # its answer came after the report's instant
    presales = _row(report.by_category, "presales")
    assert presales.cases == 0 and presales.attainment is None
    _report_text(report)

    # As of Thu 12:00 Beijing time: the unanswered Sev B is not yet due, the overnight one
    # was answered at 10:00 and resolves at 23:00; nothing recorded later counts.
    as_of = T0 + 26 * H
    with Session(desk.engine) as session:
        report = sla_report(session, SINCE, AS_OF, desk.service.rules, as_of=as_of)
    b = _row(report.by_severity, "B")
    assert (b.on_time, b.late, b.open_breached, b.pending) == (2, 0, 0, 1)
    assert b.resolve.count == 0  # the overnight case resolves at Thu 23:00
    assert report.overall.attainment == pytest.approx(75.0)  # 3 of 4 judged


def test_support_report_for_agents(desk: Desk, week: dict[str, Case]) -> None:
    reply = desk.ask("U0LEAD", "report")
    assert validate_blocks(reply["blocks"], surface="message") == []
    body = _text(reply)
    assert "First-response SLA — last 7 days" in body
    assert "Fri 20 Nov, 10:00 Beijing time – Fri 27 Nov, 10:00 Beijing time" in body
    assert "*All cases*: 6 cases · *60.0%* (3/5 on time; 1 late, 1 unanswered past due" in body
    assert "breaches 2" in body
    assert "first response median 30 min, p90 11 h (business median 30 min)" in body
    assert "resolve median 5 h, p90 1 d" in body
    assert "survey 4.00 (3)" in body
    assert "*Sev B (high)*: 3 cases · *66.7%*" in body
    assert "*Billing &amp; subscriptions*: 1 case · *100.0%*" in body
    assert "*Sev C (non-critical)*: 1 case · *—* (none judged yet" in body
    short = _text(desk.ask("U0AGENT1", "report 1"))  # no case opened since Thu 10:00
    assert "First-response SLA — last 1 day" in short
    assert "*All cases*: no cases" in short
    assert "6 cases" in _text(desk.ask("U0AGENT2", "report 365"))


def test_a_report_over_many_cases_follows_the_ack(
    desk: Desk, week: dict[str, Case], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A year of a busy desk takes longer than Slack waits for a command's answer: above
    # REPORT_IN_ACK_CASES cases the lead is told at once, and the report takes that
    # message's place when it is ready. (Six cases stand in for tens of thousands here,
    # and take as long: the report is ready once Slack shows the notice.)
    monkeypatch.setattr(handlers.queues, "REPORT_IN_ACK_CASES", 5)

    def taking_its_time(*args: Any, **kwargs: Any) -> SlaReport:
        desk.wait_until(lambda: desk.standin.ephemerals("U0LEAD"), "the notice shown")
        return sla_report(*args, **kwargs)

    monkeypatch.setattr(handlers.queues, "sla_report", taking_its_time)
    reply = desk.ask("U0LEAD", "report 7")
    assert "Working out the SLA report of the last 7 days (6 cases)" in _text(reply)
    assert "%" not in _text(reply)
    desk.settle()
    [shown] = desk.standin.ephemerals("U0LEAD")  # replaced, not a second message
    assert validate_blocks(shown["blocks"], surface="message") == []
    assert "First-response SLA — last 7 days" in _text(shown["blocks"])
    assert "*All cases*: 6 cases · *60.0%*" in _text(shown["blocks"])
    assert "Working out" not in _text(shown)
    # at the threshold it is the answer itself, as for any week of a smaller desk
    monkeypatch.setattr(handlers.queues, "REPORT_IN_ACK_CASES", 6)
    assert "*All cases*: 6 cases · *60.0%*" in _text(desk.ask("U0LEAD", "report 7"))


def test_a_report_that_fails_after_the_ack_says_so(
    desk: Desk, week: dict[str, Case], monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    # The notice must not be left promising a report that never comes.
    monkeypatch.setattr(handlers.queues, "REPORT_IN_ACK_CASES", 5)

    def broken(*_args: Any, **_kwargs: Any) -> None:
        # fails once Slack shows the notice, as a report that takes its time would: a
        # follow-up sent before Slack has shown the ack has nothing to replace yet
        desk.wait_until(lambda: desk.standin.ephemerals("U0LEAD"), "the notice shown")
        raise RuntimeError("the database went away")

    monkeypatch.setattr(handlers.queues, "sla_report", broken)
    assert "Working out" in _text(desk.ask("U0LEAD", "report 7"))
    desk.settle()
    [shown] = desk.standin.ephemerals("U0LEAD")
    assert "`/support report` failed; nothing was changed. Try again." in _text(shown)
    assert "Working out" not in _text(shown)
    assert "/support report failed after its ack" in caplog.text


def test_support_report_is_refused_to_customers_and_checks_days(
    desk: Desk, week: dict[str, Case]
) -> None:
    alice = _text(desk.ask("U0ALICE", "report"))
    assert "The SLA report is for the support team" in alice and "%" not in alice
    frank = _text(desk.ask("U0FRANK", "report 30"))
    assert "The SLA report is for the support team" in frank and "%" not in frank
    carl = _text(desk.ask("U0CARL", "report"))
    assert "Only your organisation's *admins*" in carl and "%" not in carl
    stranger = _text(desk.ask("U0STRANGER", "report"))
    assert "not registered" in stranger and "%" not in stranger
    for bad in ("0", "366", "abc", "-3", "7.5", "7 days", "99999999"):
        body = _text(desk.ask("U0LEAD", f"report {bad}"))
        assert "a whole number from 1 to 365" in body, bad
        assert "First-response SLA" not in body


def _report_text(report: SlaReport) -> None:
    """The plain-text tables `chatops report` prints."""
    text = format_report_text(report)
    lines = text.splitlines()
    assert lines[0].startswith("First-response SLA report: cases opened 2026-11-20T02:00:00")
    overall = next(line for line in lines if line.startswith("All cases"))
    assert overall.split() == [
        "All", "cases", "6", "3", "1", "1", "1", "60.0%", "2", "30", "min", "11", "h",
        "30", "min", "5", "h", "1", "d", "4.00", "(3)",
    ]  # fmt: skip
    sev_b = next(line for line in lines if line.startswith("Sev B (high)"))
    assert "66.7%" in sev_b
    presales = next(line for line in lines if line.startswith("Pre-sales"))
    assert presales.split()[1:3] == ["0", "0"] and "—" in presales
    for heading in ("overall", "by severity", "by category"):
        assert any(line.startswith(heading) for line in lines)


def test_nearest_rank_percentiles() -> None:
    values = [timedelta(minutes=n) for n in (7, 1, 3, 9, 5, 2, 10, 4, 8, 6)]
    assert nearest_rank(values, 50) == timedelta(minutes=5)
    assert nearest_rank(values, 90) == timedelta(minutes=9)
    assert nearest_rank(values, 100) == timedelta(minutes=10)
    assert nearest_rank(values[:4], 50) == timedelta(minutes=3)  # 1,3,7,9 → rank 2
    assert nearest_rank([timedelta(0)], 90) == timedelta(0)
    assert nearest_rank([], 50) is None
    with pytest.raises(ValueError):
        nearest_rank(values, 0)
    assert [format_duration(d) for d in (None, 29 * timedelta(seconds=1), 45 * M, 190 * M)] == [
        "—",
        "0 min",
        "45 min",
        "3 h 10 min",
    ]
    assert format_duration(52 * H) == "2 d 4 h" and format_duration(48 * H) == "2 d"


def test_chatops_report_judges_cases_as_of_now_not_a_later_until(
    desk: Desk, week: dict[str, Case], tmp_path: Path
) -> None:
    # A lead reviews the week on Friday with `--until` the coming Monday 00:00: a case whose
    # due is still ahead (Sev C, due Saturday) has not breached, and a survey answered after
    # now has not been given. "Now" is the process clock: a drill's clock file when set.
    clock = tmp_path / "clock.txt"
    FileClock.write(clock, AS_OF)
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'desk.db'}", "CHATOPS_CLOCK_FILE": str(clock)}
    result = _cli("report", "7", "--until", "2026-11-30T00:00", **env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "First-response SLA report: cases opened 2026-11-23T00:00:00+08:00 .. "
        "2026-11-30T00:00:00+08:00 (as of 2026-11-27T10:00:00+08:00)"
    )
    overall = next(line for line in lines if line.startswith("All cases")).split()
    assert overall[2:9] == ["6", "3", "1", "1", "1", "60.0%", "2"]  # the Sev C case pending
    assert overall[-2:] == ["4.00", "(3)"]  # the billing answer of Saturday not counted yet

    # Without --until the period ends now, on the same clock the desk runs on.
    result = _cli("report", **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "First-response SLA report: cases opened 2026-11-20T10:00:00+08:00 .. "
        "2026-11-27T10:00:00+08:00"
    )
    overall = next(line for line in result.stdout.splitlines() if line.startswith("All cases"))
    assert overall.split()[2:9] == ["6", "3", "1", "1", "1", "60.0%", "2"]
