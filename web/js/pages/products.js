// Products: the tracked products with their latest values, changes and a trend per row;
// add by ASIN, URL or short link (one or many), pause, resume and stop; tags, a tag filter,
// a selection with bulk actions, a column chooser (kept in localStorage) and a CSV export.

import * as api from "../api.js";
import * as endpoints from "../endpoints.js";
import { sparkline } from "../charts.js";
import {
  badge, busy, changeBadge, confirmClick, empty, errorBox, fmtAgo, fmtDateTime, fmtInt, fmtMoney,
  fmtRank, fmtRating, h, link, loading, toast,
} from "../dom.js";
import { words } from "../words.js";

const PAGE_SIZES = [50, 100, 250, 500];
const TREND_DAYS = 30;
const HISTORY_CONCURRENCY = 4;
const PENDING_POLL_MS = 3000;
const PENDING_POLL_LIMIT = 60;

// product id + as_of -> {values, d1, d7}: a product's trend is fetched once per new data
const trendCache = new Map();

export function parseRefs(text) {
  return text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean)
    .map((ref) => (/^https?:\/\//i.test(ref) || /amazon\.|^(www\.)?(a\.co|amzn\.[a-z]+)\//i.test(ref) ? { url: ref } : { asin: ref }));
}

function productName(p) {
  return p.alias || p.title || p.asin;
}

/** The price change over a window as the API computed it (the detail page shows the same
 * numbers): a side without a price (out of stock) is "no price", never a change. */
function priceChange(p, window) {
  const c = p.changes && p.changes[window] && p.changes[window].price;
  if (!c) return changeBadge(null);
  if (c.new === null || c.old === null) {
    return h("span", { class: "delta muted", text: "no price", title: c.new === null ? "no price now (out of stock or no offer)" : `no price ${window} ago` });
  }
  return changeBadge(c.change_pct);
}

async function loadTrend(product) {
  const key = product.id + "@" + (product.as_of || "");
  if (trendCache.has(key)) return trendCache.get(key);
  const from = new Date(Date.now() - (TREND_DAYS + 1) * 86400 * 1000).toISOString();
  const history = await api.get(endpoints.productHistory(product.id), { metric: "price", from, interval: "day" });
  // nulls stay: an out-of-stock day is a gap in the sparkline, not a line through it
  const trend = { values: history.points.map((p) => p.v) };
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

// [id, header, sort key, shown by default]. "product" and the actions are always shown.
const COLUMNS = [
  ["product", "Product", "alias", true], ["price", "Price", "price", true], ["d1", "1 d", null, true],
  ["d7", "7 d", null, true], ["buybox", "Buy Box", "buy_box_price", true], ["bsr", "BSR", "bsr_rank", true],
  ["subbsr", "Sub-BSR", "subcategory_bsr", false], ["rating", "Rating", "rating", true],
  ["reviews", "Reviews", "review_count", true], ["trend", "30 d trend", null, true],
  ["updated", "Updated", "as_of", true], ["actions", "", null, true],
];
const FIXED_COLUMNS = new Set(["product", "actions"]);
const COLUMNS_KEY = "amazon-pilot.product-columns";

function shownColumns() {
  try {
    const saved = JSON.parse(localStorage.getItem(COLUMNS_KEY) || "null");
    if (Array.isArray(saved)) return new Set([...saved, ...FIXED_COLUMNS]);
  } catch {
    /* storage disabled or garbled: the defaults */
  }
  return new Set(COLUMNS.filter((c) => c[3]).map((c) => c[0]));
}

function saveColumns(shown) {
  try {
    localStorage.setItem(COLUMNS_KEY, JSON.stringify([...shown]));
  } catch {
    /* storage disabled: the choice lasts for this page */
  }
}

function cell(label, ...children) {
  return h("td", { dataset: { label } }, ...children);
}

function tagChips(p, onTag) {
  if (!p.tags || !p.tags.length) return null;
  return h("div", { class: "tag-list" }, p.tags.map((t) => {
    const chip = h("button", { type: "button", class: "tag", title: `Show products tagged “${t}”`, dataset: { tag: t } }, t);
    chip.addEventListener("click", () => onTag(t));
    return chip;
  }));
}

function row(p, { onChanged, loader, shown, selection, onSelect, onTag }) {
  const l = p.latest || {};
  const cells = { spark: h("span", { class: "spark-slot" }) };
  const image = p.image_url && /^https:\/\//i.test(p.image_url)
    ? h("img", { class: "thumb", src: p.image_url, alt: "", loading: "lazy", width: 40, height: 40, referrerpolicy: "no-referrer",
      onerror: (e) => e.target.replaceWith(h("span", { class: "thumb thumb-empty", "aria-hidden": "true" })) })
    : h("span", { class: "thumb thumb-empty", "aria-hidden": "true" });
  const sub = h("div", { class: "product-sub" }, h("span", { class: "asin", text: p.asin }), " ", statusBadges(p));
  const name = h("div", { class: "product-cell" }, image,
    h("div", { class: "product-text" },
      link(`/products/${p.id}`, h("span", { class: "product-name", text: productName(p) })),
      p.alias && p.title ? h("div", { class: "product-title muted", text: p.title }) : null, sub,
      tagChips(p, onTag)));
  const select = h("input", { type: "checkbox", class: "row-select", checked: selection.has(p.id),
    "aria-label": `Select ${productName(p)}`, dataset: { select: p.id } });
  select.addEventListener("change", () => onSelect(p.id, select.checked));
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
  const stock = l.availability && l.availability !== "in_stock" && p.latest
    ? h("small", { class: l.availability === "out_of_stock" ? "stock-out" : "muted", text: words("availability", l.availability) }) : null;
  const all = {
    product: () => cell("Product", name),
    price: () => cell("Price", h("div", {}, h("strong", { text: fmtMoney(l.price, l.currency) }), stock)),
    d1: () => cell("1 d", priceChange(p, "1d")),
    d7: () => cell("7 d", priceChange(p, "7d")),
    buybox: () => cell("Buy Box", h("div", { text: fmtMoney(l.buy_box_price, l.currency) }),
      l.buy_box_seller ? h("small", { class: "muted", text: l.buy_box_seller }) : null),
    bsr: () => cell("BSR", h("div", { text: fmtRank(l.bsr_rank) }), l.bsr_category ? h("small", { class: "muted", text: l.bsr_category }) : null),
    subbsr: () => cell("Sub-BSR", h("div", { text: fmtRank(subRank) }), subCat ? h("small", { class: "muted", text: subCat }) : null),
    rating: () => cell("Rating", fmtRating(l.rating)),
    reviews: () => cell("Reviews", fmtInt(l.review_count)),
    trend: () => cell("30 d trend", cells.spark),
    updated: () => cell("Updated", h("span", { title: fmtDateTime(p.as_of), text: p.fetch_status === "pending" ? "pending" : fmtAgo(p.as_of) })),
    actions: () => cell("", h("div", { class: "row-actions" }, pause, stop)),
  };
  const tr = h("tr", { dataset: { productId: p.id, asin: p.asin }, class: p.is_paused ? "is-paused" : null },
    h("td", { class: "select-cell", dataset: { label: "Select" } }, select),
    COLUMNS.filter(([id]) => shown.has(id)).map(([id]) => all[id]()),
  );
  if (!shown.has("trend")) return tr;
  loader.watch(tr, p, cells);
  return tr;
}

function addForm(onAdded) {
  const input = h("textarea", { id: "add-refs", rows: 2, placeholder: "ASIN, Amazon URL or short link (a.co/…) — paste many, one per line", "aria-label": "ASINs, Amazon URLs or short links" });
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
    tag: ctx.query.get("tag") || "",
  };
  const shown = shownColumns();
  const selection = new Set();
  if (!PAGE_SIZES.includes(state.limit)) state.limit = 100;
  let loader = new TrendLoader();
  let pollTimer = null;
  let polls = 0;
  let alive = true;

  const count = h("span", { class: "muted", id: "product-count" });
  const planUsage = h("span", { class: "muted small", id: "plan-usage" });
  const search = h("input", { type: "search", placeholder: "Search ASIN, title or alias", value: state.q, "aria-label": "Search products" });
  const body = h("div", { class: "table-host", id: "products" }, loading("Loading your products…"));
  const pager = h("div", { class: "pager" });

  function syncUrl() {
    const qs = new URLSearchParams();
    if (state.q) qs.set("q", state.q);
    if (state.sort !== "-created_at") qs.set("sort", state.sort);
    if (state.limit !== 100) qs.set("limit", state.limit);
    if (state.offset) qs.set("offset", state.offset);
    if (state.tag) qs.set("tag", state.tag);
    const url = "/products" + (qs.toString() ? "?" + qs : "");
    if (url !== location.pathname + location.search) history.replaceState(null, "", url);
  }

  async function load({ quiet = false } = {}) {
    clearTimeout(pollTimer);
    syncUrl();
    if (!quiet) body.replaceChildren(loading("Loading your products…"));
    let page;
    try {
      page = await api.get(endpoints.products(), { limit: state.limit, offset: state.offset, q: state.q || null, sort: state.sort, tag: state.tag || null });
    } catch (err) {
      if (alive) body.replaceChildren(errorBox(err, () => load()));
      return;
    }
    if (!alive) return;
    loader.stop();
    loader = new TrendLoader();
    count.textContent = `${page.total} tracked`;
    if (page.plan_products) {
      const used = page.tracked ?? page.total;
      planUsage.textContent = `${fmtInt(used)} of ${fmtInt(page.plan_products)} on your plan`;
      planUsage.className = used >= page.plan_products ? "badge badge-warn" : "muted small";
      planUsage.title = used >= page.plan_products ? "Your plan's limit is reached: stop tracking a product to add another." : "";
    }
    for (const id of [...selection]) if (!page.items.some((p) => p.id === id)) selection.delete(id);
    renderBulkBar();
    loadTags();
    if (!page.items.length) {
      body.replaceChildren(state.q || state.tag
        ? empty(state.tag ? `No product tagged “${state.tag}”${state.q ? ` matches “${state.q}”` : ""}.` : `No product matches “${state.q}”.`)
        : empty("You track no products yet. Paste an ASIN, an Amazon product URL or a short link (a.co/…) above to start."));
      pager.replaceChildren();
      return;
    }
    const selectAll = h("input", { type: "checkbox", id: "select-all", "aria-label": "Select every product on this page",
      checked: page.items.every((p) => selection.has(p.id)) });
    selectAll.addEventListener("change", () => {
      for (const p of page.items) {
        if (selectAll.checked) selection.add(p.id);
        else selection.delete(p.id);
      }
      for (const box of body.querySelectorAll("input.row-select")) box.checked = selectAll.checked;
      renderBulkBar();
    });
    const head = h("thead", {}, h("tr", {}, h("th", { scope: "col", class: "select-cell" }, selectAll),
      COLUMNS.filter(([id]) => shown.has(id)).map(([, label, key]) => {
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
    const onSelect = (id, on) => {
      if (on) selection.add(id);
      else selection.delete(id);
      selectAll.checked = page.items.every((p) => selection.has(p.id));
      renderBulkBar();
    };
    const rows = page.items.map((p) => row(p, { onChanged: () => load({ quiet: true }), loader, shown, selection, onSelect, onTag: filterByTag }));
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

  // ---- tags: the filter, and a sort by tag
  const tagFilter = h("select", { id: "tag-filter", "aria-label": "Filter by tag" }, h("option", { value: "" }, "All tags"));
  tagFilter.addEventListener("change", () => filterByTag(tagFilter.value));
  function filterByTag(tag) {
    state.tag = tag;
    state.offset = 0;
    load();
  }
  async function loadTags() {
    try {
      const tags = await api.get(endpoints.productTags());
      const names = tags.items.map((t) => t.tag);
      if (state.tag && !names.includes(state.tag)) names.unshift(state.tag);
      tagFilter.replaceChildren(h("option", { value: "" }, "All tags"),
        ...names.map((t) => {
          const n = tags.items.find((x) => x.tag === t);
          return h("option", { value: t, selected: t === state.tag }, n ? `${t} (${n.products})` : t);
        }));
    } catch {
      /* the filter keeps its last list */
    }
  }
  const sortSelect = h("select", { id: "sort-select", "aria-label": "Sort products" },
    [["-created_at", "Newest first"], ["created_at", "Oldest first"], ["alias", "Name"], ["tag", "Tag"], ["-as_of", "Recently updated"]]
      .map(([v, label]) => h("option", { value: v, selected: v === state.sort }, label)));
  sortSelect.addEventListener("change", () => { state.sort = sortSelect.value; state.offset = 0; load(); });

  // ---- the column chooser (kept in this browser)
  const chooser = h("details", { class: "column-chooser" }, h("summary", { class: "btn btn-small" }, "Columns"),
    h("fieldset", {}, h("legend", { class: "sr-only", text: "Columns shown" }),
      COLUMNS.filter(([id]) => !FIXED_COLUMNS.has(id)).map(([id, label]) => {
        const box = h("input", { type: "checkbox", checked: shown.has(id), dataset: { column: id } });
        box.addEventListener("change", () => {
          if (box.checked) shown.add(id);
          else shown.delete(id);
          saveColumns(shown);
          load({ quiet: true });
        });
        return h("label", { class: "check" }, box, " ", label);
      })));

  // ---- export
  const exportButton = h("button", { class: "btn btn-small", type: "button", id: "export-products" }, "Export CSV");
  exportButton.addEventListener("click", () => busy(exportButton, async () => {
    const name = await api.download(endpoints.products(), { q: state.q || null, tag: state.tag || null }, "products.csv");
    toast(`Downloaded ${name}`);
  }));

  // ---- bulk actions on the selection
  const bulkBar = h("div", { class: "bulk-bar", id: "bulk-bar", role: "region", "aria-label": "Selected products", hidden: true });
  async function bulk(action, tags = []) {
    const ids = [...selection];
    const out = await api.post(endpoints.productsBulkActions(), { action, ids, tags });
    const failed = out.results.filter((r) => r.error);
    toast(`${out.succeeded} of ${ids.length} ${action === "delete" ? "stopped" : "updated"}` +
      (failed.length ? ` — ${failed[0].error.message}` : ""), failed.length ? "error" : "info");
    if (action === "delete") selection.clear();
    await load({ quiet: true });
  }
  function renderBulkBar() {
    const n = selection.size;
    bulkBar.hidden = n === 0;
    if (!n) return bulkBar.replaceChildren();
    const button = (label, action, extra = {}) => {
      const b = h("button", { class: "btn btn-small", type: "button", dataset: { bulk: action }, ...extra }, label);
      b.addEventListener("click", () => busy(b, () => bulk(action)));
      return b;
    };
    const tagInput = h("input", { type: "text", id: "bulk-tag", placeholder: "tag", maxlength: 32, "aria-label": "Tag for the selected products" });
    const tagOp = (label, action) => {
      const b = h("button", { class: "btn btn-small", type: "button", dataset: { bulk: action } }, label);
      b.addEventListener("click", () => {
        const tag = tagInput.value.trim();
        if (!tag) {
          tagInput.focus();
          return toast("Type a tag first", "error");
        }
        return busy(b, () => bulk(action, [tag]));
      });
      return b;
    };
    tagInput.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        bulkBar.querySelector("[data-bulk=tag]").click();
      }
    });
    const del = h("button", { class: "btn btn-small btn-danger-ghost", type: "button", dataset: { bulk: "delete" } }, "Stop tracking");
    confirmClick(del, { confirmLabel: `Confirm: stop ${n}`, resetMs: 4000, onConfirm: () => bulk("delete") });
    const clear = h("button", { class: "btn btn-small", type: "button" }, "Clear selection");
    clear.addEventListener("click", () => {
      selection.clear();
      for (const box of body.querySelectorAll("input.row-select, #select-all")) box.checked = false;
      renderBulkBar();
    });
    bulkBar.replaceChildren(h("strong", { id: "selected-count", text: `${n} selected` }),
      button("Pause", "pause"), button("Resume", "resume"), tagInput, tagOp("Add tag", "tag"), tagOp("Remove tag", "untag"),
      del, clear);
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
    h("div", { class: "page-head" }, h("h1", { text: "Products" }), count, planUsage, h("div", { class: "grow" }), search),
    addForm(() => { polls = 0; load({ quiet: true }); }),
    h("div", { class: "toolbar" }, tagFilter, sortSelect, chooser, h("div", { class: "grow" }), exportButton),
    bulkBar, body, pager);
  await load();
  return () => {
    alive = false;
    clearTimeout(pollTimer);
    clearTimeout(searchTimer);
    loader.stop();
  };
}

