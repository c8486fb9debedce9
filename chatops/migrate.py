"""The schema, managed by Alembic (`chatops migrate`). Every start-up upgrades to the head
revision, so a new release's tables appear without a manual step; the migration scripts in
chatops/migrations/versions are the record of every change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine
from sqlmodel import SQLModel

import models  # noqa: F401

HERE = Path(__file__).resolve().parent / "migrations"
# Tables the models do not declare: full-text indexes kept by the knowledge base.
UNMANAGED_PREFIXES = ("article_fts",)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Leave the knowledge base's full-text structures to the code that keeps them."""
    from chatops.kb.search import PG_SEARCH_COLUMN, PG_SEARCH_INDEX

    if type_ == "table" and name and name.startswith(UNMANAGED_PREFIXES):
        return False
    if type_ == "column" and name == PG_SEARCH_COLUMN and reflected and compare_to is None:
        return False
    return not (type_ == "index" and name == PG_SEARCH_INDEX)


def _config(connection: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


def upgrade(bind: Engine | Connection, revision: str = "head") -> None:
    """Bring the database to `revision` (default: the latest)."""
    if isinstance(bind, Connection):
        command.upgrade(_config(bind), revision)
        return
    with bind.begin() as connection:
        command.upgrade(_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def differences(engine: Engine) -> list[Any]:
    """What differs between the database and the models (empty when in step)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": include_object, "compare_type": True}
        )
        return list(compare_metadata(context, SQLModel.metadata))


def autogenerate(engine: Engine, message: str) -> None:
    """Developers: write a new revision for the model changes (against an up-to-date DB)."""
    with engine.begin() as connection:
        command.revision(_config(connection), message=message, autogenerate=True)
