"""Service health (SC-5: check the health of the services before opening a case).

Support leads post incidents against services, update their status and resolve them; anyone
may read them; an admin about to open a case for an affected service may follow the incident
instead and gets each update by DM until it is resolved.

The services are the topics of the policy's technical category (install, mail, sites, …),
read from the policy, so the health vocabulary and the intake form's topics are the same.

Every change writes a HealthUpdate (the incident's history) and, in the same transaction, one
outbox notice per follower (kind `health.update`, unique per incident, update and follower),
so a retry never DMs anyone twice and no update is lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, select

from chatops.db import insert_if_absent, transaction
from chatops.directory import find_person, is_lead
from chatops.outbox import enqueue
from chatops.policy import SupportRules
from models.health import HealthIncident, HealthUpdate, IncidentFollower

HEALTH_UPDATE = "health.update"  # outbox kind: a DM to one follower about one update
TECHNICAL = "technical"  # the policy category whose topics are the services
TITLE_MAX = 150
IMPACT_MAX = 1000
STATUS_MAX = 2000
RECENT_DAYS = 7
USER_ID_MAX = 32

ACTIVE = "active"
RESOLVED = "resolved"


class HealthRefused(ValueError):
    """The person may not do this, or the incident is not there / no longer active."""


class HealthInputError(ValueError):
    """What was typed is not acceptable; `errors` maps field → message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def service_labels(rules: SupportRules) -> dict[str, str]:
    """The services incidents can affect: the technical topics of the policy, key → label."""
    category = rules.policy.categories.get(TECHNICAL)
    if category is None:
        return {}
    return {key: topic.label for key, topic in category.topics.items()}


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def _check_text(errors: dict[str, str], field: str, value: str, limit: int, what: str) -> None:
    if not value:
        errors[field] = f"Enter the {what}."
    elif len(value) > limit:
        errors[field] = f"Keep the {what} under {limit} characters (it is {len(value)})."


