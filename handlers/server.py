"""Putting the app on a socket: gunicorn for production, a threaded server in-process for
the demo and the tests (the same WSGI application either way)."""

from __future__ import annotations

import atexit
import gc
import logging
import threading
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from sqlalchemy import Engine

from chatops.clock import Clock, clock_for
from chatops.config import Settings
from chatops.db import create_schema, make_engine
from chatops.policy import SupportRules, load_policy
from handlers.app import SlackWsgi, build_app, build_desk
from handlers.desk import Desk


@dataclass
class Service:
    """One running desk: its WSGI app and the parts tests and the demo look into."""

    wsgi: SlackWsgi
    desk: Desk
    engine: Engine
    rules: SupportRules

    def close(self) -> None:
        """Stop the delivery threads (finishing the message in hand), close the pool."""
        if self.desk.pump is not None:
            self.desk.pump.stop()
        self.engine.dispose()


def build_service(
    settings: Settings,
    clock: Clock | None = None,
    engine: Engine | None = None,
    rules: SupportRules | None = None,
) -> Service:
    engine = engine or make_engine(settings.database_url)
    create_schema(engine)
    rules = rules or load_policy(settings.policy_file)
    desk = build_desk(settings, engine, rules, clock or clock_for(settings.clock_file), pump=True)
    app = build_app(settings, desk)
    return Service(SlackWsgi(app, engine, settings.slack_signing_secret), desk, engine, rules)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # many Slack requests can arrive at once


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logging.getLogger("chatops.http").debug(format, *args)


class ThreadedServer:
    """The WSGI app on 127.0.0.1 in a background thread (demo, tests)."""

    def __init__(self, wsgi: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = make_server(
            host, port, wsgi, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ThreadedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def tune_collector_for_serving() -> None:
    """Keep Python's cycle collector from pausing requests, once a serving process is built.

    By then the process holds a few hundred thousand long-lived objects (SQLAlchemy's
    mappers and statement caches, Bolt, slack_sdk, the policy); every full collection walks
    them all, and a young collection runs every 700 allocations, which one request makes
    many times over. Freezing moves what start-up built out of the collector's sight; the
    higher first threshold makes young collections rarer. Cycles made by requests are still
    collected. Measured on `/support` at 20-100 clients: 8-12 % more answers a second and
    a shorter tail (bench/README.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)


def _gunicorn_logger_class() -> type:
    """gunicorn's logger, its lines (start and stop, workers booting and exiting, the access
    log) handed to the process's own log handler (chatops/logs.py) instead of gunicorn's
    plain-text ones: in production one JSON object per line like every other line, and the
    same masking of secrets."""
    from gunicorn.glogging import Logger

    class DeskLogger(Logger):  # type: ignore[misc]
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                log.handlers[:] = []
                log.propagate = True

    return DeskLogger


def run_gunicorn(settings: Settings, host: str, port: int, workers: int, threads: int) -> None:
    """`chatops serve`: gunicorn with threaded workers; each worker builds its own engine."""
    from gunicorn.app.base import BaseApplication

    from chatops import metrics

    shared = metrics.share_between_processes()

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("accesslog", "-")  # one line per request, through logger_class
            self.cfg.set("logger_class", _gunicorn_logger_class())
            self.cfg.set("timeout", 30)
            self.cfg.set("on_exit", lambda _arbiter: metrics.discard_shared(shared))

        def load(self) -> Any:
            service = build_service(settings)
            tune_collector_for_serving()
            # a worker told to stop lets its delivery threads finish the message in hand
            atexit.register(service.close)
            return service.wsgi

    _Gunicorn().run()
