// Account settings: who the seller is on Amazon (seller ids, brands, company name), which
// the Buy Box alerts and the Buy Box share are judged by (PATCH /v1/auth/me).

import * as api from "../api.js";
import * as endpoints from "../endpoints.js";
import { alertLabel } from "../alert-types.js";
import { badge, confirmClick, errorBox, field, fmtDateTime, h, link, toast } from "../dom.js";

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
  const budget = h("input", { type: "number", name: "monthly_fetch_budget_usd", id: "identity-budget", min: 0,
    step: "0.01", placeholder: "no budget", value: me.monthly_fetch_budget_usd ?? "" });
  const budgetStatus = h("p", { class: "muted small", id: "budget-status" });
  const status = h("p", { class: "muted small", id: "identity-status" });
  const errors = h("div", { class: "form-errors", id: "identity-errors" });
  const save = h("button", { class: "btn btn-primary", type: "submit", id: "identity-save" }, "Save");

  function showStatus(user) {
    status.textContent = user.seller_ids.length
      ? `Buy Box alerts judge ownership by ${user.seller_ids.length === 1 ? "this seller id" : `these ${user.seller_ids.length} seller ids`}.`
      : "No seller id yet: Buy Box alerts say that ownership is unknown instead of guessing.";
  }
  showStatus(me);

  // the last daily plan's reading of the budget: spend so far, projection, what it stretched
  function showBudget(user) {
    const b = user.fetch_budget;
    budgetStatus.textContent = !b ? ""
      : `This month: $${b.month_to_date_usd.toFixed(2)} so far, $${b.projected_usd.toFixed(2)} projected. `
        + (b.reason || "Every product keeps its own cadence.");
  }
  showBudget(me);

  const form = h("form", { class: "form", id: "identity-form", novalidate: true },
    field("Company name", company),
    field("Amazon seller ids (one per line)", sellerIds,
      "Your merchant ids: Seller Central → Settings → Account Info → Merchant Token (10 to 20 capital letters and digits). " +
      "A Buy Box held by one of them is yours: you are told when you lose it, to whom, and when you win it back. " +
      "A product page shows the seller id holding its Buy Box."),
    field("Your brands (one per line)", brands,
      "On a listing of one of your brands, a seller never seen there before (a reseller or a hijacker) raises “New seller on listing”."),
    field("Monthly fetch budget (USD)", budget,
      "Empty: no budget. When the month would cost more, the daily plan fetches your stable products weekly instead (never drops one) and says so here and on each product."),
    budgetStatus, status, errors, h("div", {}, save));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    const body = {
      company_name: company.value.trim() || null,
      seller_ids: lines(sellerIds.value, true),
      brands: lines(brands.value, false),
      monthly_fetch_budget_usd: budget.value.trim() === "" ? null : Number(budget.value),
    };
    save.disabled = true;
    try {
      const user = await api.patch(endpoints.authMe(), body);
      company.value = user.company_name || "";
      sellerIds.value = user.seller_ids.join("\n");
      brands.value = user.brands.join("\n");
      budget.value = user.monthly_fetch_budget_usd ?? "";
      api.updateUser(user);
      showStatus(user);
      showBudget(user);
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

// ------------------------------------------------------------------ notifications
// Digest, per-product cap, e-mail on/off, and quiet hours in the seller's time zone
// (PATCH /v1/auth/me notification_prefs).

const COMMON_ZONES = ["UTC", "Europe/London", "Europe/Berlin", "Europe/Paris", "America/New_York",
  "America/Chicago", "America/Denver", "America/Los_Angeles", "Asia/Tokyo", "Asia/Shanghai",
  "Asia/Kolkata", "Australia/Sydney"];

function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

function prefsForm(me) {
  const prefs = me.notification_prefs || {};
  const quiet = prefs.quiet_hours || null;
  const digest = h("select", { id: "prefs-digest", name: "digest" },
    [["off", "Off: a message per alert (capped per product)"], ["daily", "Daily: one digest a day (08:00 UTC)"],
      ["weekly", "Weekly: one digest on Mondays"]].map(([v, t]) => h("option", { value: v, selected: prefs.digest === v }, t)));
  const cap = h("input", { type: "number", id: "prefs-cap", min: 0, max: 100, step: 1,
    value: String(prefs.max_notifications_per_product_per_day ?? 5) });
  const email = h("input", { type: "checkbox", id: "prefs-email", checked: prefs.email !== false });
  const zones = new Set([...COMMON_ZONES, browserZone(), prefs.timezone || "UTC"]);
  const zone = h("input", { type: "text", id: "prefs-timezone", list: "prefs-timezones", autocomplete: "off",
    value: prefs.timezone || browserZone(), spellcheck: "false" });
  const zoneList = h("datalist", { id: "prefs-timezones" }, [...zones].sort().map((z) => h("option", { value: z })));
  const quietOn = h("input", { type: "checkbox", id: "prefs-quiet-on", checked: !!(quiet && quiet.enabled !== false) });
  const start = h("input", { type: "time", id: "prefs-quiet-start", value: (quiet && quiet.start) || "22:00" });
  const end = h("input", { type: "time", id: "prefs-quiet-end", value: (quiet && quiet.end) || "07:00" });
  const errors = h("div", { class: "form-errors", id: "prefs-errors" });
  const save = h("button", { class: "btn btn-primary", type: "submit", id: "prefs-save" }, "Save notification settings");
  const form = h("form", { class: "form", id: "prefs-form", novalidate: true },
    field("Digest", digest, "With a digest, alerts are not sent one by one; the digest lists them grouped by product."),
    field("Messages per product per day", cap,
      "At most this many messages about one product a day (0: none); alerts of one product and type raised together are one message."),
    h("label", { class: "field field-check" }, email, h("span", { text: " Send alerts to my e-mail channels" })),
    h("fieldset", { class: "fieldset" }, h("legend", { text: "Quiet hours" }),
      h("label", { class: "field field-check" }, quietOn, h("span", { text: " Hold non-critical alerts during quiet hours" })),
      h("div", { class: "form-inline" }, field("From", start), field("Until", end), field("Time zone", zone), zoneList),
      h("p", { class: "muted small", text: "Held alerts go out in the next digest; critical alerts (out of stock, Buy Box lost…) are always sent at once. The window follows your local clock, daylight saving included." })),
    errors, h("div", {}, save));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    const body = { notification_prefs: {
      digest: digest.value,
      max_notifications_per_product_per_day: Number(cap.value),
      email: email.checked,
      timezone: zone.value.trim() || "UTC",
      quiet_hours: { enabled: quietOn.checked, start: start.value, end: end.value },
    } };
    save.disabled = true;
    try {
      const user = await api.patch(endpoints.authMe(), body);
      api.updateUser(user);
      toast("Notification settings saved", "ok");
    } catch (err) {
      errors.append(errorBox(err));
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

async function snoozePanel(panel) {
  const out = await api.get(endpoints.alertSnoozes());
  const body = out.items.length
    ? h("ul", { class: "card-list", id: "snooze-list" }, out.items.map((s) => {
      const end = h("button", { class: "btn btn-small", type: "button" }, "End now");
      end.addEventListener("click", async () => {
        await api.del(endpoints.alertSnooze(s.id));
        toast("Snooze ended", "ok");
        await snoozePanel(panel);
      });
      const what = [s.alert_type ? alertLabel(s.alert_type) : "All alert types",
        s.tracked_product_id ? "of one product" : "on every product"].join(" ");
      return h("li", { class: "card card-row" },
        h("div", {}, h("strong", { text: what }), h("div", { class: "muted small", text: `until ${fmtDateTime(s.until)}` })), end);
    }))
    : h("p", { class: "muted", id: "snooze-empty", text: "Nothing snoozed. Snooze a product on its page, or an alert type on the alerts page." });
  panel.replaceChildren(h("h2", { class: "panel-title", text: "Snoozed alerts" }), body);
}

// ------------------------------------------------------------------ password and sessions

function passwordForm() {
  const current = h("input", { type: "password", id: "password-current", autocomplete: "current-password", required: true });
  const next = h("input", { type: "password", id: "password-new", autocomplete: "new-password", minlength: 10, required: true });
  const again = h("input", { type: "password", id: "password-again", autocomplete: "new-password", required: true });
  const errors = h("div", { class: "form-errors", id: "password-errors" });
  const save = h("button", { class: "btn btn-primary", type: "submit", id: "password-save" }, "Change password");
  const form = h("form", { class: "form", id: "password-form", novalidate: true },
    field("Current password", current), field("New password", next, "At least 10 characters."),
    field("New password again", again), errors, h("div", {}, save));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    if (next.value !== again.value) {
      errors.append(errorBox({ message: "The two new passwords differ." }));
      return;
    }
    save.disabled = true;
    try {
      await api.adoptTokens(await api.postSession(endpoints.authPassword(),
        { current_password: current.value, new_password: next.value }));
      toast("Password changed; your other sessions were signed out", "ok");
      form.reset();
      form.dispatchEvent(new CustomEvent("password-changed", { bubbles: true }));
    } catch (err) {
      errors.append(errorBox(err));
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

async function sessionsPanel(panel) {
  const items = await api.get(endpoints.authSessions());
  const others = items.filter((s) => !s.current);
  const endOthers = h("button", { class: "btn btn-small btn-danger-ghost", type: "button", id: "sessions-end-others",
    disabled: others.length === 0 }, "End all other sessions");
  confirmClick(endOthers, {
    confirmLabel: `Confirm: end ${others.length} session${others.length === 1 ? "" : "s"}`,
    onConfirm: async () => {
      for (const s of others) await api.del(endpoints.authSession(s.id));
      toast("Other sessions ended", "ok");
      await sessionsPanel(panel);
    },
  });
  const rows = items.map((s) => {
    const end = h("button", { class: "btn btn-small", type: "button", dataset: { session: s.id } },
      s.current ? "Sign out here" : "End this session");
    end.addEventListener("click", async () => {
      if (s.current) {
        await api.logout();  // the app goes to the sign-in page
        return;
      }
      await api.del(endpoints.authSession(s.id));
      toast("Session ended", "ok");
      await sessionsPanel(panel);
    });
    return h("tr", { dataset: { session: s.id } },
      h("td", { dataset: { label: "Device" } }, h("span", { class: "break", text: s.user_agent || "unknown device" }),
        s.current ? [" ", badge("this session", "ok")] : null),
      h("td", { dataset: { label: "Address" }, text: s.ip || "–" }),
      h("td", { dataset: { label: "Signed in" }, text: fmtDateTime(s.started_at) }),
      h("td", { dataset: { label: "Last used" }, text: fmtDateTime(s.last_used_at) }),
      h("td", {}, end));
  });
  panel.replaceChildren(h("h2", { class: "panel-title", text: "Sessions" }),
    h("table", { class: "table compact", id: "sessions-table" },
      h("thead", {}, h("tr", {}, ["Device", "Address", "Signed in", "Last used", ""].map((t) => h("th", { text: t })))),
      h("tbody", {}, rows)),
    h("div", { class: "row-actions" }, endOthers));
}

async function fill(panel, title, work) {
  try {
    await work(panel);
  } catch (err) {
    panel.replaceChildren(h("h2", { class: "panel-title", text: title }), errorBox(err));
  }
}

export async function render(main) {
  const me = await api.get(endpoints.authMe());
  const mfa = h("section", { class: "panel", id: "mfa" });
  const snoozes = h("section", { class: "panel", id: "snoozes" });
  const sessions = h("section", { class: "panel", id: "sessions" });
  const password = passwordForm();
  password.addEventListener("password-changed", () => fill(sessions, "Sessions", sessionsPanel));
  main.append(
    h("div", { class: "page-head" }, h("h1", { text: "Settings" })),
    h("section", { class: "panel", id: "identity" },
      h("h2", { class: "panel-title", text: "Who you are on Amazon" }),
      h("p", { class: "muted", text: `Signed in as ${me.email}.` }),
      identityForm(me)),
    h("section", { class: "panel", id: "notifications" },
      h("h2", { class: "panel-title", text: "Notifications" }),
      h("p", { class: "muted" }, "Where alerts go is set on the ", link("/channels", "channels page"), "."),
      prefsForm(me)),
    snoozes,
    h("section", { class: "panel", id: "password" },
      h("h2", { class: "panel-title", text: "Password" }), password),
    sessions,
    mfa);
  await Promise.all([fill(snoozes, "Snoozed alerts", snoozePanel), fill(sessions, "Sessions", sessionsPanel)]);
  try {
    await mfaPanel(mfa);
  } catch (err) {
    mfa.replaceChildren(h("h2", { class: "panel-title", text: "Two-step sign-in" }), errorBox(err));
  }
}
