"""The floor for an intake submission: the bare Bolt app plus the least any desk must do
to open a case — store one row before the ack, and (with `BENCH_FLOOR_POST=1`) tell the
triage channel with one `chat.postMessage` after it.

It answers only view submissions. The row is written with the database's own driver
(sqlite3 or psycopg, one connection per thread, no ORM, no pool), so the figure is a floor
for any app on this stack, not a model of the desk: the desk also validates the form against
the contract, writes the case's event and outbox rows in the same transaction, and posts a
card and a requester notice. The front-door benchmark measures it in the same run as the
bare app and the desk, to show how much of the gap to the bare app no desk can close on the
machine the benchmark runs on.

    SLACK_SIGNING_SECRET=… SLACK_BOT_TOKEN=… SLACK_API_URL=… DATABASE_URL=… \\
        gunicorn -k gthread -w 2 --threads 8 'bench.floor_app:wsgi_app()'
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy.engine import URL, make_url

from bench.common import TRIAGE, bolt_app
from chatops.db import SQLITE_BUSY_TIMEOUT_MS, normalise_url
from chatops.writer_lock import SqliteWriterLock
from handlers.webapi import KeepAliveWebClient

TABLE = "bench_floor_case"
_local = threading.local()


def _url(database_url: str) -> URL:
    return make_url(normalise_url(database_url))


def _dsn(url: URL) -> str:
    """psycopg's form of the URL (no `+psycopg` driver name)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def create_table(database_url: str) -> None:
    """The floor's table, made once before the servers start (two workers racing on
    `CREATE TABLE IF NOT EXISTS` can fail on PostgreSQL)."""
    url = _url(database_url)
    if url.get_backend_name() == "postgresql":
        import psycopg

        with psycopg.connect(_dsn(url), autocommit=True) as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id serial PRIMARY KEY, form text)")
        return
    conn = sqlite3.connect(url.database or "")
    try:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id integer PRIMARY KEY, form text)")
        conn.commit()
    finally:
        conn.close()


class FloorStore:
    """One row per submission, committed before the ack: on PostgreSQL one autocommitted
    INSERT; on SQLite the desk's settings (WAL, its busy timeout, writers of all processes
    taking turns on its writer lock, chatops/writer_lock.py)."""

    def __init__(self, database_url: str) -> None:
        url = _url(database_url)
        self.postgres = url.get_backend_name() == "postgresql"
        if self.postgres:
            self.dsn = _dsn(url)
        else:
            self.path = url.database or ""
            self.writer = SqliteWriterLock.for_database(self.path)

    def _connect(self) -> Any:
        if self.postgres:
            import psycopg

            return psycopg.connect(self.dsn, autocommit=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        return conn

    def add(self, form: str) -> int:
        conn = getattr(_local, "conn", None)
        if conn is None:
            conn = _local.conn = self._connect()
        if self.postgres:
            return int(
                conn.execute(
                    f"INSERT INTO {TABLE} (form) VALUES (%s) RETURNING id", (form,)
                ).fetchone()[0]
            )
        self.writer.acquire()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row_id = conn.execute(f"INSERT INTO {TABLE} (form) VALUES (?)", (form,)).lastrowid
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            self.writer.release()
        return int(row_id or 0)


def build() -> App:
    store = FloorStore(os.environ["DATABASE_URL"])
    post = os.environ.get("BENCH_FLOOR_POST") == "1"
    app = bolt_app(KeepAliveWebClient)
    # The app's own client, as the desk posts: Bolt hands listeners a new plain WebClient
    # (a connection per call), the desk its kept-connection one.
    slack = app.client

    @app.view(re.compile(".*"))
    def submission(ack: Ack, body: dict[str, Any]) -> None:
        case_id = store.add(json.dumps(body["view"]["state"]["values"]))
        ack()
        if post:
            slack.chat_postMessage(channel=TRIAGE, text=f"New case {case_id}")

    return app


def wsgi_app() -> Any:
    """The WSGI callable, built when gunicorn loads it (`bench.floor_app:wsgi_app()`), so
    that importing this module (for `create_table`) builds nothing."""
    handler = SlackRequestHandler(build())

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        return handler(environ, start_response)

    return wsgi
