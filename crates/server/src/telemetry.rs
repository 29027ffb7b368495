//! Prometheus metrics: one middleware layer for every request, a few named events
//! (tokens issued, logins, DPoP nonce challenges), key ages computed at scrape time, and the
//! separate plain-HTTP listener that serves `GET /metrics` (off unless `metrics.listen` is
//! set). Names follow the Prometheus conventions: `strongroom_` prefix, `_total` for
//! counters, base units (`_seconds`). Every metric is listed in `docs/operations.md`.
//!
//! Labels never carry client ids, users or tokens: only bounded sets (endpoint templates,
//! status codes, OAuth error codes, profiles, grant types, bindings).

use crate::state::{AppState, Listener};
use anyhow::{Context, anyhow};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use strongroom_protocol::client::{Client, GrantType};
use strongroom_protocol::tokens::Binding;

/// Requests by listener, endpoint, status and OAuth error code.
pub const HTTP_REQUESTS: &str = "strongroom_http_requests_total";
/// Request latency by listener and endpoint.
pub const HTTP_DURATION: &str = "strongroom_http_request_duration_seconds";
/// Access tokens issued by grant type, client profile and binding.
pub const TOKENS_ISSUED: &str = "strongroom_tokens_issued_total";
/// Sign-in attempts by result (`success`, `failure`, `throttled`).
pub const LOGINS: &str = "strongroom_logins_total";
/// `use_dpop_nonce` challenges sent (RFC 9449 §8).
pub const DPOP_NONCE_CHALLENGES: &str = "strongroom_dpop_nonce_challenges_total";
/// Seconds since the oldest key of an algorithm entered its state (`next`, `active`, `retired`).
pub const KEY_STATE_AGE: &str = "strongroom_signing_key_state_age_seconds";
/// Store statement latency by backend and statement kind (recorded in `strongroom-store`).
pub const STORE_DURATION: &str = "strongroom_store_query_duration_seconds";
/// Store statements that failed, by backend and statement kind.
pub const STORE_ERRORS: &str = "strongroom_store_errors_total";
/// Pool connections by state (`in_use`, `idle`).
pub const STORE_POOL: &str = "strongroom_store_pool_connections";
/// The pool's upper bound.
pub const STORE_POOL_MAX: &str = "strongroom_store_pool_max_connections";

/// Latency buckets, in seconds: from a cached lookup to an Argon2id sign-in under load.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The OAuth error code of an error response, left in the response's extensions by
/// [`crate::http::ErrorResponse`] so the metrics layer need not parse bodies.
#[derive(Debug, Clone, Copy)]
pub struct OAuthErrorCode(pub &'static str);

/// The process-wide recorder. The `metrics` facade has one global recorder, so all servers
/// in one process (tests with several nodes) share it.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
        .map_err(|e| anyhow!("metrics: {e}"))?
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        // Another thread won the race; use its recorder.
        return HANDLE.get().cloned().ok_or_else(|| anyhow!("metrics: a foreign global recorder is installed"));
    }
    describe();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(HTTP_REQUESTS, "HTTP requests by listener, endpoint, status and OAuth error code");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request latency by listener and endpoint");
    describe_counter!(TOKENS_ISSUED, "Access tokens issued by grant type, client profile and binding");
    describe_counter!(LOGINS, "Sign-in attempts by result");
    describe_counter!(DPOP_NONCE_CHALLENGES, "use_dpop_nonce challenges sent");
    describe_gauge!(KEY_STATE_AGE, Unit::Seconds, "Seconds since the oldest key of an algorithm entered its state");
    describe_histogram!(STORE_DURATION, Unit::Seconds, "Store statement latency by backend and statement kind");
    describe_counter!(STORE_ERRORS, "Failed store statements by backend and statement kind");
    describe_gauge!(STORE_POOL, "Database pool connections by state");
    describe_gauge!(STORE_POOL_MAX, "Database pool size limit");
}

fn listener_label(l: Listener) -> &'static str {
    match l {
        Listener::Public => "public",
        Listener::Mtls => "mtls",
    }
}

