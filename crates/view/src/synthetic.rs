//! Synthetic models for tests, benchmarks and the browser test: a few VMs whose vCPUs run
//! through every state, with durations from sub-microsecond exits to long waits, and totals
//! and exit tables consistent with the intervals. Deterministic for a given seed.
//!
//! [`with_analyses`] adds to such a model what the overcommitment, memory, phase and graph
//! analyses would have found (derived from its intervals); [`story()`] is a small model whose
//! every figure, wait and critical path is known by construction.

mod derive;
pub mod story;

pub use derive::with_analyses;
pub use story::story;

use virtflow_model::{
    ExitStat, HelperThread, Host, Interval, Isa, Model, Preemptor, StateTimes, ThreadRole, Vcpu,
    VcpuState, VectorStat, Vm, WaitCause,
};

/// A small, fast pseudo-random generator (xorshift64*), enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const EXITS: [(u64, &str); 5] = [
    (1, "EXTERNAL_INTERRUPT"),
    (12, "HLT"),
    (30, "IO_INSTRUCTION"),
    (32, "MSR_WRITE"),
    (48, "EPT_VIOLATION"),
];

/// `vms` VMs of `vcpus` vCPUs, each with about `intervals` intervals, starting at `t0` ns.
pub fn model(vms: usize, vcpus: usize, intervals: usize, seed: u64) -> Model {
    model_at(vms, vcpus, intervals, seed, 1_000_000_000)
}

pub fn model_at(vms: usize, vcpus: usize, intervals: usize, seed: u64, t0: i64) -> Model {
    let mut rng = Rng(seed.max(1));
    let pids: Vec<u32> = (0..vms as u32).map(|i| 4000 + 100 * i).collect();
    let mut out = Model {
        traces: vec!["(synthetic)".to_string()],
        hosts: vec![Host {
            name: "synthetic-host".to_string(),
            cpus: 8,
            start_ns: t0,
            end_ns: t0,
            ..Host::default()
        }],
        ..Model::default()
    };
    let mut end_max = t0;
    for (vi, &pid) in pids.iter().enumerate() {
        let mut vm = Vm {
            pid,
            name: format!("vm{vi}"),
            host: "synthetic-host".to_string(),
            threads: vec![HelperThread {
                tid: pid,
                comm: "qemu-system-x86".to_string(),
                role: ThreadRole::MainLoop,
            }],
            injections: vec![VectorStat {
                vector: 0xec,
                class: WaitCause::Timer,
                count: 0,
            }],
            ..Vm::default()
        };
        let mut exits: Vec<ExitStat> = EXITS
            .iter()
            .map(|&(code, name)| ExitStat {
                reason: name.to_string(),
                isa: Some(Isa::Vmx),
                code,
                min_ns: u64::MAX,
                ..ExitStat::default()
            })
            .collect();
        for c in 0..vcpus as u32 {
            let tid = pid + 1 + c;
            let mut t = t0;
            let mut v = Vcpu {
                vcpu: c,
                tid,
                time_ns: StateTimes::default(),
                intervals: Vec::with_capacity(intervals),
                ..Vcpu::default()
            };
            v.intervals.push(Interval {
                start: t,
                end: t + 20_000,
                state: VcpuState::Unknown,
            });
            t += 20_000;
            while v.intervals.len() < intervals {
                // guest run, then an exit; now and then a block and a wake-up, or a preemption.
                let run = 2_000 + rng.below(60_000) as i64;
                v.intervals.push(Interval {
                    start: t,
                    end: t + run,
                    state: VcpuState::Guest,
                });
                t += run;
                let e = rng.below(EXITS.len() as u64) as usize;
                let (code, _) = EXITS[e];
                let d = 300 + rng.below(3_000) as i64;
                v.intervals.push(Interval {
                    start: t,
                    end: t + d,
                    state: VcpuState::Hypervisor {
                        isa: Isa::Vmx,
                        code,
                    },
                });
                let stat = &mut exits[e];
                stat.count += 1;
                stat.total_ns += d as u64;
                stat.min_ns = stat.min_ns.min(d as u64);
                stat.max_ns = stat.max_ns.max(d as u64);
                t += d;
                if code == 30 {
                    let u = 2_000 + rng.below(20_000) as i64;
                    v.intervals.push(Interval {
                        start: t,
                        end: t + u,
                        state: VcpuState::UserSpace { reason: 2 },
                    });
                    t += u;
                }
                if code == 12 {
                    let cause = WaitCause::ALL[rng.below(5) as usize];
                    let w = 50_000 + rng.below(2_000_000) as i64;
                    v.intervals.push(Interval {
                        start: t,
                        end: t + w,
                        state: VcpuState::Waiting { cause },
                    });
                    t += w;
                    let r = 1_000 + rng.below(30_000) as i64;
                    v.intervals.push(Interval {
                        start: t,
                        end: t + r,
                        state: VcpuState::Ready,
                    });
                    t += r;
                    if cause == WaitCause::Timer {
                        vm.injections[0].count += 1;
                    }
                } else if rng.below(12) == 0 {
                    let by = match rng.below(4) {
                        0 => Preemptor::SameVm {
                            tid: pid + 1 + (c + 1) % vcpus as u32,
                        },
                        1 => {
                            let other = pids[(vi + 1) % pids.len()];
                            Preemptor::OtherVm {
                                pid: other,
                                tid: other + 1,
                            }
                        }
                        2 => Preemptor::HostProcess {
                            tid: 900,
                            comm: "backup".to_string(),
                        },
                        _ => Preemptor::KernelThread {
                            tid: 77,
                            comm: "kworker/1:2".to_string(),
                        },
                    };
                    let p = 20_000 + rng.below(500_000) as i64;
                    v.intervals.push(Interval {
                        start: t,
                        end: t + p,
                        state: VcpuState::Preempted { by },
                    });
                    t += p;
                }
            }
            v.intervals.truncate(intervals.max(1));
            for iv in &v.intervals {
                v.time_ns.add(&iv.state, (iv.end - iv.start) as u64);
            }
            end_max = end_max.max(v.intervals.last().map_or(t0, |i| i.end));
            vm.vcpus.push(v);
        }
        for e in &mut exits {
            e.mean_ns = e.total_ns.checked_div(e.count).unwrap_or(0);
            if e.count == 0 {
                e.min_ns = 0;
            }
        }
        vm.exits = exits;
        out.vms.push(vm);
    }
    out.hosts[0].end_ns = end_max;
    out.read.events = out
        .vms
        .iter()
        .flat_map(|vm| &vm.vcpus)
        .map(|v| v.intervals.len() as u64)
        .sum();
    out
}
