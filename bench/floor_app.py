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
        gunicorn -k gthread -w 2 --threads 8 bench.floor_app:wsgi
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
from slack_sdk import WebClient

from bench.common import TRIAGE, bolt_app
from handlers.webapi import KeepAliveWebClient

TABLE = "bench_floor_case"
_local = threading.local()


class FloorStore:
    """One row per submission, committed before the ack."""

    def __init__(self, database_url: str) -> None:
        self.postgres = database_url.startswith("postgresql")
        if self.postgres:
            self.dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        else:
            self.path = database_url.removeprefix("sqlite:///")
        self._connect().close()  # creates the table once, before the first request

    def _connect(self) -> Any:
        if self.postgres:
            import psycopg

            conn = psycopg.connect(self.dsn, autocommit=True)
            conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id serial PRIMARY KEY, form text)")
            return conn
        # the desk's settings: WAL, a busy timeout, SQLite's default synchronous mode
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id integer PRIMARY KEY, form text)")
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
        conn.execute("BEGIN IMMEDIATE")
        try:
            row_id = conn.execute(f"INSERT INTO {TABLE} (form) VALUES (?)", (form,)).lastrowid
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return int(row_id or 0)


def build() -> App:
    store = FloorStore(os.environ["DATABASE_URL"])
    post = os.environ.get("BENCH_FLOOR_POST") == "1"
    app = bolt_app(KeepAliveWebClient)  # the desk's client: a kept connection per thread

    @app.view(re.compile(".*"))
    def submission(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        case_id = store.add(json.dumps(body["view"]["state"]["values"]))
        ack()
        if post:
            client.chat_postMessage(channel=TRIAGE, text=f"New case {case_id}")

    return app


_handler = SlackRequestHandler(build())


def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
    return _handler(environ, start_response)
