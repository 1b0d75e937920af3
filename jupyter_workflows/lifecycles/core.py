"""Lifecycles and the objects that follow them: transitions as runs, history in the store.

A :class:`Lifecycle` is a validated lifecycle document (see :mod:`.spec`). A
:class:`LifecycleObject` is a thing (a dataset, a model, a notebook) with an id, some data and a
current state, kept in the store with a copy of its lifecycle's document, so any process (the
kernel, the CLI, the Jupyter server) can transition it.

A transition ``S -> T`` (Bosca's rule):

1. takes the object's lock in the store (a compare-and-set on its row, so two processes never
   transition one object at once; a lock whose process is gone is taken over);
2. checks that ``S -> T`` is declared and that its guard (``when``) holds; an approval target
   is reached only through the approval;
3. runs the *exit* workflows of ``S``, then the *entry* workflows of ``T``, each to its end;
4. if all succeeded, stores ``state = T`` and a history entry in one transaction with the lock's
   release; otherwise stores a ``refused`` entry with a one-line reason, and the object stays in
   ``S``;
5. then starts the workflows of ``T`` (not waited for), and, when ``T`` has an ``approval``, an
   approval run (one ``core.inquiry`` task) whose answer later moves the object on.

Every workflow is an ordinary run of the engine (listed by ``runs``, resumable), and the
history records which runs each transition made.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import RunNotFound, RunStateError, SpecError, WorkflowError, first_line
from ..spec.loader import SourceMap, read_text
from .spec import GUARD_SCOPE, LifecycleSpec, WorkflowRef, load_lifecycle_spec

if TYPE_CHECKING:  # pragma: no cover
    from ..definition import Workflow
    from ..engine.run import Run
    from ..store.base import RunStore

__all__ = [
    "DEFAULT_TIMEOUT",
    "Lifecycle",
    "LifecycleObject",
    "ObjectNotFound",
    "TransitionRefused",
    "get_lifecycle",
    "get_object",
    "lifecycle",
    "load_lifecycle",
    "objects",
]

DEFAULT_TIMEOUT = 600.0
"""Seconds a transition waits for the object's lock, and for each exit/entry workflow."""

LOCK_STALE_SECONDS = 3600.0
"""A lock held this long by a process on another host is taken over."""

_APPROVAL_SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "comment": {"type": "string"}},
    "required": ["approved"],
}

_LIFECYCLES: dict[str, Lifecycle] = {}
_REGISTRY_LOCK = threading.Lock()


class ObjectNotFound(RunNotFound):
    """No lifecycle object with that id in the store (REST: 404, CLI: exit 2)."""


class TransitionRefused(RunStateError):
    """A transition was refused; the object stays in its state. ``str()`` is the one-line reason."""

    def __init__(self, object_id: str, source: str, target: str, reason: str) -> None:
        self.object_id, self.source, self.target, self.reason = object_id, source, target, reason
        super().__init__(f"{object_id}: {source} -> {target} refused: {reason}")


