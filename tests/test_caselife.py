"""Working a case through the front door: replies vs notes, the requester's replies relayed
once, awaiting customer, severity change, resolve + survey, reopen, auto-close, case view."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.worker import tick
from tests.conftest import TRIAGE, Desk, posts

WED_10 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def _dm_texts(desk: Desk, user: str) -> str:
    channel = desk.standin.dm_channel(user)
    return json.dumps(
        [c.args for c in desk.standin.calls("chat.postMessage") if c.args["channel"] == channel]
    )


def _thread_texts(desk: Desk) -> str:
    return json.dumps(
        [
            c.args
            for c in desk.standin.calls("chat.postMessage")
            if c.args["channel"] == TRIAGE and c.args.get("thread_ts")
        ]
    )


def _claimed_case(desk: Desk, **values):  # type: ignore[no-untyped-def]
    case = desk.open_case("U0ALICE", **values)
    desk.press("U0AGENT1", case, "claim_case")
    desk.standin.wait_for("chat.update")
    return case


def _answered_sev_a(desk: Desk, reply: str):  # type: ignore[no-untyped-def]
    """Alice's Sev A case, claimed by Dana, who has replied `reply` to her."""
    case = _claimed_case(
        desk, severity="A", business_impact="Nobody can send mail", available_contact="Alice"
    )
    desk.press("U0AGENT1", case, "case_reply")
    desk.submit_modal("U0AGENT1", text=reply)
    desk.settle()
    return case


def test_reply_reaches_the_requester_and_stops_the_clock(desk: Desk) -> None:
    case = _claimed_case(desk)
    desk.press("U0AGENT1", case, "case_reply")
    desk.submit_modal("U0AGENT1", text="Please check the <forwarding> rule & tell us.")
    desk.standin.wait_for(
        "chat.postMessage",
        lambda c: (
            "Please check" in json.dumps(c.args)
            and c.args.get("thread_ts")
            and c.args["channel"] == desk.standin.dm_channel("U0ALICE")
        ),
    )
    desk.standin.wait_for(  # the thread post is delivered on its own lane, after the ack
        "chat.postMessage",
        lambda c: c.args["channel"] == TRIAGE and "replied to the requester" in json.dumps(c.args),
    )
    dm = _dm_texts(desk, "U0ALICE")
    assert "Please check the &lt;forwarding&gt; rule &amp; tell us." in dm
    assert "replied to the requester" in _thread_texts(desk)
    [stored] = desk.cases()
    assert stored.first_responded_at == WED_10 and stored.status == "in_progress"
    assert [e.kind for e in desk.events() if e.kind == "first_response"] == ["first_response"]
    assert desk.events("first_response")[0].detail["on_time"] is True
    tick(desk.service.desk, WED_10 + timedelta(days=2))  # past the due: no breach any more
    assert [m for m in desk.outbox() if m.kind.startswith("sla.")] == []


def test_note_stays_internal(desk: Desk) -> None:
    case = _claimed_case(desk)
    desk.press("U0AGENT2", case, "case_note")
    desk.submit_modal("U0AGENT2", text="Customer's tenant looks misconfigured")
    desk.standin.wait_for("chat.postMessage", lambda c: "Internal note" in json.dumps(c.args))
    assert "misconfigured" in _thread_texts(desk)
    assert "misconfigured" not in _dm_texts(desk, "U0ALICE")
    [stored] = desk.cases()
    assert stored.first_responded_at is None  # a note is not a response
    # the case view: agents see the note in the timeline; the requester not even that one
    # was written
    assert "note by" in json.dumps(desk.ask("U0AGENT1", f"case {case.number}"))
    admin_view = json.dumps(desk.ask("U0ALICE", f"case {case.number}"))
    assert case.number in admin_view and "note" not in admin_view.lower()


