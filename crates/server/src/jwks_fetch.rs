//! Fetching a client's `jwks_uri` (also used for remote request objects later): https
//! only, with a timeout, a size cap, a cache, a refetch on unknown `kid`, and a guard
//! against requests to internal addresses (SSRF).

use jsonwebtoken::jwk::JwkSet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// How long a fetched key set is reused.
const CACHE_SECS: i64 = 300;
/// Smallest interval between two fetches of one URL (refetch on unknown `kid`).
const MIN_REFETCH_SECS: i64 = 10;
/// Largest key set accepted.
const MAX_BYTES: usize = 64 * 1024;

/// Why a key set could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not https or points at an internal address.
    #[error("jwks_uri is not allowed: {0}")]
    Forbidden(&'static str),
    /// Network or HTTP failure.
    #[error("jwks_uri could not be fetched")]
    Unreachable,
    /// Not a JWK Set, or too large.
    #[error("jwks_uri did not return a usable JWK Set")]
    Invalid,
}

/// Fetches and caches client key sets, and fetches client-hosted request objects.
pub struct JwksFetcher {
    http: reqwest::Client,
    cache: Mutex<HashMap<String, (i64, JwkSet)>>,
    allow_private_addresses: bool,
    extra_roots: Vec<reqwest::Certificate>,
}

impl JwksFetcher {
    /// A fetcher; `allow_private_addresses` is for tests and development only;
    /// `extra_roots` are trusted beside the system's (F2SP-5.2.1-5: server certificates of
    /// outbound connections are always validated).
    pub fn new(allow_private_addresses: bool, extra_roots: Vec<reqwest::Certificate>) -> anyhow::Result<JwksFetcher> {
        let http = Self::builder(&extra_roots).build()?;
        Ok(JwksFetcher { http, cache: Mutex::new(HashMap::new()), allow_private_addresses, extra_roots })
    }

    fn builder(extra_roots: &[reqwest::Certificate]) -> reqwest::ClientBuilder {
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true);
        for root in extra_roots {
            b = b.add_root_certificate(root.clone());
        }
        b
    }

    /// The key set at `uri`; `force` refetches (unknown `kid`) unless fetched very recently.
    pub async fn get(&self, uri: &str, force: bool, now: i64) -> Result<JwkSet, FetchError> {
        if let Ok(cache) = self.cache.lock()
            && let Some((at, set)) = cache.get(uri)
        {
            let fresh = now - at < CACHE_SECS;
            let recent = now - at < MIN_REFETCH_SECS;
            if (fresh && !force) || recent {
                return Ok(set.clone());
            }
        }
        let set = self.fetch(uri).await?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(uri.to_string(), (now, set.clone()));
        }
        Ok(set)
    }

    async fn fetch(&self, uri: &str) -> Result<JwkSet, FetchError> {
        let body = self.fetch_bytes(uri).await?;
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|_| FetchError::Invalid)?;
        let keys = value.get("keys").and_then(|k| k.as_array()).ok_or(FetchError::Invalid)?;
        if keys.iter().any(|k| k.as_object().is_none_or(strongroom_protocol::jose::is_private_jwk)) {
            return Err(FetchError::Invalid);
        }
        serde_json::from_value(value).map_err(|_| FetchError::Invalid)
    }

    /// A client-hosted request object (RFC 9101 §5.2): fetched fresh every time, with the
    /// same guard as key sets.
    pub async fn request_object(&self, uri: &str) -> Result<String, FetchError> {
        let body = self.fetch_bytes(uri).await?;
        String::from_utf8(body).map(|s| s.trim().to_string()).map_err(|_| FetchError::Invalid)
    }

    async fn fetch_bytes(&self, uri: &str) -> Result<Vec<u8>, FetchError> {
        let url = url::Url::parse(uri).map_err(|_| FetchError::Forbidden("not a URL"))?;
        if url.scheme() != "https" {
            return Err(FetchError::Forbidden("not https"));
        }
        let host = url.host_str().ok_or(FetchError::Forbidden("no host"))?.to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<IpAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| FetchError::Unreachable)?
            .map(|a| a.ip())
            .collect();
        if addrs.is_empty() {
            return Err(FetchError::Unreachable);
        }
        if !self.allow_private_addresses && addrs.iter().any(|ip| is_internal(*ip)) {
            return Err(FetchError::Forbidden("internal address"));
        }
        // Pin the connection to the checked addresses, so a second DNS answer cannot
        // point it elsewhere.
        let pinned: Vec<std::net::SocketAddr> = addrs.iter().map(|ip| std::net::SocketAddr::new(*ip, port)).collect();
        let client = Self::builder(&self.extra_roots)
            .resolve_to_addrs(&host, &pinned)
            .build()
            .unwrap_or_else(|_| self.http.clone());
        let mut resp = client.get(url).send().await.map_err(|_| FetchError::Unreachable)?;
        if !resp.status().is_success() {
            return Err(FetchError::Unreachable);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|_| FetchError::Unreachable)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BYTES {
                return Err(FetchError::Invalid);
            }
        }
        Ok(body)
    }
}

/// Loopback, private, link-local, unique-local, CGNAT, multicast and unspecified
/// addresses are never fetched from.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn non_https_and_internal_uris_are_refused() {
        let f = JwksFetcher::new(false, Vec::new()).unwrap();
        assert!(matches!(f.get("http://example.com/jwks", false, 0).await, Err(FetchError::Forbidden(_))));
        assert!(matches!(f.get("https://127.0.0.1:9/jwks", false, 0).await, Err(FetchError::Forbidden(_))));
    }
}
