"""Shared fixtures for the notebook tests: a real IPython shell with the extension loaded.

``InteractiveShell.instance()`` is the same shell class a kernel wraps: cells go through its
input transformers, magics registry, ``UsageError`` handling and display publisher as in a
notebook. It is a process-wide singleton, so every test module gets the same shell.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    """The shell, its history in memory, with ``%load_ext jupyter_workflows`` done."""
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=config)
    ip.run_line_magic("load_ext", "jupyter_workflows")
    return ip


@pytest.fixture
def ip(shell: InteractiveShell, engine: Any) -> Iterator[InteractiveShell]:
    """The shell, with a fresh in-process engine (from tests/conftest.py) for each test."""
    yield shell
