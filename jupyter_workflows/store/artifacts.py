"""Value encoding for stores that keep JSON: what JSON can hold stays JSON, the rest is pickled.

:func:`encode` turns any Python value into a JSON-able structure; :func:`decode` turns it back.
The rule is *exact round trips*: a value is kept as JSON only when ``json.loads(json.dumps(v))``
gives back an identical value, checked node by node with exact types:

- ``dict`` with ``str`` keys, ``list``, ``str``, ``int``, finite ``float``, ``bool``, ``None`` stay
  as they are (containers are walked, so an event dict stays readable JSON even when one of its
  values is not JSON);
- everything else is cloudpickled: a ``tuple`` (JSON would make it a list), a ``set``, ``bytes``,
  a dict with non-``str`` keys, subclasses of the JSON types (``OrderedDict``, ``IntEnum``), NaN
  and infinities, ints too long for ``json`` (more than 4300 digits), instances of any class.

A pickled value is stored in one of two ways, chosen by its size:

- up to ``inline_limit`` bytes (default 64 KiB), **inline**, base64 in the JSON:
  ``{"__jw_pickle__": "<base64>", "type": "set"}``. Small values are the common case (a tuple, a
  few bytes, a datetime); inline they cost no file and no fsync, and are committed atomically
  with the row that holds them. An fsync per file costs milliseconds, which would cap a run at a
  few hundred such results a second; and SQLite reads blobs below about 100 KB faster from the
  database than from separate files ("Internal Versus External BLOBs", sqlite.org).
- larger, as a **content-addressed artifact file** ``<artifact_dir>/<sha256[:2]>/<sha256>.pkl``,
  replaced by ``{"__jw_artifact__": "<sha256>", "type": "<type name>"}``. Equal values share one
  file. The file is written to a temporary name, fsynced, and renamed into place
  (``os.replace``), so a reader never sees a partial artifact; since it is written (and fsynced)
  before the row that refers to it is committed, a committed row never points at a missing
  artifact, even after a power loss. A crash between the two leaves an unreferenced file, which
  is harmless.

A user dict that happens to have one of the marker keys (``__jw_artifact__``, ``__jw_pickle__``,
``__jw_dict__``) is escaped as ``{"__jw_dict__": [[key, value], ...]}``, so decoding is never
ambiguous.

Pickles are read back with ``cloudpickle``, i.e. :mod:`pickle`: only open stores you trust (the
same is true of the code the store keeps for resuming runs).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle

from ..exceptions import StoreError

__all__ = [
    "ARTIFACT_KEY",
    "DICT_KEY",
    "PICKLE_KEY",
    "decode",
    "encode",
    "json_loader",
    "might_need_decoding",
]

ARTIFACT_KEY = "__jw_artifact__"
"""Marks a value pickled into an artifact file: ``{ARTIFACT_KEY: sha256, "type": name}``."""

PICKLE_KEY = "__jw_pickle__"
"""Marks a small value pickled inline: ``{PICKLE_KEY: base64, "type": name}``."""

DICT_KEY = "__jw_dict__"
"""Marks an escaped user dict that has a marker key: ``{DICT_KEY: [[key, value], ...]}``."""

_MARKERS = frozenset({ARTIFACT_KEY, PICKLE_KEY, DICT_KEY})
_MARKER_PREFIX = "__jw_"

#: ``json`` refuses to write ints of more than 4300 digits (``sys.set_int_max_str_digits``);
#: 13000 bits is below that limit with room to spare.
_MAX_JSON_INT_BITS = 13_000

DEFAULT_INLINE_LIMIT = 64 * 1024
"""Pickles up to this many bytes are kept inline; larger ones go to artifact files."""


def encode(
    value: Any, artifact_dir: str | os.PathLike[str], *, inline_limit: int = DEFAULT_INLINE_LIMIT
) -> Any:
    """A JSON-able structure that :func:`decode` turns back into ``value``.

    Parameters
    ----------
    value
        Any picklable (by cloudpickle) Python value.
    artifact_dir
        Folder of the artifact files; created when the first large value is written.
    inline_limit
        Pickles up to this many bytes are kept inline (base64) instead of in a file.

    Raises
    ------
    StoreError
        ``value`` (or a part of it) cannot be pickled; the message names its type.
    """
    return _encode(value, artifact_dir, inline_limit)


def decode(data: Any, artifact_dir: str | os.PathLike[str]) -> Any:
    """The value that :func:`encode` encoded as ``data`` (a freshly built object).

    Raises
    ------
    StoreError
        An artifact file is missing, or a pickle cannot be loaded (for example its class's module
        cannot be imported in this process); the message names the value's type.
    """
    return _decode(data, artifact_dir)


def json_loader(artifact_dir: str | os.PathLike[str]) -> Callable[[str], Any]:
    """A function that parses JSON text written from :func:`encode`'s output and decodes it.

    Faster than ``decode(json.loads(text))``: plain JSON is parsed with no decoding step at all,
    and marked values are decoded by an ``object_hook`` while the C parser runs, instead of by a
    second walk over the whole value. (Hooks run innermost first, so an escaped user dict is
    rebuilt from pairs whose values are already decoded.)
    """
    plain = json.JSONDecoder()

    def hook(data: dict[str, Any]) -> Any:
        if PICKLE_KEY in data or ARTIFACT_KEY in data:
            return _decode(data, artifact_dir)
        if DICT_KEY in data:
            return dict(data[DICT_KEY])
        return data

    marked = json.JSONDecoder(object_hook=hook)

    def loads(text: str) -> Any:
        return (marked if _MARKER_PREFIX in text else plain).decode(text)

    return loads


def might_need_decoding(json_text: str) -> bool:
    """False when JSON text surely holds no markers, so :func:`decode` would return it unchanged.

    A cheap substring test that lets readers skip walking plain JSON.
    """
    return _MARKER_PREFIX in json_text


def _is_json_scalar(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return value.bit_length() <= _MAX_JSON_INT_BITS
    if kind is float:
        return math.isfinite(value)
    return False


def _encode(value: Any, artifact_dir: str | os.PathLike[str], inline_limit: int) -> Any:
    kind = type(value)
    if kind is dict:
        if all(type(key) is str for key in value):
            if _MARKERS.isdisjoint(value):
                return {
                    key: _encode(item, artifact_dir, inline_limit) for key, item in value.items()
                }
            return {
                DICT_KEY: [
                    [key, _encode(item, artifact_dir, inline_limit)] for key, item in value.items()
                ]
            }
        return _pickle(value, artifact_dir, inline_limit)
    if kind is list:
        return [_encode(item, artifact_dir, inline_limit) for item in value]
    if _is_json_scalar(value):
        return value
    return _pickle(value, artifact_dir, inline_limit)


def _type_name(value: Any) -> str:
    kind = type(value)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _pickle(value: Any, artifact_dir: str | os.PathLike[str], inline_limit: int) -> dict[str, str]:
    type_name = _type_name(value)
    try:
        payload = cloudpickle.dumps(value)
    except Exception as exc:
        raise StoreError(
            f"cannot store a value of type {type_name}: {type(exc).__name__}: {exc}"
        ) from exc
    if len(payload) <= inline_limit:
        return {PICKLE_KEY: base64.b64encode(payload).decode("ascii"), "type": type_name}
    digest = hashlib.sha256(payload).hexdigest()
    _write_artifact(artifact_dir, digest, payload)
    return {ARTIFACT_KEY: digest, "type": type_name}


def artifact_path(artifact_dir: str | os.PathLike[str], digest: str) -> Path:
    """Where the artifact with SHA-256 ``digest`` lives."""
    return Path(artifact_dir) / digest[:2] / f"{digest}.pkl"


def _write_artifact(artifact_dir: str | os.PathLike[str], digest: str, payload: bytes) -> None:
    path = artifact_path(artifact_dir, digest)
    if path.exists():  # content-addressed: an existing file already holds these bytes
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{digest[:16]}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(path.parent)
    except OSError as exc:
        raise StoreError(f"{path}: cannot write artifact: {exc.strerror or exc}") from exc


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open folders; NTFS journals the rename itself
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _decode(data: Any, artifact_dir: str | os.PathLike[str]) -> Any:
    kind = type(data)
    if kind is list:
        return [_decode(item, artifact_dir) for item in data]
    if kind is not dict:
        return data
    if PICKLE_KEY in data:
        try:
            payload = base64.b64decode(data[PICKLE_KEY])
        except (ValueError, TypeError) as exc:
            raise StoreError(f"stored value of type {data.get('type')} is damaged: {exc}") from exc
        return _unpickle(payload, data.get("type"), "inline value")
    if ARTIFACT_KEY in data:
        digest = data[ARTIFACT_KEY]
        path = artifact_path(artifact_dir, digest)
        try:
            payload = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(
                f"{path}: artifact of a stored value of type {data.get('type')} is missing"
            ) from None
        except OSError as exc:
            raise StoreError(f"{path}: cannot read artifact: {exc.strerror or exc}") from exc
        return _unpickle(payload, data.get("type"), f"artifact {path}")
    if DICT_KEY in data:
        return {key: _decode(item, artifact_dir) for key, item in data[DICT_KEY]}
    return {key: _decode(item, artifact_dir) for key, item in data.items()}


def _unpickle(payload: bytes, type_name: str | None, where: str) -> Any:
    try:
        return cloudpickle.loads(payload)
    except Exception as exc:
        raise StoreError(
            f"cannot load a stored value of type {type_name} ({where}): {type(exc).__name__}: {exc}"
        ) from exc
