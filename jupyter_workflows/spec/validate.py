"""Checks that need the whole graph (networkx), beyond what a single field's model can say.

Errors stop a run before it exists; warnings are returned for the surfaces to show.
Each message names the task and, through the :class:`SourceMap`, the line and column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import networkx as nx

from ..exceptions import SpecError, first_line
from .compile import CompiledWorkflow
from .loader import SourceMap, gather_errors
from .models import WorkflowSpec

__all__ = ["NestedWorkflowCycle", "Warning_", "iter_templates", "validate_compiled"]


@dataclass(frozen=True)
class Warning_:
    """A problem that does not stop a run (unreachable task, unbounded loop)."""

    message: str
    file: str | None
    line: int | None
    col: int | None

    def __str__(self) -> str:
        where = ":".join(
            str(p) for p in (self.file or "<string>", self.line, self.col) if p is not None
        )
        return f"{where}: warning: {self.message}"


def iter_templates(spec: WorkflowSpec) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every string in the document that the engine renders, with its path."""

    def walk(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
        if isinstance(value, str):
            yield path, value
        elif isinstance(value, dict):
            for k, v in value.items():
                yield from walk(v, (*path, k))
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                yield from walk(v, (*path, i))

    yield from walk(spec.vars, ("vars",))
    yield from walk(spec.output_map, ("output_map",))

    def tasks(ts: dict[str, Any], prefix: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
        for name, t in ts.items():
            p = (*prefix, "tasks", name)
            yield from walk(t.input, (*p, "input"))
            yield from walk(t.with_items, (*p, "with_items"))
            if t.publish:
                yield from walk(t.publish, (*p, "publish"))
            for i, tr in enumerate(t.next):
                yield from walk(tr.when, (*p, "next", i, "when"))
                yield from walk(tr.publish, (*p, "next", i, "publish"))
            for i, d in enumerate(t.decision or ()):
                yield from walk(d.when, (*p, "decision", i, "when"))
                yield from walk(d.publish, (*p, "decision", i, "publish"))
            if t.cache is not None and t.cache.key:
                yield from walk(t.cache.key, (*p, "cache", "key"))
            if t.retry is not None and t.retry.when is not None:
                yield from walk(t.retry.when, (*p, "retry", "when"))
            if t.tasks:
                yield from tasks(t.tasks, p)

    if spec.defaults is not None and spec.defaults.retry is not None:
        yield from walk(spec.defaults.retry.when, ("defaults", "retry", "when"))
    yield from tasks(spec.tasks, ())


def _source_path(smap: SourceMap, path: tuple[Any, ...]) -> tuple[Any, ...]:
    """The path as written: ``publish: {k: v}`` is stored as the list ``[{k: v}]``."""
    if path in smap.values:
        return path
    for i in range(len(path) - 2):
        if path[i] == "publish" and isinstance(path[i + 1], int):
            written = (*path[: i + 1], *path[i + 2 :])
            if written in smap.values:
                return written
    return path


def validate_compiled(
    cw: CompiledWorkflow,
    smap: SourceMap,
    *,
    resolve_action: Callable[[str], object] | None = None,
    resolve_workflow: Callable[[str], object] | None = None,
) -> list[Warning_]:
    """Raise the errors found (a :class:`SpecErrors` when several; it reads as the first one in
    the order of the checks), or return the warnings.

    ``resolve_action``/``resolve_workflow`` raise when a name does not resolve; their error's
    message is reported at the task's ``action``/``workflow`` field.
    """
    from ..expressions import template_syntax_error

    spec = cw.spec
    warnings: list[Warning_] = []

    def warn(message: str, path: tuple[Any, ...], key: bool = False) -> None:
        line, col = smap.locate(path, key=key)
        warnings.append(Warning_(message, smap.file, line, col))

    paths = {name: ("tasks", name) for name in cw.tasks}
    for name, _task, path in _task_paths(spec):
        paths[name] = path

    errors: list[SpecError] = []  # all of them, reported together at the end

    # Template syntax, positioned inside multi-line strings; then every name must resolve.
    name_errors: list[SpecError] = []
    for path, text in iter_templates(spec):
        shift = 0
        if path[-1] == "when" and "{{" not in text and "{%" not in text and text.strip():
            text = "{{ " + text + " }}"  # a bare condition, read as one expression by the engine
            shift = 3
        if "{" not in text:
            continue
        found = template_name_errors(text, path, spec, cw, smap, shift=shift)
        if found:
            name_errors.extend(found)
            continue
        problem = template_syntax_error(text)
        if problem is not None:
            offset, _col, message = problem
            line, col = smap.locate_line(_source_path(smap, path), offset)
            errors.append(
                SpecError(f"template error: {message}", file=smap.file, line=line, col=col)
            )

    name_errors.sort(key=lambda e: (e.line or 0, e.col or 0))
    errors.extend(name_errors)

    # Transitions and needs to unknown tasks.
    for name, task, path in _task_paths(spec):
        for key in ("on_success", "on_failure", "on_complete", "needs"):
            for i, target in enumerate(getattr(task, key) or ()):
                if target not in cw.tasks and not (
                    key != "needs" and target in ("fail", "noop", "retry")
                ):
                    errors.append(_unknown(smap, (*path, key, i), name, target, cw, key))
        for i, tr in enumerate(task.next):
            for j, target in enumerate(tr.do):
                if target not in cw.tasks and target not in ("fail", "noop", "retry"):
                    errors.append(
                        _unknown(smap, (*path, "next", i, "do", j), name, target, cw, "next")
                    )
        for i, entry in enumerate(task.decision or ()):
            for key in ("next", "default"):
                for j, target in enumerate(getattr(entry, key) or ()):
                    if target not in cw.tasks and target not in ("fail", "noop", "retry"):
                        errors.append(
                            _unknown(
                                smap, (*path, "decision", i, key, j), name, target, cw, "decision"
                            )
                        )

    # Cycles through needs/group.
    needs_graph: nx.DiGraph[str] = nx.DiGraph()
    needs_graph.add_edges_from(cw.needs)
    cycle = None
    if not nx.is_directed_acyclic_graph(needs_graph):  # cheap; find_cycle only when needed
        try:
            cycle = nx.find_cycle(needs_graph)
        except nx.NetworkXNoCycle:
            cycle = None
    if cycle:
        names = [a for a, _ in cycle] + [cycle[0][0]]
        first = names[0]
        errors.append(
            smap.error(
                "dependency cycle through needs/group: " + " -> ".join(names),
                (*paths[first], "needs"),
            )
        )

    # Joins that can never be satisfied.
    for name, ct in cw.tasks.items():
        if isinstance(ct.join, int) and ct.join > len(ct.sources):
            errors.append(
                smap.error(
                    f"task {name!r} joins on {ct.join} inbound transitions but only "
                    f"{len(ct.sources)} task(s) lead to it",
                    (*paths[name], "join"),
                )
            )

    if not cw.start:
        errors.append(
            smap.error(
                "the workflow has no start task: every task is the target of a transition",
                ("tasks",),
                key=True,
            )
        )

    # Actions and nested workflows resolve. Import paths first: importing a module may register
    # the bare names other tasks use, and its import error is the one worth reporting.
    for name, ct in sorted(cw.tasks.items(), key=lambda item: ":" not in (item[1].action or "")):
        for key, target, resolve in (
            ("action", ct.action, resolve_action),
            ("workflow", ct.workflow, resolve_workflow),
        ):
            if target is None or resolve is None:
                continue
            try:
                resolved = resolve(target)
            except NestedWorkflowCycle:
                raise  # reported by the workflow the cycle starts at
            except SpecError as exc:
                if exc.line is None:
                    errors.append(
                        smap.error(f"task {name!r}: {first_line(exc)}", (*paths[name], key))
                    )
                else:
                    errors.append(_nested_error(exc, smap, (*paths[name], key), name, target))
            except Exception as exc:
                errors.append(smap.error(f"task {name!r}: {first_line(exc)}", (*paths[name], key)))
            else:
                # A pack action knows its required parameters (actions.packs).
                check = getattr(getattr(resolved, "fn", None), "check_pack_input", None)
                problem = check(ct.input) if key == "action" and callable(check) else None
                if problem:
                    at = (*paths[name], "input" if ct.input else key)
                    errors.append(smap.error(f"task {name!r}: {problem}", at))

    # Parameter defaults fit their declared type.
    from .params import check_value

    for pname, p in spec.parameters.items():
        if p.default is not None:
            default_problem = check_value(p, p.default)
            if default_problem:
                errors.append(
                    smap.error(
                        f"parameter {pname!r}: default {default_problem}",
                        ("parameters", pname, "default"),
                    )
                )

    # An unconditional ``do: retry`` starts its task again until max_runs, like a self-loop.
    for name, task, path in _task_paths(spec):
        for i, tr in enumerate(task.next):
            if "retry" in tr.do and tr.when is None and not task.max_runs:
                warn(
                    f"task {name!r}: an unconditional 'do: retry' runs it until max_runs "
                    f"({cw.tasks[name].max_runs if name in cw.tasks else 1000}); give it a "
                    "'when' or set max_runs to bound it",
                    (*path, "next", i, "do"),
                )

    # Warnings: unreachable tasks, loops without a bound.
    g: nx.DiGraph[str] = nx.DiGraph()
    g.add_nodes_from(cw.tasks)
    uncond: nx.DiGraph[str] = nx.DiGraph()
    for name, ct in cw.tasks.items():
        for tr in ct.next:
            for target in tr.targets:
                g.add_edge(name, target)
                if tr.when is None:
                    uncond.add_edge(name, target)
    reachable: set[str] = set()
    for s in cw.start:
        reachable |= {s} | nx.descendants(g, s)
    for name in cw.tasks:
        if name not in reachable:
            warn(f"task {name!r} is unreachable from the start tasks", paths[name], key=True)
    order = {name: i for i, name in enumerate(cw.tasks)}
    for cycle_nodes in nx.simple_cycles(uncond):
        # Start the loop at its first task in the document, so the warning is stable.
        first_at = min(range(len(cycle_nodes)), key=lambda i: order[cycle_nodes[i]])
        cycle_nodes = cycle_nodes[first_at:] + cycle_nodes[:first_at]
        if not any(cw.tasks[n].max_runs_set for n in cycle_nodes):
            first = cycle_nodes[0]
            warn(
                "unconditional loop "
                + " -> ".join([*cycle_nodes, first])
                + f" runs until max_runs ({cw.tasks[first].max_runs}); set max_runs to bound it",
                paths[first],
                key=True,
            )

    # The schedule parses (cron or RRULE); `jupyter-workflows serve` runs it.
    if spec.schedule is not None:
        from .schedules import schedule_problem

        schedule_error = schedule_problem(spec.schedule)
        if schedule_error is not None:
            errors.append(smap.error(schedule_error, ("schedule",)))
    if errors:
        raise gather_errors(errors)
    return warnings


class NestedWorkflowCycle(Exception):
    """Nested workflows that come back to one of their parents (``names[0]`` is repeated last).

    Raised by a nested workflow's validation and passed up to the workflow the cycle starts at,
    which reports it at its own task as ``nested workflow cycle: a -> b -> a``.
    """

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        super().__init__(" -> ".join(names))


def _nested_error(
    exc: SpecError, smap: SourceMap, path: tuple[Any, ...], task: str, workflow: str
) -> SpecError:
    """A nested workflow's positioned error, kept at its own ``FILE:LINE:COL``, saying which
    task (and which task of which parent, for deeper nesting) runs that workflow."""
    line, col = smap.locate(path)
    # (file, line, col, task) from the outermost workflow in; files shown beside this one's.
    inner = getattr(exc, "nested_chain", ())
    chain = [(smap.file, line, col, task)]
    chain += [(_beside(f, smap.file), ln, cl, t) for f, ln, cl, t in inner]
    base = getattr(exc, "nested_base", exc.message)
    child = getattr(exc, "nested_child", workflow)
    if exc.file is None:  # a workflow given as text: its lines only mean something in words
        base = f"line {exc.line}, column {exc.col}: {exc.message}" if not inner else base
        file, line_at, col_at = smap.file, line, col
    else:
        file, line_at, col_at = _beside(exc.file, smap.file), exc.line, exc.col
    hops = " -> ".join(
        ":".join(str(p) for p in (f or "<string>", ln, cl) if p is not None) + f" task {t!r}"
        for f, ln, cl, t in chain
    )
    # A pack action's metadata file says "action" (actions.packs marks its errors so).
    what = "action" if getattr(exc, "pack_action", False) and not inner else "nested workflow"
    error = SpecError(
        f"{base} (in {what} {child!r}, run by {hops})",
        file=file,
        line=line_at,
        col=col_at,
    )
    error.nested_base = base  # type: ignore[attr-defined]
    error.nested_chain = chain  # type: ignore[attr-defined]
    error.nested_child = child  # type: ignore[attr-defined]
    return error


def _beside(file: str | None, parent: str | None) -> str | None:
    """``file`` shown from ``parent``'s folder as the user wrote it, when it lies there."""
    from pathlib import Path

    if file is None or parent is None:
        return file
    try:
        rel = Path(file).resolve().relative_to(Path(parent).resolve().parent)
    except (ValueError, OSError):
        return file
    return str(Path(parent).parent / rel)


def _task_paths(spec: WorkflowSpec):
    def walk(tasks, prefix):
        for name, t in tasks.items():
            p = (*prefix, "tasks", name)
            yield name, t, p
            if t.tasks:
                yield from walk(t.tasks, p)

    yield from walk(spec.tasks, ())


def _unknown(smap: SourceMap, path, name, target, cw: CompiledWorkflow, key) -> SpecError:
    import difflib

    hint = difflib.get_close_matches(target, list(cw.tasks), n=1, cutoff=0.6)
    msg = f"task {name!r}: {key} names unknown task {target!r}"
    if hint:
        msg += f" (did you mean {hint[0]!r}?)"
    return smap.error(msg, path)


# -- strict templates: names that cannot resolve ----------------------------------------------

#: What ``task.X`` has (engine/state.py ``_view``).
TASK_ATTRIBUTES = frozenset(
    {"result", "status", "error", "attempts", "done", "total", "failed_items"}
)
#: ``system.*`` (CONTRACT §1.3).
SYSTEM_ATTRIBUTES = frozenset({"run_id", "workflow", "timestamp", "user"})
#: Names every template may use.
BASE_ROOTS = ("parameters", "vars", "task", "system", "kv")
#: Names a transition's ``when``/``publish`` may use besides.
OUTCOME_ROOTS = ("result", "error")
OUTCOME_FUNCTIONS = frozenset({"succeeded", "failed", "completed", "timed_out"})


def _task_field(path: tuple[Any, ...]) -> tuple[str | None, str | None, tuple[Any, ...]]:
    """``(task name, field, task path)`` of a template's path (``None`` outside tasks)."""
    for i in range(len(path) - 2, -1, -1):
        if path[i] == "tasks" and i + 1 < len(path) and isinstance(path[i + 1], str):
            return path[i + 1], (path[i + 2] if i + 2 < len(path) else None), path[: i + 2]
    return None, None, ()


def name_rules(path: tuple[Any, ...], spec: WorkflowSpec, cw: CompiledWorkflow, smap: SourceMap):
    """The :class:`~jupyter_workflows.expressions.NameRules` for the template at ``path``."""
    from ..expressions import NameRules

    roots = list(BASE_ROOTS)
    functions = {"secret"}
    task_name, field, _tp = _task_field(path)
    if task_name is not None:
        task = _find_task(spec, task_name)
        if field in ("input", "cache") and task is not None and task.with_items is not None:
            roots += ["item", "index"]
        if field in ("publish", "next", "decision", "retry"):
            roots += list(OUTCOME_ROOTS)
            functions |= OUTCOME_FUNCTIONS
            if task is not None and task.with_items is not None:
                roots += ["item", "index"]
    elif path[:2] == ("defaults", "retry"):
        # ``defaults.retry.when`` is every task's: a failed attempt's outcome, items included.
        roots += [*OUTCOME_ROOTS, "item", "index"]
        functions |= OUTCOME_FUNCTIONS
    # The dialects' functions (``ctx()``, ``yaql("...")``, StackStorm's helpers) work in native
    # documents too, so a converted file (``jupyter-workflows convert``) validates as it is.
    from .dialect_functions import FUNCTION_NAMES

    extra = getattr(smap, "dialect_names", None)
    attributes: dict[str, frozenset[str]] = {"system": SYSTEM_ATTRIBUTES}
    task_attributes = TASK_ATTRIBUTES
    if extra is not None:
        roots += [r for r in extra.get("roots", ()) if r not in roots]
        functions |= set(extra.get("functions", ()))
        attributes.update(extra.get("attributes", {}))
        task_attributes = task_attributes | frozenset(extra.get("task_attributes", ()))
    return NameRules(
        roots=tuple(roots),
        functions=frozenset(functions),
        tasks=frozenset(cw.tasks),
        task_attributes=task_attributes,
        attributes=attributes,
        quiet_functions=FUNCTION_NAMES,
    )


def _find_task(spec: WorkflowSpec, name: str):
    for task_name, task, _path in _task_paths(spec):
        if task_name == name:
            return task
    return None


def template_name_errors(
    text: str,
    path: tuple[Any, ...],
    spec: WorkflowSpec,
    cw: CompiledWorkflow,
    smap: SourceMap,
    *,
    shift: int = 0,
) -> list[SpecError]:
    """One positioned :class:`SpecError` per name in ``text`` that cannot resolve."""
    from ..expressions import check_template_names

    rules = name_rules(path, spec, cw, smap)
    out: list[SpecError] = []
    source = _source_path(smap, path)
    problems = check_template_names(text, rules)
    if not problems and "yaql(" in text:
        from .dialect_functions import yaql_problems

        problems = yaql_problems(text)
    for offset, col_in, message in problems:
        line, col = smap.locate_line(source, offset)
        if (
            offset == 1
            and col is not None
            and source not in smap.blocks
            and "\n" not in text
            and not getattr(smap, "dialect", None)  # translated text: columns are not the file's
        ):
            col = col + max(0, col_in - 1 - shift) + _quote_width(smap, source)
        out.append(SpecError(message, file=smap.file, line=line, col=col))
    return out


def _quote_width(smap: SourceMap, path: tuple[Any, ...]) -> int:
    """1 when the scalar at ``path`` was written quoted (its text starts one column later)."""
    quoted = getattr(smap, "quoted", None)
    return 1 if quoted and path in quoted else 0
