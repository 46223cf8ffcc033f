//! The library's `record` on the machine running the tests: stopping through the flag that
//! Ctrl-C raises, and failing cleanly. Needs root and tracing; where they are missing the
//! tests print `SKIPPED: <reason>` and return, except with `CI=true` where they fail (set
//! `VIRTFLOW_SKIP_TRACING_TESTS=1` to skip deliberately).

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use virtflow_record::backend::{self, Backend};
use virtflow_record::host::which;
use virtflow_record::{record, BackendChoice, Host, Level, RecordError, RecordOptions};

fn host_for(backend: Backend) -> Option<Host> {
    let host = Host::probe();
    let deliberate = std::env::var_os("VIRTFLOW_SKIP_TRACING_TESTS").is_some_and(|v| v == "1");
    let reason = if deliberate {
        Some("VIRTFLOW_SKIP_TRACING_TESTS=1".to_string())
    } else if host.euid != 0 {
        Some(format!("not root (uid {})", host.euid))
    } else {
        backend::check(&host, backend).err().map(|u| u.to_string())
    };
    match reason {
        None => Some(host),
        Some(r) if !deliberate && std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but this machine cannot record with {backend}: {r}")
        }
        Some(r) => {
            // Straight to stderr: the harness captures `eprintln!` of passing tests.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: cannot record with {backend} here: {r}"
            );
            None
        }
    }
}

fn scratch(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("virtflow-lib-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_stop_flag_ends_a_recording_with_a_complete_perf_data() {
    let Some(host) = host_for(Backend::Perf) else {
        return;
    };
    let perf = which("perf").expect("perf is required: apt-get install linux-perf");
    let dir = scratch("stop");
    let out = dir.join("perf.data");
    let options = RecordOptions {
        out: Some(out.clone()),
        backend: BackendChoice::Only(Backend::Perf),
        level: Level::Basic,
        ..RecordOptions::default()
    };
    let stop = AtomicBool::new(false);
    let rec = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(700));
            stop.store(true, Ordering::SeqCst);
        });
        record(host, &options, &stop)
    })
    .unwrap();
    assert!(rec.interrupted);
    assert_eq!(rec.backend, Backend::Perf);
    assert!(rec.events.iter().any(|e| e == "sched:sched_switch"));
    assert_eq!(rec.bytes, std::fs::metadata(&out).unwrap().len());
    // perf itself reads the whole file back.
    let script = Command::new(perf)
        .arg("script")
        .arg("-i")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        script.status.success(),
        "{}",
        String::from_utf8_lossy(&script.stderr)
    );
    let text = String::from_utf8_lossy(&script.stdout);
    assert!(
        text.contains("sched:sched_switch:"),
        "no sched_switch sample"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_command_that_cannot_start_fails_clearly_and_tracefs_is_put_back() {
    let Some(host) = host_for(Backend::Tracefs) else {
        return;
    };
    let dir = scratch("nocmd");
    let options = RecordOptions {
        out: Some(dir.join("t.txt")),
        backend: BackendChoice::Only(Backend::Tracefs),
        command: vec!["/nonexistent/virtflow-test-command".into()],
        ..RecordOptions::default()
    };
    let err = record(host, &options, &AtomicBool::new(false)).unwrap_err();
    assert!(matches!(err, RecordError::Command { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("cannot run `/nonexistent/virtflow-test-command`"),
        "{err}"
    );
    assert!(!dir.join("t.txt").exists(), "an abandoned trace was left");
    let tracefs = Host::probe().tracefs.mounted_at.expect("mounted by record");
    let set_event = std::fs::read_to_string(tracefs.join("set_event")).unwrap();
    assert_eq!(set_event.trim(), "", "events left enabled");
    std::fs::remove_dir_all(&dir).ok();
}
