"""`chatops worker` and `chatops tick`: the sweeps and the outbox delivery.

The worker is an APScheduler (3.x) BlockingScheduler in its own process with two interval
jobs: the sweeps every CHATOPS_SWEEP_SECONDS (default 15 s, so a warning fires within that
long of its instant) and the outbox delivery every second. APScheduler's own job store is
in memory on purpose: two schedulers must not share one job store, and none is needed —
every job is an idempotent sweep and the database is the arbiter, so running two workers is
safe.
"""

from __future__ import annotations

import logging
import signal
from datetime import datetime
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import Engine

from chatops.clock import Clock, ManualClock, clock_for
from chatops.config import Settings
from chatops.db import create_schema, make_engine, refresh_statistics
from chatops.policy import SupportRules, load_policy
from chatops.sweeps import SweepReport, run_sweeps
from handlers.app import build_desk
from handlers.desk import Desk

log = logging.getLogger("chatops.worker")

DELIVER_SECONDS = 1
STATISTICS_HOURS = 6  # SQLite's planner statistics (ANALYZE) as the case table grows


def _desk(
    settings: Settings,
    clock: Clock,
    engine: Engine | None = None,
    rules: SupportRules | None = None,
) -> Desk:
    engine = engine or make_engine(settings.database_url)
    create_schema(engine)
    return build_desk(settings, engine, rules or load_policy(settings.policy_file), clock)


def tick(desk: Desk, at: datetime | None = None) -> tuple[SweepReport, int]:
    """Run every sweep once as of `at` (default: the desk's clock), then deliver."""
    now = at or desk.clock.now()
    report = run_sweeps(desk.engine, desk.rules, now)
    sent = desk.delivery.deliver_pending(as_of=now)
    return report, sent


def run_tick(settings: Settings, at: datetime | None) -> tuple[SweepReport, int]:
    """`chatops tick [--at]`: one pass as of an instant (catch up after downtime)."""
    clock: Clock = ManualClock(at) if at else clock_for(settings.clock_file)
    return tick(_desk(settings, clock))


class _BusyDeliveryFilter(logging.Filter):
    """A delivery pass that outlasts its 1 s interval (a backlog after a storm) makes
    APScheduler skip the next run with a WARNING each second; that is the intended
    behaviour (one pass at a time, the running one carries on), so it is logged at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "maximum number of running instances reached" in message and "deliver" in message:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def run_worker(settings: Settings) -> None:
    """`chatops worker`: sweeps and delivery until SIGTERM/SIGINT."""
    desk = _desk(settings, clock_for(settings.clock_file))
    logging.getLogger("apscheduler.scheduler").addFilter(_BusyDeliveryFilter())
    scheduler = BlockingScheduler(timezone="UTC")
    job_defaults: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}

    def sweep() -> None:
        report = run_sweeps(desk.engine, desk.rules, desk.clock.now())
        if report.total():
            log.info("sweep: %s", report)

    def deliver() -> None:
        sent = desk.delivery.deliver_pending()
        if sent:
            log.info("delivered %d message(s)", sent)

    scheduler.add_job(
        sweep,
        "interval",
        seconds=settings.sweep_seconds,
        id="sweep",
        next_run_time=datetime.now(desk.clock.now().tzinfo),
        **job_defaults,
    )
    scheduler.add_job(deliver, "interval", seconds=DELIVER_SECONDS, id="deliver", **job_defaults)
    scheduler.add_job(
        refresh_statistics,
        "interval",
        hours=STATISTICS_HOURS,
        args=[desk.engine],
        id="statistics",
        next_run_time=datetime.now(desk.clock.now().tzinfo),
        **job_defaults,
    )

    def stop(_signum: int, _frame: Any) -> None:
        log.info("worker stopping")
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "worker started: sweeps every %ss, delivery every %ss",
        settings.sweep_seconds,
        DELIVER_SECONDS,
    )
    scheduler.start()
