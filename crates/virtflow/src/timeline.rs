//! An experiment's hosts on one time line: each host's clock transform onto the reference
//! host's, computed by synchronising the traces (`virtflow_analysis::synchronise`), read from a
//! `virtflow sync --json` file, or turned off.
//!
//! A computed synchronisation is cached, so that the next command on the same traces does not
//! read their messages again: beside the traces when their folder is writable, else in the
//! user's cache folder, under a key made of the traces' content (each file's size, first and
//! last 4 KiB) and the hosts' names.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use virtflow_model::{HostClock, Timeline};
use virtflow_sync::{ClockTransform, Decimal, ReferenceClock};
use virtflow_trace::Clock;

use crate::experiment::{self, Plan};

/// Where the clocks come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// Computed (or taken from the cache) when the experiment has several hosts.
    #[default]
    Auto,
    /// Every host on its own clock (`--no-sync`).
    Off,
    /// From a `virtflow sync --json` file (`--sync FILE`).
    File(PathBuf),
}

/// `virtflow sync --json`: per trace, its host and how its time becomes reference time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncFile {
    pub reference: String,
    pub traces: Vec<TraceClock>,
    /// The content key of the traces (in the cache only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// One trace's clock: its time `t` is `slope × t + offset_ns` on the reference clock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceClock {
    pub path: String,
    pub host: String,
    pub slope: f64,
    pub offset_ns: f64,
    pub quality: String,
    pub matches: u64,
    pub bound_ns: Option<f64>,
    /// `slope` and `offset_ns` in full (34 digits): what `--sync FILE` reads when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slope_exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_exact: Option<String>,
}

/// The hosts' clocks for an experiment, and how they were obtained.
pub struct Clocks {
    /// By host (the plan's recordings): onto the reference clock, `None` for the reference.
    pub per_host: Vec<Option<Arc<dyn Clock>>>,
    /// For the model, by host.
    pub hosts: Vec<HostClock>,
    pub timeline: Timeline,
    pub notes: Vec<String>,
    /// The file form, for `virtflow sync`.
    pub file: SyncFile,
}

/// The clocks of `plan`'s hosts (`reference`: the host to put every time on; the first when
/// `None`). A single host needs none. Computes them with a pass over the messages when they
/// are neither given nor cached.
pub fn clocks(plan: &Plan, mode: &SyncMode, reference: Option<&str>) -> anyhow::Result<Clocks> {
    if let Some(clocks) = known(plan, mode, reference)? {
        return Ok(clocks);
    }
    let reference = reference_of(plan, reference)?;
    let key = content_key(plan, &reference);
    let (file, notes) = compute(plan, &reference)?;
    let file = SyncFile {
        key: Some(key.clone()),
        ..file
    };
    write_cache(plan, &key, &file);
    from_file(plan, file, "computed".to_string(), notes)
}

/// The clocks when they need no reading of the traces: turned off, from a file, or cached;
/// `None` when they must be computed.
pub fn known(
    plan: &Plan,
    mode: &SyncMode,
    reference: Option<&str>,
) -> anyhow::Result<Option<Clocks>> {
    let reference = reference_of(plan, reference)?;
    let (file, source) = match mode {
        SyncMode::Off => (identity_file(plan, &reference, "off"), "off".to_string()),
        SyncMode::File(path) => {
            let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
            let file: SyncFile = serde_json::from_str(&text).with_context(|| {
                format!("{}: not a `virtflow sync --json` file", path.display())
            })?;
            (file, path.display().to_string())
        }
        SyncMode::Auto => {
            let key = content_key(plan, &reference);
            match read_cache(plan, &key) {
                Some(file) if file.reference == reference => (file, "cache".to_string()),
                _ => return Ok(None),
            }
        }
    };
    from_file(plan, file, source, Vec::new()).map(Some)
}

