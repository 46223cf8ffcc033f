//! Choosing a backend for a host, and sizing its buffers.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::events::Level;
use crate::host::{Host, TRACEFS_DIR};
use crate::RecordError;

/// A way of recording a kernel trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// An LTTng kernel session: CTF, streamed to disk, LTTng's own event names.
    Lttng,
    /// `perf record -a`: perf.data, streamed to disk.
    Perf,
    /// tracefs's ring buffer, then `trace-cmd extract` (a `.dat`) or the `trace` text.
    Tracefs,
}

/// The order `auto` tries backends in: LTTng first (lowest overhead, streamed, richest
/// metadata), then perf (streamed), then the plain ring buffer (bounded by memory).
pub const PREFERENCE: [Backend; 3] = [Backend::Lttng, Backend::Perf, Backend::Tracefs];

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Lttng => "lttng",
            Backend::Perf => "perf",
            Backend::Tracefs => "tracefs",
        })
    }
}

/// `--backend`: one backend, or the best the host has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendChoice {
    #[default]
    Auto,
    Only(Backend),
}

impl FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => BackendChoice::Auto,
            "lttng" => BackendChoice::Only(Backend::Lttng),
            "perf" => BackendChoice::Only(Backend::Perf),
            "tracefs" => BackendChoice::Only(Backend::Tracefs),
            _ => {
                return Err(format!(
                    "unknown backend `{s}` (auto, lttng, perf, tracefs)"
                ))
            }
        })
    }
}

/// Why a backend cannot run here, and the command that would change that.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unavailable {
    pub backend: Backend,
    pub reason: String,
    pub fix: String,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (fix: {})", self.backend, self.reason, self.fix)
    }
}

/// Whether `backend` can record on `host`; the first missing requirement otherwise.
pub fn check(host: &Host, backend: Backend) -> Result<(), Unavailable> {
    let no = |reason: &str, fix: String| {
        Err(Unavailable {
            backend,
            reason: reason.to_string(),
            fix,
        })
    };
    let sudo = "run as root (sudo virtflow record …)".to_string();
    match backend {
        Backend::Lttng => {
            if host.lttng.is_none() {
                return no(
                    "the lttng command is not installed",
                    host.install_command("lttng-tools lttng-modules-dkms"),
                );
            }
            if !host.lttng_modules_loaded && !host.lttng_modules_installed {
                return no(
                    "no LTTng kernel modules for this kernel",
                    host.install_command("lttng-modules-dkms")
                        + &format!(" (needs the headers of {})", host.kernel),
                );
            }
            if !host.privileged() {
                return no("kernel tracing with LTTng needs root", sudo);
            }
        }
        Backend::Perf => {
            if host.perf.is_none() {
                return no("perf is not installed", host.install_command("linux-perf"));
            }
            if !host.perf_allowed() {
                return no(
                    "not allowed to trace the whole system with perf",
                    format!(
                        "{sudo}, or grant CAP_PERFMON, or sysctl -w kernel.perf_event_paranoid=-1"
                    ),
                );
            }
            if !host.tracefs_reachable() {
                return no(
                    "perf needs tracefs to find tracepoints, and it is not mounted",
                    format!("mount -t tracefs nodev {TRACEFS_DIR}"),
                );
            }
            if host.perf_events_work == Some(false) {
                return no(
                    "perf cannot open system-wide tracepoint events here (a container or \
                     seccomp policy forbids perf_event_open)",
                    "run on the host itself, or allow perf_event_open \
                     (docker: --cap-add PERFMON --security-opt seccomp=unconfined)"
                        .to_string(),
                );
            }
        }
        Backend::Tracefs => {
            if !host.privileged() {
                return no("writing tracefs needs root", sudo);
            }
            if !host.tracefs_reachable() {
                return no(
                    if host.tracefs.supported {
                        "tracefs is not mounted and there is no place to mount it"
                    } else {
                        "this kernel has no tracefs"
                    },
                    if host.tracefs.supported {
                        format!("mkdir -p {TRACEFS_DIR} && mount -t tracefs nodev {TRACEFS_DIR}")
                    } else {
                        "use a kernel built with CONFIG_FTRACE".to_string()
                    },
                );
            }
        }
    }
    Ok(())
}

/// The backend `choice` resolves to on `host`.
pub fn select(host: &Host, choice: BackendChoice) -> Result<Backend, RecordError> {
    match choice {
        BackendChoice::Only(b) => check(host, b)
            .map(|()| b)
            .map_err(|u| RecordError::BackendUnavailable(vec![u])),
        BackendChoice::Auto => {
            let mut why = Vec::new();
            for b in PREFERENCE {
                match check(host, b) {
                    Ok(()) => return Ok(b),
                    Err(u) => why.push(u),
                }
            }
            Err(RecordError::BackendUnavailable(why))
        }
    }
}

