#![forbid(unsafe_code)]

use clap::Parser;

/// Opening a kernel trace builds its ~1,400 event classes from the metadata (some 15,000 small
/// allocations, freed at the end); with the system allocator, a third of the opening went to
/// them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = virtflow::cmd::Cli::parse();
    if let Err(err) = virtflow::cmd::run(cli) {
        eprintln!("virtflow: error: {err:#}");
        std::process::exit(1);
    }
}
