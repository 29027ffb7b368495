//! Discovery, JWKS and health endpoints.

use super::AppRef;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use strongroom_protocol::discovery;

/// `GET /.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`
/// (F2SP-5.3.2.1-1: the same document under both names).
pub async fn openid_configuration(State(state): State<AppRef>) -> Response {
    #[allow(unused_mut)]
    let mut doc = discovery::metadata(&state.endpoints, &state.rules, &state.keys.algorithms());
    #[cfg(not(feature = "jwe"))]
    if let Some(m) = doc.as_object_mut() {
        m.remove("request_object_encryption_alg_values_supported");
        m.remove("request_object_encryption_enc_values_supported");
        for k in ["id_token", "authorization"] {
            m.remove(&format!("{k}_encryption_alg_values_supported"));
            m.remove(&format!("{k}_encryption_enc_values_supported"));
        }
    }
    let mut resp = axum::Json(doc).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    resp
}

/// `GET /jwks`: active, next and recently retired public keys.
pub async fn jwks(State(state): State<AppRef>) -> Response {
    let mut resp = axum::Json(state.keys.jwks()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jwk-set+json"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    resp
}

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: the database answers.
pub async fn readyz(State(state): State<AppRef>) -> Response {
    match state.store.ping().await {
        Ok(()) => axum::Json(json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "unavailable"}))).into_response()
        }
    }
}
