//! The pass read on one thread and analysed on another gives the model of the pass on one
//! thread, to the last interval, series bucket and graph segment — from the first event, or
//! from where a pass begun on one thread goes on to two: on real host traces of each format,
//! with everything the analyses keep switched on.

mod common;

use common::open;
use virtflow_analysis::{analyze, Options};
use virtflow_testkit::{for_each_shared_trace, shared_trace as shared, synctraces_experiment};
use virtflow_trace::EventSource;

fn model_json(path: &std::path::Path, two_threads: Option<bool>) -> String {
    let options = Options {
        intervals: true,
        series: true,
        graph: true,
        two_threads,
        ..Options::default()
    };
    let model = analyze(&mut *open(path), &options).unwrap();
    assert!(model.read.events > 0, "{}: no events", path.display());
    serde_json::to_string(&model).unwrap()
}

#[test]
fn one_thread_or_two_give_the_same_model() {
    let traces = [
        "kvm-lab/s4_net/trace.dat",
        "kvm-lab/s3_disk_lttng/lttng",
        "kvm-lab/s2_cpu/perf.data",
        "kvm-lab/s5_overcommit/trace.dat",
        "lttng/many-threads",
        "host-real/perf.data",
    ];
    for_each_shared_trace(&traces, |trace, path| {
        let one = model_json(path, Some(false));
        assert!(
            one == model_json(path, Some(true)),
            "{trace}: on two threads, the model differs"
        );
        // s4_net holds several times the events read on one thread before going on to two.
        assert!(
            one == model_json(path, None),
            "{trace}: on one thread then two, the model differs"
        );
    });
}

/// Two hosts read as one experiment, their clocks fitted in the pass from the messages they
/// exchanged: the same model and the same transforms either way.
#[test]
fn an_experiment_fitted_in_the_pass_is_the_same_on_two_threads() {
    if synctraces_experiment(open).is_none() {
        eprintln!("synctraces not present: skipped");
        return;
    }
    let run = |two_threads: bool| {
        let mut experiment = synctraces_experiment(open).unwrap();
        let options = Options {
            graph: true,
            intervals: true,
            two_threads: Some(two_threads),
            ..Options::default()
        };
        let (model, sync) =
            virtflow_analysis::analyze_fitting_clocks(&mut experiment, &options, None).unwrap();
        assert!(sync.matched > 0, "no message paired");
        (
            serde_json::to_string(&model).unwrap(),
            format!("{:?}", sync.result),
            sync.matched,
        )
    };
    assert_eq!(run(false), run(true));
}

/// A source that fails after a number of events: the reading error of a damaged trace.
struct FailsAfter {
    inner: Box<dyn EventSource>,
    left: u64,
}

impl EventSource for FailsAfter {
    fn classes(&self) -> &[virtflow_trace::EventClass] {
        self.inner.classes()
    }
    fn advance(&mut self) -> Result<virtflow_trace::Step, virtflow_trace::TraceError> {
        if self.left == 0 {
            return Err(virtflow_trace::TraceError::new(
                "damaged.dat",
                4096,
                virtflow_trace::ErrorKind::EmptyFile,
            ));
        }
        self.left -= 1;
        self.inner.advance()
    }
    fn u64(&self, field: virtflow_trace::FieldId) -> Option<u64> {
        self.inner.u64(field)
    }
    fn i64(&self, field: virtflow_trace::FieldId) -> Option<i64> {
        self.inner.i64(field)
    }
    fn str(&self, field: virtflow_trace::FieldId) -> Option<&str> {
        self.inner.str(field)
    }
    fn value(&self, field: virtflow_trace::FieldId) -> Option<virtflow_trace::Value<'_>> {
        self.inner.value(field)
    }
    fn progress(&self) -> Option<(u64, u64)> {
        self.inner.progress()
    }
    fn stats(&self) -> virtflow_trace::ReadStats {
        self.inner.stats()
    }
}

/// A reading error ends the pass with that error whichever way it runs: on two threads the
/// analyses' thread ends with the batches sent, and nothing waits for ever.
#[test]
fn a_reading_error_ends_the_pass_on_one_thread_or_two() {
    let Some(path) = shared("kvm-lab/s4_net/trace.dat") else {
        eprintln!("kvm-lab not present: skipped");
        return;
    };
    for two_threads in [Some(false), Some(true), None] {
        for left in [0, 1_000, 300_000] {
            let mut source = FailsAfter {
                inner: open(&path),
                left,
            };
            let options = Options {
                graph: true,
                two_threads,
                ..Options::default()
            };
            let err = analyze(&mut source, &options).expect_err("the error is the pass's");
            assert_eq!(err.offset, 4096, "{two_threads:?} after {left}");
            assert_eq!(err.kind, virtflow_trace::ErrorKind::EmptyFile);
        }
    }
}

/// Loss notices cross to the analyses' thread in their place among the events: the states they
/// make unknown are the same on one thread or two.
#[test]
fn losses_reach_the_analyses_in_order_on_two_threads() {
    use virtflow_testkit::ftrace::{entry, exit, switch};
    use virtflow_trace::{LostEvents, VecSource};
    let vcpu = (100, "CPU 0/KVM");
    let idle = (0, "swapper/0");
    let mut events = vec![switch(0, 0, idle, 0, vcpu)];
    let mut losses = Vec::new();
    // Enough events for several batches, a loss every 10,000 of them.
    for i in 0..20_000i64 {
        let t = 1_000 + i * 1_000;
        events.push(entry(t, 0, 100, 0));
        events.push(exit(t + 600, 0, 100, 1 + (i % 3) as u64));
        if i % 5_000 == 2_500 {
            losses.push(LostEvents {
                begin: t + 700,
                end: t + 900,
                cpu: 0,
                stream: 0,
                count: Some(7),
            });
        }
    }
    let model = |two_threads| {
        let options = Options {
            intervals: true,
            series: true,
            two_threads: Some(two_threads),
            ..Options::default()
        };
        let mut source = VecSource::with_losses(events.clone(), losses.clone());
        serde_json::to_string(&analyze(&mut source, &options).unwrap()).unwrap()
    };
    let one = model(false);
    assert!(
        one.contains("\"lost_notices\":4"),
        "the losses are in the model"
    );
    assert!(
        one == model(true),
        "the losses' effect differs on two threads"
    );
}
