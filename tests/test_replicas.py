"""Replicas: several `chatops serve` processes behind a round-robin balancer and two
`chatops worker` processes on one PostgreSQL, all living at the instant of one drill clock
file (CHATOPS_CLOCK_FILE), driven through a simulated day by the Slack stand-in running in
this test process.

The day, in Beijing time, from Wednesday 25 Nov 2026 08:30 to Thursday 09:30:

- 08:30 four admins of two organisations open eight cases at once through the intake modal
  (Sev A, B and C; technical and billing); a non-admin and a partner-only admin are refused.
  Both Sev A cases page Eli.
- 08:31 both agents click Claim on five of the cards at the same moment, each through a
  different serve process (claiming one Sev A case acknowledges its page; it is resolved).
- 08:35 the other Sev A page escalates to its second step; 08:37 two agents acknowledge it at
  once.
- 09:00 shift handoff (primary: Eli -> Dana).
- 09:10 the owners change two severities from the cards: B -> A (a second page: Dana, then
  Lee at 09:15, Lee and Dana acknowledging at once at 09:16) and C -> B.
- 09:15 .. 11:00 Sev A warnings, a reply in time and a breach, hourly update reminders,
  a downgrade offer; at 11:00 three resolves and a reply.
- 15:00 / 17:00 the unclaimed billing case is warned and breaches; 22:00 / 24:00 the
  unclaimed technical Sev B and the one raised to B are warned and breach.
- Thursday 09:00 shift handoff (primary: Dana -> Eli).

After each step the test waits (bounded) until a worker has swept as of the new instant and
nothing due is pending in the outbox. Then it checks the invariants: each acknowledged
submission is one case; one owner and one claim event per claimed case; every outbox row
sent, each as exactly one Slack call, none twice; Slack's pace per channel; and the notices
the day should have produced, counted by outbox kind.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from chatops.cases.notices import (
    CARD,
    CARD_REFRESH,
    DOWNGRADE_OFFER,
    HANDOFF,
    ONCALL_GAP,
    PAGE,
    PAGE_ACKNOWLEDGED,
    REQUESTER_NOTICE,
    SLA_BREACH,
    SLA_WARNING,
    UPDATE_REMINDER,
)
from chatops.clock import FileClock
from chatops.db import make_engine
from chatops.standin import Response, SlackSender, SlackStandIn, WebApiCall
from handlers.blocks import STATUS_LABELS
from models import Case, CaseEvent, OutboxMessage, Person, SweepMark
from tests.conftest import ROOT, ROSTER, SECRET, TRIAGE, identity, posts
from tests.postgres import _free_port, fresh_database

pytestmark = pytest.mark.postgres

BEIJING = ZoneInfo("Asia/Shanghai")
HANDOFF_CHANNEL = "C0HANDOFF"
SERVE_PROCESSES = 3
WORKER_PROCESSES = 2
# Small enough to keep the day short, large enough that posts bunched up by the processes
# racing each other would show in the gaps the stand-in records.
PACE_SECONDS = 0.2
PACE_JITTER = 0.12
LEASE_SECONDS = 15
START_TIMEOUT = 90.0  # imports and gunicorn's fork on a busy 2-core machine
SETTLE_TIMEOUT = 45.0
SLACK_TIMEOUT = 20.0

DANA, ELI, LEE = "U0AGENT1", "U0AGENT2", "U0LEAD"
AGENTS = (DANA, ELI)

T = TypeVar("T")


def beijing(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant of the simulated day, given in Beijing time (November 2026)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=BEIJING).astimezone(UTC)


def wait_until(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    """Poll `probe` until it returns something other than None/False; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


# ------------------------------------------------------------------------------ processes


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


def stop_processes(processes: list[Process]) -> None:
    """SIGTERM each process this test started, then SIGKILL its process group (a serve's
    gunicorn workers are in it) if it has not gone within the grace time."""
    for process in processes:
        if process.popen.poll() is None:
            process.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        # Each was started in its own session, so its process group id is its PID.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=10)


def print_logs(processes: list[Process], lines: int = 40) -> None:
    for process in processes:
        text = process.log.read_text(errors="replace") if process.log.exists() else ""
        # The scheduler logs every run of its jobs; what went wrong is in the other lines.
        kept = [line for line in text.splitlines() if "apscheduler" not in line]
        tail = "\n".join(kept[-lines:])
        print(f"----- {process.name} (exit {process.popen.poll()}) {process.log}\n{tail}")


