// `npm run watch`: rebuild on every save. tsc (src -> lib), the JupyterLab extension
// (jupyter labextension watch, development mode) and the anywidget fallback bundle (esbuild),
// side by side; CSS files are copied to lib/ as they change. Ctrl-C stops all three.
import { spawn } from "node:child_process";
import { copyFileSync, watch } from "node:fs";

const children = [
  spawn("npx", ["tsc", "-p", "tsconfig.lib.json", "-w", "--preserveWatchOutput"], { stdio: "inherit" }),
  spawn("jupyter", ["labextension", "watch", "."], { stdio: "inherit" }),
  spawn("node", ["build.mjs", "--watch"], { stdio: "inherit" }),
];
watch("src", (_event, name) => {
  if (name && name.endsWith(".css")) copyFileSync(`src/${name}`, `lib/${name}`);
});
const stop = () => {
  for (const child of children) child.kill();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
