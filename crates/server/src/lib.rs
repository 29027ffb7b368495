//! Strongroom's server: the two HTTPS listeners, mTLS, the HTTP handlers, pages, keys and
//! configuration. [`start`] brings a whole server up; the CLI and the black-box tests
//! both use it.
#![forbid(unsafe_code)]

pub mod audit;
pub mod config;
pub mod demo_flow;
pub mod dev;
pub mod http;
pub mod issue;
pub mod jwe;
pub mod jwks_fetch;
pub mod keys;
pub mod logging;
#[cfg(feature = "otel")]
pub mod otel;
pub mod pages;
pub mod pki;
pub mod service;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod trust;

use anyhow::{Context, anyhow};
use config::Config;
use state::AppState;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running server.
pub struct RunningServer {
    /// Where the public listener is bound.
    pub public_addr: SocketAddr,
    /// Where the mTLS listener is bound.
    pub mtls_addr: SocketAddr,
    /// Where the metrics listener is bound, if one is configured.
    pub metrics_addr: Option<SocketAddr>,
    /// Shared state (tests use its store and keys).
    pub state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl RunningServer {
    /// Stops accepting, lets requests in flight finish, and waits for the listeners.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            t.await.map_err(|e| anyhow!("listener task: {e}"))??;
        }
        Ok(())
    }
    /// Waits until both listeners end (after a shutdown signal).
    pub async fn wait(self) -> anyhow::Result<()> {
        for t in self.tasks {
            t.await.map_err(|e| anyhow!("listener task: {e}"))??;
        }
        Ok(())
    }
    /// A handle that triggers shutdown.
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// The key-encryption key: from configuration, or in development from a key file in the
/// data directory (created on first start).
pub fn key_encryption_key(config: &Config) -> anyhow::Result<[u8; 32]> {
    if let Some(k) = config.key_encryption_key_bytes() {
        return Ok(k);
    }
    if !config.development {
        return Err(anyhow!("key_encryption_key: required outside development"));
    }
    let path = config.data_dir.join("key-encryption-key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return config::decode_key_encryption_key(existing.trim())
            .ok_or_else(|| anyhow!("{}: not a 32-byte base64 key", path.display()));
    }
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow!("random failed"))?;
    dev::write_private(&path, &strongroom_protocol::jose::b64url(&bytes))?;
    Ok(bytes)
}

/// Opens the store named by the configuration, creating the data directory for SQLite.
pub async fn open_store(config: &Config) -> anyhow::Result<strongroom_store::SharedStore> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("data_dir: cannot create {}", config.data_dir.display()))?;
    let url = config.database_url();
    strongroom_store::open(&url).await.map_err(|e| anyhow!("database_url: {e}"))
}

/// Opens the key ring on a store.
pub async fn open_keys(config: &Config, store: strongroom_store::SharedStore) -> anyhow::Result<keys::KeyRing> {
    let kek = keys::KeyEncryptionKey::new(&key_encryption_key(config)?)?;
    keys::KeyRing::open(store, kek, &config.keys.algorithms, config.keys.overlap_secs, state::now()).await
}

fn nonce_secret(kek: &[u8; 32]) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, kek);
    aws_lc_rs::hmac::sign(&key, b"strongroom dpop nonce").as_ref().to_vec()
}

