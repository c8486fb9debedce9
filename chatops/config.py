"""Settings read from the environment (pydantic-settings).

Every setting has the environment variable name an operator sets; the README lists them.
Missing required settings stop start-up with one message naming all of them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SLACK_API_DEFAULT = "https://slack.com/api/"


class SettingsError(RuntimeError):
    """Raised when the environment does not describe a runnable configuration."""


class Settings(BaseSettings):
    """The process configuration: Slack credentials, Web API address, database, policy."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    slack_bot_token: str = Field(default="", validation_alias=AliasChoices("SLACK_BOT_TOKEN"))
    slack_signing_secret: str = Field(
        default="", validation_alias=AliasChoices("SLACK_SIGNING_SECRET")
    )
    # App-level token (xapp-…, scope connections:write) for `chatops serve --socket-mode`.
    slack_app_token: str = Field(default="", validation_alias=AliasChoices("SLACK_APP_TOKEN"))
    slack_api_url: str = Field(
        default=SLACK_API_DEFAULT, validation_alias=AliasChoices("SLACK_API_URL")
    )
    database_url: str = Field(
        default="sqlite:///chatops.db", validation_alias=AliasChoices("DATABASE_URL")
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        """A URL of one of the two databases the desk runs on, checked where settings are
        read, so no command meets it later as a traceback. The message never repeats the
        URL: it may hold a password."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        from chatops.db import normalise_url

        try:
            url = make_url(normalise_url(value))
            url.port  # noqa: B018  (a port that is not a number raises here)
        except (ArgumentError, ValueError):
            raise ValueError("not a database URL") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(
                "use sqlite:///path or postgresql://user:password@host:port/database"
            ) from None
        return value

    policy_file: Path | None = Field(
        default=None, validation_alias=AliasChoices("CHATOPS_POLICY_FILE")
    )
    # Slack allows about one message per second per channel; posts are spaced this far apart.
    channel_pace_seconds: float = Field(
        default=1.0, ge=0, validation_alias=AliasChoices("CHATOPS_CHANNEL_PACE_SECONDS")
    )
    # How long a process may hold a message it is sending before another may take it over
    # (wall-clock seconds). The window for a duplicate after a crash is this long at most.
    delivery_lease_seconds: float = Field(
        default=60.0, gt=0, validation_alias=AliasChoices("CHATOPS_DELIVERY_LEASE_SECONDS")
    )
    # Threads per serving process that send a request's notifications after its ack.
    delivery_threads: int = Field(
        default=4, ge=1, le=64, validation_alias=AliasChoices("CHATOPS_DELIVERY_THREADS")
    )
    # Sweep interval of `chatops worker`: a warning fires within this long of its instant.
    sweep_seconds: float = Field(
        default=15.0, gt=0, le=60, validation_alias=AliasChoices("CHATOPS_SWEEP_SECONDS")
    )
    # Drills only: read "now" from this file (see chatops.clock.FileClock) instead of the
    # system clock, so several processes can rehearse a day in minutes.
    clock_file: Path | None = Field(
        default=None, validation_alias=AliasChoices("CHATOPS_CLOCK_FILE")
    )
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("CHATOPS_LOG_LEVEL"))


_ENV_NAMES = {
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_app_token": "SLACK_APP_TOKEN",
}


def load_settings(
    require_slack: bool = True,
    require_signing: bool = True,
    require_app_token: bool = False,
    **overrides: object,
) -> Settings:
    """Read settings from the environment; raise SettingsError naming what is missing.

    `chatops serve` needs the bot token and the signing secret; `serve --socket-mode` the
    bot token and the app-level token (`require_signing=False, require_app_token=True`);
    the worker only calls the Web API, so it needs the bot token alone
    (`require_signing=False`); operator commands (load, policy) need none of them.
    """
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        missing: list[str] = []
        other = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            name = _ENV_NAMES.get(field, field.upper())
            if error["type"] == "missing":
                missing.append(name)
            else:
                other.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
        parts = []
        if missing:
            parts.append("missing required setting(s): " + ", ".join(missing))
        parts.extend(other)
        raise SettingsError("; ".join(parts)) from None
    if require_slack:
        wanted = dict(_ENV_NAMES)
        if not require_signing:
            wanted.pop("slack_signing_secret")
        if not require_app_token:
            wanted.pop("slack_app_token")
        missing = [env for field, env in wanted.items() if not getattr(settings, field).strip()]
        if missing:
            raise SettingsError("missing required setting(s): " + ", ".join(missing))
    return settings
