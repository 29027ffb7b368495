//! Client authentication for every client endpoint: decode the credentials, load the
//! client, and apply the rules of `strongroom_protocol::client_auth` and `::mtls`.

use super::{AppRef, ErrorResponse, HttpResult, Params};
use crate::state::{Listener, now};
use crate::tls::ConnectionInfo;
use axum::http::{HeaderMap, header};
use rustls::pki_types::CertificateDer;
use std::sync::Arc;
use strongroom_protocol::client::Client;
use strongroom_protocol::client_auth::{
    AssertionContext, AuthFields, PresentedCredentials, check_client_assertion, check_method_matches,
    claimed_client_id, presented_credentials,
};
use strongroom_protocol::discovery::paths;
use strongroom_protocol::jose::{JoseError, ParsedJws, sha256_b64url};
use strongroom_protocol::mtls::{certificate_thumbprint, self_signed_matches, tls_client_auth_matches};
use strongroom_protocol::policy::AuthMethod;
use strongroom_protocol::{ErrorCode, OAuthError};
use subtle::ConstantTimeEq;

/// A client that proved who it is on this request.
pub struct AuthenticatedClient {
    /// The client.
    pub client: Arc<Client>,
    /// `x5t#S256` of the certificate on this connection, if any (for mTLS binding).
    pub cert_thumbprint: Option<String>,
}

/// The leaf certificate of this connection (or from a trusted proxy).
pub fn leaf_certificate(conn: &ConnectionInfo) -> Option<&CertificateDer<'static>> {
    conn.client_cert.as_ref().and_then(|c| c.leaf())
}

/// Authenticates the client of a request to `path` (RFC 6749 §2.3, RFC 7523, RFC 8705).
/// Failures are `invalid_client` with 401, and a `Basic` challenge when the client used
/// the Authorization header (RFC 6749 §5.2).
pub async fn authenticate(
    state: &AppRef,
    form: &Params,
    headers: &HeaderMap,
    conn: &ConnectionInfo,
    listener: Listener,
    path: &str,
) -> HttpResult<AuthenticatedClient> {
    let fields = AuthFields {
        client_id: form.get("client_id").map(String::as_str),
        client_secret: form.get("client_secret").map(String::as_str),
        client_assertion: form.get("client_assertion").map(String::as_str),
        client_assertion_type: form.get("client_assertion_type").map(String::as_str),
        authorization: headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()),
    };
    // RFC 6749 §5.2: a client that tried the Authorization header gets 401 with a challenge,
    // also when the header itself could not be used (malformed, or contradicted by client_id).
    let tried_basic =
        fields.authorization.and_then(|h| h.get(..6)).is_some_and(|scheme| scheme.eq_ignore_ascii_case("basic "));
    let with_challenge = |resp: ErrorResponse, basic: bool| -> ErrorResponse {
        if basic && resp.error.code == ErrorCode::InvalidClient {
            resp.with_challenge("Basic realm=\"strongroom\"".into())
        } else {
            resp
        }
    };
    let creds = presented_credentials(&fields).map_err(|e| with_challenge(e.into(), tried_basic))?;
    let challenge = |e: OAuthError| -> ErrorResponse { with_challenge(e.into(), creds.used_authorization_header()) };
    let assertion = match &creds {
        PresentedCredentials::Assertion { assertion, .. } => Some(
            ParsedJws::parse(assertion, state.config.limits.max_jwt_bytes)
                .map_err(|_| OAuthError::invalid_client("the client assertion is not an acceptable JWT"))?,
        ),
        _ => None,
    };
    let client_id = claimed_client_id(&creds, assertion.as_ref()).map_err(challenge)?;
    let client =
        state.client(&client_id).await?.ok_or_else(|| challenge(OAuthError::invalid_client("unknown client")))?;
    check_method_matches(&creds, &client).map_err(challenge)?;
    let leaf = leaf_certificate(conn);
    let now = now();
    match client.auth_method {
        AuthMethod::PrivateKeyJwt => {
            let jws = assertion.as_ref().ok_or_else(|| challenge(OAuthError::invalid_client("assertion missing")))?;
            verify_client_signature(state, &client, jws, now).await.map_err(challenge)?;
            let token_eps = state.both_urls(paths::TOKEN);
            let receiving = state.both_urls(path);
            let _ = listener;
            let ctx = AssertionContext {
                issuer: &state.endpoints.issuer,
                token_endpoints: &token_eps,
                receiving_endpoints: &receiving,
                now,
            };
            let replay = check_client_assertion(jws, &client, &ctx).map_err(challenge)?;
            // OIDC-9-jti: single use, atomically, until the assertion would expire anyway.
            let namespace = format!("assertion:{}", client.client_id);
            if !state.store.record_jti(&namespace, &replay.jti, replay.expires_at).await? {
                return Err(challenge(OAuthError::invalid_client("the client assertion was already used")));
            }
        }
        AuthMethod::TlsClientAuth => {
            let chain = conn.client_cert.as_ref().map(|c| c.0.as_slice()).unwrap_or(&[]);
            let identity = client
                .tls_identity
                .as_ref()
                .ok_or_else(|| challenge(OAuthError::invalid_client("no certificate identity registered")))?;
            if !tls_client_auth_matches(chain, identity, state.client_trust.as_ref(), now) {
                return Err(challenge(OAuthError::invalid_client(
                    "the client certificate is missing, untrusted or not this client's",
                )));
            }
        }
        AuthMethod::SelfSignedTlsClientAuth => {
            let leaf = leaf.ok_or_else(|| challenge(OAuthError::invalid_client("a client certificate is required")))?;
            let jwks = client_keys(state, &client, false, now).await.map_err(challenge)?;
            if !self_signed_matches(leaf.as_ref(), &jwks) {
                let refreshed = client_keys(state, &client, true, now).await.map_err(challenge)?;
                if !self_signed_matches(leaf.as_ref(), &refreshed) {
                    return Err(challenge(OAuthError::invalid_client(
                        "the client certificate is not registered for this client",
                    )));
                }
            }
        }
        AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {
            let PresentedCredentials::Secret { secret, .. } = &creds else {
                return Err(challenge(OAuthError::invalid_client("client secret missing")));
            };
            let stored = client.metadata.client_secret_hash.as_deref().unwrap_or("");
            let given = sha256_b64url(secret.as_bytes());
            if !bool::from(given.as_bytes().ct_eq(stored.as_bytes())) || stored.is_empty() {
                return Err(challenge(OAuthError::invalid_client("client authentication failed")));
            }
        }
    }
    Ok(AuthenticatedClient { client, cert_thumbprint: leaf.map(|c| certificate_thumbprint(c.as_ref())) })
}

