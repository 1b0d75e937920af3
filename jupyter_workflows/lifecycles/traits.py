"""Traits (Bosca) and webhooks (Attune's rules): what starts workflows by itself.

A trigger document has ``traits:``, ``hooks:`` or both::

    traits:
      tabular:
        description: CSV files dropped into the folder
        patterns: ["*.csv", "incoming/**/*.tsv"]   # globs on the path under the watched folder
        content_types: [text/csv]                 # or by content type (from the file name)
        workflows:
          - profile_csv                           # gets the parameters it declares of `file`
          - {workflow: load, parameters: {table: "{{ file.stem }}"}}
    hooks:
      deploy:
        workflow: deploy
        secret: DEPLOY_HOOK_SECRET      # a secret's name (environment or store): X-Hook-Secret
        when: "{{ payload.ref == 'refs/heads/main' }}"
        parameters: {branch: "{{ payload.ref }}"}

**Files.** :meth:`Triggers.process` starts every workflow of every trait a file matches, with
the file as parameters, *exactly once per version of the file*: a version is the file's path and
the SHA-256 of its content, and the store records each version it claims
(:meth:`~jupyter_workflows.store.base.RunStore.file_claim`, a compare-and-set), so a second scan,
a second watcher, or a restart of ``serve`` never starts it again, and a file changed while the
watcher was down is picked up by the first scan. A file touched without a change of content is
the same version. If the process dies between the claim and the starts, :meth:`Triggers.recover`
starts what was claimed and not started (at least once, in that case).

A workflow of a trait gets, unless it says ``parameters:``, each of these that it declares:
``path`` (absolute), ``name``, ``stem``, ``suffix``, ``relative`` (under the watched folder),
``content_type``, ``size``, ``digest``. ``parameters:`` are templates over ``file`` (those keys).

:class:`FolderWatcher` scans folders and then follows them with ``watchfiles`` in a thread.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import logging
import mimetypes
import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ..exceptions import SpecError, WorkflowError, first_line
from ..spec.loader import (
    SourceMap,
    gather_errors,
    parse_document,
    read_text,
    spec_error_from_validation,
)
from .spec import Refs, check_template

if TYPE_CHECKING:  # pragma: no cover
    from ..definition import Workflow

__all__ = ["FILE_KEYS", "FolderWatcher", "HookSpec", "TraitSpec", "Triggers", "load_triggers"]

FILE_KEYS = ("path", "name", "stem", "suffix", "relative", "content_type", "size", "digest")
"""What a trait's workflow may receive about the file."""

_IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".swp", "~")

