"""The builtin actions of CONTRACT §1.2.

They are plain functions so they run on any Dask worker; ``core.inquiry`` is the exception: the
engine handles it itself (the task waits for a response), so its function is never called.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

from .base import ActionDef, ActionFailed, _plain
from .llm import llm_prompt

__all__ = ["BUILTINS", "ActionFailed", "record"]


def noop() -> None:
    """Do nothing."""
    return None


def echo(**kwargs: Any) -> Any:
    """Return the input mapping as the result."""
    return kwargs


def sleep(seconds: float = 1.0) -> float:
    """Sleep ``seconds`` and return them."""
    time.sleep(float(seconds))
    return float(seconds)


def fail(message: str = "failed on purpose") -> None:
    """Fail with ``message``."""
    raise ActionFailed(message)


def inquiry(prompt: str = "", schema: dict[str, Any] | None = None) -> None:  # pragma: no cover
    """Placeholder: the engine itself waits for the response."""
    raise RuntimeError("core.inquiry is handled by the engine")


def shell(
    command: str | list[str],
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run ``command`` (a string goes through the shell); non-zero exit fails the task."""
    full_env = {**os.environ, **{k: str(v) for k, v in (env or {}).items()}}
    proc = subprocess.run(
        command,
        shell=isinstance(command, str),
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    out = {"returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        raise ActionFailed(
            f"command exited with {proc.returncode}" + (f": {tail[-1]}" if tail else "")
        )
    return out


def http(
    url: str,
    method: str = "GET",
    json: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
    params: dict[str, Any] | None = None,
    data: Any = None,
) -> dict[str, Any]:
    """One HTTP request with httpx; a 4xx/5xx status fails the task."""
    import httpx

    resp = httpx.request(
        method.upper(),
        url,
        json=json,
        headers=headers,
        timeout=timeout,
        params=params,
        content=data,
    )
    try:
        body = resp.json()
    except ValueError:
        body = None
    out = {
        "status": resp.status_code,
        "headers": dict(resp.headers),
        "json": body,
        "text": resp.text,
    }
    if resp.status_code >= 400:
        raise ActionFailed(f"HTTP {resp.status_code} from {method.upper()} {url}")
    return out


# -- core.notebook ---------------------------------------------------------------------------

_RECORD_ENV = "JUPYTER_WORKFLOWS_RECORD_FILE"


def record(name: str, value: Any) -> None:
    """Record a value from inside a notebook run by ``core.notebook`` (its result).

    Outside such a run this does nothing, so the notebook still runs on its own.
    """
    import json

    path = os.environ.get(_RECORD_ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"name": name, "value": value}, default=str) + "\n")


def notebook(
    path: str,
    parameters: dict[str, Any] | None = None,
    output_path: str | None = None,
    kernel_name: str | None = None,
) -> dict[str, Any]:
    """Run a notebook headless with papermill; the result is what it ``record()``-ed."""
    import json
    import tempfile

    import papermill

    with tempfile.TemporaryDirectory() as tmp:
        rec = os.path.join(tmp, "record.jsonl")
        out = output_path or os.path.join(tmp, "out.ipynb")
        old = os.environ.get(_RECORD_ENV)
        os.environ[_RECORD_ENV] = rec
        try:
            papermill.execute_notebook(
                path, out, parameters=parameters or {}, kernel_name=kernel_name, progress_bar=False
            )
        finally:
            if old is None:
                os.environ.pop(_RECORD_ENV, None)
            else:
                os.environ[_RECORD_ENV] = old
        values: dict[str, Any] = {}
        if os.path.exists(rec):
            with open(rec, encoding="utf-8") as fh:
                for line in fh:
                    item = json.loads(line)
                    values[item["name"]] = item["value"]
        return values


BUILTINS: dict[str, ActionDef] = {
    "core.noop": _plain("core.noop", noop),
    "core.echo": _plain("core.echo", echo),
    "core.sleep": _plain("core.sleep", sleep),
    "core.fail": _plain("core.fail", fail),
    "core.inquiry": _plain("core.inquiry", inquiry, engine_side=True),
    "core.shell": _plain("core.shell", shell),
    "core.http": _plain("core.http", http),
    "core.notebook": _plain("core.notebook", notebook),
    "llm.prompt": _plain("llm.prompt", llm_prompt),
}
