// Builds the dashboard into OUTDIR (usage: node ui/build.mjs OUTDIR): one minified script and one
// stylesheet with content-hashed names, and index.html naming them. The folder is emptied first,
// so what it holds is exactly what cmake/embed.cmake compiles into the binary (served at /ui/).
import * as esbuild from "esbuild";
import { mkdirSync, readdirSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error("usage: node ui/build.mjs OUTDIR");
  process.exit(2);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await esbuild.build({
  entryPoints: [join(here, "src/main.jsx")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020"],
  jsx: "automatic",
  jsxImportSource: "preact",
  entryNames: "[name]-[hash]",
  outdir: out,
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});
const files = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = files.find((f) => f.endsWith(".js"));
const css = files.find((f) => f.endsWith(".css"));
const html = readFileSync(join(here, "index.html"), "utf8").replace("{{JS}}", `/ui/${js}`).replace("{{CSS}}", `/ui/${css}`);
writeFileSync(join(out, "index.html"), html);
for (const f of readdirSync(out)) console.log(`ui: ${f} ${readFileSync(join(out, f)).length} bytes`);
