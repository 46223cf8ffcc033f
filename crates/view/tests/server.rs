//! The web server: binding rules, what it serves, request limits, the timeline API.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use virtflow_view::server::{self, ASSETS, MAX_URI_BYTES};
use virtflow_view::synthetic;
use virtflow_view::timeline::MAX_WIDTH;

mod http;
use http::{get, raw};

fn start(intervals: usize) -> SocketAddr {
    http::start(synthetic::model(2, 2, intervals, 13))
}

#[test]
fn binds_loopback_only_unless_allowed() {
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let err = server::bind(any, 0, false).expect_err("0.0.0.0 must be refused");
    assert!(err.contains("--allow-remote"), "{err}");
    assert!(server::check_bind("192.168.1.10".parse().unwrap(), false).is_err());
    assert!(server::check_bind("::".parse().unwrap(), false).is_err());
    assert!(server::check_bind("::1".parse().unwrap(), false).is_ok());
    assert!(server::check_bind(any, true).is_ok());
    let l = server::bind(IpAddr::V4(Ipv4Addr::LOCALHOST), 0, false).unwrap();
    assert!(l.local_addr().unwrap().ip().is_loopback());
}

#[test]
fn serves_its_assets_and_nothing_else() {
    let addr = start(200);
    for a in ASSETS {
        let (status, body) = get(addr, a.path);
        assert_eq!(status, 200, "{}", a.path);
        assert_eq!(body, a.bytes, "{}", a.path);
    }
    for target in [
        "/../Cargo.toml",
        "/..%2fCargo.toml",
        "/%2e%2e/Cargo.toml",
        "/%2E%2E/%2E%2E/Cargo.toml",
        "/web/app.js",
        "/src/lib.rs",
        "/Cargo.toml",
        "//etc/passwd",
        "/app.js/../../Cargo.toml",
        "/style.css%00",
    ] {
        let (status, body) = get(addr, target);
        assert!(status == 404 || status == 400, "{target}: {status}");
        let text = String::from_utf8_lossy(&body);
        assert!(
            !text.contains("[package]") && !text.contains("root:"),
            "{target} leaked a file"
        );
    }
}

#[test]
fn bounds_requests() {
    let addr = start(200);
    let long = format!(
        "/api/timeline?start=0&end=1&width=10&pad={}",
        "a".repeat(MAX_URI_BYTES)
    );
    assert_eq!(get(addr, &long).0, 414);
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "b".repeat(20_000)
    );
    assert_eq!(raw(addr, &big_header).0, 431);
    let post = "POST /api/meta HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    assert!(matches!(raw(addr, post).0, 405 | 413));
    let body_on_get = "GET /api/meta HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(addr, body_on_get).0, 413);
    // A foreign Host name (DNS rebinding) is refused while loopback-only.
    let rebinding = "GET /api/meta HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(addr, rebinding).0, 421);
    let localhost = "GET /api/meta HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(addr, localhost).0, 200);
    // Malformed API parameters are rejected, not guessed.
    assert_eq!(get(addr, "/api/timeline?start=5&end=1&width=10").0, 400);
    assert_eq!(get(addr, "/api/timeline?start=x&end=1&width=10").0, 400);
}

#[test]
fn timeline_api_merges_sub_pixel_intervals_and_bounds_each_response() {
    let addr = start(20_000);
    let (status, meta) = get(addr, "/api/meta");
    assert_eq!(status, 200);
    let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
    let (start, end) = (
        meta["start"].as_i64().unwrap(),
        meta["end"].as_i64().unwrap(),
    );
    let rows = meta["rows"].as_array().unwrap().len();
    assert_eq!(rows, 2 + 4, "a row per VM and per vCPU");

    for width in [100u32, 1000, 100_000] {
        let (status, body) = get(
            addr,
            &format!("/api/timeline?start={start}&end={end}&width={width}"),
        );
        assert_eq!(status, 200);
        let vp: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let w = vp["width"].as_u64().unwrap();
        assert_eq!(w, u64::from(width.min(MAX_WIDTH)), "width is clamped");
        let ns_per_px = (end - start) as f64 / w as f64;
        let mut merged = 0;
        for row in vp["rows"].as_array().unwrap() {
            let segs = row.as_array().unwrap();
            assert!(
                segs.len() as u64 <= 2 * w + 2,
                "{} segments at {w} px",
                segs.len()
            );
            for s in segs {
                let (a, b, detail) = (
                    s[0].as_i64().unwrap(),
                    s[1].as_i64().unwrap(),
                    s[3].as_i64().unwrap(),
                );
                if detail >= 0 {
                    assert!(
                        (b - a) as f64 >= ns_per_px,
                        "an unmerged sub-pixel interval"
                    );
                } else {
                    merged += 1;
                }
            }
        }
        assert!(merged > 0, "20 000 intervals per vCPU at {w} px must merge");
        // Bounded: rows × (2w + 2) segments of at most 5 numbers each.
        assert!(body.len() as u64 <= rows as u64 * (2 * w + 2) * 5 * 21 + 1024);
    }
    let (status, sel) = get(addr, &format!("/api/selection?start={start}&end={end}"));
    assert_eq!(status, 200);
    let sel: serde_json::Value = serde_json::from_slice(&sel).unwrap();
    let first_vcpu: u64 = sel["rows"][1]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(first_vcpu > 0);
}
