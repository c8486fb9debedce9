"""The worker side as real processes on a real PostgreSQL: `chatops tick` and `chatops worker`
racing each other, killed mid-delivery, meeting Slack's 429/500, keeping Slack's pace, and
`chatops outbox status` reporting what is parked.

The state is created in-process with the core API (the same calls the intake modal makes),
which enqueues the outbox rows; none is delivered in-process — only the processes under test
talk to the Slack stand-in running in this test process.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from chatops.cases.intake import IntakeForm
from chatops.cases.notices import CARD, REQUESTER_NOTICE, UPDATE_REMINDER
from chatops.cases.service import open_case
from chatops.db import make_engine
from chatops.policy import SupportRules, load_policy
from chatops.standin import SlackStandIn
from models import Case, OutboxMessage
from tests.conftest import INTAKE_DEFAULTS, ROOT, ROSTER, SECRET, TRIAGE, identity, posts, texts
from tests.postgres import fresh_database

pytestmark = pytest.mark.postgres

HANDOFF_CHANNEL = "C0HANDOFF"
# Wednesday 25 Nov 2026, 08:40 in Beijing (00:40 UTC): 20 minutes before the 09:00 handoff.
LEASE_SECONDS = 15  # CHATOPS_DELIVERY_LEASE_SECONDS for the processes of these tests
T0 = datetime(2026, 11, 25, 0, 40, tzinfo=UTC)
PROCESS_TIMEOUT = 60.0


# ------------------------------------------------------------------------------ the world


class ArrivalStandIn(SlackStandIn):
    """The stand-in, plus an event set when a chat.postMessage *arrives*.

    The stand-in sleeps its `delay` before it handles and records a call, so `calls()` only
    shows a delayed call once it is over (just before the answer goes back). To kill a
    process while it waits for Slack's answer, this hook (on the private `_delay_for`, which
    runs as the request arrives, before the sleep) tells us the request is in flight.
    """

    def __init__(self) -> None:
        super().__init__()
        self.post_arrived = threading.Event()

    def _delay_for(self, method: str) -> float:
        if method == "chat.postMessage":
            self.post_arrived.set()
        return super()._delay_for(method)


@dataclass
class World:
    url: str
    engine: Engine
    rules: SupportRules
    standin: ArrivalStandIn
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def env(self, pace: float = 0.0) -> dict[str, str]:
        return {
            **os.environ,
            "SLACK_BOT_TOKEN": self.standin.bot_token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": self.standin.api_url,
            "DATABASE_URL": self.url,
            "CHATOPS_CHANNEL_PACE_SECONDS": str(pace),
            # leases are wall-clock time; short here so the crash test need not wait 60 s
            "CHATOPS_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
        }

    def start(self, *args: str, pace: float = 0.0) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "chatops.cli", *args],
            env=self.env(pace),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.processes.append(process)
        return process

    def tick(self, at: datetime, pace: float = 0.0) -> subprocess.Popen[str]:
        return self.start("tick", "--at", at.isoformat(), pace=pace)

    def outbox(self) -> list[OutboxMessage]:
        with Session(self.engine) as session:
            return list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all())  # type: ignore[arg-type]

    def cases(self) -> list[Case]:
        with Session(self.engine) as session:
            return list(session.exec(select(Case).order_by(Case.id)).all())  # type: ignore[arg-type]

    def open(self, who: str, at: datetime, **values: Any) -> Case:
        fields: dict[str, Any] = {
            **INTAKE_DEFAULTS,
            "phone": "+86 10 5555 0101",
            "email": "alice@contoso.example",
            **values,
        }
        if fields["severity"] == "A":
            fields.setdefault("business_impact", "Nobody in the company can send mail")
            fields.setdefault("available_contact", "Alice, +86 10 5555 0101, all day")
        return open_case(self.engine, who, IntakeForm(**fields), self.rules, at)


def finish(process: subprocess.Popen[str], timeout: float = PROCESS_TIMEOUT) -> str:
    """Wait (bounded) for a process; return its stdout; fail with its stderr if it failed."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=10)
        raise AssertionError(
            f"{process.args} did not finish in {timeout}s:\n{err[-3000:]}"
        ) from None
    assert process.returncode == 0, f"{process.args} exited {process.returncode}:\n{err[-3000:]}"
    return out


