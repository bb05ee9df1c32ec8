// Notification channels: webhooks and email addresses that receive alerts.

import * as api from "../api.js";
import * as endpoints from "../endpoints.js";
import { badge, busy, confirmClick, empty, errorBox, field, fmtDateTime, h, loading, toast } from "../dom.js";

function deliveries(channel) {
  const host = h("div", { class: "deliveries" }, loading("Loading deliveries…"));
  api.get(endpoints.notificationChannelDeliveries(channel.id), { limit: 20 }).then((out) => {
    if (!out.items.length) {
      host.replaceChildren(empty("Nothing delivered yet."));
      return;
    }
    host.replaceChildren(h("table", { class: "table compact" },
      h("thead", {}, h("tr", {}, ["When", "Kind", "Status", "Attempts", "Response"].map((t) => h("th", { text: t })))),
      h("tbody", {}, out.items.map((d) => h("tr", {},
        h("td", { dataset: { label: "When" }, text: fmtDateTime(d.created_at) }),
        h("td", { dataset: { label: "Kind" }, text: d.kind }),
        h("td", { dataset: { label: "Status" } }, badge(d.status, d.status === "delivered" ? "ok" : d.status === "failed" ? "danger" : "muted")),
        h("td", { dataset: { label: "Attempts" }, text: String(d.attempts) }),
        h("td", { dataset: { label: "Response" }, text: d.last_error || (d.response_code ? String(d.response_code) : "–") }))))));
  }, (err) => host.replaceChildren(errorBox(err)));
  return host;
}

function channelItem(channel, reload) {
  const detail = h("div", {});
  const test = h("button", { class: "btn btn-small", type: "button" }, "Send test");
  test.addEventListener("click", () => busy(test, async () => {
    await api.post(endpoints.notificationChannelTest(channel.id));
    toast("Test notification queued", "ok");
  }));
  const show = h("button", { class: "btn btn-small", type: "button" }, "Deliveries");
  show.addEventListener("click", () => {
    if (detail.childNodes.length) detail.replaceChildren();
    else detail.replaceChildren(deliveries(channel));
  });
  const remove = h("button", { class: "btn btn-small btn-danger-ghost", type: "button" }, "Remove");
  confirmClick(remove, {
    confirmLabel: "Confirm remove",
    onConfirm: async () => {
      await api.del(endpoints.notificationChannel(channel.id));
      toast("Channel removed");
      reload();
    },
  });
  return h("li", { class: "card" },
    h("div", { class: "card-row" },
      h("div", {}, badge(channel.kind), " ", h("strong", { class: "break", text: channel.url || channel.email || "" }),
        h("div", { class: "muted small", text: `alerts from ${channel.min_severity} up · added ${fmtDateTime(channel.created_at)}` }),
        channel.is_active ? null : badge("inactive", "muted")),
      h("div", { class: "row-actions" }, test, show, remove)),
    detail);
}

function createForm(onCreated) {
  const kind = h("select", { name: "kind" }, h("option", { value: "webhook" }, "Webhook"), h("option", { value: "email" }, "Email"));
  const target = h("input", { type: "url", name: "target", placeholder: "https://example.com/hooks/pilot", required: true });
  const severity = h("select", { name: "min_severity" }, ["info", "warning", "critical"].map((s) => h("option", { value: s }, s)));
  kind.addEventListener("change", () => {
    target.type = kind.value === "email" ? "email" : "url";
    target.placeholder = kind.value === "email" ? "me@example.com" : "https://example.com/hooks/pilot";
  });
  const result = h("div", {});
  const submit = h("button", { class: "btn btn-primary", type: "submit" }, "Add channel");
  const form = h("form", { class: "form form-inline" }, field("Kind", kind), field("Address", target), field("Minimum severity", severity), submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    result.replaceChildren();
    submit.disabled = true;
    try {
      const body = { kind: kind.value, min_severity: severity.value };
      body[kind.value === "email" ? "email" : "url"] = target.value.trim();
      const created = await api.post(endpoints.notificationChannels(), body);
      target.value = "";
      if (created.secret) {
        result.append(h("div", { class: "notice" },
          h("strong", { text: "Signing secret (shown once): " }), h("code", { class: "break", text: created.secret }),
          h("p", { class: "muted small", text: "Verify the X-Pilot-Signature header of each delivery with it." })));
      }
      onCreated();
    } catch (err) {
      result.append(errorBox(err));
    } finally {
      submit.disabled = false;
    }
  });
  return h("section", { class: "panel" }, h("h2", { class: "panel-title", text: "Add a channel" }), form, result);
}

export async function render(main) {
  const host = h("div", {}, loading("Loading channels…"));
  async function load() {
    try {
      const out = await api.get(endpoints.notificationChannels());
      if (!out.items.length) host.replaceChildren(empty("No channels yet: alerts show here only. Add a webhook or an email address to be told."));
      else host.replaceChildren(h("ul", { class: "card-list" }, out.items.map((c) => channelItem(c, load))));
    } catch (err) {
      host.replaceChildren(api.isMissingRoute(err)
        ? empty("Notification channels are not available on this server yet.")
        : errorBox(err, load));
    }
  }
  main.append(h("div", { class: "page-head" }, h("h1", { text: "Notification channels" })), createForm(load), host);
  await load();
}
