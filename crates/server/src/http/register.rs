//! Dynamic client registration (RFC 7591) and management (RFC 7592).
//!
//! `POST /register` is open to holders of the configured initial access token and/or of a
//! software statement signed by the configured directory; the statement's claims bound the
//! metadata (rules in `strongroom_protocol::registration`). Validation against the profile
//! is the service layer's, shared with the CLI and the admin API. `GET`/`PUT`/`DELETE
//! /register/{client_id}` need the registration access token issued at registration.

use super::client_auth::leaf_certificate;
use super::{AppRef, ErrorResponse, HttpResult, no_store_json};
use crate::audit::{AuditEvent, AuditKind};
use crate::service::{self, ServiceError};
use crate::state::{AppState, Listener, now};
use crate::tls::ConnectionInfo;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use jsonwebtoken::jwk::JwkSet;
use serde_json::{Map, Value};
use strongroom_protocol::client::{Client, ClientMetadata, MetadataError};
use strongroom_protocol::discovery::paths;
use strongroom_protocol::jose::{ParsedJws, sha256_b64url};
use strongroom_protocol::mtls::self_signed_matches;
use strongroom_protocol::policy::{AuthMethod, FAPI2_SECURITY};
use strongroom_protocol::registration::{
    SoftwareStatement, apply_statement, check_no_server_fields, check_registering_certificate, check_statement_alg,
    check_statement_issuer, check_statement_times, check_update, read_statement,
};
use strongroom_protocol::software_statement::{
    SoftwareKeys, check_proof_of_possession, check_request_alg, check_request_audience, check_request_issuer,
    check_request_times, request_jti, request_metadata, request_statement, software_keys,
};
use strongroom_protocol::{ErrorCode, OAuthError};
use strongroom_store::ClientRecord;
use subtle::ConstantTimeEq;

/// Routes of `/register` (RFC 7591) and `/register/{client_id}` (RFC 7592).
pub fn routes() -> Router<AppRef> {
    Router::new()
        .route(paths::REGISTER, post(register))
        .route("/register/{client_id}", get(read).put(update).delete(delete))
}

/// An RFC 7591 §3.2.2 error naming the field at fault.
fn metadata_error(e: MetadataError) -> ErrorResponse {
    OAuthError::new(e.code, format!("{}: {}", e.field, e.message)).into()
}

fn service_error(e: ServiceError) -> ErrorResponse {
    match e {
        ServiceError::Metadata(m) => metadata_error(m),
        ServiceError::Invalid(m) => OAuthError::new(ErrorCode::InvalidClientMetadata, m).into(),
        ServiceError::Exists(m) => {
            OAuthError::new(ErrorCode::InvalidClientMetadata, format!("{m} already exists")).into()
        }
        ServiceError::NotFound(_) => invalid_token("the registration access token is not valid for this client"),
        ServiceError::Store(e) => e.into(),
    }
}

/// 401 `invalid_token` with a Bearer challenge (RFC 6750 §3, RFC 7591 §3, RFC 7592 §2).
fn invalid_token(description: &'static str) -> ErrorResponse {
    ErrorResponse::from(OAuthError::invalid_token(description))
        .with_challenge("Bearer realm=\"strongroom\", error=\"invalid_token\"".into())
}

fn bad_statement(message: impl Into<String>) -> ErrorResponse {
    OAuthError::new(ErrorCode::InvalidSoftwareStatement, format!("software_statement: {}", message.into())).into()
}

/// The Bearer token of the `Authorization` header. Another scheme, or a malformed header,
/// is an invalid token.
fn bearer_token(headers: &HeaderMap) -> HttpResult<Option<String>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| invalid_token("the Authorization header is not a Bearer token"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim().to_string()))
        }
        _ => Err(invalid_token("the Authorization header is not a Bearer token")),
    }
}

/// Decodes a JSON object body (RFC 7591 §3.1).
fn json_object(headers: &HeaderMap, body: &Bytes) -> HttpResult<Map<String, Value>> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(OAuthError::new(ErrorCode::InvalidClientMetadata, "the body must be application/json").into());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(OAuthError::new(ErrorCode::InvalidClientMetadata, "the body must be a JSON object").into()),
    }
}

