//! Writes a synthetic model as JSON (the schema of `virtflow analyze --json --intervals`),
//! for `virtflow view --model` in the browser test and for trying the viewer at scale.
//!
//! usage: synthetic_model VMS VCPUS INTERVALS_PER_VCPU OUT.json [--analyses]
//!        synthetic_model story OUT.json
//!
//! `--analyses` adds the overcommitment, memory, phases and execution graph a full analysis
//! would have found; `story` is the small model whose every figure is known
//! (`virtflow_view::synthetic::story`), with its graph.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("story") {
        let out = args.get(1).map_or("story.json", String::as_str);
        let file = std::fs::File::create(out).expect("create the output file");
        serde_json::to_writer(
            std::io::BufWriter::new(file),
            &virtflow_view::synthetic::story(),
        )
        .expect("write the model");
        return;
    }
    let n = |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let mut model = virtflow_view::synthetic::model(n(0, 3), n(1, 2), n(2, 20_000), 42);
    if args.iter().any(|a| a == "--analyses") {
        model = virtflow_view::synthetic::with_analyses(model, 42);
    }
    let out = args.get(3).map_or("model.json", String::as_str);
    let file = std::fs::File::create(out).expect("create the output file");
    serde_json::to_writer(std::io::BufWriter::new(file), &model).expect("write the model");
}
