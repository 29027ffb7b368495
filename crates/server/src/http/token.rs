//! The token endpoint (RFC 6749 §3.2): `authorization_code`, `refresh_token` and
//! `client_credentials`, every token sender-constrained as the client's profile demands.

use super::client_auth::{AuthenticatedClient, ClientRequest};
use super::dpop::{fresh_nonce, proof_of};
use super::{AppRef, ErrorResponse, HttpResult, Params, no_store_json};
use crate::audit::{AuditEvent, AuditKind};
use crate::issue::{self, Grant};
use crate::state::now;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};
use strongroom_protocol::authz::AuthorizationRequest;
use strongroom_protocol::claims_request::individually_requested;
use strongroom_protocol::client::GrantType;
use strongroom_protocol::discovery::paths;
use strongroom_protocol::grants::{
    CodeRedemption, IssuedCode, RefreshTokenState, UnusableCode, check_code_redemption, check_refresh_binding,
    check_refresh_token, narrow_scope, refuse_code,
};
use strongroom_protocol::jose::sha256_b64url;
use strongroom_protocol::random::random_token;
use strongroom_protocol::tokens::{Binding, IdTokenInput, choose_binding, claims_for_scope};
use strongroom_protocol::{ErrorCode, OAuthError};
use strongroom_store::{Consumed, TokenKind};

/// What a code stands for, stored with it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CodeData {
    /// The authorization request it answers.
    pub request: AuthorizationRequest,
    /// The user.
    pub subject: String,
    /// When the user authenticated.
    pub auth_time: i64,
    /// Authentication context.
    pub acr: Option<String>,
    /// Session id.
    pub sid: Option<String>,
    /// Scope the user approved.
    pub scope: String,
}

/// `POST /token`.
pub async fn token(
    State(state): State<AppRef>,
    ClientRequest { form, auth, headers, listener }: ClientRequest,
) -> Result<Response, ErrorResponse> {
    let proof = proof_of(&state, &headers, listener, paths::TOKEN, "POST").await?;
    let dpop_jkt = proof.as_ref().map(|p| p.jkt.clone());
    let grant_type = form.get("grant_type").ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let grant = GrantType::parse(grant_type)
        .ok_or_else(|| OAuthError::new(ErrorCode::UnsupportedGrantType, "grant_type is not supported"))?;
    if !auth.client.allows_grant(grant) {
        return Err(OAuthError::unauthorized_client("the client may not use this grant type").into());
    }
    let body = match grant {
        GrantType::ClientCredentials => client_credentials(&state, &auth, &form, dpop_jkt.as_deref()).await?,
        GrantType::AuthorizationCode => authorization_code(&state, &auth, &form, dpop_jkt.as_deref()).await?,
        GrantType::RefreshToken => refresh(&state, &auth, &form, dpop_jkt.as_deref()).await?,
    };
    let mut resp = no_store_json(StatusCode::OK, body);
    if let Some(n) = fresh_nonce(&state).and_then(|n| HeaderValue::from_str(&n).ok()) {
        resp.headers_mut().insert(HeaderName::from_static("dpop-nonce"), n);
    }
    Ok(resp)
}

fn token_response(access: &str, binding: &Binding, ttl: i64, scope: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("access_token".into(), access.into());
    m.insert("token_type".into(), binding.token_type().into());
    m.insert("expires_in".into(), ttl.into());
    m.insert("scope".into(), scope.into());
    m
}

/// Scopes a client may get without a user.
fn client_credentials_scope(auth: &AuthenticatedClient, requested: Option<&str>) -> HttpResult<String> {
    let allowed: Vec<&str> = auth
        .client
        .scopes
        .iter()
        .map(String::as_str)
        .filter(|s| !matches!(*s, "openid" | "offline_access" | "profile" | "email"))
        .collect();
    match requested {
        None => Ok(allowed.join(" ")),
        Some(r) => {
            let mut out = Vec::new();
            for s in r.split(' ').filter(|s| !s.is_empty()) {
                if !allowed.contains(&s) {
                    return Err(OAuthError::invalid_scope("a requested scope is not allowed for this client").into());
                }
                out.push(s);
            }
            Ok(out.join(" "))
        }
    }
}

async fn client_credentials(
    state: &AppRef,
    auth: &AuthenticatedClient,
    form: &Params,
    dpop_jkt: Option<&str>,
) -> HttpResult<Value> {
    let scope = client_credentials_scope(auth, form.get("scope").map(String::as_str))?;
    let binding = choose_binding(&auth.client, dpop_jkt, auth.cert_thumbprint.as_deref())?;
    let now = now();
    let grant_id = random_token();
    let g = Grant {
        grant_id: &grant_id,
        client_id: &auth.client.client_id,
        subject: &auth.client.client_id,
        scope: &scope,
        auth_time: None,
        acr: None,
        userinfo_claims: None,
    };
    let (at, ttl) = issue::access_token(state, &g, &binding, now).await?;
    crate::telemetry::token_issued(GrantType::ClientCredentials, &auth.client, &binding);
    audit_tokens(state, AuditKind::TokenIssued, GrantType::ClientCredentials, auth, &g, &binding).await;
    Ok(Value::Object(token_response(&at, &binding, ttl, &scope)))
}

