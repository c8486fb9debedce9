"""Front door: ack throughput and latency of the desk against a bare Bolt app.

Both run under the same server setup — gunicorn, gthread workers, the same worker and
thread counts, on 127.0.0.1 — each pointed at its own Slack stand-in, so the Web API calls
made after the ack land locally. The same signed request bodies go to both:

* `command`: `/support mail forwarding stopped` from a customer admin (the desk answers
  with the question, service health, the matching help articles and a Contact support
  button; the database holds the example roster and the 20 example articles, and the run
  stops if the answer does not list the one about mail forwarding).
* `submit`: the intake modal's `view_submission` (Sev B technical), replayed with a new
  title each time: every one opens a case (card to triage, DM to the requester after the
  ack).
* `claim_fresh`: Claim on cases nobody has claimed yet (each click wins: the card is
  updated, the requester told).
* `claim_contended`: Claim clicks on a few cases that are already claimed (each click is
  answered "already claimed by @x" with an ephemeral message after the ack).
* `submit_slow_api`: `submit` again with every Web API call taking 200 ms (the stand-in
  delays its answers), as calls to slack.com do from a real deployment: the work after the
  ack is slower; the ack should not be.

For `submit`, two floor apps are measured too (bench/floor_app.py): the bare app storing one
row before its ack with the database's own driver, and the same posting one message after
it — the least anything that opens a case must do, measured on the same machine and database.
For `command`, the first of them answers `/support` with the least any desk must do there:
read who is asking and search the help articles (the desk's own full-text search), through
the database's own driver, and ack with the titles found.

The bare app is measured twice: as Bolt builds it by default (the listener's ack is looked
for every 10 ms) and with the desk's listener pool (the request woken by the ack). The
targets are judged against the first, the Bolt app as anyone would write it; the second
shows how much of the desk's ratio is its ack path rather than its work.

At 1, 20 and 100 concurrent clients (closed loop: each client sends its next request when
the previous one is answered), for a fixed time per level. Between measurements the desk's
outbox is let drain, so one measurement's after-ack work does not land in the next.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    SECRET,
    PostgresUnavailable,
    empty_database,
    ms,
    percentile,
    ratio,
    say,
    table,
    temp_dir,
    verdict,
)
from bench.desk import (
    ADMIN,
    INTAKE_FIELDS,
    TOKEN,
    Server,
    Templates,
    bare_server,
    capture_templates,
    case_ids_with_title,
    chatops_server,
    check_read_floor,
    floor_server,
    load_database,
)
from bench.loadgen import LoadGenerator, LoadResult, LoadSpec

LEVELS = (1, 20, 100)
PHASES = ("command", "submit", "claim_fresh", "claim_contended", "submit_slow_api")
SLOW_API = 0.2  # seconds: Slack's Web API as seen from a real deployment, not the stand-in's 1 ms
THROUGHPUT_TARGET = 0.7  # × the bare app's
ACK_LIMIT = 3.0  # seconds: Slack's acknowledgement deadline
P99_TARGET = 3.0  # × the bare app's
SUBMIT_PREFIX = "Bench case "


@dataclass
class Measurement:
    phase: str
    clients: int
    bare: LoadResult
    desk: LoadResult
    drain: float = 0.0  # seconds until the desk's outbox was empty again
    pooled: LoadResult | None = None  # the bare app with the desk's listener pool
    # submit: floor app → result; command: the first floor app's (read) result
    floors: dict[str, LoadResult] = field(default_factory=dict)

    @property
    def pooled_ratio(self) -> float:
        if self.pooled is None:
            return float("nan")
        return ratio(self.desk.throughput, self.pooled.throughput)

    @property
    def throughput_ratio(self) -> float:
        return ratio(self.desk.throughput, self.bare.throughput)

    @property
    def p99_ratio(self) -> float:
        return ratio(percentile(self.desk.latencies, 99), percentile(self.bare.latencies, 99))

    @property
    def late(self) -> int:
        """Desk answers that came after Slack's 3 s (Slack shows the user an error)."""
        return sum(1 for x in self.desk.all_latencies if x >= ACK_LIMIT)

    @property
    def passed(self) -> bool | None:
        if not self.desk.latencies or not self.bare.latencies:
            return False
        return (
            self.throughput_ratio >= THROUGHPUT_TARGET
            and self.p99_ratio <= P99_TARGET
            and self.desk.ok == self.desk.sent
            and self.late == 0
        )