def test_awaiting_customer_pauses_and_a_reply_resumes_once(desk: Desk) -> None:
    case = _claimed_case(desk)
    # SC-17: the first response comes before waiting on the requester
    desk.press("U0AGENT1", case, "case_reply")
    desk.submit_modal("U0AGENT1", text="Could you send the message headers?")
    desk.settle()
    desk.press("U0AGENT1", case, "case_await")
    desk.standin.wait_for(
        "chat.postMessage", lambda c: "waiting for your answer" in json.dumps(c.args)
    )
    # The notice commits with the status and the clock's pause: once it is out, all are.
    [stored] = desk.cases()
    assert stored.status == "awaiting_customer" and stored.first_response_due is None
    assert stored.sla_paused and stored.first_responded_at == WED_10
    desk.clock.advance(timedelta(hours=2))
    channel = desk.standin.dm_channel("U0ALICE")
    first = desk.slack.message(
        "U0ALICE", channel, "Here are the headers", thread_ts=(stored.requester_thread_ts)
    )
    assert first.status == 200
    desk.standin.wait_for(
        "chat.postMessage", lambda c: "Here are the headers" in json.dumps(c.args)
    )
    [relayed_case] = desk.cases()  # the relay, the status and the resumed clock: one commit
    assert relayed_case.status == "in_progress" and not relayed_case.sla_paused
    retry = desk.slack.event(first.sent["event"], retry_num=1, event_id=first.event_id)
    assert retry.status == 200
    desk.slack.message("U0CARL", channel, "not the requester", thread_ts="1.2")
    desk.settle()  # events are acked before their listener runs: let the retry be handled
    [stored] = desk.cases()
    assert stored.status == "in_progress" and not stored.sla_paused
    # answered before the pause: nothing is due again after it (how a pause moves an open
    # due is in tests/test_case_clock.py)
    assert stored.first_response_due is None and stored.first_responded_at == WED_10
    assert [e.kind for e in desk.events() if e.kind.startswith("clock_")] == [
        "clock_paused",
        "clock_resumed",
    ]
    relayed = [
        c
        for c in desk.standin.calls("chat.postMessage")
        if "Here are the headers" in json.dumps(c.args)
    ]
    assert len(relayed) == 1  # Slack's retry of the same event is not relayed twice
    assert len(desk.events("customer_replied")) == 1


def test_change_severity_from_the_card(desk: Desk) -> None:
    case = _claimed_case(desk)
    desk.press("U0AGENT1", case, "case_severity")
    reply = desk.submit_modal("U0AGENT1", text="", severity="A")
    assert reply["response_action"] == "errors" and "reason" in json.dumps(reply)
    reply = desk.submit_modal("U0AGENT1", text="many users now", severity="A")
    [stored] = desk.cases()
    assert stored.severity == "A"
    assert stored.first_response_due == WED_10 + timedelta(hours=1)
    [event] = desk.events("severity_changed")
    assert event.detail["reason"] == "many users now"


def test_resolve_survey_once_reopen(desk: Desk) -> None:
    case = _claimed_case(desk)
    desk.press("U0AGENT1", case, "case_resolve")
    desk.submit_modal("U0AGENT1", text="Rule fixed; forwarding works again.")
    channel = desk.standin.dm_channel("U0ALICE")
    call = desk.standin.wait_for("chat.postMessage", lambda c: "is resolved" in json.dumps(c.args))[
        0
    ]
    resolved = desk.standin.message(channel, call.response["ts"])
    assert "Rule fixed" in json.dumps(resolved)
    # someone else cannot rate; the requester rates once; a second rating is kept as first
    # (each click's rating is written after its ack: the next click waits for its answer)
    desk.slack.click_in("U0CARL", resolved, "survey_rate_5", channel_id=channel, is_ephemeral=False)
    desk.standin.wait_for("response_url", count=1)
    desk.slack.click_in(
        "U0ALICE", resolved, "survey_rate_4", channel_id=channel, is_ephemeral=False
    )
    desk.standin.wait_for("response_url", count=2)
    desk.slack.click_in(
        "U0ALICE", resolved, "survey_rate_1", channel_id=channel, is_ephemeral=False
    )
    answers = [json.dumps(c.args) for c in desk.standin.wait_for("response_url", count=3)]
    assert "not a case of yours" in answers[0]  # as for a case that does not exist
    assert "Thank you for rating" in answers[1]
    assert "already rated" in answers[2]
    from sqlmodel import Session, select

    from models import SurveyAnswer

    with Session(desk.engine) as session:
        [answer] = session.exec(select(SurveyAnswer)).all()
    assert answer.rating == 4
    # what the requester said is shown to support in the case view, not to the requester
    assert "*Survey:* 4/5" in json.dumps(desk.ask("U0AGENT1", f"case {case.number}"))
    assert "Survey" not in json.dumps(desk.ask("U0ALICE", f"case {case.number}"))
    desk.slack.click_in("U0ALICE", resolved, "case_reopen", channel_id=channel, is_ephemeral=False)
    desk.standin.wait_for("response_url", count=4)
    [stored] = desk.cases()
    assert stored.status == "in_progress"


