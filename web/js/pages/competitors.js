// Competitor groups: create from URLs, the comparison with the main product highlighted,
// features present or missing, and positioning reports (written in the background).

import * as api from "../api.js";
import * as endpoints from "../endpoints.js";
import { PALETTE } from "../charts.js";
import {
  badge, busy, confirmClick, empty, errorBox, field, fmtDateTime, fmtInt, fmtMoney, fmtPct, fmtRank, h, link,
  loading, poll, toast,
} from "../dom.js";
import { words } from "../words.js";
import { parseRefs } from "./products.js";

const WINDOWS = ["7d", "30d", "90d"];
const POLL_MS = 1500;

// ------------------------------------------------------------------ list

function createForm(ctx) {
  const name = h("input", { type: "text", name: "name", id: "group-name", maxlength: 120, required: true, placeholder: "Earbuds vs top rivals" });
  const main = h("input", { type: "text", name: "main", id: "group-main", required: true, placeholder: "Your product: ASIN or Amazon URL" });
  const comps = h("textarea", { name: "competitors", id: "group-competitors", rows: 4, placeholder: "3 to 5 competitors: ASINs or Amazon URLs, one per line" });
  const errors = h("div", { class: "form-errors" });
  const submit = h("button", { class: "btn btn-primary", type: "submit", id: "group-submit" }, "Create group");
  const form = h("form", { class: "form" }, h("div", { class: "form-grid" }, field("Name", name), field("Main product", main)),
    field("Competitors", comps), errors, h("div", {}, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    submit.disabled = true;
    try {
      const refs = parseRefs(comps.value).map((r) => r.url || r.asin);
      const group = await api.post(endpoints.competitorGroups(), { name: name.value.trim(), main: main.value.trim(), competitors: refs });
      toast("Group created; fetching its products", "ok");
      ctx.navigate(`/competitors/${group.id}`);
    } catch (err) {
      errors.append(errorBox(err));
    } finally {
      submit.disabled = false;
    }
  });
  return h("section", { class: "panel" }, h("h2", { class: "panel-title", text: "New competitor group" }), form);
}

function groupCard(g) {
  const pending = [g.main, ...g.competitors].filter((p) => p.fetch_status === "pending").length;
  return h("li", { class: "card", dataset: { groupId: g.id } },
    h("div", { class: "card-row" },
      h("div", { class: "grow" },
        h("h3", {}, link(`/competitors/${g.id}`, h("span", { text: g.name }))),
        h("div", { class: "muted small" }, "Main: ", h("span", { text: g.main.title || g.main.asin }),
          ` · ${g.competitors.length} competitors · created ${fmtDateTime(g.created_at)}`)),
      h("div", {}, g.data_source === "sandbox" ? badge("sandbox", "sandbox") : null, " ",
        g.is_active ? null : badge("paused", "muted"), pending ? badge(`${pending} fetching`, "info") : null)));
}

export async function renderList(main, params, ctx) {
  const host = h("div", {}, loading("Loading competitor groups…"));
  const usage = h("span", { class: "muted", id: "group-usage" });
  const form = createForm(ctx);
  main.append(h("div", { class: "page-head" }, h("h1", { text: "Competitor groups" }), usage), form, host);
  try {
    const page = await api.get(endpoints.competitorGroups(), { limit: 100 });
    if (page.plan_groups !== null && page.plan_groups !== undefined) {
      const full = page.total >= page.plan_groups;
      usage.textContent = `${page.total} of ${page.plan_groups} groups on your plan`;
      const submit = form.querySelector("#group-submit");
      submit.disabled = full;
      if (full) {
        const reason = h("p", { class: "notice small", id: "group-limit", text: `Your plan allows ${page.plan_groups} groups and you have ${page.total}: delete one to create another, or ask for a larger plan.` });
        submit.title = reason.textContent;
        submit.after(reason);
      }
    }
    host.replaceChildren(page.items.length
      ? h("ul", { class: "card-list", id: "group-list" }, page.items.map(groupCard))
      : empty("No groups yet. Name your product and 3 to 5 rivals above to compare them side by side."));
  } catch (err) {
    host.replaceChildren(api.isMissingRoute(err) ? empty("Competitor groups are not available on this server yet.") : errorBox(err));
  }
}

