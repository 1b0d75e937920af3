"""Any picklable value is a result (issue 9, point 2).

A task returns numpy arrays and scalars, pandas DataFrames and Series (NaN and None inside),
pyarrow tables, scikit-learn estimators, matplotlib figures, dataclasses, sets, tuples, bytes;
each comes back equal and of the same type from ``Run.outputs``, ``Run.tasks[i]["result"]``, a
fresh store instance, and ``jw.get_run(id)`` in another interpreter; on the inline executor and
on a real Dask LocalCluster. Hypothesis pushes many more through task -> store -> other process.
A result that cannot be pickled fails its attempt with one line, whichever executor and store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import threading

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.extra import pandas as hpd
from value_checks import OtherProcess, same

import jupyter_workflows as jw
from jupyter_workflows.engine import api
from jupyter_workflows.store.sqlite import SqliteStore

ENDS_WITHIN = 120.0


def _notebook_class():
    """A dataclass as a notebook defines it: not importable, so pickled by value."""

    @dataclasses.dataclass
    class Measurement:
        name: str
        values: list
        weight: float = 1.0

    return Measurement


Measurement = _notebook_class()


def rich_values() -> dict[str, object]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyarrow as pa
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    figure, axes = plt.subplots()
    axes.plot([1, 2, 3])
    axes.set_title("growth")
    values: dict[str, object] = {
        "array": np.arange(12, dtype=np.float32).reshape(3, 4),
        "array_nan": np.array([1.0, np.nan, np.inf]),
        "big_array": np.random.default_rng(0).random(20_000),  # > 64 KiB: an artifact file
        "float32": np.float32(1.5),
        "int64": np.int64(-7),
        "bool_": np.bool_(True),
        "nan": float("nan"),
        "frame": pd.DataFrame(
            {
                "a": [1.0, np.nan, 3.0],
                "b": ["x", None, "z"],
                "when": pd.to_datetime(["2024-01-01", None, "2024-03-01"]),
                "cat": pd.Categorical(["u", "v", "u"]),
            }
        ),
        "series": pd.Series([1.0, None, 3.0], name="s", index=["p", "q", "r"]),
        "table": pa.table({"a": [1, 2, None], "b": ["x", None, "z"]}),
        "model": LogisticRegression(max_iter=300).fit(x, y),
        "figure": figure,
        "dataclass": Measurement("m", [1, 2.5, None]),
        "set": {1, 2, 3},
        "frozenset": frozenset({"a", "b"}),
        "tuple": (1, "two", (3.0, None)),
        "bytes": b"\x00\xff binary",
        "int_keys": {1: "one", 2: "two"},
        "decimal": decimal.Decimal("1.10"),
        "datetime": dt.datetime(2024, 5, 6, 7, 8, 9),
    }
    try:
        import torch
    except ImportError:
        pass
    else:  # pragma: no cover - torch is not installed in the project's environment
        values["tensor"] = torch.arange(6.0).reshape(2, 3)
    return values


VALUES = rich_values()


@jw.task(name="vr_give")
def give(name: str) -> object:
    return VALUES[name]


@jw.task(name="vr_kind")
def kind_of(value: object) -> str:
    """Downstream: receives the value itself (not a summary, not a string)."""
    return type(value).__name__


def _workflow(names: list[str]) -> jw.Workflow:
    lines = ["name: values", "tasks:"]
    for n in names:
        lines.append(f"  {n}: {{action: vr_give, input: {{name: {n}}}, on_success: {n}_kind}}")
        lines.append(
            f"  {n}_kind: {{action: vr_kind, input: {{value: '{{{{ task.{n}.result }}}}'}}}}"
        )
    lines.append("output_map:")
    for n in names:
        lines.append(f"  {n}: '{{{{ task.{n}.result }}}}'")
        lines.append(f"  {n}_kind: '{{{{ task.{n}_kind.result }}}}'")
    return jw.load("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def other_process():
    reader = OtherProcess()
    yield reader
    reader.close()


def _check_everywhere(run, store_path, other_process) -> None:
    run.wait(timeout=ENDS_WITHIN)
    assert run.status == "succeeded", run.error
    names = list(VALUES)
    # Live, in this process.
    for n in names:
        assert same(run.outputs[n], VALUES[n]), n
        assert run.outputs[f"{n}_kind"] == type(VALUES[n]).__name__, n
    results = {t["task"]: t["result"] for t in run.tasks}
    for n in names:
        assert same(results[n], VALUES[n]), n
    # Read back from the file, by another store instance.
    fresh = SqliteStore(store_path)
    stored = fresh.get_run(run.run_id)
    assert stored["status"] == "succeeded"
    for n in names:
        assert same(stored["outputs"][n], VALUES[n]), n
    # And by another interpreter, through the public API.
    there = other_process.read(str(store_path), run.run_id)
    assert there["status"] == "succeeded"
    for n in names:
        assert same(there["outputs"][n], VALUES[n]), n
        assert same(there["results"][n], VALUES[n]), n


def test_every_kind_of_value_round_trips_inline(engine, tmp_path, other_process):
    run = _workflow(list(VALUES)).run(wait=False)
    _check_everywhere(run, tmp_path / "state.db", other_process)


def test_every_kind_of_value_round_trips_on_dask(dask_engine, tmp_path, other_process):
    run = _workflow(list(VALUES)).run(wait=False)
    _check_everywhere(run, tmp_path / "state.db", other_process)


# -- property: many values, task -> store -> another process ------------------------------------
_hashable = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
)
_scalars = st.one_of(
    _hashable,
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(allow_nan=True),
    st.datetimes(),
    st.decimals(allow_nan=False),
)
_arrays = hnp.arrays(
    dtype=st.one_of(
        hnp.integer_dtypes(),
        hnp.floating_dtypes(),
        hnp.boolean_dtypes(),
        hnp.complex_number_dtypes(),
        # numpy's own pickle makes a byte-swapped datetime64 dtype native (values kept):
        # not a difference the store makes, so only native byte order here.
        hnp.datetime64_dtypes(endianness="="),
        hnp.unicode_string_dtypes(max_len=5),
    ),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
)
_frames = hpd.data_frames(
    columns=[
        hpd.column("f", dtype=float),
        hpd.column("i", dtype=np.int64),
        hpd.column("s", elements=st.one_of(st.none(), st.text(max_size=5))),
    ],
    index=hpd.range_indexes(max_size=6),
)
_series = hpd.series(dtype=float, index=hpd.range_indexes(max_size=6))
_dataclasses = st.builds(
    Measurement,
    name=st.text(max_size=5),
    values=st.lists(st.one_of(st.none(), st.floats()), max_size=3),
    weight=st.floats(),
)
_leaves = st.one_of(_scalars, _arrays, _frames, _series, _dataclasses)
VALUE_STRATEGY = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=6), children, max_size=4),
        st.dictionaries(st.integers(), children, max_size=3),
        st.frozensets(_hashable, max_size=4),
        st.sets(_hashable, max_size=4),
    ),
    max_leaves=8,
)

_drawn: dict[str, object] = {}


@jw.task(name="vr_drawn")
def drawn(key: str) -> object:
    return _drawn[key]


PROPERTY_WF = """
name: drawn
tasks:
  make: {action: vr_drawn, input: {key: k}, on_success: pass_on}
  pass_on: {action: vr_identity, input: {value: "{{ task.make.result }}"}}
