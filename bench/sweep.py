"""SLA sweep: the time of one worker sweep tick (`run_sweeps`) with 10k, 100k and 1M open
cases of which 100 are due — it must stay flat as the table grows (indexed queries).

The table is filled in bulk (COPY on PostgreSQL, executemany on SQLite) with open cases as
they look in a busy desk — new, claimed, in progress, awaiting the customer; 1 % Sev A with
update reminders ahead and customers heard from within the hour; B and C with their due and
warning instants ahead (2 h … 30 days). 100 Sev B cases are past their first-response due
and have had no notice yet: the tick sends their breach notices (100 × 2 outbox rows, 100
conditional updates, each its own transaction, as the worker does).

Per size: the tick (median of 3, state reset between them: markers cleared, outbox and
sweep marks emptied), an idle tick right after (nothing due: only the finding queries), and
the time of each query the tick ran. On PostgreSQL the due-finding queries are shown with
EXPLAIN (ANALYZE, BUFFERS) at the largest size; on SQLite with EXPLAIN QUERY PLAN.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, text

from bench.common import (
    PostgresUnavailable,
    empty_database,
    ms,
    say,
    table,
    temp_dir,
    verdict,
)
from bench.desk import load_database
from chatops.db import refresh_statistics

DUE = 100
TARGET = 0.050  # seconds, one tick at 1M open cases on PostgreSQL
INSERT_BUDGET = 180.0  # seconds: 1M rows only if 100k took under a tenth of this
COLUMNS = (
    "organisation_id",
    "requester_id",
    "category",
    "topic",
    "severity",
    "title",
    "description",
    "contact_method",
    "status",
    "assignee_id",
    "opened_at",
    "claimed_at",
    "first_response_due",
    "sla_elapsed_minutes",
    "sla_checkpoint_at",
    "sla_paused",
    "sla_warn_at",
    "first_responded_at",
    "next_update_reminder_at",
    "customer_last_seen_at",
)


@dataclass
class Size:
    cases: int
    insert_seconds: float
    ticks: list[float]
    idle_tick: float
    breaches: int
    queries: list[tuple[str, int, float]]  # (short sql, calls, seconds) of the first tick
    finding: float  # seconds spent in the due-finding SELECTs of the first tick

    @property
    def tick(self) -> float:
        return statistics.median(self.ticks)


@dataclass
class Run:
    database: str
    sizes: list[Size] = field(default_factory=list)
    plans: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None


# --------------------------------------------------------------------------- the rows


def _ids(engine: Engine) -> tuple[int, int, list[int]]:
    with engine.connect() as conn:
        org = conn.execute(text("SELECT id FROM organisation WHERE name LIKE 'Contoso%'")).scalar()
        alice = conn.execute(text("SELECT id FROM person WHERE slack_user_id='U0ALICE'")).scalar()
        agents = conn.execute(
            text("SELECT id FROM person WHERE slack_user_id IN ('U0AGENT1','U0AGENT2','U0LEAD')")
        ).all()
    return int(org), int(alice), [int(a[0]) for a in agents]


def _rows(
    start: int, count: int, now: datetime, org: int, alice: int, agents: list[int], due: int
) -> Iterator[tuple[Any, ...]]:
    """`count` open cases; the first `due` of them past their due with no notice sent."""
    rng = random.Random(start)
    for i in range(start, start + count):
        opened = now - timedelta(minutes=rng.randrange(1, 30 * 24 * 60))
        if i - start < due:
            severity, status, assignee, responded, paused = "B", "new", None, None, False
            first_due = now - timedelta(minutes=rng.randrange(1, 60))
            reminder, last_seen = None, opened
        else:
            roll = rng.random()
            severity = "A" if roll < 0.01 else ("B" if roll < 0.5 else "C")
            status = rng.choices(
                ("new", "claimed", "in_progress", "awaiting_customer"), (40, 20, 30, 10)
            )[0]
            assignee = None if status == "new" else rng.choice(agents)
            responded = opened + timedelta(minutes=5) if status == "in_progress" else None
            paused = status == "awaiting_customer" and severity != "A"
            first_due = now + timedelta(minutes=rng.randrange(120, 30 * 24 * 60))
            if severity == "A":
                reminder = now + timedelta(minutes=rng.randrange(1, 60))
                last_seen = now - timedelta(minutes=rng.randrange(0, 90))
            else:
                reminder, last_seen = None, opened
        yield (
            org,
            alice,
            "technical",
            "mail",
            severity,
            f"Load case {i}",
            "Mail to the shared mailbox is not forwarded any more.",
            "chat",
            status,
            assignee,
            opened,
            None if assignee is None else opened + timedelta(minutes=3),
            first_due,
            0.0,
            opened,
            paused,
            first_due - timedelta(minutes=60),
            responded,
            reminder,
            last_seen,
        )


def _insert_postgres(url: str, rows: Iterator[tuple[Any, ...]]) -> None:
    import psycopg

    columns = ", ".join(COLUMNS)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f'COPY "case" ({columns}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()


def _insert_sqlite(engine: Engine, rows: Iterator[tuple[Any, ...]]) -> None:
    from models import Case

    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for row in rows:
            batch.append(dict(zip(COLUMNS, row, strict=True)))
            if len(batch) >= 20_000:
                conn.execute(Case.__table__.insert(), batch)  # type: ignore[attr-defined]
                batch = []
        if batch:
            conn.execute(Case.__table__.insert(), batch)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- measuring


class _Recorder:
    """Every statement the engine runs, with its time (SQLAlchemy cursor events)."""

    def __init__(self, engine: Engine) -> None:
        self.on = False
        self.statements: list[tuple[str, Any, float]] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(
        self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    def _after(
        self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if self.on:
            took = time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
            self.statements.append((statement, params, took))


def _short(sql: str) -> str:
    """A statement shortened for a table: no column list, casts or table qualifiers."""
    flat = " ".join(sql.split())
    verb = flat.split(" ", 1)[0].upper()
    match = re.search(r"\bFROM\b.*", flat)
    body = match.group(0) if match and verb == "SELECT" else flat.split(" ", 1)[-1]
    body = re.sub(r"%\((\w+)\)s|\?", "?", body)
    body = re.sub(r"::(TIMESTAMP WITH TIME ZONE|[A-Z]+)", "", body)
    body = re.sub(r'"case"\.|\bpage\.|\boutboxmessage\.', "", body)
    body = re.sub(r"\(\?, \?, \?, \?\)", "(open)", body)
    return f"{verb} {body}"[:120]


def _is_finder(flat: str) -> bool:
    return bool(
        flat.upper().startswith("SELECT")
        and re.search(r'FROM ("case"|page)(\s|$)', flat)
        and not re.search(r'WHERE ("case"|page)\.id = ', flat)
    )


def _finders(statements: list[tuple[str, Any, float]]) -> list[tuple[str, Any]]:
    """The queries that find what is due: SELECTs on case/page not by primary key."""
    seen: dict[str, Any] = {}
    for sql, params, _took in statements:
        flat = " ".join(sql.split())
        if not flat.upper().startswith("SELECT"):
            continue
        if not _is_finder(flat):
            continue
        seen.setdefault(flat, params)
    return list(seen.items())


def _reset(engine: Engine) -> None:
    """Back to 'nothing sent yet' for the due cases, an empty outbox, no sweep marks."""
    with engine.begin() as conn:
        conn.execute(
            text(
                'UPDATE "case" SET sla_breach_sent_at = NULL, sla_warning_sent_at = NULL '
                "WHERE sla_breach_sent_at IS NOT NULL OR sla_warning_sent_at IS NOT NULL"
            )
        )
        conn.execute(text("DELETE FROM outboxmessage"))
        conn.execute(text("DELETE FROM sweepmark"))


def _measure(
    engine: Engine, rules: Any, now: datetime, recorder: _Recorder
) -> tuple[list[float], float, int, list[tuple[str, int, float]], float]:
    from chatops.sweeps import run_sweeps

    ticks: list[float] = []
    breaches = 0
    queries: list[tuple[str, int, float]] = []
    finding = 0.0
    for attempt in range(3):
        _reset(engine)
        recorder.statements = []
        recorder.on = True
        began = time.perf_counter()
        report = run_sweeps(engine, rules, now)
        ticks.append(time.perf_counter() - began)
        recorder.on = False
        breaches = report.breaches
        if attempt == 0:
            finding = sum(
                took for sql, _p, took in recorder.statements if _is_finder(" ".join(sql.split()))
            )
            grouped: dict[str, list[float]] = {}
            for sql, _params, took in recorder.statements:
                grouped.setdefault(_short(sql), []).append(took)
            queries = sorted(((k, len(v), sum(v)) for k, v in grouped.items()), key=lambda q: -q[2])
    began = time.perf_counter()
    run_sweeps(engine, rules, now)  # nothing due any more: the finding queries alone
    idle = time.perf_counter() - began
    return ticks, idle, breaches, queries, finding


def _plans(engine: Engine, now: datetime, rules: Any, recorder: _Recorder) -> list[tuple[str, str]]:
    """EXPLAIN the due-finding queries, with 100 cases due (state reset first)."""
    from chatops.sweeps import run_sweeps

    _reset(engine)
    recorder.statements = []
    recorder.on = True
    run_sweeps(engine, rules, now)
    recorder.on = False
    _reset(engine)
    plans = []
    dialect = engine.dialect.name
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for sql, params in _finders(recorder.statements):
            if dialect == "postgresql":
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            lines = [" ".join(str(c) for c in row[-1:]) for row in cursor.fetchall()]
            plans.append((_short(sql), "\n".join(lines)))
        raw.rollback()
    finally:
        raw.close()
    return plans


# --------------------------------------------------------------------------- the run


def _run_one(run: Run, url: str, sizes: list[int], allow_extrapolation: bool) -> None:
    from chatops.db import make_engine
    from chatops.policy import load_policy

    load_database(url)
    engine = make_engine(url)
    rules = load_policy()
    recorder = _Recorder(engine)
    now = datetime.now(UTC).replace(microsecond=0)
    org, alice, agents = _ids(engine)
    have = 0
    rate = 0.0  # rows per second of the last fill
    try:
        for size in sizes:
            if size >= 1_000_000 and allow_extrapolation and rate:
                projected = (size - have) / rate
                if projected > INSERT_BUDGET:
                    run.notes.append(
                        f"{size:,} cases skipped: inserting them would take ~{projected:.0f} s "
                        f"at the rate measured so far (budget {INSERT_BUDGET:.0f} s)"
                    )
                    break
                run.notes.append(
                    f"{size:,} cases kept: ~{projected:.0f} s to insert at the rate of the "
                    f"last fill ({rate:,.0f} rows/s), within the {INSERT_BUDGET:.0f} s budget"
                )
            say(f"  {run.database}: filling to {size:,} open cases…")
            began = time.perf_counter()
            rows = _rows(have, size - have, now, org, alice, agents, DUE if have == 0 else 0)
            if engine.dialect.name == "postgresql":
                _insert_postgres(url, rows)
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text('VACUUM ANALYZE "case"'))
            else:
                _insert_sqlite(engine, rows)
                refresh_statistics(engine)  # as `chatops worker` does every 6 hours
            inserted = time.perf_counter() - began
            rate = (size - have) / inserted if inserted > 0 else 0.0
            have = size
            ticks, idle, breaches, queries, finding = _measure(engine, rules, now, recorder)
            run.sizes.append(Size(size, inserted, ticks, idle, breaches, queries, finding))
            say(
                f"  {run.database}: {size:,} cases inserted in {inserted:.1f} s; tick "
                f"{ms(statistics.median(ticks))} ms (finding queries {ms(finding)} ms), idle tick "
                f"{ms(idle)} ms, {breaches} breaches"
            )
        run.plans = _plans(engine, now, rules, recorder)
    finally:
        engine.dispose()


def report(runs: list[Run]) -> None:
    say()
    say(
        f"SLA sweep — one `run_sweeps` tick with {DUE} cases due (breach notices), median of "
        f"3; idle = the tick right after (nothing due). Target (information only): tick < "
        f"{TARGET * 1000:.0f} ms at 1M on PostgreSQL and flat across sizes."
    )
    for run in runs:
        say()
        if run.skipped:
            say(f"[{run.database}] skipped: {run.skipped}")
            continue
        rows = []
        base = run.sizes[0].tick if run.sizes else float("nan")
        for s in run.sizes:
            target = (
                (s.tick < TARGET) if run.database == "postgres" and s.cases >= 1_000_000 else None
            )
            rows.append(
                [
                    f"{s.cases:,}",
                    f"{s.insert_seconds:.1f}",
                    ms(s.tick),
                    ms(min(s.ticks)),
                    f"{s.tick / base:.2f}",
                    ms(s.finding),
                    ms(s.idle_tick),
                    s.breaches,
                    verdict(target),
                ]
            )
        say(
            table(
                [
                    "open cases",
                    "insert s",
                    "tick ms",
                    "best ms",
                    "× smallest",
                    "finding ms",
                    "idle tick ms",
                    "breaches",
                    "target",
                ],
                rows,
                title=f"[{run.database}]",
            )
        )
        if run.sizes:
            biggest = run.sizes[-1]
            say(f"  statements of one tick at {biggest.cases:,} cases (by total time):")
            say(
                table(
                    ["statement", "calls", "total ms"],
                    [[q, n, ms(t)] for q, n, t in biggest.queries[:12]],
                )
            )
        for note in run.notes:
            say(f"  {note}")
        for sql, plan in run.plans:
            say(f"\n  plan of: {sql}")
            for line in plan.splitlines():
                say(f"    {line}")


def run(quick: bool, max_cases: int | None = None) -> list[Run]:
    plans: dict[str, list[int]] = {
        "sqlite": [10_000] if quick else [10_000, 100_000],
        "postgres": [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000],
    }
    runs: list[Run] = []
    with temp_dir("chatops-bench-sweep-") as tmp:
        for kind, sizes in plans.items():
            if max_cases:
                sizes = [s for s in sizes if s <= max_cases]
            current = Run(kind)
            runs.append(current)
            say(f"sweep on {kind}…")
            try:
                with empty_database(kind, tmp / "sweep.db") as url:
                    _run_one(current, url, sizes, allow_extrapolation=True)
            except PostgresUnavailable as exc:
                current.skipped = f"PostgreSQL unavailable ({exc})"
    report(runs)
    return runs
