"""One SQLite writer at a time, handed on at once: within a process and across processes.

SQLite lets one connection write at a time. A writer that finds the database locked is left
to SQLite's busy handler, which sleeps between tries (1, 2, 5, 10, … up to 100 ms). Under a
burst of short writes from several processes (`chatops serve --workers 2`, `chatops worker`)
the sleeping process keeps missing the moments the lock is free, while the other process's
threads pass it among themselves: the sleeper starves (a form's write waited ~1 s at 20
clients) and a core stands idle. So every process's writers queue on two locks that wake the
next waiter as soon as the lock is let go:

* a `threading.RLock` per process and database file (one writing thread per process), and
* an exclusive `flock` on a file beside the database (`<database>-writer`), taken by the
  thread holding the first. The kernel wakes the processes waiting for it on release.

Only then does the transaction's `BEGIN IMMEDIATE` run, and it rarely meets the busy handler
(only for a writer outside this scheme, e.g. the `sqlite3` shell). The file lock only orders
the writers: SQLite's own locking still keeps them apart if anything goes wrong with it.

A writer that finds the file lock taken waits for a gate thread that blocks in `flock` for
the process, so a wait with a deadline (a write before the answer, `chatops.db`'s
`write_deadline`) can give up in time and still be woken the moment the lock is let go, as a
wait without one is: polling would lose every race to the processes blocked in the kernel.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the busy handler alone, as before
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

GATE_IDLE_SECONDS = 5.0  # a gate thread nobody has needed for this long ends

_registry_lock = threading.Lock()
_registry: weakref.WeakValueDictionary[str, SqliteWriterLock] = weakref.WeakValueDictionary()


class SqliteWriterLock:
    """Re-entrant (a thread may nest write transactions). One per database file in a
    process (`for_database`), shared by every engine on it; `path` None for a database only
    this process sees (in memory)."""

    @classmethod
    def for_database(cls, path: str | None) -> SqliteWriterLock:
        """The process's lock for the database file at `path` (None: in memory, unshared)."""
        if path is None or fcntl is None:
            return cls(None)
        key = os.path.realpath(path)
        with _registry_lock:
            lock = _registry.get(key)
            if lock is None:
                lock = cls(key)
                _registry[key] = lock
            return lock

    def __init__(self, path: str | None) -> None:
        self._path = path + "-writer" if path and fcntl is not None else None
        self._start_afresh()

    def _start_afresh(self) -> None:
        self._threads = threading.RLock()
        self._depth = 0  # nesting of the holding thread
        self._fd: int | None = None
        self._closer: Any = None  # closes the file when the lock is dropped
        self._state = threading.Condition()  # guards the three below and flock decisions
        self._wanted = False  # the writing thread waits for the gate to get the file lock
        self._held = False  # this process holds the file lock
        self._gate: threading.Thread | None = None

    def _after_fork_in_child(self) -> None:
        # The child copied its parent's state: a thread lock "held" by the thread that
        # forked, and the parent's open lock file (flock belongs to the open file, so parent
        # and child would both hold it). Close the copy (which leaves the parent's lock
        # alone) and start afresh; no other thread exists yet.
        if self._fd is not None:
            if self._closer is not None:
                self._closer.detach()
            os.close(self._fd)
        self._start_afresh()

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait for the lock, for ever (None) or up to `timeout` seconds (0 or less: one
        try); True when held."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._threads.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            return False
        self._depth += 1
        if self._depth > 1 or self._path is None:
            return True
        try:
            if self._take_file(deadline):
                return True
        except OSError as exc:
            if isinstance(exc, BlockingIOError):  # pragma: no cover - handled inside
                raise
            # A file system without flock (some network mounts): SQLite's own locking and
            # busy handler alone, as before this lock, rather than no writes at all.
            log.warning("no file lock for %s (%s): SQLite's busy handler alone", self._path, exc)
            self._path = None
            return True
        except BaseException:
            self._give_back()
            raise
        self._give_back()
        return False

    def release(self) -> None:
        try:
            if self._depth == 1 and self._fd is not None:
                with self._state:
                    if self._held:
                        self._held = False
                        fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._give_back()

    def _give_back(self) -> None:
        self._depth -= 1
        self._threads.release()

    def _file(self) -> int:
        if self._fd is None:
            assert self._path is not None
            try:
                fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except PermissionError:  # made by another user (a migration run as root, say)
                fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)  # enough for flock
            self._fd = fd
            self._closer = weakref.finalize(self, os.close, fd)
        return self._fd

    def _try_file(self, fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._held = True
        return True

    def _take_file(self, deadline: float | None) -> bool:
        fd = self._file()
        with self._state:
            if self._try_file(fd):  # not contended: no hand-over
                return True
            self._wanted = True
            if self._gate is None:
                self._gate = threading.Thread(
                    target=self._run_gate, args=(fd,), name="sqlite-writer-gate", daemon=True
                )
                self._gate.start()
            self._state.notify_all()
            while not self._held:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    self._wanted = False  # the gate lets go of it if it gets it now
                    return False
                self._state.wait(left)
            self._wanted = False
            return True

    def _run_gate(self, fd: int) -> None:
        """Block in `flock` for the process's writing thread; hand the lock over if it still
        wants it, let go of it otherwise."""
        while True:
            with self._state:
                if not self._wanted:
                    self._state.wait(GATE_IDLE_SECONDS)
                    if not self._wanted:
                        self._gate = None
                        return
            fcntl.flock(fd, fcntl.LOCK_EX)  # without the GIL; woken when it is let go
            with self._state:
                if self._held:
                    continue  # the writing thread took it itself meanwhile
                if not self._wanted:
                    fcntl.flock(fd, fcntl.LOCK_UN)  # it gave up waiting
                elif self._try_file(fd):  # still ours (it was not let go since)
                    self._state.notify_all()


def _after_fork_in_child() -> None:
    for lock in list(_registry.values()):
        lock._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
