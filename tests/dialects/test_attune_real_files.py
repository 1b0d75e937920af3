"""attune's own workflow files, run on this engine (CONTRACT §1.7; issue 12).

``attune_fixtures/`` holds files of the attune repository unchanged, at their paths there (see
attune_fixtures/README.md: source, commit, Apache-2.0 licence). Each test loads one with
``jw.load`` as attune wrote it, with only its pack actions (``core.download_packs``,
``examples.process_user_batch``...) registered here as small Python functions of those names,
and checks the task sequence and outputs the file's own structure implies.
"""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

import jupyter_workflows as jw
from jupyter_workflows.exceptions import SpecError

HERE = Path(__file__).parent / "attune_fixtures"
INSTALL_PACKS = HERE / "packs/core/workflows/install_packs.yaml"
CACHE_WORKFLOW = HERE / "docs/examples/cache-iteration-workflow.workflow.yaml"
CACHE_ACTION = HERE / "docs/examples/cache-iteration-workflow-action.yaml"
INQUIRY_ACTION = HERE / "tests/fixtures/packs/test_pack/actions/inquiry_workflow.yaml"
INQUIRY_WORKFLOW = (
    HERE / "tests/fixtures/packs/test_pack/actions/workflows/inquiry_workflow.workflow.yaml"
)

_lock = threading.Lock()
#: What the pack actions return / whether they fail, set per test.
PLAN: dict[str, Any] = {}
CALLS: list[tuple[str, dict[str, Any]]] = []


def _play(name: str, inputs: dict[str, Any]) -> Any:
    with _lock:
        CALLS.append((name, dict(inputs)))
        outcome = PLAN.get(name)
    if isinstance(outcome, Exception):
        raise outcome
    if callable(outcome):
        return outcome(inputs)
    return outcome if outcome is not None else {"ok": True}


@jw.task(name="attune_core.download_packs")
def download_packs(**inputs: Any) -> Any:
    return _play("attune_core.download_packs", inputs)


@jw.task(name="attune_core.get_pack_dependencies")
def get_pack_dependencies(**inputs: Any) -> Any:
    return _play("attune_core.get_pack_dependencies", inputs)


@jw.task(name="attune_core.build_pack_envs")
def build_pack_envs(**inputs: Any) -> Any:
    return _play("attune_core.build_pack_envs", inputs)


@jw.task(name="attune_core.run_pack_tests")
def run_pack_tests(**inputs: Any) -> Any:
    return _play("attune_core.run_pack_tests", inputs)


@jw.task(name="attune_core.register_packs")
def register_packs(**inputs: Any) -> Any:
    return _play("attune_core.register_packs", inputs)


@jw.task(name="examples.process_user_batch")
def process_user_batch(**inputs: Any) -> Any:
    return _play("examples.process_user_batch", inputs)


@pytest.fixture(autouse=True)
def _fresh() -> Any:
    with _lock:
        PLAN.clear()
        CALLS.clear()
    yield


def _ran(run: Any) -> list[str]:
    return [t["task"] for t in run.tasks]


# -- packs/core/workflows/install_packs.yaml ------------------------------------------------

#: attune's core pack actions this file calls; ``core.*`` names are this project's builtins
#: (``core.noop``, ``core.echo`` stay), so these five are pointed at the stubs above.
_ATTUNE_CORE = re.compile(
    r"\bcore\.(download_packs|get_pack_dependencies|build_pack_envs|run_pack_tests|register_packs)\b"
)


@pytest.fixture
def install_packs(tmp_path: Path) -> Path:
    """install_packs.yaml with only its attune-core action names pointed at the stubs."""
    path = tmp_path / "install_packs.yaml"
    path.write_text(_ATTUNE_CORE.sub(r"attune_core.\1", INSTALL_PACKS.read_text()))
    return path


