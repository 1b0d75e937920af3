"""Where a workflow comes from: files, job folders, notebooks and registered names.

One table of extensions (:data:`WORKFLOW_SUFFIXES`, :data:`NOTEBOOK_SUFFIX`), matched without
regard to case everywhere (``HELLO.YAML`` is a workflow file for ``jw.load``, the CLI, the REST
API's discovery and nested-workflow lookup alike), and every way of finding a workflow:

* :func:`load_target` — what the CLI, ``serve`` and schedules take: a YAML/JSON file, an exported
  job folder (``workflow.yaml`` inside) or a notebook;
* :func:`resolve_workflow` — a nested workflow by name: registered, else ``NAME.yaml`` beside
  the parent, else a StackStorm pack action ``PACK.ACTION`` whose runner is a workflow;
* :func:`register_workflow` / :func:`get_workflow` / :func:`registered_workflows` — the names
  known in this process (``%%workflow`` cells, ``@jw.workflow``, started runs);
* :func:`workflow_files` — the workflow files directly in a folder (the REST API's listing).

This module sits in the ``definition`` layer (it builds :class:`~jupyter_workflows.definition.
Workflow` objects with :func:`~jupyter_workflows.definition.load`); reading a notebook needs
the ``jupyter`` layer's magics and goes through :mod:`jupyter_workflows.hooks`.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .exceptions import ActionNotFound, SpecError

if TYPE_CHECKING:  # pragma: no cover
    from .actions.packs import PackAction
    from .definition import Workflow

__all__ = [
    "JOB_FOLDER_FILES",
    "NOTEBOOK_SUFFIX",
    "WORKFLOW_SUFFIXES",
    "get_workflow",
    "is_notebook",
    "is_workflow_file_name",
    "job_folder_file",
    "load_target",
    "looks_like_path",
    "register_workflow",
    "registered_workflows",
    "resolve_workflow",
    "sibling_file",
    "workflow_files",
]

#: The extensions of workflow documents (YAML or JSON), in the order a name is looked up.
WORKFLOW_SUFFIXES: tuple[str, ...] = (".yaml", ".yml", ".json")
#: A notebook whose ``%%workflow`` cells define workflows.
NOTEBOOK_SUFFIX = ".ipynb"
#: What an exported job folder holds its workflow in, in the order they are looked for.
JOB_FOLDER_FILES: tuple[str, ...] = tuple(f"workflow{s}" for s in WORKFLOW_SUFFIXES)


def is_workflow_file_name(name: str | os.PathLike[str]) -> bool:
    """True when ``name`` ends in a workflow document's extension, in any case."""
    return str(name).lower().endswith(WORKFLOW_SUFFIXES)


def is_notebook(name: str | os.PathLike[str]) -> bool:
    """True when ``name`` ends in ``.ipynb``, in any case."""
    return str(name).lower().endswith(NOTEBOOK_SUFFIX)


def looks_like_path(value: str) -> bool:
    """A path rather than a document: one line that names something on disk, a workflow file's
    name, or one line with no ``key: value`` mapping (as YAML that would be a bare string, never
    a workflow).

    Decided on the string and at most an ``lstat``: nothing is opened here, so a FIFO or a
    device is never touched (``load`` then refuses anything but a regular file), and a name
    too long for the OS is simply not there.
    """
    if not value.strip() or "{" in value or any(c < " " for c in value):
        return False  # empty, flow YAML/JSON, several lines, control characters: text
    if len(value) < 4096 and os.path.lexists(value):
        return True
    if re.match(r"\s*[^\s:#][^:]*:(\s|$)", value):
        return False  # ``name: x``: a one-line YAML mapping
    return is_workflow_file_name(value) or is_notebook(value) or ":" not in value


