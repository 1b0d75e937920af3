/**
 * anywidget entry point: `export default { render }`.
 *
 * Everything (React, React Flow, elkjs) is bundled into this one module;
 * see build.mjs. Styles are emitted to widget.css, which the Python class
 * passes as `_css`.
 */
import "@xyflow/react/dist/style.css";
import "./styles.css";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import type { Render } from "@anywidget/types";
import { App } from "./App";
import { HostContext, ModelContext } from "./model";
import type { WidgetModel } from "./types";

const render: Render<WidgetModel> = ({ model, el }) => {
  el.classList.add("jw-host");
  const root = createRoot(el);
  root.render(
    <StrictMode>
      <ModelContext.Provider value={model}>
        <HostContext.Provider value={el}>
          <App />
        </HostContext.Provider>
      </ModelContext.Provider>
    </StrictMode>,
  );
  return () => root.unmount();
};

export default { render };
