// Entry point: loads the model's description, then builds the legend, the timeline and the
// panels, and asks for critical paths when a thread is picked. `window.virtflow` exposes the
// live state for tests and for debugging from the console.

import { Timeline } from "./timeline.js";
import { formatDuration, formatTime } from "./format.js";
import {
  renderClusters, renderExits, renderHosts, renderLegend, renderMemory, renderOvercommit, renderPath,
  renderPathError, renderPreemption, renderSelection, renderWaits,
} from "./panels.js";

const MAX_WIDTH = 4096;   // the server's most pixels per query

const $ = (id) => document.getElementById(id);

async function main() {
  const res = await fetch("/api/meta");
  if (!res.ok) throw new Error(`/api/meta: ${res.status}`);
  const meta = await res.json();
  const summary = meta.summary;
  $("traces").textContent = summary.traces.join(", ");
  $("status").textContent = `${summary.vms.length} VMs · ${meta.rows.filter((r) => r.kind === "vcpu").length} vCPUs · ${meta.intervals.toLocaleString()} intervals`;
  renderLegend($("legend"), summary.states);
  renderHosts($("panel-hosts").querySelector(".body"), summary);
  renderExits($("panel-exits").querySelector(".body"), summary);
  renderWaits($("panel-waits").querySelector(".body"), summary);
  renderPreemption($("panel-preemption").querySelector(".body"), summary);
  renderClusters($("panel-clusters").querySelector(".body"), summary);
  renderOvercommit($("panel-overcommit").querySelector(".body"), meta);
  renderMemory($("panel-memory").querySelector(".body"), meta);

  const state = { meta, drawn: 0, selection: null };
  window.virtflow = state;
  const onSelect = async (sel) => {
    const q = `start=${Math.floor(sel.start)}&end=${Math.ceil(sel.end)}`;
    const r = await fetch(`/api/selection?${q}`);
    if (!r.ok) return;
    const answer = await r.json();
    state.selection = answer;
    renderSelection($("selection"), meta, sel, answer);
  };
  const tl = new Timeline($("timeline"), $("tooltip"), meta, onSelect);
  state.timeline = tl;
  const showRange = () => {
    $("range").textContent = `${formatTime(tl.view.start - meta.start)} – ${formatTime(tl.view.end - meta.start)} (${formatDuration(tl.view.end - tl.view.start)})`;
  };
  tl.onDrawn(() => {
    state.drawn += 1;
    showRange();
  });
  installPaths(meta, state, tl);
  $("reset").onclick = () => tl.setView(meta.start, meta.end);
  $("zoom-in").onclick = () => tl.zoom(0.5);
  $("zoom-out").onclick = () => tl.zoom(2);
}

// The thread picker and the critical path: a thread is picked from the list or by a click on
// its name; its path is asked for over the selection, else over the view, at the resolution
// the view shows it, and asked again when zooming changes that resolution much.
function installPaths(meta, state, tl) {
  const picker = $("path-target");
  const key = (host, tid) => `${host}|${tid}`;
  const option = (value, text) => Object.assign(document.createElement("option"), { value, textContent: text });
  for (const row of meta.rows.filter((r) => r.kind === "vcpu")) {
    const vm = meta.summary.vms[row.vm];
    picker.append(option(key(vm.host, row.tid), `${vm.name} › ${row.label}`));
  }
  for (const h of meta.helpers) {
    picker.append(option(key(h.host, h.tid), `${meta.summary.vms[h.vm].name} › ${h.comm} (${h.tid})`));
  }
  const box = $("path");
  const clear = () => {
    state.path = null;
    state.pathRequest = null;
    box.hidden = true;
    tl.setPath(null);
  };
  if (!meta.graph) {
    picker.disabled = true;
    $("path-show").disabled = true;
    picker.title = "this model has no execution graph";
  }
  const widthFor = (w) => Math.max(1, Math.min(MAX_WIDTH, Math.round(tl.plotWidth() * (w.end - w.start) / (tl.view.end - tl.view.start))));
  const ask = async (req) => {
    state.pathRequest = req;
    const q = new URLSearchParams({ tid: req.tid, start: Math.floor(req.start), end: Math.ceil(req.end), width: req.width });
    if (req.host) q.set("host", req.host);
    const r = await fetch(`/api/critical-path?${q}`);
    if (state.pathRequest !== req) return;
    if (!r.ok) {
      renderPathError(box, `critical path: ${await r.text()}`, clear);
      return;
    }
    const answer = await r.json();
    state.path = answer;
    state.paths = (state.paths || 0) + 1;
    tl.setPath(answer);
    renderPath(box, meta, answer, clear);
  };
  const show = (who) => {
    const sel = tl.selection && tl.selection.end > tl.selection.start ? tl.selection : tl.view;
    const span = { start: sel.start, end: sel.end };
    // A path over a window much narrower than the view would be a sliver: show the window.
    if (span.end - span.start < 0.8 * (tl.view.end - tl.view.start)) {
      const margin = 0.03 * (span.end - span.start);
      tl.setView(span.start - margin, span.end + margin);
    }
    ask({ host: who.host, tid: who.tid, ...span, width: widthFor(span) });
  };
  $("path-show").onclick = () => {
    const [host, tid] = picker.value.split("|");
    if (tid) show({ host, tid: Number(tid) });
  };
  tl.onPick = (who) => {
    if (!meta.graph) return;
    const value = key(who.host, who.tid);
    if (![...picker.options].some((o) => o.value === value)) picker.append(option(value, `${who.host} › thread ${who.tid}`));
    picker.value = value;
    show(who);
  };
  tl.onDrawn(() => {
    const req = state.pathRequest;
    if (!req || !state.path) return;
    const want = widthFor(req);
    if (want > req.width * 1.5 || want < req.width / 1.5) ask({ ...req, width: want });
  });
}

main().catch((err) => {
  const s = document.getElementById("status");
  s.textContent = `error: ${err.message}`;
  s.classList.add("error");
});