def test_resolved_cases_close_after_the_policy_days(desk: Desk) -> None:
    case = _claimed_case(desk)
    desk.press("U0AGENT1", case, "case_resolve")
    desk.submit_modal("U0AGENT1", text="Done.")
    tick(desk.service.desk, WED_10 + timedelta(days=4))
    assert desk.cases()[0].status == "resolved"
    tick(desk.service.desk, WED_10 + timedelta(days=5, minutes=1))
    assert desk.cases()[0].status == "closed"
    from chatops.cases import lifecycle

    try:
        lifecycle.reopen(desk.engine, case.id, "U0ALICE", desk.clock.now(), desk.service.rules)
    except lifecycle.CaseActionRefused as exc:
        assert "closed" in str(exc)
    else:
        raise AssertionError("a closed case reopened")
    # a reply to it says so, without sending the agent to reopen it
    try:
        lifecycle.reply(desk.engine, case.id, "U0AGENT1", "one more thing", desk.clock.now())
    except lifecycle.CaseActionRefused as exc:
        assert "is closed, so you cannot reply" in str(exc) and "reopen it" not in str(exc)
    else:
        raise AssertionError("a reply to a closed case was taken")


def test_non_agent_cannot_work_a_case(desk: Desk) -> None:
    case = desk.open_case("U0ALICE")
    for action in ("case_reply", "case_note", "case_await", "case_resolve", "case_severity"):
        desk.press("U0ALICE", case, action)
    answers = desk.standin.wait_for("response_url", count=5)
    assert all("Only support agents" in json.dumps(a.args) for a in answers)
    assert desk.standin.calls("views.open")[-1].args["view"]["callback_id"] == "intake"
    [stored] = desk.cases()
    assert stored.status == "new"


def test_case_view_is_scoped(desk: Desk) -> None:
    case = _claimed_case(desk)
    for user in ("U0AGENT2", "U0BILL"):  # an agent; an admin of the same organisation
        body = json.dumps(desk.ask(user, f"case {case.number}"))
        assert "CS-00001" in body and "Timeline" in body and "claimed" in body
    for user in ("U0FRANK", "U0CARL", "U0STRANGER"):  # other org; non-admin; unknown
        body = json.dumps(desk.ask(user, "case CS-00001"))
        assert "No case CS-00001 that you can see" in body
    assert "No case CS-00999 that you can see" in json.dumps(desk.ask("U0AGENT1", "case 999"))


def _case_with_dm_thread(desk: Desk):  # type: ignore[no-untyped-def]
    desk.open_case("U0ALICE")
    channel = desk.standin.dm_channel("U0ALICE")
    desk.standin.wait_for(
        "chat.postMessage",
        lambda c: c.args["channel"] == channel and "is open" in json.dumps(c.args),
    )

    def stored():  # type: ignore[no-untyped-def]
        [fresh] = desk.cases()
        return fresh if fresh.requester_thread_ts else None

    return desk.wait_until(stored, "the requester's DM thread is recorded"), channel


