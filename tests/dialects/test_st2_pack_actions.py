"""StackStorm pack actions: ``PACK.ACTION`` resolved from the workflow's pack (docs/dialects.md
"Pack actions").

The pack under ``st2_fixtures/packs/examples`` holds StackStorm's own action files, copied
unchanged (see its README.md), and an Orquesta workflow written for these tests that calls them:
two python-script actions, a local-shell-script with positional parameters, a python-script that
prints the pack configuration, and a nested orquesta action with a required parameter. Smaller
packs written by the tests cover the failures.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

import jupyter_workflows as jw
from jupyter_workflows.exceptions import SpecError
from jupyter_workflows.testing import inline_env, run_cli

HERE = Path(__file__).parent
PACK = HERE / "st2_fixtures" / "packs" / "examples"
DEMO = PACK / "actions" / "workflows" / "jw-pack-demo.yaml"
PARAMS = {"json_str": '{"name": "Ann", "tags": [1, null]}', "count": 3}


def _logs(run, task: str) -> list[str]:
    return next(t["logs"] for t in run.trace()["tasks"] if t["task"] == task)


def _check_demo(run) -> None:
    assert run.status == "succeeded", run.error
    out = run.outputs
    assert out["parsed"] == {"name": "Ann", "tags": [1, None]}  # json_string_to_object
    assert out["object"] == {"a": "b", "c": {"d": "e", "f": 1, "g": True}}  # object_return
    # print_to_stdout_and_stderr.sh 3 0: lines 1 and 3 go to stderr, line 2 to stdout
    assert out["lines"] == "stdout line 2\n"
    script = next(t for t in run.tasks if t["task"] == "script")["result"]
    assert script["stderr"] == "stderr line 1\nstderr line 3\n"
    assert script["returncode"] == 0 and script["succeeded"] is True
    # the nested orquesta action: 'greeting' from its metadata default
    assert out["greeting"] == "Hello, Ann!"
    # print_config prints self.config: config.schema.yaml's default
    assert "{'region': 'us-east-1'}" in _logs(run, "config")


def _pack(root: Path, name: str, files: dict[str, str], *, ref: str | None = None) -> Path:
    """A pack folder ``root/name`` with ``pack.yaml`` and ``files`` (paths under it)."""
    folder = root / name
    (folder / "actions" / "workflows").mkdir(parents=True)
    (folder / "pack.yaml").write_text(f"---\nname: {ref or name}\nversion: 0.1.0\n")
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        if path.suffix == ".sh":
            path.chmod(0o755)
    return folder


def _orquesta(tasks: str, *, inputs: str = "[]", output: str = "[]") -> str:
    return f"version: 1.0\ninput: {inputs}\noutput: {output}\ntasks:\n" + textwrap.indent(
        textwrap.dedent(tasks).strip() + "\n", "  "
    )


# -- the real pack -------------------------------------------------------------------------------
def test_validate_resolves_the_pack_actions() -> None:
    proc = run_cli("validate", str(DEMO))
    assert proc.returncode == 0, proc.stderr
    assert "jw-pack-demo.yaml: ok (orquesta 1.0): 5 tasks" in proc.stdout
    # StackStorm's own orquesta-subworkflow: its examples.orquesta-sequential is a pack action
    # (runner orquesta), validated as a nested workflow
    proc = run_cli("validate", str(PACK / "actions" / "workflows" / "orquesta-subworkflow.yaml"))
    assert proc.returncode == 0, proc.stderr


def test_the_pack_runs_in_process(engine) -> None:
    _check_demo(jw.load(DEMO).run(PARAMS))


@pytest.mark.cluster
def test_the_pack_runs_on_a_dask_cluster(dask_engine) -> None:
    _check_demo(jw.load(DEMO).run(PARAMS))


def test_the_pack_configuration_reaches_self_config(engine) -> None:
    jw.configure(pack_config={"examples": {"region": "eu-west-1", "api_key": "k"}})
    try:
        run = jw.load(DEMO).run(PARAMS)
    finally:
        jw.configure(pack_config=None)
    assert run.status == "succeeded", run.error
    assert "{'api_key': 'k', 'region': 'eu-west-1'}" in _logs(run, "config")


def test_the_metadata_file_runs_as_its_workflow_with_its_defaults(engine, tmp_path) -> None:
    """``jupyter-workflows run packs/examples/actions/jw-pack-demo.yaml`` is StackStorm's
    ``st2 run examples.jw-pack-demo``: the entry point, with the metadata's defaults."""
    wf = jw.load(PACK / "actions" / "jw-pack-demo.yaml")
    assert wf.name == "examples.jw-pack-demo"
    assert wf.parameters["count"] == {"type": "integer", "default": 3}
    run = wf.run()
    assert run.status == "succeeded", run.error
    assert run.outputs["parsed"] == {"name": "Lakshmi", "tags": ["a", "b"]}
    assert run.outputs["greeting"] == "Hello, Lakshmi!"
    proc = run_cli(
        "run",
        str(PACK / "actions" / "jw-pack-demo.yaml"),
        "-p",
        "count=1",
        "--json",
        env=inline_env(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["outputs"]["lines"] == ""  # count=1: one line, on stderr
    assert out["workflow"] == "examples.jw-pack-demo"


def test_an_attune_workflow_action_nests_by_its_ref(engine, tmp_path: Path) -> None:
    pack = _pack(
        tmp_path / "packs",
        "mypack",
        {
            "actions/sub.yaml": """
                ref: mypack.sub
                label: Sub
                workflow_file: workflows/sub.workflow.yaml
                parameters:
                  who: {type: string, default: world}
            """,
            "actions/workflows/sub.workflow.yaml": """
                version: 1.0.0
                tasks:
                  - name: hello
                    action: core.echo
                    input: {text: "hi {{ parameters.who }}"}
                output_map: {said: "{{ task.hello.result.text }}"}
            """,
            "actions/workflows/main.yaml": _orquesta(
                "t:\n  action: mypack.sub\n  next:\n    - publish: said=<% result().said %>\n",
                output="[{said: '<% ctx().said %>'}]",
            ),
        },
    )
    run = jw.load(pack / "actions" / "workflows" / "main.yaml").run()
    assert run.status == "succeeded", run.error
    assert run.outputs == {"said": "hi world"}


CORE_PACK = PACK.parent / "core"


def test_stackstorms_orquesta_basic_runs_core_local_from_the_core_pack(engine, tmp_path) -> None:
    """``orquesta-basic`` (its metadata file, as ``st2 run examples.orquesta-basic``) calls
    ``core.local``: the ``local-shell-cmd`` action of StackStorm's ``core`` pack beside it.
    Both packs are StackStorm's files, unchanged."""
    assert (CORE_PACK / "actions" / "local.yaml").is_file()
    wf = jw.load(PACK / "actions" / "orquesta-basic.yaml")
    assert wf.name == "examples.orquesta-basic"
    run = wf.run({"cmd": 'echo "hello from $(basename $(pwd))"; echo oops >&2'})
    assert run.status == "succeeded", run.error
    assert run.outputs == {"stdout": "hello from actions\n"}  # run in core/actions/
    result = run.tasks[0]["result"]
    assert result["stderr"] == "oops\n" and result["return_code"] == 0
    # the metadata's default 'timeout: 60' reached core.local as the runner's time limit;
    # a failing command fails the task with one line
    run = wf.run({"cmd": "echo 'disk full' >&2; exit 4"})
    assert run.status == "failed"
    assert run.tasks[0]["error"] == (
        "ActionFailed: action 'core.local': the command exited with 4: disk full"
    )
    proc = run_cli(
        "run",
        str(PACK / "actions" / "orquesta-basic.yaml"),
        "-p",
        "cmd=printf 42",
        "--json",
        env=inline_env(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["outputs"] == {"stdout": "42"}
    proc = run_cli("run", str(PACK / "actions" / "orquesta-basic.yaml"), env=inline_env(tmp_path))
    assert proc.returncode == 2
    assert "parameter 'cmd' is required" in proc.stderr


def test_a_command_default_is_a_template_over_the_other_parameters(engine, tmp_path) -> None:
    """StackStorm's ``local_command_runner_print_to_stdout_and_stderr``: its ``cmd`` default
    is a Jinja template over ``count`` and ``sleep_delay``."""
    wf = tmp_path / "packs" / "examples" / "actions" / "workflows" / "cmd.yaml"
    shutil.copytree(PACK, wf.parents[2])
    shutil.copytree(CORE_PACK, tmp_path / "packs" / "core")
    wf.write_text(
        _orquesta(
            "t:\n  action: examples.local_command_runner_print_to_stdout_and_stderr"
            " count=3 sleep_delay=0\n"
        )
    )
    run = jw.load(wf).run()
    assert run.status == "succeeded", run.error
    result = run.tasks[0]["result"]
    assert result["stdout"] == "stdout line 2\n"
    assert result["stderr"] == "stderr line 1\nstderr line 3\n"


def test_stackstorms_subworkflow_runs_the_nested_pack_workflow(engine) -> None:
    """``orquesta-subworkflow`` -> ``examples.orquesta-sequential`` (its metadata's default
    ``name: Lakshmi``). That workflow reads ``result().stdout`` of ``core.echo``, which here
    returns its input (docs/dialects.md): the child runs and fails at exactly that, one line."""
    run = jw.load(PACK / "actions" / "workflows" / "orquesta-subworkflow.yaml").run()
    assert run.status == "failed"
    assert [t["task"] for t in run.tasks] == ["start", "subworkflow"]
    assert "workflow 'examples.orquesta-sequential'" in run.error
    assert "result().stdout" in run.error and "\n" not in run.error


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_the_cli_runs_the_pack_on_the_embedded_cluster(tmp_path: Path) -> None:
    env = dict(os.environ)
    for var in ("JUPYTER_WORKFLOWS_SCHEDULER", "JUPYTER_WORKFLOWS_EXECUTOR"):
        env.pop(var, None)
    env["JUPYTER_WORKFLOWS_STORE"] = str(tmp_path / "state.db")
    pack = shutil.copytree(PACK, tmp_path / "packs" / "examples")
    (pack / "actions" / "fails.yaml").write_text(
        "name: fails\nrunner_type: python-script\nentry_point: fails.py\n"
    )
    (pack / "actions" / "fails.py").write_text(
        "from st2common.runners.base_action import Action\n\n\n"
        "class Fails(Action):\n    def run(self):\n"
        "        return (False, {'reason': 'disk full'})\n"
    )
    (pack / "actions" / "workflows" / "fails.yaml").write_text(
        _orquesta("t:\n  action: examples.fails\n")
    )
    proc = run_cli(
        "run",
        str(pack / "actions" / "workflows" / "jw-pack-demo.yaml"),
        "-p",
        f"json_str='{PARAMS['json_str']}'",  # -p reads YAML: quoted, it stays a string
        "-p",
        "count=3",
        "--json",
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "succeeded"
    assert out["outputs"]["greeting"] == "Hello, Ann!"
    assert out["outputs"]["parsed"] == {"name": "Ann", "tags": [1, None]}

    proc = run_cli("run", str(pack / "actions" / "workflows" / "fails.yaml"), env=env, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert 'action \'examples.fails\' returned failure: {"reason": "disk full"}' in (
        proc.stdout + proc.stderr
    )


# -- python-script -------------------------------------------------------------------------------
COUNTER = """
import os
import threading

from st2common.runners.base_action import Action

CALLS = []
LOCK = threading.Lock()


class Count(Action):
    def run(self, n, step=1):
        with LOCK:
            CALLS.append(n)
            calls = len(CALLS)
        self.logger.info("call %s of this module in %s", calls, os.getpid())
        return {"pid": os.getpid(), "calls": calls, "n": n * step, "file": __file__}
"""

COUNTER_META = """
name: count
runner_type: python-script
entry_point: counter.py
parameters:
  n: {type: integer, required: true}
  step: {type: integer, default: 10}
"""


def _counter_pack(tmp_path: Path) -> Path:
    pack = _pack(
        tmp_path / "packs",
        "mypack",
        {
            "actions/count.yaml": COUNTER_META,
            "actions/counter.py": COUNTER,
            "actions/workflows/many.yaml": _orquesta(
                """
                each:
                  with: <% range(0, 8) %>
                  action: mypack.count n=<% item() %>
                """,
            ),
        },
    )
    return pack / "actions" / "workflows" / "many.yaml"


def _check_counter(run, *, workers: int) -> None:
    assert run.status == "succeeded", run.error
    results = [r["result"] for r in run.tasks[0]["result"]]
    assert [r["n"] for r in results] == [i * 10 for i in range(8)]  # default step=10
    calls: dict[int, list[int]] = defaultdict(list)
    for r in results:
        calls[r["pid"]].append(r["calls"])
    # module-level state lives once per process: each one counted 1, 2, ... its own calls
    for counted in calls.values():
        assert sorted(counted) == list(range(1, len(counted) + 1))
    assert len(calls) <= workers
    assert any("call 1 of this module" in line for line in _logs(run, "each"))


def test_module_level_state_stays_in_the_process(engine, tmp_path: Path) -> None:
    run = jw.load(_counter_pack(tmp_path)).run()
    _check_counter(run, workers=1)
    assert {r["result"]["pid"] for r in run.tasks[0]["result"]} == {os.getpid()}


@pytest.mark.cluster
def test_module_level_state_stays_on_each_worker(dask_engine, tmp_path: Path) -> None:
    run = jw.load(_counter_pack(tmp_path)).run()
    _check_counter(run, workers=2)
    assert os.getpid() not in {r["result"]["pid"] for r in run.tasks[0]["result"]}


@pytest.mark.cluster
@pytest.mark.timeout(240)
def test_workers_without_the_pack_folder_import_their_own_copy(tmp_path: Path) -> None:
    """Workers that behave as on another machine (``JUPYTER_WORKFLOWS_COPY_CODE=1``: they
    import from the copy shipped to them, never from the folder) put the st2common stand-in in
    place and import the action's module there."""
    from jupyter_workflows.engine import api
    from jupyter_workflows.testing import scheduler_and_workers

    with scheduler_and_workers(2, env={"JUPYTER_WORKFLOWS_COPY_CODE": "1"}) as cluster:
        api.configure(store=str(tmp_path / "state.db"), scheduler=cluster.address)
        run = jw.load(_counter_pack(tmp_path)).run()
        _check_counter(run, workers=2)
        files = {r["result"]["file"] for r in run.tasks[0]["result"]}
        assert files and not any(f.startswith(str(tmp_path)) for f in files), files
        assert all(f.endswith("counter.py") for f in files)
        api.reset()


def test_the_st2common_stand_in_is_installed_only_without_st2common() -> None:
    from jupyter_workflows.actions.packs import Action, install_st2_shim

    install_st2_shim()
    from st2common.runners.base_action import Action as Imported

    assert Imported is Action  # st2common is not installed in this environment
    action = Action(config={"k": 1})
    assert action.config == {"k": 1} and action.logger.name == "actions.python.Action"


def test_a_false_tuple_fails_the_task_with_one_line(engine, tmp_path: Path) -> None:
    pack = _pack(
        tmp_path / "packs",
        "mypack",
        {
            "actions/check.yaml": "name: check\nrunner_type: python-script\nentry_point: check.py\n",
            "actions/check.py": """
                from st2common.runners.base_action import Action


                class Check(Action):
                    def run(self, ok):
                        return (ok, {"checked": ok, "why": "line one\\nline two"})
            """,
            "actions/workflows/w.yaml": _orquesta(
                """
                good:
                  action: mypack.check ok=true
                  next:
                    - when: <% succeeded() %>
                      do: bad
                bad:
                  action: mypack.check ok=false
                """
            ),
        },
    )
    run = jw.load(pack / "actions" / "workflows" / "w.yaml").run()
    assert run.status == "failed"
    good, bad = run.tasks
    assert good["result"] == {"result": {"checked": True, "why": "line one\nline two"}}
    assert bad["status"] == "failed"
    assert bad["error"] == (
        "ActionFailed: action 'mypack.check' returned failure: "
        '{"checked": false, "why": "line one\\nline two"}'
    )


def test_an_action_of_a_sibling_pack(engine, tmp_path: Path) -> None:
    _pack(
        tmp_path / "packs",
        "tools",
        {
            "actions/shout.yaml": """
                name: shout
                runner_type: local-shell-script
                entry_point: shout.sh
                parameters:
                  word: {type: string, position: 0}
                  times: {type: integer, default: 2}
                  loud: {type: boolean, default: true}
            """,
            "actions/shout.sh": """
                #!/bin/sh
                echo "$@"
            """,
        },
    )
    main = _pack(
        tmp_path / "packs",
        "main",
        {
            "actions/workflows/w.yaml": _orquesta(
                "t:\n  action: tools.shout word=hey\n  next:\n    - publish: said=<% result().stdout %>\n",
                output="[{said: '<% ctx().said %>'}]",
            )
        },
    )
    run = jw.load(main / "actions" / "workflows" / "w.yaml").run()
    assert run.status == "succeeded", run.error
    # positional first, then --name=value (StackStorm's local-shell-script convention)
    assert run.outputs == {"said": "hey --loud=true --times=2\n"}


def test_the_shell_runners_own_parameters(engine, tmp_path: Path) -> None:
    """``timeout``, ``env``, ``cwd``, ``kwarg_op`` go to the runner, not to the script (as in
    StackStorm); past ``timeout`` the script and what it started are stopped."""
    marker = tmp_path / "still-running"
    pack = _pack(
        tmp_path / "packs",
        "mypack",
        {
            "actions/env.yaml": """
                name: env
                runner_type: local-shell-script
                entry_point: env.sh
                parameters:
                  word: {type: string}
            """,
            "actions/env.sh": '#!/bin/sh\necho "$GREETING $* in $(pwd)"\n',
            "actions/slow.yaml": "name: slow\nrunner_type: local-shell-script\nentry_point: slow.sh\n",
            "actions/slow.sh": f"#!/bin/sh\n(sleep 3; touch {marker}) &\nsleep 30\n",
            "actions/workflows/w.yaml": _orquesta(
                """
                env:
                  action: mypack.env
                  input:
                    word: hi
                    env: {GREETING: hello}
                    cwd: CWD
                    kwarg_op: "-"
                  next:
                    - when: <% succeeded() %>
                      publish: said=<% result().stdout %>
                      do: slow
                slow:
                  action: mypack.slow timeout=1
                """.replace("CWD", str(tmp_path)),
                output="[{said: '<% ctx().said %>'}]",
            ),
        },
    )
    run = jw.load(pack / "actions" / "workflows" / "w.yaml").run()
    assert run.status == "failed"
    env, slow = run.tasks
    assert env["result"]["stdout"] == f"hello -word=hi in {tmp_path}\n"
    assert slow["error"] == (
        "ActionFailed: action 'mypack.slow': slow.sh ran past its timeout of 1 s and was stopped"
    )
    import time

    time.sleep(3.5)
    assert not marker.exists()  # its background child was stopped with it


def test_a_script_missing_where_the_task_runs_is_one_line(tmp_path: Path) -> None:
    import socket

    from jupyter_workflows.actions.base import ActionFailed
    from jupyter_workflows.actions.registry import resolve_action

    pack = _pack(
        tmp_path / "packs",
        "mypack",
        {
            "actions/gone.yaml": "name: gone\nrunner_type: local-shell-script\nentry_point: gone.sh\n",
            "actions/gone.sh": "#!/bin/sh\necho hi\n",
        },
    )
    action = resolve_action("mypack.gone", pack / "actions" / "workflows")
    assert action.fn()["stdout"] == "hi\n"
    (pack / "actions" / "gone.sh").unlink()  # as on a worker without the pack
    with pytest.raises(ActionFailed) as info:
        action.fn()
    assert str(info.value).startswith(
        f"action 'mypack.gone': {pack / 'actions' / 'gone.sh'} is not on {socket.gethostname()}"
    )


def test_a_failing_script_fails_the_task_with_one_line(engine, tmp_path: Path) -> None:
    pack = _pack(
        tmp_path / "packs",
        "mypack",
        {
            "actions/boom.yaml": "name: boom\nrunner_type: local-shell-script\nentry_point: boom.sh\n",
            "actions/boom.sh": "#!/bin/sh\necho 'working'\necho 'no space left' >&2\nexit 3\n",
            "actions/workflows/w.yaml": _orquesta("t:\n  action: mypack.boom\n"),
        },
    )
    run = jw.load(pack / "actions" / "workflows" / "w.yaml").run()
    assert run.status == "failed"
    assert run.tasks[0]["error"] == (
        "ActionFailed: action 'mypack.boom': boom.sh exited with 3: no space left"
    )


# -- parameters -----------------------------------------------------------------------------------
def test_a_missing_required_parameter_is_refused_by_validate(tmp_path: Path) -> None:
    wf = _counter_pack(tmp_path).with_name("nothing.yaml")
    wf.write_text(_orquesta("t:\n  action: mypack.count step=2\n"))
    with pytest.raises(SpecError) as info:
        jw.load(wf).validate()
    message = str(info.value)
    assert message.startswith(f"{wf}:6:")
    assert "task 't': action 'mypack.count' needs the parameter 'n'" in message
    assert "\n" not in message
    proc = run_cli("validate", str(wf), env=inline_env(tmp_path))
    assert proc.returncode == 2
    assert "needs the parameter 'n'" in proc.stderr


def test_a_required_parameter_missing_at_run_time_fails_the_task(tmp_path: Path) -> None:
    """What ``validate`` cannot see (an input computed when the task runs) is checked again
    by the action itself."""
    from jupyter_workflows.actions.base import ActionFailed
    from jupyter_workflows.actions.registry import resolve_action

    folder = _counter_pack(tmp_path).parent
    action = resolve_action("mypack.count", folder)
    assert action.fn(n=2)["result"]["n"] == 20
    # the runner's own parameters never reach run()
    assert action.fn(n=2, timeout=5, log_level="DEBUG")["result"]["n"] == 20
    with pytest.raises(ActionFailed) as info:
        action.fn(step=2)
    assert str(info.value) == "action 'mypack.count': missing required parameter 'n'"


def test_the_code_hash_follows_the_action_files(tmp_path: Path) -> None:
    """Cache keys (``cache:`` on a task) change when the action's module or script changes."""
    from jupyter_workflows.actions.registry import resolve_action

    folder = _counter_pack(tmp_path).parent
    before = resolve_action("mypack.count", folder).code_hash
    assert resolve_action("mypack.count", folder).code_hash == before
    module = folder.parent / "counter.py"
    module.write_text(module.read_text() + "\n# changed\n")
    assert resolve_action("mypack.count", folder).code_hash != before


def test_a_nested_orquesta_action_without_its_required_parameter(engine, tmp_path) -> None:
    pack = shutil.copytree(PACK, tmp_path / "packs" / "examples")
    wf = pack / "actions" / "workflows" / "no-name.yaml"
    wf.write_text(_orquesta("t:\n  action: examples.jw-pack-greet greeting=Hi\n"))
    run = jw.load(wf).run()
    assert run.status == "failed"
    assert run.tasks[0]["error"] == (
        "ParameterError: nested workflow 'examples.jw-pack-greet': "
        "workflow 'examples.jw-pack-greet': parameter 'name' is required"
    )
    assert "\n" not in run.error


def test_a_nested_orquesta_action_checks_its_required_parameter(engine) -> None:
    parent = jw.load(DEMO)
    child = parent.resolve_workflow("examples.jw-pack-greet")
    assert child.name == "examples.jw-pack-greet"
    assert child.parameters["greeting"].get("default") == "Hello"
    assert child.parameters["name"].get("required") is True
    run = child.run({"name": "Bo"})
    assert run.status == "succeeded", run.error
    assert run.outputs == {"text": "Hello, Bo!"}


# -- bad metadata -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("meta", "where", "message"),
    [
        (
            "name: x\nrunner_type: python-script\nentry_point: [oops\n",
            "3:14",
            "YAML syntax error: expected ',' or ']'",
        ),
        (
            "name: x\nrunner_type: remote-shell-script\nentry_point: x.sh\n",
            "2:14",
            "action 'mypack.x': runner_type 'remote-shell-script' is not run here "
            "(supported: python-script, local-shell-script, local-shell-cmd, orquesta, workflow)",
        ),
        (
            "name: x\nrunner_type: local-shell-script\nentry_point: missing.sh\n",
            "3:14",
            "action 'mypack.x': entry_point 'missing.sh': no such file",
        ),
        (
            "name: x\nrunner_type: local-shell-script\nentry_point: x.sh\n"
            "parameters:\n  a:\n    required: yes please\n",
            "6:15",
            "action 'mypack.x': parameter 'a': 'required' must be true or false",
        ),
        (
            "name: x\nrunner_type: local-shell-script\nentry_point: x.sh\nparameters: [a, b]\n",
            "4:13",
            "action 'mypack.x': 'parameters' must be a mapping of name to settings",
        ),
    ],
)
def test_a_bad_metadata_file_is_one_positioned_line(
    tmp_path: Path, meta: str, where: str, message: str
) -> None:
    pack = _pack(
        tmp_path / "packs",
        "mypack",
        {
            "actions/x.yaml": meta,
            "actions/x.sh": "#!/bin/sh\necho hi\n",
            "actions/workflows/w.yaml": _orquesta("t:\n  action: mypack.x\n"),
        },
    )
    proc = run_cli(
        "validate", "packs/mypack/actions/workflows/w.yaml", env=inline_env(tmp_path), cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"packs/mypack/actions/x.yaml:{where}: "), lines[0]
    assert message in lines[0]
    assert lines[0].endswith(
        "(in action 'mypack.x', run by packs/mypack/actions/workflows/w.yaml:6:13 task 't')"
    )
    assert "Traceback" not in proc.stderr
    # and a run refuses it the same way, before anything runs
    proc = run_cli(
        "run", "packs/mypack/actions/workflows/w.yaml", env=inline_env(tmp_path), cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stdout
    assert f"packs/mypack/actions/x.yaml:{where}: " in proc.stderr
    assert pack.is_dir()


def test_a_python_action_without_an_action_class_is_one_line(tmp_path: Path) -> None:
    pack = _pack(
        tmp_path / "packs",
        "mypack",
        {
            "actions/x.yaml": "name: x\nrunner_type: python-script\nentry_point: x.py\n",
            "actions/x.py": "def run():\n    return 1\n",
            "actions/workflows/w.yaml": _orquesta("t:\n  action: mypack.x\n"),
        },
    )
    with pytest.raises(SpecError) as info:
        jw.load(pack / "actions" / "workflows" / "w.yaml").validate()
    assert "defines no subclass of st2common.runners.base_action.Action" in str(info.value)


def test_a_python_action_that_does_not_import_is_one_line(tmp_path: Path) -> None:
    """StackStorm's own ``python-mock-create-vm`` (a '-' in its module name) imports
    ``eventlet``, which is not installed here."""
    pack = shutil.copytree(PACK, tmp_path / "packs" / "examples")
    wf = pack / "actions" / "workflows" / "vm.yaml"
    wf.write_text(_orquesta("t:\n  action: examples.python-mock-create-vm vm_name=a ip=b\n"))
    proc = run_cli("validate", str(wf), env=inline_env(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"{wf}:6:13: task 't': action 'examples.python-mock-create-vm': importing "
        "packs/examples/actions/python-mock-create-vm.py: "
        "ModuleNotFoundError: No module named 'eventlet'"
    )


def test_an_unknown_pack_action_keeps_the_usual_error(tmp_path: Path) -> None:
    pack = _pack(
        tmp_path / "packs",
        "mypack",
        {"actions/workflows/w.yaml": _orquesta("t:\n  action: mypack.nothing\n")},
    )
    with pytest.raises(SpecError, match=r"unknown action 'mypack\.nothing'"):
        jw.load(pack / "actions" / "workflows" / "w.yaml").validate()
