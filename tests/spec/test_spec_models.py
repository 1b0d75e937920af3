"""The workflow language as pydantic models: every field of CONTRACT §1, short forms, defaults.

The big example of CONTRACT §1 is the fixture. Its actions (``deploy_actions:create``,
``train_model``...) and its nested workflow ``notify`` do not exist here, so the parsing tests
use :func:`jupyter_workflows.load` without ``validate()``; one test gives them stand-ins (a module
and a ``notify.yaml`` beside the file, registered tasks) and validates the whole thing.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

import jupyter_workflows as jw
from jupyter_workflows.actions import registry
from jupyter_workflows.spec.models import (
    CachePolicy,
    DecisionEntry,
    ParameterSpec,
    RetryPolicy,
    TaskDefaults,
    TaskSpec,
    Transition,
    WorkflowSpec,
)

CONTRACT_EXAMPLE = """\
name: deploy                     # [A-Za-z_][A-Za-z0-9_.-]*; may come from the magic line instead
description: Deploy an app
version: 1                       # optional, informational
parameters:                      # typed inputs, validated before anything runs
  app_name: {type: string, required: true}
  regions:  {type: array, default: [eu, us]}
  environment: {type: string, enum: [dev, staging, production], default: dev}
  # types: string integer number boolean array object any
vars:                            # workflow variables, rendered in order (may use parameters)
  deployment_id: null
defaults:                        # merged into every task unless the task overrides
  retry: {count: 2, delay: 1}
keep_going: false                # see §1.4
tasks:                           # a mapping name -> task (a list of {name: ...} is accepted too)
  create:
    action: deploy_actions:create          # see §1.2
    input: {app: "{{ parameters.app_name }}"}
    publish: {deployment_id: "{{ result.id }}"}   # on success, into vars
    on_success: build
  build:
    action: train_model
    resources: {GPU: 1}          # Dask worker resources
    queue: gpu                   # only workers that serve this queue
    priority: 10
    timeout: 600                 # seconds; exceeding it fails the attempt with TimeoutError
    retry: {count: 3, delay: 2, backoff: exponential, max_delay: 60}  # count = retries after the first attempt; `retry: 3` is short for {count: 3}
    cache: true                  # §1.6
    on_success: [deploy_regions]
    on_failure: cleanup
  deploy_regions:
    action: cloud_deploy
    with_items: "{{ parameters.regions }}"
    batch_size: 5                # at most 5 items in flight at once
    input: {region: "{{ item }}", n: "{{ index }}"}
    on_success: checks
  checks:
    type: parallel               # sub-tasks run together; the group succeeds when all do
    tasks:
      check_db: {action: db_health}
      check_cache: {action: cache_ping}
    on_success: decide
  decide:                        # a task with no action is a routing no-op
    decision:                    # first match wins; default is the else
      - when: "{{ parameters.environment == 'production' }}"
        next: approve
      - default: finish
  approve:
    action: core.inquiry
    input: {prompt: "Approve production deploy?", schema: {type: object, properties: {approved: {type: boolean}}}}
    timeout: 3600
    decision:
      - when: "{{ result.approved }}"
        next: finish
      - default: cleanup
  finish:
    workflow: notify             # a nested workflow; its outputs become this task's result
    input: {text: "deployed {{ parameters.app_name }}"}
  cleanup: {action: core.noop}
output_map:                      # rendered when the run ends (also when it failed)
  deployment_id: "{{ vars.deployment_id }}"
