#!/usr/bin/env node
// Checks web/js/endpoints.js against the OpenAPI document: every path the dashboard
// builds must be a path of the API, and path parameters must stay one encoded segment.
// Run by `make jslint`.
import { readdirSync, readFileSync } from "node:fs";
import * as endpoints from "../web/js/endpoints.js";

// the committed document (`make openapi`), wherever the package keeps it
const packageDir = new URL("../shared/amazon_pilot/", import.meta.url);
const found = readdirSync(packageDir, { recursive: true }).filter((f) => f.split(/[\\/]/).pop() === "openapi.json");
if (found.length !== 1) {
  console.error(`check-endpoints: expected one openapi.json under shared/amazon_pilot, found ${found.length}`);
  process.exit(1);
}
const spec = JSON.parse(readFileSync(new URL(found[0], packageDir), "utf8"));
const known = new Set(Object.keys(spec.paths).map((p) => p.replace(/\{[^}]+\}/g, "{}")));

const problems = [];
for (const [name, build] of Object.entries(endpoints)) {
  if (typeof build !== "function") continue;
  const args = Array.from({ length: build.length }, (_, i) => `__arg${i}__`);
  const template = build(...args).replace(/__arg\d+__/g, "{}");
  if (!known.has(template)) problems.push(`${name}() builds ${template}, which the OpenAPI document does not have`);
  if (build.length) {
    const odd = build(...args.map(() => "a/b?c#d"));
    if (odd.includes("a/b") || !odd.includes("a%2Fb%3Fc%23d")) problems.push(`${name}() does not encode its parameters: ${odd}`);
  }
}
if (problems.length) {
  for (const p of problems) console.error("check-endpoints: " + p);
  process.exit(1);
}
console.log(`check-endpoints: ${Object.keys(endpoints).length} endpoints, all in the OpenAPI document`);
