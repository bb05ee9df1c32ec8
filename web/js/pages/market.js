// Market panels: keyword rank tracking and sales estimates on the product page, and the
// group's first-page share and sales estimates on the competitor group page
// (docs/keywords.md, docs/sales-estimates.md).

import * as api from "../api.js";
import * as endpoints from "../endpoints.js";
import { timeChart } from "../charts.js";
import { badge, busy, empty, errorBox, field, fmtInt, fmtMoney, h, loading, toast } from "../dom.js";

const CHECK_WORDS = {
  consistent: "at or above the badge",
  below_badge: "below the badge: an underestimate",
};

function place(value) {
  return value === null || value === undefined ? "–" : `#${value}`;
}

function dayTimes(points) {
  return points.map((p) => new Date(p.day + "T12:00:00Z").getTime() / 1000);
}

/** Search terms of the product: add and remove them, latest positions, a rank chart. */
export function keywordsPanel(product, ctx) {
  const list = h("div", { id: "keywords-list" }, loading("Loading search terms…"));
  const chartHost = h("div", { class: "chart", id: "keyword-chart" });
  const chartNote = h("p", { class: "muted hint", id: "keyword-chart-note" });
  const input = h("input", { type: "text", name: "term", id: "keyword-term", minlength: 2, maxlength: 80,
    placeholder: "e.g. wireless earbuds", autocomplete: "off", required: true });
  const add = h("button", { class: "btn btn-primary", type: "submit", id: "keyword-add" }, "Track term");
  const errors = h("div", { class: "form-errors" });
  const limitNote = h("p", { class: "muted small", id: "keyword-limit" });
  const form = h("form", { class: "form form-inline", id: "keyword-form" },
    field("Search term", input), h("div", {}, add), errors);
  let chart = null;
  let selected = null;
  let pollTimer = null;

  async function drawChart(term) {
    selected = term.id;
    if (chart) {
      chart.destroy();
      chart = null;
    }
    chartHost.replaceChildren(loading("Loading ranks…"));
    chartHost.dataset.state = "loading";
    try {
      const history = await api.get(endpoints.productKeywordRanks(product.id, term.id), { days: 30 });
      if (!ctx.isCurrent() || selected !== term.id) return;
      const mine = history.series[0];
      if (!mine || !mine.points.length) {
        chartHost.replaceChildren(empty("No search page stored yet: the first search is on its way."));
        chartHost.dataset.state = "empty";
        return;
      }
      const times = dayTimes(mine.points);
      const series = [
        { label: `Organic (${mine.asin})`, values: mine.points.map((p) => p.organic) },
        { label: `Sponsored (${mine.asin})`, values: mine.points.map((p) => p.sponsored), width: 1 },
        ...history.series.slice(1, 6).map((s) => ({
          label: `Organic (${s.asin})`, values: s.points.map((p) => p.organic), width: 1 })),
      ];
      if (times.length === 1) {
        times.unshift(times[0] - 86400);
        times.push(times[1] + 86400);
        series.forEach((s) => { s.values.unshift(null); s.values.push(null); });
      }
      chartHost.replaceChildren();
      chart = await timeChart(chartHost, { times, series, invert: true, format: place, height: 260 });
      chartHost.dataset.state = "ready";
      chartHost.dataset.term = term.term;
      chartNote.textContent = `"${term.term}": place on the first page, organic and sponsored counted apart`
        + " (higher is better; a gap is a day off the first page). Competitors of your groups are drawn thin.";
    } catch (err) {
      chartHost.replaceChildren(errorBox(err, () => drawChart(term)));
      chartHost.dataset.state = "error";
    }
  }

  function row(term) {
    const remove = h("button", { class: "btn btn-small btn-danger-ghost", type: "button",
      "aria-label": `Stop tracking ${term.term}` }, "Remove");
    remove.addEventListener("click", () => busy(remove, async () => {
      await api.del(endpoints.productKeyword(product.id, term.id));
      toast(`Stopped tracking "${term.term}"`);
      if (selected === term.id) selected = null;
      load();
    }));
    const show = h("button", { class: "btn btn-small", type: "button" }, "Chart");
    show.addEventListener("click", () => drawChart(term));
    const pos = term.position;
    return h("tr", { dataset: { term: term.term } },
      h("td", { text: term.term }),
      h("td", { class: "num keyword-organic", text: pos ? place(pos.organic) : "…" }),
      h("td", { class: "num keyword-sponsored", text: pos ? place(pos.sponsored) : "…" }),
      h("td", { class: "muted", text: term.last_checked || "searching…" }),
      h("td", {}, show, " ", remove));
  }

  async function load() {
    clearTimeout(pollTimer);
    try {
      const out = await api.get(endpoints.productKeywords(product.id));
      if (!ctx.isCurrent()) return;
      limitNote.textContent = `${out.items.length} of ${out.limit} search terms your plan allows for this product (amazon.${out.marketplace}).`;
      input.disabled = add.disabled = out.items.length >= out.limit;
      if (!out.items.length) {
        list.replaceChildren(empty("No search terms yet. Add the terms buyers type to find this product."));
        chartHost.replaceChildren();
        return;
      }
      list.replaceChildren(h("div", { class: "table-host" }, h("table", { class: "table compact", id: "keywords-table" },
        h("thead", {}, h("tr", {}, h("th", { text: "Term" }), h("th", { text: "Organic" }),
          h("th", { text: "Sponsored" }), h("th", { text: "Searched" }), h("th", { text: "" }))),
        h("tbody", {}, out.items.map(row)))));
      const current = out.items.find((t) => t.id === selected) || out.items[0];
      if (current && (selected !== current.id || chartHost.dataset.state !== "ready")) drawChart(current);
      if (out.items.some((t) => !t.last_checked)) pollTimer = setTimeout(load, 2000);
    } catch (err) {
      list.replaceChildren(errorBox(err, load));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    add.disabled = true;
    try {
      const term = await api.post(endpoints.productKeywords(product.id), { term: input.value });
      input.value = "";
      selected = term.id;
      toast(`Tracking "${term.term}"`, "ok");
    } catch (err) {
      errors.append(errorBox(err));
    } finally {
      add.disabled = false;
      load();
    }
  });

  load();
  const el = h("section", { class: "panel", id: "keywords" },
    h("h2", { class: "panel-title", text: "Search terms" }),
    h("p", { class: "muted hint", text: "Where this product appears on the first Amazon results page for each term, searched once a day." }),
    form, limitNote, list, chartHost, chartNote);
  return { el, stop: () => { clearTimeout(pollTimer); if (chart) chart.destroy(); } };
}