def run_tick(world: World, at: datetime, pace: float = 0.0) -> dict[str, int]:
    return tick_report(finish(world.tick(at, pace)))


def tick_report(out: str) -> dict[str, int]:
    """`warnings 0, breaches 0, ..., gaps 0; delivered 14.` -> {"warnings": 0, ...}"""
    line = out.strip().splitlines()[-1]
    report = {name.strip(): int(n) for name, n in re.findall(r"([a-z][a-z ]*?) (\d+)", line)}
    assert "delivered" in report and "warnings" in report, out
    return report


def race(world: World, at: datetime, processes: int = 2, pace: float = 0.0) -> list[dict]:
    """Run `processes` ticks as of `at` that start their sweeps at the same moment.

    Start-up (imports) takes each process a varying second; to make them really race, this
    holds an exclusive lock on the case table until every one of them is blocked on it (their
    first sweep reads it), then lets them all go at once.
    """
    started: list[subprocess.Popen[str]] = []
    with world.engine.connect() as conn, conn.begin():
        conn.exec_driver_sql('LOCK TABLE "case" IN ACCESS EXCLUSIVE MODE')
        started = [world.tick(at, pace) for _ in range(processes)]
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while time.monotonic() < deadline:
            waiting = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE NOT granted "
                "AND relation = '\"case\"'::regclass"
            ).scalar_one()
            if waiting >= processes or any(p.poll() is not None for p in started):
                break  # all at the barrier (or one died: `finish` shows why)
            time.sleep(0.02)
    return [tick_report(finish(p)) for p in started]


@pytest.fixture
def world(postgres_server: str) -> Iterator[World]:
    url = fresh_database(postgres_server)
    standin = ArrivalStandIn().start()
    engine = make_engine(url)
    state = World(url, engine, load_policy(), standin)
    try:
        # The schema and the roster the operator's way, by the same code the processes run.
        # (One process first: `create_schema` is not safe to race on an empty database.)
        subprocess.run(
            [sys.executable, "-m", "chatops.cli", "load", str(ROSTER)],
            env=state.env(),
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=PROCESS_TIMEOUT,
        )
        yield state
    finally:
        for process in state.processes:  # only the processes this test started
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        standin.stop()
        engine.dispose()


# ------------------------------------------------------------------------------ reading Slack


def assert_all_sent(world: World) -> list[OutboxMessage]:
    rows = world.outbox()
    assert rows
    statuses = Counter(r.status for r in rows)
    assert statuses == {"sent": len(rows)}, [
        (r.key, r.status, r.attempts, r.last_error) for r in rows if r.status != "sent"
    ]
    return rows


# ------------------------------------------------------------------------------ 1. racing


# Minutes after T0 (08:40 Beijing, Wed). A sweep takes one escalation step per page (the next
# is due 5 minutes after it), so the 8 steps after the first are taken at +5, +10, +20, +45,
# +60, +120, +380 and +500 (the last is "exhausted"). Also crossed: the 09:00 handoff (+20),
# the Sev A warning (+45) and breach (+60), the downgrade offer (+120), update reminders, the
# billing Sev B warning (15:00 Beijing, +380) and breach (17:00, +500), the technical Sev B
# warnings (22:00, +800) and breaches (24:00, +920), Thursday's 09:00 handoff (+1460), +26 h.
RACE_MINUTES = [0, 5, 10, 20, 45, 60, 120, 380, 500, 800, 920, 1460, 1560]


