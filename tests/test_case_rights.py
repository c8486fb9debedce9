"""Who may act on a case: support staff are agents and leads outside every customer
organisation (a customer with a staff role is refused, not let into other organisations'
cases), and a requester who has left their organisation's admins can no longer act on
their old cases (SC-1)."""

from __future__ import annotations

import json
from typing import Any

from chatops.db import transaction
from chatops.directory import find_person
from tests.conftest import Desk


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _give_frank_a_staff_role(desk: Desk) -> None:
    """A customer's person stored with a staff role (the roster refuses it now; a row from
    before that, or edited by hand): treated as *not* staff (fail closed)."""
    with transaction(desk.engine) as session:
        frank = find_person(session, "U0FRANK")
        assert frank is not None
        frank.roles = ["global_admin", "lead"]
        session.add(frank)


# --- organisation isolation: a staff role does not make a customer staff ---------------


def test_customer_with_a_staff_role_cannot_claim_another_organisations_case(desk: Desk) -> None:
    contoso = desk.open_case("U0ALICE", title="Contoso mail down")
    _give_frank_a_staff_role(desk)
    # the fail-closed rule holds for reading: Frank does not see Contoso's case ...
    assert "No case" in _text(desk.ask("U0FRANK", f"case {contoso.number}"))
    # ... but a Claim click (buttons are visible to anyone in the channel, or forged) takes it
    desk.press("U0FRANK", contoso, "claim_case")
    desk.settle()
    stored = desk.fresh(contoso)
    assert stored.assignee_id is None, "a Fabrikam admin became the owner of Contoso's case"
    assert stored.status == "new"


def test_customer_with_a_staff_role_cannot_resolve_another_organisations_case(
    desk: Desk,
) -> None:
    contoso = desk.open_case("U0ALICE", title="Contoso mail down")
    _give_frank_a_staff_role(desk)
    desk.press("U0FRANK", contoso, "case_resolve")
    desk.settle()
    opened = [
        c for c in desk.standin.calls("views.open") if c.args["view"]["callback_id"] != "intake"
    ]
    if opened:  # the Resolve modal was opened for him: submit it
        desk.submit_modal("U0FRANK", text="closing this, not my problem")
        desk.settle()
    assert desk.fresh(contoso).status == "new", "a Fabrikam admin resolved Contoso's case"


# --- a requester who is no longer an admin acts on no case (SC-1) ---------------------


def test_a_retired_requester_cannot_reopen_a_case(desk: Desk) -> None:
    case = desk.open_case("U0ALICE", title="Forwarding stopped")
    desk.press("U0AGENT1", case, "case_resolve")
    desk.submit_modal("U0AGENT1", text="Forwarding rule fixed.")
    dm = desk.standin.dm_channel("U0ALICE")
    resolved = desk.standin.wait_for(
        "chat.postMessage",
        lambda c: c.args["channel"] == dm and "case_reopen" in _text(c.args),
    )[0]
    # Alice leaves Contoso: the next roster load keeps her row without roles (README: she
    # "can no longer open, see or work cases")
    with transaction(desk.engine) as session:
        alice = find_person(session, "U0ALICE")
        assert alice is not None
        alice.roles = []
        alice.phone = None
        session.add(alice)
    assert "No case" in _text(desk.ask("U0ALICE", f"case {case.number}"))  # cannot see it
    message = desk.standin.message(dm, resolved.response["ts"])
    desk.slack.click_in("U0ALICE", message, "case_reopen", channel_id=dm, is_ephemeral=False)
    desk.standin.wait_for("response_url")
    desk.settle()
    assert desk.fresh(case).status == "resolved", "a former admin reopened the case"
