//! What the analyses would add to a synthetic model, derived from its intervals so that every
//! figure agrees with the timelines: the host's buckets, each VM's steal and the host's
//! runnable vCPUs per bucket with their totals and verdicts; and, for the random models, a
//! memory ledger, phases and an execution graph whose vCPU chains are the intervals and whose
//! waits are ended by the VM's helper threads.

use std::collections::HashMap;

use virtflow_graph::{Endpoint, Link, Segment, State, WorkerId};
use virtflow_model::{
    Buckets, Culprit, ExecutionGraph, GraphWorker, HelperThread, HostMemory, Model, Phase,
    PreemptionMatrix, Preemptor, ThreadRole, VcpuState, VmMemory, WaitCause,
};

use super::Rng;

/// A vCPU's state counts as runnable (it wants a pCPU) unless it waits or is unknown.
fn runnable(state: &VcpuState) -> bool {
    !matches!(state, VcpuState::Waiting { .. } | VcpuState::Unknown)
}

fn stolen(state: &VcpuState) -> bool {
    matches!(state, VcpuState::Preempted { .. } | VcpuState::Ready)
}

/// Adds `[start, end)` to `series`, split over the buckets it spans.
fn add_span(series: &mut [u64], b: &Buckets, start: i64, end: i64) {
    let mut t = start.max(b.start_ns);
    while t < end {
        let k = b.index(t);
        let upto = end.min(b.start_of(k + 1));
        if upto <= t {
            break;
        }
        series[k] += (upto - t) as u64;
        t = upto;
    }
}

/// The host's buckets of `step_ns` from its start, enough to cover its end.
pub fn buckets(model: &mut Model, step_ns: i64) -> Buckets {
    let host = &mut model.hosts[0];
    let count = ((host.end_ns - host.start_ns).max(1) as u64).div_ceil(step_ns as u64) as usize;
    let b = Buckets {
        start_ns: host.start_ns,
        step_ns,
        count,
    };
    host.buckets = Some(b);
    b
}

