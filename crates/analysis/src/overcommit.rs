//! Who steals from whom, at the end of the pass: each VM's steal (preempted + ready) with the
//! share of it spent while the host had more runnable vCPUs than pCPUs and while a pCPU idled,
//! the host's runnable vCPUs per pCPU over time, the matrix of who preempted whom, and a
//! verdict in plain words for each VM and the host.
//!
//! The verdict names the cause a host operator can act on, from who held the pCPUs its vCPUs
//! wanted — for a preemption, the task that ran instead; for a wait after a wake-up, the task
//! that ran until the vCPU got the pCPU (the idle task holds it for no one: that is the
//! wake-up's latency) — by the kind that held them longest: vCPUs (its own or other VMs'),
//! its own helper threads, or the host's tasks (processes and kernel threads):
//! - **its own helper threads** (I/O thread, vhost) compete with its vCPUs, or its own vCPUs
//!   outnumber the pCPUs they may use;
//! - **pinning** — the VM's vCPUs waited while another pCPU was idle most of that time: their
//!   affinity (or the scheduler) kept them where the culprit ran;
//! - **overcommitment** — other VMs' vCPUs held them, and more vCPUs were runnable than the
//!   host has pCPUs most of that time; with fewer, plain sharing of pCPUs with that VM;
//! - **a noisy host process** or **a kernel thread** took the pCPUs.

use virtflow_model::{
    Culprit, Host, HostOvercommit, PreemptionMatrix, PreemptionStat, Preemptor, Vm, VmOvercommit,
};

use crate::w2a::Analyzer;

/// Below this share of its vCPU time, a VM's steal is not worth a cause.
const NOTABLE_STEAL: f64 = 0.02;

/// Of a steal, this share in one condition makes that condition its cause.
const MOSTLY: f64 = 0.5;

/// `ready_by`: per VM (by pid), its vCPUs' ready time by the task that held the pCPU until
/// they ran. Runs after the analyzer's `finish`, which folded the levels.
pub(crate) fn fill(
    an: &mut Analyzer,
    host: &mut Host,
    vms: &mut [Vm],
    ready_by: &[(u32, Vec<PreemptionStat>)],
) {
    let span = (host.end_ns - host.start_ns).max(1) as f64;
    let keeps_series = an.keeps_series();
    let levels = &mut an.levels;
    let overcommitted_ns = levels.totals().overcommitted;
    let per_cpu: Vec<Vec<u64>> = if keeps_series {
        let mut v: Vec<Vec<u64>> = levels.per_cpu.iter().map(|s| s.finish(&an.clock)).collect();
        v.resize(host.cpus as usize, vec![0; an.clock.buckets().count]);
        v
    } else {
        Vec::new()
    };
    let runnable = sum_series(per_cpu.iter());
    let mut ho = HostOvercommit {
        pcpus: host.cpus,
        max_runnable: levels.max_runnable,
        mean_runnable: levels.runnable_ns as f64 / span,
        overcommitted_ns,
        runnable,
        runnable_per_cpu: per_cpu,
        matrix: matrix(vms),
        verdict: String::new(),
    };
    let step = host.buckets.map(|b| (b.start_ns, b.step_ns));
    for i in 0..vms.len() {
        let vm = &vms[i];
        let mut oc = vm.overcommit.clone();
        oc.steal_ns = vm
            .vcpus
            .iter()
            .map(|v| v.time_ns.preempted + v.time_ns.ready)
            .sum();
        let observed: u64 = vm
            .vcpus
            .iter()
            .map(|v| v.time_ns.total() - v.time_ns.unknown)
            .sum();
        oc.steal_share = if observed > 0 {
            oc.steal_ns as f64 / observed as f64
        } else {
            0.0
        };
        oc.steal = sum_series(
            vm.vcpus
                .iter()
                .filter_map(|v| v.activity.as_ref())
                .flat_map(|a| [&a.preempted_ns, &a.ready_ns]),
        );
        let ready = ready_by
            .iter()
            .find(|(pid, _)| *pid == vm.pid)
            .map_or(&[][..], |(_, r)| r.as_slice());
        oc.verdict = vm_verdict(vm, &oc, ready, vms, step);
        vms[i].overcommit = oc;
    }
    ho.verdict = host_verdict(host, &ho, vms);
    host.overcommit = ho;
}

/// Element-wise sum of equally long series.
fn sum_series<'a>(series: impl Iterator<Item = &'a Vec<u64>>) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for s in series {
        if out.len() < s.len() {
            out.resize(s.len(), 0);
        }
        for (a, b) in out.iter_mut().zip(s) {
            *a += b;
        }
    }
    out
}