/** Estimated units and revenue per month, with the "bought in past month" badge beside. */
export function salesPanel(product, ctx) {
  const host = h("div", {}, loading("Estimating…"));
  const chartHost = h("div", { class: "chart", id: "sales-chart" });
  let chart = null;

  async function load() {
    try {
      const out = await api.get(endpoints.productSalesEstimates(product.id), { days: 90 });
      if (!ctx.isCurrent()) return;
      const last = out.latest;
      if (!last) {
        const shown = [...out.series].reverse().find((p) => p.bought_past_month);
        host.replaceChildren(empty("No estimate yet: it needs a best-seller rank from the product page."
          + (shown ? ` Amazon shows "${fmtInt(shown.bought_past_month)}+ bought in past month".` : "")));
        return;
      }
      const stat = (label, value, id, note) => h("div", { class: "stat", id },
        h("div", { class: "stat-label", text: label }), h("div", { class: "stat-value", text: value }),
        note ? h("div", { class: "muted small", text: note }) : null);
      host.replaceChildren(
        h("section", { class: "stats" },
          stat("Units / month (estimate)", fmtInt(last.units), "sales-units", `range ${fmtInt(last.units_low)}–${fmtInt(last.units_high)}`),
          stat("Revenue / month (estimate)", last.revenue === null ? "–" : fmtMoney(last.revenue, out.currency), "sales-revenue"),
          stat("Bought in past month (Amazon)", last.bought_past_month ? `${fmtInt(last.bought_past_month)}+` : "not shown", "sales-badge",
            last.check ? CHECK_WORDS[last.check] : "Amazon shows it for popular listings only"),
          stat("From rank", place(last.rank), "sales-rank", last.rank_kind === "subcategory" ? "sub-category (rougher)" : out.category || "")),
        last.check === "below_badge" ? h("p", { class: "notice small", id: "sales-check" },
          "The estimate is below the figure Amazon shows on the page, so it is too low for this product.") : null,
        h("p", { class: "muted hint", id: "sales-method" },
          `${out.method.basis || ""}. Error: the true figure is usually within ×${out.method.error_factor}`
          + ` either way. Source: ${out.method.source}.`),
        out.data_source === "sandbox" ? badge("sandbox data", "sandbox") : null);
      const points = out.series.filter((p) => p.units !== null || p.bought_past_month !== null);
      if (points.length > 1) {
        chartHost.replaceChildren();
        chart = await timeChart(chartHost, {
          times: dayTimes(points), height: 220, format: (v) => fmtInt(v === null || v === undefined ? v : Math.round(v)),
          series: [
            { label: "Estimated units / month", values: points.map((p) => p.units) },
            { label: "Bought in past month (lower bound)", values: points.map((p) => p.bought_past_month), width: 1 },
          ],
        });
        chartHost.dataset.state = "ready";
      }
    } catch (err) {
      host.replaceChildren(errorBox(err, load));
    }
  }

  load();
  const el = h("section", { class: "panel", id: "sales" },
    h("h2", { class: "panel-title", text: "Sales estimate" }), host, chartHost);
  return { el, stop: () => { if (chart) chart.destroy(); } };
}

