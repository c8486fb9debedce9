"""The floors: the bare Bolt app plus the least any desk must do for a request.

* An intake submission (a view submission): store one row before the ack, and (with
  `BENCH_FLOOR_POST=1`) tell the triage channel with one `chat.postMessage` after it. The
  desk also validates the form against the contract, writes the case's event and outbox rows
  in the same transaction, and posts a card and a requester notice.
* `/support <question>`: read who is asking (the person and their organisation: SC-1 and
  SC-3 decide what they may do) and search the help articles (SC-25), then ack with the
  titles and links of the best three. The desk also makes a snippet of each article, checks
  the contract's rules for the requester and builds the answer as Block Kit.

The database is used with its own driver (sqlite3 or psycopg, one connection per thread, no
ORM, no pool) and the desk's own search (the same FTS5 table or tsvector column, the same
ranking), so the figures are floors for any app on this stack, not a model of the desk. The
front-door benchmark measures them in the same run as the bare app and the desk, to show how
much of the gap to the bare app no desk can close on the machine the benchmark runs on.

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
from chatops.kb.search import (
    BM25_WEIGHTS,
    FTS_TABLE,
    PG_SEARCH_COLUMN,
    fts5_query,
    pg_tsquery,
    query_tokens,
)
from chatops.writer_lock import SqliteWriterLock
from handlers.webapi import KeepAliveWebClient

TABLE = "bench_floor_case"


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


_REQUESTER = (
    "SELECT p.roles, o.subscription FROM person AS p"
    " LEFT JOIN organisation AS o ON o.id = p.organisation_id WHERE p.slack_user_id = {}"
)
_PG_SEARCH = (
    f"SELECT a.title, a.url FROM article AS a, to_tsquery('english', %s) AS q"
    f" WHERE a.{PG_SEARCH_COLUMN} @@ q ORDER BY ts_rank(a.{PG_SEARCH_COLUMN}, q, 1) DESC, a.slug"
    " LIMIT 3"
)
_SQLITE_SEARCH = (
    f"SELECT a.title, a.url FROM {FTS_TABLE} JOIN article AS a ON a.id = {FTS_TABLE}.rowid"
    f" WHERE {FTS_TABLE} MATCH ?"
    f" ORDER BY bm25({FTS_TABLE}, {', '.join(str(w) for w in BM25_WEIGHTS)}), a.slug LIMIT 3"
)


class FloorDatabase:
    """The desk's database through its own driver. A submission is one row committed
    before the ack: on PostgreSQL one autocommitted INSERT; on SQLite the desk's settings
    (WAL, its busy timeout, writers of all processes taking turns on its writer lock,
    chatops/writer_lock.py). A question is two autocommitted reads."""

    def __init__(self, database_url: str) -> None:
        self._local = threading.local()  # a connection per thread
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

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def answer(self, slack_user_id: str, question: str) -> tuple[str | None, list[Any]]:
        """(the asker's roles as stored, or None for a stranger; the best three articles'
        titles and links)."""
        conn = self._connection()
        marker = "%s" if self.postgres else "?"
        person = conn.execute(_REQUESTER.format(marker), (slack_user_id,)).fetchone()
        tokens = query_tokens(question)
        if not tokens:
            return (person[0] if person else None), []
        if self.postgres:
            articles = conn.execute(_PG_SEARCH, (pg_tsquery(tokens),)).fetchall()
        else:
            articles = conn.execute(_SQLITE_SEARCH, (fts5_query(tokens),)).fetchall()
        return (person[0] if person else None), articles

    def add(self, form: str) -> int:
        conn = self._connection()
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
    database = FloorDatabase(os.environ["DATABASE_URL"])
    post = os.environ.get("BENCH_FLOOR_POST") == "1"
    app = bolt_app(KeepAliveWebClient)
    # The app's own client, as the desk posts: Bolt hands listeners a new plain WebClient
    # (a connection per call), the desk its kept-connection one.
    slack = app.client

    @app.command("/support")
    def question(ack: Ack, command: dict[str, Any]) -> None:
        roles, articles = database.answer(command["user_id"], command.get("text") or "")
        if roles is None:
            ack(text="You are not registered with support.")
            return
        ack(text="\n".join(f"<{url}|{title}>" for title, url in articles) or "No articles.")

    @app.view(re.compile(".*"))
    def submission(ack: Ack, body: dict[str, Any]) -> None:
        case_id = database.add(json.dumps(body["view"]["state"]["values"]))
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
