"""`chatops serve`: the production server (gunicorn, threaded workers) as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from chatops.standin import SlackSender, SlackStandIn
from tests.conftest import ROSTER, SECRET
from tests.postgres import _free_port


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("chatops serve did not become healthy")


def start_serve(
    tmp_path: Path,
    standin: SlackStandIn,
    *,
    workers: int,
    threads: int,
    keep_output: bool = False,
    **settings: str,
) -> tuple[int, subprocess.Popen[bytes]]:
    """`chatops load` of the example roster, then `chatops serve` on a free port of
    127.0.0.1, once it answers /healthz: (port, process). `keep_output`: its log (stdout
    and stderr) stays readable, else it is discarded."""
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": standin.bot_token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": standin.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        **settings,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # each server shares its counters in its own
    subprocess.run(
        [sys.executable, "-m", "chatops.cli", "load", str(ROSTER)],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    port = _free_port()
    output = subprocess.PIPE if keep_output else subprocess.DEVNULL
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "chatops.cli", "serve", "--host", "127.0.0.1"),
            *("--port", str(port), "--workers", str(workers), "--threads", str(threads)),
        ],
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if keep_output else subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
    except BaseException:
        os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=30)
        raise
    return port, process


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_serve_answers_signed_commands_and_health(tmp_path: Path, log_format: str) -> None:
    with SlackStandIn() as standin:
        port, process = start_serve(
            tmp_path, standin, workers=2, threads=4, keep_output=True, CHATOPS_LOG_FORMAT=log_format
        )
        try:
            sender = SlackSender(f"http://127.0.0.1:{port}/slack/events", SECRET, standin)
            reply = sender.command("U0ALICE", "mail forwarding stopped")
            assert reply.status == 200
            assert "contact_support" in json.dumps(reply.json())
            forged = sender.post(
                "command=/support&text=x", "application/x-www-form-urlencoded", secret="wrong"
            )
            assert forged.status == 401
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
    lines = output.decode().splitlines()
    assert any("POST /slack/events" in line for line in lines), lines  # the access log
    assert any("Booting worker" in line for line in lines), lines  # gunicorn's own
    assert not any(standin.bot_token in line or SECRET in line for line in lines)
    # a clean start warns of nothing (Bolt's "`token` will be unused" read as if the bot
    # token were ignored; the client Bolt is given carries it)
    assert not [line for line in lines if "WARNING" in line]
    if log_format == "json":  # production: one JSON object per line, gunicorn's included
        entries = [json.loads(line) for line in lines]
        assert {"gunicorn.access", "gunicorn.error"} <= {e["logger"] for e in entries}
