// Optimization: the listing score rule by rule, ranked suggestions (generated in the
// background), experiments started from a suggestion, and their before/after results.

import * as api from "../api.js";
import * as endpoints from "../endpoints.js";
import { timeChart } from "../charts.js";
import {
  badge, busy, empty, errorBox, fmtDateTime, fmtPct, h, link, loading, poll, toast,
} from "../dom.js";
import { formatter } from "./product.js";

const POLL_MS = 1500;
const VERDICTS = {
  improved: ["Improved", "ok"],
  worse: ["Worse", "danger"],
  no_detectable_effect: ["No detectable effect", "muted"],
  too_early: ["Too early to tell", "info"],
};
// experiment metric -> history metric and how to show it
const EXPERIMENT_METRICS = {
  bsr: ["bsr", "BSR", "rank", true],
  subcategory_bsr: ["subcategory_bsr", "Sub-category BSR", "rank", true],
  rating: ["rating", "Rating", "rating", false],
  price: ["price", "Price", "money", false],
  review_velocity: ["review_count", "Reviews", "int", false],
};

function verdictBadge(verdict) {
  const [text, kind] = VERDICTS[verdict] || [verdict || "not analysed", "muted"];
  return badge(text, kind);
}

function meter(score) {
  const m = h("span", { class: "meter" }, h("span", {}));
  m.firstChild.style.width = Math.round(Math.max(0, Math.min(1, score)) * 100) + "%";
  return m;
}

// ------------------------------------------------------------------ index

export async function renderIndex(main) {
  const host = h("div", {}, loading("Loading your products…"));
  main.append(h("div", { class: "page-head" }, h("h1", { text: "Listing optimization" })),
    h("p", { class: "muted", text: "Pick a product to see its listing score, get ranked suggestions and measure the changes you make." }), host);
  try {
    const page = await api.get(endpoints.products(), { limit: 200, sort: "alias" });
    if (!page.items.length) {
      host.replaceChildren(empty("Track a product first: optimization works on your tracked products."));
      return;
    }
    host.replaceChildren(h("ul", { class: "card-list", id: "optimization-products" }, page.items.map((p) =>
      h("li", { class: "card card-row" },
        h("div", {}, link(`/optimization/${p.id}`, h("strong", { class: "break", text: p.alias || p.title || p.asin })),
          h("div", { class: "muted small" }, h("span", { class: "asin", text: p.asin }), " ",
            p.data_source === "sandbox" ? badge("sandbox", "sandbox") : null)),
        link(`/optimization/${p.id}`, "Open →")))));
  } catch (err) {
    host.replaceChildren(errorBox(err));
  }
}

// ------------------------------------------------------------------ product

function scoreView(score) {
  const rules = score.rules || [];
  return h("div", { id: "listing-score" },
    h("div", { class: "score" },
      h("div", { class: "score-ring grade-" + score.grade, title: `grade ${score.grade}`, text: Math.round(score.total) }),
      h("div", {}, h("div", { class: "verdict", text: `Grade ${score.grade} · ${score.total.toFixed(1)} / 100` }),
        score.competitor_group
          ? h("div", { class: "muted small" }, "Against the group ", link(`/competitors/${score.competitor_group.id}`, h("span", { text: score.competitor_group.name })))
          : null,
        (score.notes || []).map((n) => h("div", { class: "muted small", text: n })))),
    h("div", { class: "table-host" }, h("table", { class: "table compact", id: "score-rules" },
      h("thead", {}, h("tr", {}, ["Rule", "Score", "Points", "Measured", "What would raise it"].map((t) => h("th", { text: t })))),
      h("tbody", {}, rules.map((r) => h("tr", { class: r.applicable ? null : "muted" },
        h("td", { dataset: { label: "Rule" } }, h("strong", { text: r.name }), " ",
          !r.applicable ? badge("not scored", "muted") : r.passed ? badge("pass", "ok") : badge("fail", "danger")),
        h("td", { dataset: { label: "Score" } }, meter(r.applicable ? r.score : 0)),
        h("td", { dataset: { label: "Points" }, text: `${r.points.toFixed(1)} / ${r.weight}` }),
        h("td", { dataset: { label: "Measured" }, class: "break", text: r.detail }),
        h("td", { dataset: { label: "Advice" }, class: "break", text: r.advice || "–" })))))),
    score.missing_keywords && score.missing_keywords.length
      ? h("p", {}, h("strong", { text: "Keywords competitors use that your title lacks: " }),
        score.missing_keywords.slice(0, 12).map((k) => [badge(k), " "]))
      : null);
}