@pytest.mark.timeout(300)  # 26 process starts: generous for a loaded machine (~15 s idle)
def test_two_processes_ticking_the_same_instants_send_everything_exactly_once(
    world: World,
) -> None:
    cases = [
        world.open("U0ALICE", T0, severity="A"),  # pages on-call at once
        world.open("U0ALICE", T0, severity="B"),  # technical: due 24:00 Beijing
        world.open("U0HELEN", T0, severity="C"),  # due Friday: no notice within the day
        world.open("U0BILL", T0, category="billing", topic="invoice"),  # due 17:00 Beijing
        world.open("U0FRANK", T0, severity="B"),
        world.open("U0FRANK", T0, severity="C"),
    ]
    number = {c.severity + str(i): c.number for i, c in enumerate(cases)}
    # Every Slack call takes a little while, so the two processes' deliveries overlap.
    world.standin.delay("*", 0.01)

    totals: Counter[str] = Counter()
    both_delivered = 0
    started = time.monotonic()
    for minutes in RACE_MINUTES:
        at = T0 + timedelta(minutes=minutes)
        reports = race(world, at)
        for report in reports:
            totals.update(report)
        both_delivered += all(r["delivered"] for r in reports)
    elapsed = time.monotonic() - started
    print(
        f"{len(RACE_MINUTES)} instants x 2 processes in {elapsed:.1f}s; both delivered at "
        f"{both_delivered} instant(s); totals {dict(totals)}"
    )

    # The database: every row went out, and each was counted as sent by exactly one process.
    assert both_delivered, "the two processes never delivered at the same instant"
    rows = assert_all_sent(world)
    assert totals["delivered"] == len(rows)
    kinds = Counter(r.kind for r in rows)

    # Each sweep's claim was won once across both processes.
    assert totals["warnings"] == 4  # Sev A, billing Sev B, two technical Sev B
    assert totals["breaches"] == 4
    assert totals["page steps"] == 8  # steps 2..8 of the escalation, then "exhausted"
    assert totals["handoffs"] == 2  # primary: Wed 09:00 and Thu 09:00 Beijing
    assert totals["downgrade offers"] == 1
    assert totals["reminders"] == kinds[UPDATE_REMINDER] >= 3
    assert totals["gaps"] == 0

    # Slack: no message twice. The hourly update reminder says the same thing every hour by
    # design, so it is counted against its rows instead.
    sent = posts(world.standin)
    reminders = [c for c in sent if c.args["text"].startswith(":hourglass:")]
    assert len(reminders) == kinds[UPDATE_REMINDER]
    seen = Counter(identity(c) for c in sent if c not in reminders)
    twice = {k[:3]: n for k, n in seen.items() if n > 1}
    assert not twice, f"sent more than once: {twice}"

    # ...and everything expected is there.
    triage = posts(world.standin, TRIAGE)
    cards = [c for c in triage if c.args.get("thread_ts") is None]
    assert sorted(texts(cards)) == sorted(
        f"{c.number} Sev {c.severity} from {org}: {c.title}"
        for c, org in zip(
            cases,
            ["Contoso Trading Co."] * 4 + ["Fabrikam Design"] * 2,
            strict=True,
        )
    )
    assert kinds[CARD] == 6 and kinds[REQUESTER_NOTICE] == 6
    dms = [c for c in sent if str(c.args["channel"]).startswith("D")]
    assert sum("is open." in t for t in texts(dms)) == 6

    sev_a = cases[0]
    in_thread = [c for c in triage if c.args.get("thread_ts") is not None]
    thread_texts = texts(in_thread)
    for step in range(1, 9):
        [page] = [t for t in thread_texts if f"(step {step} of 8) for *{sev_a.number}*" in t]
        assert page.startswith(":rotating_light: Paging ")
    assert "Paging <@U0AGENT2> (step 1 of 8)" in " ".join(thread_texts)  # Eli until 09:00
    assert "Paging <@U0LEAD> (step 2 of 8)" in " ".join(thread_texts)  # secondary this week
    assert sum(t.startswith(":rotating_light: Nobody acknowledged") for t in thread_texts) == 1
    assert sum(f"You are paged (step 1 of 8): *{sev_a.number}*" in t for t in texts(dms)) == 1
    assert sum(f"You are paged (step 2 of 8): *{sev_a.number}*" in t for t in texts(dms)) == 1

    for key in ("A0", "B1", "B3", "B4"):
        warned = [t for t in thread_texts if t.startswith(f":warning: *{number[key]}*")]
        breached = [t for t in thread_texts if t.startswith(f":rotating_light: *{number[key]}*")]
        assert len(warned) == 1 and "about to miss" in warned[0], (key, warned)
        assert len(breached) == 1 and "missed its first-response" in breached[0], (key, breached)
    for key in ("C2", "C5"):
        assert not [t for t in thread_texts if number[key] in t], key
    assert sum("has not responded since" in t for t in thread_texts) == 1  # downgrade offer

    handoffs = posts(world.standin, HANDOFF_CHANNEL)
    assert texts(handoffs) == ["Shift handoff: primary", "Shift handoff: primary"]
    assert "<@U0AGENT2>" in json.dumps(handoffs[0].args["blocks"])  # Eli -> Dana on Wed
    handoff_dms = [c for c in dms if c.args["text"] == "Shift handoff: primary"]
    assert sorted(c.args["channel"] for c in handoff_dms) == ["DU0AGENT1", "DU0AGENT2"]