async fn authorization_code(
    state: &AppRef,
    auth: &AuthenticatedClient,
    form: &Params,
    dpop_jkt: Option<&str>,
) -> HttpResult<Value> {
    let code = form.get("code").ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let now = now();
    let record = match state.store.consume_code(&sha256_b64url(code.as_bytes()), now).await? {
        Consumed::Fresh(r) => r,
        Consumed::AlreadyUsed(r) => {
            let refusal = refuse_code(UnusableCode::AlreadyUsed);
            if refusal.revoke_grant {
                let n = state.store.revoke_grant(&r.grant_id).await?;
                tracing::warn!(client_id = %r.client_id, revoked = n, "authorization code reused; grant revoked");
                let event = replay_event(AuditKind::CodeReplayed, auth, &r.client_id).grant_id(&r.grant_id);
                let subject = serde_json::from_value::<CodeData>(r.data).ok().map(|d| d.subject);
                let event = match &subject {
                    Some(s) => event.subject(s),
                    None => event,
                };
                let event = event.grant_type(GrantType::AuthorizationCode);
                state.audit.record(event.detail("revoked_tokens", n)).await;
            }
            return Err(refusal.error.into());
        }
        Consumed::Expired => return Err(refuse_code(UnusableCode::Expired).error.into()),
        Consumed::Unknown => return Err(refuse_code(UnusableCode::Unknown).error.into()),
    };
    let data: CodeData = serde_json::from_value(record.data.clone()).map_err(|e| {
        tracing::error!(error = %e, "corrupt code record");
        ErrorResponse::from(OAuthError::server_error())
    })?;
    let issued = IssuedCode {
        client_id: &record.client_id,
        redirect_uri: &data.request.redirect_uri,
        code_challenge: data.request.code_challenge.as_deref(),
        dpop_jkt: data.request.dpop_jkt.as_deref(),
    };
    let presented = CodeRedemption {
        client_id: &auth.client.client_id,
        redirect_uri: form.get("redirect_uri").map(String::as_str),
        code_verifier: form.get("code_verifier").map(String::as_str),
        dpop_jkt,
    };
    check_code_redemption(&issued, &presented)?;
    let binding = choose_binding(&auth.client, dpop_jkt, auth.cert_thumbprint.as_deref())?;
    let claims_request = data.request.claims.as_ref();
    let userinfo_claims = claims_request
        .filter(|c| !c.userinfo.is_empty())
        .map(|c| Value::from(c.userinfo.keys().cloned().collect::<Vec<_>>()));
    let g = Grant {
        grant_id: &record.grant_id,
        client_id: &auth.client.client_id,
        subject: &data.subject,
        scope: &data.scope,
        auth_time: Some(data.auth_time),
        acr: data.acr.as_deref(),
        userinfo_claims: userinfo_claims.as_ref(),
    };
    let (at, ttl) = issue::access_token(state, &g, &binding, now).await?;
    crate::telemetry::token_issued(GrantType::AuthorizationCode, &auth.client, &binding);
    let redeemed = AuditEvent::new(AuditKind::CodeRedeemed).client(&auth.client).subject(&data.subject);
    state.audit.record(redeemed.grant_id(&record.grant_id)).await;
    let mut resp = token_response(&at, &binding, ttl, &data.scope);
    if auth.client.allows_grant(GrantType::RefreshToken) {
        let rt = issue::refresh_token(state, &g, &binding, now).await?;
        resp.insert("refresh_token".into(), rt.into());
    }
    if data.scope.split(' ').any(|s| s == "openid") {
        let user = state.store.get_user_by_subject(&data.subject).await?;
        let user_claims = user.and_then(|u| u.claims.as_object().cloned()).unwrap_or_default();
        let mut released = claims_for_scope(&data.scope, &user_claims);
        if let Some(c) = claims_request {
            released.extend(individually_requested(c.id_token.keys(), &user_claims));
        }
        let id = issue::id_token(
            state,
            &IdTokenInput {
                issuer: &state.endpoints.issuer,
                subject: &data.subject,
                client_id: &auth.client.client_id,
                iat: now,
                ttl: i64::try_from(state.config.tokens.id_token_ttl).unwrap_or(300),
                auth_time: data.auth_time,
                nonce: data.request.nonce.as_deref(),
                acr: data.acr.as_deref(),
                sid: data.sid.as_deref(),
                access_token: Some(&at),
                user_claims: Some(&released),
                ..Default::default()
            },
            auth.client.id_token_alg,
        )?;
        let keys = match &auth.client.id_token_encryption {
            Some(_) => Some(super::client_auth::client_keys(state, &auth.client, false, now).await?),
            None => None,
        };
        let id = crate::jwe::maybe_encrypt(id, auth.client.id_token_encryption.as_ref(), keys.as_ref())?;
        resp.insert("id_token".into(), id.into());
    }
    let event = AuditKind::TokenIssued;
    audit_tokens(state, event, GrantType::AuthorizationCode, auth, &g, &binding).await;
    Ok(Value::Object(resp))
}

