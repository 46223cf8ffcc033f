// Browser test of `virtflow view`: starts the viewer on the demo trace (or on VIRTFLOW_ARGS),
// opens it in Debian's chromium through Playwright, and checks that rows and states are
// drawn, that zoom, hover and selection work, that a vCPU's critical path is drawn across
// the rows of the threads it crosses with its arrows, and that the overcommitment and memory
// panels are there; then, on the synthetic story (a model whose every figure is known), the
// phase bands, the path's exact pieces and arrows, and the memory chart. Screenshots go to
// test-artifacts/.
//
// env: VIRTFLOW (the binary), VIRTFLOW_ARGS (extra arguments, space-separated),
//      SYNTHETIC_MODEL (crates/view's synthetic_model example, which writes the story),
//      ARTIFACTS (screenshot folder), CHROMIUM (default /usr/bin/chromium).

import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const bin = process.env.VIRTFLOW;
const extra = (process.env.VIRTFLOW_ARGS || "").split(" ").filter(Boolean);
const artifacts = process.env.ARTIFACTS || "test-artifacts";
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(artifacts, { recursive: true });

let passed = 0;
let failed = 0;
function check(name, ok, detail = "") {
  if (ok) {
    passed += 1;
    console.log(`ok - ${name}`);
  } else {
    failed += 1;
    console.log(`not ok - ${name} ${detail}`);
  }
}

