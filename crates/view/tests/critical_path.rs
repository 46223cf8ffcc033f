//! `/api/critical-path`: the story's paths piece by piece, the rows of the threads they cross,
//! their arrows and explanation (expected values from the story as `synthetic::story` tells
//! it); the refusals; and the bounds on a long path of a large model.

mod http;

use serde_json::Value;
use virtflow_view::synthetic;
use virtflow_view::synthetic::story::{self, at, MS, T0};

/// The path of `tid` over `[from, to)` story milliseconds at `width` pixels.
fn path(addr: std::net::SocketAddr, tid: u32, from: i64, to: i64, width: u32) -> Value {
    // The viewer's times are relative to its origin, the story's start.
    http::json(
        addr,
        &format!(
            "/api/critical-path?tid={tid}&start={}&end={}&width={width}",
            at(from) - T0,
            at(to) - T0
        ),
    )
}

/// The pieces as (thread's tid, state, from ms, to ms), threads by tid (-1: in flight).
fn pieces(answer: &Value) -> Vec<(i64, String, i64, i64)> {
    let threads = answer["threads"].as_array().unwrap();
    let states = answer["states"].as_array().unwrap();
    answer["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let t = p[2].as_i64().unwrap();
            let tid = if t < 0 {
                -1
            } else {
                threads[t as usize]["tid"].as_i64().unwrap()
            };
            let state = states[p[3].as_u64().unwrap() as usize][0]
                .as_str()
                .unwrap()
                .to_string();
            (
                tid,
                state,
                p[0].as_i64().unwrap() / MS,
                p[1].as_i64().unwrap() / MS,
            )
        })
        .collect()
}

fn tid_of(answer: &Value, thread: &Value) -> i64 {
    answer["threads"][thread.as_u64().unwrap() as usize]["tid"]
        .as_i64()
        .unwrap()
}