def _dm_event(desk: Desk, case, channel: str, text: str, **fields) -> dict:  # type: ignore[no-untyped-def]
    """A `message` event in the requester's case thread, as Slack sends it with `fields`
    (a subtype and what comes with it)."""
    stored = desk.standin.add_message(
        channel, text, user="U0ALICE", thread_ts=case.requester_thread_ts
    )
    return {
        "type": "message",
        "channel": channel,
        "channel_type": "im",
        "user": "U0ALICE",
        "text": text,
        "ts": stored["ts"],
        "thread_ts": case.requester_thread_ts,
        **fields,
    }


def _relayed(desk: Desk, text: str) -> list:  # type: ignore[type-arg]
    return [c for c in posts(desk.standin, TRIAGE) if text in json.dumps(c.args)]


def test_a_reply_with_a_file_is_relayed_once_with_the_file_named(desk: Desk) -> None:
    # A reply with a screenshot arrives with subtype `file_share`: its words reach support
    # with the file's name and link (escaped like all user text), and a retry of the same
    # event is not relayed again.
    case, channel = _case_with_dm_thread(desk)
    event = _dm_event(
        desk,
        case,
        channel,
        "Screenshot of the bounce attached",
        subtype="file_share",
        files=[
            {
                "id": "F0SHOT",
                "name": "<!channel> bounce.png",
                "mimetype": "image/png",
                "permalink": "https://contoso.slack.com/files/U0ALICE/F0SHOT/bounce.png",
            }
        ],
        upload=False,
        display_as_bot=False,
    )
    first = desk.slack.event(event)
    assert first.status == 200
    desk.settle()
    assert desk.slack.event(first.sent["event"], retry_num=1, event_id=first.event_id).status == 200
    desk.settle()
    [relayed] = _relayed(desk, "Screenshot of the bounce attached")
    shown = json.dumps(relayed.args)
    assert "bounce.png" in shown and "F0SHOT/bounce.png" in shown
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown
    assert len(desk.events("customer_replied")) == 1


def test_a_file_sent_without_words_is_relayed(desk: Desk) -> None:
    case, channel = _case_with_dm_thread(desk)
    event = _dm_event(
        desk, case, channel, "", subtype="file_share", files=[{"id": "F0LOG", "name": "smtp.log"}]
    )
    assert desk.slack.event(event).status == 200
    desk.settle()
    assert len(_relayed(desk, "smtp.log")) == 1


def test_a_reply_also_sent_to_the_conversation_is_relayed(desk: Desk) -> None:
    # "Also send to direct message" makes the thread reply a `thread_broadcast`.
    case, channel = _case_with_dm_thread(desk)
    event = _dm_event(desk, case, channel, "It fails again since 11:00", subtype="thread_broadcast")
    assert desk.slack.event(event).status == 200
    desk.settle()
    assert len(_relayed(desk, "It fails again since 11:00")) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"subtype": "message_changed"},
        {"subtype": "message_deleted"},
        {"subtype": "bot_message", "bot_id": "B0OTHER"},
        {"subtype": "file_share", "bot_id": "B0OTHER"},
        {"subtype": "thread_broadcast", "bot_id": "B0OTHER"},
        {"subtype": "channel_join"},
    ],
)
def test_edits_deletions_bots_and_system_messages_are_not_relayed(desk: Desk, fields) -> None:  # type: ignore[no-untyped-def]
    case, channel = _case_with_dm_thread(desk)
    event = _dm_event(desk, case, channel, "Not a reply to relay", **fields)
    assert desk.slack.event(event).status == 200
    desk.settle()
    assert _relayed(desk, "Not a reply to relay") == []
    assert desk.events("customer_replied") == []


@pytest.mark.postgres
def test_relay_once_on_postgres(pg_desk: Desk) -> None:
    test_awaiting_customer_pauses_and_a_reply_resumes_once(pg_desk)


@pytest.mark.postgres
def test_survey_once_on_postgres(pg_desk: Desk) -> None:
    test_resolve_survey_once_reopen(pg_desk)


