"""The :class:`Workflow` object users hold, and :func:`load`.

A ``Workflow`` is the validated spec plus where it came from (file, folder, source map). It
compiles lazily, validates on demand, draws itself as a networkx graph, and runs through the one
orchestrator every surface shares.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import hooks
from .exceptions import ActionNotFound, SpecError

# How a workflow is found (registered names, NAME.yaml beside a parent) lives in ``sources``;
# these names stay importable from here.
from .sources import (
    get_workflow,
    is_notebook,
    looks_like_path,
    register_workflow,
    registered_workflows,
    resolve_workflow,
)
from .spec.compile import CompiledWorkflow, compile_workflow
from .spec.loader import SourceMap, check_regular_file, load_spec, read_text
from .spec.models import WorkflowSpec

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

    from .engine.run import Run
    from .spec.validate import Warning_

__all__ = [
    "Workflow",
    "get_workflow",
    "load",
    "register_workflow",
    "registered_workflows",
    "resolve_workflow",
    "workflow",
]

_looks_like_path = looks_like_path  # the name other modules imported before ``sources``


class Workflow:
    """A workflow definition, ready to validate, draw and run.

    Build one with :func:`load` (YAML/JSON), the ``%%workflow`` magic, or ``@jw.workflow``.
    """

    def __init__(
        self,
        spec: WorkflowSpec,
        *,
        source_map: SourceMap | None = None,
        path: str | Path | None = None,
        base_dir: str | Path | None = None,
        source: str | None = None,
    ) -> None:
        self.spec = spec
        self.source_map = source_map or SourceMap(file=str(path) if path else None)
        self.path = Path(path) if path else None
        if base_dir is None:
            base_dir = self.path.parent if self.path else Path.cwd()
        self.base_dir = Path(base_dir).resolve()
        #: The text it was loaded from, when it was (kept for export and the editor).
        self.source = source
        self._validated: tuple[Warning_, ...] | None = None

    # -- identity ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def description(self) -> str | None:
        return self.spec.description

    @property
    def parameters(self) -> dict[str, Any]:
        return {k: v.model_dump(exclude_defaults=True) for k, v in self.spec.parameters.items()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workflow) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec.name)

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r}: {len(self.compiled.tasks)} tasks>"

    # -- compile, validate, draw ------------------------------------------------------------
    @functools.cached_property
    def compiled(self) -> CompiledWorkflow:
        return compile_workflow(self.spec)

    def resolve_action(self, name: str):
        """The action ``name`` as this workflow's tasks see it.

        A bare name may be registered by a module that another task's ``module:function``
        imports, wherever that task stands in the document: when the name is not known yet,
        those modules are imported and it is looked up again.
        """
        from .actions.registry import resolve_action

        try:
            return resolve_action(name, self.base_dir)
        except ActionNotFound:
            if ":" in name or not self._import_action_modules():
                raise
        return resolve_action(name, self.base_dir)

    def _import_action_modules(self) -> bool:
        """Import the modules of every ``module:function`` action; True if there are any."""
        from .actions.registry import resolve_action

        paths = {ct.action for ct in self.compiled.tasks.values() if ct.action and ":" in ct.action}
        for path in sorted(paths):
            try:
                resolve_action(path, self.base_dir)
            except ActionNotFound:
                pass  # reported at its own task
        return bool(paths)

    def resolve_workflow(self, name: str) -> Workflow:
        return resolve_workflow(name, self.base_dir)

    def validate(self) -> list[Warning_]:
        """Check the whole workflow; raise :class:`SpecError` or return warnings.

        Checks transitions and needs to unknown tasks, dependency cycles, joins, template
        syntax, that every action and nested workflow resolves, and parameter defaults. Each
        nested workflow that resolves is validated the same way (its errors keep their own
        ``FILE:LINE:COL``), and nesting that comes back to a workflow (``a -> b -> a``) is
        refused.
        """
        return self._validate(())

    def _validate(self, outer: tuple[str, ...]) -> list[Warning_]:
        """:meth:`validate`, as a nested workflow of the workflows named in ``outer``."""
        if self._validated is not None:
            return list(self._validated)
        from .spec.validate import NestedWorkflowCycle, validate_compiled

        nesting = (*outer, self.name)
        checked: dict[str, Workflow] = {}

        def workflow_resolver(name: str) -> object:
            if name == self.name:
                raise ActionNotFound(f"workflow {name!r} cannot nest itself")
            if name in nesting:
                # Raised up to the workflow the cycle starts at, which reports it.
                raise NestedWorkflowCycle((*nesting[nesting.index(name) :], name))
            if name in checked:
                return checked[name]
            child = self.resolve_workflow(name)
            try:
                child._validate(nesting)
            except NestedWorkflowCycle as cycle:
                if cycle.names[0] != self.name:
                    raise
                raise ActionNotFound("nested workflow cycle: " + " -> ".join(cycle.names)) from None
            checked[name] = child
            return child

        def action_resolver(name: str) -> object:
            try:
                return self.resolve_action(name)
            except ActionNotFound:
                # `action: NAME` may name a workflow (a nested run): then it is checked as one.
                try:
                    self.resolve_workflow(name)
                except ActionNotFound:
                    pass
                else:
                    return workflow_resolver(name)
                raise

        warnings = validate_compiled(
            self.compiled,
            self.source_map,
            resolve_action=action_resolver,
            resolve_workflow=workflow_resolver,
        )
        # The spec is frozen: the graph checks hold for good. Action resolution is checked
        # again by every run when it resolves the actions it calls.
        self._validated = tuple(warnings)
        return warnings

    def to_dict(self) -> dict[str, Any]:
        """The document as plain JSON-able data, short forms where they read better."""
        return self._document("json")

    def _document(self, mode: str) -> dict[str, Any]:
        data = self.spec.model_dump(mode=mode, exclude_defaults=True)
        if "tasks" in data:
            data["tasks"] = {n: _tidy_task(t) for n, t in data["tasks"].items()}
        if "defaults" in data:
            data["defaults"] = _tidy_task(data["defaults"])
        order = ["name", "description", "version", "schedule", "parameters", "vars", "defaults"]
        return {
            k: data[k] for k in sorted(data, key=lambda k: order.index(k) if k in order else 99)
        }

    def to_yaml(self) -> str:
        """YAML that loads back to an equal workflow."""
        # Python values, not JSON ones: JSON mode turns inf into null and dates into strings,
        # which YAML keeps as they are.
        return self._yaml

    def definition_json(self) -> str:
        """The document as JSON (valid YAML too): what a run stores to be resumed from.

        JSON because a stored definition is read back on every resume, and ``json.loads``
        reads a 10,000-task workflow many times faster than any YAML parser.
        """
        return self._json

    @functools.cached_property
    def _json(self) -> str:
        import json

        return json.dumps(self._document("python"), default=str)

    @functools.cached_property
    def _yaml(self) -> str:
        # The spec is frozen, so the text is computed once (every run stores it); libyaml's
        # emitter when it is there: the pure-Python one takes half a second for 1000 tasks.
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        return yaml.dump(
            self._document("python"), Dumper=dumper, sort_keys=False, allow_unicode=True, width=100
        )

    @property
    def graph(self) -> nx.DiGraph:
        """Tasks as nodes, transitions as edges with ``kind`` (success, failure, ...)."""
        from .spec.graph import to_networkx

        return to_networkx(self.compiled)

    # -- run --------------------------------------------------------------------------------
    def run(
        self, parameters: dict[str, Any] | None = None, *, wait: bool = True, **options: Any
    ) -> Run:
        """Run the workflow; parameters are checked first (a bad one creates no run).

        Parameters
        ----------
        parameters:
            Values for the declared parameters.
        wait:
            Block until the run ends (or pauses, or waits for an inquiry).
        """
        # ``engine.api.start_run``: the engine is a layer above this one (see ``hooks``).
        run: Run = hooks.start_run(self, parameters, wait=wait, **options)
        return run

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        return hooks.display_bundle(self)  # the ``jupyter`` layer's display


_TASK_ORDER = [
    "description",
    "type",
    "action",
    "workflow",
    "input",
    "with_items",
    "batch_size",
    "chunk_size",
    "tasks",
    "needs",
    "group",
    "join",
    "retry",
    "timeout",
    "resources",
    "queue",
    "priority",
    "cache",
    "max_runs",
    "publish",
    "next",
    "decision",
    "on_success",
    "on_failure",
    "on_complete",
]


def _tidy_task(task: dict[str, Any]) -> dict[str, Any]:
    """Reader-friendly task fields: a lone name unlisted, ``cache: true``, ``retry: N``."""
    out = {}
    for key in sorted(task, key=lambda k: _TASK_ORDER.index(k) if k in _TASK_ORDER else 99):
        value = task[key]
        if key in ("on_success", "on_failure", "on_complete", "needs") and len(value) == 1:
            value = value[0]
        elif key == "cache" and value == {}:
            value = True
        elif key == "retry" and set(value) == {"count"}:
            value = value["count"]
        elif key == "tasks":
            value = {n: _tidy_task(t) for n, t in value.items()}
        elif key == "publish" and all(len(item) == 1 for item in value):
            keys = [next(iter(item)) for item in value]
            if len(set(keys)) == len(keys):
                value = {k: v for item in value for k, v in item.items()}
        out[key] = value
    return out


_ACCEPTS = "jw.load() takes a .yaml, .yml or .json workflow file, or the YAML/JSON text itself"


def load(source: str | os.PathLike[str], *, name: str | None = None) -> Workflow:
    """Load a workflow from a file path or from YAML/JSON text.

    Parameters
    ----------
    source:
        A path to ``.yaml``/``.yml``/``.json``, or the document itself.
    name:
        The workflow's name when the document has none (a file defaults to its stem).

    Raises
    ------
    SpecError
        With ``FILE:LINE:COL`` for any invalid document.
    """
    if isinstance(source, os.PathLike) or (isinstance(source, str) and looks_like_path(source)):
        path = Path(source)
        try:
            check_regular_file(path)
        except SpecError as exc:
            if exc.message == "no such file":
                raise SpecError(f"no such file ({_ACCEPTS})", file=exc.file) from None
            raise
        if is_notebook(path.name):
            raise SpecError(
                f"{_ACCEPTS}; a notebook runs with `jupyter-workflows run {path}` "
                "or its %%workflow cells",
                file=str(path),
            )
        text = read_text(path)
        spec, smap = load_spec(text, file=str(path), name=name or _stem_name(path))
        return Workflow(spec, source_map=smap, path=path, source=text)
    if not isinstance(source, str):
        raise SpecError(f"{_ACCEPTS}, not {type(source).__name__}")
    spec, smap = load_spec(source, file=None, name=name)
    return Workflow(spec, source_map=smap, source=source)


def _stem_name(path: Path) -> str:
    import re

    stem = path.name.split(".")[0]
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", stem) or "workflow"
    return stem if re.match(r"[A-Za-z_]", stem) else f"_{stem}"


def workflow(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    schedule: str | None = None,
    register: bool = True,
) -> Any:
    """Turn a function into a :class:`~jupyter_workflows.Workflow` (``@jw.workflow``).

    The function is traced once, at decoration time (:mod:`jupyter_workflows.spec.python`).

    Parameters
    ----------
    name:
        The workflow's name (default: the function's).
    schedule:
        A cron expression (``"0 9 * * *"``) for ``jupyter-workflows serve``.
    register:
        Make it resolvable by name (nested workflows, magics, REST).

    Examples
    --------
    >>> import jupyter_workflows as jw
    >>> @jw.task
    ... def double(x: int) -> int:
    ...     return 2 * x
    >>> @jw.workflow
    ... def pipeline(n: int = 3):
    ...     "Double twice."
    ...     return double(double(n))
    >>> sorted(pipeline.compiled.tasks)
    ['double', 'double_2']
    """

    def build(f: Callable[..., Any]) -> Workflow:
        from .actions.registry import BUILDER
        from .spec.python import trace

        spec, smap, base_dir = trace(f, BUILDER, name=name, schedule=schedule)
        wf = Workflow(spec, source_map=smap, base_dir=base_dir)
        if register:
            register_workflow(wf)
        return wf

    if fn is not None:
        return build(fn)
    return build
