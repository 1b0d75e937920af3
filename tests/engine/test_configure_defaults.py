"""``jw.configure(x=None)`` goes back to the default for ``x``; an argument not given keeps its
setting (audit D17)."""

from __future__ import annotations

from pathlib import Path

from jupyter_workflows.engine import api


def test_configure_none_goes_back_to_the_defaults(tmp_path):
    api.configure(store=str(tmp_path / "x.db"), scheduler="tcp://127.0.0.1:1")
    assert api._config == {"store": str(tmp_path / "x.db"), "scheduler": "tcp://127.0.0.1:1"}
    api.configure(scheduler=None)
    assert api._config == {"store": str(tmp_path / "x.db")}
    api.configure(store=None)
    assert api._config == {}
    assert Path(api.current_store().path) == (tmp_path / api.DEFAULT_STORE).resolve()


def test_configure_keeps_what_is_not_given(tmp_path):
    api.configure(store=str(tmp_path / "x.db"), executor="inline")
    api.configure(store=str(tmp_path / "y.db"))
    assert api._config == {"store": str(tmp_path / "y.db"), "executor": "inline"}
    api.configure(scheduler="tcp://127.0.0.1:1")  # a scheduler means Dask
    assert "executor" not in api._config
    api.configure(executor="inline")
    api.configure(executor=None)
    assert api._config == {"store": str(tmp_path / "y.db"), "scheduler": "tcp://127.0.0.1:1"}
