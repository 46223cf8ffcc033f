//! The LTTng backend: a kernel session streaming CTF into the output folder, with the
//! thread id, process id and name as context (LTTng's KVM events carry no thread).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::session::{path_size, Finished, Progress, Running};
use crate::RecordError;

const CHANNEL: &str = "virtflow";
const SUBBUFFERS: u64 = 8;

fn run(lttng: &Path, args: &[&str], out: &Path) -> Result<String, RecordError> {
    let o = Command::new(lttng)
        .args(args)
        .output()
        .map_err(|e| RecordError::io(lttng, e))?;
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    if o.status.success() {
        Ok(text)
    } else {
        Err(RecordError::tool(&format!("lttng {}", args[0]), &text, out))
    }
}

/// The kernel events LTTng offers here (`lttng list -k`; starts a session daemon, which
/// loads the modules, when none runs).
pub(crate) fn kernel_events(lttng: &Path) -> Result<BTreeSet<String>, RecordError> {
    Ok(parse_list(&run(lttng, &["list", "-k"], Path::new("."))?))
}

/// Event names from `lttng list -k`: lines like
/// `      sched_switch (loglevel: TRACE_EMERG (0)) (type: tracepoint)`.
pub(crate) fn parse_list(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.contains("(type: tracepoint)"))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

pub(crate) struct LttngRun {
    lttng: PathBuf,
    session: String,
    out: PathBuf,
    destroyed: bool,
}

/// Sub-buffers of a per-CPU buffer of `buffer_kb`: eight, each a power of two of at least
/// 64 KiB, in bytes.
pub(crate) fn subbuf_bytes(buffer_kb: u64) -> u64 {
    ((buffer_kb / SUBBUFFERS).max(64) * 1024).next_power_of_two()
}

pub(crate) fn start(
    lttng: &Path,
    events: &[String],
    buffer_kb: u64,
    out: &Path,
) -> Result<LttngRun, RecordError> {
    let out_abs = std::path::absolute(out).map_err(|e| RecordError::io(out, e))?;
    let session = format!("virtflow-{}", std::process::id());
    run(
        lttng,
        &[
            "create",
            &session,
            &format!("--output={}", out_abs.display()),
        ],
        out,
    )?;
    // From here on, dropping the run destroys the session.
    let r = LttngRun {
        lttng: lttng.into(),
        session,
        out: out.into(),
        destroyed: false,
    };
    let s = r.session.clone();
    r.cmd(&[
        "enable-channel",
        "-k",
        "-s",
        &s,
        &format!("--subbuf-size={}", subbuf_bytes(buffer_kb)),
        &format!("--num-subbuf={SUBBUFFERS}"),
        CHANNEL,
    ])?;
    r.cmd(&[
        "enable-event",
        "-k",
        "-s",
        &s,
        "-c",
        CHANNEL,
        &events.join(","),
    ])?;
    r.cmd(&[
        "add-context",
        "-k",
        "-s",
        &s,
        "-c",
        CHANNEL,
        "-t",
        "tid",
        "-t",
        "pid",
        "-t",
        "procname",
    ])?;
    r.cmd(&["start", &s])?;
    Ok(r)
}

impl LttngRun {
    fn cmd(&self, args: &[&str]) -> Result<String, RecordError> {
        run(&self.lttng, args, &self.out)
    }
}

impl Running for LttngRun {
    fn progress(&mut self) -> Progress {
        Progress {
            bytes: path_size(&self.out),
            events: None,
            lost: None,
        }
    }

    fn stop(&mut self) -> Result<(), RecordError> {
        // Waits until the buffers are flushed to the output.
        self.cmd(&["stop", &self.session.clone()]).map(drop)
    }

    fn finish(mut self: Box<Self>) -> Result<Finished, RecordError> {
        self.destroyed = true;
        self.cmd(&["destroy", &self.session.clone()])?;
        Ok(Finished {
            lost: None,
            notes: vec![
                "LTTng counts discarded events in its packet headers: the analysis reports them"
                    .to_string(),
            ],
        })
    }
}

impl Drop for LttngRun {
    fn drop(&mut self) {
        if !self.destroyed {
            let _ = self.cmd(&["destroy", &self.session.clone()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_output() {
        let text = "Kernel events:\n-------------\n      \
            sched_switch (loglevel: TRACE_EMERG (0)) (type: tracepoint)\n      \
            kvm_x86_entry (loglevel: TRACE_EMERG (0)) (type: tracepoint)\n      \
            syscall_entry_read (type: syscall)\n";
        let e = parse_list(text);
        assert!(e.contains("sched_switch") && e.contains("kvm_x86_entry"));
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn subbuffers() {
        assert_eq!(subbuf_bytes(8 * 1024), 1 << 20);
        assert_eq!(subbuf_bytes(100), 64 * 1024);
        assert_eq!(subbuf_bytes(3000), 512 * 1024);
    }
}
