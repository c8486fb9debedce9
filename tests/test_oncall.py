"""Tests for chatops.oncall: rotations, DST, overrides, and properties vs a naive reference."""

from __future__ import annotations

import time as clock
from bisect import bisect_right
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatops import oncall
from chatops.oncall import (
    DISTANT_PAST,
    Override,
    Rotation,
    Shift,
    changes_between,
    next_shift,
    on_call_at,
    parse_shift,
)

SH = ZoneInfo("Asia/Shanghai")
LON = ZoneInfo("Europe/London")
NY = ZoneInfo("America/New_York")
US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def who(rotation: Rotation, at: datetime, overrides: tuple[Override, ...] = ()) -> str | None:
    return on_call_at(rotation, overrides, at).person


def rotation(
    members: tuple[str, ...] = ("ann", "bo", "cy"),
    shift: str = "daily",
    handoff: time = time(9),
    timezone: str = "Asia/Shanghai",
    start: date = date(2025, 3, 3),  # a Monday
    name: str = "primary",
) -> Rotation:
    return Rotation(name, members, shift, handoff, timezone, start)


# --- parse_shift and validation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("daily", "daily"),
        (" Weekly ", "weekly"),
        ("12h", timedelta(hours=12)),
        ("8H", timedelta(hours=8)),
        ("36 h", timedelta(hours=36)),
        ("1h", timedelta(hours=1)),
        ("336h", timedelta(hours=336)),
    ],
)
def test_parse_shift_accepts(text: str, expected: object) -> None:
    assert parse_shift(text) == expected


@pytest.mark.parametrize("text", ["", "hourly", "0h", "337h", "1.5h", "-2h", "h", "12", "١٢h", 12])
def test_parse_shift_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="shift"):
        parse_shift(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": " "}, "name"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"timezone": ""}, "timezone"),
        ({"shift": "fortnightly"}, "'primary': shift"),
        ({"shift": "0h"}, "hours must be from 1"),
        ({"shift": "400h"}, "hours must be from 1"),
        ({"handoff": time(9, tzinfo=UTC)}, "naive time"),
        ({"handoff": "09:00"}, "handoff"),
        ({"start": datetime(2025, 3, 3)}, "start"),
        ({"members": ("ann", "")}, "members"),
        ({"members": "ann"}, "members"),
    ],
)
def test_rotation_validation(changes: dict, message: str) -> None:
    fields = {
        "name": "primary",
        "members": ("ann",),
        "shift": "daily",
        "handoff": time(9),
        "timezone": "Asia/Shanghai",
        "start": date(2025, 3, 3),
        **changes,
    }
    with pytest.raises(ValueError, match=message):
        Rotation(**fields)


def test_rotation_normalises_members_shift_and_fold() -> None:
    rot = Rotation("primary", ["ann", "bo"], " 12H ", time(9, fold=1), "UTC", date(2025, 1, 1))  # type: ignore[arg-type]
    assert rot.members == ("ann", "bo")
    assert rot.shift == "12h"
    assert rot.handoff.fold == 0
    assert rot == Rotation("primary", ("ann", "bo"), "12h", time(9), "UTC", date(2025, 1, 1))
    hash(rot)


def test_empty_members_allowed() -> None:
    assert rotation(members=()).members == ()


def test_override_validation() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Override("primary", "bo", datetime(2025, 3, 4, 18), sh(2025, 3, 5, 9))
    with pytest.raises(ValueError, match="end after it starts"):
        Override("primary", "bo", sh(2025, 3, 4, 18), sh(2025, 3, 4, 18))
    # Same instant in another zone is still "not after".
    with pytest.raises(ValueError, match="end after it starts"):
        Override("primary", "bo", sh(2025, 3, 4, 18), utc(2025, 3, 4, 10))
    with pytest.raises(ValueError, match="person"):
        Override("primary", "", sh(2025, 3, 4, 18), sh(2025, 3, 5, 9))
    with pytest.raises(ValueError, match="rotation"):
        Override("", "bo", sh(2025, 3, 4, 18), sh(2025, 3, 5, 9))


