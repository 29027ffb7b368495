//! The front channel: the authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2,
//! RFC 9126 §4), the decision and the authorization response (RFC 9207 `iss`, JARM, hybrid
//! ID token). The login and consent forms are in [`super::login`] and [`super::consent`].
//!
//! Every request is turned into a pushed-request record first: FAPI clients push it
//! (PAR); for clients that may send it directly, the validated request is stored under a
//! fresh `request_uri` of our own. From there on the flow is the same for all: the login
//! and consent pages carry only the `request_uri`, and the request is consumed atomically
//! when the authorization is decided (R9126-4-once), by [`decide`].
//!
//! The decisions are `strongroom_protocol::flow` (request source, next step) and
//! `strongroom_protocol::response` (the response plan and where an error goes); this module
//! gathers the facts from the store and the cookie, signs and encodes.

// A step ends early with the page or redirect to send: a `Response` as the error value is
// the design, moved once per request, not a cost worth boxing.
#![allow(clippy::result_large_err)]

use super::consent::consent_page;
use super::cookies::{SESSION_COOKIE, cookie};
use super::login::login_page;
use super::token::CodeData;
use super::{AppRef, Params, parse_form, parse_pairs};
use crate::audit::{AuditEvent, AuditKind};
use crate::pages::{self, Pair, error_page, page};
use crate::state::{AppState, now};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use strongroom_protocol::authz::{AuthorizationRequest, redirect_with, validate_authorization_request};
use strongroom_protocol::client::Client;
use strongroom_protocol::discovery::paths;
use strongroom_protocol::flow::{
    self, Facts, NextStep, REQUEST_URI_PREFIX, RequestSource, SignedIn, check_pushed_request, classify_request_source,
    code_lifetime, is_issued_request_uri, may_remember_consent, merged_consent, next_step, request_uri_lifetime,
    session_satisfies,
};
use strongroom_protocol::jose::sha256_b64url;
use strongroom_protocol::random::random_token;
use strongroom_protocol::response::{
    Delivery, ErrorDelivery, FrontChannelError, Outcome, ParamsOrigin, ResponseBody, ResponsePlan, ResponseTarget,
    error_delivery, plan_response,
};
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
    let allow_client_hosted = state.config.registration.allow_remote_request_uris;
    let source = match classify_request_source(params, &client, allow_client_hosted) {
        Ok(source) => source,
        Err(e) => return Err(front_channel_error(state, &client, e, now).await),
    };
    let (request_uri, request) = match source {
        RequestSource::Pushed(uri) => (uri.to_string(), pushed_request(state, &client, uri, now).await?),
        RequestSource::ClientHosted(uri) => {
            let object = client_hosted_request_object(state, &client, uri).await?;
            direct_request(state, &client, params, Some(&object), now).await?
        }
        RequestSource::ByValue(object) => direct_request(state, &client, params, Some(object), now).await?,
        RequestSource::Plain => direct_request(state, &client, params, None, now).await?,
    };
    proceed(state, headers, &client, &request_uri, &request, now).await
}

/// RFC 9101 §5.2: fetches a client-hosted request object (with the `jwks_uri` guard).
async fn client_hosted_request_object(state: &AppState, client: &Client, uri: &str) -> Step<String> {
    state.jwks_fetcher.request_object(uri).await.map_err(|e| {
        tracing::warn!(client_id = %client.client_id, error = %e, "client-hosted request_uri unusable");
        let e = OAuthError::new(
            ErrorCode::InvalidRequestUri,
            "the request object could not be fetched from the request_uri",
        );
        error_page(state, &e)
    })
}

/// A pushed request of this client that is still usable. Loading it does not consume it
/// (R9126-4-once: consumption happens at the decision).
async fn pushed_request(state: &AppState, client: &Client, uri: &str, now: i64) -> Step<AuthorizationRequest> {
    let (record, request) = load_pushed(state, uri, now).await?;
    check_pushed_request(&record.client_id, &request, client).map_err(|e| error_page(state, &e))?;
    Ok(request)
}

pub(super) fn unusable_request_uri(state: &AppState) -> Response {
    error_page(state, &flow::unusable_request_uri())
}

/// Reads a pushed request (unknown, expired, decided or corrupt: the error page).
pub(super) async fn load_pushed(state: &AppState, uri: &str, now: i64) -> Step<(OneTimeRecord, AuthorizationRequest)> {
    if !is_issued_request_uri(uri) {
        return Err(unusable_request_uri(state));
    }
    let record = state.store.get_pushed_request(uri).await.map_err(|e| store_page(state, e))?;
    // R9126-4-expired; R9126-4-once (a decided request is no longer returned).
    let Some(record) = record.filter(|r| r.expires_at > now) else { return Err(unusable_request_uri(state)) };
    let request: AuthorizationRequest =
        serde_json::from_value(record.data.clone()).map_err(|_| unusable_request_uri(state))?;
    Ok((record, request))
}

