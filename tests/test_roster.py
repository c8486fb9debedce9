"""`chatops load`: the roster file is validated whole, loaded once, and never half-loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from chatops.db import create_schema, make_engine
from chatops.directory.roster import load_roster
from chatops.policy import load_policy
from chatops.yamlfile import FileError
from models import BotChannel, OnCallOverride, Organisation, Person
from tests.conftest import ROSTER, TRIAGE, Desk, posts, texts
from tests.test_oncall_commands import DANA, ELI, LEE, WED_0840, _handoffs_posted

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
    "duplicate override": (  # the same start written in another offset is the same override
        "channels: {triage: C0T}\npeople:\n  - {slack_id: U0A, name: A, roles: [agent]}\n"
        "rotations:\n  - {name: p, members: [U0A], timezone: UTC, start: 2026-01-05}\n"
        "overrides:\n"
        "  - {rotation: p, person: U0A, from: '2026-11-25T09:00+08:00',\n"
        "     until: '2026-11-25T12:00+08:00'}\n"
        "  - {rotation: p, person: U0A, from: '2026-11-25T01:00Z', until: '2026-11-25T05:00Z'}\n",
        "line 9: overrides[1]: duplicate override (the same rotation, person and `from`)",
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


# --- the roster's on-call overrides: the file is what is stored, and a change is handed off --

DANAS_DAY = "Wed 25 Nov, 09:00 – Thu 26 Nov, 09:00"  # her rotation shift


def _roster_with_overrides(tmp_path: Path, *overrides: tuple[str, str]) -> Path:
    """The example roster whose only overrides are Lee covering Dana on the primary pager
    over each (from, until), Beijing time, on Wednesday 25 November 2026."""
    import yaml

    data = yaml.safe_load(ROSTER.read_text())
    data["overrides"] = [
        {
            "rotation": "primary",
            "person": "U0LEAD",
            "covers": "U0AGENT1",
            "from": f"2026-11-25T{starts}:00+08:00",
            "until": f"2026-11-25T{ends}:00+08:00",
        }
        for starts, ends in overrides
    ]
    path = tmp_path / f"roster-{len(list(tmp_path.iterdir()))}.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def _lead_loads(desk: Desk, roster: Path, tmp_path: Path) -> str:
    """The lead runs `chatops load` against the desk's database at the desk's instant."""
    from tests.test_cli_errors import _cli, _write_clock

    loaded = _cli("load", str(roster), **_write_clock(desk, tmp_path / "clock.txt"))
    assert loaded.returncode == 0, loaded.stderr
    return loaded.stdout


def _oncall_now(desk: Desk) -> str:
    """Who `/support oncall` says holds the primary pager."""
    body = json.dumps(desk.ask("U0CARL", "oncall"))
    return body.split("*primary*: ", 1)[1].split(" ", 1)[0]


def test_an_override_added_to_the_roster_file_from_earlier_today_is_handed_off_once(
    desk: Desk, tmp_path: Path
) -> None:
    """A lead who writes in the roster file that Lee has covered Dana since half an hour ago
    and loads it has changed who holds the pager: the handoff channel and Lee are told, as
    for an override added from Slack, and loading the file again tells nobody twice."""
    desk.clock.set(WED_0840)
    desk.run_worker(WED_0840 + timedelta(minutes=80), step=timedelta(minutes=5))  # 10:00
    assert _handoffs_posted(desk) == [f"primary*: {ELI} → {DANA} | {DANAS_DAY}"]
    roster = _roster_with_overrides(tmp_path, ("09:30", "12:00"))
    # the example's Christmas cover is not in this file: dropped, it has not begun
    assert "overrides +1 ~0 removed 1" in _lead_loads(desk, roster, tmp_path)
    assert _oncall_now(desk) == "<@U0LEAD>"
    desk.run_worker(WED_0840 + timedelta(minutes=90), step=timedelta(seconds=15))
    assert "nothing changed" in _lead_loads(desk, roster, tmp_path)
    desk.run_worker(WED_0840 + timedelta(minutes=100), step=timedelta(seconds=15))
    assert _handoffs_posted(desk) == [
        f"primary*: {ELI} → {DANA} | {DANAS_DAY}",
        f"primary*: {DANA} → {LEE} | Wed 25 Nov, 09:30 – Wed 25 Nov, 12:00",
    ]
    lee = desk.standin.dm_channel("U0LEAD")
    assert texts(posts(desk.standin, lee)) == ["Shift handoff: primary"]


def test_an_override_cut_short_in_the_roster_file_hands_the_pager_back(
    desk: Desk, tmp_path: Path
) -> None:
    """Lee was to cover Dana until 12:00 and went home at 09:45: the lead changes `until` in
    the roster file and loads it at 10:00. Dana holds the pager again, and she and the
    channel are told so, once; Lee's stretch is handed off again with its real end."""
    desk.clock.set(WED_0840)
    desk.run_worker(WED_0840 + timedelta(minutes=55), step=timedelta(minutes=5))  # 09:35
    _lead_loads(desk, _roster_with_overrides(tmp_path, ("09:30", "12:00")), tmp_path)
    desk.run_worker(WED_0840 + timedelta(minutes=80), step=timedelta(minutes=5))  # 10:00
    first = [
        f"primary*: {ELI} → {DANA} | {DANAS_DAY}",
        f"primary*: {DANA} → {LEE} | Wed 25 Nov, 09:30 – Wed 25 Nov, 12:00",
    ]
    assert _handoffs_posted(desk) == first
    dana = desk.standin.dm_channel("U0AGENT1")
    before = len(posts(desk.standin, dana))
    out = _lead_loads(desk, _roster_with_overrides(tmp_path, ("09:30", "09:45")), tmp_path)
    assert "overrides +0 ~1 removed 0" in out
    assert _oncall_now(desk) == "<@U0AGENT1>"
    desk.run_worker(WED_0840 + timedelta(minutes=100), step=timedelta(seconds=15))
    posted = _handoffs_posted(desk)
    assert posted[:2] == first
    assert sorted(posted[2:]) == sorted(
        [
            f"primary*: {DANA} → {LEE} | Wed 25 Nov, 09:30 – Wed 25 Nov, 09:45",
            f"primary*: {LEE} → {DANA} | Wed 25 Nov, 09:45 – Thu 26 Nov, 09:00",
        ]
    )
    assert texts(posts(desk.standin, dana)[before:]) == ["Shift handoff: primary"]


