// tsc compiles src/*.ts(x) to lib/; the CSS the modules import goes along.
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";

mkdirSync("lib", { recursive: true });
for (const name of readdirSync("src")) {
  if (name.endsWith(".css")) copyFileSync(`src/${name}`, `lib/${name}`);
}
