//! `virtflow sync TRACE… [--json]`: each host's clock on the reference host's, from the
//! messages the hosts exchanged (see `virtflow_analysis::sync` and `crate::timeline`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;

use crate::experiment::{self, HostName};
use crate::timeline::{self, SyncMode};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The traces of the hosts (one recording each; a folder may hold several).
    #[arg(required = true)]
    pub traces: Vec<PathBuf>,
    /// Name the host of a trace (repeatable), as for every command.
    #[arg(long, value_name = "NAME=TRACE")]
    pub host: Vec<HostName>,
    /// The host whose clock the others are put on (default: the first).
    #[arg(long, value_name = "HOST")]
    pub reference: Option<String>,
    /// Print the transforms as JSON (what `--sync FILE` reads).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let plan = experiment::plan(&args.traces, &args.host)?;
    if plan.recordings.len() < 2 {
        bail!(
            "these traces are one host's ({}): synchronisation relates the clocks of several \
             hosts",
            plan.recordings.first().map_or("none", |r| r.host.as_str())
        );
    }
    let clocks = timeline::clocks(&plan, &SyncMode::Auto, args.reference.as_deref())?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.json {
        let mut file = clocks.file.clone();
        file.key = None;
        serde_json::to_writer_pretty(&mut out, &file)?;
        writeln!(out)?;
        return Ok(out.flush()?);
    }
    writeln!(
        out,
        "virtflow sync: {} hosts, reference {}{}",
        plan.recordings.len(),
        clocks.file.reference,
        if clocks.timeline.source == "cache" {
            " (from the cache of an earlier run)"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "  {:<16} {:<12} {:>20} {:>22} {:>8} {:>12}",
        "host", "quality", "slope", "offset (ns)", "matches", "bound"
    )?;
    for t in &clocks.file.traces {
        let reference = t.host == clocks.file.reference;
        writeln!(
            out,
            "  {:<16} {:<12} {:>20} {:>22} {:>8} {:>12}",
            clip(&t.host, 16),
            if reference {
                "reference"
            } else {
                t.quality.as_str()
            },
            t.slope_exact.clone().unwrap_or_else(|| t.slope.to_string()),
            t.offset_exact
                .clone()
                .unwrap_or_else(|| t.offset_ns.to_string()),
            t.matches,
            t.bound_ns
                .map_or("-".to_string(), |b| format!("±{:.0} ns", b)),
        )?;
        writeln!(out, "    {}", t.path)?;
    }
    writeln!(
        out,
        "  a host's time t is slope × t + offset on the reference clock; the bound is how far \
         the\n  messages' hulls allow that to be from the truth (accurate pairs only)"
    )?;
    if !clocks.notes.is_empty() {
        writeln!(out, "notes:")?;
        for n in &clocks.notes {
            writeln!(out, "  - {n}")?;
        }
    }
    Ok(out.flush()?)
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(n - 1).collect();
        c.push('…');
        c
    }
}
