//! Front-channel cookies: the browser session cookie and the CSRF token of the login and
//! consent forms.

use super::Params;
use crate::pages::error_page;
use crate::state::AppState;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use strongroom_protocol::OAuthError;
use strongroom_protocol::random::random_token;
use subtle::ConstantTimeEq;

/// The browser session cookie (its value is stored only as a SHA-256 hash).
pub const SESSION_COOKIE: &str = "sr_session";
/// The CSRF double-submit cookie.
pub const CSRF_COOKIE: &str = "sr_csrf";

/// The value of a cookie in the request.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(super) fn looks_like_token(v: &str) -> bool {
    v.len() == 43 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The CSRF token for a page: the browser's current one when it has a well-formed one,
/// else a new one. The cookie is (re)set with every page.
pub(super) fn csrf_token(headers: &HeaderMap) -> (String, String) {
    let token = cookie(headers, CSRF_COOKIE).filter(|v| looks_like_token(v)).map(str::to_string);
    let token = token.unwrap_or_else(random_token);
    let set = format!("{CSRF_COOKIE}={token}; Secure; HttpOnly; SameSite=Strict; Path=/");
    (token, set)
}

/// Double-submit check: the form's `csrf` field equals the `sr_csrf` cookie, compared in
/// constant time.
pub(super) fn csrf_ok(headers: &HeaderMap, form: &Params) -> bool {
    match (cookie(headers, CSRF_COOKIE), form.get("csrf")) {
        (Some(c), Some(f)) if looks_like_token(c) => bool::from(c.as_bytes().ct_eq(f.as_bytes())),
        _ => false,
    }
}

pub(super) fn csrf_refused(state: &AppState) -> Response {
    error_page(
        state,
        &OAuthError::invalid_request(
            "the form has expired or did not come from this site: return to the application and start again",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(cookie_header: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(cookie_header).unwrap());
        h
    }

    #[test]
    fn cookies_are_found_by_name() {
        let h = headers("a=1; sr_session=abc;  sr_csrf=xyz");
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn csrf_double_submit() {
        let t = random_token();
        let h = headers(&format!("{CSRF_COOKIE}={t}"));
        let mut form = Params::new();
        assert!(!csrf_ok(&h, &form));
        form.insert("csrf".into(), t.clone());
        assert!(csrf_ok(&h, &form));
        form.insert("csrf".into(), random_token());
        assert!(!csrf_ok(&h, &form));
        // A page reuses a well-formed cookie and replaces a malformed one.
        assert_eq!(csrf_token(&h).0, t);
        assert_ne!(csrf_token(&headers("sr_csrf=short")).0, "short");
        let (_, set) = csrf_token(&h);
        assert!(set.contains("Secure") && set.contains("HttpOnly") && set.contains("SameSite=Strict"));
    }
}
