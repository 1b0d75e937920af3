"""Fixtures of the browser tests: one JupyterLab server per module (see ``lab_helpers``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lab_helpers import REPO, Lab, start_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """``jupyter lab`` on 127.0.0.1 serving a copy of ``notebooks/quickstart.ipynb``."""
    files = {"quickstart.ipynb": REPO / "notebooks" / "quickstart.ipynb"}
    with start_lab(tmp_path_factory.mktemp("lab"), files=files) as server:
        yield server


@pytest.fixture(scope="module")
def lab_with_extension(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """``jupyter lab`` with this checkout's built extension first on its labextensions path
    (it wins over an installed copy), serving an empty folder."""
    extension = REPO / "jupyter_workflows" / "labextension"
    with start_lab(tmp_path_factory.mktemp("labext"), extension=extension) as server:
        yield server
