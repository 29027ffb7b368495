//! HTTP: axum handlers decode requests into domain types, call the protocol rules, and
//! encode the outcome. No protocol rule lives here.

pub mod admin;
pub mod authorize;
pub mod client_auth;
pub mod consent;
pub mod cookies;
pub mod dpop;
pub mod introspect;
pub mod login;
pub mod par;
pub mod register;
pub mod token;
pub mod userinfo;
pub mod wellknown;

use crate::state::{AppState, Listener};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use strongroom_protocol::discovery::paths;
use strongroom_protocol::{ErrorCode, OAuthError};
use strongroom_store::StoreError;

/// Shared state handle.
pub type AppRef = Arc<AppState>;

/// An OAuth error delivered as a JSON body (RFC 6749 §5.2), with the headers that go
/// with it.
#[derive(Debug)]
pub struct ErrorResponse {
    /// The error.
    pub error: OAuthError,
    /// `WWW-Authenticate` value, if any.
    pub www_authenticate: Option<String>,
    /// A fresh `DPoP-Nonce` (R9449-8).
    pub dpop_nonce: Option<String>,
}

impl ErrorResponse {
    /// Adds a `WWW-Authenticate` challenge.
    pub fn with_challenge(mut self, v: String) -> Self {
        self.www_authenticate = Some(v);
        self
    }
}

impl From<OAuthError> for ErrorResponse {
    fn from(error: OAuthError) -> Self {
        ErrorResponse { error, www_authenticate: None, dpop_nonce: None }
    }
}

impl From<StoreError> for ErrorResponse {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        let error = match e {
            StoreError::Database(_) => OAuthError::temporarily_unavailable(),
            _ => OAuthError::server_error(),
        };
        ErrorResponse::from(error)
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.error.status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = json!({"error": self.error.code.as_str(), "error_description": self.error.description});
        let mut resp = (status, axum::Json(body)).into_response();
        resp.extensions_mut().insert(crate::telemetry::OAuthErrorCode(self.error.code.as_str()));
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(v) = self.www_authenticate.and_then(|v| HeaderValue::from_str(&v).ok()) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(v) = self.dpop_nonce.and_then(|v| HeaderValue::from_str(&v).ok()) {
            h.insert(HeaderName::from_static("dpop-nonce"), v);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

/// A handler result.
pub type HttpResult<T> = Result<T, ErrorResponse>;

/// Form parameters by name.
pub type Params = BTreeMap<String, String>;

/// Decodes an `application/x-www-form-urlencoded` body. Repeated parameters are refused
/// (RFC 6749 §3.1).
pub fn parse_form(headers: &HeaderMap, body: &Bytes) -> HttpResult<Params> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded").into());
    }
    parse_pairs(body)
}

/// Decodes URL-encoded pairs (a form body or a query string).
pub fn parse_pairs(raw: &[u8]) -> HttpResult<Params> {
    let mut out = Params::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if out.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err(OAuthError::invalid_request("a parameter was repeated").into());
        }
    }
    Ok(out)
}

/// A JSON success response that must not be cached (RFC 6749 §5.1).
pub fn no_store_json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// Refuses oversized requests with an OAuth error before they reach a handler: the body
/// by `Content-Length` (413) and the headers by total size (400).
async fn limits(State(state): State<AppRef>, req: Request, next: Next) -> Response {
    let limits = &state.config.limits;
    let header_bytes: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if header_bytes > limits.max_header_bytes {
        return ErrorResponse::from(OAuthError::invalid_request("request headers are too large")).into_response();
    }
    let too_long = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > limits.max_body_bytes);
    if too_long {
        let mut e = ErrorResponse::from(OAuthError::invalid_request("request body is too large"));
        e.error.status = 413;
        return e.into_response();
    }
    next.run(req).await
}

/// F1B-6.2.1-11/12: echo `x-fapi-interaction-id`, or create one.
/// The id and the peer address are also the request's audit context.
async fn interaction_id(req: Request, next: Next) -> Response {
    let name = HeaderName::from_static("x-fapi-interaction-id");
    let id = req.headers().get(&name).filter(|v| v.len() <= 128).cloned().unwrap_or_else(|| {
        HeaderValue::from_str(&strongroom_guard::new_uuid_v4()).unwrap_or(HeaderValue::from_static("0"))
    });
    let context = crate::audit::RequestContext {
        ip: req.extensions().get::<crate::tls::ConnectionInfo>().map(|c| c.client_ip),
        interaction_id: id.to_str().ok().map(str::to_owned),
    };
    if let Some(id) = &context.interaction_id {
        tracing::Span::current().record("fapi.interaction_id", id.as_str());
    }
    let mut resp = crate::audit::in_request(context, next.run(req)).await;
    resp.headers_mut().entry(name).or_insert(id);
    resp
}

/// Converts a body-limit rejection into an OAuth error.
async fn body_limit_error(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE
        && resp.headers().get(header::CONTENT_TYPE).is_none_or(|c| !c.as_bytes().starts_with(b"application/json"))
    {
        let mut e = ErrorResponse::from(OAuthError::new(ErrorCode::InvalidRequest, "request body is too large"));
        e.error.status = 413;
        return e.into_response();
    }
    resp
}

fn client_routes(state: &AppRef, listener: Listener) -> Router<AppRef> {
    Router::new()
        .route(paths::TOKEN, post(token::token))
        .route(paths::PAR, post(par::par))
        .route(paths::INTROSPECT, post(introspect::introspect))
        .route(paths::REVOKE, post(introspect::revoke))
        .merge(userinfo::routes(state, listener))
        .merge(register::routes())
        .merge(admin::routes())
}

fn common(router: Router<AppRef>, state: &AppRef, listener: Listener) -> Router {
    router
        .route(paths::OPENID_CONFIGURATION, get(wellknown::openid_configuration))
        .route(paths::OAUTH_METADATA, get(wellknown::openid_configuration))
        .route(paths::JWKS, get(wellknown::jwks))
        .route("/healthz", get(wellknown::healthz))
        .route("/readyz", get(wellknown::readyz))
        .layer(axum::extract::DefaultBodyLimit::max(state.config.limits.max_body_bytes))
        .layer(middleware::from_fn(body_limit_error))
        .layer(middleware::from_fn_with_state(state.clone(), limits))
        .layer(middleware::from_fn(interaction_id))
        .layer(middleware::from_fn_with_state(listener, crate::telemetry::track))
        .layer(axum::Extension(listener))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(crate::telemetry::request_span))
        .with_state(state.clone())
}

/// The public listener: browser endpoints, discovery, JWKS, and the client endpoints at
/// their top-level URLs.
pub fn public_router(state: &AppRef) -> Router {
    let r = client_routes(state, Listener::Public)
        .route(paths::AUTHORIZE, get(authorize::authorize).post(authorize::authorize_post))
        .merge(crate::pages::routes());
    common(r, state, Listener::Public)
}

/// The mTLS listener: client endpoints (`mtls_endpoint_aliases`).
pub fn mtls_router(state: &AppRef) -> Router {
    common(client_routes(state, Listener::Mtls), state, Listener::Mtls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(parse_pairs(b"a=1&b=2").is_ok());
        let err = parse_pairs(b"a=1&a=2").unwrap_err();
        assert_eq!(err.error.code, ErrorCode::InvalidRequest);
    }
}
