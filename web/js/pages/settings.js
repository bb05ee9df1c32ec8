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

// ------------------------------------------------------------------ two-step sign-in
// Enrol: a QR code (drawn by the API as an SVG data URI: the secret goes to no other
// service), a first code to confirm, then the recovery codes, shown this once.

function recoveryList(codes) {
  return h("div", { class: "recovery-codes", id: "mfa-recovery-codes" },
    h("p", { text: "Recovery codes: each signs you in once if you lose your phone. Save them now; they are not shown again." }),
    h("ul", {}, codes.map((c) => h("li", {}, h("code", { text: c })))));
}

function proofForm(id, label, onSubmit) {
  const password = h("input", { type: "password", id: `${id}-password`, autocomplete: "current-password", required: true });
  const code = h("input", { type: "text", id: `${id}-code`, autocomplete: "one-time-code", maxlength: 40, required: true });
  const errors = h("div", { class: "form-errors", id: `${id}-errors` });
  const submit = h("button", { class: "btn", type: "submit", id: `${id}-submit` }, label);
  const form = h("form", { class: "form", id, novalidate: true },
    field("Password", password), field("Code (or a recovery code)", code), errors, h("div", {}, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    submit.disabled = true;
    try {
      await onSubmit({ password: password.value, code: code.value.trim() });
    } catch (err) {
      errors.append(errorBox(err));
    } finally {
      submit.disabled = false;
      password.value = "";
      code.value = "";
    }
  });
  return form;
}

async function mfaPanel(panel) {
  const status = await api.get(endpoints.authMfa());
  const body = h("div", { id: "mfa-body" });
  panel.replaceChildren(h("h2", { class: "panel-title", text: "Two-step sign-in" }), body);
  const rerender = () => mfaPanel(panel);

  if (!status.enabled) {
    body.append(h("p", { class: "muted", id: "mfa-status",
      text: status.required
        ? "Required for administrators: admin pages answer only after you turn it on."
        : "Off. Turn it on to ask for a code from an authenticator app at every sign-in." }));
    const start = h("button", { class: "btn btn-primary", type: "button", id: "mfa-start" }, "Set up an authenticator app");
    const errors = h("div", { class: "form-errors" });
    start.addEventListener("click", async () => {
      errors.replaceChildren();
      start.disabled = true;
      try {
        const enrol = await api.post(endpoints.authMfaEnrol());
        body.replaceChildren(enrolStep(enrol, rerender, body));
      } catch (err) {
        errors.append(errorBox(err));
        start.disabled = false;
      }
    });
    body.append(errors, start);
    return;
  }
  body.append(h("p", { id: "mfa-status",
    text: `On. ${status.recovery_codes_left} recovery code${status.recovery_codes_left === 1 ? "" : "s"} left.` }));
  const codesOut = h("div");
  body.append(
    h("h3", { text: "New recovery codes" }),
    proofForm("mfa-new-codes", "Replace recovery codes", async (proof) => {
      const out = await api.post(endpoints.authMfaRecoveryCodes(), proof);
      codesOut.replaceChildren(recoveryList(out.recovery_codes));
      toast("New recovery codes issued; the old ones no longer work", "ok");
    }),
    codesOut,
    h("h3", { text: "Turn off" }),
    proofForm("mfa-disable", "Turn off two-step sign-in", async (proof) => {
      await api.adoptTokens(await api.postSession(endpoints.authMfaDisable(), proof));
      toast("Two-step sign-in is off; your other sessions were signed out", "ok");
      await rerender();
    }));
}

function enrolStep(enrol, rerender, body) {
  const code = h("input", { type: "text", id: "mfa-confirm-code", inputmode: "numeric",
    autocomplete: "one-time-code", maxlength: 12, required: true });
  const errors = h("div", { class: "form-errors", id: "mfa-confirm-errors" });
  const submit = h("button", { class: "btn btn-primary", type: "submit", id: "mfa-confirm" }, "Turn on");
  const form = h("form", { class: "form", id: "mfa-confirm-form", novalidate: true },
    h("p", { text: "Scan this code with an authenticator app (Google Authenticator, 1Password, Aegis…), then type the 6-digit code it shows." }),
    h("img", { src: enrol.qr_svg_data_uri, alt: "QR code of the authenticator secret", id: "mfa-qr", width: 200, height: 200 }),
    h("p", { class: "muted small" }, "Cannot scan? Type this key: ",
      h("code", { id: "mfa-secret", text: enrol.secret })),
    field("Code", code), errors, h("div", {}, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    submit.disabled = true;
    try {
      const done = await api.postSession(endpoints.authMfaConfirm(), { code: code.value.trim() });
      await api.adoptTokens(done.tokens);
      const next = h("button", { class: "btn", type: "button", id: "mfa-codes-saved" }, "I saved them");
      next.addEventListener("click", rerender);
      body.replaceChildren(h("p", { text: "Two-step sign-in is on." }), recoveryList(done.recovery_codes), next);
      toast("Two-step sign-in is on", "ok");
    } catch (err) {
      errors.append(errorBox(err));
      submit.disabled = false;
    }
  });
  return form;
}

export async function render(main) {
  const me = await api.get(endpoints.authMe());
  const mfa = h("section", { class: "panel", id: "mfa" });
  main.append(
    h("div", { class: "page-head" }, h("h1", { text: "Settings" })),
    h("section", { class: "panel", id: "identity" },
      h("h2", { class: "panel-title", text: "Who you are on Amazon" }),
      h("p", { class: "muted", text: `Signed in as ${me.email}.` }),
      identityForm(me)),
    mfa);
  try {
    await mfaPanel(mfa);
  } catch (err) {
    mfa.replaceChildren(h("h2", { class: "panel-title", text: "Two-step sign-in" }), errorBox(err));
  }
}
