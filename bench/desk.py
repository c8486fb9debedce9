"""The desk as the benchmarks run it: `chatops serve` (gunicorn, gthread) and optionally
`chatops worker` as subprocesses on 127.0.0.1, each server with its own Slack stand-in, a
database loaded with examples/workspace.yml; the bare Bolt app under the same gunicorn
settings; and the request bodies, captured from the stand-in's own `SlackSender` going
through the real intake flow once.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    ARTICLES,
    ROSTER,
    SECRET,
    TRIAGE,
    Proc,
    free_port,
    python_env,
    wait_http,
)
from chatops.standin import Response, SlackSender, SlackStandIn

TOKEN = "BENCHSEQ"  # replaced per request by the load generator
ADMIN = "U0ALICE"  # global admin of Contoso (online-services agreement: Sev A allowed)
AGENTS = ("U0AGENT1", "U0AGENT2", "U0LEAD")
QUESTION = "mail forwarding stopped"  # what the admin asks `/support`
EXPECTED_ARTICLE = "Forward mail to another address"  # the example article that answers it

INTAKE_FIELDS: dict[str, Any] = {
    "category": "technical",
    "topic": "mail",
    "severity": "B",
    "title": f"Bench case {TOKEN}",
    "description": "Since Monday mail sent to sales@ is no longer forwarded.",
    "contact_method": "chat",
}
SEV_A_FIELDS: dict[str, Any] = {
    "severity": "A",
    "title": f"Storm incident {TOKEN}",
    "business_impact": "Nobody in the company can send mail; orders are stuck.",
    "available_contact": "Alice Chen, +86 10 5555 0101, until resolved",
}


def new_standin(record_limit: int | None = None) -> SlackStandIn:
    """A stand-in that knows the roster's people (names, time zones)."""
    standin = SlackStandIn(record_limit=record_limit).start()
    import yaml

    roster = yaml.safe_load(ROSTER.read_text())
    for person in roster.get("people", []):
        standin.add_user(
            person["slack_id"],
            name=person["slack_id"].lower(),
            real_name=person.get("name"),
            tz=person.get("tz") or "UTC",
            email=person.get("email"),
        )
    return standin


def load_database(database_url: str) -> None:
    """Create the tables and load the example roster and help articles (what `chatops load`
    and `chatops load-articles` do), for every benchmark: `/support <question>` searches a
    real knowledge base, as it would on a desk in use, not an empty one."""
    from chatops.db import create_schema, make_engine
    from chatops.directory.roster import load_roster
    from chatops.kb import load_articles
    from chatops.policy import load_policy

    engine = make_engine(database_url)
    try:
        create_schema(engine)
        load_roster(engine, ROSTER, load_policy().policy)
        load_articles(engine, ARTICLES)
    finally:
        engine.dispose()


def _settings_env(standin: SlackStandIn, database_url: str, pace: float) -> dict[str, str]:
    return python_env(
        SLACK_BOT_TOKEN=standin.bot_token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=standin.api_url,
        DATABASE_URL=database_url,
        CHATOPS_CHANNEL_PACE_SECONDS=str(pace),
    )


@dataclass
class Server:
    name: str
    url: str  # http://127.0.0.1:PORT
    port: int
    proc: Proc
    standin: SlackStandIn

    @property
    def events_url(self) -> str:
        return self.url + "/slack/events"


@contextlib.contextmanager
def chatops_server(
    database_url: str,
    logs: Path,
    *,
    workers: int,
    threads: int,
    pace: float,
    record_limit: int | None = None,
    name: str = "chatops",
) -> Iterator[Server]:
    """`chatops serve --host 127.0.0.1 --port P --workers W --threads T` on a loaded database."""
    standin = new_standin(record_limit)
    port = free_port()
    argv = [sys.executable, "-m", "chatops.cli", "--log-level", "WARNING", "serve"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(workers), "--threads", str(threads)]
    proc = Proc(name, argv, _settings_env(standin, database_url, pace), logs / f"{name}.log")
    try:
        if not wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60):
            raise RuntimeError(f"{name} did not come up; see {proc.log}")
        yield Server(name, f"http://127.0.0.1:{port}", port, proc, standin)
    finally:
        proc.stop()
        standin.stop()