function suggestionItem(s, productId, ctx) {
  const start = h("button", { class: "btn btn-small btn-primary", type: "button", dataset: { action: "experiment" } }, "Start experiment");
  start.addEventListener("click", () => busy(start, async () => {
    const change = `${s.type} suggestion #${s.priority}: ${s.change}`.slice(0, 2000);
    const exp = await api.post(endpoints.experiments(), { product_id: productId, suggestion_id: s.id, change });
    toast("Experiment started: make the change on Amazon now", "ok");
    ctx.navigate(`/experiments/${exp.id}`);
  }));
  return h("li", { class: "card suggestion", dataset: { suggestionId: s.id } },
    h("div", { class: "card-row" },
      h("div", {}, h("strong", { text: `#${s.priority} ` }), badge(s.type), " ",
        badge(`impact ${s.impact}`, s.impact === "high" ? "ok" : ""), " ", badge(`effort ${s.effort}`), " ",
        s.source === "llm" ? badge("written by the model", "info") : badge("rules")),
      s.experiment_id ? link(`/experiments/${s.experiment_id}`, "View its experiment →") : start),
    h("pre", { class: "suggestion-change", text: s.change }),
    h("p", { class: "muted small" }, h("strong", { text: "Why: " }), s.reason));
}

export async function renderProduct(main, params, ctx) {
  const id = params.id;
  const controller = new AbortController();
  let product;
  try {
    product = await api.get(endpoints.product(id));
  } catch (err) {
    main.append(h("p", { class: "crumbs" }, link("/optimization", "← Optimization")), errorBox(err));
    return;
  }
  const scoreHost = h("div", {}, loading("Scoring the listing…"));
  const runHost = h("div", { id: "suggestions" });
  const expHost = h("div", {}, loading("Loading experiments…"));
  const candHost = h("div", {});
  const request = h("button", { class: "btn btn-primary", type: "button", id: "request-suggestions" }, "Get suggestions");

  main.append(
    h("p", { class: "crumbs" }, link("/optimization", "← Optimization"), " · ", link(`/products/${id}`, "Product page")),
    h("div", { class: "page-head" }, h("h1", { class: "product-heading", text: product.alias || product.title || product.asin }),
      product.data_source === "sandbox" ? badge("sandbox data", "sandbox") : null),
    h("section", { class: "panel" }, h("h2", { class: "panel-title", text: "Listing score" }), scoreHost),
    h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", { class: "panel-title", text: "Suggestions" }), request), runHost),
    h("section", { class: "panel" }, h("h2", { class: "panel-title", text: "Experiments" }), expHost, candHost));

  api.get(endpoints.productListingScore(id)).then(
    (score) => scoreHost.replaceChildren(scoreView(score)),
    (err) => scoreHost.replaceChildren(err.status === 409 ? empty(err.message) : errorBox(err)));

  async function showRun(runId) {
    runHost.replaceChildren(h("div", { class: "progress", id: "suggestion-progress" }, h("span", { class: "spinner" }), "Queued: waiting for a worker…"));
    request.disabled = true;
    try {
      const run = await poll(async () => {
        const r = await api.get(endpoints.optimization(runId));
        const p = runHost.querySelector("#suggestion-progress");
        if (p && r.status === "running") p.lastChild.textContent = "Analysing the listing and its competitors…";
        return r.status === "done" || r.status === "failed" ? r : null;
      }, { interval: POLL_MS, signal: controller.signal });
      if (controller.signal.aborted) return;
      if (run.status === "failed") {
        runHost.replaceChildren(errorBox({ code: "SUGGESTIONS_FAILED", message: run.error || "the suggestions could not be generated" }));
        return;
      }
      runHost.replaceChildren(
        run.notice ? h("p", { class: "notice small", text: run.notice }) : null,
        run.suggestions.length
          ? h("ol", { class: "card-list", id: "suggestion-list" }, [...run.suggestions].sort((a, b) => a.priority - b.priority).map((s) => suggestionItem(s, id, ctx)))
          : empty("No suggestions: this listing already follows every rule we check."),
        h("p", { class: "muted small", text: [
          run.generated_by === "llm" ? `Copy by ${run.model || "the model"}` : "Rules only",
          run.fallback_reason ? `fallback: ${run.fallback_reason}` : "",
          `generated ${fmtDateTime(run.finished_at)}`].filter(Boolean).join(" · ") }));
    } catch (err) {
      runHost.replaceChildren(errorBox(err));
    } finally {
      request.disabled = false;
    }
  }

  request.addEventListener("click", async () => {
    request.disabled = true;
    try {
      const run = await api.post(endpoints.productOptimizations(id));
      await showRun(run.id);
    } catch (err) {
      request.disabled = false;
      runHost.replaceChildren(errorBox(err));
    }
  });

  async function loadExperiments() {
    try {
      const page = await api.get(endpoints.experiments(), { product_id: id, limit: 50 });
      expHost.replaceChildren(page.items.length
        ? h("ul", { class: "plain-list", id: "experiment-list" }, page.items.map((e) => h("li", { class: "card-row" },
          h("span", {}, verdictBadge(e.verdict), " ", link(`/experiments/${e.id}`, h("span", { text: e.change.split("\n")[0].slice(0, 120) })),
            h("small", { class: "muted", text: ` · changed ${fmtDateTime(e.changed_at)} · ${e.status}` })))))
        : empty("No experiments yet. Start one from a suggestion, or from a change found in the history below."));
    } catch (err) {
      expHost.replaceChildren(errorBox(err, loadExperiments));
    }
  }

  async function loadCandidates() {
    try {
      const out = await api.get(endpoints.experimentCandidates(), { product_id: id });
      if (!out.items.length) return;
      candHost.replaceChildren(h("h3", { text: "Changes found in the history" }),
        h("ul", { class: "plain-list" }, out.items.slice(0, 8).map((c) => {
          const measure = h("button", { class: "btn btn-small", type: "button" }, "Measure it");
          measure.addEventListener("click", () => busy(measure, async () => {
            const exp = await api.post(endpoints.experiments(), { product_id: id, change: c.change, changed_at: c.changed_at });
            ctx.navigate(`/experiments/${exp.id}`);
          }));
          return h("li", { class: "card-row" }, h("span", { class: "break", text: `${c.date}: ${c.change}` }), measure);
        })));
    } catch {
      /* optional: the list of past changes is a shortcut only */
    }
  }

  loadExperiments();
  loadCandidates();
  try {
    const runs = await api.get(endpoints.productOptimizations(id), { limit: 1 });
    const last = runs.items[0];
    if (last) showRun(last.id);
    else runHost.replaceChildren(empty("No suggestions yet: “Get suggestions” ranks what to change by impact over effort."));
  } catch (err) {
    runHost.replaceChildren(errorBox(err));
  }
  return () => controller.abort();
}

