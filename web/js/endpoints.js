// Every API path the dashboard calls. This module is the only one that knows them:
// pages and api.js ask it for a path and pass query parameters to the API client.
// Path parameters are encoded, so an id taken from the page's URL stays one segment.
// The contract is the committed OpenAPI document; scripts/check-endpoints.mjs (make jslint)
// checks every path here against it.

const V1 = "/v1";

/** The API path of the given segments, each encoded. */
function path(...segments) {
  return V1 + segments.map((s) => "/" + encodeURIComponent(String(s))).join("");
}

// ------------------------------------------------------------------ auth

export const authRegister = () => path("auth", "register");
export const authLogin = () => path("auth", "login");
export const authRefresh = () => path("auth", "refresh");
export const authLogout = () => path("auth", "logout");
export const authMe = () => path("auth", "me");
export const authLoginMfa = () => path("auth", "login", "mfa");
export const authMfa = () => path("auth", "mfa");
export const authMfaEnrol = () => path("auth", "mfa", "enrol");
export const authMfaConfirm = () => path("auth", "mfa", "confirm");
export const authMfaDisable = () => path("auth", "mfa", "disable");
export const authMfaRecoveryCodes = () => path("auth", "mfa", "recovery-codes");

// ------------------------------------------------------------------ admin

export const adminUsers = () => path("admin", "users");
export const adminUser = (userId) => path("admin", "users", userId);
export const adminAudit = () => path("admin", "audit");

// ------------------------------------------------------------------ products

export const products = () => path("products");
export const productsBulk = () => path("products", "bulk");
export const product = (productId) => path("products", productId);
export const productRefresh = (productId) => path("products", productId, "refresh");
export const productHistory = (productId) => path("products", productId, "history");
export const productListingScore = (productId) => path("products", productId, "listing-score");
export const productOptimizations = (productId) => path("products", productId, "optimizations");

// ------------------------------------------------------------------ alerts

export const alerts = () => path("alerts");
export const alertAck = (alertId) => path("alerts", alertId, "ack");

// ------------------------------------------------------------------ scrape runs

export const scrapeRuns = () => path("scrape-runs");
export const scrapeRun = (runId) => path("scrape-runs", runId);

// ------------------------------------------------------------------ notification channels

export const notificationChannels = () => path("notification-channels");
export const notificationChannel = (channelId) => path("notification-channels", channelId);
export const notificationChannelDeliveries = (channelId) => path("notification-channels", channelId, "deliveries");
export const notificationChannelTest = (channelId) => path("notification-channels", channelId, "test");

// ------------------------------------------------------------------ competitor groups

export const competitorGroups = () => path("competitor-groups");
export const competitorGroup = (groupId) => path("competitor-groups", groupId);
export const competitorGroupComparison = (groupId) => path("competitor-groups", groupId, "comparison");
export const competitorGroupReports = (groupId) => path("competitor-groups", groupId, "reports");
export const competitorGroupReport = (groupId, reportId) => path("competitor-groups", groupId, "reports", reportId);

// ------------------------------------------------------------------ optimization and experiments

export const optimization = (runId) => path("optimizations", runId);
export const experiments = () => path("experiments");
export const experimentCandidates = () => path("experiments", "candidates");
export const experiment = (experimentId) => path("experiments", experimentId);
export const experimentStop = (experimentId) => path("experiments", experimentId, "stop");

// ------------------------------------------------------------------ operator console (admins)

export const opsAlarms = () => path("admin", "operations", "alarms");
export const opsQueues = () => path("admin", "operations", "queues");
export const opsDeadLetters = (queue) => path("admin", "operations", "dlq", queue);
export const opsRedrive = (queue) => path("admin", "operations", "dlq", queue, "redrive");
export const opsJobs = () => path("admin", "operations", "jobs");
export const opsOutbox = () => path("admin", "operations", "outbox");
export const opsMetrics = () => path("admin", "operations", "metrics");

// ------------------------------------------------------------------ organisation (tags, bulk actions)

export const productsBulkActions = () => path("products", "bulk-actions");
export const productTags = () => path("products", "tags");
export const competitorGroupCompetitors = (groupId) => path("competitor-groups", groupId, "competitors");
export const competitorGroupCompetitor = (groupId, asin) => path("competitor-groups", groupId, "competitors", asin);
