"""The migrations produce exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatops.db import create_schema, make_engine
from chatops.kb import ensure_search_index, load_articles
from chatops.migrate import current_revision, differences, upgrade
from tests.postgres import fresh_database

ROOT = Path(__file__).resolve().parent.parent


def _check(url: str) -> None:
    engine = make_engine(url)
    try:
        create_schema(engine)
        assert current_revision(engine) is not None
        upgrade(engine)  # again: nothing to do
        ensure_search_index(engine)  # the knowledge base's own full-text structures
        load_articles(engine, ROOT / "examples" / "kb")
        assert differences(engine) == []
    finally:
        engine.dispose()


def test_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'migrated.db'}")


@pytest.mark.postgres
def test_postgresql_schema_matches_the_models(postgres_server: str) -> None:
    _check(fresh_database(postgres_server))
