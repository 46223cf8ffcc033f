//! The library's `record` on the machine running the tests: stopping through the flag that
//! Ctrl-C raises, failing cleanly, and saving the command lines of the VMM processes. Needs
//! root and tracing; where they are missing the tests print `SKIPPED: <reason>` and return,
//! except with `CI=true` where they fail (set `VIRTFLOW_SKIP_TRACING_TESTS=1` to skip
//! deliberately).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use virtflow_record::backend::{self, Backend};
use virtflow_record::host::which;
use virtflow_record::vmm::{self, VmmProcess};
use virtflow_record::{record, BackendChoice, Host, Level, RecordError, RecordOptions};

/// Recording is machine-wide (one tracefs top-level buffer, `perf record -a` sees every
/// process): the tests take turns.
static MACHINE: Mutex<()> = Mutex::new(());

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
    let _turn = MACHINE.lock().unwrap_or_else(|e| e.into_inner());
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
    let text = stdout_of(Command::new(perf).arg("script").arg("-i").arg(&out));
    assert!(
        text.contains("sched:sched_switch:"),
        "no sched_switch sample"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_command_that_cannot_start_fails_clearly_and_tracefs_is_put_back() {
    let _turn = MACHINE.lock().unwrap_or_else(|e| e.into_inner());
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

/// A stand-in VMM: a shell holding `/dev/kvm` open, its argv QEMU-like. Killed when dropped.
struct StandIn(Child);

impl StandIn {
    fn start(argv: &[&str]) -> StandIn {
        let child = Command::new("sh")
            .arg0(argv[0])
            .args(&argv[1..])
            .spawn()
            .expect("sh");
        let s = StandIn(child);
        // The shell may move the descriptor (dash keeps it at 10 or above).
        let fds = format!("/proc/{}/fd", s.0.id());
        let holds_kvm = || {
            std::fs::read_dir(&fds)
                .into_iter()
                .flatten()
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == Path::new("/dev/kvm")))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !holds_kvm() {
            assert!(
                Instant::now() < deadline,
                "the stand-in never opened /dev/kvm"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        s
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The script the stand-ins run: KVM held open, not passed to their `sleep`s.
const HOLD_KVM: &str = "exec 3<>/dev/kvm; while :; do sleep 1 3<&-; done";

#[test]
fn vmm_command_lines_go_into_the_trace_and_the_sidecar() {
    let _turn = MACHINE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(host) = host_for(Backend::Tracefs) else {
        return;
    };
    if !Path::new("/dev/kvm").exists() {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: no /dev/kvm for a stand-in VMM");
        return;
    }
    let uuid = "c7a5fdbd-edaf-9455-926a-d65c16db1809";
    let early_argv = [
        "qemu-system-x86_64",
        "-c",
        HOLD_KVM,
        "-name",
        "guest=demo1,,x,debug-threads=on",
        "-uuid",
        uuid,
    ];
    let early = StandIn::start(&early_argv);
    // The same argv as /proc shows it, and as JSON by hand: every space is `\u0020`.
    assert_eq!(
        std::fs::read(format!("/proc/{}/cmdline", early.0.id())).unwrap(),
        format!("{}\0", early_argv.join("\0")).into_bytes()
    );
    let early_marker = format!(
        "virtflow-vmm pid={} argv=[\"qemu-system-x86_64\",\"-c\",\"exec\\u00203<>/dev/kvm;\\u0020while\\u0020:;\\u0020do\\u0020sleep\\u00201\\u00203<&-;\\u0020done\",\"-name\",\"guest=demo1,,x,debug-threads=on\",\"-uuid\",\"{uuid}\"]",
        early.0.id()
    );
    let mut outputs = vec!["t.txt"];
    if which("trace-cmd").is_some() {
        outputs.push("t.dat");
    }
    let dir = scratch("vmm");
    for name in outputs {
        let out = dir.join(name);
        // The traced command starts after recording does: a VMM seen by a later look.
        let options = RecordOptions {
            out: Some(out.clone()),
            backend: BackendChoice::Only(Backend::Tracefs),
            duration: Some(Duration::from_millis(1500)),
            command: ["sh", "-c", HOLD_KVM, "late", "-name", "late"]
                .map(Into::into)
                .to_vec(),
            ..RecordOptions::default()
        };
        let rec = record(host.clone(), &options, &AtomicBool::new(false)).unwrap();
        let early_seen = rec
            .vmms
            .iter()
            .find(|v| v.pid == early.0.id())
            .unwrap_or_else(|| panic!("{name}: the stand-in is not among {:?}", rec.vmms));
        assert_eq!(early_seen.argv, early_argv.map(String::from).to_vec());
        let late: Vec<&VmmProcess> = rec
            .vmms
            .iter()
            .filter(|v| v.argv == ["sh", "-c", HOLD_KVM, "late", "-name", "late"])
            .collect();
        assert_eq!(late.len(), 1, "{name}: the traced command: {:?}", rec.vmms);
        let sidecar = rec.vmm_sidecar.clone().expect("a sidecar");
        assert_eq!(sidecar, dir.join(format!("{name}.vmm-cmdlines.json")));
        assert_eq!(vmm::read_sidecar(&sidecar).unwrap(), rec.vmms);
        assert_eq!(vmm::find_sidecar(&out), Some(sidecar));
        assert!(rec.vmm_markers >= 2, "{name}: {} markers", rec.vmm_markers);
        // The marker is a `print` event: in the text as the kernel prints it, in the `.dat`
        // as `trace-cmd report` does.
        let text = if name.ends_with(".txt") {
            std::fs::read_to_string(&out).unwrap()
        } else {
            stdout_of(
                Command::new(which("trace-cmd").unwrap())
                    .arg("report")
                    .arg(&out),
            )
        };
        let line = text
            .lines()
            .find(|l| l.contains(&format!("virtflow-vmm pid={} ", early.0.id())))
            .unwrap_or_else(|| panic!("{name}: no marker for the stand-in"));
        let shown = format!("tracing_mark_write: {early_marker}");
        assert!(line.ends_with(&shown), "{name}: {line}\nwanted: {shown}");
        assert_eq!(line.contains(" print: "), name.ends_with(".dat"), "{line}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// What a reference tool printed; it must have succeeded.
fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