output_map:
  made: "{{ task.make.result }}"
  passed: "{{ task.pass_on.result }}"
"""


@jw.task(name="vr_identity")
def identity(value: object) -> object:
    return value


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=VALUE_STRATEGY)
def test_property_any_value_survives_task_store_and_another_process(
    value, engine, tmp_path, other_process
):
    _drawn["k"] = value
    run = jw.load(PROPERTY_WF).run(wait=False)
    run.wait(timeout=ENDS_WITHIN)
    assert run.status == "succeeded", run.error
    assert same(run.outputs["made"], value)
    assert same(run.outputs["passed"], value)
    there = other_process.read(str(tmp_path / "state.db"), run.run_id)
    assert same(there["outputs"]["made"], value), (there["outputs"]["made"], value)
    assert same(there["outputs"]["passed"], value)
    assert same(there["results"]["make"], value)


# -- what cannot be pickled -----------------------------------------------------------------------
@jw.task(name="vr_lock")
def a_lock() -> object:
    return threading.Lock()


@jw.task(name="vr_nested_generator")
def nested_generator() -> object:
    return {"fine": pd.DataFrame({"a": [1]}), "bad": [(i for i in range(3))]}


UNPICKLABLE = """
name: unpicklable
tasks:
  lock: {action: vr_lock}
  gen: {action: vr_nested_generator}
"""


def _assert_unpicklable_fails(run) -> None:
    run.wait(timeout=ENDS_WITHIN)
    assert run.status == "failed"
    errors = {t["task"]: t["error"] for t in run.tasks}
    assert errors["lock"] == (
        "PicklingError: the result (a lock) cannot be pickled, so it cannot be stored or sent: "
        "TypeError: cannot pickle '_thread.lock' object"
    )
    assert errors["gen"] == (
        "PicklingError: the result (a dict) cannot be pickled, so it cannot be stored or sent: "
        "TypeError: cannot pickle 'generator' object"
    )


def test_an_unpicklable_result_fails_its_attempt_inline(engine):
    _assert_unpicklable_fails(jw.load(UNPICKLABLE).run(wait=False))


def test_an_unpicklable_result_fails_its_attempt_with_a_memory_store():
    api.configure(store=":memory:", executor="inline")
    _assert_unpicklable_fails(jw.load(UNPICKLABLE).run(wait=False))


def test_an_unpicklable_result_fails_its_attempt_on_dask(dask_engine):
    _assert_unpicklable_fails(jw.load(UNPICKLABLE).run(wait=False))
