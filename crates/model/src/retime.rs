//! Putting a host's part of the model on another clock: when an experiment's clocks are fitted
//! in the analysis pass itself, each host's times were taken on a provisional clock and are
//! mapped onto the reference clock once the fit is known.
//!
//! The times of the model are few: a host's span and its buckets' origin, and the timelines
//! of vCPUs, guest processes and nested guests. Series keep their values per bucket; the
//! buckets' width stays the host's own (two clocks differ in rate by parts per million).

use crate::{Host, Span, Vm};

impl Host {
    /// Maps this host's times by `f` (never decreasing).
    pub fn retime(&mut self, f: &impl Fn(i64) -> i64) {
        self.start_ns = f(self.start_ns);
        self.end_ns = f(self.end_ns);
        if let Some(b) = &mut self.buckets {
            b.start_ns = f(b.start_ns);
        }
    }
}

impl Vm {
    /// Maps this VM's times by `f` (never decreasing); a span `f` shrinks to nothing goes.
    pub fn retime(&mut self, f: &impl Fn(i64) -> i64) {
        for p in &mut self.phases {
            p.start = f(p.start);
            p.end = f(p.end);
        }
        for v in &mut self.vcpus {
            for i in &mut v.intervals {
                i.start = f(i.start);
                i.end = f(i.end);
            }
            v.intervals.retain(|i| i.end > i.start);
            for p in &mut v.processes {
                retime_spans(&mut p.intervals, f);
            }
            for n in &mut v.nested {
                retime_spans(&mut n.intervals, f);
            }
        }
    }
}

fn retime_spans(spans: &mut Vec<Span>, f: &impl Fn(i64) -> i64) {
    for s in spans.iter_mut() {
        s.start = f(s.start);
        s.end = f(s.end);
    }
    spans.retain(|s| s.end > s.start);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Buckets, GuestProcess, Interval, Vcpu, VcpuState};

    #[test]
    fn every_time_of_a_host_and_its_vms_moves() {
        let shift = |t: i64| t + 1_000;
        let mut host = Host {
            start_ns: 5,
            end_ns: 50,
            buckets: Some(Buckets {
                start_ns: 5,
                step_ns: 10,
                count: 5,
            }),
            ..Host::default()
        };
        host.retime(&shift);
        assert_eq!((host.start_ns, host.end_ns), (1_005, 1_050));
        assert_eq!(host.buckets.as_ref().unwrap().start_ns, 1_005);
        assert_eq!(host.buckets.as_ref().unwrap().step_ns, 10);
        let mut vm = Vm {
            vcpus: vec![Vcpu {
                intervals: vec![Interval {
                    start: 5,
                    end: 9,
                    state: VcpuState::Guest,
                }],
                processes: vec![GuestProcess {
                    intervals: vec![Span { start: 6, end: 8 }],
                    ..GuestProcess::default()
                }],
                ..Vcpu::default()
            }],
            ..Vm::default()
        };
        vm.retime(&shift);
        let v = &vm.vcpus[0];
        assert_eq!((v.intervals[0].start, v.intervals[0].end), (1_005, 1_009));
        assert_eq!(
            v.processes[0].intervals[0],
            Span {
                start: 1_006,
                end: 1_008
            }
        );
        // A span mapped onto one instant is gone.
        vm.retime(&|_| 7);
        assert!(vm.vcpus[0].intervals.is_empty());
        assert!(vm.vcpus[0].processes[0].intervals.is_empty());
    }
}
