// Enum values in words, for every page: "In stock", not in_stock. An unknown value is
// shown with its underscores as spaces (a value the API added after this dashboard).

const WORDS = {
  availability: {
    in_stock: "In stock",
    low_stock: "Low stock",
    out_of_stock: "Out of stock",
    unknown: "Unknown",
    no_featured_offer: "No featured offer",
    never_fetched: "Not fetched yet",
    not_found: "Not found",
  },
  severity: { info: "Info", warning: "Warning", critical: "Critical" },
  fetch_status: { pending: "Fetching…", ok: "OK", not_found: "Not found", failed: "Fetch failed" },
  status: {
    queued: "Queued", running: "Running", done: "Done", failed: "Failed", succeeded: "Succeeded",
    timed_out: "Timed out", delivered: "Delivered", pending: "Pending", stopped: "Stopped",
  },
};

export function words(kind, value) {
  if (value === null || value === undefined || value === "") return "–";
  const known = WORDS[kind] && WORDS[kind][value];
  if (known) return known;
  const text = String(value).replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}
