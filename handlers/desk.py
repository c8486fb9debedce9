"""What every listener needs: the database, the policy, the clock and the outbox sender."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from chatops.clock import Clock
from chatops.policy import SupportRules
from handlers.delivery import OutboxDelivery
from handlers.pump import DeliveryPump

log = logging.getLogger(__name__)


@dataclass
class Desk:
    engine: Engine
    rules: SupportRules
    clock: Clock
    delivery: OutboxDelivery
    pump: DeliveryPump | None = None  # None: deliver in the caller's thread (worker, tools)

    def deliver(self, case_id: int | None) -> None:
        """Send a case's notifications now (after the ack); the worker retries leftovers.

        With a pump (the serving processes) this only hands the case over, so the listener
        thread is free for the next request's ack at once.
        """
        if self.pump is not None:
            self.pump.request(case_id)
            return
        try:
            self.delivery.deliver_pending(case_id=case_id)
        except Exception:  # the worker picks it up; the user's action already succeeded
            log.exception("immediate delivery failed for case %s", case_id)
