/**
 * "Open With > Workflow Editor": a workflow file as text and graph, side by side.
 *
 * The text is JupyterLab's own document model (a CodeMirror editor bound to it), so saving
 * goes through the contents API, the tab shows the dirty marker and undo works as in any
 * file. The graph is the server's reading of the text: every change is validated by
 * `POST workflows/api/validate` (the same checks as `jupyter-workflows validate`), and the
 * positioned error, if any, is shown above the graph (the last good graph stays). Adding a
 * task in the graph's toolbar asks `POST workflows/api/edit` for the new text, written in the
 * author's style (comments, quoting, order kept), and puts it in the editor as one change.
 */
import { setDiagnostics } from "@codemirror/lint";
import type { Diagnostic } from "@codemirror/lint";
import type { EditorView } from "@codemirror/view";
import { ABCWidgetFactory, DocumentWidget } from "@jupyterlab/docregistry";
import type { DocumentRegistry, IDocumentWidget } from "@jupyterlab/docregistry";
import { CodeEditorWrapper } from "@jupyterlab/codeeditor";
import type { IEditorServices } from "@jupyterlab/codeeditor";
import { SplitPanel, Widget } from "@lumino/widgets";
import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import type { Root } from "react-dom/client";
import { App } from "./App";
import { HostContext, ModelContext } from "./model";
import { api } from "./runs";
import { StaticModel } from "./staticModel";
import type { GraphMimeData } from "./types";

export const EDITOR_FACTORY = "Workflow Editor";
/** What JupyterLab's file browser puts in a drag: the dragged paths. */
const CONTENTS_MIME = "application/x-jupyter-icontents";

/** The parts of a Lumino `Drag.Event` used here (its mime data and drop actions). */
type LuminoDragEvent = Event & {
  mimeData?: { hasData(mime: string): boolean; getData(mime: string): unknown };
  dropAction: string;
  proposedAction: string;
};

/** `POST file_task`: the task a dropped file becomes. */
interface FileTask {
  name: string;
  action: string;
  input: Record<string, unknown> | null;
  functions: string[];
}
const VALIDATE_DELAY_MS = 400;

interface Validation {
  ok: boolean;
  error: string | null;
  line: number | null;
  col: number | null;
  graph: GraphMimeData | null;
  /** Each task's fields as YAML (the task form of the graph side). */
  task_yaml?: Record<string, string>;
}

/** An edit the graph side's <App> sent, as the widget sends them to its kernel. */
interface AppEdit {
  type: "edit";
  id: number;
  op: string;
  [field: string]: unknown;
}

type EditAnswer = Validation & { text: string };

/** The graph side: toolbar (add a task), the server's verdict, the graph. */
class GraphSide extends Widget {
  private root: Root;
  private model: StaticModel | null = null;
  private readonly host: HTMLDivElement;
  private listeners = new Set<() => void>();
  validation: Validation | null = null;
  busy = false;
  notice: string | null = null;

  constructor(
    private readonly onAdd: (name: string, action: string, after: string) => void,
    private readonly onEdit: (edit: AppEdit) => Promise<{ ok: true } | { ok: false; error: string }>,
    private readonly onGoto: (line: number, col: number) => void,
  ) {
    super();
    this.addClass("jw-editor-graph");
    const bar = document.createElement("div");
    this.node.appendChild(bar);
    this.host = document.createElement("div");
    this.host.className = "jw-host";
    this.node.appendChild(this.host);
    this.root = createRoot(bar);
    this.root.render(
      <StrictMode>
        <EditorBar side={this} onAdd={(n, a, after) => this.onAdd(n, a, after)} onGoto={(l, c) => this.onGoto(l, c)} />
      </StrictMode>,
    );
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }

  setBusy(busy: boolean, notice: string | null = null): void {
    this.busy = busy;
    this.notice = notice;
    this.changed();
  }

