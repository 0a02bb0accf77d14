//! A fault-injecting HTTP/1.1 proxy in front of moto, for testing what rekey
//! does when an AWS call lands and then answers badly. Tests point the real
//! `aws-sdk-secretsmanager` client (or a `[stores.x]` `endpoint_url`) at
//! [`FaultProxy::url`]; every request is forwarded to moto unless a [`Rule`]
//! selects it by its `X-Amz-Target` operation (and, optionally, which calls
//! of that operation). The proxy records every request it saw and whether
//! moto got it, so a test can count the calls that landed.
//!
//! The SDK retries 5xx answers and dropped connections itself (standard
//! retry mode: 3 attempts), and each retry is a request the rules see: a
//! rule's `count` decides whether a retry gets through.

mod tests;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::{Body, Bytes};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What a rule does to a request it selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answers with this AWS JSON error without forwarding: nothing lands.
    FailBefore(u16, &'static str),
    /// Forwards to moto (the effect lands), then answers with this error.
    FailAfter(u16, &'static str),
    /// Forwards, then answers 200 with a body no client can parse.
    GarbageAfter,
    /// Forwards, then closes the connection without an answer.
    DropAfter,
}

/// Which calls of one operation a rule is about, before its action is given.
#[derive(Debug, Clone)]
pub struct Selector {
    operation: String,
    nth: usize,
    count: Option<usize>,
}

/// Calls `nth ..= nth + count - 1` (1-based, counted from when the rule was
/// added) of `operation` meet `action`; without a count, every call from `nth` on.
#[derive(Debug, Clone)]
pub struct Rule {
    selector: Selector,
    action: Action,
}

impl Rule {
    /// Selects calls of `operation`, with or without its `secretsmanager.` prefix.
    pub fn op(operation: &str) -> Selector {
        Selector {
            operation: short_name(operation).to_string(),
            nth: 1,
            count: None,
        }
    }
}

impl Selector {
    /// From the n-th call on (1-based); 0 counts as 1.
    pub fn nth(mut self, n: usize) -> Self {
        self.nth = n.max(1);
        self
    }

    /// Only this many calls.
    pub fn count(mut self, count: usize) -> Self {
        self.count = Some(count);
        self
    }

    pub fn action(self, action: Action) -> Rule {
        Rule {
            selector: self,
            action,
        }
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The `X-Amz-Target` operation without its prefix (`PutSecretValue`); empty if none.
    pub operation: String,
    /// Whether moto got the request and answered it (the effect landed).
    pub forwarded: bool,
    /// The rule's action, if a rule selected the request.
    pub action: Option<Action>,
}

/// A running proxy; dropping it stops accepting connections.
pub struct FaultProxy {
    url: String,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Each rule with the number of calls of its operation since it was added.
    rules: Vec<(Rule, usize)>,
    seen: Vec<Seen>,
}

impl FaultProxy {
    /// Binds a free loopback port and forwards to `upstream` (moto's URL).
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the fault proxy binds a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("a bound address"));
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
            state: Mutex::new(State::default()),
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept(listener, shared.clone(), stop.clone()));
        FaultProxy { url, shared, stop }
    }

    /// `http://127.0.0.1:PORT`, the `endpoint_url` to give a client.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn add(&self, rule: Rule) {
        self.shared.lock().rules.push((rule, 0));
    }

    /// Removes every rule and forgets every request seen.
    pub fn clear(&self) {
        *self.shared.lock() = State::default();
    }

    /// How many requests of `operation` the proxy saw, forwarded or not.
    pub fn seen(&self, operation: &str) -> usize {
        self.requests(operation).len()
    }

    /// How many requests of `operation` reached moto (their effect landed).
    pub fn landed(&self, operation: &str) -> usize {
        let requests = self.requests(operation);
        requests.iter().filter(|s| s.forwarded).count()
    }

    /// Every request of `operation` seen, in order.
    pub fn requests(&self, operation: &str) -> Vec<Seen> {
        let wanted = short_name(operation);
        let state = self.shared.lock();
        (state.seen.iter())
            .filter(|s| s.operation == wanted)
            .cloned()
            .collect()
    }

    /// Every request seen, in order.
    pub fn all_seen(&self) -> Vec<Seen> {
        self.shared.lock().seen.clone()
    }
}

