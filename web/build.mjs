// Builds each widget in src/<name>/ into one self-contained file, dist/<name>.html:
// the TypeScript bundled and minified by esbuild, the CSS and the script inlined,
// so the page makes no request of its own and its CSP can stay empty.
//
//   node build.mjs          rebuild dist/
//   node build.mjs --check  fail if dist/ differs from a fresh build (CI)

import { readFile, writeFile, readdir, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes("--check");

/** Inline `</script` would end the script element early. */
const safeScript = (js) => js.replaceAll("</script", "<\\/script");

async function build(name) {
  const dir = join(root, "src", name);
  const result = await esbuild.build({
    entryPoints: [join(dir, `${name}.ts`)],
    bundle: true,
    minify: true,
    format: "iife",
    target: "es2020",
    platform: "browser",
    legalComments: "none",
    write: false,
    logLevel: "warning",
  });
  const js = result.outputFiles[0].text.trim();
  const css = (await readFile(join(dir, "style.css"), "utf8")).trim();
  const template = await readFile(join(dir, "index.html"), "utf8");
  return template.replace("/*STYLE*/", () => css).replace("/*SCRIPT*/", () => safeScript(js));
}

const names = (await readdir(join(root, "src"), { withFileTypes: true }))
  .filter((d) => d.isDirectory())
  .map((d) => d.name);
await mkdir(join(root, "dist"), { recursive: true });
let stale = [];
for (const name of names) {
  const html = await build(name);
  const out = join(root, "dist", `${name}.html`);
  if (check) {
    const committed = await readFile(out, "utf8").catch(() => null);
    if (committed !== html) stale.push(`web/dist/${name}.html`);
  } else {
    await writeFile(out, html);
    console.log(`web/dist/${name}.html: ${html.length} bytes`);
  }
}
if (stale.length) {
  console.error(`${stale.join(", ")} differs from a fresh build of web/src: run \`cargo xtask widget\` and commit the result`);
  process.exit(1);
}
