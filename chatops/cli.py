"""The `chatops` command: operator tools and the processes to run.

Slack-facing parts (serve, demo, worker delivery) are imported inside their commands, so the
core stays free of Slack imports and operator commands start fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from chatops.config import SettingsError, load_settings
from chatops.yamlfile import FileError


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _policy(path: Path | None = None):  # type: ignore[no-untyped-def]
    from chatops.policy import load_policy

    try:
        return load_policy(path)
    except FileError as exc:
        _fail("the policy file is invalid:\n  " + "\n  ".join([exc.path, *exc.problems]))


@click.group()
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING (default from env).")
def main(log_level: str | None) -> None:
    """chatops: a support desk that lives in Slack."""
    from chatops.logs import configure

    configure(
        level=log_level or os.environ.get("CHATOPS_LOG_LEVEL", "INFO"),
        fmt=os.environ.get("CHATOPS_LOG_FORMAT", "text"),
        secrets=[os.environ.get("SLACK_BOT_TOKEN", ""), os.environ.get("SLACK_SIGNING_SECRET", "")],
    )


@main.command()
@click.argument("roster", type=click.Path(dir_okay=False, path_type=Path))
def load(roster: Path) -> None:
    """Load a roster file (organisations, people, channels) into the database."""
    from chatops.db import create_schema, make_engine
    from chatops.directory.roster import load_roster

    try:
        settings = load_settings(require_slack=False)
    except SettingsError as exc:
        _fail(str(exc))
    rules = _policy(settings.policy_file)
    engine = make_engine(settings.database_url)
    create_schema(engine)
    try:
        summary = load_roster(engine, roster, rules.policy)
    except FileError as exc:
        _fail("nothing was loaded:\n  " + "\n  ".join(exc.problems) + f"\n  (in {exc.path})")
    if not summary.changed:
        click.echo(f"{roster}: already up to date, nothing changed.")
        return
    click.echo(
        f"{roster}: organisations +{summary.organisations_added} "
        f"~{summary.organisations_updated}, people +{summary.people_added} "
        f"~{summary.people_updated}, channels set {summary.channels_set}, rotations set "
        f"{summary.rotations_set}, overrides +{summary.overrides_added}."
    )


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn processes")
@click.option("--threads", default=8, show_default=True, type=int, help="threads per process")
@click.option(
    "--socket-mode",
    is_flag=True,
    help="connect out to Slack with SLACK_APP_TOKEN instead of serving a request URL; "
    "--host/--port then serve only /healthz and /metrics",
)
def serve(host: str, port: int, workers: int, threads: int, socket_mode: bool) -> None:
    """Serve POST /slack/events and GET /healthz (gunicorn, threaded workers), or with
    --socket-mode take Slack's requests over a WebSocket (one process)."""
    if socket_mode:
        from handlers.socket_mode import run_socket_mode, socket_mode_settings

        try:
            settings = socket_mode_settings()
            _policy(settings.policy_file)
            run_socket_mode(settings, host, port, threads)
        except SettingsError as exc:
            _fail(str(exc))
        return
    try:
        settings = load_settings()
    except SettingsError as exc:
        _fail(str(exc))
    _policy(settings.policy_file)  # an invalid policy stops start-up here, not per worker
    from handlers.server import run_gunicorn

    run_gunicorn(settings, host, port, workers, threads)


@main.command()
def migrate() -> None:
    """Bring the database schema to the latest revision (Alembic)."""
    from chatops.db import make_engine
    from chatops.migrate import current_revision, upgrade

    try:
        settings = load_settings(require_slack=False)
    except SettingsError as exc:
        _fail(str(exc))
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
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from sqlmodel import Session

    from chatops.db import create_schema, make_engine
    from chatops.reports import format_report_text, sla_report

    try:
        settings = load_settings(require_slack=False)
    except SettingsError as exc:
        _fail(str(exc))
    rules = _policy(settings.policy_file)
    zone = ZoneInfo(rules.policy.support_timezone)
    until = datetime.now(UTC)
    if until_text:
        try:
            until = datetime.fromisoformat(until_text)
        except ValueError:
            _fail(f"--until {until_text!r} is not an ISO-8601 instant")
        if until.tzinfo is None:
            until = until.replace(tzinfo=zone)
    until = until.astimezone(zone)
    engine = make_engine(settings.database_url)
    create_schema(engine)
    with Session(engine) as session:
        result = sla_report(session, until - timedelta(days=days), until, rules)
    click.echo(format_report_text(result), nl=False)


