"""`GET /healthz`'s question: can this process do its work with the database now?

Healthy means the database answered within `TIMEOUT` and its schema is at this release's
latest migration or later. A schema behind it (a database restored from an older backup, a
replica promoted before it replayed the last migration) is unhealthy: the statements of
this release would fail on what is missing. One ahead of it is healthy: during a rolling
upgrade the new release has migrated and the old processes serve until they are replaced.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from chatops.migrate import _config

log = logging.getLogger("chatops.health")

TIMEOUT = 2.0  # seconds: well inside the few seconds a load balancer's probe waits


class DatabaseCheck:
    """The check, run at most once at a time: while the database is slow, probes that
    arrive wait on the check in flight instead of each holding a thread and a connection
    until the database answers."""

    def __init__(self, engine: Engine, timeout: float = TIMEOUT) -> None:
        self.engine = engine
        self.timeout = timeout
        scripts = ScriptDirectory.from_config(_config(None))
        self._head = scripts.get_current_head()
        self._known = {script.revision for script in scripts.walk_revisions()}
        self._lock = threading.Lock()
        # (what /healthz answers, what the log says): the answer goes to whoever asks, and
        # a connection error names hosts and users
        self._running: Future[tuple[str | None, str | None]] | None = None
        self._said: str | None = None

    def problem(self) -> str | None:
        """None when healthy, else what is wrong, in a line for the operator."""
        with self._lock:
            if self._running is None or self._running.done():
                self._running = Future()
                threading.Thread(
                    target=self._run, args=(self._running,), name="healthz", daemon=True
                ).start()
            running = self._running
        try:
            found, detail = running.result(timeout=self.timeout)
        except FutureTimeout:
            found = detail = f"the database did not answer within {self.timeout:g} s"
        self._tell(found, detail)
        return found

    def _run(self, future: Future[tuple[str | None, str | None]]) -> None:
        try:
            found = self._probe()
            future.set_result((found, found))
        except Exception as exc:
            detail = f"database unavailable: {' '.join(str(exc).split())}"
            future.set_result(("database unavailable", detail))

    def _probe(self) -> str | None:
        with self.engine.connect() as connection:
            if self.engine.dialect.name == "postgresql":
                # the server gives up too, rather than work on for a probe long gone
                connection.exec_driver_sql(
                    "SELECT set_config('statement_timeout', %(t)s, true)",
                    {"t": f"{int(self.timeout * 1000)}ms"},
                )
            revisions = set(
                connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
            )
        if self._head in revisions or revisions - self._known:
            return None
        at = ", ".join(sorted(revisions)) or "none"
        return (
            f"database schema at revision {at}, this release needs {self._head}: "
            "run chatops migrate"
        )

    def _tell(self, found: str | None, detail: str | None) -> None:
        """Log a change of state, not every probe of it."""
        with self._lock:
            said, self._said = self._said, found
        if found and found != said:
            log.error("health check: %s", detail)
        elif said and not found:
            log.info("health check: the database answers again")
