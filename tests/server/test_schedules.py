"""``next_fire``: cron and RRULE schedules, time zones, and one-line errors for bad ones."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from jupyter_workflows import SpecError, load
from jupyter_workflows.server.schedules import next_fire, schedule_problem


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("* * * * *", datetime(2024, 3, 1, 10, 7, 30), datetime(2024, 3, 1, 10, 8)),
        ("* * * * *", datetime(2024, 3, 1, 10, 8), datetime(2024, 3, 1, 10, 9)),  # strictly after
        ("*/15 * * * *", datetime(2024, 3, 1, 10, 7), datetime(2024, 3, 1, 10, 15)),
        ("0 9 * * *", datetime(2024, 3, 1, 10, 0), datetime(2024, 3, 2, 9, 0)),
        ("0 9 * * 1-5", datetime(2024, 3, 1, 10, 0), datetime(2024, 3, 4, 9, 0)),  # Fri -> Mon
        ("30 2 1 * *", datetime(2024, 12, 15), datetime(2025, 1, 1, 2, 30)),
        ("@hourly", datetime(2024, 3, 1, 10, 7), datetime(2024, 3, 1, 11, 0)),
        ("@daily", datetime(2024, 3, 1, 10, 7), datetime(2024, 3, 2, 0, 0)),
        ("  0 9 * * *  ", datetime(2024, 3, 1, 8, 0), datetime(2024, 3, 1, 9, 0)),
    ],
)
def test_cron(schedule: str, after: datetime, expected: datetime) -> None:
    assert next_fire(schedule, after) == expected


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0", datetime(2024, 3, 1, 10), datetime(2024, 3, 2, 9)),
        ("RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0", datetime(2024, 3, 1, 8), datetime(2024, 3, 1, 9)),
        # Without DTSTART, anchored at midnight: even hours, quarter hours.
        ("RRULE:FREQ=HOURLY;INTERVAL=2", datetime(2024, 3, 1, 10, 30), datetime(2024, 3, 1, 12)),
        (
            "RRULE:FREQ=MINUTELY;INTERVAL=15",
            datetime(2024, 3, 1, 10, 7),
            datetime(2024, 3, 1, 10, 15),
        ),
        (
            "RRULE:FREQ=WEEKLY;BYDAY=MO;BYHOUR=6;BYMINUTE=0",
            datetime(2024, 3, 1),
            datetime(2024, 3, 4, 6),
        ),
        ("rrule:freq=daily;byhour=9;byminute=0", datetime(2024, 3, 1, 10), datetime(2024, 3, 2, 9)),
        # With DTSTART (on its own line, or in front on the same line as YAML one-liners write it).
        (
            "DTSTART:20240101T083000\nRRULE:FREQ=HOURLY;INTERVAL=3",
            datetime(2024, 3, 1, 10),
            datetime(2024, 3, 1, 11, 30),
        ),
        (
            "DTSTART:20240101T083000;RRULE:FREQ=HOURLY;INTERVAL=3",
            datetime(2024, 3, 1, 10),
            datetime(2024, 3, 1, 11, 30),
        ),
    ],
)
def test_rrule(schedule: str, after: datetime, expected: datetime) -> None:
    assert next_fire(schedule, after) == expected


def test_time_zone_of_after_is_kept() -> None:
    utc = datetime(2024, 3, 1, 10, 7, tzinfo=timezone.utc)
    assert next_fire("0 9 * * *", utc) == datetime(2024, 3, 2, 9, tzinfo=timezone.utc)
    plus2 = timezone(timedelta(hours=2))
    aware = datetime(2024, 3, 1, 10, 7, tzinfo=plus2)
    got = next_fire("RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0", aware)
    assert got == datetime(2024, 3, 2, 9, tzinfo=plus2)
    assert got.tzinfo is plus2


def test_successive_fires_chain() -> None:
    t = datetime(2024, 3, 1, 23, 58)
    fires = []
    for _ in range(4):
        t = next_fire("* * * * *", t)
        fires.append(t.strftime("%d %H:%M"))
    assert fires == ["01 23:59", "02 00:00", "02 00:01", "02 00:02"]
    t = datetime(2024, 3, 1, 7)
    fires = []
    for _ in range(3):
        t = next_fire("RRULE:FREQ=DAILY;INTERVAL=2;BYHOUR=9;BYMINUTE=0", t)
        fires.append(t.strftime("%d %H:%M"))
    assert fires == ["01 09:00", "03 09:00", "05 09:00"]


@pytest.mark.parametrize(
    ("schedule", "fragment"),
    [
        ("61 * * * *", "out of range"),
        ("* * * *", "5 fields"),
        ("0 0 * * * *", "5 fields"),
        ("every minute", "5 fields"),
        ("@sometimes", "5 fields"),
        ("", "expected a cron expression or an RRULE"),
        ("RRULE:FREQ=SOMETIMES", "FREQ"),
        ("RRULE:BYHOUR=9", "invalid schedule"),
        ("RRULE:FREQ=DAILY;UNTIL=19990101T000000", "never fires"),
    ],
)
def test_invalid_schedules_are_one_line_spec_errors(schedule: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        next_fire(schedule, datetime(2024, 3, 1))
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert schedule_problem(schedule) is not None


def test_schedule_problem_is_none_for_valid() -> None:
    assert schedule_problem("0 9 * * *") is None
    assert schedule_problem("RRULE:FREQ=DAILY") is None


def test_validate_reports_a_bad_schedule_at_its_position() -> None:
    wf = load("name: nightly\nschedule: '0 25 * * *'\ntasks:\n  a: {action: core.noop}\n")
    with pytest.raises(SpecError) as info:
        wf.validate()
    assert str(info.value).startswith("<string>:2:11: invalid schedule '0 25 * * *'")
    ok = load(
        "name: nightly\nschedule: 'RRULE:FREQ=DAILY;BYHOUR=2'\ntasks:\n  a: {action: core.noop}\n"
    )
    ok.validate()