/// Starts a server: store, keys, listeners, background jobs.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    config.validate().map_err(|e| anyhow!("invalid configuration: {e}"))?;
    config.check_development_conflicts()?;
    let _ = rustls::crypto::CryptoProvider::install_default(tls::crypto_provider());
    let store = open_store(&config).await?;
    let kek = key_encryption_key(&config)?;
    let keys = open_keys(&config, store.clone()).await?;

    let mut client_cas = config.tls.client_ca_certs.clone();
    let (cert_path, key_path) = if config.development && config.tls.cert.is_none() {
        let pki = pki::DevPki::load_or_create(&config.data_dir)?;
        client_cas.push(pki.ca_cert_path());
        (pki.server_cert_path(), pki.server_key_path())
    } else {
        let c = config.tls.cert.clone().ok_or_else(|| anyhow!("tls.cert: required"))?;
        let k = config.tls.key.clone().ok_or_else(|| anyhow!("tls.key: required"))?;
        if config.development {
            client_cas.push(pki::DevPki::load_or_create(&config.data_dir)?.ca_cert_path());
        }
        (c, k)
    };
    let client_trust = trust::client_trust(&client_cas)?;
    if config.development {
        let pki = pki::DevPki::load_or_create(&config.data_dir)?;
        tracing::warn!("{}", dev::start_up_warning(&config, &store, &pki).await?);
    }
    let pages = pages::Pages::load(config.pages.templates_dir.as_deref())?;
    let mut outbound_cas = config.tls.outbound_ca_certs.clone();
    if config.development {
        outbound_cas.push(pki::DevPki::load_or_create(&config.data_dir)?.ca_cert_path());
    }
    let mut roots = Vec::new();
    for path in &outbound_cas {
        let pem =
            std::fs::read(path).with_context(|| format!("tls.outbound_ca_certs: cannot read {}", path.display()))?;
        roots.extend(reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| anyhow!("tls.outbound_ca_certs: {e}"))?);
    }
    if config.outbound.allow_private_addresses {
        tracing::warn!(
            "outbound.allow_private_addresses is on: client jwks_uri and request_uri fetches may reach \
             loopback, private and reserved addresses (tests and labs only)"
        );
    }
    let jwks_fetcher = jwks_fetch::JwksFetcher::new(&config.outbound, roots)?;
    let audit = audit::AuditLog::open(&config.audit, store.clone())?;
    let state = Arc::new(AppState::new(
        config.clone(),
        store,
        keys,
        &nonce_secret(&kek),
        client_trust,
        jwks_fetcher,
        pages,
        audit,
    ));

    let chain = tls::load_cert_chain(&cert_path)?;
    let key = tls::load_private_key(&key_path)?;
    let public_tls = tls::server_config(chain.clone(), key.clone_key(), false)?;
    let mtls_tls = tls::server_config(chain, key, true)?;
    let opts = tls::ServeOptions::from_config(&config)?;
    let public_listener = tokio::net::TcpListener::bind(config.listen.public)
        .await
        .with_context(|| format!("listen.public: cannot bind {}", config.listen.public))?;
    let mtls_listener = tokio::net::TcpListener::bind(config.listen.mtls)
        .await
        .with_context(|| format!("listen.mtls: cannot bind {}", config.listen.mtls))?;
    let metrics_listener = match config.metrics.listen {
        Some(addr) => {
            telemetry::install()?;
            Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("metrics.listen: cannot bind {addr}"))?,
            )
        }
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().map(|l| l.local_addr()).transpose()?;
    let public_addr = public_listener.local_addr()?;
    let mtls_addr = mtls_listener.local_addr()?;
    let (tx, rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let mut tasks = vec![
        tokio::spawn(tls::serve(
            public_listener,
            public_tls,
            http::public_router(&state),
            opts.clone(),
            stopped(rx.clone()),
        )),
        tokio::spawn(tls::serve(mtls_listener, mtls_tls, http::mtls_router(&state), opts, stopped(rx.clone()))),
    ];
    if let Some(l) = metrics_listener {
        tasks.push(tokio::spawn(telemetry::serve(state.clone(), l, stopped(rx.clone()))));
    }
    spawn_housekeeping(state.clone(), rx);
    Ok(RunningServer { public_addr, mtls_addr, metrics_addr, state, shutdown: tx, tasks })
}

/// Purges expired records and picks up key rotations made by other nodes.
fn spawn_housekeeping(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let now = state::now();
                    if let Some(every) = state.config.keys.rotate_every {
                        match state.keys.rotate_if_due(now, every).await {
                            Ok(true) => {
                                let event = audit::AuditEvent::new(audit::AuditKind::KeysRotated);
                                state.audit.record(event.detail("by", "schedule")).await;
                            }
                            Ok(false) => {}
                            Err(e) => tracing::warn!(error = %e, "automatic key rotation failed"),
                        }
                    }
                    if let Err(e) = state.keys.reload(now).await {
                        tracing::warn!(error = %e, "key reload failed");
                    }
                    if let Err(e) = state.store.purge_expired(now).await {
                        tracing::warn!(error = %e, "purge failed");
                    }
                    let retention = i64::try_from(state.config.audit.retention_days.saturating_mul(86_400)).unwrap_or(i64::MAX);
                    if let Err(e) = state.store.purge_audit_events(now.saturating_sub(retention)).await {
                        tracing::warn!(error = %e, "audit retention purge failed");
                    }
                }
                _ = stop.changed() => break,
            }
        }
    });
}

/// Loads configuration from an optional file plus environment.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    config::load(path).map_err(|e| anyhow!("{e}"))
}