# ------------------------------------------------------------------------------ the replicas


class Balancer:
    """Spreads requests over the serve processes in turn, like a load balancer would."""

    def __init__(self, senders: list[SlackSender]) -> None:
        self.senders = senders
        self._turn = itertools.count()

    def next(self) -> SlackSender:
        return self.senders[next(self._turn) % len(self.senders)]


@dataclass
class Replicas:
    url: str
    engine: Engine
    standin: SlackStandIn
    clock_file: Path
    logs: Path
    processes: list[Process] = field(default_factory=list)
    balancer: Balancer | None = None
    now: datetime = field(default_factory=lambda: beijing(25, 8, 30))

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SLACK_BOT_TOKEN": self.standin.bot_token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": self.standin.api_url,
            "DATABASE_URL": self.url,
            "CHATOPS_CLOCK_FILE": str(self.clock_file),
            "CHATOPS_SWEEP_SECONDS": "1",
            "CHATOPS_CHANNEL_PACE_SECONDS": str(PACE_SECONDS),
            "CHATOPS_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
        }

    def start(self, name: str, *args: str) -> Process:
        log = self.logs / f"{name}.log"
        with log.open("wb") as sink:
            popen = subprocess.Popen(
                [sys.executable, "-m", "chatops.cli", *args],
                env=self.env(),
                cwd=ROOT,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    @property
    def lb(self) -> Balancer:
        assert self.balancer is not None
        return self.balancer

    def sender(self, index: int) -> SlackSender:
        senders = self.lb.senders
        return senders[index % len(senders)]

    # -------------------------------------------------------------- time

    def advance(self, instant: datetime) -> None:
        """Move every process to `instant`, then wait until the day has caught up with it."""
        assert instant >= self.now
        FileClock.write(self.clock_file, instant)
        self.now = instant
        self.settle()

    def settle(self) -> None:
        """Wait until a worker's sweeps have run as of now (the handoff sweep, the last of
        them to write its mark, has looked up to now) and nothing due is still pending."""

        def caught_up() -> bool:
            with Session(self.engine) as session:
                mark = session.get(SweepMark, "handoff")
                pending = session.exec(
                    select(func.count()).where(
                        OutboxMessage.status == "pending",
                        OutboxMessage.next_attempt_at <= self.now,  # type: ignore[operator]
                    )
                ).one()
                parked = session.exec(
                    select(OutboxMessage).where(OutboxMessage.status == "parked")
                ).all()
            assert not parked, [(r.key, r.attempts, r.last_error) for r in parked]
            return mark is not None and mark.swept_until >= self.now and pending == 0

        wait_until(f"the outbox to drain at {self.now.isoformat()}", caught_up, SETTLE_TIMEOUT)

    # -------------------------------------------------------------- the database

    def cases(self) -> list[Case]:
        with Session(self.engine) as session:
            return list(session.exec(select(Case).order_by(Case.id)).all())  # type: ignore[arg-type]

    def case(self, title: str) -> Case:
        [case] = [c for c in self.cases() if c.title == title]
        return case

    def outbox(self) -> list[OutboxMessage]:
        with Session(self.engine) as session:
            return list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all())  # type: ignore[arg-type]

    def events(self, kind: str) -> list[CaseEvent]:
        with Session(self.engine) as session:
            return list(session.exec(select(CaseEvent).where(CaseEvent.kind == kind)).all())

    def owner(self, case: Case) -> str | None:
        with Session(self.engine) as session:
            fresh = session.get(Case, case.id)
            assert fresh is not None
            if fresh.assignee_id is None:
                return None
            person = session.get(Person, fresh.assignee_id)
            assert person is not None
            return person.slack_user_id

    # -------------------------------------------------------------- Slack

    def card(self, case: Case) -> dict[str, Any]:
        """The case card as the triage channel shows it now (once its post is recorded)."""

        def posted() -> str | None:
            with Session(self.engine) as session:
                fresh = session.get(Case, case.id)
                return fresh.card_ts if fresh else None

        ts = wait_until(f"the card of {case.number}", posted, SLACK_TIMEOUT)
        return self.standin.message(TRIAGE, ts)

    def modal(self, user: str, response: Response) -> dict[str, Any]:
        """The modal a click opened (views.open with the click's trigger id)."""
        self.standin.wait_for(
            "views.open",
            lambda c: c.args.get("trigger_id") == response.trigger_id,
            timeout=SLACK_TIMEOUT,
        )
        view = self.standin.open_view(user)
        assert view is not None, f"no modal open for {user}"
        return view

    def thread_post(self, case: Case, needle: str) -> dict[str, Any]:
        """The message in the case card's thread whose text contains `needle`."""
        [call] = self.standin.wait_for(
            "chat.postMessage",
            lambda c: (
                c.ok
                and c.args["channel"] == TRIAGE
                and c.args.get("thread_ts") is not None
                and case.number in c.args["text"]
                and needle in c.args["text"]
            ),
            timeout=SLACK_TIMEOUT,
        )
        return self.standin.message(TRIAGE, call.response["ts"])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture
