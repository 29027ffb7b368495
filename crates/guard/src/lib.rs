//! A reusable resource-server guard: an axum middleware that lets a request through only
//! with a valid Strongroom access token (RFC 9068 JWT, `typ` `at+jwt`) presented in the
//! `Authorization` header and used by the key it is bound to — the TLS client certificate
//! for mTLS-bound tokens (RFC 8705 §3), a DPoP proof with `ath` for DPoP-bound tokens
//! (RFC 9449 §7). The handler receives the token's claims as a [`VerifiedToken`] extension.
//!
//! ```ignore
//! let guard = Arc::new(Guard::new(config, Arc::new(RemoteJwks::new(jwks_uri)?), None));
//! let app = Router::new()
//!     .route("/accounts", get(accounts))
//!     .route_layer(axum::middleware::from_fn_with_state(guard, strongroom_guard::middleware));
//! ```
//!
//! The host inserts the connection's client certificate as a [`PeerCertificate`] request
//! extension (before this middleware runs) when it terminates mTLS.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod interaction;
mod keys;
mod rejection;

pub use interaction::{INTERACTION_ID_HEADER, InteractionId, new_uuid_v4};
pub use keys::{GuardError, KeySource, RemoteJwks};
pub use rejection::{GuardRejection, Scheme};

use async_trait::async_trait;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use std::sync::Arc;
use strongroom_protocol::dpop::{NonceIssuer, NonceRule, ProofContext, check_proof};
use strongroom_protocol::jose::{JwsAlg, JwtKind, ParsedJws, check_explicit_type};
use strongroom_protocol::mtls::certificate_thumbprint;
use strongroom_protocol::tokens::Binding;
use strongroom_protocol::{ErrorCode, OAuthError};

/// What the guard accepts.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// The authorization server's issuer identifier; the token's `iss` must equal it.
    pub issuer: String,
    /// This resource's audience value; the token's `aud` must equal or contain it.
    pub audience: String,
    /// External base URL of this API: the DPoP `htu` must be this base + the request path
    /// (query and fragment ignored, RFC 9449 §4.3 item 9).
    pub resource_base_url: String,
    /// Algorithms accepted for DPoP proofs (advertised in the `algs` challenge attribute).
    pub dpop_algs: Vec<JwsAlg>,
    /// F2SP-5.3.2.1-13: seconds a token's `iat`/`nbf` or a proof's `iat` may lie in the
    /// future (10 for FAPI 2.0).
    pub max_future_skew: i64,
    /// Size limit in bytes for access tokens and DPoP proofs (RFC 8725 §3.1).
    pub max_token_bytes: usize,
    /// R9449-9: demand server nonces in DPoP proofs (401 `use_dpop_nonce` + `DPoP-Nonce`).
    pub require_nonce: Option<Arc<NonceIssuer>>,
    /// Accept tokens without `cnf` (as `Bearer` only). Never for FAPI resources
    /// (F2SP-5.3.4-5, F1A-8.2): the default is `false`.
    pub allow_unbound: bool,
}

/// Token state the host knows: revocation and DPoP proof replay.
#[async_trait]
pub trait TokenState: Send + Sync {
    /// F2SP-5.3.4-3: whether the token with this `jti` is still active (not revoked).
    async fn is_active(&self, jti: &str) -> bool;
    /// R9449-11.1: records a DPoP proof `jti` until `until` (Unix seconds); `false` when it
    /// was seen before (a replay).
    async fn record_dpop_jti(&self, jti: &str, until: i64) -> bool;
}

/// The TLS client certificate (DER of the leaf) of the request's connection. The host
/// inserts it as a request extension; the guard reads it for mTLS-bound tokens.
#[derive(Clone, Debug)]
pub struct PeerCertificate(pub Arc<Vec<u8>>);

