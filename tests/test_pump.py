"""The delivery pump: listeners hand cases over, a few threads deliver them."""

from __future__ import annotations

import threading
import time

from handlers.pump import DeliveryPump


class RecordingDelivery:
    """Records calls; the first call for case 1 blocks until released."""

    def __init__(self) -> None:
        self.calls: list[int | None] = []
        self.release = threading.Event()
        self.entered = threading.Event()
        self.lock = threading.Lock()

    def deliver_pending(self, case_id: int | None = None) -> int:
        with self.lock:
            self.calls.append(case_id)
            first = self.calls.count(1) == 1 and case_id == 1
        if first:
            self.entered.set()
            self.release.wait(5)
        if case_id == 13:
            raise RuntimeError("Slack is down")
        return 1


def wait_idle(pump: DeliveryPump) -> None:
    deadline = time.monotonic() + 5
    while not pump.idle():
        assert time.monotonic() < deadline, "pump never went idle"
        time.sleep(0.01)


def test_a_case_asked_for_while_in_hand_is_delivered_once_more_after() -> None:
    delivery = RecordingDelivery()
    pump = DeliveryPump(delivery, threads=3)
    try:
        pump.request(1)
        assert delivery.entered.wait(5)
        for _ in range(5):  # three listeners wrote more for case 1 meanwhile
            pump.request(1)
        pump.request(2)
        time.sleep(0.1)
        assert delivery.calls.count(1) == 1  # never two threads on one case at once
        assert 2 in delivery.calls  # other cases are not held up behind it
        delivery.release.set()
        wait_idle(pump)
        assert delivery.calls.count(1) == 2  # the five requests coalesced into one more pass
    finally:
        delivery.release.set()
        pump.stop()


def test_a_failure_is_logged_and_the_pump_goes_on(caplog) -> None:  # type: ignore[no-untyped-def]
    delivery = RecordingDelivery()
    delivery.release.set()
    pump = DeliveryPump(delivery, threads=1)
    try:
        pump.request(13)
        pump.request(None)
        wait_idle(pump)
        assert delivery.calls == [13, None]
        assert "the worker will retry" in caplog.text
    finally:
        pump.stop()


def test_after_stop_requests_are_left_to_the_worker() -> None:
    delivery = RecordingDelivery()
    delivery.release.set()
    pump = DeliveryPump(delivery, threads=2)
    pump.stop()
    pump.request(5)
    time.sleep(0.05)
    assert delivery.calls == [] and pump.idle()
