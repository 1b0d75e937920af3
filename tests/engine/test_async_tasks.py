"""``async def`` task functions are awaited (issue 9, point 5): on the inline executor and on a
real Dask LocalCluster, decorated with ``@jw.task`` or not, with a ``context`` parameter, in a
``with_items`` fan-out; their prints are captured and their exceptions are one line."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

import jupyter_workflows as jw

ENDS_WITHIN = 120.0


@jw.task(name="async_double")
async def double(x: int) -> int:
    await asyncio.sleep(0.01)
    print(f"doubled {x}")
    return 2 * x


@jw.task(name="async_frame")
async def frame(n: int, context) -> pd.DataFrame:
    await asyncio.sleep(0)
    context.progress(1, 1)
    return pd.DataFrame({"n": [n], "task": [context.task], "item": [context.item]})


@jw.task(name="async_fails")
async def fails() -> None:
    await asyncio.sleep(0)
    raise ValueError("async went wrong")


WORKFLOW = """
name: asyncs
tasks:
  double: {action: async_double, input: {x: 21}, on_success: fan}
  fan:
    action: async_frame
    with_items: "{{ [1, 2, 3] }}"
    input: {n: "{{ item }}"}
output_map:
  double: "{{ task.double.result }}"
  fan: "{{ task.fan.result }}"
"""


def _check(run) -> None:
    run.wait(timeout=ENDS_WITHIN)
    assert run.status == "succeeded", run.error
    assert run.outputs["double"] == 42
    frames = run.outputs["fan"]
    assert [type(f) for f in frames] == [pd.DataFrame] * 3
    assert [int(f["n"].iloc[0]) for f in frames] == [1, 2, 3]
    assert {f["task"].iloc[0] for f in frames} == {"fan"}
    trace = run.trace()
    logs = [line for t in trace["tasks"] if t["task"] == "double" for line in t.get("logs", [])]
    assert any("doubled 21" in line for line in logs), trace


def test_async_tasks_are_awaited_inline(engine):
    _check(jw.load(WORKFLOW).run(wait=False))


def test_async_tasks_are_awaited_on_dask(dask_engine):
    _check(jw.load(WORKFLOW).run(wait=False))


@pytest.mark.parametrize("where", ["inline", "dask"])
def test_an_async_failure_is_one_line(where, request):
    request.getfixturevalue("engine" if where == "inline" else "dask_engine")
    run = jw.load("name: af\ntasks:\n  a: {action: async_fails}\n").run(wait=False)
    run.wait(timeout=ENDS_WITHIN)
    assert run.status == "failed"
    assert run.tasks[0]["error"] == "ValueError: async went wrong"


def test_an_undecorated_async_function_from_a_module(engine, tmp_path):
    (tmp_path / "steps.py").write_text(
        "import asyncio\n\nasync def add_one(x):\n    await asyncio.sleep(0)\n    return x + 1\n"
    )
    (tmp_path / "wf.yaml").write_text(
        "name: mod\ntasks:\n  a: {action: 'steps:add_one', input: {x: 1}}\n"
        "output_map:\n  a: '{{ task.a.result }}'\n"
    )
    run = jw.load(tmp_path / "wf.yaml").run(wait=False)
    run.wait(timeout=ENDS_WITHIN)
    assert run.status == "succeeded", run.error
    assert run.outputs == {"a": 2}


def test_await_in_thread_works_where_a_loop_already_runs():
    from jupyter_workflows.engine.context import await_in_thread

    async def inner() -> str:
        return await asyncio.sleep(0, result="ok")

    async def outer() -> str:
        # A loop runs in this thread: asyncio.run would refuse, so a helper thread runs it.
        return await_in_thread(inner())

    assert asyncio.run(outer()) == "ok"
    assert await_in_thread(inner()) == "ok"
