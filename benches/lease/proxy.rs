//! A delaying, counting HTTP proxy in front of moto's DynamoDB: every call
//! waits the injected latency before it is forwarded, and is counted by
//! operation (`X-Amz-Target: DynamoDB_20120810.<Op>`) and by the kind of
//! item it names (`journal` or `lease`, from the request's `pk`), so the
//! bench can say which calls a rotation or a daemon pass makes and what
//! they cost in capacity units.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::header::{self, HeaderMap, HeaderName};
use axum::http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// `(operation, item kind)` → calls.
pub type Counts = BTreeMap<(String, String), u64>;

pub struct Proxy {
    url: String,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    latency_ms: AtomicU64,
    counts: Mutex<Counts>,
    /// When each call of an operation was seen, for cadences (renewals).
    seen_at: Mutex<Vec<(String, Instant)>>,
}

impl Proxy {
    /// Binds a free loopback port and forwards to `upstream` (moto).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("a bound address"));
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
            latency_ms: AtomicU64::new(0),
            counts: Mutex::new(Counts::new()),
            seen_at: Mutex::new(Vec::new()),
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept(listener, shared.clone(), stop.clone()));
        Proxy { url, shared, stop }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every call from now on waits `ms` before it is forwarded.
    pub fn set_latency_ms(&self, ms: u64) {
        self.shared.latency_ms.store(ms, Ordering::Relaxed);
    }

    /// The calls counted so far.
    pub fn counts(&self) -> Counts {
        self.shared.lock_counts().clone()
    }

    /// Forgets the counts and the times seen.
    pub fn reset(&self) {
        self.shared.lock_counts().clear();
        (self.shared.seen_at.lock())
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// When each call of `operation` was seen since the last reset.
    pub fn seen_at(&self, operation: &str) -> Vec<Instant> {
        (self.shared.seen_at.lock())
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(op, _)| op == operation)
            .map(|(_, at)| *at)
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Shared {
    fn lock_counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, operation: &str, kind: &str) {
        *(self.lock_counts())
            .entry((operation.to_string(), kind.to_string()))
            .or_default() += 1;
        (self.seen_at.lock())
            .unwrap_or_else(PoisonError::into_inner)
            .push((operation.to_string(), Instant::now()));
    }
}

/// Calls of `operation` in `counts`, over every item kind.
pub fn calls(counts: &Counts, operation: &str) -> u64 {
    (counts.iter())
        .filter(|((op, _), _)| op == operation)
        .map(|(_, n)| n)
        .sum()
}

/// Calls of `operation` on items of `kind`.
pub fn calls_on(counts: &Counts, operation: &str, kind: &str) -> u64 {
    counts
        .get(&(operation.to_string(), kind.to_string()))
        .copied()
        .unwrap_or(0)
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(shared.clone(), request));
            // A client that goes away mid-call ends its connection with an error; nothing to do.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let operation = (request.headers().get("x-amz-target"))
        .and_then(|v| v.to_str().ok())
        .map(|target| target.rsplit('.').next().unwrap_or(target).to_string())
        .unwrap_or_default();
    let latency = Duration::from_millis(shared.latency_ms.load(Ordering::Relaxed));
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let answer = forward(&shared, request, &operation).await;
    Ok(answer.unwrap_or_else(|reason| {
        let mut response = Response::new(Body::from(reason));
        *response.status_mut() = StatusCode::BAD_GATEWAY;
        response
    }))
}

/// The kind of item a request names by its `pk` ("journal#…", "lease#…"),
/// "-" when it names none (Scan, DescribeTable) or several.
fn item_kind(body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return "-".into();
    };
    let pk = json["Key"]["pk"]["S"]
        .as_str()
        .or_else(|| json["Item"]["pk"]["S"].as_str());
    match pk.and_then(|pk| pk.split_once('#')) {
        Some((kind, _)) => kind.to_string(),
        None => "-".into(),
    }
}

/// Sends the request to moto as it came, counted, and returns moto's answer.
async fn forward(
    shared: &Shared,
    request: Request<Incoming>,
    operation: &str,
) -> Result<Response<Body>, String> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(Body::new(body), usize::MAX)
        .await
        .map_err(|e| format!("reading the request body: {e}"))?;
    shared.record(operation, &item_kind(&body));
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", shared.upstream);
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    let sent = shared.client.request(parts.method, url).headers(headers);
    let answer = (sent.body(body).send().await).map_err(|e| format!("forwarding to moto: {e}"))?;
    let (status, mut headers) = (answer.status(), answer.headers().clone());
    let body: Bytes = (answer.bytes().await).map_err(|e| format!("reading moto's answer: {e}"))?;
    strip_hop_by_hop(&mut headers);
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::CONTENT_LENGTH,
        HeaderName::from_static("keep-alive"),
    ] {
        headers.remove(name);
    }
}
