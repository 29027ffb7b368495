//! The front channel: the authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2,
//! RFC 9126 §4), the decision and the authorization response (RFC 9207 `iss`, JARM, hybrid
//! ID token). The login and consent forms are in [`super::login`] and [`super::consent`].
//!
//! Every request is turned into a pushed-request record first: FAPI clients push it
//! (PAR); for clients that may send it directly, the validated request is stored under a
//! fresh `request_uri` of our own. From there on the flow is the same for all: the login
//! and consent pages carry only the `request_uri`, and the request is consumed atomically
//! when the authorization is decided (R9126-4-once), by [`decide`].

// A step ends early with the page or redirect to send: a `Response` as the error value is
// the design, moved once per request, not a cost worth boxing.
#![allow(clippy::result_large_err)]

use super::consent::consent_page;
use super::cookies::{SESSION_COOKIE, cookie};
use super::login::login_page;
use super::par::REQUEST_URI_PREFIX;
use super::token::CodeData;
use super::{AppRef, Params, parse_form, parse_pairs};
use crate::audit::{AuditEvent, AuditKind};
use crate::pages::{self, Pair, error_page, page};
use crate::state::{AppState, now};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use strongroom_protocol::authz::{
    AuthorizationRequest, error_request, needs_fresh_login, redirect_with, trusted_redirect_uri,
    unverified_request_redirect, validate_authorization_request,
};
use strongroom_protocol::client::Client;
use strongroom_protocol::discovery::paths;
use strongroom_protocol::jose::sha256_b64url;
use strongroom_protocol::random::random_token;
use strongroom_protocol::request_object::{Delivery, delivery_for, jarm_claims};
use strongroom_protocol::tokens::IdTokenInput;
use strongroom_protocol::{ErrorCode, OAuthError};
use strongroom_store::{ConsentRecord, Consumed, OneTimeRecord, SessionRecord, StoreError};

/// A step that either goes on with a value or ends with a response (a page or redirect).
pub(super) type Step<T> = Result<T, Response>;

// ---------------------------------------------------------------------------------------
// The authorization endpoint

/// `GET /authorize`.
pub async fn authorize(State(state): State<AppRef>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    match parse_pairs(query.unwrap_or_default().as_bytes()) {
        Ok(params) => begin(&state, &params, &headers).await.unwrap_or_else(|r| r),
        Err(e) => error_page(&state, &e.error),
    }
}

/// `POST /authorize` with a form body (OIDC Core §3.1.2.1).
pub async fn authorize_post(State(state): State<AppRef>, headers: HeaderMap, body: Bytes) -> Response {
    match parse_form(&headers, &body) {
        Ok(params) => begin(&state, &params, &headers).await.unwrap_or_else(|r| r),
        Err(e) => error_page(&state, &e.error),
    }
}

/// Establishes the client and the request, then goes on to login, consent or decision.
async fn begin(state: &AppRef, params: &Params, headers: &HeaderMap) -> Step<Response> {
    let now = now();
    // F2SP-5.3.2.1-7, R6749-4.1.2.1: without a known client there is nowhere safe to
    // redirect to.
    let client_id = params.get("client_id").filter(|c| !c.is_empty()).ok_or_else(|| {
        error_page(state, &OAuthError::invalid_request("client_id is missing: the application's request is incomplete"))
    })?;
    let client =
        state.client(client_id).await.map_err(|e| store_page(state, e))?.ok_or_else(|| {
            error_page(state, &OAuthError::invalid_request("the application (client_id) is not known"))
        })?;
    // R9101-5-excl: `request` and `request_uri` never come together.
    if params.contains_key("request") && params.contains_key("request_uri") {
        return Err(error_page(state, &OAuthError::invalid_request("request and request_uri must not both be sent")));
    }
    let (request_uri, request) = match params.get("request_uri") {
        // F2SP-client-5.3.3.2-6, R9101-6.3: only the pushed parameters count; anything
        // else on the front channel is ignored.
        // R9101-5.2: a client-hosted request object, where allowed and registered.
        Some(uri) if !uri.starts_with(REQUEST_URI_PREFIX) && !client.requires_par() => {
            remote_request(state, &client, params, uri, now).await?
        }
        Some(uri) => (uri.clone(), pushed_request(state, &client, uri, now).await?),
        // F2SP-5.3.2.2-3, R9126-4-only.
        None if client.requires_par() => {
            return Err(error_page(
                state,
                &OAuthError::invalid_request(
                    "this application must push its authorization request (PAR) and send only client_id and \
                     request_uri",
                ),
            ));
        }
        None => direct_request(state, &client, params, now).await?,
    };
    proceed(state, headers, &client, &request_uri, &request, now).await
}

