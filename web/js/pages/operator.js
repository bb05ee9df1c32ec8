// Operations (administrators): the stack's alarms (firing first), each queue with its DLQ
// and outbox backlog, a DLQ's messages with why they failed and what they concern (redrive
// one, the selected or all), recent jobs with outcome and duration, and the key metrics.
// Everything comes from /v1/admin/operations/*; the API refuses anyone else (403).

import * as api from "../api.js";
import * as endpoints from "../endpoints.js";
import { badge, empty, errorBox, fmtDateTime, fmtDuration, fmtInt, h, link, loading, toast } from "../dom.js";

const REFRESH_MS = 10000;
const STATE_KIND = { ALARM: "danger", OK: "ok", INSUFFICIENT_DATA: "" };

function table(id, heads, rows) {
  return h("div", { class: "table-host" },
    h("table", { class: "table compact", id },
      h("thead", {}, h("tr", {}, heads.map((t) => h("th", { text: t })))),
      h("tbody", {}, rows)));
}

function cell(label, ...children) {
  return h("td", { dataset: { label } }, ...children);
}

function shortName(name) {
  // "<stack>-<LogicalId>[-SUFFIX]": the logical id says what it watches
  const parts = name.split("-");
  const logical = parts.find((p) => /Alarm$/.test(p));
  return logical || name;
}

function alarmsPanel(data) {
  if (!data.items.length) return empty("No alarms.");
  return table("ops-alarms", ["Alarm", "State", "Severity", "Since", "Reason"], data.items.map((a) =>
    h("tr", { class: a.state === "ALARM" ? "is-firing" : null, dataset: { alarm: a.name } },
      cell("Alarm", h("strong", { text: shortName(a.name), title: a.name }), h("small", { class: "muted", text: a.description })),
      cell("State", badge(a.state, STATE_KIND[a.state] ?? "")),
      cell("Severity", badge(a.severity, a.severity === "page" ? "critical" : "info")),
      cell("Since", fmtDateTime(a.since)),
      cell("Reason", h("span", { class: "break muted", text: a.reason || "–" })))));
}

function queuesPanel(data, showDlq) {
  return table("ops-queues", ["Queue", "Depth", "In flight", "Delayed", "Oldest", "DLQ", "Outbox", ""], data.items.map((q) => {
    const open = h("button", { class: "btn btn-small", type: "button", dataset: { queue: q.queue } }, "Dead letters");
    open.addEventListener("click", () => showDlq(q.queue));
    return h("tr", { dataset: { queue: q.queue } },
      cell("Queue", h("strong", { text: q.queue }), q.error ? h("small", { class: "ops-bad", text: q.error }) : null),
      cell("Depth", fmtInt(q.depth)),
      cell("In flight", fmtInt(q.in_flight)),
      cell("Delayed", fmtInt(q.delayed)),
      cell("Oldest", q.oldest_age_s === null || q.oldest_age_s === undefined ? "–" : fmtDuration(q.oldest_age_s)),
      cell("DLQ", q.dlq ? badge(String(q.dlq.depth), q.dlq.depth > 0 ? "danger" : "ok") : "–"),
      cell("Outbox", fmtInt(q.outbox_pending)),
      cell("", open));
  }));
}

