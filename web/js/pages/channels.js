// Notification channels: webhooks, Slack incoming webhooks and e-mail addresses that
// receive alerts, digests and weekly competitor reports. E-mail addresses are confirmed
// by a link before they receive anything; every channel can be edited in place.

import * as api from "../api.js";
import * as endpoints from "../endpoints.js";
import { badge, busy, confirmClick, empty, errorBox, field, fmtDateTime, h, loading, toast } from "../dom.js";

const KINDS = { webhook: "Webhook", slack: "Slack", email: "E-mail" };
const EVENTS = { alert: "Alerts", digest: "Digests", report: "Weekly reports" };
const STATUS = {
  active: ["active", "ok"],
  unverified: ["waiting for confirmation", "warning"],
  paused: ["paused", "muted"],
};
const PLACEHOLDER = {
  webhook: "https://example.com/hooks/pilot",
  slack: "https://hooks.slack.com/services/T…/B…/…",
  email: "me@example.com",
};

function deliveries(channel) {
  const host = h("div", { class: "deliveries" }, loading("Loading deliveries…"));
  api.get(endpoints.notificationChannelDeliveries(channel.id), { limit: 20 }).then((out) => {
    if (!out.items.length) {
      host.replaceChildren(empty("Nothing delivered yet."));
      return;
    }
    host.replaceChildren(h("table", { class: "table compact" },
      h("thead", {}, h("tr", {}, ["When", "Kind", "Status", "Alerts", "Attempts", "Response"].map((t) => h("th", { text: t })))),
      h("tbody", {}, out.items.map((d) => h("tr", {},
        h("td", { dataset: { label: "When" }, text: fmtDateTime(d.created_at) }),
        h("td", { dataset: { label: "Kind" }, text: d.kind }),
        h("td", { dataset: { label: "Status" } }, badge(d.status, d.status === "delivered" ? "ok" : d.status === "failed" ? "danger" : "muted")),
        h("td", { dataset: { label: "Alerts" }, text: String(d.alert_ids.length) }),
        h("td", { dataset: { label: "Attempts" }, text: String(d.attempts) }),
        h("td", { dataset: { label: "Response" }, text: d.last_error || (d.response_code ? String(d.response_code) : "–") }))))));
  }, (err) => host.replaceChildren(errorBox(err)));
  return host;
}

function eventBoxes(prefix, selected) {
  const boxes = Object.entries(EVENTS).map(([value, label]) => {
    const box = h("input", { type: "checkbox", name: "events", value, id: `${prefix}-event-${value}`,
      checked: selected.includes(value) });
    return [box, h("label", { class: "field-check", for: box.id }, box, ` ${label}`)];
  });
  const group = h("fieldset", { class: "fieldset inline" }, h("legend", { text: "Receives" }), boxes.map((b) => b[1]));
  return { group, values: () => boxes.filter((b) => b[0].checked).map((b) => b[0].value) };
}

function severitySelect(id, value) {
  return h("select", { name: "min_severity", id }, ["info", "warning", "critical"].map((s) =>
    h("option", { value: s, selected: s === value }, `${s} and up`)));
}

