"""The notebook magics: ``%%workflow`` defines a workflow, ``%workflow COMMAND`` drives runs.

Design
------
* **Thin.** Every command is a few lines over :mod:`jupyter_workflows.engine.api` (the functions
  the CLI and the REST API call too), :func:`~jupyter_workflows.jupyter.live.bind_run` for the
  live widget, and :mod:`~jupyter_workflows.jupyter.display` for tables. No engine logic here.
* **Errors are one line.** A mistake a user can make (bad YAML, an unknown workflow or run, a
  parameter of the wrong type) raises IPython's ``UsageError`` with the error's one line, which
  IPython prints without a traceback. YAML errors keep their ``LINE:COL`` and name the cell
  ``<cell>`` (lines count from the first line under ``%%workflow``). Other exceptions are bugs
  and keep their traceback.
* **Help from argparse.** ``%%workflow`` uses IPython's ``magic_arguments`` so ``%%workflow?``
  prints its usage; the line magic parses its sub-commands with argparse sub-parsers, and its
  docstring, what ``%workflow?`` shows, is generated from them, so the help cannot drift.
* **Headless mode** (``WorkflowMagics(shell, headless=True)``) is how
  ``jupyter-workflows run NOTEBOOK.ipynb`` reads a notebook (:mod:`.notebook_loader`):
  ``%%workflow`` cells define and register workflows, but ``--run`` flags and every
  ``%workflow`` line command are skipped (CONTRACT §5) and nothing is displayed. A skipped
  command returns a :class:`SkippedCommand`, a falsy stand-in whose attributes and calls are
  itself, so a notebook that goes on with ``run.respond(...)`` or ``run.wait()`` still loads.
* Under nbclient or papermill there is a kernel but no front end: the widget is displayed anyway
  and lands in the notebook as its mimebundle (an SVG picture and a text summary).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..exceptions import SpecError, WorkflowError, first_line

if TYPE_CHECKING:  # pragma: no cover
    from IPython.core.interactiveshell import InteractiveShell

    from ..definition import Workflow
    from ..engine.run import Run

__all__ = [
    "SkippedCommand",
    "WorkflowMagics",
    "load_ipython_extension",
    "unload_ipython_extension",
]


# -- the line magic's parser ----------------------------------------------------------------


class _HelpShown(Exception):
    """argparse printed a help text and wants to exit: the magic just returns."""


class _CommandParser(argparse.ArgumentParser):
    """argparse that raises ``UsageError`` (one line) instead of exiting the kernel."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None):  # type: ignore[override]
        if message:
            print(message, file=sys.stderr, end="")
        raise _HelpShown


def _param_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-p",
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter; VALUE is read as YAML (-p n=5 is an integer); repeatable",
    )


def _build_parser() -> _CommandParser:
    parser = _CommandParser(
        prog="%workflow",
        description="Run and inspect workflows from the notebook (define them with %%workflow).",
        add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    sub.required = True

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text)

    p = add("run", "run a workflow (waits, then returns the Run; --background returns at once)")
    p.add_argument("name", metavar="NAME", help="a workflow defined in this kernel, or a YAML file")
    _param_argument(p)
    p.add_argument(
        "--background",
        action="store_true",
        help="return the Run at once; the widget keeps updating while the kernel stays free",
    )
    add("list", "list the workflows defined in this kernel")
    p = add("runs", "list runs in the store, newest first")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="show at most N runs")
    p = add("show", "show a run: its graph with task status, and its tasks")
    p.add_argument("run_id", metavar="RUN_ID")
    p = add("resume", "continue a paused or interrupted run (waits, then returns the Run)")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--background", action="store_true", help="return the Run at once")
    p = add("pause", "pause a run: no new task starts, running tasks finish")
    p.add_argument("run_id", metavar="RUN_ID")
    p = add("cancel", "cancel a run")
    p.add_argument("run_id", metavar="RUN_ID")
    p = add("form", "a form built from the workflow's parameters, with a Run button")
    p.add_argument("name", metavar="NAME")
    p = add("export", "write a self-contained job folder (workflow.yaml, tasks.py, run.ipynb)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("dir", metavar="DIR")
    p = add(
        "edit",
        "show a workflow's graph to edit: a file's edits are written back to it, "
        "the others shown as YAML to copy",
    )
    p.add_argument("name", metavar="NAME", help="a workflow defined in this kernel, or a YAML file")
    p = add("cluster", "connect to a Dask scheduler, or show the Dask dashboard link")
    p.add_argument(
        "address", nargs="?", metavar="ADDRESS", help="a scheduler address (tcp://host:8786)"
    )
    add("help", "show this help")
    return parser


_PARSER = _build_parser()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}  # pragma: no cover


