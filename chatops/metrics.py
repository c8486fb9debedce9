"""Prometheus metrics (`GET /metrics`).

Counters and the ack-latency histogram are per serving process: one `chatops serve` (all
its gunicorn workers together, see `share_between_processes`) is one scrape target, and
Prometheus sums across targets. The outbox gauges are read from the database at scrape
time, so any process reports the true backlog.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from chatops.cases.notices import SLA_BREACH, SLA_WARNING
from models import OutboxMessage, Page

log = logging.getLogger("chatops.metrics")

REGISTRY = CollectorRegistry()

REQUESTS = Counter(
    "chatops_requests_total",
    "Requests to /slack/events by kind (command, block_actions, view_submission, event, …) "
    "and outcome (ok, unauthorized, malformed, error).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
ACK_SECONDS = Histogram(
    "chatops_ack_seconds",
    "Time from receiving a Slack request to answering it (Slack allows 3 s).",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0),
    registry=REGISTRY,
)
BUSY = Counter(
    "chatops_busy_answers_total",
    "Requests answered 'busy, nothing saved' because their write could not be done within "
    "the answer's deadline (the database's write lock held too long), by kind.",
    ["kind"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "chatops_deliveries_total",
    "Outbox deliveries by outcome (sent, failed = will retry, parked = given up).",
    ["outcome"],
    registry=REGISTRY,
)


class OutboxCollector(Collector):
    """Backlog and age of the oldest pending notification, and the SLA notices and pages
    the desk has given, from the database.

    Notices and pages are counted from the rows that record them, not in the process that
    wrote them: the sweeps and the escalation run in `chatops worker` (or `chatops tick`),
    which nobody scrapes, and a row is written once whichever process takes it and only if
    its transaction commits (a write rolled back and tried again is not counted twice).
    Every process reports the same totals: take one target's value, not the sum."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The outbox gauges, and `chatops_database_up`: a database that does not answer
        leaves the gauges out (the process's own counters are still scraped) and says 0."""
        try:
            with self.engine.connect() as connection:
                rows = dict(
                    connection.execute(
                        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                    ).all()
                )
                oldest = connection.execute(
                    select(func.min(OutboxMessage.created_at)).where(
                        OutboxMessage.status == "pending"
                    )
                ).scalar()
                notices = dict(
                    connection.execute(
                        # one notice in the case's thread per warning or breach (the owner's
                        # DM and the card refresh are its copies)
                        select(OutboxMessage.kind, func.count())
                        .where(
                            OutboxMessage.kind.in_([SLA_WARNING, SLA_BREACH]),  # type: ignore[attr-defined]
                            OutboxMessage.key.like("%:thread"),  # type: ignore[attr-defined]
                        )
                        .group_by(OutboxMessage.kind)
                    ).all()
                )
                started, steps, acknowledged = connection.execute(
                    select(
                        func.count(),
                        func.coalesce(func.sum(Page.step), 0),
                        func.count(Page.acknowledged_at),
                    )
                ).one()
        except SQLAlchemyError as exc:
            log.warning("metrics: the outbox could not be read: %s", " ".join(str(exc).split()))
            yield _database_up(0)
            return
        yield _database_up(1)
        backlog = GaugeMetricFamily(
            "chatops_outbox_messages", "Outbox messages by status.", labels=["status"]
        )
        for status in ("pending", "sent", "parked"):
            backlog.add_metric([status], rows.get(status, 0))
        yield backlog
        if isinstance(oldest, str):  # SQLite without the column type's conversion
            oldest = datetime.fromisoformat(oldest)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "chatops_outbox_oldest_pending_seconds",
            "Age of the oldest pending outbox message (wall clock).",
            value=age,
        )
        sla = CounterMetricFamily(
            "chatops_sla_notices",
            "SLA notices given, by kind (warning, breach); the desk's total, from the database.",
            labels=["kind"],
        )
        sla.add_metric(["warning"], notices.get(SLA_WARNING, 0))
        sla.add_metric(["breach"], notices.get(SLA_BREACH, 0))
        yield sla
        pages = CounterMetricFamily(
            "chatops_pages",
            "Sev A paging: pages started (a case made Sev A), escalation steps past each "
            "page's first, and acknowledgements (a claim that acknowledges counts); the "
            "desk's total, from the database.",
            labels=["event"],
        )
        pages.add_metric(["started"], started)
        pages.add_metric(["step"], steps)
        pages.add_metric(["acknowledged"], acknowledged)
        yield pages


def _database_up(value: int) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "chatops_database_up",
        "Whether the database answered this scrape (1) or not (0).",
        value=value,
    )


MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def share_between_processes() -> str | None:
    """Make the counters of every process forked from this one add up in each scrape.

    gunicorn hands each connection to whichever worker accepts it, a scrape's included, so
    with counters kept in each worker's memory a scrape saw one worker's share, a different
    one each time (a counter that seems to jump back and forth). Each process now keeps its
    values in a file of one folder, and a scrape adds up the files, those of workers that
    have exited included (a counter never goes back when gunicorn replaces a worker).
    Called in the gunicorn master before it forks; the folder is a fresh one unless the
    operator names one in `PROMETHEUS_MULTIPROC_DIR`. Returns the folder this process
    created (for `discard_shared`), or None."""
    created = None
    if not os.environ.get(MULTIPROCESS_ENV):
        created = tempfile.mkdtemp(prefix="chatops-metrics-")
        os.environ[MULTIPROCESS_ENV] = created
    # prometheus_client picks how it stores values when first imported, which may have been
    # before the folder was known; every counter child made from now on uses the files.
    values.ValueClass = values.MultiProcessValue()
    return created


def discard_shared(folder: str | None) -> None:
    """Remove the folder `share_between_processes` created (the server is stopping)."""
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


_collectors: dict[int, OutboxCollector] = {}


def render(engine: Engine) -> bytes:
    """The exposition text, with the database gauges for `engine`."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(OutboxCollector(engine))
        return generate_latest(registry)
    if id(engine) not in _collectors:
        collector = OutboxCollector(engine)
        REGISTRY.register(collector)
        _collectors[id(engine)] = collector
    return generate_latest(REGISTRY)
