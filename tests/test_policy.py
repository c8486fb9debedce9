"""The policy file: the shipped default restates the contract; bad files stop start-up with
the path of the bad key; `chatops policy check/show`."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from chatops.policy import PolicyError, default_policy_path, load_policy

RULES = load_policy()


def test_default_targets_restate_sc17_and_sc21() -> None:
    # SC-17: A 1 hour; B 1 business day; C 3 business days.
    # SC-21 Reading: a business day is a full support day of the calendar.
    assert RULES.target_minutes("technical", "A") == 60
    assert RULES.target_minutes("technical", "B") == 15 * 60  # 09:00-24:00 (SC-19)
    assert RULES.target_minutes("technical", "C") == 3 * 15 * 60
    assert RULES.target_minutes("billing", "B") == 8 * 60  # 09:00-17:00 (SC-20)
    assert RULES.target_minutes("presales", "C") == 3 * 8 * 60


def test_sev_a_rules_sc15() -> None:
    assert RULES.severities_for("technical", has_agreement=True) == ["A", "B", "C"]
    assert RULES.severities_for("technical", has_agreement=False) == ["B", "C"]
    assert RULES.severities_for("billing", has_agreement=True) == ["B", "C"]
    assert RULES.severities_for("presales", has_agreement=True) == ["B", "C"]


def test_roles_per_category_sc2() -> None:
    assert RULES.categories_for(["billing_admin"]) == ["technical", "billing", "presales"]
    assert RULES.categories_for(["helpdesk_admin"]) == ["technical", "presales"]
    assert RULES.categories_for(["agent"]) == []
    assert RULES.is_admin(["teams_admin"]) and not RULES.is_admin(["agent", "lead"])


def test_calendars_sc19_sc20() -> None:
    sev_a = RULES.calendar_for("technical", "A")
    tech = RULES.calendar_for("technical", "B")
    billing = RULES.calendar_for("billing", "B")
    night = datetime(2026, 11, 28, 18, 0, tzinfo=UTC)  # Sun 02:00 Beijing
    assert sev_a.is_open(night)
    assert not tech.is_open(night)
    assert tech.next_opening(night) == datetime(2026, 11, 29, 1, 0, tzinfo=UTC)  # Sun 09:00
    assert billing.next_opening(night) == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # Mon
    # holidays (CN National Day) close billing; the official make-up Saturday opens it
    assert not billing.is_open(datetime(2026, 10, 5, 3, 0, tzinfo=UTC))
    assert billing.is_open(datetime(2026, 10, 10, 3, 0, tzinfo=UTC))
    assert tech.is_open(datetime(2026, 10, 5, 3, 0, tzinfo=UTC))  # every day of the year


def test_holidays_close_billing_in_later_years_too_sc20() -> None:
    # The billing calendar knew Chinese holidays only up to 2040: from 2041 a billing case
    # opened on New Year's Eve was due on New Year's Day, and National Day was a work week.
    # The `holidays` package computes them (lunar ones included) up to 2100.
    billing = RULES.calendars["business_days"]
    new_years_eve_16 = datetime(2040, 12, 31, 8, 0, tzinfo=UTC)  # Mon 16:00 Beijing
    assert RULES.first_response_due("billing", "B", new_years_eve_16) == datetime(
        2041, 1, 2, 8, 0, tzinfo=UTC
    )  # Wed 16:00: Tue 1 Jan is a holiday
    for day in (date(2041, 10, 1), date(2070, 1, 1), date(2100, 10, 1)):
        assert billing.windows_on(day) == (), day


def _write(tmp_path: Path, old: str, new: str) -> Path:
    text = default_policy_path().read_text()
    assert old in text
    path = tmp_path / "policy.yml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_operator_dates_beat_the_holiday_package_sc20(tmp_path: Path) -> None:
    """SC-20 Reading: the operator's own dates beat the `holidays` package's. A `closed_dates`
    entry closes an official make-up working day, and an `open_dates` entry still wins over
    everything, its own closures included."""
    path = _write(tmp_path, "    closed_dates: []", "    closed_dates: [2026-09-20, 2026-10-10]")
    text = path.read_text()
    assert "    open_dates: {}" in text
    reopened = '    open_dates: {2026-10-10: "10:00-12:00"}'
    path.write_text(text.replace("    open_dates: {}", reopened, 1))
    rules = load_policy(path)
    billing = rules.calendars["business_days"]
    # Sun 20 Sep is a make-up working day for National Day; this desk does not staff it
    assert not billing.is_open(datetime(2026, 9, 20, 2, 0, tzinfo=UTC))  # 10:00 Beijing
    friday_16 = datetime(2026, 9, 18, 8, 0, tzinfo=UTC)
    assert rules.first_response_due("billing", "B", friday_16) == datetime(
        2026, 9, 21, 8, 0, tzinfo=UTC
    )  # Mon 16:00, not Sun 16:00
    # Sat 10 Oct (make-up day) closed and reopened 10:00-12:00 by the operator
    assert billing.windows_on(date(2026, 10, 10)) == ((600, 720),)


@pytest.mark.parametrize(
    "hours",
    [
        'Weekdays: "09:00-17:00"',
        '{monday: "09:00-17:00", tuesday: "09:00-17:00", wednesday: "09:00-17:00", '
        'thursday: "09:00-17:00", friday: "09:00-17:00"}',
    ],
)
def test_make_up_working_days_with_any_spelling_of_weekday_hours_sc20(
    tmp_path: Path, hours: str
) -> None:
    # Day names are accepted in any case and spelled out, but official make-up working
    # days only looked for `weekdays`, `mon` or `daily`: such a file stopped start-up with
    # "official working days need weekday hours".
    old = '    hours:\n      weekdays: "09:00-17:00"'
    new = f"    hours: {hours}" if hours.startswith("{") else f"    hours:\n      {hours}"
    rules = load_policy(_write(tmp_path, old, new))
    billing = rules.calendars["business_days"]
    assert billing.windows_on(date(2026, 10, 10)) == ((540, 1020),)  # make-up Saturday
    assert billing.windows_on(date(2026, 10, 5)) == ()  # National Day


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("{minutes: 60}", "{minutes: -5}", "categories.technical.targets.A.first_response"),
        ("calendar: around_the_clock}", "calendar: moonlight}", "unknown calendar 'moonlight'"),
        (
            "timezone: Asia/Shanghai\n    always_open",
            "timezone: Mars/Base\n    always_open",
            "unknown time zone 'Mars/Base'",
        ),
        (
            "max_severity: B                      # SC-15",
            "max_severity: Z",
            "categories.billing.max_severity",
        ),
        ('weekdays: "09:00-17:00"', 'weekdays: "17:00-09:00"', "calendars"),
        # These run in real time, with no calendar to say how long a business day is: a
        # file that passed `policy check` with them made opening a Sev A case and every
        # worker pass fail.
        (
            "downgrade_after_silence: {minutes: 120}",
            "downgrade_after_silence: {business_days: 1}",
            "sev_a.downgrade_after_silence",
        ),
        (
            "sev_a_update_every: {minutes: 60}",
            "sev_a_update_every: {business_days: 1}",
            "notifications.sev_a_update_every",
        ),
        (
            "acknowledge_within: {minutes: 5}",
            "acknowledge_within: {business_days: 1}",
            "paging.acknowledge_within",
        ),
        # A 24×7 calendar never closes: dates or hours given with it were dropped without a
        # word, and an operator believed them in force.
        (
            "    always_open: true",
            "    always_open: true\n    closed_dates: [2026-12-25]",
            "remove `closed_dates` or `always_open`",
        ),
        (
            "    always_open: true",
            "    always_open: true\n    public_holidays: CN\n    hours: {daily: 09:00-17:00}",
            "remove `hours`, `public_holidays` or `always_open`",
        ),
    ],
)
def test_bad_policy_names_the_key(tmp_path: Path, old: str, new: str, expected: str) -> None:
    path = _write(tmp_path, old, new)
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert expected in str(raised.value)


def test_policy_check_and_show_cli(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "chatops.cli", "policy", "check", str(default_policy_path())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0 and "valid" in ok.stdout
    bad = _write(tmp_path, "{minutes: 60}", "{minutes: 0}")
    failed = subprocess.run(
        [sys.executable, "-m", "chatops.cli", "policy", "check", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 2
    assert "line" in failed.stderr and "first_response" in failed.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "chatops.cli", "policy", "show"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0
    assert "1 business day" in shown.stdout and "+86 400-089-0365" in shown.stdout
