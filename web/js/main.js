// The dashboard's shell: sign-in gate, navigation, and the client-side router.

import * as api from "./api.js";
import { clear, errorBox, h, link, loading } from "./dom.js";

const PAGES = {
  auth: () => import("./pages/auth.js"),
  products: () => import("./pages/products.js"),
  product: () => import("./pages/product.js"),
  alerts: () => import("./pages/alerts.js"),
  settings: () => import("./pages/settings.js"),
  channels: () => import("./pages/channels.js"),
  competitors: () => import("./pages/competitors.js"),
  optimization: () => import("./pages/optimization.js"),
  runs: () => import("./pages/runs.js"),
  admin: () => import("./pages/admin.js"),
  audit: () => import("./pages/audit.js"),
  operator: () => import("./pages/operator.js"),
};

// [pattern, page, export, nav section]; ":x" captures one path segment
const ROUTES = [
  ["/login", "auth", "renderLogin", null],
  ["/register", "auth", "renderRegister", null],
  ["/products", "products", "render", "products"],
  ["/products/:id", "product", "render", "products"],
  ["/alerts", "alerts", "render", "alerts"],
  ["/settings", "settings", "render", "settings"],
  ["/channels", "channels", "render", "channels"],
  ["/competitors", "competitors", "renderList", "competitors"],
  ["/competitors/:id", "competitors", "renderGroup", "competitors"],
  ["/optimization", "optimization", "renderIndex", "optimization"],
  ["/optimization/:id", "optimization", "renderProduct", "optimization"],
  ["/experiments/:id", "optimization", "renderExperiment", "optimization"],
  ["/runs", "runs", "renderList", "runs"],
  ["/runs/:id", "runs", "renderRun", "runs"],
  ["/admin", "admin", "render", "admin"],
  ["/admin/audit", "audit", "render", "admin"],
  ["/admin/operations", "operator", "render", "operations"],
];

const NAV = [
  ["products", "/products", "Products"],
  ["alerts", "/alerts", "Alerts"],
  ["channels", "/channels", "Channels"],
  ["competitors", "/competitors", "Competitors"],
  ["optimization", "/optimization", "Optimization"],
  ["runs", "/runs", "Runs"],
  ["settings", "/settings", "Settings"],
];

const root = document.getElementById("app");
let cleanup = null;
let renderCount = 0;

function match(path) {
  const parts = path.replace(/\/+$/, "").split("/").filter(Boolean);
  for (const [pattern, page, name, section] of ROUTES) {
    const want = pattern.split("/").filter(Boolean);
    if (want.length !== parts.length) continue;
    const params = {};
    let ok = true;
    want.forEach((seg, i) => {
      if (seg.startsWith(":")) params[seg.slice(1)] = decodeURIComponent(parts[i]);
      else if (seg !== parts[i]) ok = false;
    });
    if (ok) return { page, name, section, params };
  }
  return null;
}

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

function shell(section) {
  const me = api.user();
  const items = NAV.map(([key, href, label]) =>
    h("a", { href, dataset: { link: "" }, class: key === section ? "active" : null,
      "aria-current": key === section ? "page" : null }, label));
  if (me && me.role === "admin") {
    items.push(h("a", { href: "/admin", dataset: { link: "" }, class: section === "admin" ? "active" : null }, "Admin"));
    items.push(h("a", { href: "/admin/operations", dataset: { link: "" }, class: section === "operations" ? "active" : null }, "Operations"));
  }
  const signOut = h("button", { class: "btn btn-ghost", type: "button", id: "sign-out",
    onclick: async () => {
      signOut.disabled = true;
      try {
        await api.logout();
      } finally {
        navigate("/login", { replace: true });
      }
    } }, "Sign out");
  const main = h("main", { class: "page", id: "page" });
  const header = h("header", { class: "topbar" },
    link("/products", h("span", { class: "brand" }, h("img", { src: "/static/favicon.svg", alt: "", width: 24, height: 24 }), "Amazon Pilot")),
    h("nav", { class: "nav", "aria-label": "Main" }, items),
    h("div", { class: "who" },
      h("span", { class: "who-email", text: me ? me.email : "" }),
      me ? h("span", { class: "badge", text: me.plan }) : null,
      signOut));
  clear(root).append(header, main);
  return main;
}

async function render() {
  const ticket = ++renderCount;
  if (cleanup) {
    try {
      cleanup();
    } catch {
      /* a page's cleanup must not block navigation */
    }
    cleanup = null;
  }
  let path = location.pathname;
  if (path === "/" || path === "") {
    history.replaceState(null, "", "/products");
    path = "/products";
  }
  const found = match(path);
  const signedIn = !!api.user();
  if (!found) {
    const main = signedIn ? shell(null) : clear(root).appendChild(h("main", { class: "page" }));
    main.append(h("h1", { text: "Page not found" }), h("p", {}, "Nothing lives at ", h("code", { text: path }), ". ", link("/products", "Go to your products")));
    return;
  }
  if (found.page !== "auth" && !signedIn) {
    const back = location.pathname + location.search;
    navigate("/login" + (back !== "/products" ? "?next=" + encodeURIComponent(back) : ""), { replace: true });
    return;
  }
  if (found.page === "auth" && signedIn) {
    navigate("/products", { replace: true });
    return;
  }
  const main = found.page === "auth" ? clear(root).appendChild(h("main", { class: "auth-page" })) : shell(found.section);
  main.append(loading());
  let module;
  try {
    module = await PAGES[found.page]();
  } catch (err) {
    if (ticket === renderCount) clear(main).append(errorBox(new Error("this page failed to load: " + err.message), () => render()));
    return;
  }
  if (ticket !== renderCount) return;
  clear(main);
  const query = new URLSearchParams(location.search);
  const ctx = { navigate, query, isCurrent: () => ticket === renderCount };
  try {
    const result = await module[found.name](main, found.params, ctx);
    if (typeof result === "function") {
      if (ticket === renderCount) cleanup = result;
      else result();
    }
  } catch (err) {
    if (ticket === renderCount) clear(main).append(errorBox(err, () => render()));
  }
}

document.addEventListener("click", (event) => {
  const a = event.target.closest && event.target.closest("a[data-link]");
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  event.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
});
window.addEventListener("popstate", () => render());

api.onAuthChange((me) => {
  // signed out elsewhere (refresh refused): back to the sign-in page
  if (!me && match(location.pathname)?.page !== "auth") navigate("/login", { replace: true });
});

(async () => {
  try {
    await api.restore();
  } catch (err) {
    clear(root).append(h("main", { class: "page" }, errorBox(err, () => location.reload())));
    return;
  }
  render();
})();
