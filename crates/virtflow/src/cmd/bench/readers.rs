//! The readers' paths and the reference tools: what reading a trace costs before any
//! analysis, each on a freshly opened source.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context;
use virtflow_trace::drain;

use crate::input::{self, Format};

/// Every field of every event decoded and handed over: what `dump` costs without formatting.
pub fn decode_all(path: &Path) -> anyhow::Result<u64> {
    Ok(drain::every_field(&mut *input::open_one(path)?)?)
}

/// The full `dump` text written to a sink (`virtflow dump >/dev/null`).
pub fn dump_to_sink(path: &Path) -> anyhow::Result<()> {
    let mut source = input::open_one(path)?;
    let mut out = std::io::BufWriter::new(std::io::sink());
    match crate::cmd::dump::dump(&mut *source, &mut out, false, None) {
        Ok(()) => Ok(()),
        Err(crate::cmd::dump::DumpError::Trace(e)) => Err(e.into()),
        Err(crate::cmd::dump::DumpError::Output(e)) => Err(e.into()),
    }
}

/// The analysis access pattern: per class, the fields an analysis of scheduling and KVM reads.
pub fn read_fields(path: &Path) -> anyhow::Result<u64> {
    const WANTED: &[(&str, &[&[&str]])] = &[
        (
            "sched_switch",
            &[
                &["prev_tid", "prev_pid"],
                &["next_tid", "next_pid"],
                &["prev_state"],
            ],
        ),
        ("sched_waking", &[&["tid", "pid"]]),
        ("sched_wakeup", &[&["tid", "pid"]]),
        ("kvm_exit", &[&["exit_reason"], &["isa"]]),
        ("kvm_x86_exit", &[&["exit_reason"], &["isa"]]),
        ("kvm_entry", &[&["vcpu_id"]]),
        ("kvm_x86_entry", &[&["vcpu_id"]]),
        ("kvm_inj_virq", &[&["vector", "irq"]]),
        ("kvm_x86_inj_virq", &[&["vector", "irq"]]),
    ];
    Ok(drain::some_fields(&mut *input::open_one(path)?, WANTED)?)
}

/// The format's reference reader, output to `/dev/null`; none for text and XML.
pub fn reference_command(format: Format, path: &Path) -> Option<Vec<String>> {
    let p = path.display().to_string();
    match format {
        Format::Ctf => Some(vec![
            "babeltrace2".into(),
            p,
            "-c".into(),
            "sink.utils.dummy".into(),
        ]),
        Format::Dat => Some(vec!["trace-cmd".into(), "report".into(), "-i".into(), p]),
        Format::Perf => Some(vec!["perf".into(), "script".into(), "-i".into(), p]),
        Format::Text | Format::Xml => None,
    }
}

/// Runs a reference command to its end, output discarded.
pub fn time_command(cmd: &[String]) -> anyhow::Result<()> {
    let status = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {}", cmd[0]))?;
    anyhow::ensure!(status.success(), "exited with {status}");
    Ok(())
}
