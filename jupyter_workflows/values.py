"""Task results as users have them: any picklable value, shown in JSON and in the widget.

A task may return anything :mod:`cloudpickle` can pickle: numbers, strings, numpy arrays and
scalars, pandas DataFrames and Series, pyarrow tables, scikit-learn estimators, matplotlib
figures, torch tensors, dataclasses, sets, tuples, bytes. The engine passes the value itself to
the tasks after it and the store keeps it exactly (see :mod:`jupyter_workflows.store.artifacts`),
so ``Run.outputs`` and ``jw.get_run(id)`` in another process give back an equal value of the
same type. Nothing here, nor in the store or the state machine, compares a user value with
``==``: a DataFrame's ``==`` is not a bool, and a value's type is its business.

This module holds the three things every surface needs to know about values, in one place:

- :func:`pickling_error`: whether a result can leave its task (be stored, cross processes);
  an attempt whose result cannot is failed with that one line, on every executor.
- :func:`to_json_form`: what ``run --json``, ``show --json``, the REST API and the widget show.
  JSON-native forms where a value has one (a numpy array as a list, a numpy scalar as a number,
  NaN as ``null``), else a small typed summary (a DataFrame as ``{"type": "DataFrame", "shape",
  "columns", "head"}``), never a multi-megabyte blob.
- :func:`preview`: what the widget's task panel shows: an HTML table for a DataFrame's first rows,
  a PNG for a figure, a line of shape, dtype and first values for an array.

No third-party library is imported here: a value's type says which library made it, and that
library is already imported when such a value exists (``numpy`` is looked up in
:data:`sys.modules`, never imported for a value that is not an array).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import io
import math
import pathlib
import reprlib
import sys
import uuid
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ARRAY_LIST_LIMIT",
    "HEAD_ROWS",
    "pickling_error",
    "preview",
    "summary_line",
    "to_json_form",
    "type_name",
]

ARRAY_LIST_LIMIT = 10_000
"""Arrays (and tensors) of at most this many elements are shown as (nested) lists; larger
ones as ``{"type": "ndarray", "shape", "dtype", "head"}`` with the first values."""

HEAD_ROWS = 5
"""Rows of a DataFrame, table or Series shown in ``head``."""

_HEAD_VALUES = 10
_MAX_DEPTH = 64
_REPR_CHARS = 200
_PNG_LIMIT = 512 * 1024  # a figure's PNG larger than this is not sent to the browser
_HTML_LIMIT = 64 * 1024

_short = reprlib.Repr()
_short.maxstring = _short.maxother = _REPR_CHARS
_short.maxlist = _short.maxdict = _short.maxtuple = _short.maxset = 20


def type_name(value: Any) -> str:
    """The value's class name (``DataFrame``, ``ndarray``, ``LogisticRegression``)."""
    return type(value).__name__


def _qualified(value: Any) -> str:
    kind = type(value)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _safe_repr(value: Any) -> str:
    try:
        return _short.repr(value)
    except Exception:
        return f"<{type_name(value)}>"


# -- can it leave the task? --------------------------------------------------------------------
def pickling_error(value: Any) -> str | None:
    """None when ``value`` can be pickled, else one line saying why it cannot.

    Pickled as it will be when stored or sent (cloudpickle, protocol 5) but with out-of-band
    buffers, so numpy arrays and the numeric blocks of a DataFrame are not copied: checking a
    large array costs little. ``None``, ``bool``, ``int``, ``float`` and ``str`` are not pickled.

    >>> pickling_error([1, 2]) is None
    True
    >>> import threading
    >>> pickling_error(threading.Lock())
    "PicklingError: the result (a lock) cannot be pickled, so it cannot be stored or sent: TypeError: cannot pickle '_thread.lock' object"
    """
    if value is None or type(value) in (bool, int, float, str):
        return None
    import cloudpickle

    try:
        cloudpickle.dumps(value, protocol=5, buffer_callback=_drop)
    except Exception as exc:  # whatever __reduce__ raises
        from .exceptions import error_line

        return (
            f"PicklingError: the result (a {type_name(value)}) cannot be pickled, "
            f"so it cannot be stored or sent: {error_line(exc)}"
        )
    return None


