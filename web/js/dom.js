// DOM helpers. Every text from Amazon or a user goes in as text (text nodes,
// textContent, attribute values): nothing here parses HTML.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = String(value);
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2).toLowerCase(), value);
      } else if (key === "value") el.value = value;
      else if (key === "checked" || key === "disabled" || key === "selected") el[key] = !!value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export function link(href, ...children) {
  return h("a", { href, dataset: { link: "" } }, ...children);
}

export function loading(text = "Loading…") {
  return h("div", { class: "state state-loading", role: "status" },
    h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

export function empty(text, ...extra) {
  return h("div", { class: "state state-empty" }, h("p", { text }), ...extra);
}

/** An API error with its message (and the request id to quote), and a retry button. */
export function errorBox(err, retry) {
  const box = h("div", { class: "state state-error", role: "alert" },
    h("strong", { text: err && err.code && err.code !== "ERROR" ? err.code : "Error" }),
    " ", h("span", { class: "error-message", text: (err && err.message) || String(err) }));
  if (err && err.details && err.details.length) {
    box.append(h("ul", { class: "error-details" },
      err.details.map((d) => h("li", { text: d.field ? `${d.field}: ${d.message}` : d.message }))));
  }
  if (err && err.requestId) box.append(h("small", { class: "muted", text: ` request id ${err.requestId}` }));
  if (retry) box.append(" ", h("button", { class: "btn btn-small", type: "button", onclick: retry }, "Retry"));
  return box;
}

let toastHost = null;
export function toast(message, kind = "info") {
  if (!toastHost) {
    toastHost = h("div", { class: "toasts", "aria-live": "polite" });
    document.body.append(toastHost);
  }
  const item = h("div", { class: "toast toast-" + kind, role: kind === "error" ? "alert" : "status" }, message);
  toastHost.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

/** Run an async action from a button: disabled while it runs, errors shown as a toast. */
export async function busy(button, action) {
  const label = button.textContent;
  button.disabled = true;
  button.classList.add("is-busy");
  try {
    return await action();
  } catch (err) {
    toast(err && err.message ? err.message : String(err), "error");
    return undefined;
  } finally {
    button.disabled = false;
    button.classList.remove("is-busy");
    button.textContent = label;
  }
}

/**
 * A button that acts only on a second click: the first one arms it (`data-armed="1"`) and
 * shows `confirmLabel`; the next runs `onConfirm` through busy(). With `resetMs`, an armed
 * button goes back to its own label after that long without a second click.
 */
export function confirmClick(button, { confirmLabel, onConfirm, resetMs = 0 }) {
  const label = button.textContent;
  let timer = null;
  const disarm = () => {
    clearTimeout(timer);
    timer = null;
    button.dataset.armed = "";
    button.textContent = label;
  };
  const resetLater = () => {
    if (!resetMs) return;
    clearTimeout(timer);
    timer = setTimeout(disarm, resetMs);
  };
  button.addEventListener("click", async () => {
    if (button.dataset.armed !== "1") {
      button.dataset.armed = "1";
      button.textContent = confirmLabel;
      resetLater();
      return;
    }
    clearTimeout(timer); // not while the action runs
    await busy(button, onConfirm);
    if (button.dataset.armed === "1") resetLater();
  });
  return button;
}

// ------------------------------------------------------------------ formatting

const money = new Map();
export function fmtMoney(value, currency) {
  if (value === null || value === undefined) return "–";
  const code = currency || "USD";
  if (!money.has(code)) {
    try {
      money.set(code, new Intl.NumberFormat(undefined, { style: "currency", currency: code }));
    } catch {
      money.set(code, new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
    }
  }
  return money.get(code).format(value);
}

const integer = new Intl.NumberFormat();
export function fmtInt(value) {
  return value === null || value === undefined ? "–" : integer.format(value);
}

export function fmtRank(value) {
  return value === null || value === undefined ? "–" : "#" + integer.format(value);
}

export function fmtRating(value) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(1) + " ★";
}

export function fmtPct(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  const sign = value > 0 ? "+" : "";
  return sign + value.toFixed(Math.abs(value) < 10 ? 1 : 0) + "%";
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
export function fmtDateTime(value) {
  if (!value) return "–";
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? "–" : dateTime.format(d);
}

export function fmtAgo(value) {
  if (!value) return "never";
  const seconds = Math.round((Date.now() - new Date(value).getTime()) / 1000);
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return minutes + " min ago";
  const hours = Math.round(minutes / 60);
  if (hours < 36) return hours + " h ago";
  return Math.round(hours / 24) + " d ago";
}

export function fmtDuration(seconds) {
  seconds = Math.max(0, Math.ceil(seconds));
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  return m ? `${m} min ${String(s).padStart(2, "0")} s` : `${s} s`;
}

/** A change shown with its direction; `betterWhenLower` for ranks (BSR). */
export function changeBadge(pct, betterWhenLower = false) {
  if (pct === null || pct === undefined || !Number.isFinite(pct)) return h("span", { class: "delta muted", text: "–" });
  let kind = "flat";
  if (Math.abs(pct) >= 0.05) kind = (pct < 0) === betterWhenLower ? "up" : "down";
  return h("span", { class: "delta delta-" + kind, text: fmtPct(pct) });
}

export function badge(text, kind = "") {
  return h("span", { class: "badge" + (kind ? " badge-" + kind : ""), text });
}

/** Poll `fn` every `interval` ms until it returns a truthy value or `signal` aborts. */
export function poll(fn, { interval = 1500, signal } = {}) {
  return new Promise((resolve, reject) => {
    const tick = async () => {
      if (signal && signal.aborted) return;
      try {
        const done = await fn();
        if (done) return resolve(done);
      } catch (err) {
        return reject(err);
      }
      if (!(signal && signal.aborted)) setTimeout(tick, interval);
    };
    tick();
  });
}

export function field(label, input, hint) {
  return h("label", { class: "field" }, h("span", { class: "field-label", text: label }), input,
    hint ? h("small", { class: "muted", text: hint }) : null);
}
