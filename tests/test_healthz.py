"""`GET /healthz` as a load balancer or an orchestrator probes it: 200 only when the
database answers in time and its schema is the one this release works with."""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, text

from chatops.db import make_engine
from chatops.readiness import DatabaseCheck
from tests.conftest import Desk
from tests.test_cli_errors import _closed_port


def _get(desk: Desk) -> tuple[int, str]:
    url = desk.slack.app_url.replace("/slack/events", "/healthz")
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def slow_database(desk: Desk) -> Iterator[list[float]]:
    """Every statement waits `delay[0]` seconds before it runs."""
    delay = [0.0]

    def wait(*_args: Any) -> None:
        time.sleep(delay[0])

    event.listen(desk.engine, "before_cursor_execute", wait)
    try:
        yield delay
    finally:
        delay[0] = 0.0
        event.remove(desk.engine, "before_cursor_execute", wait)


def test_a_database_too_slow_to_answer_is_unhealthy_within_a_probes_timeout(
    desk: Desk, slow_database: list[float]
) -> None:
    assert _get(desk) == (200, "ok")
    slow_database[0] = 6.0
    started = time.monotonic()
    status, body = _get(desk)
    assert time.monotonic() - started < 3.5  # a probe's usual timeout is a few seconds
    assert status == 503 and "did not answer" in body
    # the probes that follow while it is still slow do not pile up waiting
    started = time.monotonic()
    assert [_get(desk)[0] for _ in range(3)] == [503] * 3
    assert time.monotonic() - started < 10
    slow_database[0] = 0.0
    deadline = time.monotonic() + 15
    while _get(desk) != (200, "ok"):
        assert time.monotonic() < deadline, "/healthz did not recover"
        time.sleep(0.2)


def test_a_database_whose_schema_is_behind_this_release_is_unhealthy(desk: Desk) -> None:
    """A database restored from an older backup, or a replica promoted that had not
    replayed the last migration: the desk's statements would fail on what is missing."""
    with desk.engine.begin() as connection:
        head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        connection.execute(text("UPDATE alembic_version SET version_num = '7d3c2a9e5b10'"))
    status, body = _get(desk)
    assert status == 503
    assert "7d3c2a9e5b10" in body and str(head) in body
    with desk.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert _get(desk) == (200, "ok")


def test_a_database_ahead_of_this_release_stays_healthy(desk: Desk) -> None:
    """A rolling upgrade: the new release has migrated, the old processes still serve
    until they are replaced (migrations add, they do not take away what a release uses)."""
    with desk.engine.begin() as connection:
        head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed0001'"))
    try:
        assert _get(desk) == (200, "ok")
    finally:
        with desk.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})


def test_a_database_that_cannot_be_reached_is_unhealthy_and_the_answer_names_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = make_engine(f"postgresql://desk:secret-pw@127.0.0.1:{_closed_port()}/desk")
    try:
        check = DatabaseCheck(dead)
        with caplog.at_level(logging.INFO, logger="chatops.health"):
            answers = [check.problem() for _ in range(3)]
    finally:
        dead.dispose()
    assert answers == ["database unavailable"] * 3  # no host, user or password to whoever asks
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # the operator is told once, with the cause
    assert "Connection refused" in errors[0].getMessage() or "connect" in errors[0].getMessage()
    assert "secret-pw" not in errors[0].getMessage()
