//! What a host offers for recording, as plain data.
//!
//! [`Host::probe`] reads the running machine (procfs, sysfs, tracefs, `PATH`); everything
//! else in this crate — backend choice, event plans, the doctor's verdict — is a function of a
//! [`Host`], so tests describe fake hosts instead of needing one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

/// Where tracefs usually lives; the place to mount it when it is not mounted.
pub const TRACEFS_DIR: &str = "/sys/kernel/tracing";

/// The tracefs situation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tracefs {
    /// Where it is mounted (`/sys/kernel/tracing`, or `…/debug/tracing` under debugfs).
    pub mounted_at: Option<PathBuf>,
    /// The kernel knows the `tracefs` file system (`/proc/filesystems`).
    pub supported: bool,
    /// The directory to mount it on exists.
    pub mount_point_exists: bool,
}

/// The CPU's hardware virtualisation, from `/proc/cpuinfo`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuVirt {
    /// Intel VT-x (`vmx` flag): `kvm_intel`.
    Vmx,
    /// AMD-V (`svm` flag): `kvm_amd`.
    Svm,
    /// Neither flag visible (no support, disabled in firmware, or a guest without nested
    /// virtualisation).
    #[default]
    None,
}

/// How this distribution installs packages, for the fix commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Packages {
    #[default]
    Apt,
    Dnf,
}

/// Everything the recording decisions depend on.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Host {
    /// `uname -r`.
    pub kernel: String,
    /// Effective user id.
    pub euid: u32,
    /// Effective capabilities relevant to tracing.
    pub cap_sys_admin: bool,
    pub cap_perfmon: bool,
    /// `/proc/sys/kernel/perf_event_paranoid`.
    pub perf_event_paranoid: Option<i32>,
    pub tracefs: Tracefs,
    /// Tracepoints as `system:name`; `None` when tracefs is not mounted or not readable.
    pub tracepoints: Option<BTreeSet<String>>,
    pub lttng: Option<PathBuf>,
    /// LTTng kernel modules are loaded (`lttng_tracer`).
    pub lttng_modules_loaded: bool,
    /// LTTng kernel modules are installed for this kernel (the session daemon loads them).
    pub lttng_modules_installed: bool,
    pub perf: Option<PathBuf>,
    /// A system-wide tracepoint counter could be opened (`perf stat -a`); `None` when not
    /// tried (no perf, no tracefs).
    pub perf_events_work: Option<bool>,
    pub trace_cmd: Option<PathBuf>,
    pub dev_kvm: bool,
    /// KVM modules present in `/sys/module` (`kvm`, `kvm_intel`, `kvm_amd`…).
    pub kvm_modules: Vec<String>,
    pub cpu_virt: CpuVirt,
    pub packages: Packages,
    pub cpus: usize,
    pub mem_available_kb: Option<u64>,
}

impl Host {
    /// Reads this machine. Runs `perf stat` once (a fraction of a second) to see whether
    /// perf events are really usable — containers often forbid them whatever the files say.
    pub fn probe() -> Host {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let cap_eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0);
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(u32::MAX);
        let mut host = Host {
            kernel: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default(),
            euid,
            cap_sys_admin: cap_eff & (1 << 21) != 0,
            cap_perfmon: cap_eff & (1 << 38) != 0,
            perf_event_paranoid: read_trimmed("/proc/sys/kernel/perf_event_paranoid")
                .and_then(|s| s.parse().ok()),
            tracefs: probe_tracefs(),
            tracepoints: None,
            lttng: which("lttng"),
            lttng_modules_loaded: Path::new("/sys/module/lttng_tracer").exists(),
            lttng_modules_installed: false,
            perf: which("perf"),
            perf_events_work: None,
            trace_cmd: which("trace-cmd"),
            dev_kvm: Path::new("/dev/kvm").exists(),
            kvm_modules: kvm_modules(),
            cpu_virt: cpu_virt(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default()),
            packages: packages(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_available_kb: mem_available_kb(),
        };
        host.lttng_modules_installed = host.lttng_modules_loaded
            || module_installed(&format!("/lib/modules/{}", host.kernel), "lttng-tracer");
        host.refresh_tracepoints();
        host
    }

