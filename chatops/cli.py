"""The `chatops` command: operator tools and the processes to run.

Slack-facing parts (serve, demo, worker delivery) are imported inside their commands, so the
core stays free of Slack imports and operator commands start fast.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote

import click

from chatops.config import Settings, SettingsError, load_settings
from chatops.yamlfile import FileError

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.exc import OperationalError

# Exit statuses every command shares (`outbox status` adds 1: parked messages exist).
EXIT_INVALID = 2  # a setting, a file or an argument is wrong
EXIT_DATABASE = 3  # the database could not be reached (or failed)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _fail(message: str, status: int = EXIT_INVALID) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(status)


def _fail_file(what: str, exc: FileError) -> NoReturn:
    """A file that cannot be used: one line for one problem, else one line per problem."""
    if len(exc.problems) == 1:
        _fail(f"{what} ({exc.path}): {exc.problems[0]}")
    _fail(f"{what} ({exc.path}):\n  " + "\n  ".join(exc.problems))


def _database_problem(exc: OperationalError) -> str:
    """One line for a database that cannot be used, naming it without its password."""
    from sqlalchemy.engine import make_url

    from chatops.db import normalise_url

    reason = " ".join(str(exc.orig or exc).split()) or type(exc).__name__
    try:
        url = make_url(normalise_url(load_settings(require_slack=False).database_url))
    except Exception:  # the command got this far with it; be safe all the same
        where = "the database"
    else:
        where = f"the database {url.render_as_string(hide_password=True)}"
        if url.password:
            for secret in {str(url.password), quote(str(url.password), safe="")}:
                reason = reason.replace(secret, "***")
    if exc.statement is None:  # refused before any statement: connecting failed
        return f"{where} could not be reached: {reason}"
    return f"{where} failed: {reason}"


class _Commands(click.Group):
    """`chatops`: what any command may meet ends it with one line, not a traceback — settings
    that are missing or wrong (status 2), a database down or unreachable (status 3)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            _fail(str(exc))
        except Exception as exc:
            from sqlalchemy.exc import OperationalError

            if not isinstance(exc, OperationalError):
                raise
            _fail(_database_problem(exc), EXIT_DATABASE)


def _database(settings: Settings) -> Engine:
    """The engine for DATABASE_URL, its schema brought up to date."""
    from chatops.db import create_schema, make_engine

    engine = make_engine(settings.database_url)
    create_schema(engine)
    return engine


def _policy(path: Path | None = None):  # type: ignore[no-untyped-def]
    from chatops.policy import load_policy

    try:
        return load_policy(path)
    except FileError as exc:
        _fail_file("the policy file is invalid", exc)


@click.group(cls=_Commands)
@click.option(
    "--log-level",
    default=None,
    help="DEBUG, INFO, WARNING, ERROR (default: CHATOPS_LOG_LEVEL, else INFO).",
)
def main(log_level: str | None) -> None:
    """chatops: a support desk that lives in Slack."""
    from chatops.logs import configure, configured_secrets

    source = "--log-level" if log_level else "CHATOPS_LOG_LEVEL"
    level = (log_level or os.environ.get("CHATOPS_LOG_LEVEL") or "INFO").strip()
    if level.upper() not in LOG_LEVELS:
        raise SettingsError(
            f"{source} {level!r} is not a log level (one of {', '.join(LOG_LEVELS)})"
        )
    fmt = (os.environ.get("CHATOPS_LOG_FORMAT") or "text").strip()
    if fmt.lower() not in ("json", "text"):
        raise SettingsError(f"CHATOPS_LOG_FORMAT {fmt!r} is not json or text")
    configure(
        level=level.upper(),
        fmt=fmt.lower(),
        secrets=configured_secrets(os.environ),
    )


