//! Introspection (RFC 7662, RFC 9701) and revocation (RFC 7009).

use super::client_auth::ClientRequest;
use super::{AppRef, ErrorResponse, HttpResult, no_store_json};
use crate::issue;
use crate::state::{AppState, now};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use strongroom_protocol::OAuthError;
use strongroom_protocol::jose::{JwsAlg, JwtKind, ParsedJws, check_explicit_type, sha256_b64url};
use strongroom_store::{TokenKind, TokenRecord};

/// Finds the record of a token the server issued: an access token by the `jti` of a JWT
/// whose signature verifies with the server's keys, a refresh token by its hash.
pub async fn find_token(state: &AppState, token: &str) -> HttpResult<Option<TokenRecord>> {
    if token.len() > state.config.limits.max_jwt_bytes {
        return Ok(None);
    }
    if token.matches('.').count() == 2 {
        let Ok(jws) = ParsedJws::parse(token, state.config.limits.max_jwt_bytes) else { return Ok(None) };
        if check_explicit_type(jws.header_str("typ"), JwtKind::AccessToken).is_err()
            || jws.verify_with_set(&state.keys.public_set(), 2048, 224).is_err()
        {
            return Ok(None);
        }
        let Some(jti) = jws.claim_str("jti") else { return Ok(None) };
        return Ok(state.store.get_token(jti).await?.filter(|t| t.kind == TokenKind::Access));
    }
    Ok(state.store.get_token(&sha256_b64url(token.as_bytes())).await?.filter(|t| t.kind == TokenKind::Refresh))
}

/// RFC 7662 §2.2 response for a record.
fn introspection_of(state: &AppState, t: &TokenRecord) -> Value {
    let mut v = json!({
        "active": true,
        "iss": state.endpoints.issuer,
        "client_id": t.client_id,
        "sub": t.subject,
        "exp": t.expires_at,
        "iat": t.issued_at,
        "scope": t.data.get("scope").cloned().unwrap_or(Value::Null),
    });
    match t.kind {
        TokenKind::Access => {
            v["jti"] = t.id.clone().into();
            v["aud"] = t.data.get("aud").cloned().unwrap_or(Value::Null);
            v["token_type"] = t.data.get("token_type").cloned().unwrap_or(json!("Bearer"));
        }
        TokenKind::Refresh => v["token_type"] = json!("refresh_token"),
    }
    // R8705-3, R9449-6.1/6.2: the binding, so a resource server can enforce it.
    if let Some(cnf) = t.data.get("cnf").filter(|c| !c.is_null()) {
        v["cnf"] = cnf.clone();
    }
    v
}

/// `POST /introspect`. Only authenticated clients may call it (R7662-2.1), and only a
/// resource server (`introspection_allowed`) learns anything (R7662-4, F2MS-sec-introspect):
/// any other client gets `{"active": false}` for every token, its own included, so the
/// endpoint is no token oracle. Expired, revoked or unknown tokens are `{"active": false}`
/// (R7662-2.2).
pub async fn introspect(
    State(state): State<AppRef>,
    ClientRequest { form, auth, headers, .. }: ClientRequest,
) -> Result<Response, ErrorResponse> {
    let token = form.get("token").ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let now = now();
    let record = if auth.client.may_introspect() { find_token(&state, token).await? } else { None };
    let answer = match record {
        Some(t) if !t.revoked && t.expires_at > now => introspection_of(&state, &t),
        _ => json!({"active": false}),
    };
    let wants_jwt = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').any(|t| t.trim().starts_with("application/token-introspection+jwt")));
    if !wants_jwt {
        return Ok(no_store_json(StatusCode::OK, answer));
    }
    // R9701-4/5, F2MS-5.5.1-1: a signed response with a FAPI algorithm.
    let alg = auth
        .client
        .metadata
        .introspection_signed_response_alg
        .as_deref()
        .and_then(JwsAlg::parse)
        .unwrap_or(JwsAlg::ES256);
    let claims =
        json!({"iss": state.endpoints.issuer, "aud": auth.client.client_id, "iat": now, "token_introspection": answer});
    let jwt = issue::sign(&state, alg, Some("token-introspection+jwt"), &claims)?;
    let mut resp = (StatusCode::OK, jwt).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/token-introspection+jwt"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `POST /revoke` (RFC 7009). Only the token's own client may revoke it; revoking a refresh
/// token ends its whole grant (R7009-2-rt). Unknown tokens also get 200 (R7009-2.2).
pub async fn revoke(
    State(state): State<AppRef>,
    ClientRequest { form, auth, .. }: ClientRequest,
) -> Result<Response, ErrorResponse> {
    let token = form.get("token").ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    if let Some(t) = find_token(&state, token).await?
        && t.client_id == auth.client.client_id
    {
        let revoked = match t.kind {
            TokenKind::Refresh => state.store.revoke_grant(&t.grant_id).await?,
            TokenKind::Access => u64::from(state.store.revoke_token(&t.id).await?),
        };
        let event = crate::audit::AuditEvent::new(crate::audit::AuditKind::TokenRevoked).client(&auth.client);
        let event = if t.subject == t.client_id { event } else { event.subject(&t.subject) };
        let event = event.grant_id(&t.grant_id).detail("token_kind", t.kind.as_str());
        state.audit.record(event.detail("revoked_tokens", revoked)).await;
    }
    Ok(no_store_json(StatusCode::OK, json!({})))
}
