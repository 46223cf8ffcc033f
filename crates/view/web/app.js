// Entry point: loads the model's description, then builds the legend, the timeline and the
// panels. `window.virtflow` exposes the live state for tests and for debugging from the
// console.

import { Timeline } from "./timeline.js";
import { formatDuration, formatTime } from "./format.js";
import { renderClusters, renderExits, renderHosts, renderLegend, renderPreemption, renderSelection, renderWaits } from "./panels.js";

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
  $("reset").onclick = () => tl.setView(meta.start, meta.end);
  $("zoom-in").onclick = () => tl.zoom(0.5);
  $("zoom-out").onclick = () => tl.zoom(2);
}

main().catch((err) => {
  const s = document.getElementById("status");
  s.textContent = `error: ${err.message}`;
  s.classList.add("error");
});
