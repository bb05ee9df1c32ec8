// Sign in and register.

import * as api from "../api.js";
import { errorBox, field, h, link } from "../dom.js";

function safeNext(query) {
  const next = query.get("next") || "";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/products";
}

function card(title, form, footer) {
  return h("section", { class: "auth-card" },
    h("div", { class: "auth-brand" }, h("img", { src: "/static/favicon.svg", alt: "", width: 36, height: 36 }),
      h("span", { text: "Amazon Pilot" })),
    h("h1", { text: title }), form, footer);
}

export function renderLogin(main, params, ctx) {
  const email = h("input", { type: "email", name: "email", id: "login-email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", id: "login-password", autocomplete: "current-password", required: true });
  const errors = h("div", { class: "form-errors" });
  const submit = h("button", { class: "btn btn-primary", type: "submit", id: "login-submit" }, "Sign in");
  const form = h("form", { class: "form", novalidate: true },
    field("Email", email), field("Password", password), errors, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    submit.disabled = true;
    try {
      const result = await api.login(email.value.trim(), password.value);
      if (result && result.mfaRequired) {
        main.replaceChildren();
        renderSecondStep(main, result.mfaToken, ctx);
        return;
      }
      ctx.navigate(safeNext(ctx.query), { replace: true });
    } catch (err) {
      errors.append(errorBox(err));
    } finally {
      submit.disabled = false;
    }
  });
  main.append(card("Sign in", form,
    h("p", { class: "muted" }, "No account yet? ", link("/register", "Create one"), ".")));
  email.focus();
}

/** Sign-in, second step: a code of the authenticator app, or a recovery code. */
function renderSecondStep(main, mfaToken, ctx) {
  const code = h("input", { type: "text", name: "code", id: "mfa-code", inputmode: "numeric",
    autocomplete: "one-time-code", maxlength: 40, required: true });
  const useRecovery = h("input", { type: "checkbox", id: "mfa-use-recovery" });
  const errors = h("div", { class: "form-errors", id: "mfa-errors" });
  const submit = h("button", { class: "btn btn-primary", type: "submit", id: "mfa-submit" }, "Verify");
  const form = h("form", { class: "form", id: "mfa-form", novalidate: true },
    field("Code", code, "The 6-digit code your authenticator app shows for Amazon Pilot."),
    h("label", { class: "checkbox" }, useRecovery, " Use a recovery code instead"),
    errors, submit);
  useRecovery.addEventListener("change", () => {
    code.inputMode = useRecovery.checked ? "text" : "numeric";
    code.placeholder = useRecovery.checked ? "xxxx-xxxx-xxxx-xxxx" : "";
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    submit.disabled = true;
    const value = code.value.trim();
    try {
      await api.loginMfa(mfaToken, useRecovery.checked ? { recoveryCode: value } : { code: value });
      ctx.navigate(safeNext(ctx.query), { replace: true });
    } catch (err) {
      errors.append(errorBox(err));
      code.value = "";
    } finally {
      submit.disabled = false;
    }
  });
  main.append(card("Two-step sign-in", form,
    h("p", { class: "muted" }, "Lost your phone? Use one of the recovery codes you saved. ",
      link("/login", "Start over"), ".")));
  code.focus();
}

export function renderRegister(main, params, ctx) {
  const email = h("input", { type: "email", name: "email", id: "register-email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", id: "register-password", autocomplete: "new-password", required: true, minlength: 10 });
  const company = h("input", { type: "text", name: "company", id: "register-company", autocomplete: "organization", maxlength: 200 });
  const errors = h("div", { class: "form-errors" });
  const submit = h("button", { class: "btn btn-primary", type: "submit" }, "Create account");
  const form = h("form", { class: "form", novalidate: true },
    field("Email", email),
    field("Password", password, "At least 10 characters, mixing at least two of lower-case, upper-case, digits and symbols."),
    field("Company (optional)", company), errors, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    submit.disabled = true;
    try {
      await api.register(email.value.trim(), password.value, company.value.trim());
      ctx.navigate("/products", { replace: true });
    } catch (err) {
      errors.append(errorBox(err));
    } finally {
      submit.disabled = false;
    }
  });
  main.append(card("Create your account", form,
    h("p", { class: "muted" }, "Already registered? ", link("/login", "Sign in"), ".")));
  email.focus();
}
