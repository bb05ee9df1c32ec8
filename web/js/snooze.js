// "Snooze" control: silence a product, an alert type, or one type of one product for a
// while (POST /v1/alert-snoozes). Alerts are still recorded and listed; nothing is sent.

import * as api from "./api.js";
import * as endpoints from "./endpoints.js";
import { fmtDateTime, h, toast } from "./dom.js";

const DURATIONS = [[1, "1 hour"], [8, "8 hours"], [24, "1 day"], [72, "3 days"], [168, "1 week"]];

/** A duration menu and a button; `target` is {tracked_product_id?, alert_type?}. */
export function snoozeControl(target, { label = "Snooze", id } = {}) {
  const hours = h("select", { class: "snooze-hours", "aria-label": "Snooze for", id: id ? `${id}-hours` : undefined },
    DURATIONS.map(([value, text]) => h("option", { value: String(value), selected: value === 24 }, text)));
  const button = h("button", { class: "btn btn-small", type: "button", id }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const made = await api.post(endpoints.alertSnoozes(), { ...target, hours: Number(hours.value) });
      toast(`Snoozed until ${fmtDateTime(made.until)}`, "ok");
    } catch (err) {
      toast(err.message, "error");
    } finally {
      button.disabled = false;
    }
  });
  return h("span", { class: "snooze-control" }, hours, button);
}
