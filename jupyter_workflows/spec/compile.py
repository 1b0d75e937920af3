"""Sugar -> canonical form: the only form the engine executes.

Every way of saying "what runs next" (``on_success``, ``on_failure``, ``on_complete``,
task-level ``publish``, ``decision``, ``needs``, ``group``, ``type: parallel``) becomes a list of
:class:`CTransition` ``(when, publish, do)`` plus a ``join`` count, and ``defaults`` are merged
into each task. The result is made of frozen dataclasses rather than pydantic models: it is read
on the engine's hot path and never validated again.

Rules:

- ``on_success: X`` -> ``{when: succeeded(), do: X}``; ``on_failure`` -> ``failed()``;
  ``on_complete`` -> no ``when``. Task-level ``publish`` -> ``{when: succeeded(), publish}``,
  placed first so later transitions see the published vars.
- ``decision`` (first match wins) -> entry *i* is ``{when: succeeded() and (its when)}`` of kind
  ``"decision"``, ``default`` is ``{when: succeeded()}``; the engine fires only the first of a
  task's decision transitions that holds (so N entries stay N conditions, not N²/2).
- ``needs: [a, b]`` -> ``a`` and ``b`` each get ``{when: succeeded(), do: T}`` and ``T`` joins
  on all its inbound sources.
- ``group: N`` -> every task of group N needs every task of the nearest lower group.
- ``type: parallel`` with ``tasks`` -> the sub-tasks become tasks of their own; transitions into
  the group start its sub-tasks instead, and the group itself is a join over them whose result
  is the mapping of their results.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .models import RESERVED_TARGETS, RetryPolicy, TaskSpec, WorkflowSpec

__all__ = ["CTask", "CTransition", "CompiledWorkflow", "compile_workflow"]

SUCCEEDED = "{{ succeeded() }}"
FAILED = "{{ failed() }}"

TransitionKind = Literal["success", "failure", "complete", "when", "decision", "needs", "publish"]
TaskKind = Literal["action", "workflow", "routing", "parallel"]


@dataclass(frozen=True, slots=True)
class CTransition:
    """A canonical transition."""

    when: str | bool | None
    publish: tuple[tuple[str, Any], ...]
    do: tuple[str, ...]
    #: What the user wrote, for the graph's edge styles.
    kind: TransitionKind
    #: Path of the source text, for positioned validation errors.
    origin: tuple[Any, ...] = ()
    #: The parallel groups among the targets as written (``do`` holds their members instead),
    #: so ``Workflow.graph`` can keep the edge the user drew into the group.
    groups: tuple[str, ...] = field(default=(), compare=False)

    @property
    def targets(self) -> tuple[str, ...]:
        """The task names among ``do`` (without the commands fail/noop/retry)."""
        return tuple(d for d in self.do if d not in RESERVED_TARGETS)


@dataclass(frozen=True, slots=True)
class CTask:
    """A canonical task, defaults merged."""

    name: str
    kind: TaskKind
    action: str | None
    workflow: str | None
    input: dict[str, Any]
    next: tuple[CTransition, ...]
    join: Literal["all"] | int | None
    with_items: str | list[Any] | None
    batch_size: int | None
    retry: RetryPolicy
    timeout: float | None
    resources: dict[str, float]
    queue: str | None
    priority: int
    cache: Any
    max_runs: int
    max_runs_set: bool
    #: Sub-tasks of a parallel group (the group's result maps them to their results).
    members: tuple[str, ...] = ()
    #: The names of tasks whose transitions can start this one (distinct, in order).
    sources: tuple[str, ...] = ()
    description: str | None = None
    #: Items per executor task for ``with_items`` (``None``: chosen by the executor; 1: none).
    chunk_size: int | None = None
    #: Inputs that are exactly ``{{ task.X.result }}``: input name -> task ``X``. Resolved here,
    #: once, so that submitting an attempt passes the upstream result by reference without
    #: parsing templates (the executor hands it over where it already is).
    result_refs: dict[str, str] = field(default_factory=dict)
    #: Inputs that hold a template anywhere (the rest are constants).
    templated_inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompiledWorkflow:
    """A workflow in canonical form."""

    spec: WorkflowSpec
    tasks: dict[str, CTask]
    start: tuple[str, ...]
    #: ``needs`` edges (dependent, dependency) kept for cycle checks and the graph.
    needs: tuple[tuple[str, str], ...] = field(default=())

    @property
    def name(self) -> str:
        return self.spec.name


def _flatten(tasks: dict[str, TaskSpec], prefix: tuple[Any, ...]):
    """All tasks, sub-tasks of parallel groups hoisted, with their source paths."""
    for name, task in tasks.items():
        path = (*prefix, "tasks", name)
        yield name, task, path
        if task.tasks:
            yield from _flatten(task.tasks, path)


def _inner(when: str | bool | None) -> str:
    from ..expressions import exact_expression

    if when is None:
        return "true"
    if isinstance(when, bool):
        return "true" if when else "false"
    inner = exact_expression(when)
    if inner is None:
        # A bare expression without braces is accepted in decisions, as in Orquesta.
        return when
    return inner.strip()


def compile_workflow(spec: WorkflowSpec) -> CompiledWorkflow:
    """Compile ``spec`` to its canonical form (no validation beyond what compiling needs)."""
    flat = list(_flatten(spec.tasks, ()))
    defaults = spec.defaults
    groups: dict[str, tuple[str, ...]] = {
        name: tuple(task.tasks) for name, task, _ in flat if task.type == "parallel" and task.tasks
    }

    def entered(targets: list[str] | tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t for t in targets if t in groups)

    def redirect(targets: list[str]) -> tuple[str, ...]:
        out: list[str] = []
        for t in targets:
            if t in groups:
                out.extend(redirect(list(groups[t])))
            else:
                out.append(t)
        return tuple(out)

    needs: list[tuple[str, str]] = []
    for name, task, _ in flat:
        for dep in task.needs or ():
            needs.append((name, dep))
    for group_name, members in groups.items():
        for member in members:
            needs.append((group_name, member))
    by_group: dict[int, list[str]] = {}
    for name, task, _ in flat:
        if task.group is not None:
            by_group.setdefault(task.group, []).append(name)
    numbers = sorted(by_group)
    for lower, upper in itertools.pairwise(numbers):
        for name in by_group[upper]:
            for dep in by_group[lower]:
                needs.append((name, dep))

    extra: dict[str, list[CTransition]] = {}
    needed_by: dict[str, list[str]] = {}
    for dependent, dep in needs:
        needed_by.setdefault(dependent, []).append(dep)
        extra.setdefault(dep, []).append(
            CTransition(SUCCEEDED, (), (dependent,), "needs", ("tasks", dependent, "needs"))
        )

    ctasks: dict[str, CTask] = {}
    for name, task, path in flat:
        trans: list[CTransition] = []
        if task.publish:
            trans.append(
                CTransition(SUCCEEDED, _pairs(task.publish), (), "publish", (*path, "publish"))
            )
        for i, t in enumerate(task.next):
            trans.append(
                CTransition(
                    t.when,
                    _pairs(t.publish),
                    redirect(t.do),
                    "when",
                    (*path, "next", i),
                    entered(t.do),
                )
            )
        if task.decision:
            for i, entry in enumerate(task.decision):
                # First match is the engine's (RunState skips a task's later "decision"
                # transitions once one fired), not "and not (earlier)" in every condition:
                # that made N entries N²/2 conditions to compile and evaluate.
                if entry.default is not None:
                    when = SUCCEEDED
                    targets = entry.default
                else:
                    when = "{{ succeeded() and (" + _inner(entry.when) + ") }}"
                    targets = entry.next or []
                trans.append(
                    CTransition(
                        when,
                        _pairs(entry.publish),
                        redirect(list(targets)),
                        "decision",
                        (*path, "decision", i),
                        entered(targets),
                    )
                )
        outcome_keys: tuple[tuple[str, str | None, TransitionKind], ...] = (
            ("on_success", SUCCEEDED, "success"),
            ("on_failure", FAILED, "failure"),
            ("on_complete", None, "complete"),
        )
        for key, outcome_when, edge_kind in outcome_keys:
            targets = getattr(task, key)
            if targets:
                trans.append(
                    CTransition(
                        outcome_when,
                        (),
                        redirect(targets),
                        edge_kind,
                        (*path, key),
                        entered(targets),
                    )
                )
        trans.extend(extra.get(name, ()))

        def pick(field_name: str, fallback: Any, task: TaskSpec = task) -> Any:
            value = getattr(task, field_name)
            if value is None and defaults is not None:
                value = getattr(defaults, field_name)
            return fallback if value is None else value

        if task.type == "parallel":
            kind: TaskKind = "parallel"
        elif task.workflow is not None:
            kind = "workflow"
        elif task.action is not None:
            kind = "action"
        else:
            kind = "routing"
        join = task.join
        if join is None and name in needed_by:
            join = "all"
        max_runs = pick("max_runs", None)
        ctasks[name] = CTask(
            name=name,
            kind=kind,
            action=task.action,
            workflow=task.workflow,
            input=dict(task.input),
            result_refs=_result_refs(task.input),
            templated_inputs=tuple(k for k, v in task.input.items() if _has_template(v)),
            next=tuple(trans),
            join=join,
            with_items=task.with_items,
            batch_size=task.batch_size,
            chunk_size=task.chunk_size,
            retry=pick("retry", RetryPolicy()),
            timeout=pick("timeout", None),
            resources=dict(pick("resources", {})),
            queue=pick("queue", None),
            priority=pick("priority", 0),
            cache=pick("cache", None),
            max_runs=max_runs or 1000,
            max_runs_set=max_runs is not None,
            members=groups.get(name, ()),
            description=task.description,
        )

    sources: dict[str, list[str]] = {name: [] for name in ctasks}
    for name, ct in ctasks.items():
        for tr in ct.next:
            for target in tr.targets:
                if target in sources and name not in sources[target]:
                    sources[target].append(name)
    final = {name: replace(ct, sources=tuple(sources[name])) for name, ct in ctasks.items()}
    start = tuple(name for name, ct in final.items() if not [s for s in ct.sources if s != name])
    return CompiledWorkflow(spec=spec, tasks=final, start=start, needs=tuple(needs))


def _pairs(publish: list[dict[str, Any]] | None) -> tuple[tuple[str, Any], ...]:
    return tuple((k, v) for item in publish or () for k, v in item.items())


def _result_refs(inputs: dict[str, Any]) -> dict[str, str]:
    """Input name -> task ``X``, for the inputs that are exactly ``{{ task.X.result }}``."""
    from ..expressions import exact_expression

    refs: dict[str, str] = {}
    for arg, raw in inputs.items():
        if isinstance(raw, str):
            inner = exact_expression(raw)
            if inner and inner.startswith("task.") and inner.endswith(".result"):
                name = inner[len("task.") : -len(".result")]  # "" for {{ task.result }}
                if name:
                    refs[arg] = name
    return refs


def _has_template(value: Any) -> bool:
    """Whether an input value holds a template anywhere."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_template(v) for v in value)
    return False