# ------------------------------------------------------------------------------ 2. SIGKILL


@pytest.mark.parametrize("runner", ["worker", "tick"])
def test_a_process_killed_mid_delivery_loses_nothing(world: World, runner: str) -> None:
    """What this proves: a deliverer SIGKILLed while Slack is answering its post (after the
    request reached Slack, before the answer, so before it could record the send) loses
    nothing. The row it held stays leased: a restart within the lease leaves it (and its
    lane, to keep the thread in order) alone and delivers everything else; a restart after
    the lease sends it again. The only message that reaches Slack twice is that one in-flight
    post — the documented duplicate window; the stand-in, like Slack, completes a request
    whose client has gone, so here it is exactly twice. Everything else arrives exactly once.
    """
    # The worker runs on the real clock; a tick runs as of the instant it is given.
    start = datetime.now(UTC).replace(microsecond=0) if runner == "worker" else T0
    cases = [
        world.open("U0ALICE", start, severity="A"),
        world.open("U0ALICE", start, severity="B"),
        world.open("U0FRANK", start, severity="C"),
    ]
    world.standin.delay("chat.postMessage", 2.0)
    victim = world.start("worker") if runner == "worker" else world.tick(start)
    assert world.standin.post_arrived.wait(timeout=30), "no chat.postMessage reached Slack"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    assert victim.returncode == -signal.SIGKILL
    world.standin.delay("chat.postMessage", 0)

    killed_at = time.monotonic()
    assert posts(world.standin) == []  # Slack has not answered the in-flight post yet
    [held] = [r for r in world.outbox() if r.lease_owner is not None]
    assert held.status == "pending" and held.key == f"{cases[0].id}:card"

    card_text = f"{cases[0].number} Sev A from Contoso Trading Co.: {cases[0].title}"
    in_flight = (TRIAGE, None, card_text)

    # Within the lease: everything but the held row's lane goes out.
    run_tick(world, start + timedelta(seconds=30))
    rows = {r.key: r for r in world.outbox()}
    assert rows[held.key].status == "pending"
    assert rows["page:1:0:thread"].status == "pending"  # behind the card in its lane
    assert all(
        r.status == "sent" for k, r in rows.items() if k not in (held.key, "page:1:0:thread")
    )
    # Slack now answers the in-flight post (it accepted it; the killed process never hears
    # of it), and the restarted tick did not post that card again while the lease held.
    world.standin.wait_for("chat.postMessage", lambda c: c.args["text"] == card_text, timeout=10)
    assert texts(posts(world.standin, TRIAGE)).count(card_text) == 1
    assert next(r for r in world.outbox() if r.key == held.key).status == "pending"

    # After the lease (wall clock): the held row is sent again, and its lane follows.
    time.sleep(max(0.0, LEASE_SECONDS + 1 - (time.monotonic() - killed_at)))
    run_tick(world, start + timedelta(minutes=2))
    rows_after = assert_all_sent(world)

    sent = posts(world.standin)
    seen = Counter(identity(c, with_blocks=False) for c in sent)
    assert seen.pop(in_flight) == 2
    assert all(n == 1 for n in seen.values()), seen
    # Every expected message at least once: each card, each requester DM, page step 1.
    triage = posts(world.standin, TRIAGE)
    for case in cases:
        assert any(t.startswith(f"{case.number} Sev ") for t in texts(triage)), case.number
        assert f"Your case {case.number} is open." in texts(sent)
    [page_thread] = [c for c in triage if "(step 1 of 8)" in c.args["text"]]
    with Session(world.engine) as session:
        card_ts = session.get(Case, cases[0].id).card_ts  # type: ignore[union-attr]
    assert page_thread.args["thread_ts"] == card_ts  # in the thread of the card on record
    assert any("You are paged (step 1 of 8)" in t for t in texts(sent))
    # Each row's message reached Slack (the skipped refreshes aside, none here).
    assert len(sent) == len(rows_after) + 1


