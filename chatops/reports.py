"""The weekly numbers a support lead reviews: first-response SLA attainment, response and
resolution times, breaches and the survey, overall, per severity and per category.

Definitions (computed over the cases *opened* in `[since, until)`, as of `as_of`, which
defaults to `until`; a response or resolution recorded after `as_of` does not count yet):

- **on time**: the first response (a reply, or a resolution note, which also goes to the
  requester) was given at or before the first-response due;
- **late**: it was given after the due;
- **open in breach**: no first response recorded and the due has passed (this includes a
  case closed without any recorded response: the customer was never answered in time);
- **pending**: no first response yet and the due is still ahead (or the clock is paused,
  with no due): not judged yet, left out of the attainment;
- **attainment** = on time ÷ (on time + late + open in breach), as a percentage; no judged
  case gives no percentage ("—"), never 100 %;
- **breaches** = late + open in breach;
- a first response recorded while the case had no due (its clock paused awaiting the
  customer) counts as on time: the clock had stopped, so it cannot have run out.

Durations are **wall-clock** time: time to first response is `first_responded_at -
opened_at`, time to resolve `resolved_at - opened_at`, nights, weekends and pauses included
— what the customer lived through. As an extra, the time to first response is also given in
**business time**: the business time of the calendar of the case's current category and
severity, minus the recorded pauses (what the SLA clock counts; a severity change during
the case is not replayed).

Percentiles are **nearest-rank**: of n values sorted ascending, the p-th percentile is the
value at rank ⌈p/100 · n⌉ (1-based). The median is the 50th percentile, so with an even
count it is the lower of the two middle values, always a value that occurred. No values give
no percentile.

The survey columns are the average rating (1..5) and the number of answers for the cases of
the row (SC-23).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from chatops.policy import SEVERITY_ORDER, SupportRules
from chatops.sla import elapsed_business_minutes
from models import Case, CasePause, SurveyAnswer


def nearest_rank(values: Sequence[timedelta], percentile: float) -> timedelta | None:
    """The nearest-rank percentile of `values` (see the module docs); None for no values."""
    if not 0 < percentile <= 100:
        raise ValueError("percentile must be in (0, 100]")
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Spread:
    """Median and 90th percentile (nearest-rank) of some durations, and how many there were."""

    count: int
    median: timedelta | None
    p90: timedelta | None

    @classmethod
    def of(cls, values: Sequence[timedelta]) -> Spread:
        return cls(len(values), nearest_rank(values, 50), nearest_rank(values, 90))


@dataclass(frozen=True)
class Row:
    """One line of the report: all cases, one severity or one category."""

    key: str
    label: str
    cases: int
    on_time: int
    late: int
    open_breached: int
    pending: int
    first_response: Spread
    first_response_business: Spread
    resolve: Spread
    survey_average: float | None
    survey_count: int

    @property
    def judged(self) -> int:
        return self.on_time + self.late + self.open_breached

    @property
    def breaches(self) -> int:
        return self.late + self.open_breached

    @property
    def attainment(self) -> float | None:
        """Percentage of judged cases answered on time; None when none was judged."""
        if not self.judged:
            return None
        return 100.0 * self.on_time / self.judged


@dataclass(frozen=True)
class SlaReport:
    since: datetime
    until: datetime
    as_of: datetime
    overall: Row
    by_severity: list[Row]
    by_category: list[Row]


@dataclass(frozen=True)
class _Facts:
    """What one case contributes to the rows it belongs to."""

    severity: str
    category: str
    outcome: str  # on_time | late | open_breached | pending
    first_response: timedelta | None
    first_response_business: timedelta | None
    resolve: timedelta | None
    rating: int | None


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _facts(
    case: Case,
    as_of: datetime,
    rules: SupportRules,
    pauses: list[tuple[datetime, datetime | None]],
    rating: int | None,
) -> _Facts:
    opened = _aware(case.opened_at)
    assert opened is not None
    due = _aware(case.first_response_due)
    responded = _aware(case.first_responded_at)
    if responded is not None and responded > as_of:
        responded = None
    resolved = _aware(case.resolved_at)
    if resolved is not None and resolved > as_of:
        resolved = None
    if responded is not None:
        outcome = "on_time" if due is None or responded <= due else "late"
    elif due is not None and due <= as_of:
        outcome = "open_breached"
    else:
        outcome = "pending"
    business = None
    if responded is not None:
        try:
            calendar = rules.calendar_for(case.category, case.severity)
        except KeyError:  # a category or severity the current policy no longer has
            calendar = None
        if calendar is not None:
            minutes = elapsed_business_minutes(calendar, opened, responded, pauses)
            business = timedelta(minutes=minutes)
    return _Facts(
        severity=case.severity,
        category=case.category,
        outcome=outcome,
        first_response=responded - opened if responded is not None else None,
        first_response_business=business,
        resolve=resolved - opened if resolved is not None else None,
        rating=rating,
    )


def _row(key: str, label: str, facts: Iterable[_Facts]) -> Row:
    items = list(facts)
    outcomes = defaultdict(int)
    for item in items:
        outcomes[item.outcome] += 1
    ratings = [item.rating for item in items if item.rating is not None]

    def durations(pick: Callable[[_Facts], timedelta | None]) -> list[timedelta]:
        return [value for value in map(pick, items) if value is not None]

    return Row(
        key=key,
        label=label,
        cases=len(items),
        on_time=outcomes["on_time"],
        late=outcomes["late"],
        open_breached=outcomes["open_breached"],
        pending=outcomes["pending"],
        first_response=Spread.of(durations(lambda f: f.first_response)),
        first_response_business=Spread.of(durations(lambda f: f.first_response_business)),
        resolve=Spread.of(durations(lambda f: f.resolve)),
        survey_average=sum(ratings) / len(ratings) if ratings else None,
        survey_count=len(ratings),
    )


def sla_report(
    session: Session,
    since: datetime,
    until: datetime,
    rules: SupportRules,
    *,
    as_of: datetime | None = None,
) -> SlaReport:
    """The report over cases opened in `[since, until)` (see the module docs)."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    if until <= since:
        raise ValueError("until must be after since")
    as_of = as_of or until
    cases = list(
        session.exec(
            select(Case)
            .where(col(Case.opened_at) >= since, col(Case.opened_at) < until)
            .order_by(col(Case.id))
        ).all()
    )
    ids = [c.id for c in cases if c.id is not None]
    ratings: dict[int, int] = {}
    pauses: dict[int, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for chunk in _chunks(ids, 500):
        for answer in session.exec(
            select(SurveyAnswer).where(col(SurveyAnswer.case_id).in_(chunk))
        ).all():
            answered = _aware(answer.answered_at)
            if answered is None or answered <= as_of:
                ratings[answer.case_id] = answer.rating
        for pause in session.exec(select(CasePause).where(col(CasePause.case_id).in_(chunk))):
            started = _aware(pause.started_at)
            assert started is not None
            pauses[pause.case_id].append((started, _aware(pause.ended_at)))
    facts = [
        _facts(case, as_of, rules, pauses.get(case.id or 0, []), ratings.get(case.id or 0))
        for case in cases
    ]
    policy = rules.policy
    severities = list(SEVERITY_ORDER) + sorted({f.severity for f in facts} - set(SEVERITY_ORDER))
    categories = list(policy.categories) + sorted(
        {f.category for f in facts} - set(policy.categories)
    )
    by_severity = [
        _row(
            s,
            policy.severities[s].label if s in policy.severities else f"Sev {s}",  # type: ignore[index]
            (f for f in facts if f.severity == s),
        )
        for s in severities
    ]
    by_category = [
        _row(
            c,
            policy.categories[c].label if c in policy.categories else c,
            (f for f in facts if f.category == c),
        )
        for c in categories
    ]
    return SlaReport(
        since=since,
        until=until,
        as_of=as_of,
        overall=_row("all", "All cases", facts),
        by_severity=by_severity,
        by_category=by_category,
    )


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- rendering (shared by the CLI and the Slack blocks) ----------------------------------


def format_duration(value: timedelta | None) -> str:
    """`—` for none; else rounded to the nearest minute: `0 min`, `45 min`, `3 h 10 min`,
    `2 d 4 h` (minutes dropped from a day on)."""
    if value is None:
        return "—"
    minutes = max(0, round(value.total_seconds() / 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


def format_percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def format_survey(row: Row) -> str:
    if row.survey_average is None:
        return "—"
    return f"{row.survey_average:.2f} ({row.survey_count})"


_COLUMNS = (
    ("", lambda r: r.label),
    ("cases", lambda r: str(r.cases)),
    ("on time", lambda r: str(r.on_time)),
    ("late", lambda r: str(r.late)),
    ("open breached", lambda r: str(r.open_breached)),
    ("pending", lambda r: str(r.pending)),
    ("attainment", lambda r: format_percent(r.attainment)),
    ("breaches", lambda r: str(r.breaches)),
    ("1st resp median", lambda r: format_duration(r.first_response.median)),
    ("1st resp p90", lambda r: format_duration(r.first_response.p90)),
    ("1st resp biz median", lambda r: format_duration(r.first_response_business.median)),
    ("resolve median", lambda r: format_duration(r.resolve.median)),
    ("resolve p90", lambda r: format_duration(r.resolve.p90)),
    ("survey", format_survey),
)


def _table(title: str, rows: list[Row]) -> list[str]:
    cells = [[header for header, _ in _COLUMNS]]
    cells[0][0] = title
    cells += [[render(row) for _, render in _COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]
    out = []
    for n, line in enumerate(cells):
        text = "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        )
        out.append(text.rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def format_report_text(report: SlaReport) -> str:
    """The report as plain text tables (for `chatops report`)."""
    lines = [
        f"First-response SLA report: cases opened {report.since.isoformat()} .. "
        f"{report.until.isoformat()} (as of {report.as_of.isoformat()})",
        "",
        *_table("overall", [report.overall]),
        "",
        *_table("by severity", report.by_severity),
        "",
        *_table("by category", report.by_category),
        "",
        "attainment = on time / (on time + late + open breached); breaches = late + open "
        "breached; times are wall-clock (business: the case's calendar minus pauses); "
        "percentiles by nearest rank.",
    ]
    return "\n".join(lines) + "\n"
