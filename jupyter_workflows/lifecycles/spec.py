"""Lifecycle documents: states, transitions and approvals as pure data, with positioned errors.

A lifecycle (Bosca's *states and transitions*) is its own YAML/JSON document kind, told apart
from a workflow by its top-level ``lifecycle:`` key (the lifecycle's name)::

    lifecycle: dataset
    initial: draft                  # optional: the first state listed
    states:
      draft:     {type: draft}
      review:
        type: approval
        entry: check_quality        # workflows that must succeed to enter (name or list)
        approval:                   # a core.inquiry run opened on arrival
          prompt: "Publish {{ object.id }}?"
          approved: published       # the state an approval moves the object to
          rejected: draft           # ... and a rejection (or a timeout)
      published:
        type: published
        exit: unpublish             # workflows that must succeed to leave
        workflows: [announce]       # started once the object has arrived
    transitions:
      - {from: draft, to: review}
      - {from: review, to: draft}
      - {from: published, to: draft, when: "{{ object.data.rows > 0 }}"}

It is parsed by the workflow loader (same ``FILE:LINE:COL`` errors, duplicate keys refused) and
validated by frozen pydantic models; :func:`check_lifecycle` then checks what the models cannot
see: unknown states, template syntax and names of guards. Workflow names are resolved by
:class:`~jupyter_workflows.lifecycle.core.Lifecycle` (they may be registered in the kernel).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from ..exceptions import SpecError
from ..spec.loader import SourceMap, gather_errors, parse_document, spec_error_from_validation

__all__ = [
    "GUARD_SCOPE",
    "STATE_TYPES",
    "ApprovalSpec",
    "LifecycleSpec",
    "StateSpec",
    "TransitionSpec",
    "WorkflowRef",
    "check_lifecycle",
    "document_kind",
    "load_lifecycle_spec",
]

STATE_TYPES = ("draft", "pending", "processing", "approval", "approved", "published", "failure")
"""Bosca's state types (``WorkflowStateType``)."""

StateType = Literal[
    "draft", "pending", "processing", "approval", "approved", "published", "failure"
]

GUARD_SCOPE = frozenset({"object", "data", "transition", "approval", "system"})
"""The names a guard (``when``), an approval prompt or a parameter template can use."""

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _name(value: Any) -> Any:
    if isinstance(value, str) and not _NAME_RE.match(value):
        raise ValueError(
            f"invalid name {value!r} (letters, digits, _ . -; not starting with a digit)"
        )
    return value


Name = Annotated[str, BeforeValidator(_name)]


class WorkflowRef(_Model):
    """A workflow a state runs: ``NAME`` or ``{workflow: NAME, parameters: {...}}``.

    Without ``parameters``, the workflow gets each of its declared parameters that the object
    has: ``object`` (the object's id), ``from_state``, ``to_state``, and the keys of the
    object's data. ``parameters`` are templates over :data:`GUARD_SCOPE`.
    """

    workflow: Name
    parameters: dict[str, Any] | None = None


def _refs(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str | dict):
        value = [value]
    if isinstance(value, list):
        return [{"workflow": v} if isinstance(v, str) else v for v in value]
    return value


Refs = Annotated[list[WorkflowRef], BeforeValidator(_refs)]


class ApprovalSpec(_Model):
    """An approval asked on arrival (a ``core.inquiry`` run) and what its answer does."""

    prompt: str = "Approve {{ object.id }}?"
    #: JSON Schema of the answer; default ``{approved: boolean, comment: string}``.
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    #: Whether an answer approves: a template over the answer (``answer``) and the object.
    when: str = "{{ answer.approved }}"
    approved: Name
    rejected: Name | None = None
    timeout: float | None = Field(default=None, gt=0)


class StateSpec(_Model):
    """One state."""

    type: StateType | None = None
    description: str | None = None
    entry: Refs = []
    exit: Refs = []
    workflows: Refs = []
    approval: ApprovalSpec | None = None
    configuration: dict[str, Any] = {}


