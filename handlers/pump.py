"""After-ack delivery, off the listener threads.

A listener that changed a case asks for its notifications to go out now rather than at the
worker's next pass. Sending them in the listener's own thread would hold one of Bolt's
listener threads for as long as Slack takes to answer (and, on SQLite, queue it behind other
writers), and the next request's ack waits for a free listener thread. So listeners only
hand the case to this pump, and a few pump threads per process deliver: the ack path never
waits for Slack.

Requests for the same case coalesce: a case asked for again while it is being delivered is
delivered once more afterwards (a notice written meanwhile goes out now), and a case asked
for twice while waiting is delivered once. Nothing depends on the pump for correctness: the
outbox rows are already committed, the worker delivers whatever the pump has not (after a
crash, a full queue or a failure), and leases keep pump and worker from sending a row twice.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger(__name__)

# Above this many cases waiting, further requests are dropped: the worker's next delivery
# pass (every second) sends them, and the queue cannot grow without bound in a storm.
MAX_WAITING = 10_000
ALL_CASES = -1  # a request for every pending row (notices not tied to one case)


class Deliverer(Protocol):
    def deliver_pending(self, case_id: int | None = None) -> int: ...


class DeliveryPump:
    """A few daemon threads delivering, case by case, what listeners asked for."""

    def __init__(self, delivery: Deliverer, threads: int = 4) -> None:
        self.delivery = delivery
        self._waiting: dict[int, None] = {}  # insertion-ordered set of case ids
        self._busy: set[int] = set()
        self._condition = threading.Condition()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._run, name=f"delivery-pump-{n}", daemon=True)
            for n in range(max(1, threads))
        ]
        for thread in self._threads:
            thread.start()

    def request(self, case_id: int | None) -> None:
        """Deliver this case's pending notices soon (None: every pending notice)."""
        key = ALL_CASES if case_id is None else case_id
        with self._condition:
            if self._stopping or key in self._waiting:
                return
            if len(self._waiting) >= MAX_WAITING:
                log.warning("delivery pump full; case %s left to the worker", case_id)
                return
            self._waiting[key] = None
            self._condition.notify()

    def idle(self) -> bool:
        """Nothing waiting and nothing being delivered (tests, the demo)."""
        with self._condition:
            return not self._waiting and not self._busy

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking requests; let the threads finish the case in hand, up to `timeout`."""
        with self._condition:
            self._stopping = True
            self._waiting.clear()
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout / len(self._threads))

    def _next(self) -> int | None:
        """The oldest waiting case nobody is delivering, or None once stopping."""
        with self._condition:
            while True:
                if self._stopping:
                    return None
                for key in self._waiting:
                    if key not in self._busy:
                        del self._waiting[key]
                        self._busy.add(key)
                        return key
                self._condition.wait()

    def _run(self) -> None:
        while (key := self._next()) is not None:
            try:
                self.delivery.deliver_pending(case_id=None if key == ALL_CASES else key)
            except Exception:  # the worker retries; the user's action already succeeded
                log.exception("delivery failed for case %s; the worker will retry", key)
            finally:
                with self._condition:
                    self._busy.discard(key)
                    self._condition.notify_all()