// ------------------------------------------------------------------ group

const COLUMNS = [
  ["Price", (p) => p.price, "money"],
  ["Buy Box", (p) => p.buy_box_price, "money"],
  ["Price rank", (p) => p.price_rank, "plain"],
  ["BSR", (p) => p.bsr_rank, "rank"],
  ["Sub-BSR", (p) => p.subcategory_rank, "rank"],
  ["Rating", (p) => p.rating, "rating"],
  ["Reviews", (p) => p.review_count, "int"],
  ["Reviews/day", (p) => p.review_velocity, "plain"],
  ["Price Δ", (p) => p.price_change_pct, "pct"],
  ["BSR Δ", (p) => p.bsr_change_pct, "pct"],
];

function show(metric, kind, currency) {
  if (!metric || metric.value === null || metric.value === undefined) {
    return h("span", { class: "muted", title: metric && metric.reason ? metric.reason : "no data", text: "–" });
  }
  const v = metric.value;
  const text = kind === "money" ? fmtMoney(v, currency) : kind === "rank" ? fmtRank(v) : kind === "rating" ? Number(v).toFixed(1) + " ★"
    : kind === "int" ? fmtInt(v) : kind === "pct" ? fmtPct(v) : String(v) + (metric.unit && metric.unit.startsWith("of") ? " " + metric.unit : "");
  return h("span", { text });
}

function comparisonTable(cmp) {
  const products = [cmp.main, ...cmp.competitors.map((c) => c.product)];
  return h("div", { class: "table-host" }, h("table", { class: "table", id: "comparison-table" },
    h("thead", {}, h("tr", {}, h("th", { text: "Product" }), COLUMNS.map(([label]) => h("th", { text: label })))),
    h("tbody", {}, products.map((p, i) => h("tr", { class: i === 0 ? "is-main" : null, dataset: { asin: p.asin } },
      h("td", { dataset: { label: "Product" } },
        h("div", { class: "product-text" }, h("span", { class: "product-name", text: p.title || p.asin }),
          h("div", { class: "product-sub" }, h("span", { class: "asin", text: p.asin }), i === 0 ? badge("your product", "main") : null,
            p.fetched ? null : badge(p.availability === "not_found" ? "not found" : "fetching…", "info"),
            p.fetched && p.availability && p.availability !== "in_stock" ? badge(words("availability", p.availability), p.availability === "out_of_stock" ? "danger" : "muted") : null,
            (p.trend_labels || []).map((t) => badge(t.replace(/_/g, " ")))))),
      COLUMNS.map(([label, get, kind]) => h("td", { dataset: { label } }, show(get(p), kind, p.currency))))))));
}

/** Horizontal bars of one metric per product, the main product highlighted. */
function bars(title, products, get, { format, lowerIsBetter = false } = {}) {
  const values = products.map((p) => {
    const m = get(p);
    return m && m.value !== null && m.value !== undefined ? Number(m.value) : null;
  });
  const max = Math.max(...values.filter((v) => v !== null), 0);
  if (!max) return null;
  return h("div", { class: "bars" }, h("h3", { text: title + (lowerIsBetter ? " (lower is better)" : "") }),
    products.map((p, i) => {
      const v = values[i];
      const bar = h("span", { class: "bar-fill" });
      bar.style.width = v === null ? "0" : Math.max(2, (v / max) * 100) + "%";
      bar.style.background = i === 0 ? PALETTE[0] : "#b8c2d1";
      return h("div", { class: "bar-row" + (i === 0 ? " is-main" : "") },
        h("span", { class: "bar-label", title: p.title || p.asin, text: i === 0 ? "★ " + p.asin : p.asin }),
        h("span", { class: "bar-track" }, bar),
        h("span", { class: "bar-value", text: v === null ? "–" : format(v, p) }));
    }));
}

