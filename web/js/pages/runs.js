// Runs: the actor runs that fetched products (all of them for an administrator, those of
// your products for a seller), with what each returned and cost; one run's problems.

import * as api from "../api.js";
import * as endpoints from "../endpoints.js";
import { append, badge, clear, empty, errorBox, fmtAgo, fmtDateTime, fmtInt, h, link, loading } from "../dom.js";

const PAGE = 50;
const STATUS_KIND = { succeeded: "ok", running: "info", failed: "critical", timed_out: "critical" };
const OUTCOMES = {
  requested: ["requested", "info"],
  stored: ["stored", "ok"],
  not_found: ["not found", "critical"],
  unusable: ["no data (unusable item)", "warning"],
  no_item: ["no data (no item)", "warning"],
  skipped: ["skipped", "warning"],
};
const PROBLEMS = {
  unattributed: "Unattributed item",
  duplicate: "Duplicate item",
  unusable: "Unusable item",
  redirected: "Another ASIN served",
  no_item: "No usable item",
  skipped: "Not requested",
};

function fmtCost(value) {
  if (value === null || value === undefined) return "–";
  return "$" + Number(value).toFixed(value < 1 ? 4 : 2);
}

function fmtSeconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 10) return value.toFixed(2) + " s";
  const m = Math.floor(value / 60);
  const s = Math.round(value % 60);
  return m ? `${m} min ${String(s).padStart(2, "0")} s` : `${s} s`;
}

function sourceBadge(source) {
  if (!source) return h("span", { class: "muted", text: "–" });
  return source === "sandbox" ? badge("sandbox", "sandbox") : badge(source);
}

function scopeNote(me) {
  return me && me.role === "admin"
    ? "Every actor run, with what it returned and what it cost."
    : "The runs that fetched your products. Counts cover your products only; the cost is your products' share of the run.";
}

function runRow(r) {
  const cells = [
    ["When", h("td", {}, link(`/runs/${r.id}`, h("span", { text: fmtDateTime(r.started_at) })),
      h("small", { class: "muted", text: fmtAgo(r.started_at) }))],
    ["Trigger", h("td", { text: r.trigger })],
    ["Status", h("td", {}, badge(r.status.replace("_", " "), STATUS_KIND[r.status] || ""))],
    ["Requested", h("td", { text: fmtInt(r.requested) })],
    ["Returned", h("td", { text: fmtInt(r.returned) })],
    ["Attributed", h("td", { text: fmtInt(r.attributed) })],
    ["Not found", h("td", { text: fmtInt(r.not_found) })],
    ["Problems", h("td", {}, r.problem_count
      ? link(`/runs/${r.id}`, badge(fmtInt(r.problem_count), "warning"))
      : h("span", { text: fmtInt(r.problem_count) }))],
    ["Duration", h("td", { text: fmtSeconds(r.duration_s) })],
    ["Apify cost", h("td", { text: fmtCost(r.cost_usd) })],
    ["Data source", h("td", {}, sourceBadge(r.data_source))],
  ];
  return h("tr", { dataset: { runId: r.id } }, cells.map(([label, td]) => {
    td.dataset.label = label;
    return td;
  }));
}

export async function renderList(main, params, ctx) {
  const me = api.user();
  let offset = Math.max(0, Number(ctx.query.get("offset")) || 0);
  const host = h("div", {}, loading("Loading runs…"));
  const pager = h("div", { class: "pager" });
  async function load() {
    host.replaceChildren(loading("Loading runs…"));
    let page;
    try {
      page = await api.get(endpoints.scrapeRuns(), { limit: PAGE, offset });
    } catch (err) {
      host.replaceChildren(api.isMissingRoute(err) ? empty("Runs are not available on this server yet.") : errorBox(err, load));
      return;
    }
    if (!ctx.isCurrent()) return;
    if (!page.items.length) {
      host.replaceChildren(empty(offset ? "No more runs." : "No runs yet. A run starts when a product is added, refreshed, or at the daily refresh."));
      pager.replaceChildren();
      return;
    }
    const heads = ["When", "Trigger", "Status", "Requested", "Returned", "Attributed", "Not found", "Problems", "Duration", "Apify cost", "Data source"];
    host.replaceChildren(h("div", { class: "table-host" }, h("table", { class: "table runs-table", id: "runs-table" },
      h("thead", {}, h("tr", {}, heads.map((t) => h("th", { text: t })))),
      h("tbody", {}, page.items.map(runRow)))));
    const prev = h("button", { class: "btn btn-small", type: "button", disabled: offset === 0 }, "Newer");
    const next = h("button", { class: "btn btn-small", type: "button", disabled: offset + page.items.length >= page.total }, "Older");
    prev.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
    next.addEventListener("click", () => { offset += PAGE; load(); });
    pager.replaceChildren(h("span", { class: "muted", text: `${offset + 1}–${offset + page.items.length} of ${page.total}` }), prev, next);
  }
  main.append(h("div", { class: "page-head" }, h("h1", { text: "Runs" })),
    h("p", { class: "muted", text: scopeNote(me) }), host, pager);
  await load();
}

// ------------------------------------------------------------------ one run

