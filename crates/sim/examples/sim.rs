//! Runs one scenario: `cargo run -p virtflow-sim --example sim -- SCENARIO FORMAT DIR [SECONDS]`.
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let mut c = virtflow_sim::Config::new(virtflow_sim::Scenario::parse(&a[1]).expect("scenario"));
    c.format = virtflow_sim::Format::parse(&a[2]).expect("format");
    if let Some(d) = a.get(4) {
        c.duration_ns = virtflow_sim::parse_duration(d).expect("duration");
    }
    let s = virtflow_sim::simulate(&c, std::path::Path::new(&a[3])).expect("simulate");
    for (p, n) in s.traces {
        println!("{}: {n}", p.display());
    }
}
