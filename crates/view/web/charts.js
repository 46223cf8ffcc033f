// Small SVG charts for the panels: values per bucket over time as step lines, with a
// reference line (a host's pCPUs) and a legend. Built with DOM calls and SVG presentation
// attributes only (the page's content security policy allows no inline styles). The SVG
// scales with its viewBox to the panel's width, so it never widens the page.

import { formatTime } from "./format.js";

const NS = "http://www.w3.org/2000/svg";
const W = 480;          // viewBox width
const H = 150;          // viewBox height
const LEFT = 52;        // value labels
const RIGHT = 8;
const TOP = 8;
const BOTTOM = 20;      // time labels

function svgEl(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// A chart of `lines` ({ name, color, values, start, step }: bucket i covers
// [start + i·step, start + (i+1)·step), times relative like the timeline's) over `span`
// ({ start, end }, labels counting from `origin`), values labelled by `unit`, with an optional
// `reference` ({ value, label }). Returns a <figure> holding the SVG and its legend.
export function lineChart({ label, span, origin, lines, unit, reference }) {
  const plotW = W - LEFT - RIGHT;
  const plotH = H - TOP - BOTTOM;
  const max = Math.max(0, ...lines.flatMap((l) => l.values), reference ? reference.value : 0);
  const yMax = max > 0 ? max * 1.1 : 1;
  const x = (t) => LEFT + ((t - span.start) / Math.max(1, span.end - span.start)) * plotW;
  const y = (v) => TOP + plotH - (v / yMax) * plotH;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, class: "chart" });
  for (let k = 0; k <= 3; k++) {
    const v = (yMax * k) / 3;
    svg.append(svgEl("line", { x1: LEFT, x2: W - RIGHT, y1: y(v), y2: y(v), stroke: "#e2e2e2" }));
    svg.append(svgEl("text", { x: LEFT - 4, y: y(v) + 4, "text-anchor": "end", class: "tick" }, unit(v)));
  }
  for (let k = 0; k <= 4; k++) {
    const t = span.start + ((span.end - span.start) * k) / 4;
    const anchor = k === 0 ? "start" : k === 4 ? "end" : "middle";
    svg.append(svgEl("line", { x1: x(t), x2: x(t), y1: TOP, y2: TOP + plotH, stroke: "#eeeeee" }));
    svg.append(svgEl("text", { x: x(t), y: H - 6, "text-anchor": anchor, class: "tick" }, formatTime(t - origin, (span.end - span.start) / 4)));
  }
  if (reference) {
    svg.append(svgEl("line", { x1: LEFT, x2: W - RIGHT, y1: y(reference.value), y2: y(reference.value), stroke: "#222", "stroke-dasharray": "5 3", class: "reference" }));
    svg.append(svgEl("text", { x: W - RIGHT - 2, y: y(reference.value) - 3, "text-anchor": "end", class: "tick" }, reference.label));
  }
  for (const line of lines) {
    const pts = [];
    line.values.forEach((v, i) => {
      const a = Math.max(span.start, line.start + i * line.step);
      const b = Math.min(span.end, line.start + (i + 1) * line.step);
      if (b <= a) return;
      pts.push(`${x(a).toFixed(1)},${y(v).toFixed(1)}`, `${x(b).toFixed(1)},${y(v).toFixed(1)}`);
    });
    const poly = svgEl("polyline", { points: pts.join(" "), fill: "none", stroke: line.color, "stroke-width": 1.5, class: "series" });
    poly.dataset.name = line.name;
    poly.append(svgEl("title", {}, line.name));
    svg.append(poly);
  }
  const legend = document.createElement("p");
  legend.className = "chart-legend";
  for (const line of lines) {
    const item = document.createElement("span");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = line.color;
    item.append(sw, line.name);
    legend.append(item);
  }
  const fig = document.createElement("figure");
  fig.className = "chart-box";
  fig.append(svg, legend);
  return fig;
}

// Bytes for people.
export function formatBytes(b) {
  const a = Math.abs(b);
  if (a >= 2 ** 30) return `${(b / 2 ** 30).toFixed(1)} GiB`;
  if (a >= 2 ** 20) return `${(b / 2 ** 20).toFixed(1)} MiB`;
  if (a >= 1024) return `${(b / 1024).toFixed(1)} KiB`;
  return `${Math.round(b)} B`;
}
