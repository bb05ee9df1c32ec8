// The API client: tokens, the one error format, and silent refresh.
//
// The access token lives in this module's memory only. The refresh token is in an
// HttpOnly cookie the API sets when asked with `X-Session-Cookie: 1`: no script, this
// page's included, can read it; it is rotated on every use. localStorage keeps only a
// hint that a session may exist, so a signed-out visit makes no refresh call.
// See docs/dashboard.md.

import * as endpoints from "./endpoints.js";

const SESSION_HINT_KEY = "amazon-pilot.session";
const SESSION_HEADER = { "x-session-cookie": "1" };
const REFRESH_LOCK = "amazon-pilot.refresh"; // one tab rotates the shared cookie at a time
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

/** The signed-in account as the API answered a change to it (PATCH /v1/auth/me). */
export function updateUser(me) {
  currentUser = me;
  emit();
}

function mayHaveSession() {
  try {
    return localStorage.getItem(SESSION_HINT_KEY) === "1";
  } catch {
    return true; // storage disabled: ask the API
  }
}

function hintSession(present) {
  try {
    if (present) localStorage.setItem(SESSION_HINT_KEY, "1");
    else localStorage.removeItem(SESSION_HINT_KEY);
  } catch {
    /* storage disabled: every visit asks the API once */
  }
}

function setTokens(pair) {
  accessToken = pair.access_token;
  hintSession(true);
  clearTimeout(refreshTimer);
  const seconds = Math.max(5, (pair.expires_in || 900) - EARLY_REFRESH_S);
  refreshTimer = setTimeout(() => refresh().catch(() => {}), seconds * 1000);
}

function clearTokens() {
  accessToken = null;
  clearTimeout(refreshTimer);
  refreshTimer = null;
  hintSession(false);
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

async function send(method, path, { body, query, auth = true, session = false } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
    }
    const qs = params.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
  }
  const headers = { accept: "application/json", ...(session ? SESSION_HEADER : {}) };
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
  if (response.status === 401 && options.auth !== false && mayHaveSession()) {
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

/** Across tabs, one rotation of the shared cookie at a time: a second tab waiting here
 * then presents the rotated cookie, not the spent one the API would take for a theft. */
function oneTabAtATime(work) {
  return navigator.locks ? navigator.locks.request(REFRESH_LOCK, work) : work();
}

/** Renew the access token with the session cookie (one request at a time). */
export function refresh() {
  if (refreshing) return refreshing;
  if (!mayHaveSession()) {
    return Promise.reject(new ApiError(401, "UNAUTHORIZED", "you are signed out"));
  }
  refreshing = oneTabAtATime(async () => {
    const response = await send("POST", endpoints.authRefresh(),
      { body: {}, auth: false, session: true });
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
  }).finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function loadMe() {
  currentUser = await api("GET", endpoints.authMe());
  emit();
  return currentUser;
}

/** At start-up: resume this tab's session when it has one. */
export async function restore() {
  if (!mayHaveSession()) return null;
  try {
    await refresh();
    return await loadMe();
  } catch (exc) {
    if (exc instanceof ApiError && exc.status === 401) return null;
    throw exc;
  }
}

/** Sign in. With two-step sign-in on, the answer is a challenge instead of a session:
 * returns { mfaRequired: true, mfaToken } for loginMfa; otherwise the signed-in user. */
export async function login(email, password) {
  const answer = await api("POST", endpoints.authLogin(),
    { body: { email, password }, auth: false, session: true });
  if (answer.mfa_required) return { mfaRequired: true, mfaToken: answer.mfa_token };
  setTokens(answer);
  return loadMe();
}

/** The second step: the challenge and an authenticator code (or a recovery code). */
export async function loginMfa(mfaToken, { code, recoveryCode }) {
  const pair = await api("POST", endpoints.authLoginMfa(), {
    body: { mfa_token: mfaToken, code: code || null, recovery_code: recoveryCode || null },
    auth: false, session: true,
  });
  setTokens(pair);
  return loadMe();
}

/** A session the API re-issued (MFA turned on or off): the cookie is set by the answer. */
export async function adoptTokens(pair) {
  setTokens(pair);
  return loadMe();
}

/** POST in cookie mode, for answers that re-issue the session (MFA confirm / disable). */
export const postSession = (path, body) => api("POST", path, { body, session: true });

export async function register(email, password, companyName) {
  // The answer is the same whether the e-mail had an account (no one learns which do):
  // signing in tells whether this password opens it.
  await api("POST", endpoints.authRegister(), {
    body: { email, password, company_name: companyName || null },
    auth: false,
  });
  return login(email, password);
}

export async function logout() {
  try {
    // revokes the session and clears the cookie
    await api("POST", endpoints.authLogout(), { body: {}, auth: false, session: true });
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

/** Download an export (CSV) as a file: the API call carries the session's token, so a
 * plain link cannot; the answer becomes a Blob saved under the server's file name. */
export async function download(path, query = {}, fallbackName = "export.csv") {
  const options = { query: { ...query, format: "csv" } };
  let response = await send("GET", path, options);
  if (response.status === 401 && mayHaveSession()) {
    await refresh();
    response = await send("GET", path, options);
  }
  if (!response.ok) throw await parseError(response);
  const disposition = response.headers.get("content-disposition") || "";
  const match = /filename="([^"]+)"/.exec(disposition);
  const name = match ? match[1] : fallbackName;
  const blob = await response.blob();
  const href = URL.createObjectURL(blob);
  const anchor = document.createElement("a");
  anchor.href = href;
  anchor.download = name;
  anchor.hidden = true;
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
  return name;
}
