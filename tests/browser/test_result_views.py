"""A task's result in the widget's side panel, in a real JupyterLab and headless Chromium
(issue 9, point 4): a DataFrame shows its first rows as a table, a matplotlib figure as an
image, an array its shape, dtype and first values; the whole value never reaches the browser.

Uses the ``lab`` fixture of ``conftest.py`` (one JupyterLab server for this module, tasks in
threads of the kernel) and the browser helpers of ``lab_helpers.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_helpers import (
    Lab,
    assert_no_errors,
    chromium_page,
    code_cell,
    node,
    open_notebook,
    run_all_cells,
    wait_for_status,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

TASKS = """\
import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt


@jw.task
def make_frame() -> pd.DataFrame:
    return pd.DataFrame({"city": [f"city-{i}" for i in range(50_000)], "temp": np.arange(50_000) / 10})


@jw.task
def make_figure():
    figure, axes = plt.subplots(figsize=(3, 2))
    axes.plot([1, 3, 2])
    axes.set_title("trend")
    plt.close(figure)
    return figure


@jw.task
def make_array() -> np.ndarray:
    return np.arange(2_000_000, dtype=np.int32).reshape(1000, 2000)
"""

WORKFLOW = """\
%%workflow views
tasks:
  frame: {action: make_frame}
  figure: {action: make_figure}
  array: {action: make_array}
"""


def test_dataframe_figure_and_array_results_in_the_side_panel(lab: Lab, tmp_path: Path) -> None:
    write_notebook(
        lab,
        "views.ipynb",
        [
            "%load_ext jupyter_workflows\nimport jupyter_workflows as jw",
            TASKS,
            WORKFLOW,
            "run = %workflow run views",
        ],
    )

    with chromium_page(lab, tmp_path) as page:
        open_notebook(page, lab, "views.ipynb")
        run_all_cells(page)
        live = code_cell(page, "%workflow run views").locator('[data-testid="jw-root"]')
        for task in ("frame", "figure", "array"):
            wait_for_status(live, task, "succeeded")

        node(live, "frame").click()
        panel = live.locator('[data-testid="jw-panel"][data-task="frame"]')
        table = panel.locator('[data-testid="jw-result-table"] table')
        table.wait_for()
        rows = table.locator("tbody tr")
        assert rows.count() == 5  # the first rows, not 50,000
        assert "city-0" in rows.first.inner_text()
        assert (
            "DataFrame 50000x2 (city, temp)"
            in panel.locator('[data-testid="jw-result"]').inner_text()
        )

        node(live, "figure").click()
        panel = live.locator('[data-testid="jw-panel"][data-task="figure"]')
        image = panel.locator('img[data-testid="jw-result-image"]')
        image.wait_for()
        assert image.evaluate("img => img.complete && img.naturalWidth") > 100  # a decoded PNG

        node(live, "array").click()
        panel = live.locator('[data-testid="jw-panel"][data-task="array"]')
        text = panel.locator('[data-testid="jw-result"]').inner_text()
        assert text.startswith("ndarray int32 1000x2000: [0, 1, 2"), text
        # What the browser holds of the results is small: no multi-megabyte blob in the page.
        assert len(page.content()) < 3_000_000
        assert_no_errors(page)