DOWNLOADED = {
    "downloaded_packs": [{"pack_path": "/tmp/x/slack"}, {"pack_path": "/tmp/x/aws"}],
    "failed_packs": [],
    "success_count": 2,
}


def test_install_packs_validates_as_attune() -> None:
    workflow = jw.load(INSTALL_PACKS)
    assert workflow.name == "install_packs"  # its own 'name' wins over 'ref'
    assert workflow.spec.description.startswith("Install one or more packs")
    params = workflow.spec.parameters
    assert params["packs"].required and params["packs"].type == "array"
    assert params["timeout"].default == 1800
    assert workflow.spec.vars["downloaded_packs"] == []


def test_install_packs_happy_path(engine: Any, install_packs: Path) -> None:
    PLAN["attune_core.download_packs"] = DOWNLOADED
    PLAN["attune_core.get_pack_dependencies"] = {"missing_dependencies": []}
    run = jw.load(install_packs).run({"packs": ["https://example.com/a.git"]})
    assert run.status == "succeeded", run.error
    assert sorted(_ran(run)) == sorted(
        [
            "initialize",
            "download_packs",
            "check_download_results",
            "get_dependencies",
            "build_environments",
            "run_tests",
            "register_packs",
            "cleanup_success",
        ]
    )
    calls = dict(CALLS)
    # initialize published temp_dir from uuid(); download_packs got it through workflow.*
    assert calls["attune_core.download_packs"]["destination_dir"].startswith(
        "/tmp/attune-pack-install-"
    )
    assert len(calls["attune_core.download_packs"]["destination_dir"]) > len(
        "/tmp/attune-pack-install-"
    )
    assert calls["attune_core.download_packs"]["packs"] == ["https://example.com/a.git"]
    # workflow.downloaded_packs | map(attribute='pack_path') | list
    assert calls["attune_core.build_pack_envs"]["pack_paths"] == ["/tmp/x/slack", "/tmp/x/aws"]
    assert calls["attune_core.build_pack_envs"]["force_rebuild"] is False
    assert calls["attune_core.register_packs"]["skip_tests"] is False


def test_install_packs_skips_dependencies_and_tests(engine: Any, install_packs: Path) -> None:
    PLAN["attune_core.download_packs"] = DOWNLOADED
    run = jw.load(install_packs).run(
        {"packs": ["a"], "skip_dependencies": True, "skip_tests": True}
    )
    assert run.status == "succeeded", run.error
    assert sorted(_ran(run)) == sorted(
        [
            "initialize",
            "download_packs",
            "check_download_results",
            "build_environments",
            "register_packs",
            "cleanup_success",
        ]
    )


def test_install_packs_missing_dependencies_clean_up(engine: Any, install_packs: Path) -> None:
    PLAN["attune_core.download_packs"] = DOWNLOADED
    PLAN["attune_core.get_pack_dependencies"] = {"missing_dependencies": ["aws"]}
    run = jw.load(install_packs).run({"packs": ["a"]})
    assert sorted(_ran(run)) == sorted(
        [
            "initialize",
            "download_packs",
            "check_download_results",
            "get_dependencies",
            "cleanup_on_failure",
        ]
    )
    assert run.status == "succeeded", run.error  # the failure branch handled it


def test_install_packs_env_build_failure_with_force_goes_on(
    engine: Any, install_packs: Path
) -> None:
    """``on_failure: [{when: force or skip_env_build, do: [{when: not skip_tests, next:
    run_tests}, ...]}]`` (nested conditions) joins both conditions with ``failed()``."""
    PLAN["attune_core.download_packs"] = DOWNLOADED
    PLAN["attune_core.get_pack_dependencies"] = {"missing_dependencies": []}
    PLAN["attune_core.build_pack_envs"] = RuntimeError("pip failed")
    run = jw.load(install_packs).run({"packs": ["a"], "force": True})
    assert sorted(_ran(run)) == sorted(
        [
            "initialize",
            "download_packs",
            "check_download_results",
            "get_dependencies",
            "build_environments",
            "run_tests",
            "register_packs",
            "cleanup_success",
        ]
    )
    assert run.status == "succeeded", run.error


