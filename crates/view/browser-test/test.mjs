// Browser test of `virtflow view`: starts the viewer on the demo trace (or on VIRTFLOW_ARGS),
// opens it in Debian's chromium through Playwright, and checks that rows and states are
// drawn, that zoom, hover and selection work; screenshots go to test-artifacts/.
//
// env: VIRTFLOW (the binary), VIRTFLOW_ARGS (extra arguments, space-separated),
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
function startViewer() {
  const child = spawn(bin, ["view", ...extra], { stdio: ["ignore", "pipe", "inherit"] });
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

const { child, url } = await startViewer();
process.on("exit", () => child.kill());
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
    check(`${width} px: every panel inside the window, scrolling what it cannot hold`, m.panels.length === 5 && out.length === 0, JSON.stringify(out));
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
} finally {
  await context.close();
  child.kill();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
