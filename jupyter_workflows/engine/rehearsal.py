"""Rehearse a run without a cluster: drive :class:`RunState` with scripted outcomes.

Like Orquesta's rehearsal files: give the workflow, what each task's attempts return (or raise),
and read back the task sequence and final status. Time is simulated: timers fire in order of
their due time, so retries with backoff and timeouts rehearse instantly and deterministically.

>>> from jupyter_workflows.engine.rehearsal import rehearse
>>> r = rehearse("name: w\\ntasks:\\n  a: {action: core.noop, on_success: b}\\n  b: {action: core.noop}")
>>> r.sequence, r.status
(['a', 'b'], 'succeeded')
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..spec.compile import CompiledWorkflow
from . import commands as C
from . import events as E
from .state import RunState

__all__ = ["Fail", "Hang", "Rehearsal", "rehearse"]


@dataclass(frozen=True)
class Fail:
    """A scripted failed attempt."""

    error: str = "RuntimeError: boom"
    error_type: str | None = None


@dataclass(frozen=True)
class Hang:
    """A scripted attempt that never answers (to rehearse timeouts)."""


@dataclass
class Rehearsal:
    """What a rehearsed run did."""

    state: RunState
    #: Execution ids in the order they started.
    sequence: list[str]
    submits: list[C.Submit] = field(default_factory=list)
    commands: list[C.Command] = field(default_factory=list)
    time: float = 0.0

    @property
    def status(self) -> str:
        return self.state.status

    @property
    def error(self) -> str | None:
        return self.state.error

    @property
    def outputs(self) -> dict[str, Any] | None:
        return self.state.outputs

    def result(self, exec_id: str) -> Any:
        return self.state.executions[exec_id].result

    def task_status(self, exec_id: str) -> str:
        return self.state.executions[exec_id].status

    def send(self, event: E.Event) -> None:
        """Feed another event (e.g. a response) and keep rehearsing."""
        self._driver(event)

    _driver: Callable[[E.Event], None] = field(default=lambda e: None, repr=False)


Outcome = Any  # a value (success), Fail, Hang, or a callable(submit) -> one of those


def rehearse(
    workflow: str | CompiledWorkflow,
    outcomes: Mapping[str, Outcome | list[Outcome]] | None = None,
    *,
    parameters: Mapping[str, Any] | None = None,
    events: list[tuple[float, E.Event]] | None = None,
    run_id: str = "rehearsal0000",
    durations: Mapping[str, float] | None = None,
    check: bool = True,
) -> Rehearsal:
    """Run ``workflow`` against scripted ``outcomes``.

    Parameters
    ----------
    workflow:
        YAML text or a compiled workflow.
    outcomes:
        Task name -> what its attempts give: one outcome for all attempts or a list, one per
        attempt in order (the last repeats). An outcome is a value (success), :class:`Fail`,
        :class:`Hang`, or a callable taking the :class:`~.commands.Submit`. Tasks not listed
        succeed with their input (like ``core.echo``); ``core.fail`` tasks fail.
    events:
        Extra ``(time, event)`` pairs injected at those times (pause, cancel, responses).
    durations:
        Task name -> simulated seconds per attempt (default 1).
    check:
        Call :meth:`RunState.validate` after every event.
    """
    if isinstance(workflow, str):
        from ..definition import load

        wf = load(workflow)
        compiled = wf.compiled
    else:
        compiled = workflow
    from ..spec.params import resolve_parameters

    params = resolve_parameters(compiled.spec, parameters)
    inquiries = frozenset(n for n, t in compiled.tasks.items() if t.action == "core.inquiry")
    children = {n: t.workflow for n, t in compiled.tasks.items() if t.workflow}
    state = RunState(compiled, run_id, params, inquiries=inquiries, children=children)
    outcomes = dict(outcomes or {})
    durations = dict(durations or {})
    queue: list[tuple[float, int, E.Event]] = []
    counter = [0]
    seen: list[str] = []
    rehearsal = Rehearsal(state=state, sequence=seen)

    def push(at: float, event: E.Event) -> None:
        counter[0] += 1
        heapq.heappush(queue, (at, counter[0], event))

    def outcome_for(cmd: C.Submit | C.StartChild) -> Any:
        script = outcomes.get(cmd.task)
        if script is None:
            action = getattr(cmd, "action", "")
            if action == "core.fail":
                return Fail(f"ActionFailed: {cmd.input.get('message', 'failed on purpose')}")
            return cmd.input
        if isinstance(script, list):
            script = script[min(cmd.attempt, len(script)) - 1]
        if callable(script) and not isinstance(script, (Fail, Hang)):
            script = script(cmd)
        return script

    finished: dict[str, tuple[float, bool]] = {}

    def carry_out(now: float, cmds: list[C.Command]) -> None:
        for cmd in cmds:
            rehearsal.commands.append(cmd)
            if isinstance(cmd, (C.Submit, C.StartChild)):
                if isinstance(cmd, C.Submit):
                    rehearsal.submits.append(cmd)
                took = durations.get(cmd.task, 1.0)
                gate = finished.get(cmd.after) if isinstance(cmd, C.Submit) and cmd.after else None
                if isinstance(cmd, C.Submit) and cmd.after:
                    # Speculative: runs only once its gate attempt succeeded.
                    if gate is None or not gate[1]:
                        at = gate[0] if gate else now
                        if gate is not None:
                            push(
                                at,
                                E.AttemptDone(
                                    at,
                                    key=cmd.key,
                                    ok=False,
                                    error="Skipped: gate failed",
                                    error_type="Skipped",
                                ),
                            )
                        continue
                    now_for = gate[0]
                else:
                    now_for = now
                result = outcome_for(cmd)
                if isinstance(result, Hang):
                    continue
                at = now_for + took
                if isinstance(result, Fail):
                    etype = result.error_type or result.error.split(":")[0]
                    finished[cmd.key] = (at, False)
                    push(
                        at,
                        E.AttemptDone(
                            at, key=cmd.key, ok=False, error=result.error, error_type=etype
                        ),
                    )
                else:
                    finished[cmd.key] = (at, True)
                    push(at, E.AttemptDone(at, key=cmd.key, ok=True, result=result))
            elif isinstance(cmd, C.StartTimer):
                push(now + cmd.delay, E.TimerFired(now + cmd.delay, timer=cmd.timer))

    def step(event: E.Event) -> None:
        before = len(state.order)
        cmds = state.handle(event)
        seen.extend(state.order[before:])
        if check:
            state.validate()
        carry_out(event.time, cmds)

    def drive(first: E.Event | None = None) -> None:
        if first is not None:
            push(first.time, first)
        while queue:
            at, _, event = heapq.heappop(queue)
            rehearsal.time = at
            step(event)

    rehearsal._driver = lambda e: drive(e)
    for at, event in events or ():
        push(at, event)
    drive(E.RunStarted(0.0))
    return rehearsal
