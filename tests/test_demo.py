"""`chatops demo`: the desk in the terminal, driven by scripts as a person would type."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatops.demo import run_demo
from chatops.demo.render import Renderer, Style, mrkdwn, wrap

ROOT = Path(__file__).resolve().parent.parent
ROSTER = ROOT / "examples" / "workspace.yml"

# alice's form, field by field: category, topic, severity, title, description, contact
# method, then Enter twice to keep the phone and email from the directory.
FILL_SEV_B = """\
technical
mail
B
Forwarding to the shared mailbox stopped
Since Monday mail sent to sales@ is no longer forwarded.
chat


"""


def _demo(tmp_path: Path, script: str) -> tuple[int, str]:
    path = tmp_path / "demo.txt"
    path.write_text(script, encoding="utf-8")
    out = io.StringIO()
    code = run_demo(roster=ROSTER, script=path, out=out, inp=io.StringIO())
    return code, out.getvalue()


def _flat(text: str) -> str:
    """The transcript without rules (───), all runs of whitespace made one space (lines are
    wrapped to the terminal width)."""
    return " ".join(text.replace("─", " ").split())


def test_admin_opens_a_case_and_an_agent_claims_it(tmp_path: Path) -> None:
    script = (
        "# a customer admin asks, then opens a case\n"
        "/support outlook stopped forwarding mail\n"
        "press 1\n" + FILL_SEV_B + "as dana\npress 2\nquit\n"
    )
    code, transcript = _demo(tmp_path, script)
    assert code == 0
    assert "\x1b[" not in transcript  # no colours when the output is not a terminal
    before, _, after = transcript.partition("dana> press 2")
    assert after, transcript
    before, after = _flat(before), _flat(after)
    # the banner: who is who, and who you are
    assert "alice U0ALICE Alice Chen Contoso Trading Co. Global admin" in before
    assert "You are alice — Alice Chen (U0ALICE)" in before
    # the answer only alice sees, with its button numbered
    assert "only visible to you" in before and "[1] Contact support" in before
    # the form, walked field by field
    assert "Form: Contact support" in before
    assert "Expected wait — Technical" in before
    assert "now: +86 10 5555 0101 (Enter keeps it)" in before
    assert "✓ Sent; the form closed." in before
    # the confirmation DM and the card in #triage
    assert "DM to Alice Chen" in before
    assert "Your case CS-00001 is open: Forwarding to the shared mailbox stopped" in before
    assert "#triage (C0TRIAGE)" in before
    assert "CS-00001 · Sev B · Forwarding to the shared mailbox stopped" in before
    assert "Requester: @Alice Chen (Alice Chen)" in before
    assert "Owner: Unclaimed" in before
    assert "[2] Claim" in before
    # dana claims: the card shows the owner, alice is told in her DM thread
    assert "Dana Park presses [2] Claim" in after
    assert "updated message in #triage (C0TRIAGE)" in after
    assert "Owner: @Dana Park (Dana Park)" in after
    updated = after.split("updated message in #triage", 1)[1].split("DM to Alice", 1)[0]
    assert "] Claim" not in updated  # the claimed card has no Claim button any more
    assert "Reply" in updated and "Resolve" in updated  # but the working buttons
    assert "DM to Alice Chen reply in thread" in after
    assert "has your case CS-00001" in after


def test_non_admin_is_told_who_the_admins_are(tmp_path: Path) -> None:
    code, transcript = _demo(tmp_path, "as carl\n/support outlook stopped forwarding mail\ncases\n")
    assert code == 0
    flat = _flat(transcript)
    assert "You are now carl — Carl Ma (U0CARL)" in flat
    assert "Only your organisation's admins can open support cases." in flat
    assert "*admins*" not in flat  # mrkdwn rendered, not shown raw
    assert "Alice Chen (@Alice Chen)" in flat  # mentions shown by name
    assert "[1] Contact support" not in flat
    assert "No cases yet." in flat


def test_empty_title_comes_back_as_an_inline_error_and_is_asked_again(tmp_path: Path) -> None:
    fill_without_title = FILL_SEV_B.replace("Forwarding to the shared mailbox stopped\n", "\n")
    script = (
        "/support outlook stopped forwarding mail\npress 1\n"
        + fill_without_title
        + "Forwarding stopped\n"  # the title, asked again
        + "dm\n"
    )
    code, transcript = _demo(tmp_path, script)
    assert code == 0
    flat = _flat(transcript)
    assert "The form came back with problems: ✗ Title: Give the case a short title." in flat
    assert "Asking those again. Title ✗ Give the case a short title. > Forwarding stopped" in flat
    # only the title was asked again, then the case was opened
    assert flat.count("Description of the problem >") == 1
    assert "Your case CS-00001 is open: Forwarding stopped" in flat
    assert "your DMs with the bot 1 message" in flat


def test_choosing_sev_a_adds_impact_and_available_person(tmp_path: Path) -> None:
    script = (
        "/support the whole mail service is down\npress 1\n"
        "1\nmail\nA\n"  # category by number, topic by value, severity by value
        "Mail is down\n"  # title
        "Nobody can send or receive mail.\n"  # description
        "400 people cannot work.\n"  # business impact (appeared with Sev A)
        "cancel\n"  # at the available person: the form closes, nothing is sent
        "cases\n"
    )
    code, transcript = _demo(tmp_path, script)
    assert code == 0
    flat = _flat(transcript)
    assert (
        "The app updated the form — new fields: Business impact (required for Sev A), "
        "Who stays available to work with support"
    ) in flat
    assert "Business impact (required for Sev A) > 400 people cannot work." in flat
    assert "Who stays available to work with support" in flat
    assert "now: Alice Chen (Enter keeps it)" in flat  # the requester is the default
    assert "Form closed; nothing was sent." in flat
    assert "No cases yet." in flat


def test_a_script_out_of_step_with_the_form_stops_with_an_error(tmp_path: Path) -> None:
    script = "/support mail forwarding stopped\npress 1\n9\n/support help\n"
    code, transcript = _demo(tmp_path, script)
    assert code == 1
    flat = _flat(transcript)
    assert "The script is out of step with the form: `9` is not one of the choices for" in flat
    assert "Closed the form; nothing was sent." in flat
    assert "alice> /support help" not in flat  # the rest of the script is not run


def test_cli_runs_a_script_that_ends_inside_a_form(tmp_path: Path) -> None:
    script = tmp_path / "demo.txt"
    script.write_text(
        "now\nadvance 1d 2h\n/support help\n"
        "/support mail forwarding stopped\npress 1\ntechnical\n",  # ends inside the form
        encoding="utf-8",
    )
    chatops = Path(sys.executable).with_name("chatops")
    command = [str(chatops)] if chatops.exists() else [sys.executable, "-m", "chatops.cli"]
    env = {**os.environ, "NO_COLOR": "1"}
    result = subprocess.run(
        [*command, "demo", "--roster", str(ROSTER), "--script", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    flat = _flat(result.stdout)
    assert "chatops demo — the support desk, offline in your terminal" in flat
    assert "Beijing time" in flat and "The demo clock moved forward 1 d 2 h." in flat
    assert "here is what `/support` can do" in flat
    assert "Form: Contact support" in flat
    assert "The input ended with the form open: closed it; nothing was sent." in flat
    assert " INFO " not in result.stdout + result.stderr  # logging below WARNING is silenced


def test_importing_the_demo_does_not_load_slack_bolt() -> None:
    code = "import sys, chatops.demo, chatops.cli; print('slack_bolt' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"


# --- rendering -------------------------------------------------------------------------------


def _names(user_id: str) -> str | None:
    return {"U0ALICE": "Alice Chen"}.get(user_id)


def test_mrkdwn_for_the_terminal() -> None:
    plain = Style(color=False)
    text = (
        "*Hi* <@U0ALICE>, due <!date^1795000000^{date_short_pretty}|Thu 26 Nov, 10:00> — "
        "see <https://status.example|service health> &amp; `a &lt;b&gt;` <@U0NOBODY>"
    )
    assert mrkdwn(text, _names, plain) == (
        "Hi @Alice Chen, due Thu 26 Nov, 10:00 — see service health "
        "(https://status.example) & `a <b>` @U0NOBODY"
    )
    assert mrkdwn("*bold* and _it_", _names, Style(color=True)) == (
        "\x1b[1mbold\x1b[0m and \x1b[3mit\x1b[0m"
    )
    # a date token next to its own spelled-out fallback is shown once
    assert mrkdwn("by <!date^1^{time}|10:00 Beijing> (10:00 Beijing).", _names, plain) == (
        "by 10:00 Beijing."
    )


def test_blocks_for_the_terminal() -> None:
    renderer = Renderer(_names, Style(color=False), width=60)
    numbers: list[str] = []

    def sink(block: dict, element: dict) -> int:
        numbers.append(element["action_id"])
        return len(numbers)

    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "CS-1 &amp; more"}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Owner*\n<@U0ALICE>"},
                {"type": "mrkdwn", "text": "*Organisation*\nContoso"},
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "_small print_"}]},
        {"type": "divider"},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "claim",
                    "text": {"type": "plain_text", "text": "Claim"},
                },
            ],
        },
    ]
    lines = renderer.blocks(blocks, "", sink)
    assert lines[0] == "CS-1 & more"
    assert lines[1] == "─" * len("CS-1 & more")
    assert lines[2] == "Owner:        @Alice Chen"
    assert lines[3] == "Organisation: Contoso"
    assert lines[4] == "  small print"
    assert lines[5].startswith("──────")
    assert lines[6] == "[1] Claim"
    assert numbers == ["claim"]
    assert wrap("• one two three four", 12, "  ") == ["  • one two", "    three", "    four"]


def test_the_shipped_tour_runs(tmp_path: Path) -> None:
    # examples/tour.txt shows what the README promises, from a fixed start (Wed 08:40 Beijing)
    from datetime import UTC, datetime

    out = io.StringIO()
    code = run_demo(
        roster=ROSTER,
        script=ROOT / "examples" / "tour.txt",
        out=out,
        inp=io.StringIO(),
        start=datetime(2026, 11, 25, 0, 40, tzinfo=UTC),
    )
    transcript = _flat(out.getvalue())
    assert code == 0, transcript[-2000:]
    assert "Business impact (required for Sev A)" in transcript  # SC-18
    # the Sev A page, its escalation after 5 minutes, the acknowledgement
    assert "Paging @Eli Gomez (step 1 of 8)" in transcript
    assert "Paging @Lee Morgan (step 2 of 8)" in transcript
    assert "You acknowledged the page for CS-00001. You own the case now." in transcript
    assert "already acknowledged by @Lee Morgan" in transcript
    assert "Only your organisation's admins can open support cases" in transcript  # SC-1
    assert "Litware Partners provides your support" in transcript  # SC-3
    # the 09:00 handoff with the open work
    assert "Shift handoff — primary: @Eli Gomez (Eli Gomez) → @Dana Park (Dana Park)" in transcript
    assert "Sev A in flight (1): • CS-00001" in transcript
    billing_form = transcript.split("bill> press Contact support", 1)[1].split("Title", 1)[0]
    assert "Sev B (high)" in billing_form and "Sev A (critical)" not in billing_form  # SC-15
    # SC-17 breach and reminders; SC-16 downgrade offer and its use
    assert "CS-00001 (Sev A) missed its first-response target" in transcript
    assert "post an update to the customer" in transcript
    assert "Lowered to Sev B (SC-16" in transcript
    # the billing case's pre-breach warning, with nobody on it yet
    assert "CS-00002 (Sev B) is about to miss its first-response target" in transcript
    assert "Support hours" in transcript and "+86 400-089-0365" in transcript  # SC-19..21


def test_the_case_life_script_runs(tmp_path: Path) -> None:
    # examples/case-life.txt: service health to survey and the weekly report
    from datetime import UTC, datetime

    out = io.StringIO()
    code = run_demo(
        roster=ROSTER,
        script=ROOT / "examples" / "case-life.txt",
        out=out,
        inp=io.StringIO(),
        start=datetime(2026, 11, 25, 2, 0, tzinfo=UTC),
    )
    transcript = _flat(out.getvalue())
    assert code == 0, transcript[-2000:]
    assert "Known issue: Mail delivery delayed" in transcript  # SC-5 at intake
    assert "Help articles that may answer it" in transcript  # SC-6
    assert "Please check the forwarding rule" in transcript  # the reply reached the DM
    # alice's answer in her DM thread, relayed to the triage thread
    assert "you wrote in CS-00001's DM thread" in transcript
    assert "(requester) wrote: >The rule had expired; mail is forwarded again" in transcript
    assert "CS-00001 is resolved" in transcript
    assert "Thank you for rating this case." in transcript  # SC-23
    assert "survey answered 4 by Alice Chen" in transcript  # the timeline
    assert "All cases: 1 case · 100.0% (1/1 on time" in transcript
    assert "survey 4.00 (1)" in transcript


def test_a_start_without_an_offset_is_read_in_the_support_time_zone(tmp_path: Path) -> None:
    """As `chatops tick --at`, `report --until` and `/support oncall override`: the README's
    tour starts at 08:40 Beijing time whether or not the offset is typed."""
    script = tmp_path / "demo.txt"
    script.write_text("now\n", encoding="utf-8")
    command = [sys.executable, "-m", "chatops.cli", "demo", "--start", "2026-11-25T08:40:00"]
    result = subprocess.run(
        [*command, "--roster", str(ROSTER), "--script", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "Wed 25 Nov 2026, 00:40 UTC · Wed 25 Nov, 08:40 Beijing time" in _flat(result.stdout)


def test_messages_sent_while_a_form_stays_open_are_shown(tmp_path: Path) -> None:
    """Verify caller keeps its form open for the code while the code goes to the admins by
    DM: the agent playing every part must see that DM to read the code back."""
    script = (
        "/support outlook stopped forwarding mail\npress 1\n" + FILL_SEV_B + "as dana\n"
        "press Verify caller\n"
        "+1 555 0000\n"  # not on the organisation's profile: a code goes to the admins
        "cancel\n"  # at the code prompt
        "now\n"
    )
    code, transcript = _demo(tmp_path, script)
    assert code == 0
    form, _, after = transcript.partition("Code the caller reads back")
    assert after, transcript
    # the code DM, shown before the prompt for the code (and only once)
    assert "DM to Alice Chen" in form.split("[Check number] pressed", 1)[1]
    assert _flat(form).count("Verification code for support case CS-00001") == 3
    assert "Verification code for support case" not in after
    # the code went out: closing the form does not claim that nothing was sent
    assert "nothing was sent" not in after.split("dana> now", 1)[0]
    assert "Form closed; the last step was not sent." in after


def test_press_with_a_digit_that_is_not_a_number(tmp_path: Path) -> None:
    code, transcript = _demo(tmp_path, "press ²\npress ①\npress [3\nnow\n")
    assert code == 0, transcript
    flat = _flat(transcript)
    assert "No button labelled `²` that you can press." in flat
    assert "No button labelled `①` that you can press." in flat
    assert "There is no button [3] yet." in flat
    assert "alice> now" in flat


def test_the_clock_stays_within_dates_the_desk_can_compute(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    script = tmp_path / "demo.txt"
    script.write_text("now\n", encoding="utf-8")
    for start in (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)):
        out = io.StringIO()
        code = run_demo(roster=ROSTER, script=script, out=out, inp=io.StringIO(), start=start)
        assert code == 2, out.getvalue()
        assert "error: --start must be between 1970-01-01 and 9000-01-01" in out.getvalue()
    code, transcript = _demo(
        tmp_path, "advance 99999999d\nadvance 1000000000000000000000h\nadvance 1d\nnow\n"
    )
    assert code == 0, transcript[-2000:]
    flat = _flat(transcript)
    assert flat.count("The demo clock cannot go past 9000-01-01.") == 2
    assert "The demo clock moved forward 1 d." in flat


def test_now_says_how_far_the_clock_moved_since_the_start(tmp_path: Path) -> None:
    # with --start the demo clock is not "ahead of real time": it may be months behind it
    from datetime import UTC, datetime

    script = tmp_path / "demo.txt"
    script.write_text("advance 6m\nnow\n", encoding="utf-8")
    out = io.StringIO()
    start = datetime(2020, 11, 25, 0, 40, tzinfo=UTC)
    code = run_demo(roster=ROSTER, script=script, out=out, inp=io.StringIO(), start=start)
    assert code == 0
    flat = _flat(out.getvalue())
    assert "ahead of real time" not in flat
    assert "(6 min after the demo's start)" in flat


def test_input_that_is_not_utf8_is_read_with_replacement_characters(tmp_path: Path) -> None:
    lines = b"now\n\xff\xfe bad\n/support mail \xff is broken\nnow\n"
    script = tmp_path / "demo.txt"
    script.write_bytes(lines)
    piped = [  # a pipe, decoded strictly (a UTF-8 locale) or with surrogates (the C locale)
        io.TextIOWrapper(io.BytesIO(lines), encoding="utf-8", errors=errors)
        for errors in ("strict", "surrogateescape")
    ]
    for source, inp in [(script, io.StringIO()), *((None, p) for p in piped)]:
        out = io.StringIO()
        code = run_demo(roster=ROSTER, script=source, out=out, inp=inp)
        transcript = out.getvalue()
        assert code == 0, transcript[-2000:]
        flat = _flat(transcript)
        assert "I don't know `\ufffd\ufffd`." in flat
        assert "Your question: mail \ufffd is broken" in flat
        assert flat.count("Beijing time") >= 2  # both `now`s ran


def test_a_command_given_words_it_does_not_take_says_so(tmp_path: Path) -> None:
    long_word = "x" * 5000
    code, transcript = _demo(tmp_path, f"help me\nwho am i\ntriage now\n{long_word}\n")
    assert code == 0
    flat = _flat(transcript)
    assert "I don't know `help`" not in flat and "Did you mean `help`" not in flat
    assert "`help` takes nothing after it; type just `help`." in flat
    assert "`who` takes nothing after it; type just `who`." in flat
    assert "`triage` takes nothing after it; type just `triage`." in flat
    # an unknown word is quoted shortened, not echoed whole a second time
    assert transcript.count(long_word) == 1


def test_a_terminated_demo_removes_its_database(tmp_path: Path) -> None:
    """Closing the terminal (SIGHUP) or `kill` (SIGTERM) ends the demo like `quit`: the
    throwaway database goes with it instead of piling up in the temp folder."""
    import signal
    import time

    for signum in (signal.SIGTERM, signal.SIGHUP):
        temp = tmp_path / f"tmp-{signum}"
        temp.mkdir()
        env = {**os.environ, "NO_COLOR": "1", "TMPDIR": str(temp)}
        command = [sys.executable, "-m", "chatops.cli", "demo", "--roster", str(ROSTER)]
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, env=env
        )
        try:
            deadline = time.monotonic() + 60
            while not list(temp.glob("chatops-demo-*/demo.db")):
                assert time.monotonic() < deadline, "the demo did not start"
                time.sleep(0.1)
            time.sleep(1)  # at the prompt, waiting for a line
            process.send_signal(signum)
            process.wait(timeout=30)
        finally:
            process.kill()
            process.wait()
            assert process.stdin is not None and process.stdout is not None
            process.stdin.close()
            process.stdout.close()
        assert process.returncode == 128 + signum
        assert list(temp.iterdir()) == []


def test_the_demo_sends_no_email_whatever_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The roster's addresses are examples and the demo is offline: an operator's
    CHATOPS_SMTP_URL must not make Verify caller e-mail codes from it."""
    import smtplib

    connections: list[tuple[object, ...]] = []

    class RecordingSMTP:
        def __init__(self, *args: object, **kwargs: object) -> None:
            connections.append(args)
            raise OSError("no mail from the demo")

    monkeypatch.setattr(smtplib, "SMTP", RecordingSMTP)
    monkeypatch.setenv("CHATOPS_SMTP_URL", "smtp://mail.example:25?from=desk@example.com")
    script = (
        "/support outlook stopped forwarding mail\npress 1\n" + FILL_SEV_B + "as dana\n"
        "press Verify caller\n+1 555 0000\ncancel\n"
    )
    code, transcript = _demo(tmp_path, script)
    assert code == 0
    assert "A one-time code was sent by Slack DM to its admins" in _flat(transcript)
    assert "e-mail" not in transcript
    assert connections == []
    assert os.environ["CHATOPS_SMTP_URL"] == "smtp://mail.example:25?from=desk@example.com"


