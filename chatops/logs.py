"""Logging: readable lines for people, one JSON object per line in production
(`CHATOPS_LOG_FORMAT=json`). Secrets never reach a log line: Slack tokens, signing secrets
and verification codes are masked by a filter on every handler."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

SECRET_MIN_LENGTH = 8  # configured secret values shorter than this are not masked

_SECRETS = [
    re.compile(r"xox[abposr]-[A-Za-z0-9-]+"),  # Slack tokens
    re.compile(r"xapp-[A-Za-z0-9-]+"),  # app-level tokens (Socket Mode)
    re.compile(r"v0=[0-9a-f]{64}"),  # request signatures
    re.compile(r"(?i)(\"?code\"?\s*[:=]\s*\"?)\d{4,8}"),  # one-time verification codes
]
CONTEXT_FIELDS = ("case", "request_id", "kind", "outcome", "user")

_context: ContextVar[dict[str, Any] | None] = ContextVar("chatops_log_context", default=None)


@contextmanager
def context(**fields: Any) -> Iterator[None]:
    """Every line logged inside carries `fields` (those of `CONTEXT_FIELDS`), whichever
    module logs it: a Slack request's id and kind around its handling, a case around work
    on it. Threads started inside do not inherit it; the listener pool passes it on."""
    fields = {key: value for key, value in fields.items() if value is not None}
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Puts the fields of `context` on each record (a field given as `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


SECRET_SETTINGS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN")
URL_SETTINGS = ("DATABASE_URL", "CHATOPS_SMTP_URL")  # their passwords are secrets


def configured_secrets(environ: Mapping[str, str]) -> list[str]:
    """The secret values of a process's settings, for `configure`: the Slack tokens and the
    signing secret, and the passwords in the database and mail URLs (as written, and
    decoded: a driver's message may show either)."""
    found = [environ.get(name, "") for name in SECRET_SETTINGS]
    for name in URL_SETTINGS:
        try:
            password = urlsplit(environ.get(name, "")).password
        except ValueError:  # a malformed URL is refused with its own message
            continue
        if password:
            found += [password, unquote(password)]
    return [value for value in found if value]


def mask(text: str, extra: list[str] | None = None) -> str:
    """Text with secrets replaced by ***."""
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    for value in extra or []:
        if value:
            text = text.replace(value, "***")
    return text


QUIET_BELOW_INFO = ("slack_bolt", "slack_sdk")


class SlackLibraryFilter(logging.Filter):
    """Drops what the Slack libraries log below INFO: request and response bodies, in which
    people's words are. Setting their loggers' level is not enough: Bolt copies the root
    logger's level onto each logger it makes (`slack_bolt.App`, …) when the app is built."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or not record.name.startswith(QUIET_BELOW_INFO)


class SecretFilter(logging.Filter):
    """Masks secrets in the rendered message (and the configured secret values)."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        # A value that short is no secret (Slack's are 32 characters and more), and masking
        # it would garble every line it occurs in.
        self.secrets = [s for s in (secrets or []) if len(s) >= SECRET_MIN_LENGTH]

    def filter(self, record: logging.LogRecord) -> bool:
        message = mask(record.getMessage(), self.secrets)
        record.msg, record.args = message, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask(
                logging.Formatter().formatException(record.exc_info), self.secrets
            )
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and context fields given as
    `extra={"case": "CS-00042", "request_id": …}`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in CONTEXT_FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str = "INFO", fmt: str = "text", secrets: list[str] | None = None) -> None:
    """Set up the root logger once for a process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(SlackLibraryFilter())
    handler.addFilter(ContextFilter())
    handler.addFilter(SecretFilter(secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic lists every plugin it sets up at INFO, before each schema check: seven lines
    # of its own workings in front of what a command has to say.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # The Slack libraries log whole request bodies at DEBUG (DMs, typed codes): never below INFO.
    for name in ("slack_sdk", "slack_bolt"):
        logging.getLogger(name).setLevel(max(logging.getLevelName(level.upper()), logging.INFO))