/// Who the analysis's preemptor is, in the host's terms.
fn culprit(by: &Preemptor, victim: &Vm, vms: &[Vm]) -> Culprit {
    match by {
        Preemptor::SameVm { .. } => Culprit::Vm {
            name: victim.name.clone(),
        },
        Preemptor::OtherVm { pid, .. } => Culprit::Vm {
            name: vms
                .iter()
                .find(|v| v.pid == *pid)
                .map_or_else(|| format!("pid {pid}"), |v| v.name.clone()),
        },
        Preemptor::HostProcess { comm, .. } => Culprit::HostProcess { comm: comm.clone() },
        Preemptor::KernelThread { comm, .. } => Culprit::KernelThread {
            comm: kernel_name(comm),
        },
        Preemptor::Unknown => Culprit::Unknown,
    }
}

/// A kernel thread's name without its CPU (`kworker/1:2` → `kworker`), so that the threads of
/// one kind add up.
fn kernel_name(comm: &str) -> String {
    comm.split('/').next().unwrap_or(comm).to_string()
}

fn matrix(vms: &[Vm]) -> PreemptionMatrix {
    let mut preemptors: Vec<Culprit> = vms
        .iter()
        .map(|v| Culprit::Vm {
            name: v.name.clone(),
        })
        .collect();
    let mut others: Vec<(Culprit, u64)> = Vec::new();
    for vm in vms {
        for p in &vm.preemptions {
            let c = culprit(&p.by, vm, vms);
            if matches!(c, Culprit::Vm { .. }) {
                continue;
            }
            match others.iter_mut().find(|(o, _)| *o == c) {
                Some(o) => o.1 += p.total_ns,
                None => others.push((c, p.total_ns)),
            }
        }
    }
    others.sort_by_key(|o| std::cmp::Reverse(o.1));
    preemptors.extend(others.into_iter().map(|(c, _)| c));
    let ns = vms
        .iter()
        .map(|vm| {
            let mut row = vec![0u64; preemptors.len()];
            for p in &vm.preemptions {
                let c = culprit(&p.by, vm, vms);
                if let Some(j) = preemptors.iter().position(|x| *x == c) {
                    row[j] += p.total_ns;
                }
            }
            row
        })
        .collect();
    PreemptionMatrix {
        victims: vms.iter().map(|v| v.name.clone()).collect(),
        preemptors,
        ns,
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn seconds(ns: u64) -> String {
    format!("{:.2} s", ns as f64 / 1e9)
}

fn culprit_words(c: &Culprit) -> String {
    match c {
        Culprit::Vm { name } => format!("VM {name}"),
        Culprit::HostProcess { comm } => format!("host process {comm}"),
        Culprit::KernelThread { comm } => format!("kernel thread {comm}"),
        Culprit::Unknown => "tasks the trace does not show".to_string(),
    }
}

/// When the steal happened: the buckets holding at least a quarter of the busiest one's, as
/// a range in seconds from the host's start.
fn when(steal: &[u64], step: Option<(i64, i64)>) -> Option<String> {
    let (_, step) = step?;
    let max = *steal.iter().max()?;
    if max == 0 {
        return None;
    }
    let first = steal.iter().position(|v| *v * 4 >= max)?;
    let last = steal.iter().rposition(|v| *v * 4 >= max)?;
    let at = |i: usize| i as f64 * step as f64 / 1e9;
    Some(format!("{:.1}–{:.1} s", at(first), at(last + 1)))
}

/// The kind of task that held a pCPU a VM's vCPU wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holder {
    OwnVcpus,
    OtherVms,
    OwnHelpers,
    /// Host processes and kernel threads.
    Host,
    Unknown,
}

fn vm_verdict(
    vm: &Vm,
    oc: &VmOvercommit,
    ready: &[PreemptionStat],
    vms: &[Vm],
    step: Option<(i64, i64)>,
) -> String {
    let share = 100.0 * oc.steal_share;
    if oc.steal_share < NOTABLE_STEAL {
        return format!(
            "verdict: {} lost little to sharing its host's pCPUs ({share:.1}% of its vCPU time \
             runnable but not running)",
            vm.name
        );
    }
    // Who held the pCPUs it wanted, and for how long.
    let mut by: Vec<(Culprit, u64, Holder)> = Vec::new();
    let vcpu_tids: Vec<u32> = vm.vcpus.iter().map(|v| v.tid).collect();
    for p in vm.preemptions.iter().chain(ready) {
        let c = culprit(&p.by, vm, vms);
        let holder = match p.by {
            Preemptor::SameVm { tid } if vcpu_tids.contains(&tid) => Holder::OwnVcpus,
            Preemptor::SameVm { .. } => Holder::OwnHelpers,
            Preemptor::OtherVm { .. } => Holder::OtherVms,
            Preemptor::HostProcess { .. } | Preemptor::KernelThread { .. } => Holder::Host,
            Preemptor::Unknown => Holder::Unknown,
        };
        match by.iter_mut().find(|(x, _, h)| *x == c && *h == holder) {
            Some(e) => e.1 += p.total_ns,
            None => by.push((c, p.total_ns, holder)),
        }
    }
    by.sort_by_key(|b| std::cmp::Reverse(b.1));
    let held: u64 = by.iter().map(|b| b.1).sum();
    let mut s = format!(
        "verdict: {} lost {share:.1}% of its vCPU time ({}) runnable but not running",
        vm.name,
        seconds(oc.steal_ns)
    );
    if let Some(w) = when(&oc.steal, step) {
        s.push_str(&format!(", mostly {w}"));
    }
    let idle = oc.while_cpu_idle_ns as f64 / oc.steal_ns.max(1) as f64;
    let over = oc.while_overcommitted_ns as f64 / oc.steal_ns.max(1) as f64;
    let time =
        |of: &[Holder]| -> u64 { by.iter().filter(|b| of.contains(&b.2)).map(|b| b.1).sum() };
    // The kind that held them longest: vCPUs (its own and other VMs'), its own helpers, the
    // host's tasks.
    let vcpus = [Holder::OwnVcpus, Holder::OtherVms];
    let kinds: [&[Holder]; 3] = [&vcpus, &[Holder::OwnHelpers], &[Holder::Host]];
    let top_kind = kinds
        .iter()
        .map(|k| (*k, time(k)))
        .filter(|(_, ns)| *ns > 0)
        .max_by_key(|(_, ns)| *ns)
        .map(|(k, _)| k);
    let Some((top, ns, holder)) = top_kind
        .and_then(|k| by.iter().find(|b| k.contains(&b.2)))
        .cloned()
    else {
        if over >= MOSTLY {
            s.push_str(&format!(
                "; cause: overcommitment — the host had more runnable vCPUs than pCPUs during \
                 {:.0}% of its steal",
                100.0 * over
            ));
        } else {
            s.push_str(&format!(
                "; it waited for a pCPU after being woken, {:.0}% of it while another pCPU \
                 idled",
                100.0 * idle
            ));
        }
        return s;
    };
    s.push_str(&format!(
        "; {:.0}% of the pCPU time it waited for went to {}",
        percent(ns, held),
        if holder == Holder::OwnHelpers {
            "its own helper threads".to_string()
        } else {
            culprit_words(&top)
        }
    ));
    let cause = if holder == Holder::OwnHelpers {
        "cause: its own helper threads (I/O thread, vhost) compete with its vCPUs for the same \
         pCPUs"
            .to_string()
    } else if holder != Holder::Host && time(&[Holder::OwnVcpus]) >= time(&[Holder::OtherVms]) {
        "cause: its own vCPUs outnumber the pCPUs they may run on".to_string()
    } else if idle >= MOSTLY {
        format!(
            "cause: pinning — another pCPU was idle during {:.0}% of its steal, so its vCPUs \
             could only run where {} ran (check the CPU affinity of both)",
            100.0 * idle,
            culprit_words(&top)
        )
    } else if holder != Holder::Host && over >= MOSTLY {
        format!(
            "cause: overcommitment — the host had more runnable vCPUs than pCPUs during {:.0}% \
             of its steal",
            100.0 * over
        )
    } else {
        match &top {
            Culprit::HostProcess { comm } => format!("cause: a noisy host process, {comm}"),
            Culprit::KernelThread { comm } => format!("cause: kernel thread {comm}"),
            other => format!("cause: sharing pCPUs with {}", culprit_words(other)),
        }
    };
    s.push_str("; ");
    s.push_str(&cause);
    s
}

fn host_verdict(host: &Host, ho: &HostOvercommit, vms: &[Vm]) -> String {
    let mut losers: Vec<&Vm> = vms
        .iter()
        .filter(|v| v.overcommit.steal_share >= NOTABLE_STEAL)
        .collect();
    losers.sort_by(|a, b| {
        b.overcommit
            .steal_share
            .total_cmp(&a.overcommit.steal_share)
    });
    let span = (host.end_ns - host.start_ns).max(1) as u64;
    let mut s = format!(
        "verdict: {} pCPUs, {:.2} vCPUs runnable on average (at most {}), more runnable than \
         pCPUs {:.1}% of the time",
        ho.pcpus,
        ho.mean_runnable,
        ho.max_runnable,
        percent(ho.overcommitted_ns, span)
    );
    if losers.is_empty() {
        s.push_str("; no VM loses more than 2% of its vCPU time to sharing");
        return s;
    }
    let list: Vec<String> = losers
        .iter()
        .map(|v| format!("{} {:.0}%", v.name, 100.0 * v.overcommit.steal_share))
        .collect();
    s.push_str(&format!(
        "; {} of {} VMs lose time to sharing: {}",
        losers.len(),
        vms.len(),
        list.join(", ")
    ));
    let steal: u64 = losers.iter().map(|v| v.overcommit.steal_ns).sum();
    let idle: u64 = losers.iter().map(|v| v.overcommit.while_cpu_idle_ns).sum();
    let over: u64 = losers
        .iter()
        .map(|v| v.overcommit.while_overcommitted_ns)
        .sum();
    if idle as f64 >= MOSTLY * steal as f64 {
        s.push_str(
            "; mostly while a pCPU was idle: pinning (or the scheduler) keeps them off free \
             pCPUs",
        );
    } else if over as f64 >= MOSTLY * steal as f64 {
        s.push_str("; mostly while the host was overcommitted");
    }
    s
}