/// A token that passed every check, handed to the handler as a request extension.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    /// The raw access token.
    pub token: String,
    /// All its claims.
    pub claims: Map<String, Value>,
    /// `sub`: the resource owner (or the client, for client credentials).
    pub subject: String,
    /// `client_id`: the client the token was issued to.
    pub client_id: String,
    /// The space-separated `scope`, split.
    pub scopes: Vec<String>,
    /// How the token is bound to its client (and how that was checked).
    pub binding: Binding,
}

/// Verifies access tokens; share it as `Arc<Guard>` with [`middleware`].
pub struct Guard {
    config: GuardConfig,
    keys: Arc<dyn KeySource>,
    state: Option<Arc<dyn TokenState>>,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("config", &self.config).finish_non_exhaustive()
    }
}

fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 9068 §4: the access-token `typ`, with or without the `application/` prefix
/// (media types compare case-insensitively, RFC 7515 §4.1.9).
fn is_access_token_typ(typ: Option<&str>) -> bool {
    check_explicit_type(typ, JwtKind::AccessToken).is_ok()
}

/// A required, non-empty string claim.
fn required_str<'a>(jws: &'a ParsedJws, name: &str) -> Option<&'a str> {
    jws.claim_str(name).filter(|s| !s.is_empty())
}

/// The path of a request target: `path_and_query` without query and fragment.
fn path_only(path_and_query: &str) -> &str {
    let end = path_and_query.find(['?', '#']).unwrap_or(path_and_query.len());
    &path_and_query[..end]
}

impl Guard {
    /// A guard with the system clock. `state` enables revocation (F2SP-5.3.4-3) and DPoP
    /// proof replay checks (R9449-11.1).
    pub fn new(config: GuardConfig, keys: Arc<dyn KeySource>, state: Option<Arc<dyn TokenState>>) -> Guard {
        Guard { config, keys, state, clock: Arc::new(system_now) }
    }

