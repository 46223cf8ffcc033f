//! A small model whose every figure is known by construction: two VMs on a host of two pCPUs
//! for 100 ms, with the helper threads, waits, preemptions, memory and phases that the sinks'
//! tests check piece by piece. Times below are milliseconds after [`T0`].
//!
//! VM `web` (pid 4000): vCPU 0 (tid 4001), vCPU 1 (4002), vhost thread `vhost-4000` (4010), I/O
//! thread `IO iothread0` (4011). VM `batch` (pid 5000): vCPU 0 (5001), vCPU 1 (5002). Host
//! threads `sshd` (800) and `backup` (900).
//!
//! - web vCPU 0: guest 0–10; waits for the network 10–30, woken by vhost at 30; ready 30–33
//!   (batch vCPU 0 holds the pCPU); guest 33–50, an HLT exit 50–51; waits for the disk 51–70,
//!   woken by the I/O thread at 70; guest 70–80; preempted by `backup` 80–90; guest 90–100.
//! - web vCPU 1: guest 0–20; waits 20–45 for an IPI vCPU 0 sends at 45; guest 45–60; waits for
//!   its timer 60–95; guest 95–100.
//! - vhost: runs 0–5; blocked 5–18 until `sshd` wakes it at 18; preempted by batch vCPU 0
//!   18–24; runs 24–30 and wakes vCPU 0; blocked from 30.
//! - I/O thread: blocked 0–51; runs 51–60 (submits); waits for the disk 60–66; runs 66–70 and
//!   wakes vCPU 0; blocked from 70.
//! - sshd: blocked 0–8; waits for a timer 8–12; runs 12–18 and wakes vhost; blocked from 18.
//! - backup: runs 80–90 (on web vCPU 0's pCPU).
//! - batch vCPU 0: guest 0–40; preempted by web vCPU 0 40–44; guest 44–100.
//! - batch vCPU 1: guest 0–10; ready 10–12; guest 12–60; waits for its timer 60–80; ready
//!   80–81; guest 81–100.
//!
//! So web vCPU 0's critical path over the whole trace is: itself 0–10; sshd's timer 10–12 and
//! run 12–18; vhost preempted 18–24 (by batch vCPU 0) and running 24–30; itself preempted
//! 30–33 and running 33–51; the I/O thread running 51–60, waiting for the disk 60–66, running
//! 66–70; itself 70–100 (preempted by backup 80–90).
//!
//! Memory (1 ms buckets): web allocates 2 MiB in each of its first 20 ms and frees 1 MiB in
//! each of 60–70 ms (held: 40 MiB at 20 ms, 30 MiB from 70 ms; 12 pages merged by KSM); batch
//! allocates 1 MiB in each of its first 10 ms (10 MiB). Phases: web network-intensive 0–50,
//! disk-intensive 50–70, cpu-intensive 70–100; batch cpu-intensive 0–60, idle 60–100.

use virtflow_graph::State;
use virtflow_model::{
    ExitStat, HelperThread, Host, Interval, Isa, Model, Phase, Preemptor, StateTimes, ThreadRole,
    Vcpu, VcpuState, Vm, WaitCause,
};

use super::derive::{memory, overcommit, GraphMaker};

/// Where the story starts (ns).
pub const T0: i64 = 1_000_000_000;
/// One millisecond, the story's unit and its buckets' width.
pub const MS: i64 = 1_000_000;
/// The host's name.
pub const HOST: &str = "synthetic-host";

pub const WEB: u32 = 4000;
pub const WEB_VCPU0: u32 = 4001;
pub const WEB_VCPU1: u32 = 4002;
pub const VHOST: u32 = 4010;
pub const IO: u32 = 4011;
pub const BATCH: u32 = 5000;
pub const BATCH_VCPU0: u32 = 5001;
pub const BATCH_VCPU1: u32 = 5002;
pub const SSHD: u32 = 800;
pub const BACKUP: u32 = 900;

/// `T0 + ms` milliseconds.
pub fn at(ms: i64) -> i64 {
    T0 + ms * MS
}

fn interval(from: i64, to: i64, state: VcpuState) -> Interval {
    Interval {
        start: at(from),
        end: at(to),
        state,
    }
}

