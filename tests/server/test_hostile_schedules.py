"""A schedule that cannot produce a next time is a validation error, never a hang (issue 11)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from jupyter_workflows.exceptions import SpecError
from jupyter_workflows.server.schedules import next_fire, schedule_problem
from jupyter_workflows.testing import run_cli

NEVER = [
    "RRULE:FREQ=MINUTELY;INTERVAL=0",  # spun validate, run and serve at 100% CPU for ever
    "RRULE:FREQ=SECONDLY;INTERVAL=0",
    "DTSTART:20240101T000000;RRULE:FREQ=HOURLY;INTERVAL=0",
    "RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",  # February 30th, searched second by second
    "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    "0 0 30 2 *",
]


@pytest.mark.parametrize("schedule", NEVER)
def test_a_schedule_that_never_fires_is_one_line(schedule: str) -> None:
    problem = schedule_problem(schedule)
    assert problem is not None and "\n" not in problem
    with pytest.raises(SpecError):
        next_fire(schedule, datetime(2030, 6, 1, 12, 0))


@pytest.mark.parametrize(
    "schedule",
    [
        "RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0",
        "RRULE:FREQ=MINUTELY;BYMONTH=12;BYMONTHDAY=25;BYHOUR=0;BYMINUTE=0",
        "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",  # rare (every ~28 years) but real
        "*/5 * * * *",
        "@yearly",
    ],
)
def test_rare_but_real_schedules_still_fire(schedule: str) -> None:
    assert schedule_problem(schedule) is None
    assert next_fire(schedule, datetime(2030, 6, 1, 12, 0)) > datetime(2030, 6, 1, 12, 0)


def test_validate_cli_refuses_interval_zero(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        'name: w\nschedule: "RRULE:FREQ=MINUTELY;INTERVAL=0"\ntasks: {t: {action: core.noop}}\n'
    )
    result = run_cli("validate", str(path), timeout=120)  # it used to never return
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{path}:2:11: "), result.stderr
    assert "INTERVAL must be at least 1" in lines[0]
