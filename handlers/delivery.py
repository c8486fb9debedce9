"""Delivering the outbox to Slack.

Rules: messages about one case go out in the order they were written; a row is sent only by
whoever holds its lease (a conditional UPDATE), so two deliverers never send the same row;
a 429 waits for Retry-After, other failures back off; after MAX_ATTEMPTS a row is parked and
logged, never silently dropped. Rendering happens at send time from the case as it is then,
so a card posted late already shows the current owner.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine, or_, update
from sqlmodel import Session, select

from chatops.cases.service import CARD, CARD_REFRESH, REQUESTER_NOTICE
from chatops.clock import Clock
from chatops.db import transaction
from chatops.directory import channel_for
from chatops.policy import SupportRules
from handlers import blocks
from models import Case, Organisation, OutboxMessage, Person

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=60)


def _lane(row: OutboxMessage) -> tuple[int, str] | None:
    """Messages in one lane go out in order: a case's card then its refreshes; a case's
    notices to the requester (the first one opens the DM thread the others reply in)."""
    if row.case_id is None:
        return None
    return (row.case_id, "card" if row.kind in (CARD, CARD_REFRESH) else "requester")


class PermanentFailure(Exception):
    """Slack refused in a way a retry will not fix (e.g. channel_not_found)."""


class OutboxDelivery:
    """Sends pending outbox rows; safe to run in several threads and processes at once."""

    def __init__(self, engine: Engine, client: WebClient, rules: SupportRules, clock: Clock):
        self.engine = engine
        self.client = client
        self.rules = rules
        self.clock = clock
        self.owner = f"deliver-{uuid.uuid4().hex[:12]}"

    def deliver_pending(self, case_id: int | None = None, limit: int = 200) -> int:
        """Send what is due (for one case, or all); return how many rows were sent.

        Passes repeat while they make progress, so a row written by a concurrent request
        while this one was sending (e.g. a claim during the card post) goes out now rather
        than at the worker's next sweep.
        """
        total = 0
        for _ in range(20):
            sent = self._one_pass(case_id, limit)
            total += sent
            if sent == 0:
                break
        return total

    def _one_pass(self, case_id: int | None, limit: int) -> int:
        now = self.clock.now()
        with Session(self.engine) as session:
            query = select(OutboxMessage).where(OutboxMessage.status == "pending")
            if case_id is not None:
                query = query.where(OutboxMessage.case_id == case_id)
            rows = session.exec(query.order_by(OutboxMessage.id).limit(limit)).all()  # type: ignore[arg-type]
            pending = [(row.id, _lane(row), row.next_attempt_at) for row in rows]
        sent = 0
        blocked: set[tuple[int, str]] = set()
        for row_id, lane, next_attempt_at in pending:
            if lane is not None and lane in blocked:
                continue
            if next_attempt_at > now or not self._lease(row_id, now):
                if lane is not None:
                    blocked.add(lane)  # keep this lane's messages in order
                continue
            if self._send(row_id):
                sent += 1
            elif lane is not None:
                blocked.add(lane)
        return sent

    def _lease(self, row_id: int | None, now: Any) -> bool:
        with transaction(self.engine) as session:
            result = session.exec(  # type: ignore[call-overload]
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == row_id,
                    OutboxMessage.status == "pending",
                    or_(
                        OutboxMessage.lease_until.is_(None),  # type: ignore[union-attr]
                        OutboxMessage.lease_until < now,  # type: ignore[operator]
                    ),
                )
                .values(lease_owner=self.owner, lease_until=now + LEASE)
            )
            return bool(result.rowcount == 1)

    def _send(self, row_id: int | None) -> bool:
        # Read what the message needs, then let go of the database before calling Slack.
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.get(OutboxMessage, row_id)
            assert row is not None
            try:
                ctx = self._context(session, row.case_id)
                triage = channel_for(session, "triage")
            except PermanentFailure as exc:
                ctx, triage, failure = None, None, exc
            else:
                failure = None
        if failure is not None or ctx is None:
            self._finish(row.id, "parked", str(failure))
            log.error("outbox %s parked: %s", row.key, failure)
            return False
        try:
            updates = self._post(row, ctx, triage)
        except SlackApiError as exc:
            return self._failed(row, exc)
        except PermanentFailure as exc:
            self._finish(row.id, "parked", str(exc))
            log.error("outbox %s parked: %s", row.key, exc)
            return False
        except OSError as exc:  # timeouts, refused connections
            return self._failed(row, exc)
        self._finish(row.id, "sent", None, case_updates=(row.case_id, updates))
        return True

    def _failed(self, row: OutboxMessage, exc: Exception) -> bool:
        now = self.clock.now()
        attempts = row.attempts + 1
        delay = timedelta(seconds=min(300, 2**attempts))
        error = str(exc)[:500]
        if isinstance(exc, SlackApiError):
            status = exc.response.status_code
            if status == 429:
                retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get(
                    "retry-after"
                )
                delay = timedelta(seconds=int(retry_after or 1))
            elif status < 500 and exc.response.get("error") not in ("ratelimited", None):
                # ok=false with a reason (channel_not_found, ...) does not heal by retrying
                self._finish(row.id, "parked", error)
                log.error("outbox %s parked: %s", row.key, error)
                return False
        status_after = "parked" if attempts >= MAX_ATTEMPTS else "pending"
        with transaction(self.engine) as session:
            session.exec(  # type: ignore[call-overload]
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id, OutboxMessage.lease_owner == self.owner)
                .values(
                    attempts=attempts,
                    status=status_after,
                    next_attempt_at=now + delay,
                    lease_owner=None,
                    lease_until=None,
                    last_error=error,
                )
            )
        if status_after == "parked":
            log.error("outbox %s parked after %d attempts: %s", row.key, attempts, error)
        else:
            log.warning("outbox %s attempt %d failed: %s", row.key, attempts, error)
        return False

    def _finish(
        self,
        row_id: int | None,
        status: str,
        error: str | None,
        case_updates: tuple[int | None, dict[str, Any]] | None = None,
    ) -> None:
        with transaction(self.engine) as session:
            session.exec(  # type: ignore[call-overload]
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id, OutboxMessage.lease_owner == self.owner)
                .values(
                    status=status,
                    sent_at=self.clock.now() if status == "sent" else None,
                    last_error=error,
                    lease_until=None,
                )
            )
            if case_updates and case_updates[0] is not None and case_updates[1]:
                session.exec(  # type: ignore[call-overload]
                    update(Case).where(Case.id == case_updates[0]).values(**case_updates[1])
                )

    # --- rendering ---------------------------------------------------------------------

    def _context(self, session: Session, case_id: int | None) -> blocks.CaseContext:
        case = session.get(Case, case_id)
        if case is None:
            raise PermanentFailure(f"case {case_id} does not exist")
        organisation = session.get(Organisation, case.organisation_id)
        requester = session.get(Person, case.requester_id)
        owner = session.get(Person, case.assignee_id) if case.assignee_id else None
        assert organisation is not None and requester is not None
        return blocks.CaseContext(case, organisation, requester, owner)

    def _post(
        self, row: OutboxMessage, ctx: blocks.CaseContext, triage: str | None
    ) -> dict[str, Any]:
        """Post one row; return the case columns to record (card ts, DM thread)."""
        now = self.clock.now()
        if row.kind == CARD:
            channel = triage
            if channel is None:
                raise PermanentFailure("no triage channel configured")
            response = self.client.chat_postMessage(
                channel=channel,
                text=blocks.case_card_text(ctx),
                blocks=blocks.case_card(ctx, self.rules, now),
                unfurl_links=False,
            )
            return {"card_channel": response["channel"], "card_ts": response["ts"]}
        if row.kind == CARD_REFRESH:
            if ctx.case.card_ts is None:
                return {}  # the card is not out; when it goes out it shows the current state
            self.client.chat_update(
                channel=ctx.case.card_channel,
                ts=ctx.case.card_ts,
                text=blocks.case_card_text(ctx),
                blocks=blocks.case_card(ctx, self.rules, now),
            )
            return {}
        if row.kind == REQUESTER_NOTICE:
            return self._notify_requester(ctx, row.payload, now)
        raise PermanentFailure(f"unknown outbox kind {row.kind!r}")

    def _notify_requester(
        self, ctx: blocks.CaseContext, payload: dict[str, Any], now: Any
    ) -> dict[str, Any]:
        channel = ctx.case.requester_channel
        if channel is None:
            opened = self.client.conversations_open(users=ctx.requester.slack_user_id)
            channel = opened["channel"]["id"]
        event = payload.get("event")
        if event == "opened":
            body = blocks.requester_opened(ctx, self.rules, now)
            text = f"Your case {ctx.case.number} is open."
        elif event == "claimed":
            body = blocks.requester_claimed(ctx)
            text = f"Your case {ctx.case.number} has an owner."
        else:
            raise PermanentFailure(f"unknown requester notice {event!r}")
        response = self.client.chat_postMessage(
            channel=channel,
            text=text,
            blocks=body,
            thread_ts=ctx.case.requester_thread_ts,
            unfurl_links=False,
        )
        updates: dict[str, Any] = {"requester_channel": channel}
        if ctx.case.requester_thread_ts is None:
            updates["requester_thread_ts"] = response["ts"]
        return updates
