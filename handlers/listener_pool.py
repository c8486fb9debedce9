"""Bolt's listener threads, with the request woken by its ack instead of polling for it.

With `process_before_response=False` (ack first, work after) Bolt hands each listener to its
`listener_executor` and then looks at `ack.response` every 10 ms until the listener has
acked. Every answer therefore reaches Slack up to 10 ms after the listener gave it, and each
request holds a server thread that much longer: with gunicorn's 16 threads that alone caps a
server at ~1,600 requests a second, whatever the listeners cost.

Here the request thread waits inside `submit` on an event that the listener's `ack()` sets
(or the listener ending, when it fails or returns without acking), so Bolt finds the response
already there and never sleeps. The listener still runs on a pool thread and may go on
working after its ack, as before.

Every request is answered within `ANSWER_BUDGET` of its arrival. A listener that has not
acked by then (a read held up by a lock or an exhausted connection pool, a wait for a free
thread in a burst) is answered for by the pool with the desk's "busy, nothing was saved"
answer, and its own later `ack()` raises `DeskBusy` so that it stops there: nothing it would
have done after its ack (a claim, a modal) happens, and a write it tries is refused (its
`WRITE_BUDGET` has passed, and a commit and the busy answer exclude each other under the
ack's lock: a listener that has stored something gets its own answer, however late).
Without this Bolt waits 3 s, then hands the request to the next listener that matches it,
here a catch-all whose answer ("this form is not one I know") would come after Slack had
given up, while the slow listener went on.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context
from typing import Any

from slack_bolt import Ack, BoltContext, BoltResponse

from chatops.db import DeskBusy, lift_write_deadline, write_deadline

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
# By this long after its arrival every request has its answer: its listener's, or the pool's
# busy answer. Slack gives up at 3 s; the answer still has to travel back.
ANSWER_BUDGET = 2.5
RECEIVED_AT = "chatops_received_at"  # context key: time.monotonic() when the request came in


LateAnswer = Callable[[dict[str, Any], BoltContext], BoltResponse]


class WakingAck(Ack):
    """Bolt's `ack()` that also says it has been called, and refuses to answer once the
    pool has answered for it."""

    def __init__(self, deadline: float | None = None) -> None:
        self._lock = threading.RLock()  # Bolt's Ack sets `response` from inside __call__
        self._response: BoltResponse | None = None
        self.expired = False  # the pool answered busy; the listener's own answer is too late
        super().__init__()
        self.called = threading.Event()
        self.deadline = deadline  # writes before the ack commit by then (time.monotonic())
        self.wrote = False  # a write before the ack went to commit: its answer is the one

    @property  # type: ignore[override]
    def response(self) -> BoltResponse | None:
        return self._response

    @response.setter
    def response(self, value: BoltResponse | None) -> None:
        with self._lock:
            # Bolt clears the response when a listener fails after its ack, and sets its own
            # 500 when one fails before it; the answer already given (or about to be sent),
            # and the pool's busy answer, stand.
            if self.expired or (value is None and self._response is not None):
                return
            self._response = value

    def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        try:
            with self._lock:
                if self.expired:
                    raise DeskBusy("the request was answered busy before the listener acked")
                return super().__call__(*args, **kwargs)
        finally:
            self.called.set()
            lift_write_deadline()  # answered: the work after the ack has no deadline

    def may_commit(self) -> bool:
        """Asked just before a write of the listener's commits (`write_deadline`): either
        the write or the pool's "nothing was saved" answer, never both."""
        with self._lock:
            if self.expired:
                return False
            self.wrote = True
            return True

    def expire(self, answer: Callable[[], BoltResponse]) -> bool:
        """Answer with `answer()` unless the listener has answered or stored something;
        True if it was used."""
        with self._lock:
            if self._response is not None or self.wrote:
                return False
            response = answer()  # first: if it fails, the listener's own answer still counts
            self._response = response
            self.expired = True
            return True

    def answer_anyway(self) -> None:
        """An empty answer if there is none yet, so that Bolt does not pass the request on
        to the next listener that matches (a catch-all would answer something untrue)."""
        with self._lock:
            if self._response is None:
                self._response = BoltResponse(status=200, body="")

    def __deepcopy__(self, memo: dict[int, Any]) -> Ack:
        # Bolt deep-copies the request's context for a lazy listener; an Event cannot be
        # copied, and a lazy listener's ack answers nobody anyway.
        copied = Ack()
        copied.response = copy.deepcopy(self.response, memo)
        return copied


class ListenerPool(ThreadPoolExecutor):
    """The `listener_executor` of the desk's Bolt app; `middleware` must be installed with
    `app.middleware` so each request's ack is one this pool can wait on."""

    def __init__(
        self,
        max_workers: int,
        ack_timeout: float = ACK_TIMEOUT,
        late_answer: LateAnswer | None = None,
        answer_budget: float = ANSWER_BUDGET,
        write_budget: float = WRITE_BUDGET,
    ) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="listener")
        self.ack_timeout = ack_timeout
        self.late_answer = late_answer  # None: wait `ack_timeout` as Bolt does
        self.answer_budget = answer_budget
        self.write_budget = write_budget
        self._pending = threading.local()  # the request this thread is serving

    def middleware(
        self, context: BoltContext, body: dict[str, Any], next: Callable[[], None]
    ) -> None:
        """Give the request a WakingAck before Bolt runs its listener. (Bolt runs global
        middleware one after another, not nested around the listener: the pending ack is
        taken by the request's first `submit`, or replaced by this thread's next request.)"""
        received = context.get(RECEIVED_AT) or time.monotonic()
        ack = WakingAck(deadline=received + self.write_budget)
        context["ack"] = ack
        self._pending.ack = ack
        self._pending.request = (received, body, context)
        next()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        # The request's log context (its Slack request id) goes with the listener.
        run = copy_context().run
        ack: WakingAck | None = getattr(self._pending, "ack", None)
        if ack is None:
            return super().submit(run, fn, *args, **kwargs)
        # Only the first submit of a request runs its ack function; anything after it
        # (Bolt's lazy listeners) must not wait.
        self._pending.ack = None
        received, body, context = self._pending.request
        future = super().submit(run, _before_the_answer, ack, fn, *args, **kwargs)
        future.add_done_callback(lambda _done: ack.called.set())
        if self.late_answer is None:
            ack.called.wait(self.ack_timeout)
            return future
        started = time.monotonic()
        wait = min(self.ack_timeout, received + self.answer_budget - started)
        if ack.called.wait(max(0.0, wait)):
            return future
        late_answer = self.late_answer
        if ack.expire(lambda: late_answer(body, context)):
            return future
        # It has stored something, so "nothing was saved" would be untrue: its own answer is
        # the only right one, however late (its writes beat `write_budget`, half a second
        # before this, so it is near). Past Bolt's own wait, an empty one.
        if not ack.called.wait(max(0.0, started + self.ack_timeout - time.monotonic())):
            ack.answer_anyway()
        return future

    def run_later(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run `fn` on a pool thread without waiting for anything (a late answer's
        follow-up message)."""
        return super().submit(copy_context().run, fn, *args, **kwargs)


def _before_the_answer(ack: WakingAck, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """Run a listener with the write deadline of its request until it acks; not at all when
    its request was answered busy while it waited for a thread."""
    if ack.expired:
        return None
    if ack.response is not None:  # acked before it ran (Bolt acks events itself): no deadline
        return fn(*args, **kw)
    with write_deadline(ack.deadline, may_commit=ack.may_commit):
        return fn(*args, **kw)
