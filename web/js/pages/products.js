// Products: the tracked products with their latest values, changes and a trend per row;
// add by ASIN or URL (one or many), pause, resume and stop.

import * as api from "../api.js";
import * as endpoints from "../endpoints.js";
import { sparkline } from "../charts.js";
import {
  badge, busy, changeBadge, confirmClick, empty, errorBox, fmtAgo, fmtDateTime, fmtInt, fmtMoney,
  fmtRank, fmtRating, h, link, loading, toast,
} from "../dom.js";

const PAGE_SIZES = [50, 100, 250, 500];
const TREND_DAYS = 30;
const HISTORY_CONCURRENCY = 4;
const PENDING_POLL_MS = 3000;
const PENDING_POLL_LIMIT = 60;

// product id + as_of -> {values, d1, d7}: a product's trend is fetched once per new data
const trendCache = new Map();

export function parseRefs(text) {
  return text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean)
    .map((ref) => (/^https?:\/\//i.test(ref) || /amazon\./i.test(ref) ? { url: ref } : { asin: ref }));
}

function productName(p) {
  return p.alias || p.title || p.asin;
}

/** Change of the last value against the one `days` before it (daily points). */
function changeOver(points, days) {
  if (points.length < 2) return null;
  const last = points[points.length - 1];
  const cutoff = last.t - days * 86400 + 6 * 3600;
  let ref = null;
  for (const p of points) {
    if (p.t <= cutoff) ref = p;
    else break;
  }
  if (!ref || !ref.v || last.v === null) return null;
  return ((last.v - ref.v) / ref.v) * 100;
}

async function loadTrend(product) {
  const key = product.id + "@" + (product.as_of || "");
  if (trendCache.has(key)) return trendCache.get(key);
  const from = new Date(Date.now() - (TREND_DAYS + 1) * 86400 * 1000).toISOString();
  const history = await api.get(endpoints.productHistory(product.id), { metric: "price", from, interval: "day" });
  const points = history.points.filter((p) => p.v !== null)
    .map((p) => ({ t: new Date(p.t).getTime() / 1000, v: p.v }));
  const trend = { values: history.points.map((p) => p.v), d1: changeOver(points, 1), d7: changeOver(points, 7) };
  trendCache.set(key, trend);
  return trend;
}

/** Loads trends for rows as they scroll into view, a few at a time. */
class TrendLoader {
  constructor() {
    this.queue = [];
    this.running = 0;
    this.stopped = false;
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        this.observer.unobserve(entry.target);
        const job = entry.target.trendJob;
        if (job) this.queue.push(job);
      }
      this.pump();
    }, { rootMargin: "200px" });
  }

  watch(row, product, cells) {
    if (!product.latest) return;
    const key = product.id + "@" + (product.as_of || "");
    if (trendCache.has(key)) return fill(cells, trendCache.get(key));
    row.trendJob = () => loadTrend(product).then((t) => fill(cells, t), () => {
      cells.spark.replaceChildren(h("span", { class: "muted", text: "–", title: "history unavailable" }));
    });
    this.observer.observe(row);
  }

  pump() {
    while (!this.stopped && this.running < HISTORY_CONCURRENCY && this.queue.length) {
      const job = this.queue.shift();
      this.running += 1;
      job().finally(() => {
        this.running -= 1;
        this.pump();
      });
    }
  }

  stop() {
    this.stopped = true;
    this.observer.disconnect();
  }
}

function fill(cells, trend) {
  cells.d1.replaceChildren(changeBadge(trend.d1));
  cells.d7.replaceChildren(changeBadge(trend.d7));
  cells.spark.replaceChildren(sparkline(trend.values, { label: `price over ${TREND_DAYS} days` }));
}

/** A failed fetch says why on hover (the reason is the API's `fetch_error`). */
function failedBadge(text, reason) {
  const b = badge(text, "danger");
  b.title = reason;
  return b;
}

function statusBadges(p) {
  const out = [];
  if (p.data_source === "sandbox") out.push(badge("sandbox", "sandbox"));
  if (p.is_paused) out.push(badge("paused", "muted"));
  if (p.fetch_status === "pending") out.push(badge("fetching…", "info"));
  else if (p.fetch_status === "not_found") out.push(badge("not found", "danger"));
  else if (p.stale) out.push(badge("stale", "warn"));
  if (p.fetch_error) out.push(failedBadge(p.fetch_status === "failed" ? "fetch failed" : "last fetch failed", p.fetch_error));
  return out;
}

const COLUMNS = [
  ["Product", "alias"], ["Price", "price"], ["1 d", null], ["7 d", null], ["Buy Box", "buy_box_price"],
  ["BSR", "bsr_rank"], ["Sub-BSR", "subcategory_bsr"], ["Rating", "rating"], ["Reviews", "review_count"],
  ["30 d trend", null], ["Updated", "as_of"], ["", null],
];

function cell(label, ...children) {
  return h("td", { dataset: { label } }, ...children);
}

