// Alerts: the feed with filters, and acknowledge (one or every one shown).

import * as api from "../api.js";
import { ALERT_TYPES, alertLabel } from "../alert-types.js";
import * as endpoints from "../endpoints.js";
import { badge, busy, empty, errorBox, fmtDateTime, h, link, loading, toast } from "../dom.js";
import { words } from "../words.js";

const PAGE = 50;

function select(name, options, value) {
  const el = h("select", { name, "aria-label": name },
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
  return el;
}

// Alerts whose words depend on whose Buy Box it is: without seller ids they say that
// ownership is unknown, and the seller is shown where to tell us.
const OWNERSHIP_TYPES = new Set(["buy_box_seller_change", "buy_box_suppressed", "new_seller_on_listing"]);

function ownershipHint(a) {
  const me = api.user();
  if (!OWNERSHIP_TYPES.has(a.type) || !me || (me.seller_ids && me.seller_ids.length)) return null;
  return h("p", { class: "small alert-hint" }, link("/settings", "Add your Amazon seller ids"),
    " to be told whether you lost or won the Buy Box.");
}

function alertItem(a, onAck) {
  const ack = h("button", { class: "btn btn-small", type: "button", dataset: { action: "ack" } }, "Acknowledge");
  ack.addEventListener("click", async () => {
    ack.disabled = true;
    try {
      const out = await api.post(endpoints.alertAck(a.id));
      a.acknowledged_at = out.acknowledged_at;
      onAck(a);
    } catch (err) {
      ack.disabled = false;
      toast(err.message, "error");
    }
  });
  const values = a.old_value !== null || a.new_value !== null
    ? h("span", { class: "alert-values" }, h("span", { text: a.old_value ?? "–" }), " → ", h("strong", { text: a.new_value ?? "–" }))
    : null;
  return h("li", { class: "alert-item severity-" + a.severity + (a.acknowledged_at ? " is-acked" : ""), dataset: { alertId: a.id } },
    h("div", { class: "alert-main" },
      h("div", {}, badge(words("severity", a.severity), a.severity), " ", badge(alertLabel(a.type)),
        a.data_source === "sandbox" ? badge("sandbox", "sandbox") : null),
      h("p", { class: "alert-message", text: a.message }),
      ownershipHint(a),
      h("div", { class: "muted small" },
        link(`/products/${a.product_id}`, h("span", { text: a.product_title || a.asin })),
        " · ", h("span", { text: a.asin }), " · ", h("span", { title: "detected " + fmtDateTime(a.created_at), text: fmtDateTime(a.snapshot_captured_at || a.created_at) }), " ", values)),
    h("div", { class: "alert-side" }, a.acknowledged_at
      ? h("small", { class: "muted", text: "acknowledged " + fmtDateTime(a.acknowledged_at) })
      : ack));
}

export async function render(main, params, ctx) {
  const filters = {
    severity: ctx.query.get("severity") || "",
    type: ctx.query.get("type") || "",
    acknowledged: ctx.query.get("acknowledged") ?? "false",
    product_id: ctx.query.get("product_id") || "",
  };
  let offset = 0;
  let total = 0;
  const list = h("ul", { class: "alert-list", id: "alert-list" });
  const host = h("div", {}, loading("Loading alerts…"));
  const more = h("button", { class: "btn", type: "button", hidden: true }, "Load more");
  const summary = h("span", { class: "muted", id: "alert-count" });
  const ackAll = h("button", { class: "btn btn-small", type: "button", hidden: true }, "Acknowledge all shown");

  const severity = select("severity", [["", "All severities"], ["critical", "Critical"], ["warning", "Warning"], ["info", "Info"]], filters.severity);
  const type = select("type", [["", "All types"], ...ALERT_TYPES.map((t) => [t.type, t.label])], filters.type);
  const acked = select("acknowledged", [["false", "Open"], ["true", "Acknowledged"], ["", "All"]], filters.acknowledged);
  for (const el of [severity, type, acked]) {
    el.addEventListener("change", () => {
      filters[el.name] = el.value;
      load(true);
    });
  }

  function onAck(a) {
    const li = list.querySelector(`[data-alert-id="${CSS.escape(a.id)}"]`);
    if (!li) return;
    if (filters.acknowledged === "false") {
      li.remove();
      total -= 1;
      summary.textContent = `${total} alerts`;
      if (!list.children.length) host.replaceChildren(empty("No open alerts. Everything is acknowledged."));
    } else li.replaceWith(alertItem(a, onAck));
  }

  async function load(reset) {
    if (reset) {
      offset = 0;
      list.replaceChildren();
      host.replaceChildren(loading("Loading alerts…"));
      const qs = new URLSearchParams(Object.entries(filters).filter(([k, v]) => v !== "" && !(k === "acknowledged" && v === "false")));
      if (filters.acknowledged === "") qs.set("acknowledged", "");
      history.replaceState(null, "", "/alerts" + (qs.toString() ? "?" + qs : ""));
    }
    let page;
    try {
      page = await api.get(endpoints.alerts(), { ...filters, limit: PAGE, offset });
    } catch (err) {
      host.replaceChildren(errorBox(err, () => load(true)));
      return;
    }
    if (!ctx.isCurrent()) return;
    total = page.total;
    summary.textContent = `${total} alerts`;
    offset += page.items.length;
    list.append(...page.items.map((a) => alertItem(a, onAck)));
    if (!list.children.length) {
      host.replaceChildren(empty(filters.acknowledged === "false" && !filters.type && !filters.severity
        ? "No open alerts. Alerts appear here when a tracked product changes past its thresholds."
        : "No alert matches these filters."));
    } else host.replaceChildren(list);
    more.hidden = offset >= total;
    ackAll.hidden = filters.acknowledged !== "false" || !list.children.length;
  }

  more.addEventListener("click", () => load(false));
  ackAll.addEventListener("click", async () => {
    ackAll.disabled = true;
    const ids = [...list.querySelectorAll("[data-alert-id]")].map((li) => li.dataset.alertId);
    const failures = [];
    for (const id of ids) {
      try {
        await api.post(endpoints.alertAck(id));
      } catch (err) {
        failures.push(err.message);
      }
    }
    ackAll.disabled = false;
    if (failures.length) toast(`${failures.length} could not be acknowledged: ${failures[0]}`, "error");
    load(true);
  });

  const exportButton = h("button", { class: "btn btn-small", type: "button", id: "export-alerts" }, "Export CSV");
  exportButton.addEventListener("click", () => busy(exportButton, async () => {
    const query = Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== ""));
    const name = await api.download(endpoints.alerts(), query, "alerts.csv");
    toast(`Downloaded ${name}`, "ok");
  }));

  main.append(
    h("div", { class: "page-head" }, h("h1", { text: "Alerts" }), summary, h("div", { class: "grow" }), exportButton, ackAll),
    h("div", { class: "filters" }, severity, type, acked,
      filters.product_id ? h("span", { class: "muted" }, "one product · ", link("/alerts", "show all")) : null),
    host, more);
  await load(true);
}