def test_install_packs_env_build_failure_without_force_cleans_up(
    engine: Any, install_packs: Path
) -> None:
    PLAN["attune_core.download_packs"] = DOWNLOADED
    PLAN["attune_core.get_pack_dependencies"] = {"missing_dependencies": []}
    PLAN["attune_core.build_pack_envs"] = RuntimeError("pip failed")
    run = jw.load(install_packs).run({"packs": ["a"]})
    ran = _ran(run)
    assert "cleanup_on_failure" in ran and "run_tests" not in ran and "register_packs" not in ran
    assert run.status == "succeeded", run.error


def test_install_packs_download_failure(engine: Any, install_packs: Path) -> None:
    PLAN["attune_core.download_packs"] = RuntimeError("network down")
    run = jw.load(install_packs).run({"packs": ["a"]})
    assert sorted(_ran(run)) == ["cleanup_on_failure", "download_packs", "initialize"]


def test_install_packs_nothing_downloaded_stops(engine: Any, install_packs: Path) -> None:
    """``on_success: [{when: success_count > 0, do: ...}]``: with none, nothing follows."""
    PLAN["attune_core.download_packs"] = {**DOWNLOADED, "downloaded_packs": [], "success_count": 0}
    run = jw.load(install_packs).run({"packs": ["a"]})
    assert sorted(_ran(run)) == ["download_packs", "initialize"]


def test_install_packs_requires_packs(install_packs: Path) -> None:
    with pytest.raises(Exception) as info:
        jw.load(install_packs).run({})
    assert "packs" in str(info.value) and "\n" not in str(info.value)


# -- docs/examples/cache-iteration-* (iterate_cache) ----------------------------------------


def _examples_pack(tmp_path: Path) -> Path:
    """The two example files where their own first lines say to place them."""
    actions = tmp_path / "packs/examples/actions"
    (actions / "workflows").mkdir(parents=True)
    shutil.copy(CACHE_ACTION, actions / "process_cached_users.yaml")
    shutil.copy(CACHE_WORKFLOW, actions / "workflows/process_cached_users.workflow.yaml")
    (tmp_path / "packs/examples/pack.yaml").write_text(
        "ref: examples\nlabel: Examples\ndescription: x\nversion: 1.0.0\n"
    )
    return actions / "process_cached_users.yaml"


def _users(n: int) -> list[dict[str, Any]]:
    return [
        {
            "external_id": f"u{i}",
            "value": {"name": f"user {i}", "score": float("nan") if i == 3 else i},
        }
        for i in range(n)
    ]


def test_cache_iteration_batches_of_25(engine: Any, tmp_path: Path) -> None:
    """60 entries, ``batch_size: 25`` -> 3 children of 25, 25, 10 entries, ``index`` 0..2."""
    action = _examples_pack(tmp_path)
    engine.store.kv_set("cache/pack/examples/users", _users(60))
    workflow = jw.load(action)
    assert workflow.name == "examples.process_cached_users"
    run = workflow.run({})
    assert run.status == "succeeded", run.error
    assert sorted(_ran(run)) == ["process_users", "report_completion"]
    batches = sorted(
        (c["batch_index"], c["users"]) for n, c in CALLS if n == "examples.process_user_batch"
    )
    assert [i for i, _ in batches] == [0, 1, 2]
    assert [len(users) for _, users in batches] == [25, 25, 10]
    assert [u["external_id"] for _, users in batches for u in users] == [f"u{i}" for i in range(60)]
    assert run.outputs == {"status": "completed"}


