//! What a reader of virtflow's answers meets: shares labelled for what they divide, the
//! report's words explained, the CPUs of a perf CTF conversion counted, folders of `.dat`
//! files read, `export --model` for every format, options that need another refused.

use std::path::PathBuf;
use std::process::{Command, Output};

fn shared() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/traces"
    ))
}

fn virtflow(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_virtflow"));
    for a in args {
        c.arg(a);
    }
    c.output().expect("runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("virtflow-meets-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The terminal report's exit table gives both shares, each named; a legend says what the
/// columns and words mean and where every field is documented; `--help` points there too.
#[test]
fn the_terminal_report_names_its_shares_and_explains_its_words() {
    let report = ok(&virtflow(&[&"analyze"]));
    let head = report
        .lines()
        .find(|l| l.trim_start().starts_with("reason"))
        .expect("an exit table");
    let words: Vec<&str> = head.split_whitespace().collect();
    assert_eq!(
        words,
        ["reason", "count", "count", "%", "time", "time", "%", "min", "mean", "max"]
    );
    assert!(!report.contains("share"), "{report}");
    for words in [
        "legend (every field: docs/analyze-json.md):",
        "task: an IPI from another",
        "unkn: not shown by the trace",
        "signals: a wait's cause",
        "agree,",
        "waker only, vector only",
        "exits: count %: of the VM's exits; time %: of its time in exits",
    ] {
        assert!(report.contains(words), "{words:?} in\n{report}");
    }
    assert!(report.lines().all(|l| l.chars().count() <= 100), "{report}");
    let help = ok(&virtflow(&[&"analyze", &"--help"]));
    assert!(help.contains("docs/analyze-json.md"), "{help}");
}

/// The HTML report's exit tables name both shares too (the timeline's panels do; the
/// browser test reads them).
#[test]
fn the_html_report_names_its_shares() {
    let dir = scratch("report");
    let out = dir.join("r.html");
    ok(&virtflow(&[&"report", &"-o", &out]));
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(
        html.contains("<th>time %</th><th>count</th><th>count %</th>"),
        "{html}"
    );
    assert!(!html.contains("<th>share</th>"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// perf's CTF conversion by perf 4.1 has no `cpu_id` in its packets: the CPUs come from the
/// events' `perf_cpu` (CPUs 0, 1 and 3 here: 4 CPUs).
#[test]
fn a_perf_ctf_conversion_counts_the_cpus_its_events_are_on() {
    let trace = shared().join("perf-ctf/perf-taskset2");
    let report = ok(&virtflow(&[&"analyze", &trace]));
    assert!(report.contains(": 4 CPUs, "), "{report}");
    let dump = ok(&virtflow(&[&"dump", &trace]));
    assert!(dump.lines().all(|l| !l.contains(" cpu=- ")), "{dump}");
}
