//! The JSON admin API under `/admin`: clients, users, signing keys and revocation of a
//! client's or a user's grants. Every call goes through `crate::service`, the same layer
//! the CLI uses, so both validate the same way.
//!
//! Authentication is `Authorization: Bearer <admin.token>`, compared in constant time.
//! Without a configured `admin.token` every admin path answers 404, as if it did not
//! exist; with one, a missing or wrong token gets 401. The OpenAPI description is
//! `docs/openapi-admin.json` (checked against these routes by `tests/tests/admin_api.rs`).

use super::AppRef;
use crate::audit::{AdminChange, Operator};
use crate::service::{self, RevokeTarget, ServiceError};
use crate::state::{AppState, now};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

/// Every route of the admin API as (method, path); the OpenAPI test compares this list
/// with `docs/openapi-admin.json` both ways.
pub const ROUTES: [(&str, &str); 14] = [
    ("GET", "/admin/clients"),
    ("POST", "/admin/clients"),
    ("GET", "/admin/clients/{client_id}"),
    ("DELETE", "/admin/clients/{client_id}"),
    ("GET", "/admin/users"),
    ("POST", "/admin/users"),
    ("DELETE", "/admin/users/{username}"),
    ("POST", "/admin/users/{username}/password"),
    ("GET", "/admin/keys"),
    ("POST", "/admin/keys/rotate"),
    ("POST", "/admin/revoke"),
    ("GET", "/admin/users/{username}"),
    ("GET", "/admin"),
    ("GET", "/admin/audit"),
];

/// Routes under `/admin`.
pub fn routes() -> Router<AppRef> {
    Router::new()
        .route("/admin", guarded(get(index)))
        .route("/admin/clients", guarded(get(list_clients).post(create_client)))
        .route("/admin/clients/{client_id}", guarded(get(show_client).delete(delete_client)))
        .route("/admin/users", guarded(get(list_users).post(create_user)))
        .route("/admin/users/{username}", guarded(get(show_user).delete(delete_user)))
        .route("/admin/users/{username}/password", guarded(post(set_password)))
        .route("/admin/keys", guarded(get(list_keys)))
        .route("/admin/keys/rotate", guarded(post(rotate_keys)))
        .route("/admin/revoke", guarded(post(revoke)))
        .route("/admin/audit", guarded(get(audit_events)))
}

/// Unsupported methods on an admin path are answered like everything else there: 404
/// without a configured token, 401 without the right one, and only then 405.
fn guarded(router: MethodRouter<AppRef>) -> MethodRouter<AppRef> {
    router.fallback(|_: Admin| async { error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "") })
}

/// A JSON error: `{"error": code, "error_description": description}`, never cached.
fn error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut body = json!({ "error": code });
    if !description.is_empty() {
        body["error_description"] = description.into();
    }
    json_response(status, body)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn no_content() -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Why an admin call failed.
#[derive(Debug)]
pub enum ApiError {
    /// The admin API is off (no `admin.token`): a bare 404, as for any unknown path.
    Off,
    /// The admin token is missing or wrong: 401 with a Bearer challenge.
    Unauthorized,
    /// A JSON error: status, `error` code and description.
    Json(StatusCode, &'static str, String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Off => StatusCode::NOT_FOUND.into_response(),
            ApiError::Unauthorized => {
                let mut resp = error(StatusCode::UNAUTHORIZED, "invalid_token", "the admin token is missing or wrong");
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"strongroom-admin\""));
                resp
            }
            ApiError::Json(status, code, description) => error(status, code, &description),
        }
    }
}

fn bad_request(description: impl Into<String>) -> ApiError {
    ApiError::Json(StatusCode::BAD_REQUEST, "invalid_request", description.into())
}

/// A service failure as an admin API error.
fn service_error(e: ServiceError) -> ApiError {
    match e {
        ServiceError::Metadata(m) => {
            ApiError::Json(StatusCode::BAD_REQUEST, m.code.as_str(), format!("{}: {}", m.field, m.message))
        }
        ServiceError::Invalid(m) => bad_request(m),
        ServiceError::Exists(m) => ApiError::Json(StatusCode::CONFLICT, "conflict", format!("{m} already exists")),
        ServiceError::NotFound(m) => ApiError::Json(StatusCode::NOT_FOUND, "not_found", format!("{m} not found")),
        ServiceError::Store(e) => {
            tracing::error!(error = %e, "admin API: store failure");
            ApiError::Json(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "storage is unavailable".into())
        }
    }
}

