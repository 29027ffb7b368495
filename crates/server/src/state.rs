//! Everything a handler needs, shared by both listeners.

use crate::config::Config;
use crate::jwks_fetch::JwksFetcher;
use crate::keys::KeyRing;
use rustls::server::danger::ClientCertVerifier;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use strongroom_protocol::client::{Client, ClientMetadata, validate_client_metadata};
use strongroom_protocol::client_rules::ClientRules;
use strongroom_protocol::discovery::Endpoints;
use strongroom_protocol::dpop::NonceIssuer;
use strongroom_store::{SharedStore, StoreError};

/// Which listener a request arrived on; it decides the URL the request was sent to (for
/// DPoP `htu` and assertion audiences).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The public listener (issuer base URL).
    Public,
    /// The mTLS listener (`mtls_endpoint_aliases`).
    Mtls,
}

/// Shared application state.
pub struct AppState {
    /// Configuration.
    pub config: Config,
    /// Storage.
    pub store: SharedStore,
    /// Signing keys.
    pub keys: KeyRing,
    /// Endpoint URLs.
    pub endpoints: Endpoints,
    /// DPoP nonces.
    pub nonces: Arc<NonceIssuer>,
    /// Verifies `tls_client_auth` chains against the trusted client CAs.
    pub client_trust: Arc<dyn ClientCertVerifier>,
    /// Fetches clients' `jwks_uri`.
    pub jwks_fetcher: JwksFetcher,
    /// Page templates.
    pub pages: crate::pages::Pages,
    /// Enabled profiles and the scope catalogue (from the configuration).
    pub rules: ClientRules,
    /// Validated clients by id, with the metadata they were validated from.
    client_cache: Mutex<HashMap<String, (serde_json::Value, Arc<Client>)>>,
    /// The audit log's sinks.
    pub audit: crate::audit::AuditLog,
}

/// Current Unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl AppState {
    /// Builds the state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        store: SharedStore,
        keys: KeyRing,
        nonce_secret: &[u8],
        client_trust: Arc<dyn ClientCertVerifier>,
        jwks_fetcher: JwksFetcher,
        pages: crate::pages::Pages,
        audit: crate::audit::AuditLog,
    ) -> AppState {
        let endpoints = Endpoints { issuer: config.issuer.clone(), mtls_base: config.listen.mtls_base_url.clone() };
        let nonces = Arc::new(NonceIssuer::new(nonce_secret, config.dpop.nonce_rotation_secs));
        let rules = config.client_rules();
        AppState {
            rules,
            config,
            store,
            keys,
            endpoints,
            nonces,
            client_trust,
            jwks_fetcher,
            pages,
            client_cache: Mutex::new(HashMap::new()),
            audit,
        }
    }

    /// The URL a request to `path` was sent to on a listener.
    pub fn url_on(&self, listener: Listener, path: &str) -> String {
        match listener {
            Listener::Public => self.endpoints.public(path),
            Listener::Mtls => self.endpoints.mtls(path),
        }
    }

    /// Both URLs of a client endpoint (public and mTLS alias).
    pub fn both_urls(&self, path: &str) -> [String; 2] {
        [self.endpoints.public(path), self.endpoints.mtls(path)]
    }

    /// Loads a client. The record is read from the store every time (so a change made on
    /// another node is seen at once); validation is reused while the metadata is unchanged.
    /// A stored client the deployment's rules no longer admit (its profile disabled, a
    /// scope removed from the catalogue) is not usable: it is treated as unknown, with a
    /// warning naming why, until an administrator updates it.
    pub async fn client(&self, client_id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        let Some(record) = self.store.get_client(client_id).await? else {
            if let Ok(mut cache) = self.client_cache.lock() {
                cache.remove(client_id);
            }
            return Ok(None);
        };
        if let Ok(cache) = self.client_cache.lock()
            && let Some((meta, client)) = cache.get(client_id)
            && *meta == record.metadata
        {
            return Ok(Some(client.clone()));
        }
        let metadata: ClientMetadata = serde_json::from_value(record.metadata.clone())
            .map_err(|e| StoreError::Corrupt(format!("client {client_id}: {e}")))?;
        let client = match validate_client_metadata(metadata, client_id.to_string(), &self.rules) {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(client_id, reason = %e, "stored client is not admitted by the current rules");
                return Ok(None);
            }
        };
        let client = Arc::new(client);
        if let Ok(mut cache) = self.client_cache.lock() {
            cache.insert(client_id.to_string(), (record.metadata, client.clone()));
        }
        Ok(Some(client))
    }
}
