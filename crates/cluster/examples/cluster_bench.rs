//! How long the clustering by windows takes on a large host: a synthetic model of `VMS` VMs
//! whose workloads change (idle, cpu, disk, network phases drawn from a seeded generator), each
//! with two vCPUs and the series the analysis pass keeps, cut into 40 windows each — 10,000
//! VM-windows by default. It times the windowed features (from the series alone) and the
//! clustering (automatic k, phases), and checks the phases against the generator's.
//!
//! Run: `cargo run --release -p virtflow-cluster --example cluster_bench [VMS] [RUNS]`
//! (default 250 VMs, 5 runs; the median run is reported).

use std::time::{Duration, Instant};

use virtflow_cluster::kmeans::SplitMix64;
use virtflow_cluster::{agreement, cluster, windows, ClusterOptions, Level, WindowSpec};
use virtflow_model::{Buckets, Host, Model, Phase, Vcpu, VcpuActivity, Vm, VmActivity, WaitCause};

const STEP_NS: i64 = 32_000_000;
const BUCKETS: usize = 560;
const START_NS: i64 = 1_000_000_000;

#[derive(Clone, Copy, PartialEq)]
enum Work {
    Idle,
    Cpu,
    Disk,
    Network,
}

impl Work {
    fn name(self) -> &'static str {
        match self {
            Work::Idle => "idle",
            Work::Cpu => "cpu",
            Work::Disk => "disk",
            Work::Network => "network",
        }
    }
}

/// One vCPU's bucket: (guest, user share of guest, hypervisor, waiting cause and share, exits
/// per second by kind [halt, io, interrupt, msr, paging, other], injections per second by
/// class [timer, disk, network, task, other]).
fn profile(w: Work) -> (f64, f64, f64, usize, [f64; 6], [f64; 5]) {
    match w {
        Work::Idle => (
            0.01,
            0.1,
            0.005,
            0,
            [40.0, 0.0, 5.0, 60.0, 0.0, 2.0],
            [60.0, 0.0, 0.0, 5.0, 2.0],
        ),
        Work::Cpu => (
            0.94,
            0.85,
            0.04,
            0,
            [2.0, 10.0, 300.0, 250.0, 1.0, 10.0],
            [250.0, 0.0, 0.0, 20.0, 5.0],
        ),
        Work::Disk => (
            0.10,
            0.15,
            0.04,
            1,
            [1000.0, 1200.0, 300.0, 700.0, 10.0, 50.0],
            [80.0, 1100.0, 0.0, 350.0, 5.0],
        ),
        Work::Network => (
            0.08,
            0.12,
            0.03,
            2,
            [800.0, 600.0, 400.0, 600.0, 5.0, 40.0],
            [80.0, 0.0, 1400.0, 10.0, 5.0],
        ),
    }
}

