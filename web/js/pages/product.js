// Product detail: latest values and changes, interactive charts of each metric with
// alerts marked, thresholds, refresh now (with its cooldown), pause and stop.

import * as api from "../api.js";
import { alertMetric } from "../alert-types.js";
import * as endpoints from "../endpoints.js";
import { timeChart } from "../charts.js";
import { keywordsPanel, salesPanel } from "./market.js";
import {
  badge, busy, changeBadge, confirmClick, empty, errorBox, field, fmtAgo, fmtDateTime, fmtDuration, fmtInt,
  fmtMoney, fmtRank, h, link, loading, toast,
} from "../dom.js";
import { snoozeControl } from "../snooze.js";
import { words } from "../words.js";

export const METRICS = [
  { key: "price", label: "Price", kind: "money", latest: "price" },
  { key: "buy_box_price", label: "Buy Box price", kind: "money", latest: "buy_box_price" },
  { key: "list_price", label: "List price", kind: "money", latest: "list_price" },
  { key: "bsr", label: "BSR", kind: "rank", latest: "bsr_rank", invert: true },
  { key: "subcategory_bsr", label: "Sub-category BSR", kind: "rank", latest: "subcategory_bsr", invert: true },
  { key: "rating", label: "Rating", kind: "rating", latest: "rating" },
  { key: "review_count", label: "Reviews", kind: "int", latest: "review_count" },
  // charted only: numbers some actor formats report (offers listed, "10K+ bought in past month")
  { key: "offer_count", label: "Offers", kind: "int", latest: "offer_count", stat: false },
  { key: "bought_past_month", label: "Bought in past month", kind: "int", latest: "bought_past_month", stat: false },
];
export const RANGES = [["7d", 7], ["30d", 30], ["90d", 90], ["1y", 365]];

export function formatter(kind, currency) {
  if (kind === "money") return (v) => fmtMoney(v, currency);
  if (kind === "rank") return (v) => fmtRank(v === null || v === undefined ? v : Math.round(v));
  if (kind === "rating") return (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(2));
  return (v) => fmtInt(v === null || v === undefined ? v : Math.round(v));
}

function statCard(metric, product) {
  const latest = product.latest || {};
  const fmt = formatter(metric.kind, latest.currency);
  const changes = product.changes || {};
  const row = (label) => {
    const c = changes[label] && changes[label][metric.latest];
    // the products list shows the same numbers: a side without a price is "no price"
    const noPrice = metric.kind === "money" && c && (c.old === null || c.new === null);
    return h("div", { class: "stat-change" }, h("span", { class: "muted", text: label }),
      noPrice ? h("span", { class: "delta muted", text: "no price" }) : changeBadge(c ? c.change_pct : null, !!metric.invert));
  };
  return h("div", { class: "stat" }, h("div", { class: "stat-label", text: metric.label }),
    h("div", { class: "stat-value", text: fmt(latest[metric.latest]) }),
    h("div", { class: "stat-changes" }, row("1d"), row("7d"), row("30d")));
}

function availabilityText(value) {
  return value === "no_featured_offer" ? "No featured offer (Buy Box suppressed)" : words("availability", value);
}