  show_(validation: Validation): void {
    this.validation = validation;
    if (validation.graph) {
      if (this.model) {
        this.model.update(validation.graph);
      } else {
        // Editable: connect (drag a handle), delete an edge or a task (button or Delete key),
        // the task form; each edit goes to the server's edit route, not to a kernel.
        const model = (this.model = new StaticModel(validation.graph, {
          editable: true,
          edit_target: "file",
        }));
        model.onSend = (msg) => {
          const edit = msg as AppEdit;
          if (!edit || edit.type !== "edit") return;
          void this.onEdit(edit).then((result) =>
            model.emit(
              result.ok
                ? { type: "edit_ok", id: edit.id, yaml: "", target: "document", path: null }
                : { type: "edit_error", id: edit.id, error: result.error },
            ),
          );
        };
        createRoot(this.host).render(
          <StrictMode>
            <ModelContext.Provider value={this.model.asModel()}>
              <HostContext.Provider value={this.host}>
                <App note="from the text" startEditing hideAddTask />
              </HostContext.Provider>
            </ModelContext.Provider>
          </StrictMode>,
        );
      }
    }
    if (this.model && validation.task_yaml) this.model.set("task_yaml", validation.task_yaml);
    this.changed();
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.root.unmount();
    super.dispose();
  }
}

function EditorBar({
  side,
  onAdd,
  onGoto,
}: {
  side: GraphSide;
  onAdd: (name: string, action: string, after: string) => void;
  onGoto: (line: number, col: number) => void;
}) {
  const [, setVersion] = useState(0);
  useEffect(() => side.subscribe(() => setVersion((v) => v + 1)), [side]);
  const [name, setName] = useState("");
  const [action, setAction] = useState("core.echo");
  const [after, setAfter] = useState("");
  const v = side.validation;
  const tasks = v?.graph?.graph.nodes.map((n) => n.id) ?? [];
  return (
    <div className="jw-root jw-editor-bar" style={{ height: "auto" }}>
      <div className="jw-editbar" data-testid="jw-editor-bar">
        <input
          className="jw-input"
          data-testid="jw-editor-add-name"
          placeholder="new task"
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
        <input
          className="jw-input"
          data-testid="jw-editor-add-action"
          placeholder="action"
          value={action}
          onChange={(e) => setAction(e.target.value)}
        />
        <select
          className="jw-input"
          data-testid="jw-editor-add-after"
          value={after}
          onChange={(e) => setAfter(e.target.value)}
        >
          <option value="">after: nothing</option>
          {tasks.map((t) => (
            <option key={t} value={t}>
              after {t}
            </option>
          ))}
        </select>
        <button
          type="button"
          className="jw-button"
          data-testid="jw-editor-add-submit"
          disabled={side.busy || !name.trim() || !action.trim()}
          onClick={() => {
            onAdd(name.trim(), action.trim(), after);
            setName("");
          }}
        >
          Add task
        </button>
      </div>
      {v && !v.ok ? (
        <ul className="jw-editor-errors" data-testid="jw-editor-errors">
          <li
            className="jw-edit-error"
            data-testid="jw-editor-error"
            data-line={v.line ?? ""}
            data-col={v.col ?? ""}
            role={v.line ? "button" : undefined}
            title={v.line ? "go to this line in the text" : undefined}
            style={v.line ? { cursor: "pointer" } : undefined}
            onClick={() => {
              if (v.line) onGoto(v.line, v.col ?? 1);
            }}
          >
            {v.error}
          </li>
        </ul>
      ) : null}
      {v && v.ok ? (
        <div className="jw-edit-notice" data-testid="jw-editor-valid" data-phase="valid">
          {side.notice ?? `valid: ${v.graph?.graph.nodes.length ?? 0} tasks`}
        </div>
      ) : null}
      {v && !v.ok && side.notice ? <div className="jw-edit-notice">{side.notice}</div> : null}
    </div>
  );
}

/** The document's content: the editor on the left, the graph on the right. */
export class WorkflowEditor extends SplitPanel {
  private readonly side: GraphSide;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private requested = 0;
  private readonly editor: CodeEditorWrapper;