def _drop(_buffer: Any) -> None:
    """A buffer callback that keeps nothing (the pickle is only a check)."""


# -- JSON forms ------------------------------------------------------------------------------
def to_json_form(value: Any) -> Any:
    """``value`` as JSON data (dicts, lists, str, finite numbers, bools, None); never raises.

    - JSON values stay as they are; a float NaN or infinity becomes ``None`` (``null``);
    - tuples, sets and frozensets become lists (sets sorted when their items can be);
      dict keys become strings;
    - numpy scalars become numbers (or bools, strings); numpy arrays of at most
      :data:`ARRAY_LIST_LIMIT` elements become nested lists, larger ones
      ``{"type": "ndarray", "shape", "dtype", "size", "head"}``; torch tensors likewise
      (``"type": "Tensor"``);
    - a pandas DataFrame (or pyarrow Table) becomes ``{"type": "DataFrame", "shape", "columns",
      "head"}`` where ``head`` is its first :data:`HEAD_ROWS` rows as records; a Series
      ``{"type": "Series", "name", "shape", "dtype", "head"}``; an Index like a Series;
    - a matplotlib figure ``{"type": "Figure", "size_inches", "axes", "titles"}``; a
      scikit-learn estimator ``{"type": <class>, "module", "params", "fitted"}``;
    - a dataclass ``{"type": <class>, "fields": {...}}``; bytes ``{"type": "bytes", "size",
      "head"}`` (hex); datetimes, dates and times ISO strings; ``Decimal``, ``UUID`` and paths
      strings; an enum member its value;
    - anything else ``{"type": <module.Class>, "repr": <short repr>}``.
    """
    try:
        return _form(value, 0)
    except Exception:  # a value whose own methods raise: say what it is
        return {"type": _qualified(value), "repr": _safe_repr(value)}


