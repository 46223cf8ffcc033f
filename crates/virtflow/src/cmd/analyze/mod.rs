//! `virtflow analyze [TRACE…]`: what every VM and vCPU on the host did, and why it waited.
//!
//! Opens the traces (or the built-in demo), runs [`virtflow_analysis::analyze`] once over
//! them, and prints the [`virtflow_model::Model`] either as a terminal report that reads well
//! at 100 columns, or with `--json` as the model's JSON (schema: `docs/analyze-json.md`).

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use virtflow_analysis::Options;
use virtflow_model::{Model, Preemptor, ThreadRole, Vm, WaitCause};
use virtflow_trace::escape::sanitize;

use crate::input::TraceArgs;

mod sharing;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "The terminal report ends with a legend of its columns and words (task, unkn, \
the two signals of a wait's cause, count % and time %). Every field of the report and of --json \
is described in docs/analyze-json.md."
)]
pub struct Args {
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Print the model as JSON (schema in docs/analyze-json.md).
    #[arg(long)]
    pub json: bool,
    /// With --json, include every vCPU's state timeline (`intervals`), the series over time
    /// and the execution graph (`graph`): the model then holds all that `view`, `report`,
    /// `export` and `cluster` need (`--model FILE`).
    #[arg(long, requires = "json")]
    pub intervals: bool,
}

/// Traces smaller than this finish too fast for a progress bar to help.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

