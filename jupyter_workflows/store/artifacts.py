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

Big results: references instead of values
    A task result above a size threshold (:data:`DEFAULT_THRESHOLD`, 1 MiB) is written *by the
    worker that made it* (:func:`offload`) to an artifact location: any fsspec URL, by default
    the store's artifact folder, in the same ``<digest[:2]>/<digest>.pkl`` layout (the digest
    is XXH3-128 there: hashing must not cost as much as the write). The engine only ever sees
    an :class:`ArtifactRef` (type, size, shape and dtype where they exist, content hash,
    location), which the store keeps as ``{"__jw_ref__": digest, "hash": ..., "type": ...,
    "size": ..., "location": ...}`` and reads back as an :class:`ArtifactRef` again: never the value, so
    resuming or listing a run never loads it. On the worker that made it the reference still
    holds the value in memory (not pickled with it), so a downstream task there gets it without
    a read; anywhere else :meth:`ArtifactRef.load` reads the file. :func:`resolve` swaps
    references for values where a value is needed (a task's arguments, ``Run.outputs``).

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
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle

from ..exceptions import StoreError

__all__ = [
    "ARTIFACT_KEY",
    "DEFAULT_THRESHOLD",
    "DICT_KEY",
    "PICKLE_KEY",
    "REF_KEY",
    "ArtifactRef",
    "ResultNotLoaded",
    "contains_refs",
    "decode",
    "encode",
    "json_loader",
    "location_url",
    "might_need_decoding",
    "offload",
    "resolve",
]

ARTIFACT_KEY = "__jw_artifact__"
"""Marks a value pickled into an artifact file: ``{ARTIFACT_KEY: sha256, "type": name}``."""

PICKLE_KEY = "__jw_pickle__"
"""Marks a small value pickled inline: ``{PICKLE_KEY: base64, "type": name}``."""

DICT_KEY = "__jw_dict__"
"""Marks an escaped user dict that has a marker key: ``{DICT_KEY: [[key, value], ...]}``."""

REF_KEY = "__jw_ref__"
"""Marks a reference to a result a worker wrote: ``{REF_KEY: sha256, "type": name, ...}``."""

_MARKERS = frozenset({ARTIFACT_KEY, PICKLE_KEY, DICT_KEY, REF_KEY})
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
        if REF_KEY in data:
            return ArtifactRef.from_marker(data)
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
    if kind is ArtifactRef:
        return value.marker()
    if kind is dict:
        if all(type(key) is str for key in value):
            if _MARKERS.isdisjoint(value):
                # None, strings and booleans inline: most fields of an event are one of them.
                return {
                    key: item
                    if item is None or type(item) is str or type(item) is bool
                    else _encode(item, artifact_dir, inline_limit)
                    for key, item in value.items()
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
    if REF_KEY in data:
        return ArtifactRef.from_marker(data)
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


# -- big results: written by the worker, referred to by the engine ----------------------------

DEFAULT_THRESHOLD = 1024 * 1024
"""Results whose pickle is larger than this many bytes are written by the worker (1 MiB)."""

#: Most column names (or other labels) a reference keeps as its preview.
_PREVIEW_LABELS = 1000


class ResultNotLoaded(ValueError):
    """A template read into a big result, of which the engine holds only a reference.

    Not a :class:`~jupyter_workflows.exceptions.WorkflowError` and not an ``AttributeError`` /
    ``LookupError``: the template sandbox must neither swallow it (as an undefined attribute)
    nor let it escape unexplained; it becomes the template's one-line error.
    """


class ArtifactRef:
    """A result written to an artifact location by the worker that made it.

    Attributes
    ----------
    digest
        Content hash of the pickle, hex (the file's name).
    hash_name
        Which hash: ``xxh3_128`` (``sha256`` where the worker lacks ``xxhash``).
    location
        fsspec URL of the file (``file:///...``, ``memory://...``, ``s3://...``).
    type_name
        The value's type, ``module.Class`` (``numpy.ndarray``, ``pandas.core.frame.DataFrame``).
    nbytes
        Size of the pickle in bytes.
    shape, dtype
        Where the value has them (arrays, frames, series): a tuple of ints, and a string.
    preview
        Small facts templates may read without loading the value: ``columns`` of a DataFrame,
        ``name`` of a Series, ``length`` of a sized container.

    In the process that made it, a reference also holds the value itself (never pickled with
    it): a downstream task on the same Dask worker gets the value without reading the file.
    """

    __slots__ = (
        "_value",
        "digest",
        "dtype",
        "hash_name",
        "location",
        "nbytes",
        "preview",
        "shape",
        "type_name",
    )

    def __init__(
        self,
        digest: str,
        location: str,
        type_name: str,
        nbytes: int,
        shape: tuple[int, ...] | None = None,
        dtype: str | None = None,
        preview: dict[str, Any] | None = None,
        value: Any = None,
        hash_name: str = "sha256",
    ) -> None:
        self.digest = digest
        self.hash_name = hash_name
        self.location = location
        self.type_name = type_name
        self.nbytes = int(nbytes)
        self.shape = tuple(shape) if shape is not None else None
        self.dtype = dtype
        self.preview = dict(preview) if preview else {}
        self._value = value

    # -- identity: the content, never the held value ------------------------------------------
    def __reduce__(self) -> tuple[Any, ...]:
        return (
            ArtifactRef,
            (
                self.digest,
                self.location,
                self.type_name,
                self.nbytes,
                self.shape,
                self.dtype,
                self.preview or None,
                None,
                self.hash_name,
            ),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ArtifactRef):
            return NotImplemented
        return self.digest == other.digest and self.location == other.location

    def __hash__(self) -> int:
        return hash((self.digest, self.location))

    def __repr__(self) -> str:
        facts = [self.type_name]
        if self.shape is not None:
            facts.append("x".join(map(str, self.shape)) or "()")
        if self.dtype:
            facts.append(self.dtype)
        facts.append(_human(self.nbytes))
        return f"<artifact {' '.join(facts)} {self.hash_name}:{self.digest[:12]}>"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return True

    # -- what templates may read ------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        preview = object.__getattribute__(self, "preview")
        if name in preview:
            return preview[name]
        raise ResultNotLoaded(self._not_loaded(f".{name}"))

    def __getitem__(self, key: Any) -> Any:
        raise ResultNotLoaded(self._not_loaded(f"[{key!r}]"))

    def __len__(self) -> int:
        if "length" in self.preview:
            return int(self.preview["length"])
        raise ResultNotLoaded(self._not_loaded("| length"))

    def __iter__(self) -> Any:
        raise ResultNotLoaded(self._not_loaded("(iterating)"))

    def _not_loaded(self, what: str) -> str:
        known = ["shape"] if self.shape is not None else []
        known += ["dtype"] if self.dtype is not None else []
        known += sorted(self.preview)
        can = f" (it can read {', '.join(known)})" if known else ""
        return (
            f"a template cannot read into {what!s} of a {_human(self.nbytes)} "
            f"{self.type_name} result kept in artifact storage{can}; pass the result whole to "
            f"a task (input: {{x: '{{{{ task.NAME.result }}}}'}}) and compute it there"
        )

    # -- the value ----------------------------------------------------------------------------
    @property
    def held(self) -> bool:
        """Whether this reference holds the value in memory (the process that made it)."""
        return self._value is not None

    def load(self) -> Any:
        """The value: the one held in memory, else read from :attr:`location`.

        Raises
        ------
        StoreError
            The artifact is missing or cannot be read or unpickled.
        """
        if self._value is not None:
            return self._value
        return _read_ref(self)

    def summary(self) -> dict[str, Any]:
        """A JSON-able description (what ``--json`` and the REST API show instead of the value)."""
        out: dict[str, Any] = {"type": self.type_name, "artifact": True, "bytes": self.nbytes}
        if self.shape is not None:
            out["shape"] = list(self.shape)
        if self.dtype is not None:
            out["dtype"] = self.dtype
        out.update(self.preview)
        out["digest"] = f"{self.hash_name}:{self.digest}"
        out["location"] = self.location
        return out

    def json_form(self) -> dict[str, Any]:
        """What JSON outputs show (``--json``, REST): the value's short type and the facts
        known without loading it (``shape``, ``dtype``, ``columns``, ...), and where it is."""
        out: dict[str, Any] = {"type": self.type_name.rpartition(".")[2]}
        if self.shape is not None:
            out["shape"] = list(self.shape)
        if self.dtype is not None:
            out["dtype"] = self.dtype
        out.update(self.preview)
        out["artifact"] = {
            "type": self.type_name,
            "bytes": self.nbytes,
            "digest": f"{self.hash_name}:{self.digest}",
            "location": self.location,
        }
        return out

    # -- stored form ----------------------------------------------------------------------------
    def marker(self) -> dict[str, Any]:
        """How stores keep it (JSON): ``{REF_KEY: digest, "hash", "type", "size", "location",
        ...}``."""
        out: dict[str, Any] = {
            REF_KEY: self.digest,
            "hash": self.hash_name,
            "type": self.type_name,
            "size": self.nbytes,
            "location": self.location,
        }
        if self.shape is not None:
            out["shape"] = list(self.shape)
        if self.dtype is not None:
            out["dtype"] = self.dtype
        if self.preview:
            out["preview"] = self.preview
        return out

    @classmethod
    def from_marker(cls, data: dict[str, Any]) -> ArtifactRef:
        try:
            return cls(
                str(data[REF_KEY]),
                str(data["location"]),
                str(data.get("type") or "object"),
                int(data.get("size") or 0),
                shape=tuple(int(n) for n in data["shape"])
                if data.get("shape") is not None
                else None,
                dtype=data.get("dtype"),
                preview=data.get("preview") or None,
                hash_name=str(data.get("hash") or "sha256"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"a stored artifact reference is damaged: {exc}") from exc


def _human(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover - unreachable


def location_url(location: str | os.PathLike[str]) -> str:
    """An artifact location as a URL: a plain path becomes an absolute ``file://`` URL."""
    text = os.fspath(location)
    if "://" in text:
        return text.rstrip("/")
    return Path(os.path.abspath(os.path.expanduser(text))).as_uri()


def _filesystem(location: str) -> tuple[Any, str, bool]:
    """``(fsspec filesystem, root path in it, is the local file system)``."""
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    fs, root = fsspec.core.url_to_fs(location)
    return fs, root.rstrip("/"), isinstance(fs, LocalFileSystem)


def _ref_facts(value: Any) -> tuple[tuple[int, ...] | None, str | None, dict[str, Any]]:
    """Shape, dtype and a small preview of ``value``, where it has them (never raises)."""
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    preview: dict[str, Any] = {}
    try:
        raw_shape = getattr(value, "shape", None)
        if isinstance(raw_shape, tuple) and all(isinstance(n, int) for n in raw_shape):
            shape = tuple(int(n) for n in raw_shape)
        raw_dtype = getattr(value, "dtype", None)
        if raw_dtype is not None and not callable(raw_dtype):
            dtype = str(raw_dtype)
        columns = getattr(value, "columns", None)
        if columns is not None and shape is not None and len(shape) == 2:
            labels = list(columns)[:_PREVIEW_LABELS]
            preview["columns"] = [
                c if isinstance(c, (str, int, float, bool)) else str(c) for c in labels
            ]
        name = getattr(value, "name", None)
        if shape is not None and len(shape) == 1 and isinstance(name, (str, int)):
            preview["name"] = name
        if isinstance(value, (bytes, bytearray, str, list, tuple, dict, set, frozenset)):
            preview["length"] = len(value)
    except Exception:  # a preview is a convenience: never fail a result over it
        pass
    return shape, dtype, preview


def _content_hasher() -> tuple[str, Any]:
    """The content hash of worker-written artifacts: XXH3-128 (about 10x faster than SHA-256,
    which would otherwise cost as much as writing the file), or SHA-256 without ``xxhash``.
    Not a defence against crafted collisions: stores, like pickles, are for trusted data."""
    try:
        import xxhash
    except ImportError:  # pragma: no cover - a declared dependency
        return "sha256", hashlib.sha256()
    return "xxh3_128", xxhash.xxh3_128()


class _HashingWriter:
    """A file-like sink for :func:`pickle.dump`: hashes and counts what it writes."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.hash_name, self.hasher = _content_hasher()
        self.nbytes = 0

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if size >= _PARALLEL_HASH_BYTES:
            # Both release the GIL on big buffers: hash while the OS takes the bytes.
            hashing = threading.Thread(target=self.hasher.update, args=(data,))
            hashing.start()
            try:
                written = self.handle.write(data)
            finally:
                hashing.join()
        else:
            self.hasher.update(data)
            written = self.handle.write(data)
        self.nbytes += size
        return written if written is not None else size


#: Buffers from this size on are hashed in a thread while they are written.
_PARALLEL_HASH_BYTES = 8 * 1024 * 1024


def write_ref(value: Any, location: str, payload: bytes | None = None) -> ArtifactRef:
    """Pickle ``value`` into the artifact location (content-addressed, written once) and
    return a reference that also holds ``value``.

    Local files are streamed to a temporary name while hashed, fsynced, and renamed into place
    (the folder fsynced too), so the file is durable before any event that refers to it is
    committed and a reader never sees a partial artifact. Other file systems get the pickle in
    one ``pipe`` call, skipped when the file already exists. ``payload``: the pickle, when the
    caller has it already.

    Raises
    ------
    StoreError
        ``value`` cannot be pickled, or the location cannot be written.
    """
    import cloudpickle

    type_name = _type_name(value)
    fs, root, local = _filesystem(location)
    try:
        if local:
            os.makedirs(root, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".jw-", suffix=".tmp", dir=root)
            try:
                with os.fdopen(fd, "wb") as handle:
                    sink = _HashingWriter(handle)
                    if payload is None:
                        cloudpickle.dump(value, sink, protocol=5)
                    else:
                        sink.write(payload)
                    handle.flush()
                    os.fsync(handle.fileno())
                digest, hash_name = sink.hasher.hexdigest(), sink.hash_name
                path = artifact_path(root, digest)
                if path.exists():
                    os.unlink(tmp)
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, path)
                    _fsync_dir(path.parent)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            nbytes = sink.nbytes
        else:
            if payload is None:
                payload = cloudpickle.dumps(value, protocol=5)
            hash_name, hasher = _content_hasher()
            hasher.update(payload)
            digest = hasher.hexdigest()
            nbytes = len(payload)
            target = f"{root}/{digest[:2]}/{digest}.pkl"
            if not fs.exists(target):
                fs.makedirs(f"{root}/{digest[:2]}", exist_ok=True)
                fs.pipe_file(target, payload)
    except OSError as exc:
        raise StoreError(
            f"{location}: cannot write the artifact of a {type_name} result: {exc.strerror or exc}"
        ) from exc
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(
            f"cannot store a result of type {type_name}: {type(exc).__name__}: {exc}"
        ) from exc
    shape, dtype, preview = _ref_facts(value)
    return ArtifactRef(
        digest,
        location_url(location) if local else location.rstrip("/"),
        type_name,
        nbytes,
        shape=shape,
        dtype=dtype,
        preview=preview,
        value=value,
        hash_name=hash_name,
    )


def _read_ref(ref: ArtifactRef) -> Any:
    import cloudpickle

    where = f"{ref.location}/{ref.digest[:2]}/{ref.digest}.pkl"
    try:
        fs, root, local = _filesystem(ref.location)
        path = f"{root}/{ref.digest[:2]}/{ref.digest}.pkl"
        if local:
            with open(path, "rb") as handle:
                return cloudpickle.load(handle)
        with fs.open(path, "rb") as handle:
            return cloudpickle.loads(handle.read())
    except FileNotFoundError:
        raise StoreError(f"{where}: the artifact of a {ref.type_name} result is missing") from None
    except OSError as exc:
        raise StoreError(f"{where}: cannot read artifact: {exc.strerror or exc}") from exc
    except Exception as exc:
        raise StoreError(
            f"cannot load a {ref.type_name} result ({where}): {type(exc).__name__}: {exc}"
        ) from exc


def _big_enough(value: Any, threshold: int) -> bool:
    """Whether ``value`` may pickle to more than ``threshold`` bytes (cheap, may say yes wrongly:
    :func:`offload` only writes what really is that big)."""
    if value is None or (_is_json_scalar(value) and not isinstance(value, str)):
        return False
    if isinstance(value, (str, bytes, bytearray)):
        return len(value) > threshold
    nbytes = getattr(value, "nbytes", None)  # numpy, pyarrow, torch have it
    if isinstance(nbytes, int):
        return nbytes > threshold // 2
    try:
        from dask.sizeof import sizeof
    except ImportError:  # pragma: no cover - dask is a dependency
        return True
    try:
        return sizeof(value) > threshold // 2 or type(value).__module__ not in _SIZED_MODULES
    except Exception:
        return True


#: Modules whose values ``dask.sizeof`` measures well: a small estimate there is to be trusted.
_SIZED_MODULES = frozenset({"builtins", "numpy", "pandas.core.frame", "pandas.core.series"})


def offload(value: Any, location: str, threshold: int = DEFAULT_THRESHOLD) -> Any:
    """``value`` with every part above ``threshold`` pickled bytes written to ``location`` and
    replaced by an :class:`ArtifactRef` (which still holds it, in this process).

    Plain dicts (``str`` keys) and lists are walked, so ``{"model": <big>, "score": 0.93}``
    keeps ``score`` readable by templates; anything else is one value. Small parts are left
    as they are.

    Raises
    ------
    StoreError
        A big part cannot be pickled or written.
    """
    kind = type(value)
    if kind is ArtifactRef:
        return value
    if kind is dict and all(type(k) is str for k in value):
        out = {k: offload(v, location, threshold) for k, v in value.items()}
        return out if any(out[k] is not value[k] for k in value) else value
    if kind is list:
        items = [offload(v, location, threshold) for v in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    if not _big_enough(value, threshold):
        return value
    if isinstance(value, (str, bytes, bytearray)) or getattr(value, "nbytes", None) is not None:
        return write_ref(value, location)
    import cloudpickle

    try:
        payload = cloudpickle.dumps(value, protocol=5)
    except Exception as exc:
        raise StoreError(
            f"cannot store a result of type {_type_name(value)}: {type(exc).__name__}: {exc}"
        ) from exc
    return write_ref(value, location, payload) if len(payload) > threshold else value


def contains_refs(value: Any) -> bool:
    """Whether ``value`` is, or holds in plain dicts, lists or tuples, an :class:`ArtifactRef`."""
    kind = type(value)
    if kind is ArtifactRef:
        return True
    if kind is dict:
        return any(contains_refs(v) for v in value.values())
    if kind is list or kind is tuple:
        return any(contains_refs(v) for v in value)
    return False


def resolve(value: Any) -> Any:
    """``value`` with every :class:`ArtifactRef` (in plain dicts, lists, tuples) loaded."""
    kind = type(value)
    if kind is ArtifactRef:
        return value.load()
    if not contains_refs(value):
        return value
    if kind is dict:
        return {k: resolve(v) for k, v in value.items()}
    if kind is list:
        return [resolve(v) for v in value]
    return tuple(resolve(v) for v in value)