@main.command()
@click.argument("roster", type=click.Path(dir_okay=False, path_type=Path))
def load(roster: Path) -> None:
    """Load a roster file (organisations, people, channels, rotations, overrides) into the
    database."""
    from chatops.clock import clock_for
    from chatops.directory.roster import load_roster

    settings = load_settings(require_slack=False)
    rules = _policy(settings.policy_file)
    engine = _database(settings)
    try:
        # the process clock: whether an override left out of the file is running is "now"
        summary = load_roster(engine, roster, rules.policy, clock_for(settings.clock_file).now)
    except FileError as exc:
        _fail_file("nothing was loaded", exc)
    if not summary.changed:
        click.echo(f"{roster}: already up to date, nothing changed.")
        return
    click.echo(
        f"{roster}: organisations +{summary.organisations_added} "
        f"~{summary.organisations_updated}, people +{summary.people_added} "
        f"~{summary.people_updated} retired {summary.people_retired}, "
        f"channels set {summary.channels_set}, rotations set "
        f"{summary.rotations_set} removed {summary.rotations_removed}, "
        f"overrides +{summary.overrides_added} "
        f"~{summary.overrides_updated} removed {summary.overrides_removed}, cases "
        f"released {summary.cases_released}, cases whose requester is no longer an admin "
        f"{summary.requesters_gone}."
    )


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=3000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers", default=2, show_default=True, type=click.IntRange(min=1), help="gunicorn processes"
)
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="threads per process",
)
@click.option(
    "--socket-mode",
    is_flag=True,
    help="connect out to Slack with SLACK_APP_TOKEN instead of serving a request URL; "
    "--host/--port then serve only /healthz and /metrics",
)
def serve(host: str, port: int, workers: int, threads: int, socket_mode: bool) -> None:
    """Serve POST /slack/events, GET /healthz and GET /metrics (gunicorn, threaded workers),
    or with --socket-mode take Slack's requests over a WebSocket (one process)."""
    from chatops.verification import SMTP_ENV, smtp_problem, smtp_url

    problem = smtp_problem(smtp_url())  # found now, not when a caller is first verified
    if problem:
        raise SettingsError(f"{SMTP_ENV}: {problem}")
    if socket_mode:
        from handlers.socket_mode import run_socket_mode, socket_mode_settings

        settings = socket_mode_settings()
        _policy(settings.policy_file)
        run_socket_mode(settings, host, port, threads)
        return
    settings = load_settings()
    _policy(settings.policy_file)  # an invalid policy stops start-up here, not per worker
    # So does a database that cannot be reached (one line, status 3, instead of a traceback
    # from every worker); the schema is brought up to date once, before the workers start.
    # No connection is left open to be shared by the forked workers.
    _database(settings).dispose()
    from handlers.server import run_gunicorn

    run_gunicorn(settings, host, port, workers, threads)


@main.command()
def migrate() -> None:
    """Bring the database schema to the latest revision (Alembic)."""
    from chatops.db import make_engine
    from chatops.migrate import current_revision, upgrade

    settings = load_settings(require_slack=False)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    click.echo(f"database at revision {current_revision(engine)}")


@main.command()
@click.argument("days", required=False, default=7, type=click.IntRange(1, 365))
@click.option(
    "--until",
    "until_text",
    default=None,
    help="ISO-8601 end of the period (default: now); support time zone if no offset",
)
def report(days: int, until_text: str | None) -> None:
    """First-response SLA report over the cases opened in the last DAYS days (default 7)."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from sqlmodel import Session

    from chatops.clock import clock_for
    from chatops.reports import format_report_text, sla_report

    settings = load_settings(require_slack=False)
    rules = _policy(settings.policy_file)
    zone = ZoneInfo(rules.policy.support_timezone)
    # The process clock, as `serve` and `worker` use: in a drill the desk's "now" is the
    # clock file's instant, and the report must not judge the desk against another one.
    now = clock_for(settings.clock_file).now().astimezone(zone)
    until = now
    if until_text:
        try:
            until = datetime.fromisoformat(until_text)
        except ValueError:
            _fail(f"--until {until_text!r} is not an ISO-8601 instant")
        if until.tzinfo is None:
            until = until.replace(tzinfo=zone)
    until = until.astimezone(zone)
    with Session(_database(settings)) as session:
        # A period ending later than now (this week, to Monday 00:00) is judged as of now:
        # a due still ahead is pending, not breached, and nothing later has happened yet.
        result = sla_report(
            session, until - timedelta(days=days), until, rules, as_of=min(until, now)
        )
    click.echo(format_report_text(result), nl=False)


@main.command("load-articles")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def load_articles_command(directory: Path) -> None:
    """Load the knowledge base: every *.md file in DIRECTORY (idempotent)."""
    from chatops.kb.loader import load_articles

    settings = load_settings(require_slack=False)
    try:
        summary = load_articles(_database(settings), directory)
    except FileError as exc:
        _fail_file("nothing was loaded", exc)
    click.echo(f"{directory}: {summary}")


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="address of --port")
@click.option(
    "--port",
    default=None,
    type=click.IntRange(0, 65535),
    help="serve GET /metrics and GET /healthz on this port (default: none)",
)
def worker(host: str, port: int | None) -> None:
    """Run the sweeps (SLA warnings, pages, handoffs) and deliver the outbox until stopped."""
    settings = load_settings(require_signing=False)
    _policy(settings.policy_file)
    from handlers.worker import run_worker

    run_worker(settings, host, port)


@main.command()
@click.option(
    "--at",
    "at",
    default=None,
    help="ISO-8601 instant (default: now); support time zone if no offset",
)
def tick(at: str | None) -> None:
    """Run every job once as of an instant, then deliver (catch up after downtime)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    settings = load_settings(require_signing=False)
    rules = _policy(settings.policy_file)
    instant = None
    if at:
        try:
            instant = datetime.fromisoformat(at)
        except ValueError:
            _fail(f"--at {at!r} is not an ISO-8601 instant (e.g. 2026-11-26T09:00+08:00)")
        assert instant is not None
        if instant.tzinfo is None:  # as `report --until` and `/support oncall override`
            instant = instant.replace(tzinfo=ZoneInfo(rules.policy.support_timezone))
    from handlers.worker import run_tick

    report, sent = run_tick(settings, instant)
    click.echo(
        f"warnings {report.warnings}, breaches {report.breaches}, reminders "
        f"{report.reminders}, downgrade offers {report.downgrade_offers}, page steps "
        f"{report.page_steps}, handoffs {report.handoffs}, gaps {report.gaps}; "
        f"delivered {sent}."
    )