// ------------------------------------------------------------------ experiment

function effectText(m) {
  if (m.effect === null || m.effect === undefined) return "–";
  if (m.effect_pct !== null && m.effect_pct !== undefined) return fmtPct(m.effect_pct * 100);
  return (m.effect > 0 ? "+" : "") + m.effect.toFixed(2) + " " + m.unit;
}

export async function renderExperiment(main, params, ctx) {
  const id = params.id;
  let exp;
  try {
    exp = await api.get(endpoints.experiment(id));
  } catch (err) {
    main.append(h("p", { class: "crumbs" }, link("/optimization", "← Optimization")), errorBox(err));
    return;
  }
  const a = exp.analysis || {};
  const metrics = a.metrics || {};
  const chartHost = h("div", { class: "chart", id: "experiment-chart" });
  const tabs = h("div", { class: "tabs" });
  let chart = null;
  let current = a.primary_metric && EXPERIMENT_METRICS[a.primary_metric] ? a.primary_metric : "bsr";

  const stop = h("button", { class: "btn", type: "button", hidden: exp.status !== "running" }, "Stop and freeze the result");
  stop.addEventListener("click", () => busy(stop, async () => {
    await api.post(endpoints.experimentStop(id));
    ctx.navigate(location.pathname, { replace: true });
  }));

  async function draw() {
    tabs.replaceChildren(...Object.keys(EXPERIMENT_METRICS).filter((k) => metrics[k] || k === current).map((k) => {
      const b = h("button", { type: "button", class: "tab" + (k === current ? " active" : "") }, EXPERIMENT_METRICS[k][1]);
      b.addEventListener("click", () => { current = k; draw(); });
      return b;
    }));
    if (chart) chart.destroy();
    chart = null;
    chartHost.replaceChildren(loading("Loading history…"));
    const [metric, label, kind, invert] = EXPERIMENT_METRICS[current];
    const changed = new Date(exp.changed_at).getTime();
    const start = a.before_window ? new Date(a.before_window.start).getTime() : changed - 28 * 86400e3;
    const end = a.after_window ? new Date(a.after_window.end).getTime() + 86400e3 : Date.now();
    try {
      const hist = await api.get(endpoints.productHistory(exp.product_id), {
        metric, from: new Date(start - 86400e3).toISOString(), to: new Date(Math.min(end + 86400e3, Date.now())).toISOString(), interval: "day" });
      const times = hist.points.map((p) => new Date(p.t).getTime() / 1000);
      const values = hist.points.map((p) => p.v);
      if (!values.some((v) => v !== null)) {
        chartHost.replaceChildren(empty(`No ${label} history around the change.`));
        return;
      }
      const mean = (xs) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : null);
      const before = mean(values.filter((v, i) => v !== null && times[i] * 1000 < changed));
      const after = mean(values.filter((v, i) => v !== null && times[i] * 1000 >= changed));
      // the control: the daily mean of the group's competitors (what the product is compared with)
      const controlByDay = new Map(((a.control_series || {})[metric] || []).map((p) => [p.date, p.value]));
      const control = times.map((t) => controlByDay.get(new Date(t * 1000).toISOString().slice(0, 10)) ?? null);
      const controlSeries = control.some((v) => v !== null)
        ? [{ label: "control (competitors' mean)", values: control, color: "#9b5de5", width: 1.5 }] : [];
      chartHost.dataset.control = String(controlSeries.length ? control.filter((v) => v !== null).length : 0);
      chartHost.replaceChildren();
      chart = await timeChart(chartHost, {
        times, invert, format: formatter(kind, "USD"),
        markers: [{ t: changed / 1000, v: null, severity: "info" }],
        series: [
          { label, values },
          ...controlSeries,
          { label: "before mean", values: times.map((t) => (t * 1000 < changed ? before : null)), color: "#9aa5b5", width: 2 },
          { label: "after mean", values: times.map((t) => (t * 1000 >= changed ? after : null)), color: "#17a398", width: 2 },
        ],
      });
      chartHost.dataset.state = "ready";
    } catch (err) {
      chartHost.replaceChildren(errorBox(err, draw));
    }
  }

  const rows = Object.values(metrics).map((m) => h("tr", {},
    h("td", { dataset: { label: "Metric" } }, h("strong", { text: (EXPERIMENT_METRICS[m.metric] || [m.metric, m.metric])[1] }),
      m.informational ? h("small", { class: "muted", text: "informational" }) : null),
    h("td", { dataset: { label: "Verdict" } }, verdictBadge(m.verdict)),
    h("td", { dataset: { label: "Effect" }, text: effectText(m) }),
    h("td", { dataset: { label: "Interval" }, text: m.ci_low === null || m.ci_low === undefined ? "–" : `${m.ci_low.toFixed(3)} … ${m.ci_high.toFixed(3)} ${m.unit}` }),
    h("td", { dataset: { label: "p" }, text: m.p_value === null || m.p_value === undefined ? "–" : m.p_value.toFixed(3) }),
    h("td", { dataset: { label: "Days" }, text: `${m.n_before} / ${m.n_after}` }),
    h("td", { dataset: { label: "Controls" }, text: String(m.n_controls) })));

  main.append(
    h("p", { class: "crumbs" }, link(`/optimization/${exp.product_id}`, "← Optimization of " + exp.asin)),
    h("section", { class: "panel", id: "experiment" },
      h("div", { class: "panel-head" }, h("h1", { class: "verdict-title" }, "Experiment: ", verdictBadge(exp.verdict)), stop),
      h("pre", { class: "suggestion-change", text: exp.change }),
      h("p", { class: "muted small", text: [
        `changed ${fmtDateTime(exp.changed_at)}`, exp.status,
        a.before_window ? `before ${a.before_window.start} – ${a.before_window.end}` : "",
        a.after_window ? `after ${a.after_window.start} – ${a.after_window.end}` : "",
        a.confidence ? `${Math.round(a.confidence * 100)}% confidence` : "",
        exp.analyzed_at ? `analysed ${fmtDateTime(exp.analyzed_at)}` : ""].filter(Boolean).join(" · ") }),
      exp.verdict === "too_early" ? h("p", { class: "notice", text: "Too early: the after window needs more days of data. The verdict updates as data arrives." }) : null),
    h("section", { class: "panel" }, h("h2", { class: "panel-title", text: "Before and after" }), tabs, chartHost,
      h("p", { class: "muted hint", text: "The dashed line is the change; grey and green lines are the means before and after." })),
    h("section", { class: "panel" }, h("h2", { class: "panel-title", text: "Result per metric" }),
      rows.length ? h("div", { class: "table-host" }, h("table", { class: "table compact", id: "experiment-metrics" },
        h("thead", {}, h("tr", {}, ["Metric", "Verdict", "Effect", "Interval", "p", "Days before / after", "Controls"].map((t) => h("th", { text: t })))),
        h("tbody", {}, rows))) : empty("No metric could be analysed yet."),
      (a.warnings || []).length ? h("ul", { class: "warnings" }, a.warnings.map((w) => h("li", { class: "muted small", text: w }))) : null));
  draw();
  return () => {
    if (chart) chart.destroy();
  };
}
