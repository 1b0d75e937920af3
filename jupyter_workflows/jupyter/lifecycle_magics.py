"""``%%lifecycle`` and ``%lifecycle``: lifecycles and their objects in a notebook.

- ``%%lifecycle [NAME]``: define a lifecycle from the cell's YAML (validated: errors are one
  ``<cell>:LINE:COL: message`` line), register it, and draw its state machine.
- ``%lifecycle new LIFECYCLE OBJECT [-p KEY=VALUE ...]``: the object (created in the initial state
  when new; ``-p`` sets its data); returns it.
- ``%lifecycle show OBJECT``: the state machine with the object's state highlighted, and its
  history.
- ``%lifecycle transition OBJECT STATE``: move it (a refusal is one ``UsageError`` line).
- ``%lifecycle approve OBJECT [--reject] [--comment TEXT]``: answer its open approval.
- ``%lifecycle objects``: every object with its state.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from ..exceptions import SpecError, WorkflowError, first_line

__all__ = ["LifecycleMagics"]

_HELP = """\
%%lifecycle [NAME]                               define a lifecycle from the cell's YAML
%lifecycle new LIFECYCLE OBJECT [-p KEY=VALUE]    an object of it (created when new)
%lifecycle show OBJECT                           its state machine, state and history
%lifecycle transition OBJECT STATE               move it to STATE
%lifecycle approve OBJECT [--reject] [--comment TEXT]   answer its open approval
%lifecycle objects                               every object and its state"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _where(exc: SpecError) -> str:
    if exc.file not in (None, "<cell>"):
        return first_line(exc)
    where = ["<cell>"] + [str(p) for p in (exc.line, exc.col) if p is not None]
    return f"{':'.join(where)}: {exc.message}"


@magics_class
class LifecycleMagics(Magics):
    """``%%lifecycle`` and ``%lifecycle``; see the module doc.

    ``headless`` (the CLI's notebook reader): ``%%lifecycle`` defines without drawing, and
    ``%lifecycle`` line commands are skipped, as ``%workflow`` ones are.
    """

    def __init__(self, shell: Any = None, *, headless: bool = False) -> None:
        super().__init__(shell)
        self.headless = headless

    @cell_magic("lifecycle")  # type: ignore[arg-type]  # IPython types its magic decorators so that mypy sees them take Never
    def lifecycle_cell(self, line: str, cell: str) -> Any:
        from IPython.display import display

        from ..lifecycles.core import Lifecycle, register_lifecycle
        from ..lifecycles.spec import load_lifecycle_spec

        name = line.strip() or None
        if not cell.strip():
            raise UsageError("%%lifecycle: the cell is empty; write the lifecycle's YAML below it")
        try:
            spec, smap = load_lifecycle_spec(cell, file="<cell>", name=name)
            lc = Lifecycle(spec, source=cell, source_map=smap)
            lc.validate()
        except SpecError as exc:
            raise UsageError(_where(exc)) from None
        except WorkflowError as exc:
            raise UsageError(first_line(exc)) from None
        register_lifecycle(lc)
        if not self.headless:
            display(lc)
        return None

    @line_magic("lifecycle")  # type: ignore[arg-type]  # IPython types its magic decorators so that mypy sees them take Never
    def lifecycle_line(self, line: str) -> Any:
        if self.headless:
            return None
        words = shlex.split(line)
        if not words or words[0] in ("-h", "--help", "help"):
            print(_HELP)
            return None
        command, rest = words[0], words[1:]
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            raise UsageError(f"%lifecycle: unknown command {command!r}\n{_HELP}".splitlines()[0])
        try:
            return handler(rest)
        except UsageError:
            raise
        except WorkflowError as exc:
            raise UsageError(first_line(exc)) from None

    def _cmd_new(self, words: list[str]) -> Any:
        from ..lifecycles.core import get_lifecycle, load_lifecycle
        from ..spec.params import parse_assignments

        p = _Parser(prog="%lifecycle new", add_help=False)
        p.add_argument("lifecycle")
        p.add_argument("object")
        p.add_argument("-p", dest="data", action="append", default=[])
        args = p.parse_args(words)
        lc = get_lifecycle(args.lifecycle)
        if lc is None:
            lc = load_lifecycle(args.lifecycle).validate()
        return lc.object(args.object, dict(parse_assignments(args.data)) if args.data else None)

    def _cmd_show(self, words: list[str]) -> Any:
        from ..lifecycles.core import get_object

        p = _Parser(prog="%lifecycle show", add_help=False)
        p.add_argument("object")
        return get_object(p.parse_args(words).object)

    def _cmd_transition(self, words: list[str]) -> Any:
        from ..lifecycles.core import get_object

        p = _Parser(prog="%lifecycle transition", add_help=False)
        p.add_argument("object")
        p.add_argument("state")
        args = p.parse_args(words)
        return get_object(args.object).transition(args.state)

    def _cmd_approve(self, words: list[str]) -> Any:
        from ..lifecycles.core import get_object

        p = _Parser(prog="%lifecycle approve", add_help=False)
        p.add_argument("object")
        p.add_argument("--reject", action="store_true")
        p.add_argument("--comment")
        args = p.parse_args(words)
        return get_object(args.object).approve(not args.reject, args.comment)

    def _cmd_objects(self, words: list[str]) -> Any:
        from ..lifecycles.core import objects

        if words:
            raise UsageError("%lifecycle objects: takes no arguments")
        for obj in objects():
            print(repr(obj))
        return None