def replicas(
    postgres_server: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Replicas]:
    failed_before = request.session.testsfailed
    url = fresh_database(postgres_server)
    # A connection per call, as before the desk kept its connections to Slack open: the
    # pace check below compares arrival stamps with 0.12 s to spare, and with kept
    # connections, on a loaded machine, the first post of a burst on a connection just
    # opened was seen arriving up to ~0.3 s after its slot while the next ones came on
    # time (4 of 9 runs under load, 0 of 6 without; not yet explained, see README).
    standin = SlackStandIn(keep_alive=False).start()
    # Every Slack call takes a little while, so deliveries by the serve processes' pumps and
    # by the two workers overlap.
    standin.delay("*", 0.01)
    for uid, name, tz in [
        ("U0ALICE", "alice", "Asia/Shanghai"),
        ("U0BILL", "bill", "Asia/Shanghai"),
        ("U0HELEN", "helen", "Asia/Shanghai"),
        ("U0FRANK", "frank", "Europe/London"),
        ("U0NORA", "nora", "Asia/Shanghai"),
        ("U0CARL", "carl", "Asia/Shanghai"),
        (DANA, "dana", "Asia/Shanghai"),
        (ELI, "eli", "Asia/Shanghai"),
        (LEE, "lee", "Asia/Shanghai"),
    ]:
        standin.add_user(uid, name=name, tz=tz)
    engine = make_engine(url)
    logs = tmp_path / "logs"
    logs.mkdir()
    world = Replicas(url, engine, standin, tmp_path / "clock", logs)
    FileClock.write(world.clock_file, world.now)
    try:
        # The schema and the roster the operator's way, before anything races to create them.
        subprocess.run(
            [sys.executable, "-m", "chatops.cli", "load", str(ROSTER)],
            env=world.env(),
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT,
        )
        urls = []
        for n in range(SERVE_PROCESSES):
            port = _free_port()
            world.start(
                f"serve-{n}",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--threads",
                "4",
            )
            urls.append(f"http://127.0.0.1:{port}")
        for n in range(WORKER_PROCESSES):
            world.start(f"worker-{n}", "worker")
        for n, base in enumerate(urls):

            def up(base: str = base, n: int = n) -> bool:
                assert world.processes[n].popen.poll() is None, f"serve-{n} exited"
                return _healthy(base)

            wait_until(f"serve-{n} at {base}", up, START_TIMEOUT)
        world.balancer = Balancer(
            [SlackSender(base + "/slack/events", SECRET, standin) for base in urls]
        )
        world.settle()  # the workers are sweeping
        yield world
    finally:
        stop_processes(world.processes)
        # The call phase's report is in by now: show the processes' logs if it failed.
        if request.session.testsfailed > failed_before:
            print_logs(world.processes)
        standin.stop()
        engine.dispose()


# ------------------------------------------------------------------------------ reading Slack


def is_page_dm(call: WebApiCall) -> bool:
    # Recognised by its button (acknowledge_page, or acknowledge_pages when several pages
    # are told in one DM), not by its wording.
    return str(call.args["channel"]).startswith("D") and "acknowledge_page" in json.dumps(
        call.args.get("blocks")
    )


