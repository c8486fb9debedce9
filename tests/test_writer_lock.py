"""SQLite writers of several processes take turns on a file lock the kernel hands on at once,
instead of SQLite's busy handler, which sleeps up to 100 ms between tries."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from chatops.db import _SQLITE_WRITERS, make_engine, transaction
from chatops.writer_lock import SqliteWriterLock
from models import Person

HOLD = 0.3  # seconds the other process keeps the lock


def _hold(path: str, held: Any, released_at: Any) -> None:
    lock = SqliteWriterLock.for_database(path)
    assert lock.acquire()
    held.set()
    time.sleep(HOLD)
    released_at.value = time.time()
    lock.release()


def _other_process(path: str) -> tuple[Any, Any, Any]:
    context = multiprocessing.get_context("spawn")
    held, released_at = context.Event(), context.Value("d", 0.0)
    process = context.Process(target=_hold, args=(path, held, released_at))
    process.start()
    assert held.wait(30), "the other process did not take the lock"
    return process, held, released_at


@pytest.mark.parametrize("timeout", [None, 5.0], ids=["no deadline", "deadline"])
def test_a_writer_in_another_process_gets_the_lock_the_moment_it_is_let_go(
    tmp_path: Path, timeout: float | None
) -> None:
    # with a deadline (a form's write before its answer) as promptly as without one: a
    # waiter polling now and then would lose every race to writers blocked in the kernel
    path = str(tmp_path / "desk.db")
    process, _held, released_at = _other_process(path)
    lock = SqliteWriterLock.for_database(path)
    started = time.monotonic()
    assert lock.acquire(timeout)
    got_it = time.time()
    lock.release()
    process.join(10)
    assert time.monotonic() - started >= HOLD - 0.1  # it did wait for the other process
    # SQLite's busy handler sleeps up to 100 ms between tries; a woken process is usually
    # running within a few ms, but a busy 2-core machine has taken over 20 ms to schedule it
    assert got_it - released_at.value < 0.05, got_it - released_at.value


def test_a_wait_with_a_deadline_gives_up_in_time(tmp_path: Path) -> None:
    path = str(tmp_path / "desk.db")
    process, _held, _released = _other_process(path)
    lock = SqliteWriterLock.for_database(path)
    started = time.monotonic()
    assert not lock.acquire(timeout=0.1)
    assert 0.09 <= time.monotonic() - started < HOLD - 0.05
    # nothing is left held here: the next wait gets it once the other process lets go
    assert lock.acquire(timeout=5)
    lock.release()
    process.join(10)


def _try_in_child(path: str, lock: SqliteWriterLock, result: Any) -> None:
    result.value = 1 if lock.acquire(timeout=0.1) else 0


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork (gunicorn's way)"
)
def test_a_forked_child_does_not_share_its_parents_hold(tmp_path: Path) -> None:
    # gunicorn forks its workers from a process that may have written already: a child using
    # the parent's open lock file would find it "held" by itself and write alongside it
    path = str(tmp_path / "desk.db")
    lock = SqliteWriterLock.for_database(path)
    assert lock.acquire()
    try:
        context = multiprocessing.get_context("fork")
        result = context.Value("i", -1)
        child = context.Process(target=_try_in_child, args=(path, lock, result))
        child.start()
        child.join(10)
        assert result.value == 0
    finally:
        lock.release()


def test_threads_of_one_process_and_nested_transactions(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'desk.db'}")
    Person.metadata.create_all(engine)
    writer = _SQLITE_WRITERS[engine]
    assert isinstance(writer, SqliteWriterLock)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for k in range(20):
                with transaction(engine) as session:
                    session.add(Person(slack_user_id=f"U{n}-{k}", name=f"P{n}-{k}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert writer.acquire(timeout=0.1) and writer.acquire(timeout=0.1)  # re-entrant
    writer.release()
    writer.release()
    with transaction(engine) as session:
        assert len(session.exec(Person.__table__.select()).all()) == 160  # type: ignore[attr-defined, call-overload]
    engine.dispose()


def test_a_database_in_memory_needs_no_file(tmp_path: Path) -> None:
    engine = make_engine("sqlite://")
    writer = _SQLITE_WRITERS[engine]
    assert writer.acquire(timeout=0.1)
    writer.release()
    assert list(tmp_path.iterdir()) == []
    engine.dispose()


def test_engines_on_one_file_share_one_lock(tmp_path: Path) -> None:
    # each with its own lock, a thread holding one engine's file lock and writing through
    # the other would wait for itself for ever
    first = make_engine(f"sqlite:///{tmp_path / 'desk.db'}")
    second = make_engine(f"sqlite:///{tmp_path}/./desk.db")
    Person.metadata.create_all(first)
    assert _SQLITE_WRITERS[first] is _SQLITE_WRITERS[second]

    def write(engine: Any, name: str) -> None:
        for k in range(30):
            with transaction(engine) as session:
                session.add(Person(slack_user_id=f"{name}{k}", name=name))

    threads = [
        threading.Thread(target=write, args=(engine, name))
        for engine, name in ((first, "A"), (second, "B"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not any(thread.is_alive() for thread in threads)
    with transaction(second) as session:
        assert len(session.exec(Person.__table__.select()).all()) == 60  # type: ignore[attr-defined, call-overload]
    first.dispose()
    second.dispose()


def test_a_file_system_without_flock_leaves_sqlite_to_its_own_locking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from chatops import writer_lock

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(writer_lock.fcntl, "flock", no_locks)
    engine = make_engine(f"sqlite:///{tmp_path / 'nfs.db'}")
    Person.metadata.create_all(engine)
    for k in range(3):  # every write still goes through
        with transaction(engine) as session:
            session.add(Person(slack_user_id=f"U{k}", name=f"P{k}"))
    with transaction(engine) as session:
        assert len(session.exec(Person.__table__.select()).all()) == 3  # type: ignore[attr-defined, call-overload]
    engine.dispose()
