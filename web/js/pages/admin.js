// Administration: every account, with its plan, role and active flag.

import * as api from "../api.js";
import * as endpoints from "../endpoints.js";
import { empty, errorBox, fmtDateTime, h, link, loading, toast } from "../dom.js";

const PAGE = 50;

function userRow(u, me) {
  const plan = h("select", { "aria-label": "plan" }, ["free", "pro", "enterprise"].map((p) => h("option", { value: p, selected: p === u.plan }, p)));
  const role = h("select", { "aria-label": "role", disabled: u.id === me.id }, ["seller", "admin"].map((r) => h("option", { value: r, selected: r === u.role }, r)));
  const active = h("input", { type: "checkbox", "aria-label": "active", checked: u.is_active, disabled: u.id === me.id });
  async function save(change, revert) {
    try {
      Object.assign(u, await api.patch(endpoints.adminUser(u.id), change));
      toast(`Saved ${u.email}`, "ok");
    } catch (err) {
      revert();
      toast(err.message, "error");
    }
  }
  plan.addEventListener("change", () => save({ plan: plan.value }, () => { plan.value = u.plan; }));
  role.addEventListener("change", () => save({ role: role.value }, () => { role.value = u.role; }));
  active.addEventListener("change", () => save({ is_active: active.checked }, () => { active.checked = u.is_active; }));
  return h("tr", {},
    h("td", { dataset: { label: "Email" } }, h("span", { class: "break", text: u.email })),
    h("td", { dataset: { label: "Company" }, text: u.company_name || "–" }),
    h("td", { dataset: { label: "Plan" } }, plan),
    h("td", { dataset: { label: "Role" } }, role),
    h("td", { dataset: { label: "Active" } }, active),
    h("td", { dataset: { label: "Created" }, text: fmtDateTime(u.created_at) }));
}

export async function render(main, params, ctx) {
  const me = api.user();
  let offset = Math.max(0, Number(ctx.query.get("offset")) || 0);
  const host = h("div", {}, loading("Loading users…"));
  const pager = h("div", { class: "pager" });
  async function load() {
    host.replaceChildren(loading("Loading users…"));
    let page;
    try {
      page = await api.get(endpoints.adminUsers(), { limit: PAGE, offset });
    } catch (err) {
      if (err.code === "MFA_REQUIRED") {  // an admin without a second factor enrols first
        host.replaceChildren(errorBox(err),
          h("p", {}, h("a", { href: "/settings", dataset: { link: "" }, class: "btn btn-primary", id: "admin-enrol-mfa" },
            "Set up two-step sign-in")));
        return;
      }
      host.replaceChildren(errorBox(err, load));
      return;
    }
    if (!page.items.length) {
      host.replaceChildren(empty("No users."));
      return;
    }
    host.replaceChildren(h("table", { class: "table" },
      h("thead", {}, h("tr", {}, ["Email", "Company", "Plan", "Role", "Active", "Created"].map((t) => h("th", { text: t })))),
      h("tbody", {}, page.items.map((u) => userRow(u, me)))));
    const prev = h("button", { class: "btn btn-small", type: "button", disabled: offset === 0 }, "Previous");
    const next = h("button", { class: "btn btn-small", type: "button", disabled: offset + page.items.length >= page.total }, "Next");
    prev.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
    next.addEventListener("click", () => { offset += PAGE; load(); });
    pager.replaceChildren(h("span", { class: "muted", text: `${offset + 1}–${offset + page.items.length} of ${page.total}` }), prev, next);
  }
  main.append(h("div", { class: "page-head" }, h("h1", { text: "Users and plans" }), link("/admin/audit", "Audit log")), host, pager);
  await load();
}