    /// The same guard with another clock (Unix seconds), for tests and simulations.
    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> i64 + Send + Sync>) -> Guard {
        self.clock = clock;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    fn algs(&self) -> String {
        self.config.dpop_algs.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(" ")
    }

    fn reject(&self, scheme: Scheme, error: OAuthError) -> GuardRejection {
        let nonce = match &self.config.require_nonce {
            Some(n) if error.code == ErrorCode::UseDpopNonce => Some(n.current((self.clock)())),
            _ => None,
        };
        GuardRejection { error: Some(error), scheme, nonce, algs: self.algs(), scope: None }
    }

    fn no_token(&self) -> GuardRejection {
        GuardRejection { error: None, scheme: Scheme::Bearer, nonce: None, algs: self.algs(), scope: None }
    }

    /// Checks one request; the method, request target, headers and the connection's client
    /// certificate (DER) are all it looks at.
    ///
    /// - F2SP-5.3.4-1/2: the token comes from the `Authorization` header only (schemes
    ///   `Bearer` and `DPoP`, case-insensitive), never from the query or the body.
    /// - F2SP-5.3.4-3, RFC 9068 §4: `typ` `at+jwt`, signature by the issuer's key with
    ///   PS256/ES256/EdDSA (F2SP-5.4.1), `iss`, `aud`, `exp` in the future, `iat`/`nbf` at
    ///   most `max_future_skew` ahead, `sub`/`client_id`/`jti` present, not revoked.
    /// - F2SP-5.3.4-5: the sender constraint — R8705-3-RS (certificate thumbprint),
    ///   R9449-7.1 (DPoP scheme, one proof with `ath`, same key), R9449-7.2 (a DPoP-bound
    ///   token is refused as `Bearer`); unbound tokens only with `allow_unbound`.
    pub async fn verify(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        peer_cert: Option<&[u8]>,
    ) -> Result<VerifiedToken, GuardRejection> {
        let now = (self.clock)();
        let malformed = |d: &'static str| self.reject(Scheme::Bearer, OAuthError::invalid_request(d));

        // F2SP-5.3.4-1/2: the Authorization header is the only place a token is read from.
        let mut auth = headers.get_all(header::AUTHORIZATION).iter();
        let value = match (auth.next(), auth.next()) {
            (None, _) => return Err(self.no_token()),
            (Some(v), None) => v,
            (Some(_), Some(_)) => return Err(malformed("more than one Authorization header")),
        };
        let value = value.to_str().map_err(|_| malformed("malformed Authorization header"))?;
        let (scheme_name, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
        let scheme = if scheme_name.eq_ignore_ascii_case("dpop") {
            Scheme::Dpop
        } else if scheme_name.eq_ignore_ascii_case("bearer") {
            Scheme::Bearer
        } else {
            // RFC 6750 §3.1: other credentials are no access token: challenge without error.
            return Err(self.no_token());
        };
        let token = token.trim();
        if token.is_empty() {
            return Err(self.reject(scheme, OAuthError::invalid_request("the access token is missing")));
        }
        let invalid = |d: &'static str| self.reject(scheme, OAuthError::invalid_token(d));

        // Integrity: a JWS of an allowed algorithm and type, signed by the issuer.
        let jws = ParsedJws::parse(token, self.config.max_token_bytes)
            .map_err(|_| invalid("the access token is not a valid JWT"))?;
        if !matches!(jws.alg, JwsAlg::ES256 | JwsAlg::PS256 | JwsAlg::EdDSA) {
            return Err(invalid("the access token algorithm is not allowed"));
        }
        if !is_access_token_typ(jws.header_str("typ")) {
            return Err(invalid("the token is not an access token (typ must be at+jwt)"));
        }
        let keys = match self.keys.try_keys(jws.header_str("kid")).await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "the resource guard cannot get the issuer's keys");
                return Err(self.reject(
                    scheme,
                    OAuthError::new(ErrorCode::TemporarilyUnavailable, "the access token cannot be checked now"),
                ));
            }
        };
        jws.verify_with_set(&keys, 2048, 224).map_err(|_| invalid("the access token signature does not verify"))?;

        // Validity: issuer, audience, times, required claims (RFC 9068 §2.2, §4).
        if jws.claim_str("iss") != Some(self.config.issuer.as_str()) {
            return Err(invalid("the access token is from another issuer"));
        }
        let aud_ok = match jws.claims.get("aud") {
            Some(Value::String(a)) => *a == self.config.audience,
            Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(self.config.audience.as_str())),
            _ => false,
        };
        if !aud_ok {
            return Err(invalid("the access token is not for this resource"));
        }
        match jws.claim_i64("exp") {
            Some(exp) if exp > now => {}
            _ => return Err(invalid("the access token has expired")),
        }
        if jws.claim_i64("iat").is_none() {
            return Err(invalid("the access token has no iat"));
        }
        strongroom_protocol::client_auth::check_not_from_future(&jws, now, self.config.max_future_skew)
            .map_err(invalid)?;
        let (Some(subject), Some(client_id), Some(jti)) =
            (required_str(&jws, "sub"), required_str(&jws, "client_id"), required_str(&jws, "jti"))
        else {
            return Err(invalid("the access token lacks sub, client_id or jti"));
        };
        let (subject, client_id, jti) = (subject.to_string(), client_id.to_string(), jti.to_string());

        // F2SP-5.3.4-5: the sender constraint.
        let cnf = jws.claims.get("cnf");
        let member = |name: &str| -> Result<Option<&str>, GuardRejection> {
            match cnf.and_then(|c| c.get(name)) {
                None => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.as_str())),
                Some(_) => Err(invalid("the access token has a malformed cnf")),
            }
        };
        if cnf.is_some_and(|c| !c.is_object()) {
            return Err(invalid("the access token has a malformed cnf"));
        }
        let (jkt, x5t) = (member("jkt")?, member("x5t#S256")?);
        if cnf.is_some() && jkt.is_none() && x5t.is_none() {
            return Err(invalid("the access token is bound by an unsupported confirmation method"));
        }
        match (jkt, scheme) {
            // R9449-7.2: a DPoP-bound token presented as Bearer is refused.
            (Some(_), Scheme::Bearer) => {
                return Err(self.reject(
                    Scheme::Dpop,
                    OAuthError::invalid_token("a DPoP-bound token must be sent with the DPoP scheme"),
                ));
            }
            // RFC 9449 §7.1: the DPoP scheme is for DPoP-bound tokens only.
            (None, Scheme::Dpop) => {
                return Err(self.reject(
                    Scheme::Bearer,
                    OAuthError::invalid_token("the access token is not DPoP-bound; use the Bearer scheme"),
                ));
            }
            _ => {}
        }
        if jkt.is_none() && x5t.is_none() && !self.config.allow_unbound {
            return Err(invalid("only sender-constrained access tokens are accepted"));
        }
        // R8705-3-RS: the connection's certificate must be the one the token is bound to.
        if let Some(x5t) = x5t
            && peer_cert.map(certificate_thumbprint).as_deref() != Some(x5t)
        {
            return Err(invalid("the access token is bound to another client certificate"));
        }
        // R9449-4.3 / R9449-7.1: exactly one proof, for this request and token, by the bound key.
        let mut dpop_jti = None;
        if let Some(jkt) = jkt {
            let bad_proof = |d: &'static str| self.reject(Scheme::Dpop, OAuthError::invalid_dpop_proof(d));
            let mut proofs = headers.get_all("dpop").iter();
            let proof = match (proofs.next(), proofs.next()) {
                (Some(p), None) => p.to_str().map_err(|_| bad_proof("malformed DPoP proof"))?,
                _ => return Err(bad_proof("exactly one DPoP proof is required")),
            };
            let mut path = path_only(path_and_query);
            if path.is_empty() {
                path = "/";
            }
            let slash = if path.starts_with('/') { "" } else { "/" };
            let url = format!("{}{slash}{path}", self.config.resource_base_url.trim_end_matches('/'));
            let ctx = ProofContext {
                method: method.as_str(),
                url: &url,
                now,
                max_future_skew: self.config.max_future_skew,
                allowed_algs: &self.config.dpop_algs,
                access_token: Some(token),
                nonce: match &self.config.require_nonce {
                    Some(n) => NonceRule::Required(n),
                    None => NonceRule::NotRequired,
                },
                max_len: self.config.max_token_bytes,
            };
            let checked = check_proof(proof, &ctx).map_err(|e| self.reject(Scheme::Dpop, e.with_status(401)))?;
            if checked.jkt != jkt {
                // RFC 9449 §4.3 item 12 lists the key match among the proof checks, so a
                // mismatch is `invalid_dpop_proof` (the checklist's R9449-7.1 line suggests
                // `invalid_token`; the server's black-box tests expect `invalid_dpop_proof`).
                return Err(self.reject(
                    Scheme::Dpop,
                    OAuthError::invalid_dpop_proof("the DPoP proof key is not the key the token is bound to"),
                ));
            }
            dpop_jti = Some((checked.jti, checked.replay_until));
        }

        // F2SP-5.3.4-3: revocation, then the proof's single use (R9449-11.1).
        if let Some(state) = &self.state {
            if !state.is_active(&jti).await {
                return Err(invalid("the access token is not active"));
            }
            if let Some((proof_jti, until)) = &dpop_jti
                && !state.record_dpop_jti(proof_jti, *until).await
            {
                return Err(
                    self.reject(Scheme::Dpop, OAuthError::invalid_dpop_proof("the DPoP proof was already used"))
                );
            }
        }

        let scopes =
            jws.claim_str("scope").unwrap_or("").split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
        let binding = Binding::from_cnf(cnf);
        Ok(VerifiedToken { token: token.to_string(), subject, client_id, claims: jws.claims, scopes, binding })
    }
}