/** The group's share of each term's first page, and every product's sales estimate. */
export function groupMarketPanels(groupId, ctx) {
  const shareHost = h("div", { id: "keyword-share" }, loading("Loading search terms…"));
  const salesHost = h("div", { id: "group-sales" }, loading("Estimating…"));

  async function load() {
    try {
      const [share, sales] = await Promise.all([
        api.get(endpoints.competitorGroupKeywordShare(groupId)),
        api.get(endpoints.competitorGroupSalesEstimates(groupId)),
      ]);
      if (!ctx.isCurrent()) return;
      shareHost.replaceChildren(share.terms.length
        ? h("div", { class: "table-host" }, h("table", { class: "table compact", id: "share-table" },
          h("thead", {}, h("tr", {}, h("th", { text: "Term" }), h("th", { text: "Group's share of page 1" }),
            h("th", { text: "Organic" }), h("th", { text: "Sponsored" }), h("th", { text: "Main product" }), h("th", { text: "Searched" }))),
          h("tbody", {}, share.terms.map((t) => {
            const mine = t.positions[share.asins[0]] || {};
            return h("tr", { dataset: { term: t.term } },
              h("td", { text: t.term }),
              h("td", { class: "num", text: t.page_size ? `${Math.round(t.share * 100)}% (${t.group_results} of ${t.page_size})` : "–" }),
              h("td", { class: "num", text: `${Math.round(t.organic_share * 100)}%` }),
              h("td", { class: "num", text: `${Math.round(t.sponsored_share * 100)}%` }),
              h("td", { class: "num", text: `${place(mine.organic)} organic, ${place(mine.sponsored)} sponsored` }),
              h("td", { class: "muted", text: t.day || "searching…" }));
          }))))
        : empty("No search terms on the main product yet: add them on its product page."));
      salesHost.replaceChildren(h("div", { class: "table-host" }, h("table", { class: "table compact", id: "group-sales-table" },
        h("thead", {}, h("tr", {}, h("th", { text: "Product" }), h("th", { text: "Units / month" }),
          h("th", { text: "Revenue / month" }), h("th", { text: "Bought in past month" }), h("th", { text: "From rank" }))),
        h("tbody", {}, sales.products.map((p) => {
          const e = p.estimate || {};
          return h("tr", { class: p.role === "main" ? "row-main" : "", dataset: { asin: p.asin } },
            h("td", {}, h("strong", { text: p.asin }), p.role === "main" ? " (yours)" : "", h("small", { class: "muted", text: p.title || "" })),
            h("td", { class: "num", text: e.units === null || e.units === undefined ? "–" : `${fmtInt(e.units)} (${fmtInt(e.units_low)}–${fmtInt(e.units_high)})` }),
            h("td", { class: "num", text: e.revenue === null || e.revenue === undefined ? "–" : fmtMoney(e.revenue, p.currency) }),
            h("td", { class: "num", text: e.bought_past_month ? `${fmtInt(e.bought_past_month)}+` : "–" }),
            h("td", { class: "num", text: place(e.rank) }));
        })))),
      h("p", { class: "muted hint", text: `Estimates from each product's best-seller rank; usually within ×${sales.method.error_factor} either way (docs: sales estimates).` }));
    } catch (err) {
      shareHost.replaceChildren(errorBox(err, load));
      salesHost.replaceChildren();
    }
  }

  load();
  return [
    h("section", { class: "panel", id: "group-keywords" }, h("h2", { class: "panel-title", text: "Search terms: share of the first page" }), shareHost),
    h("section", { class: "panel", id: "group-sales-panel" }, h("h2", { class: "panel-title", text: "Sales estimates" }), salesHost),
  ];
}
