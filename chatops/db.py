"""Engine and sessions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import select
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DisconnectionError, InvalidatePoolError, OperationalError
from sqlmodel import Session, SQLModel, create_engine

import models  # noqa: F401  (registers the tables)
from chatops.writer_lock import SqliteWriterLock


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
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Write transactions (see `transaction`) take the write lock up front: a deferred
            # one that reads and then writes fails with SQLITE_BUSY at once instead of waiting
            # its turn. Read-only sessions stay deferred so WAL readers never wait, and
            # `reading` sessions open none: each statement is its own.
            options = conn.get_execution_options()
            _sqlite_busy_timeout(conn, bool(options.get(WRITE_OPTION)))
            if options.get(WRITE_OPTION):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif not options.get(READ_OPTION):
                conn.exec_driver_sql("BEGIN")

        # Writers queue on locks that wake the next one at once (chatops/writer_lock.py)
        # rather than on SQLite's busy handler, which sleeps up to 100 ms between tries.
        _SQLITE_WRITERS[engine] = SqliteWriterLock.for_database(_database_file(engine))
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs["connect_args"] = _dead_peer_detection(url, kwargs.get("connect_args") or {})
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_in_doubt(engine)

    @event.listens_for(engine, "begin")
    def _postgres_begin(conn: Any) -> None:
        if not conn.get_execution_options().get(WRITE_OPTION):
            return
        remaining = _remaining()
        if remaining is not None:
            # a lock held elsewhere, or a server too busy, must not keep the answer waiting
            wait = f"{max(1, int(remaining * 1000))}ms"
            conn.exec_driver_sql(
                "SELECT set_config('lock_timeout', %(w)s, true),"
                " set_config('statement_timeout', %(w)s, true)",
                {"w": wait},
            )

    return engine


# libpq settings so that a server gone without closing its connections (a host frozen or cut
# off, a failover moving its address) is noticed in about a minute instead of the kernel's
# ~15: keepalive probes on idle connections, and a limit on how long sent data may go
# unacknowledged. A URL that sets any of them keeps its own.
DEAD_PEER_SETTINGS = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 60_000,  # milliseconds
}


def _dead_peer_detection(url: str, connect_args: dict[str, Any]) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    given = set(make_url(url).query) | set(connect_args)
    return {**{k: v for k, v in DEAD_PEER_SETTINGS.items() if k not in given}, **connect_args}


# A pooled connection idle for longer than this is pinged before use (see below).
PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "chatops_idle_since"


def _ping_when_in_doubt(engine: Engine) -> None:
    """Pre-ping a PostgreSQL connection taken from the pool only when it may be dead: when
    it has been idle in the pool for more than `PING_AFTER_IDLE_SECONDS`, or when its socket
    has something to read although no statement is running (a server that ends a session —
    a restart, `pg_terminate_backend`, an idle timeout — says so and closes it). A dead one
    is replaced before a request uses it, as with SQLAlchemy's `pool_pre_ping`; but a
    connection handed back a moment ago by another request is not asked again. Under load a
    ping per request was a fifth of `/support`'s throughput on PostgreSQL (a round trip, and
    a server process woken, on the same cores). Connection pools such as HikariCP skip the
    check the same way for connections used within the last half second.

    The cost: a request that takes a connection in the very moment the server is ending its
    session, before its notice has arrived, fails once, as a request already running would;
    SQLAlchemy then retires the whole pool, and the next requests get fresh connections. A
    server that vanishes without closing (a frozen host) is not detected by either check:
    that takes TCP keepalives.
    """

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        recent = idle_since is not None and time.monotonic() - idle_since <= PING_AFTER_IDLE_SECONDS
        if recent and not _server_spoke(dbapi_connection):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool replaces it with a fresh connection; if the server closed it, it has
            # likely closed its siblings too (a restart): retire every older one as well.
            error = InvalidatePoolError if dbapi_connection.closed else DisconnectionError
            raise error(f"pooled connection is dead: {exc}") from exc


def _server_spoke(dbapi_connection: Any) -> bool:
    """The connection is closed, or the server has sent something nobody asked for."""
    if dbapi_connection.closed:
        return True
    try:
        waiting = select.poll()  # not select(): no limit on the descriptor's number
        waiting.register(dbapi_connection.pgconn.socket, select.POLLIN)
        return bool(waiting.poll(0))
    except Exception:  # psycopg's "the connection is lost", a closed descriptor: in doubt
        return True


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


# The largest row id SQLite can store or bind (a signed 64-bit INTEGER); PostgreSQL's are
# smaller still, but it compares a larger parameter without complaint.
MAX_ROW_ID = 2**63 - 1


def parse_row_id(text: str) -> int | None:
    """A row id a person typed or a payload carried: ASCII digits only, 1..`MAX_ROW_ID`;
    None for anything else. `str.isdigit` alone is not enough: it accepts "²" and "①",
    which `int` refuses, and `int` accepts other scripts' digits and "1_000"; and a number
    SQLite cannot bind raises instead of finding nothing."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ROW_ID else None


WRITE_OPTION = "chatops_write"
READ_OPTION = "chatops_read"
_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, SqliteWriterLock] = weakref.WeakKeyDictionary()


def _database_file(engine: Engine) -> str | None:
    """The SQLite database's file, or None for one in memory (seen by this process only)."""
    name = engine.url.database
    if not name or name == ":memory:" or "mode=memory" in str(engine.url):
        return None
    return name