/// A request sent directly (not pushed), by value in a request object or as plain
/// parameters: validated as at PAR (R9126-4-validate) and stored under an internal
/// `request_uri` so the rest of the flow is the same. Each error goes where
/// [`error_delivery`] says for parameters of that origin.
async fn direct_request(
    state: &AppState,
    client: &Client,
    params: &Params,
    request_object: Option<&str>,
    now: i64,
) -> Step<(String, AuthorizationRequest)> {
    let verified;
    let params = match request_object {
        Some(object) => match crate::http::par::request_object_params(state, client, object, params, now).await {
            Ok(inner) => {
                verified = inner;
                &verified
            }
            Err(e) => {
                let delivery = error_delivery(params, client, ParamsOrigin::FailedVerification);
                return Err(
                    front_channel_error(state, client, FrontChannelError { error: e.error, delivery }, now).await
                );
            }
        },
        None => params,
    };
    let request = match validate_authorization_request(params, client, false) {
        Ok(request) => request,
        Err(error) => {
            let delivery = error_delivery(params, client, ParamsOrigin::Verified);
            return Err(front_channel_error(state, client, FrontChannelError { error, delivery }, now).await);
        }
    };
    let ttl = request_uri_lifetime(state.config.tokens.par_ttl, client);
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

/// With a known request: gathers the session and remembered consent, and does what
/// [`next_step`] says (login page, consent page, or a decision).
async fn proceed(
    state: &AppRef,
    headers: &HeaderMap,
    client: &Client,
    request_uri: &str,
    request: &AuthorizationRequest,
    now: i64,
) -> Step<Response> {
    let session = current_signed_in(state, headers, request_uri, now).await?;
    let granted = match &session {
        Some(s) if may_remember_consent(client, state.config.pages.remember_consent_for_fapi) => state
            .store
            .get_consent(&s.handle.subject, &client.client_id)
            .await
            .map_err(|e| store_page(state, e))?
            .map(|c| c.scope),
        _ => None,
    };
    let facts = Facts { session, remembered_consent: granted.as_deref() };
    Ok(match next_step(request, facts, now) {
        NextStep::Login => login_page(state, headers, client, request_uri, None, "", StatusCode::OK),
        NextStep::Consent(session) => {
            return consent_page(state, headers, client, request_uri, request, &session).await;
        }
        NextStep::Approve(session) => {
            decide(state, client, request_uri, Decision::Approve { session, remember: false }, now).await
        }
        NextStep::Refuse(e) => decide(state, client, request_uri, Decision::Refuse(e), now).await,
    })
}

/// The browser's session, when it satisfies this request ([`session_satisfies`]).
pub(super) async fn signed_in_for(
    state: &AppState,
    headers: &HeaderMap,
    request_uri: &str,
    request: &AuthorizationRequest,
    now: i64,
) -> Step<Option<SessionRecord>> {
    let session = current_signed_in(state, headers, request_uri, now).await?;
    Ok(session.filter(|s| session_satisfies(request, s, now)).map(|s| s.handle))
}

/// The browser's unexpired session whose user still exists, as the facts the flow
/// decides on.
async fn current_signed_in(
    state: &AppState,
    headers: &HeaderMap,
    request_uri: &str,
    now: i64,
) -> Step<Option<SignedIn<SessionRecord>>> {
    let Some(session) = current_session(state, headers, now).await? else { return Ok(None) };
    let user = state.store.get_user_by_subject(&session.subject).await.map_err(|e| store_page(state, e))?;
    Ok(user.map(|_| SignedIn {
        auth_time: session.auth_time,
        started_for_this_request: session.data.get("request_uri").and_then(|v| v.as_str()) == Some(request_uri),
        handle: session,
    }))
}

/// The session named by the session cookie, if any and not expired.
async fn current_session(state: &AppState, headers: &HeaderMap, now: i64) -> Step<Option<SessionRecord>> {
    let Some(value) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    state.store.get_session(&sha256_b64url(value.as_bytes()), now).await.map_err(|e| store_page(state, e))
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
        Ok(Consumed::Fresh(r)) => r,
        Ok(_) => return Err(unusable_request_uri(state)),
        Err(e) => return Err(store_page(state, e)),
    };
    let request: AuthorizationRequest = serde_json::from_value(record.data).map_err(|e| {
        tracing::error!(error = %e, "corrupt pushed request");
        error_page(state, &OAuthError::server_error())
    })?;
    check_pushed_request(&record.client_id, &request, client).map_err(|e| error_page(state, &e))?;
    let target = ResponseTarget::of(&request);
    let enc_keys = response_encryption_keys(state, client, now).await;
    let enc_keys = enc_keys.as_ref();
    match decision {
        Decision::Refuse(error) => {
            if error.code == ErrorCode::AccessDenied {
                let event = AuditEvent::new(AuditKind::ConsentDenied).client(client).scope(&request.scope);
                state.audit.record(event).await;
            }
            let plan = plan_response(&target, Outcome::Error(&error), client, &state.endpoints.issuer, now);
            send_response(state, client, plan, enc_keys)
        }
        Decision::Approve { session, remember } => {
            let event = AuditEvent::new(AuditKind::ConsentGiven).client(client).subject(&session.subject);
            // `remember` is false exactly when consent given earlier was reused.
            state.audit.record(event.scope(&request.scope).detail("remembered", !remember)).await;
            let code = issue_code(state, client, &request, &session, now).await?;
            if remember && may_remember_consent(client, state.config.pages.remember_consent_for_fapi) {
                remember_consent(state, client, &session.subject, &request.scope, now).await;
            }
            let id_token = match target.returns_id_token() {
                true => Some(front_channel_id_token(state, client, &request, &code, &session, now, enc_keys)?),
                false => None,
            };
            let outcome = Outcome::Code { code: &code, id_token: id_token.as_deref() };
            let plan = plan_response(&target, outcome, client, &state.endpoints.issuer, now);
            send_response(state, client, plan, enc_keys)
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
    let ttl = code_lifetime(state.config.tokens.code_ttl, client);
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
    let granted = match state.store.get_consent(subject, &client.client_id).await {
        Ok(c) => c.map(|c| c.scope),
        Err(_) => None,
    };
    let record = ConsentRecord {
        subject: subject.to_string(),
        client_id: client.client_id.clone(),
        scope: merged_consent(granted.as_deref(), scope),
        granted_at: now,
    };
    if let Err(e) = state.store.put_consent(&record).await {
        tracing::warn!(error = %e, "could not remember consent");
    }
}

/// Sends a front-channel error where its delivery says: the error page, or to the client
/// like any authorization response.
async fn front_channel_error(state: &AppState, client: &Client, e: FrontChannelError, now: i64) -> Response {
    match e.delivery {
        ErrorDelivery::Page => error_page(state, &e.error),
        ErrorDelivery::Client(target) => {
            let enc_keys = response_encryption_keys(state, client, now).await;
            let plan = plan_response(&target, Outcome::Error(&e.error), client, &state.endpoints.issuer, now);
            send_response(state, client, plan, enc_keys.as_ref()).unwrap_or_else(|r| r)
        }
    }
}

/// Encodes a response plan: JARM plans are signed with the client's algorithm and then
/// encrypted when the plan says so; the parameters go out as a 303 (query or fragment) or
/// an auto-submitting form.
fn send_response(
    state: &AppState,
    client: &Client,
    plan: ResponsePlan,
    enc_keys: Option<&jsonwebtoken::jwk::JwkSet>,
) -> Step<Response> {
    let params = match plan.body {
        ResponseBody::Plain(params) => params,
        ResponseBody::Jarm { claims, encrypted } => {
            let jwt = crate::issue::sign(state, client.authorization_response_alg, None, &claims)
                .map_err(|e| error_page(state, &e.error))?;
            let encryption = client.authorization_encryption.as_ref().filter(|_| encrypted);
            let jwt = crate::jwe::maybe_encrypt(jwt, encryption, enc_keys).map_err(|e| error_page(state, &e))?;
            vec![("response", jwt)]
        }
    };
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(match plan.delivery {
        Delivery::Query => see_other(&redirect_with(&plan.redirect_uri, false, &pairs), &[]),
        Delivery::Fragment => see_other(&redirect_with(&plan.redirect_uri, true, &pairs), &[]),
        Delivery::FormPost => {
            let params: Vec<Pair> = params.into_iter().map(|(k, v)| Pair { name: k.to_string(), value: v }).collect();
            let ctx = minijinja::context! { action => plan.redirect_uri.as_str(), params };
            page(state, StatusCode::OK, "form_post.html", ctx, &[])
        }
    })
}

/// F1A-5.2.2.1-4/5, OIDC-3.3.2.11: the hybrid flow's ID token, with `nonce`, `c_hash`,
/// `s_hash` and no profile claims (F1A-5.2.2.1-6), encrypted when the client registered it.
fn front_channel_id_token(
    state: &AppState,
    client: &Client,
    request: &AuthorizationRequest,
    code: &str,
    session: &SessionRecord,
    now: i64,
    enc_keys: Option<&jsonwebtoken::jwk::JwkSet>,
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
    let id_token =
        crate::issue::id_token(state, &input, client.id_token_alg).map_err(|e| error_page(state, &e.error))?;
    crate::jwe::maybe_encrypt(id_token, client.id_token_encryption.as_ref(), enc_keys)
        .map_err(|e| error_page(state, &e))
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
