//! Dynamic client registration (RFC 7591) and management (RFC 7592) — placeholder.

use super::AppRef;
use axum::Router;

/// Routes of `/register`.
pub fn routes() -> Router<AppRef> {
    Router::new()
}