def _form(value: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return {"type": _qualified(value), "repr": _safe_repr(value)}
    kind = type(value)
    if value is None or kind is str or kind is bool:
        return value
    if kind is int:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping) and not _is_pandas(value):
        return {_key(k): _form(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_form(v, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        items = list(value)
        try:
            items.sort()
        except TypeError:
            pass
        return [_form(v, depth + 1) for v in items]
    if isinstance(value, bool):  # a subclass
        return bool(value)
    if isinstance(value, enum.Enum):
        return _form(value.value, depth + 1)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return str(value)
    if kind.__name__ == "ArtifactRef" and kind.__module__ == "jupyter_workflows.store.artifacts":
        return value.json_form()  # a big result kept by the workers: described, never loaded
    module = kind.__module__.partition(".")[0]
    if module == "numpy":
        return _numpy_form(value, depth)
    if module == "pandas":
        return _pandas_form(value, depth)
    if module == "pyarrow" and kind.__name__ in ("Table", "RecordBatch"):
        return _frame_summary(
            value.to_pandas(), depth, "Table" if kind.__name__ == "Table" else kind.__name__
        )
    if module == "torch" and kind.__name__ in ("Tensor", "Parameter"):
        return _tensor_form(value, depth)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value[:32]) if not isinstance(value, memoryview) else value[:32].tobytes()
        return {"type": kind.__name__, "size": len(value), "head": data.hex()}
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (decimal.Decimal, uuid.UUID, pathlib.PurePath)):
        return str(value)
    if isinstance(value, complex):
        return {
            "type": "complex",
            "real": _form(value.real, depth),
            "imag": _form(value.imag, depth),
        }
    if _is_figure(value):
        return _figure_summary(value)
    if _is_estimator(value):
        return _estimator_summary(value, depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "type": kind.__name__,
            "fields": {
                f.name: _form(getattr(value, f.name, None), depth + 1)
                for f in dataclasses.fields(value)
            },
        }
    return {"type": _qualified(value), "repr": _safe_repr(value)}


def _key(key: Any) -> str:
    if isinstance(key, str):
        return str(key)
    if key is None or isinstance(key, (bool, int, float)):
        return __import__("json").dumps(key)  # as json.dumps writes such keys
    return str(key)


def _is_pandas(value: Any) -> bool:
    return type(value).__module__.startswith("pandas")


def _numpy_form(value: Any, depth: int) -> Any:
    np = sys.modules.get("numpy")
    if np is None:  # pragma: no cover - a numpy value without numpy imported
        return {"type": _qualified(value), "repr": _safe_repr(value)}
    if isinstance(value, np.generic):
        return _form(value.item(), depth + 1)
    if isinstance(value, np.ndarray):
        if value.size <= ARRAY_LIST_LIMIT:
            return _form(value.tolist(), depth + 1)
        return {
            "type": "ndarray",
            "shape": list(value.shape),
            "dtype": str(value.dtype),
            "size": int(value.size),
            "head": _form(value.ravel()[:_HEAD_VALUES].tolist(), depth + 1),
        }
    return {"type": _qualified(value), "repr": _safe_repr(value)}


def _tensor_form(value: Any, depth: int) -> Any:
    tensor = value.detach().cpu()
    if tensor.numel() <= ARRAY_LIST_LIMIT:
        return _form(tensor.tolist(), depth + 1)
    return {
        "type": "Tensor",
        "shape": list(tensor.shape),
        "dtype": str(tensor.dtype).replace("torch.", ""),
        "size": int(tensor.numel()),
        "head": _form(tensor.flatten()[:_HEAD_VALUES].tolist(), depth + 1),
    }


def _pandas_form(value: Any, depth: int) -> Any:
    name = type(value).__name__
    if name == "DataFrame":
        return _frame_summary(value, depth, "DataFrame")
    if name == "Series" or name.endswith("Index"):
        head = value[:HEAD_ROWS] if name.endswith("Index") else value.iloc[:HEAD_ROWS]
        out: dict[str, Any] = {
            "type": "Series" if name == "Series" else name,
            "name": _form(value.name, depth + 1),
            "shape": list(value.shape),
            "dtype": str(value.dtype),
            "head": _form(_cells(head.tolist()), depth + 1),
        }
        if name == "Series":
            out["index"] = _form(_cells(head.index.tolist()), depth + 1)
        return out
    if name == "Timestamp":
        return value.isoformat()
    if name in ("Timedelta", "Period"):
        return str(value)
    if name in ("NaTType", "NAType"):
        return None
    return {"type": _qualified(value), "repr": _safe_repr(value)}


def _frame_summary(frame: Any, depth: int, label: str) -> dict[str, Any]:
    head = frame.iloc[:HEAD_ROWS]
    columns = [_key(c) for c in frame.columns]
    records = [
        dict(zip(columns, (_form(_cell(v), depth + 1) for v in row), strict=True))
        for row in head.itertuples(index=False, name=None)
    ]
    return {"type": label, "shape": list(frame.shape), "columns": columns, "head": records}


def _cell(value: Any) -> Any:
    """A DataFrame cell: pandas' missing markers (``NaT``, ``NA``) and NaN as None."""
    try:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if type(value).__name__ in ("NaTType", "NAType"):
            return None
    except Exception:
        pass
    return value


def _cells(values: list[Any]) -> list[Any]:
    return [_cell(v) for v in values]


def _is_figure(value: Any) -> bool:
    return any(
        c.__name__ in ("Figure", "SubFigure") and c.__module__.startswith("matplotlib")
        for c in type(value).__mro__
    )


def _figure_summary(figure: Any) -> dict[str, Any]:
    axes = list(getattr(figure, "axes", []))
    return {
        "type": "Figure",
        "size_inches": [float(x) for x in figure.get_size_inches()],
        "axes": len(axes),
        "titles": [ax.get_title() for ax in axes if ax.get_title()],
    }


def _is_estimator(value: Any) -> bool:
    return any(
        c.__name__ == "BaseEstimator" and c.__module__.startswith("sklearn")
        for c in type(value).__mro__
    )


def _estimator_summary(model: Any, depth: int) -> dict[str, Any]:
    try:
        params = model.get_params(deep=False)
    except Exception:
        params = {}
    fitted = any(name.endswith("_") and not name.startswith("_") for name in vars(model))
    return {
        "type": type(model).__name__,
        "module": type(model).__module__,
        "params": {k: _param(v, depth) for k, v in params.items()},
        "fitted": fitted,
    }


def _param(value: Any, depth: int) -> Any:
    if _is_estimator(value):
        return {"type": type(value).__name__}
    return _form(value, depth + 1)


# -- the widget ------------------------------------------------------------------------------
def summary_line(value: Any, limit: int = 200) -> str:
    """One short line saying what ``value`` is: ``DataFrame 150x5 (sepal_length, ...)``,
    ``ndarray float64 (2, 3): [0.0, 1.0, ...]``, else a short repr. Never raises."""
    try:
        text = _summary(value)
    except Exception:
        text = _safe_repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _summary(value: Any) -> str:
    if type(value).__name__ == "ArtifactRef":
        return repr(value)  # <artifact numpy.ndarray 1000x1000 float64 8.0 MB xxh3_128:...>
    form = to_json_form(value)
    if isinstance(form, dict) and "type" in form and not isinstance(value, Mapping):
        kind = form["type"]
        if "columns" in form:
            rows, cols = form["shape"]
            return f"{kind} {rows}x{cols} ({', '.join(form['columns'][:8])})"
        if "dtype" in form and "shape" in form:
            shape = "x".join(map(str, form["shape"]))
            return f"{kind} {form['dtype']} {shape}: {form['head']}"
        if kind == "Figure":
            return f"Figure {form['axes']} axes" + (
                f": {', '.join(form['titles'])}" if form["titles"] else ""
            )
        if "params" in form:
            return f"{kind} ({'fitted' if form['fitted'] else 'not fitted'})"
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.ndarray):
        shape = "x".join(map(str, value.shape))
        return f"ndarray {value.dtype} {shape}: {_safe_repr(value.ravel()[:_HEAD_VALUES].tolist())}"
    return _safe_repr(value)


