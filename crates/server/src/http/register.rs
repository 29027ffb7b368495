//! Dynamic client registration (RFC 7591) and management (RFC 7592).
//!
//! `POST /register` is open to holders of the configured initial access token and/or of a
//! software statement signed by the configured directory; the statement's claims bound the
//! metadata (rules in `strongroom_protocol::registration`). Validation against the profile
//! is the service layer's, shared with the CLI and the admin API. `GET`/`PUT`/`DELETE
//! /register/{client_id}` need the registration access token issued at registration.

use super::client_auth::leaf_certificate;
use super::{AppRef, ErrorResponse, HttpResult, no_store_json};
use crate::service::{self, ServiceError};
use crate::state::{AppState, Listener, now};
use crate::tls::ConnectionInfo;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::{Map, Value};
use strongroom_protocol::client::{Client, ClientMetadata, MetadataError};
use strongroom_protocol::discovery::paths;
use strongroom_protocol::jose::{ParsedJws, sha256_b64url};
use strongroom_protocol::policy::{AuthMethod, FAPI2_SECURITY};
use strongroom_protocol::registration::{
    SoftwareStatement, apply_statement, check_no_server_fields, check_registering_certificate, check_statement_alg,
    check_statement_issuer, check_statement_times, check_update, read_statement,
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
    let mut metadata = json_object(&headers, &body)?;
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
    if let Some(token) = statement {
        let st = verify_statement(&state, &token, now)?;
        apply_statement(&mut metadata, &st).map_err(metadata_error)?;
        metadata.insert("software_statement".into(), token.into());
    }
    if metadata.contains_key("client_id") {
        return Err(OAuthError::new(ErrorCode::InvalidClientMetadata, "client_id: is assigned by the server").into());
    }
    let client = service::check_metadata(Value::Object(metadata.clone())).map_err(service_error)?;
    check_certificate(&client, &conn)?;
    let created = service::register_client(&state.store, Value::Object(metadata), now).await.map_err(service_error)?;
    let c = &created.client;
    tracing::info!(client_id = %c.client_id, profile = ?client.profile, "client registered by DCR");
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
            if current.software_id.is_some() && st.software_id != current.software_id {
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
    let client = service::check_metadata(Value::Object(metadata.clone())).map_err(service_error)?;
    check_certificate(&client, &conn)?;
    let stored =
        service::update_client(&state.store, &client_id, Value::Object(metadata)).await.map_err(service_error)?;
    tracing::info!(client_id = %client_id, "client updated by RFC 7592");
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
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