/// RFC 9101 §5.2: a request object the client hosts at an https `request_uri` it
/// registered in `request_uris`, fetched with the `jwks_uri` guard; only when the server
/// allows it (`registration.allow_remote_request_uris`, off by default). From there on it
/// is a request object by value.
async fn remote_request(
    state: &AppState,
    client: &Client,
    params: &Params,
    uri: &str,
    now: i64,
) -> Step<(String, AuthorizationRequest)> {
    let refuse = |d: &'static str| error_page(state, &OAuthError::new(ErrorCode::InvalidRequestUri, d));
    if !state.config.registration.allow_remote_request_uris {
        return Err(refuse("client-hosted request_uri values are not accepted"));
    }
    let registered = client
        .metadata
        .extra
        .get("request_uris")
        .and_then(|v| v.as_array())
        .is_some_and(|list| list.iter().any(|r| r.as_str() == Some(uri)));
    if !registered {
        return Err(refuse("the request_uri is not registered for this application"));
    }
    let object = state.jwks_fetcher.request_object(uri).await.map_err(|e| {
        tracing::warn!(client_id = %client.client_id, error = %e, "client-hosted request_uri unusable");
        refuse("the request object could not be fetched from the request_uri")
    })?;
    let mut by_value = params.clone();
    by_value.remove("request_uri");
    by_value.insert("request".into(), object);
    direct_request(state, client, &by_value, now).await
}

/// A pushed request of this client that is still usable. Loading it does not consume it
/// (R9126-4-once: consumption happens at the decision).
async fn pushed_request(state: &AppState, client: &Client, uri: &str, now: i64) -> Step<AuthorizationRequest> {
    let (record, request) = load_pushed(state, uri, now).await?;
    // R9126-2.2: a request URI is bound to the client that pushed it.
    if record.client_id != client.client_id {
        return Err(unusable_request_uri(state));
    }
    // R9126-4-validate: the client may have changed since the push; its redirect URI must
    // still be registered before anything is sent there.
    if !client.has_redirect_uri(&request.redirect_uri) {
        return Err(error_page(
            state,
            &OAuthError::invalid_request("the redirect_uri of the pushed request is no longer registered"),
        ));
    }
    Ok(request)
}

pub(super) fn unusable_request_uri(state: &AppState) -> Response {
    error_page(
        state,
        &OAuthError::new(
            ErrorCode::InvalidRequestUri,
            "the request_uri is unknown, expired or already used, or belongs to another application",
        ),
    )
}

/// Reads a pushed request (unknown, expired, decided or corrupt: the error page).
pub(super) async fn load_pushed(state: &AppState, uri: &str, now: i64) -> Step<(OneTimeRecord, AuthorizationRequest)> {
    // R9126-2.2: only the URNs we issued (R9101-5.2 by-reference URLs are not supported).
    if !uri.starts_with(REQUEST_URI_PREFIX) || uri.contains('#') || uri.len() > 512 {
        return Err(unusable_request_uri(state));
    }
    let record = state.store.get_pushed_request(uri).await.map_err(|e| store_page(state, e))?;
    // R9126-4-expired; R9126-4-once (a decided request is no longer returned).
    let Some(record) = record.filter(|r| r.expires_at > now) else { return Err(unusable_request_uri(state)) };
    let request: AuthorizationRequest =
        serde_json::from_value(record.data.clone()).map_err(|_| unusable_request_uri(state))?;
    Ok((record, request))
}

