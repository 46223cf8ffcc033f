//! Reading speed of the ftrace-family readers: every event, every field read through
//! `EventSource::value`, as `virtflow dump` does, without printing.
//!
//! `cargo run --release -p virtflow-ftrace --example read_speed -- FILE…` (a perf.data,
//! a trace-cmd .dat or ftrace text, detected from the first bytes). With `--print`, writes one
//! line per event (`ts cpu name pid`) instead, for comparisons.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use virtflow_ftrace::{DatSource, PerfSource, TextSource};
use virtflow_trace::{EventSource, FieldId, Step, TraceError};

fn open(path: &Path) -> Result<Box<dyn EventSource>, TraceError> {
    let mut head = [0u8; 10];
    let n = std::io::Read::read(
        &mut std::fs::File::open(path).map_err(|e| TraceError::io(path, e))?,
        &mut head,
    )
    .map_err(|e| TraceError::io(path, e))?;
    Ok(if head[..n].starts_with(b"PERFILE2") {
        Box::new(PerfSource::open(path)?)
    } else if head[..n].starts_with(b"\x17\x08\x44tracing") {
        Box::new(DatSource::open(path)?)
    } else {
        Box::new(TextSource::open(path)?)
    })
}

fn main() -> Result<(), TraceError> {
    let mut print = false;
    for arg in std::env::args().skip(1) {
        if arg == "--print" {
            print = true;
            continue;
        }
        let path = Path::new(&arg);
        let start = Instant::now();
        let mut src = open(path)?;
        let mut events = 0u64;
        let mut values = 0u64;
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        loop {
            match src.advance()? {
                Step::Event(h) => {
                    events += 1;
                    let class = &src.classes()[h.class.0 as usize];
                    if print {
                        let pid = class
                            .field("common_pid")
                            .and_then(|f| src.i64(f))
                            .unwrap_or(-1);
                        writeln!(
                            out,
                            "{} {} {}:{} {pid}",
                            h.ts, h.cpu, class.system, class.name
                        )
                        .ok();
                    } else {
                        for i in 0..class.fields.len() {
                            values += src.value(FieldId(i as u32)).is_some() as u64;
                        }
                    }
                }
                Step::Lost(_) => {}
                Step::End => break,
            }
        }
        let secs = start.elapsed().as_secs_f64();
        if !print {
            println!(
                "{arg}: {events} events, {values} values in {:.3} s: {:.0} events/s",
                secs,
                events as f64 / secs
            );
        }
        eprintln!("{:?}", src.stats());
    }
    Ok(())
}
