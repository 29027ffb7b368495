//! The login page and `POST /login`: Argon2id verification, throttling, and a fresh session.

use super::authorize::{Decision, Step, decide, load_pushed, resume_url, see_other, store_page, unusable_request_uri};
use super::cookies::{SESSION_COOKIE, cookie, csrf_ok, csrf_refused, csrf_token};
use super::{AppRef, parse_form};
use crate::audit::{AuditEvent, AuditKind};
use crate::pages::{LOGIN_PATH, client_name, error_page, page};
use crate::service::verify_password;
use crate::state::{AppState, now};
use crate::tls::ConnectionInfo;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use std::net::IpAddr;
use std::sync::OnceLock;
use strongroom_protocol::OAuthError;
use strongroom_protocol::authz::refused_by_user;
pub use strongroom_protocol::claims_request::PASSWORD_ACR;
use strongroom_protocol::client::Client;
use strongroom_protocol::jose::sha256_b64url;
use strongroom_protocol::random::random_token;
use strongroom_store::{SessionRecord, StoreError};

/// Sign-in attempts for one username in a window after which further attempts are
/// refused (a success starts the count again).
pub const MAX_LOGIN_FAILURES: u32 = 5;
/// The window in which failures are counted, and for which a throttled username stays
/// refused, in seconds.
pub const LOGIN_FAILURE_WINDOW: i64 = 15 * 60;
/// The one message for every failed login, whether or not the user exists (no user
/// enumeration).
pub const BAD_CREDENTIALS: &str = "The username or password is not correct.";
/// The message while a username is throttled.
pub const TOO_MANY_ATTEMPTS: &str = "The username or password is not correct, and there were too many attempts: \
                                     try later.";

pub(super) fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
    request_uri: &str,
    error: Option<&str>,
    username: &str,
    status: StatusCode,
) -> Response {
    let (csrf, set_cookie) = csrf_token(headers);
    let ctx = minijinja::context! {
        client_name => client_name(client),
        client_id => client.client_id.as_str(),
        request_uri,
        csrf,
        error,
        username,
        action => state.endpoints.public(LOGIN_PATH),
    };
    page(state, status, "login.html", ctx, &[set_cookie])
}

/// A valid Argon2id hash of nothing anyone knows, so an unknown username costs the same
/// verification time as a known one.
/// Concurrent Argon2id verifications allowed (one per core of the reference machine).
static PASSWORD_CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| crate::service::hash_password(&random_token()).unwrap_or_default())
}

/// Sign-in attempts from one client address in a window after which further attempts
/// are refused. Higher than the per-user limit, since many users may share an address (a
/// NAT); successful sign-ins are given back, so only failures accumulate.
pub const MAX_ADDRESS_ATTEMPTS: u64 = 20;

/// The store keys an attempt is counted under: the username and the client address. An
/// IPv6 address counts by its /64, which one client can usually take whole.
fn attempt_keys(username: &str, peer: Option<IpAddr>) -> (String, Option<String>) {
    let address = peer.map(|ip| match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        v4 => format!("ip:{v4}"),
    });
    (format!("user:{}", username.to_lowercase()), address)
}

/// Reserves this attempt before any password check (issue 10): one atomic count in the
/// store per key, shared by every node. False when the user or the address is over its
/// limit in the current window; then no password is checked.
async fn reserve_attempt(
    state: &AppState,
    user_key: &str,
    address_key: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let ends = now + LOGIN_FAILURE_WINDOW;
    let user = state.store.count_login_attempt(user_key, now, ends).await?;
    let address = match address_key {
        Some(key) => state.store.count_login_attempt(key, now, ends).await?,
        None => 0,
    };
    Ok(user <= u64::from(MAX_LOGIN_FAILURES) && address <= MAX_ADDRESS_ATTEMPTS)
}

/// After a successful sign-in: the user's count starts again and the address gets its
/// attempt back (a reset of the address would let one valid account wipe the count of
/// guesses against others).
async fn attempt_succeeded(state: &AppState, user_key: &str, address_key: Option<&str>) {
    let mut result = state.store.clear_login_attempts(user_key).await;
    if let Some(key) = address_key {
        result = result.and(state.store.release_login_attempt(key).await);
    }
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not reset the sign-in attempt count");
    }
}

/// Records a sign-in attempt: the client it was for and the user when the username is
/// known (never the username or password typed).
async fn audit_login(state: &AppState, kind: AuditKind, client: &Client, subject: Option<&str>) {
    let mut event = AuditEvent::new(kind).client(client).detail("known_user", subject.is_some());
    if let Some(s) = subject {
        event = event.subject(s);
    }
    state.audit.record(event).await;
}

