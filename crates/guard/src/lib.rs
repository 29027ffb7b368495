//! A reusable resource-server guard: an axum middleware that lets a request through only
//! with a valid Strongroom access token (RFC 9068 JWT) presented in the `Authorization`
//! header and used by the key it is bound to — the client certificate for mTLS-bound
//! tokens (RFC 8705 §3), a DPoP proof with `ath` for DPoP-bound tokens (RFC 9449 §7).
//! The handler receives the token's claims as a [`VerifiedToken`] extension.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use strongroom_protocol::dpop::{NonceIssuer, NonceRule, ProofContext, check_proof};
use strongroom_protocol::jose::{JwsAlg, ParsedJws};
use strongroom_protocol::mtls::certificate_thumbprint;
use strongroom_protocol::tokens::{ACCESS_TOKEN_TYP, Binding};
use strongroom_protocol::{ErrorCode, OAuthError};

/// What the guard accepts.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// The authorization server's issuer identifier.
    pub issuer: String,
    /// This resource's audience value.
    pub audience: String,
    /// External base URL of this API (DPoP `htu` = base + path).
    pub resource_base_url: String,
    /// Algorithms accepted for DPoP proofs.
    pub dpop_algs: Vec<JwsAlg>,
    /// F2SP-5.3.2.1-13: seconds a token's or proof's `iat`/`nbf` may lie in the future.
    pub max_future_skew: i64,
    /// Size limit for tokens and proofs.
    pub max_token_bytes: usize,
    /// R9449-9: demand server nonces in DPoP proofs.
    pub require_nonce: Option<Arc<NonceIssuer>>,
    /// Accept tokens without `cnf` (never for FAPI resources).
    pub allow_unbound: bool,
}

/// The issuer's public keys.
#[async_trait]
pub trait KeySource: Send + Sync {
    /// The current key set (`kid` lets a source refetch on an unknown key).
    async fn keys(&self, kid: Option<&str>) -> Option<JwkSet>;
}

/// Token state the host knows: revocation and DPoP proof replay.
#[async_trait]
pub trait TokenState: Send + Sync {
    /// Whether the token with this `jti` is still active (not revoked).
    async fn is_active(&self, jti: &str) -> bool;
    /// Records a DPoP proof `jti` until `until`; false when it was seen before.
    async fn record_dpop_jti(&self, jti: &str, until: i64) -> bool;
}

/// The TLS client certificate (DER) of the connection; the host inserts it as a request
/// extension.
#[derive(Clone, Debug)]
pub struct PeerCertificate(pub Arc<Vec<u8>>);

/// A token that passed every check, handed to the handler.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    /// The raw token.
    pub token: String,
    /// Its claims.
    pub claims: Map<String, Value>,
    /// `sub`.
    pub subject: String,
    /// `client_id`.
    pub client_id: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Its binding.
    pub binding: Binding,
}

/// A refusal, rendered per RFC 6750 §3 / RFC 9449 §7.1.
#[derive(Debug)]
pub struct GuardRejection {
    error: Option<OAuthError>,
    scheme: &'static str,
    nonce: Option<String>,
    algs: String,
}

