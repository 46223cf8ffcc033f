//! The VMM processes running while a trace is recorded, and their command lines.
//!
//! Kernel tracers keep a task's 16-byte name (`comm`), never its command line, yet QEMU's
//! `-name` and `-uuid` are what an operator knows a VM by. So `virtflow record` looks for the
//! processes that hold KVM open — an entry of `/proc/PID/fd` linking to `/dev/kvm`,
//! `anon_inode:kvm-vm` or `anon_inode:kvm-vcpu:N` — when recording starts, every
//! [`RESCAN_EVERY`] while it runs (a VMM started meanwhile, the traced command itself), and
//! just before it stops. Each one's `/proc/PID/cmdline` (argv, NUL-separated) is kept:
//!
//! - in the trace, with the tracefs backend: `print` events written through tracefs
//!   `trace_marker` ([`marker_lines`]), one line per VMM:
//!   `virtflow-vmm pid=1234 argv=["/usr/bin/qemu-system-x86_64","-name","guest=web1"]`. The
//!   argv is a JSON array written in printable ASCII without spaces (anything else, the space
//!   included, is a `\uXXXX` escape), so the line survives every text form of the trace. A line
//!   longer than [`MARKER_MAX`] bytes (older kernels truncate writes at 1 KiB) is cut into
//!   parts, `virtflow-vmm pid=1234 part=1/3 argv=<first piece of the JSON text>` …, whose
//!   pieces joined in order are the JSON text.
//! - beside the trace, for every backend: the sidecar file [`sidecar_path`], a JSON array of
//!   [`VmmProcess`] (`[{"pid": 1234, "argv": […], "seen_at_ns": …}]`).
//!
//! `virtflow analyze` reads both. A command line may carry secrets (QEMU's
//! `-object secret,data=…`); `/proc/PID/cmdline` shows it to every local user already, and the
//! trace and the sidecar keep it: `virtflow record --no-vmm-cmdlines` records neither.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a marker line starts.
pub const MARKER: &str = "virtflow-vmm";
/// The sidecar's name inside a trace folder (LTTng); a trace file `F` has `F.vmm-cmdlines.json`.
pub const SIDECAR_NAME: &str = "vmm-cmdlines.json";
/// Longest marker line written: below the 1 KiB that kernels before 6.x keep of a write.
pub const MARKER_MAX: usize = 1000;
/// How often the running processes are looked at again while recording.
pub const RESCAN_EVERY: Duration = Duration::from_secs(1);

/// A process holding KVM open, as the recorder saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmmProcess {
    pub pid: u32,
    /// `/proc/PID/cmdline` split at its NULs (bytes that are not UTF-8 replaced).
    pub argv: Vec<String>,
    /// When the recorder first saw it with this argv: `CLOCK_MONOTONIC` in ns, the clock the
    /// tracefs and perf backends record with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_at_ns: Option<i64>,
}

/// What one look at `/proc` found.
#[derive(Debug, Default)]
pub struct Scan {
    pub found: Vec<VmmProcess>,
    /// Processes whose open files could not be listed (not root).
    pub unreadable: usize,
}

/// Whether an fd's link target is KVM: the device, a VM or a vCPU.
fn is_kvm(target: &Path) -> bool {
    let t = target.as_os_str().to_string_lossy();
    t == "/dev/kvm" || t == "anon_inode:kvm-vm" || t.starts_with("anon_inode:kvm-vcpu")
}

/// The processes under `proc_root` (normally `/proc`) that hold KVM open, by pid.
pub fn scan(proc_root: &Path) -> Scan {
    let mut out = Scan::default();
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let fds = match std::fs::read_dir(dir.join("fd")) {
            Ok(fds) => fds,
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                out.unreadable += 1;
                continue;
            }
            // Gone meanwhile, or a kernel without the entry: nothing to say.
            Err(_) => continue,
        };
        let holds_kvm = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| is_kvm(&t)));
        if !holds_kvm {
            continue;
        }
        let Ok(bytes) = std::fs::read(dir.join("cmdline")) else {
            continue;
        };
        let argv = split_cmdline(&bytes);
        if !argv.is_empty() {
            out.found.push(VmmProcess {
                pid,
                argv,
                seen_at_ns: None,
            });
        }
    }
    out.found.sort_by_key(|v| v.pid);
    out
}