def test_cache_iteration_failed_child_takes_failure_branch(engine: Any, tmp_path: Path) -> None:
    """Every retry fails: the failure transition. The file's retry waits 5, 10 and 20 s
    (``delay: 5``, exponential); this copy waits 0.05, 0.1 and 0.2 s, nothing else changed."""
    action = _examples_pack(tmp_path)
    graph = action.parent / "workflows/process_cached_users.workflow.yaml"
    text = graph.read_text()
    assert "      delay: 5\n" in text
    graph.write_text(text.replace("      delay: 5\n", "      delay: 0.05\n"))
    engine.store.kv_set("cache/pack/examples/users", _users(30))
    PLAN["examples.process_user_batch"] = RuntimeError("bad user")
    run = jw.load(action).run({})
    assert sorted(_ran(run)) == ["process_users", "report_failure"]
    assert run.outputs == {"status": "failed"}
    # One batch of 25 tried four times (the first try and three retries) before failing.
    tries = [c for n, c in CALLS if n == "examples.process_user_batch"]
    assert len(tries) >= 4, len(tries)


def test_cache_iteration_graph_file_alone(engine: Any) -> None:
    """The graph file as published (no pack): ``owner_ref: examples`` names the cache."""
    engine.store.kv_set("cache/pack/examples/users", {"a": 1, "b": 2})
    workflow = jw.load(CACHE_WORKFLOW, name="process_cached_users")
    run = workflow.run({})
    assert run.status == "succeeded", run.error
    (call,) = [c for n, c in CALLS if n == "examples.process_user_batch"]
    assert call["users"] == [{"external_id": "a", "value": 1}, {"external_id": "b", "value": 2}]


def test_cache_iteration_missing_cache_is_one_line(engine: Any) -> None:
    """As in attune, a cache error fails the task and takes its failure transition."""
    run = jw.load(CACHE_WORKFLOW, name="process_cached_users").run({})
    tasks = {t["task"]: t for t in run.tasks}
    assert sorted(tasks) == ["process_users", "report_failure"]
    error = tasks["process_users"]["error"]
    assert "no data cache 'cache/pack/examples/users'" in error and "\n" not in error
    assert run.outputs == {"status": "failed"}
    assert not CALLS


# -- tests/fixtures/packs/test_pack (wait_for.inquiry) --------------------------------------


@jw.task(name="test_pack.create_inquiry")
def create_inquiry(**inputs: Any) -> Any:
    _play("test_pack.create_inquiry", inputs)
    return {"inquiry_id": 42, "status": "pending"}


INQUIRY_PARAMETERS = {
    "purpose": "release",
    "prompt": "Ship it?",
    "response_schema": {"type": "object", "properties": {"approved": {"type": "boolean"}}},
    "response_options": ["yes", "no"],
    "timeout_seconds": 60,
}


@pytest.mark.parametrize(
    ("answer", "handler", "outcome"),
    [(True, "approved_handler", "approved"), (False, "denied_handler", "denied")],
)
def test_inquiry_workflow_waits_for_the_response(
    engine: Any, answer: bool, handler: str, outcome: str
) -> None:
    """The action file (its parameters) with its graph: the guarded task starts only once the
    inquiry is answered, and its transitions read ``inquiry.guarded_task.response``."""
    workflow = jw.load(INQUIRY_ACTION)
    assert workflow.name == "inquiry_workflow"
    assert workflow.spec.parameters["timeout_seconds"].required
    run = workflow.run(INQUIRY_PARAMETERS)
    assert run.status == "waiting", run.error
    assert sorted(_ran(run)) == ["guarded_task_inquiry", "request_inquiry"]
    (call,) = [c for n, c in CALLS if n == "test_pack.create_inquiry"]
    assert call == INQUIRY_PARAMETERS
    gate = next(t for t in run.tasks if t["task"] == "guarded_task_inquiry")
    assert gate["status"] == "waiting"
    run.respond("guarded_task_inquiry", {"approved": answer, "note": None})
    run.wait(timeout=120)
    assert run.status == "succeeded", run.error
    assert sorted(_ran(run)) == sorted(
        ["request_inquiry", "guarded_task_inquiry", "guarded_task", handler]
    )
    assert run.outputs == {
        "inquiry_id": 42,
        "outcome": outcome,
        "response": {"approved": answer, "note": None},
    }


