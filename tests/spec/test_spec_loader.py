"""The loader: YAML/JSON -> models, every error one positioned line.

The corpus in ``bad/`` goes through the real CLI (``python -m jupyter_workflows validate``), as a
user would see it: exit 2, one line on stderr, ``FILE:LINE:COL: message`` at the position
``bad/EXPECTED.yaml`` names. The subprocesses run concurrently (one per file) to keep this fast.
"""

from __future__ import annotations

import pickle
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

import jupyter_workflows as jw
from jupyter_workflows import SpecError
from jupyter_workflows.spec.loader import SourceMap, load_spec, parse_document
from jupyter_workflows.testing import run_cli

BAD = Path(__file__).parent / "bad"
EXPECTED: dict[str, dict[str, str]] = yaml.safe_load((BAD / "EXPECTED.yaml").read_text())
CORPUS = sorted(p.name for p in BAD.iterdir() if p.name != "EXPECTED.yaml")


@pytest.fixture(scope="module")
def cli_results() -> dict[str, subprocess.CompletedProcess[str]]:
    def validate(name: str) -> subprocess.CompletedProcess[str]:
        return run_cli("validate", name, cwd=BAD)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(CORPUS, pool.map(validate, CORPUS), strict=True))


def test_corpus_is_large_and_fully_described() -> None:
    assert len(CORPUS) >= 30
    assert sorted(EXPECTED) == CORPUS