@contextlib.contextmanager
def _gunicorn_app(
    name: str,
    wsgi_app: str,
    logs: Path,
    env: dict[str, str],
    *,
    workers: int,
    threads: int,
    database_url: str = "sqlite://",
    record_limit: int | None = 1000,
) -> Iterator[Server]:
    """`wsgi_app` under gunicorn with chatops serve's settings (gthread, W×T, timeout 30,
    access log on), pointed at a stand-in of its own; `env` on top of the settings'."""
    standin = new_standin(record_limit)
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "--worker-class", "gthread"]
    argv += ["--workers", str(workers), "--threads", str(threads), "--timeout", "30"]
    argv += ["--access-logfile", "-", "--bind", f"127.0.0.1:{port}", wsgi_app]
    proc = Proc(
        name, argv, {**_settings_env(standin, database_url, 0.0), **env}, logs / f"{name}.log"
    )
    try:
        if not wait_http(f"http://127.0.0.1:{port}/slack/events", timeout=60, ok_statuses=()):
            raise RuntimeError(f"{name} did not come up; see {proc.log}")
        yield Server(name, f"http://127.0.0.1:{port}", port, proc, standin)
    finally:
        proc.stop()
        standin.stop()


def bare_server(
    logs: Path, *, workers: int, threads: int, pooled: bool = False
) -> contextlib.AbstractContextManager[Server]:
    """bench/bare_app.py under chatops serve's gunicorn settings; `pooled`: with the desk's
    listener pool."""
    env = {"BENCH_BARE_POOL": "1" if pooled else "0"}
    name = "bare-pool" if pooled else "bare"
    return _gunicorn_app(name, "bench.bare_app:wsgi", logs, env, workers=workers, threads=threads)


@contextlib.contextmanager
def floor_server(
    database_url: str, logs: Path, *, workers: int, threads: int, post: bool
) -> Iterator[Server]:
    """bench/floor_app.py (a submission: one row stored before the ack, and with `post` one
    chat.postMessage after it; `/support`: the asker read and the articles searched) under
    chatops serve's gunicorn settings, on `database_url`. Its stand-in keeps
    every call, so a run can count the posts (the benchmark resets it for every level)."""
    from bench.floor_app import create_table

    create_table(database_url)
    env = {"BENCH_FLOOR_POST": "1" if post else "0"}
    name = "floor-post" if post else "floor"
    with _gunicorn_app(
        name,
        "bench.floor_app:wsgi_app()",
        logs,
        env,
        workers=workers,
        threads=threads,
        database_url=database_url,
        record_limit=None,
    ) as server:
        yield server


@contextlib.contextmanager
def chatops_worker(
    standin: SlackStandIn, database_url: str, logs: Path, pace: float
) -> Iterator[Proc]:
    """`chatops worker`: sweeps every 15 s, outbox delivery every second."""
    argv = [sys.executable, "-m", "chatops.cli", "--log-level", "INFO", "worker"]
    proc = Proc("worker", argv, _settings_env(standin, database_url, pace), logs / "worker.log")
    try:
        yield proc
    finally:
        proc.stop()


# --------------------------------------------------------------------------- request bodies