# -- definitions --------------------------------------------------------------------------------
class Lifecycle:
    """A lifecycle definition: its states, transitions and approvals.

    Build one with :func:`load_lifecycle`, :func:`lifecycle` or the ``%%lifecycle`` magic.
    """

    def __init__(
        self,
        spec: LifecycleSpec,
        *,
        source: str,
        source_map: SourceMap | None = None,
        path: str | Path | None = None,
        base_dir: str | Path | None = None,
    ) -> None:
        self.spec = spec
        self.source = source
        self.source_map = source_map or SourceMap(file=str(path) if path else None)
        self.path = Path(path) if path else None
        self.base_dir = Path(
            base_dir if base_dir is not None else (self.path.parent if self.path else Path.cwd())
        ).resolve()

    @property
    def name(self) -> str:
        return self.spec.lifecycle

    @property
    def states(self) -> list[str]:
        return list(self.spec.states)

    @property
    def initial(self) -> str:
        return self.spec.initial_state

    def __repr__(self) -> str:
        return f"<Lifecycle {self.name!r}: {' | '.join(self.states)}>"

    def resolve(self, name: str) -> Workflow:
        """The workflow ``name``: registered in this process, else ``NAME.yaml`` beside the file."""
        from ..sources import resolve_workflow

        return resolve_workflow(name, self.base_dir)

    def validate(self) -> Lifecycle:
        """Check that every workflow a state names resolves and is valid (positioned errors)."""
        errors: list[SpecError] = []
        for name, state in self.spec.states.items():
            for kind in ("entry", "exit", "workflows"):
                for i, ref in enumerate(getattr(state, kind)):
                    try:
                        self.resolve(ref.workflow).validate()
                    except WorkflowError as exc:
                        where: tuple[Any, ...] = ("states", name, kind, i)
                        if where not in self.source_map.values:
                            where = ("states", name, kind)
                        message = (
                            str(exc)
                            if isinstance(exc, SpecError) and exc.file
                            else getattr(exc, "message", str(exc))
                        )
                        errors.append(
                            self.source_map.error(
                                f"{kind} workflow {ref.workflow!r}: {message}", where
                            )
                        )
        if errors:
            from ..spec.loader import gather_errors

            raise gather_errors(errors)
        return self

    def object(self, object_id: str, data: dict[str, Any] | None = None) -> LifecycleObject:
        """The object ``object_id``, created in the initial state when it is new.

        An existing object follows this definition from now on (its current state must be one
        of its states); ``data``, when given, replaces the object's data.
        """
        if not isinstance(object_id, str) or not object_id.strip():
            raise WorkflowError("an object id is a non-empty string")
        if data is not None and not isinstance(data, dict):
            raise WorkflowError(f"an object's data is a mapping, not {type(data).__name__}")
        store = _store()
        created = store.object_create(
            {
                "object_id": object_id,
                "lifecycle": self.name,
                "state": self.initial,
                "data": data or {},
                "definition": self.source,
                "base_dir": str(self.base_dir),
            }
        )
        obj = LifecycleObject(object_id)
        if created:
            store.object_note(
                object_id, {"outcome": "created", "to_state": self.initial, "actor": _actor()}
            )
            started = obj._start_arrival(self, self.initial, None)
            if started:
                history = store.object_history(object_id)
                store.object_note_started(history[-1]["id"], started)
            return obj
        rec = obj._record()
        changes: dict[str, Any] = {}
        if rec["definition"] != self.source or rec["base_dir"] != str(self.base_dir):
            if rec["state"] not in self.spec.states:
                raise WorkflowError(
                    f"object {object_id!r} is in state {rec['state']!r}, which lifecycle "
                    f"{self.name!r} does not declare"
                )
            changes.update(definition=self.source, base_dir=str(self.base_dir), lifecycle=self.name)
        if data is not None and data != rec["data"]:
            changes["data"] = data
        if changes:
            obj._update(changes)
        return obj

    def objects(self) -> list[LifecycleObject]:
        """The objects of this lifecycle in the store."""
        return [
            LifecycleObject(r["object_id"])
            for r in _store().object_list()
            if r["lifecycle"] == self.name
        ]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from .display import lifecycle_bundle

        return lifecycle_bundle(self, None)


def load_lifecycle(source: str | os.PathLike[str], *, name: str | None = None) -> Lifecycle:
    """A lifecycle from a ``.yaml``/``.yml``/``.json`` file or from the document's text.

    Raises :class:`SpecError` (``FILE:LINE:COL: message``) for an invalid document.
    """
    from ..sources import looks_like_path

    if isinstance(source, os.PathLike) or (isinstance(source, str) and looks_like_path(source)):
        path = Path(source)
        if not path.is_file():
            raise SpecError("no such lifecycle file", file=str(path))
        text = read_text(path)
        spec, smap = load_lifecycle_spec(text, file=str(path), name=name or path.name.split(".")[0])
        return Lifecycle(spec, source=text, source_map=smap, path=path)
    if not isinstance(source, str):
        raise SpecError(
            f"a lifecycle is a file path or YAML/JSON text, not {type(source).__name__}"
        )
    spec, smap = load_lifecycle_spec(source, name=name)
    return Lifecycle(spec, source=source, source_map=smap)


