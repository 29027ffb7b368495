//! Fetching a client's `jwks_uri` (also used for remote request objects later): https
//! only, with a timeout, a size cap, a cache, a refetch on unknown `kid`, and a guard
//! against requests to internal addresses (SSRF).

use crate::config::OutboundConfig;
use jsonwebtoken::jwk::JwkSet;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strongroom_protocol::outbound::is_internal;

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
    via_proxy: bool,
}

impl JwksFetcher {
    /// A fetcher with the `[outbound]` settings; `extra_roots` are trusted beside the
    /// system's (F2SP-5.2.1-5: server certificates of outbound connections are always
    /// validated).
    pub fn new(config: &OutboundConfig, extra_roots: Vec<reqwest::Certificate>) -> anyhow::Result<JwksFetcher> {
        let allow = config.allow_private_addresses;
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            // Proxy environment variables would route fetches past the address check.
            .no_proxy();
        for root in extra_roots {
            b = b.add_root_certificate(root);
        }
        b = match &config.proxy {
            // The resolver then only finds the proxy, which the operator chose; targets
            // are vetted before each request instead.
            Some(proxy) => b.proxy(reqwest::Proxy::all(proxy.as_str())?),
            None => b.dns_resolver(Arc::new(VettingResolver { allow_private_addresses: allow })),
        };
        Ok(JwksFetcher {
            http: b.build()?,
            cache: Mutex::new(HashMap::new()),
            allow_private_addresses: allow,
            via_proxy: config.proxy.is_some(),
        })
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
        match url.host().ok_or(FetchError::Forbidden("no host"))? {
            // An address literal is connected to as written, without a lookup.
            url::Host::Ipv4(ip) => self.vet(&[IpAddr::V4(ip)])?,
            url::Host::Ipv6(ip) => self.vet(&[IpAddr::V6(ip)])?,
            // Without a proxy the resolver vets the very addresses connected to.
            url::Host::Domain(name) if self.via_proxy => {
                vetted_addresses(name, self.allow_private_addresses).await?;
            }
            url::Host::Domain(_) => {}
        }
        let mut resp =
            self.http.get(url).send().await.map_err(|e| refusal_in(&e).unwrap_or(FetchError::Unreachable))?;
        // Redirects are not followed (Policy::none): a 3xx is a failure like any non-2xx.
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

    fn vet(&self, addrs: &[IpAddr]) -> Result<(), FetchError> {
        vet(addrs, self.allow_private_addresses)
    }
}

/// Refuses the lot when any address is internal (a name with one internal answer is not
/// trusted with the others either).
fn vet(addrs: &[IpAddr], allow_private_addresses: bool) -> Result<(), FetchError> {
    if !allow_private_addresses && addrs.iter().any(|ip| is_internal(*ip)) {
        return Err(FetchError::Forbidden("internal address"));
    }
    Ok(())
}

/// The addresses of `host`, all of them vetted.
async fn vetted_addresses(host: &str, allow_private_addresses: bool) -> Result<Vec<SocketAddr>, FetchError> {
    let addrs: Vec<SocketAddr> =
        tokio::net::lookup_host((host, 0)).await.map_err(|_| FetchError::Unreachable)?.collect();
    if addrs.is_empty() {
        return Err(FetchError::Unreachable);
    }
    vet(&addrs.iter().map(SocketAddr::ip).collect::<Vec<_>>(), allow_private_addresses)?;
    Ok(addrs)
}

/// The HTTP client's only name resolution: connections go to the addresses checked here,
/// so a second DNS answer (rebinding) cannot redirect them.
struct VettingResolver {
    allow_private_addresses: bool,
}

impl reqwest::dns::Resolve for VettingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private_addresses;
        Box::pin(async move {
            let addrs = vetted_addresses(name.as_str(), allow).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The guard's refusal, when that is what made a request fail.
fn refusal_in(error: &(dyn std::error::Error + 'static)) -> Option<FetchError> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(FetchError::Forbidden(why)) = e.downcast_ref::<FetchError>() {
            return Some(FetchError::Forbidden(why));
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded() -> JwksFetcher {
        JwksFetcher::new(&OutboundConfig::default(), Vec::new()).unwrap()
    }

    #[tokio::test]
    async fn non_https_and_internal_uris_are_refused() {
        let f = guarded();
        for uri in [
            "http://example.com/jwks",
            "https://127.0.0.1:9/jwks",
            "https://[::1]:9/jwks",
            "https://[::ffff:7f00:1]:9/jwks",
            "https://[64:ff9b::a9fe:a9fe]/jwks",
            "https://[2002:a9fe:a9fe::1]/jwks",
            "https://[2001::1]/jwks",
            "https://198.18.0.1/jwks",
            "https://0x7f.1/jwks",
            "https://localhost:9/jwks",
        ] {
            assert!(matches!(f.get(uri, false, 0).await, Err(FetchError::Forbidden(_))), "{uri}");
            assert!(matches!(f.request_object(uri).await, Err(FetchError::Forbidden(_))), "{uri}");
        }
    }

    /// A name is vetted on every fetch, by the resolver the connection uses.
    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_by_the_resolver() {
        let f = guarded();
        let r = f.fetch_bytes("https://localhost:9/jwks").await;
        assert!(matches!(r, Err(FetchError::Forbidden("internal address"))), "{r:?}");
    }

    /// With the guard explicitly off, loopback is connected to (here: nothing listens).
    #[tokio::test]
    async fn the_explicit_override_lets_loopback_through() {
        let config = OutboundConfig { allow_private_addresses: true, proxy: None };
        let f = JwksFetcher::new(&config, Vec::new()).unwrap();
        for uri in ["https://127.0.0.1:9/jwks", "https://[::1]:9/jwks", "https://localhost:9/jwks"] {
            assert!(matches!(f.get(uri, false, 0).await, Err(FetchError::Unreachable)), "{uri}");
        }
    }
}
