//! From the threads' machines to the model: which threads form which VM, their roles, and
//! the per-VM tables (exits, injections, preemptions, wake-up latency).

use rustc_hash::FxHashMap;
use virtflow_model::{
    ExitStat, HelperThread, Host, Interval, PreemptionStat, Preemptor, TaskTime, ThreadRole, Vcpu,
    VcpuState, VectorStat, Vm, VmActivity, VmOvercommit, WaitCause, WaitSignals,
};

use crate::activity;
use crate::cmdline::{self, VmmCommandLine};
use crate::devices::{self, Devices};
use crate::exits::exit_name;
use crate::histogram::Durations;
use crate::memory::Memory;
use crate::overcommit;
use crate::w2a::{process_key, thread_key, vhost_pid, Analyzer, Mode, RawState};

/// How far apart (in thread ids) the vCPU threads of one VMM process may be for a lone vCPU
/// thread, with no other evidence, to be counted in the same VM: QEMU creates them in a row.
const VCPU_TID_PROXIMITY: u32 = 8;

/// One VM being assembled: indices into the analyzer's threads.
struct Group {
    root: u64,
    vcpus: Vec<usize>,
    helpers: Vec<usize>,
    pids: Vec<u32>,
}

pub(crate) fn build(
    an: &mut Analyzer,
    devices: &Devices,
    memory: &Memory,
    hostname: String,
    cmdlines: &[VmmCommandLine],
) -> (Host, Vec<Vm>, Vec<String>) {
    let mut notes = Vec::new();
    let mut groups = find_groups(an);
    merge_lone_vcpus(an, &mut groups);
    if groups.len() == 1 {
        adopt_named_helpers(an, &mut groups[0]);
    }
    // Which VM each thread belongs to, to classify preemptors.
    let mut vm_of: FxHashMap<u32, (usize, u32)> = FxHashMap::default();
    let mut pids = Vec::with_capacity(groups.len());
    for g in groups.iter_mut() {
        let pid = vm_pid(an, g);
        pids.push(pid);
        // The main thread is the one whose tid is the pid.
        if let Some(main) = an.thread_index(pid) {
            if !an.threads[main].is_vcpu && !g.helpers.contains(&main) {
                g.helpers.push(main);
            }
        }
        // Threads tied to the process by other evidence (`vhost-<pid>`, a thread group id)
        // but not to its vCPUs are its own as well.
        let process = an.groups.find(process_key(pid));
        if process != g.root {
            let mut vcpus_elsewhere = false;
            for i in 0..an.threads.len() {
                let t = &an.threads[i];
                if an.groups.find(thread_key(t.tid)) != process {
                    continue;
                }
                if t.is_vcpu {
                    vcpus_elsewhere = true;
                } else if !g.helpers.contains(&i) {
                    g.helpers.push(i);
                }
            }
            // One group from now on, so that the device vectors its helpers were seen to
            // raise classify the injections into its vCPUs (a vhost thread known by its name
            // only, as in a trace-cmd recording without the vhost's thread group).
            if !vcpus_elsewhere {
                an.groups.union(g.root, process);
            }
        }
    }
    for (gi, g) in groups.iter().enumerate() {
        for &i in g.vcpus.iter().chain(&g.helpers) {
            vm_of.insert(an.threads[i].tid, (gi, pids[gi]));
        }
    }
    let mut vms = Vec::with_capacity(groups.len());
    // Per VM (by pid): its vCPUs' ready time by who held the pCPU, for the verdict.
    let mut ready_by: Vec<(u32, Vec<PreemptionStat>)> = Vec::with_capacity(groups.len());
    let mut dropped = false;
    for (gi, g) in groups.iter().enumerate() {
        let pid = pids[gi];
        let classify = |by: u32| -> Preemptor {
            if by == 0 {
                return Preemptor::KernelThread {
                    tid: 0,
                    comm: "swapper".into(),
                };
            }
            match vm_of.get(&by) {
                Some((g2, _)) if *g2 == gi => Preemptor::SameVm { tid: by },
                Some((_, pid2)) => Preemptor::OtherVm {
                    pid: *pid2,
                    tid: by,
                },
                None => {
                    let comm = an
                        .thread_index(by)
                        .map(|i| an.threads[i].comm.clone())
                        .unwrap_or_default();
                    if is_kernel_thread(&comm) {
                        Preemptor::KernelThread { tid: by, comm }
                    } else {
                        Preemptor::HostProcess { tid: by, comm }
                    }
                }
            }
        };
        let mut vm = Vm {
            pid,
            name: vm_name(an, g, pid),
            host: hostname.clone(),
            ..Vm::default()
        };
        cmdline::name_vm(&mut vm, cmdlines, &mut notes);
        // vCPUs, numbered by `vcpu_id`, else by their `CPU n/KVM` name, else in tid order.
        let mut vcpus: Vec<(u32, usize)> = Vec::new();
        let mut next_free = 0;
        let mut sorted = g.vcpus.clone();
        sorted.sort_by_key(|&i| an.threads[i].tid);
        for &i in &sorted {
            let t = &an.threads[i];
            let n = t
                .vcpu_id
                .or_else(|| vcpu_from_comm(&t.comm))
                .unwrap_or_else(|| {
                    while vcpus.iter().any(|(n, _)| *n == next_free) {
                        next_free += 1;
                    }
                    next_free
                });
            vcpus.push((n, i));
        }
        vcpus.sort();
        let mut exits: Vec<ExitStat> = Vec::new();
        let mut timed: Vec<u64> = Vec::new();
        let mut injections: Vec<(u32, u64)> = Vec::new();
        let mut preemptions: Vec<PreemptionStat> = Vec::new();
        let mut ready: Vec<PreemptionStat> = Vec::new();
        let mut latency = Durations::new();
        let mut signals = WaitSignals::default();
        let mut steal = VmOvercommit::default();
        for &(n, i) in &vcpus {
            let t = &an.threads[i];
            dropped |= t.intervals_dropped;
            let intervals = t
                .intervals
                .iter()
                .map(|iv| Interval {
                    start: iv.start,
                    end: iv.end,
                    state: model_state(iv.state, &classify),
                })
                .collect();
            let mut own: Vec<(u32, u64)> = t.injections.clone();
            own.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let vcpu_injections = own
                .into_iter()
                .map(|(vector, count)| VectorStat {
                    vector,
                    class: an
                        .groups
                        .vector_class(g.root, vector)
                        .unwrap_or(WaitCause::Other),
                    count,
                })
                .collect();
            let activity = t
                .series
                .as_deref()
                .map(|s| activity::of_vcpu(s, &an.clock, &an.groups, g.root));
            let split = an.levels.steal_split(i);
            steal.while_overcommitted_ns += split.overcommitted;
            steal.while_cpu_idle_ns += split.cpu_idle;
            vm.vcpus.push(Vcpu {
                vcpu: n,
                tid: t.tid,
                time_ns: t.times,
                waits: t.waits,
                intervals,
                exit_count: t.exits.iter().map(|e| e.count).sum(),
                injections: vcpu_injections,
                activity,
                ..Vcpu::default()
            });
            for e in &t.exits {
                let at = match exits
                    .iter()
                    .position(|x| x.isa == Some(e.isa) && x.code == e.code)
                {
                    Some(at) => at,
                    None => {
                        exits.push(ExitStat {
                            reason: e.name.clone().unwrap_or_else(|| exit_name(e.isa, e.code)),
                            isa: Some(e.isa),
                            code: e.code,
                            ..ExitStat::default()
                        });
                        timed.push(0);
                        exits.len() - 1
                    }
                };
                let x = &mut exits[at];
                x.count += e.count;
                if e.timed > 0 {
                    x.min_ns = if timed[at] == 0 {
                        e.min_ns
                    } else {
                        x.min_ns.min(e.min_ns)
                    };
                    x.max_ns = x.max_ns.max(e.max_ns);
                    x.total_ns += e.total_ns;
                    timed[at] += e.timed;
                }
            }
            for &(v, c) in &t.injections {
                match injections.iter_mut().find(|(x, _)| *x == v) {
                    Some(e) => e.1 += c,
                    None => injections.push((v, c)),
                }
            }
            for &(by, count, ns) in &t.preempted_by {
                let by = classify(by);
                match preemptions.iter_mut().find(|p| p.by == by) {
                    Some(p) => {
                        p.count += count;
                        p.total_ns += ns;
                    }
                    None => preemptions.push(PreemptionStat {
                        by,
                        count,
                        total_ns: ns,
                    }),
                }
            }
            for &(by, ns) in &t.ready_by {
                let by = classify(by);
                match ready.iter_mut().find(|p| p.by == by) {
                    Some(p) => {
                        p.count += 1;
                        p.total_ns += ns;
                    }
                    None => ready.push(PreemptionStat {
                        by,
                        count: 1,
                        total_ns: ns,
                    }),
                }
            }
            if let Some(d) = &t.ready {
                latency.merge(d);
            }
            let s = t.signals;
            signals.waits += s.waits;
            signals.agree += s.agree;
            signals.disagree += s.disagree;
            signals.waker_only += s.waker_only;
            signals.vector_only += s.vector_only;
            signals.neither += s.neither;
        }
        for (x, n) in exits.iter_mut().zip(&timed) {
            x.mean_ns = if *n > 0 { x.total_ns / n } else { 0 };
        }
        exits.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
        vm.exits = exits;
        injections.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        vm.injections = injections
            .into_iter()
            .map(|(vector, count)| VectorStat {
                vector,
                class: an
                    .groups
                    .vector_class(g.root, vector)
                    .unwrap_or(WaitCause::Other),
                count,
            })
            .collect();
        preemptions.sort_by_key(|p| std::cmp::Reverse(p.total_ns));
        vm.preemptions = preemptions;
        vm.wakeup_latency = latency.stats();
        vm.wait_signals = signals;
        let mut helpers: Vec<HelperThread> = g
            .helpers
            .iter()
            .map(|&i| {
                let t = &an.threads[i];
                HelperThread {
                    tid: t.tid,
                    comm: t.comm.clone(),
                    role: role(&t.comm, t.tid, pid),
                }
            })
            .collect();
        helpers.sort_by_key(|h| h.tid);
        // Device work: block requests from any of its threads, packets from its vhost ones.
        let mut io_series = an.keeps_series().then(VmActivity::default);
        for &i in g.vcpus.iter().chain(&g.helpers) {
            let mut io = devices.of(i);
            let vhost = role(&an.threads[i].comm, an.threads[i].tid, pid) == ThreadRole::Vhost;
            if !vhost {
                io.packets = 0;
            }
            devices::add(&mut vm.io, &io);
            if let (Some(acc), Some(s)) = (io_series.as_mut(), devices.series(i)) {
                activity::add_io(acc, s, &an.clock, vhost);
            }
        }
        vm.activity = io_series.map(|mut a| {
            activity::pad_vm(&mut a, &an.clock);
            a
        });
        vm.overcommit = steal;
        let threads: Vec<usize> = g.vcpus.iter().chain(&g.helpers).copied().collect();
        vm.memory = memory.vm(&an.clock, &threads, an.keeps_series());
        vm.threads = helpers;
        if signals.disagree > 0 {
            notes.push(format!(
                "{}: for {} of {} waits, the waker and the injected vector named different \
                 causes (the waker's is kept)",
                vm.name, signals.disagree, signals.waits
            ));
        }
        ready_by.push((vm.pid, ready));
        vms.push(vm);
    }
    vms.sort_by_key(|v| v.pid);
    cmdline::unmatched_note(&vms, cmdlines, &mut notes);
    if dropped {
        notes.push(
            "some vCPU timelines start after their thread's first events (kept only from \
             shortly before the thread was recognised as a vCPU)"
                .into(),
        );
    }
    let mut busiest: Vec<TaskTime> = an
        .threads
        .iter()
        .filter(|t| t.cpu_ns > 0)
        .map(|t| TaskTime {
            tid: t.tid,
            comm: t.comm.clone(),
            cpu_ns: t.cpu_ns,
        })
        .collect();
    busiest.sort_by(|a, b| b.cpu_ns.cmp(&a.cpu_ns).then(a.tid.cmp(&b.tid)));
    busiest.truncate(10);
    let mut host = Host {
        name: hostname,
        cpus: an.cpu_count,
        start_ns: an.start.unwrap_or(0),
        end_ns: an.end,
        busiest,
        buckets: an.keeps_series().then(|| an.clock.buckets()),
        memory: memory.host(&an.clock, an.keeps_series()),
        ..Host::default()
    };
    overcommit::fill(an, &mut host, &mut vms, &ready_by);
    (host, vms, notes)
}

