"""The `chatops` command: operator tools and the processes to run.

Slack-facing parts (serve, demo, worker delivery) are imported inside their commands, so the
core stays free of Slack imports and operator commands start fast.
"""

from __future__ import annotations

import logging
import sys
import time
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
    logging.basicConfig(
        level=(log_level or "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
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
        f"~{summary.people_updated}, channels set {summary.channels_set}."
    )


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn processes")
@click.option("--threads", default=8, show_default=True, type=int, help="threads per process")
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve POST /slack/events and GET /healthz (gunicorn, threaded workers)."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        _fail(str(exc))
    _policy(settings.policy_file)  # an invalid policy stops start-up here, not per worker
    from handlers.server import run_gunicorn

    run_gunicorn(settings, host, port, workers, threads)


@main.command()
@click.option("--interval", default=1.0, show_default=True, help="seconds between sweeps")
@click.option("--once", is_flag=True, help="deliver what is due, then exit")
def worker(interval: float, once: bool) -> None:
    """Deliver the outbox (retries, Retry-After) until stopped."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        _fail(str(exc))
    from handlers.server import build_service

    service = build_service(settings, rules=_policy(settings.policy_file))
    log = logging.getLogger("chatops.worker")
    while True:
        sent = service.desk.delivery.deliver_pending()
        if sent:
            log.info("delivered %d message(s)", sent)
        if once:
            return
        time.sleep(interval)


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
def demo(roster: Path | None, script: Path | None) -> None:
    """The whole desk offline: the real app, a local Slack stand-in, SQLite, a roster."""
    from chatops.demo import run_demo

    sys.exit(run_demo(roster=roster, script=script))


if __name__ == "__main__":
    main()
