"""One SQLite writer at a time, handed on at once: within a process and across processes.

SQLite lets one connection write at a time. A writer that finds the database locked is left
to SQLite's busy handler, which sleeps between tries (1, 2, 5, 10, … up to 100 ms). Under a
burst of short writes from several processes (`chatops serve --workers 2`, `chatops worker`)
the sleeping process keeps missing the moments the lock is free, while the other process's
threads pass it among themselves: the sleeper starves (a form's write waited ~1 s at 20
clients) and a core stands idle. So every process's writers queue on two locks that wake the
next waiter as soon as the lock is let go:

* a `threading.RLock` per process (one writing thread per process), and
* an exclusive `flock` on a file beside the database (`<database>-writer`), taken by the
  thread holding the first: the kernel wakes the next process's waiter on release.

Only then does the transaction's `BEGIN IMMEDIATE` run, and it rarely meets the busy handler
(only for a writer outside this scheme, e.g. the `sqlite3` shell). A wait with a deadline
(a write before the answer, `chatops.db.write_deadline`) polls the file lock every
millisecond instead of blocking, so it can give up in time.
"""

from __future__ import annotations

import os
import threading
import time

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the busy handler alone, as before
    fcntl = None  # type: ignore[assignment]

_POLL = 0.001  # seconds between tries of the file lock when the wait has a deadline


class SqliteWriterLock:
    """Re-entrant (a thread may nest write transactions); `path` None for a database only
    this process sees (in memory)."""

    def __init__(self, path: str | None) -> None:
        self._path = path + "-writer" if path and fcntl is not None else None
        self._start_afresh()

    def _start_afresh(self) -> None:
        # Also in a forked child (gunicorn's workers): what it copied of its parent's state
        # is the parent's. A thread lock "held" by the thread that forked would let the
        # child's same thread in, and flock belongs to the open file, which parent and child
        # would share: both would hold it.
        self._threads = threading.RLock()
        self._fd: int | None = None
        self._depth = 0  # nesting of the holding thread
        self._pid = os.getpid()

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait for the lock (for ever, or up to `timeout` seconds); True when held."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._pid != os.getpid():
            self._start_afresh()
        if not self._threads.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            return False
        self._depth += 1
        if self._depth > 1 or self._path is None:
            return True
        try:
            if self._lock_file(deadline):
                return True
        except BaseException:
            self._give_back()
            raise
        self._give_back()
        return False

    def release(self) -> None:
        if self._depth == 1 and self._path is not None and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._give_back()

    def _give_back(self) -> None:
        self._depth -= 1
        self._threads.release()

    def _file(self) -> int:
        if self._fd is None:
            assert self._path is not None
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        return self._fd

    def _lock_file(self, deadline: float | None) -> bool:
        fd = self._file()
        if deadline is None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks without the GIL; woken on release
            return True
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                time.sleep(min(_POLL, left))
