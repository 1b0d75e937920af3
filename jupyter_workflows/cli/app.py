"""``jupyter-workflows`` (also ``jupyter workflows``): argument wiring only.

Each subcommand parses its flags and calls one plain function in :mod:`.logic`, which returns
the exit code. User errors (any :class:`WorkflowError`, bad flags) print one line on stderr and
exit 2; ``--debug`` shows the traceback instead. Exit codes (CONTRACT §5): 0 succeeded, 1 failed
or cancelled, 2 bad usage or invalid workflow, 3 paused or waiting.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .._version import __version__
from ..exceptions import WorkflowError, first_line

__all__ = ["main"]

PROG = "jupyter-workflows"
INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
CTRL_C = (
    "Exit codes: 0 succeeded, 1 failed or cancelled, 2 bad usage or invalid workflow (no run is "
    "created), 3 paused or waiting, 130 Ctrl-C. Ctrl-C stops the command at once and leaves the "
    "run interrupted, as a crash would: finished tasks are kept, tasks in flight are abandoned, "
    "and `resume RUN_ID` continues it (running those again)."
)


class UsageFailure(Exception):
    """Bad command-line usage (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + error
        raise UsageFailure(f"{self.prog}: {message}")


def _add_common(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--store",
        metavar="PATH",
        default=default,
        help="SQLite store (default ./.jupyter_workflows/state.db)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDR",
        default=default,
        help="Dask scheduler address (default: an embedded LocalCluster)",
    )
    parser.add_argument(
        "--artifacts",
        metavar="URL",
        default=default,
        help="where workers write big results: a folder or fsspec URL (default: beside the store)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if default is None else default,
        help="show tracebacks",
    )


def _common() -> _Parser:
    # The subcommands' copies default to SUPPRESS, so a value given before the subcommand
    # (``jupyter-workflows --store X runs``) survives unless the subcommand repeats the option,
    # in which case the later one (after the subcommand) wins.
    # A _Parser like the subcommands it is a parent of (a parent lends only its arguments).
    common = _Parser(add_help=False)
    _add_common(common, argparse.SUPPRESS)
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(prog=PROG, description="Run and inspect jupyter_workflows workflows headless.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_common(parser, None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, help: str, epilog: str | None = None) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help, description=help, epilog=epilog)

    p = add("run", "run a workflow file, job folder or notebook", epilog=CTRL_C)
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "-p",
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter; VALUE is read as YAML (repeatable)",
    )
    p.add_argument(
        "--workflow", metavar="NAME", help="which workflow, when a notebook defines several"
    )
    p.add_argument("--json", action="store_true", help="print the run as one JSON object on stdout")
    p.add_argument("--no-cache", action="store_true", help="ignore cached results")

    p = add("validate", "check a workflow file; errors as FILE:LINE:COL: message")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--workflow", metavar="NAME")

    p = add(
        "convert",
        "print a workflow written for attune or StackStorm Orquesta as a native document",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--workflow", metavar="NAME")

    p = add("graph", "print the task graph")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", choices=["mermaid", "dot", "json"], default="mermaid")
    p.add_argument("--workflow", metavar="NAME")

    p = add("runs", "list runs, newest first")
    p.add_argument("--json", action="store_true")

    p = add("show", "one run with its tasks and trace")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--json", action="store_true")

    p = add("resume", "continue an interrupted or paused run", epilog=CTRL_C)
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="reopen a failed run: the tasks that failed it run again",
    )
    p.add_argument("--no-cache", action="store_true")

    for name, text in (("pause", "pause a run"), ("cancel", "cancel a run")):
        p = add(name, text)
        p.add_argument("run_id", metavar="RUN_ID")

    p = add("respond", "answer an inquiry")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("task", metavar="TASK")
    p.add_argument("--data", required=True, metavar="JSON")

    p = add("export", "write a self-contained job folder")
    p.add_argument("source", metavar="NOTEBOOK_OR_FILE")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--workflow", metavar="NAME")

    p = add("trace", "print a run's trace")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--format", choices=["json", "chrome"], default="json")

    from .lifecycle import add_commands as add_lifecycle_commands

    add_lifecycle_commands(add)

    from .store_commands import add_commands as add_store_commands

    add_store_commands(add, common)

    from .kv_commands import add_commands as add_kv_commands

    add_kv_commands(add, common)

    p = add("serve", "run schedules and the REST API without JupyterLab")
    p.add_argument("--port", type=int, default=8899)
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument(
        "paths",
        nargs="*",
        metavar="FILE",
        help="workflow files whose schedules to run, and trigger files (traits:, hooks:)",
    )
    p.add_argument(
        "--watch",
        action="append",
        default=[],
        metavar="DIR",
        help="start the workflows of the trigger files' traits for each new or changed file "
        "under DIR, once per file version (repeatable)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns (and, as a script, exits with) the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageFailure as exc:
        print(str(exc), file=sys.stderr)
        return 2
    debug = bool(args.debug)
    if debug:
        # The engine logs what it caught at DEBUG (an internal error's traceback, say).
        import logging

        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("jupyter_workflows").setLevel(logging.DEBUG)
    from . import logic

    try:
        handler = getattr(args, "handler", None) or getattr(logic, "cmd_" + args.command)
        return int(handler(args))
    except (WorkflowError, UsageFailure) as exc:
        if debug:
            raise
        print(first_line(exc), file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of stdout went away (``| head``): stop quietly
        logic._drop_stdout()
        return 0
    except KeyboardInterrupt as exc:  # Ctrl-C: see _entry
        print(str(exc) or "interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:  # a bug: one line unless --debug
        if debug:
            raise
        print(
            f"internal error: {type(exc).__name__}: {first_line(exc)} (rerun with --debug)",
            file=sys.stderr,
        )
        return 2


def _entry() -> None:  # pragma: no cover
    try:
        code = main()
    except KeyboardInterrupt:  # Ctrl-C outside a command (while starting up)
        print("interrupted", file=sys.stderr)
        code = INTERRUPTED
    if code == INTERRUPTED:
        # Ctrl-C: leave now. A normal exit would first wait for the executor's task threads and
        # let the orchestrator start the next tasks meanwhile. Exiting here is what a crash does,
        # which the store is built to survive: the run shows ``interrupted`` and ``resume``
        # continues it (tasks that were in flight run again).
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # a closed pipe: nothing more to say
                pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    _entry()