function meta(run) {
  const parts = [
    `started ${fmtDateTime(run.started_at)}`,
    run.finished_at ? `finished ${fmtDateTime(run.finished_at)}` : "not finished",
    `trigger ${run.trigger}`,
    `${fmtInt(run.attempts)} attempt${run.attempts === 1 ? "" : "s"}`,
    `actor ${run.actor_id || "–"}`,
    `observation of ${fmtDateTime(run.captured_at)}`,
  ];
  return h("p", { class: "muted break", id: "run-meta", text: parts.join(" · ") });
}

function summary(run) {
  const facts = [
    ["Requested", fmtInt(run.requested)],
    ["Returned", fmtInt(run.returned)],
    ["Attributed", fmtInt(run.attributed)],
    ["Not found (404)", fmtInt(run.not_found)],
    ["No data", fmtInt(run.no_data)],
    ["Duplicates", fmtInt(run.duplicates)],
    ["Unusable items", fmtInt(run.malformed)],
  ];
  if (run.scope === "all") facts.push(["Unattributed items", fmtInt(run.unattributed)]);
  facts.push(["Duration", fmtSeconds(run.duration_s)],
    [run.scope === "yours" ? "Apify cost (your share)" : "Apify cost", fmtCost(run.cost_usd)],
    ["Cost per product", fmtCost(run.cost_per_product_usd)]);
  return h("section", { class: "stats", id: "run-summary" }, facts.map(([label, value]) =>
    h("div", { class: "stat" }, h("div", { class: "stat-label", text: label }), h("div", { class: "stat-value", text: value }))));
}

function productsTable(run) {
  if (!run.products.length) return empty("This run requested no product of yours.");
  return h("div", { class: "table-host" }, h("table", { class: "table compact", id: "run-products" },
    h("thead", {}, h("tr", {}, ["Product", "Outcome", "Page showed", "Duplicates", "Why"].map((t) => h("th", { text: t })))),
    h("tbody", {}, run.products.map((p) => {
      const [words, kind] = OUTCOMES[p.outcome] || [p.outcome, ""];
      const name = h("span", {}, h("strong", { text: p.asin }), " ", h("span", { class: "muted", text: "amazon." + p.marketplace }),
        p.title ? h("small", { class: "muted", text: p.title }) : null);
      return h("tr", {},
        h("td", { dataset: { label: "Product" } }, p.product_id ? link(`/products/${p.product_id}`, name) : name),
        h("td", { dataset: { label: "Outcome" } }, badge(words, kind)),
        h("td", { dataset: { label: "Page showed" }, text: p.served_asin || "–" }),
        h("td", { dataset: { label: "Duplicates" }, text: fmtInt(p.duplicates) }),
        h("td", { dataset: { label: "Why" }, class: "break", text: p.reason || "" }));
    }))));
}

function problemsList(run) {
  if (!run.problems.length) return empty("No problems: every item was attributed and read.");
  const shown = run.problems.length < (run.problem_count || 0)
    ? h("p", { class: "muted small", text: `The first ${run.problems.length} of ${fmtInt(run.problem_count)} problems.` })
    : null;
  return h("div", {}, shown, h("ul", { class: "card-list", id: "run-problems" }, run.problems.map((p) => {
    const where = [];
    if (p.index !== null && p.index !== undefined) where.push(`item ${p.index}`);
    if (p.asin) where.push(`${p.asin} on amazon.${p.marketplace}`);
    if (p.item_asin) where.push(`item ASIN ${p.item_asin}`);
    return h("li", { class: "card", dataset: { kind: p.kind } },
      h("div", {}, badge(PROBLEMS[p.kind] || p.kind, p.kind === "redirected" ? "info" : "warning"), " ",
        h("span", { class: "muted small", text: where.join(" · ") })),
      h("p", { class: "break", text: p.reason }),
      p.url && !p.asin ? h("small", { class: "muted break", text: p.url }) : null);
  })));
}

export async function renderRun(main, params, ctx) {
  main.append(loading("Loading the run…"));
  let run;
  try {
    run = await api.get(endpoints.scrapeRun(params.id));
  } catch (err) {
    main.replaceChildren(err.status === 404 ? empty("No such run (or it fetched none of your products).", link("/runs", "All runs"))
      : errorBox(err, () => {
        main.replaceChildren();
        renderRun(main, params, ctx);
      }));
    return;
  }
  if (!ctx.isCurrent()) return;
  clear(main);
  append(main, [
    h("div", { class: "page-head" }, h("h1", { text: "Run " + fmtDateTime(run.started_at) }),
      badge(run.status.replace("_", " "), STATUS_KIND[run.status] || ""), sourceBadge(run.data_source),
      h("div", { class: "grow" }), link("/runs", "All runs")),
    meta(run),
    h("p", { class: "muted small", text: scopeNote(api.user()) }),
    run.error ? h("div", { class: "state state-error", role: "alert" }, h("strong", { text: "Run failed " }), h("span", { text: run.error })) : null,
    summary(run),
    h("section", { class: "panel" }, h("h2", { class: "panel-title", text: "Products" }), productsTable(run)),
    h("section", { class: "panel" }, h("h2", { class: "panel-title", text: `Problems (${fmtInt(run.problem_count ?? run.problems.length)})` }), problemsList(run)),
  ]);
}
