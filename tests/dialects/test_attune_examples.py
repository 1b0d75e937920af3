"""attune's documentation examples ``docs/examples/simple-workflow.yaml`` and
``complete-workflow.yaml`` (issue 12), read as attune wrote them.

The files are in ``attune_fixtures/docs/examples/`` unchanged (source, commit and Apache-2.0
licence in attune_fixtures/README.md). Their pack actions (``string.transform``,
``kubernetes.deploy``, ...) are registered here as small Python functions of those names that
record their inputs and answer what each test plans; the tests check the task sequences the
files' own transitions imply on several paths, and the outputs their ``output_map`` makes.

``complete-workflow.yaml`` names a task it never defines (``deploy_canary``'s ``on_failure:
handle_canary_failure``): ``validate`` refuses it with that one positioned line, as it should.
The runs use a copy in which only that target is pointed at ``rollback_canary``.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

import jupyter_workflows as jw
from jupyter_workflows.cli.app import main
from jupyter_workflows.exceptions import SpecError

HERE = Path(__file__).parent / "attune_fixtures" / "docs" / "examples"
SIMPLE = HERE / "simple-workflow.yaml"
COMPLETE = HERE / "complete-workflow.yaml"

#: Every pack action the two files call (``core.echo``, ``core.noop`` and ``core.inquiry`` are
#: this project's builtins).
ACTIONS = (
    "string.transform",
    "validation.validate_deployment_params",
    "deployments.create_record",
    "docker.check_registry_health",
    "kubernetes.check_clusters",
    "database.check_pending_migrations",
    "secrets.verify_availability",
    "ci.build_and_test",
    "docker.push_image",
    "kubernetes.deploy_canary",
    "monitoring.analyze_canary",
    "kubernetes.promote_canary",
    "kubernetes.rollback_canary",
    "kubernetes.deploy",
    "http.get",
    "testing.run_smoke_tests",
    "monitoring.verify_deployment_metrics",
    "aws.update_load_balancer",
    "deployments.update_status",
    "catalog.update_service_version",
    "testing.trigger_integration_suite",
    "docs.update_deployment_history",
    "deployments.analyze_failures",
    "diagnostics.analyze_health_failures",
    "testing.capture_smoke_test_results",
    "monitoring.capture_metric_violations",
    "aws.diagnose_lb_failure",
    "kubernetes.rollback_deployment",
    "deployments.cleanup_resources",
    "notifications.send_multi_channel",
)

_lock = threading.Lock()
PLAN: dict[str, Any] = {}
CALLS: list[tuple[str, dict[str, Any]]] = []


def _stub(name: str) -> Any:
    def action(**inputs: Any) -> Any:
        with _lock:
            CALLS.append((name, dict(inputs)))
            outcome = PLAN.get(name)
        if isinstance(outcome, Exception):
            raise outcome
        if callable(outcome):
            return outcome(inputs)
        return outcome if outcome is not None else {"ok": True}

    action.__name__ = name.replace(".", "_")
    return action


for _name in ACTIONS:
    jw.task(name=_name)(_stub(_name))


@pytest.fixture(autouse=True)
def _fresh() -> Any:
    with _lock:
        PLAN.clear()
        CALLS.clear()
    yield


def _ran(run: Any) -> list[str]:
    return [t["task"] for t in run.tasks]


def _calls(name: str) -> list[dict[str, Any]]:
    return [inputs for n, inputs in CALLS if n == name]


@pytest.fixture
def complete(tmp_path: Path) -> Path:
    """complete-workflow.yaml with its one undefined transition target pointed at a real task."""
    text = COMPLETE.read_text(encoding="utf-8")
    assert text.count("on_failure: handle_canary_failure") == 1
    path = tmp_path / "complete-workflow.yaml"
    path.write_text(
        text.replace("on_failure: handle_canary_failure", "on_failure: rollback_canary"),
        encoding="utf-8",
    )
    return path


# -- simple-workflow.yaml -------------------------------------------------------------------


def test_simple_workflow_runs_its_three_tasks_in_order(engine: Any) -> None:
    PLAN["string.transform"] = lambda i: {
        "text": i["text"].upper() if i["uppercase"] else i["text"]
    }
    workflow = jw.load(SIMPLE)
    assert workflow.name == "examples.simple_sequential_workflow"
    assert workflow.spec.parameters["message"].required
    run = workflow.run({"message": "hello attune", "uppercase": True})
    assert run.status == "succeeded", run.error
    assert _ran(run) == ["log_input", "process_message", "finalize"]
    assert _calls("string.transform") == [{"text": "hello attune", "uppercase": True}]
    assert run.outputs == {
        "original": "hello attune",
        "processed": "HELLO ATTUNE",
        "final": "Workflow complete. Result: HELLO ATTUNE",
    }


def test_simple_workflow_needs_its_required_parameter(engine: Any) -> None:
    with pytest.raises(jw.ParameterError) as info:
        jw.load(SIMPLE).run({})
    assert "message" in str(info.value) and "\n" not in str(info.value)


# -- complete-workflow.yaml: validate, graph, convert ----------------------------------------


def test_complete_workflow_as_published_is_refused_for_its_undefined_task(engine: Any) -> None:
    with pytest.raises(SpecError) as info:
        jw.load(COMPLETE).validate()
    message = str(info.value)
    assert message.splitlines() == [message]
    assert message.endswith(
        "complete-workflow.yaml:236:17: task 'deploy_canary': on_failure names unknown task "
        "'handle_canary_failure' (did you mean 'handle_metrics_failures'?)"
    )


def test_complete_workflow_validates_graphs_and_converts(
    complete: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's commands, run in this process (where the pack actions are registered)."""
    assert main(["validate", str(complete)]) == 0
    assert "ok (attune 1.0.0)" in capsys.readouterr().out
    assert main(["graph", str(complete), "--format", "json"]) == 0
    graph = json.loads(capsys.readouterr().out)
    assert len(graph["nodes"]) >= 45
    assert main(["convert", str(complete)]) == 0
    native = tmp_path / "native.yaml"
    native.write_text(capsys.readouterr().out)
    assert main(["validate", str(native)]) == 0
    again = capsys.readouterr().out
    assert "ok" in again and "attune" not in again  # the converted document is native