impl IntoResponse for GuardRejection {
    fn into_response(self) -> Response {
        let status = match &self.error {
            Some(e) if e.code == ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
            Some(e) if e.code == ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        };
        let mut challenge = self.scheme.to_string();
        let mut parts = Vec::new();
        if let Some(e) = &self.error {
            parts.push(format!("error=\"{}\"", e.code.as_str()));
            parts.push(format!("error_description=\"{}\"", e.description.replace('"', "'")));
        }
        if self.scheme == "DPoP" {
            parts.push(format!("algs=\"{}\"", self.algs));
        }
        if !parts.is_empty() {
            challenge = format!("{challenge} {}", parts.join(", "));
        }
        let body = match &self.error {
            Some(e) => json!({"error": e.code.as_str(), "error_description": e.description}),
            None => json!({"error": "invalid_token", "error_description": "an access token is required"}),
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(n) = self.nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            resp.headers_mut().insert("dpop-nonce", n);
        }
        resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

/// The guard.
pub struct Guard {
    config: GuardConfig,
    keys: Arc<dyn KeySource>,
    state: Option<Arc<dyn TokenState>>,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

fn system_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Guard {
    /// A guard with the system clock.
    pub fn new(config: GuardConfig, keys: Arc<dyn KeySource>, state: Option<Arc<dyn TokenState>>) -> Guard {
        Guard { config, keys, state, clock: Arc::new(system_now) }
    }

    fn reject(&self, scheme: &'static str, error: Option<OAuthError>) -> GuardRejection {
        let nonce = match (&error, &self.config.require_nonce) {
            (Some(e), Some(n)) if e.code == ErrorCode::UseDpopNonce => Some(n.current((self.clock)())),
            _ => None,
        };
        let algs = self.config.dpop_algs.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(" ");
        GuardRejection { error, scheme, nonce, algs }
    }

    /// Checks a request: F2SP-5.3.4-1/2 (header only), F2SP-5.3.4-3 (validity, expiry,
    /// revocation), F2SP-5.3.4-5 / R8705-3-RS / R9449-7.1 / R9449-7.2 (binding).
    pub async fn verify(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        peer_cert: Option<&[u8]>,
    ) -> Result<VerifiedToken, GuardRejection> {
        let now = (self.clock)();
        let mut auth = headers.get_all(header::AUTHORIZATION).iter();
        let (Some(value), None) = (auth.next(), auth.next()) else {
            return Err(self.reject(if self.config.allow_unbound { "Bearer" } else { "DPoP" }, None));
        };
        let value = value
            .to_str()
            .map_err(|_| self.reject("Bearer", Some(OAuthError::invalid_token("malformed Authorization header"))))?;
        let (scheme, token) = value
            .split_once(' ')
            .ok_or_else(|| self.reject("Bearer", Some(OAuthError::invalid_token("malformed Authorization header"))))?;
        let scheme: &'static str = if scheme.eq_ignore_ascii_case("dpop") {
            "DPoP"
        } else if scheme.eq_ignore_ascii_case("bearer") {
            "Bearer"
        } else {
            return Err(self.reject("Bearer", Some(OAuthError::invalid_token("unsupported authorization scheme"))));
        };
        let token = token.trim();
        let invalid = |d: &'static str| self.reject(scheme, Some(OAuthError::invalid_token(d)));
        let jws = ParsedJws::parse(token, self.config.max_token_bytes)
            .map_err(|_| invalid("the access token is not valid"))?;
        if !matches!(jws.alg, JwsAlg::ES256 | JwsAlg::PS256 | JwsAlg::EdDSA)
            || jws.header_str("typ") != Some(ACCESS_TOKEN_TYP)
        {
            return Err(invalid("the access token is not valid"));
        }
        let keys =
            self.keys.keys(jws.header_str("kid")).await.ok_or_else(|| invalid("the issuer's keys are unavailable"))?;
        jws.verify_with_set(&keys, 2048, 224).map_err(|_| invalid("the access token is not valid"))?;
        if jws.claim_str("iss") != Some(self.config.issuer.as_str()) {
            return Err(invalid("the access token is not valid"));
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
        strongroom_protocol::client_auth::check_not_from_future(&jws, now, self.config.max_future_skew)
            .map_err(invalid)?;
        let jti = jws.claim_str("jti").unwrap_or_default().to_string();
        if let Some(state) = &self.state
            && !state.is_active(&jti).await
        {
            return Err(invalid("the access token has been revoked"));
        }
        let binding = Binding::from_cnf(jws.claims.get("cnf"));
        match &binding {
            Binding::Mtls { x5t_s256 } => {
                let presented = peer_cert.map(certificate_thumbprint);
                if presented.as_deref() != Some(x5t_s256.as_str()) {
                    return Err(invalid("the access token is bound to another client certificate"));
                }
            }
            Binding::Dpop { jkt } => {
                if scheme != "DPoP" {
                    return Err(self.reject(
                        "DPoP",
                        Some(OAuthError::invalid_token("a DPoP-bound token must be sent with the DPoP scheme")),
                    ));
                }
                let mut proofs = headers.get_all("dpop").iter();
                let (Some(proof), None) = (proofs.next(), proofs.next()) else {
                    return Err(
                        self.reject("DPoP", Some(OAuthError::invalid_dpop_proof("exactly one DPoP proof is required")))
                    );
                };
                let proof = proof
                    .to_str()
                    .map_err(|_| self.reject("DPoP", Some(OAuthError::invalid_dpop_proof("malformed DPoP proof"))))?;
                let url = format!("{}{}", self.config.resource_base_url, path);
                let nonce = match &self.config.require_nonce {
                    Some(n) => NonceRule::Required(n),
                    None => NonceRule::NotRequired,
                };
                let ctx = ProofContext {
                    method: method.as_str(),
                    url: &url,
                    now,
                    max_future_skew: self.config.max_future_skew,
                    allowed_algs: &self.config.dpop_algs,
                    access_token: Some(token),
                    nonce,
                    max_len: self.config.max_token_bytes,
                };
                let checked = check_proof(proof, &ctx).map_err(|e| self.reject("DPoP", Some(e.with_status(401))))?;
                if checked.jkt != *jkt {
                    return Err(self.reject(
                        "DPoP",
                        Some(OAuthError::invalid_dpop_proof("the DPoP key is not the one the token is bound to")),
                    ));
                }
                if let Some(state) = &self.state
                    && !state.record_dpop_jti(&checked.jti, checked.replay_until).await
                {
                    return Err(
                        self.reject("DPoP", Some(OAuthError::invalid_dpop_proof("the DPoP proof was already used")))
                    );
                }
            }
            Binding::Bearer => {
                if !self.config.allow_unbound {
                    return Err(invalid("only sender-constrained tokens are accepted"));
                }
            }
        }
        let scopes =
            jws.claim_str("scope").unwrap_or("").split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
        Ok(VerifiedToken {
            token: token.to_string(),
            subject: jws.claim_str("sub").unwrap_or_default().to_string(),
            client_id: jws.claim_str("client_id").unwrap_or_default().to_string(),
            claims: jws.claims,
            scopes,
            binding,
        })
    }
}

/// F2SP-5.3.4-4: the token must carry `scope`, else 403 `insufficient_scope`.
pub fn require_scope(token: &VerifiedToken, scope: &str) -> Result<(), GuardRejection> {
    if token.scopes.iter().any(|s| s == scope) {
        return Ok(());
    }
    let scheme = if matches!(token.binding, Binding::Dpop { .. }) { "DPoP" } else { "Bearer" };
    Err(GuardRejection {
        error: Some(OAuthError::new(ErrorCode::InsufficientScope, "the access token does not allow this")),
        scheme,
        nonce: None,
        algs: String::new(),
    })
}

/// The middleware: `axum::middleware::from_fn_with_state(guard, strongroom_guard::middleware)`.
/// On success the handler finds a [`VerifiedToken`] in the request extensions.
pub async fn middleware(State(guard): State<Arc<Guard>>, mut req: Request, next: Next) -> Response {
    let cert = req.extensions().get::<PeerCertificate>().map(|c| c.0.clone());
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match guard.verify(&method, &path, req.headers(), cert.as_deref().map(Vec::as_slice)).await {
        Ok(token) => {
            req.extensions_mut().insert(token);
            next.run(req).await
        }
        Err(rejection) => rejection.into_response(),
    }
}
