// Charts: a tiny canvas sparkline for table rows, and interactive time series
// (zoom by dragging, double-click to reset, values on hover) drawn by uPlot.

import { h } from "./dom.js";

const UPLOT_URL = "/static/vendor/uplot-1.6.32/uPlot.esm.js";
let uplotModule = null;
export function loadUPlot() {
  if (!uplotModule) uplotModule = import(UPLOT_URL).then((m) => m.default);
  return uplotModule;
}

export const PALETTE = ["#2563eb", "#e4572e", "#17a398", "#9b5de5", "#f4a259", "#5c677d", "#d81159", "#3a86ff"];
const SEVERITY_COLORS = { info: "#3a86ff", warning: "#f4a259", critical: "#d81159" };

/** Draw `values` (numbers or nulls) on a small canvas; `invert` puts low values up. */
export function sparkline(values, { width = 110, height = 30, invert = false, label = "trend" } = {}) {
  const canvas = h("canvas", { class: "spark", width: width, height: height, role: "img", "aria-label": label });
  const points = values.map((v, i) => [i, v]).filter(([, v]) => v !== null && v !== undefined && Number.isFinite(v));
  if (points.length < 2) {
    canvas.setAttribute("aria-label", "not enough history");
    return canvas;
  }
  const ratio = window.devicePixelRatio || 1;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  canvas.style.width = width + "px";
  canvas.style.height = height + "px";
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  let min = Infinity;
  let max = -Infinity;
  for (const [, v] of points) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const span = max - min || 1;
  const n = values.length - 1 || 1;
  const x = (i) => 2 + (i / n) * (width - 4);
  const y = (v) => {
    const t = (v - min) / span;
    return 3 + (invert ? t : 1 - t) * (height - 6);
  };
  const first = points[0][1];
  const last = points[points.length - 1][1];
  const good = invert ? last <= first : last >= first;
  ctx.strokeStyle = good ? "#17a398" : "#e4572e";
  ctx.lineWidth = 1.5;
  ctx.lineJoin = "round";
  // A null (out of stock: no price) is a gap: the line stops and starts again after it.
  ctx.beginPath();
  let penDown = false;
  values.forEach((v, i) => {
    if (v === null || v === undefined || !Number.isFinite(v)) {
      penDown = false;
      return;
    }
    if (penDown) ctx.lineTo(x(i), y(v));
    else ctx.moveTo(x(i), y(v));
    penDown = true;
  });
  ctx.stroke();
  ctx.fillStyle = ctx.strokeStyle;
  ctx.beginPath();
  const [li, lv] = points[points.length - 1];
  ctx.arc(x(li), y(lv), 2, 0, Math.PI * 2);
  ctx.fill();
  return canvas;
}

/** A uPlot plugin drawing markers (alerts) as dashed vertical lines with a dot. */
function markersPlugin(markers) {
  return {
    hooks: {
      draw: (u) => {
        const ctx = u.ctx;
        const { top, height } = u.bbox;
        ctx.save();
        for (const m of markers) {
          const cx = u.valToPos(m.t, "x", true);
          if (cx < u.bbox.left || cx > u.bbox.left + u.bbox.width) continue;
          ctx.strokeStyle = SEVERITY_COLORS[m.severity] || "#888";
          ctx.fillStyle = ctx.strokeStyle;
          ctx.setLineDash([4, 4]);
          ctx.lineWidth = 1 * (window.devicePixelRatio || 1);
          ctx.beginPath();
          ctx.moveTo(cx, top);
          ctx.lineTo(cx, top + height);
          ctx.stroke();
          ctx.setLineDash([]);
          const cy = m.v === null || m.v === undefined ? top + 6 : u.valToPos(m.v, "y", true);
          ctx.beginPath();
          ctx.arc(cx, cy, 4.5 * (window.devicePixelRatio || 1), 0, Math.PI * 2);
          ctx.fill();
        }
        ctx.restore();
      },
    },
  };
}

/**
 * An interactive time-series chart in `container`.
 * times: seconds since epoch; series: [{label, values, color?}]; markers: [{t, v, severity}].
 * Returns {destroy}. The chart follows its container's width.
 */
export async function timeChart(container, { times, series, markers = [], invert = false, format, height = 300 }) {
  const uPlot = await loadUPlot();
  const fmt = format || ((v) => (v === null || v === undefined ? "–" : String(v)));
  const width = Math.max(280, container.clientWidth || 600);
  // The x range covers the markers too: an alert raised today, after the day's point,
  // still falls inside the chart.
  const marked = markers.map((m) => m.t).filter(Number.isFinite);
  const xRange = (u, min, max) => {
    let lo = min;
    let hi = max;
    for (const t of marked) {
      if (lo === null || t < lo) lo = t;
      if (hi === null || t > hi) hi = t;
    }
    if (lo === hi) return [lo - 43200, hi + 43200];
    const pad = marked.some((t) => t >= hi || t <= lo) ? (hi - lo) * 0.02 : 0;
    return [lo - pad, hi + pad];
  };
  const opts = {
    width,
    height,
    cursor: { drag: { x: true, y: false, setScale: true }, points: { size: 7 } },
    scales: { x: { time: true, range: xRange }, y: { dir: invert ? -1 : 1 } },
    legend: { live: true },
    axes: [
      { stroke: "#5c677d", grid: { stroke: "#e6e9ef" } },
      { stroke: "#5c677d", grid: { stroke: "#e6e9ef" }, size: 70, values: (u, ticks) => ticks.map((t) => fmt(t)) },
    ],
    series: [
      { label: "Time", value: (u, v) => (v === null ? "–" : new Date(v * 1000).toLocaleString()) },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: s.color || PALETTE[i % PALETTE.length],
        width: s.width || 2,
        // null = no value (out of stock: no price): a gap, never a line drawn through it
        spanGaps: s.spanGaps === true,
        points: { show: times.length < 60 },
        value: (u, v) => fmt(v),
      })),
    ],
    plugins: markers.length ? [markersPlugin(markers)] : [],
  };
  const data = [times, ...series.map((s) => s.values)];
  const plot = new uPlot(opts, data, container);
  const observer = new ResizeObserver(() => {
    const w = Math.max(280, container.clientWidth);
    if (Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height });
  });
  observer.observe(container);
  return {
    plot,
    destroy() {
      observer.disconnect();
      plot.destroy();
    },
  };
}
