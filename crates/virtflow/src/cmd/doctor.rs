//! `virtflow doctor [--json]`: what this host can record, what is missing, and the exact
//! command that fixes each missing thing. Exits 0 when recording is possible.

use virtflow_record::{Diagnosis, Host};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let diagnosis = Diagnosis::of(&Host::probe());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&diagnosis)?);
    } else {
        println!("{diagnosis}");
    }
    if !diagnosis.can_record {
        anyhow::bail!("this host cannot record a trace yet (see the fixes above)");
    }
    Ok(())
}