function charts(cmp) {
  const products = [cmp.main, ...cmp.competitors.map((c) => c.product)];
  const parts = [
    bars("Price", products, (p) => p.price, { format: (v, p) => fmtMoney(v, p.currency) }),
    bars("Best Seller Rank", products, (p) => p.bsr_rank, { format: fmtRank, lowerIsBetter: true }),
    bars("Rating", products, (p) => p.rating, { format: (v) => v.toFixed(1) + " ★" }),
    bars("Reviews", products, (p) => p.review_count, { format: fmtInt }),
    bars("New reviews per day", products, (p) => p.review_velocity, { format: (v) => v.toFixed(2) }),
  ].filter(Boolean);
  return parts.length ? h("div", { class: "grid-2 bar-grid" }, parts) : empty("No numbers to chart yet.");
}

function featureMatrix(features, cmp) {
  const products = features.products || [];
  if (!products.length) return empty("No features found yet.");
  const names = [];
  for (const p of products) for (const name of Object.keys(p.features || {})) if (!names.includes(name)) names.push(name);
  if (!names.length) return empty("No features could be read from these listings.");
  const lacks = new Set(features.comparison && features.comparison.main_lacks ? features.comparison.main_lacks.map((x) => (typeof x === "string" ? x : x.name)) : []);
  const only = new Set(features.comparison && features.comparison.main_only ? features.comparison.main_only.map((x) => (typeof x === "string" ? x : x.name)) : []);
  const titles = new Map([[cmp.main.asin, cmp.main.title], ...cmp.competitors.map((c) => [c.asin, c.title])]);
  return h("div", { class: "table-host" }, h("table", { class: "table compact", id: "feature-table" },
    h("thead", {}, h("tr", {}, h("th", { text: "Feature" }),
      products.map((p, i) => h("th", { title: titles.get(p.asin) || p.asin, text: i === 0 ? "★ " + p.asin : p.asin })))),
    h("tbody", {}, names.map((name) => h("tr", {},
      h("td", { dataset: { label: "Feature" } }, h("span", { text: name.replace(/_/g, " ") }), " ",
        lacks.has(name) ? badge("you lack it", "danger") : null, only.has(name) ? badge("only you", "ok") : null),
      products.map((p, i) => {
        const f = p.features && p.features[name];
        return h("td", { dataset: { label: i === 0 ? "★ " + p.asin : p.asin }, class: i === 0 ? "is-main-cell" : null },
          f ? h("span", { class: "yes", title: f.evidence ? `“${f.evidence.text}” (${f.evidence.source})` : "", text: "✓ " + f.label })
            : h("span", { class: "no", text: "✗" }));
      }))))));
}

function reportView(report) {
  const r = report.report;
  if (!r) return empty("This report has no content.");
  const points = (title, items) => (items && items.length
    ? h("div", { class: "report-section" }, h("h3", { text: title }),
      h("ul", {}, items.map((p) => h("li", {}, h("span", { text: p.text }), " ", h("small", { class: "muted", text: p.metric })))))
    : null);
  return h("div", { class: "report", id: "report-body" },
    h("p", { class: "report-summary", text: r.summary }),
    h("div", { class: "grid-2" }, points("Strengths", r.strengths), points("Weaknesses", r.weaknesses), points("Threats", r.threats)),
    r.recommendations && r.recommendations.length
      ? h("div", { class: "report-section" }, h("h3", { text: "Recommendations" }),
        h("ol", {}, [...r.recommendations].sort((a, b) => a.priority - b.priority).map((rec) => h("li", {},
          h("strong", { text: rec.action }), " ", badge(rec.expected_impact + " impact", rec.expected_impact === "high" ? "ok" : ""),
          h("div", { class: "muted small", text: rec.rationale })))))
      : null,
    h("p", { class: "muted small", text: [
      report.generated_by === "llm" ? `Written by ${report.model || "the language model"}` : "Written by rules",
      report.sandbox ? "(sandbox model)" : "",
      report.fallback_reason ? `fallback: ${report.fallback_reason}` : "",
      report.usage && report.usage.cost_usd !== null && report.usage.cost_usd !== undefined ? `cost $${report.usage.cost_usd < 0.01 ? report.usage.cost_usd.toPrecision(2) : report.usage.cost_usd.toFixed(2)}` : "",
      `finished ${fmtDateTime(report.finished_at)}`,
    ].filter(Boolean).join(" · ") }));
}

