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
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from chatops import metrics
from chatops.clock import Clock, ManualClock, clock_for
from chatops.config import Settings, SettingsError
from chatops.db import create_schema, make_engine, refresh_statistics
from chatops.policy import SupportRules, load_policy
from chatops.readiness import DatabaseCheck
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


class _PassChatterFilter(logging.Filter):
    """APScheduler logs "Running job …" and "Job … executed successfully" at INFO for every
    pass: two lines a second for the delivery alone. The worker logs what a pass did
    (delivered, swept) itself, so these are logged at DEBUG; a job that fails stays ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO:
            message = record.getMessage()
            if message.startswith("Running job ") or message.endswith(" executed successfully"):
                record.levelno, record.levelname = logging.DEBUG, "DEBUG"
                return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


class _DatabaseOutage:
    """The jobs' passes while the database cannot be reached (a restart, a failover, the
    network): one ERROR line when it starts, one a minute while it lasts and an INFO line
    when it is over, instead of a traceback from every pass of every job (the delivery runs
    every second). The next pass simply tries again; nothing is lost meanwhile."""

    REMIND_SECONDS = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the jobs run on APScheduler's threads
        self._since: float | None = None
        self._said: float = 0.0

    def guard(self, job: Callable[..., None], *, reads: bool = True) -> Callable[..., None]:
        """`job` with the outage handled; `reads=False` for a job that may finish without
        asking the database anything (its success says nothing about the database)."""

        def guarded(*args: Any) -> None:
            try:
                job(*args)
            except DBAPIError as exc:
                if not (isinstance(exc, OperationalError) or exc.connection_invalidated):
                    raise
                self._failed(exc)
            else:
                if reads:
                    self._answered()

        guarded.__name__ = guarded.__qualname__ = job.__name__
        return guarded

    def _failed(self, exc: DBAPIError) -> None:
        reason = " ".join(str(exc.orig or exc).split()) or type(exc).__name__
        now = time.monotonic()
        with self._lock:
            if self._since is None:
                self._since = self._said = now
                log.error("the database could not be reached: %s; retrying every pass", reason)
            elif now - self._said >= self.REMIND_SECONDS:
                self._said = now
                log.error(
                    "the database could still not be reached after %.0f s: %s",
                    now - self._since,
                    reason,
                )

    def _answered(self) -> None:
        with self._lock:
            if self._since is not None:
                log.info("the database answers again after %.0f s", time.monotonic() - self._since)
                self._since = None


class MonitoringWsgi:
    """A worker's `GET /metrics` (its deliveries, which no serving process counts, and the
    gauges read from the database) and `GET /healthz` (the database); 404 otherwise."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.check = DatabaseCheck(engine)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if method == "GET" and path == "/metrics":
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [metrics.render(self.engine)]
        if method == "GET" and path == "/healthz":
            problem = self.check.problem()
            status = "503 Service Unavailable" if problem else "200 OK"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [(problem or "ok").encode("utf-8")]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found"]


def run_worker(settings: Settings, host: str = "0.0.0.0", port: int | None = None) -> None:
    """`chatops worker`: sweeps and delivery until SIGTERM/SIGINT; with `port`, its metrics
    and health served there."""
    desk = _desk(settings, clock_for(settings.clock_file))
    if port is not None:
        from handlers.server import ThreadedServer

        try:
            monitor = ThreadedServer(MonitoringWsgi(desk.engine), host, port).start()
        except OSError as exc:
            raise SettingsError(
                f"cannot serve /healthz and /metrics on {host}:{port} (--host/--port): "
                f"{exc.strerror or exc}"
            ) from exc
        log.info("worker: /healthz and /metrics on %s", monitor.url)
    logging.getLogger("apscheduler.scheduler").addFilter(_BusyDeliveryFilter())
    logging.getLogger("apscheduler.executors.default").addFilter(_PassChatterFilter())
    scheduler = BlockingScheduler(timezone="UTC")
    job_defaults: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
    outage = _DatabaseOutage()

    @outage.guard
    def sweep() -> None:
        report = run_sweeps(desk.engine, desk.rules, desk.clock.now())
        if report.total():
            log.info("sweep: %s", report)

    @outage.guard
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
        outage.guard(refresh_statistics, reads=False),  # nothing to do on PostgreSQL
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