/// Threads grouped by the evidence gathered during the pass: one group per VM.
fn find_groups(an: &mut Analyzer) -> Vec<Group> {
    let mut by_root: FxHashMap<u64, usize> = FxHashMap::default();
    let mut groups: Vec<Group> = Vec::new();
    for i in 0..an.threads.len() {
        if !an.threads[i].is_vcpu {
            continue;
        }
        let root = an.groups.find(thread_key(an.threads[i].tid));
        let gi = *by_root.entry(root).or_insert_with(|| {
            groups.push(Group {
                root,
                vcpus: Vec::new(),
                helpers: Vec::new(),
                pids: Vec::new(),
            });
            groups.len() - 1
        });
        groups[gi].vcpus.push(i);
    }
    for i in 0..an.threads.len() {
        if an.threads[i].is_vcpu {
            continue;
        }
        let root = an.groups.find(thread_key(an.threads[i].tid));
        if let Some(&gi) = by_root.get(&root) {
            groups[gi].helpers.push(i);
        }
    }
    for (key, root) in an.groups.all() {
        if key >> 32 == 1 {
            if let Some(&gi) = by_root.get(&root) {
                groups[gi].pids.push(key as u32);
            }
        }
    }
    groups.sort_by_key(|g| g.vcpus.iter().map(|&i| an.threads[i].tid).min());
    groups
}