def _line_help() -> str:
    """The usage of every sub-command: what ``%workflow?`` and ``%workflow help`` show."""
    out = [
        "%workflow COMMAND ...: run and inspect workflows (define them with %%workflow).",
        "",
        "Commands:",
    ]
    for sub in _subparsers(_PARSER).values():
        usage = sub.format_usage().strip().removeprefix("usage: ")
        out.append(f"  {usage}")
        out.append(f"      {sub.description}")
    out += [
        "",
        "Errors are one line (UsageError). `%workflow COMMAND -h` shows one command's options.",
        "Examples:",
        "  %workflow run deploy -p app_name=shop -p regions=[eu,us]",
        "  run = %workflow run deploy --background",
        "  %workflow runs",
    ]
    return "\n".join(out)


# -- headless stand-in --------------------------------------------------------------------------


class SkippedCommand:
    """What a ``%workflow`` line command returns where such commands are skipped (headless).

    Falsy; any public attribute, call or item of it is itself, so notebook code that goes on with
    the result (``run.respond(...)``, ``run.wait()``, ``run.outputs["x"]``) runs unchanged.
    """

    def __init__(self, line: str) -> None:
        self._line = line.strip()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> SkippedCommand:
        return self

    def __getitem__(self, key: Any) -> SkippedCommand:
        return self

    def __iter__(self):
        return iter(())

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<skipped: %workflow {self._line}>"


# -- the magics ---------------------------------------------------------------------------------


def _display(obj: Any, *, raw: bool = False, update: bool = False) -> Any:
    """Display ``obj``; with ``update``, return a handle to redisplay it once the run settles.

    A graph widget always gets a display id: it refreshes its own output data (the saved
    picture and graph data, see ``GraphWidget.track_display``) as its run goes on.
    """
    from IPython.display import display

    track = getattr(obj, "track_display", None)
    handle = display(obj, raw=raw, display_id=True if (update or track) else None)
    if track is not None and handle is not None:
        track(handle)
    return handle if update else None


