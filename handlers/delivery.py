"""Delivering the outbox to Slack.

Rules: messages in one lane (see notices.lane_of) go out in the order they were written; a
row is sent only by whoever holds its lease (a conditional UPDATE), so two deliverers never
send the same row; posts to one channel keep Slack's pace of about one a second across all
processes (a reserved slot per channel in the database); a 429 waits for Retry-After, other
failures back off; after MAX_ATTEMPTS a row is parked and logged, never silently dropped.
Messages are rendered at send time from the current state, so a card posted late already
shows the current owner.

Sev A page DMs to one person are grouped (an incident storm must not become hundreds of DMs
trickling out at the channel's pace): one deliverer at a time sends a person's pages, holding
a per-person lock (a ChannelPace row keyed `page-dm:<user>`, taken and released like a
lease). Holding it, the deliverer leases every page DM row to that person that is due (the
same conditional UPDATE as any lease, so two processes never take one row), posts ONE
message for them, and marks each row sent: the lead (oldest) row carries the list of pages
in its payload, the others name the lead in `coalesced_into`. A deliverer that finds the lock
taken lets go of its row: the holder looks for waiting rows after each message and once more
after letting go, so rows that queue while a page DM is on its way go out together in the
next one. One waiting row is sent exactly as a lone page always was.

The one window for a duplicate: a process that dies after Slack accepted a post and before
it recorded that. Its lease expires (CHATOPS_DELIVERY_LEASE_SECONDS, wall clock) and the row
is sent again. The window is the time between Slack's answer and one small UPDATE.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine, bindparam, func, or_, select, update
from sqlmodel import Session, col

from chatops import logs, metrics
from chatops.cases.notices import COALESCED_INTO, GROUP_PAGES, GROUP_ROWS, PAGE
from chatops.clock import Clock
from chatops.db import insert_if_absent, reading, transaction
from chatops.policy import SupportRules
from chatops.verification import CODE_NOTICE
from handlers.notices import (
    Outgoing,
    PermanentFailure,
    lane_of,
    page_dm_user,
    prepare,
    prepare_pages,
)
from models import Case, ChannelPace, OutboxMessage
from models.case import case_number

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# Slack's answers (ok=false) that say nothing about the message: the workspace refused the
# bot's token (rotated, revoked, the app reinstalled or its workspace access withdrawn), or
# Slack had a passing fault. An operator (or Slack) fixes them without touching the message,
# so it backs off and is tried again like a 5xx, up to MAX_ATTEMPTS; every other reason
# (channel_not_found, not_in_channel, invalid_blocks, msg_too_long, …) parks it at once.
TOKEN_REFUSED = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "team_access_not_granted",
        "org_login_required",
        "ekm_access_denied",
    }
)
SLACK_FAULTS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
PAGE_GROUP_MAX = 1000  # page DM rows one message takes; a larger backlog goes in the next one
_PAGE_SCAN = 5000  # pending page rows looked at to find one person's
_MAX_GROUPS_IN_A_ROW = 50  # messages one deliverer sends for a person before letting go


# Delivery's sessions hold no objects the UPDATEs could bring up to date: skip looking.
_NO_SYNC = {"synchronize_session": False}


def _locked_pace(session: Session, channel: str, first_slot: datetime) -> ChannelPace:
    """The channel's pacing row, locked for this transaction (made with `first_slot` as its
    next slot the first time the channel is posted to)."""
    insert_if_absent(
        session, ChannelPace, {"channel_id": channel, "next_slot": first_slot}, ["channel_id"]
    )
    return session.exec(  # type: ignore[no-any-return, call-overload]
        select(ChannelPace).where(ChannelPace.channel_id == channel).with_for_update()
    ).scalar_one()


def retry_after_of(exc: SlackApiError) -> timedelta | None:
    """How long Slack asks to wait after a 429 (its Retry-After, 1 s if it gives none or
    one that is not a number); None for any other answer."""
    if exc.response is None or exc.response.status_code != 429:
        return None
    headers = exc.response.headers or {}
    value = str(headers.get("Retry-After") or headers.get("retry-after") or "1")
    return timedelta(seconds=int(value) if value.isdigit() else 1)


def _lease_free(at: Any) -> Any:
    """Nobody holds the row's lease at `at` (never leased, or the lease ran out)."""
    return or_(col(OutboxMessage.lease_until).is_(None), col(OutboxMessage.lease_until) < at)


