// The panels beside the timeline: exit reasons, wait causes, preemption matrix, clusters,
// and the selection's per-state totals. Built with DOM calls (the page's content security
// policy allows no inline markup styles).

import { formatDuration, percent } from "./format.js";

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
}

function table(headers, rows, caption) {
  const t = el("table");
  if (caption) t.append(el("caption", { textContent: caption }));
  t.append(el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { textContent: h })))));
  const body = el("tbody");
  for (const r of rows) {
    body.append(el("tr", {}, ...r.map((c) => (c instanceof Node ? el("td", {}, c) : el("td", { textContent: c })))));
  }
  t.append(body);
  return t;
}

function swatch(color) {
  const s = el("span", { className: "swatch" });
  s.style.background = color;
  return s;
}

export function renderLegend(box, states) {
  box.replaceChildren(...states.map((s) => {
    const item = el("span", { className: "legend-item" }, swatch(s.color), s.label);
    item.dataset.state = s.name;
    return item;
  }));
}

export function renderHosts(box, summary) {
  const rows = summary.hosts.map((h, i) => [
    h.name || "(unnamed)",
    String(h.cpus),
    formatDuration(Math.max(0, h.end_ns - h.start_ns)),
    (h.events || 0).toLocaleString(),
    summary.clocks[i] || "",
  ]);
  box.replaceChildren(table(["host", "CPUs", "traced", "events", "clock"], rows));
}

export function renderExits(box, summary) {
  const parts = summary.vms.map((vm) => {
    // Two shares, named for what they divide: of the exits counted, of the time in exits.
    const total = vm.exits.reduce((a, e) => a + e.total_ns, 0);
    const count = vm.exits.reduce((a, e) => a + e.count, 0);
    const rows = vm.exits.slice(0, 12).map((e) => [e.reason, String(e.count), percent(e.count, count), formatDuration(e.total_ns), percent(e.total_ns, total), formatDuration(e.mean_ns), formatDuration(e.max_ns)]);
    return rows.length ? table(["reason", "count", "count %", "time", "time %", "mean", "max"], rows, vm.name) : el("p", { textContent: `${vm.name}: no exits` });
  });
  box.replaceChildren(...(parts.length ? parts : [el("p", { textContent: "no VMs in this trace" })]));
}

export function renderWaits(box, summary) {
  const color = (cause) => summary.states.find((s) => s.name === `wait_${cause}`)?.color ?? "#999";
  const parts = summary.vms.map((vm) => {
    const total = vm.waits.reduce((a, w) => a + w.ns, 0);
    const rows = vm.waits.map((w) => {
      const bar = el("span", { className: "bar" });
      bar.style.width = `${total ? Math.round((80 * w.ns) / total) : 0}px`;
      bar.style.background = color(w.cause);
      return [w.cause, formatDuration(w.ns), percent(w.ns, total), bar, String(w.injections)];
    });
    return table(["cause", "time", "time %", "", "injected"], rows, vm.name);
  });
  box.replaceChildren(...parts);
}

export function renderPreemption(box, summary) {
  const m = summary.preemption;
  if (!m.victims.length) {
    box.replaceChildren(el("p", { textContent: "no VMs in this trace" }));
    return;
  }
  const max = Math.max(1, ...m.ns.flat());
  const rows = m.victims.map((v, i) => [v, ...m.ns[i].map((ns) => {
    const cell = el("span", { textContent: ns ? formatDuration(ns) : "·" });
    if (ns) {
      cell.style.background = `rgba(213, 94, 0, ${(0.1 + (0.6 * ns) / max).toFixed(2)})`;
      cell.style.padding = "0 3px";
    }
    return cell;
  })]);
  const parts = [
    el("p", { className: "muted", textContent: "rows: the preempted VM · columns: who ran instead" }),
    table(["preempted ↓ / by →", ...m.preemptors], rows),
  ];
  if (m.top.length) {
    parts.push(table(["host task", "time"], m.top.map(([who, ns]) => [who, formatDuration(ns)]), "Top host preemptors"));
  }
  box.replaceChildren(...parts);
}

export function renderClusters(box, summary) {
  if (!summary.clusters) {
    box.replaceChildren(el("p", { className: "muted", textContent: "no clustering: this analysis has not grouped the VMs by workload." }));
    return;
  }
  box.replaceChildren(table(["workload", "VMs"], summary.clusters.map(([w, vms]) => [w, vms.join(", ")])));
}

// The selection's totals: one row per timeline row, one column per state present.
export function renderSelection(box, meta, sel, answer) {
  const states = meta.summary.states;
  const used = states.map((_, k) => answer.rows.some((r) => r[k] > 0));
  const headers = ["row", ...states.filter((_, k) => used[k]).map((s) => s.label), "total"];
  const rows = meta.rows.map((row, i) => {
    const ns = answer.rows[i];
    const total = ns.reduce((a, b) => a + b, 0);
    return [row.kind === "vm" ? row.label : `  ${row.label}`, ...ns.filter((_, k) => used[k]).map((v) => `${formatDuration(v)} (${percent(v, total)})`), formatDuration(total)];
  });
  const head = el("p", { textContent: `Selection: ${formatDuration(sel.end - sel.start)} — time per state` });
  const close = el("button", { type: "button", textContent: "clear", onclick: () => { box.hidden = true; } });
  box.replaceChildren(head, close, table(headers, rows));
  box.hidden = false;
}