"""


@pytest.fixture(scope="module")
def contract() -> jw.Workflow:
    return jw.load(CONTRACT_EXAMPLE)


def spec_of(text: str) -> WorkflowSpec:
    return jw.load(textwrap.dedent(text)).spec


# -- the CONTRACT §1 example, field by field ----------------------------------------------------


def test_contract_top_level_fields(contract: jw.Workflow) -> None:
    spec = contract.spec
    assert spec.name == "deploy"
    assert spec.description == "Deploy an app"
    assert spec.version == 1
    assert spec.keep_going is False
    assert spec.vars == {"deployment_id": None}
    assert spec.output_map == {"deployment_id": "{{ vars.deployment_id }}"}
    assert list(spec.tasks) == [
        "create",
        "build",
        "deploy_regions",
        "checks",
        "decide",
        "approve",
        "finish",
        "cleanup",
    ]


def test_contract_parameters(contract: jw.Workflow) -> None:
    params = contract.spec.parameters
    assert params["app_name"] == ParameterSpec(type="string", required=True)
    assert params["regions"].type == "array"
    assert params["regions"].default == ["eu", "us"]
    assert params["regions"].required is False
    assert params["environment"].enum == ["dev", "staging", "production"]
    assert params["environment"].default == "dev"
    assert contract.parameters["app_name"] == {"type": "string", "required": True}


def test_contract_defaults(contract: jw.Workflow) -> None:
    assert contract.spec.defaults == TaskDefaults(retry=RetryPolicy(count=2, delay=1))


def test_contract_create_task(contract: jw.Workflow) -> None:
    create = contract.spec.tasks["create"]
    assert create.action == "deploy_actions:create"
    assert create.input == {"app": "{{ parameters.app_name }}"}
    assert create.publish == [{"deployment_id": "{{ result.id }}"}]
    assert create.on_success == ["build"]
    assert create.type == "task"


def test_contract_build_task(contract: jw.Workflow) -> None:
    build = contract.spec.tasks["build"]
    assert build.action == "train_model"
    assert build.resources == {"GPU": 1.0}
    assert build.queue == "gpu"
    assert build.priority == 10
    assert build.timeout == 600
    assert build.retry == RetryPolicy(count=3, delay=2, backoff="exponential", max_delay=60)
    assert build.cache == CachePolicy()
    assert build.on_success == ["deploy_regions"]
    assert build.on_failure == ["cleanup"]


def test_contract_with_items_task(contract: jw.Workflow) -> None:
    task = contract.spec.tasks["deploy_regions"]
    assert task.with_items == "{{ parameters.regions }}"
    assert task.batch_size == 5
    assert task.input == {"region": "{{ item }}", "n": "{{ index }}"}


def test_contract_parallel_task(contract: jw.Workflow) -> None:
    checks = contract.spec.tasks["checks"]
    assert checks.type == "parallel"
    assert checks.tasks is not None
    assert list(checks.tasks) == ["check_db", "check_cache"]
    assert checks.tasks["check_db"].action == "db_health"
    assert checks.action is None


def test_contract_decisions(contract: jw.Workflow) -> None:
    decide = contract.spec.tasks["decide"]
    assert decide.action is None and decide.workflow is None
    assert decide.decision == [
        DecisionEntry(when="{{ parameters.environment == 'production' }}", next=["approve"]),
        DecisionEntry(default=["finish"]),
    ]
    approve = contract.spec.tasks["approve"]
    assert approve.action == "core.inquiry"
    assert approve.timeout == 3600
    assert approve.input["schema"]["properties"]["approved"] == {"type": "boolean"}
    assert approve.decision is not None
    assert approve.decision[1].default == ["cleanup"]


def test_contract_nested_workflow_task(contract: jw.Workflow) -> None:
    finish = contract.spec.tasks["finish"]
    assert finish.workflow == "notify"
    assert finish.action is None
    assert finish.input == {"text": "deployed {{ parameters.app_name }}"}
    assert contract.spec.tasks["cleanup"] == TaskSpec(action="core.noop")


def test_contract_validates_with_stand_ins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With its actions and nested workflow present, the §1 example is a valid workflow."""
    # Resolving puts the file's folder on sys.path, imports its module and registers tasks:
    # undo all three so no other test sees them.
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.delitem(sys.modules, "deploy_actions", raising=False)
    (tmp_path / "deploy_actions.py").write_text("def create(app):\n    return {'id': app}\n")
    (tmp_path / "notify.yaml").write_text(
        "name: notify\nparameters: {text: string}\ntasks:\n  say: {action: core.echo}\n"
    )
    path = tmp_path / "deploy.yaml"
    path.write_text(CONTRACT_EXAMPLE)
    for name in ("train_model", "cloud_deploy", "db_health", "cache_ping"):
        jw.task(name=name)(lambda **kwargs: kwargs)
    workflow = jw.load(path)
    try:
        assert workflow.validate() == []
    finally:
        sys.modules.pop("deploy_actions", None)
    assert workflow.compiled.start == ("create",)


# -- tasks as a mapping or as a list -----------------------------------------------------------

MAPPING_FORM = """\
name: forms
tasks:
  a: {action: core.echo, input: {x: 1}, on_success: b}
  b: {action: core.noop}
"""


def test_task_list_with_name_field_equals_mapping() -> None:
    listed = spec_of(
        """\
        name: forms
        tasks:
          - name: a
            action: core.echo
            input: {x: 1}
            on_success: b
          - name: b
            action: core.noop
        """
    )
    assert listed == spec_of(MAPPING_FORM)
    assert list(listed.tasks) == ["a", "b"]