/// Proof that the request carries the admin token. Rejects with 404 when the admin API
/// is off and 401 (with a Bearer challenge) when the token is missing or wrong.
pub struct Admin;

impl FromRequestParts<AppRef> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppRef) -> Result<Self, Self::Rejection> {
        check_admin_token(state, &parts.headers).map(|()| Admin)
    }
}

fn check_admin_token(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(want) = state.config.admin.token.as_deref() else {
        return Err(ApiError::Off);
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .unwrap_or("");
    if !given.is_empty() && bool::from(given.as_bytes().ct_eq(want.as_bytes())) {
        return Ok(());
    }
    Err(ApiError::Unauthorized)
}

/// Decodes a JSON body into `T`; anything else is a 400 naming the problem.
fn json_body<T: for<'de> Deserialize<'de>>(headers: &HeaderMap, body: &Bytes) -> Result<T, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(bad_request("the body must be application/json"));
    }
    serde_json::from_slice(body).map_err(|e| bad_request(format!("body: {e}")))
}

type AdminResult = Result<Response, ApiError>;

/// `GET /admin`: what this API offers.
async fn index(_: Admin) -> Response {
    let routes: Vec<Value> = ROUTES.iter().map(|(m, p)| json!({"method": m, "path": p})).collect();
    json_response(StatusCode::OK, json!({"routes": routes, "openapi": "docs/openapi-admin.json"}))
}

/// `GET /admin/clients`.
async fn list_clients(_: Admin, State(state): State<AppRef>) -> AdminResult {
    let clients = service::list_clients(&state.store).await.map_err(service_error)?;
    Ok(json_response(StatusCode::OK, json!({ "clients": clients })))
}

/// `POST /admin/clients`: RFC 7591 metadata plus `profile` (as `strongroom clients add`).
async fn create_client(_: Admin, State(state): State<AppRef>, headers: HeaderMap, body: Bytes) -> AdminResult {
    let metadata: Value = json_body(&headers, &body)?;
    let created = service::add_client(&state.store, &state.rules, metadata, now()).await.map_err(service_error)?;
    tracing::info!(client_id = %created.client_id, "client added by the admin API");
    state.audit.admin_change(Operator::AdminApi, AdminChange::ClientAdded { client_id: &created.client_id }).await;
    let mut out = json!({"client_id": created.client_id, "metadata": service::client_view(&created.metadata)});
    if let Some(s) = created.client_secret {
        out["client_secret"] = s.into();
    }
    Ok(json_response(StatusCode::CREATED, out))
}

/// `GET /admin/clients/{client_id}`.
async fn show_client(_: Admin, State(state): State<AppRef>, Path(client_id): Path<String>) -> AdminResult {
    let record = service::get_client(&state.store, &client_id).await.map_err(service_error)?;
    Ok(json_response(StatusCode::OK, service::client_summary(&record)))
}

/// `DELETE /admin/clients/{client_id}`: removes the client and revokes its tokens.
async fn delete_client(_: Admin, State(state): State<AppRef>, Path(client_id): Path<String>) -> AdminResult {
    service::remove_client(&state.store, &client_id).await.map_err(service_error)?;
    tracing::info!(client_id = %client_id, "client removed by the admin API");
    state.audit.admin_change(Operator::AdminApi, AdminChange::ClientRemoved { client_id: &client_id }).await;
    Ok(no_content())
}

