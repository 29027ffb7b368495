//! The JSON admin API — placeholder.

use super::AppRef;
use axum::Router;

/// Routes under `/admin`.
pub fn routes() -> Router<AppRef> {
    Router::new()
}