/** Tags (add, remove) and a note on this tracked product; saved with PATCH. */
function organisePanel(product, onSaved) {
  let tags = [...(product.tags || [])];
  const chips = h("div", { class: "tag-list", id: "product-tags" });
  const input = h("input", { type: "text", id: "tag-input", maxlength: 32, placeholder: "Add a tag", "aria-label": "New tag" });
  const add = h("button", { class: "btn btn-small", type: "button", id: "tag-add" }, "Add tag");
  const notes = h("textarea", { id: "product-notes", rows: 3, maxlength: 2000, placeholder: "A note for yourself (only you see it)" });
  notes.value = product.notes || "";
  const save = h("button", { class: "btn btn-primary btn-small", type: "button", id: "notes-save" }, "Save note");
  const errors = h("div", { class: "form-errors" });
  async function store(body) {
    errors.replaceChildren();
    try {
      const saved = await api.patch(endpoints.product(product.id), body);
      tags = saved.tags;
      drawChips();
      onSaved(saved);
      return saved;
    } catch (err) {
      errors.append(errorBox(err));
      return null;
    }
  }
  function drawChips() {
    chips.replaceChildren(...(tags.length ? tags.map((t) => {
      const remove = h("button", { type: "button", class: "tag-remove", "aria-label": `Remove tag ${t}` }, "×");
      remove.addEventListener("click", () => store({ tags: tags.filter((x) => x !== t) }));
      return h("span", { class: "tag", dataset: { tag: t } }, link(`/products?tag=${encodeURIComponent(t)}`, t), remove);
    }) : [h("span", { class: "muted small", text: "No tags yet." })]));
  }
  async function addTag() {
    const tag = input.value.trim();
    if (!tag) return input.focus();
    if (await store({ tags: [...tags, tag] })) input.value = "";
  }
  add.addEventListener("click", () => busy(add, addTag));
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      busy(add, addTag);
    }
  });
  save.addEventListener("click", () => busy(save, async () => {
    if (await store({ notes: notes.value })) toast("Note saved", "ok");
  }));
  drawChips();
  return h("section", { class: "panel", id: "organise" }, h("h2", { class: "panel-title", text: "Tags and note" }),
    chips, h("div", { class: "toolbar" }, input, add),
    field("Note", notes), h("div", {}, save), errors);
}

/** Download this product's history (every metric) as CSV, at the chosen interval. */
function exportPanel(product, rangeOf) {
  const interval = h("select", { id: "export-interval", "aria-label": "Rows of the export" },
    [["day", "One row a day"], ["week", "One row a week"], ["raw", "Every observation"]].map(([v, l]) => h("option", { value: v }, l)));
  const button = h("button", { class: "btn btn-small", type: "button", id: "export-history" }, "Export history CSV");
  button.addEventListener("click", () => busy(button, async () => {
    const days = rangeOf();
    const from = new Date(Date.now() - days * 86400 * 1000).toISOString();
    const name = await api.download(endpoints.productHistory(product.id), { interval: interval.value, from },
      `history-${product.asin}.csv`);
    toast(`Downloaded ${name}`, "ok");
  }));
  return h("div", { class: "toolbar export-bar" }, h("span", { class: "muted small", text: "Every metric over the chosen range:" }), interval, button);
}

/** Who holds the Buy Box, whether it is the seller, and their share of it over time. */
function buyBoxPanel(product) {
  const bb = product.buy_box;
  if (!bb) return null;
  const latest = product.latest || {};
  let holder;
  if (bb.seller || bb.seller_id) {
    holder = [h("strong", { id: "buy-box-holder", text: bb.seller || bb.seller_id }),
      bb.seller && bb.seller_id ? h("span", { class: "muted", text: ` (seller id ${bb.seller_id})` }) : null];
  } else if (latest.availability === "no_featured_offer") {
    holder = h("strong", { id: "buy-box-holder", text: "nobody: Amazon shows no featured offer (suppressed)" });
  } else if (latest.availability === "out_of_stock") {
    holder = h("strong", { id: "buy-box-holder", text: "nobody: out of stock" });
  } else {
    holder = h("span", { id: "buy-box-holder", class: "muted", text: "not reported" });
  }
  const mine = bb.held_by_you === true ? badge("that is you", "ok")
    : bb.held_by_you === false ? badge("not you", "warn") : null;
  const shares = Object.entries(bb.share || {}).map(([label, w]) =>
    h("div", { class: "stat", dataset: { window: label } },
      h("div", { class: "stat-label", text: `Your share, ${label}` }),
      h("div", { class: "stat-value", text: w.share === null ? "–" : `${Math.round(w.share * 100)}%` }),
      h("div", { class: "muted small", text: w.held_days === null
        ? (w.days ? `${w.days} days observed` : "no day observed")
        : `${w.held_days} of ${w.days} days` })));
  return h("section", { class: "panel", id: "buy-box", dataset: { ownership: bb.ownership } },
    h("h2", { class: "panel-title", text: "Buy Box" }),
    h("p", {}, "Held by ", holder, " ", mine),
    h("section", { class: "stats" }, shares),
    bb.ownership === "unknown"
      ? h("p", { class: "notice small", id: "buy-box-note" }, h("span", { text: bb.note + ". " }), link("/settings", "Add your seller ids"))
      : h("p", { class: "muted hint", text: "Share of days (each day's last observation) on which one of your seller ids held the Buy Box; days without a reported seller are left out." }));
}