def preview(value: Any) -> dict[str, Any]:
    """What the widget's task panel shows for a result; small, and never raises.

    ``{"type": <class>, "text": <summary line>}`` always, plus, where the value has one:

    - ``"html"``: a DataFrame's or Series' first :data:`HEAD_ROWS` rows as an HTML table (pandas'
      own ``to_html``, escaped), a pyarrow table's likewise;
    - ``"png"``: a matplotlib figure rendered as a base64 PNG at 72 dpi (none above 512 KiB);
    - ``"shape"`` and ``"dtype"`` for arrays, tensors and frames.
    """
    out: dict[str, Any] = {"type": type_name(value), "text": summary_line(value)}
    try:
        module = type(value).__module__.partition(".")[0]
        if module == "pyarrow" and type(value).__name__ in ("Table", "RecordBatch"):
            out["shape"] = [value.num_rows, value.num_columns]
            value = value.slice(0, HEAD_ROWS).to_pandas()
            module = "pandas"
        if module == "pandas" and type(value).__name__ in ("DataFrame", "Series"):
            out.setdefault("shape", list(value.shape))
            if type(value).__name__ == "Series":
                out["dtype"] = str(value.dtype)
            table = value.head(HEAD_ROWS).to_html(
                max_cols=20, border=0, escape=True, classes="jw-table"
            )
            if len(table) <= _HTML_LIMIT:
                out["html"] = table
        elif module in ("numpy", "torch") and hasattr(value, "shape") and hasattr(value, "dtype"):
            out["shape"] = list(value.shape)
            out["dtype"] = str(value.dtype).replace("torch.", "")
        elif _is_figure(value):
            buffer = io.BytesIO()
            value.savefig(buffer, format="png", dpi=72)
            if buffer.tell() <= _PNG_LIMIT:
                out["png"] = base64.b64encode(buffer.getvalue()).decode("ascii")
    except Exception:  # a preview is a nicety: the summary line stays
        pass
    return out
