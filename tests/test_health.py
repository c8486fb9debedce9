"""Service health (SC-5) through the front door: leads post, update and resolve incidents;
anyone reads them; admins follow an incident instead of opening a duplicate case."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from chatops import health as core
from chatops.standin.client import build_view_state
from chatops.standin.webapi import validate_blocks
from handlers.health import intake_notice, render_health_update, with_intake_notice
from models import OutboxMessage
from models.health import HealthIncident, HealthUpdate, IncidentFollower
from tests.conftest import Desk

LEAD = "U0LEAD"
INCIDENT = {
    "services": ["mail", "chat"],
    "title": "Mail delivery delayed",
    "impact": "Outbound mail is delayed by up to an hour for all organisations.",
    "status": "We are investigating.",
}


def _action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [
        element["action_id"]
        for block in blocks
        if block.get("type") == "actions"
        for element in block["elements"]
    ]


def _open_post_form(desk: Desk, user: str = LEAD) -> dict[str, Any]:
    reply = desk.ask(user, "health")
    before = len(desk.standin.calls("views.open"))
    response = desk.slack.click_in(user, reply, "health_post_open", channel_id="C_GENERAL")
    assert response.status == 200
    desk.standin.wait_for("views.open", count=before + 1)
    view = desk.standin.open_view(user)
    assert view is not None and view["callback_id"] == "health_post"
    return view


def _post(desk: Desk, **values: Any) -> HealthIncident:
    _open_post_form(desk)
    response = desk.slack.submit_view(LEAD, {**INCIDENT, **values}, strict=True)
    assert response.status == 200, response.body
    assert response.json()["response_action"] == "update", response.body
    assert not response.problems, response.problems
    return _incidents(desk)[-1]


def _incidents(desk: Desk) -> list[HealthIncident]:
    with Session(desk.engine) as session:
        return list(session.exec(select(HealthIncident).order_by(HealthIncident.id)).all())  # type: ignore[arg-type]


def _history(desk: Desk, incident_id: int | None) -> list[HealthUpdate]:
    with Session(desk.engine) as session:
        return core.history(session, incident_id or 0)


def _health_notices(desk: Desk) -> list[OutboxMessage]:
    return [m for m in desk.outbox() if m.kind == core.HEALTH_UPDATE]


def _click(desk: Desk, user: str, reply: dict[str, Any], action_id: str, value: str) -> None:
    response = desk.slack.click_in(user, reply, action_id, channel_id="C_GENERAL", value=value)
    assert response.status == 200


def _status_form(desk: Desk, action_id: str, incident_id: int | None) -> dict[str, Any]:
    reply = desk.ask(LEAD, "health")
    before = len(desk.standin.calls("views.open"))
    _click(desk, LEAD, reply, action_id, str(incident_id))
    desk.standin.wait_for("views.open", count=before + 1)
    view = desk.standin.open_view(LEAD)
    assert view is not None
    return view


def _follow_from_list(
    desk: Desk, user: str, incident_id: int | None, reply: dict[str, Any] | None = None
) -> str:
    reply = reply or desk.ask(user, "health")
    before = len(desk.standin.calls("response_url"))
    _click(desk, user, reply, "follow_incident", str(incident_id))
    calls = desk.standin.wait_for("response_url", count=before + 1)
    return json.dumps(calls[-1].args)


def test_lead_posts_an_incident_with_the_button_and_the_form(desk: Desk) -> None:
    view = _open_post_form(desk)
    services = next(b for b in view["blocks"] if b.get("block_id") == "services")
    # the services are the policy's technical topics
    assert [o["value"] for o in services["element"]["options"]] == [
        "install",
        "mail",
        "sites",
        "chat",
        "identity",
        "other",
    ]
    response = desk.slack.submit_view(LEAD, INCIDENT, strict=True)
    body = json.dumps(response.json())
    assert "Incident posted" in body and "Mail, Chat and meetings" in body
    [incident] = _incidents(desk)
    assert incident.state == "active" and incident.posted_by == LEAD
    assert incident.services == ["mail", "chat"]
    assert [(u.kind, u.status, u.by) for u in _history(desk, incident.id)] == [
        ("posted", "We are investigating.", LEAD)
    ]
    # anyone sees it: an admin, a non-admin, a stranger
    for user in ("U0ALICE", "U0CARL", "U0STRANGER"):
        reply = desk.ask(user, "health")
        text = json.dumps(reply)
        assert "Mail delivery delayed" in text and "We are investigating." in text
        assert "Mail, Chat and meetings" in text
        assert "health_post_open" not in _action_ids(reply["blocks"])
        assert "follow_incident" in _action_ids(reply["blocks"])


def test_the_form_is_checked_on_the_server(desk: Desk) -> None:
    _open_post_form(desk)
    response = desk.slack.submit_view(
        LEAD, {**INCIDENT, "title": "   ", "services": ["mail", "billing"]}, force=True
    )
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"title", "services"}
    assert "Not a service: billing" in answer["errors"]["services"]
    response = desk.slack.submit_view(LEAD, {**INCIDENT, "title": "x" * 151}, force=True)
    assert "under 150 characters" in response.json()["errors"]["title"]
    assert _incidents(desk) == []
    # corrected, the same form posts
    response = desk.slack.submit_view(LEAD, INCIDENT)
    assert response.json()["response_action"] == "update"
    assert len(_incidents(desk)) == 1


def test_non_leads_get_no_buttons_and_forged_requests_change_nothing(desk: Desk) -> None:
    incident = _post(desk)
    lead_reply = desk.ask(LEAD, "health")
    assert {"health_post_open", "health_update_open", "health_resolve_open"} <= set(
        _action_ids(lead_reply["blocks"])
    )
    agent_reply = desk.ask("U0AGENT1", "health")
    assert _action_ids(agent_reply["blocks"]) == ["follow_incident"]
    assert "Only support leads" in json.dumps(desk.ask("U0AGENT1", "health post"))

    # the lead's buttons, clicked by an agent: refused, no form
    opened = len(desk.standin.calls("views.open"))
    for action_id, value in [
        ("health_post_open", None),
        ("health_update_open", str(incident.id)),
        ("health_resolve_open", str(incident.id)),
    ]:
        before = len(desk.standin.calls("response_url"))
        response = desk.slack.click_in(
            "U0AGENT1", lead_reply, action_id, channel_id="C_GENERAL", value=value
        )
        assert response.status == 200
        calls = desk.standin.wait_for("response_url", count=before + 1)
        assert "Only support leads" in json.dumps(calls[-1].args)
    assert len(desk.standin.calls("views.open")) == opened

    # forged submissions of the lead's forms
    view = _open_post_form(desk)
    desk.slack.fill_view(LEAD, {**INCIDENT, "title": "Forged"})
    view = desk.standin.open_view(LEAD)
    assert view is not None
    view["state"] = {"values": build_view_state(view)}
    answer = desk.slack.raw_view_submission("U0AGENT1", view).json()
    assert answer["response_action"] == "update"
    assert "Only support leads can post" in json.dumps(answer["view"])
    for callback in ("health_update", "health_resolve"):
        forged = {
            "type": "modal",
            "callback_id": callback,
            "private_metadata": json.dumps({"incident_id": incident.id}),
            "blocks": [],
            "state": {"values": {"status": {"status": {"type": "plain_text_input", "value": "x"}}}},
        }
        answer = desk.slack.raw_view_submission("U0ALICE", forged).json()
        assert "Only support leads" in json.dumps(answer["view"])
    assert [i.title for i in _incidents(desk)] == ["Mail delivery delayed"]
    assert _incidents(desk)[0].state == "active"
    assert len(_history(desk, incident.id)) == 1


def test_health_lists_current_and_recently_resolved_incidents(desk: Desk) -> None:
    empty = json.dumps(desk.ask("U0CARL", "health"))
    assert "No known issues right now" in empty and "none" in empty
    first = _post(desk, title="Sites slow", services=["sites"])
    _post(desk, title="Sign-in failures", services=["identity"])
    view = _status_form(desk, "health_resolve_open", first.id)
    assert view["callback_id"] == "health_resolve"
    answer = desk.slack.submit_view(LEAD, {"status": "Fixed a cache node."}, strict=True).json()
    assert "is resolved" in json.dumps(answer)

    reply = json.dumps(desk.ask("U0STRANGER", "health"))
    assert "Current incidents (1)" in reply and "Sign-in failures" in reply
    assert "Resolved in the last 7 days (1)" in reply
    assert "Sites slow" in reply and "Fixed a cache node." in reply

    desk.clock.advance(timedelta(days=6, hours=23))
    assert "Sites slow" in json.dumps(desk.ask("U0STRANGER", "health"))
    desk.clock.advance(timedelta(hours=2))  # resolved more than 7 days ago
    reply = json.dumps(desk.ask("U0STRANGER", "health"))
    assert "Sites slow" not in reply
    assert "Sign-in failures" in reply  # still active, however old


def test_updates_and_resolution_write_history_and_notify_each_follower(desk: Desk) -> None:
    incident = _post(desk)
    assert "You follow *Mail delivery delayed*" in _follow_from_list(desk, "U0ALICE", incident.id)
    assert "(already)" in _follow_from_list(desk, "U0ALICE", incident.id)  # idempotent
    _follow_from_list(desk, "U0FRANK", incident.id)
    stale = desk.ask("U0HELEN", "health")  # shows Follow; clicked after the resolution
    with Session(desk.engine) as session:
        assert core.followers(session, incident.id or 0) == ["U0ALICE", "U0FRANK"]

    _status_form(desk, "health_update_open", incident.id)
    answer = desk.slack.submit_view(LEAD, {"status": "Fix rolling out."}, strict=True).json()
    assert "2 followers will get it by DM" in json.dumps(answer)
    desk.clock.advance(timedelta(minutes=30))
    _status_form(desk, "health_resolve_open", incident.id)
    desk.slack.submit_view(LEAD, {"status": "All queues drained."}, strict=True)

    history = _history(desk, incident.id)
    assert [(u.kind, u.status) for u in history] == [
        ("posted", "We are investigating."),
        ("updated", "Fix rolling out."),
        ("resolved", "All queues drained."),
    ]
    [stored] = _incidents(desk)
    assert stored.state == "resolved" and stored.status == "All queues drained."
    assert stored.resolved_at == desk.clock.now()

    notices = _health_notices(desk)
    assert sorted((m.payload["update_id"], m.payload["user"]) for m in notices) == [
        (history[1].id, "U0ALICE"),
        (history[1].id, "U0FRANK"),
        (history[2].id, "U0ALICE"),
        (history[2].id, "U0FRANK"),
    ]
    for message in notices:
        assert message.case_id is None
        assert message.payload["to"] == "user"
        assert message.payload["incident_id"] == incident.id
        assert message.key == (
            f"health.update:{incident.id}:{message.payload['update_id']}:{message.payload['user']}"
        )

    # resolved: no more updates, no more followers
    with pytest.raises(core.HealthRefused, match="already resolved"):
        core.update_incident(desk.engine, incident.id or 0, LEAD, "again", desk.clock.now())
    assert "already resolved" in _follow_from_list(desk, "U0HELEN", incident.id, stale)
    assert "follow_incident" not in _action_ids(desk.ask("U0ALICE", "health")["blocks"])
    assert len(_health_notices(desk)) == 4


def test_follow_is_idempotent_and_a_retry_enqueues_nothing_twice(desk: Desk) -> None:
    incident = _post(desk)
    now = desk.clock.now()
    assert core.follow(desk.engine, incident.id or 0, "U0ALICE", now) is True
    assert core.follow(desk.engine, incident.id or 0, "U0ALICE", now) is False
    with Session(desk.engine) as session:
        assert len(session.exec(select(IncidentFollower)).all()) == 1
    update = core.update_incident(desk.engine, incident.id or 0, LEAD, "Still on it.", now)
    assert len(_health_notices(desk)) == 1
    with pytest.raises(core.HealthRefused, match="does not exist"):
        core.follow(desk.engine, 999, "U0ALICE", now)
    with pytest.raises(core.HealthInputError):
        core.update_incident(desk.engine, incident.id or 0, LEAD, "  ", now)
    assert [u.id for u in _history(desk, incident.id)][-1] == update.id


def test_user_text_is_escaped_everywhere(desk: Desk) -> None:
    incident = _post(
        desk,
        title="<!channel> mail down",
        impact="Everyone <!here> & more",
        status="See <https://evil.example|the fix>",
    )
    core.follow(desk.engine, incident.id or 0, "U0ALICE", desk.clock.now())
    _status_form(desk, "health_update_open", incident.id)
    desk.slack.submit_view(LEAD, {"status": "<@U0AGENT1> <!everyone>"}, strict=True)
    reply = json.dumps(desk.ask("U0CARL", "health"))
    for raw in ("<!channel>", "<!here>", "<https://evil", "<@U0AGENT1>", "<!everyone>"):
        assert raw not in reply
    assert "&lt;!channel&gt; mail down" in reply and "&amp; more" in reply
    with Session(desk.engine) as session:
        [message] = _health_notices(desk)
        text, blocks = render_health_update(session, message.payload, desk.service.rules, None)  # type: ignore[arg-type]
        notice = intake_notice(session, "chat", desk.service.rules, desk.clock.now())
    dm = json.dumps([text, blocks, notice])
    assert "<!channel>" not in dm and "<@U0AGENT1>" not in dm and "<!everyone>" not in dm
    assert "&lt;!channel&gt;" in dm


def test_render_health_update_says_what_changed_and_whether_it_is_over(desk: Desk) -> None:
    incident = _post(desk)
    now = desk.clock.now()
    core.follow(desk.engine, incident.id or 0, "U0FRANK", now)
    core.update_incident(desk.engine, incident.id or 0, LEAD, "Fix rolling out.", now)
    core.resolve_incident(desk.engine, incident.id or 0, LEAD, "All queues drained.", now)
    updated, resolved = _health_notices(desk)
    rules = desk.service.rules
    with Session(desk.engine) as session:
        text, blocks = render_health_update(session, updated.payload, rules, now)
        body = json.dumps(blocks)
        assert text == "Service health update: Mail delivery delayed"
        assert "Mail, Chat and meetings" in body and "Fix rolling out." in body
        assert "until it is resolved" in body
        assert "<!date^" in body  # Frank's zone is not known: Slack shows his local time
        text, blocks = render_health_update(session, resolved.payload, rules, now)
        assert text == "Resolved: Mail delivery delayed"
        assert "All queues drained." in json.dumps(blocks)
        assert "last update" in json.dumps(blocks)
        with pytest.raises(LookupError):
            render_health_update(session, {**updated.payload, "update_id": 999}, rules, now)


def test_intake_notice_shows_the_incident_for_its_topic_only(desk: Desk) -> None:
    rules, now = desk.service.rules, desk.clock.now()
    with Session(desk.engine) as session:
        assert intake_notice(session, "mail", rules, now) is None
    incident = _post(desk)
    with Session(desk.engine) as session:
        notice = intake_notice(session, "mail", rules, now)
        assert notice is not None
        buttons = [e for b in notice if b["type"] == "actions" for e in b["elements"]]
        assert [(b["action_id"], b["value"], b["text"]["text"]) for b in buttons] == [
            ("follow_incident", str(incident.id), "Follow this incident")
        ]
        assert "Mail delivery delayed" in json.dumps(notice)
        assert intake_notice(session, "sites", rules, now) is None
        assert intake_notice(session, "invoice", rules, now) is None  # not a service
        assert intake_notice(session, None, rules, now) is None
    core.follow(desk.engine, incident.id or 0, "U0ALICE", now)
    with Session(desk.engine) as session:
        followed = intake_notice(session, "mail", rules, now, user_id="U0ALICE")
        assert followed is not None and "You follow this incident" in json.dumps(followed)
        assert "follow_incident" not in json.dumps(followed)
    core.resolve_incident(desk.engine, incident.id or 0, LEAD, "Done.", now)
    with Session(desk.engine) as session:
        assert intake_notice(session, "mail", rules, now) is None


def test_following_from_the_intake_form_keeps_the_form_usable(desk: Desk) -> None:
    incident = _post(desk)
    # (desk.open_intake waits for the first views.open: the lead's form already was one)
    reply = desk.ask("U0ALICE", "mail forwarding stopped")
    before = len(desk.standin.calls("views.open"))
    desk.slack.click_in("U0ALICE", reply, "contact_support", channel_id="C_GENERAL")
    desk.standin.wait_for("views.open", count=before + 1)
    view = desk.standin.open_view("U0ALICE")
    assert view is not None and view["callback_id"] == "intake"
    # what the intake flow does when a topic with an active incident is chosen
    with Session(desk.engine) as session:
        notice = intake_notice(session, "mail", desk.service.rules, desk.clock.now())
    assert notice is not None
    spec = {k: view[k] for k in ("type", "callback_id", "title", "submit", "close", "blocks")}
    spec["private_metadata"] = view["private_metadata"]
    spec = with_intake_notice(spec, notice)
    ids = [b.get("block_id") for b in spec["blocks"]]
    assert ids.index(f"health_notice_{incident.id}") == ids.index("topic") + 1
    desk.service.desk.delivery.client.views_update(view_id=view["id"], view=spec)

    before = len(desk.standin.calls("views.update"))
    response = desk.slack.click_view_button("U0ALICE", "follow_incident", str(incident.id))
    assert response.status == 200
    desk.standin.wait_for("views.update", count=before + 1)
    updated = desk.standin.open_view("U0ALICE")
    assert updated is not None and updated["callback_id"] == "intake"
    text = json.dumps(updated["blocks"])
    assert "You will get updates by DM until it is resolved; you can still open a case." in text
    assert "follow_incident" not in text
    assert [b["block_id"] for b in updated["blocks"] if b["type"] == "input"] == [
        b["block_id"] for b in view["blocks"] if b["type"] == "input"
    ]
    with Session(desk.engine) as session:
        assert core.followers(session, incident.id or 0) == ["U0ALICE"]
    # the admin can still open a case from the same form
    response = desk.submit("U0ALICE")
    assert response.status == 200 and "errors" not in response.body
    assert len(desk.cases()) == 1


def test_follower_gets_each_update_by_dm(desk: Desk) -> None:
    incident = _post(desk)
    core.follow(desk.engine, incident.id or 0, "U0ALICE", desk.clock.now())
    _status_form(desk, "health_update_open", incident.id)
    desk.slack.submit_view(LEAD, {"status": "Fix rolling out."}, strict=True)
    dm = desk.standin.dm_channel("U0ALICE")
    desk.standin.wait_for("chat.postMessage", lambda c: c.args.get("channel") == dm)
    assert "Fix rolling out." in json.dumps(desk.standin.messages(dm))
    # the request's own delivery records it just after
    desk.wait_until(
        lambda: [m.status for m in _health_notices(desk)] == ["sent"], "the DM recorded as sent"
    )


def test_many_long_incidents_stay_within_slack_limits(desk: Desk) -> None:
    now = desk.clock.now()
    long = {
        "title": "&" * core.TITLE_MAX,  # escapes to five times as long
        "services": ["install", "mail", "sites", "chat", "identity", "other"],
        "impact": "<" * core.IMPACT_MAX,
        "status": ">" * core.STATUS_MAX,
    }
    ids = [
        core.post_incident(desk.engine, LEAD, rules=desk.service.rules, now=now, **long).id
        for _ in range(24)
    ]
    for incident_id in ids[:12]:
        core.resolve_incident(desk.engine, incident_id or 0, LEAD, "~" * core.STATUS_MAX, now)
    for user, rest in [(LEAD, "health"), (LEAD, "health post"), ("U0STRANGER", "health")]:
        reply = desk.ask(user, rest)
        assert validate_blocks(reply["blocks"]) == [], rest
        text = json.dumps(reply, ensure_ascii=False)
        assert "Current incidents (12)" in text and "…and 2 more current incidents." in text
        assert "Resolved in the last 7 days (12)" in text and "…and 2 more" in text
    with Session(desk.engine) as session:
        notice = intake_notice(session, "mail", desk.service.rules, now)
    assert notice is not None and validate_blocks(notice, surface="modal") == []
    assert "…and 9 more" in json.dumps(notice, ensure_ascii=False)


def test_intake_shows_the_known_incident_and_offers_to_follow(desk: Desk) -> None:
    # SC-5: an admin choosing a service with an active incident sees it first
    incident = _post(desk)
    desk.open_intake("U0ALICE")
    view = desk.choose("U0ALICE", "intake_topic", "mail")
    shown = json.dumps(view["blocks"])
    assert "Known issue" in shown and "Mail delivery delayed" in shown
    assert "follow_incident" in shown
    response = desk.slack.view_action("U0ALICE", "follow_incident", value=str(incident.id))
    assert response.status == 200

    # the follow is written after the ack: look again (a new read each time) for a while
    def following() -> bool:
        with Session(desk.engine) as session:
            return core.is_following(session, incident.id or 0, "U0ALICE")

    desk.wait_until(following, "follow recorded")
    # the admin can still open a case: the form is intact
    reply = desk.submit("U0ALICE", topic="mail").json() or {}
    assert reply.get("response_action") != "errors", reply
    assert len(desk.cases()) == 1
    # a topic without an incident shows nothing
    desk.open_intake("U0ALICE")
    view = desk.choose("U0ALICE", "intake_topic", "sites")
    assert "Known issue" not in json.dumps(view["blocks"])


def test_choosing_a_topic_with_an_incident_shows_it_first_in_the_intake(desk: Desk) -> None:
    incident = _post(desk)
    reply = desk.ask("U0ALICE", "mail forwarding stopped")
    before = len(desk.standin.calls("views.open"))
    desk.slack.click_in("U0ALICE", reply, "contact_support", channel_id="C_GENERAL")
    desk.standin.wait_for("views.open", count=before + 1)
    view = desk.choose("U0ALICE", "intake_topic", "mail")
    ids = [b.get("block_id") for b in view["blocks"]]
    assert ids.index(f"health_notice_{incident.id}") == ids.index("topic") + 1
    assert "follow_incident" in _action_ids(view["blocks"])
    before = len(desk.standin.calls("views.update"))
    desk.slack.click_view_button("U0ALICE", "follow_incident", str(incident.id))
    desk.standin.wait_for("views.update", count=before + 1)
    view = desk.standin.open_view("U0ALICE")
    assert view is not None and "You will get updates by DM" in json.dumps(view["blocks"])
    view = desk.choose("U0ALICE", "intake_severity", "C")  # rebuilt: still says so
    assert "You follow this incident" in json.dumps(view["blocks"])
    assert "follow_incident" not in _action_ids(view["blocks"])
    view = desk.choose("U0ALICE", "intake_topic", "sites")  # no incident there
    assert "health_notice" not in json.dumps(view["blocks"])
    response = desk.submit("U0ALICE", topic="mail", severity="C")  # still opens a case
    assert response.status == 200 and "errors" not in response.body, response.body
    assert len(desk.cases()) == 1

    core.update_incident(desk.engine, incident.id or 0, LEAD, "Fix <!channel>", desk.clock.now())
    desk.service.desk.delivery.deliver_pending()
    dm = json.dumps(desk.standin.messages(desk.standin.dm_channel("U0ALICE")))
    assert "Fix &lt;!channel&gt;" in dm and "<!channel>" not in dm
    assert {m.status for m in _health_notices(desk)} == {"sent"}
