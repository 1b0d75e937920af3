"""Shared fixtures of the notebook-surface tests: a real IPython shell with the extension."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    """The real IPython shell (the class a kernel wraps), history in memory, with
    ``%load_ext jupyter_workflows``: the magics as a notebook user has them."""
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=config)
    ip.run_line_magic("load_ext", "jupyter_workflows")
    return ip


@pytest.fixture
def ip(shell: InteractiveShell, engine: Any) -> Iterator[InteractiveShell]:
    """The shell, with a fresh in-process engine (from tests/conftest.py) for each test."""
    yield shell