# ------------------------------------------------------------------------------ 3. 429, 500


def test_429_then_500_is_delivered_later_and_once(world: World) -> None:
    case = world.open("U0ALICE", T0)
    # Retry-After is Slack's real time: the channel is held that long on the wall clock
    # (whatever the drill's clock says), so it is short here.
    world.standin.fail_next("chat.postMessage", status=429, retry_after=1)

    assert run_tick(world, T0)["delivered"] == 1  # the requester's DM; the card met the 429
    card = next(r for r in world.outbox() if r.kind == CARD)
    assert (card.status, card.attempts) == ("pending", 0)  # a wait, not a failed attempt
    assert card.next_attempt_at == T0 + timedelta(seconds=1)
    # Queued now, so that it meets the card's retry (not the DM of the first tick).
    world.standin.fail_next("chat.postMessage", status=500)

    assert run_tick(world, T0 + timedelta(milliseconds=500))["delivered"] == 0  # Retry-After
    attempts = [c for c in world.standin.calls("chat.postMessage") if c.args["channel"] == TRIAGE]
    assert [c.status for c in attempts] == [429]

    assert run_tick(world, T0 + timedelta(seconds=40))["delivered"] == 0  # the 500
    card = next(r for r in world.outbox() if r.kind == CARD)
    assert (card.status, card.attempts) == ("pending", 1)
    assert "internal_error" in (card.last_error or "")

    assert run_tick(world, T0 + timedelta(minutes=2))["delivered"] == 1
    attempts = [c for c in world.standin.calls("chat.postMessage") if c.args["channel"] == TRIAGE]
    assert [c.status for c in attempts] == [429, 500, 200]
    assert texts(posts(world.standin, TRIAGE)) == [
        f"{case.number} Sev B from Contoso Trading Co.: {case.title}"
    ]
    card = next(r for r in world.outbox() if r.kind == CARD)
    assert (card.status, card.attempts, card.sent_at) == ("sent", 1, T0 + timedelta(minutes=2))
    assert_all_sent(world)
    assert run_tick(world, T0 + timedelta(minutes=10))["delivered"] == 0
    assert len(posts(world.standin, TRIAGE)) == 1


# ------------------------------------------------------------------------------ 4. pace


def test_posts_to_one_channel_keep_slacks_pace_across_processes(world: World) -> None:
    cases = [world.open(who, T0) for who in ("U0ALICE", "U0HELEN", "U0BILL", "U0FRANK")]
    delivered = sum(r["delivered"] for r in race(world, T0, pace=1.0))
    assert delivered == 8  # 4 cards, 4 requester DMs
    cards = posts(world.standin, TRIAGE)
    assert sorted(t.split(" ")[0] for t in texts(cards)) == [c.number for c in cases]
    # WebApiCall.at is time.time() (wall clock), stamped as the request arrives.
    stamps = [c.at for c in cards]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    print(f"posts to {TRIAGE} apart by {[round(g, 3) for g in gaps]}s")
    assert all(gap >= 0.9 for gap in gaps), gaps


# ------------------------------------------------------------------------------ outbox status


