"""insert_if_absent says truthfully whether it created the row, on both databases (the relay
of a retried Slack event and the one-answer survey depend on it)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from chatops.db import create_schema, insert_if_absent, make_engine
from models import SweepMark


def _twice(engine) -> tuple[bool, bool]:  # type: ignore[no-untyped-def]
    now = datetime(2026, 11, 25, tzinfo=UTC)
    with Session(engine) as session:
        first = insert_if_absent(session, SweepMark, {"name": "x", "swept_until": now}, ["name"])
        second = insert_if_absent(session, SweepMark, {"name": "x", "swept_until": now}, ["name"])
        session.commit()
    return first, second


def test_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    create_schema(engine)
    assert _twice(engine) == (True, False)


@pytest.mark.postgres
def test_postgresql(pg_engine) -> None:  # type: ignore[no-untyped-def]
    create_schema(pg_engine)
    assert _twice(pg_engine) == (True, False)
