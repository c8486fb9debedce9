"""`chatops load`: the roster file is validated whole, loaded once, and never half-loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, select

from chatops.db import create_schema, make_engine
from chatops.directory.roster import load_roster
from chatops.policy import load_policy
from chatops.yamlfile import FileError
from models import BotChannel, Organisation, Person
from tests.conftest import ROSTER, TRIAGE, Desk

RULES = load_policy()


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'roster.db'}")
    create_schema(engine)
    yield engine
    engine.dispose()


def _counts(engine) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return (
            len(session.exec(select(Organisation)).all()),
            len(session.exec(select(Person)).all()),
            len(session.exec(select(BotChannel)).all()),
        )


def test_example_loads_and_reload_changes_nothing(engine) -> None:  # type: ignore[no-untyped-def]
    first = load_roster(engine, ROSTER, RULES.policy)
    assert first.organisations_added == 3 and first.people_added == 9
    assert _counts(engine) == (3, 9, 2)
    again = load_roster(engine, ROSTER, RULES.policy)
    assert not again.changed
    assert _counts(engine) == (3, 9, 2)


def test_changed_entry_is_updated_in_place(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    load_roster(engine, ROSTER, RULES.policy)
    edited = tmp_path / "edited.yml"
    edited.write_text(ROSTER.read_text().replace("+86 10 5555 0101", "+86 10 5555 0999"))
    summary = load_roster(engine, edited, RULES.policy)
    assert summary.people_updated == 1 and summary.people_added == 0
    with Session(engine) as session:
        alice = session.exec(select(Person).where(Person.slack_user_id == "U0ALICE")).one()
        assert alice.phone == "+86 10 5555 0999"


def test_a_directory_phone_may_start_with_its_area_code_in_brackets(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The intake form offers the directory's number to confirm (SC-7) and takes the same
    # forms; caller verification ignores the brackets (SC-22).
    edited = tmp_path / "edited.yml"
    edited.write_text(ROSTER.read_text().replace("+86 10 5555 0101", "(010) 5555 0101"))
    load_roster(engine, edited, RULES.policy)
    with Session(engine) as session:
        alice = session.exec(select(Person).where(Person.slack_user_id == "U0ALICE")).one()
        assert alice.phone == "(010) 5555 0101"


BAD_FILES = {
    "unknown role": (
        "channels: {triage: C0T}\norganisations:\n  - {key: acme, name: Acme}\n"
        "people:\n  - slack_id: U0A\n    name: A\n    organisation: acme\n    roles: [admn]\n",
        "line 8: people[0].roles[0]: unknown role 'admn'",
    ),
    "unknown organisation": (
        "channels: {triage: C0T}\npeople:\n  - slack_id: U0A\n    name: A\n"
        "    organisation: nowhere\n    roles: [global_admin]\n",
        "line 5: people[0].organisation: no organisation with key 'nowhere'",
    ),
    "bad slack id": (
        "channels: {triage: C0T}\npeople:\n  - slack_id: alice\n    name: A\n",
        "line 3: people[0].slack_id: 'alice' is not a Slack user id",
    ),
    "slack id longer than its column": (  # loaded on SQLite, failed on PostgreSQL
        "channels: {triage: C0T}\npeople:\n  - slack_id: U" + "A" * 40 + "\n    name: A\n",
        "line 3: people[0].slack_id: 'U" + "A" * 40 + "' is not a Slack user id",
    ),
    "email longer than its column": (
        "channels: {triage: C0T}\npeople:\n  - slack_id: U0A\n    name: A\n"
        "    email: " + "a" * 250 + "@example.com\n",
        "line 5: people[0].email",
    ),
    "no triage channel": ("channels: {handoff: C0H}\n", "a `triage` channel is required"),
    "partner without details": (
        "channels: {triage: C0T}\norganisations:\n  - key: nw\n    name: NW\n"
        "    subscription: partner\n",
        "line 3: organisations[0]: an organisation that buys through a partner needs",
    ),
    "unknown time zone": (
        "channels: {triage: C0T}\npeople:\n  - slack_id: U0A\n    name: A\n    tz: Mars/Olympus\n",
        "line 5: people[0].tz: unknown time zone 'Mars/Olympus'",
    ),
    "customer with a staff role": (
        "channels: {triage: C0T}\norganisations:\n  - {key: acme, name: Acme}\n"
        "people:\n  - slack_id: U0A\n    name: A\n    organisation: acme\n"
        "    roles: [global_admin, lead]\n",
        "line 5: people[0]: support agents and leads belong to no customer organisation",
    ),
    "not yaml": ("channels: [triage\n", "line 2"),
    "unknown field": (
        "channels: {triage: C0T}\norganisations:\n  - {key: a, name: A, colour: red}\n",
        "line 3: organisations[0].colour: Extra inputs are not permitted",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_invalid_file_names_the_line_and_loads_nothing(engine, tmp_path: Path, case: str) -> None:  # type: ignore[no-untyped-def]
    text, expected = BAD_FILES[case]
    # a valid organisation first, so a half-load would be visible
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(FileError) as raised:
        load_roster(engine, path, RULES.policy)
    assert expected in str(raised.value)
    assert _counts(engine) == (0, 0, 0)


def test_cli_load_reports_and_exits_nonzero(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    ok = subprocess.run(
        [sys.executable, "-m", "chatops.cli", "load", str(ROSTER)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "people +9" in ok.stdout
    again = subprocess.run(
        [sys.executable, "-m", "chatops.cli", "load", str(ROSTER)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "nothing changed" in again.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text(BAD_FILES["unknown role"][0])
    failed = subprocess.run(
        [sys.executable, "-m", "chatops.cli", "load", str(bad)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 2
    assert "nothing was loaded" in failed.stderr and "line 8" in failed.stderr


# --- someone left out of a later roster ----------------------------------------------------


def _roster_without(slack_id: str, tmp_path: Path) -> Path:
    import yaml

    data = yaml.safe_load(ROSTER.read_text())
    data["people"] = [p for p in data["people"] if p["slack_id"] != slack_id]
    path = tmp_path / f"roster-without-{slack_id}.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_someone_left_out_of_the_roster_keeps_their_row_and_loses_what_it_granted(
    desk: Desk, tmp_path: Path
) -> None:
    from tests.test_verification import code_rows, enter_number

    summary = load_roster(
        desk.engine, _roster_without("U0BILL", tmp_path), desk.service.rules.policy
    )
    assert summary.people_retired == 1 and summary.changed
    with Session(desk.engine) as session:
        bill = session.exec(select(Person).where(Person.slack_user_id == "U0BILL")).one()
        assert (bill.roles, bill.phone, bill.name) == ([], None, "Bill Zhou")  # row kept
    # no longer offered a case (SC-1: admins only)
    assert "contact_support" not in json.dumps(desk.ask("U0BILL", "invoice is wrong"))
    # no longer a registered number (SC-22) nor someone a verification code goes to
    case = desk.open_case("U0ALICE")
    view = enter_number(desk, case, "+86 10 5555 0102")  # Bill's phone in the old roster
    assert "Caller verified" not in json.dumps(view)
    assert "U0BILL" not in {row.payload["user"] for row in code_rows(desk)}
    # loading the same file again changes nothing more
    again = load_roster(desk.engine, _roster_without("U0BILL", tmp_path), desk.service.rules.policy)
    assert again.people_retired == 0


def test_an_agent_left_out_of_the_roster_can_no_longer_work_cases(
    desk: Desk, tmp_path: Path
) -> None:
    import yaml

    data = yaml.safe_load(ROSTER.read_text())
    data["people"] = [p for p in data["people"] if p["slack_id"] != "U0AGENT1"]
    for rotation in data.get("rotations", []):
        rotation["members"] = [m for m in rotation["members"] if m != "U0AGENT1"]
    data["overrides"] = [
        o for o in data.get("overrides", []) if "U0AGENT1" not in (o["person"], o.get("covers"))
    ]
    path = tmp_path / "roster-without-agent1.yml"
    path.write_text(yaml.safe_dump(data))
    assert load_roster(desk.engine, path, desk.service.rules.policy).people_retired == 1
    case = desk.open_case("U0ALICE")
    card = desk.card(case)
    desk.slack.click_in("U0AGENT1", card, "claim_case", channel_id=TRIAGE, is_ephemeral=False)
    refusal = desk.standin.wait_for("chat.postEphemeral", timeout=5)[0]
    assert "Only support agents" in json.dumps(refusal.args)
    [stored] = desk.cases()
    assert stored.assignee_id is None