fn synthetic(vms: usize, seed: u64) -> Model {
    let mut rng = SplitMix64::new(seed);
    let end = START_NS + STEP_NS * BUCKETS as i64 - 1;
    let host = Host {
        name: "bench".into(),
        cpus: 64,
        start_ns: START_NS,
        end_ns: end,
        buckets: Some(Buckets {
            start_ns: START_NS,
            step_ns: STEP_NS,
            count: BUCKETS,
        }),
        ..Host::default()
    };
    let kinds = [Work::Idle, Work::Cpu, Work::Disk, Work::Network];
    let mut model = Model {
        traces: vec!["synthetic".into()],
        hosts: vec![host],
        ..Model::default()
    };
    for v in 0..vms {
        // Two to four phases at random edges.
        let phases = 2 + (rng.next_u64() % 3) as usize;
        let mut edges: Vec<usize> = (1..phases)
            .map(|_| 40 + (rng.next_u64() % (BUCKETS as u64 - 80)) as usize)
            .collect();
        edges.sort_unstable();
        edges.dedup();
        let mut plan: Vec<(usize, Work)> = Vec::new();
        let mut last = None;
        for (i, at) in std::iter::once(0).chain(edges).enumerate() {
            let mut w = kinds[(rng.next_u64() % 4) as usize];
            while Some(w) == last {
                w = kinds[(rng.next_u64() % 4) as usize];
            }
            let _ = i;
            plan.push((at, w));
            last = Some(w);
        }
        let work_at = |b: usize| {
            plan.iter()
                .rev()
                .find(|p| p.0 <= b)
                .map_or(Work::Idle, |p| p.1)
        };
        let step_s = STEP_NS as f64 / 1e9;
        let mut noise = || 1.0 + 0.2 * (rng.next_f64() - 0.5);
        let mut vcpus = Vec::new();
        for c in 0..2u32 {
            let mut a = VcpuActivity::default();
            let series = |a: &mut VcpuActivity| {
                for s in [
                    &mut a.guest_ns,
                    &mut a.guest_user_ns,
                    &mut a.hypervisor_ns,
                    &mut a.preempted_ns,
                    &mut a.ready_ns,
                    &mut a.unknown_ns,
                    &mut a.exits,
                ] {
                    s.resize(BUCKETS, 0);
                }
                for s in a
                    .waiting_ns
                    .iter_mut()
                    .chain(a.injections.iter_mut())
                    .chain(a.waits.iter_mut())
                    .chain(a.exit_kinds.iter_mut())
                {
                    s.resize(BUCKETS, 0);
                }
            };
            series(&mut a);
            for b in 0..BUCKETS {
                let (guest, user, hyp, cause, exits, irqs) = profile(work_at(b));
                let g = (guest * noise()).min(1.0) * STEP_NS as f64;
                let h = hyp * STEP_NS as f64;
                a.guest_ns[b] = g as u64;
                a.guest_user_ns[b] = (g * user) as u64;
                a.hypervisor_ns[b] = h as u64;
                a.waiting_ns[cause][b] = (STEP_NS as f64 - g - h).max(0.0) as u64;
                let mut total = 0;
                for (k, rate) in exits.iter().enumerate() {
                    let n = (rate * step_s * noise()).round() as u64;
                    a.exit_kinds[k][b] = n;
                    total += n;
                }
                a.exits[b] = total;
                for (k, rate) in irqs.iter().enumerate() {
                    a.injections[k][b] = (rate * step_s * noise()).round() as u64;
                }
                a.waits[cause][b] = a.injections[cause][b];
            }
            vcpus.push(Vcpu {
                vcpu: c,
                tid: 10_000 + 10 * v as u32 + c,
                activity: Some(a),
                ..Vcpu::default()
            });
        }
        let mut io = VmActivity::default();
        for s in [
            &mut io.disk_requests,
            &mut io.disk_latency_ns,
            &mut io.submit_delays,
            &mut io.submit_delay_ns,
            &mut io.packets,
        ] {
            s.resize(BUCKETS, 0);
        }
        for b in 0..BUCKETS {
            match work_at(b) {
                Work::Disk => {
                    let n = (2000.0 * step_s * noise()) as u64;
                    io.disk_requests[b] = n;
                    io.disk_latency_ns[b] = n * 300_000;
                }
                Work::Network => io.packets[b] = (2500.0 * step_s * noise()) as u64,
                _ => {}
            }
        }
        let bucket_ns = |b: usize| START_NS + STEP_NS * b as i64;
        let mut phases: Vec<Phase> = plan
            .iter()
            .map(|&(at, w)| Phase {
                start: bucket_ns(at),
                end: end + 1,
                name: w.name().into(),
            })
            .collect();
        for i in 1..phases.len() {
            phases[i - 1].end = phases[i].start;
        }
        model.vms.push(Vm {
            pid: 1000 + v as u32,
            name: format!("vm{v}"),
            host: "bench".into(),
            vcpus,
            activity: Some(io),
            // The generator's plan, for the check (the clustering does not read it).
            phases,
            ..Vm::default()
        });
    }
    let _ = WaitCause::ALL;
    model
}

fn main() {
    let mut args = std::env::args().skip(1);
    let vms: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(250);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5).max(1);
    let model = synthetic(vms, 7);
    // The generator's phases as a truth file would give them.
    let known = agreement::Known {
        source: "the generator".into(),
        vms: model
            .vms
            .iter()
            .map(|vm| agreement::KnownVm {
                pid: vm.pid,
                host: Some(vm.host.clone()),
                phases: vm
                    .phases
                    .iter()
                    .map(|p| (p.start, p.end, p.name.clone()))
                    .collect(),
                ..Default::default()
            })
            .collect(),
    };
    let mut times: Vec<(Duration, Duration)> = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t0 = Instant::now();
        let (table, _) = windows::build(&model, "synthetic", Level::Vm, WindowSpec::Auto);
        let t1 = Instant::now();
        let report = cluster(&table, &ClusterOptions::default());
        let t2 = Instant::now();
        times.push((t1 - t0, t2 - t1));
        last = Some((table, report));
    }
    times.sort_by_key(|t| t.0 + t.1);
    let (features, clustering) = times[times.len() / 2];
    let (table, report) = last.expect("one run");
    let agreement = agreement::compare(&known, &table, &report.labels, &report.vms, true);
    let agree = agreement.vms.iter().filter(|v| v.verdict_agrees).count();
    let time_agree = agreement
        .vms
        .iter()
        .filter_map(|v| v.time_agrees)
        .sum::<f64>()
        / agreement.vms.len().max(1) as f64;
    println!(
        "{} VM-windows ({} VMs × {} windows of {} ms), median of {runs} runs:",
        table.rows.len(),
        vms,
        table.rows.len() / vms.max(1),
        table.window_ns.unwrap_or(0) / 1_000_000
    );
    println!(
        "  windowed features {:.1} ms, clustering {:.1} ms (k = {}), total {:.1} ms",
        features.as_secs_f64() * 1e3,
        clustering.as_secs_f64() * 1e3,
        report.k,
        (features + clustering).as_secs_f64() * 1e3
    );
    println!(
        "  against the generator: ARI {:.3} over {} windows, {agree} of {} verdicts agree, \
         phases agree {:.1}% of the time",
        agreement.ari.unwrap_or(f64::NAN),
        agreement.compared,
        agreement.vms.len(),
        time_agree * 100.0
    );
}
