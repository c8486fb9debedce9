"""`/support oncall override` with hostile or extreme input, through the front door: what
the lead typed is escaped when echoed, and times outside the override window are refused
with nothing stored, so `/support oncall` keeps answering."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from handlers.worker import tick
from models import OnCallOverride
from tests.conftest import Desk

WED_0840 = datetime(2026, 11, 25, 0, 40, tzinfo=UTC)  # 08:40 in support time (Beijing)


def overrides(desk: Desk) -> list[OnCallOverride]:
    with Session(desk.engine) as session:
        return list(session.exec(select(OnCallOverride)).all())


def assert_oncall_answers(desk: Desk) -> None:
    """`/support oncall` answers normally, for an agent and for a requester."""
    for user in ("U0CARL", "U0ALICE"):
        response = desk.slack.command(user, "oncall")
        assert response.status == 200, response.body
        body = json.dumps(response.json())
        assert "*On call now*" in body
        assert "*primary*:" in body and "*secondary*:" in body


def test_an_unknown_rotation_name_is_escaped_in_the_refusal(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    body = json.dumps(
        desk.ask(
            "U0LEAD",
            "oncall override <!channel> <@U0AGENT1> 2026-11-25T12:00 2026-11-25T13:00",
        )
    )
    assert "There is no rotation `&lt;!channel&gt;`" in body
    assert "<!channel>" not in body
    assert "Nothing was changed" in body
    assert len(overrides(desk)) == 1  # only the roster's


@pytest.mark.parametrize(
    ("start", "end", "refusal"),
    [
        ("0001-01-01T00:00", "2026-11-25T13:00", "cannot start more than 24 hours ago"),
        ("0001-01-01T00:00+14:00", "2026-11-25T13:00", "cannot start more than 24 hours ago"),
        ("2026-11-25T12:00", "9999-12-31T23:59", "cannot end more than a year"),
        ("2026-11-25T12:00", "9999-12-31T23:59-12:00", "cannot end more than a year"),
        ("9999-12-30T00:00", "9999-12-31T23:59", "cannot end more than a year"),
        ("2026-11-25T12:00", "2027-02-01T12:00", "can last at most 31 days"),
    ],
)
def test_override_times_outside_the_window_are_refused(
    desk: Desk, start: str, end: str, refusal: str
) -> None:
    desk.clock.set(WED_0840)
    response = desk.slack.command("U0LEAD", f"oncall override primary <@U0AGENT1> {start} {end}")
    assert response.status == 200, response.body
    body = json.dumps(response.json())
    assert refusal in body, body
    assert "Nothing was changed" in body
    assert len(overrides(desk)) == 1  # only the roster's
    assert_oncall_answers(desk)
    for hours in (1, 30):  # the worker's sweeps (handoffs, gaps, pages) still run
        desk.clock.set(WED_0840 + timedelta(hours=hours))
        tick(desk.service.desk, desk.clock.now())
    assert_oncall_answers(desk)


def test_a_normal_override_is_still_accepted(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    # started an hour ago (within the grace), lasts a week
    body = json.dumps(
        desk.ask("U0LEAD", "oncall override primary <@U0AGENT1> 2026-11-25T07:40 2026-12-02T09:00")
    )
    assert "<@U0AGENT1> is on call for *primary*" in body, body
    stored = [o for o in overrides(desk) if o.created_by == "U0LEAD"]
    assert len(stored) == 1
    assert stored[0].starts_at == datetime(2026, 11, 24, 23, 40, tzinfo=UTC)
    assert stored[0].ends_at == datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    on_call = json.dumps(desk.ask("U0CARL", "oncall"))
    assert "*primary*: <@U0AGENT1> (override)" in on_call


def test_an_extreme_override_already_stored_does_not_break_oncall(desk: Desk) -> None:
    """A row from before the window was enforced (or written by hand) ending in year 9999."""
    desk.clock.set(WED_0840)
    with Session(desk.engine) as session:
        session.add(
            OnCallOverride(
                key="legacy:primary:forever",
                rotation="primary",
                person="U0AGENT1",
                starts_at=datetime(2026, 11, 25, 0, 0, tzinfo=UTC),
                ends_at=datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
                created_by="U0LEAD",
            )
        )
        session.commit()
    response = desk.slack.command("U0CARL", "oncall")
    assert response.status == 200, response.body
    assert "*primary*: <@U0AGENT1> (override)" in json.dumps(response.json())
    tick(desk.service.desk, desk.clock.now())
    assert_oncall_answers(desk)