pub fn run(args: Args) -> anyhow::Result<()> {
    let bar = ProgressSlot::default();
    let options = Options {
        intervals: args.intervals,
        series: args.intervals,
        graph: args.intervals,
        progress: std::io::stderr().is_terminal().then(|| bar.callback()),
        ..Options::default()
    };
    let model = crate::input::analyze(&args.trace, options)?;
    bar.finish();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = if args.json {
        serde_json::to_writer_pretty(&mut out, &model)
            .map_err(std::io::Error::from)
            .and_then(|_| writeln!(out))
    } else {
        render(&model, &mut out)
    };
    match written.and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// A progress bar made on the first report that shows a large trace.
#[derive(Clone, Default)]
struct ProgressSlot(Arc<Mutex<Option<indicatif::ProgressBar>>>);

impl ProgressSlot {
    fn callback(&self) -> Arc<virtflow_analysis::Progress> {
        let slot = self.clone();
        Arc::new(move |done, total| {
            if total < PROGRESS_MIN_BYTES {
                return;
            }
            let mut bar = slot.0.lock().unwrap_or_else(|e| e.into_inner());
            let bar = bar.get_or_insert_with(|| {
                let b = indicatif::ProgressBar::new(total);
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} analysing {bar:40} {bytes}/{total_bytes} ({eta})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                b
            });
            bar.set_position(done.min(total));
        })
    }

    fn finish(&self) {
        if let Some(bar) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

/// Writes the terminal report.
pub fn render(model: &Model, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "virtflow analyze: {}", model.traces.join(", "))?;
    let several = model.hosts.len() > 1;
    for host in &model.hosts {
        let span = (host.end_ns - host.start_ns).max(0) as u64;
        let name = if host.name.is_empty() {
            String::new()
        } else {
            format!(" {}", sanitize(&host.name))
        };
        let events = if host.events > 0 {
            host.events
        } else {
            model.read.events
        };
        writeln!(
            out,
            "host{name}: {} CPUs, {} traced, {} events",
            host.cpus,
            ns(span),
            thousands(events)
        )?;
        if several && !host.traces.is_empty() {
            writeln!(out, "  from {}", host.traces.join(", "))?;
        }
        if let Some(c) = &host.clock {
            writeln!(out, "  {}", virtflow_view::clock_words(c))?;
        }
    }
    if let Some(t) = &model.timeline {
        writeln!(
            out,
            "time line: {}'s clock ({}); {} messages between hosts, {} arriving before they left",
            t.reference,
            match t.source.as_str() {
                "computed" => "synchronised now".to_string(),
                "cache" => "synchronised, from the cache".to_string(),
                "off" => "synchronisation off".to_string(),
                file => format!("from {file}"),
            },
            thousands(t.messages),
            thousands(t.received_before_sent)
        )?;
    }
    // What decides how to read the rest comes first: no event, no KVM event, reading
    // stopped by damage.
    let headline = |n: &&String| {
        n.contains("no KVM events")
            || n.as_str() == crate::input::NO_EVENT
            || n.starts_with("reading stopped at ")
    };
    for note in model.notes.iter().filter(headline) {
        writeln!(out, "\n{}.", sanitize(note))?;
    }
    for host in &model.hosts {
        let vms: Vec<&Vm> = model.vms.iter().filter(|v| v.host == host.name).collect();
        if several && !vms.is_empty() {
            writeln!(out, "\n── host {} ──", host.name)?;
        }
        for vm in &vms {
            writeln!(out)?;
            render_vm(vm, host.memory.traced, out)?;
        }
        if !vms.is_empty() {
            let label = if several {
                format!("host {}", host.name)
            } else {
                "the host".to_string()
            };
            sharing::render_host(host, &label, out)?;
        }
        if vms.is_empty() && !host.busiest.is_empty() {
            let span = (host.end_ns - host.start_ns).max(1) as f64;
            let which = if several {
                format!("host {}", host.name)
            } else {
                "the host".to_string()
            };
            writeln!(out, "\nbusiest threads on {which}:")?;
            writeln!(
                out,
                "  {:>8}  {:<20} {:>10} {:>7}",
                "tid", "comm", "on CPU", "share"
            )?;
            for t in &host.busiest {
                writeln!(
                    out,
                    "  {:>8}  {:<20} {:>10} {:>6.1}%",
                    t.tid,
                    clip(&sanitize(&t.comm), 20),
                    ns(t.cpu_ns),
                    100.0 * t.cpu_ns as f64 / span
                )?;
            }
        }
    }
    if !model.vms.is_empty() {
        writeln!(out)?;
        for line in LEGEND {
            writeln!(out, "{line}")?;
        }
    }
    let rest: Vec<_> = model.notes.iter().filter(|n| !headline(n)).collect();
    let r = &model.read;
    if !rest.is_empty() || r.truncated_packets > 0 || r.unknown_events > 0 || !r.warnings.is_empty()
    {
        writeln!(out, "\nnotes:")?;
        for n in rest {
            note(out, n)?;
        }
        if r.truncated_packets > 0 {
            note(out, &format!("{} truncated packets", r.truncated_packets))?;
        }
        if r.unknown_events > 0 {
            note(
                out,
                &format!("{} events of unknown classes skipped", r.unknown_events),
            )?;
        }
        for w in &r.warnings {
            note(out, w)?;
        }
    }
    Ok(())
}

fn render_vm(vm: &Vm, memory_traced: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let isa = vm
        .exits
        .first()
        .and_then(|e| e.isa)
        .map(|i| match i {
            virtflow_model::Isa::Vmx => ", Intel VMX",
            virtflow_model::Isa::Svm => ", AMD SVM",
        })
        .unwrap_or("");
    // A name that leads with the guest's (`web1 (qemu-system-x86/1234)`) holds the pid already.
    let who = if vm.guest_name.is_some() {
        clip(&sanitize(&vm.name), 70)
    } else {
        format!("{} (pid {})", sanitize(&vm.name), vm.pid)
    };
    writeln!(
        out,
        "VM {who}: {} vCPU{}{isa}",
        vm.vcpus.len(),
        if vm.vcpus.len() == 1 { "" } else { "s" }
    )?;
    if let Some(uuid) = &vm.uuid {
        writeln!(out, "  uuid {uuid}")?;
    }
    // The vCPU table: shares of the traced time, in percent.
    writeln!(
        out,
        "  {:>4} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6} {:>6} | {:>6}",
        "vCPU",
        "tid",
        "guest",
        "hyp",
        "user",
        "preem",
        "ready",
        "timer",
        "disk",
        "net",
        "task",
        "other",
        "unkn"
    )?;
    for v in &vm.vcpus {
        let t = &v.time_ns;
        let total = t.total().max(1) as f64;
        let p = |x: u64| format!("{:.1}", 100.0 * x as f64 / total);
        writeln!(
            out,
            "  {:>4} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6} {:>6} | {:>6}",
            v.vcpu,
            v.tid,
            p(t.guest),
            p(t.hypervisor),
            p(t.userspace),
            p(t.preempted),
            p(t.ready),
            p(t.waiting.timer),
            p(t.waiting.disk),
            p(t.waiting.network),
            p(t.waiting.task),
            p(t.waiting.other),
            p(t.unknown)
        )?;
    }
    writeln!(
        out,
        "  (% of traced time; hyp includes user = in the VMM's user space; waiting by cause)"
    )?;
    render_guest_split(vm, out)?;
    sharing::render_vm(vm, memory_traced, out)?;
    // Wait causes: how many, how long on average.
    let mut causes = Vec::new();
    for c in WaitCause::ALL {
        let n: u64 = vm.vcpus.iter().map(|v| v.waits.get(c)).sum();
        let t: u64 = vm.vcpus.iter().map(|v| v.time_ns.waiting.get(c)).sum();
        if n > 0 {
            causes.push(format!("{} {} (mean {})", c.name(), n, ns(t / n)));
        }
    }
    if !causes.is_empty() {
        list(out, "waits", &causes)?;
        let s = &vm.wait_signals;
        writeln!(
            out,
            "         signals: {} agree, {} disagree, waker only {}, vector only {}, neither {}",
            s.agree, s.disagree, s.waker_only, s.vector_only, s.neither
        )?;
    }
    let l = &vm.wakeup_latency;
    if l.count > 0 {
        writeln!(
            out,
            "  wake-up latency: {} wake-ups, mean {}, p50 {}, p99 {}, max {}",
            l.count,
            ns(l.mean_ns),
            ns(l.p50_ns),
            ns(l.p99_ns),
            ns(l.max_ns)
        )?;
    }
    if !vm.exits.is_empty() {
        let all: u64 = vm.exits.iter().map(|e| e.count).sum();
        writeln!(
            out,
            "  exits, {} in all (time: from the exit to the next entry):",
            thousands(all)
        )?;
        // Two shares, named for what they divide: of the exits counted, of the time in exits.
        let time: u64 = vm.exits.iter().map(|e| e.total_ns).sum();
        writeln!(
            out,
            "    {:<24} {:>9} {:>7} {:>10} {:>6} {:>9} {:>9} {:>9}",
            "reason", "count", "count %", "time", "time %", "min", "mean", "max"
        )?;
        for e in vm.exits.iter().take(8) {
            writeln!(
                out,
                "    {:<24} {:>9} {:>6.1}% {:>10} {:>5.1}% {:>9} {:>9} {:>9}",
                clip(&e.reason, 24),
                thousands(e.count),
                100.0 * e.count as f64 / all.max(1) as f64,
                ns(e.total_ns),
                100.0 * e.total_ns as f64 / time.max(1) as f64,
                ns(e.min_ns),
                ns(e.mean_ns),
                ns(e.max_ns)
            )?;
        }
        if vm.exits.len() > 8 {
            writeln!(
                out,
                "    … {} more reasons (--json has all)",
                vm.exits.len() - 8
            )?;
        }
    }
    if !vm.injections.is_empty() {
        let list: Vec<String> = vm
            .injections
            .iter()
            .take(8)
            .map(|i| {
                format!(
                    "{:#04x} {} {}",
                    i.vector,
                    i.class.name(),
                    thousands(i.count)
                )
            })
            .collect();
        self::list(out, "injected", &list)?;
    }
    if !vm.preemptions.is_empty() {
        let list: Vec<String> = vm
            .preemptions
            .iter()
            .take(5)
            .map(|p| format!("{} {}× {}", preemptor(&p.by), p.count, ns(p.total_ns)))
            .collect();
        self::list(out, "preempted by", &list)?;
    }
    if !vm.threads.is_empty() {
        let list: Vec<String> = vm
            .threads
            .iter()
            .map(|t| format!("{} {} ({})", t.tid, sanitize(&t.comm), role(t.role)))
            .collect();
        self::list(out, "helper threads", &list)?;
    }
    Ok(())
}

/// Inside the guest time: guest kernel vs user (from `guest_rip` at exits), L1 vs L2 when
/// the VM runs nested guests, and the guest processes when the trace reports CR3 at entries.
fn render_guest_split(vm: &Vm, out: &mut dyn Write) -> std::io::Result<()> {
    let pct = |x: u64, of: u64| 100.0 * x as f64 / of.max(1) as f64;
    let rings: Vec<String> = vm
        .vcpus
        .iter()
        .filter(|v| v.guest_kernel_ns + v.guest_user_ns > 0)
        .map(|v| {
            let of = v.guest_kernel_ns + v.guest_user_ns;
            format!(
                "vCPU {} {:.0}%/{:.0}%",
                v.vcpu,
                pct(v.guest_kernel_ns, of),
                pct(v.guest_user_ns, of)
            )
        })
        .collect();
    if !rings.is_empty() {
        list(out, "guest kernel/user", &rings)?;
    }
    let nested: Vec<String> = vm
        .vcpus
        .iter()
        .filter(|v| v.l2_ns > 0)
        .map(|v| {
            let l1 = v.time_ns.guest.saturating_sub(v.l2_ns);
            format!(
                "vCPU {} L1 {} L2 {} ({:.0}% L2)",
                v.vcpu,
                ns(l1),
                ns(v.l2_ns),
                pct(v.l2_ns, v.time_ns.guest)
            )
        })
        .collect();
    if !nested.is_empty() {
        list(out, "nested", &nested)?;
    }
    // Processes of the whole VM: the same CR3 on several vCPUs is one guest process.
    let mut procs: Vec<(u64, bool, u64, u64)> = Vec::new();
    for p in vm.vcpus.iter().flat_map(|v| &v.processes) {
        match procs.iter_mut().find(|q| q.0 == p.cr3 && q.1 == p.l2) {
            Some(q) => {
                q.2 += p.entries;
                q.3 += p.guest_ns;
            }
            None => procs.push((p.cr3, p.l2, p.entries, p.guest_ns)),
        }
    }
    if procs.is_empty() {
        return Ok(());
    }
    procs.sort_by(|a, b| b.3.cmp(&a.3).then(a.0.cmp(&b.0)));
    let guest: u64 = vm.vcpus.iter().map(|v| v.time_ns.guest).sum();
    writeln!(
        out,
        "  guest processes (CR3 at entry), {} in all:",
        procs.len()
    )?;
    writeln!(
        out,
        "    {:<20} {:>5} {:>9} {:>10} {:>6}",
        "cr3", "level", "entries", "guest", "share"
    )?;
    for (cr3, l2, entries, guest_ns) in procs.iter().take(8) {
        writeln!(
            out,
            "    {:<20} {:>5} {:>9} {:>10} {:>5.1}%",
            format!("{cr3:#x}"),
            if *l2 { "L2" } else { "L1" },
            thousands(*entries),
            ns(*guest_ns),
            pct(*guest_ns, guest)
        )?;
    }
    if procs.len() > 8 {
        writeln!(out, "    … {} more (--json has all)", procs.len() - 8)?;
    }
    Ok(())
}

/// Report width, in columns.
const WIDTH: usize = 100;

/// What the report's columns and words mean, under the VMs (every field: docs/analyze-json.md).
const LEGEND: &[&str] = &[
    "legend (every field: docs/analyze-json.md):",
    "  vCPU table: % of each vCPU's traced time. guest: running guest code; hyp: in the",
    "    hypervisor, from an exit to the next entry (includes user: in the VMM's user space);",
    "    preem: runnable, preempted by another task; ready: woken, waiting for a CPU; timer,",
    "    disk, net, task, other: halted, waiting, by what woke it (task: an IPI from another",
    "    vCPU of the VM); unkn: not shown by the trace (before the first event that shows the",
    "    thread's state, after lost events).",
    "  waits: how many waits of each cause, with their mean length. signals: a wait's cause",
    "    comes from who woke the vCPU and from the vector injected at its next entries; agree,",
    "    disagree: both told (the waker's cause is kept); waker only, vector only: one told;",
    "    neither: none did (counted as other).",
    "  exits: count %: of the VM's exits; time %: of its time in exits (exit to next entry).",
    "  steal: time its vCPUs could run but did not (preem + ready), split by whether the host",
    "    had more runnable vCPUs than pCPUs then, and whether a pCPU was idle then (pinning).",
    "  host memory: pages the host allocated for the VM's threads (vCPUs faulting guest memory",
    "    in, its helpers) during the trace, less those freed by any thread; needs page events.",
];

/// `  - text` wrapped at [`WIDTH`] between words, continuation lines indented under the text;
/// a word longer than a line (a path) stays whole. What does not print is escaped.
fn note(out: &mut dyn Write, text: &str) -> std::io::Result<()> {
    wrap(out, "  - ", "    ", text)
}

/// `text` wrapped at [`WIDTH`] between words, every line led by `indent`.
fn paragraph(out: &mut dyn Write, indent: &str, text: &str) -> std::io::Result<()> {
    wrap(out, indent, indent, text)
}

/// `text` wrapped at [`WIDTH`] between words, the first line led by `first`, the others by
/// `rest`; a word longer than a line (a path) stays whole. What does not print is escaped.
fn wrap(out: &mut dyn Write, first: &str, rest: &str, text: &str) -> std::io::Result<()> {
    let text = sanitize(text);
    let mut line = String::from(first);
    let mut width = first.chars().count();
    let mut words = 0;
    for word in text.split_whitespace() {
        let n = word.chars().count();
        if words > 0 && width + 1 + n > WIDTH {
            writeln!(out, "{line}")?;
            line = String::from(rest);
            width = rest.chars().count();
            words = 0;
        }
        if words > 0 {
            line.push(' ');
            width += 1;
        }
        line.push_str(word);
        width += n;
        words += 1;
    }
    writeln!(out, "{line}")
}

/// `  label: a, b, c` wrapped at [`WIDTH`], continuation lines aligned after the label.
fn list(out: &mut dyn Write, label: &str, items: &[String]) -> std::io::Result<()> {
    let head = format!("  {label}: ");
    let indent = head.chars().count();
    let mut line = head;
    let mut width = indent;
    for (i, item) in items.iter().enumerate() {
        let piece = if i + 1 < items.len() {
            format!("{item},")
        } else {
            item.clone()
        };
        let n = piece.chars().count();
        if width > indent && width + 1 + n > WIDTH {
            writeln!(out, "{}", line.trim_end())?;
            line = " ".repeat(indent);
            width = indent;
        } else if width > indent {
            line.push(' ');
            width += 1;
        }
        line.push_str(&piece);
        width += n;
    }
    writeln!(out, "{line}")
}

fn preemptor(p: &Preemptor) -> String {
    match p {
        Preemptor::SameVm { tid } => format!("same VM tid {tid}"),
        Preemptor::OtherVm { pid, tid } => format!("VM {pid} tid {tid}"),
        Preemptor::HostProcess { tid, comm } => format!("{} ({tid})", sanitize(comm)),
        Preemptor::KernelThread { tid, comm } => format!("kernel {} ({tid})", sanitize(comm)),
        Preemptor::Unknown => "unknown".into(),
    }
}

fn role(r: ThreadRole) -> &'static str {
    match r {
        ThreadRole::MainLoop => "main loop",
        ThreadRole::IoThread => "I/O thread",
        ThreadRole::Worker => "worker",
        ThreadRole::Vhost => "vhost",
        ThreadRole::Other => "other",
    }
}

/// A duration with a unit that keeps three significant digits.
fn ns(ns: u64) -> String {
    let f = ns as f64;
    if ns >= 1_000_000_000 {
        format!("{:.2} s", f / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.2} ms", f / 1e6)
    } else if ns >= 1_000 {
        format!("{:.1} µs", f / 1e3)
    } else {
        format!("{ns} ns")
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string().into_bytes();
    let mut out = Vec::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.iter().rev().enumerate() {
        if i > 0 && i % 3 == 0 {
            out.push(b',');
        }
        out.push(*d);
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(n - 1).collect();
        c.push('…');
        c
    }
}
