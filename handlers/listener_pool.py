"""Bolt's listener threads, with the request woken by its ack instead of polling for it.

With `process_before_response=False` (ack first, work after) Bolt hands each listener to its
`listener_executor` and then looks at `ack.response` every 10 ms until the listener has
acked. Every answer therefore reaches Slack up to 10 ms after the listener gave it, and each
request holds a server thread that much longer: with gunicorn's 16 threads that alone caps a
server at ~1,600 requests a second, whatever the listeners cost.

Here the request thread waits inside `submit` on an event that the listener's `ack()` sets
(or the listener ending, when it fails or returns without acking), so Bolt finds the response
already there and never sleeps. The listener still runs on a pool thread and may go on
working after its ack, as before. The wait is Bolt's default ack timeout (3 s) for every
listener: none of the desk's sets its own `ack_timeout`.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from slack_bolt import Ack, BoltContext, BoltResponse

from chatops.db import lift_write_deadline, write_deadline

ACK_TIMEOUT = 3.0  # Bolt's own: after this the request is answered without the ack
# A request's ack waits for a free thread, and a listener keeps its thread for the work after
# its ack (a claim's transaction, a modal's Slack call). Under a burst that work queues on
# the database's write lock; with few threads (Bolt's default is 5, this was 32) every thread
# is soon busy with it and new clicks wait for one, past Slack's 3 s. The pool only starts a
# thread when none is idle, so this is a ceiling for bursts, not a cost at rest; above it
# acks wait again. PostgreSQL connections stay capped by the engine's pool (10 + 20).
LISTENER_THREADS = 256
# A listener that writes before its ack (a modal's submission) must have committed within
# this long of the request's arrival, or it answers "busy, nothing saved" (chatops.db
# `write_deadline`): Slack gives up at 3 s, and the way there and back takes some of that.
WRITE_BUDGET = 2.0
RECEIVED_AT = "chatops_received_at"  # context key: time.monotonic() when the request came in


class WakingAck(Ack):
    """Bolt's `ack()` that also says it has been called."""

    def __init__(self, deadline: float | None = None) -> None:
        super().__init__()
        self.called = threading.Event()
        self.deadline = deadline  # writes before the ack commit by then (time.monotonic())

    def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        try:
            return super().__call__(*args, **kwargs)
        finally:
            self.called.set()
            lift_write_deadline()  # answered: the work after the ack has no deadline

    def __deepcopy__(self, memo: dict[int, Any]) -> Ack:
        # Bolt deep-copies the request's context for a lazy listener; an Event cannot be
        # copied, and a lazy listener's ack answers nobody anyway.
        copied = Ack()
        copied.response = copy.deepcopy(self.response, memo)
        return copied


class ListenerPool(ThreadPoolExecutor):
    """The `listener_executor` of the desk's Bolt app; `middleware` must be installed with
    `app.middleware` so each request's ack is one this pool can wait on."""

    def __init__(self, max_workers: int, ack_timeout: float = ACK_TIMEOUT) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="listener")
        self.ack_timeout = ack_timeout
        self._pending = threading.local()  # the ack of the request this thread is serving

    def middleware(self, context: BoltContext, next: Callable[[], None]) -> None:
        """Give the request a WakingAck before Bolt runs its listener. (Bolt runs global
        middleware one after another, not nested around the listener: the pending ack is
        taken by the request's first `submit`, or replaced by this thread's next request.)"""
        received = context.get(RECEIVED_AT) or time.monotonic()
        ack = WakingAck(deadline=received + WRITE_BUDGET)
        context["ack"] = ack
        self._pending.ack = ack
        next()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        ack: WakingAck | None = getattr(self._pending, "ack", None)
        if ack is None:
            return super().submit(fn, *args, **kwargs)
        # Only the first submit of a request runs its ack function; anything after it
        # (Bolt's lazy listeners) must not wait.
        self._pending.ack = None
        future = super().submit(_before_the_answer, ack.deadline, fn, *args, **kwargs)
        future.add_done_callback(lambda _done: ack.called.set())
        ack.called.wait(self.ack_timeout)
        return future


def _before_the_answer(
    deadline: float | None, fn: Callable[..., Any], *args: Any, **kw: Any
) -> Any:
    """Run a listener with the write deadline of its request until it acks."""
    with write_deadline(deadline):
        return fn(*args, **kw)