SQLITE_BUSY_TIMEOUT_MS = 30_000


class DeskBusy(Exception):
    """A write could not be done by its thread's deadline (see `write_deadline`); it was
    rolled back, so nothing of it is stored."""


_deadline = threading.local()


@contextmanager
def write_deadline(
    at: float | None, may_commit: Callable[[], bool] | None = None
) -> Iterator[None]:
    """Writes in this thread must commit by `at` (a `time.monotonic()` instant), or they
    are abandoned with `DeskBusy` and nothing is stored. `may_commit` is asked last, just
    before each commit: False abandons the write the same way (the request has meanwhile
    been answered "nothing was saved"), True means the request has now stored something.

    For a request that writes before it answers: Slack stops waiting after 3 s and shows the
    person an error, so a case written after that is one they cannot know about, and will
    likely open again. Waiting for the database's write lock (another writer, another
    process) and the transaction itself are bounded; `None` is no deadline.
    """
    before = getattr(_deadline, "at", None), getattr(_deadline, "may_commit", None)
    _deadline.at, _deadline.may_commit = at, may_commit
    try:
        yield
    finally:
        _deadline.at, _deadline.may_commit = before


def lift_write_deadline() -> None:
    """The request has been answered: this thread's later writes have no deadline."""
    _deadline.at = None


def _remaining() -> float | None:
    at: float | None = getattr(_deadline, "at", None)
    if at is None:
        return None
    remaining = at - time.monotonic()
    if remaining <= 0:
        raise DeskBusy("the answer's deadline passed before the write")
    return remaining


def _sqlite_busy_timeout(conn: Any, writing: bool) -> None:
    """Bound SQLite's own wait for another process's write lock by the deadline, if any;
    every other transaction on the connection gets the usual wait back."""
    remaining = _remaining() if writing else None
    wanted = SQLITE_BUSY_TIMEOUT_MS if remaining is None else max(1, int(remaining * 1000))
    info = conn.connection.info  # lives as long as the pooled DBAPI connection
    if info.get("chatops_busy_timeout", SQLITE_BUSY_TIMEOUT_MS) != wanted:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={wanted}")
        info["chatops_busy_timeout"] = wanted


def _engine_with(engine: Engine, name: str, options: dict[str, Any]) -> Engine:
    """`engine` with execution options set (the write option, or a reader's), made once per
    engine and kept on it as `name`: making one copies the engine's options, a noticeable
    part of a short transaction's cost. `base_engine` finds the engine behind it."""
    derived: Engine | None = getattr(engine, name, None)
    if derived is None:
        derived = engine.execution_options(**options)
        derived._chatops_base = engine  # type: ignore[attr-defined]
        setattr(engine, name, derived)
    return derived


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A write session whose work commits on success and rolls back on any error.

    Keep it short: no network calls inside (on SQLite it holds the database's write lock).
    Under a `write_deadline`, raises `DeskBusy` (nothing stored) when the write lock or the
    work takes past it.
    """
    bind = _engine_with(engine, "_chatops_writer", {WRITE_OPTION: True})
    writer = _SQLITE_WRITERS.get(engine)
    remaining = _remaining()
    if writer is not None and not writer.acquire(timeout=remaining):
        raise DeskBusy("another write held the database past the answer's deadline")
    try:
        with Session(bind, expire_on_commit=False) as session:
            try:
                yield session
                if remaining is not None:
                    session.flush()
                    _remaining()  # past the deadline: roll back rather than answer late
                    may_commit = getattr(_deadline, "may_commit", None)
                    if may_commit is not None and not may_commit():
                        raise DeskBusy("the request was answered busy before this write")
                session.commit()
            except OperationalError as exc:
                session.rollback()
                if remaining is not None and _timed_out(exc):
                    raise DeskBusy(str(exc.orig)) from exc
                raise
            except BaseException:
                session.rollback()
                raise
    finally:
        if writer is not None:
            writer.release()


def _timed_out(exc: OperationalError) -> bool:
    """SQLite's busy handler gave up, or PostgreSQL's lock or statement timeout fired."""
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("55P03", "57014") or "database is locked" in str(exc.orig)


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
    options: dict[str, Any] = {READ_OPTION: True}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "AUTOCOMMIT"
    return ReadingSession(_engine_with(engine, "_chatops_reader", options), **kwargs)


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
    dialect = session.get_bind().dialect.name
    table = model.__table__  # type: ignore[attr-defined]
    statement_key = (dialect, table.name, tuple(key))
    statement = _INSERTS_IF_ABSENT.get(statement_key)
    if statement is None:
        from sqlalchemy.dialects import postgresql, sqlite

        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # rowcount is not reliable here on PostgreSQL (-1): ask for the new row's key instead
        statement = (
            insert(table)
            .on_conflict_do_nothing(index_elements=key)
            .returning(*table.primary_key.columns)
        )
        _INSERTS_IF_ABSENT[statement_key] = statement
    # The values go as parameters of a statement built once, on the table rather than the
    # ORM entity: building `.values(...)` for every call and the ORM's bulk-insert path cost
    # most of a case's opening (each notice of it is one of these).
    return session.execute(statement, values).first() is not None


_INSERTS_IF_ABSENT: dict[tuple[str, str, tuple[str, ...]], Any] = {}