/// A group of vCPU threads with nothing else to tie it to a process joins the VM whose vCPU
/// threads have the nearest ids, when their vCPU numbers do not collide.
fn merge_lone_vcpus(an: &Analyzer, groups: &mut Vec<Group>) {
    loop {
        let lone = groups
            .iter()
            .position(|g| g.pids.is_empty() && g.helpers.is_empty());
        let Some(li) = lone else { return };
        let ids = |g: &Group| -> Vec<u32> {
            g.vcpus
                .iter()
                .filter_map(|&i| an.threads[i].vcpu_id)
                .collect()
        };
        let lone_ids = ids(&groups[li]);
        let mut best: Option<(u32, usize)> = None;
        for (gi, g) in groups.iter().enumerate() {
            if gi == li || ids(g).iter().any(|n| lone_ids.contains(n)) {
                continue;
            }
            let d = g
                .vcpus
                .iter()
                .flat_map(|&a| {
                    groups[li]
                        .vcpus
                        .iter()
                        .map(move |&b| an.threads[a].tid.abs_diff(an.threads[b].tid))
                })
                .min()
                .unwrap_or(u32::MAX);
            if d <= VCPU_TID_PROXIMITY && best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, gi));
            }
        }
        let Some((_, into)) = best else {
            // Nothing near: it stays a VM of its own; look no further at it.
            let g = &mut groups[li];
            g.pids.push(u32::MAX);
            continue;
        };
        let moved = groups.remove(li);
        let into = if into > li { into - 1 } else { into };
        groups[into].vcpus.extend(moved.vcpus);
    }
}

