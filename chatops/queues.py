"""Who may see which cases, and the queues people work from (no Slack imports).

`visible_cases` is *the* scoping rule: every path that reads cases for a person — lists,
queues, the App Home, case detail, search — starts from the query it returns and only ever
narrows it:

- support staff (an `agent` or `lead` role and no customer organisation): every case;
- a customer admin (an admin role of the policy, SC-1): their own organisation's cases only;
- anyone else (a customer's non-admin, a stranger, nobody): no case at all.

It fails closed: a person of a customer organisation stored with a staff role (the roster
refuses one; `chatops.directory.is_agent`) is *not* staff (they see at most their own
organisation's cases, and only if they are an admin of it).

The queue functions return a :class:`Queue`: the total number of matching cases and the
most urgent `limit` of them after the first `offset` (a page of the queue), most urgent
first — by severity (A before B before C), then by first-response due (earliest first;
cases whose clock is paused, with no due, last), then by case number. Counting happens in
the database, so a queue of thousands costs one count and one bounded select.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, false, func, or_
from sqlmodel import Session, col, select

from chatops.cases.states import OPEN_STATUSES
from chatops.db import MAX_ROW_ID, parse_row_id
from chatops.directory import is_agent
from chatops.policy import SEVERITY_ORDER, SupportRules
from models import Case, Person

DEFAULT_LIMIT = 10

# Queue names, as `/support list <name>` takes them.
UNCLAIMED = "unclaimed"
MINE = "mine"
AT_RISK = "risk"
OPEN = "open"


def is_customer_admin(person: Person | None, rules: SupportRules) -> bool:
    return (
        person is not None
        and person.organisation_id is not None
        and rules.is_admin(list(person.roles))
    )


def visible_cases(session: Session, person: Person | None, rules: SupportRules) -> Select[Any]:
    """`SELECT case …` restricted to the cases `person` may see (see the module docs).

    Build every read on this query and only add conditions to it (`.where(...)`), never
    replace its WHERE clause. `session` is taken so the rule may consult the database later
    (delegated access, say) without changing any caller."""
    del session  # the rule needs only the person today
    query = select(Case)
    if person is None:
        return query.where(false())
    if is_agent(person):
        return query
    if is_customer_admin(person, rules):
        return query.where(col(Case.organisation_id) == person.organisation_id)
    return query.where(false())


@dataclass(frozen=True)
class Queue:
    """A bounded slice of a queue: `total` matching cases, `cases` the most urgent of them
    after the first `offset` (0: the head of the queue)."""

    name: str
    total: int
    cases: list[Case] = field(default_factory=list)
    offset: int = 0

    @property
    def more(self) -> int:
        """How many matching cases come after `cases`."""
        return max(0, self.total - self.offset - len(self.cases))


def urgency_order() -> tuple[Any, ...]:
    """ORDER BY terms for "most urgent first": severity, then due (paused last), then id."""
    rank = case(
        {severity: i for i, severity in enumerate(SEVERITY_ORDER)},
        value=col(Case.severity),
        else_=len(SEVERITY_ORDER),
    )
    no_due_last = case((col(Case.first_response_due).is_(None), 1), else_=0)
    return (rank, no_due_last, col(Case.first_response_due), col(Case.id))


def _open(query: Select[Any]) -> Select[Any]:
    return query.where(col(Case.status).in_(OPEN_STATUSES))


def take(session: Session, name: str, query: Select[Any], limit: int, offset: int = 0) -> Queue:
    """Count `query` and fetch its `limit` most urgent cases after the first `offset`.

    A page is read at the moment it is asked for: a case claimed or resolved between two
    pages moves the ones after it up, so the next page may start one case later than the
    reader expects. The order's last term (the case id) makes it total, so a queue that did
    not change never shows a case twice or skips one."""
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must be >= 0")
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = (
        list(session.exec(query.order_by(*urgency_order()).offset(offset).limit(limit)).all())
        if limit
        else []
    )
    return Queue(name=name, total=int(total), cases=rows, offset=offset)


def open_cases_for_org(
    session: Session,
    person: Person | None,
    rules: SupportRules,
    *,
    organisation_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> Queue:
    """Open cases the person may see: for an admin, their organisation's. Staff may narrow
    to one organisation with `organisation_id` (a narrowing, never a widening)."""
    query = _open(visible_cases(session, person, rules))
    if organisation_id is not None:
        query = query.where(col(Case.organisation_id) == organisation_id)
    return take(session, OPEN, query, limit, offset)


def unclaimed(
    session: Session,
    person: Person | None,
    rules: SupportRules,
    *,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> Queue:
    """Open cases nobody owns yet."""
    query = _open(visible_cases(session, person, rules)).where(col(Case.assignee_id).is_(None))
    return take(session, UNCLAIMED, query, limit, offset)


def mine(
    session: Session,
    person: Person | None,
    rules: SupportRules,
    *,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> Queue:
    """Open cases `person` owns."""
    if person is None or person.id is None:
        return Queue(MINE, 0, [], offset)
    query = _open(visible_cases(session, person, rules)).where(col(Case.assignee_id) == person.id)
    return take(session, MINE, query, limit, offset)


def at_risk_condition(now: datetime) -> Any:
    """Open, no first response yet, a due set (the clock runs), and the warning instant or
    the due itself has passed (the latter are in breach)."""
    return and_(
        col(Case.status).in_(OPEN_STATUSES),
        col(Case.first_responded_at).is_(None),
        col(Case.first_response_due).is_not(None),
        or_(col(Case.sla_warn_at) <= now, col(Case.first_response_due) <= now),
    )


def at_risk(
    session: Session,
    person: Person | None,
    rules: SupportRules,
    now: datetime,
    *,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> Queue:
    """Cases about to breach or in breach of their first-response due (see
    :func:`at_risk_condition`)."""
    query = visible_cases(session, person, rules).where(at_risk_condition(now))
    return take(session, AT_RISK, query, limit, offset)


def by_severity(
    session: Session, person: Person | None, rules: SupportRules, *, limit: int = DEFAULT_LIMIT
) -> dict[str, Queue]:
    """Open cases per severity, in the policy's order (A first); every severity is present."""
    return {
        severity: of_severity(session, person, rules, severity, limit=limit)
        for severity in SEVERITY_ORDER
    }


