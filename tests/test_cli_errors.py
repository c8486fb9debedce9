"""`chatops` commands that cannot do their work end with an `error: …` line and a status,
never a traceback: files that are not UTF-8 or use YAML the loader does not build (a tag, a
list as a key, an alias inside itself), and a database that is down (its password never
shown). And a message Slack refused for a reason an operator fixes without touching it (the
bot token during a rotation) is retried, not lost; parked ones can be queued again with
`chatops outbox retry`."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from handlers.delivery import MAX_ATTEMPTS
from tests.conftest import ROOT, TRIAGE, Desk, posts

PASSWORD = "hunter2-Zq9"


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "chatops.cli", *args],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one `error:` line of a failed command, and no traceback anywhere."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


# --- files the YAML loader cannot use ---------------------------------------------------------

BAD_FILES = {
    "latin-1": (
        b'channels: {triage: C0T}\npeople:\n  - {slack_id: U0A, name: "Ren\xe9"}\n',
        "line 3: not UTF-8 text (byte 0xe9)",
    ),
    "utf-16": (
        "channels: {triage: C0T}\n".encode("utf-16"),  # with its byte-order mark
        "line 1: the file is UTF-16 or UTF-32 text",
    ),
    "unknown tag": (b"channels: !Ref triage\n", "line 1: the YAML tag '!Ref' is not supported"),
    "list as a key": (
        b"channels: {triage: C0T}\n? [a, b]\n: 1\n",
        "line 2: a key must be a single value",
    ),
    "alias inside itself": (
        b"channels: {triage: C0T}\npeople: &p [*p]\n",
        "line 2: an alias (*name) is used inside the value it names",
    ),
    "impossible date": (
        b"channels: {triage: C0T}\nrotations:\n  - {name: primary, start: 2026-13-05}\n",
        "line 3: '2026-13-05' is not a valid date or time (month must be in 1..12)",
    ),
    "day past the end of the month": (
        b"channels: {triage: C0T}\nclosed_dates: [2026-02-30]\n",
        "line 2: '2026-02-30' is not a valid date or time (day is out of range for month)",
    ),
}


@pytest.mark.parametrize("command", [["load"], ["policy", "check"]])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_file_the_loader_cannot_use_is_one_error_line(
    tmp_path: Path, command: list[str], case: str
) -> None:
    content, expected = BAD_FILES[case]
    path = tmp_path / "bad.yml"
    path.write_bytes(content)
    result = _cli(*command, str(path), DATABASE_URL=f"sqlite:///{tmp_path / 'desk.db'}")
    assert result.returncode == 2, result.stderr
    line = _error_line(result)
    assert str(path) in line and expected in line, line


# --- the database down ------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends: nobody listens


DB_COMMANDS = [
    ["migrate"],
    ["outbox", "status"],
    ["outbox", "retry", "--all"],
    ["report"],
    ["load", "examples/workspace.yml"],
    ["load-articles", "examples/kb"],
]


@pytest.mark.parametrize("command", DB_COMMANDS, ids=" ".join)
def test_a_database_that_refuses_connections_is_one_line_without_the_password(
    command: list[str],
) -> None:
    url = f"postgresql://desk:{PASSWORD}@127.0.0.1:{_closed_port()}/desk"
    result = _cli(*command, DATABASE_URL=url, CHATOPS_LOG_LEVEL="WARNING")
    assert result.returncode == 3, result.stderr
    line = _error_line(result)
    assert result.stderr.strip() == line  # nothing else on stderr
    assert "could not be reached" in line and "desk:***@127.0.0.1" in line, line
    assert PASSWORD not in result.stdout + result.stderr


SLACK_ENV = {
    "SLACK_BOT_TOKEN": "xoxb-1-cli-errors",
    "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
    "SLACK_APP_TOKEN": "xapp-1-A0APP-1-cli-errors",
    "SLACK_API_URL": "http://127.0.0.1:9/api/",  # never reached: the database comes first
}


@pytest.mark.parametrize(
    "command",
    [["serve", "--port", "0"], ["serve", "--socket-mode", "--port", "0"], ["worker"], ["tick"]],
    ids=" ".join,
)
def test_the_processes_stop_at_start_up_with_one_line_when_the_database_is_down(
    command: list[str],
) -> None:
    """At the default log level: no traceback from each gunicorn worker, no lines of
    Alembic's own before the error, and the process does not start serving."""
    url = f"postgresql://desk:{PASSWORD}@127.0.0.1:{_closed_port()}/desk"
    result = _cli(*command, DATABASE_URL=url, **SLACK_ENV)
    assert result.returncode == 3, result.stderr
    line = _error_line(result)
    assert result.stderr.strip() == line, result.stderr  # nothing else on stderr
    assert "could not be reached" in line and "desk:***@127.0.0.1" in line, line
    assert PASSWORD not in result.stdout + result.stderr