/// With a single VM on the host and no thread-group ids in the trace, the VMM's named helper
/// threads (`IO …`, `worker`) that showed no behaviour are still its own.
fn adopt_named_helpers(an: &Analyzer, g: &mut Group) {
    for (i, t) in an.threads.iter().enumerate() {
        if t.is_vcpu || t.tgid.is_some() || g.helpers.contains(&i) {
            continue;
        }
        if t.comm.starts_with("IO ") || t.comm == "worker" {
            g.helpers.push(i);
        }
    }
}

/// The VMM's pid: the thread group of its vCPU threads when the trace gives it, else the pid
/// its vhost workers name, else its main thread guessed among its helpers.
fn vm_pid(an: &Analyzer, g: &Group) -> u32 {
    let mut counts: Vec<(u32, usize)> = Vec::new();
    for &i in &g.vcpus {
        if let Some(tgid) = an.threads[i].tgid {
            match counts.iter_mut().find(|(p, _)| *p == tgid) {
                Some(c) => c.1 += 1,
                None => counts.push((tgid, 1)),
            }
        }
    }
    if let Some((pid, _)) = counts.iter().max_by_key(|(_, n)| *n) {
        return *pid;
    }
    if let Some(pid) = g
        .helpers
        .iter()
        .find_map(|&i| vhost_pid(&an.threads[i].comm))
    {
        return pid;
    }
    if let Some(pid) = g.pids.iter().copied().filter(|p| *p != u32::MAX).min() {
        return pid;
    }
    let main = g
        .helpers
        .iter()
        .map(|&i| &an.threads[i])
        .filter(|t| {
            !(t.comm.starts_with("IO ")
                || t.comm.starts_with("worker")
                || vhost_pid(&t.comm).is_some())
        })
        .map(|t| t.tid)
        .min();
    let first_vcpu = g
        .vcpus
        .iter()
        .map(|&i| an.threads[i].tid)
        .min()
        .unwrap_or(0);
    main.or_else(|| vmm_by_name(an, first_vcpu))
        .unwrap_or(first_vcpu)
}

