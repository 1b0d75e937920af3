"""``%workflow form``: inputs from parameter types, inline validation, the Run button."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import pytest

import jupyter_workflows as jw
from jupyter_workflows.jupyter.form import build_form
from jupyter_workflows.jupyter.widget import GraphWidget

DEPLOY = """\
name: deploy_form
description: Deploy an app
parameters:
  app_name: {type: string, required: true, description: the app to deploy}
  environment: {type: string, enum: [dev, staging, production], default: dev}
  replicas: {type: integer, default: 2}
  ratio: {type: number, default: 0.5}
  dry_run: {type: boolean, default: true}
  regions: {type: array, default: [eu, us]}
  labels: {type: object}
  extra: any
tasks:
  show:
    action: core.echo
    input:
      app: "{{ parameters.app_name }}"
      env: "{{ parameters.environment }}"
      replicas: "{{ parameters.replicas }}"
      regions: "{{ parameters.regions }}"
      labels: "{{ parameters.labels }}"
output_map: {deployed: "{{ task.show.result }}"}
"""


@pytest.fixture
def form() -> Any:
    return build_form(jw.load(DEPLOY))


def test_one_input_per_parameter_by_type(form: Any) -> None:
    kinds = {name: type(field) for name, field in form.fields.items()}
    assert kinds == {
        "app_name": widgets.Text,
        "environment": widgets.Dropdown,
        "replicas": widgets.IntText,
        "ratio": widgets.FloatText,
        "dry_run": widgets.Checkbox,
        "regions": widgets.Textarea,
        "labels": widgets.Textarea,
        "extra": widgets.Textarea,
    }
    assert form.fields["app_name"].description == "app_name *"  # required
    assert form.fields["replicas"].description == "replicas"
    assert form.fields["environment"].value == "dev"
    assert list(form.fields["environment"].options) == [
        ("dev", "dev"),
        ("staging", "staging"),
        ("production", "production"),
    ]
    assert form.fields["replicas"].value == 2
    assert form.fields["dry_run"].value is True
    assert form.fields["regions"].value == "[eu, us]"
    assert form.fields["labels"].value == ""
    assert isinstance(form.run_button, widgets.Button)
    assert form.run_button.description == "Run"


def test_values_read_yaml_and_leave_empty_optional_fields_out(form: Any) -> None:
    form.fields["app_name"].value = "shop"
    form.fields["labels"].value = "{team: core, tier: 1}"
    assert form.values() == {
        "app_name": "shop",
        "environment": "dev",
        "replicas": 2,
        "ratio": 0.5,
        "dry_run": True,
        "regions": ["eu", "us"],
        "labels": {"team": "core", "tier": 1},
    }


def test_fields_are_checked_as_the_user_types(form: Any) -> None:
    assert "required" in form.errors["app_name"].value  # empty and required
    form.fields["app_name"].value = "shop"
    assert form.errors["app_name"].value == ""
    form.fields["regions"].value = "[eu, us"
    assert "not valid YAML" in form.errors["regions"].value
    assert "line 1" in form.errors["regions"].value
    form.fields["regions"].value = "{eu: 1}"
    assert "must be of type array" in form.errors["regions"].value
    form.fields["regions"].value = "[eu]"
    assert form.errors["regions"].value == ""


def test_run_is_refused_with_a_message_while_a_field_is_wrong(engine: Any, form: Any) -> None:
    form.run_button.click()
    assert form.last_run is None
    assert "required" in form.message.value
    form.fields["app_name"].value = "shop"
    form.fields["labels"].value = "[not, an, object]"
    assert form.submit() is None
    assert "must be of type object" in form.message.value
    assert jw.runs() == []


def test_run_button_starts_a_run_and_shows_it_live(engine: Any, form: Any) -> None:
    form.fields["app_name"].value = "shop"
    form.fields["environment"].value = "production"
    form.fields["replicas"].value = 5
    form.run_button.click()
    run = form.last_run
    assert run is not None
    run.wait(10)
    assert run.status == "succeeded"
    assert run.outputs["deployed"] == {
        "app": "shop",
        "env": "production",
        "replicas": 5,
        "regions": ["eu", "us"],
        "labels": None,
    }
    assert run.run_id in form.message.value
    [graph] = form.output.children
    assert isinstance(graph, GraphWidget)
    assert graph.run["run_id"] == run.run_id


def test_a_workflow_without_parameters_still_has_a_run_button(engine: Any) -> None:
    form = build_form(jw.load("name: bare\ntasks:\n  a: {action: core.noop}\n"))
    assert form.fields == {}
    run = form.submit()
    assert run is not None and run.wait(10).status == "succeeded"