function row(p, { onChanged, loader }) {
  const l = p.latest || {};
  const cells = {
    d1: h("span", { class: "muted", text: "…" }),
    d7: h("span", { class: "muted", text: "…" }),
    spark: h("span", { class: "spark-slot" }),
  };
  if (!p.latest) {
    cells.d1.textContent = "–";
    cells.d7.textContent = "–";
  }
  const image = p.image_url && /^https:\/\//i.test(p.image_url)
    ? h("img", { class: "thumb", src: p.image_url, alt: "", loading: "lazy", width: 40, height: 40, referrerpolicy: "no-referrer",
      onerror: (e) => e.target.replaceWith(h("span", { class: "thumb thumb-empty", "aria-hidden": "true" })) })
    : h("span", { class: "thumb thumb-empty", "aria-hidden": "true" });
  const sub = h("div", { class: "product-sub" }, h("span", { class: "asin", text: p.asin }), " ", statusBadges(p));
  const name = h("div", { class: "product-cell" }, image,
    h("div", { class: "product-text" },
      link(`/products/${p.id}`, h("span", { class: "product-name", text: productName(p) })),
      p.alias && p.title ? h("div", { class: "product-title muted", text: p.title }) : null, sub));
  const pause = h("button", { class: "btn btn-small", type: "button", dataset: { action: "pause" } }, p.is_paused ? "Resume" : "Pause");
  pause.addEventListener("click", () => busy(pause, async () => {
    await api.patch(endpoints.product(p.id), { is_paused: !p.is_paused });
    toast(`${p.is_paused ? "Resumed" : "Paused"} ${productName(p)}`);
    onChanged();
  }));
  const stop = h("button", { class: "btn btn-small btn-danger-ghost", type: "button", dataset: { action: "stop" } }, "Stop");
  confirmClick(stop, {
    confirmLabel: "Confirm stop",
    resetMs: 4000,
    onConfirm: async () => {
      await api.del(endpoints.product(p.id));
      toast(`Stopped tracking ${productName(p)}`);
      onChanged();
    },
  });
  const subRank = l.subcategory_bsr ?? (l.subcategory_ranks && l.subcategory_ranks[0] ? l.subcategory_ranks[0].rank : null);
  const subCat = l.subcategory_ranks && l.subcategory_ranks[0] ? l.subcategory_ranks[0].category : null;
  const tr = h("tr", { dataset: { productId: p.id, asin: p.asin }, class: p.is_paused ? "is-paused" : null },
    cell("Product", name),
    cell("Price", h("strong", { text: fmtMoney(l.price, l.currency) })),
    cell("1 d", cells.d1),
    cell("7 d", cells.d7),
    cell("Buy Box", h("div", { text: fmtMoney(l.buy_box_price, l.currency) }),
      l.buy_box_seller ? h("small", { class: "muted", text: l.buy_box_seller }) : null),
    cell("BSR", h("div", { text: fmtRank(l.bsr_rank) }), l.bsr_category ? h("small", { class: "muted", text: l.bsr_category }) : null),
    cell("Sub-BSR", h("div", { text: fmtRank(subRank) }), subCat ? h("small", { class: "muted", text: subCat }) : null),
    cell("Rating", fmtRating(l.rating)),
    cell("Reviews", fmtInt(l.review_count)),
    cell("30 d trend", cells.spark),
    cell("Updated", h("span", { title: fmtDateTime(p.as_of), text: p.fetch_status === "pending" ? "pending" : fmtAgo(p.as_of) })),
    cell("", h("div", { class: "row-actions" }, pause, stop)),
  );
  loader.watch(tr, p, cells);
  return tr;
}

function addForm(onAdded) {
  const input = h("textarea", { id: "add-refs", rows: 2, placeholder: "ASIN or Amazon URL — paste many, one per line", "aria-label": "ASINs or Amazon URLs" });
  const submit = h("button", { class: "btn btn-primary", type: "submit", id: "add-submit" }, "Track");
  const result = h("div", { class: "add-result", id: "add-result" });
  const form = h("form", { class: "add-form" }, input, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const refs = parseRefs(input.value);
    result.replaceChildren();
    if (!refs.length) {
      result.append(h("p", { class: "muted", text: "Paste at least one ASIN (e.g. B0C33XXS56) or Amazon product URL." }));
      return;
    }
    submit.disabled = true;
    submit.textContent = refs.length > 1 ? `Tracking ${refs.length}…` : "Tracking…";
    try {
      if (refs.length === 1) {
        const p = await api.post(endpoints.products(), refs[0]);
        result.append(h("p", { class: "ok", text: `Tracking ${p.asin}; its first data is on the way.` }));
      } else {
        let created = 0;
        const failures = [];
        for (let i = 0; i < refs.length; i += 100) {
          const chunk = refs.slice(i, i + 100);
          const out = await api.post(endpoints.productsBulk(), { items: chunk });
          created += out.created;
          for (const r of out.results) {
            if (r.error) failures.push([chunk[r.index].asin || chunk[r.index].url, r.error.message]);
          }
        }
        result.append(h("p", { class: created ? "ok" : "", text: `Tracking ${created} of ${refs.length}.` }));
        if (failures.length) {
          result.append(h("ul", { class: "error-details" },
            failures.map(([ref, msg]) => h("li", {}, h("code", { text: ref }), " — ", msg))));
        }
      }
      input.value = "";
      onAdded();
    } catch (err) {
      result.append(errorBox(err));
    } finally {
      submit.disabled = false;
      submit.textContent = "Track";
    }
  });
  return h("section", { class: "panel" }, h("h2", { class: "panel-title", text: "Track products" }), form, result);
}