# -- complete-workflow.yaml: runs ------------------------------------------------------------

REGIONS = ["us-east-1", "eu-west-1", "ap-south-1"]
PARAMETERS = {"app_name": "shop", "version": "2.4.0", "regions": REGIONS}
PREPARE = [
    "start_workflow",
    "validate_inputs",
    "check_environment_type",
]
#: A parallel group's members run first; the group itself ends (and is listed) after them.
CHECKS = [
    "check_docker_registry",
    "check_kubernetes_clusters",
    "check_database_migrations",
    "verify_secrets",
    "parallel_pre_deployment_checks",
]


def _plan_a_good_deployment() -> None:
    jw.configure(pack_config={"examples": {"docker_registry": "registry.local:5000"}})
    PLAN["deployments.create_record"] = {"id": "dep-17"}
    PLAN["ci.build_and_test"] = {"image_name": "shop:2.4.0", "image_uri": "registry/shop:2.4.0"}
    PLAN["kubernetes.deploy"] = lambda i: {"health_url": f"https://{i['region']}.shop/health"}


@pytest.fixture
def pack_config_reset() -> Any:
    yield
    jw.configure(pack_config=None)


def test_dev_deployment_takes_the_main_path(
    engine: Any, complete: Path, pack_config_reset: Any
) -> None:
    _plan_a_good_deployment()
    run = jw.load(complete).run(PARAMETERS)
    assert run.status == "succeeded", run.error
    assert _ran(run) == [
        *PREPARE,
        "create_deployment_record",
        *CHECKS,
        "build_and_test",
        "push_container_image",
        "check_canary_enabled",
        "deploy_to_all_regions",
        "parallel_health_checks",
        "run_smoke_tests",
        "verify_metrics",
        "update_load_balancer",
        "finalize_deployment",
        "update_service_catalog",
        "trigger_integration_tests",
        "update_documentation",
        "post_deployment_tasks",
        "notify_deployment_success",
    ]
    urls = [f"https://{r}.shop/health" for r in REGIONS]
    outputs = dict(run.outputs)
    duration = outputs.pop("duration_seconds")
    assert outputs == {
        "deployment_id": "dep-17",
        "status": "success",  # ``rollback_initiated ? 'rolled_back' : 'success'``
        "deployed_version": "2.4.0",
        "deployment_urls": urls,  # ``task.deploy_to_all_regions.results | map(...) | list``
    }
    assert isinstance(duration, (int, float)) and 0 <= duration < 300
    # attune's with_items runs one region at a time; each call got its region and the image.
    deploys = _calls("kubernetes.deploy")
    assert [c["region"] for c in deploys] == REGIONS
    assert {c["image"] for c in deploys} == {"registry/shop:2.4.0"}
    assert _calls("docker.check_registry_health") == [{"registry": "registry.local:5000"}]
    # attune's ``batch_size: 5`` hands each child a list of up to 5 entries: one call here.
    assert _calls("http.get") == [{"url": urls, "expected_status": 200, "timeout": 30}]
    (success,) = _calls("notifications.send_multi_channel")
    assert "Regions: us-east-1, eu-west-1, ap-south-1" in success["message"]
    assert "Deployment ID: dep-17" in success["message"]