fn vcpu(n: u32, tid: u32, intervals: Vec<Interval>) -> Vcpu {
    let mut time_ns = StateTimes::default();
    for iv in &intervals {
        time_ns.add(&iv.state, (iv.end - iv.start) as u64);
    }
    Vcpu {
        vcpu: n,
        tid,
        time_ns,
        intervals,
        ..Vcpu::default()
    }
}

fn waiting(cause: WaitCause) -> VcpuState {
    VcpuState::Waiting { cause }
}

const HLT: VcpuState = VcpuState::Hypervisor {
    isa: Isa::Vmx,
    code: 12,
};

fn vms() -> Vec<Vm> {
    use VcpuState::{Guest, Ready};
    let web = Vm {
        pid: WEB,
        name: "web".to_string(),
        host: HOST.to_string(),
        threads: vec![
            HelperThread {
                tid: WEB,
                comm: "qemu-system-x86".to_string(),
                role: ThreadRole::MainLoop,
            },
            HelperThread {
                tid: VHOST,
                comm: "vhost-4000".to_string(),
                role: ThreadRole::Vhost,
            },
            HelperThread {
                tid: IO,
                comm: "IO iothread0".to_string(),
                role: ThreadRole::IoThread,
            },
        ],
        exits: vec![ExitStat {
            reason: "HLT".to_string(),
            isa: Some(Isa::Vmx),
            code: 12,
            count: 1,
            total_ns: MS as u64,
            min_ns: MS as u64,
            mean_ns: MS as u64,
            max_ns: MS as u64,
        }],
        vcpus: vec![
            vcpu(
                0,
                WEB_VCPU0,
                vec![
                    interval(0, 10, Guest),
                    interval(10, 30, waiting(WaitCause::Network)),
                    interval(30, 33, Ready),
                    interval(33, 50, Guest),
                    interval(50, 51, HLT),
                    interval(51, 70, waiting(WaitCause::Disk)),
                    interval(70, 80, Guest),
                    interval(
                        80,
                        90,
                        VcpuState::Preempted {
                            by: Preemptor::HostProcess {
                                tid: BACKUP,
                                comm: "backup".to_string(),
                            },
                        },
                    ),
                    interval(90, 100, Guest),
                ],
            ),
            vcpu(
                1,
                WEB_VCPU1,
                vec![
                    interval(0, 20, Guest),
                    interval(20, 45, waiting(WaitCause::Task)),
                    interval(45, 60, Guest),
                    interval(60, 95, waiting(WaitCause::Timer)),
                    interval(95, 100, Guest),
                ],
            ),
        ],
        ..Vm::default()
    };
    let batch = Vm {
        pid: BATCH,
        name: "batch".to_string(),
        host: HOST.to_string(),
        threads: vec![HelperThread {
            tid: BATCH,
            comm: "qemu-system-x86".to_string(),
            role: ThreadRole::MainLoop,
        }],
        vcpus: vec![
            vcpu(
                0,
                BATCH_VCPU0,
                vec![
                    interval(0, 40, Guest),
                    interval(
                        40,
                        44,
                        VcpuState::Preempted {
                            by: Preemptor::OtherVm {
                                pid: WEB,
                                tid: WEB_VCPU0,
                            },
                        },
                    ),
                    interval(44, 100, Guest),
                ],
            ),
            vcpu(
                1,
                BATCH_VCPU1,
                vec![
                    interval(0, 10, Guest),
                    interval(10, 12, Ready),
                    interval(12, 60, Guest),
                    interval(60, 80, waiting(WaitCause::Timer)),
                    interval(80, 81, Ready),
                    interval(81, 100, Guest),
                ],
            ),
        ],
        ..Vm::default()
    };
    vec![web, batch]
}