def job_folder_file(folder: Path) -> Path | None:
    """The workflow file of an exported job folder (``workflow.yaml``), or None."""
    for candidate in JOB_FOLDER_FILES:
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def sibling_file(base_dir: str | os.PathLike[str], name: str) -> Path | None:
    """``NAME.yaml`` (``.yml``, ``.json``, any case) in ``base_dir``, or None."""
    folder = Path(base_dir)
    for ext in WORKFLOW_SUFFIXES:
        candidate = folder / f"{name}{ext}"
        if candidate.is_file():
            return candidate
    try:  # NAME.YAML on a file system that tells case apart
        entries = sorted(folder.iterdir())
    except OSError:
        return None
    for candidate in entries:
        stem, dot, ext = candidate.name.rpartition(".")
        if dot and stem == name and f".{ext.lower()}" in WORKFLOW_SUFFIXES and candidate.is_file():
            return candidate
    return None


def workflow_files(root_dir: Path) -> list[Path]:
    """Files directly in ``root_dir`` with a workflow extension (any case), not hidden, sorted."""
    try:
        candidates = sorted(p for p in root_dir.iterdir() if is_workflow_file_name(p.name))
    except OSError:
        return []
    return [p for p in candidates if not p.name.startswith(".") and p.is_file()]


# -- registered names ---------------------------------------------------------------------------
_WORKFLOWS: dict[str, Workflow] = {}
_LOCK = threading.Lock()


def register_workflow(workflow: Workflow) -> Workflow:
    """Make ``workflow`` resolvable by name (nested runs, magics, the REST API)."""
    with _LOCK:
        _WORKFLOWS[workflow.name] = workflow
    return workflow


def get_workflow(name: str) -> Workflow | None:
    """The registered workflow called ``name``, if any."""
    return _WORKFLOWS.get(name)


def registered_workflows() -> dict[str, Workflow]:
    """All registered workflows (a copy)."""
    return dict(_WORKFLOWS)


# -- finding ------------------------------------------------------------------------------------
def resolve_workflow(name: str, base_dir: str | Path | None = None) -> Workflow:
    """A registered workflow, else ``NAME.yaml``/``NAME.yml``/``NAME.json`` in ``base_dir``."""
    found = _WORKFLOWS.get(name)
    if found is not None:
        return found
    if base_dir is not None:
        candidate = sibling_file(base_dir, name)
        if candidate is not None:
            from .definition import load

            return load(candidate)
        from .actions.packs import workflow_entry

        entry = workflow_entry(name, base_dir)  # ``PACK.ACTION`` with an orquesta runner
        if entry is not None:
            return _pack_workflow(entry)
    raise ActionNotFound(
        f"unknown workflow {name!r} (register it, or put {name}.yaml beside the parent workflow)"
    )


def _pack_workflow(entry: PackAction) -> Workflow:
    """A pack action whose runner is a workflow: its metadata file, which loads as its
    ``entry_point`` with the metadata's parameters (``spec.st2_action``; attune's
    ``workflow_file`` actions the same way), named by the action's ref."""
    from .definition import Workflow, load

    wf = load(entry.path)
    if wf.name == entry.ref:
        return wf
    spec = wf.spec.model_copy(update={"name": entry.ref})
    return Workflow(spec, source_map=wf.source_map, path=wf.path, source=wf.source)


def load_target(file: str, workflow: str | None = None) -> Workflow:
    """A workflow from a YAML/JSON file, an exported job folder, or a notebook.

    Extensions are matched without regard to case (``HELLO.YAML``). ``workflow`` picks one of a
    notebook's workflows; for a file or job folder, which hold one, it must name that one.
    """
    from .definition import load

    path = Path(file)
    if path.is_dir():
        inside = job_folder_file(path)
        if inside is None:
            raise SpecError("not a job folder: no workflow.yaml inside", file=file)
        return _named(load(inside), workflow, file)
    if is_notebook(path.name):
        from . import hooks

        found: Workflow = hooks.notebook_workflow(path, workflow)
        return found
    if not path.exists():
        raise SpecError("no such file", file=file)
    if not is_workflow_file_name(path.name):
        raise SpecError("expected a .yaml, .yml, .json, .ipynb file or a job folder", file=file)
    return _named(load(path), workflow, file)


def _named(wf: Workflow, workflow: str | None, file: str) -> Workflow:
    if workflow is not None and workflow != wf.name:
        raise SpecError(
            f"the file defines workflow {wf.name!r}, not {workflow!r} "
            "(--workflow chooses among a notebook's workflows)",
            file=file,
        )
    return wf
