// The panels beside the timeline: exit reasons, wait causes, preemption matrix, clusters,
// overcommitment (runnable vCPUs against pCPUs, each VM's steal over time and its verdict),
// memory (each VM's held memory over time, or why the trace cannot tell), the selection's
// per-state totals, and the critical path's explanation. Built with DOM calls (the page's
// content security policy allows no inline markup styles).

import { formatBytes, lineChart } from "./charts.js";
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

// The charts' time axis: the timeline's whole extent.
function extent(meta) {
  return { span: { start: meta.start, end: Math.max(meta.end, meta.start + 1) }, origin: meta.start };
}

// Overcommitment: per host its verdict and runnable vCPUs against its pCPUs; per VM its steal
// split and verdict; every VM's steal over time.
export function renderOvercommit(box, meta) {
  const a = meta.analyses;
  const parts = [];
  const { span, origin } = extent(meta);
  a.hosts.forEach((host, hi) => {
    if (a.hosts.length > 1) parts.push(el("h3", { textContent: host.name }));
    if (host.verdict) parts.push(el("p", { className: "verdict", textContent: host.verdict }));
    const vms = a.vms.filter((v) => v.host === hi);
    if (host.series && host.runnable.length) {
      parts.push(lineChart({
        label: `runnable vCPUs against pCPUs on ${host.name}`,
        span, origin, unit: (v) => v.toFixed(1),
        reference: { value: host.pcpus, label: `${host.pcpus} pCPUs` },
        lines: [{ name: "runnable vCPUs", color: "#d55e00", values: host.runnable, start: host.series.start, step: host.series.step }],
      }));
    }
    if (!vms.length) return;
    parts.push(table(
      ["VM", "steal", "of vCPU time", "overcommitted", "pCPU idle", "otherwise"],
      vms.map((v) => {
        const s = v.steal;
        return [v.name, formatDuration(s.steal_ns), `${(100 * s.steal_share).toFixed(1)} %`,
          percent(s.while_overcommitted_ns, s.steal_ns), percent(s.while_cpu_idle_ns, s.steal_ns), percent(s.otherwise_ns, s.steal_ns)];
      }),
    ));
    const list = el("ul", { className: "verdicts" });
    for (const v of vms) list.append(el("li", { textContent: v.steal.verdict || `${v.name}: no verdict` }));
    parts.push(list);
    if (host.series && vms.some((v) => v.steal.vcpus.length)) {
      parts.push(lineChart({
        label: "steal per VM over time (vCPUs runnable but not running)",
        span, origin, unit: (v) => v.toFixed(2),
        lines: vms.map((v) => ({ name: v.name, color: v.color, values: v.steal.vcpus, start: host.series.start, step: host.series.step })),
      }));
    }
  });
  box.replaceChildren(...(parts.length ? parts : [el("p", { className: "muted", textContent: "no host in this trace" })]));
}

// Memory: each VM's held memory over time and its totals, or the sentence saying how to
// record page events.
export function renderMemory(box, meta) {
  const a = meta.analyses;
  if (a.memory_note) {
    box.replaceChildren(el("p", { className: "memory-note", textContent: a.memory_note }));
    return;
  }
  const { span, origin } = extent(meta);
  const parts = [];
  a.hosts.forEach((host, hi) => {
    const vms = a.vms.filter((v) => v.host === hi && v.memory);
    if (a.hosts.length > 1) parts.push(el("h3", { textContent: host.name }));
    if (!host.memory_traced) {
      parts.push(el("p", { className: "memory-note", textContent: "no page events in this host's trace (virtflow record --memory records them)" }));
      return;
    }
    if (host.series) {
      parts.push(lineChart({
        label: "memory held per VM over time",
        span, origin, unit: formatBytes,
        lines: vms.map((v) => ({ name: v.name, color: v.color, values: v.memory.held, start: host.series.start, step: host.series.step })),
      }));
    }
    parts.push(table(["VM", "held at the end", "peak", "allocated", "freed", "KSM merges"], vms.map((v) => {
      const m = v.memory;
      return [v.name, formatBytes(m.net_bytes), formatBytes(m.peak_bytes), formatBytes(m.allocated_bytes), formatBytes(m.freed_bytes), `${m.ksm_merged_pages} pages`];
    })));
  });
  box.replaceChildren(...parts);
}

// The critical path shown: whose, over which window, what it means, and where its time went.
export function renderPath(box, meta, answer, onClear) {
  const e = answer.explanation;
  const head = el("p", {}, el("b", { textContent: `Critical path of ${answer.label}` }),
    ` from ${formatDuration(answer.start - meta.start)} to ${formatDuration(answer.end - meta.start)} (${formatDuration(answer.end - answer.start)}, ${answer.exact_pieces.toLocaleString()} pieces)`);
  const close = el("button", { type: "button", textContent: "clear path", onclick: onClear });
  const advice = el("p", { className: "advice", textContent: e.advice });
  const rows = e.lines.map((l) => [percent(l.ns, e.total_ns), formatDuration(l.ns), l.who, l.what]);
  if (e.rest_ns > 0) rows.push([percent(e.rest_ns, e.total_ns), formatDuration(e.rest_ns), "elsewhere", ""]);
  const hidden = answer.threads.filter((t) => t.ns > 0 && !t.row).length;
  const parts = [head, close, advice, table(["of the path", "time", "thread", "doing"], rows)];
  if (hidden) parts.push(el("p", { className: "muted", textContent: `${hidden} more threads on the path have no row of their own.` }));
  box.replaceChildren(...parts);
  box.hidden = false;
}

export function renderPathError(box, message, onClear) {
  const close = el("button", { type: "button", textContent: "close", onclick: onClear });
  box.replaceChildren(el("p", { className: "error", textContent: message }), close);
  box.hidden = false;
}
