use clap::Parser;

fn main() {
    let cli = virtflow::cmd::Cli::parse();
    if let Err(err) = virtflow::cmd::run(cli) {
        eprintln!("virtflow: error: {err:#}");
        std::process::exit(1);
    }
}