// Starts the server and resolves with its URL (the first line it prints).
function startViewer(args = extra) {
  const child = spawn(bin, ["view", ...args], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no URL printed: ${out}`)), 120000);
    child.on("exit", (code) => reject(new Error(`virtflow view exited with ${code}: ${out}`)));
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+\//);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[0] });
      }
    });
  });
}

// Counts canvas pixels (device pixels) whose color is one of the state colors.
async function stateColorCounts(page) {
  return page.evaluate(() => {
    const c = document.getElementById("timeline");
    const ctx = c.getContext("2d");
    const { data } = ctx.getImageData(0, 0, c.width, c.height);
    const colors = window.virtflow.meta.summary.states.map((s) => [s.name, parseInt(s.color.slice(1), 16)]);
    const counts = Object.fromEntries(colors.map(([n]) => [n, 0]));
    for (let i = 0; i < data.length; i += 4) {
      const rgb = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
      for (const [n, v] of colors) if (v === rgb) counts[n] += 1;
    }
    return counts;
  });
}

async function waitDrawn(page, after) {
  await page.waitForFunction((n) => window.virtflow && window.virtflow.drawn > n, after, { timeout: 20000 });
}


// Canvas pixels (device pixels) within `tol` of colour `hex` in each channel, optionally only
// in rows [y0, y1) of CSS pixels.
async function colorCount(page, hex, tol = 24, y0 = 0, y1 = Infinity) {
  return page.evaluate(([hex, tol, y0, y1]) => {
    const c = document.getElementById("timeline");
    const ratio = c.width / c.clientWidth;
    const top = Math.max(0, Math.floor(y0 * ratio));
    const bottom = Math.min(c.height, Math.ceil((Number.isFinite(y1) ? y1 : c.height / ratio) * ratio));
    if (bottom <= top) return 0;
    const { data } = c.getContext("2d").getImageData(0, top, c.width, bottom - top);
    const v = parseInt(hex.slice(1), 16);
    const [r, g, b] = [v >> 16, (v >> 8) & 255, v & 255];
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.abs(data[i] - r) <= tol && Math.abs(data[i + 1] - g) <= tol && Math.abs(data[i + 2] - b) <= tol) n += 1;
    }
    return n;
  }, [hex, tol, y0, y1]);
}

// Waits until the viewer shows a path newer than the `after`-th.
async function waitPath(page, after) {
  await page.waitForFunction((n) => (window.virtflow.paths || 0) > n && window.virtflow.timeline.pathDrawn, after, { timeout: 30000 });
  await waitDrawnSettled(page);
}

// Waits until the timeline has drawn and no viewport request is pending.
async function waitDrawnSettled(page) {
  const n = await page.evaluate(() => window.virtflow.drawn);
  await page.waitForFunction((k) => window.virtflow.drawn > k, n, { timeout: 20000 }).catch(() => {});
}

const { child, url } = await startViewer();
const children = [child];
process.on("exit", () => children.forEach((c) => c.kill()));
const profile = mkdtempSync(join(tmpdir(), "virtflow-chromium-"));
// A persistent context is how Playwright takes a fresh --user-data-dir.
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1400, height: 900 },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = context.pages()[0] ?? await context.newPage();
  const outside = [];
  page.on("request", (r) => { if (!r.url().startsWith(url)) outside.push(r.url()); });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url);
  await waitDrawn(page, 0);

  const meta = await page.evaluate(() => window.virtflow.meta);
  const vms = meta.summary.vms.length;
  check("rows: one per VM and one per vCPU", meta.rows.length === vms + meta.summary.vms.reduce((a, v) => a + v.vcpus.length, 0) && vms > 0, `${meta.rows.length} rows`);
  const legend = await page.locator("#legend .legend-item").count();
  check("legend lists every state", legend === meta.summary.states.length, `${legend}`);

  const counts = await stateColorCounts(page);
  const drawnStates = Object.entries(counts).filter(([, n]) => n > 50).map(([s]) => s);
  check("states are drawn on the canvas", counts.guest > 1000 && drawnStates.length >= 2, JSON.stringify(counts));
  await page.screenshot({ path: join(artifacts, "view-whole.png"), fullPage: true });

  // Zoom: the wheel over the plot narrows the viewport.
  const box = await page.locator("#timeline").boundingBox();
  const plotX = box.x + 190 + (box.width - 200) * 0.4;
  const vcpuRowY = box.y + await page.evaluate(() => window.virtflow.timeline.rowTop[1] + 7);
  const span0 = await page.evaluate(() => window.virtflow.timeline.view.end - window.virtflow.timeline.view.start);
  let drawn = await page.evaluate(() => window.virtflow.drawn);
  await page.mouse.move(plotX, vcpuRowY);
  for (let i = 0; i < 12; i++) await page.mouse.wheel(0, -200);
  await waitDrawn(page, drawn);
  const span1 = await page.evaluate(() => window.virtflow.timeline.view.end - window.virtflow.timeline.view.start);
  check("wheel zooms in", span1 < span0 / 10, `${span0} -> ${span1}`);
  const zoomedCounts = await stateColorCounts(page);
  check("zoomed view is drawn", zoomedCounts.guest > 500, JSON.stringify(zoomedCounts));

  // Pan: dragging moves the window, keeping its width.
  drawn = await page.evaluate(() => window.virtflow.drawn);
  const before = await page.evaluate(() => window.virtflow.timeline.view.start);
  await page.mouse.move(plotX, vcpuRowY);
  await page.mouse.down();
  await page.mouse.move(plotX - 200, vcpuRowY, { steps: 5 });
  await page.mouse.up();
  await waitDrawn(page, drawn);
  const after = await page.evaluate(() => window.virtflow.timeline.view.start);
  check("drag pans", after > before, `${before} -> ${after}`);

  // Hover: a tooltip naming the vCPU and the state.
  await page.mouse.move(plotX + 3, vcpuRowY);
  await page.mouse.move(plotX + 5, vcpuRowY);
  await page.waitForSelector("#tooltip:not([hidden])", { timeout: 5000 }).catch(() => {});
  const tip = await page.locator("#tooltip").textContent();
  const stateWords = /guest|hypervisor|user space|preempted|ready|waiting|unknown|mostly/;
  check("hover shows the row and state", /vCPU/.test(tip) && stateWords.test(tip) && / for /.test(tip), JSON.stringify(tip));
  await page.screenshot({ path: join(artifacts, "view-zoomed-hover.png") });

  // Selection: shift-drag reports time per state.
  await page.keyboard.down("Shift");
  await page.mouse.move(plotX - 150, vcpuRowY);
  await page.mouse.down();
  await page.mouse.move(plotX + 250, vcpuRowY, { steps: 5 });
  await page.mouse.up();
  await page.keyboard.up("Shift");
  await page.waitForSelector("#selection:not([hidden])", { timeout: 10000 });
  const selText = await page.locator("#selection").textContent();
  const sel = await page.evaluate(() => window.virtflow.selection);
  const total = sel.rows[1].reduce((a, b) => a + b, 0);
  check("selection reports per-state totals", /Selection/.test(selText) && /guest/.test(selText) && total > 0, selText.slice(0, 200));
  await page.screenshot({ path: join(artifacts, "view-selection.png"), fullPage: true });

  // Panels.
  const hosts = await page.evaluate(() => ({
    text: document.querySelector("#panel-hosts .body").textContent,
    rows: document.querySelectorAll("#panel-hosts tbody tr").length,
  }));
  check("hosts panel lists the demo's one host with its CPUs", hosts.rows === 1 && /CPUs/.test(hosts.text), hosts.text.slice(0, 120));
  const panels = await page.evaluate(() => ["exits", "waits", "preemption", "clusters"].map((p) => document.querySelector(`#panel-${p} .body`).textContent));
  check("exit reasons panel", panels[0].length > 20, panels[0].slice(0, 80));
  const exitHeads = await page.evaluate(() => [...document.querySelectorAll("#panel-exits th")].map((t) => t.textContent));
  check(
    "exit reasons panel names its shares: count % and time %",
    exitHeads.includes("count %") && exitHeads.includes("time %") && !exitHeads.includes("share"),
    exitHeads.join(","),
  );
  check("wait causes panel", /timer/.test(panels[1]), panels[1].slice(0, 80));
  check("preemption matrix panel", /preempted/.test(panels[2]), panels[2].slice(0, 80));
  // The demo trace's VMs run a CPU, a disk, a network and an idle workload (the simulator's
  // mixed scenario): the clustering must name one cluster after each.
  check(
    "clusters panel names the demo's workloads",
    ["cpu-intensive", "disk-intensive", "network-intensive", "idle"].every((w) => panels[3].includes(w)),
    panels[3],
  );

  // The critical path of the vCPU of the VM that has a vhost thread: a click on its name.
  const target = await page.evaluate(() => {
    const m = window.virtflow.meta;
    const vhost = m.helpers.find((h) => h.comm.startsWith("vhost-"));
    const row = m.rows.findIndex((r) => r.kind === "vcpu" && vhost && r.vm === vhost.vm);
    return { row, vhost, top: row >= 0 ? window.virtflow.timeline.rowTop[row] : -1, graph: m.graph };
  });
  check("the demo's model has an execution graph and a VM with a vhost thread", target.graph && target.row >= 0, JSON.stringify(target));
  await page.evaluate(() => window.virtflow.timeline.setView(window.virtflow.meta.start, window.virtflow.meta.end));
  await waitDrawnSettled(page);
  let paths = await page.evaluate(() => window.virtflow.paths || 0);
  await page.mouse.click(box.x + 40, box.y + target.top + 6);
  await waitPath(page, paths);
  const shown = await page.evaluate(() => {
    const tl = window.virtflow.timeline;
    const p = window.virtflow.path;
    return {
      label: p.label,
      tid: p.tid,
      rows: Object.keys(tl.threadTop).map((k) => p.threads[k]),
      drawn: { pieces: tl.pathDrawn.pieces, arrows: tl.pathDrawn.arrows },
      kinds: [...new Set(p.arrows.map((a) => a[4]))],
      panel: document.getElementById("path").textContent,
      hidden: document.getElementById("path").hidden,
      picked: document.getElementById("path-target").value,
    };
  });
  const wantTid = await page.evaluate((row) => window.virtflow.meta.rows[row].tid, target.row);
  check("a click on a vCPU's name shows its critical path", shown.tid === wantTid && shown.picked.endsWith(`|${wantTid}`), JSON.stringify({ tid: shown.tid, picked: shown.picked }));
  check(
    "the path crosses the VM's vhost thread, which gets a row of its own",
    shown.rows.some((t) => t.tid === target.vhost.tid && t.role === "vhost"),
    JSON.stringify(shown.rows.map((t) => t.label)),
  );
  check("the path's pieces and its wake-up arrows are drawn", shown.drawn.pieces > 10 && shown.drawn.arrows > 5 && shown.kinds.includes("wakeup"), JSON.stringify(shown.drawn));
  const arrowPixels = await colorCount(page, "#c2185b", 40);
  const outlinePixels = await colorCount(page, "#111111", 20);
  check("wake-up arrows and outlined pieces show on the canvas", arrowPixels > 200 && outlinePixels > 500, `arrows ${arrowPixels}, outlines ${outlinePixels}`);
  check("the path panel explains it", !shown.hidden && /Critical path of/.test(shown.panel) && /of the path/.test(shown.panel), shown.panel.slice(0, 200));
  await page.screenshot({ path: join(artifacts, "view-path.png"), fullPage: true });

  // Picking another thread from the list, over a selection.
  paths = await page.evaluate(() => window.virtflow.paths || 0);
  const other = await page.evaluate(() => [...document.querySelectorAll("#path-target option")].map((o) => o.value).find((v) => v !== window.virtflow.path.host + "|" + window.virtflow.path.tid));
  await page.selectOption("#path-target", other);
  await page.click("#path-show");
  await waitPath(page, paths);
  const second = await page.evaluate(() => ({ key: `${window.virtflow.path.host}|${window.virtflow.path.tid}`, start: window.virtflow.path.start, end: window.virtflow.path.end, sel: window.virtflow.timeline.selection }));
  const overSelection = second.sel && Math.abs(second.start - Math.floor(second.sel.start)) <= 1 && Math.abs(second.end - Math.ceil(second.sel.end)) <= 1;
  check("a thread picked from the list gets its path over the selection", second.key === other && overSelection, JSON.stringify(second));
  // Clearing it: the rows it added go.
  await page.click("#path button");
  await waitDrawnSettled(page);
  const cleared = await page.evaluate(() => ({ rows: Object.keys(window.virtflow.timeline.threadTop).length, path: window.virtflow.timeline.path, hidden: document.getElementById("path").hidden }));
  check("clearing the path removes its rows", cleared.rows === 0 && cleared.path === null && cleared.hidden, JSON.stringify(cleared));

  // The analyses' panels: the demo host's overcommitment, and its trace's lack of page events.
  const analyses = await page.evaluate(() => {
    const oc = document.querySelector("#panel-overcommit .body");
    const mem = document.querySelector("#panel-memory .body");
    return {
      verdicts: [...oc.querySelectorAll(".verdicts li, .verdict")].map((e) => e.textContent),
      charts: [...oc.querySelectorAll("svg.chart")].map((s) => ({ series: s.querySelectorAll("polyline.series").length, reference: s.querySelectorAll("line.reference").length })),
      vms: window.virtflow.meta.summary.vms.length,
      memory: mem.textContent,
    };
  });
  check(
    "overcommitment panel: the host's and every VM's verdict, runnable vCPUs against pCPUs, steal per VM",
    analyses.verdicts.length === analyses.vms + 1 && analyses.verdicts.every((v) => v.startsWith("verdict:"))
      && analyses.charts.length === 2 && analyses.charts[0].reference === 1 && analyses.charts[1].series === analyses.vms,
    JSON.stringify(analyses),
  );
  check("memory panel says the demo has no page events and how to record them", /no page events/.test(analyses.memory) && /virtflow record --memory/.test(analyses.memory), analyses.memory);

  check("no request leaves the viewer", outside.length === 0, outside.join(" "));
  check("no script errors", errors.length === 0, errors.join(" | "));

  // Nothing overflows sideways, at a desktop's width and at a narrow window's: the page is no
  // wider than the window, every panel lies inside it and scrolls a table it cannot hold, and
  // the time axis's labels stay on the canvas.
  for (const width of [1280, 800]) {
    drawn = await page.evaluate(() => window.virtflow.drawn);
    await page.setViewportSize({ width, height: 900 });
    await waitDrawn(page, drawn);
    const m = await page.evaluate(() => {
      const panels = [...document.querySelectorAll(".panel")].map((p) => {
        const r = p.getBoundingClientRect();
        const overflowing = p.scrollWidth > p.clientWidth;
        return { id: p.id, left: r.left, right: r.right, scrolls: !overflowing || ["auto", "scroll"].includes(getComputedStyle(p).overflowX) };
      });
      const labels = window.virtflow.timeline.rulerLabels || [];
      return {
        page: document.documentElement.scrollWidth,
        window: window.innerWidth,
        panels,
        canvas: document.getElementById("timeline").clientWidth,
        labels,
      };
    });
    check(`${width} px: the page is no wider than the window`, m.page <= m.window, `${m.page} > ${m.window}`);
    const out = m.panels.filter((p) => p.left < 0 || p.right > m.window || !p.scrolls);
    check(`${width} px: every panel inside the window, scrolling what it cannot hold`, m.panels.length === 7 && out.length === 0, JSON.stringify(out));
    const last = m.labels[m.labels.length - 1];
    check(`${width} px: the time axis's labels are inside the canvas`, m.labels.length >= 2 && last.right <= m.canvas, JSON.stringify(m.labels.slice(-2)));
    await page.screenshot({ path: join(artifacts, `view-${width}.png`), fullPage: true });
  }

  // The HTML report of the same trace, at the same widths: no table or chart wider than the
  // page (they scroll inside themselves), the overview's last time label inside its chart.
  const report = join(profile, "report.html");
  const made = spawnSync(bin, ["report", ...extra, "-o", report], { stdio: ["ignore", "ignore", "pipe"] });
  check("virtflow report writes the report", made.status === 0, String(made.stderr));
  const reportPage = await context.newPage();
  await reportPage.goto(`file://${report}`);
  for (const width of [1280, 800]) {
    await reportPage.setViewportSize({ width, height: 900 });
    const m = await reportPage.evaluate(() => {
      const wide = [...document.querySelectorAll("body > *")]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
        .map((e) => e.tagName);
      const svg = document.querySelector("svg[aria-label='overview timeline']");
      const box = svg.getBoundingClientRect();
      const texts = [...svg.querySelectorAll("text")].map((t) => t.getBoundingClientRect().right - box.left);
      return { page: document.documentElement.scrollWidth, window: window.innerWidth, wide, svg: svg.width.baseVal.value, right: Math.max(...texts) };
    });
    check(`report at ${width} px: the page is no wider than the window`, m.page <= m.window && m.wide.length === 0, `${m.page} > ${m.window}: ${m.wide.join(" ")}`);
    check(`report at ${width} px: the overview's labels are inside its chart`, m.right <= m.svg, `${m.right} > ${m.svg}`);
    await reportPage.screenshot({ path: join(artifacts, `report-${width}.png`), fullPage: true });
  }
  await reportPage.close();

  // The synthetic story (crates/view/src/synthetic/story.rs), whose every figure is known:
  // its phase bands, web vCPU 0's path piece by piece, its memory chart.
  if (process.env.SYNTHETIC_MODEL) {
    const model = join(profile, "story.json");
    const wrote = spawnSync(process.env.SYNTHETIC_MODEL, ["story", model], { stdio: ["ignore", "ignore", "pipe"] });
    check("the story's model is written", wrote.status === 0, String(wrote.stderr));
    const story = await startViewer(["--model", model]);
    children.push(story.child);
    const sp = await context.newPage();
    const storyErrors = [];
    sp.on("pageerror", (e) => storyErrors.push(String(e)));
    await sp.setViewportSize({ width: 1280, height: 900 });
    await sp.goto(story.url);
    await waitDrawn(sp, 0);
    const bands = await sp.evaluate(() => ({ top: window.virtflow.timeline.phaseTop, phases: window.virtflow.meta.analyses.vms.map((v) => v.phases.map((p) => [p.name, p.color])) }));
    check("a phase band above each VM with phases", Object.keys(bands.top).length === 2, JSON.stringify(bands));
    // web's band: network-intensive over 0–50 ms, disk-intensive 50–70, cpu-intensive 70–100.
    const webTop = bands.top[0];
    for (const [name, color] of bands.phases[0]) {
      const n = await colorCount(sp, color, 6, webTop, webTop + 11);
      check(`web's phase band shows ${name}`, n > 100, `${n} pixels of ${color}`);
    }
    let storyPaths = await sp.evaluate(() => window.virtflow.paths || 0);
    await sp.selectOption("#path-target", "synthetic-host|4001");
    await sp.click("#path-show");
    await waitPath(sp, storyPaths);
    const sPath = await sp.evaluate(() => {
      const tl = window.virtflow.timeline;
      const p = window.virtflow.path;
      return {
        drawn: { pieces: tl.pathDrawn.pieces, arrows: tl.pathDrawn.arrows },
        rows: Object.keys(tl.threadTop).map((k) => p.threads[k].short),
        heading: tl.entries.some((e) => e.type === "heading"),
        advice: p.explanation.advice,
      };
    });
    check(
      "web vCPU 0's path: its 13 pieces and 5 arrows drawn, rows for vhost and the I/O thread under web, sshd under the host",
      sPath.drawn.pieces === 13 && sPath.drawn.arrows === 5 && sPath.heading
        && ["IO iothread0 (4011)", "vhost-4000 (4010)", "sshd (800)"].every((r) => sPath.rows.includes(r)),
      JSON.stringify(sPath),
    );
    const memory = await sp.evaluate(() => [...document.querySelectorAll("#panel-memory polyline.series")].map((p) => p.dataset.name));
    check("memory panel draws each VM's held memory", memory.join(",") === "web,batch", JSON.stringify(memory));
    for (const width of [1280, 800]) {
      await sp.setViewportSize({ width, height: 900 });
      await sp.waitForTimeout(300);
      const m = await sp.evaluate(() => ({
        page: document.documentElement.scrollWidth,
        window: window.innerWidth,
        charts: [...document.querySelectorAll(".panel svg.chart")].map((s) => s.getBoundingClientRect().right),
        panels: [...document.querySelectorAll(".panel")].map((p) => p.getBoundingClientRect().right),
      }));
      check(`story at ${width} px: panels and charts inside the window`, m.page <= m.window && [...m.charts, ...m.panels].every((r) => r <= m.window + 0.5), JSON.stringify(m));
      await sp.screenshot({ path: join(artifacts, `story-${width}.png`), fullPage: true });
    }
    check("no script errors on the story", storyErrors.length === 0, storyErrors.join(" | "));
    await sp.close();
  }
} finally {
  await context.close();
  child.kill();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