/// Verifies a software statement against the configured directory: FAPI algorithm,
/// signature by a directory key, issuer, freshness; then reads its bounding claims.
fn verify_statement(state: &AppState, token: &str, now: i64) -> HttpResult<SoftwareStatement> {
    let reg = &state.config.registration;
    let jwks = match reg.directory_jwks() {
        Ok(Some(set)) => set,
        Ok(None) => {
            return Err(OAuthError::new(
                ErrorCode::UnapprovedSoftwareStatement,
                "software_statement: this server trusts no software statement directory",
            )
            .into());
        }
        Err(e) => {
            tracing::error!(error = %e, "software statement directory keys unusable");
            return Err(OAuthError::temporarily_unavailable().into());
        }
    };
    let jws = ParsedJws::parse(token, state.config.limits.max_jwt_bytes)
        .map_err(|e| bad_statement(format!("not an acceptable JWT ({e})")))?;
    check_statement_alg(jws.alg).map_err(metadata_error)?;
    jws.verify_with_set(&jwks, FAPI2_SECURITY.min_rsa_bits, FAPI2_SECURITY.min_ec_bits)
        .map_err(|_| bad_statement("the signature does not verify with the directory's keys"))?;
    check_statement_issuer(&jws, reg.software_statement_issuer.as_deref()).map_err(metadata_error)?;
    check_statement_times(&jws, now, reg.software_statement_max_age_secs).map_err(metadata_error)?;
    read_statement(&jws).map_err(metadata_error)
}

/// Whether the body is a signed registration request (`application/jwt`).
fn is_jwt_body(headers: &HeaderMap) -> bool {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    ct.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/jwt"))
}

/// Parses a signed registration request (signature checked later, with the software's keys).
fn parse_signed_request(state: &AppState, body: &Bytes) -> HttpResult<ParsedJws> {
    let text = std::str::from_utf8(body).map_err(|_| bad_statement("the registration request is not a JWT"))?;
    let request = ParsedJws::parse(text.trim(), state.config.limits.max_body_bytes)
        .map_err(|e| bad_statement(format!("the registration request is not an acceptable JWT ({e})")))?;
    check_request_alg(request.alg).map_err(metadata_error)?;
    request_statement(&request).map_err(metadata_error)?;
    Ok(request)
}

/// The software's public keys: inline in the statement, or fetched from its endpoint with
/// the guarded `jwks_uri` fetcher (`force` refetches on an unknown `kid`).
async fn software_key_set(state: &AppState, keys: &SoftwareKeys, force: bool, now: i64) -> HttpResult<JwkSet> {
    match keys {
        SoftwareKeys::Inline(set) => Ok(set.clone()),
        SoftwareKeys::Endpoint(uri) => state.jwks_fetcher.get(uri, force, now).await.map_err(|e| {
            tracing::info!(error = %e, "software_jwks_endpoint unusable");
            bad_statement("the software_jwks_endpoint did not give a usable key set")
        }),
    }
}

/// Issue 12: the registrant proves it holds the software's keys, as configured — a request
/// signed by one of them (its `iss`, `aud`, times and single use checked), and/or a TLS client
/// certificate carrying one. A signed request is always verified in full when sent.
async fn prove_possession(
    state: &AppState,
    st: &SoftwareStatement,
    request: Option<&ParsedJws>,
    conn: &ConnectionInfo,
    now: i64,
) -> HttpResult<()> {
    let keys = software_keys(st).map_err(metadata_error)?;
    let mut set = software_key_set(state, &keys, false, now).await?;
    let signed = match request {
        None => false,
        Some(request) => {
            let verify =
                |set: &JwkSet| request.verify_with_set(set, FAPI2_SECURITY.min_rsa_bits, FAPI2_SECURITY.min_ec_bits);
            if verify(&set).is_err() && matches!(keys, SoftwareKeys::Endpoint(_)) {
                set = software_key_set(state, &keys, true, now).await?;
            }
            verify(&set)
                .map_err(|_| bad_statement("the registration request is not signed with a key of the software"))?;
            check_request_issuer(request, st.software_id.as_deref()).map_err(metadata_error)?;
            check_request_audience(request, &state.config.issuer).map_err(metadata_error)?;
            let exp = check_request_times(request, now).map_err(metadata_error)?;
            let jti = request_jti(request).map_err(metadata_error)?;
            let namespace = format!("registration:{}", st.software_id.as_deref().unwrap_or(""));
            if !state.store.record_jti(&namespace, jti, exp).await? {
                return Err(
                    OAuthError::new(ErrorCode::InvalidClientMetadata, "jti: this request was already used").into()
                );
            }
            true
        }
    };
    let certificate_bound = leaf_certificate(conn).is_some_and(|leaf| self_signed_matches(leaf.as_ref(), &set));
    check_proof_of_possession(state.config.registration.software_statement_proof, signed, certificate_bound)
        .map_err(metadata_error)
}

/// The statement a client was registered with (verified then), to keep its bounds on updates.
fn stored_statement(state: &AppState, current: &ClientMetadata) -> Option<(String, SoftwareStatement)> {
    let token = current.extra.get("software_statement")?.as_str()?;
    let jws = ParsedJws::parse(token, state.config.limits.max_jwt_bytes.max(token.len())).ok()?;
    read_statement(&jws).ok().map(|st| (token.to_string(), st))
}

