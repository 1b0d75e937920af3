"""Value encoding: JSON stays JSON, everything else round-trips exactly through pickles."""

from __future__ import annotations

import collections
import datetime
import enum
import json
import os
import subprocess
import sys
import textwrap
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_workflows.exceptions import StoreError
from jupyter_workflows.store import artifacts
from jupyter_workflows.store.artifacts import (
    ARTIFACT_KEY,
    DICT_KEY,
    PICKLE_KEY,
    artifact_path,
    decode,
    encode,
    json_loader,
    might_need_decoding,
)


class Color(enum.IntEnum):
    RED = 1


class Tagged(str):
    """A str subclass: JSON would lose the subclass."""


def assert_same(actual: Any, expected: Any) -> None:
    """Equal, and of the same types all the way down."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert_same(actual[key], expected[key])
    elif isinstance(expected, list | tuple):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    elif isinstance(expected, float) and expected != expected:
        assert actual != actual
    else:
        assert actual == expected


def round_trip(value: Any, folder: Path, **kwargs: Any) -> Any:
    """Through JSON text, both ways of reading it back (which must agree)."""
    encoded = encode(value, folder, **kwargs)
    text = json.dumps(encoded, allow_nan=False)  # strict JSON, always
    decoded = decode(json.loads(text), folder)
    assert_same(json_loader(folder)(text), decoded)
    return decoded


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

any_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary(max_size=20)
    | st.dates()
    | st.decimals(allow_nan=False)
    | st.sampled_from([Color.RED, Tagged("t"), frozenset({1, 2})]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=8) | st.integers(), children, max_size=4)
        | st.dictionaries(st.sampled_from([ARTIFACT_KEY, PICKLE_KEY, DICT_KEY, "x"]), children)
    ),
    max_leaves=20,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values)
def test_json_values_stay_json(tmp_path: Path, value: Any) -> None:
    assert_same(encode(value, tmp_path), value)
    assert_same(round_trip(value, tmp_path), value)
    assert list(tmp_path.iterdir()) == []  # no artifact files


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=any_values)
def test_any_value_round_trips_exactly(tmp_path: Path, value: Any) -> None:
    assert_same(round_trip(value, tmp_path), value)
    assert_same(round_trip(value, tmp_path, inline_limit=0), value)  # every pickle a file


@pytest.mark.parametrize(
    "value",
    [
        (1, 2),
        {1, 2},
        b"bytes",
        {1: "int key"},
        collections.OrderedDict(a=1),
        collections.defaultdict(list, a=[1]),
        Color.RED,
        Tagged("x"),
        float("inf"),
        float("nan"),
        10**5000,  # longer than json writes
        Decimal("1.10"),
        datetime.datetime(2024, 1, 2, 3, 4, 5),
    ],
    ids=lambda value: type(value).__name__,
)
def test_non_json_values_are_pickled(tmp_path: Path, value: Any) -> None:
    encoded = encode(value, tmp_path)
    assert set(encoded) == {PICKLE_KEY, "type"}
    assert_same(decode(encoded, tmp_path), value)


def test_only_the_non_json_parts_are_pickled(tmp_path: Path) -> None:
    event = {"type": "task_succeeded", "task": "t", "result": {"rows": [1, 2], "pair": (1, 2)}}
    encoded = encode(event, tmp_path)
    assert encoded["type"] == "task_succeeded" and encoded["result"]["rows"] == [1, 2]
    assert encoded["result"]["pair"]["type"] == "tuple"
    assert_same(decode(encoded, tmp_path), event)


def test_type_names(tmp_path: Path) -> None:
    assert encode({1}, tmp_path)["type"] == "set"
    assert encode(Color.RED, tmp_path)["type"] == f"{__name__}.Color"


def test_user_dicts_with_marker_keys_are_escaped(tmp_path: Path) -> None:
    for key in (ARTIFACT_KEY, PICKLE_KEY, DICT_KEY):
        value = {key: "abc", "type": "set", "nested": {key: [1]}}
        encoded = encode(value, tmp_path)
        assert set(encoded) == {DICT_KEY}
        assert_same(decode(encoded, tmp_path), value)


def test_large_values_go_to_content_addressed_files(tmp_path: Path) -> None:
    big = {"blob": bytes(range(256)) * 400}
    encoded = encode([big, big["blob"]], tmp_path)
    digest = encoded[1][ARTIFACT_KEY]
    assert encoded[1]["type"] == "bytes"
    path = artifact_path(tmp_path, digest)
    assert path == tmp_path / digest[:2] / f"{digest}.pkl"
    assert path.is_file()
    assert encode(big["blob"], tmp_path) == encoded[1]  # the same bytes, the same file
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [path.name]  # no temp files
    assert decode(encoded, tmp_path) == [big, big["blob"]]


def test_artifact_files_are_fsynced_and_renamed_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1]
    )
    encode(b"x" * 100, tmp_path, inline_limit=10)
    assert calls == ["fsync", "replace", "fsync"]  # the file, the rename, then its folder


def test_a_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(StoreError, match="cannot write artifact: No space left on device"):
        encode(b"x" * 100, tmp_path, inline_limit=10)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_unpicklable_values_raise_a_one_line_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"cannot store a value of type _thread\.lock") as info:
        encode({"ok": 1, "lock": threading.Lock()}, tmp_path)
    assert "\n" not in str(info.value)


def test_a_missing_artifact_is_a_store_error(tmp_path: Path) -> None:
    encoded = encode(b"x" * 100, tmp_path, inline_limit=10)
    artifact_path(tmp_path, encoded[ARTIFACT_KEY]).unlink()
    with pytest.raises(StoreError, match="artifact of a stored value of type bytes is missing"):
        decode(encoded, tmp_path)


def test_a_value_whose_class_cannot_be_imported_is_a_store_error(tmp_path: Path) -> None:
    module = tmp_path / "gone_module.py"
    module.write_text("class Thing:\n    pass\n")
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(tmp_path)!r})
        import gone_module
        from jupyter_workflows.store.artifacts import encode
        print(json.dumps(encode(gone_module.Thing(), {str(tmp_path)!r})))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    with pytest.raises(StoreError, match=r"type gone_module\.Thing.*ModuleNotFoundError") as info:
        decode(json.loads(out), tmp_path)
    assert "\n" not in str(info.value)


def test_classes_defined_in_main_travel_by_value(tmp_path: Path) -> None:
    """A notebook's class (``__main__``) is pickled by value: another process can load it."""
    script = textwrap.dedent(
        f"""
        import json
        from jupyter_workflows.store.artifacts import encode

        class Thing:
            def __init__(self):
                self.n = 42

        print(json.dumps(encode(Thing(), {str(tmp_path)!r})))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert decode(json.loads(out), tmp_path).n == 42


def test_might_need_decoding() -> None:
    assert not might_need_decoding('{"a": [1, 2]}')
    assert might_need_decoding('{"x": {"__jw_pickle__": "..."}}')


def test_default_inline_limit_keeps_small_values_in_the_json(tmp_path: Path) -> None:
    encoded = encode(bytes(artifacts.DEFAULT_INLINE_LIMIT - 100), tmp_path)
    assert PICKLE_KEY in encoded
    encoded = encode(bytes(artifacts.DEFAULT_INLINE_LIMIT + 100), tmp_path)
    assert ARTIFACT_KEY in encoded
