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


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_serve_answers_signed_commands_and_health(tmp_path: Path, log_format: str) -> None:
    with SlackStandIn() as standin:
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": standin.bot_token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": standin.api_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "CHATOPS_LOG_FORMAT": log_format,
        }
        subprocess.run(
            [sys.executable, "-m", "chatops.cli", "load", str(ROSTER)],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        port = _free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chatops.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "2",
                "--threads",
                "4",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
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
