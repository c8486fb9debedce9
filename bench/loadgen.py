"""The load generator: N client threads on keep-alive HTTP/1.1 connections, each request
signed the way Slack signs it (`SlackSender.sign`: v0 HMAC-SHA256 over `v0:{ts}:{body}`).

It runs in its own process (`LoadGenerator` keeps one spawned worker for the whole run), so
its threads do not share a GIL with the Slack stand-in that answers the servers' Web API
calls. Bodies are built once by the stand-in's own `SlackSender` (bench/desk.py captures
them) and sent again with a token replaced per request: a new title for each intake
submission, a case id for each Claim click. Every request is re-signed with the current
timestamp.

Ack latency = from just before the request is written to the end of the response body.
"""

from __future__ import annotations

import http.client
import itertools
import multiprocessing
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from chatops.standin import SlackSender


@dataclass
class LoadSpec:
    """One measurement: what to send, how many clients, for how long / how many."""

    host: str
    port: int
    secret: str
    template: str  # the form body, with `token` replaced per request
    concurrency: int
    path: str = "/slack/events"
    content_type: str = "application/x-www-form-urlencoded"
    token: str | None = None
    values: list[str] | None = None  # token replacements; None: a counter from `first`
    first: int = 0
    cycle: bool = True  # reuse `values` round and round (else each once)
    duration: float | None = None  # stop starting requests after this many seconds
    count: int | None = None  # or after this many requests
    rate: float | None = None  # requests per second overall (open loop); None: closed loop
    timeout: float = 30.0
    bad_markers: tuple[str, ...] = ('"response_action": "errors"', '"response_action":"errors"')


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    bad_bodies: int = 0  # 200 but an error answer (e.g. a modal with field errors)
    latencies: list[float] = field(default_factory=list)  # successful requests, seconds
    all_latencies: list[float] = field(default_factory=list)  # every answered request
    started_at: float = 0.0  # time.time() of the first request
    elapsed: float = 0.0  # until the last answer
    samples: list[str] = field(default_factory=list)  # a few non-200 / bad answers
    sent_values: list[str] = field(default_factory=list)  # token values acked with 200
    send_times: list[float] = field(default_factory=list)  # time.time() per request (rate)
    value_times: dict[str, float] = field(default_factory=dict)  # token value → time.time()

    @property
    def throughput(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0


_STALE = (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected)


def _connect(spec: LoadSpec) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(spec.host, spec.port, timeout=spec.timeout)


def _exchange(
    conn: http.client.HTTPConnection,
    spec: LoadSpec,
    raw: bytes,
    headers: dict[str, str],
    reused: bool,
) -> tuple[int, bytes, http.client.HTTPConnection]:
    """One request/response; returns the connection to use next (a new one if the server
    said it closes). Stale-connection errors propagate only on a reused connection."""
    try:
        conn.request("POST", spec.path, raw, headers)
        answer = conn.getresponse()
        data = answer.read()
    except _STALE:
        if reused:
            raise
        raise OSError("connection failed on a fresh connection") from None
    if answer.will_close:
        conn.close()
        conn = _connect(spec)
    return answer.status, data, conn


def run_load(spec: LoadSpec) -> LoadResult:
    """Run one measurement in this process (called in the worker process)."""
    signer = SlackSender.__new__(SlackSender)  # only its `sign` is used, with our secret
    signer.signing_secret = spec.secret
    counter = itertools.count()
    lock = threading.Lock()
    result = LoadResult()
    start = time.perf_counter()
    result.started_at = time.time()
    values = spec.values

    def value_for(i: int) -> str | None:
        if spec.token is None:
            return None
        if values is None:
            return str(spec.first + i)
        if spec.cycle:
            return values[i % len(values)]
        return values[i] if i < len(values) else None

    def client() -> None:
        conn = _connect(spec)
        reused = False
        local: list[tuple[float, int, bool, str | None, float, str]] = []
        while True:
            i = next(counter)
            if spec.count is not None and i >= spec.count:
                break
            if spec.rate is not None:
                due = start + i / spec.rate
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
            if spec.duration is not None and time.perf_counter() - start >= spec.duration:
                break
            value = value_for(i)
            if spec.token is not None and value is None:
                break
            body = spec.template if value is None else spec.template.replace(spec.token, value)
            raw = body.encode("utf-8")
            ts = str(int(time.time()))
            headers = {
                "Content-Type": spec.content_type,
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": signer.sign(raw, ts),
                "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
                "Accept": "application/json,*/*",
            }
            sent_wall = time.time()
            t0 = time.perf_counter()
            try:
                try:
                    status, data, conn = _exchange(conn, spec, raw, headers, reused)
                except _STALE:
                    # the server closed an idle keep-alive connection (gunicorn: after 2 s)
                    # before reading the request: send it again on a new connection
                    conn.close()
                    conn = _connect(spec)
                    status, data, conn = _exchange(conn, spec, raw, headers, False)
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = _connect(spec)
                reused = False
                local.append((time.perf_counter() - t0, 0, False, value, sent_wall, repr(exc)))
                continue
            reused = True
            elapsed = time.perf_counter() - t0
            text = data.decode("utf-8", "replace")
            bad = status == 200 and any(marker in text for marker in spec.bad_markers)
            local.append((elapsed, status, bad, value, sent_wall, text[:200]))
        conn.close()
        with lock:
            for elapsed, status, bad, value, sent_wall, text in local:
                result.sent += 1
                result.statuses[status] = result.statuses.get(status, 0) + 1
                result.send_times.append(sent_wall)
                if value is not None:
                    result.value_times[value] = sent_wall
                if status:
                    result.all_latencies.append(elapsed)
                if status == 200 and not bad:
                    result.ok += 1
                    result.latencies.append(elapsed)
                    if value is not None:
                        result.sent_values.append(value)
                else:
                    result.bad_bodies += int(bad)
                    same = sum(1 for x in result.samples if x.startswith(f"{status}: "))
                    if same < 2:
                        result.samples.append(f"{status}: {text}")

    threads = [threading.Thread(target=client, daemon=True) for _ in range(spec.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - start
    return result


class LoadGenerator:
    """One spawned worker process that runs measurements one after another."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pool = context.Pool(1)

    def run(self, spec: LoadSpec) -> LoadResult:
        return self._pool.apply(run_load, (spec,))

    def close(self) -> None:
        self._pool.close()
        self._pool.join()

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._pool.terminate()
        self._pool.join()