def test_press_by_label_skips_buttons_gone_from_an_updated_message(tmp_path: Path) -> None:
    """Once Dana claims, the card has no Claim button: `press Claim` finds none, while
    `press 2` still plays a click on a card that was not refreshed yet."""
    script = (
        "/support outlook stopped forwarding mail\npress 1\n" + FILL_SEV_B + "as dana\n"
        "press Claim\nas eli\npress Claim\npress 2\n"
    )
    code, transcript = _demo(tmp_path, script)
    assert code == 0
    eli = _flat(transcript.split("eli> press Claim", 1)[1])
    assert eli.startswith("No button labelled `Claim` that you can press.")
    assert "Eli Gomez presses [2] Claim (a button no longer on the updated message)" in eli
    assert "CS-00001 is already claimed by @Dana Park" in eli


def test_write_in_a_cases_dm_thread_is_the_requesters_alone(tmp_path: Path) -> None:
    script = (
        "/support outlook stopped forwarding mail\npress 1\n" + FILL_SEV_B + "as dana\n"
        "write CS-00001 hello\nwrite CS-00099 hello\nwrite CS-00001\nas alice\n"
        "write CS-00001 Still broken\\nsince this morning\nquit\n"
    )
    code, transcript = _demo(tmp_path, script)
    flat = _flat(transcript)
    assert code == 0, flat[-2000:]
    assert "Only the requester writes in CS-00001's DM thread with the bot: `as alice`" in flat
    assert "There is no case CS-00099; `cases` lists them." in flat
    assert "Say which case and what to write" in flat
    relayed = flat.split("you wrote in CS-00001's DM thread", 1)[1]
    assert "#triage (C0TRIAGE)" in relayed
    assert "(requester) wrote: >Still broken >since this morning" in relayed
    assert flat.count("(requester) wrote:") == 1  # dana's attempt reached nothing