/// Rewrites a config written by `TestEnv::write_config*` so that its `aws`
/// store (`endpoint_url` = moto) talks to `proxy` instead.
pub fn route_aws_store_through(config_path: &std::path::Path, proxy: &FaultProxy) {
    let config = std::fs::read_to_string(config_path).expect("the config is readable");
    let moto = format!("endpoint_url = \"{}\"", proxy.shared.upstream);
    assert!(
        config.contains(&moto),
        "the config has no store at moto ({moto}): {config}"
    );
    let through = format!("endpoint_url = \"{}\"", proxy.url);
    std::fs::write(config_path, config.replace(&moto, &through)).expect("the config is written");
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Each critical section is a push or a counter update: a panic
        // elsewhere cannot leave the state half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The action of the first rule that selects this call; every rule of
    /// the operation counts it.
    fn decide(&self, operation: &str) -> Option<Action> {
        let mut state = self.lock();
        let mut chosen = None;
        for (rule, calls) in &mut state.rules {
            let selector = &rule.selector;
            if selector.operation != operation {
                continue;
            }
            *calls += 1;
            let after_start = *calls >= selector.nth;
            let within =
                (selector.count).is_none_or(|count| *calls < selector.nth.saturating_add(count));
            if chosen.is_none() && after_start && within {
                chosen = Some(rule.action.clone());
            }
        }
        chosen
    }

    fn record(&self, operation: String, forwarded: bool, action: Option<Action>) {
        let seen = Seen {
            operation,
            forwarded,
            action,
        };
        self.lock().seen.push(seen);
    }
}

/// `secretsmanager.PutSecretValue` -> `PutSecretValue`.
fn short_name(operation: &str) -> &str {
    operation.rsplit('.').next().unwrap_or(operation)
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
            // A connection ends in an error when a rule drops it: that is the point.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What the service answers when a rule drops the connection: hyper closes
/// it without writing a response.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by a fault proxy rule")
    }
}

impl std::error::Error for Dropped {}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Dropped> {
    let operation = (request.headers().get("x-amz-target"))
        .and_then(|v| v.to_str().ok())
        .map(|target| short_name(target).to_string())
        .unwrap_or_default();
    let action = shared.decide(&operation);
    if let Some(Action::FailBefore(status, kind)) = action {
        shared.record(operation, false, action.clone());
        return Ok(aws_error(status, kind));
    }
    let answer = forward(&shared, request).await;
    shared.record(operation, answer.is_ok(), action.clone());
    match action {
        None | Some(Action::FailBefore(..)) => Ok(answer.unwrap_or_else(|err| bad_gateway(&err))),
        Some(Action::FailAfter(status, kind)) => Ok(aws_error(status, kind)),
        Some(Action::GarbageAfter) => Ok(garbage()),
        Some(Action::DropAfter) => Err(Dropped),
    }
}

/// Sends the request to moto as it came and returns moto's answer.
async fn forward(shared: &Shared, request: Request<Incoming>) -> Result<Response<Body>, String> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(Body::new(body), usize::MAX)
        .await
        .map_err(|e| format!("reading the request body: {e}"))?;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", shared.upstream);
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    let sent = shared.client.request(parts.method, url).headers(headers);
    let answer = sent.body(body).send().await;
    let answer = answer.map_err(|e| format!("forwarding to moto: {e}"))?;
    let (status, mut headers) = (answer.status(), answer.headers().clone());
    let body = answer
        .bytes()
        .await
        .map_err(|e| format!("reading moto's answer: {e}"))?;
    strip_hop_by_hop(&mut headers);
    Ok(respond(status, headers, body))
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

fn respond(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

const AWS_JSON: &str = "application/x-amz-json-1.1";

/// An error as Secrets Manager's JSON protocol sends it.
fn aws_error(status: u16, kind: &'static str) -> Response<Body> {
    let body = serde_json::json!({ "__type": kind, "message": "injected by the fault proxy" });
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(AWS_JSON));
    headers.insert("x-amzn-errortype", HeaderValue::from_static(kind));
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    respond(status, headers, Bytes::from(body.to_string()))
}

/// 200 with a truncated JSON document.
fn garbage() -> Response<Body> {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(AWS_JSON));
    let body = Bytes::from_static(b"{\"ARN\": \"arn:aws:secretsmanager:us-east-1:1234");
    respond(StatusCode::OK, headers, body)
}

/// moto could not be reached: the proxy says so, as a gateway would.
fn bad_gateway(reason: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(reason.to_string()));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}
