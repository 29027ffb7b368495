//! Pushed authorization requests (RFC 9126).

use super::client_auth::authenticate;
use super::dpop::proof_of;
use super::{AppRef, ErrorResponse, no_store_json, parse_form};
use crate::state::{Listener, now};
use crate::tls::ConnectionInfo;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use strongroom_protocol::OAuthError;
use strongroom_protocol::authz::{reconcile_dpop_jkt, validate_authorization_request};
use strongroom_protocol::discovery::paths;
use strongroom_protocol::random::random_token;
use strongroom_store::OneTimeRecord;

/// RFC 9126 §2.2 request URI prefix.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// `POST /par`: authenticated like the token endpoint (F2SP-5.3.2.2-4), validated like an
/// authorization request at push time (R9126-4-validate), answered with 201, a
/// single-use `request_uri` bound to the client and an `expires_in` under 600 s
/// (R9126-2.2, F2SP-5.3.2.2-12). Errors use the token-endpoint format (R9126-2.3).
pub async fn par(
    State(state): State<AppRef>,
    Extension(conn): Extension<ConnectionInfo>,
    Extension(listener): Extension<Listener>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ErrorResponse> {
    let form = parse_form(&headers, &body)?;
    let auth = authenticate(&state, &form, &headers, &conn, listener, paths::PAR).await?;
    // R9126-2.1: a pushed request never carries request_uri.
    if form.contains_key("request_uri") {
        return Err(OAuthError::invalid_request("request_uri must not be pushed").into());
    }
    // R9126-2.3-signed: signed request objects are not offered yet, so a client that
    // must use them cannot push a plain request, and `request` is refused.
    if form.contains_key("request") {
        return Err(OAuthError::invalid_request("request objects are not supported").into());
    }
    if auth.client.requires_signed_request_object() {
        return Err(OAuthError::invalid_request("this client must push a signed request object").into());
    }
    // R9449-10.1: a DPoP proof at PAR binds the code to its key; dpop_jkt must agree.
    let proof = proof_of(&state, &headers, listener, paths::PAR, "POST").await?;
    let mut request = validate_authorization_request(&form, &auth.client, true)?;
    request.dpop_jkt = reconcile_dpop_jkt(request.dpop_jkt.as_deref(), proof.as_ref().map(|p| p.jkt.as_str()))?;
    let ttl = state.config.tokens.par_ttl.min(auth.client.policy().max_request_uri_ttl);
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", random_token());
    let now = now();
    let data = serde_json::to_value(&request).map_err(|_| OAuthError::server_error())?;
    state
        .store
        .put_pushed_request(&OneTimeRecord {
            key: request_uri.clone(),
            client_id: auth.client.client_id.clone(),
            grant_id: String::new(),
            expires_at: now + i64::try_from(ttl).unwrap_or(60),
            data,
        })
        .await?;
    Ok(no_store_json(StatusCode::CREATED, json!({"request_uri": request_uri, "expires_in": ttl})))
}
