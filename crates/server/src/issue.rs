//! Issuing tokens: signing with the active key, recording what was issued so revocation
//! and introspection work.

use crate::http::{ErrorResponse, HttpResult};
use crate::state::AppState;
use serde_json::{Value, json};
use strongroom_protocol::OAuthError;
use strongroom_protocol::jose::{JwsAlg, JwsSigner, sha256_b64url};
use strongroom_protocol::random::random_token;
use strongroom_protocol::tokens::{
    ACCESS_TOKEN_TYP, AccessTokenInput, Binding, IdTokenInput, access_token_claims, id_token_claims,
};
use strongroom_store::{TokenKind, TokenRecord};

/// The algorithm of the server's own access tokens: ES256, cheap to sign and verify.
pub const ACCESS_TOKEN_ALG: JwsAlg = JwsAlg::ES256;

/// Who and what a token is for.
pub struct Grant<'a> {
    /// Grant id (shared by all tokens of one authorization).
    pub grant_id: &'a str,
    /// Client.
    pub client_id: &'a str,
    /// User, or the client itself.
    pub subject: &'a str,
    /// Granted scope.
    pub scope: &'a str,
    /// `auth_time` of the user's authentication.
    pub auth_time: Option<i64>,
    /// `acr`.
    pub acr: Option<&'a str>,
    /// Names of the claims the `claims` parameter asked for at UserInfo (OIDC-5.5), a JSON
    /// array kept with every token of the grant.
    pub userinfo_claims: Option<&'a serde_json::Value>,
}

/// Signs a JWT with the active key of `alg`.
pub fn sign(state: &AppState, alg: JwsAlg, typ: Option<&str>, claims: &Value) -> HttpResult<String> {
    let signer = state.keys.signer(alg).ok_or_else(|| {
        tracing::error!(alg = alg.as_str(), "no active signing key");
        ErrorResponse::from(OAuthError::server_error())
    })?;
    signer.sign(typ, claims).map_err(|e| {
        tracing::error!(error = %e, "signing failed");
        ErrorResponse::from(OAuthError::server_error())
    })
}

/// Issues and records an access token (RFC 9068) bound as `binding`.
pub async fn access_token(state: &AppState, g: &Grant<'_>, binding: &Binding, now: i64) -> HttpResult<(String, i64)> {
    let jti = random_token();
    let ttl = i64::try_from(state.config.tokens.access_token_ttl).unwrap_or(300);
    let claims = access_token_claims(&AccessTokenInput {
        issuer: &state.endpoints.issuer,
        audience: &state.endpoints.issuer,
        subject: g.subject,
        client_id: g.client_id,
        scope: g.scope,
        iat: now,
        ttl,
        jti: &jti,
        binding,
        auth_time: g.auth_time,
        acr: g.acr,
    });
    let token = sign(state, ACCESS_TOKEN_ALG, Some(ACCESS_TOKEN_TYP), &claims)?;
    let mut data = json!({"scope": g.scope, "cnf": binding.cnf(), "token_type": binding.token_type(), "aud": state.endpoints.issuer});
    if let Some(names) = g.userinfo_claims {
        data["userinfo_claims"] = names.clone();
    }
    record(state, g, jti, TokenKind::Access, now, ttl, data).await?;
    Ok((token, ttl))
}

/// Issues and records a refresh token. It is bound to the client (and keeps the original
/// binding kind for the access tokens it yields); the value is stored only as a hash.
pub async fn refresh_token(state: &AppState, g: &Grant<'_>, binding: &Binding, now: i64) -> HttpResult<String> {
    let value = random_token();
    let ttl = i64::try_from(state.config.tokens.refresh_token_ttl).unwrap_or(86_400);
    let mut data = json!({"scope": g.scope, "cnf": binding.cnf(), "auth_time": g.auth_time, "acr": g.acr});
    if let Some(names) = g.userinfo_claims {
        data["userinfo_claims"] = names.clone();
    }
    record(state, g, sha256_b64url(value.as_bytes()), TokenKind::Refresh, now, ttl, data).await?;
    Ok(value)
}

/// Records an issued token of a grant, so revocation and introspection work.
async fn record(
    state: &AppState,
    g: &Grant<'_>,
    id: String,
    kind: TokenKind,
    now: i64,
    ttl: i64,
    data: serde_json::Value,
) -> HttpResult<()> {
    let token = TokenRecord {
        id,
        kind,
        grant_id: g.grant_id.to_string(),
        client_id: g.client_id.to_string(),
        subject: g.subject.to_string(),
        issued_at: now,
        expires_at: now + ttl,
        revoked: false,
        data,
    };
    Ok(state.store.put_token(&token).await?)
}

/// Signs an ID token with the client's algorithm.
pub fn id_token(state: &AppState, input: &IdTokenInput<'_>, alg: JwsAlg) -> HttpResult<String> {
    let claims = id_token_claims(input, alg);
    sign(state, alg, Some("JWT"), &claims)
}
