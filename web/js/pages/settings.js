// Account settings: who the seller is on Amazon (seller ids, brands, company name), which
// the Buy Box alerts and the Buy Box share are judged by (PATCH /v1/auth/me).

import * as api from "../api.js";
import * as endpoints from "../endpoints.js";
import { errorBox, field, h, toast } from "../dom.js";

const LIST_FIELDS = { seller_ids: "Seller ids", brands: "Brands" };

/** One item per line (commas also separate seller ids, which never contain one). */
function lines(text, splitCommas) {
  return text.split(splitCommas ? /[\n,]+/ : /\n+/).map((s) => s.trim()).filter(Boolean);
}

/** The API's 422 details, with "seller_ids[2]" said as the line it came from. */
function identityError(err, given) {
  const box = errorBox({ code: err.code, message: err.message, requestId: err.requestId, details: [] });
  const items = (err.details || []).map((d) => {
    const m = /^(seller_ids|brands)\[(\d+)\]$/.exec(d.field || "");
    if (!m) return h("li", { text: d.field ? `${LIST_FIELDS[d.field] || d.field}: ${d.message}` : d.message });
    const value = given[m[1]][Number(m[2])];
    return h("li", { dataset: { field: m[1] } },
      h("strong", { text: `${LIST_FIELDS[m[1]]}, "${value}": ` }), d.message);
  });
  if (items.length) box.append(h("ul", { class: "error-details", id: "identity-error-details" }, items));
  return box;
}

function identityForm(me) {
  const company = h("input", { type: "text", name: "company_name", id: "identity-company", maxlength: 200,
    value: me.company_name || "", autocomplete: "organization" });
  const sellerIds = h("textarea", { name: "seller_ids", id: "identity-seller-ids", rows: 4, spellcheck: "false",
    placeholder: "A294P4X9EWVXLJ" });
  sellerIds.value = (me.seller_ids || []).join("\n");
  const brands = h("textarea", { name: "brands", id: "identity-brands", rows: 3, placeholder: "Soundcore" });
  brands.value = (me.brands || []).join("\n");
  const status = h("p", { class: "muted small", id: "identity-status" });
  const errors = h("div", { class: "form-errors", id: "identity-errors" });
  const save = h("button", { class: "btn btn-primary", type: "submit", id: "identity-save" }, "Save");

  function showStatus(user) {
    status.textContent = user.seller_ids.length
      ? `Buy Box alerts judge ownership by ${user.seller_ids.length === 1 ? "this seller id" : `these ${user.seller_ids.length} seller ids`}.`
      : "No seller id yet: Buy Box alerts say that ownership is unknown instead of guessing.";
  }
  showStatus(me);

  const form = h("form", { class: "form", id: "identity-form", novalidate: true },
    field("Company name", company),
    field("Amazon seller ids (one per line)", sellerIds,
      "Your merchant ids: Seller Central → Settings → Account Info → Merchant Token (10 to 20 capital letters and digits). " +
      "A Buy Box held by one of them is yours: you are told when you lose it, to whom, and when you win it back. " +
      "A product page shows the seller id holding its Buy Box."),
    field("Your brands (one per line)", brands,
      "On a listing of one of your brands, a seller never seen there before (a reseller or a hijacker) raises “New seller on listing”."),
    status, errors, h("div", {}, save));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    const body = {
      company_name: company.value.trim() || null,
      seller_ids: lines(sellerIds.value, true),
      brands: lines(brands.value, false),
    };
    save.disabled = true;
    try {
      const user = await api.patch(endpoints.authMe(), body);
      company.value = user.company_name || "";
      sellerIds.value = user.seller_ids.join("\n");
      brands.value = user.brands.join("\n");
      api.updateUser(user);
      showStatus(user);
      toast("Settings saved", "ok");
    } catch (err) {
      errors.append(identityError(err, body));
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

export async function render(main) {
  const me = await api.get(endpoints.authMe());
  main.append(
    h("div", { class: "page-head" }, h("h1", { text: "Settings" })),
    h("section", { class: "panel", id: "identity" },
      h("h2", { class: "panel-title", text: "Who you are on Amazon" }),
      h("p", { class: "muted", text: `Signed in as ${me.email}.` }),
      identityForm(me)));
}
