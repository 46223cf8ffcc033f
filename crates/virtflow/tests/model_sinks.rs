//! The model is all the sinks need: `virtflow analyze --json --intervals` saved to a file and
//! given back with `--model FILE` makes `cluster`, every `export` format, `report` and `view`
//! give exactly what they give from the trace itself — on a simulated host and a real lab trace.

mod sim_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sim_common::{scratch, trace_in, virtflow};

fn lab_trace() -> Option<PathBuf> {
    virtflow_testkit::shared_trace("kvm-lab/s3_disk/trace.dat")
}

/// What a sink writes to `-o FILE`, run once on the trace and once on the model.
fn output_of(args: &[&str], out: &Path) -> Vec<u8> {
    let mut all = args.to_vec();
    all.extend(["-o", out.to_str().unwrap()]);
    virtflow(&all);
    std::fs::read(out).unwrap()
}

/// `GET path` from the viewer at `addr`, the body.
fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
    body.to_string()
}

/// The viewer's API answers, for the viewer started with `args`.
fn view_answers(args: &[&str]) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_virtflow"))
        .arg("view")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let meta = http_get(addr, "/api/meta");
    let extent: serde_json::Value = serde_json::from_str(&meta).unwrap();
    let (start, end) = (
        extent["start"].as_i64().unwrap(),
        extent["end"].as_i64().unwrap(),
    );
    let answers = vec![
        meta,
        http_get(
            addr,
            &format!("/api/timeline?start={start}&end={end}&width=800"),
        ),
        http_get(addr, &format!("/api/selection?start={start}&end={end}")),
    ];
    let _ = child.kill();
    let _ = child.wait();
    answers
}

fn check(trace: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let t = trace.to_str().unwrap();
    let model = dir.join("model.json");
    std::fs::write(&model, virtflow(&["analyze", "--json", "--intervals", t])).unwrap();
    let m = model.to_str().unwrap();
    let what = trace.display();
    for level in ["vm", "vcpu"] {
        let from_trace = virtflow(&["cluster", "--json", "--level", level, t]);
        let from_model = virtflow(&["cluster", "--json", "--level", level, "--model", m]);
        let strip = |b: &[u8]| {
            // The row keys name their source: the trace, or the traces the model names.
            let v: serde_json::Value = serde_json::from_slice(b).unwrap();
            v["clusters"].clone()
        };
        assert_eq!(
            strip(&from_trace),
            strip(&from_model),
            "{what}: cluster {level}"
        );
    }
    for format in ["csv", "parquet", "lami", "perfetto"] {
        let a = output_of(
            &["export", t, "--format", format],
            &dir.join(format!("t.{format}")),
        );
        let b = output_of(
            &["export", "--model", m, "--format", format],
            &dir.join(format!("m.{format}")),
        );
        assert!(!a.is_empty(), "{what}: empty {format}");
        assert!(
            a == b,
            "{what}: export {format} differs from the trace to the model"
        );
    }
    let a = output_of(&["report", t], &dir.join("t.html"));
    let b = output_of(&["report", "--model", m], &dir.join("m.html"));
    assert!(a == b, "{what}: report differs");
    assert_eq!(
        view_answers(&[t]),
        view_answers(&["--model", m]),
        "{what}: viewer"
    );
}

#[test]
fn every_sink_gives_the_same_from_the_model_as_from_the_trace() {
    let dir = scratch("model-sinks", "mixed");
    virtflow(&[
        "simulate",
        "mixed",
        "-o",
        dir.to_str().unwrap(),
        "--format",
        "dat",
        "--duration",
        "2s",
    ]);
    let trace = trace_in(&dir);
    check(&trace, &dir.join("out"));
    if let Some(lab) = lab_trace() {
        check(&lab, &dir.join("lab"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
