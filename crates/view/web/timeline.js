// The timeline: a hand-written canvas renderer over the server's viewport API.
//
// The server does the heavy lifting (it merges intervals narrower than a pixel), so this file
// only maps time to pixels, draws what it is sent, and turns mouse input into new viewports:
// wheel zooms around the pointer, drag pans, shift-drag selects a window whose per-state
// totals the server computes exactly. Above each VM with phases runs a band of them; a
// critical path, when one is shown, adds rows for the threads it crosses and is drawn over
// everything (path.js). A click on a vCPU's or a path thread's name asks for its path.

import { formatDuration, formatTime } from "./format.js";
import { drawPath, pathRows, vcpuRowsOf } from "./path.js";

const GUTTER = 190;       // label column, px
const RULER = 26;         // time ruler height, px
const VM_ROW = 22;
const VCPU_ROW = 17;
const SUB_ROW = 13;       // a guest process (CR3) or nested L2 guest under its vCPU
const PHASE_ROW = 14;     // a VM's phases, above its row
const THREAD_ROW = 15;    // a thread the critical path crosses
const HEADING_ROW = 18;   // "host threads on the path"
const MIN_SPAN_NS = 50;   // deepest zoom: a single short exit spans the plot
const PAGE_ROWS = 256;    // rows per request (the server's limit)

// Rows under a vCPU: its guest processes (by CR3) and its nested L2 guests.
function isSubRow(row) {
  return row.kind === "process" || row.kind === "nested";
}

// A guest process gets its own hue, so processes read apart; L2 guests keep the guest color.
function subRowColor(row) {
  if (row.kind !== "process") return null;
  // The page-table base's frame number, scattered over the hue circle.
  const frame = Math.floor(row.cr3 / 4096);
  const hue = (frame * 137.508) % 360;
  return `hsl(${hue.toFixed(0)}, 55%, ${row.l2 ? 40 : 50}%)`;
}

// Whether dark text reads better than white on `hex` (#rrggbb).
function isLight(hex) {
  const v = parseInt(hex.slice(1), 16);
  return 0.299 * (v >> 16) + 0.587 * ((v >> 8) & 255) + 0.114 * (v & 255) > 160;
}