def test_inquiry_graph_file_alone_needs_its_parameters(engine: Any) -> None:
    """The graph file without its action file has no declared parameters: a run that passes
    them is refused with one line (attune keeps them in the action file)."""
    with pytest.raises(Exception) as info:
        jw.load(INQUIRY_WORKFLOW).run(INQUIRY_PARAMETERS)
    assert str(info.value) == (
        "workflow 'inquiry_workflow' has no parameter 'purpose' (declared: none)"
    )


def test_wait_for_bad_shapes_are_positioned(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        "ref: p.w\ntasks:\n  - name: a\n    action: core.echo\n    next: [{do: [b]}]\n"
        "  - name: b\n    action: core.echo\n    wait_for: {inquiry: 1, after: 2}\n"
    )
    with pytest.raises(SpecError) as info:
        jw.load(path)
    assert str(info.value) == f"{path}:8:28: unknown field 'after' in wait_for (known: inquiry)"


# -- pack.config / config -------------------------------------------------------------------


def _pack_with_config(tmp_path: Path) -> Path:
    root = tmp_path / "packs/deploy"
    (root / "actions/workflows").mkdir(parents=True)
    (root / "pack.yaml").write_text(
        "ref: deploy\nlabel: Deploy\ndescription: x\nversion: 1.0.0\n"
        "conf_schema:\n  type: object\n  properties:\n"
        "    region: {type: string, default: eu-west-1}\n    retries: {type: integer, default: 2}\n"
        "config:\n  api_url: https://api.internal\n"
    )
    (root / "actions/release.yaml").write_text(
        "ref: deploy.release\nlabel: Release\nworkflow_file: workflows/release.workflow.yaml\n"
        "parameters:\n  app: {type: string, required: true}\n"
    )
    (root / "actions/workflows/release.workflow.yaml").write_text(
        'version: "1.0.0"\ntasks:\n  - name: go\n    action: core.echo\n    input:\n'
        '      url: "{{ pack.config.api_url }}/{{ parameters.app }}"\n'
        '      region: "{{ config.region }}"\n      retries: "{{ config.retries }}"\n'
        'output_map:\n  region: "{{ config.region }}"\n  retries: "{{ pack.config.retries }}"\n'
    )
    return root / "actions/release.yaml"


def test_pack_config_from_pack_yaml_and_configure(engine: Any, tmp_path: Path) -> None:
    action = _pack_with_config(tmp_path)
    run = jw.load(action).run({"app": "shop"})
    assert run.status == "succeeded", run.error
    assert run.outputs == {"region": "eu-west-1", "retries": 2}
    assert run.tasks[0]["result"] == {
        "url": "https://api.internal/shop",
        "region": "eu-west-1",
        "retries": 2,
    }
    jw.configure(pack_config={"deploy": {"region": "us-east-2"}})
    run = jw.load(action).run({"app": "shop"})
    assert run.outputs == {"region": "us-east-2", "retries": 2}
    jw.configure(pack_config=None)
    run = jw.load(action).run({"app": "shop"})
    assert run.outputs == {"region": "eu-west-1", "retries": 2}


def test_pack_config_without_pack_fails_with_one_line(engine: Any, tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        'label: x\ntasks:\n  - name: a\n    action: core.echo\n    input: {u: "{{ config.url }}"}\n'
    )
    run = jw.load(path, name="w").run({})
    assert run.status == "failed"
    assert "pack configuration" in (run.error or "") and "\n" not in run.error


