"""`/support oncall`, overrides from Slack, and empty on-call slots, through the front door."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from chatops.cases.notices import HANDOFF
from handlers.worker import tick
from models import OnCallOverride, OutboxMessage, RotationRecord
from tests.conftest import Desk, posts

WED_0840 = datetime(2026, 11, 25, 0, 40, tzinfo=UTC)
HANDOFF_CHANNEL = "C0HANDOFF"
DANA, ELI, LEE = "<@U0AGENT1> (Dana Park)", "<@U0AGENT2> (Eli Gomez)", "<@U0LEAD> (Lee Morgan)"


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


def test_an_override_from_a_minute_already_swept_hands_off_to_the_person_put_on_call(
    desk: Desk,
) -> None:
    """A handoff goes out at every change of who is on call, including one an override makes
    from an instant the worker's handoff sweep has already passed ("from now", typed a few
    seconds into the minute): a channel post and a DM to the person put on call, with the
    outgoing person, once."""
    # Wed 14:00 Beijing, the worker sweeping every 15 s; at 14:03:20 Lee puts Eli on the
    # primary pager from 14:03 while Dana is on.
    start = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    desk.clock.set(start)
    desk.run_worker(start + timedelta(minutes=3, seconds=20), step=timedelta(seconds=15))
    before = {m.key for m in desk.outbox() if m.kind == "oncall.handoff"}
    reply = desk.ask(
        "U0LEAD", "oncall override primary <@U0AGENT2> 2026-11-25T14:03 2026-11-25T20:00"
    )
    assert "is on call for *primary*" in json.dumps(reply)
    assert "*primary*: <@U0AGENT2> (override)" in json.dumps(desk.ask("U0CARL", "oncall"))
    desk.run_worker(start + timedelta(minutes=10), step=timedelta(seconds=15))
    tick(desk.service.desk, start + timedelta(minutes=10))  # again: nothing new
    new = [m for m in desk.outbox() if m.kind == "oncall.handoff" and m.key not in before]
    assert sorted((m.payload["to"], m.payload.get("user")) for m in new) == [
        ("channel", None),
        ("user", "U0AGENT2"),
    ], [(m.key, m.payload) for m in new]
    assert {(m.payload["outgoing"], m.payload["incoming"]) for m in new} == {
        ("U0AGENT1", "U0AGENT2")
    }
    assert {m.payload["at"] for m in new} == {"2026-11-25T06:03:00+00:00"}
    dm = desk.standin.wait_for(
        "chat.postMessage",
        lambda c: (
            c.args["channel"] == desk.standin.dm_channel("U0AGENT2")
            and c.args.get("text") == "Shift handoff: primary"
        ),
    )
    assert "Open cases" in json.dumps(dm[0].args["blocks"])


def test_an_override_from_a_shift_change_already_handed_off_tells_its_own_person(
    desk: Desk,
) -> None:
    """An override laid over a shift change that was already handed off is a different
    handoff: the person it puts on call is told too, and the first one is not sent again."""
    desk.clock.set(WED_0840)
    desk.run_worker(WED_0840 + timedelta(minutes=25))  # 09:05: Eli -> Dana handed off at 09:00
    first = [m for m in desk.outbox() if m.kind == "oncall.handoff"]
    assert {(m.payload["to"], m.payload["incoming"]) for m in first} == {
        ("channel", "U0AGENT1"),
        ("user", "U0AGENT1"),
    }
    _put_on_call(desk, "<@U0LEAD|lee>", "2026-11-25T09:00", "2026-11-25T12:00")
    desk.run_worker(WED_0840 + timedelta(minutes=30))
    handoffs = [m for m in desk.outbox() if m.kind == "oncall.handoff"]
    later = [m for m in handoffs if m.id not in {f.id for f in first}]
    assert len(handoffs) == 4
    assert {(m.payload["to"], m.payload.get("user"), m.payload["at"]) for m in later} == {
        ("channel", None, "2026-11-25T01:00:00+00:00"),
        ("user", "U0LEAD", "2026-11-25T01:00:00+00:00"),
    }


def _handoff_rows(desk: Desk) -> list:  # type: ignore[type-arg]
    return [m for m in desk.outbox() if m.kind == "oncall.handoff"]


def _handoffs_posted(desk: Desk) -> list[str]:
    """What the handoff channel shows of each shift handoff, in the order posted: "rotation*:
    outgoing → incoming | from – until" (support time)."""
    desk.settle()
    heads = []
    for call in posts(desk.standin, HANDOFF_CHANNEL):
        head = next(
            b["text"]["text"]
            for b in call.args["blocks"]
            if b["type"] == "section" and b["text"]["text"].startswith("*Shift handoff")
        )
        people, shift = head.split("\n")
        times = re.findall(r"\(([^()]*) Beijing time\)", shift)
        heads.append(f"{people.removeprefix('*Shift handoff — ')} | {' – '.join(times)}")
    return heads


def _put_on_call(desk: Desk, who: str, starts: str, ends: str) -> None:
    """The lead's `/support oncall override` for the primary rotation, taken."""
    reply = desk.ask("U0LEAD", f"oncall override primary {who} {starts} {ends}")
    assert "is on call for *primary*" in json.dumps(reply)