/// Per-CPU buffer size in KiB.
///
/// perf and LTTng stream to disk while recording, so their buffers only absorb bursts:
/// 8 MiB per CPU (16 at `full`). The tracefs ring buffer is read only at the end, so it must
/// hold the whole recording: about 4 MiB per CPU and second at `basic` (a busy KVM host's
/// exit/entry rate), twice that at `full`, at least 8 MiB, 64 MiB when the length is unknown,
/// at most 1 GiB. The page events of `memory` count as one more `basic` (tens of thousands
/// of events per second on a busy host, about 40 bytes each). Whatever the choice (even
/// `--buffer-kb`), all CPUs together take at most a quarter of the available memory.
pub fn buffer_kb_per_cpu(
    backend: Backend,
    level: Level,
    memory: bool,
    duration_s: Option<f64>,
    requested_kb: Option<u64>,
    host: &Host,
) -> u64 {
    let factor = if level == Level::Full { 2 } else { 1 } + memory as u64;
    let wanted = requested_kb.unwrap_or_else(|| match backend {
        Backend::Lttng | Backend::Perf => 8 * 1024 * factor,
        Backend::Tracefs => match duration_s {
            Some(d) => ((4.0 * 1024.0 * factor as f64 * d) as u64).clamp(8 * 1024, 1024 * 1024),
            None => 64 * 1024 * factor,
        },
    });
    let cap = host
        .mem_available_kb
        .map(|m| m / 4 / host.cpus.max(1) as u64)
        .unwrap_or(u64::MAX);
    wanted.min(cap).max(256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Tracefs;

    fn root_host() -> Host {
        Host {
            kernel: "6.1.0".into(),
            euid: 0,
            cap_sys_admin: true,
            perf_event_paranoid: Some(2),
            tracefs: Tracefs {
                mounted_at: Some(TRACEFS_DIR.into()),
                supported: true,
                mount_point_exists: true,
            },
            tracepoints: Some(["sched:sched_switch".to_string()].into()),
            perf: Some("/usr/bin/perf".into()),
            perf_events_work: Some(true),
            trace_cmd: Some("/usr/bin/trace-cmd".into()),
            cpus: 4,
            mem_available_kb: Some(16 << 20),
            ..Host::default()
        }
    }

    #[test]
    fn auto_prefers_lttng_then_perf_then_tracefs() {
        let mut h = root_host();
        assert_eq!(select(&h, BackendChoice::Auto).unwrap(), Backend::Perf);
        h.lttng = Some("/usr/bin/lttng".into());
        // The command without modules is not enough.
        assert_eq!(select(&h, BackendChoice::Auto).unwrap(), Backend::Perf);
        h.lttng_modules_installed = true;
        assert_eq!(select(&h, BackendChoice::Auto).unwrap(), Backend::Lttng);
        h.lttng = None;
        h.perf_events_work = Some(false); // a container
        assert_eq!(select(&h, BackendChoice::Auto).unwrap(), Backend::Tracefs);
        h.perf = None;
        h.perf_events_work = None;
        assert_eq!(select(&h, BackendChoice::Auto).unwrap(), Backend::Tracefs);
    }

    #[test]
    fn unmounted_tracefs_is_fine_for_root_but_not_without_a_mount_point() {
        let mut h = root_host();
        h.tracefs.mounted_at = None;
        h.tracepoints = None;
        h.perf_events_work = None;
        assert_eq!(
            select(&h, BackendChoice::Only(Backend::Tracefs)).unwrap(),
            Backend::Tracefs
        );
        h.tracefs.mount_point_exists = false;
        let err = select(&h, BackendChoice::Only(Backend::Tracefs)).unwrap_err();
        assert!(err.to_string().contains("mount -t tracefs"), "{err}");
    }

    #[test]
    fn unprivileged_users_get_the_reason_and_fix_for_every_backend() {
        let mut h = root_host();
        h.euid = 1000;
        h.cap_sys_admin = false;
        h.lttng = Some("/usr/bin/lttng".into());
        h.lttng_modules_loaded = true;
        let err = select(&h, BackendChoice::Auto).unwrap_err();
        let RecordError::BackendUnavailable(why) = &err else {
            panic!("{err}")
        };
        assert_eq!(
            why.iter().map(|u| u.backend).collect::<Vec<_>>(),
            PREFERENCE.to_vec()
        );
        let text = err.to_string();
        assert!(
            text.contains("root") && text.contains("perf_event_paranoid"),
            "{text}"
        );
        // CAP_PERFMON is enough for perf.
        h.cap_perfmon = true;
        assert_eq!(select(&h, BackendChoice::Auto).unwrap(), Backend::Perf);
    }

    #[test]
    fn explicit_backend_that_is_missing_names_the_install_command() {
        let mut h = root_host();
        h.perf = None;
        let err = select(&h, BackendChoice::Only(Backend::Perf)).unwrap_err();
        assert!(
            err.to_string().contains("apt-get install linux-perf"),
            "{err}"
        );
    }

    #[test]
    fn buffer_sizes() {
        let h = root_host();
        let kb = |b, l, d, r| buffer_kb_per_cpu(b, l, false, d, r, &h);
        assert_eq!(kb(Backend::Perf, Level::Basic, Some(100.0), None), 8 * 1024);
        assert_eq!(kb(Backend::Perf, Level::Full, None, None), 16 * 1024);
        // The ring buffer grows with the duration, within bounds.
        assert_eq!(
            kb(Backend::Tracefs, Level::Basic, Some(1.0), None),
            8 * 1024
        );
        assert_eq!(
            kb(Backend::Tracefs, Level::Basic, Some(10.0), None),
            40 * 1024
        );
        assert_eq!(
            kb(Backend::Tracefs, Level::Full, Some(10.0), None),
            80 * 1024
        );
        assert_eq!(kb(Backend::Tracefs, Level::Basic, None, None), 64 * 1024);
        // Memory caps everything, even an explicit request: 16 GiB / 4 / 4 CPUs = 1 GiB.
        assert_eq!(kb(Backend::Tracefs, Level::Full, Some(1e6), None), 1 << 20);
        assert_eq!(
            kb(Backend::Perf, Level::Basic, None, Some(4 << 20)),
            1 << 20
        );
        assert_eq!(kb(Backend::Perf, Level::Basic, None, Some(2048)), 2048);
        // Page events count as one more `basic`.
        let mem = |b, l, d| buffer_kb_per_cpu(b, l, true, d, None, &h);
        assert_eq!(mem(Backend::Perf, Level::Basic, None), 16 * 1024);
        assert_eq!(mem(Backend::Tracefs, Level::Full, Some(10.0)), 120 * 1024);
    }
}