def test_unknown_attune_fields_are_positioned(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "ref: p.bad\ntasks:\n  - name: a\n    action: core.echo\n    iterate_cache:\n"
        "      namespace: users\n      owner_type: pack\n      colour: blue\n"
    )
    with pytest.raises(SpecError) as info:
        jw.load(path)
    assert (
        str(info.value) == f"{path}:8:7: unknown field 'colour' in iterate_cache (known: "
        "owner_type, owner_ref, namespace, generation, require_fresh, page_size)"
    )


def test_attune_scope_aliases(engine: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """attune's context.rs aliases: ``variables``/``vars`` for ``workflow``, ``tasks`` for
    ``task``, ``result()``; ``keystore.k`` is a secret (masked)."""
    monkeypatch.setenv("API_TOKEN", "s3cret-value")
    path = tmp_path / "aliases.yaml"
    path.write_text(
        "ref: p.aliases\nvars: [{n: 2}]\ntasks:\n"
        "  - name: a\n    action: core.echo\n    input: {v: 3}\n"
        '    next:\n      - when: "{{ succeeded() and result().v == 3 }}"\n'
        '        publish: [{got: "{{ result().v + variables.n }}"}]\n        do: [b]\n'
        "  - name: b\n    action: core.echo\n"
        '    input: {sum: "{{ tasks.a.result.v + workflow.got }}", token: "{{ keystore.API_TOKEN }}"}\n'
        'output_map: {sum: "{{ task.b.result.sum }}", token: "{{ task.b.result.token }}"}\n'
    )
    run = jw.load(path).run({})
    assert run.status == "succeeded", run.error
    assert run.outputs["sum"] == 8
    assert "s3cret-value" not in repr(run.outputs)


def test_unsupported_attune_system_name_is_positioned(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "ref: p.s\ntasks:\n  - name: a\n    action: core.echo\n"
        '    input: {t: "{{ system.workflow_start }}"}\n'
    )
    with pytest.raises(SpecError) as info:
        jw.load(path).validate()
    text = str(info.value)
    assert text.startswith(f"{path}:5:") and "workflow_start" in text and "\n" not in text


@pytest.mark.parametrize("fixture", ["install_packs", "cache", "inquiry"])
def test_converted_native_document_validates(
    fixture: str, install_packs: Path, tmp_path: Path
) -> None:
    """``jupyter-workflows convert``'s output (``to_yaml``) validates as a native document."""
    source = {
        "install_packs": install_packs,
        "cache": _examples_pack(tmp_path),
        "inquiry": INQUIRY_ACTION,
    }[fixture]
    workflow = jw.load(source)
    workflow.validate()
    native = tmp_path / "native.yaml"
    native.write_text(workflow.to_yaml())
    again = jw.load(native)
    again.validate()
    assert getattr(again.source_map, "dialect", None) is None
    assert sorted(again.compiled.tasks) == sorted(workflow.compiled.tasks)


def test_with_items_concurrency_follows_attune(engine: Any, tmp_path: Path) -> None:
    """attune: ``concurrency`` is children in flight (default 1); ``batch_size`` entries per
    child."""
    path = tmp_path / "w.yaml"
    path.write_text(
        "ref: p.w\ntasks:\n"
        "  - name: serial\n    action: core.echo\n    with_items: [1, 2, 3]\n"
        '    input: {x: "{{ item }}"}\n    next: [{do: [wide]}]\n'
        "  - name: wide\n    action: core.echo\n    with_items: [1, 2, 3, 4, 5]\n"
        '    batch_size: 2\n    concurrency: 3\n    input: {x: "{{ item }}", i: "{{ index }}"}\n'
    )
    workflow = jw.load(path)
    assert workflow.spec.tasks["serial"].batch_size == 1
    assert workflow.spec.tasks["wide"].batch_size == 3
    run = workflow.run({})
    assert run.status == "succeeded", run.error
    wide = next(t for t in run.tasks if t["task"] == "wide")
    assert wide["result"] == [
        {"x": [1, 2], "i": 0},
        {"x": [3, 4], "i": 1},
        {"x": [5], "i": 2},
    ]