#[test]
fn a_vcpus_path_crosses_its_helpers_and_a_host_thread() {
    let addr = http::start(synthetic::story());
    let answer = path(addr, story::WEB_VCPU0, 0, 100, 1000);
    let (v0, io, vhost, sshd) = (
        story::WEB_VCPU0 as i64,
        story::IO as i64,
        story::VHOST as i64,
        story::SSHD as i64,
    );
    let want: Vec<(i64, &str, i64, i64)> = vec![
        (v0, "running", 0, 10),
        (sshd, "timer", 10, 12),
        (sshd, "running", 12, 18),
        (vhost, "preempted", 18, 24),
        (vhost, "running", 24, 30),
        (v0, "preempted", 30, 33),
        (v0, "running", 33, 51),
        (io, "running", 51, 60),
        (io, "disk", 60, 66),
        (io, "running", 66, 70),
        (v0, "running", 70, 80),
        (v0, "preempted", 80, 90),
        (v0, "running", 90, 100),
    ];
    let want: Vec<(i64, String, i64, i64)> = want
        .into_iter()
        .map(|(t, s, a, b)| (t, s.to_string(), a, b))
        .collect();
    assert_eq!(pieces(&answer), want);
    assert_eq!(answer["exact_pieces"], 13);
    assert_eq!(answer["label"], "web vCPU 0");

    // Rows: the vCPU has its timeline row; vhost and the I/O thread get rows under web, sshd
    // one under the host; who held the CPUs is named but gets no row.
    let threads = answer["threads"].as_array().unwrap();
    let find = |tid: u32| {
        threads
            .iter()
            .find(|t| t["tid"] == tid)
            .unwrap_or_else(|| panic!("thread {tid} missing"))
    };
    for (tid, role, vm, row) in [
        (story::WEB_VCPU0, "vcpu", Value::from(0), true),
        (story::VHOST, "vhost", Value::from(0), true),
        (story::IO, "io_thread", Value::from(0), true),
        (story::SSHD, "host", Value::Null, true),
        (story::BATCH_VCPU0, "vcpu", Value::from(1), false),
        (story::BACKUP, "host", Value::Null, false),
    ] {
        let t = find(tid);
        assert_eq!(t["role"], role, "{tid}");
        assert_eq!(t["vm"], vm, "{tid}");
        assert_eq!(t["row"], row, "{tid}");
    }
    assert_eq!(
        find(story::VHOST)["label"],
        "web's vhost-4000 (4010, network backend)"
    );
    assert_eq!(find(story::SSHD)["label"], "host thread sshd (800)");
    // A helper's row shows its own states over the window: vhost ran 0–5, was blocked 5–18,
    // preempted 18–24, ran 24–30 and was blocked after.
    let states = answer["states"].as_array().unwrap();
    let own: Vec<(String, i64, i64)> = find(story::VHOST)["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                states[s[2].as_u64().unwrap() as usize][0]
                    .as_str()
                    .unwrap()
                    .to_string(),
                s[0].as_i64().unwrap() / MS,
                s[1].as_i64().unwrap() / MS,
            )
        })
        .collect();
    let want_own: Vec<(String, i64, i64)> = [
        ("running", 0, 5),
        ("blocked", 5, 18),
        ("preempted", 18, 24),
        ("running", 24, 30),
        ("blocked", 30, 100),
    ]
    .iter()
    .map(|&(s, a, b)| (s.to_string(), a, b))
    .collect();
    assert_eq!(own, want_own);

    // The arrows: the three wake-ups the path follows, and where it goes from a blocked
    // thread to whoever ended its wait.
    let arrows: Vec<(i64, i64, i64, i64, String)> = answer["arrows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                tid_of(&answer, &a[0]),
                a[1].as_i64().unwrap() / MS,
                tid_of(&answer, &a[2]),
                a[3].as_i64().unwrap() / MS,
                a[4].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want_arrows: Vec<(i64, i64, i64, i64, String)> = [
        (v0, 10, sshd, 10, "waits_for"),
        (sshd, 18, vhost, 18, "wakeup"),
        (vhost, 30, v0, 30, "wakeup"),
        (v0, 51, io, 51, "waits_for"),
        (io, 70, v0, 70, "wakeup"),
    ]
    .iter()
    .map(|&(a, ta, b, tb, k)| (a, ta, b, tb, k.to_string()))
    .collect();
    assert_eq!(arrows, want_arrows);

    // The explanation: where the 100 ms went, longest first; under a quarter waited for a
    // CPU (backup 10 ms, batch vCPU 0 6 + 3 ms), so the longest part is the vCPU running.
    let e = &answer["explanation"];
    assert_eq!(e["total_ns"], 100 * MS);
    let lines: Vec<(i64, String, String)> = e["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["ns"].as_i64().unwrap() / MS,
                l["who"].as_str().unwrap().to_string(),
                l["what"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(lines[0], (48, "web vCPU 0".into(), "running".into()));
    assert_eq!(
        lines[1],
        (
            13,
            "web's IO iothread0 (4011, disk I/O thread)".into(),
            "running".into()
        )
    );
    assert_eq!(
        lines[2],
        (
            10,
            "web vCPU 0".into(),
            "waiting for a CPU (held by host thread backup (900))".into()
        )
    );
    assert_eq!(e["advice"], "48% of this time web vCPU 0 was running.");
}

#[test]
fn a_wait_ended_by_another_vcpu_reads_as_cpu_contention() {
    let addr = http::start(synthetic::story());
    // vCPU 1 waits 20–45 for vCPU 0's IPI; vCPU 0 was itself waiting for vhost until 30, and
    // 7 of the 25 ms a thread on the path waited for batch vCPU 0's pCPU.
    let answer = path(addr, story::WEB_VCPU1, 20, 45, 500);
    let (v0, vhost) = (story::WEB_VCPU0 as i64, story::VHOST as i64);
    assert_eq!(
        pieces(&answer),
        vec![
            (vhost, "preempted".to_string(), 20, 24),
            (vhost, "running".to_string(), 24, 30),
            (v0, "preempted".to_string(), 30, 33),
            (v0, "running".to_string(), 33, 45),
        ]
    );
    let advice = answer["explanation"]["advice"].as_str().unwrap();
    assert!(
        advice.starts_with("CPU contention: for 28% of this time (7.00 ms)")
            && advice.contains("mostly held by batch vCPU 0"),
        "{advice}"
    );
    // Where vCPU 0 woke vCPU 1 ends the path; no arrow leads away from the window.
    let last = answer["arrows"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(tid_of(&answer, &last[0]), vhost);
    assert_eq!(tid_of(&answer, &last[2]), v0);
    assert_eq!(last[4], "wakeup");
}

#[test]
fn refuses_what_it_cannot_answer() {
    let addr = http::start(synthetic::story());
    let (status, body) = http::get(addr, "/api/critical-path?tid=4242&start=0&end=1000");
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("no thread 4242"));
    assert_eq!(
        http::get(addr, "/api/critical-path?tid=4001&start=9&end=9").0,
        400
    );
    assert_eq!(http::get(addr, "/api/critical-path?start=0&end=9").0, 400);
    assert_eq!(
        http::get(addr, "/api/critical-path?tid=4001&start=0&end=9&width=0").0,
        400
    );
    // A saved model without a graph: the viewer says why there is no path.
    let mut model = synthetic::story();
    model.graph = None;
    let addr = http::start(model);
    let meta = http::json(addr, "/api/meta");
    assert_eq!(meta["graph"], false);
    let (status, body) = http::get(addr, "/api/critical-path?tid=4001&start=0&end=1000");
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("no execution graph"));
}

#[test]
fn a_long_path_is_bounded_by_the_width_and_adds_up() {
    // 3 VMs of 2 vCPUs, 20,000 intervals each: a path over the whole trace has thousands of
    // pieces, sent merged to the pixel.
    let model = synthetic::with_analyses(synthetic::model(3, 2, 20_000, 7), 7);
    let (start, end) = (
        model.vms[0].vcpus[0].intervals.first().unwrap().start,
        model.vms[0].vcpus[0].intervals.last().unwrap().end,
    );
    let tid = model.vms[0].vcpus[0].tid;
    let addr = http::start(model);
    let meta = http::json(addr, "/api/meta");
    let origin = meta["origin"].as_i64().unwrap();
    for width in [200u32, 800] {
        let answer = http::json(
            addr,
            &format!(
                "/api/critical-path?tid={tid}&start={}&end={}&width={width}",
                start - origin,
                end - origin
            ),
        );
        let pieces = answer["pieces"].as_array().unwrap();
        let exact = answer["exact_pieces"].as_u64().unwrap();
        assert!(exact > 4 * u64::from(width), "{exact} exact pieces");
        assert!(
            pieces.len() as u64 <= 2 * u64::from(width) + 2,
            "{} pieces at {width} px",
            pieces.len()
        );
        assert!(answer["arrows"].as_array().unwrap().len() <= 4 * width as usize);
        // Contiguous over the window, merged or not.
        assert_eq!(pieces[0][0].as_i64().unwrap(), start - origin);
        assert_eq!(pieces.last().unwrap()[1].as_i64().unwrap(), end - origin);
        for w in pieces.windows(2) {
            assert_eq!(w[0][1], w[1][0], "a gap between pieces");
        }
        let e = &answer["explanation"];
        let lines: i64 = e["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ns"].as_i64().unwrap())
            .sum();
        assert_eq!(lines + e["rest_ns"].as_i64().unwrap(), end - start);
        // The helper threads the path crosses have rows (network and disk waits end there).
        let roles: Vec<&str> = answer["threads"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["row"] == true)
            .map(|t| t["role"].as_str().unwrap())
            .collect();
        assert!(
            roles.contains(&"vhost") && roles.contains(&"io_thread"),
            "{roles:?}"
        );
    }
}
