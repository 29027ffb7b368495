//! Refusals, rendered as RFC 6750 §3 / RFC 9449 §7.1 challenges.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::fmt;
use strongroom_protocol::{ErrorCode, OAuthError};

/// The authentication scheme a challenge is issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 6750 `Bearer` (also used for mTLS-bound tokens, RFC 8705 §3).
    Bearer,
    /// RFC 9449 `DPoP`.
    Dpop,
}

impl Scheme {
    /// The scheme's name in `Authorization` and `WWW-Authenticate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Bearer => "Bearer",
            Scheme::Dpop => "DPoP",
        }
    }
}

/// A refusal, rendered per RFC 6750 §3 and RFC 9449 §7.1: 401 with a `WWW-Authenticate`
/// challenge of the scheme the token was (or must be) presented with, 403 for
/// `insufficient_scope`, 400 for `invalid_request`, 503 when the issuer's keys cannot be had.
/// A missing token gets a challenge without an error code (RFC 6750 §3.1).
#[derive(Debug, Clone)]
pub struct GuardRejection {
    pub(crate) error: Option<OAuthError>,
    pub(crate) scheme: Scheme,
    pub(crate) nonce: Option<String>,
    pub(crate) algs: String,
    pub(crate) scope: Option<String>,
}

impl GuardRejection {
    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        match self.error.as_ref().map(|e| e.code) {
            Some(ErrorCode::InsufficientScope) => StatusCode::FORBIDDEN,
            Some(ErrorCode::InvalidRequest) => StatusCode::BAD_REQUEST,
            Some(ErrorCode::TemporarilyUnavailable) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The OAuth error code; `None` when no token was presented at all.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.error.as_ref().map(|e| e.code)
    }

    /// The safe, human-readable description (empty when no token was presented).
    pub fn description(&self) -> &str {
        self.error.as_ref().map(|e| e.description.as_ref()).unwrap_or("")
    }

    /// The scheme of the challenge.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The `DPoP-Nonce` the client must use in its next proof (R9449-9), if any.
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// The `WWW-Authenticate` values of this refusal (one per offered scheme).
    pub fn challenges(&self) -> Vec<String> {
        let Some(e) = &self.error else {
            // RFC 6750 §3.1 / RFC 9449 §7.1: no credentials — offer the schemes, no error code.
            // DPoP first: a FAPI resource prefers it; the order carries no other meaning.
            let mut out = Vec::new();
            if !self.algs.is_empty() {
                out.push(format!("DPoP algs=\"{}\"", self.algs));
            }
            out.push(Scheme::Bearer.as_str().to_string());
            return out;
        };
        if e.code == ErrorCode::TemporarilyUnavailable {
            return Vec::new();
        }
        let mut parts = vec![
            format!("error=\"{}\"", e.code.as_str()),
            format!("error_description=\"{}\"", quoted_safe(&e.description)),
        ];
        if let Some(scope) = &self.scope {
            parts.push(format!("scope=\"{}\"", quoted_safe(scope)));
        }
        if self.scheme == Scheme::Dpop && !self.algs.is_empty() {
            parts.push(format!("algs=\"{}\"", self.algs));
        }
        vec![format!("{} {}", self.scheme.as_str(), parts.join(", "))]
    }
}

/// RFC 6750 §3: `error_description` and `scope` values are limited to
/// `%x20-21 / %x23-5B / %x5D-7E` (no `"` and no `\`).
fn quoted_safe(s: &str) -> String {
    s.chars().map(|c| if (' '..='~').contains(&c) && c != '"' && c != '\\' { c } else { '\'' }).collect()
}

impl fmt::Display for GuardRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            Some(e) => write!(f, "{}: {}", e.code.as_str(), e.description),
            None => f.write_str("no access token"),
        }
    }
}

impl std::error::Error for GuardRejection {}

impl IntoResponse for GuardRejection {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut resp = match &self.error {
            Some(e) => {
                let body = json!({"error": e.code.as_str(), "error_description": e.description});
                (status, axum::Json(body)).into_response()
            }
            None => status.into_response(),
        };
        let headers = resp.headers_mut();
        for challenge in self.challenges() {
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                headers.append(header::WWW_AUTHENTICATE, v);
            }
        }
        if let Some(n) = self.nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
            headers.insert("dpop-nonce", n);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_cannot_break_the_challenge() {
        assert_eq!(quoted_safe("a \"b\" \\ c\n"), "a 'b' ' c'");
    }

    /// RFC 6750 §3.1: no token → a challenge without error code.
    #[test]
    fn missing_token_offers_both_schemes() {
        let r = GuardRejection { error: None, scheme: Scheme::Bearer, nonce: None, algs: "ES256".into(), scope: None };
        assert_eq!(r.challenges(), vec!["DPoP algs=\"ES256\"".to_string(), "Bearer".to_string()]);
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
}
