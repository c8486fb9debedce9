"""Start-up configuration: missing settings are named, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chatops.config import SettingsError, load_settings


def test_missing_slack_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "SLACK_BOT_TOKEN" in str(raised.value)
    assert "SLACK_SIGNING_SECRET" in str(raised.value)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    monkeypatch.delenv("SLACK_API_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.database_url.startswith("sqlite:///")


def test_serve_refuses_to_start_without_settings() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    result = subprocess.run(
        [sys.executable, "-m", "chatops.cli", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "missing required setting(s): SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET" in result.stderr


def test_the_worker_needs_the_bot_token_but_no_signing_secret(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # the worker only calls the Web API; a Socket Mode deployment has no signing secret
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'desk.db'}"
    tick = [sys.executable, "-m", "chatops.cli", "tick"]
    refused = subprocess.run(tick, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "missing required setting(s): SLACK_BOT_TOKEN\n" in refused.stderr
    env["SLACK_BOT_TOKEN"] = "xoxb-1"
    env["SLACK_API_URL"] = "http://127.0.0.1:9/api/"  # nothing is due: Slack is never called
    ran = subprocess.run(tick, env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