async fn refresh(
    state: &AppRef,
    auth: &AuthenticatedClient,
    form: &Params,
    dpop_jkt: Option<&str>,
) -> HttpResult<Value> {
    let value = form.get("refresh_token").ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let now = now();
    let id = sha256_b64url(value.as_bytes());
    let record = state.store.get_token(&id).await?.filter(|t| t.kind == TokenKind::Refresh);
    let Some(record) = record else { return Err(OAuthError::invalid_grant("the refresh token is not valid").into()) };
    let presented = RefreshTokenState {
        client_id: &record.client_id,
        expires_at: record.expires_at,
        revoked: record.revoked,
        rotated_at: record.data.get("rotated_at").and_then(Value::as_i64),
    };
    let leeway = i64::try_from(state.config.tokens.refresh_reuse_leeway).unwrap_or(0);
    if let Err(refusal) = check_refresh_token(&presented, &auth.client.client_id, now, leeway) {
        if refusal.revoke_grant {
            let n = state.store.revoke_grant(&record.grant_id).await?;
            tracing::warn!(client_id = %record.client_id, revoked = n, "rotated refresh token reused; grant revoked");
            let event = replay_event(AuditKind::RefreshReuseDetected, auth, &record.client_id)
                .subject(&record.subject)
                .grant_id(&record.grant_id)
                .grant_type(GrantType::RefreshToken);
            state.audit.record(event.detail("revoked_tokens", n)).await;
        }
        return Err(refusal.error.into());
    }
    let original = Binding::from_cnf(record.data.get("cnf"));
    let binding = choose_binding(&auth.client, dpop_jkt, auth.cert_thumbprint.as_deref())?;
    check_refresh_binding(&original, &binding)?;
    let granted = record.data.get("scope").and_then(Value::as_str).unwrap_or("");
    let scope = narrow_scope(granted, form.get("scope").map(String::as_str))?;
    let acr = record.data.get("acr").and_then(Value::as_str).map(str::to_string);
    let g = Grant {
        grant_id: &record.grant_id,
        client_id: &auth.client.client_id,
        subject: &record.subject,
        scope: &scope,
        auth_time: record.data.get("auth_time").and_then(Value::as_i64),
        acr: acr.as_deref(),
        userinfo_claims: record.data.get("userinfo_claims"),
    };
    // F2SP-5.3.2.1-9: FAPI clients keep their refresh token; plain OAuth rotates it. The
    // old one is consumed by one conditional statement before anything is issued, so
    // concurrent refreshes cannot fork the grant (RFC 9700 §4.14.2).
    let rotate = auth.client.policy().rotate_refresh_tokens;
    if rotate && !state.store.rotate_refresh_token(&id, now).await? {
        return Err(OAuthError::invalid_grant("the refresh token is not valid").into());
    }
    let (at, ttl) = issue::access_token(state, &g, &binding, now).await?;
    crate::telemetry::token_issued(GrantType::RefreshToken, &auth.client, &binding);
    let mut resp = token_response(&at, &binding, ttl, &scope);
    if rotate {
        let g_full = Grant { scope: granted, ..g };
        let rt = issue::refresh_token(state, &g_full, &original, now).await?;
        resp.insert("refresh_token".into(), rt.into());
    }
    audit_tokens(state, AuditKind::TokenRefreshed, GrantType::RefreshToken, auth, &g, &binding).await;
    Ok(Value::Object(resp))
}

/// Records tokens issued at the token endpoint: client, user, grant, scope and binding.
async fn audit_tokens(
    state: &AppRef,
    kind: AuditKind,
    grant: GrantType,
    auth: &AuthenticatedClient,
    g: &Grant<'_>,
    binding: &Binding,
) {
    let mut event = AuditEvent::new(kind).client(&auth.client).grant_type(grant).grant_id(g.grant_id).scope(g.scope);
    if grant != GrantType::ClientCredentials {
        event = event.subject(g.subject);
    }
    state.audit.record(event.detail("token_type", binding.token_type())).await;
}

/// An event about a code or refresh token presented again: for the client it was issued
/// to, saying whether that client or another one presented it.
fn replay_event(kind: AuditKind, auth: &AuthenticatedClient, owner: &str) -> AuditEvent {
    if auth.client.client_id == owner {
        AuditEvent::new(kind).client(&auth.client).detail("presented_by", "same_client")
    } else {
        AuditEvent::new(kind).client_id(owner).detail("presented_by", "other_client")
    }
}