/// Steal per VM and runnable vCPUs per bucket, their totals, the preemption matrix and the
/// verdicts, from the intervals (the model's first host).
pub fn overcommit(model: &mut Model, step_ns: i64) {
    let b = buckets(model, step_ns);
    let pcpus = model.hosts[0].cpus;
    // How many vCPUs are runnable between consecutive boundaries.
    let mut edges: Vec<(i64, i32)> = Vec::new();
    let mut runnable_series = vec![0u64; b.count];
    for iv in model
        .vms
        .iter()
        .flat_map(|vm| &vm.vcpus)
        .flat_map(|v| &v.intervals)
    {
        if runnable(&iv.state) {
            edges.push((iv.start, 1));
            edges.push((iv.end, -1));
            add_span(&mut runnable_series, &b, iv.start, iv.end);
        }
    }
    edges.sort_unstable();
    let mut levels: Vec<(i64, i64, u32)> = Vec::new();
    let mut count = 0i32;
    for w in edges.windows(2) {
        count += w[0].1;
        if w[1].0 > w[0].0 {
            levels.push((w[0].0, w[1].0, count as u32));
        }
    }
    // Time of `[s, e)` during which the count satisfies `pred`.
    let during = |s: i64, e: i64, pred: &dyn Fn(u32) -> bool| -> u64 {
        let first = levels.partition_point(|l| l.1 <= s);
        levels[first..]
            .iter()
            .take_while(|l| l.0 < e)
            .filter(|l| pred(l.2))
            .map(|l| (l.1.min(e) - l.0.max(s)) as u64)
            .sum()
    };
    let host = &model.hosts[0];
    let span = (host.end_ns - host.start_ns).max(1);
    let total_runnable: u64 = runnable_series.iter().sum();
    let overcommitted_ns = during(host.start_ns, host.end_ns, &|c| c > pcpus);
    let names: Vec<String> = model.vms.iter().map(|vm| vm.name.clone()).collect();
    let vm_of_tid: HashMap<u32, usize> = model
        .vms
        .iter()
        .enumerate()
        .flat_map(|(i, vm)| vm.vcpus.iter().map(move |v| (v.tid, i)))
        .collect();
    let mut preemptors: Vec<Culprit> = names
        .iter()
        .map(|n| Culprit::Vm { name: n.clone() })
        .collect();
    let mut matrix = vec![Vec::new(); model.vms.len()];
    for (vi, vm) in model.vms.iter_mut().enumerate() {
        let oc = &mut vm.overcommit;
        oc.steal = vec![0; b.count];
        let mut observed = 0u64;
        let mut row: HashMap<usize, u64> = HashMap::new();
        for iv in vm.vcpus.iter().flat_map(|v| &v.intervals) {
            if !matches!(iv.state, VcpuState::Unknown) {
                observed += (iv.end - iv.start) as u64;
            }
            if !stolen(&iv.state) {
                continue;
            }
            add_span(&mut oc.steal, &b, iv.start, iv.end);
            oc.steal_ns += (iv.end - iv.start) as u64;
            oc.while_overcommitted_ns += during(iv.start, iv.end, &|c| c > pcpus);
            oc.while_cpu_idle_ns += during(iv.start, iv.end, &|c| c < pcpus);
            if let VcpuState::Preempted { by } = &iv.state {
                let culprit = match by {
                    Preemptor::SameVm { .. } => Culprit::Vm {
                        name: names[vi].clone(),
                    },
                    Preemptor::OtherVm { tid, .. } => match vm_of_tid.get(tid) {
                        Some(&o) => Culprit::Vm {
                            name: names[o].clone(),
                        },
                        None => Culprit::Unknown,
                    },
                    Preemptor::HostProcess { comm, .. } => {
                        Culprit::HostProcess { comm: comm.clone() }
                    }
                    Preemptor::KernelThread { comm, .. } => {
                        Culprit::KernelThread { comm: comm.clone() }
                    }
                    Preemptor::Unknown => Culprit::Unknown,
                };
                let col = match preemptors.iter().position(|c| *c == culprit) {
                    Some(c) => c,
                    None => {
                        preemptors.push(culprit);
                        preemptors.len() - 1
                    }
                };
                *row.entry(col).or_default() += (iv.end - iv.start) as u64;
            }
        }
        oc.steal_share = oc.steal_ns as f64 / observed.max(1) as f64;
        oc.verdict = format!(
            "verdict: {} lost {:.1}% of its vCPU time ({} ms) runnable but not running; {:.0}% \
             of it while the host was overcommitted",
            vm.name,
            100.0 * oc.steal_share,
            oc.steal_ns / 1_000_000,
            100.0 * oc.while_overcommitted_ns as f64 / oc.steal_ns.max(1) as f64
        );
        matrix[vi] = row.into_iter().collect::<Vec<_>>();
    }
    let ns = matrix
        .into_iter()
        .map(|row| {
            let mut full = vec![0; preemptors.len()];
            for (c, v) in row {
                full[c] = v;
            }
            full
        })
        .collect();
    let ho = &mut model.hosts[0].overcommit;
    ho.pcpus = pcpus;
    ho.max_runnable = levels.iter().map(|l| l.2).max().unwrap_or(0);
    ho.mean_runnable = total_runnable as f64 / span as f64;
    ho.overcommitted_ns = overcommitted_ns;
    ho.runnable = runnable_series;
    ho.matrix = PreemptionMatrix {
        victims: names,
        preemptors,
        ns,
    };
    ho.verdict = format!(
        "verdict: {pcpus} pCPUs, {:.2} vCPUs runnable on average (at most {}), more runnable \
         than pCPUs {:.1}% of the time",
        ho.mean_runnable,
        ho.max_runnable,
        100.0 * overcommitted_ns as f64 / span as f64
    );
}

/// Per-bucket page traffic and its totals: `allocated` and `freed` bytes per bucket for each
/// VM, in that order; the host's are their sums.
pub fn memory(model: &mut Model, per_vm: Vec<(Vec<u64>, Vec<u64>)>, ksm_pages: &[u64]) {
    let count = model.hosts[0].buckets.map_or(0, |b| b.count);
    let mut host = HostMemory {
        traced: true,
        allocated: vec![0; count],
        freed: vec![0; count],
        ..HostMemory::default()
    };
    for (k, (vm, (allocated, freed))) in model.vms.iter_mut().zip(per_vm).enumerate() {
        let mut held = 0i64;
        let mut peak = 0i64;
        for (a, f) in allocated.iter().zip(&freed) {
            held += *a as i64 - *f as i64;
            peak = peak.max(held);
        }
        for (i, (a, f)) in allocated.iter().zip(&freed).enumerate() {
            host.allocated[i] += a;
            host.freed[i] += f;
        }
        let ksm = ksm_pages.get(k).copied().unwrap_or(0);
        host.ksm_merged_pages += ksm;
        vm.memory = VmMemory {
            allocated_bytes: allocated.iter().sum(),
            freed_bytes: freed.iter().sum(),
            net_bytes: held,
            peak_bytes: peak,
            ksm_merged_pages: ksm,
            allocated,
            freed,
        };
    }
    host.allocated_bytes = host.allocated.iter().sum();
    host.freed_bytes = host.freed.iter().sum();
    host.net_bytes = host.allocated_bytes as i64 - host.freed_bytes as i64;
    model.hosts[0].memory = host;
}

