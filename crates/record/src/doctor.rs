//! `virtflow doctor`: what a host can record, what is missing, and the command that fixes
//! each missing thing. A pure function of a [`Host`].

use std::fmt;

use serde::Serialize;

use crate::backend::{self, Backend, PREFERENCE};
use crate::events::{self, Level, Need, Vocabulary};
use crate::host::{CpuVirt, Host, TRACEFS_DIR};

/// How one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Recording works, with less (a backend or some events missing).
    Warn,
    /// Recording cannot work until this is fixed.
    Missing,
}

/// One line of the doctor's report.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// The exact command (or step) that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The doctor's verdict on a host.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnosis {
    pub kernel: String,
    pub checks: Vec<Check>,
    /// The backend `virtflow record` would use (`--backend auto`).
    pub backend: Option<Backend>,
    /// Recording is possible.
    pub can_record: bool,
    /// The KVM tracepoints this host has (`kvm:` system), when tracefs is readable.
    pub kvm_tracepoints: Option<Vec<String>>,
}

impl Diagnosis {
    pub fn of(host: &Host) -> Diagnosis {
        let mut checks = Vec::new();
        let mut add = |name, status, detail: String, fix: Option<String>| {
            checks.push(Check {
                name,
                status,
                detail,
                fix,
            })
        };

        // Permission.
        let paranoid = host
            .perf_event_paranoid
            .map_or("unknown".to_string(), |p| p.to_string());
        if host.euid == 0 {
            add(
                "permission",
                Status::Ok,
                format!("root (perf_event_paranoid {paranoid})"),
                None,
            );
        } else if host.privileged() {
            add(
                "permission",
                Status::Ok,
                format!("CAP_SYS_ADMIN (perf_event_paranoid {paranoid})"),
                None,
            );
        } else if host.perf_allowed() {
            add(
                "permission",
                Status::Warn,
                format!(
                    "not root; perf only ({}perf_event_paranoid {paranoid}); tracefs and LTTng need root",
                    if host.cap_perfmon { "CAP_PERFMON, " } else { "" }
                ),
                Some("run as root: sudo virtflow record …".into()),
            );
        } else {
            add(
                "permission",
                Status::Missing,
                format!("not root, no CAP_PERFMON, perf_event_paranoid {paranoid}"),
                Some("run as root: sudo virtflow record … (or: sysctl -w kernel.perf_event_paranoid=-1 for perf)".into()),
            );
        }

        // tracefs.
        match (&host.tracefs.mounted_at, host.tracefs.supported) {
            (Some(dir), _) => add("tracefs", Status::Ok, format!("mounted at {}", dir.display()), None),
            (None, true) if host.tracefs.mount_point_exists => add(
                "tracefs",
                if host.privileged() { Status::Warn } else { Status::Missing },
                format!("not mounted (the kernel has it; `virtflow record` mounts it on {TRACEFS_DIR} when run as root)"),
                Some(format!("mount -t tracefs nodev {TRACEFS_DIR}")),
            ),
            (None, true) => add(
                "tracefs",
                Status::Missing,
                format!("not mounted, and {TRACEFS_DIR} does not exist (is /sys mounted?)"),
                Some(format!("mount -t sysfs sysfs /sys && mount -t tracefs nodev {TRACEFS_DIR}")),
            ),
            (None, false) => add(
                "tracefs",
                Status::Missing,
                "this kernel has no tracefs".into(),
                Some("use a kernel built with CONFIG_FTRACE and CONFIG_TRACEPOINTS".into()),
            ),
        }

        // Tracepoints.
        let kvm_fix = format!("modprobe {}", host.kvm_vendor_module());
        let kvm_tracepoints = host.tracepoints.as_ref().map(|_| {
            host.tracepoints_of("kvm")
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
        let essential_ok;
        // Why the tracepoints could not be listed, and what lets them be.
        let (unlisted, list_fix) = if host.tracefs.mounted_at.is_some() {
            (
                "tracefs is not readable (root only)",
                "run as root: sudo virtflow doctor".to_string(),
            )
        } else {
            (
                "tracefs is not mounted",
                format!("mount -t tracefs nodev {TRACEFS_DIR}"),
            )
        };
        match &kvm_tracepoints {
            None => {
                let loaded = host.kvm_modules.iter().any(|m| m == "kvm");
                add(
                    "kvm tracepoints",
                    if loaded {
                        Status::Warn
                    } else {
                        Status::Missing
                    },
                    if loaded {
                        format!("not checked: {unlisted} (the kvm module is loaded, so they should be there)")
                    } else {
                        format!("not checked: {unlisted}, and the kvm module is not loaded")
                    },
                    Some(if loaded { list_fix } else { kvm_fix.clone() }),
                );
                essential_ok = loaded;
            }
            Some(kvm) => {
                let ftrace = |need| {
                    events::catalogue(Level::Full, Vocabulary::Ftrace)
                        .filter(move |e| e.need == need)
                };
                let missing_essential: Vec<&str> = ftrace(Need::Essential)
                    .filter(|e| !e.ftrace.iter().any(|n| host.has_tracepoint(n)))
                    .map(|e| e.ftrace[0])
                    .collect();
                let essential_kvm: Vec<&str> = ftrace(Need::Essential)
                    .map(|e| e.ftrace[0])
                    .filter(|n| n.starts_with("kvm:"))
                    .collect();
                let kvm_missing: Vec<&&str> = missing_essential
                    .iter()
                    .filter(|n| n.starts_with("kvm:"))
                    .collect();
                if kvm.is_empty() {
                    add(
                        "kvm tracepoints",
                        Status::Missing,
                        "none: the kvm module is not loaded".into(),
                        Some(kvm_fix.clone()),
                    );
                } else if !kvm_missing.is_empty() {
                    add(
                        "kvm tracepoints",
                        Status::Missing,
                        format!("{} present, but not {}", kvm.len(), join(&kvm_missing)),
                        Some("use a kernel whose KVM has them (Linux ≥ 3.x on x86)".into()),
                    );
                } else {
                    add(
                        "kvm tracepoints",
                        Status::Ok,
                        format!(
                            "{} present, including {}",
                            kvm.len(),
                            essential_kvm.join(", ")
                        ),
                        None,
                    );
                }
                let other_missing: Vec<&&str> = missing_essential
                    .iter()
                    .filter(|n| !n.starts_with("kvm:"))
                    .collect();
                if !other_missing.is_empty() {
                    add(
                        "sched tracepoints",
                        Status::Missing,
                        format!("absent: {}", join(&other_missing)),
                        Some(events::absent_hint("sched")),
                    );
                }
                essential_ok = missing_essential.is_empty();
                let wanted_missing: Vec<&str> = ftrace(Need::Wanted)
                    .filter(|e| !e.ftrace.iter().any(|n| host.has_tracepoint(n)))
                    .map(|e| e.ftrace[0])
                    .collect();
                if wanted_missing.is_empty() {
                    add(
                        "other tracepoints",
                        Status::Ok,
                        "every sched, irq, timer, block, net and kmem event virtflow uses is present".into(),
                        None,
                    );
                } else {
                    add(
                        "other tracepoints",
                        Status::Warn,
                        format!(
                            "absent (recorded without, with less detail): {}",
                            wanted_missing.join(", ")
                        ),
                        None,
                    );
                }
            }
        }

        // KVM itself.
        if host.dev_kvm {
            add("/dev/kvm", Status::Ok, "present".into(), None);
        } else {
            add(
                "/dev/kvm",
                Status::Warn,
                "absent: no VM can run here (a trace of this host shows no VM)".into(),
                Some(kvm_fix.clone()),
            );
        }
        let virt = match host.cpu_virt {
            CpuVirt::Vmx => "Intel VT-x",
            CpuVirt::Svm => "AMD-V",
            CpuVirt::None => "no vmx/svm flag visible",
        };
        if host.kvm_modules.iter().any(|m| m == "kvm") {
            add(
                "kvm modules",
                Status::Ok,
                format!("{} (CPU: {virt})", host.kvm_modules.join(", ")),
                None,
            );
        } else {
            add(
                "kvm modules",
                Status::Warn,
                format!("not loaded (CPU: {virt})"),
                Some(if host.cpu_virt == CpuVirt::None {
                    "enable virtualisation (VT-x/AMD-V) in the firmware, or nested virtualisation for a VM, then modprobe kvm_intel / kvm_amd".into()
                } else {
                    kvm_fix.clone()
                }),
            );
        }

        // Tools and backends.
        let tool =
            |path: &Option<std::path::PathBuf>| path.as_ref().map(|p| p.display().to_string());
        match tool(&host.perf) {
            Some(p) => match host.perf_events_work {
                Some(false) => add(
                    "perf",
                    Status::Warn,
                    format!("{p}, but it cannot open system-wide tracepoint events here"),
                    backend::check(host, Backend::Perf).err().map(|u| u.fix),
                ),
                Some(true) => add(
                    "perf",
                    Status::Ok,
                    format!("{p} (system-wide tracepoints work)"),
                    None,
                ),
                None => add(
                    "perf",
                    Status::Ok,
                    format!("{p} (system-wide tracepoints not tried: {unlisted})"),
                    None,
                ),
            },
            None => add(
                "perf",
                Status::Warn,
                "not installed".into(),
                Some(host.install_command("linux-perf")),
            ),
        }
        match tool(&host.trace_cmd) {
            Some(p) => add("trace-cmd", Status::Ok, p, None),
            None => add(
                "trace-cmd",
                Status::Warn,
                "not installed: the tracefs backend writes text instead of .dat".into(),
                Some(host.install_command("trace-cmd")),
            ),
        }
        match (
            tool(&host.lttng),
            host.lttng_modules_loaded,
            host.lttng_modules_installed,
        ) {
            (Some(p), true, _) => add(
                "lttng",
                Status::Ok,
                format!("{p}, kernel modules loaded"),
                None,
            ),
            (Some(p), false, true) => add(
                "lttng",
                Status::Ok,
                format!("{p}, kernel modules installed (the session daemon loads them)"),
                None,
            ),
            (Some(p), false, false) => add(
                "lttng",
                Status::Warn,
                format!("{p}, but no LTTng kernel modules for {}", host.kernel),
                Some(
                    host.install_command("lttng-modules-dkms")
                        + &format!(" (needs linux-headers-{})", host.kernel),
                ),
            ),
            (None, loaded, _) => add(
                "lttng",
                Status::Warn,
                format!(
                    "lttng-tools not installed{}",
                    if loaded { " (modules are loaded)" } else { "" }
                ),
                Some(host.install_command("lttng-tools lttng-modules-dkms")),
            ),
        }

        let backend = PREFERENCE
            .into_iter()
            .find(|b| backend::check(host, *b).is_ok());
        let can_record = backend.is_some() && essential_ok;
        match backend {
            Some(b) => {
                let mut detail = format!("`virtflow record` would use {b}");
                let others: Vec<String> = PREFERENCE
                    .iter()
                    .filter(|o| **o != b && backend::check(host, **o).is_ok())
                    .map(|o| o.to_string())
                    .collect();
                if !others.is_empty() {
                    detail += &format!(" (also possible: {})", others.join(", "));
                }
                add("backend", Status::Ok, detail, None);
            }
            None => {
                let why: Vec<String> = PREFERENCE
                    .iter()
                    .filter_map(|b| backend::check(host, *b).err())
                    .map(|u| format!("{}: {}", u.backend, u.reason))
                    .collect();
                add(
                    "backend",
                    Status::Missing,
                    format!("none usable ({})", why.join("; ")),
                    None,
                );
            }
        }
        Diagnosis {
            kernel: host.kernel.clone(),
            checks,
            backend,
            can_record,
            kvm_tracepoints,
        }
    }
}

fn join(names: &[&&str]) -> String {
    names.iter().map(|n| **n).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "virtflow doctor — Linux {}", self.kernel)?;
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &self.checks {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Missing => "MISS",
            };
            writeln!(f, "  [{mark}] {:width$}  {}", c.name, c.detail)?;
            if let Some(fix) = &c.fix {
                writeln!(f, "         {:width$}  fix: {fix}", "")?;
            }
        }
        if self.can_record {
            write!(f, "This host can record: `virtflow record -- COMMAND` or `virtflow record --duration 10`.")
        } else {
            write!(f, "This host cannot record yet: fix the MISS lines above.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Tracefs;

    fn host_with(tracepoints: &[&str]) -> Host {
        Host {
            kernel: "6.1.0-test".into(),
            euid: 0,
            cap_sys_admin: true,
            perf_event_paranoid: Some(2),
            tracefs: Tracefs {
                mounted_at: Some(TRACEFS_DIR.into()),
                supported: true,
                mount_point_exists: true,
            },
            tracepoints: Some(tracepoints.iter().map(|s| s.to_string()).collect()),
            perf: Some("/usr/bin/perf".into()),
            perf_events_work: Some(true),
            dev_kvm: true,
            kvm_modules: vec!["kvm".into(), "kvm_amd".into()],
            cpu_virt: CpuVirt::Svm,
            ..Host::default()
        }
    }

    fn all_ftrace() -> Vec<&'static str> {
        events::CATALOGUE
            .iter()
            .flat_map(|e| e.ftrace.iter().copied())
            .collect()
    }

    fn check<'a>(d: &'a Diagnosis, name: &str) -> &'a Check {
        d.checks.iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn a_complete_host_can_record_with_perf() {
        let d = Diagnosis::of(&host_with(&all_ftrace()));
        assert!(d.can_record, "{d}");
        assert_eq!(d.backend, Some(Backend::Perf));
        assert_eq!(check(&d, "kvm tracepoints").status, Status::Ok);
        assert_eq!(check(&d, "other tracepoints").status, Status::Ok);
        // trace-cmd and lttng are missing: warnings with an install command.
        let tc = check(&d, "trace-cmd");
        assert_eq!(tc.status, Status::Warn);
        assert_eq!(tc.fix.as_deref(), Some("apt-get install trace-cmd"));
        let text = d.to_string();
        assert!(text.contains("This host can record"), "{text}");
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["can_record"], true);
        assert_eq!(json["backend"], "perf");
    }

    #[test]
    fn no_kvm_module_means_modprobe_for_this_cpu() {
        let mut h = host_with(&["sched:sched_switch", "sched:sched_wakeup"]);
        h.kvm_modules.clear();
        h.dev_kvm = false;
        let d = Diagnosis::of(&h);
        assert!(!d.can_record);
        let kvm = check(&d, "kvm tracepoints");
        assert_eq!(kvm.status, Status::Missing);
        assert_eq!(kvm.fix.as_deref(), Some("modprobe kvm_amd"));
        assert_eq!(d.kvm_tracepoints, Some(vec![]));
        assert!(d.to_string().contains("cannot record"));
    }

    #[test]
    fn unmounted_tracefs_tells_the_mount_command() {
        let mut h = host_with(&[]);
        h.tracefs.mounted_at = None;
        h.tracepoints = None;
        h.perf_events_work = None;
        let d = Diagnosis::of(&h);
        let t = check(&d, "tracefs");
        assert_eq!(t.status, Status::Warn);
        assert_eq!(
            t.fix.as_deref(),
            Some("mount -t tracefs nodev /sys/kernel/tracing")
        );
        // Root can mount it, and the kvm module is loaded: recording works.
        assert!(d.can_record, "{d}");
        assert_eq!(d.kvm_tracepoints, None);
    }

    #[test]
    fn a_user_without_rights_cannot_record() {
        let mut h = host_with(&all_ftrace());
        h.euid = 1000;
        h.cap_sys_admin = false;
        let d = Diagnosis::of(&h);
        assert!(!d.can_record);
        assert_eq!(check(&d, "permission").status, Status::Missing);
        assert_eq!(check(&d, "backend").status, Status::Missing);
        // tracefs is mounted but a user cannot list it: say that, not "not mounted".
        h.tracepoints = None;
        let d = Diagnosis::of(&h);
        let kvm = check(&d, "kvm tracepoints");
        assert!(kvm.detail.contains("not readable"), "{}", kvm.detail);
        assert_eq!(
            kvm.fix.as_deref(),
            Some("run as root: sudo virtflow doctor")
        );
    }
}