const THRESHOLD_FIELDS = [
  ["price_change_pct", "Price change (%)", "number", "0.1"],
  ["buy_box_price_change_pct", "Buy Box price change (%)", "number", "0.1"],
  ["bsr_change_pct", "BSR change (%)", "number", "1"],
  ["subcategory_bsr_change_pct", "Sub-category BSR change (%)", "number", "1"],
  ["rating_change", "Rating change (stars)", "number", "0.1"],
  ["review_count_jump", "Review count jump", "number", "1"],
  ["target_price", "Target price (empty: none)", "number", "0.01"],
  ["keyword_rank_drop_places", "Search rank drop (places)", "number", "1"],
  ["buy_box", "Buy Box alerts", "checkbox"],
  ["stock", "Stock alerts", "checkbox"],
  ["listing", "Listing change alerts", "checkbox"],
];

function thresholdsForm(product, onSaved) {
  const t = product.thresholds || {};
  const inputs = {};
  const rows = THRESHOLD_FIELDS.map(([key, label, type, step]) => {
    const input = type === "checkbox"
      ? h("input", { type: "checkbox", name: key, checked: t[key] !== false })
      : h("input", { type: "number", name: key, step, min: 0, value: t[key] === null || t[key] === undefined ? "" : t[key] });
    inputs[key] = input;
    return type === "checkbox" ? h("label", { class: "check" }, input, " ", label) : field(label, input);
  });
  const errors = h("div", { class: "form-errors" });
  const save = h("button", { class: "btn btn-primary", type: "submit" }, "Save thresholds");
  const form = h("form", { class: "form form-grid", id: "thresholds-form" }, rows, errors, h("div", {}, save));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    const body = {};
    for (const [key, , type] of THRESHOLD_FIELDS) {
      const input = inputs[key];
      if (type === "checkbox") body[key] = input.checked;
      else if (input.value === "") {
        if (key === "target_price") body[key] = null;
      } else body[key] = Number(input.value);
    }
    save.disabled = true;
    try {
      await api.patch(endpoints.product(product.id), { thresholds: body });
      toast("Thresholds saved", "ok");
      onSaved();
    } catch (err) {
      errors.append(errorBox(err));
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

/** The refresh button with its cooldown: from refresh_available_at or a 429's Retry-After. */
function refreshButton(product, onQueued) {
  const button = h("button", { class: "btn", type: "button", id: "refresh-now" }, "Refresh now");
  const note = h("small", { class: "muted", id: "refresh-note" });
  let timer = null;
  function cooldown(until) {
    clearInterval(timer);
    const tick = () => {
      const left = (until - Date.now()) / 1000;
      if (left <= 0) {
        clearInterval(timer);
        button.disabled = false;
        note.textContent = "";
        return;
      }
      button.disabled = true;
      note.textContent = `available again in ${fmtDuration(left)}`;
    };
    tick();
    timer = setInterval(tick, 1000);
  }
  if (product.refresh_available_at) cooldown(new Date(product.refresh_available_at).getTime());
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api.post(endpoints.productRefresh(product.id));
      toast("Refresh queued: new data in a minute or so", "ok");
      cooldown(Date.now() + 15 * 60 * 1000);
      onQueued();
    } catch (err) {
      if (err.status === 429 && err.retryAfter) cooldown(Date.now() + err.retryAfter * 1000);
      else button.disabled = false;
      toast(err.message, "error");
    }
  });
  return { el: h("span", { class: "refresh" }, button, " ", note), stop: () => clearInterval(timer) };
}

