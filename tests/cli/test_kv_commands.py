"""``jupyter-workflows kv`` and ``secret``: what a headless user sets is what a run's templates
read (``kv.get``, ``secret``), in the store the run uses; bad input is one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from jupyter_workflows.testing import inline_env, run_cli

WORKFLOW = """\
name: uses_kv
tasks:
  show:
    action: core.echo
    input:
      message: "{{ kv.get('region', 'none') }} {{ kv.get('limits')['max'] }}"
    publish:
      token_length: "{{ secret('api_token') | length }}"
      token: "{{ secret('api_token') }}"
output_map:
  message: "{{ task.show.result.message }}"
  token_length: "{{ vars.token_length }}"
  token: "{{ vars.token }}"
"""


def _secret_set(env: dict[str, str], name: str, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_workflows", "secret", "set", name],
        input=text,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_run_reads_what_kv_and_secret_set(tmp_path: Path) -> None:
    env = inline_env(tmp_path)
    (tmp_path / "uses_kv.yaml").write_text(WORKFLOW)
    for key, value in (("region", "eu-west-1"), ("limits", "{max: 7, names: [a, b]}")):
        done = run_cli("kv", "set", key, value, env=env)
        assert (done.returncode, done.stderr) == (0, "")
    done = _secret_set(env, "api_token", "s3cr3t-value\n")
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert "s3cr3t" not in done.stdout

    got = run_cli("kv", "get", "limits", env=env)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == {"max": 7, "names": ["a", "b"]}

    run = run_cli("run", str(tmp_path / "uses_kv.yaml"), "--json", env=env)
    assert run.returncode == 0, run.stderr
    outputs = json.loads(run.stdout)["outputs"]
    assert outputs["message"] == "eu-west-1 7"
    assert outputs["token_length"] == len("s3cr3t-value")
    # A secret read by a template is masked in what the run shows.
    assert outputs["token"] == "***"
    assert "s3cr3t" not in run.stdout + run.stderr

    # Deleted: the template's default applies again.
    assert run_cli("kv", "delete", "region", env=env).returncode == 0
    run = run_cli("run", str(tmp_path / "uses_kv.yaml"), "--json", env=env)
    assert json.loads(run.stdout)["outputs"]["message"] == "none 7"


def test_missing_keys_and_bad_input_are_one_line(tmp_path: Path) -> None:
    env = inline_env(tmp_path)
    missing = run_cli("kv", "get", "nope", env=env)
    assert (missing.returncode, missing.stdout, missing.stderr) == (1, "", "kv: no entry 'nope'\n")
    assert run_cli("kv", "delete", "nope", env=env).returncode == 1

    bad = run_cli("kv", "set", "x", "[unclosed", env=env)
    assert bad.returncode == 2
    assert bad.stderr.startswith("kv set x: cannot read '[unclosed' as YAML")
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr

    empty = _secret_set(env, "token", "")
    assert empty.returncode == 2
    assert empty.stderr == "secret set token: standard input was empty\n"

    no_action = run_cli("kv", env=env)
    assert no_action.returncode == 2 and "Traceback" not in no_action.stderr
    # Nothing bad was stored on the way.
    assert run_cli("kv", "get", "x", env=env).returncode == 1