def test_a_failed_smoke_test_rolls_every_region_back(
    engine: Any, complete: Path, pack_config_reset: Any
) -> None:
    _plan_a_good_deployment()
    PLAN["testing.run_smoke_tests"] = RuntimeError("3 of 40 smoke tests failed")
    run = jw.load(complete).run(PARAMETERS)
    assert run.status == "succeeded", run.error  # the failure was handled by the file
    ran = _ran(run)
    assert ran[ran.index("run_smoke_tests") :] == [
        "run_smoke_tests",
        "handle_smoke_test_failures",
        "rollback_all_regions",
        "update_deployment_rolled_back",
        "notify_deployment_rolled_back",
    ]
    assert [c["region"] for c in _calls("kubernetes.rollback_deployment")] == REGIONS
    assert run.outputs["status"] == "rolled_back"
    (capture,) = _calls("testing.capture_smoke_test_results")
    assert capture == {"deployment_id": "dep-17", "results": None}


def test_without_rollback_the_report_reads_into_a_failed_result_and_fails(
    engine: Any, complete: Path, pack_config_reset: Any
) -> None:
    """``notify_smoke_test_failures`` reads ``task.run_smoke_tests.result.summary``, but a
    failed task has no result: strict templates end the run with that one line (Tera, attune's
    template engine, refuses an undefined lookup too) instead of sending "Results: " empty."""
    _plan_a_good_deployment()
    PLAN["testing.run_smoke_tests"] = RuntimeError("smoke failed")
    run = jw.load(complete).run({**PARAMETERS, "rollback_on_failure": False})
    assert run.status == "failed"
    assert _ran(run)[-2:] == ["handle_smoke_test_failures", "notify_smoke_test_failures"]
    assert run.error is not None and "\n" not in run.error
    assert "task 'notify_smoke_test_failures' failed: cannot render" in run.error
    assert "'None' has no attribute 'summary'" in run.error
    assert not _calls("notifications.send_multi_channel")


def test_a_failed_canary_is_rolled_back(
    engine: Any, complete: Path, pack_config_reset: Any
) -> None:
    _plan_a_good_deployment()
    PLAN["monitoring.analyze_canary"] = {"success": False, "error_rate": 0.2}
    run = jw.load(complete).run({**PARAMETERS, "enable_canary": True})
    assert run.status == "succeeded", run.error
    ran = _ran(run)
    assert ran[ran.index("check_canary_enabled") :] == [
        "check_canary_enabled",
        "deploy_canary",
        "monitor_canary",
        "rollback_canary",
        "notify_canary_failed",
    ]
    assert _calls("kubernetes.deploy_canary")[0]["region"] == "us-east-1"  # ``| first``
    assert run.outputs["status"] == "rolled_back"


