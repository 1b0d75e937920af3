"""Schedule strings: when a workflow's ``schedule:`` fires next (a pure function).

Two kinds of schedule string are understood:

* **cron**, five fields (``minute hour day-of-month month day-of-week``) or an alias
  (``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``), via ``croniter``;
* **RRULE** (RFC 5545), a string that starts with ``RRULE:`` or ``DTSTART``, via
  ``dateutil.rrule``. Without a ``DTSTART`` the rule is anchored at midnight of the day it is
  computed from, so ``FREQ=HOURLY;INTERVAL=2`` fires at even hours and ``FREQ=MINUTELY;INTERVAL=15``
  at :00, :15, :30 and :45.

Both are read in wall-clock time, like cron: :func:`next_fire` returns a datetime in the same
time zone as ``after`` (naive in, naive out). ``spec.validate`` checks a document's schedule
with :func:`schedule_problem`; the loop that starts scheduled runs is
:class:`jupyter_workflows.server.schedules.Scheduler`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..exceptions import SpecError, first_line
from ..limits import LIMITS, hint

__all__ = ["next_fire", "schedule_problem"]

_CRON_ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)


def _is_rrule(schedule: str) -> bool:
    head = schedule.lstrip().upper()
    return head.startswith(("RRULE:", "DTSTART"))


def next_fire(schedule: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` at which ``schedule`` fires.

    Parameters
    ----------
    schedule:
        A 5-field cron expression, a cron alias such as ``@hourly``, or an RRULE string
        (``RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0``, optionally preceded by a ``DTSTART:...`` line).
    after:
        Naive or time-zone aware; the result is in the same time zone.

    Raises
    ------
    SpecError
        One line, when the schedule does not parse or never fires again.
    """
    if not isinstance(schedule, str) or not schedule.strip():
        raise SpecError(f"invalid schedule {schedule!r}: expected a cron expression or an RRULE")
    text = schedule.strip()
    if _is_rrule(text):
        return _next_rrule(text, after)
    return _next_cron(text, after)


def schedule_problem(schedule: str) -> str | None:
    """Why ``schedule`` is invalid (one line), or None when it parses and fires at least once."""
    try:
        next_fire(schedule, datetime(2000, 1, 1))
    except SpecError as exc:
        return str(exc)
    return None


class _SearchTooLong(Exception):
    """The next-fire search ran past ``LIMITS.schedule_search_steps``."""


def _bounded(search: Callable[[], Any], text: str) -> Any:
    """Run ``search`` (croniter's or dateutil's next-time search) for at most
    ``LIMITS.schedule_search_steps`` Python steps, else a one-line SpecError.

    Neither library bounds its search: ``RRULE:FREQ=MINUTELY;INTERVAL=0`` yields the same time for
    ever, and a rule that matches no date (February 30th) walks up to the year 9999. They are
    counted with a trace function (an exception raised from it surfaces in the traced frame), so
    a bad schedule is an error after a fraction of a second, in ``validate``, ``run`` and ``serve``.
    """
    limit = LIMITS.schedule_search_steps
    steps = 0

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        nonlocal steps
        steps += 1
        if steps > limit:
            raise _SearchTooLong
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        return search()
    except _SearchTooLong:
        raise SpecError(
            f"schedule {text!r} finds no next time within {limit:,} search steps "
            f"(does it ever fire? INTERVAL=0, a date that does not exist) "
            + hint("schedule_search_steps")
        ) from None
    finally:
        sys.settrace(previous)


def _next_cron(text: str, after: datetime) -> datetime:
    from croniter import croniter

    fields = text.split()
    if len(fields) == 1 and fields[0].lower() in _CRON_ALIASES:
        text = fields[0].lower()
    elif len(fields) != 5:
        raise SpecError(
            f"invalid schedule {text!r}: a cron expression has 5 fields "
            "(minute hour day-of-month month day-of-week), or use @hourly, @daily, ... or RRULE:..."
        )
    try:
        result = _bounded(lambda: croniter(text, after).get_next(datetime), text)
    except (ValueError, KeyError) as exc:  # croniter's errors derive from ValueError
        raise SpecError(f"invalid schedule {text!r}: {first_line(exc)}") from None
    assert isinstance(result, datetime)
    return result


def _next_rrule(text: str, after: datetime) -> datetime:
    from dateutil.rrule import rrulestr

    tz = after.tzinfo
    wall = after.replace(tzinfo=None)
    anchor = wall.replace(hour=0, minute=0, second=0, microsecond=0)
    # An RRULE written on one line with ';' (as in YAML) may carry DTSTART in front of it:
    # ``DTSTART:20240101T090000;RRULE:...`` is not RFC syntax, so split it into lines.
    lines = [part.strip() for chunk in text.splitlines() for part in _split_dtstart(chunk)]
    try:
        rule = rrulestr("\n".join(p for p in lines if p), dtstart=anchor, ignoretz=True)
        for one in getattr(rule, "_rrule", None) or [rule]:  # an rruleset holds several
            if getattr(one, "_interval", 1) < 1:
                raise SpecError(f"invalid schedule {text!r}: INTERVAL must be at least 1")
        found = _bounded(lambda: rule.after(wall, inc=False), text)
    except (ValueError, TypeError, OverflowError) as exc:
        raise SpecError(f"invalid schedule {text!r}: {first_line(exc)}") from None
    if found is None:
        raise SpecError(
            f"schedule {text!r} never fires after {after.isoformat(timespec='seconds')}"
        )
    return found.replace(tzinfo=tz)


def _split_dtstart(line: str) -> list[str]:
    upper = line.upper()
    if upper.startswith("DTSTART") and ";RRULE:" in upper:
        cut = upper.index(";RRULE:")
        return [line[:cut], line[cut + 1 :]]
    return [line]
