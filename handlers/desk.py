"""What every listener needs: the database, the policy, the clock and the outbox sender."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from chatops.clock import Clock
from chatops.policy import SupportRules
from handlers.delivery import OutboxDelivery

log = logging.getLogger(__name__)


@dataclass
class Desk:
    engine: Engine
    rules: SupportRules
    clock: Clock
    delivery: OutboxDelivery

    def deliver(self, case_id: int | None) -> None:
        """Send a case's notifications now (after the ack); the worker retries leftovers."""
        try:
            self.delivery.deliver_pending(case_id=case_id)
        except Exception:  # the worker picks it up; the user's action already succeeded
            log.exception("immediate delivery failed for case %s", case_id)
