//! Measures viewport queries on a large synthetic model (a benchmark, not a test).
//!
//! usage: viewport_latency [TOTAL_INTERVALS (default 100000000)] [VCPUS (default 64)]

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let total: usize = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000_000);
    let vcpus: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(64);
    let vms = (vcpus / 8).max(1);
    let per_vcpu = total / (vms * (vcpus / vms));
    let t = Instant::now();
    let mut model = virtflow_view::synthetic::model(vms, vcpus / vms, per_vcpu, 1);
    println!(
        "model: {vms} VMs × {} vCPUs × {per_vcpu} intervals in {:?}",
        vcpus / vms,
        t.elapsed()
    );
    let t = Instant::now();
    let index = virtflow_view::TimelineIndex::take_from(&mut model);
    drop(model);
    println!(
        "index: {} intervals in {:?}",
        index.interval_count(),
        t.elapsed()
    );
    let span = index.end - index.start;
    let width = 1600;
    let mut worst = 0f64;
    let mut sum = 0f64;
    let mut n = 0;
    for zoom in [1i64, 4, 64, 1024, 65536, 1 << 22] {
        for k in 0..5i64 {
            let w = (span / zoom).max(1000);
            let start = index.start + (span - w) * k / 5;
            let t = Instant::now();
            let vp = index.viewport(start, start + w, width, 0, 256);
            let body = serde_json::to_vec(&vp).expect("serialize");
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let segs: usize = vp.rows.iter().map(Vec::len).sum();
            println!(
                "zoom ×{zoom:<8} window {k}: {ms:7.1} ms, {segs} segments, {} KiB",
                body.len() / 1024
            );
            worst = worst.max(ms);
            sum += ms;
            n += 1;
        }
    }
    println!(
        "viewport (all {} rows, {width} px, incl. JSON): mean {:.1} ms, worst {:.1} ms",
        index.rows.len(),
        sum / n as f64,
        worst
    );
}