def test_an_override_taken_out_of_the_roster_file_ends_now_and_slack_ones_stay(
    desk: Desk, tmp_path: Path
) -> None:
    """The lead takes Lee's running cover out of the roster file at 10:00: it ends then (it
    did put Lee on call until then) and Dana is handed the pager. The cover a lead added from
    Slack for the afternoon is not the file's, and stays."""
    from tests.test_oncall_commands import _put_on_call

    desk.clock.set(WED_0840)
    desk.run_worker(WED_0840 + timedelta(minutes=55), step=timedelta(minutes=5))  # 09:35
    _lead_loads(desk, _roster_with_overrides(tmp_path, ("09:30", "12:00")), tmp_path)
    _put_on_call(desk, "<@U0AGENT2>", "2026-11-25T14:00", "2026-11-25T18:00")
    desk.run_worker(WED_0840 + timedelta(minutes=80), step=timedelta(minutes=5))  # 10:00
    out = _lead_loads(desk, _roster_with_overrides(tmp_path), tmp_path)
    assert "overrides +0 ~0 removed 1" in out
    assert _oncall_now(desk) == "<@U0AGENT1>"
    desk.run_worker(WED_0840 + timedelta(minutes=100), step=timedelta(seconds=15))
    posted = _handoffs_posted(desk)
    assert posted[:2] == [
        f"primary*: {ELI} → {DANA} | {DANAS_DAY}",
        f"primary*: {DANA} → {LEE} | Wed 25 Nov, 09:30 – Wed 25 Nov, 12:00",
    ]
    assert sorted(posted[2:]) == sorted(
        [
            f"primary*: {DANA} → {LEE} | Wed 25 Nov, 09:30 – Wed 25 Nov, 10:00",
            f"primary*: {LEE} → {DANA} | Wed 25 Nov, 10:00 – Wed 25 Nov, 14:00",
        ]
    )
    with Session(desk.engine) as session:
        stored = session.exec(select(OnCallOverride).order_by(OnCallOverride.id)).all()  # type: ignore[arg-type]
        assert [(o.person, o.created_by, o.ends_at) for o in stored] == [
            ("U0LEAD", "roster", WED_0840 + timedelta(minutes=80)),  # ended: on record
            ("U0AGENT2", "U0LEAD", datetime(2026, 11, 25, 10, 0, tzinfo=UTC)),
        ]
    assert "nothing changed" in _lead_loads(desk, _roster_with_overrides(tmp_path), tmp_path)
    desk.clock.set(datetime(2026, 11, 25, 6, 30, tzinfo=UTC))  # 14:30
    assert _oncall_now(desk) == "<@U0AGENT2>"
