"""The baseline for the front-door benchmark: a bare Bolt app that only acknowledges.

The same three request kinds as the desk — `/support` (acks with a short text), any
block action (the Claim button) and any view submission (the intake modal) — with nothing
behind them: no database, no Web API calls. Served exactly like `chatops serve`: gunicorn,
gthread workers, the same worker and thread counts, access log on.

With `BENCH_BARE_POOL=1` it answers through the desk's own listener pool
(handlers/listener_pool.py: the request woken by its ack) instead of Bolt's default, which
looks for the ack every 10 ms: the front-door benchmark measures both, so the desk's ratio
can be read against a bare app with the same ack path too.

    SLACK_SIGNING_SECRET=… SLACK_BOT_TOKEN=… SLACK_API_URL=… \\
        gunicorn -k gthread -w 2 --threads 8 bench.bare_app:wsgi
"""

from __future__ import annotations

import os
import re
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bench.common import bolt_app
from handlers.listener_pool import LISTENER_THREADS, ListenerPool


def build() -> App:
    pool = ListenerPool(LISTENER_THREADS) if os.environ.get("BENCH_BARE_POOL") == "1" else None
    app = bolt_app(**({"listener_executor": pool} if pool else {}))
    if pool is not None:
        app.middleware(pool.middleware)

    @app.command("/support")
    def support(ack: Ack) -> None:
        ack(text="Thanks, we are on it.")

    @app.action(re.compile(".*"))
    def action(ack: Ack) -> None:
        ack()

    @app.view(re.compile(".*"))
    def view(ack: Ack) -> None:
        ack()

    return app


_handler = SlackRequestHandler(build())


def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
    return _handler(environ, start_response)