def check_incident(
    title: Any, services: Iterable[Any] | None, impact: Any, status: Any, rules: SupportRules
) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate a new incident whatever the form offered; returns (clean values, errors)."""
    known = service_labels(rules)
    chosen = list(dict.fromkeys(_text(s) for s in services or [] if _text(s)))
    errors: dict[str, str] = {}
    if not chosen:
        errors["services"] = "Choose at least one affected service."
    else:
        unknown = [s for s in chosen if s not in known]
        if unknown:
            errors["services"] = (
                f"Not a service: {', '.join(u[:40] for u in unknown)}. "
                f"Services are: {', '.join(known.values()) or 'none configured'}."
            )
    clean = {
        "title": _text(title),
        "services": [s for s in known if s in chosen],  # the policy's order
        "impact": _text(impact),
        "status": _text(status),
    }
    _check_text(errors, "title", clean["title"], TITLE_MAX, "title")
    _check_text(errors, "impact", clean["impact"], IMPACT_MAX, "impact")
    _check_text(errors, "status", clean["status"], STATUS_MAX, "status")
    return clean, errors


def check_status(status: Any) -> str:
    value = _text(status)
    errors: dict[str, str] = {}
    _check_text(errors, "status", value, STATUS_MAX, "status")
    if errors:
        raise HealthInputError(errors)
    return value


def _require_lead(session: Session, user_id: str, what: str) -> None:
    if not is_lead(find_person(session, user_id)):
        raise HealthRefused(f"Only support leads can {what} service-health incidents.")


def post_incident(
    engine: Engine,
    user_id: str,
    *,
    title: Any,
    services: Iterable[Any] | None,
    impact: Any,
    status: Any,
    rules: SupportRules,
    now: datetime,
) -> HealthIncident:
    """A lead posts an incident. Raises HealthRefused (not a lead) or HealthInputError."""
    with transaction(engine) as session:
        _require_lead(session, user_id, "post")
        clean, errors = check_incident(title, services, impact, status, rules)
        if errors:
            raise HealthInputError(errors)
        incident = HealthIncident(
            title=clean["title"],
            services=clean["services"],
            impact=clean["impact"],
            status=clean["status"],
            state=ACTIVE,
            posted_by=user_id,
            created_at=now,
            updated_at=now,
        )
        session.add(incident)
        session.flush()
        assert incident.id is not None
        _record(session, incident.id, user_id, clean["status"], "posted", now)
        return incident


def update_incident(
    engine: Engine, incident_id: int, user_id: str, status: Any, now: datetime
) -> HealthUpdate:
    """A lead posts a new status of an active incident; its followers are told by DM."""
    return _change(engine, incident_id, user_id, status, now, resolve=False)


def resolve_incident(
    engine: Engine, incident_id: int, user_id: str, status: Any, now: datetime
) -> HealthUpdate:
    """A lead resolves an active incident with a closing status; followers are told by DM
    (their last notice about it)."""
    return _change(engine, incident_id, user_id, status, now, resolve=True)


def _change(
    engine: Engine, incident_id: int, user_id: str, status: Any, now: datetime, *, resolve: bool
) -> HealthUpdate:
    with transaction(engine) as session:
        _require_lead(session, user_id, "resolve" if resolve else "update")
        text = check_status(status)
        values: dict[str, Any] = {"status": text, "updated_at": now}
        if resolve:
            values.update(state=RESOLVED, resolved_at=now)
        # Conditional: of two leads resolving at once, one wins; an update racing a resolve
        # is refused rather than written to a closed incident. The row lock also orders this
        # against `follow`, so nobody follows an incident between its last notice and its end.
        result = session.exec(  # type: ignore[call-overload]
            update(HealthIncident)
            .where(HealthIncident.id == incident_id, HealthIncident.state == ACTIVE)  # type: ignore[arg-type]
            .values(**values)
        )
        if result.rowcount != 1:
            incident = session.get(HealthIncident, incident_id)
            if incident is None:
                raise HealthRefused("That incident does not exist.")
            raise HealthRefused(f"“{incident.title}” is already resolved.")
        return _record(
            session, incident_id, user_id, text, "resolved" if resolve else "updated", now
        )


def _record(
    session: Session, incident_id: int, user_id: str, status: str, kind: str, now: datetime
) -> HealthUpdate:
    entry = HealthUpdate(incident_id=incident_id, at=now, by=user_id, status=status, kind=kind)
    session.add(entry)
    session.flush()
    assert entry.id is not None
    for follower in followers(session, incident_id):
        enqueue(
            session,
            key=f"{HEALTH_UPDATE}:{incident_id}:{entry.id}:{follower}",
            kind=HEALTH_UPDATE,
            now=now,
            payload={
                "to": "user",
                "user": follower,
                "incident_id": incident_id,
                "update_id": entry.id,
            },
        )
    return entry


def follow(engine: Engine, incident_id: int, user_id: str, now: datetime) -> bool:
    """`user_id` gets the incident's updates by DM until it is resolved. Idempotent: True
    when this call started the follow, False if they already followed it. Raises
    HealthRefused for an incident that does not exist or is already resolved."""
    if not user_id or len(user_id) > USER_ID_MAX:
        raise HealthRefused("I can't tell who you are.")
    with transaction(engine) as session:
        incident = session.exec(
            select(HealthIncident).where(HealthIncident.id == incident_id).with_for_update()
        ).first()
        if incident is None:
            raise HealthRefused("That incident does not exist.")
        if incident.state != ACTIVE:
            raise HealthRefused(f"“{incident.title}” is already resolved.")
        return _insert_follower(session, incident_id, user_id, now)


def _insert_follower(session: Session, incident_id: int, user_id: str, now: datetime) -> bool:
    """True when this call added the follower (a second click adds nothing)."""
    return insert_if_absent(
        session,
        IncidentFollower,
        {"incident_id": incident_id, "slack_user_id": user_id, "created_at": now},
        ["incident_id", "slack_user_id"],
    )


def followers(session: Session, incident_id: int) -> list[str]:
    rows = session.exec(
        select(IncidentFollower.slack_user_id)
        .where(IncidentFollower.incident_id == incident_id)
        .order_by(IncidentFollower.id)  # type: ignore[arg-type]
    ).all()
    return list(rows)


def is_following(session: Session, incident_id: int, user_id: str) -> bool:
    return user_id in followers(session, incident_id)


def active_incidents(
    session: Session, services: Sequence[str] | None = None
) -> list[HealthIncident]:
    """Active incidents, newest first; with `services`, only those affecting any of them."""
    rows = session.exec(
        select(HealthIncident)
        .where(HealthIncident.state == ACTIVE)
        .order_by(HealthIncident.created_at.desc(), HealthIncident.id.desc())  # type: ignore[union-attr,attr-defined]
    ).all()
    if services is None:
        return list(rows)
    wanted = set(services)
    return [row for row in rows if wanted.intersection(row.services or [])]


def recent(session: Session, now: datetime, days: int = RECENT_DAYS) -> list[HealthIncident]:
    """Incidents resolved in the last `days` days, most recently resolved first."""
    since = now - timedelta(days=days)
    rows = session.exec(
        select(HealthIncident)
        .where(
            HealthIncident.state == RESOLVED,
            HealthIncident.resolved_at >= since,  # type: ignore[operator]
        )
        .order_by(HealthIncident.resolved_at.desc(), HealthIncident.id.desc())  # type: ignore[union-attr,attr-defined]
    ).all()
    return list(rows)


def incidents_for_topic(session: Session, topic: str) -> list[HealthIncident]:
    """Active incidents that affect the service an intake topic names."""
    return active_incidents(session, [topic])


def history(session: Session, incident_id: int) -> list[HealthUpdate]:
    return list(
        session.exec(
            select(HealthUpdate)
            .where(HealthUpdate.incident_id == incident_id)
            .order_by(HealthUpdate.id)  # type: ignore[arg-type]
        ).all()
    )
