"""Engine and sessions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlmodel import Session, SQLModel, create_engine

import models  # noqa: F401  (registers the tables)


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use psycopg 3 for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings each database needs for concurrent use."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy drive transactions; WAL lets readers run beside the writer.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Write transactions (see `transaction`) take the write lock up front: a deferred
            # one that reads and then writes fails with SQLITE_BUSY at once instead of waiting
            # its turn. Read-only sessions stay deferred so WAL readers never wait, and
            # `reading` sessions open none: each statement is its own.
            options = conn.get_execution_options()
            if options.get(WRITE_OPTION):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif not options.get(READ_OPTION):
                conn.exec_driver_sql("BEGIN")

        # One writer at a time per process, queued on a lock that wakes the next writer at
        # once; SQLite's own busy handler polls with sleeps of up to 100 ms, which under a
        # burst of writes costs far more than the writes. Other processes still meet the
        # busy handler (busy_timeout above).
        _SQLITE_WRITERS[engine] = threading.RLock()
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def refresh_statistics(engine: Engine) -> None:
    """Give SQLite's query planner table statistics (ANALYZE). Without them it prefers the
    index on `status` (an equality) to the one on a due instant (a range) and scans every
    open case on each sweep. PostgreSQL keeps its own statistics (autovacuum)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
            connection.commit()


def create_schema(engine: Engine) -> None:
    """Bring the schema to the latest migration (chatops/migrate.py). Several processes may
    start at once (gunicorn workers, two workers): on PostgreSQL they take turns under an
    advisory lock, so none trips over a table another is creating."""
    from chatops.migrate import upgrade

    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('chatops.schema'))")
            upgrade(connection)
        return
    upgrade(engine)


WRITE_OPTION = "chatops_write"
READ_OPTION = "chatops_read"
_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A write session whose work commits on success and rolls back on any error.

    Keep it short: no network calls inside (on SQLite it holds the database's write lock).
    """
    bind = engine.execution_options(**{WRITE_OPTION: True})
    writer = _SQLITE_WRITERS.get(engine) or nullcontext()
    with writer, Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


class ReadingSession(Session):
    """A `Session` that refuses to write: outside a transaction each flushed statement would
    commit on its own, so a change made by mistake is stopped instead."""

    def flush(self, objects: Any = None) -> None:
        if self.new or self.dirty or self.deleted:
            raise RuntimeError("a reading session does not write; use transaction()")


def reading(engine: Engine, **kwargs: Any) -> Session:
    """A session for a request that only reads: no transaction around its statements.

    A plain session costs a BEGIN and a ROLLBACK besides its statements: on PostgreSQL two
    more round trips to the server, on SQLite two more calls that let go of the GIL, which
    under load means waiting to get it back. Here each statement runs on its own
    (PostgreSQL autocommit, SQLite without BEGIN), so statements do not share one snapshot:
    use it where each read stands alone, and `transaction` for anything that writes.
    """
    reader: Engine | None = getattr(engine, "_chatops_reader", None)
    if reader is None:
        options: dict[str, Any] = {READ_OPTION: True}
        if engine.dialect.name == "postgresql":
            options["isolation_level"] = "AUTOCOMMIT"
        reader = engine.execution_options(**options)
        reader._chatops_base = engine  # type: ignore[attr-defined]
        engine._chatops_reader = reader  # type: ignore[attr-defined]  # made once per engine
    return ReadingSession(reader, **kwargs)


def base_engine(bind: Any) -> Engine:
    """The engine behind a session's bind: a `reading` session's own engine must not be
    used to write (it runs without transactions)."""
    engine: Engine = bind.engine if isinstance(bind, Connection) else bind
    return getattr(engine, "_chatops_base", engine)


def insert_if_absent(
    session: Session, model: type[SQLModel], values: dict[str, Any], key: list[str]
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on `key`, on SQLite and PostgreSQL alike.

    Two processes creating the same row at the same moment both succeed; one row exists.
    Returns True when this call created it.
    """
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model).values(**values).on_conflict_do_nothing(index_elements=key)
    # rowcount is not reliable here on PostgreSQL (-1): ask for the new row's key instead
    primary_key = list(model.__table__.primary_key.columns)  # type: ignore[attr-defined]
    created = session.exec(statement.returning(*primary_key)).first()  # type: ignore[call-overload]
    return created is not None