# A row taken for sending, returned as it is then (one statement: no read after the lease).
_LEASE_ROW = (
    update(OutboxMessage)
    .where(
        col(OutboxMessage.id) == bindparam("row_id"),
        col(OutboxMessage.status) == "pending",
        _lease_free(bindparam("now")),
    )
    .values(lease_owner=bindparam("owner"), lease_until=bindparam("until"))
    .returning(OutboxMessage)
    .execution_options(**_NO_SYNC)
)
# The same for several rows at once: a case's messages (its card and its requester's notice)
# taken in one write rather than one each.
_LEASE_ROWS = (
    update(OutboxMessage)
    .where(
        col(OutboxMessage.id).in_(bindparam("row_ids", expanding=True)),
        col(OutboxMessage.status) == "pending",
        _lease_free(bindparam("now")),
    )
    .values(lease_owner=bindparam("owner"), lease_until=bindparam("until"))
    .returning(OutboxMessage)
    .execution_options(**_NO_SYNC)
)
# A lease this thread holds, made longer (a row leased with others that waited behind
# slower sends), or let go of (rows not sent after all). The owner names the thread
# (`OutboxDelivery.owner`): a lease that ran out and was taken by anyone else since is not
# matched.
_HELD = (
    col(OutboxMessage.status) == "pending",
    col(OutboxMessage.lease_owner) == bindparam("owner"),
)
_RENEW_LEASE = (
    update(OutboxMessage)
    .where(col(OutboxMessage.id) == bindparam("row_id"), *_HELD)
    .values(lease_until=bindparam("until"))
    .returning(OutboxMessage)
    .execution_options(**_NO_SYNC)
)
_LET_GO = (
    update(OutboxMessage)
    .where(col(OutboxMessage.id).in_(bindparam("row_ids", expanding=True)), *_HELD)
    .values(lease_owner=None, lease_until=None)
    .execution_options(**_NO_SYNC)
)
# Rows one pass over a case leases together, at most. A row handed out for sending with less
# than (1 - `_FRESH_SHARE`) of its lease left (it waited behind slower sends) has its lease
# renewed first, so a send always starts with most of its lease ahead of it, as with a row
# leased on its own.
_LEASE_TOGETHER = 8
_FRESH_SHARE = 0.25

Lane = tuple[int, str]


@dataclass
class _LeasedTogether:
    """Rows one pass over a case leased in one statement, all until the same instant."""

    until: datetime
    rows: dict[int, OutboxMessage]  # leased, not yet handed out for sending
    missed: set[int]  # asked for and not got: sent meanwhile, or someone else holds it
    lanes: dict[int, Lane | None]


# The pending rows a pass looks at (of one case, or all after an id), oldest first.
_PENDING = (
    select(OutboxMessage)
    .where(col(OutboxMessage.status) == "pending", col(OutboxMessage.id) > bindparam("after"))
    .order_by(col(OutboxMessage.id))
    .limit(bindparam("limit"))
)
# Pending rows a worker's pass reads at most, a page of `limit` at a time, to find `limit`
# that are due: rows waiting out a back-off or a Retry-After (200 DMs Slack rate-limited)
# must not hide newer ones that are due behind them.
PASS_SCAN = 10_000
_PENDING_OF_CASE = (
    select(OutboxMessage)
    .where(
        col(OutboxMessage.status) == "pending", col(OutboxMessage.case_id) == bindparam("case_id")
    )
    .order_by(col(OutboxMessage.id))
    .limit(bindparam("limit"))
)

# A sent row's outcome and what the message leaves on its case (the card's ts, the DM
# thread), on the tables rather than the ORM entities: the SET clause is the parameters
# given, and each shape is compiled once (building the UPDATE per message cost more than
# running it).
_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
_RECORD_OUTCOME = _OUTBOX.update().where(
    _OUTBOX.c.id == bindparam("row_id"), _OUTBOX.c.lease_owner == bindparam("owner")
)
_CASES = Case.__table__  # type: ignore[attr-defined]
_RECORD_ON_CASE = _CASES.update().where(_CASES.c.id == bindparam("record_case_id"))