/// Middleware: counts every request and observes its latency, labelled by the route
/// template (never the raw path, so cardinality stays bounded).
pub async fn track(State(listener): State<Listener>, req: Request, next: Next) -> Response {
    let endpoint = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let endpoint = endpoint.unwrap_or_else(|| "unmatched".to_string());
    let started = Instant::now();
    let resp = next.run(req).await;
    let listener = listener_label(listener);
    let status = resp.status().as_u16().to_string();
    let error = error_code(&resp);
    record_outcome(&tracing::Span::current(), &resp, &error);
    if error == "use_dpop_nonce" {
        dpop_nonce_challenge();
    }
    metrics::counter!(HTTP_REQUESTS, "listener" => listener, "endpoint" => endpoint.clone(), "status" => status, "error" => error).increment(1);
    metrics::histogram!(HTTP_DURATION, "listener" => listener, "endpoint" => endpoint)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// The span of one request (the parent of its store statements in a trace): named after
/// the method and route template, never the raw path with its identifiers. The
/// interaction id, status and OAuth error are recorded once known.
pub fn request_span(req: &Request) -> tracing::Span {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str());
    tracing::info_span!(
        "request",
        otel.name = %format_args!("{} {route}", req.method()),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        method = %req.method(),
        path = %req.uri().path(),
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        fapi.interaction_id = tracing::field::Empty,
        oauth.error = tracing::field::Empty,
    )
}

/// Puts a response's status and OAuth error code on the request span; a 5xx marks the
/// span as failed.
fn record_outcome(span: &tracing::Span, resp: &Response, error: &str) {
    span.record("http.response.status_code", resp.status().as_u16());
    if !error.is_empty() {
        span.record("oauth.error", error);
    }
    if resp.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

/// The OAuth error of a response: from an error body ([`OAuthErrorCode`]) or from a
/// resource server's `WWW-Authenticate` challenge (RFC 6750 §3, RFC 9449 §7.1).
fn error_code(resp: &Response) -> String {
    if let Some(c) = resp.extensions().get::<OAuthErrorCode>() {
        return c.0.to_string();
    }
    let Some(challenge) = resp.headers().get(axum::http::header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()) else {
        return String::new();
    };
    let Some(start) = challenge.find("error=\"").map(|i| i + "error=\"".len()) else { return String::new() };
    let code: String = challenge[start..].chars().take_while(|c| *c != '"').collect();
    // Only the registered error-code shape, so a label never carries anything else.
    if code.len() <= 32 && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') { code } else { String::new() }
}

fn binding_label(b: &Binding) -> &'static str {
    match b {
        Binding::Mtls { .. } => "mtls",
        Binding::Dpop { .. } => "dpop",
        Binding::Bearer => "bearer",
    }
}

/// An access token was issued.
pub fn token_issued(grant: GrantType, client: &Client, binding: &Binding) {
    metrics::counter!(TOKENS_ISSUED, "grant_type" => grant.as_str(), "profile" => client.profile.as_str(), "binding" => binding_label(binding)).increment(1);
}

/// The outcome of a sign-in attempt.
#[derive(Debug, Clone, Copy)]
pub enum LoginResult {
    /// The password verified.
    Success,
    /// Unknown user or wrong password.
    Failure,
    /// Refused before verification: too many recent failures.
    Throttled,
}

/// A sign-in attempt ended.
pub fn login(result: LoginResult) {
    let label = match result {
        LoginResult::Success => "success",
        LoginResult::Failure => "failure",
        LoginResult::Throttled => "throttled",
    };
    metrics::counter!(LOGINS, "result" => label).increment(1);
}

/// A `use_dpop_nonce` challenge was sent (counted by [`track`] for every endpoint).
fn dpop_nonce_challenge() {
    metrics::counter!(DPOP_NONCE_CHALLENGES).increment(1);
}

/// Sets the key-age gauges from the stored keys.
async fn update_key_ages(state: &AppState) {
    let Ok(keys) = state.keys.list().await else { return };
    let now = crate::state::now();
    let mut oldest: BTreeMap<(String, &'static str), i64> = BTreeMap::new();
    for k in &keys {
        let age = (now - k.state_changed_at).max(0);
        let e = oldest.entry((k.alg.clone(), k.state.as_str())).or_insert(age);
        *e = (*e).max(age);
    }
    for ((alg, state), age) in oldest {
        metrics::gauge!(KEY_STATE_AGE, "alg" => alg, "state" => state).set(age as f64);
    }
}

async fn scrape(State((state, handle)): State<(Arc<AppState>, PrometheusHandle)>) -> Response {
    update_key_ages(&state).await;
    handle.run_upkeep();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
}

/// Binds the metrics listener and serves `GET /metrics` (plain HTTP; bind it to loopback or
/// a monitoring network) until `stopped` resolves.
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let handle = install()?;
    let app = axum::Router::new().route("/metrics", axum::routing::get(scrape)).with_state((state, handle));
    axum::serve(listener, app).with_graceful_shutdown(stopped).await.context("metrics listener")
}