/// The client's public keys: inline `jwks`, or its `jwks_uri` through the guarded fetcher.
pub async fn client_keys(
    state: &crate::state::AppState,
    client: &Client,
    force: bool,
    now: i64,
) -> Result<jsonwebtoken::jwk::JwkSet, OAuthError> {
    if let Some(set) = &client.jwks {
        return Ok(set.clone());
    }
    let uri =
        client.metadata.jwks_uri.as_deref().ok_or_else(|| OAuthError::invalid_client("the client has no keys"))?;
    state.jwks_fetcher.get(uri, force, now).await.map_err(|e| {
        tracing::warn!(client_id = %client.client_id, error = %e, "client jwks_uri unusable");
        OAuthError::invalid_client("the client's keys could not be obtained")
    })
}

/// Verifies a JWS the client signed (assertion or request object) with its keys, refetching
/// a `jwks_uri` once when no key fits (rotation).
pub async fn verify_client_signature(
    state: &crate::state::AppState,
    client: &Client,
    jws: &ParsedJws,
    now: i64,
) -> Result<(), OAuthError> {
    let policy = client.policy();
    let refuse = || OAuthError::invalid_client("the signature does not verify with the client's keys");
    let keys = client_keys(state, client, false, now).await?;
    match jws.verify_with_set(&keys, policy.min_rsa_bits, policy.min_ec_bits) {
        Ok(()) => Ok(()),
        Err(JoseError::NoKey) if client.jwks.is_none() => {
            let keys = client_keys(state, client, true, now).await?;
            jws.verify_with_set(&keys, policy.min_rsa_bits, policy.min_ec_bits).map_err(|_| refuse())
        }
        Err(_) => Err(refuse()),
    }
}

/// A client endpoint's request: the form, decoded once, and the client it authenticated
/// (the receiving endpoint is the request path, for assertion audiences).
pub struct ClientRequest {
    /// The form parameters.
    pub form: super::Params,
    /// The authenticated client.
    pub auth: AuthenticatedClient,
    /// The request headers.
    pub headers: HeaderMap,
    /// The listener the request arrived on.
    pub listener: Listener,
}

impl axum::extract::FromRequest<AppRef> for ClientRequest {
    type Rejection = ErrorResponse;

    async fn from_request(req: axum::extract::Request, state: &AppRef) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let conn = parts.extensions.get::<ConnectionInfo>().cloned().ok_or_else(|| {
            tracing::error!("request without connection information");
            ErrorResponse::from(OAuthError::server_error())
        })?;
        let listener = parts.extensions.get::<Listener>().copied().unwrap_or(Listener::Public);
        let bytes = axum::body::to_bytes(body, state.config.limits.max_body_bytes).await.map_err(|_| {
            let mut e = ErrorResponse::from(OAuthError::invalid_request("request body is too large"));
            e.error.status = 413;
            e
        })?;
        let form = super::parse_form(&parts.headers, &bytes)?;
        let auth = authenticate(state, &form, &parts.headers, &conn, listener, parts.uri.path()).await?;
        Ok(ClientRequest { form, auth, headers: parts.headers, listener })
    }
}
