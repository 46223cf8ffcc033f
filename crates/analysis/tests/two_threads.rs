//! The pass read on one thread and analysed on another gives the model of the pass on one
//! thread, to the last interval, series bucket and graph segment — from the first event, or
//! from where a pass begun on one thread goes on to two: on real host traces of each format,
//! with everything the analyses keep switched on.

use std::path::PathBuf;

use virtflow_analysis::{analyze, Options};
use virtflow_trace::EventSource;

fn shared(path: &str) -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/traces"
    ))
    .join(path);
    p.exists().then_some(p)
}

fn open(path: &std::path::Path) -> Box<dyn EventSource> {
    let name = path.to_string_lossy();
    if name.ends_with(".dat") {
        Box::new(virtflow_ftrace::DatSource::open(path).unwrap())
    } else if name.ends_with("perf.data") {
        Box::new(virtflow_ftrace::PerfSource::open(path).unwrap())
    } else {
        Box::new(virtflow_ctf::CtfSource::open(path).unwrap())
    }
}

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
    let mut checked = 0;
    for trace in traces {
        let Some(path) = shared(trace) else {
            eprintln!("{trace} not present: skipped");
            continue;
        };
        let one = model_json(&path, Some(false));
        assert!(
            one == model_json(&path, Some(true)),
            "{trace}: on two threads, the model differs"
        );
        // s4_net holds several times the events read on one thread before going on to two.
        assert!(
            one == model_json(&path, None),
            "{trace}: on one thread then two, the model differs"
        );
        checked += 1;
    }
    assert!(checked > 0 || shared("").is_none(), "no trace checked");
}

/// Two hosts read as one experiment, their clocks fitted in the pass from the messages they
/// exchanged: the same model and the same transforms either way.
#[test]
fn an_experiment_fitted_in_the_pass_is_the_same_on_two_threads() {
    let (Some(src), Some(dest)) = (
        shared("lttng/synctraces/scp_src"),
        shared("lttng/synctraces/scp_dest"),
    ) else {
        eprintln!("synctraces not present: skipped");
        return;
    };
    let run = |two_threads: bool| {
        let members = [&src, &dest]
            .iter()
            .enumerate()
            .map(|(host, p)| virtflow_trace::Member {
                source: open(p),
                host,
                clock: None,
            })
            .collect();
        let mut experiment =
            virtflow_trace::Merge::experiment(members, vec!["src".into(), "dest".into()]);
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
