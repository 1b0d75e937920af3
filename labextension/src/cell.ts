/**
 * Writing accepted YAML back into the `%%workflow` cell the widget is shown under.
 *
 * The kernel cannot set a cell's source from a comm message, so the browser does it, the way
 * a user's typing does: through the cell's CodeMirror 6 editor (JupyterLab 4 and Notebook 7),
 * whose document is bound to the notebook's shared model. The editor is found from the DOM:
 * CodeMirror keeps its view on the `.cm-content` element (`cmTile.root.view` since
 * @codemirror/view 6.38, `cmView.rootView.view` before), which is what
 * `EditorView.findFromDOM` reads. Anything else (another front end, a widget shown under a
 * cell that is not `%%workflow`) returns a reason, and the widget shows the YAML to copy.
 */

interface MinimalEditorView {
  state: { doc: { toString(): string; length: number } };
  dispatch(spec: { changes: { from: number; to: number; insert: string } }): void;
}

function editorViewOf(content: Element): MinimalEditorView | null {
  const anyContent = content as unknown as Record<string, any>;
  const tile = anyContent.cmTile ?? anyContent.cmView;
  const view = tile?.root?.view ?? tile?.rootView?.view ?? tile?.view ?? null;
  if (view && view.state?.doc && typeof view.dispatch === "function") return view;
  return null;
}

/** The text of the cell the widget is in, or null when there is no such cell. */
export function cellText(host: HTMLElement | null): string | null {
  const content = host?.closest(".jp-Cell")?.querySelector(".jp-InputArea-editor .cm-content");
  if (!content) return null;
  const view = editorViewOf(content);
  return view ? view.state.doc.toString() : null;
}

/**
 * Replace everything under the cell's first line (the `%%workflow ...` magic line, kept as
 * it is) with `yaml`. Returns null when written, else why not (one line).
 */
export function writeCell(host: HTMLElement | null, yaml: string): string | null {
  const cell = host?.closest(".jp-Cell");
  if (!cell) return "the widget is not in a notebook cell of JupyterLab or Notebook 7";
  const content = cell.querySelector(".jp-InputArea-editor .cm-content");
  if (!content) return "the cell's editor is not on the page";
  const view = editorViewOf(content);
  if (!view) return "the cell's editor cannot be reached";
  const text = view.state.doc.toString();
  const newline = text.indexOf("\n");
  const first = newline < 0 ? text : text.slice(0, newline);
  if (!first.trimStart().startsWith("%%workflow")) {
    return "the widget is not under its %%workflow cell";
  }
  const body = yaml.endsWith("\n") ? yaml.slice(0, -1) : yaml;
  view.dispatch({ changes: { from: 0, to: text.length, insert: `${first}\n${body}` } });
  return null;
}

/** Copy `text` to the clipboard; true if it worked. */
export async function copyText(text: string, fallback: HTMLTextAreaElement | null): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Not a secure context, or no permission: the old way, through a selection.
    if (!fallback) return false;
    fallback.focus();
    fallback.select();
    try {
      return document.execCommand("copy");
    } catch {
      return false;
    }
  }
}