def test_naive_instants_rejected() -> None:
    rot = rotation()
    naive = datetime(2025, 3, 4, 9)
    with pytest.raises(ValueError, match="timezone-aware"):
        on_call_at(rot, [], naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_shift(rot, [], naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        changes_between(rot, [], naive, sh(2025, 3, 5))
    with pytest.raises(ValueError, match="timezone-aware"):
        changes_between(rot, [], sh(2025, 3, 5), naive)
    with pytest.raises(ValueError, match="before start"):
        changes_between(rot, [], sh(2025, 3, 5), sh(2025, 3, 4))
    with pytest.raises(TypeError):
        on_call_at(rot, [], date(2025, 3, 4))  # type: ignore[arg-type]


# --- plain rotations ------------------------------------------------------------------------


def test_daily_shanghai_handoff_at_nine_and_cycling() -> None:
    rot = rotation()
    assert who(rot, sh(2025, 3, 3, 9)) == "ann"
    assert who(rot, sh(2025, 3, 4, 8, 59)) == "ann"
    assert who(rot, sh(2025, 3, 4, 8, 59, 59, 999999)) == "ann"
    assert who(rot, sh(2025, 3, 4, 9)) == "bo"
    assert who(rot, sh(2025, 3, 5, 8, 59)) == "bo"
    assert who(rot, sh(2025, 3, 5, 9)) == "cy"
    assert who(rot, sh(2025, 3, 6, 9)) == "ann"
    assert who(rot, sh(2025, 3, 6, 23, 59)) == "ann"
    assert who(rot, sh(2025, 3, 7, 0, 30)) == "ann"  # after local midnight, before handoff
    shift = on_call_at(rot, [], sh(2025, 3, 4, 9))
    assert shift == Shift("primary", "bo", utc(2025, 3, 4, 1), utc(2025, 3, 5, 1), False)
    assert shift.starts_at.tzinfo is UTC
    assert next_shift(rot, [], sh(2025, 3, 4, 8, 59)) == shift
    assert [
        (t, a.person, b.person)
        for t, a, b in changes_between(rot, [], sh(2025, 3, 4), sh(2025, 3, 6, 9))
    ] == [
        (utc(2025, 3, 4, 1), "ann", "bo"),
        (utc(2025, 3, 5, 1), "bo", "cy"),
        (utc(2025, 3, 6, 1), "cy", "ann"),  # a change exactly at `end` is included
    ]
    # ... and one exactly at `start` is not.
    assert [t for t, _, _ in changes_between(rot, [], sh(2025, 3, 4, 9), sh(2025, 3, 5, 8))] == []
    assert changes_between(rot, [], sh(2025, 3, 4, 9), sh(2025, 3, 4, 9)) == []


def test_weekly() -> None:
    rot = rotation(shift="weekly", handoff=time(10))
    assert who(rot, sh(2025, 3, 3, 10)) == "ann"
    assert who(rot, sh(2025, 3, 9, 23)) == "ann"
    assert who(rot, sh(2025, 3, 10, 9, 59)) == "ann"
    assert who(rot, sh(2025, 3, 10, 10)) == "bo"
    assert who(rot, sh(2025, 3, 17, 10)) == "cy"
    assert who(rot, sh(2025, 3, 24, 10)) == "ann"
    shift = on_call_at(rot, [], sh(2025, 3, 12))
    assert (shift.starts_at, shift.ends_at) == (utc(2025, 3, 10, 2), utc(2025, 3, 17, 2))


def test_weekly_across_dst_is_167_hours() -> None:
    rot = rotation(shift="weekly", timezone="Europe/London", start=date(2025, 3, 24))
    shift = on_call_at(rot, [], utc(2025, 3, 26))
    assert shift.ends_at - shift.starts_at == timedelta(hours=167)
    assert shift.ends_at.astimezone(LON).time() == time(9)


def test_custom_12h_and_36h() -> None:
    twelve = rotation(shift="12h")
    assert who(twelve, sh(2025, 3, 3, 9)) == "ann"
    assert who(twelve, sh(2025, 3, 3, 20, 59)) == "ann"
    assert who(twelve, sh(2025, 3, 3, 21)) == "bo"
    assert who(twelve, sh(2025, 3, 4, 9)) == "cy"
    assert who(twelve, sh(2025, 3, 4, 21)) == "ann"
    assert on_call_at(twelve, [], sh(2025, 3, 4, 22)).ends_at == utc(2025, 3, 5, 1)
    long = rotation(shift="36h")
    assert who(long, sh(2025, 3, 4, 20)) == "ann"
    assert who(long, sh(2025, 3, 4, 21)) == "bo"
    assert who(long, sh(2025, 3, 6, 9)) == "cy"


def test_london_daily_keeps_nine_local_across_both_dst_changes() -> None:
    rot = rotation(members=("ann", "bo"), timezone="Europe/London", start=date(2025, 1, 1))
    spring = on_call_at(rot, [], datetime(2025, 3, 29, 12, tzinfo=LON))
    assert spring.ends_at - spring.starts_at == timedelta(hours=23)
    autumn = on_call_at(rot, [], datetime(2025, 10, 25, 12, tzinfo=LON))
    assert autumn.ends_at - autumn.starts_at == timedelta(hours=25)
    assert (autumn.starts_at, autumn.ends_at) == (utc(2025, 10, 25, 8), utc(2025, 10, 26, 9))
    changes = changes_between(rot, [], utc(2025, 3, 1), utc(2025, 11, 30))
    assert len(changes) == (date(2025, 11, 30) - date(2025, 3, 1)).days
    assert {t.astimezone(LON).time() for t, _, _ in changes} == {time(9)}
    lengths = {incoming.ends_at - incoming.starts_at for _, _, incoming in changes}
    assert lengths == {timedelta(hours=h) for h in (23, 24, 25)}


def test_london_custom_24h_drifts_with_dst() -> None:
    rot = rotation(members=("ann", "bo"), shift="24h", timezone="Europe/London")
    shift = on_call_at(rot, [], utc(2025, 4, 2, 12))
    assert shift.ends_at - shift.starts_at == timedelta(hours=24)
    assert shift.starts_at.astimezone(LON).time() == time(10)  # 09:00 GMT is 10:00 BST


def test_handoff_in_dst_gap_and_fold_uses_fold_zero() -> None:
    gap = rotation(handoff=time(2, 30), timezone="America/New_York", start=date(2025, 3, 8))
    saturday = on_call_at(gap, [], utc(2025, 3, 8, 12))
    assert (saturday.starts_at, saturday.ends_at) == (
        utc(2025, 3, 8, 7, 30),
        utc(2025, 3, 9, 7, 30),
    )
    assert saturday.ends_at.astimezone(NY).time() == time(3, 30)  # 02:30 does not exist that day
    sunday = on_call_at(gap, [], utc(2025, 3, 9, 12))
    assert sunday.ends_at - sunday.starts_at == timedelta(hours=23)
    fold = rotation(handoff=time(1, 30), timezone="America/New_York", start=date(2025, 11, 1))
    sunday = on_call_at(fold, [], utc(2025, 11, 2, 12))
    assert sunday.starts_at == utc(2025, 11, 2, 5, 30)  # the first 01:30 (EDT)
    assert sunday.ends_at - sunday.starts_at == timedelta(hours=25)


def test_instants_in_a_fold_are_compared_in_utc() -> None:
    hourly = rotation(
        members=("ann", "bo"), shift="1h", handoff=time(0), timezone="Europe/London",
        start=date(2025, 10, 25),
    )  # fmt: skip
    first = datetime(2025, 10, 26, 1, 30, tzinfo=LON)  # 00:30 UTC
    second = first.replace(fold=1)  # 01:30 UTC
    assert who(hourly, first) == "bo"
    assert who(hourly, second) == "ann"
    # Built from UTC: arithmetic on an aware datetime works on wall time and drops the fold.
    cover = Override("primary", "dee", utc(2025, 10, 26, 1), utc(2025, 10, 26, 2))
    assert who(hourly, first, (cover,)) == "bo"
    assert who(hourly, second, (cover,)) == "dee"


def test_before_start_nobody() -> None:
    rot = rotation()
    gap = on_call_at(rot, [], sh(2025, 3, 3, 8, 59))
    assert gap == Shift("primary", None, DISTANT_PAST, utc(2025, 3, 3, 1), False)
    assert on_call_at(rot, [], utc(1999, 1, 1)) == gap
    assert next_shift(rot, [], utc(1999, 1, 1)) == Shift(
        "primary", "ann", utc(2025, 3, 3, 1), utc(2025, 3, 4, 1), False
    )
    assert [
        (t, a.person, b.person)
        for t, a, b in changes_between(rot, [], utc(2025, 1, 1), sh(2025, 3, 3, 9))
    ] == [(utc(2025, 3, 3, 1), None, "ann")]


def test_empty_rotation_is_nobody_forever() -> None:
    rot = rotation(members=())
    nobody = Shift("primary", None, DISTANT_PAST, None, False)
    assert on_call_at(rot, [], utc(2030, 1, 1)) == nobody
    assert on_call_at(rot, [], utc(2020, 1, 1)) == nobody
    assert next_shift(rot, [], utc(2030, 1, 1)) is None
    assert changes_between(rot, [], utc(2020, 1, 1), utc(2030, 1, 1)) == []
    cover = Override("primary", "ann", utc(2030, 1, 1, 10), utc(2030, 1, 1, 12))
    assert on_call_at(rot, [cover], utc(2030, 1, 1, 9)) == Shift(
        "primary", None, DISTANT_PAST, utc(2030, 1, 1, 10), False
    )
    assert on_call_at(rot, [cover], utc(2030, 1, 1, 11)) == Shift(
        "primary", "ann", utc(2030, 1, 1, 10), utc(2030, 1, 1, 12), True
    )
    assert on_call_at(rot, [cover], utc(2030, 1, 1, 12)) == Shift(
        "primary", None, utc(2030, 1, 1, 12), None, False
    )
    assert [
        (t, a.person, b.person)
        for t, a, b in changes_between(rot, [cover], utc(2030, 1, 1), utc(2030, 1, 2))
    ] == [
        (utc(2030, 1, 1, 10), None, "ann"),
        (utc(2030, 1, 1, 12), "ann", None),
    ]


def test_one_member_rotation_is_one_endless_shift() -> None:
    rot = rotation(members=("ann",))
    shift = on_call_at(rot, [], utc(2030, 5, 5))
    assert shift == Shift("primary", "ann", utc(2025, 3, 3, 1), None, False)
    assert next_shift(rot, [], utc(2030, 5, 5)) is None
    assert changes_between(rot, [], utc(2026, 1, 1), utc(2027, 1, 1)) == []
    cover = Override("primary", "bo", utc(2026, 6, 1), utc(2026, 6, 2))
    assert next_shift(rot, [cover], utc(2026, 1, 1)) == Shift(
        "primary", "bo", utc(2026, 6, 1), utc(2026, 6, 2), True
    )
    assert on_call_at(rot, [cover], utc(2026, 7, 1)).starts_at == utc(2026, 6, 2)


def test_repeated_member_runs_merge_into_one_shift() -> None:
    rot = rotation(members=("ann", "ann", "bo"))
    shift = on_call_at(rot, [], sh(2025, 3, 4, 12))
    assert (shift.person, shift.starts_at, shift.ends_at) == (
        "ann",
        utc(2025, 3, 3, 1),
        utc(2025, 3, 5, 1),
    )
    # The run wraps round the end of the member list: bo, then ann ann.
    assert on_call_at(rot, [], sh(2025, 3, 7, 12)).ends_at == utc(2025, 3, 8, 1)
    wrap = rotation(members=("ann", "bo", "ann"))
    shift = on_call_at(wrap, [], sh(2025, 3, 6, 12))
    assert (shift.person, shift.starts_at, shift.ends_at) == (
        "ann",
        utc(2025, 3, 5, 1),
        utc(2025, 3, 7, 1),
    )
    assert [t for t, _, _ in changes_between(wrap, [], sh(2025, 3, 3), sh(2025, 3, 10))] == [
        utc(2025, 3, 3, 1), utc(2025, 3, 4, 1), utc(2025, 3, 5, 1), utc(2025, 3, 7, 1),
        utc(2025, 3, 8, 1),
    ]  # fmt: skip


def test_started_in_2020_queried_in_2030() -> None:
    members = tuple(f"U{i:02}" for i in range(7))
    rot = rotation(members=members, start=date(2020, 1, 1))
    days = (date(2030, 6, 15) - date(2020, 1, 1)).days
    assert who(rot, sh(2030, 6, 15, 8, 59)) == members[(days - 1) % 7]
    assert who(rot, sh(2030, 6, 15, 9)) == members[days % 7]
    weekly = rotation(members=members, shift="weekly", start=date(2020, 1, 1))
    assert who(weekly, sh(2030, 6, 15, 9)) == members[(days // 7) % 7]
    twelve = rotation(members=members, shift="12h", start=date(2020, 1, 1))
    assert who(twelve, sh(2030, 6, 15, 21)) == members[(2 * days + 1) % 7]


def test_cost_does_not_grow_with_the_age_of_the_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = oncall._Plan.boundary

    def counting(self: oncall._Plan, k: int) -> datetime:
        nonlocal calls
        calls += 1
        return real(self, k)

    monkeypatch.setattr(oncall._Plan, "boundary", counting)
    old = rotation(members=("ann", "bo", "cy", "dee"), start=date(1900, 1, 1))
    for shift in ("daily", "weekly", "7h"):
        rot = rotation(members=old.members, shift=shift, start=old.start)
        for at in (utc(1900, 1, 2), utc(2100, 12, 31, 23), sh(2100, 12, 31, 8, 59)):
            calls = 0
            on_call_at(rot, [], at)
            next_shift(rot, [], at)
            assert calls <= 16, (shift, at, calls)
    monkeypatch.undo()
    began = clock.perf_counter()
    rot = rotation(start=date(1900, 1, 1))
    for i in range(2000):
        on_call_at(rot, [], utc(2100, 1, 1) + i * timedelta(minutes=97))
    assert clock.perf_counter() - began < 1.0


# --- overrides ------------------------------------------------------------------------------

# Mon 3 Mar dee, Tue ann, Wed cy, Thu bo (Shanghai, 09:00).
TEAM = rotation(members=("dee", "ann", "cy", "bo"))
BO_COVERS_ANN = Override("primary", "bo", sh(2025, 3, 4, 18), sh(2025, 3, 5, 9), covers="ann")


def test_override_inside_and_at_edges() -> None:
    ovs = [BO_COVERS_ANN]
    inside = on_call_at(TEAM, ovs, sh(2025, 3, 4, 23))
    assert inside == Shift("primary", "bo", utc(2025, 3, 4, 10), utc(2025, 3, 5, 1), True)
    assert on_call_at(TEAM, ovs, sh(2025, 3, 4, 18)) == inside
    assert on_call_at(TEAM, ovs, sh(2025, 3, 5, 9) - US) == inside
    before = on_call_at(TEAM, ovs, sh(2025, 3, 4, 18) - US)
    assert before == Shift("primary", "ann", utc(2025, 3, 4, 1), utc(2025, 3, 4, 10), False)
    after = on_call_at(TEAM, ovs, sh(2025, 3, 5, 9))
    assert after == Shift("primary", "cy", utc(2025, 3, 5, 1), utc(2025, 3, 6, 1), False)
    assert next_shift(TEAM, ovs, sh(2025, 3, 4, 12)) == inside
    assert next_shift(TEAM, ovs, sh(2025, 3, 4, 23)) == after
    assert [
        (t, a.person, b.person)
        for t, a, b in changes_between(TEAM, ovs, sh(2025, 3, 4), sh(2025, 3, 6))
    ] == [
        (utc(2025, 3, 4, 1), "dee", "ann"),
        (utc(2025, 3, 4, 10), "ann", "bo"),
        (utc(2025, 3, 5, 1), "bo", "cy"),
    ]
    # Overrides of other rotations are ignored.
    other = Override("secondary", "eve", sh(2025, 3, 4), sh(2025, 3, 6))
    assert on_call_at(TEAM, [other, *ovs], sh(2025, 3, 4, 23)) == inside
    assert who(TEAM, sh(2025, 3, 4, 12), (other,)) == "ann"


def test_override_that_outlasts_the_rotation_shift_is_one_shift() -> None:
    late = Override("primary", "bo", sh(2025, 3, 4, 18), sh(2025, 3, 5, 12))
    shift = on_call_at(TEAM, [late], sh(2025, 3, 5, 10))
    assert shift == Shift("primary", "bo", utc(2025, 3, 4, 10), utc(2025, 3, 5, 4), True)
    assert next_shift(TEAM, [late], sh(2025, 3, 5, 10)) == Shift(
        "primary", "cy", utc(2025, 3, 5, 4), utc(2025, 3, 6, 1), False
    )


def test_override_for_whoever_is_on_changes_the_shift_not_the_person() -> None:
    own = Override("primary", "ann", sh(2025, 3, 4, 12), sh(2025, 3, 4, 14))
    assert on_call_at(TEAM, [own], sh(2025, 3, 4, 13)).is_override
    assert next_shift(TEAM, [own], sh(2025, 3, 4, 10)).starts_at == utc(2025, 3, 4, 4)
    changes = changes_between(TEAM, [own], sh(2025, 3, 4, 10), sh(2025, 3, 5, 10))
    assert [(t, a.person, b.person) for t, a, b in changes] == [(utc(2025, 3, 5, 1), "ann", "cy")]
    assert changes[0][1] == Shift("primary", "ann", utc(2025, 3, 4, 6), utc(2025, 3, 5, 1), False)
    # Thursday is bo's day: bo covering Wednesday night runs straight into bo's own shift.
    bo_again = Override("primary", "bo", sh(2025, 3, 5, 18), sh(2025, 3, 6, 9))
    assert next_shift(TEAM, [bo_again], sh(2025, 3, 5, 20)) == Shift(
        "primary", "bo", utc(2025, 3, 6, 1), utc(2025, 3, 7, 1), False
    )
    changes = changes_between(TEAM, [bo_again], sh(2025, 3, 5, 10), sh(2025, 3, 7, 10))
    assert [(t, a.person, b.person) for t, a, b in changes] == [
        (utc(2025, 3, 5, 10), "cy", "bo"),
        (utc(2025, 3, 7, 1), "bo", "dee"),
    ]


def test_overlapping_overrides_later_listed_wins() -> None:
    eve = Override("primary", "eve", sh(2025, 3, 4, 10), sh(2025, 3, 4, 20))
    fay = Override("primary", "fay", sh(2025, 3, 4, 12), sh(2025, 3, 4, 14))
    ovs = [eve, fay]
    assert on_call_at(TEAM, ovs, sh(2025, 3, 4, 11)) == Shift(
        "primary", "eve", utc(2025, 3, 4, 2), utc(2025, 3, 4, 4), True
    )
    assert on_call_at(TEAM, ovs, sh(2025, 3, 4, 13)) == Shift(
        "primary", "fay", utc(2025, 3, 4, 4), utc(2025, 3, 4, 6), True
    )
    assert on_call_at(TEAM, ovs, sh(2025, 3, 4, 15)) == Shift(
        "primary", "eve", utc(2025, 3, 4, 6), utc(2025, 3, 4, 12), True
    )
    changes = changes_between(TEAM, ovs, sh(2025, 3, 4, 9), sh(2025, 3, 5))
    assert [(t.astimezone(SH).hour, a.person, b.person) for t, a, b in changes] == [
        (10, "ann", "eve"),
        (12, "eve", "fay"),
        (14, "fay", "eve"),
        (20, "eve", "ann"),
    ]
    # At the inner override's edges: fay from exactly 12:00, eve again from exactly 14:00.
    assert who(TEAM, sh(2025, 3, 4, 12), tuple(ovs)) == "fay"
    assert on_call_at(TEAM, ovs, sh(2025, 3, 4, 14)).starts_at == utc(2025, 3, 4, 6)
    assert next_shift(TEAM, ovs, sh(2025, 3, 4, 13)) == Shift(
        "primary", "eve", utc(2025, 3, 4, 6), utc(2025, 3, 4, 12), True
    )
    # Listed the other way round, eve hides fay entirely.
    assert who(TEAM, sh(2025, 3, 4, 13), (fay, eve)) == "eve"
    assert len(changes_between(TEAM, [fay, eve], sh(2025, 3, 4, 9), sh(2025, 3, 5))) == 2
    # Two back-to-back overrides of one person are two shifts but one person.
    first = Override("primary", "eve", sh(2025, 3, 4, 10), sh(2025, 3, 4, 12))
    second = Override("primary", "eve", sh(2025, 3, 4, 12), sh(2025, 3, 4, 14))
    assert next_shift(TEAM, [first, second], sh(2025, 3, 4, 11)).starts_at == utc(2025, 3, 4, 4)
    assert len(changes_between(TEAM, [first, second], sh(2025, 3, 4, 9), sh(2025, 3, 5))) == 2


def test_overrides_given_in_other_zones() -> None:
    cover = Override(
        "primary", "bo", datetime(2025, 3, 4, 5, tzinfo=NY), datetime(2025, 3, 4, 6, tzinfo=NY)
    )
    assert who(TEAM, sh(2025, 3, 4, 18, 30), (cover,)) == "bo"
    assert on_call_at(TEAM, [cover], sh(2025, 3, 4, 18, 30)).starts_at == utc(2025, 3, 4, 10)


# --- properties against a naive reference ---------------------------------------------------

# Every zone's offsets are whole half hours, and handoffs, windows and overrides sit on the
# half hour, so every change lands on the 30-minute grid the brute-force scan samples.
ZONES = [
    "UTC",
    "Asia/Shanghai",
    "Europe/London",
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
]
PEOPLE = ["ann", "bo", "cy"]
STEP = timedelta(minutes=30)


@st.composite
def rotations(draw: st.DrawFn) -> Rotation:
    hours = st.integers(1, 48).map(lambda h: f"{h}h")
    return Rotation(
        name="primary",
        members=tuple(draw(st.lists(st.sampled_from(PEOPLE), max_size=4))),
        shift=draw(st.sampled_from(["daily", "weekly"]) | hours),
        handoff=time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 30]))),
        timezone=draw(st.sampled_from(ZONES)),
        start=draw(st.dates(date(2024, 1, 1), date(2026, 12, 31))),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Rotation, list[Override], datetime, datetime]:
    """A rotation, overrides, and a grid-aligned window around its start."""
    rot = draw(rotations())
    origin = datetime.combine(rot.start, time(0), tzinfo=UTC)
    low = origin + STEP * draw(st.integers(-48 * 3, 48 * 60))
    high = low + STEP * draw(st.integers(0, 48 * 6))
    overrides = []
    for _ in range(draw(st.integers(0, 4))):
        starts = low + STEP * draw(st.integers(-96, 48 * 6))
        ends = starts + STEP * draw(st.integers(1, 48 * 3))
        name = draw(st.sampled_from(["primary", "primary", "primary", "secondary"]))
        overrides.append(Override(name, draw(st.sampled_from([*PEOPLE, "dee"])), starts, ends))
    return rot, overrides, low, high


