// Administration: the audit log (admin actions and security events), newest first,
// filtered by action and account, paged by cursor. The API refuses anyone else (403).

import * as api from "../api.js";
import * as endpoints from "../endpoints.js";
import { empty, errorBox, fmtDateTime, h, link, loading } from "../dom.js";

const PAGE = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function details(entry) {
  const pairs = Object.entries(entry.details || {});
  if (!pairs.length) return "–";
  return pairs.map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("; ");
}

function row(entry) {
  return h("tr", {},
    h("td", { dataset: { label: "When" }, text: fmtDateTime(entry.at) }),
    h("td", { dataset: { label: "Action" } }, h("code", { text: entry.action })),
    h("td", { dataset: { label: "Account" } }, h("span", { class: "break mono", text: entry.user_id || "–" })),
    h("td", { dataset: { label: "By" } }, h("span", { class: "break mono", text: entry.actor_id || "–" })),
    h("td", { dataset: { label: "Target" } }, h("span", { class: "break", text: entry.target || "–" })),
    h("td", { dataset: { label: "IP" }, text: entry.ip || "–" }),
    h("td", { dataset: { label: "Details" } }, h("span", { class: "break muted", text: details(entry) })));
}

export async function render(main, params, ctx) {
  const prefix = h("input", { type: "text", name: "action_prefix", placeholder: "auth.", value: ctx.query.get("action_prefix") || "", "aria-label": "action starts with" });
  const account = h("input", { type: "text", name: "user_id", placeholder: "account id", value: ctx.query.get("user_id") || "", "aria-label": "account id" });
  const apply = h("button", { class: "btn btn-small", type: "submit" }, "Filter");
  const form = h("form", { class: "toolbar", id: "audit-filters" }, prefix, account, apply);
  const host = h("div", {}, loading("Loading the audit log…"));
  const pager = h("div", { class: "pager" });
  const cursors = [null]; // cursor of each page shown so far; the last is the current page
  function filters() {
    const query = {};
    if (prefix.value.trim()) query.action_prefix = prefix.value.trim();
    if (account.value.trim()) query.user_id = account.value.trim();
    return query;
  }
  async function load() {
    const query = { ...filters(), limit: PAGE };
    if (query.user_id && !UUID.test(query.user_id)) {
      host.replaceChildren(errorBox(new Error("the account id must be a UUID")));
      return;
    }
    const cursor = cursors[cursors.length - 1];
    if (cursor) query.cursor = cursor;
    host.replaceChildren(loading("Loading the audit log…"));
    let page;
    try {
      page = await api.get(endpoints.adminAudit(), query);
    } catch (err) {
      host.replaceChildren(errorBox(err, load));
      pager.replaceChildren();
      return;
    }
    host.replaceChildren(page.items.length
      ? h("table", { class: "table", id: "audit-table" },
        h("thead", {}, h("tr", {}, ["When", "Action", "Account", "By", "Target", "IP", "Details"].map((t) => h("th", { text: t })))),
        h("tbody", {}, page.items.map(row)))
      : empty("No events match."));
    const newer = h("button", { class: "btn btn-small", type: "button", disabled: cursors.length === 1 }, "Newer");
    const older = h("button", { class: "btn btn-small", type: "button", disabled: !page.next_cursor }, "Older");
    newer.addEventListener("click", () => { cursors.pop(); load(); });
    older.addEventListener("click", () => { cursors.push(page.next_cursor); load(); });
    pager.replaceChildren(h("span", { class: "muted", text: `page ${cursors.length}` }), newer, older);
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    cursors.splice(1);
    load();
  });
  main.append(
    h("div", { class: "page-head" }, h("h1", { text: "Audit log" }), link("/admin", "Users and plans")),
    h("p", { class: "muted" }, "Sign-ins, failed sign-ins, session ends, password changes and every administrator's action. Reading this log is recorded too."),
    form, host, pager);
  await load();
}