log = logging.getLogger(__name__)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _strings(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Strings = Annotated[list[str], BeforeValidator(_strings)]


class TraitSpec(_Model):
    """A kind of content and the workflows that apply to it."""

    description: str | None = None
    patterns: Strings = []
    content_types: Strings = []
    workflows: Refs = Field(min_length=1)


class HookSpec(_Model):
    """A webhook: ``POST /workflows/api/hooks/{name}`` starts ``workflow`` when ``when`` holds."""

    workflow: str
    description: str | None = None
    secret: str | None = None
    when: str | None = None
    parameters: dict[str, Any] | None = None


class TriggersSpec(_Model):
    traits: dict[str, TraitSpec] = {}
    hooks: dict[str, HookSpec] = {}


class Triggers:
    """Traits and hooks of one or more trigger documents (see the module doc)."""

    def __init__(
        self, spec: TriggersSpec, *, base_dir: str | Path | None = None, source: str | None = None
    ) -> None:
        self.spec = spec
        self.base_dir = Path(base_dir or Path.cwd()).resolve()
        self.source = source
        self.source_map = SourceMap(file=source)

    def __repr__(self) -> str:
        return f"<Triggers traits={list(self.spec.traits)} hooks={list(self.spec.hooks)}>"

    @property
    def traits(self) -> dict[str, TraitSpec]:
        return dict(self.spec.traits)

    @property
    def hooks(self) -> dict[str, HookSpec]:
        return dict(self.spec.hooks)

    def merge(self, other: Triggers) -> Triggers:
        """Both documents' traits and hooks (a name defined twice is an error)."""
        for kind in ("traits", "hooks"):
            twice = set(getattr(self.spec, kind)) & set(getattr(other.spec, kind))
            if twice:
                raise SpecError(f"{kind[:-1]} {sorted(twice)[0]!r} is defined in two trigger files")
        merged = Triggers(
            TriggersSpec.model_construct(
                traits={**self.spec.traits, **other.spec.traits},
                hooks={**self.spec.hooks, **other.spec.hooks},
            ),
            base_dir=self.base_dir,
        )
        merged._dirs = {**self._resolvers(), **other._resolvers()}  # type: ignore[attr-defined]
        return merged

    def _resolvers(self) -> dict[str, Path]:
        found = getattr(self, "_dirs", None)
        if found is not None:
            return dict(found)
        return {name: self.base_dir for name in [*self.spec.traits, *self.spec.hooks]}

    def resolve(self, name: str, owner: str | None = None) -> Workflow:
        from ..sources import resolve_workflow

        base = self._resolvers().get(owner or "", self.base_dir)
        return resolve_workflow(name, base)

    def validate(self) -> Triggers:
        """Every workflow a trait or hook names resolves and is valid."""
        errors = []
        smap = self.source_map
        for name, trait in self.spec.traits.items():
            for i, ref in enumerate(trait.workflows):
                try:
                    self.resolve(ref.workflow, name).validate()
                except WorkflowError as exc:
                    where = ("traits", name, "workflows", i)
                    message = f"trait {name!r}: workflow {ref.workflow!r}: {first_line(exc)}"
                    errors.append(smap.error(message, where))
        for name, hook in self.spec.hooks.items():
            try:
                self.resolve(hook.workflow, name).validate()
            except WorkflowError as exc:
                message = f"hook {name!r}: workflow {hook.workflow!r}: {first_line(exc)}"
                errors.append(smap.error(message, ("hooks", name, "workflow")))
        if errors:
            raise gather_errors(errors)
        return self

    # -- files ----------------------------------------------------------------------------------
    def match(
        self, path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
    ) -> list[str]:
        """Names of the traits ``path`` has (by pattern or content type)."""
        p = Path(path)
        relative = _relative(p, Path(root) if root else p.parent)
        content_type = mimetypes.guess_type(p.name)[0]
        found = []
        for name, trait in self.spec.traits.items():
            by_pattern = any(
                fnmatch.fnmatchcase(relative, pattern)
                or ("/" not in pattern and fnmatch.fnmatchcase(p.name, pattern))
                or (pattern.startswith("**/") and fnmatch.fnmatchcase(relative, pattern[3:]))
                for pattern in trait.patterns
            )
            if by_pattern or (content_type is not None and content_type in trait.content_types):
                found.append(name)
        return found

    def process(
        self, path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
    ) -> list[str]:
        """Start the workflows of the traits ``path`` has, once per version; the run ids started."""
        from ..engine.api import current_store

        p = Path(path).resolve()
        if _ignored(p) or not p.is_file():
            return []
        traits = self.match(p, root)
        if not traits:
            return []
        facts = _file_facts(p, Path(root).resolve() if root else p.parent)
        if facts is None:  # changing while we read it: a later event brings the settled version
            return []
        store = current_store()
        if not store.file_claim(str(p), facts["digest"], facts["size"], facts["mtime"]):
            return []
        return self._start(p, facts, traits)

    def _start(self, p: Path, facts: dict[str, Any], traits: list[str]) -> list[str]:
        from ..engine.api import current_store
        from ..expressions import render

        started: list[str] = []
        errors: list[str] = []
        file = {k: facts[k] for k in FILE_KEYS}
        for name in traits:
            for ref in self.spec.traits[name].workflows:
                try:
                    wf = self.resolve(ref.workflow, name)
                    if ref.parameters is not None:
                        params = dict(render(ref.parameters, {"file": file}))
                    else:
                        params = {k: file[k] for k in wf.spec.parameters if k in file}
                    run = wf.run(params, wait=False)
                except WorkflowError as exc:
                    errors.append(f"trait {name!r}: workflow {ref.workflow!r}: {first_line(exc)}")
                    log.error("jupyter-workflows traits: %s: %s", p, errors[-1])
                    continue
                log.info(
                    "jupyter-workflows traits: %s (%s): started run %s of %r",
                    p,
                    name,
                    run.run_id,
                    wf.name,
                )
                started.append(run.run_id)
        current_store().file_done(str(p), facts["digest"], started, "; ".join(errors) or None)
        return started

    def scan(self, folder: str | os.PathLike[str], *, since: float | None = None) -> list[str]:
        """Process every file under ``folder`` (hidden files and folders skipped), or only
        those modified at ``since`` (epoch seconds) or later; the run ids started."""
        root = Path(folder).resolve()
        if not root.is_dir():
            raise WorkflowError(f"{folder}: not a folder to watch")
        started: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                path = Path(dirpath) / filename
                if since is not None:
                    try:
                        if path.stat().st_mtime < since:
                            continue
                    except OSError:
                        continue
                started += self.process(path, root)
        return started

    def recover(self, folder: str | os.PathLike[str]) -> list[str]:
        """Start what was claimed under ``folder`` and not started (the process died between)."""
        from ..engine.api import current_store

        root = Path(folder).resolve()
        started: list[str] = []
        for row in current_store().file_list(claimed_only=True):
            p = Path(row["path"])
            if root not in p.parents or not p.is_file():
                continue
            facts = _file_facts(p, root)
            if facts is None or facts["digest"] != row["digest"]:
                continue  # changed since: the new version is processed as such
            started += self._start(p, facts, self.match(p, root))
        return started

    def rows(self) -> list[dict[str, Any]]:
        """One row per trait and hook, for ``jupyter-workflows triggers``."""
        out: list[dict[str, Any]] = []
        for name, trait in self.spec.traits.items():
            what = [*trait.patterns, *trait.content_types]
            for ref in trait.workflows:
                out.append(
                    {
                        "kind": "trait",
                        "name": name,
                        "workflow": ref.workflow,
                        "when": "file " + " | ".join(what),
                        "source": self.source,
                    }
                )
        for name, hook in self.spec.hooks.items():
            when = f"POST hooks/{name}" + (f" if {hook.when}" if hook.when else "")
            when += " (secret)" if hook.secret else " (Jupyter auth)"
            out.append(
                {
                    "kind": "hook",
                    "name": name,
                    "workflow": hook.workflow,
                    "when": when,
                    "source": self.source,
                }
            )
        return out


def load_triggers(source: str | os.PathLike[str]) -> Triggers:
    """A trigger document (``traits:``/``hooks:``) from a file or its text; positioned errors."""
    from ..sources import looks_like_path

    path: Path | None = None
    if isinstance(source, os.PathLike) or (isinstance(source, str) and looks_like_path(source)):
        path = Path(source)
        if not path.is_file():
            raise SpecError("no such trigger file", file=str(path))
        text = read_text(path)
    else:
        text = str(source)
    data, smap = parse_document(text, file=str(path) if path else None)
    if not isinstance(data, dict) or not ({"traits", "hooks"} & set(data)):
        raise smap.error("a trigger file has 'traits:' and/or 'hooks:'")
    try:
        spec = TriggersSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error_from_validation(exc, data, smap) from None
    _check(spec, smap)
    triggers = Triggers(
        spec, base_dir=path.parent if path else None, source=str(path) if path else None
    )
    triggers.source_map = smap
    return triggers


def _check(spec: TriggersSpec, smap: SourceMap) -> None:
    errors = []
    file_scope = frozenset({"file"})
    for name, trait in spec.traits.items():
        if not trait.patterns and not trait.content_types:
            errors.append(
                smap.error(
                    f"trait {name!r} needs 'patterns' or 'content_types'",
                    ("traits", name),
                    key=True,
                )
            )
        for i, ref in enumerate(trait.workflows):
            for key, value in (ref.parameters or {}).items():
                err = check_template(
                    value, ("traits", name, "workflows", i, "parameters", key), smap, file_scope
                )
                if err:
                    errors.append(err)
    hook_scope = frozenset({"payload", "headers", "hook"})
    for name, hook in spec.hooks.items():
        path = ("hooks", name)
        if hook.when is not None:
            err = check_template(hook.when, (*path, "when"), smap, hook_scope, expression=True)
            if err:
                errors.append(err)
        for key, value in (hook.parameters or {}).items():
            err = check_template(value, (*path, "parameters", key), smap, hook_scope)
            if err:
                errors.append(err)
    if errors:
        errors.sort(key=lambda e: (e.line or 0, e.col or 0))
        raise gather_errors(errors)


# -- files --------------------------------------------------------------------------------------
def _relative(p: Path, root: Path) -> str:
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return p.name


def _ignored(p: Path) -> bool:
    return (
        p.name.startswith(".")
        or p.name.endswith(_IGNORED_SUFFIXES)
        or any(part.startswith(".") for part in p.parent.parts[-3:])
    )


def _file_facts(p: Path, root: Path) -> dict[str, Any] | None:
    """Path facts and the content's SHA-256; None when the file changes while it is read."""
    try:
        before = p.stat()
        digest = hashlib.sha256()
        with open(p, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        after = p.stat()
    except OSError:
        return None
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        return None
    return {
        "path": str(p),
        "name": p.name,
        "stem": p.stem,
        "suffix": p.suffix,
        "relative": _relative(p, root),
        "content_type": mimetypes.guess_type(p.name)[0],
        "size": after.st_size,
        "mtime": after.st_mtime,
        "digest": digest.hexdigest(),
    }


class FolderWatcher:
    """Scan folders once, then process each new or changed file as ``watchfiles`` reports it.

    Runs in a daemon thread (:meth:`start`); :meth:`stop` ends it within a second.
    """

    def __init__(self, triggers: Triggers, folders: Sequence[str | os.PathLike[str]]) -> None:
        self.triggers = triggers
        self.folders = [Path(f).resolve() for f in folders]
        for folder in self.folders:
            if not folder.is_dir():
                raise WorkflowError(f"--watch {folder}: not a folder")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started: list[str] = []
        self.ready = threading.Event()

    def start(self) -> FolderWatcher:
        self._thread = threading.Thread(
            target=self._run, name="jupyter-workflows-watch", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _root_of(self, p: Path) -> Path | None:
        for folder in self.folders:
            if folder == p or folder in p.parents:
                return folder
        return None

    def _safe(self, fn: Any, *args: Any) -> list[str]:
        try:
            return list(fn(*args))
        except Exception as exc:  # one bad file never stops the watcher
            log.error(
                "jupyter-workflows traits: %s: %s: %s",
                args[0] if args else "",
                type(exc).__name__,
                first_line(exc),
            )
            return []

    def _run(self) -> None:
        import watchfiles

        scanned_at = time.time()
        for folder in self.folders:
            self.started += self._safe(self.triggers.recover, folder)
            self.started += self._safe(self.triggers.scan, folder)
        live = False
        try:
            for changes in watchfiles.watch(
                *self.folders,
                stop_event=self._stop,
                rust_timeout=500,
                yield_on_timeout=True,  # the first yield says the watcher is live
                raise_interrupt=False,
            ):
                if not live:
                    # A file that arrived after the scan above but before the watcher began
                    # was seen by neither: scan once more (files already done are skipped).
                    live = True
                    since = scanned_at - 2.0  # coarse file-system clocks
                    for folder in self.folders:
                        self.started += self._safe(
                            functools.partial(self.triggers.scan, since=since), folder
                        )
                    self.ready.set()
                for change, name in sorted(changes, key=lambda c: c[1]):
                    if change == watchfiles.Change.deleted:
                        continue
                    p = Path(name)
                    root = self._root_of(p)
                    if root is not None:
                        self.started += self._safe(self.triggers.process, p, root)
        except Exception as exc:  # pragma: no cover - the folder vanished, ...
            log.error("jupyter-workflows traits: the watcher stopped: %s", first_line(exc))
        finally:
            self.ready.set()  # nobody waits for a watcher that stopped before it began


def triggers_from(paths: Iterable[str | os.PathLike[str]]) -> Triggers | None:
    """The trigger documents among ``paths``, merged (None when there are none)."""
    merged: Triggers | None = None
    for path in paths:
        t = load_triggers(path)
        merged = t if merged is None else merged.merge(t)
    return merged
