//! DPoP at the authorization server: the `DPoP` header of a request, checked completely
//! and its `jti` recorded atomically.

use super::{AppRef, ErrorResponse, HttpResult};
use crate::state::{Listener, now};
use axum::http::HeaderMap;
use strongroom_protocol::dpop::{DpopProof, NonceRule, ProofContext, check_proof};
use strongroom_protocol::jose::JwsAlg;
use strongroom_protocol::{ErrorCode, OAuthError};

/// Algorithms accepted in DPoP proofs (R9449-5.1: FAPI algorithms only).
pub const DPOP_ALGS: &[JwsAlg] = &[JwsAlg::PS256, JwsAlg::ES256, JwsAlg::EdDSA];

/// The DPoP proof of a request to `path`, if one was sent. More than one `DPoP` header is
/// refused (R9449-4.3 item 1). A missing or stale nonce, where nonces are required, is
/// `use_dpop_nonce` with a fresh `DPoP-Nonce` (R9449-8).
pub async fn proof_of(
    state: &AppRef,
    headers: &HeaderMap,
    listener: Listener,
    path: &str,
    method: &str,
) -> HttpResult<Option<DpopProof>> {
    let mut values = headers.get_all("dpop").iter();
    let Some(first) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(OAuthError::invalid_dpop_proof("exactly one DPoP header is allowed").into());
    }
    let proof = first.to_str().map_err(|_| OAuthError::invalid_dpop_proof("the DPoP header is not a JWT"))?;
    let now = now();
    let url = state.url_on(listener, path);
    let nonce =
        if state.config.dpop.require_nonce { NonceRule::Required(&state.nonces) } else { NonceRule::NotRequired };
    let ctx = ProofContext {
        method,
        url: &url,
        now,
        max_future_skew: 10,
        allowed_algs: DPOP_ALGS,
        access_token: None,
        nonce,
        max_len: state.config.limits.max_jwt_bytes,
    };
    let checked = check_proof(proof, &ctx).map_err(|e| with_nonce(state, e, now))?;
    // R9449-11.1: a proof is used once.
    if !state.store.record_jti("dpop", &checked.jti, checked.replay_until).await? {
        return Err(OAuthError::invalid_dpop_proof("the DPoP proof was already used").into());
    }
    Ok(Some(checked))
}

/// Attaches a fresh nonce to `use_dpop_nonce` errors.
pub fn with_nonce(state: &AppRef, e: OAuthError, now: i64) -> ErrorResponse {
    let nonce = (e.code == ErrorCode::UseDpopNonce).then(|| state.nonces.current(now));
    ErrorResponse { error: e, www_authenticate: None, dpop_nonce: nonce }
}

/// The nonce to send on successful responses when nonces are required (R9449-8.2).
pub fn fresh_nonce(state: &AppRef) -> Option<String> {
    state.config.dpop.require_nonce.then(|| state.nonces.current(now()))
}