/// `GET /admin/users`.
async fn list_users(_: Admin, State(state): State<AppRef>) -> AdminResult {
    let users = service::list_users(&state.store).await.map_err(service_error)?;
    Ok(json_response(StatusCode::OK, json!({ "users": users })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
    #[serde(default)]
    claims: Option<Value>,
}

/// `POST /admin/users`.
async fn create_user(_: Admin, State(state): State<AppRef>, headers: HeaderMap, body: Bytes) -> AdminResult {
    let u: NewUser = json_body(&headers, &body)?;
    let claims = u.claims.unwrap_or_else(|| json!({}));
    let user = service::add_user(&state.store, &u.username, &u.password, claims, now()).await.map_err(service_error)?;
    tracing::info!(username = %user.username, "user added by the admin API");
    state.audit.admin_change(Operator::AdminApi, AdminChange::UserAdded { subject: &user.subject }).await;
    Ok(json_response(StatusCode::CREATED, service::user_view(&user)))
}

/// `GET /admin/users/{username}`.
async fn show_user(_: Admin, State(state): State<AppRef>, Path(username): Path<String>) -> AdminResult {
    match state.store.get_user_by_username(&username).await {
        Ok(Some(u)) => Ok(json_response(StatusCode::OK, service::user_view(&u))),
        Ok(None) => Err(service_error(ServiceError::NotFound(format!("user {username}")))),
        Err(e) => Err(service_error(e.into())),
    }
}

/// `DELETE /admin/users/{username}`: removes the user and revokes their tokens.
async fn delete_user(_: Admin, State(state): State<AppRef>, Path(username): Path<String>) -> AdminResult {
    let subject = service::remove_user(&state.store, &username).await.map_err(service_error)?;
    state.audit.admin_change(Operator::AdminApi, AdminChange::UserRemoved { subject: &subject }).await;
    tracing::info!(username = %username, "user removed by the admin API");
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

/// `POST /admin/users/{username}/password`.
async fn set_password(
    _: Admin,
    State(state): State<AppRef>,
    Path(username): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AdminResult {
    let p: NewPassword = json_body(&headers, &body)?;
    let subject = service::set_password(&state.store, &username, &p.password).await.map_err(service_error)?;
    state.audit.admin_change(Operator::AdminApi, AdminChange::PasswordSet { subject: &subject }).await;
    tracing::info!(username = %username, "password changed by the admin API");
    Ok(no_content())
}

/// `GET /admin/keys`.
async fn list_keys(_: Admin, State(state): State<AppRef>) -> AdminResult {
    let keys = service::list_keys(&state.keys).await.map_err(service_error)?;
    Ok(json_response(StatusCode::OK, json!({ "keys": keys })))
}

/// `POST /admin/keys/rotate`: next → active → retired, for every algorithm.
async fn rotate_keys(_: Admin, State(state): State<AppRef>) -> AdminResult {
    let active = service::rotate_keys(&state.keys, now()).await.map_err(service_error)?;
    tracing::info!(active = ?active, "signing keys rotated by the admin API");
    state.audit.admin_change(Operator::AdminApi, AdminChange::KeysRotated { active: &active }).await;
    Ok(json_response(StatusCode::OK, json!({ "active": active })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    client_id: Option<String>,
    subject: Option<String>,
}

/// `POST /admin/revoke` with `{"client_id": …}` or `{"subject": …}`.
async fn revoke(_: Admin, State(state): State<AppRef>, headers: HeaderMap, body: Bytes) -> AdminResult {
    let r: RevokeRequest = json_body(&headers, &body)?;
    let target = match (r.client_id, r.subject) {
        (Some(c), None) if !c.is_empty() => RevokeTarget::Client(c),
        (None, Some(s)) if !s.is_empty() => RevokeTarget::Subject(s),
        _ => {
            return Err(bad_request("give exactly one of client_id and subject"));
        }
    };
    let revoked = service::revoke_grants(&state.store, &target).await.map_err(service_error)?;
    state.audit.admin_change(Operator::AdminApi, AdminChange::GrantsRevoked { target: &target, revoked }).await;
    tracing::info!(target = ?target, revoked, "grants revoked by the admin API");
    Ok(json_response(StatusCode::OK, json!({ "revoked": revoked })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    client_id: Option<String>,
    subject: Option<String>,
    limit: Option<u32>,
}

/// `GET /admin/audit?client_id=…` or `?subject=…` (with optional `limit`, at most 1000):
/// the audit events of a client or a user (of everyone without a filter), newest first,
/// from the store sink.
async fn audit_events(
    _: Admin,
    State(state): State<AppRef>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> AdminResult {
    let Ok(Query(q)) = query else {
        return Err(bad_request("the query takes client_id or subject, and limit (1-1000)"));
    };
    let events =
        crate::audit::query(&state.store, &state.config.audit, q.client_id.as_deref(), q.subject.as_deref(), q.limit)
            .await
            .map_err(|e| match e {
                crate::audit::QueryError::Invalid(m) => bad_request(m),
                crate::audit::QueryError::NotKept => ApiError::Json(StatusCode::NOT_FOUND, "not_found", e.to_string()),
                crate::audit::QueryError::Store(e) => service_error(e.into()),
            })?;
    Ok(json_response(StatusCode::OK, json!({ "events": events })))
}
