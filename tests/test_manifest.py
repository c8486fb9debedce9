"""`manifest.yml`, from which the operator creates the Slack app, matches what the code does:
every slash command and event the app listens for is subscribed, every request goes to the
one URL `chatops serve` answers, and the bot asks for exactly the scopes its Web API calls
need — a missing one fails those calls in production (`missing_scope`), an extra one is a
permission a workspace admin is asked to grant for nothing."""

from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT

MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())
SOURCES = sorted((ROOT / "handlers").glob("*.py"))

# The bot scope each Web API method the handlers call needs (views.* and auth.test need none).
SCOPE_OF_METHOD = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "conversations_open": "im:write",
    "users_info": "users:read",
    "views_open": None,
    "views_update": None,
    "views_publish": None,
}
# The Events API subscription (and the scope it needs) behind each event listener.
SUBSCRIPTION_OF_EVENT = {"message": ("message.im", "im:history"), "app_home_opened": (None, None)}


def _found(pattern: str) -> set[str]:
    return {m for path in SOURCES for m in re.findall(pattern, path.read_text())}


def test_every_slash_command_and_event_listened_for_is_in_the_manifest() -> None:
    commands = _found(r'@app\.command\("([^"]+)"\)')
    assert commands == {c["command"] for c in MANIFEST["features"]["slash_commands"]}
    events = _found(r'@app\.event\("([^"]+)"\)')
    subscribed = set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])
    assert events <= set(SUBSCRIPTION_OF_EVENT), events
    expected = {SUBSCRIPTION_OF_EVENT[e][0] or e for e in events}
    assert subscribed == expected
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True


def test_every_request_goes_to_the_one_url_serve_answers() -> None:
    urls = {c["url"] for c in MANIFEST["features"]["slash_commands"]}
    urls.add(MANIFEST["settings"]["event_subscriptions"]["request_url"])
    urls.add(MANIFEST["settings"]["interactivity"]["request_url"])
    assert urls == {"https://support-desk.example.com/slack/events"}


def test_the_bot_asks_for_exactly_the_scopes_its_calls_need() -> None:
    called = _found(r"\.((?:chat|conversations|users|views|reactions|files|team)_[A-Za-z]+)\(")
    unknown = called - set(SCOPE_OF_METHOD)
    assert not unknown, f"map these Web API methods to their scope: {unknown}"
    needed = {SCOPE_OF_METHOD[m] for m in called} | {"commands"}
    needed |= {SUBSCRIPTION_OF_EVENT[e][1] for e in _found(r'@app\.event\("([^"]+)"\)')}
    needed.discard(None)
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == needed


def test_the_readme_names_the_scopes_of_the_manifest() -> None:
    readme = (ROOT / "README.md").read_text()
    step = readme[readme.index("1. **Create the Slack app**") : readme.index("2. **Database.**")]
    named = {s for s in re.findall(r"`([a-z]+:[a-z.:]+|commands)`", step)}
    assert named == set(MANIFEST["oauth_config"]["scopes"]["bot"])