def register_lifecycle(lc: Lifecycle) -> Lifecycle:
    with _REGISTRY_LOCK:
        _LIFECYCLES[lc.name] = lc
    return lc


def get_lifecycle(name: str) -> Lifecycle | None:
    """A lifecycle registered in this process (``%%lifecycle``, :func:`lifecycle`)."""
    return _LIFECYCLES.get(name)


def lifecycle(
    source: str | os.PathLike[str] | Lifecycle,
    object_id: str | None = None,
    *,
    data: dict[str, Any] | None = None,
) -> Any:
    """``jw.lifecycle(FILE_OR_YAML)`` -> :class:`Lifecycle`, validated and registered;
    ``jw.lifecycle(FILE_OR_YAML, OBJECT_ID, data=...)`` -> that :class:`LifecycleObject`.

    ``source`` may also name a lifecycle registered in this process.
    """
    if isinstance(source, Lifecycle):
        lc = source
    elif isinstance(source, str) and source in _LIFECYCLES:
        lc = _LIFECYCLES[source]
    else:
        lc = load_lifecycle(source)
    lc.validate()
    register_lifecycle(lc)
    if object_id is None:
        return lc
    return lc.object(object_id, data)


def get_object(object_id: str) -> LifecycleObject:
    """An object of the store (any lifecycle); raises :class:`ObjectNotFound`."""
    obj = LifecycleObject(object_id)
    obj._record()
    return obj


def objects() -> list[LifecycleObject]:
    """Every lifecycle object in the store, oldest first."""
    return [LifecycleObject(r["object_id"]) for r in _store().object_list()]


def _store() -> RunStore:
    from ..engine.api import current_store

    return current_store()


def _actor() -> str:
    import getpass

    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}:{os.getpid()}"


_DEFINITIONS: dict[tuple[str, str], Lifecycle] = {}


def _stored_lifecycle(rec: dict[str, Any]) -> Lifecycle:
    key = (rec["definition"], rec.get("base_dir") or "")
    found = _DEFINITIONS.get(key)
    if found is None:
        spec, smap = load_lifecycle_spec(rec["definition"], name=rec["lifecycle"])
        found = Lifecycle(
            spec, source=rec["definition"], source_map=smap, base_dir=rec.get("base_dir") or None
        )
        _DEFINITIONS[key] = found
    return found