def test_task_list_of_one_key_mappings_equals_mapping() -> None:
    listed = spec_of(
        """\
        name: forms
        tasks:
          - a: {action: core.echo, input: {x: 1}, on_success: b}
          - b: {action: core.noop}
        """
    )
    assert listed == spec_of(MAPPING_FORM)


def test_task_list_mixed_forms_and_nested_parallel_list() -> None:
    spec = spec_of(
        """\
        name: mixed
        tasks:
          - name: group
            type: parallel
            tasks:
              - name: x
                action: core.noop
              - y: {action: core.noop}
          - after: {action: core.noop}
        """
    )
    group = spec.tasks["group"]
    assert group.tasks is not None
    assert list(group.tasks) == ["x", "y"]
    assert list(spec.tasks) == ["group", "after"]


def test_task_list_from_plain_dicts() -> None:
    """Models accept the list form without the loader too (``model_validate`` on data)."""
    spec = WorkflowSpec.model_validate(
        {
            "name": "w",
            "tasks": [{"name": "a", "action": "core.noop"}, {"b": {"action": "core.echo"}}],
        }
    )
    assert spec.tasks == {"a": TaskSpec(action="core.noop"), "b": TaskSpec(action="core.echo")}
    with pytest.raises(ValidationError, match="duplicate task name"):
        WorkflowSpec.model_validate({"name": "w", "tasks": [{"name": "a"}, {"name": "a"}]})


# -- short forms -------------------------------------------------------------------------------


def test_retry_short_form() -> None:
    assert TaskSpec.model_validate({"retry": 3}).retry == RetryPolicy(count=3)
    assert RetryPolicy.model_validate(0) == RetryPolicy()
    with pytest.raises(ValidationError):
        TaskSpec.model_validate({"retry": True})  # a bool is not a count


def test_cache_short_forms() -> None:
    assert TaskSpec.model_validate({"cache": True}).cache == CachePolicy()
    assert TaskSpec.model_validate({"cache": False}).cache is None
    cache = TaskSpec.model_validate({"cache": {"key": "{{ parameters.x }}", "expire": 60}}).cache
    assert cache == CachePolicy(key="{{ parameters.x }}", expire=60)
    with pytest.raises(ValidationError):
        TaskSpec.model_validate({"cache": {"expire": 0}})


@pytest.mark.parametrize("field", ["on_success", "on_failure", "on_complete", "needs"])
def test_name_or_list_of_names(field: str) -> None:
    assert getattr(TaskSpec.model_validate({field: "x"}), field) == ["x"]
    assert getattr(TaskSpec.model_validate({field: ["x", "y"]}), field) == ["x", "y"]


def test_transition_do_short_form_and_publish_forms() -> None:
    t = Transition.model_validate({"when": "{{ failed() }}", "do": "cleanup", "publish": {"a": 1}})
    assert t.do == ["cleanup"]
    assert t.publish == [{"a": 1}]
    t = Transition.model_validate({"publish": [{"a": 1}, {"a": 2}], "do": ["x", "fail"]})
    assert t.publish == [{"a": 1}, {"a": 2}]  # a list keeps order, repeats allowed
    assert t.do == ["x", "fail"]
    assert t.when is None


def test_publish_mapping_and_list_forms() -> None:
    as_mapping = TaskSpec.model_validate({"publish": {"a": "{{ result }}", "b": 2}})
    as_list = TaskSpec.model_validate({"publish": [{"a": "{{ result }}"}, {"b": 2}]})
    assert as_mapping == as_list
    assert as_list.publish == [{"a": "{{ result }}"}, {"b": 2}]


@pytest.mark.parametrize(
    "publish",
    [[{"a": 1, "b": 2}], [{}], {"not-an-identifier": 1}, [{"1x": 1}]],
)
def test_bad_publish_entries(publish: object) -> None:
    with pytest.raises(ValidationError):
        TaskSpec.model_validate({"publish": publish})


def test_parameter_short_forms() -> None:
    spec = spec_of(
        """\
        name: params
        parameters:
          n: integer
          anything:
          full: {type: number, default: 1.5, description: a float}
        tasks:
          a: {action: core.noop}
        """
    )
    assert spec.parameters["n"] == ParameterSpec(type="integer")
    assert spec.parameters["anything"] == ParameterSpec()
    assert spec.parameters["anything"].type == "any"
    assert spec.parameters["full"].description == "a float"