@dataclass
class Variant:
    database: str
    measurements: list[Measurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None


def _pending(database_url: str) -> int:
    from sqlalchemy import text

    from chatops.db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM outboxmessage WHERE status = 'pending'")
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _drain(database_url: str, timeout: float) -> float:
    """Wait until the desk has delivered what it owes (no pending outbox rows)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if _pending(database_url) == 0:
            break
        time.sleep(0.2)
    return time.monotonic() - began


def _wait_for_posts(floor: Server, count: int, timeout: float = 60.0) -> str | None:
    """Let a floor app finish the posts it owes after its acks, so its after-ack work does
    not land in the next measurement; a note when they did not all come."""
    if not count:
        return None
    try:
        floor.standin.wait_for("chat.postMessage", count=count, timeout=timeout)
    except AssertionError:
        posted = len(floor.standin.calls("chat.postMessage"))
        return f"{floor.name}: {posted} of {count} posts within {timeout:g} s of its last ack"
    return None


def _prefill(server: Server, database_url: str, count: int) -> None:
    """Open `count` more unclaimed cases through the core and deliver their cards to the
    server's stand-in, so the Claim phase has enough fresh cases at 100 clients."""
    from chatops.cases.intake import IntakeForm
    from chatops.cases.service import open_case
    from chatops.clock import SystemClock
    from chatops.config import Settings
    from chatops.db import make_engine
    from chatops.policy import load_policy
    from handlers.app import build_desk

    settings = Settings(
        slack_bot_token=server.standin.bot_token,
        slack_signing_secret=SECRET,
        slack_api_url=server.standin.api_url,
        database_url=database_url,
        channel_pace_seconds=0.0,
    )
    engine = make_engine(database_url)
    rules = load_policy()
    desk = build_desk(settings, engine, rules, SystemClock())
    fields = {k: v for k, v in INTAKE_FIELDS.items()}
    try:
        for n in range(count):
            form = IntakeForm(
                **{**fields, "title": f"{SUBMIT_PREFIX}prefill-{n}"},
                phone="+86 10 5555 0101",  # SC-7, SC-18: every case has both contacts
                email="alice@contoso.example",
            )
            open_case(engine, ADMIN, form, rules, desk.clock.now())
        desk.delivery.deliver_pending(limit=1000)
    finally:
        engine.dispose()


def _unclaimed_bench_cases(database_url: str) -> list[int]:
    from sqlalchemy import text

    from chatops.db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    'SELECT id FROM "case" WHERE assignee_id IS NULL AND title LIKE :p ORDER BY id'
                ),
                {"p": SUBMIT_PREFIX + "%"},
            ).all()
    finally:
        engine.dispose()
    return [int(r[0]) for r in rows]


def _spec(server: Server, template: str, clients: int, **kwargs: Any) -> LoadSpec:
    return LoadSpec("127.0.0.1", server.port, SECRET, template, clients, **kwargs)