def test_configured_secrets_are_masked_in_log_lines_but_a_few_letters_are_not_a_secret() -> None:
    from chatops.logs import SecretFilter

    secret = SLACK_ENV["SLACK_SIGNING_SECRET"]
    masking = SecretFilter([secret, "s", ""])
    record = logging.LogRecord(
        "chatops", logging.INFO, __file__, 1, "session %s with xoxb-1-abc", (secret,), None
    )
    masking.filter(record)
    assert record.getMessage() == "session *** with ***"


def test_a_sqlite_database_in_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'desk.db'}"
    result = _cli("outbox", "status", DATABASE_URL=url)
    assert result.returncode == 3, result.stderr  # not 1, which says messages are parked
    line = _error_line(result)
    assert "could not be reached" in line and "no-such-folder" in line, line


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"nonsense-{PASSWORD}", "not a database URL"),
        (f"mysql://desk:{PASSWORD}@127.0.0.1/desk", "use sqlite:///path or postgresql://"),
        (f"postgresql://desk:{PASSWORD}@127.0.0.1:port/desk", "not a database URL"),
    ],
    ids=["not a URL", "another database", "a port that is not a number"],
)
def test_a_database_url_the_desk_cannot_use_is_one_line_without_the_password(
    url: str, says: str
) -> None:
    result = _cli("outbox", "status", DATABASE_URL=url)
    assert result.returncode == 2, result.stderr
    line = _error_line(result)
    assert line.startswith(f"error: DATABASE_URL: {says}"), line
    assert PASSWORD not in result.stdout + result.stderr


# --- Slack refusing the bot token ------------------------------------------------------------


def _refused_token_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno == logging.ERROR and "Slack refused the bot token" in r.getMessage()
    ]


@pytest.mark.parametrize("error", ["invalid_auth", "token_revoked"])
def test_one_refused_token_delays_the_card_and_does_not_lose_it(
    desk: Desk, caplog: pytest.LogCaptureFixture, error: str
) -> None:
    desk.standin.fail_next("chat.postMessage", error=error, times=1)  # a token being rotated
    case = desk.open_case("U0ALICE")
    desk.settle()
    assert [c.error for c in desk.standin.calls("chat.postMessage") if not c.ok] == [error]
    failed = [r for r in desk.outbox() if r.last_error and error in r.last_error]
    assert [(r.status, r.attempts) for r in failed] == [("pending", 1)]
    assert len(_refused_token_errors(caplog)) == 1
    desk.run_worker(desk.clock.now() + timedelta(minutes=5), step=timedelta(seconds=15))
    assert all(r.status == "sent" for r in desk.outbox()), [
        (r.key, r.status, r.last_error) for r in desk.outbox()
    ]
    assert len(posts(desk.standin, TRIAGE)) == 1
    assert desk.card(case)["blocks"]


def _write_clock(desk: Desk, path: Path) -> dict[str, str]:
    """The environment for a `chatops` command against the desk's database at its instant."""
    path.write_text(desk.clock.now().isoformat())
    url = desk.engine.url.render_as_string(hide_password=False)
    return {"DATABASE_URL": url, "CHATOPS_CLOCK_FILE": str(path)}