def reference_boundaries(rot: Rotation, until: datetime) -> list[datetime]:
    """Every slot start from the first one to just past `until`, by stepping one at a time."""
    tz = ZoneInfo(rot.timezone)
    out: list[datetime] = []
    if rot.shift in ("daily", "weekly"):
        step = timedelta(days=1 if rot.shift == "daily" else 7)
        day = rot.start
        while not out or out[-1] <= until:
            wall = datetime(day.year, day.month, day.day, rot.handoff.hour, rot.handoff.minute)
            out.append(wall.replace(tzinfo=tz).astimezone(UTC))
            day += step
    else:
        length = timedelta(hours=int(rot.shift[:-1]))
        wall = datetime.combine(rot.start, rot.handoff, tzinfo=tz).astimezone(UTC)
        while not out or out[-1] <= until:
            out.append(wall + len(out) * length)
    return out


def reference_person(
    rot: Rotation, overrides: list[Override], bounds: list[datetime], at: datetime
) -> str | None:
    for ov in reversed(overrides):
        if ov.rotation == rot.name and ov.starts_at <= at < ov.ends_at:
            return ov.person
    slot = bisect_right(bounds, at) - 1
    if slot < 0 or not rot.members:
        return None
    return rot.members[slot % len(rot.members)]


PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(
    scenario=scenarios(),
    # Any microsecond, or a point of the grid (where shifts start and end).
    offset=st.integers(-(10**11), 10**12)
    | st.integers(-48, 48 * 7).map(lambda n: n * 1_800_000_000),
    zone=st.sampled_from(ZONES),
    fold=st.sampled_from([0, 1]),
)
def test_on_call_at_and_next_shift_properties(
    scenario: tuple[Rotation, list[Override], datetime, datetime], offset: int, zone: str, fold: int
) -> None:
    rot, overrides, low, _high = scenario
    at = low + timedelta(microseconds=offset)
    bounds = reference_boundaries(rot, at + timedelta(days=30))
    # Ask in a random zone (and fold) to check instants are compared in UTC.
    shift = on_call_at(rot, overrides, at.astimezone(ZoneInfo(zone)).replace(fold=fold))
    assert shift == on_call_at(rot, overrides, at)
    assert shift.contains(at)
    assert shift.person == reference_person(rot, overrides, bounds, at)
    # Maximal: it is the same shift at both of its ends, and a different one just before.
    if shift.starts_at != DISTANT_PAST:
        assert on_call_at(rot, overrides, shift.starts_at) == shift
        before = on_call_at(rot, overrides, shift.starts_at - US)
        assert before != shift
        assert before.ends_at == shift.starts_at
    following = next_shift(rot, overrides, at)
    if shift.ends_at is None:
        assert following is None
        return
    assert on_call_at(rot, overrides, shift.ends_at - US) == shift
    assert following is not None
    assert following.starts_at == shift.ends_at
    assert following == on_call_at(rot, overrides, shift.ends_at)
    assert following != shift
    if shift.ends_at < bounds[-1]:
        assert following.person == reference_person(rot, overrides, bounds, shift.ends_at)


