"""`GET /metrics` as Prometheus scrapes it: the request, delivery and paging counters move
with what the desk did, the outbox gauges read the database, and a database that does not
answer leaves the process's own counters readable (`chatops_database_up 0`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from chatops import metrics
from chatops.db import make_engine
from chatops.standin import SlackSender, SlackStandIn
from tests.conftest import SECRET, TRIAGE, Desk
from tests.postgres import _free_port
from tests.test_cli_errors import _closed_port
from tests.test_serve import _wait_healthy, start_serve


def _scrape(desk: Desk) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    url = desk.slack.app_url.replace("/slack/events", "/metrics")
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.status == 200
        text = answer.read().decode()
    return _samples(text)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_and_gauges_follow_a_sev_a_case(desk: Desk) -> None:
    before = _scrape(desk)
    case = desk.open_case(
        "U0ALICE", severity="A", business_impact="mail down", available_contact="Alice"
    )
    desk.slack.click_in("U0AGENT1", desk.card(case), "claim_case", channel_id=TRIAGE)
    desk.settle()
    after = _scrape(desk)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("chatops_requests_total", kind="view_submission", outcome="ok") >= 1
    assert grew("chatops_requests_total", kind="block_actions", outcome="ok") >= 1
    assert grew("chatops_pages_total", event="started") == 1  # the first page of the case
    assert grew("chatops_pages_total", event="acknowledged") == 1  # by the claim
    assert grew("chatops_deliveries_total", outcome="sent") >= 3  # card, DM, page, ...
    assert _value(after, "chatops_database_up") == 1
    sent = _value(after, "chatops_outbox_messages", status="sent")
    assert sent >= 3 and _value(after, "chatops_outbox_messages", status="parked") == 0


def test_a_database_that_does_not_answer_leaves_the_counters_readable() -> None:
    dead = make_engine(f"postgresql://desk:secret-pw@127.0.0.1:{_closed_port()}/desk")
    metrics.REQUESTS.labels("command", "ok")  # a counter of this process, read or not
    try:
        families = list(metrics.OutboxCollector(dead).collect())
        text = metrics.render(dead).decode()  # the whole scrape does not fail
    finally:
        collector = metrics._collectors.pop(id(dead))
        metrics.REGISTRY.unregister(collector)
        dead.dispose()
    assert [(f.name, [s.value for s in f.samples]) for f in families] == [
        ("chatops_database_up", [0.0])
    ]
    samples = _samples(text)
    assert any(name == "chatops_requests_total" for name, _labels in samples)
    assert "secret-pw" not in text


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.read().decode())


def test_every_scrape_of_a_multi_worker_server_counts_every_request(tmp_path: Path) -> None:
    """gunicorn hands each connection, a scrape's included, to any of its workers: a scrape
    must count the requests all of them answered, not those of the one it reached."""
    with SlackStandIn() as standin:
        port, process = start_serve(tmp_path, standin, workers=3, threads=2)
        try:
            sender = SlackSender(f"http://127.0.0.1:{port}/slack/events", SECRET, standin)
            # at once, so that each worker takes some of them
            with ThreadPoolExecutor(12) as pool:
                answers = list(
                    pool.map(lambda _: sender.command("U0ALICE", "mail stopped"), range(12))
                )
            assert [answer.status for answer in answers] == [200] * 12
            url = f"http://127.0.0.1:{port}/metrics"
            with ThreadPoolExecutor(6) as pool:
                scrapes = list(pool.map(lambda _: _samples(_get(url)), range(12)))
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    for samples in scrapes:
        assert _value(samples, "chatops_requests_total", kind="command", outcome="ok") == 12
        assert _value(samples, "chatops_ack_seconds_count", kind="command") == 12
        assert _value(samples, "chatops_database_up") == 1
        assert _value(samples, "chatops_outbox_messages", status="parked") == 0


def test_notices_and_pages_of_a_worker_process_show_in_the_servers_metrics(desk: Desk) -> None:
    """The SLA sweeps and page escalation run in `chatops worker`, a process of its own that
    nobody scrapes: what it did shows in every serving process's `/metrics`, once."""
    case = desk.open_case(
        "U0ALICE", severity="A", business_impact="mail down", available_contact="Alice"
    )
    desk.settle()
    before = _scrape(desk)
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": desk.standin.bot_token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": desk.standin.api_url,
        "DATABASE_URL": str(desk.engine.url),
    }
    assert case.first_response_due is not None
    later = (case.first_response_due + timedelta(minutes=1)).isoformat()
    subprocess.run(
        [sys.executable, "-m", "chatops.cli", "tick", "--at", later],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    first = _scrape(desk)
    again = _scrape(desk)

    def grew(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
        return _value(samples, name, **labels) - _value(before, name, **labels)

    for samples in (first, again):
        assert grew(samples, "chatops_sla_notices_total", kind="breach") == 1
        assert grew(samples, "chatops_pages_total", event="step") >= 1
        assert grew(samples, "chatops_pages_total", event="started") == 0


def test_a_worker_serves_the_deliveries_it_made(desk: Desk, tmp_path: Path) -> None:
    """A message Slack refused while the request was answered is sent by `chatops worker`
    on a later pass: its delivery counts where Prometheus can scrape it."""
    desk.standin.fail_next("chat.postMessage", status=500, times=20)
    desk.open_case("U0ALICE")
    desk.settle()
    port = _free_port()
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": desk.standin.bot_token,
        "SLACK_API_URL": desk.standin.api_url,
        "DATABASE_URL": str(desk.engine.url),
    }
    env.pop("SLACK_SIGNING_SECRET", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "chatops.cli", "worker", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
        desk.standin.reset()  # Slack answers again
        deadline = time.monotonic() + 30
        while True:
            samples = _samples(_get(f"http://127.0.0.1:{port}/metrics"))
            if _value(samples, "chatops_deliveries_total", outcome="sent") >= 1:
                break
            assert time.monotonic() < deadline, "the worker's deliveries are not counted"
            time.sleep(0.5)
        assert _value(samples, "chatops_database_up") == 1
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
