"""Attempt keys of different runs never collide, even when their run ids share a prefix."""

from __future__ import annotations

from dask.utils import key_split

import jupyter_workflows as jw
from jupyter_workflows.engine import commands as C
from jupyter_workflows.engine import events as E
from jupyter_workflows.engine.state import RunState


def _first_key(run_id: str) -> str:
    wf = jw.load("name: keys\ntasks:\n  a: {action: core.noop}\n")
    state = RunState(wf.compiled, run_id, {})
    cmds = state.handle(E.RunStarted(1.0))
    state.validate()
    return next(c.key for c in cmds if isinstance(c, C.Submit))


def test_runs_whose_ids_share_eight_digits_get_different_keys() -> None:
    one = _first_key("f76481b4a448400ea824c45c9c34b978")
    two = _first_key("f76481b45b174310b0a7bf0452e55a31")
    assert one != two
    assert one == "keys.a-f76481b4-a448400e-1"
    assert key_split(one) == key_split(two) == "keys.a"  # the dashboard groups them alike