@PROPERTY_SETTINGS
@given(scenario=scenarios())
def test_changes_between_matches_a_brute_force_scan(
    scenario: tuple[Rotation, list[Override], datetime, datetime],
) -> None:
    rot, overrides, low, high = scenario
    bounds = reference_boundaries(rot, high)
    expected = []
    previous = reference_person(rot, overrides, bounds, low)
    t = low
    while t < high:
        t += STEP
        person = reference_person(rot, overrides, bounds, t)
        if person != previous:
            expected.append((t, previous, person))
        previous = person
    changes = changes_between(rot, overrides, low, high)
    assert [(t, out.person, inc.person) for t, out, inc in changes] == expected
    for t, outgoing, incoming in changes:
        assert incoming == on_call_at(rot, overrides, t)
        assert outgoing == on_call_at(rot, overrides, t - US)
        assert outgoing.ends_at == t == incoming.starts_at
    # Following next_shift from `low` finds the same person changes.
    walked = []
    shift = on_call_at(rot, overrides, low)
    while shift.ends_at is not None and shift.ends_at <= high:
        following = next_shift(rot, overrides, shift.ends_at - US)
        assert following is not None
        if following.person != shift.person:
            walked.append(following.starts_at)
        shift = following
    assert walked == [t for t, _, _ in changes]
    # Splitting the window does not lose or repeat a change.
    middle = low + (high - low) // 2
    assert (
        changes_between(rot, overrides, low, middle) + changes_between(rot, overrides, middle, high)
        == changes
    )