def test_a_requester_now_admin_of_another_organisation_cannot_reopen(desk: Desk) -> None:
    # SC-1: a case is worked for its organisation's admins. Alice opened it as Contoso's
    # admin and has since moved to Fabrikam (an admin there): Contoso's case is no longer
    # hers to reopen from the old DM, as she can no longer see it.
    from sqlmodel import Session, select

    from chatops.db import transaction
    from chatops.directory import find_person
    from models import Organisation

    case = _claimed_case(desk)
    desk.press("U0AGENT1", case, "case_resolve")
    desk.submit_modal("U0AGENT1", text="Rule fixed.")
    channel = desk.standin.dm_channel("U0ALICE")
    call = desk.standin.wait_for("chat.postMessage", lambda c: "is resolved" in json.dumps(c.args))
    resolved = desk.standin.message(channel, call[0].response["ts"])
    desk.settle()
    with Session(desk.engine) as session:
        fabrikam = session.exec(select(Organisation).where(Organisation.name == "Fabrikam Design"))
        fabrikam_id = fabrikam.one().id
    with transaction(desk.engine) as session:
        alice = find_person(session, "U0ALICE")
        assert alice is not None and alice.organisation_id != fabrikam_id
        alice.organisation_id = fabrikam_id
        session.add(alice)
    assert "No case" in json.dumps(desk.ask("U0ALICE", f"case {case.number}"))
    desk.slack.click_in("U0ALICE", resolved, "case_reopen", channel_id=channel, is_ephemeral=False)
    [told] = desk.standin.wait_for("response_url")
    desk.settle()
    assert "admins" in json.dumps(told.args) and "open again" not in json.dumps(told.args)
    assert desk.fresh(case).status == "resolved"
    assert desk.events("status_changed")[-1].to_value == "resolved"


def _pointing_at(message: dict[str, Any], case_id: int) -> dict[str, Any]:
    """A copy of the requester's "is resolved" message whose buttons carry `case_id` (a
    forged click: Slack relays the value a client sends)."""
    forged = copy.deepcopy(message)
    for block in forged["blocks"]:
        for element in block.get("elements", []):
            if "value" in element:
                _, colon, rating = element["value"].partition(":")
                element["value"] = f"{case_id}{colon}{rating}"
    return forged


def _survey_state(desk: Desk) -> tuple[Any, ...]:
    """What a refused rating, comment or reopening must leave as it was."""
    from sqlmodel import Session, select

    from models import SurveyAnswer

    with Session(desk.engine) as session:
        answers = [(a.case_id, a.rating, a.comment) for a in session.exec(select(SurveyAnswer))]
    return (
        [(c.id, c.status, c.resolved_at) for c in desk.cases()],
        answers,
        [(e.id, e.kind) for e in desk.events()],
    )


@pytest.mark.parametrize("action", ["survey_rate_5", "survey_comment", "case_reopen"])
def test_a_requester_button_pressed_by_anyone_else_reads_as_for_no_case(
    desk: Desk, action: str
) -> None:
    # Org isolation (DESIGN): the buttons of Alice's "is resolved" DM carry her case's id.
    # Pressed by someone it is not the case of (Frank of Fabrikam, Bill, Contoso's other
    # admin, Carl, Contoso without an admin role, someone unknown), or forged to carry an
    # id no case has (by Alice too), every answer is the same: whether a case exists is
    # not told, and nothing changes.
    from tests.test_keeping_informed import _resolved_by_dana

    case, _, resolved = _resolved_by_dana(desk)
    before = _survey_state(desk)
    views_before = len(desk.standin.calls("views.open"))
    no_case = _pointing_at(resolved, case.id + 100)
    clicks = [
        (user, message)
        for user in ("U0FRANK", "U0BILL", "U0CARL", "U0STRANGER")
        for message in (resolved, no_case)
    ] + [("U0ALICE", no_case)]
    for count, (user, message) in enumerate(clicks, 1):
        where = desk.standin.dm_channel(user)
        desk.slack.click_in(user, message, action, channel_id=where, is_ephemeral=False)
        desk.standin.wait_for("response_url", count=count)
    desk.settle()
    answers = {c.args["text"] for c in desk.standin.calls("response_url")}
    assert len(answers) == 1, answers
    assert len(desk.standin.calls("views.open")) == views_before  # no comment form
    assert _survey_state(desk) == before