@main.command("load-articles")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def load_articles_command(directory: Path) -> None:
    """Load the knowledge base: every *.md file in DIRECTORY (idempotent)."""
    from chatops.db import create_schema, make_engine
    from chatops.kb.loader import load_articles

    try:
        settings = load_settings(require_slack=False)
    except SettingsError as exc:
        _fail(str(exc))
    engine = make_engine(settings.database_url)
    create_schema(engine)
    try:
        summary = load_articles(engine, directory)
    except FileError as exc:
        _fail("nothing was loaded:\n  " + "\n  ".join(exc.problems) + f"\n  (in {exc.path})")
    click.echo(f"{directory}: {summary}")


@main.command()
def worker() -> None:
    """Run the sweeps (SLA warnings, pages, handoffs) and deliver the outbox until stopped."""
    try:
        settings = load_settings(require_signing=False)
    except SettingsError as exc:
        _fail(str(exc))
    _policy(settings.policy_file)
    from handlers.worker import run_worker

    run_worker(settings)


@main.command()
@click.option("--at", "at", default=None, help="ISO-8601 instant (default: now)")
def tick(at: str | None) -> None:
    """Run every job once as of an instant, then deliver (catch up after downtime)."""
    from datetime import UTC, datetime

    try:
        settings = load_settings(require_signing=False)
    except SettingsError as exc:
        _fail(str(exc))
    instant = None
    if at:
        try:
            instant = datetime.fromisoformat(at)
        except ValueError:
            _fail(f"--at {at!r} is not an ISO-8601 instant (e.g. 2026-11-26T09:00+08:00)")
        assert instant is not None
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=UTC)
    _policy(settings.policy_file)
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


@outbox.command("status")
def outbox_status_command() -> None:
    """Pending, sent and parked notifications, and the oldest pending one's age."""
    from datetime import UTC, datetime

    from chatops.db import create_schema, make_engine
    from handlers.delivery import outbox_status

    try:
        settings = load_settings(require_slack=False)
    except SettingsError as exc:
        _fail(str(exc))
    engine = make_engine(settings.database_url)
    create_schema(engine)
    status = outbox_status(engine, datetime.now(UTC))
    counts = status["counts"]
    click.echo(
        "pending {}, sent {}, parked {}".format(
            counts.get("pending", 0), counts.get("sent", 0), counts.get("parked", 0)
        )
    )
    if status["oldest_pending_age"] is not None:
        click.echo(f"oldest pending: {status['oldest_pending_age']} old")
    for key, kind, attempts, error in status["parked"]:
        click.echo(f"PARKED {key} ({kind}) after {attempts} attempt(s): {error}")
    if status["parked"]:
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

    try:
        settings = load_settings(require_slack=False)
    except SettingsError as exc:
        _fail(str(exc))
    click.echo(render_policy(_policy(settings.policy_file)))


@main.command()
@click.option("--roster", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option(
    "--script",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="read demo commands from a file instead of the keyboard",
)
@click.option("--start", default=None, help="start the demo clock here (ISO-8601), not now")
def demo(roster: Path | None, script: Path | None, start: str | None) -> None:
    """The whole desk offline: the real app, a local Slack stand-in, SQLite, a roster."""
    from datetime import UTC, datetime

    from chatops.demo import run_demo

    instant = None
    if start:
        try:
            instant = datetime.fromisoformat(start)
        except ValueError:
            _fail(f"--start {start!r} is not an ISO-8601 instant")
        assert instant is not None
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=UTC)
    sys.exit(run_demo(roster=roster, script=script, start=instant))


if __name__ == "__main__":
    main()
