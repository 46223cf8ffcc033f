//! A viewer serving a given model on a free loopback port, and raw GET requests to it (no
//! client-side normalisation of the target), for the API's tests.

// Each test binary uses a part of these.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};

use virtflow_model::Model;
use virtflow_view::{server, ViewData};

/// Serves `model` until the test process ends.
pub fn start(model: Model) -> SocketAddr {
    let listener = server::bind(IpAddr::V4(Ipv4Addr::LOCALHOST), 0, false).expect("bind");
    let addr = listener.local_addr().unwrap();
    let data = ViewData::new(model);
    std::thread::spawn(move || server::serve_blocking(listener, data, true));
    addr
}

/// The status and body of `GET target`.
pub fn get(addr: SocketAddr, target: &str) -> (u16, Vec<u8>) {
    raw(
        addr,
        &format!(
            "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            addr.port()
        ),
    )
}

/// Sends `request` as raw bytes (no client-side path normalisation) and returns the
/// status code and body.
pub fn raw(addr: SocketAddr, request: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = match out.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => out[i + 4..].to_vec(),
        None => Vec::new(),
    };
    (status, body)
}

/// `GET target`, which must answer 200 with JSON.
pub fn json(addr: SocketAddr, target: &str) -> serde_json::Value {
    let (status, body) = get(addr, target);
    assert_eq!(status, 200, "{target}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{target}: {e}"))
}
