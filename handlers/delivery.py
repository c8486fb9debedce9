"""Delivering the outbox to Slack.

Rules: messages in one lane (see notices.lane_of) go out in the order they were written; a
row is sent only by whoever holds its lease (a conditional UPDATE), so two deliverers never
send the same row; posts to one channel keep Slack's pace of about one a second across all
processes (a reserved slot per channel in the database); a 429 waits for Retry-After, other
failures back off; after MAX_ATTEMPTS a row is parked and logged, never silently dropped.
Messages are rendered at send time from the current state, so a card posted late already
shows the current owner.

The one window for a duplicate: a process that dies after Slack accepted a post and before
it recorded that. Its lease expires (CHATOPS_DELIVERY_LEASE_SECONDS, wall clock) and the row
is sent again. The window is the time between Slack's answer and one small UPDATE.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine, func, or_, select, update
from sqlmodel import Session

from chatops import metrics
from chatops.clock import Clock
from chatops.db import insert_if_absent, transaction
from chatops.policy import SupportRules
from chatops.verification import CODE_NOTICE
from handlers.notices import Outgoing, PermanentFailure, lane_of, prepare
from models import Case, ChannelPace, OutboxMessage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8


class OutboxDelivery:
    """Sends pending outbox rows; safe to run in several threads and processes at once."""

    def __init__(
        self,
        engine: Engine,
        client: WebClient,
        rules: SupportRules,
        clock: Clock,
        channel_pace: float = 1.0,
        lease_seconds: float = 60.0,
    ):
        self.engine = engine
        self.client = client
        self.rules = rules
        self.clock = clock
        self.channel_pace = timedelta(seconds=channel_pace)
        self.lease = timedelta(seconds=lease_seconds)
        self.owner = f"deliver-{uuid.uuid4().hex[:12]}"

    def deliver_pending(
        self, case_id: int | None = None, limit: int = 200, as_of: datetime | None = None
    ) -> int:
        """Send what is due (for one case, or all); return how many rows were sent.

        Passes repeat while they make progress, so a row written by a concurrent request
        while this one was sending (e.g. a claim during the card post) goes out now rather
        than at the worker's next sweep. `as_of` delivers what is due at that instant
        (`chatops tick --at`), instead of the desk clock's now.
        """
        total = 0
        for _ in range(20):
            sent = self._one_pass(case_id, limit, as_of)
            total += sent
            if sent == 0:
                break
        return total

    def _one_pass(self, case_id: int | None, limit: int, as_of: datetime | None) -> int:
        now = max(as_of, self.clock.now()) if as_of else self.clock.now()
        with Session(self.engine) as session:
            query = select(OutboxMessage).where(OutboxMessage.status == "pending")
            if case_id is not None:
                query = query.where(OutboxMessage.case_id == case_id)
            rows = session.scalars(query.order_by(OutboxMessage.id).limit(limit)).all()  # type: ignore[arg-type]
            pending = [(row.id, lane_of(row), row.next_attempt_at) for row in rows]
        sent = 0
        blocked: set[tuple[int, str]] = set()
        for row_id, lane, next_attempt_at in pending:
            if lane is not None and lane in blocked:
                continue
            if next_attempt_at > now or not self._lease(row_id):
                if lane is not None:
                    blocked.add(lane)  # keep this lane's messages in order
                continue
            if self._send(row_id):
                sent += 1
            elif lane is not None:
                blocked.add(lane)
        return sent

    def _lease(self, row_id: int | None) -> bool:
        # Leases are real time (not the desk clock, which `tick --at` may set in the past):
        # a process holding one is alive for LEASE of wall-clock time whatever it simulates.
        now = datetime.now(UTC)
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
                .values(lease_owner=self.owner, lease_until=now + self.lease)
            )
            return bool(result.rowcount == 1)

    def _send(self, row_id: int | None) -> bool:
        # Read what the message needs, then let go of the database before calling Slack.
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.get(OutboxMessage, row_id)
            assert row is not None
            try:
                outgoing: Outgoing | PermanentFailure = prepare(
                    session, row, self.rules, self.clock.now()
                )
            except PermanentFailure as exc:
                outgoing = exc
        if isinstance(outgoing, PermanentFailure):
            return self._park(row, str(outgoing))
        try:
            updates = self._post(outgoing)
        except SlackApiError as exc:
            return self._failed(row, exc)
        except PermanentFailure as exc:
            return self._park(row, str(exc))
        except OSError as exc:  # timeouts, refused connections
            return self._failed(row, exc)
        if not self._finish(row.id, "sent", None, case_updates=(row.case_id, updates)):
            log.warning("outbox %s: lease lost while sending (sent by this process)", row.key)
        metrics.DELIVERIES.labels("sent").inc()
        return True

    def _post(self, out: Outgoing) -> dict[str, Any]:
        """Make the Slack call; return the case columns to record (card ts, DM thread)."""
        if out.skip:
            return {}
        channel = out.channel
        if channel is None:
            if out.user is None:
                raise PermanentFailure("a message with neither channel nor user")
            channel = self.client.conversations_open(users=out.user)["channel"]["id"]
        if out.update_ts is not None:
            self.client.chat_update(
                channel=channel, ts=out.update_ts, text=out.text, blocks=out.blocks
            )
            return {}
        self._wait_for_slot(channel)
        response = self.client.chat_postMessage(
            channel=channel,
            text=out.text,
            blocks=out.blocks,
            thread_ts=out.thread_ts,
            unfurl_links=False,
        )
        if out.record == "card":
            return {"card_channel": response["channel"], "card_ts": response["ts"]}
        if out.record == "requester_thread":
            return {"requester_channel": response["channel"], "requester_thread_ts": response["ts"]}
        return {}

    def _wait_for_slot(self, channel: str) -> None:
        """Reserve the channel's next posting slot (wall-clock time: Slack's limit is real
        time whatever the desk's clock says) and wait for it."""
        if self.channel_pace <= timedelta(0):
            return
        with transaction(self.engine) as session:
            wall = datetime.now(UTC)
            insert_if_absent(
                session, ChannelPace, {"channel_id": channel, "next_slot": wall}, ["channel_id"]
            )
            row = session.exec(  # type: ignore[call-overload]
                select(ChannelPace).where(ChannelPace.channel_id == channel).with_for_update()
            ).scalar_one()
            slot = max(row.next_slot, wall)
            row.next_slot = slot + self.channel_pace
        delay = (slot - datetime.now(UTC)).total_seconds()
        if delay > 0:
            time.sleep(delay)

    def _park(self, row: OutboxMessage, reason: str, attempts: int | None = None) -> bool:
        self._finish(row.id, "parked", reason[:500], attempts=attempts)
        metrics.DELIVERIES.labels("parked").inc()
        log.error("outbox %s parked: %s", row.key, reason)
        return False

    def _failed(self, row: OutboxMessage, exc: Exception) -> bool:
        now = self.clock.now()
        attempts = row.attempts + 1
        delay = timedelta(seconds=min(300, 2**attempts))
        error = " ".join(str(exc).split())[:500]
        if isinstance(exc, SlackApiError):
            error = f"HTTP {exc.response.status_code} {exc.response.get('error')}: {error}"[:500]
            status = exc.response.status_code
            if status == 429:
                headers = exc.response.headers or {}
                retry_after = headers.get("Retry-After") or headers.get("retry-after")
                delay = timedelta(seconds=int(retry_after or 1))
            elif status < 500 and exc.response.get("error") not in ("ratelimited", None):
                # ok=false with a reason (channel_not_found, ...) does not heal by retrying
                return self._park(row, error, attempts=attempts)
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
        metrics.DELIVERIES.labels(status_after if status_after == "parked" else "failed").inc()
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
        attempts: int | None = None,
    ) -> bool:
        """Record the outcome; False if this process no longer held the lease."""
        values: dict[str, Any] = {
            "status": status,
            "sent_at": self.clock.now() if status == "sent" else None,
            "last_error": error,
            "lease_until": None,
        }
        if attempts is not None:
            values["attempts"] = attempts
        with transaction(self.engine) as session:
            result = session.exec(  # type: ignore[call-overload]
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id, OutboxMessage.lease_owner == self.owner)
                .values(**values)
            )
            finished = session.get(OutboxMessage, row_id)
            if (
                finished is not None
                and finished.kind == CODE_NOTICE
                and (finished.payload or {}).get("code")
            ):
                # a one-time code lives in the outbox only until its DM is done
                session.exec(  # type: ignore[call-overload]
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row_id)
                    .values(payload={**finished.payload, "code": None})
                )
            if case_updates and case_updates[0] is not None and case_updates[1]:
                session.exec(  # type: ignore[call-overload]
                    update(Case).where(Case.id == case_updates[0]).values(**case_updates[1])
                )
            return bool(result.rowcount == 1)


def outbox_status(engine: Engine, now: datetime) -> dict[str, Any]:
    """Counts by status, the oldest pending message's age, and the parked messages."""
    with Session(engine) as session:
        counts = dict(
            session.exec(  # type: ignore[call-overload]
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            ).all()
        )
        oldest = session.exec(  # type: ignore[call-overload]
            select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == "pending")
        ).scalar()
        parked = session.scalars(
            select(OutboxMessage).where(OutboxMessage.status == "parked").order_by(OutboxMessage.id)  # type: ignore[arg-type]
        ).all()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return {
        "counts": counts,
        "oldest_pending_age": (now - oldest) if oldest else None,
        "parked": [(p.key, p.kind, p.attempts, p.last_error) for p in parked],
    }