def of_severity(
    session: Session,
    person: Person | None,
    rules: SupportRules,
    severity: str,
    *,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> Queue:
    """Open cases of one severity."""
    query = _open(visible_cases(session, person, rules)).where(col(Case.severity) == severity)
    return take(session, severity, query, limit, offset)


def find_case(
    session: Session, person: Person | None, rules: SupportRules, reference: str | int
) -> Case | None:
    """Case detail: the case by id or number (`CS-00042`, `42`) if `person` may see it, else
    None — the same answer as for a case that does not exist, so nothing leaks."""
    case_id = parse_case_reference(reference)
    if case_id is None:
        return None
    query = visible_cases(session, person, rules).where(col(Case.id) == case_id)
    return session.exec(query).first()


def parse_case_reference(reference: str | int) -> int | None:
    """The case id in `CS-00042`, `cs42` or `42`; None when it cannot be one."""
    if isinstance(reference, int):
        return reference if 0 < reference <= MAX_ROW_ID else None
    text = reference.strip().upper()
    return parse_row_id(text.removeprefix("CS-").removeprefix("CS"))


def search_cases(
    session: Session,
    person: Person | None,
    rules: SupportRules,
    words: str,
    *,
    limit: int = DEFAULT_LIMIT,
) -> Queue:
    """Cases whose title contains `words` (case-insensitive; `%` and `_` match literally),
    open or not, within what `person` may see."""
    needle = words.strip().lower()
    query = visible_cases(session, person, rules)
    if needle:
        query = query.where(func.lower(col(Case.title)).contains(needle, autoescape=True))
    else:
        query = query.where(false())
    return take(session, "search", query, limit)