# -- objects ------------------------------------------------------------------------------------
class LifecycleObject:
    """A thing that follows a lifecycle. Reading it applies an approval that was answered."""

    def __init__(self, object_id: str) -> None:
        self.id = object_id

    def __repr__(self) -> str:
        try:
            rec = self._record()
        except WorkflowError as exc:
            return f"<LifecycleObject {self.id!r}: {exc}>"
        return f"<LifecycleObject {self.id!r} ({rec['lifecycle']}): {rec['state']}>"

    # -- reading ------------------------------------------------------------------------------
    def _record(self) -> dict[str, Any]:
        rec = _store().object_get(self.id)
        if rec is None:
            raise ObjectNotFound(f"no lifecycle object {self.id!r} in the store")
        return rec

    @property
    def lifecycle(self) -> Lifecycle:
        """The definition the object follows (as stored with it)."""
        return _stored_lifecycle(self._record())

    @property
    def state(self) -> str:
        """The current state (after applying an answered approval)."""
        self.refresh()
        return str(self._record()["state"])

    @property
    def data(self) -> dict[str, Any]:
        return dict(self._record()["data"] or {})

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every creation, transition and refusal, oldest first, with the runs each made."""
        self.refresh()
        return _store().object_history(self.id)

    @property
    def pending(self) -> dict[str, Any] | None:
        """The open approval: ``{"run_id", "task", "state"}``, or None."""
        self.refresh()
        return self._record()["pending"]

    @property
    def approval(self) -> Run | None:
        """The run of the open approval (answer it with :meth:`approve` or its form)."""
        pending = self.pending
        if not pending:
            return None
        from ..engine.api import get_run

        return get_run(pending["run_id"])

    def targets(self) -> list[str]:
        """The states a transition is declared to from the current state."""
        rec = self._record()
        return _stored_lifecycle(rec).spec.targets(rec["state"])

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``states OBJECT --json`` and ``GET objects/{id}/state``."""
        self.refresh()
        rec = self._record()
        lc = _stored_lifecycle(rec)
        return {
            "object": self.id,
            "lifecycle": rec["lifecycle"],
            "state": rec["state"],
            "type": lc.spec.state_type(rec["state"]),
            "version": rec["version"],
            "data": rec["data"],
            "pending": rec["pending"],
            "transitions": lc.spec.targets(rec["state"]),
            "states": [{"name": n, "type": lc.spec.state_type(n)} for n in lc.states],
            "history": [_public_entry(e) for e in _store().object_history(self.id)],
        }

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from .display import lifecycle_bundle

        self.refresh()
        rec = self._record()
        return lifecycle_bundle(_stored_lifecycle(rec), rec, _store().object_history(self.id))

    # -- changing -----------------------------------------------------------------------------
    def _update(self, changes: dict[str, Any]) -> None:
        owner = _owner()
        self._lock(owner, DEFAULT_TIMEOUT)
        _store().object_save(self.id, owner, changes)

    def _lock(self, owner: str, timeout: float, target: str = "?") -> None:
        store = _store()
        deadline = time.monotonic() + timeout
        pause = 0.02
        while True:
            if store.object_lock(self.id, owner):
                return
            rec = self._record()
            holder = rec.get("lock_owner")
            if holder and _lock_is_stale(holder, rec.get("lock_at")):
                if store.object_lock(self.id, owner, steal=holder):
                    return
                continue
            if time.monotonic() > deadline:
                raise TransitionRefused(
                    self.id,
                    rec["state"],
                    target,
                    f"busy: another transition holds the object ({holder}) after {timeout:g}s",
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.25)

    def transition(
        self, to: str, *, timeout: float = DEFAULT_TIMEOUT, actor: str | None = None
    ) -> LifecycleObject:
        """Move the object to state ``to``; returns the object.

        Raises
        ------
        TransitionRefused
            The transition is not declared, its guard is false, it needs an approval, or an exit
            or entry workflow failed; the object stays in its state (one-line reason; the refusal
            is in :attr:`history`).
        WorkflowError
            ``to`` is not a state of the lifecycle, or the object does not exist.
        """
        self.refresh()
        self._transition(to, timeout=timeout, actor=actor)
        return self

    def _transition(
        self,
        to: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        actor: str | None = None,
        approval: dict[str, Any] | None = None,
        via_run: str | None = None,
        reason: str | None = None,
    ) -> bool:
        """The transition; with ``via_run``, only if that approval run is still the open one."""
        local = _local_lock(self.id)
        if not local.acquire(timeout=timeout):
            raise TransitionRefused(
                self.id,
                self._record()["state"],
                to,
                f"busy: another transition of this process holds the object after {timeout:g}s",
            )
        try:
            return self._transition_locked(
                to, timeout=timeout, actor=actor, approval=approval, via_run=via_run, reason=reason
            )
        finally:
            local.release()

    def _transition_locked(
        self,
        to: str,
        *,
        timeout: float,
        actor: str | None,
        approval: dict[str, Any] | None,
        via_run: str | None,
        reason: str | None,
    ) -> bool:
        store = _store()
        owner = _owner()
        actor = actor or _actor()
        self._lock(owner, timeout, to)
        locked = True
        entry_id: int | None = None
        try:
            rec = self._record()
            lc = _stored_lifecycle(rec)
            source = rec["state"]
            if via_run is not None and (rec["pending"] or {}).get("run_id") != via_run:
                return False  # applied already (by another process)
            if to not in lc.spec.states:
                raise WorkflowError(
                    f"{self.id}: lifecycle {lc.name!r} has no state {to!r} "
                    f"(states: {', '.join(lc.states)})"
                )
            runs: list[str] = []
            try:
                self._check(lc, rec, source, to, approval, via_run)
                for kind, state in (("exit", source), ("entry", to)):
                    for ref in getattr(lc.spec.states[state], kind):
                        self._run_to_end(
                            lc, rec, ref, kind, state, source, to, approval, timeout, runs
                        )
                pending = self._open_approval(lc, rec, to) if lc.spec.states[to].approval else None
            except TransitionRefused as refused:
                store.object_note(
                    self.id,
                    {
                        "outcome": "refused",
                        "from_state": source,
                        "to_state": to,
                        "reason": refused.reason,
                        "runs": runs,
                        "actor": actor,
                    },
                )
                raise
            old_pending = rec["pending"]
            entry_id = store.object_save(
                self.id,
                owner,
                {"state": to, "pending": pending},
                {
                    "outcome": "transitioned",
                    "from_state": source,
                    "to_state": to,
                    "runs": runs,
                    "actor": actor,
                    "reason": reason,
                },
            )
            locked = False
            if old_pending and old_pending.get("run_id") != via_run:
                _cancel_quietly(old_pending["run_id"])  # left the approval state by hand
        finally:
            if locked:
                store.object_unlock(self.id, owner)
        started = self._start_arrival(lc, to, source, approval)
        if started and entry_id is not None:
            store.object_note_started(entry_id, started)
        if pending:
            self._watch_approval(pending["run_id"])
        return True

    def _check(
        self,
        lc: Lifecycle,
        rec: dict[str, Any],
        source: str,
        to: str,
        approval: dict[str, Any] | None,
        via_run: str | None,
    ) -> None:
        spec = lc.spec
        declared = spec.declared(source, to)
        if not declared:
            if source == to:
                raise TransitionRefused(
                    self.id, source, to, f"the object is already in state {to!r}"
                )
            targets = spec.targets(source)
            allowed = ", ".join(targets) if targets else "none"
            raise TransitionRefused(
                self.id,
                source,
                to,
                f"no transition from {source!r} to {to!r} is declared (from {source!r}: {allowed})",
            )
        gate = spec.states[source].approval
        if gate is not None and to == gate.approved and via_run is None:
            pending = rec["pending"] or {}
            where = (
                f" (answer task 'approve' of run {pending['run_id']})"
                if pending.get("run_id")
                else ""
            )
            raise TransitionRefused(
                self.id, source, to, f"{to!r} needs the approval of state {source!r}{where}"
            )
        from ..expressions import ExpressionError, evaluate

        scope = _scope(rec, source, to, approval)
        reasons = []
        for transition in declared:
            if transition.when is None:
                return
            try:
                if evaluate(transition.when, scope):
                    return
            except ExpressionError as exc:
                reasons.append(f"guard {transition.when!r} failed: {exc}")
                continue
            reasons.append(f"guard {transition.when!r} is false")
        raise TransitionRefused(self.id, source, to, "; ".join(reasons))

    def _run_to_end(
        self,
        lc: Lifecycle,
        rec: dict[str, Any],
        ref: WorkflowRef,
        kind: str,
        state: str,
        source: str,
        to: str,
        approval: dict[str, Any] | None,
        timeout: float,
        runs: list[str],
    ) -> None:
        """Run an exit/entry workflow to its end (its id added to ``runs``); or TransitionRefused."""
        what = f"{kind} workflow {ref.workflow!r} of state {state!r}"
        try:
            wf = lc.resolve(ref.workflow)
            params = _parameters(wf, ref, rec, source, to, approval)
            run = wf.run(params, wait=False)
        except WorkflowError as exc:
            raise TransitionRefused(
                self.id, source, to, f"{what} did not start: {first_line(exc)}"
            ) from None
        runs.append(run.run_id)
        status = _wait_for_end(run, timeout)
        if status != "succeeded":
            if status not in ("failed", "cancelled"):
                _cancel_quietly(run.run_id)
                raise TransitionRefused(
                    self.id,
                    source,
                    to,
                    f"{what} did not end within {timeout:g}s (run {run.run_id} was {status}; cancelled)",
                )
            raise TransitionRefused(
                self.id, source, to, f"{what} {status} (run {run.run_id}: {run.error or status})"
            )

    def _open_approval(self, lc: Lifecycle, rec: dict[str, Any], state: str) -> dict[str, Any]:
        from ..expressions import render

        gate = lc.spec.states[state].approval
        assert gate is not None
        scope = _scope(rec, rec["state"], state, None)
        try:
            prompt = str(render(gate.prompt, scope))
            wf = _approval_workflow(lc, state)
            run = wf.run({"object": self.id, "prompt": prompt}, wait=False)
            try:
                run.wait(60)  # until its inquiry is open, so it can be answered at once
            except TimeoutError:
                pass
        except WorkflowError as exc:
            raise TransitionRefused(
                self.id,
                rec["state"],
                state,
                f"the approval of {state!r} did not start: {first_line(exc)}",
            ) from None
        return {"run_id": run.run_id, "task": "approve", "state": state}

    def _start_arrival(
        self, lc: Lifecycle, state: str, source: str | None, approval: dict[str, Any] | None = None
    ) -> list[str]:
        """Start the workflows of ``state`` (not waited for); a start that fails is logged."""
        import logging

        rec = self._record()
        started = []
        for ref in lc.spec.states[state].workflows:
            try:
                wf = lc.resolve(ref.workflow)
                run = wf.run(_parameters(wf, ref, rec, source, state, approval), wait=False)
            except WorkflowError as exc:
                logging.getLogger(__name__).error(
                    "%s: workflow %r of state %r did not start: %s",
                    self.id,
                    ref.workflow,
                    state,
                    first_line(exc),
                )
                continue
            started.append(run.run_id)
        return started

    # -- approvals ----------------------------------------------------------------------------
    def refresh(self) -> LifecycleObject:
        """Apply the answer of the open approval, if it has one: move to ``approved`` or
        ``rejected`` (a failed or timed-out approval counts as a rejection).

        Waits for a transition of this object that this process is making (another thread's),
        so what is read afterwards includes it.
        """
        local = _local_lock(self.id)
        if not local.acquire(timeout=DEFAULT_TIMEOUT):
            return self
        try:
            return self._refresh()
        finally:
            local.release()

    def _refresh(self) -> LifecycleObject:
        rec = self._record()
        pending = rec["pending"]
        if not pending:
            return self
        from ..engine.api import get_run, resume
        from ..engine.run import TERMINAL, owner_alive

        try:
            run = get_run(pending["run_id"])
            status = run.status
        except RunNotFound:
            status, run = "failed", None
        if run is not None and status not in TERMINAL:
            stored = _store().get_run(run.run_id) or {}
            if (
                not owner_alive(dict(stored))
                and run.run_id not in _active_runs()
                and _answered(run.run_id)
            ):
                # Answered from another process while no one drove the run: finish it here.
                try:
                    status = resume(run.run_id, wait=True, timeout=60).status
                except Exception:
                    return self
            else:
                return self
        if status not in TERMINAL:
            return self
        lc = _stored_lifecycle(rec)
        gate = lc.spec.states[pending["state"]].approval
        if gate is None or rec["state"] != pending["state"]:
            return self
        answer = _answer(run) if status == "succeeded" and run is not None else None
        approved = False
        if answer is not None:
            from ..expressions import ExpressionError, evaluate

            scope = {**_scope(rec, rec["state"], gate.approved, answer), "answer": answer}
            try:
                approved = evaluate(gate.when, scope)
            except ExpressionError:
                approved = False
        target = gate.approved if approved else gate.rejected
        info = (
            answer if answer is not None else {"approved": False, "error": f"approval run {status}"}
        )
        if target is None:
            owner = _owner()
            self._lock(owner, DEFAULT_TIMEOUT)
            fresh = self._record()
            if (fresh["pending"] or {}).get("run_id") == pending["run_id"]:
                _store().object_save(
                    self.id,
                    owner,
                    {"pending": None},
                    {
                        "outcome": "refused",
                        "from_state": fresh["state"],
                        "to_state": gate.approved,
                        "reason": "not approved",
                        "runs": [pending["run_id"]],
                        "actor": _actor(),
                    },
                )
            else:
                _store().object_unlock(self.id, owner)
            return self
        try:
            self._transition(
                target,
                approval=info,
                via_run=pending["run_id"],
                reason="approved"
                if approved
                else f"not approved ({'answered' if answer is not None else status})",
            )
        except TransitionRefused:
            pass  # recorded in the history; the approval stays open for a later try
        return self

    def approve(
        self, approved: bool = True, comment: str | None = None, **answer: Any
    ) -> LifecycleObject:
        """Answer the open approval and apply it; returns the object."""
        pending = self.pending
        if not pending:
            rec = self._record()
            raise RunStateError(f"{self.id}: no approval is open (state {rec['state']!r})")
        from ..engine.api import get_run

        data = {"approved": bool(approved), **answer}
        if comment is not None:
            data["comment"] = comment
        run = get_run(pending["run_id"])
        run.respond(pending.get("task", "approve"), data)
        deadline = time.monotonic() + 60
        from ..engine.run import TERMINAL

        while (
            run.status not in TERMINAL
            and run.run_id in _active_runs()
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        return self.refresh()

    def reject(self, comment: str | None = None) -> LifecycleObject:
        """Answer the open approval with ``approved: false``."""
        return self.approve(False, comment)

    def _watch_approval(self, run_id: str) -> None:
        """In the process that drives the approval run, apply its answer as soon as it ends."""
        from ..engine.api import get_run
        from ..engine.run import TERMINAL

        try:
            run = get_run(run_id)
        except RunNotFound:
            return
        done = threading.Event()

        def changed(r: Any) -> None:
            if done.is_set() or r.status not in TERMINAL:
                return
            done.set()
            threading.Thread(
                target=self._safe_refresh, name=f"lifecycle-{self.id}", daemon=True
            ).start()

        run.on_change(changed)

    def _safe_refresh(self) -> None:
        try:
            self.refresh()
        except Exception:  # the next read applies it
            pass


# -- helpers ------------------------------------------------------------------------------------
_LOCAL_LOCKS: dict[str, threading.RLock] = {}


def _local_lock(object_id: str) -> threading.RLock:
    """This process's lock of an object, held for a whole transition (with the new state's
    starts), so a reader in this process that waited for it sees the transition complete."""
    with _REGISTRY_LOCK:
        return _LOCAL_LOCKS.setdefault(object_id, threading.RLock())


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _lock_is_stale(holder: str, lock_at: float | None) -> bool:
    """Whether the process holding a lock is gone (this host), or has held it very long."""
    parts = holder.rsplit(":", 2)
    if len(parts) == 3 and parts[0] == socket.gethostname() and parts[1].isdigit():
        pid = int(parts[1])
        if pid == os.getpid():
            return False  # a thread of this process: it releases it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return lock_at is not None and time.time() - lock_at > LOCK_STALE_SECONDS


def _scope(rec: dict[str, Any], source: str, to: str, approval: Any) -> dict[str, Any]:
    import getpass

    try:
        user = getpass.getuser()
    except Exception:
        user = None
    data = rec.get("data") or {}
    return {
        "object": {
            "id": rec["object_id"],
            "state": rec["state"],
            "data": data,
            "version": rec["version"],
            "lifecycle": rec["lifecycle"],
        },
        "data": data,
        "transition": {"from": source, "to": to},
        "approval": approval,
        "system": {"timestamp": time.time(), "user": user},
    }


def _parameters(
    wf: Workflow, ref: WorkflowRef, rec: dict[str, Any], source: str | None, to: str, approval: Any
) -> dict[str, Any]:
    """A lifecycle workflow's parameters: the template ones, else those it declares and has."""
    from ..expressions import render

    if ref.parameters is not None:
        return dict(render(ref.parameters, _scope(rec, source or to, to, approval)))
    known: dict[str, Any] = dict(rec.get("data") or {})
    known.update(object=rec["object_id"], from_state=source, to_state=to, approval=approval)
    declared = wf.spec.parameters
    return {k: known[k] for k in declared if k in known and known[k] is not None}


def _wait_for_end(run: Run, timeout: float) -> str:
    """Wait until ``run`` ends (an inquiry inside it is waited for too); its status."""
    from ..engine.run import TERMINAL

    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            run.wait(max(0.0, min(left, 1.0)) if left > 0 else 0.0)
        except TimeoutError:
            pass
        status = run.status
        if status in TERMINAL or status == "interrupted":
            return status
        if time.monotonic() >= deadline:
            return status
        if status in ("waiting", "paused"):
            time.sleep(0.1)


def _cancel_quietly(run_id: str) -> None:
    from ..engine.api import get_run

    try:
        get_run(run_id).cancel()
    except WorkflowError:
        pass


def _active_runs() -> dict[str, Any]:
    from ..engine.api import get_orchestrator

    return get_orchestrator().runs


def _answered(run_id: str) -> bool:
    from ..engine.events import InquiryResponded

    return any(e.get("type") == InquiryResponded.type for e in _store().load_events(run_id))


def _answer(run: Run) -> dict[str, Any] | None:
    outputs = run.outputs or {}
    answer = outputs.get("answer")
    if isinstance(answer, dict):
        return answer
    for task in reversed(run.tasks):
        if task.get("task") == "approve" and isinstance(task.get("result"), dict):
            return task["result"]
    return None


def _approval_workflow(lc: Lifecycle, state: str) -> Workflow:
    from ..definition import load

    gate = lc.spec.states[state].approval
    assert gate is not None
    task: dict[str, Any] = {
        "action": "core.inquiry",
        "input": {"prompt": "{{ parameters.prompt }}", "schema": gate.schema_ or _APPROVAL_SCHEMA},
    }
    if gate.timeout:
        task["timeout"] = gate.timeout
    doc = {
        "name": f"{lc.name}.{state}.approval",
        "description": f"The approval of state {state!r} of lifecycle {lc.name!r}",
        "parameters": {"object": {"type": "string"}, "prompt": {"type": "string"}},
        "tasks": {"approve": task},
        "output_map": {"answer": "{{ task.approve.result }}"},
    }
    return load(json.dumps(doc))


def _public_entry(entry: dict[str, Any]) -> dict[str, Any]:
    from datetime import datetime, timezone

    out = {
        k: entry.get(k)
        for k in ("outcome", "from_state", "to_state", "reason", "runs", "started", "actor")
    }
    out["at"] = (
        datetime.fromtimestamp(entry["at"], tz=timezone.utc).isoformat(timespec="seconds")
        if entry.get("at")
        else None
    )
    return out


_ = GUARD_SCOPE  # re-exported for the docs
