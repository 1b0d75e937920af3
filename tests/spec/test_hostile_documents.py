"""Hostile and broken documents (issue 11): one positioned line each, bounded time and memory.

Each repro of the issue is a case here: YAML alias and merge bombs, nesting, scalar tags PyYAML's
constructors choke on, huge and multi-line keys echoed back, ``jw.load`` handed a special file or a
name too long for the OS, and a ``decision`` with 20,000 entries (once quadratic).
"""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import pytest

import jupyter_workflows as jw
from jupyter_workflows.exceptions import SpecError
from jupyter_workflows.limits import LIMITS, configure
from jupyter_workflows.spec.loader import load_spec
from jupyter_workflows.testing import run_cli

TAIL = "tasks: {t: {action: core.noop}}\n"


def one_line_error(text: str, *, file: str = "f.yaml", seconds: float = 60.0) -> SpecError:
    """Load ``text``; it must fail with one positioned line, within bounded time and memory."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(SpecError) as info:
            load_spec(text, file=file)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - start
    error = info.value
    assert "\n" not in str(error) and "\r" not in str(error)
    assert len(str(error)) < 1200, str(error)[:300]
    assert error.line is not None and error.col is not None, str(error)
    assert str(error).startswith(f"{file}:{error.line}:{error.col}: ")
    assert elapsed < seconds, f"{elapsed:.1f}s"
    assert peak < 400 * 2**20 + 8 * len(text), f"{peak / 2**20:.0f} MiB"
    return error


def billion_laughs(levels: int) -> str:
    lines = ["name: a", "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n" + TAIL


@pytest.mark.parametrize("levels", [7, 9])
def test_billion_laughs_is_refused_at_once(levels: int) -> None:
    # 496 bytes once grew to 5.1 GB; 7 levels took 18 s and 1.6 GB
    error = one_line_error(billion_laughs(levels), seconds=30)
    assert "aliases expand" in error.message and "alias_expansion_factor" in error.message


def test_aliases_within_the_factor_still_load() -> None:
    text = "name: a\nx-common: &c {action: core.noop, retry: 2}\ntasks:\n" + "".join(
        f"  t{i}: *c\n" for i in range(50)
    )
    with pytest.raises(SpecError, match="unknown field 'x-common'"):
        load_spec(text)  # built fine: only the unknown field is wrong


def test_merge_key_bomb_is_linear() -> None:
    # each level merges the previous one twice: PyYAML's flatten_mapping doubled every level
    text = "name: a\nm0: &m0 {a: 1, b: 2}\n" + "".join(
        f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}\n" for i in range(1, 40)
    )
    error = one_line_error(text + TAIL, seconds=30)
    assert "unknown field 'm0'" in error.message  # the document was built, in bounded time


def test_merge_keys_keep_yaml_semantics() -> None:
    text = (
        "name: a\n"
        "tasks:\n"
        "  base: &base {action: core.echo, input: {x: 1}, retry: 1}\n"
        "  other: &other {action: core.noop, retry: 5}\n"
        "  t:\n"
        "    <<: [*base, *other]\n"  # the first mapping listed wins
        "    retry: 3\n"  # a key written here wins over merged ones
    )
    spec, _ = load_spec(text)
    t = spec.tasks["t"]
    assert t.action == "core.echo" and t.input == {"x": 1}
    assert t.retry.count == 3


@pytest.mark.parametrize(
    ("text", "at", "says"),
    [
        ("name: a\nx: !!int x\n", "2:4", "'x' is not a valid !!int"),
        ("name: a\nx: !!float abc\n", "2:4", "'abc' is not a valid !!float"),
        ("name: a\nx: !!bool maybe\n", "2:4", "'maybe' is not a valid !!bool"),
        ("name: a\nx: !!timestamp 2020-13-45\n", "2:4", "not a valid !!timestamp"),
        ("name: a\nx: " + "9" * 5000 + "\n", "2:4", "integer literal of 5,000 characters"),
        ("name: a\n<<: 5\n", "2:5", "merge key (<<) takes a mapping"),
        ("name: a\n<<: [1]\n", "2:6", "merge key (<<) takes a mapping"),
        ("name: a\nx: &a {<<: *a}\n", "2:4", "merges a mapping into itself"),
        ("name: a\n!!int 7x: 1\n", "2:1", "not a valid !!int"),
        ("name: a\n? [a, b]\n: 1\n", "2:3", "mapping key must be a plain value"),
        ("name: a\nx: !custom 1\n", "2:4", "invalid value"),
    ],
)
def test_scalar_and_merge_errors_are_one_positioned_line(text: str, at: str, says: str) -> None:
    error = one_line_error(text + TAIL)
    assert f"{error.line}:{error.col}" == at, str(error)
    assert says in error.message, str(error)


def test_nesting_is_bounded_block_and_flow() -> None:
    flow = one_line_error("name: a\nx: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert "nests too deeply" in flow.message and "document_nesting" in flow.message
    block = "name: a\nx:\n" + "".join("  " * i + "- \n" for i in range(1, 300))
    assert "nests too deeply" in one_line_error(block).message


def test_json_body_nesting_is_bounded() -> None:
    error = one_line_error('{"name": "a", "x": ' + "[" * 50_000 + "]" * 50_000 + "}", file="f.json")
    assert "nests too deeply" in error.message


def test_document_size_is_bounded_and_configurable() -> None:
    old = LIMITS.document_chars
    configure(document_chars=1000)
    try:
        error = one_line_error("name: a\n" + "# pad\n" * 500 + TAIL)
        assert "document_chars" in error.message and "JUPYTER_WORKFLOWS_LIMIT_DOCUMENT_CHARS" in (
            error.message
        )
    finally:
        configure(document_chars=old)
    load_spec("name: a\n" + "# pad\n" * 500 + TAIL)


def test_multi_line_and_huge_keys_are_one_short_line() -> None:
    error = one_line_error('name: a\n"multi\\nline\\nkey": 1\n' + TAIL)
    assert "multi\\nline" in error.message
    block_key = one_line_error("name: a\n? |\n  multi\n  line\n: 1\n" + TAIL)
    assert block_key.line == 2
    huge = "k" * 200_000
    error = one_line_error('{"name": "a", "' + huge + '": 1, "tasks": {"t": {}}}', file="f.json")
    assert len(str(error)) < 1200


def test_duplicate_huge_key_is_shortened() -> None:
    key = "d" * 1000
    error = one_line_error(f"name: a\n{key[:1000]}: 1\n{key[:1000]}: 2\n" + TAIL)
    assert len(error.message) < 400


def test_validate_cli_prints_one_line_for_a_tag_error(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("name: a\ntasks:\n  t: {action: core.noop, retry: !!int x}\n")
    result = run_cli("validate", str(path))
    assert result.returncode == 2, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"{path}:3:33: invalid value: 'x' is not a valid !!int"], result.stderr


# -- jw.load: path or text, without touching special files ---------------------------------------


def test_load_a_name_too_long_for_the_os_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"File name too long|no such file"):
        jw.load("a" * 300)
    with pytest.raises(SpecError, match=r"File name too long|no such file"):
        jw.load("a" * 300 + ".yaml")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_load_refuses_devices_without_reading_them(device: str) -> None:
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    with pytest.raises(SpecError, match="is a device, not a workflow file"):
        jw.load(device)


def test_load_refuses_a_fifo_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "w.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match="is a FIFO"):
        jw.load(str(fifo))  # opening it would block for ever: nobody writes
    with pytest.raises(SpecError, match="is a FIFO"):
        jw.load(fifo)


def test_load_text_with_a_newline_or_a_mapping_is_text(tmp_path: Path) -> None:
    assert jw.load("name: one\ntasks: {t: {action: core.noop}}").name == "one"
    with pytest.raises(SpecError, match="<string>:1:1: missing required field 'tasks'"):
        jw.load("name: flow.yaml")  # a one-line mapping is text, even ending in .yaml
    path = tmp_path / "w.yaml"
    path.write_text("name: f\n" + TAIL)
    assert jw.load(str(path)).name == "f"


def test_cli_validate_refuses_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "w.yaml"
    os.mkfifo(fifo)
    result = run_cli("validate", str(fifo))
    assert result.returncode == 2
    assert "FIFO" in result.stderr and "Traceback" not in result.stderr


# -- decision with 20,000 entries: near-linear ---------------------------------------------------


def decision_document(entries: int) -> str:
    lines = ["name: d", "tasks:", "  a:", "    action: core.noop", "    decision:"]
    lines += [f'      - {{when: "{{{{ result == {i} }}}}", next: [b]}}' for i in range(entries)]
    lines += ["      - {default: [c]}", "  b: {action: core.noop}", "  c: {action: core.noop}"]
    return "\n".join(lines) + "\n"


def _validate_seconds(entries: int) -> float:
    text = decision_document(entries)
    start = time.process_time()
    jw.load(text).validate()
    return time.process_time() - start


@pytest.mark.slow
def test_decision_with_many_entries_is_near_linear() -> None:
    # 20,000 entries (870 KB) took 25.6 s and 3.2 GB in validate: each compiled entry repeated
    # every earlier condition, so the templates to compile and evaluate grew as N²/2.
    workflow = jw.load(decision_document(20_000))
    whens = [t.when for t in workflow.compiled.tasks["a"].next]
    assert len(whens) == 20_001
    assert max(len(w) for w in whens) < 60, max(whens, key=len)[:200]
    # and validating 10x the entries costs about 10x (quadratic would be 100x); CPU time
    small, large = _validate_seconds(300), _validate_seconds(3000)
    assert large < small * 40, (small, large)


def test_decision_is_first_match_in_the_engine() -> None:
    from jupyter_workflows.engine.rehearsal import rehearse

    text = """\
name: d
tasks:
  a:
    action: core.noop
    decision:
      - {when: "{{ result == 1 }}", next: [one]}
      - {when: "{{ result == 2 }}", next: [two]}
      - {when: "{{ result > 1 }}", next: [three]}
      - {default: [other]}
  one: {action: core.noop}
  two: {action: core.noop}
  three: {action: core.noop}
  other: {action: core.noop}
"""
    assert rehearse(text, {"a": 2}).sequence == ["a", "two"]
    assert rehearse(text, {"a": 3}).sequence == ["a", "three"]
    assert rehearse(text, {"a": 0}).sequence == ["a", "other"]