/// A request sent directly (not pushed) by a client whose profile allows that: validated
/// as at PAR (R9126-4-validate) and stored under an internal `request_uri` so the rest of
/// the flow is the same. Errors go back to a registered redirect URI, or to the error page
/// when the redirect URI cannot be trusted (R6749-4.1.2.1).
async fn direct_request(
    state: &AppState,
    client: &Client,
    params: &Params,
    now: i64,
) -> Step<(String, AuthorizationRequest)> {
    let fail = |p: &Params, e: OAuthError| match trusted_redirect_uri(p, client) {
        Some(redirect_uri) => {
            let st = p.get("state").map(String::as_str).filter(|s| !s.is_empty());
            plain_error_redirect(state, redirect_uri, st, &e)
        }
        None => error_page(state, &e),
    };
    // F1A-5.2.2-1: a signed request object by value; only the parameters inside it are
    // used (F1A-5.2.2-10), after its signature and claims pass (F1A-5.2.2-13).
    let inner;
    let params = match params.get("request") {
        Some(object) => {
            inner = crate::http::par::request_object_params(state, client, object, params, now).await.map_err(|e| {
                match unverified_request_redirect(client) {
                    Some(redirect_uri) => plain_error_redirect(state, redirect_uri, None, &e.error),
                    None => error_page(state, &e.error),
                }
            })?;
            &inner
        }
        None if client.requires_signed_request_object() => {
            return Err(fail(
                params,
                OAuthError::invalid_request("this application must send a signed request object"),
            ));
        }
        None => params,
    };
    let request = match validate_authorization_request(params, client, false) {
        Ok(request) => request,
        // Issue 10 point 2: the (verified) parameters name a trusted redirect URI, so the
        // error goes out exactly like a success would (JARM, fragment, form_post.jwt).
        Err(e) => match error_request(params, client) {
            Some(answer) => {
                let enc_keys = response_encryption_keys(state, client, now).await;
                let response =
                    authorization_response(state, client, &answer, Outcome::Error(&e), now, enc_keys.as_ref());
                return Err(response.unwrap_or_else(|r| r));
            }
            None => return Err(error_page(state, &e)),
        },
    };
    let ttl = state.config.tokens.par_ttl.min(client.policy().max_request_uri_ttl);
    let uri = format!("{REQUEST_URI_PREFIX}{}", random_token());
    let data = serde_json::to_value(&request).map_err(|_| error_page(state, &OAuthError::server_error()))?;
    state
        .store
        .put_pushed_request(&OneTimeRecord {
            key: uri.clone(),
            client_id: client.client_id.clone(),
            grant_id: String::new(),
            expires_at: now + i64::try_from(ttl).unwrap_or(60),
            data,
        })
        .await
        .map_err(|e| store_page(state, e))?;
    Ok((uri, request))
}

/// With a known request: sign in, ask for consent, or decide at once (OIDC Core
/// §3.1.2.3–4: `prompt`, `max_age`).
async fn proceed(
    state: &AppRef,
    headers: &HeaderMap,
    client: &Client,
    request_uri: &str,
    request: &AuthorizationRequest,
    now: i64,
) -> Step<Response> {
    let prompt_none = request.prompt.iter().any(|p| p == "none");
    let Some(session) = signed_in_for(state, headers, request_uri, request, now).await? else {
        if prompt_none {
            let e = OAuthError::new(ErrorCode::LoginRequired, "the user is not signed in");
            return Ok(decide(state, client, request_uri, Decision::Refuse(e), now).await);
        }
        return Ok(login_page(state, headers, client, request_uri, None, "", StatusCode::OK));
    };
    let ask_again = request.prompt.iter().any(|p| p == "consent");
    if !ask_again && consent_remembered(state, client, &session.subject, &request.scope).await? {
        let d = Decision::Approve { session, remember: false };
        return Ok(decide(state, client, request_uri, d, now).await);
    }
    if prompt_none {
        let e = OAuthError::new(ErrorCode::ConsentRequired, "the user has not consented to this request");
        return Ok(decide(state, client, request_uri, Decision::Refuse(e), now).await);
    }
    consent_page(state, headers, client, request_uri, request, &session).await
}

/// The browser's session, when it satisfies this request: a session exists, its user
/// still exists, and it is recent enough (`prompt=login`, `max_age`) — or it was created
/// by a login for this very request.
pub(super) async fn signed_in_for(
    state: &AppState,
    headers: &HeaderMap,
    request_uri: &str,
    request: &AuthorizationRequest,
    now: i64,
) -> Step<Option<SessionRecord>> {
    let Some(session) = current_session(state, headers, now).await? else { return Ok(None) };
    let for_this_request = session.data.get("request_uri").and_then(|v| v.as_str()) == Some(request_uri);
    if !for_this_request && needs_fresh_login(request, Some(session.auth_time), now) {
        return Ok(None);
    }
    let user = state.store.get_user_by_subject(&session.subject).await.map_err(|e| store_page(state, e))?;
    Ok(user.map(|_| session))
}