/// A graph's chains as a builder of them: workers by thread id, consecutive segments of one
/// state joined (as the analysis joins them), links added at the end.
#[derive(Default)]
pub struct GraphMaker {
    eg: ExecutionGraph,
    by_tid: HashMap<u32, WorkerId>,
    open: Vec<Option<Segment>>,
    links: Vec<Link>,
}

impl GraphMaker {
    /// The worker of thread `tid` (`comm` names it the first time).
    pub fn worker(&mut self, host: &str, tid: u32, comm: &str) -> WorkerId {
        if let Some(&w) = self.by_tid.get(&tid) {
            return w;
        }
        let w = self.eg.graph.add_worker();
        self.eg.workers.push(GraphWorker {
            host: host.to_string(),
            tid,
            comm: comm.to_string(),
            guest: None,
        });
        self.open.push(None);
        self.by_tid.insert(tid, w);
        w
    }

    fn known(&self, tid: u32) -> WorkerId {
        *self
            .by_tid
            .get(&tid)
            .unwrap_or_else(|| panic!("thread {tid} has no worker yet"))
    }

    /// `[start, end)` of thread `tid` in `state`, `by` the thread holding its CPU.
    pub fn segment(&mut self, tid: u32, start: i64, end: i64, state: State, by: Option<u32>) {
        if end <= start {
            return;
        }
        let w = self.known(tid);
        let mut seg = Segment::new(start, end, state);
        if let Some(b) = by {
            seg = seg.by(self.known(b));
        }
        let slot = &mut self.open[w.index()];
        match slot {
            Some(last)
                if last.end() == start
                    && last.state() == state
                    && last.by_worker() == seg.by_worker() =>
            {
                let mut joined = Segment::new(last.start(), end, state);
                if let Some(b) = last.by_worker() {
                    joined = joined.by(b);
                }
                *last = joined;
            }
            _ => {
                if let Some(done) = slot.replace(seg) {
                    self.eg
                        .graph
                        .append(w, done)
                        .expect("segments in time order");
                }
            }
        }
    }

    /// Thread `from` woke thread `to` at `at`.
    pub fn wakeup(&mut self, from: u32, to: u32, at: i64) {
        let (f, t) = (self.known(from), self.known(to));
        self.links
            .push(Link::wakeup(Endpoint::new(f, at), Endpoint::new(t, at)));
    }

    pub fn finish(mut self) -> ExecutionGraph {
        for (i, slot) in self.open.iter_mut().enumerate() {
            if let Some(seg) = slot.take() {
                self.eg
                    .graph
                    .append(WorkerId(i as u32), seg)
                    .expect("segments in time order");
            }
        }
        for link in self.links {
            self.eg.graph.add_link(link).expect("a valid link");
        }
        self.eg
    }
}

/// Adds to a random model what a full analysis would: buckets of 1 ms (doubled until there are
/// at most 1,024), steal and runnable series, a memory ledger, three phases per VM, and an
/// execution graph — each vCPU's chain from its intervals, its network waits ended by the
/// VM's vhost thread, disk waits by its I/O thread, IPIs by its next vCPU, and preemptions
/// by the threads that preempted it.
pub fn with_analyses(mut model: Model, seed: u64) -> Model {
    let host = &model.hosts[0];
    let mut step = 1_000_000i64;
    while (host.end_ns - host.start_ns) / step > 1024 {
        step *= 2;
    }
    overcommit(&mut model, step);
    let count = model.hosts[0].buckets.map_or(0, |b| b.count);
    let mut rng = Rng(seed.max(1) ^ 0x5eed);
    let per_vm = model
        .vms
        .iter()
        .map(|_| {
            let allocated: Vec<u64> = (0..count)
                .map(|_| (rng.below(4) << 20) * u64::from(rng.below(3) == 0))
                .collect();
            let freed = allocated
                .iter()
                .map(|a| if rng.below(4) == 0 { a / 2 } else { 0 })
                .collect();
            (allocated, freed)
        })
        .collect();
    let ksm: Vec<u64> = model.vms.iter().map(|_| rng.below(100)).collect();
    memory(&mut model, per_vm, &ksm);
    const NAMES: [&str; 4] = [
        "cpu-intensive",
        "idle",
        "network-intensive",
        "disk-intensive",
    ];
    for (i, vm) in model.vms.iter_mut().enumerate() {
        let first = vm
            .vcpus
            .iter()
            .filter_map(|v| v.intervals.first())
            .map(|i| i.start)
            .min();
        let last = vm
            .vcpus
            .iter()
            .filter_map(|v| v.intervals.last())
            .map(|i| i.end)
            .max();
        if let (Some(s), Some(e)) = (first, last) {
            let third = (e - s) / 3;
            vm.phases = (0..3)
                .map(|k| Phase {
                    start: s + k * third,
                    end: if k == 2 { e } else { s + (k + 1) * third },
                    name: NAMES[(i + k as usize) % NAMES.len()].to_string(),
                })
                .collect();
        }
    }
    model.graph = Some(graph_from_intervals(&mut model));
    model
}