const CADENCES = [
  ["12h", "every 12 hours"], ["1d", "daily"], ["3d", "every 3 days"], ["7d", "weekly"],
  ["auto", "auto (every 3 days while stable)"],
];

// How often the daily plan fetches this product; a change is saved at once.
function cadenceControl(product, id, onSaved) {
  const select = h("select", { id: "refresh-every", "aria-label": "Refresh cadence" },
    CADENCES.map(([v, t]) => h("option", { value: v, selected: v === product.refresh_every }, t)));
  select.addEventListener("change", async () => {
    select.disabled = true;  // not busy(): it would overwrite the options with its label
    try {
      await api.patch(endpoints.product(id), { refresh_every: select.value });
      toast("Refresh cadence saved");
      onSaved();
    } catch (err) {
      select.value = product.refresh_every;
      toast(err.message, "error");
    } finally {
      select.disabled = false;
    }
  });
  const next = product.next_refresh_at ? `next fetch ${fmtDateTime(product.next_refresh_at)}` : "";
  const why = product.budget_stretched
    ? "weekly for now: your monthly fetch budget would not fit (Settings)"
    : product.refresh_every === "auto" ? `now ${product.refresh_cadence}` : "";
  return h("label", { class: "cadence" },
    "Refresh ", select, " ", h("span", { class: "muted", id: "cadence-note", text: [why, next].filter(Boolean).join(" · ") }));
}

