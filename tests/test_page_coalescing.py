"""Sev A pages to one person that wait at the same moment arrive as one DM listing the
cases, with one Acknowledge all; every page row is still there, sent exactly once."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from chatops.cases.notices import COALESCED_INTO, GROUP_PAGES, GROUP_ROWS
from handlers.blocks import PAGE_GROUP_LIST
from handlers.delivery import OutboxDelivery
from models import OutboxMessage, Page
from tests.conftest import TRIAGE, Desk

WED_0840 = datetime(2026, 11, 25, 0, 40, tzinfo=UTC)  # Eli (U0AGENT2) is primary till 09:00
ELI, LEE, DANA = "U0AGENT2", "U0LEAD", "U0AGENT1"
PAGED = "You are paged"


@contextmanager
def delivery_paused(desk: Desk) -> Iterator[None]:
    """Nothing is delivered inside the block (as when the worker is down or Slack is out):
    the outbox rows pile up, committed."""
    delivery = desk.service.desk.delivery
    delivery.deliver_pending = lambda *args, **kwargs: 0  # type: ignore[method-assign]
    try:
        yield
        # each submission asks for its delivery after its ack: while still paused, so that
        # none of them sends anything once the block is left
        desk.settle()
    finally:
        del delivery.deliver_pending


def _deliver(desk: Desk) -> int:
    return desk.service.desk.delivery.deliver_pending()


def _sev_a(desk: Desk, title: str = "Mail is down for everyone") -> int:
    case = desk.open_case(
        "U0ALICE", severity="A", title=title, business_impact="mail down", available_contact="Al"
    )
    assert case.id is not None
    return case.id


def _storm(desk: Desk, count: int) -> list[int]:
    """`count` Sev A cases opened through the intake while delivery is paused, then one
    delivery pass."""
    with delivery_paused(desk):
        ids = [_sev_a(desk, f"Outage {n} <!channel>") for n in range(count)]
    _deliver(desk)
    return ids


def _page_dms(desk: Desk, user: str) -> list[dict[str, Any]]:
    """The page DMs `user` has received, as their DM channel shows them now."""
    channel = desk.standin.dm_channel(user)
    return [m for m in desk.standin.messages(channel) if PAGED in json.dumps(m.get("blocks"))]


def _dm_rows(desk: Desk, user: str | None = None) -> list[OutboxMessage]:
    return [
        m
        for m in desk.outbox()
        if m.kind == "page.notify"
        and m.payload.get("to") == "user"
        and (user is None or m.payload.get("user") == user)
    ]


def _pages(desk: Desk) -> list[Page]:
    with Session(desk.engine) as session:
        return list(session.exec(select(Page).order_by(Page.id)).all())  # type: ignore[arg-type]


def _button(message: dict[str, Any], action_id: str) -> dict[str, Any] | None:
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return element  # type: ignore[no-any-return]
    return None


def _click_all(desk: Desk, user: str, message: dict[str, Any], owner: str = ELI) -> Any:
    channel = desk.standin.dm_channel(owner)
    return desk.slack.click_in(
        user, message, "acknowledge_pages", channel_id=channel, is_ephemeral=False
    )


def _answers(desk: Desk, count: int) -> list[str]:
    return [json.dumps(a.args) for a in desk.standin.wait_for("response_url", count=count)]


def _ephemerals(desk: Desk, count: int) -> list[str]:
    calls = desk.standin.wait_for(
        "response_url", lambda c: c.args.get("response_type") == "ephemeral", count=count
    )
    return [str(c.args["text"]) for c in calls]


# --- grouping at delivery ---------------------------------------------------------------


def test_pages_waiting_together_arrive_as_one_dm(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    count = PAGE_GROUP_LIST + 4  # more than one message lists by name
    case_ids = _storm(desk, count)
    [dm] = _page_dms(desk, ELI)
    text = json.dumps(dm["blocks"])
    assert f"You are paged for *{count}* Sev A cases (step 1 of 8)" in text
    numbers = [f"CS-{i:05d}" for i in case_ids]
    assert all(n in text for n in numbers[:PAGE_GROUP_LIST])
    assert not any(n in text for n in numbers[PAGE_GROUP_LIST:])
    assert "and 4 more" in text
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text  # titles escaped
    assert len(dm["blocks"]) <= 50
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in dm["blocks"])
    button = _button(dm, "acknowledge_pages")
    assert button is not None and len(button["value"]) < 20  # the pages are kept server-side
    assert _button(dm, "acknowledge_page") is None
    # every page row exists, once per case and step, and is marked sent exactly once
    rows = _dm_rows(desk, ELI)
    assert len(rows) == count == len({r.key for r in rows})
    assert {r.case_id for r in rows} == set(case_ids)
    assert all(r.status == "sent" and r.sent_at is not None for r in rows)
    [lead] = [r for r in rows if COALESCED_INTO not in r.payload]
    assert lead.id == min(r.id for r in rows)  # type: ignore[type-var]
    assert {r.payload[COALESCED_INTO] for r in rows if r is not lead} == {lead.id}
    assert sorted(lead.payload[GROUP_ROWS]) == sorted(r.id for r in rows)
    assert sorted(p for p, _ in lead.payload[GROUP_PAGES]) == [p.id for p in _pages(desk)]
    # the thread posts are not grouped: one per case, each with its own Acknowledge
    threads = [
        c
        for c in desk.standin.calls("chat.postMessage")
        if c.args["channel"] == TRIAGE and "Paging" in json.dumps(c.args.get("blocks"))
    ]
    assert len(threads) == count
    # a second pass has nothing left to send
    before = len(desk.standin.calls("chat.postMessage"))
    assert _deliver(desk) == 0
    assert len(desk.standin.calls("chat.postMessage")) == before
    assert desk.service.desk.delivery.deliver_pending() == 0


def test_a_lone_page_is_the_page_it_always_was(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    case_id = _sev_a(desk)
    channel = desk.standin.dm_channel(ELI)
    [call] = desk.standin.wait_for(
        "chat.postMessage", lambda c: c.args["channel"] == channel and PAGED in json.dumps(c.args)
    )
    dm = desk.standin.message(channel, call.response["ts"])
    text = json.dumps(dm["blocks"])
    assert f"You are paged (step 1 of 8): *CS-{case_id:05d}* Sev A" in text
    button = _button(dm, "acknowledge_page")
    assert button is not None and button["value"] == str(_pages(desk)[0].id)
    [row] = _dm_rows(desk, ELI)
    assert GROUP_PAGES not in row.payload and COALESCED_INTO not in row.payload


def test_pages_that_queue_behind_one_on_its_way_go_out_together(desk: Desk) -> None:
    # Slack answers slowly: while one page DM is on its way, the pages of cases opened
    # meanwhile wait for it and follow in as few messages as the timing allows.
    desk.clock.set(WED_0840)
    desk.standin.delay("chat.postMessage", 0.4)
    count = 6
    case_ids = [_sev_a(desk, f"Outage {n}") for n in range(count)]
    desk.standin.delay("chat.postMessage", 0)
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while any(r.status != "sent" for r in _dm_rows(desk, ELI)) or len(_dm_rows(desk, ELI)) < count:
        assert datetime.now(UTC) < deadline, "page DMs not delivered"
        _deliver(desk)
    dms = _page_dms(desk, ELI)
    listed = Counter(
        n for dm in dms for n in (f"CS-{i:05d}" for i in case_ids) if n in json.dumps(dm)
    )
    assert listed == Counter({f"CS-{i:05d}": 1 for i in case_ids})  # each case once
    assert len(dms) == len([r for r in _dm_rows(desk, ELI) if COALESCED_INTO not in r.payload])
    assert all(r.status == "sent" for r in _dm_rows(desk, ELI))


def test_a_page_left_to_the_holder_goes_out_though_written_after_its_pass_began(
    desk: Desk,
) -> None:
    # A deliverer is sending Eli's pages (it holds his lock; its pass began at 08:40). At
    # 08:40:30 another case pages Eli; that case's own delivery meets the lock and leaves the
    # page to the holder, which must take it when it looks for waiting pages, though it was
    # written after the holder's pass began. (In `bench storm` the holder did not: the last
    # five pages waited for a worker pass far behind the backlog.)
    desk.clock.set(WED_0840)
    base = desk.service.desk.delivery
    holder = OutboxDelivery(base.engine, base.client, base.rules, base.clock, channel_pace=0.02)
    token = holder._take_person(ELI)
    assert token is not None
    desk.clock.set(WED_0840 + timedelta(seconds=30))
    with delivery_paused(desk):
        case_id = _sev_a(desk)
    base.deliver_pending(case_id=case_id)
    [row] = _dm_rows(desk, ELI)
    assert row.status == "pending"  # left to the holder
    sent = holder._drain_pages(ELI, WED_0840, token, None, set())
    assert sent == {row.id}
    [row] = _dm_rows(desk, ELI)
    assert row.status == "sent"
    assert len(_page_dms(desk, ELI)) == 1


# --- Acknowledge all ----------------------------------------------------------------------


def test_acknowledge_all_takes_every_page_listed(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    case_ids = _storm(desk, 5)
    [dm] = _page_dms(desk, ELI)
    assert _click_all(desk, ELI, dm).status == 200
    [reply] = _ephemerals(desk, 1)
    assert "You acknowledged the pages for 5 cases" in reply and "You own 5 of them" in reply
    pages = _pages(desk)
    assert {p.acknowledged_by for p in pages} == {ELI}
    events = desk.events("page_acknowledged")
    assert sorted(e.case_id for e in events) == sorted(case_ids)
    lead = next(r for r in _dm_rows(desk, ELI) if GROUP_PAGES in r.payload)
    assert {e.detail["group"] for e in events} == {lead.id}
    assert {c.assignee_id for c in desk.cases()} != {None}
    # the DM now shows who acknowledged, and no button is left
    [shown] = _page_dms(desk, ELI)
    assert "Acknowledged: 5 of 5" in json.dumps(shown["blocks"])
    assert f"<@{ELI}>" in json.dumps(shown["blocks"])
    assert _button(shown, "acknowledge_pages") is None
    # each case's thread is told, once
    _deliver(desk)
    acked = [m for m in desk.outbox() if m.kind == "page.acknowledged"]
    assert sorted(m.case_id for m in acked) == sorted(case_ids)
    # and the escalation stops for all of them
    desk.run_worker(WED_0840 + timedelta(minutes=30))
    assert {m.payload["step"] for m in desk.outbox() if m.kind == "page.notify"} == {0}


def test_non_agent_cannot_acknowledge_all(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    _storm(desk, 3)
    [dm] = _page_dms(desk, ELI)
    _click_all(desk, "U0ALICE", dm)
    [reply] = _ephemerals(desk, 1)
    assert "Only support agents can acknowledge" in reply and "Nothing was changed" in reply
    assert all(p.acknowledged_at is None for p in _pages(desk))
    assert desk.events("page_acknowledged") == []
    [shown] = _page_dms(desk, ELI)
    assert _button(shown, "acknowledge_pages") is not None
    assert "Acknowledged:" not in json.dumps(shown["blocks"])


def test_a_forged_group_id_changes_nothing(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    _storm(desk, 2)
    [dm] = _page_dms(desk, ELI)
    card_row = next(m for m in desk.outbox() if m.kind == "case.card")
    for value in (str(card_row.id), "999999", "x"):
        forged = json.loads(json.dumps(dm).replace('"value": "', '"value": "X'))
        element = _button(forged, "acknowledge_pages")
        assert element is not None
        element["value"] = value
        desk.slack.click_in(
            ELI,
            forged,
            "acknowledge_pages",
            channel_id=desk.standin.dm_channel(ELI),
            is_ephemeral=False,
            force=True,
        )
    replies = _ephemerals(desk, 3)
    assert all("does not exist any more" in r for r in replies)
    assert all(p.acknowledged_at is None for p in _pages(desk))


def test_double_click_acknowledges_each_page_once(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    case_ids = _storm(desk, 6)
    [dm] = _page_dms(desk, ELI)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def press() -> None:
        barrier.wait()
        statuses.append(_click_all(desk, ELI, dm).status)

    threads = [threading.Thread(target=press) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert statuses == [200, 200]
    replies = _ephemerals(desk, 2)
    assert sum("You acknowledged the pages for 6 cases" in r for r in replies) == 1
    assert sum("Already acknowledged" in r and "You acknowledged" not in r for r in replies) == 1
    assert sorted(e.case_id for e in desk.events("page_acknowledged")) == sorted(case_ids)
    assert len([m for m in desk.outbox() if m.kind == "page.acknowledged"]) == 6


def test_a_case_acknowledged_by_someone_else_is_reported_not_taken(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    case_ids = _storm(desk, 4)
    [dm] = _page_dms(desk, ELI)
    # Lee takes one case from its thread in the triage channel first
    taken = case_ids[1]
    thread_post = next(
        c
        for c in desk.standin.calls("chat.postMessage")
        if c.args["channel"] == TRIAGE
        and f"CS-{taken:05d}" in json.dumps(c.args.get("blocks"))
        and "acknowledge_page" in json.dumps(c.args.get("blocks"))
    )
    message = desk.standin.message(TRIAGE, thread_post.response["ts"])
    desk.slack.click_in(LEE, message, "acknowledge_page", channel_id=TRIAGE)
    desk.standin.wait_for("response_url")
    _click_all(desk, ELI, dm)
    replies = _ephemerals(desk, 2)
    assert "You acknowledged the pages for 3 cases" in replies[1]
    assert f"Already acknowledged, left as they were: CS-{taken:05d} by <@{LEE}>" in replies[1]
    by_case = {e.case_id: e for e in desk.events("page_acknowledged")}
    assert sorted(by_case) == sorted(case_ids)  # one acknowledgement per page
    pages = {p.case_id: p for p in _pages(desk)}
    assert pages[taken].acknowledged_by == LEE
    assert {pages[i].acknowledged_by for i in case_ids if i != taken} == {ELI}
    [shown] = _page_dms(desk, ELI)
    text = json.dumps(shown["blocks"])
    assert "Acknowledged: 4 of 4" in text and f"<@{LEE}>" in text and f"<@{ELI}>" in text


def test_acknowledge_all_racing_a_single_acknowledge(desk: Desk) -> None:
    _race_single_and_all(desk)


# --- escalation -----------------------------------------------------------------------------


def test_an_unacknowledged_group_escalates_and_later_steps_group_too(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    case_ids = _storm(desk, 4)
    assert len(_page_dms(desk, ELI)) == 1
    # nobody acknowledges: after 5 minutes step 2 pages the secondary (Lee), after 10 the
    # leads (Lee again): each step reaches Lee as one DM for all four cases
    desk.run_worker(WED_0840 + timedelta(minutes=10))
    dms = _page_dms(desk, LEE)
    assert len(dms) == 2
    assert "for *4* Sev A cases (step 2 of 8)" in json.dumps(dms[0]["blocks"])
    assert "for *4* Sev A cases (step 3 of 8)" in json.dumps(dms[1]["blocks"])
    lee_rows = _dm_rows(desk, LEE)
    assert len(lee_rows) == 8 and all(r.status == "sent" for r in lee_rows)
    assert len([r for r in lee_rows if COALESCED_INTO not in r.payload]) == 2
    # Lee acknowledges all from the latest DM: the escalation stops for every case
    _click_all(desk, LEE, dms[1], owner=LEE)
    [reply] = _ephemerals(desk, 1)
    assert "You acknowledged the pages for 4 cases" in reply
    steps_before = len([m for m in desk.outbox() if m.kind == "page.notify"])
    desk.run_worker(WED_0840 + timedelta(minutes=40))
    assert len([m for m in desk.outbox() if m.kind == "page.notify"]) == steps_before
    assert {p.acknowledged_by for p in _pages(desk)} == {LEE}
    assert sorted(e.case_id for e in desk.events("page_acknowledged")) == sorted(case_ids)


# --- PostgreSQL: concurrent deliverers and acknowledgements ----------------------------------


def _race_single_and_all(desk: Desk) -> None:
    desk.clock.set(WED_0840)
    case_ids = _storm(desk, 5)
    [dm] = _page_dms(desk, ELI)
    contested = case_ids[2]
    page_id = next(p.id for p in _pages(desk) if p.case_id == contested)
    thread_post = next(
        c
        for c in desk.standin.calls("chat.postMessage")
        if c.args["channel"] == TRIAGE
        and f"CS-{contested:05d}" in json.dumps(c.args["blocks"])
        and "acknowledge_page" in json.dumps(c.args["blocks"])
    )
    single = desk.standin.message(TRIAGE, thread_post.response["ts"])
    assert _button(single, "acknowledge_page")["value"] == str(page_id)  # type: ignore[index]
    barrier = threading.Barrier(2)

    def press_all() -> None:
        barrier.wait()
        _click_all(desk, ELI, dm)

    def press_one() -> None:
        barrier.wait()
        desk.slack.click_in(LEE, single, "acknowledge_page", channel_id=TRIAGE)

    threads = [threading.Thread(target=press_all), threading.Thread(target=press_one)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    _ephemerals(desk, 2)
    events = desk.events("page_acknowledged")
    assert sorted(e.case_id for e in events) == sorted(case_ids)  # each page exactly once
    pages = {p.case_id: p for p in _pages(desk)}
    assert pages[contested].acknowledged_by in (ELI, LEE)
    assert {pages[i].acknowledged_by for i in case_ids if i != contested} == {ELI}


@pytest.mark.postgres
def test_postgres_acknowledge_all_racing_a_single_acknowledge(pg_desk: Desk) -> None:
    _race_single_and_all(pg_desk)


@pytest.mark.postgres
def test_postgres_concurrent_deliverers_send_each_page_once(pg_desk: Desk) -> None:
    desk = pg_desk
    desk.clock.set(WED_0840)
    count = 24
    with delivery_paused(desk):
        case_ids = [_sev_a(desk, f"Outage {n}") for n in range(count)]
    base = desk.service.desk.delivery
    deliverers = [
        OutboxDelivery(base.engine, base.client, base.rules, base.clock, channel_pace=0.02)
        for _ in range(4)
    ]
    barrier = threading.Barrier(len(deliverers) * 2)
    errors: list[BaseException] = []

    def run(deliverer: OutboxDelivery, case_id: int | None) -> None:
        try:
            barrier.wait()
            deliverer.deliver_pending(case_id=case_id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    # half deliver one case each (as after a request), half everything (as the worker)
    threads = [
        threading.Thread(target=run, args=(d, case_ids[n])) for n, d in enumerate(deliverers)
    ] + [threading.Thread(target=run, args=(d, None)) for d in deliverers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    base.deliver_pending()
    rows = _dm_rows(desk, ELI)
    assert len(rows) == count and all(r.status == "sent" for r in rows)
    dms = _page_dms(desk, ELI)
    listed = Counter(
        n for dm in dms for n in (f"CS-{i:05d}" for i in case_ids) if n in json.dumps(dm)
    )
    assert listed == Counter({f"CS-{i:05d}": 1 for i in case_ids})  # none lost, none twice
    assert len(dms) == len([r for r in rows if COALESCED_INTO not in r.payload]) < count


# --- no page left behind by the request-time deliveries alone ---------------------------


def _pages_go_out_without_a_worker(desk: Desk) -> None:
    # Sev A cases opened one after another while Slack is slow, so that each case's own
    # delivery (the pump, after the request) meets another one sending Eli's pages and
    # leaves its page to that holder (10 pages arrive in one or two DMs). No worker pass
    # and no extra delivery call here: every page must still reach Eli, once, from the
    # request-time deliveries alone.
    desk.standin.delay("chat.postMessage", 0.15)
    case_ids = []
    for n in range(10):
        desk.clock.set(WED_0840 + timedelta(seconds=10 * n))  # the desk's time goes on
        case_ids.append(_sev_a(desk, f"Outage {n}"))
    desk.settle(timeout=60)
    desk.standin.delay("chat.postMessage", 0)
    rows = _dm_rows(desk, ELI)
    assert len(rows) == len(case_ids)
    assert [r.status for r in rows] == ["sent"] * len(case_ids)
    listed = Counter(
        n
        for dm in _page_dms(desk, ELI)
        for n in (f"CS-{i:05d}" for i in case_ids)
        if n in json.dumps(dm)
    )
    assert listed == Counter({f"CS-{i:05d}": 1 for i in case_ids})  # none lost, none twice


def test_no_page_waits_for_the_worker(desk: Desk) -> None:
    _pages_go_out_without_a_worker(desk)


@pytest.mark.postgres
def test_postgres_no_page_waits_for_the_worker(pg_desk: Desk) -> None:
    _pages_go_out_without_a_worker(pg_desk)
