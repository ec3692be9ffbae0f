// Builds the page into firmware/vigil/web/dist: hashed, minified assets, index.html naming
// them, and a gzip copy of each file (vigild serves the copy to browsers that accept gzip).
import { build } from "esbuild";
import { mkdirSync, readFileSync, rmSync, statSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = join(here, "..", "firmware", "vigil", "web", "dist");
const BUDGET = 500 * 1024; // the whole page, compressed (issue 8)

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

const result = await build({
  entryPoints: { app: join(here, "src", "main.js") },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020"],
  entryNames: "assets/[name]-[hash]",
  assetNames: "assets/[name]-[hash]",
  outdir,
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});

const outputs = Object.keys(result.metafile.outputs).map((p) => relative(outdir, p));
const script = outputs.find((p) => p.endsWith(".js"));
const style = outputs.find((p) => p.endsWith(".css"));
const template = readFileSync(join(here, "src", "index.html"), "utf8");
const html = template.replace("%SCRIPT%", `/${script}`).replace("%STYLE%", `/${style}`);
writeFileSync(join(outdir, "index.html"), html);

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

let total = 0;
for (const path of files(outdir)) {
  const packed = gzipSync(readFileSync(path), { level: 9 });
  writeFileSync(`${path}.gz`, packed);
  total += packed.length;
}
console.log(`web page: ${outputs.length + 1} files, ${total} bytes gzipped (budget ${BUDGET})`);
if (total > BUDGET) {
  console.error("the page is over its size budget");
  process.exit(1);
}