def _from(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class TransitionSpec(_Model):
    """A declared transition; ``from`` may be a list, or ``"*"`` for every state."""

    from_: Annotated[list[str], BeforeValidator(_from)] = Field(alias="from", min_length=1)
    to: Name
    when: str | None = None
    description: str | None = None


class LifecycleSpec(_Model):
    """A lifecycle document."""

    lifecycle: Name
    description: str | None = None
    version: Any = None
    initial: Name | None = None
    states: dict[str, StateSpec] = Field(min_length=1)
    transitions: list[TransitionSpec] = []

    @field_validator("states", mode="before")
    @classmethod
    def _state_list(cls, value: Any) -> Any:
        """``states: [draft, published]`` is short for states with no workflows."""
        if isinstance(value, list):
            out: dict[str, Any] = {}
            for item in value:
                if isinstance(item, str):
                    out[item] = {}
                elif isinstance(item, dict) and isinstance(item.get("name"), str):
                    out[item["name"]] = {k: v for k, v in item.items() if k != "name"}
                else:
                    raise ValueError("each entry of a state list is a name or has a 'name'")
            return out
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @property
    def initial_state(self) -> str:
        return self.initial or next(iter(self.states))

    def state_type(self, name: str) -> str:
        state = self.states[name]
        return state.type or (name if name in STATE_TYPES else "pending")

    def declared(self, source: str, target: str) -> list[TransitionSpec]:
        """The transitions declared from ``source`` to ``target`` (approval targets included)."""
        found = [
            t for t in self.transitions if t.to == target and ("*" in t.from_ or source in t.from_)
        ]
        approval = self.states[source].approval if source in self.states else None
        if not found and approval is not None and target in (approval.approved, approval.rejected):
            found = [TransitionSpec.model_validate({"from": source, "to": target})]
        return found

    def targets(self, source: str) -> list[str]:
        """States a transition is declared to from ``source``, in document order."""
        out = [
            t.to
            for t in self.transitions
            if ("*" in t.from_ or source in t.from_) and t.to != source
        ]
        approval = self.states[source].approval if source in self.states else None
        if approval is not None:
            out += [s for s in (approval.approved, approval.rejected) if s]
        return list(dict.fromkeys(out))


def document_kind(data: Any) -> str:
    """``lifecycle``, ``triggers`` (traits and hooks) or ``workflow``, by the top-level keys."""
    if isinstance(data, dict):
        if "lifecycle" in data:
            return "lifecycle"
        if "traits" in data or "hooks" in data:
            return "triggers"
    return "workflow"


def _template_names(text: str) -> set[str] | None:
    """The free names of a template (None when it does not parse)."""
    from jinja2 import meta

    from ..expressions import _ENV, is_template

    source = text if is_template(text) else "{{ " + text + " }}"
    try:
        return set(meta.find_undeclared_variables(_ENV.parse(source)))
    except Exception:
        return None


def check_template(
    text: Any,
    path: tuple[Any, ...],
    smap: SourceMap,
    scope: frozenset[str],
    *,
    expression: bool = False,
) -> SpecError | None:
    """A positioned error for a template that does not compile or uses an unknown name.

    ``expression``: text without ``{{ }}`` is an expression (a ``when``), not plain text.
    """
    from ..expressions import is_template, template_error

    if not isinstance(text, str) or (not expression and not is_template(text)):
        return None
    source = text if is_template(text) else "{{ " + text + " }}"
    problem = template_error(source)
    if problem is not None:
        return smap.error(f"template syntax error: {problem[2]}", path)
    names = _template_names(text) or set()
    unknown = sorted(names - scope)
    if unknown:
        return smap.error(
            f"unknown name {unknown[0]!r} in {text!r} (known: {', '.join(sorted(scope))})", path
        )
    return None


def check_lifecycle(spec: LifecycleSpec, smap: SourceMap) -> None:
    """What the models cannot check: states named but not declared, guards and prompts."""
    errors: list[SpecError] = []
    states = spec.states
    for name in states:
        if not _NAME_RE.match(name):
            errors.append(smap.error(f"invalid state name {name!r}", ("states", name), key=True))
    if spec.initial is not None and spec.initial not in states:
        errors.append(
            smap.error(f"initial state {spec.initial!r} is not a declared state", ("initial",))
        )
    path: tuple[Any, ...]
    for name, state in states.items():
        path = ("states", name)
        if state.type is None and name not in STATE_TYPES:
            errors.append(
                smap.error(
                    f"state {name!r} needs a 'type' (one of {', '.join(STATE_TYPES)})",
                    path,
                    key=True,
                )
            )
        for kind in ("entry", "exit", "workflows"):
            for i, ref in enumerate(getattr(state, kind)):
                for key, value in (ref.parameters or {}).items():
                    err = check_template(
                        value, (*path, kind, i, "parameters", key), smap, GUARD_SCOPE
                    )
                    if err:
                        errors.append(err)
        approval = state.approval
        if approval is None:
            continue
        if spec.state_type(name) != "approval":
            errors.append(
                smap.error(
                    f"state {name!r} has an approval but is not of type approval",
                    (*path, "approval"),
                    key=True,
                )
            )
        for field in ("approved", "rejected"):
            target = getattr(approval, field)
            if target is not None and target not in states:
                errors.append(
                    smap.error(
                        f"approval {field}: {target!r} is not a declared state",
                        (*path, "approval", field),
                    )
                )
        for field, scope in (("prompt", GUARD_SCOPE), ("when", GUARD_SCOPE | {"answer"})):
            err = check_template(
                getattr(approval, field),
                (*path, "approval", field),
                smap,
                scope,
                expression=field == "when",
            )
            if err:
                errors.append(err)
    for i, transition in enumerate(spec.transitions):
        path = ("transitions", i)
        for j, source in enumerate(transition.from_):
            if source != "*" and source not in states:
                where = (*path, "from", j) if (*path, "from", j) in smap.values else (*path, "from")
                errors.append(smap.error(f"transition from unknown state {source!r}", where))
        if transition.to not in states:
            errors.append(
                smap.error(f"transition to unknown state {transition.to!r}", (*path, "to"))
            )
        if transition.when is not None:
            err = check_template(
                transition.when, (*path, "when"), smap, GUARD_SCOPE, expression=True
            )
            if err:
                errors.append(err)
    if errors:
        errors.sort(key=lambda e: (e.line or 0, e.col or 0))
        raise gather_errors(errors)


def load_lifecycle_spec(
    text: str, *, file: str | None = None, name: str | None = None
) -> tuple[LifecycleSpec, SourceMap]:
    """Parse and validate a lifecycle document; every error positioned ``FILE:LINE:COL``."""
    data, smap = parse_document(text, file=file)
    if not isinstance(data, dict):
        raise smap.error("a lifecycle must be a mapping of fields")
    if "lifecycle" not in data:
        if name is None:
            raise smap.error("missing required field 'lifecycle' (the lifecycle's name)")
        data = {"lifecycle": name, **data}
    elif data["lifecycle"] is None and name is not None:
        data = {**data, "lifecycle": name}
    if "states" not in data:
        raise smap.error("missing required field 'states': a lifecycle needs at least one state")
    try:
        spec = LifecycleSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error_from_validation(exc, data, smap) from None
    check_lifecycle(spec, smap)
    return spec, smap