  constructor(
    private readonly context: DocumentRegistry.CodeContext,
    services: IEditorServices,
  ) {
    super({ orientation: "horizontal" });
    this.addClass("jw-workflow-editor");
    this.node.dataset.testid = "jw-workflow-editor";
    const editor = new CodeEditorWrapper({
      factory: services.factoryService.newDocumentEditor,
      model: context.model,
      editorOptions: { config: { lineNumbers: true } },
    });
    editor.model.mimeType = "text/x-yaml";
    editor.addClass("jw-editor-text");
    this.editor = editor;
    // JupyterLab binds undo/redo keys to its file editor's commands only: here, the text's
    // shared model undoes (graph edits included, each one step).
    editor.node.addEventListener("keydown", (event) => {
      if (!(event.ctrlKey || event.metaKey) || event.altKey) return;
      const key = event.key.toLowerCase();
      if (key === "z" && !event.shiftKey) editor.editor.undo();
      else if ((key === "z" && event.shiftKey) || key === "y") editor.editor.redo();
      else return;
      event.preventDefault();
      event.stopPropagation();
    });
    this.side = new GraphSide(
      (name, action, after) => void this.addTask(name, action, after),
      (edit) => this.applyEdit(edit),
      (line, col) => this.goto(line, col),
    );
    this.addWidget(editor);
    this.addWidget(this.side);
    this.acceptFileDrops(this.side.node);
    this.setRelativeSizes([1, 1]);
    void context.ready.then(() => {
      this.validateSoon(0);
      context.model.contentChanged.connect(() => this.validateSoon(VALIDATE_DELAY_MS));
    });
  }

  private get text(): string {
    return this.context.model.sharedModel.getSource();
  }

  /**
   * Put `next` in the document as one change of the part that differs (common start and end
   * kept): undo takes it back in one step, the cursor elsewhere stays, the tab is marked
   * modified.
   */
  private replaceText(next: string): void {
    const shared = this.context.model.sharedModel;
    const current = shared.getSource();
    if (current === next) return;
    let start = 0;
    const max = Math.min(current.length, next.length);
    while (start < max && current[start] === next[start]) start++;
    let end = 0;
    while (
      end < max - start &&
      current[current.length - 1 - end] === next[next.length - 1 - end]
    ) {
      end++;
    }
    shared.updateSource(start, current.length - end, next.slice(start, next.length - end));
  }