function statusBadge(status) {
  return badge(words("status", status), status === "done" ? "ok" : status === "failed" ? "danger" : "info");
}

/** Rename, pause or resume, add and remove competitors; limits shown before they bite. */
function editPanel(group, { onChanged }) {
  const min = group.min_competitors || 3;
  const max = group.max_competitors || 5;
  const errors = h("div", { class: "form-errors", id: "group-edit-errors" });
  const fail = (err) => errors.replaceChildren(errorBox(err));
  const call = async (work) => {
    errors.replaceChildren();
    try {
      const g = await work();
      onChanged(g);
    } catch (err) {
      fail(err);
    }
  };

  const name = h("input", { type: "text", id: "group-rename", maxlength: 120, required: true, value: group.name, "aria-label": "Group name" });
  const rename = h("button", { class: "btn btn-small", type: "submit", id: "group-rename-save" }, "Rename");
  const renameForm = h("form", { class: "toolbar" }, name, rename);
  renameForm.addEventListener("submit", (e) => {
    e.preventDefault();
    busy(rename, () => call(() => api.patch(endpoints.competitorGroup(group.id), { name: name.value.trim() })));
  });

  const pause = h("button", { class: "btn btn-small", type: "button", id: "group-pause" }, group.is_active ? "Pause group" : "Resume group");
  pause.addEventListener("click", () => busy(pause, () => call(() => api.patch(endpoints.competitorGroup(group.id), { is_active: !group.is_active }))));
  const pauseNote = h("small", { class: "muted", text: group.is_active ? "Paused groups get no daily fetch and no weekly report." : "Paused: no daily fetch, no weekly report." });

  const n = group.competitors.length;
  const members = h("ul", { class: "plain-list member-list", id: "group-members" }, group.competitors.map((p) => {
    const remove = h("button", { class: "btn btn-small btn-danger-ghost", type: "button", disabled: n <= min,
      dataset: { removeAsin: p.asin }, "aria-label": `Remove ${p.title || p.asin}` }, "Remove");
    if (n <= min) remove.title = `A group keeps at least ${min} competitors: add one before removing this one.`;
    remove.addEventListener("click", () => busy(remove, () => call(() => api.del(endpoints.competitorGroupCompetitor(group.id, p.asin)))));
    return h("li", { class: "card-row" }, h("span", {}, h("span", { class: "asin", text: p.asin }), " ", h("span", { text: p.title || "" })), remove);
  }));
  const full = n >= max;
  const competitor = h("input", { type: "text", id: "competitor-add", placeholder: "ASIN, Amazon URL or short link", disabled: full, "aria-label": "Competitor to add" });
  const add = h("button", { class: "btn btn-small", type: "submit", id: "competitor-add-submit", disabled: full }, "Add competitor");
  const addForm = h("form", { class: "toolbar" }, competitor, add);
  addForm.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!competitor.value.trim()) return competitor.focus();
    return busy(add, () => call(() => api.post(endpoints.competitorGroupCompetitors(group.id), { competitor: competitor.value.trim() })));
  });
  const usage = h("p", { class: full ? "notice small" : "muted small", id: "competitor-usage",
    text: full ? `${n} of ${max} competitors: remove one to add another.` : `${n} of ${max} competitors (at least ${min}).` });
  return h("section", { class: "panel", id: "group-edit" }, h("h2", { class: "panel-title", text: "Edit group" }),
    renameForm, h("div", { class: "toolbar" }, pause, pauseNote),
    h("h3", { text: "Competitors" }), usage, members, addForm, errors);
}