/// R8705-2.1.2: a `tls_client_auth` client registering over mTLS registers its own certificate.
fn check_certificate(client: &Client, conn: &ConnectionInfo) -> HttpResult<()> {
    let identity = if client.auth_method == AuthMethod::TlsClientAuth { client.tls_identity.as_ref() } else { None };
    let leaf = leaf_certificate(conn).map(|c| c.as_ref());
    check_registering_certificate(leaf, identity).map_err(metadata_error)
}

/// The RFC 7591 §3.2.1 / RFC 7592 §3 client information response body.
fn client_information(
    state: &AppState,
    listener: Listener,
    client_id: &str,
    metadata: &Value,
    token: &str,
    issued_at: i64,
) -> Value {
    let mut body = service::client_view(metadata);
    if let Some(m) = body.as_object_mut() {
        m.insert("client_id".into(), client_id.into());
        m.insert("client_id_issued_at".into(), issued_at.into());
        m.insert("registration_access_token".into(), token.into());
        m.insert("registration_client_uri".into(), state.url_on(listener, &format!("/register/{client_id}")).into());
    }
    body
}

/// `POST /register` (RFC 7591 §3).
pub async fn register(
    State(state): State<AppRef>,
    Extension(conn): Extension<ConnectionInfo>,
    Extension(listener): Extension<Listener>,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Response> {
    let reg = &state.config.registration;
    let configured_token = reg.initial_access_token.as_deref();
    if configured_token.is_none() && !reg.has_directory() {
        return Err(OAuthError::new(ErrorCode::AccessDenied, "dynamic client registration is not enabled")
            .with_status(403)
            .into());
    }
    // R7591-3: the initial access token, compared in constant time.
    let presented = bearer_token(&headers)?;
    let has_token = match (presented.as_deref(), configured_token) {
        (Some(given), Some(want)) if bool::from(given.as_bytes().ct_eq(want.as_bytes())) => true,
        (Some(_), _) => return Err(invalid_token("the initial access token is not valid")),
        (None, _) => false,
    };
    // Issue 12: a registration with a software statement may come as a JWT signed by the
    // software (UK OB / Open Finance Brasil DCR); its claims are the metadata.
    let signed_request = if is_jwt_body(&headers) { Some(parse_signed_request(&state, &body)?) } else { None };
    let mut metadata = match &signed_request {
        Some(request) => request_metadata(request),
        None => json_object(&headers, &body)?,
    };
    let statement = match metadata.remove("software_statement") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(bad_statement("must be a JWT in compact form")),
    };
    if !has_token {
        match (&statement, reg.has_directory()) {
            (Some(_), true) => {}
            (None, true) if configured_token.is_none() => {
                return Err(bad_statement("a software statement from the trusted directory is required"));
            }
            _ => return Err(invalid_token("an initial access token is required")),
        }
    }
    if reg.require_software_statement && statement.is_none() {
        return Err(bad_statement("a software statement from the trusted directory is required"));
    }
    let now = now();
    check_no_server_fields(&metadata).map_err(metadata_error)?;
    let mut exclusive_software_id = None;
    let has_statement = statement.is_some();
    if let Some(token) = statement {
        let st = verify_statement(&state, &token, now)?;
        prove_possession(&state, &st, signed_request.as_ref(), &conn, now).await?;
        apply_statement(&mut metadata, &st).map_err(metadata_error)?;
        metadata.insert("software_statement".into(), token.into());
        if !reg.allow_multiple_clients_per_software {
            exclusive_software_id = st.software_id.clone();
        }
    }
    if metadata.contains_key("client_id") {
        return Err(OAuthError::new(ErrorCode::InvalidClientMetadata, "client_id: is assigned by the server").into());
    }
    let client = service::check_metadata(&state.rules, Value::Object(metadata.clone())).map_err(service_error)?;
    check_certificate(&client, &conn)?;
    let created = service::register_client(
        &state.store,
        &state.rules,
        Value::Object(metadata),
        exclusive_software_id.as_deref(),
        now,
    )
    .await
    .map_err(service_error)?;
    let c = &created.client;
    tracing::info!(client_id = %c.client_id, profile = ?client.profile, "client registered by DCR");
    let event = AuditEvent::new(AuditKind::ClientRegistered).client_id(&c.client_id).profile(client.profile.as_str());
    let event = event.detail("by", "dcr").detail("software_statement", has_statement);
    state.audit.record(event).await;
    let mut body =
        client_information(&state, listener, &c.client_id, &c.metadata, &created.registration_access_token, now);
    if let (Some(secret), Some(m)) = (&c.client_secret, body.as_object_mut()) {
        m.insert("client_secret".into(), secret.clone().into());
        m.insert("client_secret_expires_at".into(), 0.into());
    }
    Ok(no_store_json(StatusCode::CREATED, body))
}