def test_a_refused_token_backs_off_says_so_once_a_pass_parks_at_the_cap_and_is_queued_again(
    desk: Desk, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    desk.standin.fail_next("chat.postMessage", error="invalid_auth", times=1000)
    desk.open_case("U0ALICE")
    desk.settle()
    passes_with_two = 0
    for _ in range(MAX_ATTEMPTS + 2):
        if not any(r.status == "pending" for r in desk.outbox()):
            break
        caplog.clear()
        before = len(desk.standin.calls("chat.postMessage"))
        desk.clock.advance(timedelta(seconds=301))  # past the longest back-off
        assert desk.service.desk.delivery.deliver_pending() == 0
        tried = len(desk.standin.calls("chat.postMessage")) - before
        assert tried >= 1
        passes_with_two += tried >= 2
        assert len(_refused_token_errors(caplog)) == 1  # loud, but once per pass
    assert passes_with_two  # the card and the requester's DM failed in one pass
    rows = desk.outbox()
    assert rows and {(r.status, r.attempts) for r in rows} == {("parked", MAX_ATTEMPTS)}
    assert posts(desk.standin, TRIAGE) == []

    desk.standin.reset()  # the operator installs the new token
    env = _write_clock(desk, tmp_path / "clock")
    status = _cli("outbox", "status", **env)
    assert status.returncode == 1 and "PARKED" in status.stdout, status.stderr
    queued = _cli("outbox", "retry", "--all", **env)
    assert queued.returncode == 0, queued.stderr
    assert f"{len(rows)} parked message(s) queued again" in queued.stdout
    assert {(r.status, r.attempts) for r in desk.outbox()} == {("pending", 0)}
    desk.run_worker(desk.clock.now() + timedelta(seconds=15), step=timedelta(seconds=15))
    assert all(r.status == "sent" for r in desk.outbox())
    assert len(posts(desk.standin, TRIAGE)) == 1
    assert _cli("outbox", "status", **env).returncode == 0


def test_outbox_retry_queues_the_parked_message_it_names(desk: Desk, tmp_path: Path) -> None:
    desk.standin.fail_next("chat.postMessage", error="channel_not_found")  # parks at once
    desk.open_case("U0ALICE")
    desk.settle()
    [parked] = [r for r in desk.outbox() if r.status == "parked"]
    env = _write_clock(desk, tmp_path / "clock")

    neither = _cli("outbox", "retry", **env)
    assert neither.returncode == 2 and "--all" in _error_line(neither)
    unknown = _cli("outbox", "retry", "no-such-key", **env)
    assert unknown.returncode == 1 and "no-such-key: not parked" in unknown.stderr
    assert "0 parked message(s) queued again" in unknown.stdout
    assert [r.status for r in desk.outbox() if r.id == parked.id] == ["parked"]

    queued = _cli("outbox", "retry", parked.key, **env)  # the channel exists again
    assert queued.returncode == 0, queued.stderr
    assert "1 parked message(s) queued again" in queued.stdout
    desk.run_worker(desk.clock.now() + timedelta(seconds=15), step=timedelta(seconds=15))
    assert all(r.status == "sent" for r in desk.outbox())
    assert len(posts(desk.standin, TRIAGE)) == 1


def test_outbox_retry_leaves_a_parked_verification_code_parked_and_says_why(
    desk: Desk, tmp_path: Path
) -> None:
    """A verification code is wiped from its row once its DM is parked (a code lives in the
    outbox only until then), so `chatops outbox retry` cannot send it again: it says so and
    leaves it parked, rather than "queue" a DM that would go out without its code (SC-22)."""
    from tests.test_verification import CONTOSO_ADMINS, UNREGISTERED, code_rows, enter_number

    case = desk.open_case("U0ALICE")
    desk.settle()
    desk.standin.fail_next("chat.postMessage", error="channel_not_found", times=len(CONTOSO_ADMINS))
    enter_number(desk, case, UNREGISTERED)
    desk.settle()
    desk.wait_until(lambda: all(r.status == "parked" for r in code_rows(desk)), "parked")
    desk.clock.advance(timedelta(minutes=1))
    env = _write_clock(desk, tmp_path / "clock")
    result = _cli("outbox", "retry", "--all", **env)
    assert result.returncode == 0, result.stderr
    assert "0 parked message(s) queued again" in result.stdout
    assert result.stderr.count("stays parked: a verification code is not kept") == len(
        CONTOSO_ADMINS
    )
    named = _cli("outbox", "retry", code_rows(desk)[0].key, **env)
    assert named.returncode == 1 and "ask for a new code" in named.stderr
    assert all(r.status == "parked" for r in code_rows(desk))
    sent = [c for c in desk.standin.calls("chat.postMessage") if c.ok]
    assert not any("Verification code" in json.dumps(c.args) for c in sent)


# --- settings and arguments the processes cannot use --------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--log-level", "verbose"], {}, "--log-level 'verbose' is not a log level"),
        ([], {"CHATOPS_LOG_LEVEL": "verbose"}, "CHATOPS_LOG_LEVEL 'verbose' is not a log level"),
        ([], {"CHATOPS_LOG_FORMAT": "xml"}, "CHATOPS_LOG_FORMAT 'xml' is not json or text"),
    ],
    ids=["--log-level", "CHATOPS_LOG_LEVEL", "CHATOPS_LOG_FORMAT"],
)
def test_a_log_setting_the_desk_cannot_use_is_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], says: str
) -> None:
    result = _cli(*args, "outbox", "status", DATABASE_URL=f"sqlite:///{tmp_path / 'd.db'}", **env)
    assert result.returncode == 2, result.stderr
    line = _error_line(result)
    assert says in line, line


