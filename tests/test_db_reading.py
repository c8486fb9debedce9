"""`reading` sessions: the requests that only read (`/support`, the intake modal, delivery's
reads) run without a transaction around them, which saves PostgreSQL two round trips and
SQLite two trips out of the GIL per request, and they cannot write by mistake."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, event, func
from sqlmodel import Session, select

from chatops.db import base_engine, create_schema, reading, transaction
from models import SweepMark

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def _marks(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(SweepMark)).one())


def _statements(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2].split()[0]))
    return seen


def _refuses_writes(engine: Engine) -> None:
    with reading(engine) as session:
        session.add(SweepMark(name="by-mistake", swept_until=NOW))
        with pytest.raises(RuntimeError, match="does not write"):
            session.exec(select(SweepMark))  # the autoflush before a query
    assert _marks(engine) == 0
    with transaction(base_engine(reading(engine).get_bind())) as session:
        session.add(SweepMark(name="on-purpose", swept_until=NOW))
    assert _marks(engine) == 1


def test_sqlite_reads_open_no_transaction(sqlite_engine: Engine) -> None:
    statements = _statements(sqlite_engine)
    with reading(sqlite_engine) as session:
        session.exec(select(SweepMark)).all()
        raw: Any = session.connection().connection.dbapi_connection
        assert not raw.in_transaction
    assert statements == ["SELECT"]
    statements.clear()
    with Session(sqlite_engine) as session:  # a plain session keeps its snapshot
        session.exec(select(SweepMark)).all()
    assert statements == ["BEGIN", "SELECT"]


def test_sqlite_reading_session_refuses_writes(sqlite_engine: Engine) -> None:
    _refuses_writes(sqlite_engine)


@pytest.mark.postgres
def test_postgres_reads_run_in_autocommit(pg_engine: Engine) -> None:
    create_schema(pg_engine)
    with reading(pg_engine) as session:
        session.exec(select(SweepMark)).all()
        raw: Any = session.connection().connection.dbapi_connection
        assert raw.autocommit and raw.info.transaction_status == TransactionStatus.IDLE
    with Session(pg_engine) as session:
        session.exec(select(SweepMark)).all()
        raw = session.connection().connection.dbapi_connection
        assert raw.info.transaction_status == TransactionStatus.INTRANS
    # the pooled connection went back with its usual settings
    with transaction(pg_engine) as session:
        raw = session.connection().connection.dbapi_connection
        assert not raw.autocommit


@pytest.mark.postgres
def test_postgres_reading_session_refuses_writes(pg_engine: Engine) -> None:
    create_schema(pg_engine)
    _refuses_writes(pg_engine)