@magics_class
class WorkflowMagics(Magics):
    """``%%workflow`` and ``%workflow``; see ``%%workflow?`` and ``%workflow?``.

    Parameters
    ----------
    shell:
        The IPython shell.
    headless:
        Define workflows only: skip ``--run`` and line commands, display nothing (the CLI's
        notebook reader).
    """

    def __init__(self, shell: InteractiveShell | None = None, *, headless: bool = False) -> None:
        super().__init__(shell)
        self.headless = headless
        #: How a ``%%workflow`` cell is named in error positions, and how many lines come
        #: before its YAML (the notebook reader names the notebook's cell and counts the
        #: magic line).
        self.cell_label = "<cell>"
        self.line_offset = 0
        #: The most recent run started here (``%%workflow --run``, ``%workflow run``).
        self.last_run: Run | None = None

    # -- %%workflow ---------------------------------------------------------------------------
    @magic_arguments("%workflow")
    @argument(
        "name", nargs="?", metavar="NAME", help="the workflow's name, when the YAML has no name:"
    )
    @argument("--run", action="store_true", help="run it now and show live status in the graph")
    @argument(
        "-p",
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --run: a parameter, VALUE read as YAML (-p n=5 is an integer); repeatable",
    )
    @argument(
        "--background",
        action="store_true",
        help="with --run: return at once; the graph keeps updating while the kernel stays free",
    )
    @cell_magic("workflow")  # type: ignore[arg-type]  # IPython types its magic decorators so that mypy sees them take Never
    def workflow_cell(self, line: str, cell: str) -> None:
        """Define a workflow from the YAML (or JSON) in the cell.

        The cell is validated (errors are one line naming the line and column), registered
        under its name (so ``%workflow run NAME``, nested workflows and the REST API find it)
        and drawn as a live graph. With ``--run`` it also runs, and the graph shows each
        task's status as it changes.
        """
        args = parse_argstring(self.workflow_cell, line)
        if args.params and not args.run:
            raise UsageError("%%workflow: -p/--param only applies with --run")
        if args.background and not args.run:
            raise UsageError("%%workflow: --background only applies with --run")
        workflow = self._define(cell, args.name)
        if self.headless:
            return None
        from .live import bind_run, widget_for_workflow

        widget = widget_for_workflow(workflow)
        # Edits made in this widget are written back into this very cell (by the browser).
        widget.enable_editing(workflow, target="cell", name=args.name)
        handle = _display(widget, update=args.run and not args.background)
        if not args.run:
            return None
        run = self._start(workflow, args.params)
        bind_run(run, widget)
        if not args.background:
            self._wait(run, handle, widget)
        return None

    def _define(self, text: str, name: str | None) -> Workflow:
        from ..definition import Workflow, register_workflow
        from ..spec.loader import load_spec

        if not text.strip():
            raise UsageError("%%workflow: the cell is empty; write the workflow's YAML below it")
        try:
            spec, smap = load_spec(text, file="<cell>", name=name)
            if name and spec.name != name:
                raise UsageError(
                    f"%%workflow: the magic line names the workflow {name!r} "
                    f"but the YAML says name: {spec.name}"
                )
            workflow = Workflow(spec, source_map=smap, source=text)
            warnings = workflow.validate()
        except SpecError as exc:
            raise UsageError(self._where(exc)) from None
        except WorkflowError as exc:
            raise UsageError(first_line(exc)) from None
        for warning in warnings:
            line = f"{warning.line + self.line_offset}" if warning.line is not None else None
            where = ":".join(p for p in (self.cell_label, line, str(warning.col or "")) if p)
            print(f"{where}: warning: {warning.message}", file=sys.stderr)
        register_workflow(workflow)
        return workflow

    def _where(self, exc: SpecError) -> str:
        """The error's one line, positioned in the cell (``<cell>:LINE:COL: message``)."""
        if exc.file != "<cell>":  # from another file (a nested workflow beside this one)
            return first_line(exc)
        if exc.line is None:
            return f"{self.cell_label}: {exc.message}"
        where = [self.cell_label, str(exc.line + self.line_offset)]
        if exc.col is not None:
            where.append(str(exc.col))
        return f"{':'.join(where)}: {exc.message}"

    # -- %workflow ----------------------------------------------------------------------------
    @line_magic("workflow")  # type: ignore[arg-type]  # IPython types its magic decorators so that mypy sees them take Never
    def workflow_line(self, line: str) -> Any:
        if self.headless:
            return SkippedCommand(line)
        if line.strip() in ("", "-h", "--help"):
            print(_line_help())
            return None
        try:
            args = _PARSER.parse_args(_split(line))
        except _HelpShown:
            return None
        handler = getattr(self, f"_cmd_{args.command}")
        try:
            return handler(args)
        except UsageError:
            raise
        except WorkflowError as exc:
            raise UsageError(first_line(exc)) from None

    workflow_line.__doc__ = _line_help()  # type: ignore[assignment]  # see @line_magic above

    # -- commands -------------------------------------------------------------------------------
    def _cmd_help(self, args: argparse.Namespace) -> None:
        print(_line_help())

    def _cmd_run(self, args: argparse.Namespace) -> Run:
        workflow = self._workflow(args.name)
        run = self._start(workflow, args.params)
        widget, handle = self._show_live(run, workflow, update=not args.background)
        if not args.background:
            self._wait(run, handle, widget)
        return run

    def _cmd_edit(self, args: argparse.Namespace) -> Any:
        from .live import widget_for_workflow

        workflow = self._workflow(args.name)
        widget = widget_for_workflow(workflow)
        widget.enable_editing(workflow)
        _display(widget)
        return None

    def _cmd_list(self, args: argparse.Namespace) -> None:
        from ..definition import registered_workflows
        from .display import workflows_bundle

        _display(workflows_bundle(registered_workflows().values()), raw=True)

    def _cmd_runs(self, args: argparse.Namespace) -> None:
        from ..engine.api import runs
        from .display import runs_bundle

        _display(runs_bundle(runs(args.limit)), raw=True)

    def _cmd_show(self, args: argparse.Namespace) -> Run:
        from ..engine.api import get_run

        run = get_run(args.run_id)
        self._show_live(run)
        return run

    def _cmd_resume(self, args: argparse.Namespace) -> Run:
        from ..engine.api import resume

        run = resume(args.run_id, wait=False)
        widget, handle = self._show_live(run, update=not args.background)
        if not args.background:
            self._wait(run, handle, widget)
        return run

    def _cmd_pause(self, args: argparse.Namespace) -> None:
        from ..engine.api import get_run

        run = get_run(args.run_id)
        run.pause()
        print(f"run {run.run_id}: pause requested")

    def _cmd_cancel(self, args: argparse.Namespace) -> None:
        from ..engine.api import get_run

        run = get_run(args.run_id)
        run.cancel()
        print(f"run {run.run_id}: cancel requested")

    def _cmd_form(self, args: argparse.Namespace) -> Any:
        from .form import build_form

        return build_form(self._workflow(args.name))

    def _cmd_export(self, args: argparse.Namespace) -> None:
        from .export import export_job

        workflow = self._workflow(args.name)
        cells = list(getattr(self.shell, "user_ns", {}).get("In") or [])
        out = export_job(workflow, args.dir, cells=cells)
        print(f"exported {workflow.name!r} to {out} (workflow.yaml, tasks.py, run.ipynb)")

    def _cmd_cluster(self, args: argparse.Namespace) -> None:
        from ..engine import api
        from ..engine.api import configure, get_orchestrator

        previous: dict[str, Any] | None = None
        if args.address:
            busy = [r for r, a in get_orchestrator().runs.items() if not a.quiescent]
            if busy:
                raise UsageError(
                    f"%workflow cluster: {len(busy)} run(s) still running in this kernel "
                    f"({', '.join(busy[:3])}); wait for them or cancel them first"
                )
            previous = dict(api._config)  # to put back if the new address cannot be reached
            configure(scheduler=args.address)
        try:
            executor = get_orchestrator().executor
            # Executors connect lazily, on the first task; this command is the place to connect.
            start = getattr(executor, "start", None)
            if callable(start):
                start()
        except Exception as exc:  # cannot reach the scheduler: one line, not a traceback
            if previous is not None:
                # A failed connect changes nothing: the next run goes where it went before.
                configure(
                    store=previous.get("store"),
                    scheduler=previous.get("scheduler"),
                    executor=previous.get("executor"),
                )
            where = " (kept the previous configuration)" if previous is not None else ""
            raise UsageError(
                f"%workflow cluster: {type(exc).__name__}: {first_line(exc)}{where}"
            ) from None
        link = executor.dashboard_link
        name = type(executor).__name__
        if not link:
            print(f"no dashboard: tasks run on {name}")
            return None
        import html

        where = f" ({args.address})" if args.address else ""
        _display(
            {
                "text/plain": f"Dask dashboard{where}: {link}",
                "text/html": f'Dask dashboard{html.escape(where)}: <a href="{html.escape(link)}" '
                f'target="_blank">{html.escape(link)}</a>',
            },
            raw=True,
        )
        return None

    # -- helpers --------------------------------------------------------------------------------
    def _workflow(self, name: str) -> Workflow:
        from ..definition import load
        from ..sources import get_workflow, is_workflow_file_name, registered_workflows

        found = get_workflow(name)
        if found is not None:
            return found
        if is_workflow_file_name(name) or Path(name).is_file():
            return load(Path(name))
        known = ", ".join(sorted(registered_workflows())) or "none yet: define one with %%workflow"
        raise UsageError(f"unknown workflow {name!r} (defined: {known})")

    def _start(self, workflow: Workflow, assignments: list[str]) -> Run:
        from ..engine.api import start_run
        from ..spec.params import parse_assignments

        try:
            params = parse_assignments(assignments)
            run = start_run(workflow, params, wait=False)
        except SpecError as exc:
            raise UsageError(str(exc)) from None
        except WorkflowError as exc:
            raise UsageError(first_line(exc)) from None
        self.last_run = run
        return run

    def _show_live(
        self, run: Run, workflow: Workflow | None = None, *, update: bool = False
    ) -> tuple[Any, Any]:
        """Display a graph widget following ``run``; returns it and its display handle."""
        from .live import bind_run, widget_for_workflow

        widget = widget_for_workflow(workflow) if workflow is not None else None
        if widget is not None and workflow is not None:
            # Editable once the run has ended; a file's edits go back to the file.
            widget.enable_editing(workflow)
        binding = bind_run(run, widget)
        return binding.widget, _display(binding.widget, update=update)

    def _wait(self, run: Run, handle: Any = None, widget: Any = None) -> None:
        try:
            run.wait()
        except KeyboardInterrupt:
            # Stop waiting, not the run: it goes on in the background.
            print(
                f"still {run.status} in the background: %workflow cancel {run.run_id} stops it",
                file=sys.stderr,
            )
            return
        if handle is not None and widget is not None:
            # The live view is up to date already; redisplaying also refreshes the static
            # picture that is saved with the notebook (nbclient, papermill, nbconvert).
            handle.update(widget)


def _split(line: str) -> list[str]:
    from IPython.utils.process import arg_split

    try:
        return arg_split(line, posix=True, strict=True)
    except ValueError as exc:  # an unclosed quote
        raise UsageError(f"%workflow: {exc}") from None


# -- extension entry points ---------------------------------------------------------------------


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext jupyter_workflows``: register ``%%workflow`` and ``%workflow``, and
    ``%%lifecycle`` / ``%lifecycle`` (:mod:`.lifecycle_magics`)."""
    from .lifecycle_magics import LifecycleMagics

    ipython.register_magics(WorkflowMagics(ipython))
    ipython.register_magics(LifecycleMagics(ipython))


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """``%unload_ext jupyter_workflows``: remove the magics again."""
    manager = ipython.magics_manager
    for kind in ("line", "cell"):
        manager.magics[kind].pop("workflow", None)
        manager.magics[kind].pop("lifecycle", None)
    manager.registry.pop(WorkflowMagics.__name__, None)
    manager.registry.pop("LifecycleMagics", None)
