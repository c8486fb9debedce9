"""Alembic environment: the models' metadata, the connection chatops hands in."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table)
from chatops.migrate import include_object

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `chatops migrate` (chatops.migrate.upgrade)")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    include_object=include_object,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying tables
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
