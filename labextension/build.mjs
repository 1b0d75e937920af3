// Bundle the widget into one ES module (+ one CSS file) that anywidget loads.
//
// React, React Flow and elkjs are bundled in (no externals): anywidget imports
// the module from a blob URL, so it cannot resolve bare imports at runtime.
// The output is committed under jupyter_workflows/static/ so that
// `pip install -e .` gives a working widget without node.
import * as esbuild from "esbuild";

const watch = process.argv.includes("--watch");

/** @type {esbuild.BuildOptions} */
const options = {
  entryPoints: { widget: "src/index.tsx" },
  outdir: "../jupyter_workflows/static",
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: !watch,
  sourcemap: false,
  // Keep licence headers (React, React Flow: MIT; elkjs: EPL-2.0) at the end of the file.
  legalComments: "eof",
  jsx: "automatic",
  define: { "process.env.NODE_ENV": watch ? '"development"' : '"production"' },
  logLevel: "info",
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
