"""Showing values (issue 9, point 4): JSON-native forms where they exist, typed summaries else.

``run --json`` and ``show --json`` (real CLI subprocesses) print a numpy array as a list, a numpy
scalar as a number, NaN as ``null`` and a DataFrame as ``{"type": "DataFrame", "shape", "columns",
"head"}``; :func:`jupyter_workflows.values.preview` gives the widget an HTML table, a PNG or a
shape line, and never a multi-megabyte blob.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import textwrap
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jupyter_workflows.testing import inline_env, run_cli
from jupyter_workflows.values import (
    ARRAY_LIST_LIMIT,
    HEAD_ROWS,
    pickling_error,
    preview,
    summary_line,
    to_json_form,
)


def _json(value: object) -> str:
    """What a surface writes: strict JSON (``allow_nan=False`` proves no NaN slipped through)."""
    return json.dumps(to_json_form(value), allow_nan=False)


@pytest.mark.parametrize(
    ("value", "form"),
    [
        (np.arange(3), [0, 1, 2]),
        (np.array([[1.5, np.nan], [np.inf, -0.5]]), [[1.5, None], [None, -0.5]]),
        (np.float32(1.5), 1.5),
        (np.int64(-7), -7),
        (np.bool_(True), True),
        (float("nan"), None),
        (float("-inf"), None),
        ((1, "a", (2.0, None)), [1, "a", [2.0, None]]),
        ({3, 1, 2}, [1, 2, 3]),
        ({1: "one", None: "none"}, {"1": "one", "null": "none"}),
        (b"\x00\xff", {"type": "bytes", "size": 2, "head": "00ff"}),
        ({"nested": [np.float64("nan"), np.int32(4)]}, {"nested": [None, 4]}),
    ],
)
def test_json_native_forms(value, form):
    assert to_json_form(value) == form
    _json(value)


def test_a_dataframe_is_a_typed_summary_with_its_first_rows():
    frame = pd.DataFrame(
        {
            "a": np.arange(100, dtype=float),
            "b": ["x", None] * 50,
            "when": pd.to_datetime(["2024-01-01", None] * 50),
        }
    )
    frame.loc[0, "a"] = np.nan
    form = to_json_form(frame)
    assert form == {
        "type": "DataFrame",
        "shape": [100, 3],
        "columns": ["a", "b", "when"],
        "head": [
            {"a": None, "b": "x", "when": "2024-01-01T00:00:00"},
            {"a": 1.0, "b": None, "when": None},
            {"a": 2.0, "b": "x", "when": "2024-01-01T00:00:00"},
            {"a": 3.0, "b": None, "when": None},
            {"a": 4.0, "b": "x", "when": "2024-01-01T00:00:00"},
        ],
    }
    assert len(form["head"]) == HEAD_ROWS


def test_series_large_arrays_figures_models_dataclasses_and_objects():
    series = pd.Series([1.0, None, 3.0], name="s", index=["p", "q", "r"])
    assert to_json_form(series) == {
        "type": "Series",
        "name": "s",
        "shape": [3],
        "dtype": "float64",
        "head": [1.0, None, 3.0],
        "index": ["p", "q", "r"],
    }
    big = np.zeros((ARRAY_LIST_LIMIT + 1,), dtype=np.float32)
    assert to_json_form(big) == {
        "type": "ndarray",
        "shape": [ARRAY_LIST_LIMIT + 1],
        "dtype": "float32",
        "size": ARRAY_LIST_LIMIT + 1,
        "head": [0.0] * 10,
    }

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2)
    axes[0].set_title("left")
    assert to_json_form(figure) == {
        "type": "Figure",
        "size_inches": [6.4, 4.8],
        "axes": 2,
        "titles": ["left"],
    }
    plt.close(figure)

    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = RandomForestClassifier(n_estimators=3, random_state=0)
    form = to_json_form(model)
    assert form["type"] == "RandomForestClassifier" and form["fitted"] is False
    assert form["params"]["n_estimators"] == 3
    model.fit([[0.0], [1.0]], [0, 1])
    assert to_json_form(model)["fitted"] is True
    pipeline = to_json_form(make_pipeline(StandardScaler(), model))
    assert pipeline["type"] == "Pipeline"
    _json(pipeline)

    @dataclasses.dataclass
    class Point:
        x: float
        tags: set

    assert to_json_form(Point(float("nan"), {"b", "a"})) == {
        "type": "Point",
        "fields": {"x": None, "tags": ["a", "b"]},
    }
    lock = threading.Lock()
    form = to_json_form(lock)
    assert form["type"] == "_thread.lock" and form["repr"].startswith("<unlocked _thread.lock")


def test_forms_stay_small_and_never_raise():
    class Hostile:
        def __repr__(self):
            raise RuntimeError("no repr for you")

    assert to_json_form(Hostile())["type"].endswith("Hostile")
    huge = pd.DataFrame(np.zeros((1_000_000, 4)), columns=list("abcd"))
    assert len(_json(huge)) < 1000
    assert len(_json(np.zeros(5_000_000))) < 1000
    looped: list = []
    looped.append(looped)
    _json(looped)  # a list that holds itself: cut off, not a RecursionError


def test_preview_for_the_widget():
    frame = pd.DataFrame({"a": range(1000), "b": ["<script>x</script>"] * 1000})
    shown = preview(frame)
    assert shown["type"] == "DataFrame" and shown["shape"] == [1000, 2]
    assert shown["html"].count("<tr") == HEAD_ROWS + 1  # the header and the first rows
    assert "<script>" not in shown["html"] and "&lt;script&gt;" in shown["html"]
    assert shown["text"] == "DataFrame 1000x2 (a, b)"

    array = preview(np.arange(1_000_000, dtype=np.int32))
    assert array["shape"] == [1_000_000] and array["dtype"] == "int32"
    assert array["text"].startswith("ndarray int32 1000000: [0, 1, 2")
    assert len(json.dumps(array)) < 1000

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([1, 3, 2])
    image = preview(figure)
    plt.close(figure)
    png = base64.b64decode(image["png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 512 * 1024

    assert summary_line({"a": 1}) == "{'a': 1}"


def test_pickling_error_is_one_line_and_cheap_for_arrays():
    assert pickling_error(np.zeros(10_000_000)) is None  # out-of-band buffers: no copy
    assert pickling_error(pd.DataFrame({"a": [1]})) is None
    line = pickling_error({"ok": 1, "bad": threading.Lock()})
    assert line is not None and "\n" not in line
    assert line.startswith("PicklingError: the result (a dict) cannot be pickled")


# -- the CLI ----------------------------------------------------------------------------------------
FRAMES = textwrap.dedent(
    """\
    import numpy as np
    import pandas as pd


    def frame():
        return pd.DataFrame({"city": ["Paris", "Lima"], "temp": [21.5, float("nan")]})


    def array():
        return np.arange(6).reshape(2, 3)


    def mean(df):
        return df["temp"].mean()  # a numpy float64
    """
)

FRAMES_WF = textwrap.dedent(
    """\
    name: frames
    tasks:
      frame: {action: "frames:frame", on_success: mean}
      mean: {action: "frames:mean", input: {df: "{{ task.frame.result }}"}}
      array: {action: "frames:array"}
    output_map:
      frame: "{{ task.frame.result }}"
      mean: "{{ task.mean.result }}"
      array: "{{ task.array.result }}"
    """
)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=inline_env(tmp_path), cwd=tmp_path)


EXPECTED_FRAME = {
    "type": "DataFrame",
    "shape": [2, 2],
    "columns": ["city", "temp"],
    "head": [{"city": "Paris", "temp": 21.5}, {"city": "Lima", "temp": None}],
}


def test_run_and_show_json_print_json_forms(tmp_path):
    (tmp_path / "frames.py").write_text(FRAMES)
    (tmp_path / "frames.yaml").write_text(FRAMES_WF)
    ran = _cli(tmp_path, "run", "frames.yaml", "--json")
    assert ran.returncode == 0, ran.stderr
    data = json.loads(ran.stdout)  # strict: NaN would not parse as JSON elsewhere
    assert "NaN" not in ran.stdout
    assert data["outputs"] == {
        "frame": EXPECTED_FRAME,
        "mean": 21.5,
        "array": [[0, 1, 2], [3, 4, 5]],
    }
    results = {t["task"]: t["result"] for t in data["tasks"]}
    assert results["frame"] == EXPECTED_FRAME and results["array"] == [[0, 1, 2], [3, 4, 5]]

    shown = _cli(tmp_path, "show", data["run_id"], "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["outputs"] == data["outputs"]

    human = _cli(tmp_path, "show", data["run_id"])
    assert "result: DataFrame 2x2 (city, temp)" in human.stdout, human.stdout


# -- the widget (what the kernel sends the browser) -------------------------------------------------
def test_the_widget_gets_a_bounded_view_of_each_result(engine):
    import jupyter_workflows as jw
    from jupyter_workflows.jupyter.live import bind_run

    @jw.task(name="vd_frame")
    def big_frame() -> pd.DataFrame:
        return pd.DataFrame(
            {"x": np.arange(200_000), "y": np.random.default_rng(1).random(200_000)}
        )

    @jw.task(name="vd_figure")
    def figure() -> object:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots()
        axes.plot([3, 1, 2])
        return fig

    @jw.task(name="vd_array")
    def array() -> np.ndarray:
        return np.ones((1000, 1000))

    wf = jw.load(
        "name: views\ntasks:\n  frame: {action: vd_frame}\n  fig: {action: vd_figure}\n"
        "  arr: {action: vd_array}\n"
    )
    run = wf.run()
    assert run.status == "succeeded", run.error
    binding = bind_run(run)
    status = binding.widget.status
    frame = status["frame"]["result_view"]
    assert frame["shape"] == [200_000, 2] and frame["html"].count("<tr") == HEAD_ROWS + 1
    assert base64.b64decode(status["fig"]["result_view"]["png"])[:4] == b"\x89PNG"
    arr = status["arr"]["result_view"]
    assert arr["shape"] == [1000, 1000] and arr["dtype"] == "float64"
    assert arr["text"].startswith("ndarray float64 1000x1000: [1.0, 1.0")
    # What crosses to the browser is small: the traits as JSON, whole.
    assert len(json.dumps(status)) < 200_000