@main.group()
def outbox() -> None:
    """Inspect the outbox."""


def _age(age: timedelta) -> str:
    """An age as a person reads it, to the unit that matters: "42 s", "5 min 12 s",
    "3 h 5 min", "8 d 11 h" (none below 0: a row `tick --at` wrote for a later instant)."""
    seconds = max(0, int(age.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"


@outbox.command("status")
def outbox_status_command() -> None:
    """Pending, sent and parked notifications, and the oldest pending one's age.

    Exit status: 0 when nothing is parked, 1 when parked messages exist (listed; `chatops
    outbox retry` queues them again), 2 when a setting is wrong, 3 when the database could
    not be reached.
    """
    from datetime import UTC, datetime

    from handlers.delivery import outbox_status

    settings = load_settings(require_slack=False)
    status = outbox_status(_database(settings), datetime.now(UTC))
    counts = status["counts"]
    click.echo(
        "pending {}, sent {}, parked {}".format(
            counts.get("pending", 0), counts.get("sent", 0), counts.get("parked", 0)
        )
    )
    if status["oldest_pending_age"] is not None:
        click.echo(f"oldest pending: {_age(status['oldest_pending_age'])} old")
    for key, kind, attempts, error in status["parked"]:
        click.echo(f"PARKED {key} ({kind}) after {attempts} attempt(s): {error}")
    if status["parked"]:
        sys.exit(1)


@outbox.command("retry")
@click.option("--all", "every", is_flag=True, help="every parked message")
@click.argument("keys", nargs=-1, metavar="[KEY]...")
def outbox_retry_command(every: bool, keys: tuple[str, ...]) -> None:
    """Queue parked messages again: those named by KEY (as `chatops outbox status` lists
    them), or --all. Each is pending again with a fresh attempt count and due now; the
    worker sends it (rendered from the case as it is then).

    Exit status: 0 when every message asked for was queued, 1 when a KEY named no parked
    message (the others are queued), 2 when the arguments or a setting are wrong, 3 when
    the database could not be reached.
    """
    from chatops.clock import clock_for
    from chatops.db import transaction
    from chatops.outbox import parked_not_requeued, requeue_parked

    if every == bool(keys):
        _fail(
            "name the parked messages to queue again (KEY as `chatops outbox status` lists "
            "them) or give --all, not both"
        )
    settings = load_settings(require_slack=False)
    engine = _database(settings)
    with transaction(engine) as session:
        queued = requeue_parked(session, clock_for(settings.clock_file).now(), keys or None)
        kept = parked_not_requeued(session, keys or None)
    click.echo(f"{len(queued)} parked message(s) queued again.")
    for key in sorted(kept):
        click.echo(
            f"{key}: stays parked: a verification code is not kept once its DM fails; ask "
            "for a new code (Verify caller on the case card)",
            err=True,
        )
    missing = [key for key in keys if key not in queued and key not in kept]
    for key in missing:
        click.echo(f"{key}: not parked (no such message, or it is pending or sent)", err=True)
    if missing or (keys and kept):
        sys.exit(1)


@main.group()
def policy() -> None:
    """Inspect the support policy."""


@policy.command("check")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def policy_check(path: Path) -> None:
    """Validate a policy file without starting anything."""
    rules = _policy(path)
    click.echo(f"{path}: valid ({rules.policy.name}, version {rules.policy.version}).")


@policy.command("show")
def policy_show() -> None:
    """Print the effective policy as a table."""
    from chatops.policy.show import render_policy

    settings = load_settings(require_slack=False)
    click.echo(render_policy(_policy(settings.policy_file)))


@main.command()
@click.option("--roster", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option(
    "--script",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="read demo commands from a file instead of the keyboard",
)
@click.option(
    "--start",
    default=None,
    help="start the demo clock here (ISO-8601), not now; support time zone if no offset",
)
def demo(roster: Path | None, script: Path | None, start: str | None) -> None:
    """The whole desk offline: the real app, a local Slack stand-in, SQLite, a roster."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from chatops.demo import run_demo

    instant = None
    if start:
        try:
            instant = datetime.fromisoformat(start)
        except ValueError:
            _fail(f"--start {start!r} is not an ISO-8601 instant")
        assert instant is not None
        if instant.tzinfo is None:  # as `tick --at` and `report --until`
            rules = _policy(load_settings(require_slack=False).policy_file)
            instant = instant.replace(tzinfo=ZoneInfo(rules.policy.support_timezone))
    sys.exit(run_demo(roster=roster, script=script, start=instant))


if __name__ == "__main__":
    main()