def test_decision_entry_shapes() -> None:
    assert DecisionEntry.model_validate({"when": "x", "next": "a"}).next == ["a"]
    assert DecisionEntry.model_validate({"default": "a"}).default == ["a"]
    for bad in ({"next": "a"}, {"when": "x"}, {"default": "a", "when": "x"}, {}):
        with pytest.raises(ValidationError):
            DecisionEntry.model_validate(bad)


# -- defaults merged into compiled tasks -------------------------------------------------------


def test_defaults_merge_into_compiled_tasks_and_tasks_win() -> None:
    workflow = jw.load(
        textwrap.dedent(
            """\
            name: merged
            defaults:
              retry: {count: 2, delay: 1}
              timeout: 30
              queue: cpu
              priority: 5
              resources: {CPU: 1}
              cache: true
              max_runs: 7
            tasks:
              plain: {action: core.noop, on_success: own}
              own:
                action: core.noop
                retry: 5
                timeout: 2
                queue: gpu
                priority: -1
                resources: {GPU: 2}
                cache: {expire: 10}
                max_runs: 1
            """
        )
    )
    plain, own = workflow.compiled.tasks["plain"], workflow.compiled.tasks["own"]
    assert plain.retry == RetryPolicy(count=2, delay=1)
    assert plain.timeout == 30
    assert plain.queue == "cpu"
    assert plain.priority == 5
    assert plain.resources == {"CPU": 1}
    assert plain.cache == CachePolicy()
    assert (plain.max_runs, plain.max_runs_set) == (7, True)
    assert own.retry == RetryPolicy(count=5)
    assert own.timeout == 2
    assert own.queue == "gpu"
    assert own.priority == -1
    assert own.resources == {"GPU": 2}
    assert own.cache == CachePolicy(expire=10)
    assert (own.max_runs, own.max_runs_set) == (1, True)


def test_compiled_fallbacks_without_defaults() -> None:
    task = jw.load("name: w\ntasks:\n  a: {action: core.noop}\n").compiled.tasks["a"]
    assert task.retry == RetryPolicy()
    assert task.timeout is None
    assert task.priority == 0
    assert task.resources == {}
    assert task.cache is None
    assert (task.max_runs, task.max_runs_set) == (1000, False)


def test_defaults_take_only_task_options() -> None:
    with pytest.raises(ValidationError):
        TaskDefaults.model_validate({"action": "core.noop"})
    with pytest.raises(ValidationError):
        TaskDefaults.model_validate({"on_success": "x"})


# -- retry delays ------------------------------------------------------------------------------


def test_retry_delay_formula() -> None:
    constant = RetryPolicy(count=3, delay=2)
    assert [constant.delay_for(n) for n in (1, 2, 3)] == [2, 2, 2]
    linear = RetryPolicy(count=3, delay=2, backoff="linear")
    assert [linear.delay_for(n) for n in (1, 2, 3)] == [2, 4, 6]
    exponential = RetryPolicy(count=5, delay=1, backoff="exponential", max_delay=5)
    assert [exponential.delay_for(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 5, 5]


# -- frozen, extra="forbid", shapes ------------------------------------------------------------


def test_models_are_frozen(contract: jw.Workflow) -> None:
    with pytest.raises(ValidationError):
        contract.spec.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        contract.spec.tasks["build"].timeout = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        RetryPolicy().count = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (WorkflowSpec, {"name": "w", "tasks": {"a": {}}, "taks": {}}),
        (TaskSpec, {"acton": "core.noop"}),
        (TaskDefaults, {"retries": 1}),
        (RetryPolicy, {"count": 1, "backof": "linear"}),
        (CachePolicy, {"ttl": 3}),
        (ParameterSpec, {"type": "string", "defualt": "x"}),
        (Transition, {"when": "x", "then": "a"}),
        (DecisionEntry, {"when": "x", "next": "a", "else": "b"}),
    ],
)
def test_extra_fields_are_forbidden(model: type, data: dict) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    assert info.value.errors()[0]["type"] == "extra_forbidden"


@pytest.mark.parametrize(
    "task",
    [
        {"action": "core.noop", "workflow": "other"},
        {"type": "parallel"},
        {"type": "parallel", "tasks": {}},
        {"type": "parallel", "tasks": {"a": {}}, "action": "core.noop"},
        {"tasks": {"a": {}}},
        {"action": "core.echo", "batch_size": 2},
        {"join": 0},
        {"join": "some"},
        {"timeout": 0},
        {"timeout": "abc"},
        {"priority": "high"},
        {"max_runs": 0},
        {"batch_size": 0, "with_items": [1]},
        {"with_items": 5},
        {"type": "sequential"},
        {"input": [1, 2]},
        {"resources": {"GPU": "many"}},
    ],
)
def test_invalid_tasks(task: dict) -> None:
    with pytest.raises(ValidationError):
        TaskSpec.model_validate(task)