class _Capture(SlackSender):
    """A SlackSender that builds and signs requests as usual but keeps them instead of
    sending them: the payload shapes stay exactly the stand-in client's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.captured: list[tuple[str, str]] = []

    def post(self, body: str | bytes, content_type: str, *args: Any, **kwargs: Any) -> Response:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        self.captured.append((content_type, text))
        return Response(status=200, body="", headers={})


@dataclass
class Templates:
    """Form bodies to replay; `TOKEN` marks what changes per request."""

    command: str  # /support <question> from the admin (no token)
    submit_b: str  # intake view_submission, Sev B technical; TOKEN in the title
    submit_a: str  # the same for Sev A (impact statement, available person); TOKEN in title
    claim: str  # block_actions Claim on a triage card; TOKEN is the case id


def _open_intake(sender: SlackSender, standin: SlackStandIn, severity: str) -> dict[str, Any]:
    reply = sender.command(ADMIN, QUESTION)
    if reply.status != 200 or not reply.json():
        raise RuntimeError(f"/support answered {reply.status}: {reply.body[:200]}")
    if EXPECTED_ARTICLE not in reply.body:  # the figures are for a search that finds something
        raise RuntimeError(f"/support listed no {EXPECTED_ARTICLE!r} article: {reply.body[:300]}")
    before = len(standin.calls("views.open"))
    click = sender.click_in(ADMIN, reply.json() or {}, "contact_support", channel_id="C_GENERAL")
    if click.status != 200:
        raise RuntimeError(f"Contact support answered {click.status}")
    standin.wait_for("views.open", count=before + 1, timeout=10)
    if severity != "B":
        before = len(standin.calls("views.update"))
        sender.view_action(ADMIN, "intake_severity", severity)
        standin.wait_for("views.update", count=before + 1, timeout=10)
    view = standin.open_view(ADMIN)
    if view is None:
        raise RuntimeError("the intake modal did not open")
    return view


def capture_templates(server: Server) -> Templates:
    """Go through the intake once as Slack would (command, Contact support, severity), keep
    the submissions, open one real case and keep a Claim click on its card."""
    standin = server.standin
    real = SlackSender(server.events_url, SECRET, standin, timeout=30)
    capture = _Capture(server.events_url, SECRET, standin)

    capture.command(ADMIN, QUESTION)
    command = capture.captured.pop()[1]

    _open_intake(real, standin, "B")
    capture.submit_view(ADMIN, INTAKE_FIELDS)
    submit_b = capture.captured.pop()[1]

    _open_intake(real, standin, "A")
    capture.submit_view(ADMIN, {**INTAKE_FIELDS, **SEV_A_FIELDS})
    submit_a = capture.captured.pop()[1]

    # one real case, to click Claim on its card as it is shown in the triage channel
    answer = real.post(submit_b.replace(TOKEN, "setup"), "application/x-www-form-urlencoded")
    if answer.status != 200 or "errors" in answer.body:
        raise RuntimeError(f"setup submission answered {answer.status}: {answer.body[:300]}")
    card = standin.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == TRIAGE, timeout=20
    )[0]
    capture.click(AGENTS[0], TRIAGE, card.response["ts"], "claim_case")
    form = urllib.parse.parse_qs(capture.captured.pop()[1])
    payload = json.loads(form["payload"][0])
    payload["actions"][0]["value"] = TOKEN
    claim = urllib.parse.urlencode({"payload": json.dumps(payload)})
    return Templates(command, submit_b, submit_a, claim)


def check_read_floor(floor: Server) -> None:
    """The floor app must find the article the desk finds (the run stops otherwise), so the
    two are measured doing the same search."""
    sender = SlackSender(floor.events_url, SECRET, floor.standin, timeout=30)
    reply = sender.command(ADMIN, QUESTION)
    if reply.status != 200 or EXPECTED_ARTICLE not in reply.body:
        raise RuntimeError(f"{floor.name} answered /support {reply.status}: {reply.body[:300]}")


def case_ids_with_title(database_url: str, prefix: str) -> dict[str, int]:
    """{token value: case id} of the cases whose title starts with prefix."""
    from sqlalchemy import text

    from chatops.db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text('SELECT id, title FROM "case" WHERE title LIKE :p'), {"p": prefix + "%"}
            ).all()
    finally:
        engine.dispose()
    return {str(title)[len(prefix) :]: int(case_id) for case_id, title in rows}


def wait_until(predicate: Any, timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
