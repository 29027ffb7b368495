//! UserInfo and the demo resource, behind the resource-server guard (placeholder).

use super::AppRef;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

/// `GET/POST /userinfo`.
pub async fn userinfo(State(_state): State<AppRef>) -> Response {
    (axum::http::StatusCode::NOT_IMPLEMENTED, "not yet").into_response()
}

/// `GET /demo/accounts`.
pub async fn demo_accounts(State(_state): State<AppRef>) -> Response {
    (axum::http::StatusCode::NOT_IMPLEMENTED, "not yet").into_response()
}
