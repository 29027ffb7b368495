//! Resources behind the resource-server guard: UserInfo (OIDC Core §5.3) and the demo
//! resource of the development set-up (`GET /demo/accounts`).

use super::AppRef;
use super::dpop::DPOP_ALGS;
use crate::state::{AppState, Listener, now};
use crate::tls::ConnectionInfo;
use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use jsonwebtoken::jwk::JwkSet;
use serde_json::{Value, json};
use std::sync::Arc;
use strongroom_guard::{Guard, GuardConfig, KeySource, PeerCertificate, TokenState, VerifiedToken, require_scope};
use strongroom_protocol::OAuthError;
use strongroom_protocol::claims_request::individually_requested;
use strongroom_protocol::discovery::paths;
use strongroom_protocol::tokens::claims_for_scope;
use strongroom_store::TokenKind;

/// The server's own keys, in process.
struct OwnKeys(Arc<AppState>);

#[async_trait]
impl KeySource for OwnKeys {
    async fn keys(&self, _kid: Option<&str>) -> Option<JwkSet> {
        Some(self.0.keys.public_set().as_ref().clone())
    }
}

/// Revocation and DPoP replay from the store.
struct StoreState(Arc<AppState>);

#[async_trait]
impl TokenState for StoreState {
    async fn is_active(&self, jti: &str) -> bool {
        match self.0.store.get_token(jti).await {
            Ok(Some(t)) => t.kind == TokenKind::Access && !t.revoked && t.expires_at > now(),
            Ok(None) => false,
            Err(e) => {
                tracing::error!(error = %e, "token lookup failed at the resource guard");
                false
            }
        }
    }
    async fn record_dpop_jti(&self, jti: &str, until: i64) -> bool {
        self.0.store.record_jti("dpop", jti, until).await.unwrap_or(false)
    }
}

fn guard(state: &AppRef, listener: Listener, allow_unbound: bool) -> Arc<Guard> {
    let config = GuardConfig {
        issuer: state.endpoints.issuer.clone(),
        audience: state.endpoints.issuer.clone(),
        resource_base_url: state.url_on(listener, ""),
        dpop_algs: DPOP_ALGS.to_vec(),
        max_future_skew: 10,
        max_token_bytes: state.config.limits.max_jwt_bytes,
        require_nonce: state.config.dpop.require_nonce.then(|| state.nonces.clone()),
        allow_unbound,
    };
    Arc::new(Guard::new(config, Arc::new(OwnKeys(state.clone())), Some(Arc::new(StoreState(state.clone())))))
}

/// Hands the connection's client certificate to the guard.
async fn peer_certificate(mut req: Request, next: Next) -> Response {
    let leaf = req
        .extensions()
        .get::<ConnectionInfo>()
        .and_then(|c| c.client_cert.as_ref())
        .and_then(|c| c.leaf())
        .map(|c| PeerCertificate(Arc::new(c.as_ref().to_vec())));
    if let Some(cert) = leaf {
        req.extensions_mut().insert(cert);
    }
    next.run(req).await
}

/// UserInfo accepts the Bearer tokens only plain-OAuth clients can get (FAPI clients never
/// receive one); the demo resource is a FAPI resource and accepts bound tokens only.
pub fn routes(state: &AppRef, listener: Listener) -> Router<AppRef> {
    let userinfo_routes = Router::new()
        .route(paths::USERINFO, get(userinfo).post(userinfo))
        .route_layer(middleware::from_fn_with_state(guard(state, listener, true), strongroom_guard::middleware));
    let demo_routes = Router::new()
        .route("/demo/accounts", get(demo_accounts))
        .route_layer(middleware::from_fn_with_state(guard(state, listener, false), strongroom_guard::middleware));
    userinfo_routes.merge(demo_routes).route_layer(middleware::from_fn(peer_certificate))
}

/// `GET/POST /userinfo`: `sub` and the claims the consented scopes release
/// (OIDC-5.3-userinfo).
pub async fn userinfo(State(state): State<AppRef>, Extension(token): Extension<VerifiedToken>) -> Response {
    if let Err(r) = require_scope(&token, "openid") {
        return r.into_response();
    }
    let user = match state.store.get_user_by_subject(&token.subject).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return super::ErrorResponse::from(OAuthError::invalid_token("the user no longer exists")).into_response();
        }
        Err(e) => return super::ErrorResponse::from(e).into_response(),
    };
    let claims = user.claims.as_object().cloned().unwrap_or_default();
    let scope = token.scopes.join(" ");
    let mut out = claims_for_scope(&scope, &claims);
    // OIDC-5.5: claims the authorization request asked for individually, kept with the grant.
    match userinfo_claims_of(&state, &token).await {
        Ok(requested) => out.extend(individually_requested(&requested, &claims)),
        Err(e) => return super::ErrorResponse::from(e).into_response(),
    }
    out.insert("sub".into(), Value::String(token.subject.clone()));
    super::no_store_json(axum::http::StatusCode::OK, Value::Object(out))
}

/// The names of the claims the token's grant asked for at UserInfo, from its token record.
async fn userinfo_claims_of(
    state: &AppRef,
    token: &VerifiedToken,
) -> Result<Vec<String>, strongroom_store::StoreError> {
    let Some(jti) = token.claims.get("jti").and_then(Value::as_str) else { return Ok(Vec::new()) };
    let record = state.store.get_token(jti).await?;
    let names = record.as_ref().and_then(|r| r.data.get("userinfo_claims")).and_then(Value::as_array);
    Ok(names.into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect())
}

/// `GET /demo/accounts`: what a bank API behind the guard looks like; needs `accounts`.
pub async fn demo_accounts(Extension(token): Extension<VerifiedToken>) -> Response {
    if let Err(r) = require_scope(&token, "accounts") {
        return r.into_response();
    }
    super::no_store_json(
        axum::http::StatusCode::OK,
        json!({
            "owner": token.subject,
            "client_id": token.client_id,
            "bound_by": match token.binding {
                strongroom_protocol::tokens::Binding::Mtls { .. } => "mtls",
                strongroom_protocol::tokens::Binding::Dpop { .. } => "dpop",
                strongroom_protocol::tokens::Binding::Bearer => "none",
            },
            "accounts": [
                {"id": "acc-001", "name": "Current account", "currency": "EUR", "balance": "1250.00"},
                {"id": "acc-002", "name": "Savings", "currency": "EUR", "balance": "10400.00"}
            ]
        }),
    )
}
