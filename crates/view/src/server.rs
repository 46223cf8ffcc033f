//! `virtflow view`'s local web server.
//!
//! What it serves is fixed at build time: the files of `web/` embedded in the binary
//! ([`ASSETS`], looked up by exact path — requests never reach the filesystem, so no path can
//! traverse anywhere) and a small JSON API over one [`ViewData`]:
//!
//! - `GET /api/meta`: rows, state palette, detail labels, extent, and the panels' tables;
//! - `GET /api/timeline?start=&end=&width=[&first=&count=]`: the viewport's segments
//!   ([`TimelineIndex::viewport`]), times in nanoseconds relative to `origin`;
//! - `GET /api/selection?start=&end=`: time per state within a window, per row;
//! - `GET /api/critical-path?tid=&start=&end=[&host=&width=]`: the critical path of a thread
//!   over a window ([`crate::paths::critical_path`]): its pieces across rows, the threads it
//!   crosses, its arrows and its explanation; 404 with the reason when the model has no
//!   execution graph or no such thread.
//!
//! It binds to loopback unless told otherwise ([`check_bind`]), and bounds every request
//! ([`limit_requests`]): only GET/HEAD, no body, a bounded URI and header size, and — while
//! loopback-only — a loopback `Host` header, so that a web page elsewhere cannot reach it
//! through DNS rebinding.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::analyses::Analyses;
use crate::summary::Summary;
use crate::timeline::{Detail, Row, TimelineIndex};

/// Longest request target accepted (the API's query strings are far shorter).
pub const MAX_URI_BYTES: usize = 2048;
/// Most header bytes accepted, names and values together.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// One embedded file: request path, content type, bytes.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// Everything the server serves besides the API.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../web/index.html"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../web/style.css"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../web/app.js"),
    },
    Asset {
        path: "/timeline.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../web/timeline.js"),
    },
    Asset {
        path: "/format.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../web/format.js"),
    },
    Asset {
        path: "/charts.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../web/charts.js"),
    },
    Asset {
        path: "/path.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../web/path.js"),
    },
    Asset {
        path: "/panels.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../web/panels.js"),
    },
];

/// What the server shows: the summary tables, the indexed timeline, the analyses' panels,
/// and the rest of the model (its execution graph) for critical paths.
pub struct ViewData {
    pub summary: Summary,
    pub index: TimelineIndex,
    pub analyses: Analyses,
    /// The model without its intervals (the index holds them).
    pub model: virtflow_model::Model,
    /// `/api/meta`, serialized once.
    meta_json: Vec<u8>,
}

#[derive(serde::Serialize)]
struct Meta<'a> {
    origin: i64,
    start: i64,
    end: i64,
    intervals: usize,
    rows: &'a [Row],
    details: &'a [Detail],
    summary: &'a Summary,
    analyses: &'a Analyses,
    /// Whether `/api/critical-path` can answer.
    graph: bool,
    /// The VMs' threads besides their vCPUs, whose critical paths one may ask for too.
    helpers: Vec<Helper<'a>>,
}

#[derive(serde::Serialize)]
struct Helper<'a> {
    vm: usize,
    host: &'a str,
    tid: u32,
    comm: &'a str,
}

impl ViewData {
    /// Summarises and indexes `model` (taking its intervals).
    pub fn new(mut model: virtflow_model::Model) -> ViewData {
        let summary = Summary::new(&model);
        let index = TimelineIndex::take_from(&mut model);
        let analyses = Analyses::new(&model, index.origin);
        let meta = Meta {
            origin: index.origin,
            start: index.start,
            end: index.end,
            intervals: index.interval_count(),
            rows: &index.rows,
            details: &index.details,
            summary: &summary,
            analyses: &analyses,
            graph: model.graph.is_some(),
            helpers: model
                .vms
                .iter()
                .enumerate()
                .flat_map(|(vm, v)| {
                    v.threads.iter().map(move |t| Helper {
                        vm,
                        host: &v.host,
                        tid: t.tid,
                        comm: &t.comm,
                    })
                })
                .collect(),
        };
        let meta_json = serde_json::to_vec(&meta).expect("the meta document serializes");
        ViewData {
            summary,
            index,
            analyses,
            model,
            meta_json,
        }
    }
}

/// Refuses to listen beyond this machine unless `allow_remote`: the viewer has no
/// authentication, and a trace tells a lot about a host.
pub fn check_bind(addr: IpAddr, allow_remote: bool) -> Result<(), String> {
    if addr.is_loopback() || allow_remote {
        Ok(())
    } else {
        Err(format!(
            "refusing to serve on {addr}: not a loopback address (the viewer has no \
             authentication); pass --allow-remote to do it anyway"
        ))
    }
}

/// Binds the listening socket (`port` 0: any free port).
pub fn bind(addr: IpAddr, port: u16, allow_remote: bool) -> Result<std::net::TcpListener, String> {
    check_bind(addr, allow_remote)?;
    let listener = std::net::TcpListener::bind(SocketAddr::new(addr, port))
        .map_err(|e| format!("cannot listen on {}: {e}", SocketAddr::new(addr, port)))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot set the socket non-blocking: {e}"))?;
    Ok(listener)
}