class _Terminal(io.StringIO):
    """Keyboard input at a terminal: None in `typed` is a Ctrl-D, which ends one read (the
    terminal goes on reading afterwards); after the last line every read is an end of input."""

    def __init__(self, typed: list[str | None]) -> None:
        super().__init__()
        self._typed = list(typed)
        self.reads_past_the_end = 0

    def isatty(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        if not self._typed:
            self.reads_past_the_end += 1
            assert self.reads_past_the_end < 5, "the demo keeps reading after the input ended"
            return ""
        line = self._typed.pop(0)
        return "" if line is None else line + "\n"


def _at_terminal(typed: list[str | None]) -> tuple[int, str, _Terminal]:
    terminal, out = _Terminal(typed), io.StringIO()
    code = run_demo(roster=ROSTER, out=out, inp=terminal)
    return code, out.getvalue(), terminal


def test_ctrl_d_in_a_form_closes_the_form_and_the_demo_goes_on() -> None:
    # Ctrl-D at the category: the form closes as in Slack, the prompt comes back
    ask = ["/support outlook stopped forwarding mail", "press Contact support", "technical"]
    code, transcript, terminal = _at_terminal([*ask, None, "cases", "triage", None])
    assert code == 0, transcript[-2000:]
    assert terminal.reads_past_the_end == 0  # the second Ctrl-D, at the prompt, ended it
    form, _, after = transcript.partition("Form closed; nothing was sent.")
    assert after, transcript[-2000:]
    assert "Form: Contact support" in form
    assert "The input ended" not in transcript
    after = _flat(after)
    assert after.startswith("(Ctrl-D closes a form; at the prompt it leaves the demo.) alice>")
    assert "No cases yet." in after  # nothing was stored
    assert "#triage (C0TRIAGE) 0 messages" in after and "Your case CS-" not in transcript
    assert after.endswith("Bye. The demo database and the local Slack stand-in are gone with it.")

    # input that really ends inside a form (the terminal closed): the demo still ends
    code, transcript, terminal = _at_terminal(ask[:2])
    assert code == 0, transcript[-2000:]
    assert terminal.reads_past_the_end == 2  # once in the form, once at the prompt
    flat = _flat(transcript)
    assert "Form closed; nothing was sent" in flat
    assert flat.endswith("Bye. The demo database and the local Slack stand-in are gone with it.")


def test_a_long_advance_shows_a_summary_and_a_short_one_every_message(tmp_path: Path) -> None:
    """Days of time bring dozens of notices (a year: about 800): a long advance counts them
    by kind and by place, lists the breaches and pages, and shows the last few whole."""
    from datetime import UTC, datetime

    script = tmp_path / "demo.txt"
    script.write_text(
        "/support outlook stopped forwarding mail\npress 1\n" + FILL_SEV_B + "advance 30m\n"
        "advance 10d\nnow\n",
        encoding="utf-8",
    )
    out = io.StringIO()
    start = datetime(2026, 11, 25, 0, 40, tzinfo=UTC)  # Wed 08:40 Beijing time
    code = run_demo(roster=ROSTER, script=script, out=out, inp=io.StringIO(), start=start)
    transcript = out.getvalue()
    assert code == 0, transcript[-2000:]
    short = transcript.split("alice> advance 30m", 1)[1].split("alice> advance 10d", 1)[0]
    long = transcript.split("alice> advance 10d", 1)[1].split("alice> now", 1)[0]
    # 30 minutes: the 09:00 handoff, whole, in the channel and in Dana's DMs
    assert "The demo clock moved forward 30 min." in short
    assert _flat(short).count("Shift handoff — primary: @Eli Gomez (Eli Gomez) → @Dana") == 2
    assert "while the clock moved" not in short
    # 10 days: a summary a person can read
    assert len(long.splitlines()) < 90, long
    flat = _flat(long)
    assert "The demo clock moved forward 10 d." in flat
    assert "messages while the clock moved" in flat
    assert "By kind: shift handoff" in flat
    assert "By place: #handoff (C0HANDOFF)" in flat
    assert "DM to Dana Park" in flat and "`dm dana`" in flat
    assert "SLA breach CS-00001 · Sev B · Forwarding to the shared mailbox stopped" in flat
    assert "The last 3 messages:" in flat
    assert "`advance 10d all` shows every message" in flat
    assert flat.count("Shift handoff — primary") <= 3  # only the last few in full