@pytest.mark.parametrize("name", ["my workflow", "1st", "", "a/b", "é"])
def test_invalid_workflow_names(name: str) -> None:
    with pytest.raises(ValidationError):
        WorkflowSpec.model_validate({"name": name, "tasks": {"a": {}}})


@pytest.mark.parametrize("name", ["deploy", "_x", "a.b-c_1", "CamelCase"])
def test_valid_names(name: str) -> None:
    spec = WorkflowSpec.model_validate({"name": name, "tasks": {name: {}}})
    assert list(spec.tasks) == [name]


@pytest.mark.parametrize("name", ["fail", "noop", "retry", "two words", "9lives"])
def test_invalid_task_names(name: str) -> None:
    with pytest.raises(ValidationError):
        WorkflowSpec.model_validate({"name": "w", "tasks": {name: {}}})


@pytest.mark.parametrize("name", ["has-dash", "1x", "a.b"])
def test_parameter_and_var_names_are_identifiers(name: str) -> None:
    with pytest.raises(ValidationError):
        WorkflowSpec.model_validate({"name": "w", "parameters": {name: {}}, "tasks": {"a": {}}})
    with pytest.raises(ValidationError):
        WorkflowSpec.model_validate({"name": "w", "vars": {name: 1}, "tasks": {"a": {}}})


def test_workflow_needs_tasks() -> None:
    with pytest.raises(ValidationError):
        WorkflowSpec.model_validate({"name": "w", "tasks": {}})
    with pytest.raises(ValidationError):
        WorkflowSpec.model_validate({"name": "w"})


def test_join_values() -> None:
    assert TaskSpec.model_validate({"join": "all"}).join == "all"
    assert TaskSpec.model_validate({"join": 2}).join == 2
    assert TaskSpec.model_validate({}).join is None


def test_schedule_and_description_fields() -> None:
    spec = spec_of(
        """\
        name: nightly
        schedule: "0 9 * * *"
        tasks:
          a: {action: core.noop, description: does nothing}
        """
    )
    assert spec.schedule == "0 9 * * *"
    assert spec.tasks["a"].description == "does nothing"


# -- run parameters: -p KEY=VALUE typing and checks (docs/language.md) ---------------------------


@pytest.mark.parametrize(
    ("item", "value"),
    [
        ("n=5", 5),
        ("ratio=0.5", 0.5),
        ("dry_run=true", True),
        ("regions=[eu,us]", ["eu", "us"]),
        ("labels={team: data}", {"team": "data"}),
        ("name=shop", "shop"),
        ('version="1.10"', "1.10"),
        ("version=1.10", 1.1),
        ('day="2024-01-01"', "2024-01-01"),
        ("note=", ""),
        ("x=null", None),
        ("expr=a=b", "a=b"),
    ],
)
def test_assignments_are_read_as_yaml(item: str, value: object) -> None:
    from jupyter_workflows.spec.params import parse_assignments

    key = item.partition("=")[0]
    assert parse_assignments([item]) == {key: value}


@pytest.mark.parametrize("item", ["novalue", "=5", "x=[unclosed"])
def test_bad_assignments(item: str) -> None:
    from jupyter_workflows.spec.params import parse_assignments

    with pytest.raises(jw.ParameterError):
        parse_assignments([item])


def test_resolve_parameters() -> None:
    from jupyter_workflows.spec.params import resolve_parameters

    spec = spec_of(
        """\
        name: p
        parameters:
          app: {type: string, required: true}
          replicas: {type: integer, default: 2}
          env: {type: string, enum: [dev, prod], default: dev}
          anything:
        tasks:
          a: {action: core.noop}
        """
    )
    assert resolve_parameters(spec, {"app": "shop"}) == {
        "app": "shop",
        "replicas": 2,
        "env": "dev",
        "anything": None,
    }
    assert resolve_parameters(spec, {"app": "x", "anything": None})["anything"] is None
    for given, says in [
        ({}, "'app' is required"),
        ({"app": "x", "replica": 3}, "did you mean 'replicas'"),
        ({"app": "x", "replicas": "3"}, "must be of type integer"),
        ({"app": "x", "replicas": True}, "must be of type integer"),
        ({"app": "x", "env": "staging"}, "must be one of"),
        ({"app": None}, "must be of type string"),
    ]:
        with pytest.raises(jw.ParameterError, match=re.escape(says)):
            resolve_parameters(spec, given)
