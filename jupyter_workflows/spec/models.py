"""The workflow language as pydantic models: pure data, frozen, ``extra="forbid"``.

These models hold what the user wrote (sugar included), so ``Workflow.to_yaml()`` gives back a
document a person recognises and ``load(w.to_yaml()) == w`` holds. The engine never reads them
directly: :mod:`jupyter_workflows.spec.compile` turns them into the canonical form (only ``next``
transitions and ``join``), so the orchestrator has exactly one form to execute.

Short forms accepted on input and normalised here: ``retry: 3`` for ``{count: 3}``,
``cache: true`` for ``cache: {}``, a task name or a list of names for ``on_*``/``do``/``next``,
``publish`` as a mapping or a list of one-key mappings, a parameter given as a bare type name.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "NAME_PATTERN",
    "PARAMETER_TYPES",
    "RESERVED_TARGETS",
    "CachePolicy",
    "DecisionEntry",
    "ParameterSpec",
    "RetryPolicy",
    "TaskDefaults",
    "TaskSpec",
    "Transition",
    "WorkflowSpec",
]

#: Names of workflows and tasks.
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
_NAME_RE = re.compile(NAME_PATTERN)
#: Names of parameters and vars: they are read in templates as attributes, so identifiers only.
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Words that ``do`` reads as engine commands, so no task may be called so.
RESERVED_TARGETS = frozenset({"fail", "noop", "retry"})

PARAMETER_TYPES = ("string", "integer", "number", "boolean", "array", "object", "any")
ParameterType = Literal["string", "integer", "number", "boolean", "array", "object", "any"]


def _names(value: Any) -> Any:
    """A single name is short for a one-element list."""
    if isinstance(value, str):
        return [value]
    return value


def _publish(value: Any) -> Any:
    """``publish`` as a mapping becomes the canonical list of one-key mappings."""
    if isinstance(value, dict):
        return [{k: v} for k, v in value.items()]
    return value


NameList = Annotated[list[str], BeforeValidator(_names)]


def _task_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(f"invalid task name {value!r}: use letters, digits, '_', '.', '-'")
    if value in RESERVED_TARGETS:
        raise ValueError(f"{value!r} is a reserved word and cannot name a task")
    return value


def _identifier(value: str) -> str:
    if not _IDENT_RE.match(value):
        raise ValueError(f"invalid name {value!r}: use letters, digits and '_'")
    return value


TaskName = Annotated[str, AfterValidator(_task_name)]
Identifier = Annotated[str, AfterValidator(_identifier)]


def _check_publish_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for item in items:
        if len(item) != 1:
            raise ValueError("each publish entry must be a mapping with exactly one key")
        for key in item:
            if not _IDENT_RE.match(key):
                raise ValueError(f"invalid variable name {key!r} in publish")
    return items


PublishList = Annotated[list[dict[str, Any]], BeforeValidator(_publish)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ParameterSpec(_Model):
    """A typed input of the workflow, validated before a run exists."""

    type: ParameterType = "any"
    required: bool = False
    default: Any = None
    enum: list[Any] | None = None
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_type(cls, value: Any) -> Any:
        if isinstance(value, str) and value in PARAMETER_TYPES:
            return {"type": value}
        if value is None:
            return {}
        return value


class RetryPolicy(_Model):
    """How often and how soon a failed attempt is tried again.

    ``count`` is the number of retries after the first attempt. The delay before retry ``n``
    (1-based) is ``delay`` (constant), ``delay * n`` (linear) or ``delay * 2**(n-1)``
    (exponential), capped by ``max_delay``. ``when``, a condition over the failed attempt
    (``result``, ``error``, ``failed()``, ``timed_out()``, as a transition's ``when`` sees it),
    limits retries to the failures it holds for; without it every failure is retried.
    """

    count: int = Field(0, ge=0)
    delay: float = Field(0, ge=0)
    backoff: Literal["constant", "linear", "exponential"] = "constant"
    max_delay: float | None = Field(None, ge=0)
    when: str | bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"count": value}
        return value

    def delay_for(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        if self.backoff == "linear":
            delay = self.delay * retry_number
        elif self.backoff == "exponential":
            delay = self.delay * (2 ** (retry_number - 1))
        else:
            delay = self.delay
        if self.max_delay is not None:
            delay = min(delay, self.max_delay)
        return delay


class CachePolicy(_Model):
    """Reuse a stored result while the action's code and rendered inputs are unchanged."""

    key: str | None = None
    expire: float | None = Field(None, gt=0)


def _cache(value: Any) -> Any:
    if value is True:
        return {}
    if value is False:
        return None
    return value


class Transition(_Model):
    """The canonical transition: when ``when`` is true, ``publish`` then start ``do``."""

    when: str | bool | None = None
    publish: PublishList = Field(default_factory=list)
    do: NameList = Field(default_factory=list)

    _check = field_validator("publish")(_check_publish_items)


class DecisionEntry(_Model):
    """One branch of a ``decision``: ``{when, next}``, or ``{default}`` for the else."""

    when: str | bool | None = None
    next: NameList | None = None
    publish: PublishList = Field(default_factory=list)
    default: NameList | None = None

    _check = field_validator("publish")(_check_publish_items)

    @model_validator(mode="after")
    def _shape(self) -> DecisionEntry:
        if self.default is not None:
            if self.when is not None or self.next is not None:
                raise ValueError("a decision 'default' entry takes no 'when' or 'next'")
        elif self.next is None:
            raise ValueError("a decision entry needs 'when' and 'next', or 'default'")
        elif self.when is None:
            raise ValueError(
                "a decision entry with 'next' needs a 'when' (use 'default' for the else)"
            )
        return self


class _TaskOptions(_Model):
    """Fields a task shares with ``defaults``."""

    retry: RetryPolicy | None = None
    timeout: float | None = Field(None, gt=0)
    resources: dict[str, float] | None = None
    queue: str | None = None
    priority: int | None = None
    cache: Annotated[CachePolicy | None, BeforeValidator(_cache)] = None
    max_runs: int | None = Field(None, ge=1)


class TaskDefaults(_TaskOptions):
    """``defaults``: merged into every task that does not set the field itself."""


class TaskSpec(_TaskOptions):
    """One task as written by the user (sugar included)."""

    description: str | None = None
    type: Literal["task", "parallel"] = "task"
    action: str | None = None
    workflow: str | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    tasks: dict[TaskName, TaskSpec] | None = None
    with_items: str | list[Any] | None = None
    batch_size: int | None = Field(None, ge=1)
    chunk_size: int | None = Field(None, ge=1)
    join: Literal["all"] | Annotated[int, Field(ge=1)] | None = None
    next: list[Transition] = Field(default_factory=list)
    on_success: NameList | None = None
    on_failure: NameList | None = None
    on_complete: NameList | None = None
    publish: PublishList | None = None
    decision: list[DecisionEntry] | None = None
    needs: NameList | None = None
    group: int | None = None

    _check = field_validator("publish")(lambda v: _check_publish_items(v) if v is not None else v)

    @model_validator(mode="before")
    @classmethod
    def _tasks_list(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("tasks"), list):
            value = dict(value)
            value["tasks"] = _task_list_to_mapping(value["tasks"])
        return value

    # Checks between fields run as validators of the later field (fields validate in order), so
    # an error's location, and the loader's FILE:LINE:COL, is the field that is wrong.
    @field_validator("action", "workflow", "with_items")
    @classmethod
    def _not_in_parallel(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("type") == "parallel":
            raise ValueError(f"a parallel task runs its 'tasks'; it takes no {info.field_name!r}")
        return value

    @field_validator("workflow")
    @classmethod
    def _not_both(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("action") is not None:
            raise ValueError("a task takes 'action' or 'workflow', not both")
        return value

    @field_validator("tasks")
    @classmethod
    def _only_parallel(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("type", "task") != "parallel":
            raise ValueError("only a task of 'type: parallel' has 'tasks'")
        return value

    @field_validator("batch_size")
    @classmethod
    def _batch_needs_items(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and "with_items" in info.data and info.data["with_items"] is None:
            raise ValueError("'batch_size' needs 'with_items'")
        return value

    @field_validator("chunk_size")
    @classmethod
    def _chunk_needs_items(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and "with_items" in info.data and info.data["with_items"] is None:
            raise ValueError("'chunk_size' needs 'with_items'")
        return value

    @model_validator(mode="after")
    def _shape(self) -> TaskSpec:
        if self.type == "parallel" and not self.tasks:
            raise ValueError("a parallel task needs 'tasks'")
        return self


def _task_list_to_mapping(items: list[Any]) -> Any:
    """``[{name: a, action: x}, {b: {action: y}}]`` -> ``{a: {action: x}, b: {action: y}}``.

    The loader does this itself (keeping positions); this is the path for plain dicts.
    """
    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict):
            return items  # let pydantic report the wrong type
        if isinstance(item.get("name"), str):
            body = {k: v for k, v in item.items() if k != "name"}
            name = item["name"]
        elif len(item) == 1:
            ((name, body),) = item.items()
        else:
            return items
        if name in out:
            raise ValueError(f"duplicate task name {name!r}")
        out[name] = body
    return out


class WorkflowSpec(_Model):
    """A whole workflow document."""

    name: str
    description: str | None = None
    version: str | int | float | None = None
    parameters: dict[Identifier, ParameterSpec] = Field(default_factory=dict)
    vars: dict[Identifier, Any] = Field(default_factory=dict)
    defaults: TaskDefaults | None = None
    keep_going: bool = False
    schedule: str | None = None
    tasks: dict[TaskName, TaskSpec]
    output_map: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _tasks_list(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("tasks"), list):
            value = dict(value)
            value["tasks"] = _task_list_to_mapping(value["tasks"])
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(f"invalid workflow name {value!r}: use letters, digits, '_', '.', '-'")
        return value

    @field_validator("tasks")
    @classmethod
    def _some_tasks(cls, value: dict[str, TaskSpec]) -> dict[str, TaskSpec]:
        if not value:
            raise ValueError("a workflow needs at least one task")
        return value


def _walk_tasks(tasks: dict[str, TaskSpec]):
    for name, task in tasks.items():
        yield name, task
        if task.tasks:
            yield from _walk_tasks(task.tasks)