@pytest.mark.parametrize("name", CORPUS)
def test_bad_document_through_cli(
    name: str, cli_results: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    result = cli_results[name]
    expected = EXPECTED[name]
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    prefix = f"{name}:{expected['at']}: "
    assert line.startswith(prefix), f"expected {prefix!r}, got {line!r}"
    assert expected["says"].lower() in line.lower(), line
    assert "Traceback" not in line and "internal error" not in line


@pytest.mark.parametrize("name", CORPUS)
def test_bad_document_through_python_api(name: str) -> None:
    """``jw.load`` + ``validate()`` raise the same positioned SpecError as the CLI prints."""
    path = BAD / name
    line, col = (int(n) for n in EXPECTED[name]["at"].split(":"))
    with pytest.raises(SpecError) as info:
        jw.load(path).validate()
    error = info.value
    assert (error.file, error.line, error.col) == (str(path), line, col)
    assert "\n" not in str(error)
    assert str(error).startswith(f"{path}:{line}:{col}: ")


# -- positions and the source map --------------------------------------------------------------


def test_source_map_records_keys_and_values() -> None:
    data, smap = parse_document(
        textwrap.dedent(
            """\
            name: w
            tasks:
              a:
                input: {x: [1, 2]}
            """
        ),
        file="w.yaml",
    )
    assert data == {"name": "w", "tasks": {"a": {"input": {"x": [1, 2]}}}}
    assert smap.file == "w.yaml"
    assert smap.keys[("tasks",)] == (2, 1)
    assert smap.values[("tasks",)] == (3, 3)
    assert smap.keys[("tasks", "a", "input")] == (4, 5)
    assert smap.values[("tasks", "a", "input", "x", 1)] == (4, 20)
    # A path that does not exist falls back to its nearest ancestor.
    assert smap.locate(("tasks", "a", "input", "nope", 3)) == (4, 12)
    assert smap.locate(("tasks", "a"), key=True) == (3, 3)
    error = smap.error("boom", ("name",))
    assert str(error) == "w.yaml:1:7: boom"


def test_block_scalar_lines() -> None:
    text = textwrap.dedent(
        """\
        name: w
        tasks:
          a:
            input:
              literal: |
                one
                two
              folded: >
                three
                four
        """
    )
    _, smap = parse_document(text)
    literal = ("tasks", "a", "input", "literal")
    folded = ("tasks", "a", "input", "folded")
    assert smap.values[literal] == (5, 16)  # the `|`
    assert smap.locate_line(literal, 1) == (6, 9)
    assert smap.locate_line(literal, 2) == (7, 9)
    assert smap.locate_line(folded, 1) == (9, 9)  # folded lines join: the block's first line
    assert smap.locate_line(("name",), 1) == (1, 7)


def test_task_list_positions_move_with_the_tasks() -> None:
    text = textwrap.dedent(
        """\
        name: w
        tasks:
          - name: a
            action: core.noop
            timeout: -1
          - b:
              action: core.noop
        """
    )
    with pytest.raises(SpecError) as info:
        load_spec(text, file="w.yaml")
    assert (info.value.line, info.value.col) == (5, 14)
    spec, smap = load_spec(text.replace("-1", "1"))
    assert list(spec.tasks) == ["a", "b"]
    assert smap.keys[("tasks", "a")] == (3, 5)
    assert smap.values[("tasks", "b", "action")] == (7, 15)


def test_json_document_with_tabs() -> None:
    text = '{\n\t"name": "j",\n\t"tasks": {"a": {"action": "core.noop"}}\n}\n'
    spec, smap = load_spec(text)
    assert spec.tasks["a"].action == "core.noop"
    assert smap.keys[("name",)] == (2, 2)


def test_yaml_merge_keys_and_anchors() -> None:
    spec, _ = load_spec(
        textwrap.dedent(
            """\
            name: w
            vars:
              common: &common {action: core.echo, timeout: 5}
            tasks:
              a: {<<: *common, input: {n: 1}}
              b:
                <<: *common
                timeout: 9
            """
        )
    )
    assert spec.tasks["a"].action == "core.echo"
    assert spec.tasks["a"].timeout == 5
    assert spec.tasks["b"].timeout == 9  # a key written beside a merge overrides it


def test_duplicate_keys_beside_a_merge_still_clash() -> None:
    text = "base: &b {x: 1}\nother:\n  <<: *b\n  y: 1\n  y: 2\n"
    with pytest.raises(SpecError) as info:
        parse_document(text)
    assert (info.value.line, info.value.col) == (5, 3)


def test_non_string_keys_become_strings() -> None:
    data, _ = parse_document("1: a\ntrue: b\n3.5: c\n")
    assert data == {"1": "a", "true": "b", "3.5": "c"}


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("? [a, b]\n: 1\n", (1, 3), "plain value"),
        ("name: !!python/object:os.system x\n", (1, 7), "invalid value"),
        ("a: 1\na: 2\n", (2, 1), "duplicate key 'a'"),
        ("", (1, 1), "empty"),
        ("# only a comment\n", (1, 1), "empty"),
    ],
)
def test_parse_errors(text: str, where: tuple[int, int], says: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_document(text, file="f.yaml")
    assert (info.value.line, info.value.col) == where
    assert says in info.value.message


# -- names, files, the public load() ----------------------------------------------------------


def test_name_from_argument_or_file_stem(tmp_path: Path) -> None:
    body = "tasks:\n  a: {action: core.noop}\n"
    assert jw.load(body, name="given").name == "given"
    with pytest.raises(SpecError, match="missing required field 'name'"):
        jw.load(body)
    path = tmp_path / "nightly-etl.yaml"
    path.write_text(body)
    assert jw.load(path).name == "nightly-etl"
    assert jw.load(str(path)).name == "nightly-etl"
    odd = tmp_path / "9 lives.yml"
    odd.write_text(body)
    assert jw.load(odd).name == "_9_lives"
    # A name in the document wins over the stem.
    path.write_text("name: inside\n" + body)
    assert jw.load(path).name == "inside"


def test_load_keeps_source_and_paths(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    text = "name: w\ntasks:\n  a: {action: core.noop}\n"
    path.write_text(text)
    workflow = jw.load(path)
    assert workflow.source == text
    assert workflow.path == path
    assert workflow.base_dir == tmp_path.resolve()
    assert workflow.source_map.file == str(path)
    assert jw.load(text) == workflow


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        jw.load(tmp_path / "missing.yaml")
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(SpecError, match="is a directory"):
        jw.load(folder)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError, match="not UTF-8"):
        jw.load(path)


def test_load_rejects_other_types() -> None:
    with pytest.raises(SpecError):
        jw.load(42)  # type: ignore[arg-type]


def test_spec_error_shape_and_pickling() -> None:
    error = SpecError("bad thing", file="w.yaml", line=3, col=4)
    assert str(error) == "w.yaml:3:4: bad thing"
    assert str(SpecError("bad thing")) == "bad thing"
    assert str(SpecError("bad thing", file="w.yaml")) == "w.yaml: bad thing"
    assert str(SpecError("bad thing", line=2, col=1)) == "<string>:2:1: bad thing"
    back = pickle.loads(pickle.dumps(error))
    assert (back.message, back.file, back.line, back.col) == ("bad thing", "w.yaml", 3, 4)
    assert isinstance(back, jw.WorkflowError)


def test_text_errors_are_positioned_without_file() -> None:
    with pytest.raises(SpecError) as info:
        jw.load("name: w\ntasks:\n  a: {action: core.noop, timeout: x}\n")
    assert str(info.value).startswith("<string>:3:35: ")


def test_first_error_by_position_wins() -> None:
    text = textwrap.dedent(
        """\
        name: w
        tasks:
          a:
            priority: x
            timeout: y
        zzz: 1
        """
    )
    with pytest.raises(SpecError) as info:
        load_spec(text)
    assert (info.value.line, info.value.col) == (4, 15)


def test_source_map_defaults() -> None:
    smap = SourceMap()
    assert smap.locate(("a", "b")) == (None, None)
    assert str(smap.error("oops")) == "oops"


# -- JSON as JSON reads it -----------------------------------------------------------------------


def test_json_numbers_and_escapes_read_as_json_does() -> None:
    import json

    doc = {
        "name": "j",
        "vars": {"small": 1e-05, "big": -2e300, "emoji": "\U0001f600 ok", "tab": "a\tb"},
        "tasks": {"a": {"action": "core.echo", "input": {"\U0001f600": 1}}},
    }
    text = json.dumps(doc)  # ensure_ascii: \ud83d\ude00 escapes, 1e-05 without a dot
    spec, _ = load_spec(text)
    assert spec.vars == doc["vars"]
    assert spec.tasks["a"].input == {"\U0001f600": 1}
    # YAML keeps YAML 1.1 rules (as yaml.safe_load does): no dot, no float.
    spec, _ = load_spec("name: y\nvars: {small: 1e-05}\ntasks: {a: {}}\n")
    assert spec.vars == {"small": "1e-05"}


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("name: w\x00\n", (1, 8), "#x0000"),
        ("name: w\ntasks:\n  a: {input: {x: '\x9b'}}\n", (3, 19), "#x009b"),
        ("!!python/name:os.system a: 1\n", (1, 1), "invalid key"),
        ("name: !!python/object/apply:os.system [ls]\n", (1, 7), "invalid value"),
    ],
)
def test_characters_and_tags_are_refused_with_a_position(
    text: str, where: tuple[int, int], says: str
) -> None:
    with pytest.raises(SpecError) as info:
        parse_document(text)
    assert (info.value.line, info.value.col) == where
    assert says in info.value.message
