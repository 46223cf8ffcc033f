//! Host trace events in the ftrace vocabulary. Every builder names the thread the event runs
//! in (`common_pid`), as trace-cmd records it; times are nanoseconds.

use virtflow_trace::{Value, VecEvent};

/// Any event: `fields` in order, as the tracer's format lists them.
pub fn ev(ts: i64, cpu: u32, name: &str, fields: &[(&str, Value<'static>)]) -> VecEvent {
    VecEvent {
        ts,
        cpu,
        name: name.into(),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

/// An unsigned integer field value.
pub fn u(v: u64) -> Value<'static> {
    Value::UInt(v)
}

/// A string field value.
pub fn s(v: &str) -> Value<'static> {
    Value::Str(v.to_string().into())
}

/// An event with no field but the current thread's id.
pub fn plain(ts: i64, cpu: u32, tid: u64, name: &str) -> VecEvent {
    ev(ts, cpu, name, &[("common_pid", u(tid))])
}

/// `sched_switch` from `prev` (tid, comm) to `next`; `state` is the numeric `prev_state`
/// (0 runnable, 1 S, 2 D, 0x100 R+).
pub fn switch(ts: i64, cpu: u32, prev: (u64, &str), state: u64, next: (u64, &str)) -> VecEvent {
    ev(
        ts,
        cpu,
        "sched_switch",
        &[
            ("common_pid", u(prev.0)),
            ("prev_comm", s(prev.1)),
            ("prev_pid", u(prev.0)),
            ("prev_state", u(state)),
            ("next_comm", s(next.1)),
            ("next_pid", u(next.0)),
        ],
    )
}

/// `sched_waking` of `tid` (named `comm`) by the thread `waker`.
pub fn waking(ts: i64, cpu: u32, waker: u64, tid: u64, comm: &str) -> VecEvent {
    ev(
        ts,
        cpu,
        "sched_waking",
        &[("common_pid", u(waker)), ("comm", s(comm)), ("pid", u(tid))],
    )
}

/// `kvm_entry` of vCPU `vcpu` by its thread `tid`.
pub fn entry(ts: i64, cpu: u32, tid: u64, vcpu: u64) -> VecEvent {
    ev(
        ts,
        cpu,
        "kvm_entry",
        &[("common_pid", u(tid)), ("vcpu_id", u(vcpu))],
    )
}

/// `kvm_exit` with an Intel VMX reason (`isa` 1).
pub fn exit(ts: i64, cpu: u32, tid: u64, reason: u64) -> VecEvent {
    ev(
        ts,
        cpu,
        "kvm_exit",
        &[
            ("common_pid", u(tid)),
            ("exit_reason", u(reason)),
            ("isa", u(1)),
        ],
    )
}

/// `kvm_exit` with an AMD SVM reason (`isa` 2).
pub fn exit_svm(ts: i64, cpu: u32, tid: u64, reason: u64) -> VecEvent {
    ev(
        ts,
        cpu,
        "kvm_exit",
        &[
            ("common_pid", u(tid)),
            ("exit_reason", u(reason)),
            ("isa", u(2)),
        ],
    )
}

/// `kvm_inj_virq`: `vector` injected at the coming entry.
pub fn inj(ts: i64, cpu: u32, tid: u64, vector: u64) -> VecEvent {
    ev(
        ts,
        cpu,
        "kvm_inj_virq",
        &[("common_pid", u(tid)), ("vector", u(vector))],
    )
}

/// `kvm_msi_set_irq` raised by the thread `tid` (a virtio device's MSI, vector in `data`).
pub fn msi(ts: i64, cpu: u32, tid: u64, vector: u64) -> VecEvent {
    ev(
        ts,
        cpu,
        "kvm_msi_set_irq",
        &[
            ("common_pid", u(tid)),
            ("address", u(0xfee0_1000)),
            ("data", u(vector)),
        ],
    )
}

/// `block_rq_issue` (`complete`: `block_rq_complete`) of the request at `sector` of `dev`.
pub fn block(ts: i64, cpu: u32, tid: u64, complete: bool, dev: u64, sector: u64) -> VecEvent {
    let name = if complete {
        "block_rq_complete"
    } else {
        "block_rq_issue"
    };
    ev(
        ts,
        cpu,
        name,
        &[
            ("common_pid", u(tid)),
            ("dev", u(dev)),
            ("sector", u(sector)),
        ],
    )
}