def ephemeral_texts(standin: SlackStandIn, user: str) -> list[str]:
    return [str(e.get("text")) for e in standin.ephemerals(user)]


# ------------------------------------------------------------------------------ the front door


@dataclass(frozen=True)
class Intake:
    who: str
    title: str
    severity: str
    category: str = "technical"
    topic: str = "mail"


@dataclass
class Submitted:
    intake: Intake
    response: Response


def open_through_modal(replicas: Replicas, intake: Intake) -> Submitted:
    """/support <question>, Contact support, the choices that reshape the modal, Submit:
    each request to the next serve process."""
    who = intake.who
    reply = replicas.lb.next().command(who, "mail forwarding stopped for the sales team")
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body is not None and "contact_support" in json.dumps(body), body
    click = replicas.lb.next().click_in(who, body, "contact_support", channel_id="C_GENERAL")
    assert click.status == 200, click.body
    view = replicas.modal(who, click)
    assert view["callback_id"] == "intake", view["callback_id"]
    choices = []
    if intake.category != "technical":
        choices.append(("intake_category", intake.category))
    if intake.severity == "A":
        choices.append(("intake_severity", "A"))  # asks for impact and who stays available
    for action_id, value in choices:
        before = len(replicas.standin.calls("views.update"))
        answer = replicas.lb.next().view_action(who, action_id, value)
        assert answer.status == 200, answer.body
        replicas.standin.wait_for(
            "views.update",
            lambda c, view_id=view["id"]: c.args.get("view_id") == view_id,
            count=1
            + sum(
                1
                for c in replicas.standin.calls("views.update")[:before]
                if c.args.get("view_id") == view["id"]
            ),
            timeout=SLACK_TIMEOUT,
        )
    fields: dict[str, Any] = {
        "category": intake.category,
        "topic": intake.topic,
        "severity": intake.severity,
        "title": intake.title,
        "description": f"{intake.title}: since Monday, for everyone in the team.",
        "contact_method": "chat",
    }
    if intake.severity == "A":
        fields["business_impact"] = "Nobody in the company can send mail"
        fields["available_contact"] = "Alice Chen, +86 10 5555 0101, all day"
    response = replicas.lb.next().submit_view(who, fields)
    if replicas.standin.open_view(who) is not None:
        replicas.standin.close_view(who, clear=True)  # a refused or late answer left it open
    return Submitted(intake, response)


def race(jobs: list[Callable[[], T]], timeout: float = 60.0) -> list[T]:
    """Run the jobs in threads released at the same moment; return their results in order."""
    barrier = threading.Barrier(len(jobs))
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def run(n: int, job: Callable[[], T]) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[n] = job()
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(n, job), daemon=True) for n, job in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "a racing request did not finish"
    if errors:
        raise errors[0]
    return [results[n] for n in range(len(jobs))]


def press(replicas: Replicas, user: str, case: Case, action: str) -> Response:
    response = replicas.lb.next().click_in(
        user, replicas.card(case), action, channel_id=TRIAGE, is_ephemeral=False
    )
    assert response.status == 200, response.body
    return response


def work(replicas: Replicas, user: str, case: Case, action: str, **values: Any) -> None:
    """Press a card button that opens a modal (reply, resolve, change severity) and submit."""
    view = replicas.modal(user, press(replicas, user, case, action))
    assert view["callback_id"] != "intake"
    response = replicas.lb.next().submit_view(user, values)
    assert response.status == 200, response.body
    assert "errors" not in response.body, response.body
    assert replicas.standin.open_view(user) is None


def acknowledge_at_once(replicas: Replicas, message: dict[str, Any], agents: list[str]) -> None:
    """`agents` press Acknowledge on the same page post at the same moment, each through a
    different serve process; exactly one is told they acknowledged it."""
    senders = [replicas.sender(n) for n in range(len(agents))]
    responses = race(
        [
            lambda s=s, a=a: s.click_in(a, message, "acknowledge_page", channel_id=TRIAGE)
            for s, a in zip(senders, agents, strict=True)
        ]
    )
    assert [r.status for r in responses] == [200] * len(agents)
    urls = {r.response_url for r in responses}
    answers = replicas.standin.wait_for(
        "response_url", lambda c: c.url in urls, count=len(agents), timeout=SLACK_TIMEOUT
    )
    texts = [json.dumps(a.args) for a in answers]
    assert sum("You acknowledged the page" in t for t in texts) == 1, texts
    assert sum("already acknowledged by" in t for t in texts) == len(agents) - 1, texts