/// With no other evidence, the VMM's main thread is the nearest thread before its first vCPU
/// thread whose name is a VMM's (the process creates its vCPU threads after starting).
fn vmm_by_name(an: &Analyzer, first_vcpu: u32) -> Option<u32> {
    const VMMS: &[&str] = &[
        "qemu",
        "firecracker",
        "cloud-hyperviso",
        "crosvm",
        "lkvm",
        "kvmtool",
    ];
    an.threads
        .iter()
        .filter(|t| !t.is_vcpu && t.tid < first_vcpu && t.tgid.is_none_or(|p| p == t.tid))
        .filter(|t| VMMS.iter().any(|v| t.comm.starts_with(v)))
        .map(|t| t.tid)
        .max()
}

fn vm_name(an: &Analyzer, g: &Group, pid: u32) -> String {
    let comm = an
        .thread_index(pid)
        .map(|i| an.threads[i].comm.clone())
        .filter(|c| !c.is_empty())
        .or_else(|| {
            g.helpers
                .iter()
                .map(|&i| &an.threads[i])
                .find(|t| role(&t.comm, t.tid, pid) == ThreadRole::MainLoop)
                .map(|t| t.comm.clone())
        })
        .unwrap_or_else(|| "vm".into());
    format!("{comm}/{pid}")
}

pub(crate) fn role(comm: &str, tid: u32, pid: u32) -> ThreadRole {
    if vhost_pid(comm).is_some() {
        ThreadRole::Vhost
    } else if comm.starts_with("IO ") {
        ThreadRole::IoThread
    } else if comm.starts_with("worker") {
        ThreadRole::Worker
    } else if tid == pid {
        ThreadRole::MainLoop
    } else {
        ThreadRole::Other
    }
}

fn vcpu_from_comm(comm: &str) -> Option<u32> {
    comm.strip_prefix("CPU ")?
        .strip_suffix("/KVM")?
        .parse()
        .ok()
}

/// Kernel threads by their names (a host trace rarely says which tasks are kernel threads).
pub(crate) fn is_kernel_thread(comm: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "kworker",
        "ksoftirqd",
        "migration/",
        "rcu_",
        "rcuc",
        "rcuo",
        "kthreadd",
        "watchdog",
        "cpuhp",
        "irq/",
        "kswapd",
        "khugepaged",
        "jbd2",
        "kcompactd",
        "oom_reaper",
        "writeback",
        "kblockd",
        "kauditd",
        "khungtaskd",
        "ksmd",
        "idle_inject",
        "vhost-",
        "kvm-",
        "swapper",
        "kintegrityd",
        "scsi_",
        "nvme",
        "xfs",
        "btrfs",
        "md",
        "ext4",
    ];
    PREFIXES.iter().any(|p| comm.starts_with(p))
}

fn model_state(state: RawState, classify: &dyn Fn(u32) -> Preemptor) -> VcpuState {
    match state {
        RawState::Run(Mode::Guest) => VcpuState::Guest,
        RawState::Run(Mode::Hypervisor(Some((isa, code)))) => VcpuState::Hypervisor { isa, code },
        RawState::Run(Mode::Hypervisor(None)) => VcpuState::Unknown,
        RawState::Run(Mode::UserSpace(reason)) => VcpuState::UserSpace { reason },
        RawState::Preempted(by) => VcpuState::Preempted { by: classify(by) },
        RawState::Ready => VcpuState::Ready,
        RawState::Waiting(cause) => VcpuState::Waiting { cause },
        RawState::Unknown => VcpuState::Unknown,
    }
}
