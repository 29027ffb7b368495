//! The authorization endpoint (placeholder until the flow lands).

use super::AppRef;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

/// `GET /authorize`.
pub async fn authorize(State(_state): State<AppRef>) -> Response {
    (axum::http::StatusCode::NOT_IMPLEMENTED, "not yet").into_response()
}

/// `POST /authorize`.
pub async fn authorize_post(State(_state): State<AppRef>) -> Response {
    (axum::http::StatusCode::NOT_IMPLEMENTED, "not yet").into_response()
}
