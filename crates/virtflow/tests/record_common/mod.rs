//! Shared by the tests that record real traces on the machine running them
//! (`record_host.rs`, `record_doctor.rs`).
//!
//! Skip policy: recording needs root, tracefs and (for perf) system-wide perf events. Where
//! they are missing a test prints `SKIPPED: <reason>` on stderr and returns — except in CI
//! (`CI=true`), which runs on machines that can trace: there a missing capability fails the
//! test, so a broken runner cannot pass silently. `VIRTFLOW_SKIP_TRACING_TESTS=1` skips
//! deliberately, in CI too (for runners without tracing). The reference tools (`trace-cmd`,
//! `perf`) must be installed: a missing one fails with the command that installs it.

#![allow(dead_code)] // each test file uses a part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use virtflow_record::backend::{self, Backend};
use virtflow_record::host::{self, Host};

/// Recording is machine-wide (one tracefs top-level buffer, `perf record -a` sees every
/// process): tests that record take turns.
pub static TRACEFS: Mutex<()> = Mutex::new(());

/// Says `SKIPPED: <reason>` on the real stderr: `eprintln!` would be captured by the test
/// harness and never shown for a passing test.
pub fn skipped(reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `Some(host)` when `backend` can record here; otherwise prints why and returns `None`
/// (or fails, in CI — see the module documentation).
pub fn host_for(backend: Backend) -> Option<Host> {
    let host = Host::probe();
    let reason = if std::env::var_os("VIRTFLOW_SKIP_TRACING_TESTS").is_some_and(|v| v == "1") {
        Some("VIRTFLOW_SKIP_TRACING_TESTS=1".to_string())
    } else if host.euid != 0 {
        Some(format!(
            "not root (uid {}): recording a kernel trace needs root",
            host.euid
        ))
    } else {
        backend::check(&host, backend).err().map(|u| u.to_string())
    };
    match reason {
        None => Some(host),
        Some(r) if in_ci() && !r.starts_with("VIRTFLOW_SKIP") => panic!(
            "CI=true but this machine cannot record with {backend}: {r}\n\
             (set VIRTFLOW_SKIP_TRACING_TESTS=1 to skip the tracing tests on such a runner)"
        ),
        Some(r) => {
            skipped(&format!("cannot record with {backend} here: {r}"));
            None
        }
    }
}

/// A reference tool, or a clear failure naming how to install it.
pub fn tool(name: &str, package: &str) -> PathBuf {
    host::which(name).unwrap_or_else(|| {
        panic!("`{name}` is required to check recorded traces: apt-get install {package}")
    })
}

/// A fresh scratch folder for one test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("virtflow-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn virtflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_virtflow"))
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    out
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Events per name in `trace-cmd report` or `perf script` text: the name is the word ending
/// in `:` right after the `SECONDS.MICROS:` timestamp (perf prefixes `system:`).
pub fn count_report_events(report: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for line in report.lines() {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            let is_time = w
                .strip_suffix(':')
                .is_some_and(|t| t.contains('.') && t.parse::<f64>().is_ok());
            if is_time {
                if let Some(name) = words.next().and_then(|n| n.strip_suffix(':')) {
                    let name = name.rsplit(':').next().unwrap_or(name);
                    *counts.entry(name.to_string()).or_insert(0) += 1;
                }
                break;
            }
        }
    }
    counts
}

/// Events per name in `virtflow dump` output (`TS cpu=N stream=S NAME: …`), and the number
/// of LOST lines.
pub fn count_dump_events(dump: &str) -> (BTreeMap<String, u64>, u64) {
    let mut counts = BTreeMap::new();
    let mut lost = 0;
    for line in dump.lines() {
        match line
            .split_whitespace()
            .nth(3)
            .and_then(|n| n.strip_suffix(':'))
        {
            Some("LOST") => lost += 1,
            Some(name) => *counts.entry(name.to_string()).or_insert(0) += 1,
            None => {}
        }
    }
    (counts, lost)
}

/// A tiny KVM guest: real-mode code writing to I/O port 0x10 in a loop; the script runs it
/// for N `KVM_RUN`s, each ending in one port-I/O exit to user space, and prints `ok N`.
/// The kernel's `kvm_userspace_exit` and `kvm_pio` events then number exactly N.
pub const KVM_GUEST_PY: &str = r#"
import fcntl, mmap, ctypes, os, struct, sys
KVM_CREATE_VM = 0xAE01; KVM_GET_VCPU_MMAP_SIZE = 0xAE04; KVM_CREATE_VCPU = 0xAE41
KVM_SET_USER_MEMORY_REGION = 0x4020AE46; KVM_RUN = 0xAE80
KVM_GET_SREGS = 0x8138AE83; KVM_SET_SREGS = 0x4138AE84; KVM_SET_REGS = 0x4090AE82
n = int(sys.argv[1])
kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
mem = mmap.mmap(-1, 0x1000, prot=mmap.PROT_READ | mmap.PROT_WRITE)
# mov al, 1; again: out 0x10, al; inc al; jmp again
mem.write(bytes([0xb0, 0x01, 0xe6, 0x10, 0xfe, 0xc0, 0xeb, 0xfa]))
addr = ctypes.addressof(ctypes.c_char.from_buffer(mem))
fcntl.ioctl(vm, KVM_SET_USER_MEMORY_REGION, struct.pack("IIQQQ", 0, 0, 0x1000, 0x1000, addr))
vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
size = fcntl.ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0)
run = mmap.mmap(vcpu, size, prot=mmap.PROT_READ | mmap.PROT_WRITE, flags=mmap.MAP_SHARED)
sregs = bytearray(312)
fcntl.ioctl(vcpu, KVM_GET_SREGS, sregs)
struct.pack_into("QIH", sregs, 0, 0, 0xffff, 0)  # cs: base 0, selector 0
fcntl.ioctl(vcpu, KVM_SET_SREGS, bytes(sregs))
regs = bytearray(144)
struct.pack_into("Q", regs, 16 * 8, 0x1000)  # rip
struct.pack_into("Q", regs, 17 * 8, 0x2)  # rflags
fcntl.ioctl(vcpu, KVM_SET_REGS, bytes(regs))
for i in range(n):
    fcntl.ioctl(vcpu, KVM_RUN, 0)
    reason = struct.unpack_from("I", run, 8)[0]
    if reason != 2:  # KVM_EXIT_IO
        sys.exit("unexpected exit reason %d" % reason)
print("ok", n)
"#;

/// How many `KVM_RUN`s the workload's guest makes.
pub const GUEST_RUNS: u64 = 3000;

/// The workload: the tiny KVM guest (when `/dev/kvm` and python3 are there), direct-I/O
/// disk writes, and a second of sleep. Returns the command and whether the guest runs.
pub fn workload(dir: &Path) -> (Vec<String>, bool) {
    let with_guest = Path::new("/dev/kvm").exists() && host::which("python3").is_some();
    let guest = if with_guest {
        std::fs::write(dir.join("guest.py"), KVM_GUEST_PY).unwrap();
        format!("python3 {}/guest.py {GUEST_RUNS} && ", dir.display())
    } else {
        skipped("the KVM guest part of the workload: no /dev/kvm or no python3 here");
        String::new()
    };
    let script = format!(
        "{guest}dd if=/dev/zero of={}/dd.out bs=64k count=64 oflag=direct 2>/dev/null; \
         rm -f {}/dd.out; sleep 1",
        dir.display(),
        dir.display()
    );
    (vec!["sh".into(), "-c".into(), script], with_guest)
}
