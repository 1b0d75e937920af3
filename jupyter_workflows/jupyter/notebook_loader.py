"""Read the workflows a notebook defines: ``jupyter-workflows run NOTEBOOK.ipynb``.

Design
------
* **The notebook's own code defines them.** Its code cells run, in order, in a fresh
  :class:`~IPython.core.interactiveshell.InteractiveShell`, so magics, ``!shell`` lines and
  ``%load_ext`` behave as in Jupyter. The shell is private: it is not the process's IPython
  singleton, does not record history, and does not keep ``sys.modules["__main__"]`` (a notebook
  read from inside a kernel or a test leaves that kernel alone). Functions it defines still live
  in a ``__main__`` module, as in a kernel, so cloudpickle ships them to Dask workers by value
  and a run's stored code can be resumed from another process.
* **Define, do not run.** The extension is loaded headless
  (:class:`~jupyter_workflows.jupyter.magics.WorkflowMagics` ``headless=True``): ``%%workflow``
  cells define and register workflows; ``--run`` flags and ``%workflow`` line commands are
  skipped and nothing is displayed (CONTRACT §5). ``%load_ext jupyter_workflows`` in the notebook
  finds the extension already loaded.
* **As in Jupyter:** cells run with the notebook's folder as the working directory and on
  ``sys.path``; ``jw.configure(...)`` calls in the notebook take effect, and the CLI configures
  after loading, so its options win. What cells print is captured (the CLI's ``--json`` owns
  stdout).
* **Errors are one line**, a :class:`~jupyter_workflows.exceptions.SpecError` in the
  ``FILE:LINE:COL: message`` form of every other file, LINE and COL counted in the cell, and the
  cell's number (counting every cell from 1) after the message: a cell that raises
  (``quick.ipynb:2:5: NameError: name 'x' is not defined (cell 3)``), a ``%%workflow`` cell with
  bad YAML (``quick.ipynb:3:7: YAML syntax error: ... (cell 4)``). Not positioned: no workflow,
  or several without ``--workflow``.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from IPython.core.interactiveshell import InteractiveShell

    from ..definition import Workflow

__all__ = ["code_cells", "workflow_from_notebook", "workflows_from_notebook"]


def code_cells(path: str | os.PathLike[str]) -> list[tuple[int, str]]:
    """``(number, source)`` of the notebook's code cells; numbers count every cell from 1.

    Raises
    ------
    SpecError
        When the file cannot be read as a notebook.
    """
    import nbformat

    file = str(path)
    try:
        nb = nbformat.read(file, as_version=4)
    except FileNotFoundError:
        raise SpecError("no such file", file=file) from None
    except Exception as exc:
        raise SpecError(
            f"not a readable notebook ({type(exc).__name__}: {exc})", file=file
        ) from None
    return [
        (number, cell.source)
        for number, cell in enumerate(nb.cells, start=1)
        if cell.cell_type == "code"
    ]


def _new_shell() -> InteractiveShell:
    """A private shell: not the singleton, no history, ``sys.modules`` left as it was."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.autocall = 0
    main = types.ModuleType("__main__", doc="a notebook read by jupyter_workflows")
    saved = sys.modules.get("__main__")
    try:
        shell = InteractiveShell(config=config, user_module=main)
    finally:
        # The shell registers its user module as __main__; the process keeps its own.
        if saved is not None:
            sys.modules["__main__"] = saved
    return shell


def _load_extension(shell: InteractiveShell) -> Any:
    from .lifecycle_magics import LifecycleMagics
    from .magics import WorkflowMagics

    magics = WorkflowMagics(shell, headless=True)
    shell.register_magics(magics)
    shell.register_magics(LifecycleMagics(shell, headless=True))
    # `%load_ext jupyter_workflows` in the notebook must not register the interactive magics.
    manager = shell.extension_manager
    assert manager is not None, "an InteractiveShell always has an extension manager"
    manager.loaded.add("jupyter_workflows")
    return magics


def _describe(shell: InteractiveShell, exc: BaseException) -> tuple[int | None, int | None, str]:
    """Where in the cell ``exc`` was raised (line, column, when known) and its one-line message."""
    from ..exceptions import WorkflowError

    if isinstance(exc, SyntaxError) and exc.msg:
        first = exc.msg.strip().splitlines()[0]  # str() adds "(<ipython-input-...>, line 1)"
    else:
        first = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, WorkflowError) and first:
        message = first
    else:
        message = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    line = col = None
    names = getattr(shell.compile, "_filename_map", {})
    cell_file = None  # the file IPython compiled this cell as: its outermost frame's
    tb = exc.__traceback__
    while tb is not None:  # the innermost frame of this cell's code (not an earlier cell's)
        file = tb.tb_frame.f_code.co_filename
        if cell_file is None and file in names:
            cell_file = file
        if file == cell_file:
            line, col = tb.tb_lineno, _column(tb.tb_frame.f_code, tb.tb_lasti, tb.tb_lineno)
        tb = tb.tb_next
    if line is None and isinstance(exc, SyntaxError) and exc.lineno:
        line, col = exc.lineno, exc.offset
    return line, col, message