/// The execution graph [`with_analyses`] describes; adds each VM's vhost and I/O threads.
fn graph_from_intervals(model: &mut Model) -> ExecutionGraph {
    let mut g = GraphMaker::default();
    let host = model.hosts[0].name.clone();
    // Workers first: every vCPU, every VM's helpers, every preemptor.
    for vm in &mut model.vms {
        for (tid, comm, role) in [
            (vm.pid + 90, format!("vhost-{}", vm.pid), ThreadRole::Vhost),
            (
                vm.pid + 91,
                "IO iothread0".to_string(),
                ThreadRole::IoThread,
            ),
        ] {
            if !vm.threads.iter().any(|t| t.tid == tid) {
                vm.threads.push(HelperThread { tid, comm, role });
            }
        }
        for t in &vm.threads {
            g.worker(&host, t.tid, &t.comm);
        }
        for v in &vm.vcpus {
            g.worker(&host, v.tid, &format!("CPU {}/KVM", v.vcpu));
        }
    }
    let mut preemptor_spans: HashMap<u32, Vec<(i64, i64)>> = HashMap::new();
    // Wake-ups each helper gives: (time, thread woken).
    let mut wakes: HashMap<u32, Vec<(i64, u32)>> = HashMap::new();
    for vm in &model.vms {
        let (vhost, io) = (vm.pid + 90, vm.pid + 91);
        for (k, v) in vm.vcpus.iter().enumerate() {
            let next = vm.vcpus[(k + 1) % vm.vcpus.len()].tid;
            for iv in &v.intervals {
                let (state, by) = match &iv.state {
                    VcpuState::Guest
                    | VcpuState::Hypervisor { .. }
                    | VcpuState::UserSpace { .. } => (State::Running, None),
                    VcpuState::Ready => (State::Preempted, None),
                    VcpuState::Preempted { by } => {
                        let tid = match by {
                            Preemptor::SameVm { tid } | Preemptor::OtherVm { tid, .. } => {
                                Some(*tid)
                            }
                            Preemptor::HostProcess { tid, comm }
                            | Preemptor::KernelThread { tid, comm } => {
                                g.worker(&host, *tid, comm);
                                preemptor_spans
                                    .entry(*tid)
                                    .or_default()
                                    .push((iv.start, iv.end));
                                Some(*tid)
                            }
                            Preemptor::Unknown => None,
                        };
                        (State::Preempted, tid.filter(|t| *t != v.tid))
                    }
                    VcpuState::Waiting { cause } => {
                        let waker = match cause {
                            WaitCause::Network => Some(vhost),
                            WaitCause::Disk => Some(io),
                            WaitCause::Task if next != v.tid => Some(next),
                            WaitCause::Task => Some(vm.pid),
                            WaitCause::Timer => None,
                            WaitCause::Other => None,
                        };
                        match waker {
                            Some(w) => {
                                if w == vhost || w == io || w == vm.pid {
                                    wakes.entry(w).or_default().push((iv.end, v.tid));
                                } else {
                                    g.wakeup(w, v.tid, iv.end);
                                }
                                (State::Blocked, None)
                            }
                            None if *cause == WaitCause::Timer => (State::Timer, None),
                            None => (State::Blocked, None),
                        }
                    }
                    VcpuState::Unknown => continue,
                };
                g.segment(v.tid, iv.start, iv.end, state, by);
            }
        }
    }
    // A helper runs for 40 µs before each wake-up it gives, and is blocked in between.
    let start = model.hosts[0].start_ns;
    let mut helpers: Vec<(u32, Vec<(i64, u32)>)> = wakes.into_iter().collect();
    helpers.sort_by_key(|h| h.0);
    for (tid, mut list) in helpers {
        list.sort_unstable();
        let mut t = start;
        for &(at, woken) in &list {
            let run = (at - 40_000).max(t);
            g.segment(tid, t, run, State::Blocked, None);
            g.segment(tid, run, at, State::Running, None);
            t = t.max(at);
            g.wakeup(tid, woken, at);
        }
    }
    let mut spans: Vec<(u32, Vec<(i64, i64)>)> = preemptor_spans.into_iter().collect();
    spans.sort_by_key(|s| s.0);
    for (tid, mut list) in spans {
        list.sort_unstable();
        let mut end = i64::MIN;
        for (s, e) in list {
            let s = s.max(end);
            if e > s {
                g.segment(tid, s, e, State::Running, None);
                end = e;
            }
        }
    }
    g.finish()
}