/// `POST /login` (username, password, csrf, request_uri): Argon2id verification, one
/// generic message for every failure, throttling per username, a fresh session, and a 303
/// back to the authorization endpoint (F2SP-5.3.2.2-10/11).
pub async fn login(
    State(state): State<AppRef>,
    conn: Option<Extension<ConnectionInfo>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The address a trusted proxy forwarded, else the TCP peer (so behind a proxy every
    // user does not share the proxy's count).
    let peer = conn.map(|Extension(c)| c.client_ip);
    login_inner(&state, peer, &headers, &body).await.unwrap_or_else(|r| r)
}

async fn login_inner(state: &AppRef, peer: Option<IpAddr>, headers: &HeaderMap, body: &Bytes) -> Step<Response> {
    let form = parse_form(headers, body).map_err(|e| error_page(state, &e.error))?;
    if !csrf_ok(headers, &form) {
        return Err(csrf_refused(state));
    }
    let now = now();
    let request_uri = form.get("request_uri").map(String::as_str).unwrap_or("");
    let (record, _request) = load_pushed(state, request_uri, now).await?;
    let client = state
        .client(&record.client_id)
        .await
        .map_err(|e| store_page(state, e))?
        .ok_or_else(|| unusable_request_uri(state))?;
    // The Cancel control: no sign-in, the request ends at the client like a denial.
    if form.get("decision").map(String::as_str) == Some("cancel") {
        return Ok(decide(state, &client, request_uri, Decision::Refuse(refused_by_user()), now).await);
    }
    let username = form.get("username").map(|u| u.trim()).unwrap_or("");
    let password = form.get("password").cloned().unwrap_or_default();
    let (user_key, address_key) = attempt_keys(username, peer);
    let again = |msg: &str, status| login_page(state, headers, &client, request_uri, Some(msg), username, status);
    if username.is_empty() || username.len() > 128 || password.is_empty() || password.len() > 1024 {
        return Ok(again(BAD_CREDENTIALS, StatusCode::OK));
    }
    let allowed =
        reserve_attempt(state, &user_key, address_key.as_deref(), now).await.map_err(|e| store_page(state, e))?;
    if !allowed {
        crate::telemetry::login(crate::telemetry::LoginResult::Throttled);
        let known = state.store.get_user_by_username(username).await.ok().flatten();
        audit_login(state, AuditKind::LoginThrottled, &client, known.as_ref().map(|u| u.subject.as_str())).await;
        return Ok(again(TOO_MANY_ATTEMPTS, StatusCode::TOO_MANY_REQUESTS));
    }
    let user = state.store.get_user_by_username(username).await.map_err(|e| store_page(state, e))?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    // Argon2id takes 19 MiB per verification: at most two at a time, so a burst of
    // sign-ins costs time, not memory the allocator keeps afterwards.
    let _slot = PASSWORD_CHECKS.acquire().await.map_err(|_| error_page(state, &OAuthError::server_error()))?;
    let verified = tokio::task::spawn_blocking(move || match hash {
        Some(h) => verify_password(&password, &h),
        None => {
            let _ = verify_password(&password, dummy_hash());
            false
        }
    })
    .await
    .unwrap_or(false);
    let subject = user.as_ref().map(|u| u.subject.clone());
    let Some(user) = user.filter(|_| verified) else {
        crate::telemetry::login(crate::telemetry::LoginResult::Failure);
        audit_login(state, AuditKind::LoginFailed, &client, subject.as_deref()).await;
        return Ok(again(BAD_CREDENTIALS, StatusCode::OK));
    };
    attempt_succeeded(state, &user_key, address_key.as_deref()).await;
    crate::telemetry::login(crate::telemetry::LoginResult::Success);
    audit_login(state, AuditKind::LoginSucceeded, &client, Some(&user.subject)).await;
    // A new session on every login (no session fixation); the old one ends.
    if let Some(old) = cookie(headers, SESSION_COOKIE)
        && let Err(e) = state.store.delete_session(&sha256_b64url(old.as_bytes())).await
    {
        tracing::warn!(error = %e, "could not end the previous session");
    }
    let value = random_token();
    let ttl = i64::try_from(state.config.tokens.session_ttl).unwrap_or(3600);
    let session = SessionRecord {
        id: sha256_b64url(value.as_bytes()),
        subject: user.subject.clone(),
        auth_time: now,
        expires_at: now + ttl,
        data: json!({"acr": PASSWORD_ACR, "amr": ["pwd"], "request_uri": request_uri}),
    };
    state.store.put_session(&session).await.map_err(|e| store_page(state, e))?;
    let set = format!("{SESSION_COOKIE}={value}; Secure; HttpOnly; SameSite=Lax; Path=/");
    Ok(see_other(&resume_url(state, &client.client_id, request_uri), &[set]))
}
