//! What a reader of virtflow's answers meets: shares labelled for what they divide, the
//! report's words explained, the CPUs of a perf CTF conversion counted, folders of `.dat`
//! files read, `export --model` for every format, options that need another refused.

use std::path::PathBuf;
use std::process::{Command, Output};

use virtflow_testkit::shared_traces as shared;

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

/// A folder of trace-cmd files is read as the experiment of its traces; a folder with none of
/// the formats looked for is refused saying what was looked for.
#[test]
fn a_folder_of_dat_files_is_read() {
    let dir = scratch("dats");
    std::fs::copy(
        shared().join("kvm-lab/s1_idle/trace.dat"),
        dir.join("idle.dat"),
    )
    .unwrap();
    let report = ok(&virtflow(&[&"analyze", &dir]));
    assert!(report.contains("\nVM "), "{report}");
    std::fs::copy(shared().join("host-real/trace.dat"), dir.join("real.dat")).unwrap();
    let model: serde_json::Value =
        serde_json::from_str(&ok(&virtflow(&[&"analyze", &"--json", &"--no-sync", &dir]))).unwrap();
    assert_eq!(
        model["hosts"].as_array().unwrap().len(),
        2,
        "{}",
        model["hosts"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `export --model` writes every format; its errors name the format as typed.
#[test]
fn export_from_a_model_writes_every_format() {
    let dir = scratch("export");
    let model = dir.join("model.json");
    let json = ok(&virtflow(&[&"analyze", &"--json", &"--intervals"]));
    std::fs::write(&model, json).unwrap();
    for format in ["perfetto", "csv", "parquet", "lami"] {
        let out = dir.join(format!("out.{format}"));
        ok(&virtflow(&[
            &"export",
            &"--model",
            &model,
            &"--format",
            &format,
            &"-o",
            &out,
        ]));
        assert!(std::fs::metadata(&out).unwrap().len() > 0, "{format}");
        let nowhere = dir.join("no/such/folder/out");
        let failed = virtflow(&[
            &"export",
            &"--model",
            &model,
            &"--format",
            &format,
            &"-o",
            &nowhere,
        ]);
        let err = String::from_utf8(failed.stderr).unwrap();
        assert_eq!(failed.status.code(), Some(1), "{err}");
        let line = err
            .lines()
            .find(|l| l.starts_with("virtflow: error: "))
            .unwrap_or_else(|| panic!("{err}"));
        assert!(
            line.starts_with(&format!("virtflow: error: export --format {format}: ")),
            "{err}"
        );
        assert!(err.contains(&nowhere.display().to_string()), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--intervals` only adds to `--json`: alone it is refused, not ignored.
#[test]
fn intervals_without_json_is_refused() {
    let out = virtflow(&[&"analyze", &"--intervals"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--json"), "{err}");
    assert!(out.stdout.is_empty());
}

/// A simulation that takes more than a second says first what it will write, then how far
/// it got, on standard error; a short one says nothing there.
#[test]
fn a_long_simulation_states_its_size_and_shows_progress() {
    let dir = scratch("simulate");
    let out = virtflow(&[
        &"simulate",
        &"large",
        &"--duration",
        &"8s",
        &"-o",
        &dir.join("large"),
    ]);
    let stdout = ok(&out);
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with("virtflow simulate: writing about ")
            && lines[0].contains(" MB (about "),
        "{err}"
    );
    assert!(
        lines[1..]
            .iter()
            .any(|l| l.contains(" MB of about ") && l.ends_with(" events")),
        "{err}"
    );
    assert!(stdout.contains("trace.dat: "), "{stdout}");
    let quick = virtflow(&[&"simulate", &"idle", &"-o", &dir.join("idle")]);
    ok(&quick);
    assert!(
        quick.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quick.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every key of `analyze --json --intervals` is in docs/analyze-json.md, as `` `key` ``,
/// `` `key[]` `` or in the outline: on the simulator's memory scenario (series, page events, the execution
/// graph) and on two real hosts' experiment (their clocks and time line).
#[test]
fn every_json_field_is_documented() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/analyze-json.md"
    ))
    .unwrap();
    let dir = scratch("json-fields");
    ok(&virtflow(&[
        &"simulate",
        &"memory",
        &"-o",
        &dir,
        &"--duration",
        &"1s",
    ]));
    let mut models = vec![dir.join("trace.dat")];
    let synctraces = shared().join("lttng/synctraces");
    if synctraces.exists() {
        models.push(synctraces);
    }
    fn keys(v: &serde_json::Value, path: &str, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    out.insert(format!("{path}/{k}"));
                    keys(x, &format!("{path}/{k}"), out);
                }
            }
            serde_json::Value::Array(a) => a.iter().take(50).for_each(|x| keys(x, path, out)),
            _ => {}
        }
    }
    let mut all = std::collections::BTreeSet::new();
    for trace in &models {
        let json = ok(&virtflow(&[&"analyze", &"--json", &"--intervals", trace]));
        keys(&serde_json::from_str(&json).unwrap(), "", &mut all);
    }
    let undocumented: Vec<&String> = all
        .iter()
        .filter(|path| {
            let key = path.rsplit('/').next().unwrap();
            // `key`, `key[]`, `key[5]`, or "key" in the schema's outline.
            !doc.contains(&format!("`{key}`"))
                && !doc.contains(&format!("`{key}["))
                && !doc.contains(&format!("\"{key}\""))
        })
        .collect();
    assert!(all.len() > 150, "only {} keys", all.len());
    assert!(
        undocumented.is_empty(),
        "not in docs/analyze-json.md: {undocumented:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