function editForm(channel, done) {
  const prefix = `edit-${channel.id}`;
  const target = h("input", { type: channel.kind === "email" ? "email" : "url", id: `${prefix}-target`,
    value: channel.email || channel.url || "", required: true });
  const name = h("input", { type: "text", id: `${prefix}-name`, maxlength: 100, value: channel.name || "" });
  const events = eventBoxes(prefix, channel.events);
  const severity = severitySelect(`${prefix}-severity`, channel.min_severity);
  const active = h("input", { type: "checkbox", id: `${prefix}-active`, checked: channel.is_active });
  const errors = h("div", { class: "form-errors" });
  const save = h("button", { class: "btn btn-primary btn-small", type: "submit" }, "Save");
  const cancel = h("button", { class: "btn btn-small", type: "button" }, "Cancel");
  cancel.addEventListener("click", () => done(false));
  const form = h("form", { class: "form channel-edit", id: prefix, novalidate: true },
    field("Name", name), field(channel.kind === "email" ? "Address" : "URL", target,
      channel.kind === "email" ? "A new address is confirmed again by a link before it receives anything." : null),
    events.group, field("Minimum severity", severity),
    h("label", { class: "field field-check" }, active, h("span", { text: " Active (untick to pause)" })),
    errors, h("div", { class: "row-actions" }, save, cancel));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    const body = { name: name.value.trim() || null, events: events.values(), min_severity: severity.value,
      is_active: active.checked };
    body[channel.kind === "email" ? "email" : "url"] = target.value.trim();
    save.disabled = true;
    try {
      const updated = await api.patch(endpoints.notificationChannel(channel.id), body);
      toast(updated.status === "unverified" ? "Saved: confirm the new address by the link e-mailed to it" : "Channel saved", "ok");
      done(true);
    } catch (err) {
      errors.append(errorBox(err));
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

function channelItem(channel, reload) {
  const detail = h("div", {});
  const actions = [];
  if (channel.status === "unverified") {
    const resend = h("button", { class: "btn btn-small", type: "button" }, "Send the link again");
    resend.addEventListener("click", () => busy(resend, async () => {
      await api.post(endpoints.notificationChannelVerify(channel.id));
      toast("A new confirmation link is on its way", "ok");
    }));
    actions.push(resend);
  } else {
    const test = h("button", { class: "btn btn-small", type: "button" }, "Send test");
    test.addEventListener("click", () => busy(test, async () => {
      await api.post(endpoints.notificationChannelTest(channel.id));
      toast("Test notification queued", "ok");
    }));
    actions.push(test);
  }
  const edit = h("button", { class: "btn btn-small", type: "button" }, "Edit");
  edit.addEventListener("click", () => {
    detail.replaceChildren(editForm(channel, (changed) => (changed ? reload() : detail.replaceChildren())));
  });
  const show = h("button", { class: "btn btn-small", type: "button" }, "Deliveries");
  show.addEventListener("click", () => {
    if (detail.querySelector(".deliveries")) detail.replaceChildren();
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
  const [statusText, statusKind] = STATUS[channel.status] || [channel.status, "muted"];
  const events = channel.events.map((e) => EVENTS[e] || e).join(", ");
  return h("li", { class: "card", dataset: { channel: channel.id, kind: channel.kind } },
    h("div", { class: "card-row" },
      h("div", {}, badge(KINDS[channel.kind] || channel.kind), " ",
        channel.name ? h("strong", { text: channel.name + " · " }) : null,
        h("span", { class: "break", text: channel.url || channel.email || "" }), " ",
        h("span", { class: "channel-status" }, badge(statusText, statusKind)),
        h("div", { class: "muted small", text: `${events} · from ${channel.min_severity} up · added ${fmtDateTime(channel.created_at)}` }),
        channel.status === "unverified"
          ? h("div", { class: "small", text: `Nothing is sent here until the link e-mailed on ${fmtDateTime(channel.verification_sent_at)} is opened.` })
          : null),
      h("div", { class: "row-actions" }, ...actions, edit, show, remove)),
    detail);
}

function createForm(onCreated) {
  const kind = h("select", { name: "kind", id: "channel-kind" }, Object.entries(KINDS).map(([v, t]) => h("option", { value: v }, t)));
  const target = h("input", { type: "url", name: "target", id: "channel-target", placeholder: PLACEHOLDER.webhook, required: true });
  const name = h("input", { type: "text", name: "name", id: "channel-name", maxlength: 100, placeholder: "optional" });
  const severity = severitySelect("channel-severity", "info");
  const events = eventBoxes("channel-new", Object.keys(EVENTS));
  const hint = h("p", { class: "muted small", id: "channel-hint" });
  const hints = {
    webhook: "Each delivery is a signed JSON POST (X-Pilot-Signature); the signing secret is shown once.",
    slack: "Create an incoming webhook in Slack (Apps → Incoming Webhooks) and paste its URL. Slack does not check signatures: keep the URL secret.",
    email: "We e-mail a confirmation link; the address receives nothing until it is opened.",
  };
  const sync = () => {
    target.type = kind.value === "email" ? "email" : "url";
    target.placeholder = PLACEHOLDER[kind.value];
    hint.textContent = hints[kind.value];
  };
  kind.addEventListener("change", sync);
  sync();
  const result = h("div", { id: "channel-result" });
  const submit = h("button", { class: "btn btn-primary", type: "submit", id: "channel-add" }, "Add channel");
  const form = h("form", { class: "form", id: "channel-form" },
    h("div", { class: "form-inline" }, field("Kind", kind), field("Address", target), field("Name", name), field("Minimum severity", severity)),
    events.group, hint, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    result.replaceChildren();
    submit.disabled = true;
    try {
      const body = { kind: kind.value, min_severity: severity.value, events: events.values() };
      if (name.value.trim()) body.name = name.value.trim();
      body[kind.value === "email" ? "email" : "url"] = target.value.trim();
      const created = await api.post(endpoints.notificationChannels(), body);
      target.value = "";
      name.value = "";
      if (created.secret) {
        result.append(h("div", { class: "notice" },
          h("strong", { text: "Signing secret (shown once): " }), h("code", { class: "break", text: created.secret }),
          h("p", { class: "muted small", text: "Verify the X-Pilot-Signature header of each delivery with it." })));
      }
      if (created.status === "unverified") {
        result.append(h("div", { class: "notice", id: "channel-confirm-notice" },
          `We sent a confirmation link to ${created.email}. Alerts go there once it is opened.`));
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
  const host = h("div", { id: "channel-list" }, loading("Loading channels…"));
  async function load() {
    try {
      const out = await api.get(endpoints.notificationChannels());
      if (!out.items.length) host.replaceChildren(empty("No channels yet: alerts show here only. Add a webhook, Slack or an e-mail address to be told."));
      else host.replaceChildren(h("ul", { class: "card-list" }, out.items.map((c) => channelItem(c, load))));
    } catch (err) {
      host.replaceChildren(api.isMissingRoute(err)
        ? empty("Notification channels are not available on this server yet.")
        : errorBox(err, load));
    }
  }
  if (new URLSearchParams(window.location.search).has("verified")) toast("Address confirmed: alerts go there from now on", "ok");
  main.append(h("div", { class: "page-head" }, h("h1", { text: "Notification channels" })), createForm(load), host);
  await load();
}