def _handoffs_since(desk: Desk, before: set[int]) -> list[tuple[str, str]]:
    """(where, incoming) of the handoff notices written since the rows `before`."""
    return [
        (m.payload["to"], m.payload["incoming"]) for m in _handoff_rows(desk) if m.id not in before
    ]


def test_an_override_that_puts_the_original_person_back_hands_off_to_them_again(
    desk: Desk,
) -> None:
    """There is no command to remove an override: a lead undoes one by putting the person
    back with another override over the same interval. That is a handoff of its own (the
    person in between was told they hold the pager), not the first one again."""
    desk.clock.set(WED_0840)
    desk.run_worker(WED_0840 + timedelta(minutes=25))  # 09:05: Eli -> Dana handed off at 09:00
    assert {m.payload["incoming"] for m in _handoff_rows(desk)} == {"U0AGENT1"}
    # 09:05 Lee takes the pager from 09:00 (Dana is told she is off via Lee's handoff) ...
    _put_on_call(desk, "<@U0LEAD|lee>", "2026-11-25T09:00", "2026-11-25T12:00")
    desk.run_worker(WED_0840 + timedelta(minutes=30))
    assert {m.payload["incoming"] for m in _handoff_rows(desk)} == {"U0AGENT1", "U0LEAD"}
    before = {m.id for m in _handoff_rows(desk)}
    # ... 09:10 and gives it back to Dana over the same interval: Dana holds the pager again
    _put_on_call(desk, "<@U0AGENT1>", "2026-11-25T09:00", "2026-11-25T12:00")
    assert "*primary*: <@U0AGENT1> (override)" in json.dumps(desk.ask("U0CARL", "oncall"))
    desk.run_worker(WED_0840 + timedelta(minutes=40))
    new = _handoffs_since(desk, before)
    assert ("user", "U0AGENT1") in new, f"no handoff back to Dana: {new}"


def test_an_override_that_began_more_than_twelve_hours_ago_hands_off_to_its_person(
    desk: Desk,
) -> None:
    """An override may start up to 24 hours ago ("a cover that began earlier today"); the
    handoff sweep looks back as far, so the person now holding the pager is told."""
    wed_1355 = datetime(2026, 11, 25, 5, 55, tzinfo=UTC)  # Wed 13:55 Beijing: Dana on call
    desk.clock.set(wed_1355)
    desk.run_worker(wed_1355 + timedelta(minutes=5))
    before = {m.id for m in _handoff_rows(desk)}
    # 14:00: Lee records that he has been covering since 01:00 (13 h ago) and until 18:00
    _put_on_call(desk, "<@U0LEAD|lee>", "2026-11-25T01:00", "2026-11-25T18:00")
    assert "*primary*: <@U0LEAD> (override)" in json.dumps(desk.ask("U0CARL", "oncall"))
    desk.run_worker(wed_1355 + timedelta(minutes=15))
    new = _handoffs_since(desk, before)
    assert ("user", "U0LEAD") in new, f"Lee holds the pager and was never handed it: {new}"


@pytest.mark.parametrize(
    "older_key",
    ["handoff:primary:{at}", "handoff:primary:{at}:{incoming}"],
    ids=["rotation-and-instant", "and-incoming-person"],
)
def test_a_handoff_sent_before_the_upgrade_is_not_sent_again(desk: Desk, older_key: str) -> None:
    """A desk upgraded from a version whose handoff keys named less: the 09:00 handoff of the
    primary pager to Dana went out under the older key. At 09:05 Lee records that Eli has
    held his secondary pager since 08:50; that takes the handoff sweep back across 09:00.
    Eli is handed the secondary pager, and Dana's handoff, the same as before, is not posted
    again."""
    desk.clock.set(WED_0840)
    desk.run_worker(WED_0840 + timedelta(minutes=25))  # 09:05: Eli -> Dana handed off at 09:00
    danas = f"primary*: {ELI} → {DANA} | Wed 25 Nov, 09:00 – Thu 26 Nov, 09:00"
    assert _handoffs_posted(desk) == [danas]
    with Session(desk.engine) as session:
        for row in session.exec(select(OutboxMessage).where(OutboxMessage.kind == HANDOFF)):
            older = older_key.format(at=row.payload["at"], incoming=row.payload["incoming"])
            row.key = f"{older}:{row.key.rsplit(':', 1)[1]}"  # channel or dm, as written then
            session.add(row)
        session.commit()
    reply = desk.ask(
        "U0LEAD", "oncall override secondary <@U0AGENT2> 2026-11-25T08:50 2026-11-25T12:00"
    )
    assert "is on call for *secondary*" in json.dumps(reply)
    desk.run_worker(WED_0840 + timedelta(minutes=30), step=timedelta(seconds=15))
    assert _handoffs_posted(desk) == [
        danas,
        f"secondary*: {LEE} → {ELI} | Wed 25 Nov, 08:50 – Wed 25 Nov, 12:00",
    ]
    dana = desk.standin.dm_channel("U0AGENT1")
    assert [c.args["text"] for c in posts(desk.standin, dana)] == ["Shift handoff: primary"]
