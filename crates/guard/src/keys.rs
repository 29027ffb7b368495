//! Where the issuer's public keys come from: the host's own key ring ([`KeySource`]) or
//! the issuer's `jwks_uri` ([`RemoteJwks`]).

use async_trait::async_trait;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde_json::Value;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why the guard could not get what it needed from its host or the issuer.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// The issuer's keys could not be obtained (network, HTTP status, malformed JWKS).
    #[error("the issuer's keys are unavailable: {0}")]
    KeysUnavailable(String),
}

/// The issuer's public keys.
///
/// Implement [`KeySource::keys`]; a source that can say *why* keys are missing also
/// overrides [`KeySource::try_keys`], which is what the guard calls.
#[async_trait]
pub trait KeySource: Send + Sync {
    /// The current key set, `None` when it cannot be had. `kid` is the token header's key
    /// id, so a caching source can refetch when it does not know that key.
    async fn keys(&self, kid: Option<&str>) -> Option<JwkSet>;

    /// The current key set or why it cannot be had. Defaults to [`KeySource::keys`].
    async fn try_keys(&self, kid: Option<&str>) -> Result<JwkSet, GuardError> {
        self.keys(kid).await.ok_or_else(|| GuardError::KeysUnavailable("the key source has no keys".into()))
    }
}

#[derive(Default)]
struct Cached {
    set: Option<JwkSet>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// The issuer's keys fetched from its `jwks_uri` with reqwest, cached.
///
/// The cached set is used while it is younger than the refresh interval (5 minutes by
/// default) and knows the token's `kid`. An unknown `kid` or a stale set triggers a
/// refetch, at most once per minimum refetch interval (30 s by default), so a flood of
/// tokens with invented `kid`s cannot turn the guard into a load generator against the
/// issuer. When a refetch fails the last good set keeps serving.
pub struct RemoteJwks {
    jwks_uri: String,
    http: reqwest::Client,
    refresh_after: Duration,
    min_refetch: Duration,
    max_bytes: usize,
    cache: Mutex<Cached>,
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks").field("jwks_uri", &self.jwks_uri).finish_non_exhaustive()
    }
}

impl RemoteJwks {
    /// A source for `jwks_uri` with its own HTTP client (10 s timeout).
    pub fn new(jwks_uri: impl Into<String>) -> Result<RemoteJwks, GuardError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| GuardError::KeysUnavailable(format!("cannot build an HTTP client: {e}")))?;
        Ok(RemoteJwks::with_client(jwks_uri, http))
    }

    /// A source for `jwks_uri` using the host's HTTP client (for custom roots, proxies).
    pub fn with_client(jwks_uri: impl Into<String>, http: reqwest::Client) -> RemoteJwks {
        RemoteJwks {
            jwks_uri: jwks_uri.into(),
            http,
            refresh_after: Duration::from_secs(300),
            min_refetch: Duration::from_secs(30),
            max_bytes: 256 * 1024,
            cache: Mutex::new(Cached::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// How long a fetched set is used before it is fetched again (default 5 minutes).
    pub fn refresh_after(mut self, d: Duration) -> RemoteJwks {
        self.refresh_after = d;
        self
    }

    /// The least time between two fetches, whatever triggers them (default 30 s).
    pub fn min_refetch_interval(mut self, d: Duration) -> RemoteJwks {
        self.min_refetch = d;
        self
    }

    /// The cached set, if fresh and knowing `kid`; else the cached set (maybe stale) and
    /// whether a fetch is allowed now.
    fn lookup(&self, kid: Option<&str>) -> Result<JwkSet, (Option<JwkSet>, bool)> {
        let c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let fresh = c.fetched_at.is_some_and(|t| now.duration_since(t) < self.refresh_after);
        if let Some(set) = &c.set
            && fresh
            && kid.is_none_or(|k| set.find(k).is_some())
        {
            return Ok(set.clone());
        }
        let may_fetch = c.last_attempt.is_none_or(|t| now.duration_since(t) >= self.min_refetch);
        Err((c.set.clone(), may_fetch))
    }

    async fn fetch(&self) -> Result<JwkSet, GuardError> {
        let unavailable = |d: String| GuardError::KeysUnavailable(d);
        let mut resp = self.http.get(&self.jwks_uri).send().await.map_err(|e| unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("jwks_uri answered {}", resp.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| unavailable(e.to_string()))? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(unavailable("the JWKS is too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        parse_jwks(&body).ok_or_else(|| unavailable("the JWKS is not a JSON key set".into()))
    }
}

/// A JWKS document; keys this verifier cannot represent (a non-string `kid`, …) are skipped
/// rather than failing the whole set.
fn parse_jwks(body: &[u8]) -> Option<JwkSet> {
    let doc: Value = serde_json::from_slice(body).ok()?;
    let keys = doc.get("keys")?.as_array()?;
    let keys = keys.iter().filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok()).collect();
    Some(JwkSet { keys })
}

#[async_trait]
impl KeySource for RemoteJwks {
    async fn keys(&self, kid: Option<&str>) -> Option<JwkSet> {
        self.try_keys(kid).await.ok()
    }

    async fn try_keys(&self, kid: Option<&str>) -> Result<JwkSet, GuardError> {
        if let Ok(set) = self.lookup(kid) {
            return Ok(set);
        }
        // One fetch at a time; whoever waited re-checks what the previous fetch brought.
        let _single_flight = self.fetching.lock().await;
        let (cached, may_fetch) = match self.lookup(kid) {
            Ok(set) => return Ok(set),
            Err(x) => x,
        };
        if !may_fetch {
            return cached.ok_or_else(|| GuardError::KeysUnavailable("the last fetch failed; retrying later".into()));
        }
        {
            let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            c.last_attempt = Some(Instant::now());
        }
        match self.fetch().await {
            Ok(set) => {
                let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                c.set = Some(set.clone());
                c.fetched_at = Some(Instant::now());
                Ok(set)
            }
            Err(e) => {
                tracing::warn!(jwks_uri = %self.jwks_uri, error = %e, "fetching the issuer's JWKS failed");
                cached.ok_or(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_types_are_skipped() {
        let body = br#"{"keys":[{"kty":"EC","kid":42},{"kty":"EC","crv":"P-256","kid":"a",
            "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        let set = parse_jwks(body).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert!(parse_jwks(b"[]").is_none());
        assert!(parse_jwks(b"not json").is_none());
    }
}