/// The execution graph of the story, chain by chain as the module's documentation tells it.
fn graph() -> virtflow_model::ExecutionGraph {
    use State::{Blocked, Disk, Preempted, Running, Timer};
    let mut g = GraphMaker::default();
    for (tid, comm) in [
        (WEB_VCPU0, "CPU 0/KVM"),
        (WEB_VCPU1, "CPU 1/KVM"),
        (VHOST, "vhost-4000"),
        (IO, "IO iothread0"),
        (BATCH_VCPU0, "CPU 0/KVM"),
        (BATCH_VCPU1, "CPU 1/KVM"),
        (SSHD, "sshd"),
        (BACKUP, "backup"),
    ] {
        g.worker(HOST, tid, comm);
    }
    let mut chain = |tid: u32, pieces: &[(i64, i64, State, Option<u32>)]| {
        for &(from, to, state, by) in pieces {
            g.segment(tid, at(from), at(to), state, by);
        }
    };
    chain(
        WEB_VCPU0,
        &[
            (0, 10, Running, None),
            (10, 30, Blocked, None),
            (30, 33, Preempted, Some(BATCH_VCPU0)),
            (33, 51, Running, None),
            (51, 70, Blocked, None),
            (70, 80, Running, None),
            (80, 90, Preempted, Some(BACKUP)),
            (90, 100, Running, None),
        ],
    );
    chain(
        WEB_VCPU1,
        &[
            (0, 20, Running, None),
            (20, 45, Blocked, None),
            (45, 60, Running, None),
            (60, 95, Timer, None),
            (95, 100, Running, None),
        ],
    );
    chain(
        VHOST,
        &[
            (0, 5, Running, None),
            (5, 18, Blocked, None),
            (18, 24, Preempted, Some(BATCH_VCPU0)),
            (24, 30, Running, None),
            (30, 100, Blocked, None),
        ],
    );
    chain(
        IO,
        &[
            (0, 51, Blocked, None),
            (51, 60, Running, None),
            (60, 66, Disk, None),
            (66, 70, Running, None),
            (70, 100, Blocked, None),
        ],
    );
    chain(
        SSHD,
        &[
            (0, 8, Blocked, None),
            (8, 12, Timer, None),
            (12, 18, Running, None),
            (18, 100, Blocked, None),
        ],
    );
    chain(BACKUP, &[(80, 90, Running, None)]);
    chain(
        BATCH_VCPU0,
        &[
            (0, 40, Running, None),
            (40, 44, Preempted, Some(WEB_VCPU0)),
            (44, 100, Running, None),
        ],
    );
    chain(
        BATCH_VCPU1,
        &[
            (0, 10, Running, None),
            (10, 12, Preempted, Some(BATCH_VCPU0)),
            (12, 60, Running, None),
            (60, 80, Timer, None),
            (80, 81, Preempted, Some(BATCH_VCPU0)),
            (81, 100, Running, None),
        ],
    );
    g.wakeup(VHOST, WEB_VCPU0, at(30));
    g.wakeup(SSHD, VHOST, at(18));
    g.wakeup(IO, WEB_VCPU0, at(70));
    g.wakeup(WEB_VCPU0, WEB_VCPU1, at(45));
    g.finish()
}

fn phases(list: &[(i64, i64, &str)]) -> Vec<Phase> {
    list.iter()
        .map(|&(from, to, name)| Phase {
            start: at(from),
            end: at(to),
            name: name.to_string(),
        })
        .collect()
}

/// The story's model: intervals, overcommitment and its series (derived from the intervals),
/// memory, phases and the execution graph.
pub fn story() -> Model {
    let mut model = Model {
        traces: vec!["(synthetic story)".to_string()],
        hosts: vec![Host {
            name: HOST.to_string(),
            cpus: 2,
            start_ns: at(0),
            end_ns: at(100),
            ..Host::default()
        }],
        vms: vms(),
        ..Model::default()
    };
    overcommit(&mut model, MS);
    let mib = 1u64 << 20;
    let series = |per_ms: &[(i64, i64, u64)]| {
        let mut v = vec![0u64; 100];
        for &(from, to, bytes) in per_ms {
            for slot in &mut v[from as usize..to as usize] {
                *slot = bytes;
            }
        }
        v
    };
    memory(
        &mut model,
        vec![
            (series(&[(0, 20, 2 * mib)]), series(&[(60, 70, mib)])),
            (series(&[(0, 10, mib)]), series(&[])),
        ],
        &[12, 0],
    );
    model.vms[0].phases = phases(&[
        (0, 50, "network-intensive"),
        (50, 70, "disk-intensive"),
        (70, 100, "cpu-intensive"),
    ]);
    model.vms[1].phases = phases(&[(0, 60, "cpu-intensive"), (60, 100, "idle")]);
    model.graph = Some(graph());
    model.read.events = 1_000;
    model
}