    /// Re-reads tracefs (after mounting it) and re-tries perf events.
    pub fn refresh_tracepoints(&mut self) {
        self.tracefs = probe_tracefs();
        self.tracepoints = self
            .tracefs
            .mounted_at
            .as_deref()
            .and_then(list_tracepoints);
        self.perf_events_work = match (&self.perf, &self.tracepoints) {
            (Some(perf), Some(tp)) if tp.contains("sched:sched_switch") => Some(perf_works(perf)),
            _ => None,
        };
    }

    /// Root, or the capability tracefs and the LTTng session daemon need.
    pub fn privileged(&self) -> bool {
        self.euid == 0 || self.cap_sys_admin
    }

    /// May open system-wide tracepoint events with perf.
    pub fn perf_allowed(&self) -> bool {
        self.privileged() || self.cap_perfmon || self.perf_event_paranoid.is_some_and(|p| p <= -1)
    }

    /// tracefs is mounted, or this process may mount it.
    pub fn tracefs_reachable(&self) -> bool {
        self.tracefs.mounted_at.is_some()
            || (self.tracefs.supported && self.tracefs.mount_point_exists && self.privileged())
    }

    /// The host has this tracepoint (`system:name`).
    pub fn has_tracepoint(&self, name: &str) -> bool {
        self.tracepoints.as_ref().is_some_and(|t| t.contains(name))
    }

    /// Tracepoints of one system (`kvm`), sorted.
    pub fn tracepoints_of(&self, system: &str) -> Vec<&str> {
        let prefix = format!("{system}:");
        self.tracepoints
            .iter()
            .flatten()
            .filter_map(|t| t.strip_prefix(&prefix))
            .collect()
    }

