//! Server-rendered pages (placeholder until the flow lands).

use crate::http::AppRef;
use axum::Router;

/// Page templates.
pub struct Pages;

impl Pages {
    /// Loads templates.
    pub fn load(_dir: Option<&std::path::Path>) -> anyhow::Result<Pages> {
        Ok(Pages)
    }
}

/// Routes of the login and consent pages.
pub fn routes() -> Router<AppRef> {
    Router::new()
}