def _column(code: types.CodeType, lasti: int, line: int) -> int | None:
    """The 1-based column of the instruction at ``lasti`` (Python 3.11+ keeps positions)."""
    positions = getattr(code, "co_positions", None)
    if positions is None or lasti < 0:  # pragma: no cover - Python < 3.11
        return None
    for index, (start, _end, col, _end_col) in enumerate(positions()):
        if index == lasti // 2:
            return col + 1 if start == line and col is not None else None
    return None


def _magic_line(source: str) -> int:
    """The 1-based line of a cell's ``%%`` magic line (IPython skips blank lines before it)."""
    for number, line in enumerate(source.splitlines(), start=1):
        if line.strip():
            return number
    return 1


def _cell_error(
    shell: InteractiveShell, exc: BaseException, label: str, number: int, source: str
) -> str:
    """``NOTEBOOK:LINE:COL: message (cell N)``, LINE and COL counted in cell N.

    The ``FILE:LINE:COL: message`` of every other error (CONTRACT §5), with the cell named after
    the message. An error without a position points at the cell's first line.
    """
    import re

    from IPython.core.error import UsageError

    if isinstance(exc, UsageError):
        text = (str(exc).strip().splitlines() or ["UsageError"])[0]
        # The %%workflow magic positions its errors in the cell: "nb.ipynb:3:7: ...".
        positioned = re.match(rf"{re.escape(label)}:(\d+)(?::(\d+))?: (.*)", text)
        if positioned:
            line, col, message = positioned.groups()
            return f"{label}:{line}:{col or 1}: {message} (cell {number})"
        if text.startswith(f"{label}: "):
            text = text[len(label) + 2 :]
        elif re.match(r"[^:\s]+:\d+:\d+: ", text):
            # Positioned in another file (a nested workflow beside the notebook); the task that
            # runs it is positioned in the cell's YAML, which starts after the magic line.
            offset = _magic_line(source)
            text = re.sub(
                r"<cell>:(\d+):(\d+)",
                lambda m: f"{label}:{int(m.group(1)) + offset}:{m.group(2)}",
                text,
            )
            return f"{text} (cell {number})"
        return f"{label}:{_magic_line(source)}:1: {text} (cell {number})"
    line, col, message = _describe(shell, exc)
    return f"{label}:{line or _magic_line(source)}:{col or 1}: {message} (cell {number})"


def _restore_prompts(saved: dict[str, Any]) -> None:
    """IPython sets ``sys.ps1``..``ps3`` (a sign of an interactive session); undo that."""
    for name in ("ps1", "ps2", "ps3"):
        if name in saved:
            setattr(sys, name, saved[name])
        elif hasattr(sys, name):
            delattr(sys, name)


def workflows_from_notebook(path: str | os.PathLike[str]) -> dict[str, Workflow]:
    """Run the notebook's code cells (headless) and return the workflows they define.

    Raises
    ------
    SpecError
        When the notebook cannot be read or a cell raises; names the cell.
    """
    from ..definition import registered_workflows

    nb_path = Path(path)
    label = nb_path.name
    cells = code_cells(nb_path)
    folder = str(nb_path.resolve().parent)
    before = registered_workflows()
    prompts = {name: getattr(sys, name) for name in ("ps1", "ps2", "ps3") if hasattr(sys, name)}
    shell = _new_shell()
    magics = _load_extension(shell)
    cwd = os.getcwd()
    if folder not in sys.path:
        sys.path.insert(0, folder)
    captured = io.StringIO()
    try:
        os.chdir(folder)
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            for number, source in cells:
                if not source.strip():
                    continue
                magics.cell_label = label  # positions are completed by _cell_error
                magics.line_offset = _magic_line(source)  # lines before the YAML
                result = shell.run_cell(source, store_history=False, silent=True)
                error = result.error_before_exec or result.error_in_exec
                if error is not None:
                    raise SpecError(_cell_error(shell, error, label, number, source))
    finally:
        os.chdir(cwd)
        with contextlib.suppress(Exception):
            shell.cleanup()
        _restore_prompts(prompts)
    after = registered_workflows()
    return {name: wf for name, wf in after.items() if before.get(name) is not wf}


def workflow_from_notebook(path: str | os.PathLike[str], name: str | None = None) -> Workflow:
    """The workflow ``name`` (or the only one) a notebook defines.

    Parameters
    ----------
    path:
        The ``.ipynb`` file.
    name:
        Which workflow, when the notebook defines several (``--workflow NAME``).

    Raises
    ------
    SpecError
        A cell fails, the notebook defines no workflow, several without ``name``, or none
        called ``name``; the message lists the ones it defines.
    """
    file = str(path)
    found = workflows_from_notebook(path)
    listed = ", ".join(sorted(found)) or "none"
    if name is not None:
        if name in found:
            return found[name]
        raise SpecError(
            f"the notebook defines no workflow {name!r} (it defines: {listed})", file=file
        )
    if not found:
        raise SpecError(
            "the notebook defines no workflow (use a %%workflow cell or @jw.workflow)", file=file
        )
    if len(found) > 1:
        raise SpecError(
            f"the notebook defines several workflows ({listed}): choose one with --workflow NAME",
            file=file,
        )
    return next(iter(found.values()))