    /// The vendor KVM module for this CPU.
    pub fn kvm_vendor_module(&self) -> &'static str {
        match self.cpu_virt {
            CpuVirt::Svm => "kvm_amd",
            _ => "kvm_intel",
        }
    }

    /// The command that installs a package, by its Debian name.
    pub fn install_command(&self, debian_package: &str) -> String {
        match (self.packages, debian_package) {
            (Packages::Apt, "linux-perf") => {
                "apt-get install linux-perf (Ubuntu: apt-get install linux-tools-$(uname -r))"
                    .to_string()
            }
            (Packages::Apt, p) => format!("apt-get install {p}"),
            (Packages::Dnf, "linux-perf") => "dnf install perf".to_string(),
            (Packages::Dnf, "lttng-tools lttng-modules-dkms") => {
                "dnf install lttng-tools (LTTng modules: build lttng-modules for this kernel)"
                    .to_string()
            }
            (Packages::Dnf, p) => format!("dnf install {p}"),
        }
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The first executable `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn probe_tracefs() -> Tracefs {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    Tracefs {
        mounted_at: tracefs_mount(&mounts),
        supported: std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| {
            f.lines()
                .any(|l| l.split_whitespace().last() == Some("tracefs"))
        }),
        mount_point_exists: Path::new(TRACEFS_DIR).is_dir(),
    }
}

/// Where tracefs is mounted, from `/proc/self/mounts` text: a tracefs mount (preferring
/// `/sys/kernel/tracing`), else debugfs's `tracing` folder when debugfs is mounted.
pub fn tracefs_mount(mounts: &str) -> Option<PathBuf> {
    let mut tracefs = Vec::new();
    let mut debugfs = None;
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (_, dir, fstype) = (f.next(), f.next(), f.next());
        let Some(dir) = dir.map(unescape_mount_path) else {
            continue;
        };
        match fstype {
            Some("tracefs") => tracefs.push(PathBuf::from(dir)),
            Some("debugfs") => debugfs = Some(PathBuf::from(dir).join("tracing")),
            _ => {}
        }
    }
    if let Some(p) = tracefs.iter().find(|p| p.as_os_str() == TRACEFS_DIR) {
        return Some(p.clone());
    }
    tracefs
        .into_iter()
        .next()
        .or(debugfs.filter(|d| d.join("events").is_dir()))
}

/// `/proc/mounts` writes spaces and tabs in paths as octal escapes.
fn unescape_mount_path(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t")
}

fn list_tracepoints(root: &Path) -> Option<BTreeSet<String>> {
    let mut set = BTreeSet::new();
    for system in std::fs::read_dir(root.join("events")).ok()?.flatten() {
        if !system.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let sys = system.file_name().to_string_lossy().into_owned();
        for event in std::fs::read_dir(system.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if event.file_type().is_ok_and(|t| t.is_dir()) {
                set.insert(format!("{sys}:{}", event.file_name().to_string_lossy()));
            }
        }
    }
    Some(set)
}

fn perf_works(perf: &Path) -> bool {
    Command::new(perf)
        .args([
            "stat",
            "-a",
            "-x,",
            "-e",
            "sched:sched_switch",
            "--",
            "true",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn kvm_modules() -> Vec<String> {
    let mut mods: Vec<String> = std::fs::read_dir("/sys/module")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n == "kvm" || n.starts_with("kvm_"))
        .collect();
    mods.sort();
    mods
}

/// `vmx`/`svm` from `/proc/cpuinfo` text.
pub fn cpu_virt(cpuinfo: &str) -> CpuVirt {
    let Some(flags) = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split_once(':'))
    else {
        return CpuVirt::None;
    };
    let mut words = flags.1.split_whitespace();
    if words.clone().any(|w| w == "vmx") {
        CpuVirt::Vmx
    } else if words.any(|w| w == "svm") {
        CpuVirt::Svm
    } else {
        CpuVirt::None
    }
}

fn packages() -> Packages {
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let like_rpm = os.lines().any(|l| {
        (l.starts_with("ID=") || l.starts_with("ID_LIKE="))
            && ["fedora", "rhel", "centos"].iter().any(|d| l.contains(d))
    });
    if like_rpm {
        Packages::Dnf
    } else {
        Packages::Apt
    }
}

fn mem_available_kb() -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A module file `name.ko*` (dashes or underscores) somewhere under `dir`.
fn module_installed(dir: &str, name: &str) -> bool {
    let underscored = name.replace('-', "_");
    let mut stack = vec![PathBuf::from(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let file = e.file_name();
            let file = file.to_string_lossy();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                // `build`/`source` link to kernel sources: never modules.
                if file != "build" && file != "source" {
                    stack.push(e.path());
                }
            } else if let Some(stem) = file.split(".ko").next().filter(|_| file.contains(".ko")) {
                if stem == name || stem == underscored {
                    return true;
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracefs_mount_prefers_the_standard_place_then_debugfs() {
        let m = "sysfs /sys sysfs rw 0 0\n\
                 tracefs /mnt/my\\040trace tracefs rw 0 0\n\
                 tracefs /sys/kernel/tracing tracefs rw 0 0\n";
        assert_eq!(tracefs_mount(m), Some(PathBuf::from(TRACEFS_DIR)));
        let m = "tracefs /mnt/my\\040trace tracefs rw 0 0\n";
        assert_eq!(tracefs_mount(m), Some(PathBuf::from("/mnt/my trace")));
        assert_eq!(tracefs_mount("proc /proc proc rw 0 0\n"), None);
    }

    #[test]
    fn cpu_flags() {
        assert_eq!(cpu_virt("flags\t\t: fpu vme svm lm\n"), CpuVirt::Svm);
        assert_eq!(cpu_virt("flags\t\t: fpu vmx lm\nflags : x"), CpuVirt::Vmx);
        assert_eq!(cpu_virt("flags\t\t: fpu lm\n"), CpuVirt::None);
    }

    #[test]
    fn permissions() {
        let mut h = Host {
            euid: 1000,
            perf_event_paranoid: Some(2),
            ..Host::default()
        };
        assert!(!h.privileged() && !h.perf_allowed());
        h.cap_perfmon = true;
        assert!(!h.privileged() && h.perf_allowed());
        h.cap_perfmon = false;
        h.perf_event_paranoid = Some(-1);
        assert!(h.perf_allowed());
        h.euid = 0;
        assert!(h.privileged());
    }
}
