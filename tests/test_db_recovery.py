"""PostgreSQL drops the desk's connections (a restart, a failover, an idle timeout on the way):
the next requests are answered as usual on fresh connections, not with errors. A pooled
connection is pinged as it is taken from the pool when it may be dead (idle for a while, or
the server has said something on it), so a dead one is replaced before a request uses it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chatops import db
from chatops.db import make_engine
from tests.conftest import TRIAGE, Desk


def _drop_every_connection(desk: Desk) -> int:
    """Terminate every other session on the desk's database; how many there were."""
    admin = make_engine(desk.engine.url.render_as_string(hide_password=False))
    try:
        with admin.connect() as conn:
            return int(
                # waits (up to 5 s) until each session has ended: the desk's next request
                # comes after, not in the instant the server is ending it
                conn.exec_driver_sql(
                    "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).scalar_one()
            )
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_requests_after_the_database_dropped_every_connection(pg_desk: Desk) -> None:
    before = pg_desk.ask("U0ALICE")
    pg_desk.settle()
    assert _drop_every_connection(pg_desk) >= 1  # the desk's pooled connections
    # a read (the question), then writes before and after an ack (a case, its claim)
    assert pg_desk.ask("U0ALICE") == before
    case = pg_desk.open_case("U0ALICE")
    card = pg_desk.card(case)
    assert _drop_every_connection(pg_desk) >= 1
    click = pg_desk.slack.click_in(
        "U0AGENT1", card, "claim_case", channel_id=TRIAGE, is_ephemeral=False
    )
    assert click.status == 200
    pg_desk.wait_until(lambda: pg_desk.events("claimed"), "the claim, on a fresh connection")
    pg_desk.standin.wait_for("chat.update")


@pytest.mark.postgres
def test_a_pooled_connection_is_pinged_only_when_it_may_be_dead(
    pg_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[int] = []
    ping = pg_engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return bool(ping(dbapi_connection))

    monkeypatch.setattr(pg_engine.dialect, "do_ping", counted)

    def use() -> None:
        with pg_engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 60.0)  # however slow this machine is
    for _ in range(5):  # a new connection, then one handed back a moment ago
        use()
    assert pings == []
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.05)
    time.sleep(0.1)  # idle for longer than that: asked before use
    use()
    assert pings == [1]


@pytest.mark.postgres
def test_connections_notice_a_server_gone_without_a_word(pg_engine: Any) -> None:
    # a frozen or cut-off host closes nothing: only TCP keepalives and a limit on
    # unacknowledged data end the wait, in about a minute instead of the kernel's ~15
    with pg_engine.connect() as conn:
        settings = conn.connection.dbapi_connection.info.get_parameters()
    assert settings["keepalives"] == "1"
    assert settings["keepalives_idle"] == "30"
    assert settings["tcp_user_timeout"] == "60000"
    url = pg_engine.url.render_as_string(hide_password=False)
    own = make_engine(url + "?keepalives_idle=5")  # a URL's own setting is kept
    try:
        with own.connect() as conn:
            settings = conn.connection.dbapi_connection.info.get_parameters()
        assert settings["keepalives_idle"] == "5" and settings["keepalives_count"] == "3"
    finally:
        own.dispose()