/// The session named by the session cookie, if any and not expired.
async fn current_session(state: &AppState, headers: &HeaderMap, now: i64) -> Step<Option<SessionRecord>> {
    let Some(value) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    state.store.get_session(&sha256_b64url(value.as_bytes()), now).await.map_err(|e| store_page(state, e))
}

/// Whether consent may be remembered for this client: the profile allows it, or the
/// operator allowed it for FAPI clients (`pages.remember_consent_for_fapi`).
fn may_remember_consent(state: &AppState, client: &Client) -> bool {
    client.policy().remember_consent || state.config.pages.remember_consent_for_fapi
}

/// Whether remembered consent covers every requested scope.
async fn consent_remembered(state: &AppState, client: &Client, subject: &str, scope: &str) -> Step<bool> {
    if !may_remember_consent(state, client) {
        return Ok(false);
    }
    let Some(consent) = state.store.get_consent(subject, &client.client_id).await.map_err(|e| store_page(state, e))?
    else {
        return Ok(false);
    };
    let granted: Vec<&str> = consent.scope.split(' ').collect();
    Ok(scope.split(' ').filter(|s| !s.is_empty()).all(|s| granted.contains(&s)))
}

// ---------------------------------------------------------------------------------------
// The decision and the authorization response

/// How the authorization ends.
pub enum Decision {
    /// The user approved (or had consented before): issue a code.
    Approve {
        /// The user's session.
        session: SessionRecord,
        /// Remember this consent (when allowed).
        remember: bool,
    },
    /// An error for the client: `access_denied`, `login_required`, `consent_required`…
    Refuse(OAuthError),
}

/// Decides a pushed request: consumes it atomically (R9126-4-once; only the first decision
/// counts), then answers the client with a 303 carrying `code` or `error`, plus `state`
/// and `iss` (F2SP-5.3.2.2-7, R9207-2, F2SP-5.3.2.2-11). The one place where an
/// authorization is decided: the consent form, remembered consent and `prompt=none` all
/// end here.
pub async fn decide(state: &AppState, client: &Client, request_uri: &str, decision: Decision, now: i64) -> Response {
    decide_inner(state, client, request_uri, decision, now).await.unwrap_or_else(|r| r)
}

async fn decide_inner(
    state: &AppState,
    client: &Client,
    request_uri: &str,
    decision: Decision,
    now: i64,
) -> Step<Response> {
    let record = match state.store.consume_pushed_request(request_uri, now).await {
        Ok(Consumed::Fresh(r)) if r.client_id == client.client_id => r,
        Ok(_) => return Err(unusable_request_uri(state)),
        Err(e) => return Err(store_page(state, e)),
    };
    let request: AuthorizationRequest = serde_json::from_value(record.data).map_err(|e| {
        tracing::error!(error = %e, "corrupt pushed request");
        error_page(state, &OAuthError::server_error())
    })?;
    let enc_keys = response_encryption_keys(state, client, now).await;
    let enc_keys = enc_keys.as_ref();
    match decision {
        Decision::Refuse(error) => {
            if error.code == ErrorCode::AccessDenied {
                let event = AuditEvent::new(AuditKind::ConsentDenied).client(client).scope(&request.scope);
                state.audit.record(event).await;
            }
            authorization_response(state, client, &request, Outcome::Error(&error), now, enc_keys)
        }
        Decision::Approve { session, remember } => {
            let event = AuditEvent::new(AuditKind::ConsentGiven).client(client).subject(&session.subject);
            // `remember` is false exactly when consent given earlier was reused.
            state.audit.record(event.scope(&request.scope).detail("remembered", !remember)).await;
            let code = issue_code(state, client, &request, &session, now).await?;
            if remember && may_remember_consent(state, client) {
                remember_consent(state, client, &session.subject, &request.scope, now).await;
            }
            let outcome = Outcome::Code { code: &code, session: &session };
            authorization_response(state, client, &request, outcome, now, enc_keys)
        }
    }
}