#[derive(Clone)]
struct AppState {
    data: Arc<ViewData>,
    loopback_only: bool,
}

/// The routes, with the request limits around them.
pub fn router(data: Arc<ViewData>, loopback_only: bool) -> Router {
    let state = AppState {
        data,
        loopback_only,
    };
    Router::new()
        .route("/api/meta", get(meta))
        .route("/api/timeline", get(timeline))
        .route("/api/selection", get(selection))
        .route("/api/critical-path", get(critical_path))
        .fallback(asset)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limit_requests,
        ))
        .with_state(state)
}

/// Serves until the process ends, on a runtime of its own.
pub fn serve_blocking(
    listener: std::net::TcpListener,
    data: ViewData,
    loopback_only: bool,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(listener, router(Arc::new(data), loopback_only)).await
    })
}

fn is_loopback_host(host: &str) -> bool {
    // `Host` is `name[:port]`, with IPv6 literals in brackets.
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(n, _)| n)
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Rejects, before any handler runs, what this server never needs: bodies, methods other
/// than GET/HEAD, long targets, large headers, and foreign `Host` names while loopback-only.
async fn limit_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.uri().to_string().len() > MAX_URI_BYTES {
        return refuse(StatusCode::URI_TOO_LONG, "request target too long");
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, "only GET is served");
    }
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if has_body {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "requests carry no body here");
    }
    if state.loopback_only {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !is_loopback_host(host) {
            return refuse(StatusCode::MISDIRECTED_REQUEST, "unexpected Host header");
        }
    }
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    (status, why).into_response()
}

fn json(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

async fn asset(req: Request) -> Response {
    let path = req.uri().path();
    let path = if path == "/index.html" { "/" } else { path };
    match ASSETS.iter().find(|a| a.path == path) {
        Some(a) => Response::builder()
            .header(header::CONTENT_TYPE, a.content_type)
            .body(Body::from(a.bytes))
            .unwrap_or_else(|_| refuse(StatusCode::INTERNAL_SERVER_ERROR, "response")),
        None => refuse(StatusCode::NOT_FOUND, "not found"),
    }
}

async fn meta(State(state): State<AppState>) -> Response {
    json(state.data.meta_json.clone())
}

#[derive(Deserialize)]
struct TimelineParams {
    start: i64,
    end: i64,
    width: u32,
    #[serde(default)]
    first: usize,
    #[serde(default = "all_rows")]
    count: usize,
}

fn all_rows() -> usize {
    usize::MAX
}

async fn timeline(State(state): State<AppState>, Query(p): Query<TimelineParams>) -> Response {
    if p.end <= p.start || p.width == 0 {
        return refuse(StatusCode::BAD_REQUEST, "need start < end and width > 0");
    }
    let data = state.data.clone();
    // Aggregation is CPU work: keep it off the I/O threads.
    let body = tokio::task::spawn_blocking(move || {
        let vp = data
            .index
            .viewport(p.start, p.end, p.width, p.first, p.count);
        serde_json::to_vec(&vp)
    })
    .await;
    match body {
        Ok(Ok(bytes)) => json(bytes),
        _ => refuse(StatusCode::INTERNAL_SERVER_ERROR, "viewport query failed"),
    }
}

#[derive(Deserialize)]
struct SelectionParams {
    start: i64,
    end: i64,
}

async fn selection(State(state): State<AppState>, Query(p): Query<SelectionParams>) -> Response {
    if p.end < p.start {
        return refuse(StatusCode::BAD_REQUEST, "need start <= end");
    }
    let data = state.data.clone();
    let body = tokio::task::spawn_blocking(move || {
        serde_json::to_vec(&serde_json::json!({
            "start": p.start,
            "end": p.end,
            "rows": data.index.selection(p.start, p.end),
        }))
    })
    .await;
    match body {
        Ok(Ok(bytes)) => json(bytes),
        _ => refuse(StatusCode::INTERNAL_SERVER_ERROR, "selection query failed"),
    }
}

#[derive(Deserialize)]
struct PathParams {
    #[serde(default)]
    host: Option<String>,
    tid: u32,
    start: i64,
    end: i64,
    #[serde(default = "default_width")]
    width: u32,
}

fn default_width() -> u32 {
    1000
}

async fn critical_path(State(state): State<AppState>, Query(p): Query<PathParams>) -> Response {
    if p.end <= p.start || p.width == 0 {
        return refuse(StatusCode::BAD_REQUEST, "need start < end and width > 0");
    }
    let data = state.data.clone();
    // A long path is CPU work: keep it off the I/O threads.
    let answer = tokio::task::spawn_blocking(move || {
        let origin = data.index.origin;
        crate::paths::critical_path(
            &data.model,
            p.host.as_deref().filter(|h| !h.is_empty()),
            p.tid,
            (p.start.saturating_add(origin), p.end.saturating_add(origin)),
            p.width,
            origin,
        )
        .map(|view| serde_json::to_vec(&view))
    })
    .await;
    match answer {
        Ok(Ok(Ok(bytes))) => json(bytes),
        Ok(Err(e)) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
        _ => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "critical path query failed",
        ),
    }
}
