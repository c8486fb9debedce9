"""What keeps a sweep cheap as the desk grows: notices enqueued in one statement (still once
per key), and SQLite's planner given statistics."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from chatops.db import create_schema, make_engine, refresh_statistics, transaction
from chatops.outbox import Notice, enqueue, enqueue_many
from models import OutboxMessage

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def test_enqueue_many_adds_each_key_once(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'desk.db'}")
    create_schema(engine)
    with transaction(engine) as session:
        assert enqueue(session, key="1:sla_breach:x:thread", kind="sla.breach", now=NOW)
    notices = [
        Notice("1:sla_breach:x:thread", "sla.breach", None, {"to": "thread"}),  # exists
        Notice("2:sla_breach:x:thread", "sla.breach", None, {"to": "thread"}),
        Notice("2:sla_breach:x:owner", "sla.breach", None, {"to": "user", "user": "U0AGENT1"}),
    ]
    with transaction(engine) as session:
        assert enqueue_many(session, notices, NOW) == 2
    with transaction(engine) as session:
        assert enqueue_many(session, notices, NOW) == 0  # a second worker, a retry
        assert enqueue_many(session, [], NOW) == 0
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()  # type: ignore[arg-type]
    assert [r.key for r in rows] == [
        "1:sla_breach:x:thread",
        "2:sla_breach:x:thread",
        "2:sla_breach:x:owner",
    ]
    assert rows[2].payload == {"to": "user", "user": "U0AGENT1"} and rows[2].status == "pending"
    engine.dispose()


def _many_once(engine: Engine) -> None:
    """More notices than one batched INSERT takes, half of them already there."""
    create_schema(engine)
    notices = [Notice(f"{n}:sla_breach:x:thread", "sla.breach", None) for n in range(2500)]
    with transaction(engine) as session:
        assert enqueue_many(session, notices[::2], NOW) == 1250
    with transaction(engine) as session:
        assert enqueue_many(session, notices, NOW) == 1250  # only the other half is new
    with Session(engine) as session:
        keys = session.exec(select(OutboxMessage.key)).all()
    assert sorted(keys) == sorted(n.key for n in notices)


def test_enqueue_many_in_batches_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'desk.db'}")
    try:
        _many_once(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_enqueue_many_in_batches_postgres(pg_engine: Engine) -> None:
    _many_once(pg_engine)


def test_sqlite_statistics_are_refreshed(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'desk.db'}")
    create_schema(engine)
    with transaction(engine) as session:
        enqueue(session, key="k", kind="sla.breach", now=NOW)
    refresh_statistics(engine)
    with engine.connect() as connection:
        tables = connection.execute(text("SELECT DISTINCT tbl FROM sqlite_stat1")).scalars()
        assert "outboxmessage" in set(tables)
    engine.dispose()