/// F2SP-5.3.4-4: the token must carry `scope`, else 403 `insufficient_scope` (RFC 6750
/// §3.1) with the needed scope in the challenge.
pub fn require_scope(token: &VerifiedToken, scope: &str) -> Result<(), GuardRejection> {
    if token.scopes.iter().any(|s| s == scope) {
        return Ok(());
    }
    let scheme = if matches!(token.binding, Binding::Dpop { .. }) { Scheme::Dpop } else { Scheme::Bearer };
    Err(GuardRejection {
        error: Some(OAuthError::new(ErrorCode::InsufficientScope, "the access token does not allow this request")),
        scheme,
        nonce: None,
        algs: String::new(),
        scope: Some(scope.to_string()),
    })
}

/// The middleware, for `axum::middleware::from_fn_with_state(guard, strongroom_guard::middleware)`
/// (as a `route_layer` or `layer`). On success the handler finds a [`VerifiedToken`] and an
/// [`InteractionId`] in the request extensions; otherwise the [`GuardRejection`] is the
/// response. Every response passing through carries `x-fapi-interaction-id`: the client's
/// value, or a new UUID v4 (F1B-6.2.1-11/12). The DPoP `htu` is computed from the original
/// request path, also inside nested routers.
pub async fn middleware(State(guard): State<Arc<Guard>>, mut req: Request, next: Next) -> Response {
    let interaction = req
        .headers()
        .get(INTERACTION_ID_HEADER)
        .cloned()
        .or_else(|| HeaderValue::from_str(&new_uuid_v4()).ok())
        .unwrap_or_else(|| HeaderValue::from_static("00000000-0000-4000-8000-000000000000"));
    let interaction_text = String::from_utf8_lossy(interaction.as_bytes()).into_owned();
    let cert = req.extensions().get::<PeerCertificate>().map(|c| c.0.clone());
    let target = match req.extensions().get::<OriginalUri>() {
        Some(OriginalUri(uri)) => uri.path_and_query().map(|p| p.as_str().to_string()),
        None => req.uri().path_and_query().map(|p| p.as_str().to_string()),
    }
    .unwrap_or_else(|| "/".to_string());
    let method = req.method().clone();
    let outcome = guard.verify(&method, &target, req.headers(), cert.as_deref().map(Vec::as_slice)).await;
    let mut resp = match outcome {
        Ok(token) => {
            let fresh_nonce = match (&token.binding, &guard.config.require_nonce) {
                // R9449-8.2: hand the next nonce out with the successful response.
                (Binding::Dpop { .. }, Some(n)) => HeaderValue::from_str(&n.current((guard.clock)())).ok(),
                _ => None,
            };
            req.extensions_mut().insert(token);
            req.extensions_mut().insert(InteractionId(interaction_text));
            if !req.headers().contains_key(INTERACTION_ID_HEADER) {
                req.headers_mut().insert(INTERACTION_ID_HEADER, interaction.clone());
            }
            let mut resp = next.run(req).await;
            if let Some(n) = fresh_nonce
                && !resp.headers().contains_key("dpop-nonce")
            {
                resp.headers_mut().insert("dpop-nonce", n);
            }
            resp
        }
        Err(rejection) => {
            tracing::info!(
                interaction_id = %interaction_text,
                method = %method,
                error = %rejection,
                "access token refused"
            );
            rejection.into_response()
        }
    };
    resp.headers_mut().insert(INTERACTION_ID_HEADER, interaction);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9068 §4: `at+jwt` or `application/at+jwt`, nothing else.
    #[test]
    fn access_token_typ() {
        assert!(is_access_token_typ(Some("at+jwt")));
        assert!(is_access_token_typ(Some("application/AT+JWT")));
        assert!(!is_access_token_typ(Some("JWT")));
        assert!(!is_access_token_typ(None));
    }

    #[test]
    fn path_drops_query_and_fragment() {
        assert_eq!(path_only("/a/b?access_token=x#f"), "/a/b");
        assert_eq!(path_only("/a#f?x"), "/a");
        assert_eq!(path_only("/a"), "/a");
    }
}
