"""An edit session: what an editable graph widget edits, and where accepted edits go.

The widget (:class:`~jupyter_workflows.jupyter.widget.GraphWidget`) keeps the traits and the
messages; this module does the work behind an edit, with no widget in sight:

1. :meth:`EditSession.propose`: apply the edit to the document (pure,
   :func:`~jupyter_workflows.spec.edits.apply_edit`), turn it back into text in the author's
   style (:func:`~jupyter_workflows.spec.edits.edited_text`), and load and validate that text
   exactly as ``%%workflow``/``jw.load`` would. Nothing changes yet; a refused edit raises a
   one-line, positioned :class:`~jupyter_workflows.exceptions.SpecError`.
2. :meth:`EditSession.accept`: write the file (target ``"file"``; atomically, and never over a
   file changed on disk since), keep the new document and text, and register the workflow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import tempfile
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError, WorkflowError, first_line
from ..spec.edits import apply_edit, dump_document, edited_text

if TYPE_CHECKING:  # pragma: no cover
    from ..definition import Workflow

__all__ = ["EditSession", "ProposedEdit"]


@dataclasses.dataclass(frozen=True)
class ProposedEdit:
    """An edit that loaded and validated: what :meth:`EditSession.accept` makes current."""

    workflow: Workflow
    text: str
    """The new YAML (or JSON) text."""
    document: dict[str, Any]
    """The new document as plain data."""
    graph: dict[str, Any]
    """The new workflow's graph, as the widget draws it (:class:`~.wire.Graph`)."""


@dataclasses.dataclass
class EditSession:
    """What an editable widget edits, and where accepted edits go."""

    document: dict[str, Any]
    """The document as plain data, in the user's own shapes."""
    workflow: Workflow
    """The workflow as last accepted."""
    target: str
    """Where accepted edits go (:data:`~.wire.EditTarget`)."""
    path: pathlib.Path | None
    label: str
    """Names the YAML in error positions: ``<cell>``, the file, or ``<workflow>``."""
    default_name: str | None
    fixed_name: str | None
    file_text: str | None
    """The file's text when it was loaded or last written: a file changed since is not overwritten."""
    text: str
    """The workflow's current text (for a cell, the text under the ``%%workflow`` line)."""
    author_text: str | None = None
    """The YAML as the author wrote it (then as last accepted): edits are merged into it."""

    @classmethod
    def open(
        cls, workflow: Workflow, *, target: str | None = None, name: str | None = None
    ) -> EditSession:
        """A session editing ``workflow`` (see :meth:`GraphWidget.enable_editing`)."""
        from ..spec.loader import parse_document

        path = workflow.path if target in (None, "file") else None
        if target is None:
            target = "file" if path is not None else "none"
        if target == "file" and path is None:
            raise ValueError("target='file' needs a workflow loaded from a file (jw.load(PATH))")
        label = str(path) if path is not None else ("<cell>" if target == "cell" else "<workflow>")
        document: dict[str, Any] | None = None
        text = workflow.source
        if text is not None:
            try:
                data, _ = parse_document(text, file=label)
                document = data if isinstance(data, dict) else None
            except SpecError:
                document = None
        author_text = text
        if document is None or text is None:  # built in Python, or a source that no longer parses
            document = workflow.to_dict()
            text = dump_document(document, json_file=_is_json(path))
            author_text = None
        return cls(
            document=document,
            workflow=workflow,
            target=target,
            path=path,
            label=label,
            default_name=name or workflow.name,
            fixed_name=name,
            file_text=workflow.source if path is not None else None,
            text=text,
            author_text=None if _is_json(path) else author_text,
        )

    def propose(self, op: str, fields: dict[str, Any]) -> ProposedEdit:
        """The edit applied, as text, loaded and validated; nothing is changed yet.

        Raises
        ------
        SpecError
            The edit is refused: one line, positioned in the text it would have written.
        """
        from ..spec.graph import graph_dict

        json_file = _is_json(self.path)
        document: dict[str, Any] | None
        if op == "replace":
            text = fields.get("yaml")
            if not isinstance(text, str):
                raise SpecError("the replace edit needs the document's 'yaml'")
            document = None
        else:
            document = apply_edit(self.document, {"op": op, **fields})
            text = edited_text(self.author_text, document, json_file=json_file)
        workflow = self._load(text)
        graph = graph_dict(workflow.compiled)
        if op == "disconnect":
            still = (fields.get("source"), fields.get("target"), fields.get("kind") or "success")
            if any((e["source"], e["target"], e["kind"]) == still for e in graph["edges"]):
                raise SpecError(
                    f"the edge {still[0]} → {still[1]} ({still[2]}) comes from fields the "
                    f"editor does not change (group, publish, a join): edit the tasks' YAML"
                )
        if document is None:
            from ..spec.loader import parse_document

            document = parse_document(text, file=self.label)[0]
        assert document is not None
        return ProposedEdit(workflow=workflow, text=text, document=document, graph=graph)

    def accept(self, edit: ProposedEdit) -> None:
        """Write the file (target ``"file"``), make ``edit`` current, register its workflow."""
        from ..definition import register_workflow

        if self.target == "file" and self.path is not None:
            self._write_file(edit.text)
        self.document = edit.document
        self.workflow = edit.workflow
        self.text = edit.text
        self.author_text = None if _is_json(self.path) else edit.text
        register_workflow(edit.workflow)

    def _load(self, text: str) -> Workflow:
        """``text`` read exactly as ``%%workflow``/``jw.load`` would read it, and validated."""
        from ..definition import Workflow
        from ..spec.loader import load_spec

        spec, smap = load_spec(text, file=self.label, name=self.default_name)
        if self.fixed_name and spec.name != self.fixed_name:
            raise SpecError(
                f"the magic line names the workflow {self.fixed_name!r} but the YAML says "
                f"name: {spec.name}",
                file=self.label,
            )
        workflow = Workflow(
            spec,
            source_map=smap,
            path=self.path,
            base_dir=self.workflow.base_dir,
            source=text,
        )
        try:
            workflow.validate()
        except SpecError:
            raise
        except WorkflowError as exc:  # an action that does not resolve, say
            raise SpecError(first_line(exc), file=self.label) from None
        return workflow

    def _write_file(self, text: str) -> None:
        """Replace the file with ``text`` in one step (a reader sees the old or the new file)."""
        from ..spec.loader import read_text

        path = self.path
        assert path is not None
        try:
            current = read_text(path) if path.exists() else None
        except (OSError, SpecError) as exc:
            raise SpecError(f"cannot read it back before writing: {exc}", file=str(path)) from None
        if self.file_text is not None and current is not None and current != self.file_text:
            raise SpecError(
                "changed on disk since it was loaded; load it again to edit it (nothing was written)",
                file=str(path),
            )
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                out.write(text)
            if path.exists():
                os.chmod(tmp, path.stat().st_mode & 0o7777)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise SpecError(f"cannot write: {exc.strerror or exc}", file=str(path)) from None
        self.file_text = text


def _is_json(path: pathlib.Path | None) -> bool:
    return path is not None and path.suffix.lower() == ".json"