def test_a_comment_form_for_a_case_not_the_senders_reads_as_for_no_case(desk: Desk) -> None:
    # The comment form carries its case's id in private_metadata, which a forged
    # submission sets: another's case and a case that does not exist are refused alike.
    from sqlmodel import Session, select

    from models import SurveyAnswer
    from tests.test_hostile_shapes import _modal
    from tests.test_keeping_informed import _resolved_by_dana

    case, dm, resolved = _resolved_by_dana(desk)
    desk.slack.click_in("U0ALICE", resolved, "survey_rate_4", channel_id=dm, is_ephemeral=False)
    desk.standin.wait_for("response_url")
    desk.settle()
    values = {"text": {"text": {"type": "plain_text_input", "value": "great service"}}}
    errors = []
    for case_id in (case.id, case.id + 100):
        view = _modal("survey_comment_view", json.dumps({"case_id": case_id}), values)
        answer = desk.slack.raw_view_submission("U0FRANK", view).json() or {}
        assert answer.get("response_action") == "errors", answer
        errors.append(answer["errors"])
    assert errors[0] == errors[1], errors
    with Session(desk.engine) as session:
        [answer] = session.exec(select(SurveyAnswer)).all()
    assert (answer.rating, answer.comment) == (4, None)


def test_a_reply_while_the_worker_sweeps_gets_no_warning_for_the_answered_case(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The warning sweep finds the cases whose warning is due, then takes them one chunk at
    # a time. Dana's reply lands in between: the case is answered (SC-17), on time, and a
    # "about to miss its first-response target" for it would send the thread and Dana
    # chasing a case that needs nothing.
    import chatops.sweeps

    case = _claimed_case(desk)
    stored = desk.fresh(case)
    assert stored.sla_warn_at is not None
    real = chatops.sweeps.transaction
    replied: list[bool] = []

    def reply_first(engine):  # type: ignore[no-untyped-def]
        if not replied:
            replied.append(True)
            desk.press("U0AGENT1", case, "case_reply")
            desk.submit_modal("U0AGENT1", text="Looking at the forwarding rule now.")
            desk.settle()
            assert desk.fresh(case).first_responded_at is not None
        return real(engine)

    monkeypatch.setattr(chatops.sweeps, "transaction", reply_first)
    desk.clock.set(stored.sla_warn_at)
    tick(desk.service.desk, stored.sla_warn_at)
    assert replied, "the sweep found nothing to warn of"
    assert [m.kind for m in desk.outbox() if m.kind.startswith("sla.")] == []
    assert "about to miss" not in json.dumps([c.args for c in posts(desk.standin)])


def test_a_customer_writing_while_the_worker_sweeps_gets_no_downgrade_offered(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SC-16: the offer to lower Sev A is for a customer silent for 2 hours. The sweep finds
    # the quiet case, then takes it; Alice's message in between is the customer heard from,
    # and an offer made after it would ask the owner to lower a case whose customer answers.
    import inspect

    import chatops.sweeps

    case = _answered_sev_a(desk, "Send us the bounce, please.")
    thread = desk.wait_until(lambda: desk.fresh(case).requester_thread_ts, "DM thread")
    real = chatops.sweeps.transaction
    wrote: list[bool] = []

    def customer_first(engine):  # type: ignore[no-untyped-def]
        if not wrote and inspect.stack()[1].function == "sweep_downgrade_offers":
            wrote.append(True)
            dm = desk.standin.dm_channel("U0ALICE")
            assert desk.slack.message("U0ALICE", dm, "Bounce attached", thread_ts=thread).status
            desk.settle()
            assert desk.events("customer_replied")
        return real(engine)

    monkeypatch.setattr(chatops.sweeps, "transaction", customer_first)
    at = WED_10 + timedelta(hours=2, minutes=1)
    desk.clock.set(at)
    tick(desk.service.desk, at)
    assert wrote, "the sweep found no quiet case"
    assert [m for m in desk.outbox() if m.kind == "sev_a.downgrade_offer"] == []
    assert desk.fresh(case).downgrade_offered_at is None


def test_a_warning_slack_refused_is_not_sent_after_the_case_was_answered(desk: Desk) -> None:
    # The warning is due; Slack answers 500 to it (in the thread and to Dana), so it waits
    # for a retry. Dana replies meanwhile, on time (SC-17). When Slack is back, "about to
    # miss its first-response target" would chase a case that has its answer.
    case = _claimed_case(desk)
    desk.settle()
    stored = desk.fresh(case)
    assert stored.sla_warn_at is not None
    desk.standin.fail_next("chat.postMessage", status=500, times=2)
    desk.clock.set(stored.sla_warn_at)
    tick(desk.service.desk, stored.sla_warn_at)
    desk.settle()
    warnings = [m for m in desk.outbox() if m.kind == "sla.warning"]
    assert len(warnings) == 2 and all(m.status == "pending" for m in warnings)
    desk.press("U0AGENT1", case, "case_reply")
    desk.submit_modal("U0AGENT1", text="Looking at the forwarding rule now.")
    desk.settle()
    assert desk.fresh(case).first_responded_at is not None
    desk.run_worker(stored.sla_warn_at + timedelta(minutes=10))
    desk.settle()
    assert "about to miss" not in json.dumps([c.args for c in posts(desk.standin)])
    assert all(m.status == "sent" for m in desk.outbox()), [
        (m.kind, m.status) for m in desk.outbox() if m.status != "sent"
    ]
    assert "replied to the requester" in _thread_texts(desk)  # the reply's own post went out


def test_a_sev_a_reminder_slack_refused_is_not_sent_after_the_case_was_resolved(
    desk: Desk,
) -> None:
    # The hourly "post an update" (SC-17) for Dana's Sev A case meets a Slack 500 and waits;
    # Dana resolves the case meanwhile. Continuous effort ends at the resolve: the retry
    # must not ask her to update a customer whose case is resolved.
    case = _answered_sev_a(desk, "On it.")
    reminder_at = desk.fresh(case).next_update_reminder_at
    assert reminder_at is not None
    desk.run_worker(reminder_at - timedelta(minutes=1), step=timedelta(minutes=5))
    desk.settle()
    desk.standin.fail_next("chat.postMessage", status=500, times=1)
    desk.clock.set(reminder_at)
    tick(desk.service.desk, reminder_at)
    desk.settle()
    [reminder] = [m for m in desk.outbox() if m.kind == "sev_a.update_reminder"]
    assert reminder.status == "pending"
    forms = len(desk.standin.calls("views.open"))
    desk.press("U0AGENT1", case, "case_resolve")
    desk.standin.wait_for("views.open", count=forms + 1)
    desk.submit_modal("U0AGENT1", text="Mail flows again.")
    desk.settle()
    desk.run_worker(reminder_at + timedelta(minutes=10))
    desk.settle()
    assert "post an update" not in json.dumps([c.args for c in posts(desk.standin)])
    assert all(m.status == "sent" for m in desk.outbox())


def test_each_wait_for_the_customer_is_recorded_across_a_resolve_and_reopen(desk: Desk) -> None:
    # README (the SLA clock): each waiting stretch is recorded. Resolving a case that waits
    # for the customer ends that wait; after a reopen, the next wait is a stretch of its own.
    from sqlmodel import Session, select

    from models import CasePause

    case = _claimed_case(desk)
    desk.press("U0AGENT1", case, "case_reply")
    desk.submit_modal("U0AGENT1", text="Could you send the headers?")
    desk.settle()
    desk.press("U0AGENT1", case, "case_await")
    desk.wait_until(lambda: desk.fresh(case).status == "awaiting_customer", "awaiting")
    desk.clock.advance(timedelta(hours=1))
    resolved_at = desk.clock.now()
    forms = len(desk.standin.calls("views.open"))
    desk.press("U0AGENT1", case, "case_resolve")
    desk.standin.wait_for("views.open", count=forms + 1)
    desk.submit_modal("U0AGENT1", text="Fixed on our side.")
    desk.settle()
    assert not desk.fresh(case).sla_paused
    desk.clock.advance(timedelta(hours=1))
    desk.card_offers(case, "case_reopen")
    desk.press("U0AGENT1", case, "case_reopen")
    desk.wait_until(lambda: desk.fresh(case).status == "in_progress", "reopened")
    desk.card_offers(case, "case_await")
    desk.clock.advance(timedelta(minutes=30))
    second_wait = desk.clock.now()
    desk.press("U0AGENT1", case, "case_await")
    desk.wait_until(lambda: desk.fresh(case).status == "awaiting_customer", "awaiting again")
    desk.settle()
    with Session(desk.engine) as session:
        pauses = session.exec(select(CasePause).order_by(CasePause.id)).all()  # type: ignore[arg-type]
    assert [(p.started_at, p.ended_at) for p in pauses] == [
        (WED_10, resolved_at),
        (second_wait, None),
    ]
    assert len(desk.events("clock_paused")) == 2


@pytest.mark.postgres
def test_sweep_rechecks_under_the_lock_on_postgres(
    pg_desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    test_a_reply_while_the_worker_sweeps_gets_no_warning_for_the_answered_case(pg_desk, monkeypatch)


def _dm_guidance(desk: Desk, user: str) -> list[str]:
    channel = desk.standin.dm_channel(user)
    return [
        c.args["text"]
        for c in desk.standin.calls("chat.postMessage")
        if c.args["channel"] == channel and "I don't read messages" in json.dumps(c.args)
    ]


def test_a_message_to_the_bot_outside_a_cases_thread_is_answered_with_where_to_write(
    desk: Desk,
) -> None:
    desk.clock.set(WED_10)
    case = desk.open_case("U0ALICE")
    desk.settle()
    channel = desk.standin.dm_channel("U0ALICE")
    first = desk.slack.message("U0ALICE", channel, "hello? is anyone reading this")
    assert first.status == 200
    desk.standin.wait_for("chat.postMessage", lambda c: "I don't read" in json.dumps(c.args))
    [answer] = _dm_guidance(desk, "U0ALICE")
    assert f"To add to an open case (*{case.number}*), reply in the thread under" in answer
    assert "type `/support` and your question" in answer
    # nothing reached the case: not relayed, the clock untouched
    assert "hello? is anyone" not in _thread_texts(desk)
    assert desk.events("customer_replied") == []
    # Slack's retry of the event, and more lines within the hour: one answer
    desk.slack.event(first.sent["event"], retry_num=1, event_id=first.event_id)
    desk.slack.message("U0ALICE", channel, "hello again")
    desk.settle()
    assert len(_dm_guidance(desk, "U0ALICE")) == 1
    # an hour later it is answered again; a non-admin and an agent get their own answer
    desk.clock.advance(timedelta(hours=1))
    desk.slack.message("U0ALICE", channel, "still there?")
    desk.slack.message("U0CARL", desk.standin.dm_channel("U0CARL"), "hi")
    desk.slack.message("U0AGENT1", desk.standin.dm_channel("U0AGENT1"), "hi")
    desk.settle()
    assert len(_dm_guidance(desk, "U0ALICE")) == 2
    [carl] = _dm_guidance(desk, "U0CARL")
    assert "your organisation's admins can contact support" in carl and "CS-" not in carl
    [agent] = _dm_guidance(desk, "U0AGENT1")
    assert "Cases are worked from their cards in the triage channel" in agent