/// The host every time is put on: `reference` if it is one of the plan's, else an error; the
/// first host when `None`.
pub fn reference_of(plan: &Plan, reference: Option<&str>) -> anyhow::Result<String> {
    let reference = reference
        .map(str::to_string)
        .or_else(|| plan.recordings.first().map(|r| r.host.clone()))
        .unwrap_or_default();
    if !plan.recordings.is_empty() && !plan.recordings.iter().any(|r| r.host == reference) {
        anyhow::bail!(
            "--reference {reference}: no such host (hosts: {})",
            plan.recordings
                .iter()
                .map(|r| r.host.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(reference)
}

/// The clocks an analysis pass fitted ([`virtflow_analysis::analyze_fitting_clocks`]) on hosts
/// shifted by `shifts` (by host, what was added to each host's times), cached as a computed
/// synchronisation would be.
pub fn fitted(
    plan: &Plan,
    reference: &str,
    sync: &virtflow_analysis::Synchronisation,
    shifts: &[i64],
) -> anyhow::Result<Clocks> {
    let (file, notes) = sync_file(plan, reference, sync, shifts)?;
    let key = content_key(plan, reference);
    let file = SyncFile {
        key: Some(key.clone()),
        ..file
    };
    write_cache(plan, &key, &file);
    from_file(plan, file, "computed".to_string(), notes)
}

/// The clocks `file` gives `plan`'s hosts; `source` says where they came from.
fn from_file(
    plan: &Plan,
    file: SyncFile,
    source: String,
    notes: Vec<String>,
) -> anyhow::Result<Clocks> {
    let mut per_host = Vec::with_capacity(plan.recordings.len());
    let mut hosts = Vec::with_capacity(plan.recordings.len());
    let mut notes = notes;
    for r in &plan.recordings {
        let entry = file.traces.iter().find(|t| t.host == r.host);
        let Some(t) = entry else {
            notes.push(format!(
                "{}: not in the synchronisation, left on its own clock",
                r.host
            ));
            per_host.push(None);
            hosts.push(HostClock {
                reference: r.host == file.reference,
                slope: 1.0,
                offset_ns: 0.0,
                slope_exact: "1".into(),
                offset_exact: "0".into(),
                quality: "absent".into(),
                ..HostClock::default()
            });
            continue;
        };
        let transform =
            transform_of(t).with_context(|| format!("{}: the clock of host {}", source, t.host))?;
        let clock: Option<Arc<dyn Clock>> = if transform.is_identity() {
            None
        } else {
            let c = ReferenceClock::new(transform.clone())
                .with_context(|| format!("host {}: a transform without inverse", t.host))?;
            Some(Arc::new(c))
        };
        per_host.push(clock);
        hosts.push(HostClock {
            reference: t.host == file.reference,
            slope: t.slope,
            offset_ns: t.offset_ns,
            slope_exact: transform.slope().to_string(),
            offset_exact: transform.offset().to_string(),
            quality: t.quality.clone(),
            matches: t.matches,
            bound_ns: t.bound_ns,
        });
    }
    Ok(Clocks {
        per_host,
        hosts,
        timeline: Timeline {
            reference: file.reference.clone(),
            source,
            ..Timeline::default()
        },
        notes,
        file,
    })
}

fn transform_of(t: &TraceClock) -> anyhow::Result<ClockTransform> {
    let slope: Decimal = match &t.slope_exact {
        Some(s) => s
            .parse()
            .map_err(|e| anyhow::anyhow!("slope {s:?}: {e:?}"))?,
        None => t
            .slope
            .to_string()
            .parse()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?,
    };
    let offset: Decimal = match &t.offset_exact {
        Some(s) => s
            .parse()
            .map_err(|e| anyhow::anyhow!("offset {s:?}: {e:?}"))?,
        None => t
            .offset_ns
            .to_string()
            .parse()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?,
    };
    ClockTransform::new(slope, offset).map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// Every host on its own clock.
fn identity_file(plan: &Plan, reference: &str, quality: &str) -> SyncFile {
    SyncFile {
        reference: reference.to_string(),
        traces: plan
            .recordings
            .iter()
            .map(|r| TraceClock {
                path: recording_path(r),
                host: r.host.clone(),
                slope: 1.0,
                offset_ns: 0.0,
                quality: quality.to_string(),
                matches: 0,
                bound_ns: None,
                slope_exact: None,
                offset_exact: None,
            })
            .collect(),
        key: None,
    }
}

fn recording_path(r: &experiment::Recording) -> String {
    r.paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the messages of every host and synchronises them.
pub fn compute(plan: &Plan, reference: &str) -> anyhow::Result<(SyncFile, Vec<String>)> {
    let mut source = experiment::open(plan, &[])?;
    let sync = virtflow_analysis::synchronise(&mut *source, Some(reference))
        .context("reading the traces' messages")?;
    sync_file(plan, reference, &sync, &[])
}

/// A synchronisation as a file, its transforms composed after `shifts` (by host: what was
/// added to the host's times before the synchronisation saw them; none: nothing), with what
/// the user should know about it.
fn sync_file(
    plan: &Plan,
    reference: &str,
    sync: &virtflow_analysis::Synchronisation,
    shifts: &[i64],
) -> anyhow::Result<(SyncFile, Vec<String>)> {
    let result = &sync.result;
    let mut traces = Vec::with_capacity(plan.recordings.len());
    for (i, r) in plan.recordings.iter().enumerate() {
        let h = result.host(&r.host);
        let fitted = h.map(|h| h.transform.clone()).unwrap_or_default();
        let shift = shifts.get(i).copied().unwrap_or(0);
        let transform = fitted
            .after_shift(shift)
            .map_err(|e| anyhow::anyhow!("host {}: {e}", r.host))?;
        traces.push(TraceClock {
            path: recording_path(r),
            host: r.host.clone(),
            slope: transform.slope().to_f64(),
            offset_ns: transform.offset().to_f64(),
            quality: h.map_or("absent".to_string(), |h| h.quality.name().to_string()),
            matches: h.map_or(0, |h| h.matches),
            bound_ns: h.and_then(|h| h.bound_ns),
            slope_exact: Some(transform.slope().to_string()),
            offset_exact: Some(transform.offset().to_string()),
        });
    }
    let mut notes = sync.notes.clone();
    let counts = result.matches;
    if counts.refused > 0 {
        notes.push(format!(
            "{} messages were received before they were sent on the same host (a packet \
             crossing two interfaces of one machine) and were not used",
            counts.refused
        ));
    }
    if sync.dropped > 0 {
        notes.push(format!(
            "{} unmatched messages were forgotten to bound memory (traffic with hosts outside \
             the experiment)",
            sync.dropped
        ));
    }
    Ok((
        SyncFile {
            reference: result
                .reference
                .clone()
                .unwrap_or_else(|| reference.to_string()),
            traces,
            key: None,
        },
        notes,
    ))
}

/// FNV-1a, 64 bits: a cache key, not a defence against anyone.
fn fnv(hash: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *hash ^= u64::from(*b);
        *hash = hash.wrapping_mul(0x100_0000_01b3);
    }
}

/// Changes whenever the matching or the synchronisation computes differently, so that a
/// cache written by another version is not taken.
const SYNC_REVISION: &str = concat!(env!("CARGO_PKG_VERSION"), "/sync-2");

/// The traces' content, in short: each file's name, size, first and last 4 KiB.
fn content_key(plan: &Plan, reference: &str) -> String {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    fnv(&mut h, SYNC_REVISION.as_bytes());
    fnv(&mut h, reference.as_bytes());
    for r in &plan.recordings {
        fnv(&mut h, r.host.as_bytes());
        for p in &r.paths {
            let mut files = Vec::new();
            list_files(p, &mut files);
            for f in files {
                fnv(&mut h, f.file_name().unwrap_or_default().as_encoded_bytes());
                let Ok(mut file) = std::fs::File::open(&f) else {
                    continue;
                };
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                fnv(&mut h, &len.to_le_bytes());
                let mut buf = vec![0u8; 4096];
                let n = file.read(&mut buf).unwrap_or(0);
                fnv(&mut h, &buf[..n]);
                if len > 8192 {
                    use std::io::{Seek, SeekFrom};
                    if file.seek(SeekFrom::Start(len - 4096)).is_ok() {
                        let n = file.read(&mut buf).unwrap_or(0);
                        fnv(&mut h, &buf[..n]);
                    }
                }
            }
        }
    }
    format!("{h:016x}")
}

fn list_files(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_file() {
        out.push(p.to_path_buf());
        return;
    }
    let Ok(rd) = std::fs::read_dir(p) else { return };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for e in entries {
        if e.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        list_files(&e, out);
    }
}

/// Where the cache of `plan` may live: `VIRTFLOW_CACHE_DIR` when set (tests), else the folder
/// above the first trace (never inside a CTF trace folder, whose files are its streams) unless
/// it is read-only — as trace archives often are, whoever runs the command —, then the user's
/// cache folder.
fn cache_places(plan: &Plan, key: &str) -> Vec<PathBuf> {
    let name = format!(".virtflow-sync-{key}.json");
    if let Some(dir) = std::env::var_os("VIRTFLOW_CACHE_DIR") {
        return vec![PathBuf::from(dir).join(name.trim_start_matches('.'))];
    }
    let mut places = Vec::new();
    if let Some(first) = plan.recordings.first().and_then(|r| r.paths.first()) {
        if let Some(dir) = first.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            let writable = std::fs::metadata(dir).is_ok_and(|m| !m.permissions().readonly());
            if writable {
                places.push(dir.join(&name));
            }
        }
    }
    let user = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    if let Some(dir) = user {
        places.push(dir.join("virtflow").join(name.trim_start_matches('.')));
    }
    places
}

fn read_cache(plan: &Plan, key: &str) -> Option<SyncFile> {
    cache_places(plan, key).into_iter().find_map(|p| {
        let file: SyncFile = serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
        (file.key.as_deref() == Some(key)).then_some(file)
    })
}

/// Best effort: a cache that cannot be written is computed again next time.
fn write_cache(plan: &Plan, key: &str, file: &SyncFile) {
    let Ok(text) = serde_json::to_string_pretty(file) else {
        return;
    };
    for p in cache_places(plan, key) {
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if std::fs::write(&p, &text).is_ok() {
            return;
        }
    }
}