export async function renderGroup(main, params, ctx) {
  const id = params.id;
  const controller = new AbortController();
  let windowKey = ctx.query.get("window") || "30d";
  if (!WINDOWS.includes(windowKey)) windowKey = "30d";
  let group;
  try {
    group = await api.get(endpoints.competitorGroup(id));
  } catch (err) {
    main.append(h("p", { class: "crumbs" }, link("/competitors", "← Competitor groups")), errorBox(err));
    return;
  }
  const windowTabs = h("div", { class: "tabs tabs-compact" });
  const status = h("div", {});
  const table = h("div", {}, loading("Comparing…"));
  const chartHost = h("div", {});
  const featureHost = h("div", {});
  const reportsHost = h("div", {}, loading("Loading reports…"));
  const reportHost = h("div", { id: "report" });
  const writeBtn = h("button", { class: "btn btn-primary", type: "button", id: "write-report" }, "Write a report");

  const editHost = h("div", {});
  const drawEdit = (g) => {
    group = g;
    editHost.replaceChildren(editPanel(g, {
      onChanged: (changed) => {
        toast("Group saved", "ok");
        main.querySelector("#group-title").textContent = changed.name;
        drawEdit(changed);
        loadComparison();
      },
    }));
  };
  const exportButton = h("button", { class: "btn btn-small", type: "button", id: "export-comparison" }, "Export CSV");
  exportButton.addEventListener("click", () => busy(exportButton, async () => {
    const name = await api.download(endpoints.competitorGroupComparison(id), { window: windowKey }, "comparison.csv");
    toast(`Downloaded ${name}`, "ok");
  }));

  const remove = h("button", { class: "btn btn-danger-ghost btn-small", type: "button" }, "Delete group");
  confirmClick(remove, {
    confirmLabel: "Click again to delete",
    onConfirm: async () => {
      await api.del(endpoints.competitorGroup(id));
      ctx.navigate("/competitors");
    },
  });

  function drawWindows() {
    windowTabs.replaceChildren(...WINDOWS.map((w) => {
      const b = h("button", { type: "button", class: "tab" + (w === windowKey ? " active" : "") }, w);
      b.addEventListener("click", () => {
        windowKey = w;
        history.replaceState(null, "", `/competitors/${id}?window=${w}`);
        loadComparison();
      });
      return b;
    }));
  }

  async function loadComparison() {
    drawWindows();
    table.replaceChildren(loading("Comparing…"));
    try {
      const out = await api.get(endpoints.competitorGroupComparison(id), { window: windowKey });
      if (controller.signal.aborted) return;
      table.replaceChildren(comparisonTable(out.comparison));
      chartHost.replaceChildren(charts(out.comparison));
      featureHost.replaceChildren(featureMatrix(out.features || {}, out.comparison));
      return out;
    } catch (err) {
      table.replaceChildren(errorBox(err, loadComparison));
      return null;
    }
  }

  async function showReport(reportId) {
    reportHost.replaceChildren(h("div", { class: "progress", id: "report-progress" }, h("span", { class: "spinner" }), "Writing the report…"));
    try {
      const done = await poll(async () => {
        const r = await api.get(endpoints.competitorGroupReport(id, reportId));
        const progress = reportHost.querySelector("#report-progress");
        if (progress && (r.status === "queued" || r.status === "running")) {
          progress.lastChild.textContent = r.status === "queued" ? "Queued: waiting for a worker…" : "Writing the report…";
        }
        return r.status === "done" || r.status === "failed" ? r : null;
      }, { interval: POLL_MS, signal: controller.signal });
      if (controller.signal.aborted) return;
      reportHost.replaceChildren(done.status === "failed"
        ? errorBox({ code: "REPORT_FAILED", message: done.error || "the report could not be written" })
        : h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", { class: "panel-title", text: `Positioning report (${done.window_days} days)` }), statusBadge(done.status)), reportView(done)));
      loadReports();
    } catch (err) {
      reportHost.replaceChildren(errorBox(err));
    }
  }

  async function loadReports() {
    try {
      const page = await api.get(endpoints.competitorGroupReports(id), { limit: 10 });
      if (!page.items.length) {
        reportsHost.replaceChildren(empty("No reports yet: write one to get strengths, weaknesses and what to do next."));
        return page;
      }
      reportsHost.replaceChildren(h("ul", { class: "plain-list", id: "report-list" }, page.items.map((r) => {
        const open = h("button", { class: "btn btn-small", type: "button", disabled: r.status === "failed" }, "Open");
        open.addEventListener("click", () => showReport(r.id));
        return h("li", { class: "card-row" }, h("span", {}, statusBadge(r.status), " ",
          h("span", { text: `${r.window_days}-day report · ${r.trigger} · ${fmtDateTime(r.created_at)}` }),
          r.error ? h("small", { class: "muted", text: " " + r.error }) : null), open);
      })));
      return page;
    } catch (err) {
      reportsHost.replaceChildren(errorBox(err, loadReports));
      return null;
    }
  }

  writeBtn.addEventListener("click", async () => {
    writeBtn.disabled = true;
    try {
      const r = await api.post(endpoints.competitorGroupReports(id), { window: windowKey });
      loadReports();
      await showReport(r.id);
    } catch (err) {
      toast(err.message, "error");
    } finally {
      writeBtn.disabled = false;
    }
  });

  const members = [group.main, ...group.competitors];
  function drawStatus(g) {
    const pending = [g.main, ...g.competitors].filter((p) => p.fetch_status === "pending");
    status.replaceChildren(...(pending.length
      ? [h("div", { class: "progress", id: "group-progress" }, h("span", { class: "spinner" }), `Fetching ${pending.length} of ${members.length} products…`)]
      : []));
    return pending.length === 0;
  }

  main.append(
    h("p", { class: "crumbs" }, link("/competitors", "← Competitor groups")),
    h("div", { class: "page-head" }, h("h1", { id: "group-title", text: group.name }),
      group.data_source === "sandbox" ? badge("sandbox data", "sandbox") : null, group.is_active ? null : badge("paused", "muted"),
      h("div", { class: "grow" }), windowTabs, exportButton, remove),
    status,
    h("details", { class: "panel-fold", id: "group-edit-fold", open: true }, h("summary", { class: "btn btn-small" }, "Edit group"), editHost),
    h("section", { class: "panel" }, h("h2", { class: "panel-title", text: "Side by side" }), table),
    h("section", { class: "panel" }, h("h2", { class: "panel-title", text: "How they compare" }), chartHost),
    h("section", { class: "panel" }, h("h2", { class: "panel-title", text: "Features present and missing" }), featureHost),
    h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", { class: "panel-title", text: "Reports" }), writeBtn), reportsHost),
    reportHost);
  drawEdit(group);

  if (!drawStatus(group)) {
    poll(async () => {
      const g = await api.get(endpoints.competitorGroup(id));
      const ready = drawStatus(g);
      if (ready) loadComparison();
      return ready;
    }, { interval: 2500, signal: controller.signal }).catch(() => {});
  }
  await loadComparison();
  const reports = await loadReports();
  const latest = reports && reports.items.find((r) => r.status === "done");
  const inFlight = reports && reports.items.find((r) => r.status === "queued" || r.status === "running");
  if (inFlight) showReport(inFlight.id);
  else if (latest) showReport(latest.id);
  return () => controller.abort();
}

