// The API client: tokens, the one error format, and silent refresh.
//
// The access token lives in this module's memory only. The refresh token is kept in
// sessionStorage (this tab, this origin: no script of another origin can read it) so a
// reload does not sign the seller out; it is rotated on every use. See docs/dashboard.md.

const REFRESH_KEY = "amazon-pilot.refresh";
const EARLY_REFRESH_S = 60; // renew this long before the access token expires

let accessToken = null;
let refreshTimer = null;
let refreshing = null;
let currentUser = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, code, message, details = [], requestId = null, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || [];
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }
}

export function onAuthChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function emit() {
  for (const fn of listeners) fn(currentUser);
}

export function user() {
  return currentUser;
}

function storedRefresh() {
  try {
    return sessionStorage.getItem(REFRESH_KEY);
  } catch {
    return null;
  }
}

function storeRefresh(token) {
  try {
    if (token) sessionStorage.setItem(REFRESH_KEY, token);
    else sessionStorage.removeItem(REFRESH_KEY);
  } catch {
    /* storage disabled: the session lasts until the page is closed */
  }
}

function setTokens(pair) {
  accessToken = pair.access_token;
  storeRefresh(pair.refresh_token);
  clearTimeout(refreshTimer);
  const seconds = Math.max(5, (pair.expires_in || 900) - EARLY_REFRESH_S);
  refreshTimer = setTimeout(() => refresh().catch(() => {}), seconds * 1000);
}

function clearTokens() {
  accessToken = null;
  clearTimeout(refreshTimer);
  refreshTimer = null;
  storeRefresh(null);
}

async function parseError(response) {
  const retry = response.headers.get("retry-after");
  const retryAfter = retry === null ? null : Number(retry);
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const err = body && body.error;
  if (err && typeof err.message === "string") {
    return new ApiError(response.status, err.code || "ERROR", err.message, err.details,
      err.request_id, retryAfter);
  }
  const text = response.status === 0 ? "the network request failed"
    : `the server answered ${response.status} ${response.statusText || ""}`.trim();
  return new ApiError(response.status, "HTTP_" + response.status, text, [], null, retryAfter);
}

async function send(method, path, { body, query, auth = true } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
    }
    const qs = params.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
  }
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (auth && accessToken) headers.authorization = "Bearer " + accessToken;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (exc) {
    throw new ApiError(0, "NETWORK", "cannot reach the server: " + (exc && exc.message || exc));
  }
  return response;
}

/** One API call; JSON in and out. Throws ApiError with the API's message. */
export async function api(method, path, options = {}) {
  let response = await send(method, path, options);
  if (response.status === 401 && options.auth !== false && storedRefresh()) {
    try {
      await refresh();
    } catch (exc) {
      throw exc instanceof ApiError ? exc : await parseError(response);
    }
    response = await send(method, path, options);
  }
  if (!response.ok) throw await parseError(response);
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export const get = (path, query) => api("GET", path, { query });
export const post = (path, body) => api("POST", path, { body: body === undefined ? {} : body });
export const patch = (path, body) => api("PATCH", path, { body });
export const del = (path) => api("DELETE", path);

/** Renew the token pair with the stored refresh token (one request at a time). */
export function refresh() {
  if (refreshing) return refreshing;
  const token = storedRefresh();
  if (!token) return Promise.reject(new ApiError(401, "UNAUTHORIZED", "you are signed out"));
  refreshing = (async () => {
    const response = await send("POST", "/v1/auth/refresh",
      { body: { refresh_token: token }, auth: false });
    if (!response.ok) {
      const err = await parseError(response);
      if (response.status === 401) {
        clearTokens();
        currentUser = null;
        emit();
      }
      throw err;
    }
    setTokens(await response.json());
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function loadMe() {
  currentUser = await api("GET", "/v1/auth/me");
  emit();
  return currentUser;
}

/** At start-up: resume this tab's session when it has one. */
export async function restore() {
  if (!storedRefresh()) return null;
  try {
    await refresh();
    return await loadMe();
  } catch (exc) {
    if (exc instanceof ApiError && exc.status === 401) return null;
    throw exc;
  }
}

export async function login(email, password) {
  const pair = await api("POST", "/v1/auth/login", { body: { email, password }, auth: false });
  setTokens(pair);
  return loadMe();
}

export async function register(email, password, companyName) {
  await api("POST", "/v1/auth/register", {
    body: { email, password, company_name: companyName || null },
    auth: false,
  });
  return login(email, password);
}

export async function logout() {
  const token = storedRefresh();
  try {
    if (token) {
      await api("POST", "/v1/auth/logout", { body: { refresh_token: token }, auth: false });
    }
  } finally {
    clearTokens();
    currentUser = null;
    emit();
  }
}

/** Whether a route is there yet (features still being built answer 404 NOT_FOUND "no route"). */
export function isMissingRoute(err) {
  return err instanceof ApiError && err.status === 404 && /no route/i.test(err.message);
}