export class Timeline {
  constructor(canvas, tooltip, meta, onSelect) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.meta = meta;
    this.onSelect = onSelect;
    this.onPick = null;        // (host, tid) → a thread's critical path is wanted
    this.states = meta.summary.states;
    this.details = meta.details;
    this.rows = meta.rows;
    this.phases = (meta.analyses?.vms ?? []).map((v) => v.phases);
    this.path = null;          // the critical path shown (an /api/critical-path answer)
    this.gutter = GUTTER;
    this.rulerHeight = RULER;
    this.layoutRows();
    this.view = { start: meta.start, end: meta.end };
    this.data = null;          // last viewport answer: { start, end, rows: [[seg…]…] }
    this.requestSeq = 0;
    this.drag = null;
    this.selection = null;     // { start, end } in relative ns
    this.listeners = [];
    this.installInput();
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    this.resize();
  }

  // Where everything goes, top to bottom: `rowTop[i]` for timeline row i, `phaseTop[vm]` for
  // a VM's phase band, `threadTop[k]` for path thread k's row; `entries` in drawing order.
  layoutRows() {
    let y = RULER;
    const extra = pathRows(this.rows, this.path);
    this.rowTop = new Array(this.rows.length);
    this.phaseTop = {};
    this.threadTop = {};
    this.entries = [];
    const threads = (list) => {
      for (const k of list) {
        this.threadTop[k] = y;
        this.entries.push({ type: "thread", k, top: y });
        y += THREAD_ROW;
      }
    };
    this.rows.forEach((r, i) => {
      if (r.kind === "vm" && this.phases[r.vm]?.length) {
        this.phaseTop[r.vm] = y;
        this.entries.push({ type: "phases", vm: r.vm, top: y });
        y += PHASE_ROW;
      }
      this.rowTop[i] = y;
      this.entries.push({ type: "row", i, top: y });
      y += r.kind === "vm" ? VM_ROW + 4 : isSubRow(r) ? SUB_ROW : VCPU_ROW;
      threads(extra.afterRow.get(i) ?? []);
    });
    if (extra.host.length) {
      this.entries.push({ type: "heading", top: y, label: "host threads on the path" });
      y += HEADING_ROW;
      threads(extra.host);
    }
    this.height = y + 6;
    this.pathVcpuRows = this.path ? vcpuRowsOf(this.rows, this.path) : [];
  }

  // Shows `path` (null: none), laying the rows out again for the threads it crosses.
  setPath(path) {
    this.path = path;
    this.layoutRows();
    this.resize();
  }

  // Path thread k's row as { top, h }, or null when it has none.
  threadBand(k) {
    const row = this.pathVcpuRows[k];
    if (row !== undefined && row >= 0) return { top: this.rowTop[row], h: this.rowHeight(row) };
    if (this.threadTop[k] !== undefined) return { top: this.threadTop[k], h: THREAD_ROW - 3 };
    return null;
  }

  rowHeight(i) {
    const row = this.rows[i];
    return row.kind === "vm" ? VM_ROW : isSubRow(row) ? SUB_ROW - 3 : VCPU_ROW - 3;
  }

  plotWidth() {
    return Math.max(1, this.cssWidth - GUTTER - 8);
  }

  xOf(t) {
    return GUTTER + ((t - this.view.start) / (this.view.end - this.view.start)) * this.plotWidth();
  }

  tOf(x) {
    return this.view.start + ((x - GUTTER) / this.plotWidth()) * (this.view.end - this.view.start);
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    this.cssWidth = this.canvas.parentElement.clientWidth;
    this.canvas.style.height = `${this.height}px`;
    this.canvas.width = Math.round(this.cssWidth * ratio);
    this.canvas.height = Math.round(this.height * ratio);
    this.ctx = this.canvas.getContext("2d");
    this.ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    this.draw();
    this.fetchViewport();
  }

  setView(start, end) {
    const full = this.meta.end - this.meta.start;
    let span = Math.min(Math.max(end - start, MIN_SPAN_NS), Math.max(full, MIN_SPAN_NS));
    start = Math.max(this.meta.start, Math.min(start, this.meta.end - span));
    this.view = { start, end: start + span };
    this.draw();
    this.fetchViewport();
  }

  zoom(factor, aroundX) {
    const t = this.tOf(aroundX ?? GUTTER + this.plotWidth() / 2);
    const start = t - (t - this.view.start) * factor;
    const end = t + (this.view.end - t) * factor;
    this.setView(start, end);
  }

  // Fetches the viewport; a newer request makes older answers stale.
  async fetchViewport() {
    clearTimeout(this.fetchTimer);
    this.fetchTimer = setTimeout(async () => {
      const seq = ++this.requestSeq;
      const start = Math.floor(this.view.start);
      const end = Math.ceil(this.view.end);
      const width = Math.round(this.plotWidth());
      const rows = [];
      for (let first = 0; first < this.rows.length; first += PAGE_ROWS) {
        const q = `start=${start}&end=${end}&width=${width}&first=${first}&count=${PAGE_ROWS}`;
        const res = await fetch(`/api/timeline?${q}`);
        if (!res.ok) throw new Error(`timeline: ${res.status}`);
        const page = await res.json();
        if (seq !== this.requestSeq) return;
        rows.push(...page.rows);
      }
      this.data = { start, end, width, rows };
      this.draw();
      this.listeners.forEach((f) => f(this));
    }, 30);
  }

  onDrawn(f) {
    this.listeners.push(f);
  }

  draw() {
    const ctx = this.ctx;
    if (!ctx) return;
    ctx.clearRect(0, 0, this.cssWidth, this.height);
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    this.drawRuler();
    for (const entry of this.entries) {
      if (entry.type === "row") this.drawRow(entry.i);
      else if (entry.type === "phases") this.drawPhases(entry.vm, entry.top);
      else if (entry.type === "thread") this.drawThread(entry.k, entry.top);
      else if (entry.type === "heading") {
        ctx.fillStyle = "#f0f0f2";
        ctx.fillRect(0, entry.top, this.cssWidth, HEADING_ROW - 2);
        ctx.fillStyle = "#1d1d1f";
        ctx.font = "600 12px system-ui, sans-serif";
        ctx.fillText(entry.label, 6, entry.top + HEADING_ROW / 2 - 1, GUTTER - 12);
      }
    }
    drawPath(this, ctx, (k) => this.threadBand(k));
    if (this.selection) {
      const x0 = Math.max(GUTTER, this.xOf(this.selection.start));
      const x1 = Math.min(GUTTER + this.plotWidth(), this.xOf(this.selection.end));
      if (x1 > x0) {
        ctx.fillStyle = "rgba(40, 60, 200, 0.15)";
        ctx.fillRect(x0, RULER, x1 - x0, this.height - RULER);
        ctx.strokeStyle = "rgba(40, 60, 200, 0.8)";
        ctx.strokeRect(x0 + 0.5, RULER + 0.5, x1 - x0 - 1, this.height - RULER - 1);
      }
    }
  }

  drawRow(i) {
    const ctx = this.ctx;
    const row = this.rows[i];
    const top = this.rowTop[i];
    const h = this.rowHeight(i);
    if (row.kind === "vm") {
      ctx.fillStyle = "#f0f0f2";
      ctx.fillRect(0, top - 2, this.cssWidth, VM_ROW + 4);
    }
    ctx.fillStyle = "#1d1d1f";
    const sub = isSubRow(row);
    ctx.font = row.kind === "vm" ? "600 12px system-ui, sans-serif"
      : sub ? "11px system-ui, sans-serif" : "12px system-ui, sans-serif";
    const indent = row.kind === "vm" ? 6 : sub ? 30 : 18;
    ctx.fillText(row.label, indent, top + h / 2, GUTTER - indent - 6);
    const own = subRowColor(row);
    const segs = this.data?.rows[i];
    if (!segs) return;
    ctx.save();
    ctx.beginPath();
    ctx.rect(GUTTER, top, this.plotWidth(), h);
    ctx.clip();
    for (const [s, e, key] of segs) {
      const x0 = this.xOf(s);
      const x1 = this.xOf(e);
      if (x1 < GUTTER || x0 > GUTTER + this.plotWidth()) continue;
      ctx.fillStyle = own ?? this.states[key].color;
      ctx.fillRect(x0, top, Math.max(1, x1 - x0), h);
    }
    ctx.restore();
  }

  // A VM's phases: a band of named spans above its row.
  drawPhases(vm, top) {
    const ctx = this.ctx;
    const h = PHASE_ROW - 3;
    ctx.fillStyle = "#666";
    ctx.font = "10px system-ui, sans-serif";
    ctx.fillText("phases", 6, top + h / 2, GUTTER - 12);
    ctx.save();
    ctx.beginPath();
    ctx.rect(GUTTER, top, this.plotWidth(), h);
    ctx.clip();
    for (const p of this.phases[vm]) {
      const x0 = Math.max(GUTTER, this.xOf(p.start));
      const x1 = Math.min(GUTTER + this.plotWidth(), this.xOf(p.end));
      if (x1 <= x0) continue;
      ctx.fillStyle = p.color;
      ctx.fillRect(x0, top, Math.max(1, x1 - x0), h);
      const w = ctx.measureText(p.name).width;
      if (x1 - x0 > w + 8) {
        ctx.fillStyle = isLight(p.color) ? "#1d1d1f" : "#fff";
        ctx.fillText(p.name, x0 + 4, top + h / 2);
      }
    }
    ctx.restore();
  }

  // A thread the critical path crosses: its label and its own states.
  drawThread(k, top) {
    const ctx = this.ctx;
    const t = this.path.threads[k];
    const h = THREAD_ROW - 3;
    ctx.fillStyle = "#1d1d1f";
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillText(t.short, t.vm === null ? 18 : 30, top + h / 2, GUTTER - 36);
    ctx.save();
    ctx.beginPath();
    ctx.rect(GUTTER, top, this.plotWidth(), h);
    ctx.clip();
    for (const [s, e, st] of t.segments) {
      const x0 = this.xOf(s);
      const x1 = this.xOf(e);
      if (x1 < GUTTER || x0 > GUTTER + this.plotWidth()) continue;
      ctx.fillStyle = this.path.states[st][1];
      ctx.fillRect(x0, top, Math.max(1, x1 - x0), h);
    }
    ctx.restore();
  }

  drawRuler() {
    const ctx = this.ctx;
    const span = this.view.end - this.view.start;
    // A 1-2-5 step giving ticks about 100 px apart.
    const target = (span / this.plotWidth()) * 100;
    const pow = Math.pow(10, Math.floor(Math.log10(Math.max(target, 1))));
    const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= target) ?? 10 * pow;
    ctx.fillStyle = "#fafafa";
    ctx.fillRect(0, 0, this.cssWidth, RULER - 4);
    ctx.strokeStyle = "#d8d8d8";
    ctx.fillStyle = "#444";
    ctx.font = "11px system-ui, sans-serif";
    ctx.beginPath();
    // Labels sit right of their tick, but never past the canvas's right edge (the last one
    // moves left of its tick) nor over the previous label; `rulerLabels` keeps where they
    // went (the browser test checks them).
    this.rulerLabels = [];
    let free = GUTTER;
    for (let t = Math.ceil(this.view.start / step) * step; t <= this.view.end; t += step) {
      const x = Math.round(this.xOf(t)) + 0.5;
      ctx.moveTo(x, RULER - 10);
      ctx.lineTo(x, this.height);
      const text = formatTime(t - this.meta.start, step);
      const w = ctx.measureText(text).width;
      const left = Math.min(x + 3, this.cssWidth - w - 2);
      if (left < free) continue;
      ctx.fillText(text, left, 9);
      this.rulerLabels.push({ text, left, right: left + w });
      free = left + w + 6;
    }
    ctx.globalAlpha = 0.35;
    ctx.stroke();
    ctx.globalAlpha = 1;
  }

  // What is under a pointer position: { row, seg } or null.
  hit(x, y) {
    if (!this.data || x < GUTTER) return null;
    const i = this.rowTop.findIndex((top, k) => y >= top && y < top + this.rowHeight(k));
    if (i < 0) return null;
    const segs = this.data.rows[i] || [];
    const t = this.tOf(x);
    const tol = (this.view.end - this.view.start) / this.plotWidth();   // one pixel
    let lo = 0, hi = segs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (segs[mid][1] <= t - tol / 2) lo = mid + 1; else hi = mid;
    }
    const seg = segs[lo];
    if (!seg || seg[0] > t + tol / 2) return { row: i, seg: null };
    return { row: i, seg };
  }

  describe(hit) {
    const row = this.rows[hit.row];
    const [s, e, key, detail, n] = hit.seg;
    const state = detail >= 0
      ? this.details[detail].label
      : `mostly ${this.states[key].label} (${n} intervals merged at this zoom)`;
    const vm = this.meta.summary.vms[row.vm];
    const who = row.kind === "vm" ? row.label : `${vm.name} · ${row.label}`;
    return `${who}\n${state}\nat ${formatTime(s - this.meta.start)} for ${formatDuration(e - s)}`;
  }

  // Under a pointer position outside the timeline's rows: a phase, or a path thread's state.
  hitExtra(x, y) {
    if (x < GUTTER) return null;
    const t = this.tOf(x);
    for (const [vm, top] of Object.entries(this.phaseTop)) {
      if (y >= top && y < top + PHASE_ROW - 3) {
        const p = this.phases[vm].find((ph) => ph.start <= t && t < ph.end);
        if (p) return `${this.meta.summary.vms[vm].name} · phase\n${p.name}\nfrom ${formatTime(p.start - this.meta.start)} for ${formatDuration(p.end - p.start)}`;
      }
    }
    for (const [k, top] of Object.entries(this.threadTop)) {
      if (y >= top && y < top + THREAD_ROW - 3) {
        const th = this.path.threads[k];
        const seg = th.segments.find(([s, e]) => s <= t && t < e);
        if (seg) return `${th.label}\n${this.path.states[seg[2]][2]}\nat ${formatTime(seg[0] - this.meta.start)} for ${formatDuration(seg[1] - seg[0])}`;
        return th.label;
      }
    }
    return null;
  }

  // Which thread a label in the gutter names: { host, tid } of a vCPU row or a path thread.
  labelAt(y) {
    const i = this.rowTop.findIndex((top, k) => y >= top && y < top + this.rowHeight(k));
    if (i >= 0 && this.rows[i].kind === "vcpu") {
      const row = this.rows[i];
      return { host: this.meta.summary.vms[row.vm].host, tid: row.tid };
    }
    for (const [k, top] of Object.entries(this.threadTop)) {
      if (y >= top && y < top + THREAD_ROW) {
        const th = this.path.threads[k];
        return { host: th.host, tid: th.tid };
      }
    }
    return null;
  }

  showTooltip(x, y) {
    const h = this.hit(x, y);
    const text = h && h.seg ? this.describe(h) : this.hitExtra(x, y);
    if (!text) {
      this.tooltip.hidden = true;
      return;
    }
    this.tooltip.textContent = text;
    this.tooltip.hidden = false;
    const box = this.canvas.parentElement.getBoundingClientRect();
    const left = Math.min(x + 14, box.width - this.tooltip.offsetWidth - 4);
    this.tooltip.style.left = `${Math.max(0, left)}px`;
    this.tooltip.style.top = `${y + 16}px`;
  }

  installInput() {
    const c = this.canvas;
    const pos = (ev) => {
      const r = c.getBoundingClientRect();
      return [ev.clientX - r.left, ev.clientY - r.top];
    };
    c.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const [x] = pos(ev);
      this.zoom(ev.deltaY < 0 ? 0.8 : 1.25, x);
    }, { passive: false });
    c.addEventListener("mousedown", (ev) => {
      const [x, y] = pos(ev);
      if (x < GUTTER) {
        const who = this.labelAt(y);
        if (who && this.onPick) this.onPick(who);
        return;
      }
      this.drag = { x0: x, view: { ...this.view }, select: ev.shiftKey, moved: false };
      if (ev.shiftKey) this.selection = { start: this.tOf(x), end: this.tOf(x) };
      c.classList.toggle("dragging", !ev.shiftKey);
    });
    window.addEventListener("mousemove", (ev) => {
      const [x, y] = pos(ev);
      if (!this.drag) {
        if (ev.target === c) this.showTooltip(x, y); else this.tooltip.hidden = true;
        return;
      }
      this.drag.moved = true;
      if (this.drag.select) {
        const a = this.tOf(Math.max(GUTTER, Math.min(this.drag.x0, x)));
        const b = this.tOf(Math.min(GUTTER + this.plotWidth(), Math.max(this.drag.x0, x)));
        this.selection = { start: a, end: b };
        this.draw();
      } else {
        const dt = ((x - this.drag.x0) / this.plotWidth()) * (this.drag.view.end - this.drag.view.start);
        this.setView(this.drag.view.start - dt, this.drag.view.end - dt);
      }
    });
    window.addEventListener("mouseup", () => {
      if (!this.drag) return;
      const d = this.drag;
      this.drag = null;
      c.classList.remove("dragging");
      if (d.select && this.selection && this.selection.end > this.selection.start) {
        this.onSelect(this.selection);
      }
    });
    c.addEventListener("mouseleave", () => { this.tooltip.hidden = true; });
  }
}