export async function render(main, params, ctx) {
  const id = params.id;
  let product;
  try {
    product = await api.get(endpoints.product(id));
  } catch (err) {
    main.append(h("p", {}, link("/products", "← Products")), errorBox(err, () => ctx.navigate(location.pathname, { replace: true })));
    return;
  }
  if (!ctx.isCurrent()) return;
  const cleanups = [];
  const latest = product.latest || {};
  const reload = () => ctx.navigate(location.pathname + location.search, { replace: true });

  const refresh = refreshButton(product, () => {});
  cleanups.push(refresh.stop);
  const pause = h("button", { class: "btn", type: "button" }, product.is_paused ? "Resume tracking" : "Pause tracking");
  pause.addEventListener("click", () => busy(pause, async () => {
    await api.patch(endpoints.product(id), { is_paused: !product.is_paused });
    reload();
  }));
  const stop = h("button", { class: "btn btn-danger-ghost", type: "button" }, "Stop tracking");
  confirmClick(stop, {
    confirmLabel: "Click again to stop",
    onConfirm: async () => {
      await api.del(endpoints.product(id));
      toast("Stopped tracking " + product.asin);
      ctx.navigate("/products");
    },
  });

  const badges = [];
  if (product.data_source === "sandbox") badges.push(badge("sandbox data", "sandbox"));
  if (product.is_paused) badges.push(badge("paused", "muted"));
  if (product.fetch_status === "pending") badges.push(badge("first fetch pending", "info"));
  if (product.fetch_status === "not_found") badges.push(badge("not found on Amazon", "danger"));
  if (product.fetch_error) {
    const failed = badge(product.fetch_status === "failed" ? "fetch failed" : "last fetch failed", "danger");
    failed.title = product.fetch_error;  // why, in the fetcher's words
    badges.push(failed);
  }
  if (product.stale) badges.push(badge("stale", "warn"));

  const image = product.image_url && /^https:\/\//i.test(product.image_url)
    ? h("img", { class: "hero-img", src: product.image_url, alt: "", referrerpolicy: "no-referrer", onerror: (e) => e.target.remove() }) : null;
  main.append(
    h("p", { class: "crumbs" }, link("/products", "← Products")),
    h("section", { class: "hero" }, image,
      h("div", { class: "hero-text" },
        h("h1", { class: "product-heading", id: "product-title", text: product.alias || product.title || product.asin }),
        product.alias && product.title ? h("p", { class: "muted", text: product.title }) : null,
        h("p", { class: "hero-meta" },
          h("a", { href: product.url, target: "_blank", rel: "noopener noreferrer", text: product.asin + " on Amazon ↗" }),
          product.brand ? h("span", { text: " · " + product.brand }) : null,
          h("span", { class: "muted", title: fmtDateTime(product.as_of), text: " · updated " + fmtAgo(product.as_of) }),
          " ", badges),
        h("div", { class: "actions" }, refresh.el, pause, stop, cadenceControl(product, id, reload),
          snoozeControl({ tracked_product_id: id }, { label: "Snooze alerts", id: "snooze-product" }),
          link(`/optimization/${id}`, "Optimize listing"), link(`/alerts?product_id=${id}`, "Alerts")))),
    h("section", { class: "stats" }, METRICS.filter((m) => m.stat !== false).map((m) => statCard(m, product))),
    latest.availability
      ? h("p", { class: "muted", id: "availability" },
        `Availability: ${availabilityText(latest.availability)}${latest.stock_count ? ` (${latest.stock_count} left)` : ""}.`)
      : null,
    buyBoxPanel(product),
    organisePanel(product, () => {}),
  );

  // --- chart
  const state = { metric: ctx.query.get("metric") || "price", range: ctx.query.get("range") || "30d" };
  if (!METRICS.some((m) => m.key === state.metric)) state.metric = "price";
  if (!RANGES.some(([r]) => r === state.range)) state.range = "30d";
  const metricTabs = h("div", { class: "tabs", role: "tablist", "aria-label": "Metric" });
  const rangeTabs = h("div", { class: "tabs tabs-compact", role: "tablist", "aria-label": "Range" });
  const chartHost = h("div", { class: "chart", id: "chart" });
  const alertList = h("div", { class: "chart-alerts" });
  let chart = null;
  let alertsCache = null;
  let chartTicket = 0;

  async function productAlerts() {
    if (!alertsCache) {
      alertsCache = api.get(endpoints.alerts(), { product_id: id, limit: 500 }).then((p) => p.items, () => []);
    }
    return alertsCache;
  }

  function drawTabs() {
    metricTabs.replaceChildren(...METRICS.map((m) => {
      const b = h("button", { type: "button", role: "tab", class: "tab" + (m.key === state.metric ? " active" : ""),
        "aria-selected": m.key === state.metric ? "true" : "false", dataset: { metric: m.key } }, m.label);
      b.addEventListener("click", () => { state.metric = m.key; drawChart(); });
      return b;
    }));
    rangeTabs.replaceChildren(...RANGES.map(([r]) => {
      const b = h("button", { type: "button", role: "tab", class: "tab" + (r === state.range ? " active" : ""),
        "aria-selected": r === state.range ? "true" : "false", dataset: { range: r } }, r);
      b.addEventListener("click", () => { state.range = r; drawChart(); });
      return b;
    }));
  }

  async function drawChart() {
    const ticket = ++chartTicket;
    drawTabs();
    history.replaceState(null, "", `${location.pathname}?metric=${state.metric}&range=${state.range}`);
    const metric = METRICS.find((m) => m.key === state.metric);
    const days = RANGES.find(([r]) => r === state.range)[1];
    if (chart) {
      chart.destroy();
      chart = null;
    }
    chartHost.replaceChildren(loading("Loading history…"));
    chartHost.dataset.state = "loading";
    alertList.replaceChildren();
    try {
      const from = new Date(Date.now() - days * 86400 * 1000).toISOString();
      const [history, alerts] = await Promise.all([
        api.get(endpoints.productHistory(id), { metric: metric.key, from, interval: "day" }),
        productAlerts(),
      ]);
      if (ticket !== chartTicket || !ctx.isCurrent()) return;
      const times = history.points.map((p) => new Date(p.t).getTime() / 1000);
      const values = history.points.map((p) => p.v);
      if (times.length === 1) {
        // one observation: frame it in the requested window rather than a guessed one
        times.unshift(Date.now() / 1000 - days * 86400);
        values.unshift(null);
        times.push(Date.now() / 1000);
        values.push(null);
      }
      if (!values.some((v) => v !== null)) {
        chartHost.replaceChildren(empty(product.fetch_status === "pending"
          ? "No data yet: the first fetch is on its way."
          : `No ${metric.label.toLowerCase()} recorded in the last ${state.range}.`));
        chartHost.dataset.state = "empty";
        return;
      }
      const since = times[0] || Date.now() / 1000 - days * 86400;
      const relevant = alerts.filter((a) => {
        const t = new Date(a.snapshot_captured_at || a.created_at).getTime() / 1000;
        const m = alertMetric(a.type);
        return t >= since - 86400 && (!m || m === metric.key);
      });
      const markers = relevant.map((a) => {
        const t = new Date(a.snapshot_captured_at || a.created_at).getTime() / 1000;
        let nearest = 0;
        for (let i = 0; i < times.length; i++) if (Math.abs(times[i] - t) < Math.abs(times[nearest] - t)) nearest = i;
        return { t, v: values[nearest], severity: a.severity };
      });
      chartHost.replaceChildren();
      const fmt = formatter(metric.kind, latest.currency);
      chart = await timeChart(chartHost, {
        times, markers, invert: !!metric.invert, format: fmt,
        series: [{ label: metric.label, values }],
      });
      if (ticket !== chartTicket) {
        chart.destroy();
        chart = null;
        return;
      }
      chartHost.dataset.state = "ready";
      chartHost.dataset.points = String(times.length);
      chartHost.dataset.gaps = String(values.filter((v, i) => v === null && i > 0 && i < values.length - 1).length);
      chartHost.dataset.markers = String(markers.length);
      if (relevant.length) {
        alertList.append(h("h3", { text: `Alerts marked on the chart (${relevant.length})` }),
          h("ul", { class: "plain-list" }, relevant.slice(0, 20).map((a) =>
            h("li", {}, badge(a.severity, a.severity), " ", h("span", { text: a.message }), " ",
              h("small", { class: "muted", text: fmtDateTime(a.snapshot_captured_at || a.created_at) })))));
      }
    } catch (err) {
      if (ticket === chartTicket) {
        chartHost.replaceChildren(errorBox(err, drawChart));
        chartHost.dataset.state = "error";
      }
    }
  }

  main.append(h("section", { class: "panel" },
    h("div", { class: "panel-head" }, h("h2", { class: "panel-title", text: "History" }), rangeTabs),
    metricTabs, chartHost,
    h("p", { class: "muted hint", text: "Drag across the chart to zoom; double-click to zoom out. Dashed lines mark alerts; gaps are days without a value (out of stock: no price)." }),
    exportPanel(product, () => RANGES.find(([r]) => r === state.range)[1]),
    alertList));
  const sales = salesPanel(product, ctx);
  const keywords = keywordsPanel(product, ctx);
  cleanups.push(sales.stop, keywords.stop);
  main.append(sales.el, keywords.el);
  main.append(h("section", { class: "panel" }, h("h2", { class: "panel-title", text: "Alert thresholds" }),
    thresholdsForm(product, () => {})));
  drawChart();
  return () => {
    cleanups.forEach((fn) => fn());
    chartTicket += 1;
    if (chart) chart.destroy();
  };
}