/// Keys for responses the client wants encrypted (JARM, the hybrid ID token).
async fn response_encryption_keys(state: &AppState, client: &Client, now: i64) -> Option<jsonwebtoken::jwk::JwkSet> {
    if client.authorization_encryption.is_some() || client.id_token_encryption.is_some() {
        super::client_auth::client_keys(state, client, false, now).await.ok()
    } else {
        None
    }
}

/// Stores a single-use code bound to client, redirect URI, PKCE challenge and DPoP key
/// (all inside the stored request), living at most the profile's limit (F2SP-5.3.2.1-11).
async fn issue_code(
    state: &AppState,
    client: &Client,
    request: &AuthorizationRequest,
    session: &SessionRecord,
    now: i64,
) -> Step<String> {
    let code = random_token();
    let ttl = state.config.tokens.code_ttl.min(client.policy().max_code_ttl);
    let data = CodeData {
        request: request.clone(),
        subject: session.subject.clone(),
        auth_time: session.auth_time,
        acr: session.data.get("acr").and_then(|v| v.as_str()).map(str::to_string),
        sid: Some(session_sid(session)),
        scope: request.scope.clone(),
    };
    let data = serde_json::to_value(&data).map_err(|_| error_page(state, &OAuthError::server_error()))?;
    let grant_id = random_token();
    state
        .store
        .put_code(&OneTimeRecord {
            key: sha256_b64url(code.as_bytes()),
            client_id: client.client_id.clone(),
            grant_id: grant_id.clone(),
            expires_at: now + i64::try_from(ttl).unwrap_or(60),
            data,
        })
        .await
        .map_err(|e| store_page(state, e))?;
    let event = AuditEvent::new(AuditKind::CodeIssued).client(client).subject(&session.subject).grant_id(&grant_id);
    state.audit.record(event.scope(&request.scope)).await;
    Ok(code)
}

/// The `sid` of a session: derived from its stored id, which reveals nothing of the cookie.
fn session_sid(session: &SessionRecord) -> String {
    sha256_b64url(format!("sid:{}", session.id).as_bytes())[..22].to_string()
}