def _measure_variant(
    variant: Variant,
    database_url: str,
    bare: Server,
    pooled: Server,
    logs: Path,
    lg: LoadGenerator,
    *,
    seconds: float,
    prefill: int,
    workers: int,
    threads: int,
    pace: float,
) -> None:
    load_database(database_url)
    with contextlib.ExitStack() as servers:
        desk = servers.enter_context(
            chatops_server(
                database_url,
                logs,
                workers=workers,
                threads=threads,
                pace=pace,
                record_limit=2000,
                name=f"chatops-{variant.database}",
            )
        )
        floors = [  # (floor app, whether it posts after its ack)
            (
                servers.enter_context(
                    floor_server(database_url, logs, workers=workers, threads=threads, post=post)
                ),
                post,
            )
            for post in (False, True)
        ]
        templates: Templates = capture_templates(desk)
        for server in (bare, pooled, desk):  # warm them up the same way
            lg.run(_spec(server, templates.command, 4, count=100))
        check_read_floor(floors[0][0])
        for floor, posts in floors:
            lg.run(_spec(floor, templates.command, 4, count=100))
            warm = lg.run(_spec(floor, templates.submit_b, 4, count=100, token=TOKEN, first=1))
            if note := _wait_for_posts(floor, warm.ok if posts else 0):
                variant.notes.append(f"warm-up: {note}")
        _drain(database_url, 30)
        serial = 0
        for phase in PHASES:
            if phase == "claim_fresh":
                _prefill(desk, database_url, prefill)
                fresh = [str(i) for i in _unclaimed_bench_cases(database_url)]
                per_level = max(1, len(fresh) // len(LEVELS))
                variant.notes.append(
                    f"claim_fresh: {len(fresh)} unclaimed cases, {per_level} per level "
                    f"(a level stops early when its cases run out)"
                )
                claimed: list[str] = []
            for index, clients in enumerate(LEVELS):
                kwargs: dict[str, Any] = {"duration": seconds}
                if phase == "command":
                    template = templates.command
                elif phase == "submit":
                    template = templates.submit_b
                    serial += 1
                    kwargs.update(token=TOKEN, first=serial * 1_000_000)
                elif phase == "claim_fresh":
                    template = templates.claim
                    chunk = fresh[index * per_level : (index + 1) * per_level]
                    kwargs.update(token=TOKEN, values=chunk, cycle=False)
                elif phase == "claim_contended":
                    template = templates.claim
                    kwargs.update(token=TOKEN, values=claimed[:5] or ["1"], cycle=True)
                else:
                    template = templates.submit_b
                    serial += 1
                    kwargs.update(token=TOKEN, first=serial * 1_000_000)
                slow = phase == "submit_slow_api"
                standins = (
                    bare.standin,
                    pooled.standin,
                    desk.standin,
                    *(floor.standin for floor, _ in floors),
                )
                for standin in standins:
                    standin.reset()  # forget recorded calls and delays
                    if slow:
                        standin.delay("*", SLOW_API)
                bare_result = lg.run(_spec(bare, template, clients, **kwargs))
                pooled_result = lg.run(_spec(pooled, template, clients, **kwargs))
                floor_results = {}
                if phase == "command":
                    floor = floors[0][0]
                    floor_results[floor.name] = lg.run(_spec(floor, template, clients, **kwargs))
                for floor, posts in floors if phase == "submit" else ():
                    result = lg.run(_spec(floor, template, clients, **kwargs))
                    if note := _wait_for_posts(floor, result.ok if posts else 0):
                        variant.notes.append(f"submit/{clients}: {note}")
                    if result.ok != result.sent:
                        variant.notes.append(
                            f"submit/{clients}: {floor.name} answered {result.ok} of "
                            f"{result.sent} with 200: {result.samples[:1]}"
                        )
                    floor_results[floor.name] = result
                desk_result = lg.run(_spec(desk, template, clients, **kwargs))
                drain = _drain(database_url, 120)
                for standin in standins:
                    standin.reset()
                if phase == "claim_fresh":
                    claimed += desk_result.sent_values
                m = Measurement(
                    phase, clients, bare_result, desk_result, drain, pooled_result, floor_results
                )
                variant.measurements.append(m)
                bare_p99 = ms(percentile(bare_result.latencies, 99))
                desk_p99 = ms(percentile(desk_result.latencies, 99))
                say(
                    f"  {variant.database:<10} {phase:<16} {clients:>3} clients: "
                    f"bare {bare_result.throughput:7.1f}/s p99 {bare_p99} ms"
                    f" (pooled {pooled_result.throughput:7.1f}/s)"
                    f" | desk {desk_result.throughput:7.1f}/s p99 {desk_p99} ms"
                    f", {desk_result.sent - desk_result.ok} not ok, drained in {drain:.1f} s"
                )
        created = case_ids_with_title(database_url, SUBMIT_PREFIX)
        variant.notes.append(f"cases in the database after the run: {len(created)}")
        for floor, _ in floors:
            floor_problems = floor.proc.log_problems()
            if floor_problems["ERROR"] or floor_problems["Traceback"]:
                variant.notes.append(f"{floor.name} log: {floor_problems}")
        problems = desk.proc.log_problems()
        variant.notes.append("server log: " + ", ".join(f"{k} {v}" for k, v in problems.items()))
        for needle in ("ERROR", "Traceback", "WORKER TIMEOUT"):
            for line in desk.proc.log_samples(needle, 2):
                variant.notes.append(f"  log: {line}")


def report(
    variants: list[Variant], seconds: float, workers: int, threads: int, pace: float
) -> None:
    say()
    say(
        f"Front door — gunicorn gthread {workers} workers × {threads} threads on 127.0.0.1, "
        f"{seconds:g} s per level, closed loop, keep-alive; outbox pace {pace:g} s/channel."
    )
    say(
        f"Targets (information only): desk throughput ≥ {THROUGHPUT_TARGET}× bare, "
        f"desk p99 ≤ {P99_TARGET}× bare p99, every request acked 200 within "
        f"{ACK_LIMIT:g} s. Requests in a level: the 'not ok' column's denominator."
    )
    say(
        "'pooled' is the bare app answering through the desk's listener pool (woken by the "
        "ack, not Bolt's 10 ms poll for it); '× pooled' is the desk's throughput against it."
    )
    for variant in variants:
        say()
        if variant.skipped:
            say(f"[{variant.database}] skipped: {variant.skipped}")
            continue
        rows = []
        for m in variant.measurements:
            rows.append(
                [
                    m.phase,
                    m.clients,
                    f"{m.bare.throughput:.0f}",
                    f"{m.desk.throughput:.0f}",
                    f"{m.throughput_ratio:.2f}",
                    f"{m.pooled.throughput:.0f}" if m.pooled else "-",
                    f"{m.pooled_ratio:.2f}",
                    ms(percentile(m.bare.latencies, 50)),
                    ms(percentile(m.desk.latencies, 50)),
                    ms(percentile(m.bare.latencies, 99)),
                    ms(percentile(m.desk.latencies, 99)),
                    f"{m.p99_ratio:.1f}",
                    ms(max(m.desk.all_latencies, default=float("nan"))),
                    f"{m.desk.sent - m.desk.ok}/{m.desk.sent}",
                    m.late,
                    f"{m.drain:.1f}",
                    verdict(m.passed),
                ]
            )
        say(
            table(
                [
                    "request",
                    "clients",
                    "bare/s",
                    "desk/s",
                    "thr ×",
                    "pooled/s",
                    "× pooled",
                    "bare p50",
                    "desk p50",
                    "bare p99",
                    "desk p99",
                    "p99 ×",
                    "desk max",
                    "desk not ok",
                    "desk ≥3 s",
                    "drain s",
                    "target",
                ],
                rows,
                title=f"[{variant.database}] latencies in ms",
            )
        )
        _report_floor(variant)
        for m in variant.measurements:
            for sample in m.desk.samples[:2]:
                say(f"  {m.phase}/{m.clients}: desk answered {sample[:160]!r}")
        for note in variant.notes:
            say(f"  {note}")


def _report_floor(variant: Variant) -> None:
    """The desk against the floor apps of the same run: how far the bare app is out of reach
    for anything that reads the asker and the articles before answering `/support`, or
    stores a case before its ack (and posts it after)."""
    floors = {
        "command": (
            ("read",),
            "/support against the floor: the bare app reading the asker and searching the "
            "help articles before its ack (read)",
        ),
        "submit": (
            ("store", "store+post"),
            "intake submit against the floor: the bare app storing one row before its ack "
            "(store), and posting one message after it too (store+post)",
        ),
    }
    for phase, (names, title) in floors.items():
        rows = []
        for m in variant.measurements:
            if m.phase != phase or not m.floors:
                continue
            row: list[Any] = [
                m.clients,
                f"{m.bare.throughput:.0f}",
                ms(percentile(m.bare.latencies, 99)),
            ]
            for result in (*m.floors.values(), m.desk):
                row += [
                    f"{result.throughput:.0f}",
                    f"{ratio(result.throughput, m.bare.throughput):.2f}",
                    ms(percentile(result.latencies, 99)),
                ]
            rows.append(row)
        if not rows:
            continue
        headers = ["clients", "bare/s", "bare p99"]
        for name in (*names, "desk"):
            headers += [f"{name}/s", "thr ×", "p99"]
        say(table(headers, rows, title=f"[{variant.database}] {title}; bench/floor_app.py"))


def run(
    quick: bool,
    *,
    databases: tuple[str, ...] = ("sqlite", "postgres"),
    workers: int = 2,
    threads: int = 8,
    pace: float = 0.0,
    seconds: float | None = None,
) -> list[Variant]:
    seconds = seconds or (1.0 if quick else 4.0)
    prefill = 100 if quick else 600
    variants: list[Variant] = []
    with (
        temp_dir("chatops-bench-frontdoor-") as tmp,
        LoadGenerator() as lg,
        bare_server(tmp, workers=workers, threads=threads) as bare,
        bare_server(tmp, workers=workers, threads=threads, pooled=True) as pooled,
    ):
        for kind in databases:
            variant = Variant(kind)
            variants.append(variant)
            say(f"front door on {kind}…")
            try:
                with empty_database(kind, tmp / "frontdoor.db") as url:
                    _measure_variant(
                        variant,
                        url,
                        bare,
                        pooled,
                        tmp,
                        lg,
                        seconds=seconds,
                        prefill=prefill,
                        workers=workers,
                        threads=threads,
                        pace=pace,
                    )
            except PostgresUnavailable as exc:
                variant.skipped = f"PostgreSQL unavailable ({exc})"
        for baseline in (bare, pooled):
            problems = baseline.proc.log_problems()
            if problems["ERROR"] or problems["Traceback"]:
                say(f"{baseline.name} app log: {problems}")
    report(variants, seconds, workers, threads, pace)
    return variants
