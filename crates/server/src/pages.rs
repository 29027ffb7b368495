//! Server-rendered pages: login, consent, error, the `form_post` hand-back and the demo
//! callback. Templates are minijinja with HTML auto-escaping; the defaults are built in
//! and a file of the same name in `pages.templates_dir` replaces one at start-up, so an
//! operator can re-brand without rebuilding. Every page carries the security headers of
//! [`security_headers`].

use crate::http::AppRef;
use crate::http::{consent, login};
use crate::state::AppState;
use anyhow::Context;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::Environment;
use serde::Serialize;
use strongroom_protocol::client::Client;
use strongroom_protocol::{ErrorCode, OAuthError};

/// Built-in templates, by name.
pub const DEFAULT_TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("consent.html", include_str!("../templates/consent.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("form_post.html", include_str!("../templates/form_post.html")),
    ("callback.html", include_str!("../templates/callback.html")),
];

/// Path of the login form target.
pub const LOGIN_PATH: &str = "/login";
/// Path of the consent form target.
pub const CONSENT_PATH: &str = "/consent";
/// Path of the development callback page.
pub const DEMO_CALLBACK_PATH: &str = "/demo/callback";

/// `Content-Security-Policy` of every page. No `form-action`: it would block the 303 from
/// the consent form to the client's redirect URI in some browsers.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The page templates, parsed once at start-up.
pub struct Pages {
    env: Environment<'static>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages").finish_non_exhaustive()
    }
}

impl Pages {
    /// Loads the built-in templates, each replaced by the file of the same name in `dir`
    /// when there is one. A template that does not parse stops the start-up with its name.
    pub fn load(dir: Option<&std::path::Path>) -> anyhow::Result<Pages> {
        let mut env = Environment::new();
        // `.html` templates are HTML-escaped (minijinja's default rule, stated here so a
        // change of default cannot switch escaping off).
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") { minijinja::AutoEscape::Html } else { minijinja::AutoEscape::None }
        });
        for (name, builtin) in DEFAULT_TEMPLATES {
            let custom = dir.map(|d| d.join(name)).filter(|p| p.is_file());
            let source = match custom {
                Some(path) => std::fs::read_to_string(&path)
                    .with_context(|| format!("pages.templates_dir: cannot read {}", path.display()))?,
                None => (*builtin).to_string(),
            };
            env.add_template_owned(*name, source)
                .with_context(|| format!("pages.templates_dir: template {name} does not parse"))?;
        }
        Ok(Pages { env })
    }

    /// Renders a template.
    pub fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

/// Sets the headers every page and every front-channel redirect carries (issue 4:
/// CSP with `frame-ancestors 'none'`, `X-Frame-Options`, `Referrer-Policy`,
/// `Cache-Control: no-store`, HSTS).
pub fn security_headers(h: &mut HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

/// A rendered page with its status, security headers and any cookies to set. A template
/// that fails to render (an operator's override, say) is logged and replaced by a plain
/// message, never a 500 with details.
pub fn page(
    state: &AppState,
    status: StatusCode,
    template: &str,
    ctx: minijinja::Value,
    cookies: &[String],
) -> Response {
    let body = match state.pages.render(template, ctx) {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(template, error = %e, "page template failed to render");
            "<!doctype html><html lang=\"en\"><title>Strongroom</title><p>The page cannot be shown. Return to the \
             application and try again.</p></html>"
                .to_string()
        }
    };
    let mut resp = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    let h = resp.headers_mut();
    security_headers(h);
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// The error page: the error code and its safe description, HTTP 400 (503 when the store
/// is unavailable). Used whenever the client or its redirect URI cannot be trusted, so
/// the user is informed and never redirected (R6749-4.1.2.1, F2SP-5.3.2.1-7).
pub fn error_page(state: &AppState, error: &OAuthError) -> Response {
    let status = match error.code {
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let ctx = minijinja::context! { error => error.code.as_str(), error_description => error.description.as_ref() };
    page(state, status, "error.html", ctx, &[])
}

/// One requested scope, as the consent page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ScopeView {
    /// The scope value.
    pub name: String,
    /// What granting it means, in words (F2SP-5.3.2.2-13, F1B-5.2.2-17).
    pub description: String,
}

/// A human description of a scope.
pub fn scope_description(scope: &str) -> &'static str {
    match scope {
        "openid" => "Confirm who you are (your user identifier).",
        "profile" => "See your profile: name and other basic details.",
        "email" => "See your email address.",
        "offline_access" => "Keep access while you are not signed in (a refresh token).",
        "accounts" => "See your accounts, balances and transactions.",
        "payments" => "Start payments from your accounts.",
        _ => "Access described by the application as this scope.",
    }
}

/// The scopes of a space-separated scope string, with descriptions.
pub fn scope_views(scope: &str) -> Vec<ScopeView> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| ScopeView { name: s.to_string(), description: scope_description(s).to_string() })
        .collect()
}

/// A name and value for a list on a page.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// `GET /demo/callback`: a development helper that shows the `code`, `state`, `iss` or
/// `error` it received, escaped, so a newcomer can follow the flow by hand.
pub async fn demo_callback(State(state): State<AppRef>, RawQuery(query): RawQuery) -> Response {
    const SHOWN: &[&str] = &["code", "state", "iss", "error", "error_description", "error_uri", "response"];
    let raw = query.unwrap_or_default();
    let params: Vec<Pair> = url::form_urlencoded::parse(raw.as_bytes())
        .filter(|(k, _)| SHOWN.contains(&k.as_ref()))
        .map(|(k, v)| Pair { name: k.into_owned(), value: v.into_owned() })
        .collect();
    page(&state, StatusCode::OK, "callback.html", minijinja::context! { params }, &[])
}

/// The name the pages show for a client: its `client_name`, else its `client_id`.
pub fn client_name(client: &Client) -> String {
    client.metadata.client_name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| client.client_id.clone())
}

/// Routes of the login and consent forms and the demo callback (public listener).
pub fn routes() -> Router<AppRef> {
    Router::new()
        .route(LOGIN_PATH, post(login::login))
        .route(CONSENT_PATH, post(consent::consent))
        .route(DEMO_CALLBACK_PATH, get(demo_callback))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_templates_parse_and_escape() {
        let p = Pages::load(None).unwrap();
        let html = p
            .render(
                "error.html",
                minijinja::context! { error => "invalid_request", error_description => "<script>x</script>" },
            )
            .unwrap();
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("lang=\"en\""));
    }

    #[test]
    fn a_template_in_the_directory_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("error.html"), "custom {{ error }}").unwrap();
        let p = Pages::load(Some(dir.path())).unwrap();
        let html = p.render("error.html", minijinja::context! { error => "access_denied" }).unwrap();
        assert_eq!(html, "custom access_denied");
        // Others stay built in.
        assert!(p.render("login.html", minijinja::context! {}).unwrap().contains("<form"));
    }

    #[test]
    fn a_broken_template_stops_start_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("login.html"), "{% if %}").unwrap();
        let err = Pages::load(Some(dir.path())).unwrap_err();
        assert!(format!("{err:#}").contains("login.html"));
    }

    #[test]
    fn scopes_have_descriptions() {
        let v = scope_views("openid  accounts payments");
        assert_eq!(v.len(), 3);
        assert!(v[1].description.contains("accounts"));
    }
}