/// RFC 7592 §2: the registration access token must be this client's. A wrong token and an
/// unknown client look the same (401), so the answer never tells whether a client exists.
async fn authorize_management(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
) -> HttpResult<(ClientRecord, String)> {
    let token = bearer_token(headers)?.ok_or_else(|| invalid_token("a registration access token is required"))?;
    let given = sha256_b64url(token.as_bytes());
    let record = state.store.get_client(client_id).await?;
    let stored = record.as_ref().and_then(|r| r.registration_token_hash.clone());
    // Compare against something even when there is nothing to compare with.
    let reference = stored.clone().unwrap_or_else(|| sha256_b64url(b"no registration access token"));
    let same = bool::from(given.as_bytes().ct_eq(reference.as_bytes()));
    match record {
        Some(r) if same && stored.is_some() => Ok((r, token)),
        _ => Err(invalid_token("the registration access token is not valid for this client")),
    }
}

/// `GET /register/{client_id}` (RFC 7592 §2.1).
pub async fn read(
    State(state): State<AppRef>,
    Extension(listener): Extension<Listener>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> HttpResult<Response> {
    let (record, token) = authorize_management(&state, &headers, &client_id).await?;
    let body = client_information(&state, listener, &client_id, &record.metadata, &token, record.created_at);
    Ok(no_store_json(StatusCode::OK, body))
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2): replaces the metadata, validated again
/// against the client's profile, which cannot change.
pub async fn update(
    State(state): State<AppRef>,
    Extension(conn): Extension<ConnectionInfo>,
    Extension(listener): Extension<Listener>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Response> {
    let (record, token) = authorize_management(&state, &headers, &client_id).await?;
    let mut metadata = json_object(&headers, &body)?;
    let current: ClientMetadata = serde_json::from_value(record.metadata.clone()).map_err(|e| {
        tracing::error!(client_id = %client_id, error = %e, "stored client metadata unreadable");
        ErrorResponse::from(OAuthError::server_error())
    })?;
    check_update(&current, &metadata, &client_id).map_err(metadata_error)?;
    // RFC 7592 §2.2: a client_secret sent back must be the current one.
    if let Some(secret) = metadata.remove("client_secret") {
        let given = secret.as_str().map(|s| sha256_b64url(s.as_bytes())).unwrap_or_default();
        let stored = current.client_secret_hash.as_deref().unwrap_or("");
        if stored.is_empty() || !bool::from(given.as_bytes().ct_eq(stored.as_bytes())) {
            return Err(OAuthError::new(ErrorCode::InvalidClientMetadata, "client_secret: is not this client's").into());
        }
    }
    let now = now();
    check_no_server_fields(&metadata).map_err(metadata_error)?;
    let statement = match metadata.remove("software_statement") {
        None | Some(Value::Null) => stored_statement(&state, &current),
        Some(Value::String(s)) => {
            let st = verify_statement(&state, &s, now)?;
            // Issue 12: an update never moves a client to (or onto) other software.
            if st.software_id != current.software_id {
                return Err(bad_statement("describes other software than this client's software_id"));
            }
            Some((s, st))
        }
        Some(_) => return Err(bad_statement("must be a JWT in compact form")),
    };
    if let Some((token, st)) = statement {
        apply_statement(&mut metadata, &st).map_err(metadata_error)?;
        metadata.insert("software_statement".into(), token.into());
    }
    let client = service::check_metadata(&state.rules, Value::Object(metadata.clone())).map_err(service_error)?;
    check_certificate(&client, &conn)?;
    let stored = service::update_client(&state.store, &state.rules, &client_id, Value::Object(metadata))
        .await
        .map_err(service_error)?;
    tracing::info!(client_id = %client_id, "client updated by RFC 7592");
    let event = AuditEvent::new(AuditKind::ClientUpdated).client_id(&client_id).profile(client.profile.as_str());
    state.audit.record(event.detail("by", "dcr")).await;
    let body = client_information(&state, listener, &client_id, &stored, &token, record.created_at);
    Ok(no_store_json(StatusCode::OK, body))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): removes the client and revokes its tokens.
pub async fn delete(
    State(state): State<AppRef>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> HttpResult<Response> {
    authorize_management(&state, &headers, &client_id).await?;
    service::remove_client(&state.store, &client_id).await.map_err(service_error)?;
    tracing::info!(client_id = %client_id, "client deleted by RFC 7592");
    state.audit.record(AuditEvent::new(AuditKind::ClientDeleted).client_id(&client_id).detail("by", "dcr")).await;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
