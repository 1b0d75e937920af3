"""Every example in ``docs/language.md`` is checked by the real CLI, so the reference cannot rot.

Fenced blocks and what happens to them (the words after the language are markers):

- ```` ```yaml ````: a whole workflow; ``jupyter-workflows validate`` must exit 0 with nothing on
  stderr. It is written as ``NAME.yaml`` (NAME from its ``name:``), so an example can nest
  another one by name.
- ```` ```yaml warns ````: valid, with warnings on stderr (exit 0).
- ```` ```yaml expect-error ````: refused (exit 2, one line). When a ```` ```text ```` block
  follows it, that block is the exact message.
- ```` ```yaml no-validate ````: a fragment; it only has to be YAML. Use sparingly.
- ```` ```json ````: a whole workflow, validated like YAML (written as ``NAME.json``).
- ```` ```python file=NAME.py ````: written beside the workflows, so actions can import it.
"""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import jupyter_workflows as jw
from jupyter_workflows.testing import run_cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "language.md"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```$", re.M | re.S)


@dataclass
class Block:
    lang: str
    markers: list[str]
    text: str
    line: int  # where the block starts in the doc, for messages

    @property
    def file(self) -> str | None:
        for marker in self.markers:
            if marker.startswith("file="):
                return marker[len("file=") :]
        return None


def blocks() -> list[Block]:
    source = DOC.read_text(encoding="utf-8")
    out = []
    for match in FENCE.finditer(source):
        info = match.group(1).split()
        lang, markers = (info[0], info[1:]) if info else ("", [])
        out.append(Block(lang, markers, match.group(2), source.count("\n", 0, match.start()) + 1))
    return out


BLOCKS = blocks()
KNOWN_MARKERS = {"warns", "expect-error", "no-validate"}


def workflow_blocks() -> list[Block]:
    return [b for b in BLOCKS if b.lang in ("yaml", "json") and "no-validate" not in b.markers]


def example_name(block: Block) -> str:
    data = json.loads(block.text) if block.lang == "json" else yaml.safe_load(block.text)
    assert isinstance(data, dict) and isinstance(data.get("name"), str), (
        f"docs/language.md:{block.line}: an example needs a name"
    )
    return data["name"]


def test_the_doc_has_many_examples() -> None:
    assert len(workflow_blocks()) >= 20
    names = [example_name(b) for b in workflow_blocks()]
    assert len(names) == len(set(names)), "example names must be unique (they are file names)"
    for block in BLOCKS:
        if block.lang == "yaml":
            unknown = [m for m in block.markers if m not in KNOWN_MARKERS]
            assert not unknown, f"docs/language.md:{block.line}: unknown marker {unknown}"
        if block.lang == "python":
            assert block.file, f"docs/language.md:{block.line}: a python block needs file=NAME.py"


def test_fragments_are_yaml() -> None:
    fragments = [b for b in BLOCKS if b.lang == "yaml" and "no-validate" in b.markers]
    assert len(fragments) <= 3, "no-validate is for fragments only; use it sparingly"
    for block in fragments:
        assert yaml.safe_load(block.text) is not None, f"docs/language.md:{block.line}"


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, Path]]:
    """All examples written into one folder (so they can nest each other by name)."""
    folder = tmp_path_factory.mktemp("language_examples")
    paths: dict[int, Path] = {}
    for block in BLOCKS:
        if block.lang == "python":
            assert block.file is not None
            (folder / block.file).write_text(block.text, encoding="utf-8")
    for block in workflow_blocks():
        suffix = ".json" if block.lang == "json" else ".yaml"
        path = folder / f"{example_name(block)}{suffix}"
        path.write_text(block.text, encoding="utf-8")
        paths[block.line] = path
    return folder, paths


@pytest.fixture(scope="module")
def validated(
    examples: tuple[Path, dict[int, Path]],
) -> dict[int, subprocess.CompletedProcess[str]]:
    folder, paths = examples

    def validate(path: Path) -> subprocess.CompletedProcess[str]:
        return run_cli("validate", path.name, cwd=folder)

    lines = sorted(paths)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(validate, [paths[line] for line in lines]))
    return dict(zip(lines, results, strict=True))


@pytest.mark.parametrize("block", workflow_blocks(), ids=lambda b: f"line{b.line}")
def test_example_validates(
    block: Block,
    examples: tuple[Path, dict[int, Path]],
    validated: dict[int, subprocess.CompletedProcess[str]],
) -> None:
    result = validated[block.line]
    where = f"docs/language.md:{block.line}"
    if "expect-error" in block.markers:
        assert result.returncode == 2, f"{where}: expected an error\n{result.stdout}"
        assert len(result.stderr.splitlines()) == 1, f"{where}: {result.stderr}"
        following = _block_after(block)
        if following is not None and following.lang == "text":
            assert result.stderr.strip() == following.text.strip(), where
        return
    assert result.returncode == 0, f"{where}: {result.stderr}"
    assert "ok (" in result.stdout
    if "warns" in block.markers:
        assert result.stderr, f"{where}: marked 'warns' but validate printed no warning"
        assert all(": warning: " in line for line in result.stderr.splitlines()), result.stderr
    else:
        assert result.stderr == "", f"{where}: {result.stderr}"


@pytest.mark.parametrize(
    "block",
    [b for b in workflow_blocks() if "expect-error" not in b.markers],
    ids=lambda b: f"line{b.line}",
)
def test_example_round_trips(block: Block, examples: tuple[Path, dict[int, Path]]) -> None:
    _, paths = examples
    workflow = jw.load(paths[block.line])
    again = jw.load(workflow.to_yaml())
    assert again == workflow
    assert again.compiled.tasks == workflow.compiled.tasks


def _block_after(block: Block) -> Block | None:
    later = [b for b in BLOCKS if b.line > block.line]
    return later[0] if later else None


def test_expect_error_example_message_is_shown() -> None:
    """The doc shows the exact error of its broken example (checked above)."""
    broken = [b for b in BLOCKS if "expect-error" in b.markers]
    assert broken
    for block in broken:
        following = _block_after(block)
        assert following is not None and following.lang == "text"