export async function render(main, params, ctx) {
  const state = {
    q: ctx.query.get("q") || "",
    sort: ctx.query.get("sort") || "-created_at",
    limit: Number(ctx.query.get("limit")) || 100,
    offset: Math.max(0, Number(ctx.query.get("offset")) || 0),
  };
  if (!PAGE_SIZES.includes(state.limit)) state.limit = 100;
  let loader = new TrendLoader();
  let pollTimer = null;
  let polls = 0;
  let alive = true;

  const count = h("span", { class: "muted", id: "product-count" });
  const search = h("input", { type: "search", placeholder: "Search ASIN, title or alias", value: state.q, "aria-label": "Search products" });
  const body = h("div", { class: "table-host", id: "products" }, loading("Loading your products…"));
  const pager = h("div", { class: "pager" });

  function syncUrl() {
    const qs = new URLSearchParams();
    if (state.q) qs.set("q", state.q);
    if (state.sort !== "-created_at") qs.set("sort", state.sort);
    if (state.limit !== 100) qs.set("limit", state.limit);
    if (state.offset) qs.set("offset", state.offset);
    const url = "/products" + (qs.toString() ? "?" + qs : "");
    if (url !== location.pathname + location.search) history.replaceState(null, "", url);
  }

  async function load({ quiet = false } = {}) {
    clearTimeout(pollTimer);
    syncUrl();
    if (!quiet) body.replaceChildren(loading("Loading your products…"));
    let page;
    try {
      page = await api.get(endpoints.products(), { limit: state.limit, offset: state.offset, q: state.q || null, sort: state.sort });
    } catch (err) {
      if (alive) body.replaceChildren(errorBox(err, () => load()));
      return;
    }
    if (!alive) return;
    loader.stop();
    loader = new TrendLoader();
    count.textContent = `${page.total} tracked`;
    if (!page.items.length) {
      body.replaceChildren(state.q
        ? empty(`No product matches “${state.q}”.`)
        : empty("You track no products yet. Paste an ASIN or an Amazon product URL above to start."));
      pager.replaceChildren();
      return;
    }
    const head = h("thead", {}, h("tr", {}, COLUMNS.map(([label, key]) => {
      if (!key) return h("th", { scope: "col", text: label });
      const active = state.sort.replace("-", "") === key;
      const desc = state.sort.startsWith("-");
      const btn = h("button", { type: "button", class: "sort" + (active ? " active" : "") },
        label, active ? (desc ? " ↓" : " ↑") : "");
      btn.addEventListener("click", () => {
        state.sort = active && !desc ? "-" + key : key;
        state.offset = 0;
        load();
      });
      return h("th", { scope: "col", "aria-sort": active ? (desc ? "descending" : "ascending") : null }, btn);
    })));
    const rows = page.items.map((p) => row(p, { onChanged: () => load({ quiet: true }), loader }));
    body.replaceChildren(h("table", { class: "table products-table" }, head, h("tbody", {}, rows)));
    renderPager(page);
    if (page.items.some((p) => p.fetch_status === "pending") && polls < PENDING_POLL_LIMIT) {
      polls += 1;
      pollTimer = setTimeout(() => load({ quiet: true }), PENDING_POLL_MS);
    }
  }

  function renderPager(page) {
    const from = page.total ? page.offset + 1 : 0;
    const to = page.offset + page.items.length;
    const prev = h("button", { class: "btn btn-small", type: "button", disabled: page.offset === 0 }, "Previous");
    const next = h("button", { class: "btn btn-small", type: "button", disabled: to >= page.total }, "Next");
    prev.addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); load(); });
    next.addEventListener("click", () => { state.offset += state.limit; load(); });
    const size = h("select", { "aria-label": "Rows per page" },
      PAGE_SIZES.map((n) => h("option", { value: n, selected: n === state.limit }, `${n} per page`)));
    size.addEventListener("change", () => { state.limit = Number(size.value); state.offset = 0; load(); });
    pager.replaceChildren(h("span", { class: "muted", text: `${from}–${to} of ${page.total}` }), prev, next, size);
  }

  let searchTimer = null;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.q = search.value.trim();
      state.offset = 0;
      load();
    }, 300);
  });

  main.append(
    h("div", { class: "page-head" }, h("h1", { text: "Products" }), count, h("div", { class: "grow" }), search),
    addForm(() => { polls = 0; load({ quiet: true }); }),
    body, pager);
  await load();
  return () => {
    alive = false;
    clearTimeout(pollTimer);
    clearTimeout(searchTimer);
    loader.stop();
  };
}

