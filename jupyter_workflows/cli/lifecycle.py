"""The lifecycle and trigger subcommands: ``transition``, ``states``, ``objects``, ``triggers``.

Wiring (:func:`add_commands`) and work (the ``cmd_*`` functions) of these commands live here,
apart from :mod:`.app` and :mod:`.logic`, which register them with one line each.

Exit codes of ``transition``: 0 the object is in the new state; 1 the transition was refused
(not declared, guard false, needs an approval, an exit or entry workflow failed, or another
transition held the object too long) and the object stays where it was; 2 bad usage (unknown
object or state, an invalid lifecycle file).
"""

from __future__ import annotations

import json
import sys
from argparse import ArgumentParser, Namespace
from collections.abc import Callable
from typing import Any

__all__ = [
    "add_commands",
    "cmd_objects",
    "cmd_states",
    "cmd_transition",
    "cmd_triggers",
    "validate_document",
]

TRANSITION_EPILOG = (
    "Exit codes: 0 the object is in the new state; 1 the transition was refused (the object stays "
    "in its state; the reason is one line on stderr and in `states OBJECT`); 2 bad usage (unknown "
    "object or state, invalid lifecycle file)."
)


def add_commands(add: Callable[..., ArgumentParser]) -> None:
    """Register the subcommands with ``add(name, help, epilog=None)`` of :mod:`.app`."""
    p = add("transition", "move a lifecycle object to another state", epilog=TRANSITION_EPILOG)
    p.add_argument("object", metavar="OBJECT")
    p.add_argument("--to", required=True, metavar="STATE")
    p.add_argument(
        "--lifecycle",
        metavar="FILE",
        help="the lifecycle file: creates OBJECT (in the initial state) when it is new, and "
        "makes an existing one follow this version of it",
    )
    p.add_argument(
        "-p",
        "--data",
        dest="data",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="data of a new object (VALUE read as YAML; repeatable)",
    )
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
    p.add_argument("--json", action="store_true", help="print the object as JSON")
    p.set_defaults(handler=cmd_transition)

    p = add("states", "a lifecycle object's state, its state machine and history")
    p.add_argument("object", metavar="OBJECT")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_states)

    p = add("objects", "list lifecycle objects")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_objects)

    p = add("triggers", "list triggers: schedules, webhooks and traits")
    p.add_argument("paths", nargs="*", metavar="FILE", help="workflow and trigger files")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_triggers)


def _out(text: str) -> None:
    from .logic import out

    out(text)


def _configure(args: Namespace) -> None:
    from .logic import _configure

    _configure(args)


def _settle() -> None:
    """Wait for the runs this process started (the new state's workflows) to end or wait.

    A command's process ends with it; a run it drives would be left ``interrupted``.
    """
    from ..engine.api import get_orchestrator
    from ..engine.run import Run

    orch = get_orchestrator()
    for run_id in list(orch.runs):
        try:
            Run(run_id, orch).wait(3600)
        except TimeoutError:  # pragma: no cover - an hour: leave it to `resume`
            pass


def cmd_transition(args: Namespace) -> int:
    from ..exceptions import WorkflowError
    from ..lifecycles.core import (
        DEFAULT_TIMEOUT,
        LifecycleObject,
        TransitionRefused,
        load_lifecycle,
    )
    from ..spec.params import parse_assignments

    _configure(args)
    data = dict(parse_assignments(args.data)) if args.data else None
    if args.lifecycle:
        lc = load_lifecycle(args.lifecycle)
        lc.validate()
        obj = lc.object(args.object, data)
    else:
        if data is not None:
            raise WorkflowError(
                "-p/--data sets the data of a new object: give --lifecycle FILE too"
            )
        obj = LifecycleObject(args.object)
        obj._record()  # ObjectNotFound: exit 2
    try:
        obj.transition(args.to, timeout=args.timeout or DEFAULT_TIMEOUT)
    except TransitionRefused as refused:
        print(str(refused), file=sys.stderr)
        if args.json:
            _out(json.dumps(obj.to_dict(), default=str))
        return 1
    finally:
        _settle()
    if args.json:
        _out(json.dumps(obj.to_dict(), default=str))
    else:
        _out(f"{obj.id}: {obj.state}")
    return 0


def cmd_states(args: Namespace) -> int:
    from ..lifecycles.core import LifecycleObject
    from ..lifecycles.display import lifecycle_text

    _configure(args)
    obj = LifecycleObject(args.object)
    view = obj.to_dict()  # applies an answered approval
    _settle()
    if args.json:
        _out(json.dumps(view, default=str))
        return 0
    rec = obj._record()
    lines = [lifecycle_text(obj.lifecycle, rec), "history:"]
    for entry in view["history"]:
        what = f"{entry['from_state'] or ''} -> {entry['to_state'] or ''}".strip()
        runs = f" runs {', '.join(entry['runs'])}" if entry["runs"] else ""
        started = f" started {', '.join(entry['started'])}" if entry["started"] else ""
        reason = f": {entry['reason']}" if entry["reason"] else ""
        lines.append(f"  {entry['at']}  {entry['outcome']:<12} {what}{reason}{runs}{started}")
    _out("\n".join(lines))
    return 0


def cmd_objects(args: Namespace) -> int:
    from ..lifecycles.core import objects

    _configure(args)
    rows = [o._record() for o in objects()]
    if args.json:
        _out(
            json.dumps(
                [
                    {"object": r["object_id"], "lifecycle": r["lifecycle"], "state": r["state"]}
                    for r in rows
                ]
            )
        )
        return 0
    if not rows:
        _out("no lifecycle objects")
    for r in rows:
        _out(
            f"{r['object_id']}  {r['lifecycle']}  {r['state']}"
            + ("  (approval open)" if r["pending"] else "")
        )
    return 0


def cmd_triggers(args: Namespace) -> int:
    from ..lifecycles.triggers import list_triggers

    _configure(args)
    rows: list[dict[str, Any]] = list_triggers(args.paths)
    if args.json:
        _out(json.dumps(rows, default=str))
        return 0
    if not rows:
        _out("no triggers")
    for row in rows:
        _out(f"{row['kind']:<9} {row['name']:<24} {row['workflow'] or '-':<20} {row['when']}")
    return 0


def validate_document(file: str) -> str | None:
    """``validate`` of a lifecycle or trigger file: the ok line, or None for another file.

    Raises the document's :class:`SpecError` (every error found, as for workflows).
    """
    from pathlib import Path

    from ..lifecycles.triggers import _kind_of

    path = Path(file)
    if not path.is_file():
        return None
    try:
        kind = _kind_of(path)
    except Exception:  # not parseable here: the workflow loader reports it
        return None
    if kind == "lifecycle":
        from ..lifecycles.core import load_lifecycle

        lc = load_lifecycle(path).validate()
        return f"{file}: ok (lifecycle {lc.name}: {len(lc.states)} states, {len(lc.spec.transitions)} transitions)"
    if kind == "triggers":
        from ..lifecycles.traits import load_triggers

        triggers = load_triggers(path).validate()
        return f"{file}: ok ({len(triggers.traits)} traits, {len(triggers.hooks)} hooks)"
    return None
