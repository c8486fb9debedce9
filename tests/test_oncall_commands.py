"""`/support oncall`, overrides from Slack, and empty on-call slots, through the front door."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from handlers.worker import tick
from models import OnCallOverride, RotationRecord
from tests.conftest import Desk

WED_0840 = datetime(2026, 11, 25, 0, 40, tzinfo=UTC)


def test_oncall_shows_now_and_next(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    body = json.dumps(desk.ask("U0CARL", "oncall"))
    assert "*primary*: <@U0AGENT2>" in body  # Eli until 09:00
    assert "next <@U0AGENT1>" in body
    assert "*secondary*: <@U0LEAD>" in body


def test_lead_adds_an_override_that_beats_the_rotation(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    reply = desk.ask(
        "U0LEAD", "oncall override primary <@U0LEAD|lee> 2026-11-25T08:45 2026-11-25T12:00"
    )
    assert "is on call for *primary*" in json.dumps(reply)
    again = desk.ask(
        "U0LEAD", "oncall override primary <@U0LEAD|lee> 2026-11-25T08:45 2026-11-25T12:00"
    )
    assert "is on call" in json.dumps(again)
    with Session(desk.engine) as session:
        assert len(session.exec(select(OnCallOverride)).all()) == 2  # roster's one + this one
    desk.clock.set(WED_0840 + timedelta(minutes=10))
    body = json.dumps(desk.ask("U0CARL", "oncall"))
    assert "*primary*: <@U0LEAD> (override)" in body


def test_override_refusals_change_nothing(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    cases = {
        ("U0AGENT1", "primary <@U0AGENT1> 2026-11-25T10:00 2026-11-25T12:00"): "Only support leads",
        (
            "U0LEAD",
            "nightshift <@U0AGENT1> 2026-11-25T10:00 2026-11-25T12:00",
        ): "There is no rotation `nightshift`",
        (
            "U0LEAD",
            "primary <@U0ALICE> 2026-11-25T10:00 2026-11-25T12:00",
        ): "Only support agents can be put on call",
        (
            "U0LEAD",
            "primary <@U0AGENT1> 2026-11-25T12:00 2026-11-25T10:00",
        ): "The end must be after the start",
        ("U0LEAD", "primary <@U0AGENT1> tomorrow later"): "I could not read those times",
        ("U0LEAD", "primary"): "Usage:",
    }
    for (user, args), expected in cases.items():
        body = json.dumps(desk.ask(user, f"oncall override {args}"))
        assert expected in body, (args, body)
    with Session(desk.engine) as session:
        assert len(session.exec(select(OnCallOverride)).all()) == 1  # only the roster's


def test_an_empty_slot_is_reported_once(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    with Session(desk.engine) as session:
        record = session.get(RotationRecord, "secondary")
        assert record is not None
        record.members = []
        session.add(record)
        session.commit()
    for minutes in (0, 1, 2):
        tick(desk.service.desk, WED_0840 + timedelta(minutes=minutes))
    gaps = [m for m in desk.outbox() if m.kind == "oncall.gap"]
    assert {m.payload["to"] for m in gaps} == {"channel", "user"}  # triage + the lead
    assert len(gaps) == 2
    posted = desk.standin.wait_for(
        "chat.postMessage", lambda c: "Nobody is on call for" in json.dumps(c.args)
    )
    assert "`secondary`" in json.dumps(posted[0].args)