class ChannelBusy(Exception):
    """The channel's next posting slot is further away than a deliverer waits for."""


def _person_key(user: str) -> str:
    """The ChannelPace row that is the lock on sending `user`'s pages (no Slack channel id
    has this shape, so it never meets a real channel's pace)."""
    return f"page-dm:{user}"[:32]


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
        # A deliverer waits this long at most for a channel's slot; a message further back
        # in the channel's queue is let go and retried by a later pass. Sleeping longer
        # would hold its lease past expiry (a second deliverer would post it again) and
        # hold up messages to other channels (a page DM behind a storm of card posts).
        self.slot_wait = min(timedelta(seconds=2), self.lease / 4)
        self.owner_prefix = f"deliver-{uuid.uuid4().hex[:12]}"
        self._dm_channels: dict[str, str] = {}
        self._dm_lock = threading.Lock()
        self._pass = threading.local()  # this thread's pass: has a refused token been logged

    @property
    def owner(self) -> str:
        """Who holds the leases this thread takes: the deliverer and the thread. Each
        statement that records, lets go of or renews a lease matches its owner, and a thread
        whose own lease ran out must not match the lease another thread of the process has
        taken since (it would clear it while that thread sends, and a third could send the
        message again)."""
        return f"{self.owner_prefix}-{threading.get_ident()}"

    def deliver_pending(
        self, case_id: int | None = None, limit: int = 200, as_of: datetime | None = None
    ) -> int:
        """Send what is due (for one case, or all); return how many rows were sent.

        Passes repeat while they make progress, so a row written by a concurrent request
        while this one was sending (e.g. a claim during the card post) goes out now rather
        than at the worker's next sweep, and a row let go in an earlier pass (a page DM
        whose person another deliverer was sending to) is tried again. `as_of` delivers
        what is due at that instant (`chatops tick --at`), instead of the desk clock's now.
        """
        total = 0
        for _ in range(20):
            sent = self._one_pass(case_id, limit, as_of)
            total += sent
            if sent == 0:
                break
        return total

    def _pending(
        self, case_id: int | None, limit: int, now: datetime
    ) -> list[tuple[int | None, Lane | None, datetime, str | None]]:
        """The rows a pass goes through, oldest first: a case's first `limit` pending rows,
        or, over every case, pages of pending rows until `limit` of them are due (at most
        `PASS_SCAN` read). Rows not due stay in the list: they keep their lanes in order."""
        pending: list[tuple[int | None, Lane | None, datetime, str | None]] = []
        due, after = 0, 0
        while True:
            with reading(self.engine) as session:
                if case_id is None:
                    rows = session.scalars(_PENDING, {"limit": limit, "after": after}).all()
                else:
                    rows = session.scalars(
                        _PENDING_OF_CASE, {"limit": limit, "case_id": case_id}
                    ).all()
                page = [
                    (row.id, lane_of(row), row.next_attempt_at, page_dm_user(row)) for row in rows
                ]
            pending += page
            due += sum(1 for _id, _lane, at, _paged in page if at <= now)
            if case_id is not None or len(page) < limit or due >= limit:
                return pending
            if len(pending) >= PASS_SCAN:
                return pending
            after = page[-1][0] or after

    def _one_pass(self, case_id: int | None, limit: int, as_of: datetime | None) -> int:
        now = max(as_of, self.clock.now()) if as_of else self.clock.now()
        self._pass.token_refused_logged = False
        pending = self._pending(case_id, limit, now)
        # A pass over one case (a request's own delivery) leases its due messages together;
        # a pass over every case (the worker's, up to `limit` rows, paced by Slack's limits)
        # leases each row when its turn comes, so no lease is taken long before its send.
        together = self._lease_together(pending, now) if case_id is not None else None
        sent = 0
        blocked: set[Lane] = set()
        grouped: set[int] = set()  # rows this pass already sent inside a page group
        try:
            for row_id, lane, next_attempt_at, paged in pending:
                if row_id in grouped or (lane is not None and lane in blocked):
                    continue
                leased = self._take(row_id, next_attempt_at <= now, together)
                if leased is None:
                    if lane is not None:
                        self._block(lane, blocked, together)  # keep the lane in order
                    continue
                if paged is not None:
                    done = self._send_pages(row_id, paged, now)
                    grouped |= done
                    sent += len(done)
                    if row_id not in done and lane is not None:
                        self._block(lane, blocked, together)
                    continue
                if self._send(leased):
                    sent += 1
                elif lane is not None:
                    self._block(lane, blocked, together)
        finally:
            if together is not None:
                self._let_go(together, list(together.rows))
        return sent

    def _lease_together(
        self, pending: list[tuple[int | None, Lane | None, datetime, str | None]], now: datetime
    ) -> _LeasedTogether | None:
        """Lease a case's sendable rows in one statement: in each lane, the rows up to the
        first one that is not due or is a page DM (sent grouped, leased on its own)."""
        lanes: dict[int, Lane | None] = {}
        stopped: set[Lane | None] = set()
        for row_id, lane, next_attempt_at, paged in pending:
            if row_id is None or len(lanes) == _LEASE_TOGETHER:
                break
            if lane in stopped:
                continue
            if paged is not None or next_attempt_at > now:
                if lane is not None:
                    stopped.add(lane)
                continue
            lanes[row_id] = lane
        if len(lanes) < 2:
            return None  # one row: leased on its own when its turn comes, as ever
        wall = datetime.now(UTC)
        until = wall + self.lease
        with transaction(self.engine) as session:
            rows = session.scalars(
                _LEASE_ROWS,
                {"row_ids": list(lanes), "now": wall, "owner": self.owner, "until": until},
            ).all()
        got = {row.id: row for row in rows if row.id is not None}
        together = _LeasedTogether(until, got, set(lanes) - set(got), lanes)
        # A row behind one that was not got cannot go out this pass (its lane stops at the
        # missed one): let it go at once, not only when the pass reaches that lane, so that
        # whoever has the earlier row can send it next.
        first_missed: dict[Lane, int] = {}
        for row_id in sorted(together.missed):
            lane = lanes[row_id]
            if lane is not None:
                first_missed.setdefault(lane, row_id)
        behind = [
            row_id
            for row_id in got
            if (lane := lanes[row_id]) in first_missed and row_id > first_missed[lane]
        ]
        self._let_go(together, behind)
        return together

    def _take(
        self, row_id: int | None, due: bool, together: _LeasedTogether | None
    ) -> OutboxMessage | None:
        """The row, leased for sending now: from the rows leased together (its lease renewed
        if it has aged), else leased on its own. None when it is not due or is not ours."""
        if together is not None and row_id is not None:
            if row_id in together.missed:
                return None
            row = together.rows.pop(row_id, None)
            if row is not None:
                wall = datetime.now(UTC)
                if together.until - wall > self.lease * (1 - _FRESH_SHARE):
                    return row
                with transaction(self.engine) as session:
                    return session.scalars(  # type: ignore[no-any-return]
                        _RENEW_LEASE,
                        {"row_id": row_id, "owner": self.owner, "until": wall + self.lease},
                    ).first()
        return self._lease(row_id) if due else None

    def _block(self, lane: Lane, blocked: set[Lane], together: _LeasedTogether | None) -> None:
        """Stop sending `lane` this pass; let go at once of its rows leased together, so
        that another deliverer may send them as soon as the lane moves again."""
        blocked.add(lane)
        if together is not None:
            self._let_go(together, [i for i in together.rows if together.lanes.get(i) == lane])

    def _let_go(self, together: _LeasedTogether, row_ids: list[int]) -> None:
        """Give up rows leased together and not sent. A failure to is logged, not raised:
        the pass may be ending on a database error already, and the leases run out anyway."""
        for row_id in row_ids:
            together.rows.pop(row_id, None)
        if not row_ids:
            return
        try:
            self._release(*row_ids)
        except Exception:
            log.warning("could not let go of outbox rows %s; their leases run out", row_ids)

    def _lease(self, row_id: int | None) -> OutboxMessage | None:
        """Take the row if it is pending and nobody holds it; the row as leased, or None."""
        # Leases are real time (not the desk clock, which `tick --at` may set in the past):
        # a process holding one is alive for LEASE of wall-clock time whatever it simulates.
        now = datetime.now(UTC)
        with transaction(self.engine) as session:
            return session.scalars(  # type: ignore[no-any-return]
                _LEASE_ROW,
                {"row_id": row_id, "now": now, "owner": self.owner, "until": now + self.lease},
            ).first()

    def _send(self, row: OutboxMessage) -> bool:
        """Send one row leased here."""
        with logs.context(case=case_number(row.case_id) if row.case_id else None):
            return self._send_row(row)

    def _send_row(self, row: OutboxMessage) -> bool:
        # Read what the message needs, then let go of the database before calling Slack.
        with reading(self.engine, expire_on_commit=False) as session:
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
        except ChannelBusy:
            self._release(row.id)  # type: ignore[arg-type]
            return False
        except SlackApiError as exc:
            return self._failed(row, exc)
        except PermanentFailure as exc:
            return self._park(row, str(exc))
        except OSError as exc:  # timeouts, refused connections
            return self._failed(row, exc)
        if not self._finish(row, "sent", None, case_updates=(row.case_id, updates)):
            log.warning("outbox %s: lease lost while sending (sent by this process)", row.key)
        metrics.DELIVERIES.labels("sent").inc()
        return True

    # --- page DMs, grouped per person ----------------------------------------------------

    def _send_pages(self, lead_id: int, user: str, now: datetime) -> set[int]:
        """Send page DM `lead_id` (leased by the caller) together with every other page DM
        to `user` that is due at `now`; return the ids of the rows sent (none when another
        deliverer is sending this person's pages: it takes this row into its next message)."""
        keep: int | None = lead_id
        token = self._take_person(user)
        if token is None:
            self._release(lead_id)
            # taken again in case the holder let go meanwhile: it may have looked for waiting
            # rows while this one was still leased here
            token = self._take_person(user)
            if token is None:
                return set()
            keep = None  # let go of: leased again only if still free
        tried: set[int] = set()  # each row is attempted once per call, whatever Slack says
        try:
            return self._drain_pages(user, now, token, keep, tried)
        finally:
            if lead_id not in tried:
                self._release(lead_id)  # not reached (e.g. beyond the scan): due again at once

    def _drain_pages(
        self, user: str, now: datetime, token: datetime, keep: int | None, tried: set[int]
    ) -> set[int]:
        """Holding `user`'s lock: send what waits for them, group after group, then let go
        and look once more (see `_send_pages`)."""
        sent: set[int] = set()
        while True:
            try:
                for _ in range(_MAX_GROUPS_IN_A_ROW):
                    # due as of now, not as of this pass: pages written while the last
                    # message was on its way go in the next one
                    group = self._lease_group(user, self._later(now), keep, tried)
                    keep = None
                    if not group:
                        break
                    tried.update(row.id for row in group if row.id is not None)
                    if not self._send_group(group):
                        break
                    sent.update(row.id for row in group if row.id is not None)
                    token = self._renew_person(user, token)
            finally:
                self._release_person(user, token)
            # a deliverer that met the lock left its row for us; after letting go, look again
            if not self._pages_waiting(user, self._later(now), tried):
                return sent
            token = self._take_person(user)
            if token is None:
                return sent  # someone else holds it now and sends them

    def _later(self, now: datetime) -> datetime:
        """`now`, or the desk clock's now once it has moved past it. A deliverer that met
        this person's lock gave its row up to the holder; a row written after the holder's
        pass began is due by the clock, and the holder must see it too, or it waits for a
        worker pass that may be far behind (seen in `bench storm`: the last five pages)."""
        return max(now, self.clock.now())

    def _page_rows(self, user: str, now: datetime, tried: set[int]) -> list[OutboxMessage]:
        """Pending page DMs to `user` that are due, oldest first."""
        with reading(self.engine) as session:
            rows = session.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.status == "pending",
                    OutboxMessage.kind == PAGE,
                    OutboxMessage.next_attempt_at <= now,  # type: ignore[arg-type]
                )
                .order_by(OutboxMessage.id)  # type: ignore[arg-type]
                .limit(_PAGE_SCAN)
            ).all()
        return [r for r in rows if r.id not in tried and page_dm_user(r) == user]

    def _pages_waiting(self, user: str, now: datetime, tried: set[int]) -> bool:
        wall = datetime.now(UTC)
        return any(
            row.lease_until is None or row.lease_until < wall
            for row in self._page_rows(user, now, tried)
        )

    def _lease_group(
        self, user: str, now: datetime, keep: int | None, tried: set[int]
    ) -> list[OutboxMessage]:
        """Lease the page DMs to `user` that are due (`keep` is already leased here), each
        with `_lease`'s conditional UPDATE; record the group on its lead row."""
        candidates = [r.id for r in self._page_rows(user, now, tried)][:PAGE_GROUP_MAX]
        if not candidates:
            return []
        wall = datetime.now(UTC)
        free = _lease_free(wall)
        with transaction(self.engine) as session:
            taken = []
            for row_id in candidates:
                mine = (
                    or_(free, OutboxMessage.lease_owner == self.owner) if row_id == keep else free
                )
                result = session.exec(  # type: ignore[call-overload]
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row_id, OutboxMessage.status == "pending", mine)
                    .values(lease_owner=self.owner, lease_until=wall + self.lease)
                )
                if result.rowcount == 1:
                    taken.append(row_id)
            rows = [session.get(OutboxMessage, i, populate_existing=True) for i in taken]
            group = [row for row in rows if row is not None]
            if not group:
                return []
            lead = group[0]
            payload = {
                k: v for k, v in (lead.payload or {}).items() if k not in (GROUP_PAGES, GROUP_ROWS)
            }
            if len(group) > 1:
                steps: dict[int, int] = {}
                for row in group:  # one line per page: a later step replaces an earlier one
                    steps[int(row.payload["page_id"])] = int(row.payload.get("step", 0))
                payload[GROUP_PAGES] = [[page_id, step] for page_id, step in steps.items()]
                payload[GROUP_ROWS] = [row.id for row in group]
            if payload != lead.payload:
                lead.payload = payload  # written before the post: a click may come at once
            return group

    def _send_group(self, rows: list[OutboxMessage]) -> bool:
        """Post one message for `rows` (leased here) and mark every row sent."""
        with reading(self.engine, expire_on_commit=False) as session:
            try:
                outgoing: Outgoing | PermanentFailure = prepare_pages(
                    session, rows, self.rules, self.clock.now()
                )
            except PermanentFailure as exc:
                outgoing = exc
        if isinstance(outgoing, PermanentFailure):
            for row in rows:
                self._park(row, str(outgoing))
            return False
        try:
            self._post(outgoing)
        except ChannelBusy:
            for row in rows:
                self._release(row.id)  # type: ignore[arg-type]
            return False
        except (SlackApiError, OSError) as exc:
            return self._failed_rows(rows, exc)
        except PermanentFailure as exc:
            for row in rows:
                self._park(row, str(exc))
            return False
        lead = rows[0]
        sent_at = self.clock.now()
        done = {"status": "sent", "sent_at": sent_at, "last_error": None, "lease_until": None}
        with transaction(self.engine) as session:
            lost = 0
            for row in rows:
                values = dict(done)
                if row is not lead:
                    payload = {
                        k: v
                        for k, v in (row.payload or {}).items()
                        if k not in (GROUP_PAGES, GROUP_ROWS)  # led a group that failed once
                    }
                    values["payload"] = {**payload, COALESCED_INTO: lead.id}
                result = session.exec(  # type: ignore[call-overload]
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row.id, OutboxMessage.lease_owner == self.owner)
                    .values(**values)
                )
                lost += result.rowcount != 1
        if lost:
            log.warning("page group %s: %d lease(s) lost while sending", lead.key, lost)
        metrics.DELIVERIES.labels("sent").inc(len(rows))
        return True

    def _release(self, *row_ids: int) -> None:
        """Let go of rows this thread leased and did not send; any deliverer may take them."""
        with transaction(self.engine) as session:
            session.execute(_LET_GO, {"row_ids": list(row_ids), "owner": self.owner})

    def _take_person(self, user: str) -> datetime | None:
        """Take the lock on sending `user`'s pages (wall clock, like leases); its expiry is
        the token that lets go of it, or None when someone else holds it."""
        key = _person_key(user)
        wall = datetime.now(UTC)
        until = wall + self.lease
        with transaction(self.engine) as session:
            insert_if_absent(
                session, ChannelPace, {"channel_id": key, "next_slot": wall}, ["channel_id"]
            )
            result = session.exec(  # type: ignore[call-overload]
                update(ChannelPace)
                .where(ChannelPace.channel_id == key, ChannelPace.next_slot <= wall)  # type: ignore[arg-type]
                .values(next_slot=until)
            )
            return until if result.rowcount == 1 else None

    def _renew_person(self, user: str, token: datetime) -> datetime:
        until = datetime.now(UTC) + self.lease
        with transaction(self.engine) as session:
            result = session.exec(  # type: ignore[call-overload]
                update(ChannelPace)
                .where(ChannelPace.channel_id == _person_key(user), ChannelPace.next_slot == token)  # type: ignore[arg-type]
                .values(next_slot=until)
            )
            return until if result.rowcount == 1 else token

    def _release_person(self, user: str, token: datetime) -> None:
        with transaction(self.engine) as session:
            session.exec(  # type: ignore[call-overload]
                update(ChannelPace)
                .where(ChannelPace.channel_id == _person_key(user), ChannelPace.next_slot == token)  # type: ignore[arg-type]
                .values(next_slot=datetime.now(UTC))
            )

    def _post(self, out: Outgoing) -> dict[str, Any]:
        """Make the Slack call; return the case columns to record (card ts, DM thread)."""
        if out.skip:
            return {}
        channel = out.channel
        if channel is None:
            if out.user is None:
                raise PermanentFailure("a message with neither channel nor user")
            channel = self._dm_channel(out.user)
        if out.update_ts is not None:
            self.client.chat_update(
                channel=channel, ts=out.update_ts, text=out.text, blocks=out.blocks
            )
            return {}
        self._wait_for_slot(channel)
        try:
            response = self.client.chat_postMessage(
                channel=channel,
                text=out.text,
                blocks=out.blocks,
                thread_ts=out.thread_ts,
                unfurl_links=False,
            )
        except SlackApiError as exc:
            wait = retry_after_of(exc)
            if wait is not None:
                self._hold_channel(channel, wait)
            raise
        if out.record == "card":
            return {"card_channel": response["channel"], "card_ts": response["ts"]}
        if out.record == "requester_thread":
            return {"requester_channel": response["channel"], "requester_thread_ts": response["ts"]}
        return {}

    def _dm_channel(self, user: str) -> str:
        """The bot's DM channel with `user`. Slack gives the same id every time, so it is
        asked once per process rather than once per message."""
        with self._dm_lock:
            known = self._dm_channels.get(user)
        if known is not None:
            return known
        channel = str(self.client.conversations_open(users=user)["channel"]["id"])
        with self._dm_lock:
            if len(self._dm_channels) >= 50_000:  # bounded: a huge workspace over months
                self._dm_channels.clear()
            self._dm_channels[user] = channel
        return channel

    def _wait_for_slot(self, channel: str) -> None:
        """Reserve the channel's next posting slot (wall-clock time: Slack's limit is real
        time whatever the desk's clock says) and wait for it; raise ChannelBusy, reserving
        nothing, when that slot is more than `slot_wait` away."""
        if self.channel_pace <= timedelta(0):
            return
        with transaction(self.engine) as session:
            wall = datetime.now(UTC)
            row = _locked_pace(session, channel, wall)
            slot = max(row.next_slot, wall)
            if slot - wall > self.slot_wait:
                raise ChannelBusy(channel)  # rolls back: nothing reserved
            row.next_slot = slot + self.channel_pace
        delay = (slot - datetime.now(UTC)).total_seconds()
        if delay > 0:
            time.sleep(delay)

    def _hold_channel(self, channel: str, wait: timedelta) -> None:
        """Slack rate-limited a post to `channel`: no deliverer posts there again before its
        Retry-After (the channel's next slot is moved on), not only this message's retry.
        With no pace (`CHATOPS_CHANNEL_PACE_SECONDS=0`) the desk keeps no channel slots, and
        only the message waits."""
        if self.channel_pace <= timedelta(0):
            return
        with transaction(self.engine) as session:
            until = datetime.now(UTC) + wait
            row = _locked_pace(session, channel, until)
            row.next_slot = max(row.next_slot, until)

    def _park(self, row: OutboxMessage, reason: str, attempts: int | None = None) -> bool:
        self._finish(row, "parked", reason[:500], attempts=attempts)
        metrics.DELIVERIES.labels("parked").inc()
        log.error("outbox %s parked: %s", row.key, reason)
        return False

    def _failed(self, row: OutboxMessage, exc: Exception) -> bool:
        return self._failed_rows([row], exc)

    def _failed_rows(self, rows: list[OutboxMessage], exc: Exception) -> bool:
        """One failed Slack call that carried `rows` (one, or a page group): each row backs
        off from its own attempt count, or is parked."""
        now = self.clock.now()
        error = " ".join(str(exc).split())[:500]
        retry_after: timedelta | None = None
        if isinstance(exc, SlackApiError):
            error = f"HTTP {exc.response.status_code} {exc.response.get('error')}: {error}"[:500]
            status = exc.response.status_code
            reason = exc.response.get("error")
            if status == 429:
                retry_after = retry_after_of(exc)
            elif reason in TOKEN_REFUSED:
                self._token_refused(reason)
            elif status < 500 and reason is not None and reason not in SLACK_FAULTS:
                # ok=false with a reason (channel_not_found, ...) does not heal by retrying
                for row in rows:
                    self._park(row, error, attempts=row.attempts + 1)
                return False
        outcomes: list[tuple[OutboxMessage, int, str]] = []
        with transaction(self.engine) as session:
            for row in rows:
                # A 429 says the message is fine and when Slack takes it: a wait, not a
                # failed attempt, so rate limiting alone never parks a message.
                attempts = row.attempts if retry_after is not None else row.attempts + 1
                delay = retry_after or timedelta(seconds=min(300, 2**attempts))
                status_after = "parked" if attempts >= MAX_ATTEMPTS else "pending"
                values: dict[str, Any] = {}
                if status_after == "parked" and row.kind == CODE_NOTICE:
                    # as in _finish: a parked code DM is never sent again, so its code goes
                    values["payload"] = {**(row.payload or {}), "code": None}
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
                        **values,
                    )
                )
                outcomes.append((row, attempts, status_after))
        for row, attempts, status_after in outcomes:
            metrics.DELIVERIES.labels(status_after if status_after == "parked" else "failed").inc()
            if status_after == "parked":
                log.error("outbox %s parked after %d attempts: %s", row.key, attempts, error)
            elif len(rows) == 1:
                log.warning("outbox %s attempt %d failed: %s", row.key, attempts, error)
        if len(rows) > 1:
            log.warning("page group of %d (lead %s) failed: %s", len(rows), rows[0].key, error)
        return False

    def _token_refused(self, reason: str) -> None:
        """Say loudly, once per pass, that Slack refuses the bot token: nothing goes out
        until an operator fixes it, and messages park after MAX_ATTEMPTS tries."""
        if getattr(self._pass, "token_refused_logged", False):
            return
        self._pass.token_refused_logged = True
        log.error(
            "Slack refused the bot token (%s): messages are kept and retried with back-off, "
            "and parked after %d failed attempts (`chatops outbox retry` queues them again); "
            "check SLACK_BOT_TOKEN and the app's installation",
            reason,
            MAX_ATTEMPTS,
        )

    def _finish(
        self,
        row: OutboxMessage,
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
        if row.kind == CODE_NOTICE and (row.payload or {}).get("code"):
            # a one-time code lives in the outbox only until its DM is done
            values["payload"] = {**row.payload, "code": None}
        with transaction(self.engine) as session:
            result = session.execute(
                _RECORD_OUTCOME, {**values, "row_id": row.id, "owner": self.owner}
            )
            if case_updates and case_updates[0] is not None and case_updates[1]:
                session.execute(
                    _RECORD_ON_CASE, {**case_updates[1], "record_case_id": case_updates[0]}
                )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]


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
