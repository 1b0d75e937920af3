"""Limits on the work a document, a template or a request can make the engine do.

Workflow documents, templates and REST requests are input: a careless or hostile one must end in
one clear error, never in a hang, a ``MemoryError`` or a server that stops answering. Every bound
the engine applies lives here, in one table, so that docs/security.md can list them and a user can
raise one that gets in their way.

Each limit is a field of :class:`Limits`. The process-wide values are :data:`LIMITS`; they are read
from the environment when this module is first imported (``JUPYTER_WORKFLOWS_LIMIT_<FIELD>``, the
field name in upper case, e.g. ``JUPYTER_WORKFLOWS_LIMIT_TEMPLATE_SECONDS=30``), so Dask workers
and ``serve`` started with the same environment agree, and can be changed in a process with
:func:`configure`. A value that is not a number is ignored with a warning (a limit must never be
what breaks a start).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass
from typing import Any

__all__ = ["LIMITS", "LimitError", "Limits", "configure", "environment_name"]

_PREFIX = "JUPYTER_WORKFLOWS_LIMIT_"


@dataclass
class Limits:
    """Every bound, with its default. Units are in the names."""

    #: Characters in one workflow document (YAML or JSON text).
    document_chars: int = 16 * 1024 * 1024
    #: Levels of nested mappings and lists in one document.
    document_nesting: int = 100
    #: YAML aliases (``*name``) may make the built document at most this many times the number of
    #: nodes written (plus ``alias_slack_nodes``); "billion laughs" documents are refused.
    alias_expansion_factor: int = 10
    #: Nodes aliases may add on top of the factor, so small documents may reuse anchors freely.
    alias_slack_nodes: int = 10_000
    #: Characters of a key, a name or a value quoted in an error message (the rest is elided).
    quoted_chars: int = 200
    #: Seconds one template render may take (checked at every loop step, call and operator).
    template_seconds: float = 10.0
    #: Characters (or list items) one template may produce, and one operation inside it
    #: (``*``, ``+``, ``~``, ``center``, ``indent``, ``replace``, ``join``, format widths, ...).
    template_output_chars: int = 10_000_000
    #: ``{% for %}`` iterations in one render, all loops together.
    template_loop_iterations: int = 1_000_000
    #: Bits of an integer a template may compute (``**``, ``*``, ``<<``).
    template_int_bits: int = 100_000
    #: Python steps (trace events) a schedule's next-fire search may take before the schedule is
    #: declared unable to fire (``RRULE:...;INTERVAL=0``, a date that never exists): about 1 s.
    schedule_search_steps: int = 1_000_000
    #: Bytes of one REST request body.
    request_body_bytes: int = 10 * 1024 * 1024
    #: Levels of nested objects and arrays in one REST request body.
    request_nesting: int = 100
    #: Seconds to load and validate one workflow file found by ``serve`` or the server extension.
    discovery_seconds: float = 10.0
    #: Bytes of one workflow file ``serve`` or the server extension will read.
    discovery_file_bytes: int = 16 * 1024 * 1024


class LimitError(ValueError):
    """A limit was hit; ``str()`` is one line that names the limit and how to raise it."""


def environment_name(field: str) -> str:
    """The environment variable that sets ``field``: ``JUPYTER_WORKFLOWS_LIMIT_<FIELD>``."""
    return _PREFIX + field.upper()


def _from_environment(limits: Limits) -> None:
    for f in dataclasses.fields(limits):
        raw = os.environ.get(environment_name(f.name))
        if raw is None or not raw.strip():
            continue
        kind = float if f.type in ("float", float) else int
        try:
            value = kind(raw)
            if not value > 0 or value != value or value == float("inf"):
                raise ValueError(raw)
        except ValueError:
            warnings.warn(
                f"{environment_name(f.name)}={raw!r} is not a positive number; "
                f"keeping {getattr(limits, f.name)}",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        setattr(limits, f.name, value)


#: The limits this process applies.
LIMITS = Limits()
_from_environment(LIMITS)


def configure(**values: Any) -> Limits:
    """Change limits in this process: ``configure(template_seconds=30)``; returns :data:`LIMITS`.

    Worker processes read their own environment; set ``JUPYTER_WORKFLOWS_LIMIT_<FIELD>`` for them.

    Raises
    ------
    TypeError
        An unknown limit name.
    ValueError
        A value that is not a positive number.
    """
    names = {f.name: f for f in dataclasses.fields(LIMITS)}
    for key, value in values.items():
        if key not in names:
            raise TypeError(f"unknown limit {key!r} (one of {', '.join(sorted(names))})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"limit {key} must be a positive number, not {value!r}")
    for key, value in values.items():
        setattr(LIMITS, key, value)
    return LIMITS


def hint(field: str) -> str:
    """``(limit NAME; set JUPYTER_WORKFLOWS_LIMIT_NAME to raise it)``, for error messages."""
    return f"(limit {field}; set {environment_name(field)} to raise it)"


def shorten(text: str, limit: int | None = None) -> str:
    """``text`` on one line and at most ``limit`` characters (``quoted_chars``), middle elided."""
    limit = limit or LIMITS.quoted_chars
    if len(text) > limit * 4:  # don't escape megabytes just to cut them
        text = text[: limit * 2] + text[-limit * 2 :]
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    if len(text) > limit:
        head = limit * 2 // 3
        tail = limit - head - 1
        text = text[:head] + "…" + text[-tail:]
    return text
