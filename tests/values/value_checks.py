"""Helpers for the value tests: equality without ``==`` on user values, and a reader process.

:func:`same` says whether two values are equal *and* of the same type, the way a user would
check it (``assert_frame_equal`` for DataFrames, ``array_equal`` with NaN for arrays,
predictions for a fitted model). :class:`OtherProcess` is a second Python process that opens
the store and returns what ``jw.get_run(id)`` gives there, pickled back: "another process
gives back the same type" is checked against a real second interpreter.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import os
import subprocess
import sys
import textwrap
from typing import Any

import cloudpickle

READER = textwrap.dedent(
    """\
    import base64, sys
    import cloudpickle
    import jupyter_workflows as jw

    for line in sys.stdin:
        store, run_id = line.split()
        jw.configure(store=store)
        try:
            run = jw.get_run(run_id)
            data = {
                "status": run.status,
                "outputs": run.outputs,
                "results": {t["task"]: t["result"] for t in run.tasks},
            }
        except Exception as exc:
            data = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(base64.b64encode(cloudpickle.dumps(data)).decode() + "\\n")
        sys.stdout.flush()
    """
)


class OtherProcess:
    """A second interpreter that reads runs from a store (``read(store, run_id)``)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", READER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )

    def read(self, store: str, run_id: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{store} {run_id}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the reader process died"
        data = cloudpickle.loads(base64.b64decode(line))
        assert "error" not in data, data["error"]
        return data

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            self.proc.kill()
            self.proc.wait()


def same(a: Any, b: Any) -> bool:
    """``a`` and ``b`` are of the same type and equal (NaN equals NaN); never uses a user
    type's ``==`` where that is not a bool."""
    ta, tb = type(a), type(b)
    # A class defined in a notebook (pickled by value) comes back as an equal class.
    if ta is not tb and (ta.__qualname__, ta.__module__) != (tb.__qualname__, tb.__module__):
        return False
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    module = ta.__module__.partition(".")[0]
    if module == "numpy":
        import numpy as np

        if isinstance(a, np.ndarray):
            if a.dtype != b.dtype or a.shape != b.shape:
                return False
            if a.dtype.kind in "fc":
                return bool(np.array_equal(a, b, equal_nan=True))
            if a.dtype.kind in "mM":  # NaT is not equal to itself
                return bool(np.array_equal(a.view("i8"), b.view("i8")))
            return bool(np.array_equal(a, b))
        return same(a.item(), b.item()) and a.dtype == b.dtype
    if module == "pandas":
        import pandas as pd

        try:
            if isinstance(a, pd.DataFrame):
                pd.testing.assert_frame_equal(a, b)
            elif isinstance(a, pd.Series):
                pd.testing.assert_series_equal(a, b)
            elif isinstance(a, pd.Index):
                pd.testing.assert_index_equal(a, b)
            else:
                return bool(a == b)
        except AssertionError:
            return False
        return True
    if module == "pyarrow":
        return bool(a.equals(b))
    if module == "sklearn":
        return _same_estimator(a, b)
    if module == "matplotlib":
        return [ax.get_title() for ax in a.axes] == [ax.get_title() for ax in b.axes]
    if ta is float or ta is complex:
        return _same_number(a, b)
    if ta in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def _same_number(a: complex, b: complex) -> bool:
    if isinstance(a, complex):
        return _same_number(a.real, b.real) and _same_number(a.imag, b.imag)
    if math.isnan(a):
        return math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _same_estimator(a: Any, b: Any) -> bool:
    import numpy as np

    if repr(a.get_params()) != repr(b.get_params()):
        return False
    if hasattr(a, "predict") and hasattr(a, "n_features_in_"):
        probe = np.linspace(0.0, 1.0, 4 * a.n_features_in_).reshape(4, a.n_features_in_)
        return bool(np.array_equal(a.predict(probe), b.predict(probe)))
    return True