/// `/proc/PID/cmdline`: arguments each ended by a NUL.
fn split_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The argv as a JSON array in printable ASCII without spaces (see the module documentation).
fn json_ascii(argv: &[String]) -> String {
    use std::fmt::Write;
    let mut s = String::from("[");
    for (i, arg) in argv.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('"');
        for c in arg.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c if c.is_ascii_graphic() => s.push(c),
                c => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        let _ = write!(s, "\\u{u:04x}");
                    }
                }
            }
        }
        s.push('"');
    }
    s.push(']');
    s
}

/// The `trace_marker` lines that tell one VMM's command line (see the module documentation).
pub fn marker_lines(pid: u32, argv: &[String]) -> Vec<String> {
    let json = json_ascii(argv);
    let whole = format!("{MARKER} pid={pid} argv={json}");
    if whole.len() <= MARKER_MAX {
        return vec![whole];
    }
    // The number of parts decides the header's width: grow it until the pieces fit.
    let mut n = 2usize;
    let room = loop {
        let head = format!("{MARKER} pid={pid} part={n}/{n} argv=").len();
        let room = MARKER_MAX - head;
        let needed = json.len().div_ceil(room);
        if needed <= n {
            break room;
        }
        n = needed;
    };
    // The JSON text is ASCII: any byte boundary is a character boundary.
    let pieces: Vec<&str> = json
        .as_bytes()
        .chunks(room)
        .map(|c| std::str::from_utf8(c).expect("ASCII"))
        .collect();
    let total = pieces.len();
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| format!("{MARKER} pid={pid} part={}/{total} argv={piece}", i + 1))
        .collect()
}

/// Where the sidecar of the trace `out` goes: inside a trace folder, beside a trace file.
pub fn sidecar_path(out: &Path, out_is_dir: bool) -> PathBuf {
    if out_is_dir {
        out.join(SIDECAR_NAME)
    } else {
        let mut name = out.file_name().unwrap_or_default().to_os_string();
        name.push(".");
        name.push(SIDECAR_NAME);
        out.with_file_name(name)
    }
}

/// The sidecar that belongs to a TRACE argument, if one is there: `F.vmm-cmdlines.json`
/// beside a file `F`; in a folder, or in its parent (an LTTng session's `kernel/` folder),
/// `vmm-cmdlines.json`.
pub fn find_sidecar(trace: &Path) -> Option<PathBuf> {
    let candidates = if trace.is_dir() {
        let mut c = vec![trace.join(SIDECAR_NAME)];
        if let Some(parent) = trace.parent() {
            c.push(parent.join(SIDECAR_NAME));
        }
        c
    } else if trace.file_name().is_some_and(|n| n == "metadata") {
        // A CTF `metadata` file names its folder.
        let dir = trace.parent().unwrap_or(Path::new("."));
        let mut c = vec![dir.join(SIDECAR_NAME)];
        if let Some(parent) = dir.parent() {
            c.push(parent.join(SIDECAR_NAME));
        }
        c
    } else {
        vec![sidecar_path(trace, false)]
    };
    candidates.into_iter().find(|p| p.is_file())
}

/// Reads a sidecar; the error names the file, line and column.
pub fn read_sidecar(path: &Path) -> Result<Vec<VmmProcess>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| {
        format!(
            "{}: not a list of VMM command lines (line {}, column {}): {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

/// Writes a sidecar.
pub(crate) fn write_sidecar(path: &Path, vmms: &[VmmProcess]) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(vmms).map_err(std::io::Error::from)?;
    text.push(b'\n');
    std::fs::write(path, text)
}

/// `CLOCK_MONOTONIC` now, in ns.
fn monotonic_ns() -> Option<i64> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok()?;
    Some(t.tv_sec() * 1_000_000_000 + t.tv_nsec())
}

