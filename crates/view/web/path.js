// The critical path over the timeline: where the rows of the threads it crosses go, and how it
// is drawn — the rest of the plot veiled, each piece of the path outlined on its thread's row
// in the colour of its state, and an arrow wherever the path follows a wake-up, a message or
// a fork (solid) or moves from a blocked thread to whoever ended its wait (dashed).
//
// A path answer is `/api/critical-path`'s: threads (with `row` when the viewer draws one, a
// vCPU's being its timeline row), pieces [start, end, thread, state, by, merged], arrows
// [from, time, to, time, kind], states [name, colour, meaning].

export const ARROW_COLORS = {
  wakeup: "#c2185b",
  message: "#1565c0",
  fork: "#6d4c41",
  waits_for: "#555555",
};
export const OUTLINE = "#111111";

// Which threads of a path get rows, and where: a VM's helper thread after its VM's last row,
// a thread of no VM under the host heading at the end. vCPUs keep their timeline rows.
export function pathRows(rows, path) {
  const afterRow = new Map();
  const host = [];
  if (!path) return { afterRow, host };
  const lastOfVm = new Map();
  rows.forEach((r, i) => lastOfVm.set(r.vm, i));
  path.threads.forEach((t, k) => {
    if (!t.row || t.role === "vcpu") return;
    if (t.vm !== null && t.vm !== undefined && lastOfVm.has(t.vm)) {
      const at = lastOfVm.get(t.vm);
      if (!afterRow.has(at)) afterRow.set(at, []);
      afterRow.get(at).push(k);
    } else {
      host.push(k);
    }
  });
  return { afterRow, host };
}

// The timeline row of each path thread that is a vCPU: index by thread.
export function vcpuRowsOf(rows, path) {
  return path.threads.map((t) => (t.role === "vcpu"
    ? rows.findIndex((r) => r.kind === "vcpu" && r.vm === t.vm && r.vcpu === t.vcpu)
    : -1));
}

function arrowHead(ctx, x0, y0, x1, y1) {
  const angle = Math.atan2(y1 - y0, x1 - x0);
  const size = 7;
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - size * Math.cos(angle - 0.4), y1 - size * Math.sin(angle - 0.4));
  ctx.lineTo(x1 - size * Math.cos(angle + 0.4), y1 - size * Math.sin(angle + 0.4));
  ctx.closePath();
  ctx.fill();
}

// Draws `tl.path` over the plot; `band(k)` gives thread k's row as { top, h } or null.
// Records what it drew in `tl.pathDrawn` (the browser test reads it).
export function drawPath(tl, ctx, band) {
  const path = tl.path;
  tl.pathDrawn = null;
  if (!path) return;
  const left = tl.gutter;
  const right = tl.gutter + tl.plotWidth();
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, tl.rulerHeight, right - left, tl.height - tl.rulerHeight);
  ctx.clip();
  ctx.fillStyle = "rgba(255, 255, 255, 0.62)";
  ctx.fillRect(left, tl.rulerHeight, right - left, tl.height - tl.rulerHeight);
  let pieces = 0;
  for (const [s, e, t, st] of path.pieces) {
    if (t < 0) continue;
    const b = band(t);
    if (!b) continue;
    const x0 = tl.xOf(s);
    const x1 = tl.xOf(e);
    if (x1 < left || x0 > right) continue;
    const w = Math.max(1, x1 - x0);
    ctx.fillStyle = path.states[st][1];
    ctx.fillRect(x0, b.top, w, b.h);
    ctx.strokeStyle = OUTLINE;
    ctx.lineWidth = 1.5;
    ctx.strokeRect(x0, b.top - 1, w, b.h + 2);
    pieces += 1;
  }
  let arrows = 0;
  const drawnArrows = [];
  for (const [from, tf, to, tt, kind] of path.arrows) {
    const a = band(from);
    const b = band(to);
    if (!a || !b) continue;
    const x0 = tl.xOf(tf);
    const x1 = tl.xOf(tt);
    if (Math.max(x0, x1) < left || Math.min(x0, x1) > right) continue;
    const y0 = a.top + a.h / 2;
    const y1 = b.top + b.h / 2;
    const color = ARROW_COLORS[kind] ?? ARROW_COLORS.waits_for;
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = kind === "waits_for" ? 1 : 2;
    ctx.setLineDash(kind === "waits_for" ? [3, 3] : []);
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    ctx.stroke();
    ctx.setLineDash([]);
    arrowHead(ctx, x0, y0, x1, y1);
    arrows += 1;
    drawnArrows.push({ kind, x0, y0, x1, y1 });
  }
  ctx.restore();
  tl.pathDrawn = { pieces, arrows, drawnArrows };
}