def test_outbox_status_lists_parked_rows_and_exits_1(world: World) -> None:
    case = world.open("U0ALICE", T0)

    status = subprocess.run(
        [sys.executable, "-m", "chatops.cli", "outbox", "status"],
        env=world.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )
    assert status.returncode == 0, status.stderr
    assert "pending 2, sent 0, parked 0" in status.stdout
    assert "PARKED" not in status.stdout
    # the age as a person reads it: "8 d 11 h", not "8 days, 11:41:07.529326"
    [age] = [line for line in status.stdout.splitlines() if line.startswith("oldest pending")]
    units = r"\d+ d \d+ h|\d+ h \d+ min|\d+ min \d+ s|\d+ s"
    assert re.fullmatch(rf"oldest pending: ({units}) old", age), age

    world.standin.fail_next("chat.postMessage", error="channel_not_found")
    run_tick(world, T0)
    status = subprocess.run(
        [sys.executable, "-m", "chatops.cli", "outbox", "status"],
        env=world.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )
    assert status.returncode == 1, status.stdout + status.stderr
    assert "pending 0, sent 1, parked 1" in status.stdout
    [parked] = [line for line in status.stdout.splitlines() if line.startswith("PARKED")]
    assert parked.startswith(f"PARKED {case.id}:card (case.card) after ")
    # The reason (str of the SlackApiError) runs onto the next line of the report.
    assert "'error': 'channel_not_found'" in status.stdout


def test_tick_reads_an_instant_without_an_offset_in_the_support_time_zone(world: World) -> None:
    """`chatops tick --at 2026-11-25T08:41` is 08:41 in Beijing (the policy's support time
    zone), as `report --until` and `/support oncall override` read such a time."""
    world.open("U0ALICE", T0)  # 08:40 Beijing
    finish(world.start("tick", "--at", "2026-11-25T08:41"))
    card = next(r for r in world.outbox() if r.kind == CARD)
    assert (card.status, card.sent_at) == ("sent", T0 + timedelta(minutes=1))


# ------------------------------------------------------------------------------ 6. outages


def test_a_worker_says_once_that_the_database_is_down_and_carries_on_when_it_is_back(
    world: World, tmp_path: Any
) -> None:
    """The database refuses the worker's connections for a few seconds (a restart, a
    failover): one ERROR line says so, not a traceback from every pass of every job, and the
    worker delivers again once the database answers."""
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "-m", "chatops.cli", "worker"],
            env={**world.env(), "CHATOPS_SWEEP_SECONDS": "1"},
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
    name = world.url.rsplit("/", 1)[1]
    admin = make_engine(world.url.rsplit("/", 1)[0] + "/postgres")

    def wait_sent(case: Case) -> None:
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while not all(r.status == "sent" for r in world.outbox() if r.case_id == case.id):
            assert worker.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the worker delivered nothing"
            time.sleep(0.2)

    try:
        wait_sent(world.open("U0ALICE", datetime.now(UTC)))  # the worker is at work
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                f"WHERE datname = '{name}'"
            )
            conn.commit()
        world.engine.dispose()  # its connections are gone
        time.sleep(4)  # a few delivery passes and sweeps meet the closed door
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            conn.commit()
        wait_sent(world.open("U0ALICE", datetime.now(UTC)))  # and at work again
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        admin.dispose()
    log = log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
    down = [line for line in log.splitlines() if " ERROR " in line]
    assert len(down) == 1, down
    assert "the database could not be reached" in down[0], down
    assert sum("the database answers again" in line for line in log.splitlines()) == 1, log


def test_a_worker_at_the_default_log_level_logs_its_work_not_every_pass(
    world: World, tmp_path: Any
) -> None:
    """At INFO (the default) the worker says what it did (delivered, swept), not
    APScheduler's two lines for each of its passes: about 170,000 lines a day."""
    log_path = tmp_path / "worker.log"
    case = world.open("U0ALICE", datetime.now(UTC))
    env = {k: v for k, v in world.env().items() if k != "CHATOPS_LOG_LEVEL"}
    with log_path.open("w") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "-m", "chatops.cli", "worker"],
            env={**env, "CHATOPS_SWEEP_SECONDS": "1"},
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while not all(r.status == "sent" for r in world.outbox() if r.case_id == case.id):
            assert worker.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the worker delivered nothing"
            time.sleep(0.2)
        time.sleep(2.5)  # a few more passes with nothing to do
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    log = log_path.read_text()
    assert "delivered" in log and "worker started" in log, log
    assert "Running job" not in log and "executed successfully" not in log, log[-3000:]
