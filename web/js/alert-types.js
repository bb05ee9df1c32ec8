// Every alert type the API can answer with (the AlertType enum of the contract), in the
// order the filter lists them: its words, and the chart it belongs on (none: every chart).
// tests/unit/test_alert_types.py keeps this list equal to domain.changes.AlertType.

export const ALERT_TYPES = [
  { type: "price_change", label: "Price change", metric: "price" },
  { type: "target_price_reached", label: "Target price reached", metric: "price" },
  { type: "subcategory_bsr_change", label: "Sub-category BSR change", metric: "subcategory_bsr" },
  { type: "bsr_change", label: "BSR change", metric: "bsr" },
  { type: "buy_box_lost", label: "Buy Box lost", metric: null },
  { type: "buy_box_seller_change", label: "Buy Box seller change", metric: null },
  { type: "buy_box_price_change", label: "Buy Box price change", metric: "buy_box_price" },
  { type: "buy_box_regained", label: "Buy Box regained", metric: null },
  { type: "buy_box_suppressed", label: "Buy Box suppressed", metric: null },
  { type: "new_seller_on_listing", label: "New seller on listing", metric: null },
  { type: "out_of_stock", label: "Out of stock", metric: null },
  { type: "back_in_stock", label: "Back in stock", metric: null },
  { type: "rating_change", label: "Rating change", metric: "rating" },
  { type: "review_count_jump", label: "Review count jump", metric: "review_count" },
  { type: "title_change", label: "Title change", metric: null },
  { type: "images_change", label: "Images change", metric: null },
  { type: "delisted", label: "Delisted", metric: null },
  { type: "listing_redirected", label: "Listing redirected", metric: null },
  { type: "keyword_rank_drop", label: "Keyword rank drop", metric: null },
];

const BY_TYPE = new Map(ALERT_TYPES.map((entry) => [entry.type, entry]));

// An alert type in words (a type this dashboard does not know yet is shown as it comes).
export function alertLabel(type) {
  return BY_TYPE.get(type)?.label ?? type.replace(/_/g, " ");
}

// The chart metric an alert type belongs on, or null when it belongs on every chart.
export function alertMetric(type) {
  return BY_TYPE.get(type)?.metric ?? null;
}
