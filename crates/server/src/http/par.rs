//! Pushed authorization requests (RFC 9126).

use super::client_auth::ClientRequest;
use super::dpop::proof_of;
use super::{AppRef, ErrorResponse, no_store_json};
use crate::state::now;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use strongroom_protocol::OAuthError;
use strongroom_protocol::authz::{reconcile_dpop_jkt, validate_authorization_request};
use strongroom_protocol::client::Client;
use strongroom_protocol::discovery::paths;
use strongroom_protocol::flow::{REQUEST_URI_PREFIX, request_uri_lifetime};
use strongroom_protocol::jose::ParsedJws;
use strongroom_protocol::random::random_token;
use strongroom_protocol::request_object::check_request_object;
use strongroom_protocol::{ErrorCode, authz::Params};
use strongroom_store::OneTimeRecord;

/// The parameters inside a signed request object (JAR, RFC 9101), after its signature
/// (with the client's keys) and its FAPI claim rules (F1A-5.2.2-13, F2MS-5.3.1) pass.
pub async fn request_object_params(
    state: &crate::state::AppState,
    client: &Client,
    object: &str,
    outer: &Params,
    now: i64,
) -> Result<Params, ErrorResponse> {
    let invalid = |d: &'static str| ErrorResponse::from(OAuthError::new(ErrorCode::InvalidRequestObject, d));
    let decrypted;
    let object = if crate::jwe::is_jwe(object) {
        decrypted = crate::jwe::decrypt_request_object(
            object,
            &state.keys.decryption_keys(),
            state.config.limits.max_jwt_bytes,
        )?;
        decrypted.as_str()
    } else {
        object
    };
    let jws = ParsedJws::parse(object, state.config.limits.max_jwt_bytes)
        .map_err(|_| invalid("the request object is not a signed JWT with an allowed algorithm"))?;
    super::client_auth::verify_client_signature(state, client, &jws, now)
        .await
        .map_err(|_| invalid("the request object signature does not verify with the client's keys"))?;
    Ok(check_request_object(&jws, client, &state.endpoints.issuer, now, outer)?)
}

/// `POST /par`: authenticated like the token endpoint (F2SP-5.3.2.2-4), validated like an
/// authorization request at push time (R9126-4-validate), answered with 201, a
/// single-use `request_uri` bound to the client and an `expires_in` under 600 s
/// (R9126-2.2, F2SP-5.3.2.2-12). Errors use the token-endpoint format (R9126-2.3).
pub async fn par(
    State(state): State<AppRef>,
    ClientRequest { form, auth, headers, listener }: ClientRequest,
) -> Result<Response, ErrorResponse> {
    // R9126-2.1: a pushed request never carries request_uri.
    if form.contains_key("request_uri") {
        return Err(OAuthError::invalid_request("request_uri must not be pushed").into());
    }
    let now = now();
    // R9126-3: with a signed request object only its parameters are used.
    let params = match form.get("request") {
        Some(object) => request_object_params(&state, &auth.client, object, &form, now).await?,
        // R9126-2.3-signed: a client that must sign its requests cannot push a plain one.
        None if auth.client.requires_signed_request_object() => {
            return Err(OAuthError::invalid_request("this client must push a signed request object").into());
        }
        None => form.clone(),
    };
    // R9449-10.1: a DPoP proof at PAR binds the code to its key; dpop_jkt must agree.
    let proof = proof_of(&state, &headers, listener, paths::PAR, "POST").await?;
    let mut request = validate_authorization_request(&params, &auth.client, true)?;
    request.dpop_jkt = reconcile_dpop_jkt(request.dpop_jkt.as_deref(), proof.as_ref().map(|p| p.jkt.as_str()))?;
    let ttl = request_uri_lifetime(state.config.tokens.par_ttl, &auth.client);
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", random_token());
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
