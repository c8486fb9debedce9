"""Incident storm: 500 Sev A cases opened within 60 s through the front door.

`chatops serve` (gunicorn, gthread) and `chatops worker` run as subprocesses with Slack's
pace (CHATOPS_CHANNEL_PACE_SECONDS=1) against one Slack stand-in. ~20 clients submit the
Sev A intake modal at a fixed rate (open loop: request i leaves at i/rate seconds, whatever
the answers), each with its own title. Then the benchmark waits (bounded) until every page
DM of the first escalation step has been delivered, and reports:

* acks: latency (max, p99), how many were not acknowledged within Slack's 3 s;
* cases: acknowledged vs created (nothing lost, nothing made behind an error);
* pages: page DM rows per on-call person (one per case and step, in the outbox) against the
  page DMs Slack actually received per person (waiting pages to one person go out as one
  DM listing them; the other rows of that DM are marked sent, coalesced into it), and the
  time from the first request until every first-step page DM row was delivered;
* channels: posts per channel, the most in any 1 s window, the shortest gap between two;
* the outbox at the end: rows not sent (pending, parked), duplicate posts seen by Slack.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    SECRET,
    PostgresUnavailable,
    empty_database,
    ms,
    percentile,
    say,
    table,
    temp_dir,
    verdict,
)
from bench.desk import (
    TOKEN,
    capture_templates,
    chatops_server,
    chatops_worker,
    load_database,
)
from bench.loadgen import LoadGenerator, LoadResult, LoadSpec

ACK_LIMIT = 3.0
PACE = 1.0
TITLE_PREFIX = "Storm incident "


@dataclass
class StormResult:
    database: str
    cases: int
    window: float
    clients: int
    load: LoadResult | None = None
    created: int = 0
    acked_without_case: int = 0
    case_without_ack: int = 0
    pages: int = 0
    page_dm_rows: dict[str, int] = field(default_factory=dict)  # first step, per person
    # every step: rows per person, DMs Slack received per person, rows sent inside another
    # row's DM (coalesced) and rows sent as a DM of their own
    page_dm_rows_all: dict[str, int] = field(default_factory=dict)
    page_dms_received: dict[str, int] = field(default_factory=dict)
    page_dm_coalesced: int = 0
    page_dm_own: int = 0
    page_dm_sent: int = 0
    page_dm_total: int = 0
    all_pages_at: float | None = None  # seconds from the first request
    first_page_at: float | None = None
    waited: float = 0.0
    delivery_rate: float = 0.0  # first-step page DMs per second while delivering
    page_delay_p50: float = float("nan")  # submission sent → its first page DM delivered, s
    page_delay_max: float = float("nan")
    escalated_steps: int = 0
    channels: list[tuple[str, int, int, int, float, float]] = field(default_factory=list)
    duplicates: int = 0
    duplicate_samples: list[str] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)
    outbox_unsent_kinds: dict[str, int] = field(default_factory=dict)
    logs: dict[str, dict[str, int]] = field(default_factory=dict)
    log_samples: list[str] = field(default_factory=list)
    skipped: str | None = None


def _query(url: str, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    from sqlalchemy import text

    from chatops.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params or {}).all())
    finally:
        engine.dispose()


def _page_dms(url: str) -> list[tuple[str, int, str, Any, int, bool]]:
    """(user, step, status, sent_at, case id, coalesced) of every page DM row in the outbox;
    coalesced: sent inside the DM of another row (see handlers/delivery.py)."""
    rows = _query(
        url,
        "SELECT payload, status, sent_at, case_id FROM outboxmessage WHERE kind = 'page.notify'",
    )
    out = []
    for payload, status, sent_at, case_id in rows:
        data = payload if isinstance(payload, dict) else json.loads(payload)
        if data.get("to") == "user":
            step = int(data.get("step", 0))
            coalesced = data.get("coalesced_into") is not None
            out.append((str(data.get("user")), step, status, sent_at, int(case_id), coalesced))
    return out


def _page_dms_received(calls: list[Any], users: set[str], standin: Any) -> dict[str, int]:
    """Page DMs Slack accepted, per person: posts to the person's DM channel whose
    notification text is a page (one case, or several listed)."""
    channels = {standin.dm_channel(user): user for user in users}
    received: Counter[str] = Counter()
    for call in calls:
        if call.method != "chat.postMessage" or not call.ok:
            continue
        channel = str(call.response.get("channel") or call.args.get("channel"))
        if channel in channels and "You are paged" in str(call.args.get("text") or ""):
            received[channels[channel]] += 1
    return dict(received)


def _as_epoch(value: Any) -> float:
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


def _max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most events in any half-open window [t, t + window)."""
    times = sorted(times)
    best, j = 0, 0
    for i in range(len(times)):
        while times[i] - times[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best


def _channel_stats(calls: list[Any]) -> list[tuple[str, int, int, int, float, float]]:
    by_channel: dict[str, list[float]] = {}
    for call in calls:
        if call.method == "chat.postMessage" and call.ok:
            channel = str(call.response.get("channel") or call.args.get("channel"))
            by_channel.setdefault(channel, []).append(call.at)
    stats = []
    for channel, times in by_channel.items():
        times.sort()
        gaps = [b - a for a, b in itertools.pairwise(times)]
        span = times[-1] - times[0]
        average = (len(times) - 1) / span if span > 0 else float("nan")
        shortest = min(gaps) if gaps else float("nan")
        stats.append(
            (
                channel,
                len(times),
                _max_in_window(times),
                _max_in_window(times, 10.0),
                shortest,
                average,
            )
        )
    return sorted(stats, key=lambda s: -s[1])


def _duplicates(calls: list[Any]) -> tuple[int, list[str]]:
    """Posts Slack received twice: same channel, same thread, same text."""
    seen: Counter[tuple[str, str, str]] = Counter()
    for call in calls:
        if call.method == "chat.postMessage" and call.ok:
            key = (
                str(call.response.get("channel")),
                str(call.args.get("thread_ts") or ""),
                str(call.args.get("text") or ""),
            )
            seen[key] += 1
    dups = {k: n for k, n in seen.items() if n > 1}
    samples = [f"{n}× in {k[0]}: {k[2][:100]!r}" for k, n in list(dups.items())[:3]]
    return sum(n - 1 for n in dups.values()), samples


def _storm(
    result: StormResult,
    url: str,
    tmp: Path,
    lg: LoadGenerator,
    wait_cap: float,
    workers: int,
    threads: int,
) -> None:
    load_database(url)
    with chatops_server(
        url, tmp, workers=workers, threads=threads, pace=PACE, name=f"storm-{result.database}"
    ) as desk:
        templates = capture_templates(desk)
        with chatops_worker(desk.standin, url, tmp, PACE) as worker:
            # let the set-up case's notices go out, then start from a quiet desk
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _query(
                url, "SELECT 1 FROM outboxmessage WHERE status = 'pending' LIMIT 1"
            ):
                time.sleep(0.5)
            calls_before = len(desk.standin.calls())
            say(
                f"  storm on {result.database}: {result.cases} Sev A submissions in "
                f"{result.window:g} s, up to {result.clients} in flight…"
            )
            load = lg.run(
                LoadSpec(
                    "127.0.0.1",
                    desk.port,
                    SECRET,
                    templates.submit_a,
                    result.clients,
                    token=TOKEN,
                    first=1,
                    count=result.cases,
                    rate=result.cases / result.window,
                    timeout=60,
                )
            )
            result.load = load
            say(
                f"  acked {load.ok}/{load.sent}, max {ms(max(load.all_latencies, default=0))} ms;"
                f" waiting up to {wait_cap:.0f} s for the page DMs…"
            )
            began_wait = time.monotonic()
            while True:
                # done when every submission became a case (listeners queued behind a
                # missed ack may still run) and every first-step page DM went out
                dms = [d for d in _page_dms(url) if d[1] == 0]
                sent = sum(1 for d in dms if d[2] == "sent")
                created = _query(
                    url,
                    'SELECT count(*) FROM "case" WHERE title LIKE :p',
                    {"p": TITLE_PREFIX + "%"},
                )[0][0]
                if created >= load.sent and len(dms) >= created and sent == len(dms):
                    break
                if time.monotonic() - began_wait > wait_cap:
                    break
                time.sleep(1.0)
            result.waited = time.monotonic() - began_wait
            # one snapshot, with everything still running
            _snapshot(result, url, load, desk.standin.calls()[calls_before:], desk.standin)
            result.logs["worker"] = worker.log_problems()
            for line in worker.log_samples("ERROR", 2) + worker.log_samples("Traceback", 1):
                result.log_samples.append(f"worker: {line}")
        result.logs["serve"] = desk.proc.log_problems()
        for needle in ("ERROR", "Traceback", "WORKER TIMEOUT"):
            for line in desk.proc.log_samples(needle, 2):
                result.log_samples.append(f"serve: {line}")


def _snapshot(
    result: StormResult, url: str, load: LoadResult, calls: list[Any], standin: Any
) -> None:
    start = load.started_at
    created = _query(
        url,
        'SELECT title, id, opened_at FROM "case" WHERE title LIKE :p',
        {"p": TITLE_PREFIX + "%"},
    )
    titles = {str(t[0])[len(TITLE_PREFIX) :] for t in created}
    # when the request that opened each case was sent (Slack's view of "the admin submitted")
    requested = {
        int(case_id): load.value_times[str(title)[len(TITLE_PREFIX) :]]
        for title, case_id, _at in created
        if str(title)[len(TITLE_PREFIX) :] in load.value_times
    }
    acked = set(load.sent_values)
    result.created = len(created)
    result.acked_without_case = len(acked - titles)
    result.case_without_ack = len(titles - acked)
    result.pages = _query(
        url,
        'SELECT count(*) FROM page JOIN "case" ON "case".id = page.case_id '
        'WHERE "case".title LIKE :p',
        {"p": TITLE_PREFIX + "%"},
    )[0][0]
    all_dms = _page_dms(url)
    dms = [d for d in all_dms if d[1] == 0]
    result.page_dm_total = len(dms)
    result.page_dm_sent = sum(1 for d in dms if d[2] == "sent")
    result.page_dm_rows = dict(Counter(d[0] for d in dms))
    result.escalated_steps = sum(1 for d in all_dms if d[1] > 0)
    result.page_dm_rows_all = dict(Counter(d[0] for d in all_dms))
    result.page_dms_received = _page_dms_received(calls, set(result.page_dm_rows_all), standin)
    result.page_dm_coalesced = sum(1 for d in all_dms if d[2] == "sent" and d[5])
    result.page_dm_own = sum(1 for d in all_dms if d[2] == "sent" and not d[5])
    delays = sorted(
        _as_epoch(d[3]) - requested[d[4]]
        for d in dms
        if d[2] == "sent" and d[3] and d[4] in requested
    )
    result.page_delay_p50 = percentile(delays, 50)
    result.page_delay_max = max(delays, default=float("nan"))
    sent_times = sorted(_as_epoch(d[3]) for d in dms if d[2] == "sent" and d[3])
    if sent_times:
        result.first_page_at = sent_times[0] - start
        if result.page_dm_sent == result.page_dm_total >= load.sent:
            result.all_pages_at = sent_times[-1] - start
        span = sent_times[-1] - sent_times[0]
        result.delivery_rate = (len(sent_times) - 1) / span if span > 0 else 0.0
    result.outbox = {
        str(status): int(n)
        for status, n in _query(url, "SELECT status, count(*) FROM outboxmessage GROUP BY status")
    }
    result.outbox_unsent_kinds = {
        str(kind): int(n)
        for kind, n in _query(
            url, "SELECT kind, count(*) FROM outboxmessage WHERE status <> 'sent' GROUP BY kind"
        )
    }
    result.channels = _channel_stats(calls)
    result.duplicates, result.duplicate_samples = _duplicates(calls)


def report(result: StormResult) -> None:
    say()
    say(
        f"Incident storm — {result.cases} Sev A intake submissions in {result.window:g} s "
        f"({result.cases / result.window:.1f}/s, open loop, up to {result.clients} in flight), "
        f"`chatops serve` + `chatops worker`, channel pace {PACE:g} s, {result.database}."
    )
    if result.skipped:
        say(f"skipped: {result.skipped}")
        return
    load = result.load
    assert load is not None
    late = sum(1 for x in load.all_latencies if x >= ACK_LIMIT)
    span = max(load.send_times, default=0.0) - min(load.send_times, default=0.0)
    unanswered = load.statuses.get(0, 0)
    acked_ok = load.ok
    rows = [
        ["requests sent", load.sent, ""],
        [
            "sent over (first → last request)",
            f"{span:.1f} s",
            verdict(span <= result.window * 1.05),
        ],
        ["acked 200 (no error body)", acked_ok, verdict(acked_ok == load.sent)],
        [
            "answered non-200 / no answer",
            f"{load.sent - acked_ok - load.bad_bodies} "
            f"({dict((k, v) for k, v in load.statuses.items() if k != 200)})",
            "",
        ],
        [
            "ack p50 / p99 / max ms",
            f"{ms(percentile(load.all_latencies, 50))} / "
            f"{ms(percentile(load.all_latencies, 99))} / "
            f"{ms(max(load.all_latencies, default=float('nan')))}",
            verdict(late == 0 and unanswered == 0),
        ],
        [f"acks ≥ {ACK_LIMIT:g} s (Slack shows an error)", late, verdict(late == 0)],
        ["cases created", result.created, verdict(result.created == load.sent)],
        ["submissions with no case by the end", load.sent - result.created, ""],
        [
            "acked but no case (lost)",
            result.acked_without_case,
            verdict(result.acked_without_case == 0),
        ],
        [
            "case made behind an error answer",
            result.case_without_ack,
            verdict(result.case_without_ack == 0),
        ],
        ["pages opened", result.pages, ""],
        ["first-step page DM rows (outbox, one per case)", result.page_dm_total, ""],
        ["waited after the last request", f"{result.waited:.0f} s", ""],
        [
            "page DM rows per on-call person, all steps",
            ", ".join(f"{u}: {n}" for u, n in result.page_dm_rows_all.items()) or "-",
            "",
        ],
        [
            "page DMs Slack received per on-call person",
            ", ".join(f"{u}: {result.page_dms_received.get(u, 0)}" for u in result.page_dm_rows_all)
            or "-",
            # grouped: fewer DMs than pages whenever pages arrive faster than Slack's pace
            # lets one person's DMs go out (how many fewer is that ratio, not a target)
            verdict(
                bool(result.page_dm_rows_all)
                and all(
                    result.page_dms_received.get(u, 0) < n or n == 1
                    for u, n in result.page_dm_rows_all.items()
                )
            ),
        ],
        [
            "page DM rows sent as their own DM / coalesced into another's",
            f"{result.page_dm_own} / {result.page_dm_coalesced}",
            # every DM Slack received is one row's own message: none sent twice, none invented
            verdict(result.page_dm_own == sum(result.page_dms_received.values())),
        ],
        [
            "first-step page DM rows delivered",
            f"{result.page_dm_sent}/{result.page_dm_total}",
            "",
        ],
        [
            "first page DM delivered after",
            f"{result.first_page_at:.1f} s" if result.first_page_at is not None else "-",
            "",
        ],
        [
            "every page DM delivered after",
            f"{result.all_pages_at:.1f} s"
            if result.all_pages_at is not None
            else f"not within the {result.waited:.0f} s waited",
            "",
        ],
        ["first-step page DM rows delivered per second", f"{result.delivery_rate:.2f}/s", ""],
        [
            "submission → its page DM delivered, p50 / max",
            f"{result.page_delay_p50:.1f} s / {result.page_delay_max:.1f} s",
            "",
        ],
        ["page DMs of later escalation steps", result.escalated_steps, ""],
        ["duplicate posts seen by Slack", result.duplicates, verdict(result.duplicates == 0)],
        ["outbox at the end", ", ".join(f"{k} {v}" for k, v in sorted(result.outbox.items())), ""],
        [
            "outbox not sent, by kind",
            ", ".join(f"{k} {v}" for k, v in sorted(result.outbox_unsent_kinds.items())) or "0",
            "",
        ],
    ]
    say(table(["", "value", "target"], rows))
    if result.page_dm_sent < load.sent and result.delivery_rate > 0:
        # every submission becomes a case with a first-step page DM once its listener runs
        left = load.sent - result.page_dm_sent
        more = left / result.delivery_rate
        say(
            f"  projection: {left} first-step page DMs not delivered yet (incl. submissions "
            f"whose listener has not run) at {result.delivery_rate:.2f}/s → ~{more:.0f} s more, "
            f"every page after ~{result.window + result.waited + more:.0f} s"
        )
    say()
    say(
        table(
            [
                "channel",
                "posts",
                "average /s",
                "most in any 1 s",
                "most in any 10 s",
                "shortest gap s",
                "≤ 1/s",
            ],
            [
                [c, n, f"{a:.2f}", w1, w10, f"{g:.3f}" if g == g else "-", verdict(w10 <= 11)]
                for c, n, w1, w10, g, a in result.channels[:8]
            ],
            title="posts per channel during the storm and the wait (Slack stand-in; ≤ 1/s is "
            "judged on 10 s windows, ≤ 11 posts, as arrival jitter of a few ms can put two "
            "posts paced 1 s apart into one 1 s window):",
        )
    )
    for sample in result.duplicate_samples:
        say(f"  duplicate: {sample}")
    for name, counts in result.logs.items():
        say(f"  {name} log: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for line in result.log_samples:
        say(f"    {line}")
    for sample in load.samples[:6]:
        say(f"  answer: {sample[:200]!r}")


def run(
    quick: bool,
    *,
    database: str = "postgres",
    workers: int = 2,
    threads: int = 8,
) -> StormResult:
    cases, window, wait_cap = (20, 2.5, 45.0) if quick else (500, 60.0, 450.0)
    # open loop: one connection per submission, so a slow answer (up to the 60 s client
    # timeout) never delays the next one; Slack itself does not limit them either
    result = StormResult(database, cases, window, clients=cases)
    with temp_dir("chatops-bench-storm-") as tmp, LoadGenerator() as lg:
        try:
            with empty_database(database, tmp / "storm.db") as url:
                _storm(result, url, tmp, lg, wait_cap, workers, threads)
        except PostgresUnavailable as exc:
            result.skipped = f"PostgreSQL unavailable ({exc})"
    report(result)
    return result
