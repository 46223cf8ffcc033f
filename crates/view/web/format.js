// Time formatting shared by the timeline and the panels.

const UNITS = [[1e9, "s"], [1e6, "ms"], [1e3, "µs"], [1, "ns"]];

// A duration in the largest unit that keeps it ≥ 1.
export function formatDuration(ns) {
  if (ns === 0) return "0";
  const [div, unit] = UNITS.find(([d]) => Math.abs(ns) >= d) ?? UNITS[3];
  const v = ns / div;
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${unit}`;
}

// A position on the time axis (relative to the trace start); `step` (the ruler's tick
// spacing) chooses the unit so that adjacent ticks read differently.
// Without `step`, the time is given to the nanosecond.
export function formatTime(ns, step) {
  if (step === undefined) {
    const [div, unit] = UNITS.find(([d]) => Math.abs(ns) >= d) ?? UNITS[3];
    return `${(ns / div).toFixed(Math.round(Math.log10(div)))} ${unit}`;
  }
  const [div, unit] = UNITS.find(([d]) => step >= d) ?? UNITS[3];
  const digits = Math.max(0, Math.min(6, Math.ceil(-Math.log10(step / div) + 1e-9)));
  return `${(ns / div).toFixed(digits)} ${unit}`;
}

export function percent(part, whole) {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : "–";
}