async fn remember_consent(state: &AppState, client: &Client, subject: &str, scope: &str, now: i64) {
    let mut scopes: Vec<String> = match state.store.get_consent(subject, &client.client_id).await {
        Ok(Some(c)) => c.scope.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    let record = ConsentRecord {
        subject: subject.to_string(),
        client_id: client.client_id.clone(),
        scope: scopes.join(" "),
        granted_at: now,
    };
    if let Err(e) = state.store.put_consent(&record).await {
        tracing::warn!(error = %e, "could not remember consent");
    }
}

/// What the authorization response carries.
enum Outcome<'a> {
    /// A code for this signed-in user.
    Code { code: &'a str, session: &'a SessionRecord },
    /// An error.
    Error(&'a OAuthError),
}

/// The authorization response for a validated request, in the request's response mode:
/// query or fragment (a 303 with `iss`, RFC 9207), or JARM (`response`, signed with the
/// client's algorithm; `iss` inside the JWT, F2MS-5.4.1-note). A hybrid request also gets
/// its front-channel ID token with `c_hash` and `s_hash` (F1A-5.2.2.1-4/5).
fn authorization_response(
    state: &AppState,
    client: &Client,
    request: &AuthorizationRequest,
    outcome: Outcome<'_>,
    now: i64,
    enc_keys: Option<&jsonwebtoken::jwk::JwkSet>,
) -> Step<Response> {
    let issuer = state.endpoints.issuer.as_str();
    let mut params: Vec<(&str, String)> = Vec::new();
    match &outcome {
        Outcome::Code { code, session } => {
            params.push(("code", (*code).to_string()));
            if request.response_type.split(' ').any(|t| t == "id_token") {
                let id_token = front_channel_id_token(state, client, request, code, session, now)?;
                let id_token = crate::jwe::maybe_encrypt(id_token, client.id_token_encryption.as_ref(), enc_keys)
                    .map_err(|e| error_page(state, &e))?;
                params.push(("id_token", id_token));
            }
        }
        Outcome::Error(e) => {
            params.push(("error", e.code.as_str().to_string()));
            params.push(("error_description", e.description.to_string()));
        }
    }
    if let Some(s) = &request.state {
        params.push(("state", s.clone()));
    }
    let mode = request.effective_mode();
    let delivery = delivery_for(mode, request.response_type());
    let params: Vec<(&str, String)> = if mode.is_jwt() {
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let claims = jarm_claims(issuer, &client.client_id, now, &pairs);
        let jwt = crate::issue::sign(state, client.authorization_response_alg, None, &claims)
            .map_err(|e| error_page(state, &e.error))?;
        // JARM §4.2: signed, then optionally encrypted.
        let jwt = crate::jwe::maybe_encrypt(jwt, client.authorization_encryption.as_ref(), enc_keys)
            .map_err(|e| error_page(state, &e))?;
        vec![("response", jwt)]
    } else {
        params.push(("iss", issuer.to_string()));
        params
    };
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(match delivery {
        Delivery::Query => see_other(&redirect_with(&request.redirect_uri, false, &pairs), &[]),
        Delivery::Fragment => see_other(&redirect_with(&request.redirect_uri, true, &pairs), &[]),
        Delivery::FormPost => {
            let params: Vec<Pair> = params.into_iter().map(|(k, v)| Pair { name: k.to_string(), value: v }).collect();
            let ctx = minijinja::context! { action => request.redirect_uri.as_str(), params };
            page(state, StatusCode::OK, "form_post.html", ctx, &[])
        }
    })
}

/// F1A-5.2.2.1-4/5, OIDC-3.3.2.11: the hybrid flow's ID token, with `nonce`, `c_hash`,
/// `s_hash` and no profile claims (F1A-5.2.2.1-6).
fn front_channel_id_token(
    state: &AppState,
    client: &Client,
    request: &AuthorizationRequest,
    code: &str,
    session: &SessionRecord,
    now: i64,
) -> Step<String> {
    let sid = session_sid(session);
    let input = IdTokenInput {
        issuer: &state.endpoints.issuer,
        subject: &session.subject,
        client_id: &client.client_id,
        iat: now,
        ttl: i64::try_from(state.config.tokens.id_token_ttl).unwrap_or(300),
        auth_time: session.auth_time,
        nonce: request.nonce.as_deref(),
        acr: session.data.get("acr").and_then(|v| v.as_str()),
        sid: Some(&sid),
        code: Some(code),
        state: request.state.as_deref(),
        ..Default::default()
    };
    crate::issue::id_token(state, &input, client.id_token_alg).map_err(|e| error_page(state, &e.error))
}

/// An error redirect for a direct request whose redirect URI is registered but whose
/// other parameters failed validation (R6749-4.1.2.1), with `state` and `iss`.
fn plain_error_redirect(state: &AppState, redirect_uri: &str, st: Option<&str>, e: &OAuthError) -> Response {
    let mut pairs = vec![("error", e.code.as_str()), ("error_description", e.description.as_ref())];
    if let Some(s) = st {
        pairs.push(("state", s));
    }
    pairs.push(("iss", state.endpoints.issuer.as_str()));
    see_other(&redirect_with(redirect_uri, false, &pairs), &[])
}

/// A 303 See Other (F2SP-5.3.2.2-10/11: never 307), with the page security headers.
pub(super) fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    match HeaderValue::from_str(location) {
        Ok(v) => {
            h.insert(header::LOCATION, v);
        }
        Err(_) => {
            // Only URLs we built reach here, all percent-encoded; refuse rather than panic.
            tracing::error!("a redirect location was not a valid header value");
            return (StatusCode::BAD_REQUEST, "invalid redirect").into_response();
        }
    }
    pages::security_headers(h);
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// The authorization endpoint URL that resumes the flow for a request URI.
pub(super) fn resume_url(state: &AppState, client_id: &str, request_uri: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri)
        .finish();
    format!("{}?{q}", state.endpoints.public(paths::AUTHORIZE))
}

/// A store failure as a page: `temporarily_unavailable`, the detail only in the log.
pub(super) fn store_page(state: &AppState, e: StoreError) -> Response {
    tracing::error!(error = %e, "store failure");
    let error = match e {
        StoreError::Database(_) => OAuthError::temporarily_unavailable(),
        _ => OAuthError::server_error(),
    };
    error_page(state, &error)
}