# ------------------------------------------------------------------------------ the day

ALICE_A = Intake("U0ALICE", "Nobody can send mail [1]", "A")
ALICE_B = Intake("U0ALICE", "Shared mailbox forwarding stopped [2]", "B")
BILL_BILLING = Intake("U0BILL", "Invoice charged twice [3]", "B", "billing", "invoice")
HELEN_C = Intake("U0HELEN", "How to keep a password from expiring [4]", "C")
# Pages Eli at the same moment as ALICE_A: his two page DMs may be told in one message.
HELEN_A = Intake("U0HELEN", "The intranet site is down for everyone [8]", "A")
HELEN_B = Intake("U0HELEN", "Autodiscover fails for new users [5]", "B")
FRANK_B = Intake("U0FRANK", "Meeting rooms do not accept invites [6]", "B")
FRANK_C = Intake("U0FRANK", "A user cannot delete contacts [7]", "C")
BY_ADMIN = [
    [ALICE_A, ALICE_B],
    [BILL_BILLING],
    [HELEN_C, HELEN_A, HELEN_B],
    [FRANK_B, FRANK_C],
]
CLAIMED_AT_ONCE = [ALICE_B, HELEN_C, HELEN_A, HELEN_B, FRANK_C]


@pytest.mark.timeout(240)
def test_a_day_on_three_serve_and_two_worker_processes(replicas: Replicas) -> None:
    started = time.monotonic()
    standin = replicas.standin

    # 08:30 -- eight cases at once through the modal, four admins on their own threads.
    def admin(intakes: list[Intake]) -> list[Submitted]:
        return [open_through_modal(replicas, intake) for intake in intakes]

    submitted = [s for batch in race([lambda b=b: admin(b) for b in BY_ADMIN]) for s in batch]
    refusals = {
        "U0CARL": "Only your organisation's *admins* can open support cases",
        "U0NORA": "Litware Partners",
    }
    for who, expected in refusals.items():
        reply = replicas.lb.next().command(who, "we need more licences")
        assert reply.status == 200 and expected in reply.body, reply.body
        assert "contact_support" not in reply.body
    acked = [s for s in submitted if s.response.status == 200 and "errors" not in s.response.body]
    late = [s.intake.title for s in submitted if s.response.problems]
    assert len(acked) == len(submitted), [(s.intake.title, s.response.body) for s in submitted]
    replicas.settle()
    case = {intake.title: replicas.case(intake.title) for batch in BY_ADMIN for intake in batch}
    c1, c2, c3, c4, c5, c6, c7, c8 = (
        case[i.title]
        for i in (ALICE_A, ALICE_B, BILL_BILLING, HELEN_C, HELEN_B, FRANK_B, FRANK_C, HELEN_A)
    )
    cards = {title: replicas.card(c) for title, c in case.items()}

    # 08:31 -- Dana and Eli click Claim on the same five cards at the same moment.
    replicas.advance(beijing(25, 8, 31))
    clicks: list[Callable[[], Response]] = []
    for n, intake in enumerate(CLAIMED_AT_ONCE):
        for k, agent in enumerate(AGENTS):
            sender = replicas.sender(n + k)  # the two clicks land on different processes
            card = cards[intake.title]
            clicks.append(
                lambda s=sender, a=agent, c=card: s.click_in(
                    a, c, "claim_case", channel_id=TRIAGE, is_ephemeral=False
                )
            )
    assert [r.status for r in race(clicks)] == [200] * len(clicks)
    told = standin.wait_for(
        "chat.postEphemeral",
        lambda c: "is already claimed by" in c.args["text"],
        count=len(CLAIMED_AT_ONCE),
        timeout=SLACK_TIMEOUT,
    )
    for intake in CLAIMED_AT_ONCE:
        owner = replicas.owner(case[intake.title])
        assert owner in AGENTS
        [loser] = [c for c in told if case[intake.title].number in c.args["text"]]
        assert loser.args["user"] != owner and f"<@{owner}>" in loser.args["text"]
    replicas.settle()
    # Claiming c8 acknowledged its page; its owner solves it at once (no notices follow).
    c8_owner = replicas.owner(c8)
    assert c8_owner
    work(replicas, c8_owner, c8, "case_resolve", text="The site's certificate was renewed.")
    replicas.settle()

    # 08:35 -- nobody took the Sev A page: it goes from Eli (primary) to Lee (secondary).
    replicas.advance(beijing(25, 8, 35))
    step_two = replicas.thread_post(c1, "(step 2 of 8)")
    assert f"<@{LEE}>" in step_two["text"]
    # 08:37 -- Dana and Eli acknowledge it at once; one of them now owns the case.
    replicas.advance(beijing(25, 8, 37))
    acknowledge_at_once(replicas, step_two, [DANA, ELI])
    replicas.settle()
    c1_owner = replicas.owner(c1)
    assert c1_owner in AGENTS
    replicas.advance(beijing(25, 8, 45))  # step 3 would have been due at 08:40

    # 09:00 -- handoff: Dana takes over primary from Eli.
    replicas.advance(beijing(25, 9, 0))
    # 09:10 -- severity changes from the card: B -> A (pages Dana, primary now), C -> B.
    replicas.advance(beijing(25, 9, 10))
    c2_owner, c7_owner = replicas.owner(c2), replicas.owner(c7)
    assert c2_owner and c7_owner
    work(replicas, c2_owner, c2, "case_severity", severity="A", text="the whole office now")
    work(replicas, c7_owner, c7, "case_severity", severity="B", text="blocks the mail merge")
    replicas.settle()
    assert f"<@{DANA}>" in replicas.thread_post(c2, "(step 1 of 8)")["text"]
    # 09:15 -- c2's page goes on to Lee; c1 is 15 minutes from its due.
    replicas.advance(beijing(25, 9, 15))
    c2_step_two = replicas.thread_post(c2, "(step 2 of 8)")
    replicas.advance(beijing(25, 9, 16))
    acknowledge_at_once(replicas, c2_step_two, [LEE, DANA])
    # 09:20 -- c1's owner answers the customer before the due: no breach for c1.
    replicas.advance(beijing(25, 9, 20))
    assert c1_owner
    work(replicas, c1_owner, c1, "case_reply", text="We are on it: the relay is being reset.")
    replicas.settle()
    # Sev A reminders (c1 09:30, 10:30; c2 10:10), c2 warned and in breach (09:45, 10:00),
    # c1's downgrade offer (10:30: two hours without the customer; c2's would be at 11:10).
    for hour, minute in [(9, 30), (9, 45), (10, 0), (10, 10), (10, 30)]:
        replicas.advance(beijing(25, hour, minute))
    # 11:00 -- resolves (both Sev A cases stop their reminders) and a reply to c5.
    replicas.advance(beijing(25, 11, 0))
    work(replicas, c1_owner, c1, "case_resolve", text="Relay reset; mail flows again.")
    work(replicas, c2_owner, c2, "case_resolve", text="Forwarding rule restored.")
    c4_owner, c5_owner = replicas.owner(c4), replicas.owner(c5)
    assert c4_owner and c5_owner
    work(replicas, c4_owner, c4, "case_resolve", text="Set the password policy to never.")
    work(replicas, c5_owner, c5, "case_reply", text="Please send us the autodiscover log.")
    replicas.settle()
    # The rest of the day: billing due 17:00, technical Sev B due at midnight, Thursday's
    # handoff at 09:00.
    for day, hour in [(25, 13), (25, 15), (25, 17), (25, 20), (25, 22), (26, 0), (26, 4)]:
        replicas.advance(beijing(day, hour))
    for hour, minute in [(8, 0), (9, 0), (9, 30)]:
        replicas.advance(beijing(26, hour, minute))
    day_took = time.monotonic() - started

    # ---------------------------------------------------------------- cases

    cases = replicas.cases()
    titles = Counter(c.title for c in cases)
    assert titles == Counter(s.intake.title for s in acked), titles  # none lost, none twice
    assert len({c.number for c in cases}) == len(cases)
    claimed = replicas.events("claimed")
    per_case = Counter(e.case_id for e in claimed)
    owned = {c.id for c in cases if c.assignee_id is not None}
    assert owned == {case[i.title].id for i in CLAIMED_AT_ONCE} | {c1.id}
    assert per_case == Counter({case_id: 1 for case_id in owned}), per_case
    for event in claimed:
        assert event.detail["owner"] == replicas.owner(
            next(c for c in cases if c.id == event.case_id)
        )
    assert len(replicas.events("page_acknowledged")) == 2
    status = {c.title: c.status for c in cases}
    assert [status[i.title] for i in (ALICE_A, ALICE_B, HELEN_C, HELEN_A)] == ["resolved"] * 4

    # ---------------------------------------------------------------- the outbox

    rows = replicas.outbox()
    not_sent = [(r.key, r.status, r.attempts, r.last_error) for r in rows if r.status != "sent"]
    assert not not_sent, not_sent
    kinds = Counter(r.kind for r in rows)
    by_target = Counter((r.kind, (r.payload or {}).get("to")) for r in rows)
    expected = {
        CARD: 8,
        # warnings: c1 09:15 and c2 09:45 (owned: thread + owner), c3 15:00 (unclaimed),
        # c6 22:00 (unclaimed), c7 22:00 (owned)
        SLA_WARNING: 8,
        # breaches: c2 10:00, c3 17:00, c6 and c7 at midnight; c1 was answered in time
        SLA_BREACH: 6,
        # c1: Eli, then Lee; c8: Eli; c2: Dana, then Lee (thread post + DM each)
        PAGE: 10,
        # c1 and c2 by the Acknowledge button, c8 by its claim
        PAGE_ACKNOWLEDGED: 3,
        # Wednesday and Thursday 09:00: the handoff channel and the incoming person
        HANDOFF: 4,
        UPDATE_REMINDER: 3,
        # c1 at 10:30 (two hours without the customer); c2's silence counts from its raise
        # to Sev A at 09:10 (SC-16), and it is resolved at 11:00, before its two hours
        DOWNGRADE_OFFER: 1,
        ONCALL_GAP: 0,
    }
    assert {k: kinds[k] for k in expected} == expected, dict(kinds)
    assert by_target[(SLA_WARNING, "thread")] == 5 and by_target[(SLA_BREACH, "thread")] == 4
    assert by_target[(HANDOFF, "channel")] == 2
    opened = [r for r in rows if r.kind == REQUESTER_NOTICE and r.payload["event"] == "opened"]
    assert len(opened) == 8
    # The unclaimed cases were warned and breached in the triage thread, naming who should
    # take them.
    for unclaimed in (c3, c6):
        assert replicas.owner(unclaimed) is None
        for needle in ("is about to miss", "missed its first-response target"):
            assert "Nobody has claimed it" in replicas.thread_post(unclaimed, needle)["text"]

    # ---------------------------------------------------------------- Slack

    sent = posts(standin)
    failed = [c.summary() for c in standin.calls() if c.method.startswith("chat.") and not c.ok]
    assert not failed, failed
    # Delivered once: no message twice. The hourly reminder says the same thing each hour
    # by design, so it is counted against its rows instead.
    reminders = [c for c in sent if c.args["text"].startswith(":hourglass:")]
    assert len(reminders) == kinds[UPDATE_REMINDER]
    seen = Counter(identity(c) for c in sent if c not in reminders)
    twice = {k[:3]: n for k, n in seen.items() if n > 1}
    assert not twice, f"sent more than once: {twice}"
    # One Slack call per row: a post for each row, a chat.update for each card refresh.
    # Page DMs to one person may be told together in one DM, so they are counted per person.
    page_dm_rows = Counter(
        r.payload["user"] for r in rows if r.kind == PAGE and r.payload["to"] == "user"
    )
    page_dms = Counter(str(c.args["channel"]).removeprefix("D") for c in sent if is_page_dm(c))
    assert set(page_dms) == set(page_dm_rows), (page_dms, page_dm_rows)
    assert all(page_dms[p] <= page_dm_rows[p] for p in page_dms), (page_dms, page_dm_rows)
    number = {c.id: c.number for c in cases}
    for row in rows:
        if row.kind == PAGE and row.payload["to"] == "user":
            told_in = [
                c
                for c in sent
                if is_page_dm(c)
                and c.args["channel"] == f"D{row.payload['user']}"
                and number[row.case_id] in json.dumps(c.args)
            ]
            assert told_in, f"{row.key}: no page DM to {row.payload['user']} names the case"
    other_rows = [
        r
        for r in rows
        if r.kind != CARD_REFRESH and not (r.kind == PAGE and r.payload["to"] == "user")
    ]
    assert len(sent) - sum(page_dms.values()) == len(other_rows)
    updates = [c for c in standin.calls("chat.update") if c.ok]
    assert len(updates) == kinds[CARD_REFRESH]
    # Slack's pace: posts to one channel, from whichever process, kept their distance: the
    # k-th post after another came at least k paces later. A post reaches Slack at its slot
    # or a little after (`at` is stamped as the request reaches the stand-in), hence the
    # allowance.
    by_channel: dict[str, list[float]] = {}
    for call in sent:
        by_channel.setdefault(str(call.args["channel"]), []).append(call.at)
    too_close = [
        (channel, k, round(stamps[i + k] - stamps[i], 3))
        for channel, unsorted in by_channel.items()
        for stamps in [sorted(unsorted)]
        for i in range(len(stamps))
        for k in range(1, len(stamps) - i)
        if stamps[i + k] - stamps[i] < k * PACE_SECONDS - PACE_JITTER
    ]
    assert not too_close, too_close
    tightest = {
        channel: round(min(b - a for a, b in itertools.pairwise(sorted(stamps))), 3)
        for channel, stamps in by_channel.items()
        if len(stamps) > 1
    }
    # ...and what people should have seen is there.
    handoffs = posts(standin, HANDOFF_CHANNEL)
    assert [c.args["text"] for c in handoffs] == ["Shift handoff: primary"] * 2
    handoff_dms = [c for c in sent if c.args["channel"] in ("DU0AGENT1", "DU0AGENT2")]
    assert sorted(
        c.args["channel"] for c in handoff_dms if c.args["text"] == "Shift handoff: primary"
    ) == ["DU0AGENT1", "DU0AGENT2"]
    # Each lane in order, whichever process sent what: in the triage channel only the cards
    # are top-level, everything else about a case is in its card's thread; each requester's
    # first DM about a case opens that case's thread, and the rest follow in it.
    triage = posts(standin, TRIAGE)
    triage_cards = [c for c in triage if c.args.get("thread_ts") is None]
    assert sorted(c.args["text"].split(" ")[0] for c in triage_cards) == sorted(
        c.number for c in cases
    )
    in_threads = [c for c in triage if c.args.get("thread_ts") is not None]
    assert {c.args["thread_ts"] for c in in_threads} <= {c.card_ts for c in cases}
    for stored in cases:
        assert stored.card_ts is not None and stored.requester_thread_ts is not None
        about = [c for c in in_threads if stored.number in c.args["text"]]
        assert {c.args["thread_ts"] for c in about} <= {stored.card_ts}, stored.number
        dms = [
            c
            for c in sent
            if c.args["channel"] == stored.requester_channel and stored.number in c.args["text"]
        ]
        [first] = [c for c in dms if c.args.get("thread_ts") is None]
        assert first.args["text"] == f"Your case {stored.number} is open."
        assert first.response["ts"] == stored.requester_thread_ts
        assert {c.args.get("thread_ts") for c in dms if c is not first} <= {
            stored.requester_thread_ts
        }
    # The card each case shows at the end is its current state, whichever process refreshed
    # it last: its severity, owner and status.
    for stored in cases:
        shown = json.dumps(standin.message(TRIAGE, stored.card_ts)["blocks"], ensure_ascii=False)
        owner = replicas.owner(stored)
        assert f"{stored.number} \u00b7 Sev {stored.severity} \u00b7" in shown, stored.number
        assert (f"<@{owner}>" if owner else "_Unclaimed_") in shown, stored.number
        assert f"*Status*\\n{STATUS_LABELS[stored.status]}" in shown, (stored.number, shown)
    print(
        f"day in {day_took:.1f}s; {len(rows)} outbox rows, {len(sent)} posts, "
        f"{len(updates)} card updates; page DMs {dict(page_dms)} for rows "
        f"{dict(page_dm_rows)}; tightest gaps {tightest}; late acks {late}"
    )
