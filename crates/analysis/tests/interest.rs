//! The pass tells the reader which classes it reads, and the reader passes over the others
//! inside its streams, announcing only each stream's first of them and telling how many it
//! passed over and the latest time among them. The model must be that of a pass over every
//! event — the trace's span and buckets, its CPUs and when each appears, the events counted, to
//! the last interval, series bucket and graph segment — on real host traces of each format
//! whose reader filters (CTF from LTTng and from perf, perf.data, trace-cmd's `.dat`), and on an
//! experiment whose clocks are fitted in the pass.

mod common;

use common::open;
use virtflow_analysis::{analyze, analyze_fitting_clocks, Options};
use virtflow_testkit::{for_each_shared_trace, synctraces_experiment};
use virtflow_trace::{Bound, EventSource, Window};

/// The whole of `source`, every event announced: a window ignores the interest (what of the
/// events passed over would fall inside it, nobody could tell).
fn every_event(source: Box<dyn EventSource>) -> Box<dyn EventSource> {
    Box::new(Window::new(
        source,
        Bound::At(i64::MIN),
        Bound::At(i64::MAX),
    ))
}

fn options() -> Options {
    Options {
        intervals: true,
        series: true,
        graph: true,
        ..Options::default()
    }
}

#[test]
fn passing_over_what_no_analysis_reads_changes_nothing() {
    let traces = [
        "kvm-lab/s2_cpu/perf.data",
        "kvm-lab/s5_overcommit/perf.data",
        "host-real/perf.data",
        "kvm-lab/s3_disk_lttng/lttng",
        "lttng/many-threads",
        "kvm-lab/s1_idle/ctf",
        "host-real/perf-ctf",
        "kvm-lab/s4_net/trace.dat",
        "kvm-lab/s5_overcommit/trace.dat",
        "host-real/trace.dat",
    ];
    for_each_shared_trace(&traces, |trace, path| {
        let mut filtering = open(path);
        let passing_over = analyze(&mut filtering, &options()).unwrap();
        let passed = filtering.passed_over(0);
        assert!(passed.events > 0, "{trace}: nothing passed over");
        let every = analyze(&mut every_event(open(path)), &options()).unwrap();
        assert_eq!(passing_over.hosts[0].events, passing_over.read.events);
        assert!(
            serde_json::to_string(&passing_over).unwrap() == serde_json::to_string(&every).unwrap(),
            "{trace}: passing over {} events changes the model",
            passed.events
        );
    });
}

#[test]
fn an_experiment_fitted_in_the_pass_is_the_same_passing_over() {
    if synctraces_experiment(open).is_none() {
        eprintln!("synctraces not present: skipped");
        return;
    }
    let run = |every: bool| {
        let mut experiment =
            synctraces_experiment(|p| if every { every_event(open(p)) } else { open(p) }).unwrap();
        let (model, sync) = analyze_fitting_clocks(&mut experiment, &options(), None).unwrap();
        let passed = experiment.passed_over(0).events + experiment.passed_over(1).events;
        (
            serde_json::to_string(&model).unwrap(),
            format!("{:?}", sync.result),
            passed,
        )
    };
    let (filtering, every) = (run(false), run(true));
    assert!(filtering.2 > 0, "nothing passed over");
    assert_eq!(every.2, 0);
    assert_eq!(filtering.0, every.0, "the model differs");
    assert_eq!(filtering.1, every.1, "the clocks fitted differ");
}