function concerns(letter) {
  const pairs = Object.entries(letter.concerns || {});
  if (!pairs.length) return "–";
  return pairs.map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v}`).join("; ");
}

function jobsPanel(data) {
  const counts = Object.entries(data.counts).map(([s, n]) => `${s} ${n}`).join(" · ") || "none";
  if (!data.items.length) return h("div", {}, h("p", { class: "muted", text: "Last 24 h: " + counts }), empty("No jobs yet."));
  return h("div", {}, h("p", { class: "muted", text: "Last 24 h: " + counts }),
    table("ops-jobs", ["Finished", "Job", "Queue", "Outcome", "Attempts", "Duration", "Error"], data.items.map((j) =>
      h("tr", {},
        cell("Finished", fmtDateTime(j.finished_at)),
        cell("Job", h("code", { text: j.job_type }), h("small", { class: "muted mono", text: j.key })),
        cell("Queue", j.priority || "–"),
        cell("Outcome", badge(j.status, j.status === "done" ? "ok" : j.status === "failed" ? "danger" : "warn")),
        cell("Attempts", String(j.attempts)),
        cell("Duration", j.duration_s === null || j.duration_s === undefined ? "–" : `${j.duration_s.toFixed(2)} s`),
        cell("Error", h("span", { class: "break muted", text: j.last_error || "–" }))))));
}

function outboxPanel(data) {
  const pending = Object.entries(data.pending).map(([q, n]) => `${q}: ${n}`).join(", ") || "nothing pending";
  return h("ul", { class: "plain-list", id: "ops-outbox" },
    h("li", { text: "Unsent jobs: " + pending }),
    h("li", { text: "Oldest unsent: " + (data.oldest_pending_s === null ? "–" : fmtDuration(data.oldest_pending_s)) }),
    h("li", { text: `Failing sends: ${data.failing}` + (data.last_error ? ` (last: ${data.last_error})` : "") }));
}

function metricsPanel(data) {
  if (!data.series.length) return empty("No metrics yet.");
  const total = (s) => s.values.reduce((a, b) => a + b, 0);
  const peak = (s) => (s.values.length ? Math.max(...s.values) : null);
  return table("ops-metrics", ["Metric", `Total (per ${data.period_s} s periods)`, "Peak period", "Points"], data.series.map((s) => {
    const latency = s.unit === "ms";
    return h("tr", { dataset: { metric: s.id } },
      cell("Metric", s.label),
      cell("Total", latency ? "–" : fmtInt(total(s))),
      cell("Peak", peak(s) === null ? "–" : latency ? `${peak(s).toFixed(0)} ms` : fmtInt(peak(s))),
      cell("Points", String(s.values.length)));
  }));
}

export async function render(main) {
  const hosts = {
    alarms: h("div", {}, loading("Loading alarms…")),
    queues: h("div", {}, loading("Loading queues…")),
    dlq: h("div", { id: "ops-dlq" }),
    jobs: h("div", {}, loading("Loading jobs…")),
    outbox: h("div", {}, loading("Loading the outbox…")),
    metrics: h("div", {}, loading("Loading metrics…")),
  };
  let dlqQueue = null;

  async function fill(host, path, draw, query) {
    try {
      host.replaceChildren(draw(await api.get(path, query)));
    } catch (err) {
      host.replaceChildren(errorBox(err));
    }
  }

  async function showDlq(queue) {
    dlqQueue = queue;
    const host = hosts.dlq;
    host.replaceChildren(loading(`Loading the ${queue} DLQ…`));
    let page;
    try {
      page = await api.get(endpoints.opsDeadLetters(queue), { limit: 50 });
    } catch (err) {
      host.replaceChildren(errorBox(err));
      return;
    }
    const head = h("h3", { text: `Dead letters: ${queue} (${page.depth})` });
    if (!page.items.length) {
      host.replaceChildren(head, empty("This DLQ is empty."));
      return;
    }
    const boxes = [];
    async function redrive(body, button) {
      button.disabled = true;
      try {
        const result = await api.post(endpoints.opsRedrive(queue), body);
        const how = result.method === "message-move-task" ? "a message-move task started" : `${result.moved} moved`;
        toast(`Redrive of the ${queue} DLQ: ${how}`, "ok");
      } catch (err) {
        toast(err.message, "error");
      } finally {
        button.disabled = false;
      }
      await Promise.all([showDlq(queue), refresh()]);
    }
    const rows = page.items.map((m) => {
      const box = h("input", { type: "checkbox", value: m.message_id, "aria-label": "select " + m.message_id });
      boxes.push(box);
      const one = h("button", { class: "btn btn-small", type: "button" }, "Redrive");
      one.addEventListener("click", () => redrive({ message_ids: [m.message_id] }, one));
      return h("tr", { dataset: { message: m.message_id, key: m.job_key || "" } },
        cell("", box),
        cell("Reached DLQ", fmtDateTime(m.sent_at)),
        cell("Job", h("code", { text: m.job_type || "?" }), h("small", { class: "muted mono", text: m.job_key || "" })),
        cell("Concerns", h("span", { class: "break", text: concerns(m) })),
        cell("Failure reason", h("span", { class: "break", text: m.failure_reason })),
        cell("Receives", String(m.receive_count)),
        cell("", one));
    });
    const some = h("button", { class: "btn btn-small", type: "button", id: "ops-redrive-selected" }, "Redrive selected");
    some.addEventListener("click", () => {
      const ids = boxes.filter((b) => b.checked).map((b) => b.value);
      if (!ids.length) return toast("Select messages first", "error");
      return redrive({ message_ids: ids }, some);
    });
    const all = h("button", { class: "btn btn-small btn-danger-ghost", type: "button", id: "ops-redrive-all" }, "Redrive all");
    all.addEventListener("click", () => redrive({ all: true }, all));
    host.replaceChildren(head, h("div", { class: "toolbar" }, some, all),
      table("ops-dlq-table", ["", "Reached DLQ", "Job", "Concerns", "Failure reason", "Receives", ""], rows));
  }

  async function refresh() {
    await Promise.all([
      fill(hosts.alarms, endpoints.opsAlarms(), alarmsPanel),
      fill(hosts.queues, endpoints.opsQueues(), (d) => queuesPanel(d, showDlq)),
      fill(hosts.jobs, endpoints.opsJobs(), jobsPanel, { limit: 30 }),
      fill(hosts.outbox, endpoints.opsOutbox(), outboxPanel),
      fill(hosts.metrics, endpoints.opsMetrics(), metricsPanel, { minutes: 60 }),
    ]);
  }

  const again = h("button", { class: "btn btn-small", type: "button", id: "ops-refresh" }, "Refresh");
  again.addEventListener("click", () => {
    refresh();
    if (dlqQueue) showDlq(dlqQueue);
  });
  main.append(
    h("div", { class: "page-head" }, h("h1", { text: "Operations" }), h("div", { class: "toolbar" }, again, link("/admin", "Users and plans"))),
    h("section", { id: "ops-alarms-panel" }, h("h2", { text: "Alarms" }), hosts.alarms),
    h("section", { id: "ops-queues-panel" }, h("h2", { text: "Queues" }), hosts.queues, hosts.dlq),
    h("section", { id: "ops-jobs-panel" }, h("h2", { text: "Recent jobs" }), hosts.jobs),
    h("section", { id: "ops-outbox-panel" }, h("h2", { text: "Outbox" }), hosts.outbox),
    h("section", { id: "ops-metrics-panel" }, h("h2", { text: "Requests, errors, latency (last hour)" }), hosts.metrics));
  await refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => clearInterval(timer);
}