def test_a_good_canary_is_promoted_and_the_other_regions_follow(
    engine: Any, complete: Path, pack_config_reset: Any
) -> None:
    _plan_a_good_deployment()
    PLAN["monitoring.analyze_canary"] = {"success": True}
    run = jw.load(complete).run({**PARAMETERS, "enable_canary": True})
    assert run.status == "succeeded", run.error
    assert "promote_canary" in _ran(run) and "deploy_to_remaining_regions" in _ran(run)
    # ``parameters.regions | slice(start=1)`` (Tera): every region but the canary's.
    assert [c["region"] for c in _calls("kubernetes.deploy")] == REGIONS[1:]
    assert _ran(run)[-1] == "notify_deployment_success"


@pytest.mark.parametrize(
    ("approved", "tail"),
    [
        (True, ["create_deployment_record"]),
        (False, ["cancel_deployment", "notify_deployment_cancelled"]),
    ],
)
def test_production_waits_for_approval(
    engine: Any, complete: Path, pack_config_reset: Any, approved: bool, tail: list[str]
) -> None:
    _plan_a_good_deployment()
    run = jw.load(complete).run({**PARAMETERS, "environment": "production"})
    assert run.status == "waiting", run.error
    assert _ran(run) == [*PREPARE, "require_production_approval"]
    (gate,) = [t for t in run.tasks if t["task"] == "require_production_approval"]
    assert gate["status"] == "waiting"
    run.respond("require_production_approval", {"approved": approved, "approver_notes": "ok"})
    run.wait(timeout=120)
    assert run.status == "succeeded", run.error
    ran = _ran(run)
    after = ran[ran.index("require_production_approval") + 1 :]
    assert after[: len(tail)] == tail
    if approved:
        assert ran[-1] == "notify_deployment_success"


# -- the pieces these files needed ------------------------------------------------------------


def test_failed_items_lists_the_items_that_failed(engine: Any) -> None:
    """``task.X.failed_items`` (attune's, native too): the items of a ``with_items`` task
    that failed, in item order, readable by its failure transition (all four items start at
    once: no batch_size)."""
    PLAN["kubernetes.deploy"] = lambda i: (
        (_ for _ in ()).throw(RuntimeError(f"{i['region']} is down"))
        if i["region"].startswith("eu")
        else {"ok": True}
    )
    run = jw.load(
        """
name: regions
tasks:
  deploy:
    action: kubernetes.deploy
    with_items: "{{ ['us-1', 'eu-1', 'ap-1', 'eu-2'] }}"
    input: {region: "{{ item }}"}
    next:
      - when: "{{ failed() }}"
        publish: {failed: "{{ task.deploy.failed_items }}"}
output_map:
  failed: "{{ vars.failed }}"
"""
    ).run()
    assert run.outputs == {"failed": ["eu-1", "eu-2"]}


def test_tera_slice_and_a_non_schema_output(engine: Any, tmp_path: Path) -> None:
    path = tmp_path / "slices.yaml"
    path.write_text(
        "ref: examples.slices\n"
        "label: Slices\n"
        "parameters:\n  xs: {type: array, default: [1, 2, 3, 4, 5]}\n"
        "output:\n  type: object\n"
        "tasks:\n  - name: t\n    action: core.noop\n"
        "output_map:\n"
        '  tail: "{{ parameters.xs | slice(start=1) }}"\n'
        '  middle: "{{ parameters.xs | slice(start=1, end=-1) }}"\n'
        '  head: "{{ parameters.xs | slice(end=2) }}"\n'
    )
    run = jw.load(path).run()
    assert run.outputs == {"tail": [2, 3, 4, 5], "middle": [2, 3, 4], "head": [1, 2]}
    path.write_text(path.read_text().replace("output:\n  type: object\n", "output:\n  a: 1\n"))
    with pytest.raises(SpecError) as info:
        jw.load(path)
    assert str(info.value) == (
        f"{path}:6:3: attune 'output' is a JSON Schema of the outputs ({{type: object,"
        " properties: ...}); map values with 'output_map'"
    )