/// The VMMs seen so far in one recording.
pub(crate) struct Watch {
    proc_root: PathBuf,
    pub seen: Vec<VmmProcess>,
    pub unreadable: usize,
}

impl Watch {
    pub fn new(proc_root: &Path) -> Watch {
        Watch {
            proc_root: proc_root.to_path_buf(),
            seen: Vec::new(),
            unreadable: 0,
        }
    }

    /// Looks at the processes again; returns the VMMs not seen before (a new pid, or a pid
    /// now running another command line).
    pub fn poll(&mut self) -> Vec<VmmProcess> {
        let scan = scan(&self.proc_root);
        self.unreadable = self.unreadable.max(scan.unreadable);
        let now = monotonic_ns();
        let mut new = Vec::new();
        for mut v in scan.found {
            if self.seen.iter().any(|s| s.pid == v.pid && s.argv == v.argv) {
                continue;
            }
            v.seen_at_ns = now;
            self.seen.push(v.clone());
            new.push(v);
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fake `/proc`: pid → (fd link targets, cmdline bytes).
    fn fake_proc(name: &str, procs: &[(&str, &[&str], &[u8])]) -> PathBuf {
        let root = std::env::temp_dir().join(format!("virtflow-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (pid, fds, cmdline) in procs {
            let dir = root.join(pid);
            std::fs::create_dir_all(dir.join("fd")).unwrap();
            for (i, target) in fds.iter().enumerate() {
                symlink(target, dir.join("fd").join(i.to_string())).unwrap();
            }
            std::fs::write(dir.join("cmdline"), cmdline).unwrap();
        }
        // Not processes: files and folders that are not numbers.
        std::fs::create_dir_all(root.join("self")).unwrap();
        std::fs::write(root.join("uptime"), "1.0 1.0\n").unwrap();
        root
    }

    #[test]
    fn scan_finds_the_processes_holding_kvm_and_reads_their_argv() {
        let root = fake_proc(
            "fake-proc",
            &[
                // libvirt's QEMU: the device, the VM and a vCPU.
                (
                    "4242",
                    &[
                        "/dev/null",
                        "/dev/kvm",
                        "anon_inode:kvm-vm",
                        "anon_inode:kvm-vcpu:0",
                    ],
                    b"/usr/bin/qemu-system-x86_64\0-name\0guest=web1,debug-threads=on\0",
                ),
                // Only a vCPU fd left open.
                (
                    "77",
                    &["anon_inode:kvm-vcpu:3"],
                    b"firecracker\0--api-sock\0/run/fc.sock\0",
                ),
                // Not a VMM.
                ("1", &["/dev/console", "socket:[123]"], b"/sbin/init\0"),
                // A kernel thread: no argv, no fds.
                ("2", &[], b""),
            ],
        );
        let s = scan(&root);
        assert_eq!(s.unreadable, 0);
        assert_eq!(
            s.found,
            vec![
                VmmProcess {
                    pid: 77,
                    argv: vec![
                        "firecracker".into(),
                        "--api-sock".into(),
                        "/run/fc.sock".into()
                    ],
                    seen_at_ns: None,
                },
                VmmProcess {
                    pid: 4242,
                    argv: vec![
                        "/usr/bin/qemu-system-x86_64".into(),
                        "-name".into(),
                        "guest=web1,debug-threads=on".into()
                    ],
                    seen_at_ns: None,
                },
            ]
        );
        // A second look finds nothing new; a pid that now runs another argv is new.
        let mut w = Watch::new(&root);
        assert_eq!(w.poll().len(), 2);
        assert!(w.poll().is_empty());
        std::fs::write(root.join("77/cmdline"), b"crosvm\0run\0").unwrap();
        let new = w.poll();
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].argv, vec!["crosvm".to_string(), "run".to_string()]);
        assert!(new[0].seen_at_ns.is_some_and(|t| t > 0));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn cmdline_without_final_nul_and_empty_arguments() {
        assert_eq!(split_cmdline(b"a\0\0b"), vec!["a", "", "b"]);
        assert_eq!(split_cmdline(b"a b c"), vec!["a b c"]);
        assert!(split_cmdline(b"").is_empty());
    }

    #[test]
    fn a_short_command_line_is_one_marker_line() {
        let argv: Vec<String> = [
            "/usr/bin/qemu-system-x86_64",
            "-name",
            "my vm",
            "a\"b\\c",
            "é",
        ]
        .map(String::from)
        .to_vec();
        // Written out by hand from the rules: space → \u0020, quote and backslash escaped,
        // é (U+00E9) → \u00e9.
        assert_eq!(
            marker_lines(1234, &argv),
            vec![
                r#"virtflow-vmm pid=1234 argv=["/usr/bin/qemu-system-x86_64","-name","my\u0020vm","a\"b\\c","\u00e9"]"#
            ]
        );
        // A character outside the BMP is a surrogate pair, as JSON writes it.
        assert_eq!(
            marker_lines(1, &["😀".to_string()]),
            vec![r#"virtflow-vmm pid=1 argv=["\ud83d\ude00"]"#]
        );
    }

    #[test]
    fn a_long_command_line_is_cut_into_parts_that_join_into_the_json_text() {
        let argv: Vec<String> = (0..300).map(|i| format!("-arg{i}")).collect();
        let json = json_ascii(&argv);
        let lines = marker_lines(99, &argv);
        assert!(lines.len() > 1);
        let mut joined = String::new();
        for (i, line) in lines.iter().enumerate() {
            assert!(line.len() <= MARKER_MAX, "{} bytes", line.len());
            let head = format!("virtflow-vmm pid=99 part={}/{} argv=", i + 1, lines.len());
            joined += line.strip_prefix(&head).expect(&head);
        }
        assert_eq!(joined, json);
        let back: Vec<String> = serde_json::from_str(&joined).unwrap();
        assert_eq!(back, argv);
    }

    #[test]
    fn sidecar_names() {
        assert_eq!(
            sidecar_path(Path::new("out/trace.dat"), false),
            PathBuf::from("out/trace.dat.vmm-cmdlines.json")
        );
        assert_eq!(
            sidecar_path(Path::new("virtflow-lttng"), true),
            PathBuf::from("virtflow-lttng/vmm-cmdlines.json")
        );
    }

    #[test]
    fn sidecar_round_trip_and_a_bad_one_names_where() {
        let dir = std::env::temp_dir().join(format!("virtflow-sidecar-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("session/kernel")).unwrap();
        std::fs::write(dir.join("session/kernel/metadata"), "").unwrap();
        let vmms = vec![VmmProcess {
            pid: 7,
            argv: vec!["qemu-kvm".into(), "-name".into(), "db".into()],
            seen_at_ns: Some(5),
        }];
        let path = sidecar_path(&dir.join("session"), true);
        write_sidecar(&path, &vmms).unwrap();
        assert_eq!(read_sidecar(&path).unwrap(), vmms);
        // Found from the session folder, its `kernel/` trace and that trace's metadata.
        for t in ["session", "session/kernel", "session/kernel/metadata"] {
            assert_eq!(find_sidecar(&dir.join(t)), Some(path.clone()), "{t}");
        }
        let trace = dir.join("t.dat");
        std::fs::write(&trace, "x").unwrap();
        assert_eq!(find_sidecar(&trace), None);
        std::fs::write(sidecar_path(&trace, false), "[{\"pid\": 1,\n \"argv\": 3}]").unwrap();
        let err = read_sidecar(&sidecar_path(&trace, false)).unwrap_err();
        assert!(err.contains("t.dat.vmm-cmdlines.json"), "{err}");
        assert!(err.contains("line 2, column"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