def test_log_settings_in_any_case_are_accepted(tmp_path: Path) -> None:
    result = _cli(
        "--log-level",
        "warning",
        "outbox",
        "status",
        DATABASE_URL=f"sqlite:///{tmp_path / 'd.db'}",
        CHATOPS_LOG_FORMAT="JSON",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("pending 0, sent 0, parked 0"), result.stdout


@pytest.mark.parametrize(
    ("option", "value"),
    [("--port", "99999"), ("--port", "-1"), ("--workers", "0"), ("--threads", "0")],
)
def test_serve_refuses_a_port_or_a_count_it_cannot_serve_with(
    tmp_path: Path, option: str, value: str
) -> None:
    """Refused before anything starts: not a traceback from the socket, nor a master
    without workers that answers nothing, nor workers that fail to boot."""
    result = _cli(
        "serve",
        "--host",
        "127.0.0.1",
        option,
        value,
        DATABASE_URL=f"sqlite:///{tmp_path / 'd.db'}",
        **SLACK_ENV,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and "gunicorn" not in output, output
    assert f"Invalid value for '{option}'" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"smpt://desk:{PASSWORD}@mail.example:25", "not an smtp://, smtps:// or smtp+starttls://"),
        (f"smtp://desk:{PASSWORD}@:25", "no host"),
        (f"smtp://desk:{PASSWORD}@mail.example:port", "the port is not a number"),
    ],
    ids=["scheme", "host", "port"],
)
def test_serve_refuses_an_smtp_url_it_could_not_send_with(
    tmp_path: Path, url: str, says: str
) -> None:
    """Found at start-up, not in a log line when an agent first verifies a caller."""
    result = _cli(
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        DATABASE_URL=f"sqlite:///{tmp_path / 'd.db'}",
        CHATOPS_SMTP_URL=url,
        **SLACK_ENV,
    )
    assert result.returncode == 2, result.stderr
    line = _error_line(result)
    assert line.startswith("error: CHATOPS_SMTP_URL: ") and says in line, line
    assert PASSWORD not in result.stdout + result.stderr
