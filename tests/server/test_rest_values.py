"""The REST API shows results as JSON forms (issue 9, point 4), on a real Jupyter server: a
numpy array as a list, a numpy scalar as a number, NaN as ``null``, a DataFrame as ``{"type":
"DataFrame", "shape", "columns", "head"}``; the body is strict JSON (no ``NaN`` token)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

TOKEN = "rest-values-token"

FILES = {
    "frames.py": """\
import numpy as np
import pandas as pd


def frame():
    return pd.DataFrame({"city": ["Paris", "Lima"], "temp": [21.5, float("nan")]})


def stats(df):
    return {"mean": df["temp"].mean(), "hist": np.array([1, 2, 3]), "nan": float("nan")}
""",
    "frames.yaml": """\
name: frames
tasks:
  frame: {action: "frames:frame", on_success: stats}
  stats: {action: "frames:stats", input: {df: "{{ task.frame.result }}"}}
output_map:
  frame: "{{ task.frame.result }}"
  stats: "{{ task.stats.result }}"
""",
}


@pytest.fixture(scope="module")
def server(start_jupyter_server: Any) -> Iterator[Any]:
    with start_jupyter_server(FILES, TOKEN) as running:
        yield running


def test_runs_show_json_forms_of_dataframes_arrays_and_nan(server: Any) -> None:
    response = server.client.post("/workflows/frames/runs", params={"wait": "true"}, json={})
    assert response.status_code in (200, 201), response.text
    assert "NaN" not in response.text
    run = json.loads(response.text)
    assert run["status"] == "succeeded", run
    frame = {
        "type": "DataFrame",
        "shape": [2, 2],
        "columns": ["city", "temp"],
        "head": [{"city": "Paris", "temp": 21.5}, {"city": "Lima", "temp": None}],
    }
    assert run["outputs"] == {
        "frame": frame,
        "stats": {"mean": 21.5, "hist": [1, 2, 3], "nan": None},
    }
    again = server.client.get(f"/runs/{run['run_id']}")
    assert "NaN" not in again.text
    assert again.json()["outputs"] == run["outputs"]
    results = {t["task"]: t["result"] for t in again.json()["tasks"]}
    assert results["frame"] == frame