  private validateSoon(delay: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.validate(), delay);
  }

  private async validate(): Promise<void> {
    const id = ++this.requested;
    try {
      const answer = await api<Validation>("validate", {
        method: "POST",
        body: JSON.stringify({ text: this.text, path: this.context.path }),
      });
      if (id === this.requested) {
        this.side.show_(answer);
        this.mark(answer);
      }
    } catch (err) {
      if (id === this.requested) {
        this.side.show_({ ok: false, error: (err as Error).message, line: null, col: null, graph: null });
      }
    }
  }

  /** JupyterLab's CodeMirror 6 view of the text (null if the editor is not CodeMirror). */
  private get view(): EditorView | null {
    const inner = (this.editor.editor as unknown as { editor?: EditorView }).editor;
    return inner && typeof inner.dispatch === "function" ? inner : null;
  }

  /** The offset of a 1-based line and column in the text, clamped to the text. */
  private offset(view: EditorView, line: number, col: number): number {
    const doc = view.state.doc;
    const at = doc.line(Math.min(Math.max(1, line), doc.lines));
    return Math.min(at.to, at.from + Math.max(0, col - 1));
  }

  /** The server's positioned error as a CodeMirror diagnostic (underline, gutter-less tooltip). */
  private mark(v: Validation): void {
    const view = this.view;
    if (!view) return;
    const diagnostics: Diagnostic[] = [];
    if (!v.ok && v.line) {
      const from = this.offset(view, v.line, v.col ?? 1);
      const line = view.state.doc.lineAt(from);
      // The word at the position, else the rest of the line, else one character.
      const rest = view.state.doc.sliceString(from, line.to);
      const word = /^[^\s:,]+/.exec(rest)?.[0].length ?? 0;
      const to = word ? from + word : line.to > from ? line.to : Math.min(from + 1, view.state.doc.length);
      diagnostics.push({ from, to: Math.max(to, from), severity: "error", message: v.error ?? "invalid", source: "jupyter-workflows" });
    }
    view.dispatch(setDiagnostics(view.state, diagnostics));
  }

  /** Puts the cursor at a 1-based line and column of the text and focuses it. */
  goto(line: number, col: number): void {
    const view = this.view;
    if (view) {
      const at = this.offset(view, line, col);
      view.dispatch({ selection: { anchor: at }, scrollIntoView: true });
    } else {
      this.editor.editor.setCursorPosition({ line: line - 1, column: col - 1 });
    }
    this.editor.editor.focus();
  }

  /** One graph edit from the graph side, through the server's edit route. */
  private async applyEdit(edit: AppEdit): Promise<{ ok: true } | { ok: false; error: string }> {
    const { type: _type, id: _id, ...fields } = edit;
    try {
      const answer = await api<EditAnswer>("edit", {
        method: "POST",
        body: JSON.stringify({ ...fields, text: this.text, path: this.context.path }),
      });
      this.replaceText(answer.text);
      this.side.show_(answer);
      this.mark(answer);
      return { ok: true };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }

  /**
   * A notebook or `.py` file dragged from JupyterLab's file browser onto the graph becomes a
   * task. The file browser drags with Lumino's drag and drop (`lm-drag*` events, the paths
   * under `application/x-jupyter-icontents`), not the browser's HTML5 one.
   */
  private acceptFileDrops(node: HTMLElement): void {
    const paths = (event: Event): string[] | null => {
      const data = (event as LuminoDragEvent).mimeData;
      if (!data?.hasData(CONTENTS_MIME)) return null;
      const value = data.getData(CONTENTS_MIME);
      const list = (Array.isArray(value) ? value : [value]).filter(
        (p): p is string => typeof p === "string" && /\.(ipynb|py)$/i.test(p),
      );
      return list.length ? list : null;
    };
    const accept = (event: Event) => {
      if (!paths(event)) return;
      event.preventDefault();
      event.stopPropagation();
      const drag = event as LuminoDragEvent;
      // The file browser offers "move" only (Lumino drops nothing for an action the source does
      // not support); it does nothing to the file after a drop, so the file stays where it is.
      if (event.type === "lm-dragover") drag.dropAction = drag.proposedAction;
      node.classList.add("jw-drop-target");
    };
    node.addEventListener("lm-dragenter", accept);
    node.addEventListener("lm-dragover", accept);
    node.addEventListener("lm-dragleave", () => node.classList.remove("jw-drop-target"));
    node.addEventListener("lm-drop", (event) => {
      node.classList.remove("jw-drop-target");
      const files = paths(event);
      if (!files) return;
      event.preventDefault();
      event.stopPropagation();
      const drop = event as LuminoDragEvent;
      drop.dropAction = drop.proposedAction;
      void this.addFiles(files);
    });
  }

  /** One task per dropped file, one after the other, each through `addTask`. */
  private async addFiles(files: string[]): Promise<void> {
    for (const file of files) {
      let task: FileTask;
      try {
        task = await api<FileTask>("file_task", {
          method: "POST",
          body: JSON.stringify({ text: this.text, path: this.context.path, file }),
        });
      } catch (err) {
        this.side.setBusy(false, `${file}: ${(err as Error).message}`);
        continue;
      }
      const others = task.functions.slice(1);
      const note = others.length
        ? ` (${file} also has ${others.join(", ")}: change the action to use another)`
        : "";
      await this.addTask(task.name, task.action, "", task.input ?? undefined, note);
    }
  }

  private async addTask(
    name: string,
    action: string,
    after: string,
    input?: Record<string, unknown>,
    note = "",
  ): Promise<void> {
    this.side.setBusy(true, "adding…");
    try {
      const answer = await api<EditAnswer>("edit", {
        method: "POST",
        body: JSON.stringify({
          text: this.text,
          path: this.context.path,
          op: "add_task",
          name,
          action,
          after: after || null,
          ...(input ? { input } : {}),
        }),
      });
      this.replaceText(answer.text);
      this.side.setBusy(false, `added ${name}: save to write the file${note}`);
      this.side.show_(answer);
    } catch (err) {
      this.side.setBusy(false, null);
      this.side.show_({
        ...(this.side.validation ?? { graph: null, line: null, col: null }),
        ok: false,
        error: (err as Error).message,
      });
    }
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    super.dispose();
  }
}

export class WorkflowEditorFactory extends ABCWidgetFactory<
  IDocumentWidget<WorkflowEditor, DocumentRegistry.ICodeModel>,
  DocumentRegistry.ICodeModel
> {
  constructor(
    options: DocumentRegistry.IWidgetFactoryOptions<IDocumentWidget<WorkflowEditor, DocumentRegistry.ICodeModel>>,
    private readonly services: IEditorServices,
  ) {
    super(options);
  }

  protected createNewWidget(
    context: DocumentRegistry.CodeContext,
  ): IDocumentWidget<WorkflowEditor, DocumentRegistry.ICodeModel> {
    const content = new WorkflowEditor(context, this.services);
    const widget = new DocumentWidget({ content, context });
    widget.title.iconClass = "jw-runs-icon";
    return widget;
  }
}
