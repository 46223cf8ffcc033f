//! What the overcommitment, memory and phase analyses found, shaped for the sinks: per VM its
//! verdict, its steal split by what the host was doing, its steal and the memory it held over
//! time, and its phases; per host its runnable vCPUs against its pCPUs. Series are per bucket
//! of the VM's host (`Host.buckets`); times are relative to an origin the caller gives (the
//! viewer's, so that a browser's numbers hold them exactly).

use serde::Serialize;
use virtflow_model::{Buckets, Model, Vm};

/// Said wherever memory would be shown of a trace without page events.
pub const MEMORY_UNTRACED: &str = "This trace has no page events, so the memory each VM \
     holds cannot be followed. Record them with `virtflow record --memory` (the page \
     allocator's mm_page_alloc and mm_page_free, and KSM's merges where the kernel has them).";

#[derive(Clone, Debug, Serialize)]
pub struct Series {
    /// Where bucket 0 starts (relative to the origin), and each bucket's width (ns).
    pub start: i64,
    pub step: i64,
}

impl Series {
    fn of(b: &Buckets, origin: i64) -> Series {
        Series {
            start: b.start_ns - origin,
            step: b.step_ns,
        }
    }

    /// Where bucket `i` starts (relative).
    pub fn at(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct VmSteal {
    pub steal_ns: u64,
    pub steal_share: f64,
    pub while_overcommitted_ns: u64,
    pub while_cpu_idle_ns: u64,
    /// The rest of the steal: neither (the host was not overcommitted and no pCPU was idle —
    /// the scheduler's balance between the runnable tasks).
    pub otherwise_ns: u64,
    pub verdict: String,
    /// Per bucket: the VM's vCPUs runnable but not running, on average (steal ÷ bucket width).
    pub vcpus: Vec<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct VmMemoryView {
    pub allocated_bytes: u64,
    pub freed_bytes: u64,
    pub net_bytes: i64,
    pub peak_bytes: i64,
    pub ksm_merged_pages: u64,
    /// Per bucket: the bytes it held (allocated during the trace, not yet freed) at the
    /// bucket's end.
    pub held: Vec<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PhaseView {
    pub start: i64,
    pub end: i64,
    pub name: String,
    pub color: &'static str,
}

/// A line's colour for each VM in the charts, by its index (Okabe–Ito, then greys).
pub fn vm_color(i: usize) -> &'static str {
    const PALETTE: [&str; 8] = [
        "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7a6a00", "#555555",
    ];
    PALETTE[i % PALETTE.len()]
}

/// A phase's colour by its name: the clustering's kinds of work keep theirs in every sink;
/// another name gets one of a few others, always the same for the same name.
pub fn phase_color(name: &str) -> &'static str {
    match name {
        "cpu-intensive" => "#e07b39",
        "disk-intensive" => "#6a5acd",
        "network-intensive" => "#2a9d8f",
        "idle" => "#c4c4c4",
        _ => {
            const OTHERS: [&str; 4] = ["#8c564b", "#b5b026", "#17becf", "#9467bd"];
            let h = name
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
            OTHERS[h as usize % OTHERS.len()]
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct VmAnalyses {
    pub name: String,
    /// Its lines' colour in the charts.
    pub color: &'static str,
    /// Its host's index in the model.
    pub host: usize,
    pub vcpus: usize,
    pub steal: VmSteal,
    /// `None` when its host's trace has no page events.
    pub memory: Option<VmMemoryView>,
    pub phases: Vec<PhaseView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HostAnalyses {
    pub name: String,
    pub pcpus: u32,
    /// The buckets of its series and its VMs' (`None` when the run kept no series).
    pub series: Option<Series>,
    /// Per bucket: vCPUs runnable on average (runnable vCPU time ÷ bucket width).
    pub runnable: Vec<f64>,
    pub mean_runnable: f64,
    pub max_runnable: u32,
    pub overcommitted_ns: u64,
    pub verdict: String,
    pub memory_traced: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Analyses {
    pub hosts: Vec<HostAnalyses>,
    pub vms: Vec<VmAnalyses>,
    /// [`MEMORY_UNTRACED`] when no host's trace has page events.
    pub memory_note: Option<String>,
    /// Whether some VM has phases (a clustering by windows named them).
    pub phases: bool,
}

/// Bytes held at the end of each bucket: the running sum of allocated minus freed.
pub fn held(allocated: &[u64], freed: &[u64]) -> Vec<i64> {
    let n = allocated.len().max(freed.len());
    let mut held = 0i64;
    (0..n)
        .map(|i| {
            held += allocated.get(i).copied().unwrap_or(0) as i64
                - freed.get(i).copied().unwrap_or(0) as i64;
            held
        })
        .collect()
}

fn per_bucket(values: &[u64], step: i64) -> Vec<f64> {
    values
        .iter()
        .map(|&v| v as f64 / step.max(1) as f64)
        .collect()
}

fn vm_analyses(model: &Model, index: usize, origin: i64) -> VmAnalyses {
    let vm: &Vm = &model.vms[index];
    let host = model
        .hosts
        .iter()
        .position(|h| h.name == vm.host)
        .unwrap_or(0);
    let h = model.hosts.get(host);
    let step = h.and_then(|h| h.buckets).map_or(1, |b| b.step_ns);
    let oc = &vm.overcommit;
    let memory = h.filter(|h| h.memory.traced).map(|_| VmMemoryView {
        allocated_bytes: vm.memory.allocated_bytes,
        freed_bytes: vm.memory.freed_bytes,
        net_bytes: vm.memory.net_bytes,
        peak_bytes: vm.memory.peak_bytes,
        ksm_merged_pages: vm.memory.ksm_merged_pages,
        held: held(&vm.memory.allocated, &vm.memory.freed),
    });
    VmAnalyses {
        name: vm.name.clone(),
        color: vm_color(index),
        host,
        vcpus: vm.vcpus.len(),
        steal: VmSteal {
            steal_ns: oc.steal_ns,
            steal_share: oc.steal_share,
            while_overcommitted_ns: oc.while_overcommitted_ns,
            while_cpu_idle_ns: oc.while_cpu_idle_ns,
            otherwise_ns: oc
                .steal_ns
                .saturating_sub(oc.while_overcommitted_ns + oc.while_cpu_idle_ns),
            verdict: oc.verdict.clone(),
            vcpus: per_bucket(&oc.steal, step),
        },
        memory,
        phases: vm
            .phases
            .iter()
            .map(|p| PhaseView {
                start: p.start - origin,
                end: p.end - origin,
                name: p.name.clone(),
                color: phase_color(&p.name),
            })
            .collect(),
    }
}

impl Analyses {
    /// The analyses of `model`, times relative to `origin`.
    pub fn new(model: &Model, origin: i64) -> Analyses {
        let hosts: Vec<HostAnalyses> = model
            .hosts
            .iter()
            .map(|h| {
                let oc = &h.overcommit;
                HostAnalyses {
                    name: h.name.clone(),
                    pcpus: if oc.pcpus > 0 { oc.pcpus } else { h.cpus },
                    series: h.buckets.as_ref().map(|b| Series::of(b, origin)),
                    runnable: per_bucket(&oc.runnable, h.buckets.map_or(1, |b| b.step_ns)),
                    mean_runnable: oc.mean_runnable,
                    max_runnable: oc.max_runnable,
                    overcommitted_ns: oc.overcommitted_ns,
                    verdict: oc.verdict.clone(),
                    memory_traced: h.memory.traced,
                }
            })
            .collect();
        let vms: Vec<VmAnalyses> = (0..model.vms.len())
            .map(|i| vm_analyses(model, i, origin))
            .collect();
        Analyses {
            memory_note: (!hosts.iter().any(|h| h.memory_traced))
                .then(|| MEMORY_UNTRACED.to_string()),
            phases: vms.iter().any(|v| !v.phases.is_empty()),
            hosts,
            vms,
        }
    }
}
