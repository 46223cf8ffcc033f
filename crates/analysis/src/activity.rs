//! The series of a vCPU and a VM at the end of the pass, in the model's form: every series
//! on its host's final buckets, injections summed by the class their vector was found to
//! serve (known only now), a VM's device work summed over its helper threads.

use virtflow_model::{VcpuActivity, VmActivity, WaitCause};

use crate::devices::IoSeries;
use crate::series::{Clockwork, Series};
use crate::w2a::{cause_index, Groups, ThreadSeries};

pub(crate) fn of_vcpu(
    s: &ThreadSeries,
    clock: &Clockwork,
    groups: &Groups,
    root: u64,
) -> VcpuActivity {
    let each = |series: &[Series; 5]| -> [Vec<u64>; 5] {
        std::array::from_fn(|i| series[i].finish(clock))
    };
    let mut by_class: [Series; 5] = Default::default();
    for (vector, series) in &s.injections {
        let class = groups
            .vector_class(root, *vector)
            .unwrap_or(WaitCause::Other);
        by_class[cause_index(class)].add_series(clock, series);
    }
    VcpuActivity {
        guest_ns: s.guest.finish(clock),
        // Filled by the guest-process analysis, which knows where each run exited.
        guest_user_ns: vec![0; clock.buckets().count],
        hypervisor_ns: s.hypervisor.finish(clock),
        preempted_ns: s.preempted.finish(clock),
        ready_ns: s.ready.finish(clock),
        waiting_ns: each(&s.waiting),
        unknown_ns: s.unknown.finish(clock),
        exits: s.exits.finish(clock),
        // Filled by the guest-process analysis, which sees each exit's reason.
        exit_kinds: std::array::from_fn(|_| vec![0; clock.buckets().count]),
        injections: each(&by_class),
        waits: each(&s.waits),
    }
}

/// Adds a helper thread's device work to its VM's (packets only from its vhost threads).
pub(crate) fn add_io(acc: &mut VmActivity, s: &IoSeries, clock: &Clockwork, vhost: bool) {
    let add = |into: &mut Vec<u64>, from: &Series| {
        let v = from.finish(clock);
        if into.len() < v.len() {
            into.resize(v.len(), 0);
        }
        for (a, b) in into.iter_mut().zip(v) {
            *a += b;
        }
    };
    add(&mut acc.disk_requests, &s.disk_requests);
    add(&mut acc.disk_latency_ns, &s.disk_latency_ns);
    add(&mut acc.submit_delays, &s.submit_delays);
    add(&mut acc.submit_delay_ns, &s.submit_delay_ns);
    if vhost {
        add(&mut acc.packets, &s.packets);
    }
}

/// Every series of a VM on all its host's buckets, zeros where nothing happened.
pub(crate) fn pad_vm(a: &mut VmActivity, clock: &Clockwork) {
    let n = clock.buckets().count;
    for v in [
        &mut a.disk_requests,
        &mut a.disk_latency_ns,
        &mut a.submit_delays,
        &mut a.submit_delay_ns,
        &mut a.packets,
    ] {
        v.resize(n, 0);
    }
}
