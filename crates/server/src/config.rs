//! Server configuration: defaults, then a TOML file, then `STRONGROOM_` environment
//! variables (nested keys joined with `__`), then validation that names the offending key.
//!
//! Every key is documented in `docs/configuration.md`.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};
use strongroom_protocol::client_rules::{ClientRules, ScopeDefinition, builtin_scopes};
use strongroom_protocol::policy::Profile;

/// Prefix of the environment variables read by [`load`].
pub const ENV_PREFIX: &str = "STRONGROOM_";

/// The signing algorithms a deployment may enable (FAPI 2.0: PS256, ES256, EdDSA).
pub const ALLOWED_ALGORITHMS: [&str; 3] = ["PS256", "ES256", "EdDSA"];

/// Top-level keys; environment variables whose first segment is not one of these are
/// ignored (so e.g. `STRONGROOM_CONFIG`, read by the CLI, is not an unknown key).
const TOP_LEVEL_KEYS: [&str; 23] = [
    "issuer",
    "profiles",
    "scopes",
    "development",
    "development_allow_production_settings",
    "data_dir",
    "database_url",
    "key_encryption_key",
    "listen",
    "tls",
    "proxy",
    "tokens",
    "dpop",
    "keys",
    "limits",
    "log",
    "pages",
    "admin",
    "registration",
    "metrics",
    "otel",
    "outbound",
    "audit",
];

/// The whole server configuration.
#[derive(Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The issuer identifier: an https URL without query, fragment or trailing slash.
    pub issuer: String,
    /// Development set-up: generate a PKI, keys and demo clients in `data_dir`.
    pub development: bool,
    /// Let `development = true` run with production-like settings (see
    /// [`Config::development_conflicts`]); without it start-up refuses that mix.
    pub development_allow_production_settings: bool,
    /// Directory for generated files (development PKI, key file, SQLite database).
    pub data_dir: PathBuf,
    /// Database URL (`sqlite:` or `postgres:`); `None` → SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Key-encryption key for signing keys at rest: base64 or base64url of 32 bytes.
    /// May be `None` only in development, where a key file in `data_dir` is used.
    pub key_encryption_key: Option<String>,
    /// Listener addresses.
    pub listen: ListenConfig,
    /// Server certificate and trusted client CAs.
    pub tls: TlsConfig,
    /// TLS-terminating proxies.
    pub proxy: ProxyConfig,
    /// Lifetimes of tokens, codes, pushed requests and sessions.
    pub tokens: TokensConfig,
    /// DPoP settings.
    pub dpop: DpopConfig,
    /// Signing keys.
    pub keys: KeysConfig,
    /// Request size limits.
    pub limits: LimitsConfig,
    /// Logging.
    pub log: LogConfig,
    /// Browser pages.
    pub pages: PagesConfig,
    /// Administrative API.
    pub admin: AdminConfig,
    /// Dynamic client registration.
    pub registration: RegistrationConfig,
    /// Prometheus metrics listener.
    pub metrics: MetricsConfig,
    /// OpenTelemetry traces (feature `otel`).
    pub otel: OtelConfig,
    /// Outbound fetches (client `jwks_uri`, client-hosted `request_uri`).
    pub outbound: OutboundConfig,
    /// The profiles clients may register with (default: all four). Discovery, registration,
    /// the admin API and client loading follow it.
    pub profiles: Vec<Profile>,
    /// The scope catalogue (`[[scopes]]` tables); empty means the built-in one. Clients
    /// register scopes only from it.
    pub scopes: Vec<ScopeDefinition>,
    /// The audit log.
    pub audit: AuditConfig,
}

/// Where audit events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditSink {
    /// The `audit_events` table, queryable by `GET /admin/audit`.
    Store,
    /// One JSON line per event on standard output.
    Stdout,
    /// One JSON line per event appended to `audit.file`.
    File,
}

/// `[audit]`: the audit log (issue 13).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// The sinks every event is written to; default `["store"]`.
    pub sinks: Vec<AuditSink>,
    /// The file of the `file` sink.
    pub file: Option<PathBuf>,
    /// Events older than this many days are removed from the store.
    pub retention_days: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { sinks: vec![AuditSink::Store], file: None, retention_days: 400 }
    }
}

/// `[outbound]`: how the server fetches client-hosted documents.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Turn the SSRF guard off: let fetches reach loopback, private and reserved addresses.
    /// For tests and labs only; independent of `development`. Logged as a warning.
    pub allow_private_addresses: bool,
    /// An HTTP(S) proxy for all outbound fetches. Unset: connect directly; the
    /// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` environment variables are ignored.
    pub proxy: Option<String>,
}

/// The proxy URL may carry credentials.
impl fmt::Debug for OutboundConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundConfig")
            .field("allow_private_addresses", &self.allow_private_addresses)
            .field("proxy", &self.proxy.as_deref().map(redact_url_password))
            .finish()
    }
}

/// `[metrics]`: the Prometheus listener (plain HTTP, `GET /metrics`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where to serve metrics; `None` (the default) serves none. Bind it to loopback or a
    /// monitoring network: it is plain HTTP without authentication.
    pub listen: Option<SocketAddr>,
}

/// `[otel]`: OpenTelemetry traces, exported over OTLP/HTTP (protobuf) by a binary built with
/// the `otel` feature.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtelConfig {
    /// The collector's OTLP/HTTP traces URL, e.g. `http://127.0.0.1:4318/v1/traces`;
    /// `None` (the default) exports nothing.
    pub endpoint: Option<String>,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// The share of new traces recorded, from 0 to 1.
    pub sample_ratio: f64,
}

impl Default for OtelConfig {
    fn default() -> Self {
        OtelConfig { endpoint: None, service_name: "strongroom".into(), sample_ratio: 1.0 }
    }
}

/// `[listen]`: where the two HTTPS listeners bind.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// Public listener (browser endpoints, discovery, JWKS).
    pub public: SocketAddr,
    /// mTLS listener (client endpoints; a client certificate is requested).
    pub mtls: SocketAddr,
    /// External base URL of the mTLS listener, used in `mtls_endpoint_aliases`.
    pub mtls_base_url: String,
    /// Upper bound for one TLS handshake, in seconds.
    pub handshake_timeout_secs: u64,
}

/// `[tls]`: server certificate and trusted client-certificate CAs.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the server (leaf first).
    pub cert: Option<PathBuf>,
    /// PEM private key of the server.
    pub key: Option<PathBuf>,
    /// PEM files of CAs trusted for `tls_client_auth`.
    pub client_ca_certs: Vec<PathBuf>,
    /// PEM files of extra CAs trusted for outbound HTTPS (client `jwks_uri`, client-hosted
    /// `request_uri`), beside the system roots. A development set-up adds its own CA.
    pub outbound_ca_certs: Vec<PathBuf>,
}

/// `[proxy]`: TLS-terminating proxies that forward the client certificate in a header.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Trusted proxy addresses: IP addresses or CIDR networks.
    pub trusted: Vec<String>,
    /// Header carrying the client certificate (e.g. `Client-Cert`).
    pub client_cert_header: Option<String>,
}

/// `[tokens]`: lifetimes in seconds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokensConfig {
    /// Access token lifetime.
    pub access_token_ttl: u64,
    /// Refresh token lifetime.
    pub refresh_token_ttl: u64,
    /// ID token lifetime.
    pub id_token_ttl: u64,
    /// Authorization code lifetime, 1..=60 (F2SP-5.3.2.1-11).
    pub code_ttl: u64,
    /// Pushed authorization request (`request_uri`) lifetime, 1..=599 (F2SP-5.3.2.2-12).
    pub par_ttl: u64,
    /// Browser login session lifetime.
    pub session_ttl: u64,
    /// Seconds after a refresh token's rotation during which presenting it again is
    /// refused without revoking the grant (a client's own concurrent refreshes); after
    /// that a reuse revokes the whole grant (RFC 9700 §4.14.2). 0 = strict.
    pub refresh_reuse_leeway: u64,
}

/// `[dpop]`: DPoP settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpopConfig {
    /// Require a server-provided nonce in DPoP proofs.
    pub require_nonce: bool,
    /// How often the DPoP nonce changes, in seconds.
    pub nonce_rotation_secs: u64,
}

/// `[keys]`: signing keys.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// How long retired keys stay published in the JWKS, in seconds.
    pub overlap_secs: u64,
    /// Enabled signing algorithms (subset of PS256, ES256, EdDSA).
    pub algorithms: Vec<String>,
    /// Rotate the signing keys automatically when the active key is this old, in seconds;
    /// `None`: only `strongroom keys rotate` rotates.
    pub rotate_every: Option<u64>,
}

/// `[limits]`: request size limits in bytes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Maximum request body size.
    pub max_body_bytes: usize,
    /// Maximum size of one JWT (request object, client assertion, DPoP proof).
    pub max_jwt_bytes: usize,
    /// Maximum total size of request headers.
    pub max_header_bytes: usize,
}

/// `[log]`: logging.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` filter directive, e.g. `info` or `strongroom=debug,info`.
    pub level: String,
}

/// `[pages]`: browser pages.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PagesConfig {
    /// Directory with templates that override the built-in ones.
    pub templates_dir: Option<PathBuf>,
    /// Whether consent may be remembered for FAPI clients (off: ask every time).
    pub remember_consent_for_fapi: bool,
}

/// `[admin]`: administrative API.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer token for the admin API (at least 32 characters); `None` disables it.
    pub token: Option<String>,
}

/// `[registration]`: dynamic client registration (RFC 7591). Registration is open to
/// holders of the initial access token and/or of a software statement signed by the
/// configured directory; with neither configured it is closed.
#[derive(Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationConfig {
    /// Initial access token required to register clients (at least 32 characters).
    pub initial_access_token: Option<String>,
    /// The software-statement directory's public keys, as JWK Set JSON text.
    pub software_statement_jwks: Option<String>,
    /// A file holding the directory's JWK Set (read at each registration, so the
    /// directory's keys can be replaced without a restart).
    pub software_statement_jwks_file: Option<PathBuf>,
    /// The `iss` every software statement must carry, if set.
    pub software_statement_issuer: Option<String>,
    /// Maximum age of a software statement's `iat`, in seconds.
    pub software_statement_max_age_secs: u64,
    /// Require a software statement on every registration, even with the initial access token.
    pub require_software_statement: bool,
    /// What proves that a registrant holds the keys of the software its statement describes
    /// (issue 12; a statement alone is a copyable document): `signed_request` (default: an
    /// `application/jwt` registration request signed with a key of the statement's
    /// `software_jwks`/`software_jwks_endpoint`), `tls_certificate` (registration over the
    /// mTLS listener with a certificate whose key is in those keys), or
    /// `signed_request_or_tls_certificate`. Required on every registration with a statement.
    pub software_statement_proof: strongroom_protocol::software_statement::SoftwareProof,
    /// Allow several clients of one `software_id` (off: a second registration of a
    /// statement's software is refused, atomically in the store).
    pub allow_multiple_clients_per_software: bool,
    /// Accept client-hosted `request_uri`s (RFC 9101 §5.2) from clients that registered them
    /// in `request_uris`; fetched with the `jwks_uri` guard. Off by default.
    pub allow_remote_request_uris: bool,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            initial_access_token: None,
            software_statement_jwks: None,
            software_statement_jwks_file: None,
            software_statement_issuer: None,
            software_statement_max_age_secs: 3600,
            require_software_statement: false,
            software_statement_proof: Default::default(),
            allow_multiple_clients_per_software: false,
            allow_remote_request_uris: false,
        }
    }
}

impl RegistrationConfig {
    /// Whether a software-statement directory is configured.
    pub fn has_directory(&self) -> bool {
        self.software_statement_jwks.is_some() || self.software_statement_jwks_file.is_some()
    }

    /// The directory's JWK Set (public keys only), from the inline value or the file.
    pub fn directory_jwks(&self) -> Result<Option<jsonwebtoken::jwk::JwkSet>, String> {
        let text = match (&self.software_statement_jwks, &self.software_statement_jwks_file) {
            (Some(t), None) => t.clone(),
            (None, Some(path)) => {
                std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
            }
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                return Err("set software_statement_jwks or software_statement_jwks_file, not both".into());
            }
        };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
        let keys = value.get("keys").and_then(|k| k.as_array()).ok_or("must be a JWK Set with a keys array")?;
        if keys.iter().any(|k| k.as_object().is_none_or(strongroom_protocol::jose::is_private_jwk)) {
            return Err("must hold public keys only".into());
        }
        let set = serde_json::from_value(value).map_err(|e| format!("not a JWK Set: {e}"))?;
        Ok(Some(set))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "https://localhost:8443".to_string(),
            development: true,
            development_allow_production_settings: false,
            data_dir: PathBuf::from("./strongroom-data"),
            database_url: None,
            key_encryption_key: None,
            listen: ListenConfig::default(),
            tls: TlsConfig::default(),
            proxy: ProxyConfig::default(),
            tokens: TokensConfig::default(),
            dpop: DpopConfig::default(),
            keys: KeysConfig::default(),
            limits: LimitsConfig::default(),
            log: LogConfig::default(),
            pages: PagesConfig::default(),
            admin: AdminConfig::default(),
            registration: RegistrationConfig::default(),
            metrics: MetricsConfig::default(),
            otel: OtelConfig::default(),
            outbound: OutboundConfig::default(),
            profiles: Profile::ALL.to_vec(),
            scopes: Vec::new(),
            audit: AuditConfig::default(),
        }
    }
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            public: SocketAddr::from(([127, 0, 0, 1], 8443)),
            mtls: SocketAddr::from(([127, 0, 0, 1], 8444)),
            mtls_base_url: "https://localhost:8444".to_string(),
            handshake_timeout_secs: 10,
        }
    }
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: 300,
            refresh_token_ttl: 2_592_000,
            id_token_ttl: 300,
            code_ttl: 60,
            par_ttl: 90,
            session_ttl: 3600,
            refresh_reuse_leeway: 0,
        }
    }
}

impl Default for DpopConfig {
    fn default() -> Self {
        Self { require_nonce: false, nonce_rotation_secs: 60 }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            overlap_secs: 86_400,
            algorithms: ALLOWED_ALGORITHMS.iter().map(|a| a.to_string()).collect(),
            rotate_every: None,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self { max_body_bytes: 65_536, max_jwt_bytes: 16_384, max_header_bytes: 16_384 }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: "text".to_string(), level: "info".to_string() }
    }
}

const REDACTED: &str = "<redacted>";

fn redact(v: &Option<String>) -> Option<&'static str> {
    v.as_ref().map(|_| REDACTED)
}

/// Debug output never shows secrets (key-encryption key, tokens, database password).
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("issuer", &self.issuer)
            .field("development", &self.development)
            .field("development_allow_production_settings", &self.development_allow_production_settings)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_deref().map(redact_url_password))
            .field("key_encryption_key", &redact(&self.key_encryption_key))
            .field("listen", &self.listen)
            .field("tls", &self.tls)
            .field("proxy", &self.proxy)
            .field("tokens", &self.tokens)
            .field("dpop", &self.dpop)
            .field("keys", &self.keys)
            .field("limits", &self.limits)
            .field("log", &self.log)
            .field("pages", &self.pages)
            .field("admin", &self.admin)
            .field("registration", &self.registration)
            .field("metrics", &self.metrics)
            .field("outbound", &self.outbound)
            .field("audit", &self.audit)
            .finish()
    }
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig").field("token", &redact(&self.token)).finish()
    }
}

impl fmt::Debug for RegistrationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrationConfig")
            .field("initial_access_token", &redact(&self.initial_access_token))
            .field("software_statement_jwks", &self.software_statement_jwks.as_ref().map(|_| "<inline>"))
            .field("software_statement_jwks_file", &self.software_statement_jwks_file)
            .field("software_statement_issuer", &self.software_statement_issuer)
            .field("software_statement_max_age_secs", &self.software_statement_max_age_secs)
            .field("require_software_statement", &self.require_software_statement)
            .field("software_statement_proof", &self.software_statement_proof)
            .field("allow_multiple_clients_per_software", &self.allow_multiple_clients_per_software)
            .finish()
    }
}

fn redact_url_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some(REDACTED));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// One problem found by [`Config::validate`]: the key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The dotted key, e.g. `tokens.code_ttl`.
    pub key: String,
    /// What is wrong, e.g. `must be between 1 and 60 (F2SP-5.3.2.1-11), got 61`.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file that was given does not exist.
    #[error("configuration file {} not found", .0.display())]
    MissingFile(PathBuf),
    /// The file or environment could not be parsed (figment names the key and source).
    #[error("configuration: {0}")]
    Parse(Box<figment::Error>),
    /// The values were read but some are invalid.
    #[error("invalid configuration: {}", display_problems(.0))]
    Invalid(Vec<ConfigProblem>),
    /// `development = true` meets production settings without the explicit override.
    #[error(
        "development = true (demo user, development CA trusted for client certificates) meets production \
         settings: {}; set development = false, or development_allow_production_settings = true to run \
         them together on purpose",
        display_problems(.0)
    )]
    DevelopmentConflicts(Vec<ConfigProblem>),
}

fn display_problems(problems: &[ConfigProblem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl ConfigError {
    /// The problems found by validation (empty for other errors).
    pub fn problems(&self) -> &[ConfigProblem] {
        match self {
            ConfigError::Invalid(p) | ConfigError::DevelopmentConflicts(p) => p,
            _ => &[],
        }
    }
}

/// The figment that [`load`] extracts from: defaults, then the TOML file (if any), then
/// `STRONGROOM_*` environment variables. Does not check that the file exists.
pub fn figment(path: Option<&Path>) -> Figment {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = path {
        fig = fig.merge(Toml::file_exact(path));
    }
    fig.merge(Env::prefixed(ENV_PREFIX).split("__").filter(|k| {
        let first = k.as_str().split('.').next().unwrap_or_default();
        TOP_LEVEL_KEYS.iter().any(|t| t.eq_ignore_ascii_case(first))
    }))
}

/// Load and validate the configuration: defaults → TOML file at `path` (if given; a
/// missing file is an error) → `STRONGROOM_` environment variables (nested keys with
/// `__`, e.g. `STRONGROOM_TOKENS__ACCESS_TOKEN_TTL=60`).
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    if let Some(p) = path
        && !p.is_file()
    {
        return Err(ConfigError::MissingFile(p.to_path_buf()));
    }
    let config: Config = figment(path).extract().map_err(|e| ConfigError::Parse(Box::new(e)))?;
    config.validate()?;
    Ok(config)
}

/// Decode a key-encryption key: base64 or base64url (padding optional) of exactly 32 bytes.
pub fn decode_key_encryption_key(value: &str) -> Option<[u8; 32]> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let v = value.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(v).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
}

impl Config {
    /// The database URL: `database_url`, or `sqlite://<data_dir>/strongroom.db`.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("strongroom.db").display()),
        }
    }

    /// The decoded key-encryption key, if one is configured and valid.
    pub fn key_encryption_key_bytes(&self) -> Option<[u8; 32]> {
        self.key_encryption_key.as_deref().and_then(decode_key_encryption_key)
    }

    /// The rules for clients this configuration sets: enabled profiles and scope catalogue.
    pub fn client_rules(&self) -> ClientRules {
        let scopes = if self.scopes.is_empty() { builtin_scopes() } else { self.scopes.clone() };
        ClientRules { profiles: self.profiles.clone(), scopes }
    }

    /// Check every value; the error lists each problem with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Problems::default();

        if let Err(m) = check_https_url(&self.issuer) {
            p.add("issuer", m);
        }
        for (key, message) in self.client_rules().problems() {
            p.add(key, message);
        }

        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:") || url.starts_with("postgres:") || url.starts_with("postgresql:"))
        {
            p.add("database_url", "must start with sqlite: or postgres:");
        }

        match &self.key_encryption_key {
            Some(k) if decode_key_encryption_key(k).is_none() => {
                p.add("key_encryption_key", "must be base64 or base64url of exactly 32 bytes")
            }
            None if !self.development => p.add("key_encryption_key", "is required when development = false"),
            _ => {}
        }

        // [listen]
        if let Err(m) = check_https_url(&self.listen.mtls_base_url) {
            p.add("listen.mtls_base_url", m);
        }
        if self.listen.public == self.listen.mtls {
            p.add("listen.mtls", "must differ from listen.public");
        }
        if let Some(m) = self.metrics.listen
            && (m == self.listen.public || m == self.listen.mtls)
        {
            p.add("metrics.listen", "must differ from listen.public and listen.mtls");
        }
        if !(1..=300).contains(&self.listen.handshake_timeout_secs) {
            p.add(
                "listen.handshake_timeout_secs",
                format!("must be between 1 and 300, got {}", self.listen.handshake_timeout_secs),
            );
        }

        // [outbound]
        if let Some(proxy) = &self.outbound.proxy {
            match url::Url::parse(proxy) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => p.add("outbound.proxy", "must be an http or https URL with a host"),
            }
        }

        // [audit]
        let a = &self.audit;
        if a.sinks.is_empty() {
            p.add("audit.sinks", "must list at least one of store, stdout, file");
        }
        match (a.sinks.contains(&AuditSink::File), &a.file) {
            (true, None) => p.add("audit.file", "is required when audit.sinks lists file"),
            (false, Some(_)) => p.add("audit.sinks", "must list file when audit.file is set"),
            _ => {}
        }
        if a.retention_days == 0 {
            p.add("audit.retention_days", "must be at least 1 day");
        }

        // [tls]
        match (&self.tls.cert, &self.tls.key) {
            (Some(cert), Some(key)) => {
                for (name, path) in [("tls.cert", cert), ("tls.key", key)] {
                    if !path.is_file() {
                        p.add(name, format!("file {} does not exist", path.display()));
                    }
                }
            }
            (Some(_), None) => p.add("tls.key", "must be set together with tls.cert"),
            (None, Some(_)) => p.add("tls.cert", "must be set together with tls.key"),
            (None, None) if !self.development => {
                p.add("tls.cert", "is required when development = false (with tls.key)")
            }
            (None, None) => {}
        }
        for path in &self.tls.outbound_ca_certs {
            if !path.exists() {
                p.add("tls.outbound_ca_certs", format!("file {} does not exist", path.display()));
            }
        }
        for path in &self.tls.client_ca_certs {
            if !path.is_file() {
                p.add("tls.client_ca_certs", format!("file {} does not exist", path.display()));
            }
        }

        // [proxy]
        for entry in &self.proxy.trusted {
            if crate::tls::parse_ip_or_cidr(entry).is_err() {
                p.add("proxy.trusted", format!("{entry:?} is not an IP address or CIDR network"));
            }
        }
        if let Some(h) = &self.proxy.client_cert_header {
            if http::HeaderName::from_bytes(h.trim().as_bytes()).is_err() {
                p.add("proxy.client_cert_header", format!("{h:?} is not a valid HTTP header name"));
            } else if self.proxy.trusted.is_empty() {
                p.add("proxy.trusted", "must list at least one proxy when proxy.client_cert_header is set");
            }
        }

        // [tokens]
        let t = &self.tokens;
        for (key, value) in [
            ("tokens.access_token_ttl", t.access_token_ttl),
            ("tokens.refresh_token_ttl", t.refresh_token_ttl),
            ("tokens.id_token_ttl", t.id_token_ttl),
            ("tokens.session_ttl", t.session_ttl),
        ] {
            if value == 0 {
                p.add(key, "must be at least 1 second");
            }
        }
        if t.refresh_reuse_leeway > 60 {
            p.add("tokens.refresh_reuse_leeway", "must be at most 60 seconds (RFC 9700 §4.14.2 reuse detection)");
        }
        if !(1..=60).contains(&t.code_ttl) {
            p.add("tokens.code_ttl", format!("must be between 1 and 60 seconds (F2SP-5.3.2.1-11), got {}", t.code_ttl));
        }
        if !(1..=599).contains(&t.par_ttl) {
            p.add(
                "tokens.par_ttl",
                format!("must be between 1 and 599 seconds (F2SP-5.3.2.2-12: under 600), got {}", t.par_ttl),
            );
        }

        // [dpop]
        if self.dpop.nonce_rotation_secs == 0 {
            p.add("dpop.nonce_rotation_secs", "must be at least 1 second");
        }

        // [keys]
        if let Some(every) = self.keys.rotate_every
            && every < 3600
        {
            p.add("keys.rotate_every", format!("must be at least 3600 seconds, got {every}"));
        }
        if self.keys.algorithms.is_empty() {
            p.add("keys.algorithms", "must list at least one algorithm");
        }
        let mut seen = BTreeSet::new();
        for alg in &self.keys.algorithms {
            if !ALLOWED_ALGORITHMS.contains(&alg.as_str()) {
                p.add("keys.algorithms", format!("{alg:?} is not allowed (only PS256, ES256, EdDSA)"));
            } else if !seen.insert(alg.as_str()) {
                p.add("keys.algorithms", format!("{alg:?} is listed twice"));
            }
        }

        // [limits]
        for (key, value) in [
            ("limits.max_body_bytes", self.limits.max_body_bytes),
            ("limits.max_jwt_bytes", self.limits.max_jwt_bytes),
            ("limits.max_header_bytes", self.limits.max_header_bytes),
        ] {
            if value == 0 {
                p.add(key, "must be greater than 0");
            }
        }

        // [log]
        if !matches!(self.log.format.as_str(), "text" | "json") {
            p.add("log.format", format!("must be \"text\" or \"json\", got {:?}", self.log.format));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            p.add("log.level", format!("is not a valid filter directive: {e}"));
        }

        // [otel]
        if let Some(endpoint) = &self.otel.endpoint {
            let is_http = url::Url::parse(endpoint).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !is_http {
                p.add("otel.endpoint", format!("must be an http or https URL, got {endpoint:?}"));
            }
            if !cfg!(feature = "otel") {
                p.add(
                    "otel.endpoint",
                    "this binary was built without the `otel` feature (cargo build --features otel)",
                );
            }
        }
        if !(0.0..=1.0).contains(&self.otel.sample_ratio) {
            p.add("otel.sample_ratio", format!("must be between 0 and 1, got {}", self.otel.sample_ratio));
        }

        // [pages]
        if let Some(dir) = &self.pages.templates_dir
            && !dir.is_dir()
        {
            p.add("pages.templates_dir", format!("directory {} does not exist", dir.display()));
        }

        // [admin], [registration]
        if matches!(&self.admin.token, Some(t) if t.chars().count() < 32) {
            p.add("admin.token", "must be at least 32 characters");
        }
        if matches!(&self.registration.initial_access_token, Some(t) if t.chars().count() < 32) {
            p.add("registration.initial_access_token", "must be at least 32 characters");
        }
        let r = &self.registration;
        if let Err(m) = r.directory_jwks() {
            let key = if r.software_statement_jwks.is_some() {
                "registration.software_statement_jwks"
            } else {
                "registration.software_statement_jwks_file"
            };
            p.add(key, m);
        }
        if r.software_statement_max_age_secs == 0 {
            p.add("registration.software_statement_max_age_secs", "must be at least 1 second");
        }
        if matches!(&r.software_statement_issuer, Some(i) if i.is_empty()) {
            p.add("registration.software_statement_issuer", "must not be empty");
        }
        if (r.software_statement_issuer.is_some() || r.require_software_statement) && !r.has_directory() {
            p.add(
                "registration.software_statement_jwks",
                "is required when software_statement_issuer or require_software_statement is set",
            );
        }

        p.into_result()
    }
}

impl Config {
    /// The settings that show a deployment beyond one developer's machine while
    /// `development = true` seeds a demo user with a published password and trusts the
    /// development CA for client certificates (issue 12): a non-loopback issuer, mTLS base
    /// URL or listener, a configured server certificate, a PostgreSQL database. Empty when
    /// development is off or `development_allow_production_settings` is set.
    pub fn development_conflicts(&self) -> Vec<ConfigProblem> {
        if !self.development || self.development_allow_production_settings {
            return Vec::new();
        }
        self.production_settings()
    }

    /// The settings of [`Config::development_conflicts`] whatever `development` and the
    /// override say (start-up names them in its warning when the override lets them through).
    pub fn production_settings(&self) -> Vec<ConfigProblem> {
        let mut p = Problems::default();
        for (key, url) in [("issuer", &self.issuer), ("listen.mtls_base_url", &self.listen.mtls_base_url)] {
            if !url_host_is_loopback(url) {
                p.add(key, format!("{url} is not on a loopback host (localhost, 127.0.0.0/8, ::1)"));
            }
        }
        let listeners = [("listen.public", Some(self.listen.public)), ("listen.mtls", Some(self.listen.mtls))];
        for (key, addr) in listeners.into_iter().chain([("metrics.listen", self.metrics.listen)]) {
            if let Some(addr) = addr
                && !addr.ip().to_canonical().is_loopback()
            {
                p.add(key, format!("{addr} is not a loopback address"));
            }
        }
        for (key, path) in [("tls.cert", &self.tls.cert), ("tls.key", &self.tls.key)] {
            if path.is_some() {
                p.add(key, "is set (a development set-up uses its generated server certificate)");
            }
        }
        if self.database_url.as_deref().is_some_and(|u| u.starts_with("postgres:") || u.starts_with("postgresql:")) {
            p.add("database_url", "is PostgreSQL (a development set-up uses SQLite in data_dir)");
        }
        p.0
    }

    /// [`Config::development_conflicts`] as a start-up check.
    pub fn check_development_conflicts(&self) -> Result<(), ConfigError> {
        let problems = self.development_conflicts();
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::DevelopmentConflicts(problems)) }
    }
}

/// Whether a URL's host is `localhost` or a loopback IP address.
fn url_host_is_loopback(value: &str) -> bool {
    match url::Url::parse(value).ok().and_then(|u| u.host().map(|h| h.to_owned())) {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.to_canonical().is_loopback(),
        None => false,
    }
}

/// An https URL without query, fragment, credentials or trailing slash.
fn check_https_url(value: &str) -> Result<(), String> {
    const MSG: &str = "must be an https URL without query or fragment (and without a trailing slash)";
    let url = url::Url::parse(value).map_err(|e| format!("{MSG}: {e}"))?;
    if url.scheme() != "https" {
        return Err(format!("{MSG}: scheme is {:?}", url.scheme()));
    }
    if url.host().is_none() {
        return Err(format!("{MSG}: no host"));
    }
    if url.query().is_some() || value.contains('?') {
        return Err(format!("{MSG}: has a query"));
    }
    if url.fragment().is_some() || value.contains('#') {
        return Err(format!("{MSG}: has a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{MSG}: has credentials"));
    }
    if value.ends_with('/') {
        return Err(format!("{MSG}: has a trailing slash"));
    }
    Ok(())
}

#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(ConfigProblem { key: key.to_string(), message: message.into() });
    }

    fn into_result(self) -> Result<(), ConfigError> {
        if self.0.is_empty() { Ok(()) } else { Err(ConfigError::Invalid(self.0)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kek_decoding_accepts_both_alphabets_and_exact_length() {
        let bytes = [0xfbu8; 32];
        let std = base64::engine::general_purpose::STANDARD.encode(bytes);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(decode_key_encryption_key(&std), Some(bytes));
        assert_eq!(decode_key_encryption_key(&url), Some(bytes));
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 31]);
        assert_eq!(decode_key_encryption_key(&short), None);
        assert_eq!(decode_key_encryption_key("not base64!"), None);
    }

    #[test]
    fn https_url_check() {
        assert!(check_https_url("https://as.example.com").is_ok());
        assert!(check_https_url("https://as.example.com/tenant").is_ok());
        for bad in [
            "http://as.example.com",
            "https://as.example.com/",
            "https://as.example.com?x=1",
            "https://as.example.com#f",
            "https://u:p@as.example.com",
            "as.example.com",
        ] {
            assert!(check_https_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = Config {
            key_encryption_key: Some("c2VjcmV0LWtleS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=".into()),
            admin: AdminConfig { token: Some("a".repeat(40)) },
            database_url: Some("postgres://user:hunter2@db/strongroom".into()),
            ..Config::default()
        };
        let s = format!("{c:?}");
        assert!(!s.contains("c2VjcmV0"));
        assert!(!s.contains("aaaa"));
        assert!(!s.contains("hunter2"));
    }

    fn conflict_keys(c: &Config) -> Vec<String> {
        c.development_conflicts().into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn development_defaults_have_no_conflicts() {
        let c = Config::default();
        assert!(c.development);
        assert_eq!(conflict_keys(&c), Vec::<String>::new());
        let loopback = Config {
            issuer: "https://127.0.0.2:9443".into(),
            database_url: Some("sqlite://x.db".into()),
            metrics: MetricsConfig { listen: Some("[::1]:9100".parse().unwrap()) },
            listen: ListenConfig {
                public: "[::ffff:127.0.0.1]:9443".parse().unwrap(),
                mtls_base_url: "https://[::1]:8444".into(),
                ..ListenConfig::default()
            },
            ..Config::default()
        };
        assert_eq!(conflict_keys(&loopback), Vec::<String>::new());
    }

    #[test]
    fn development_with_a_public_issuer_conflicts() {
        let c = Config { issuer: "https://as.example.com".into(), ..Config::default() };
        assert_eq!(conflict_keys(&c), ["issuer"]);
        let c = Config { issuer: "https://localhost.example.com".into(), ..Config::default() };
        assert_eq!(conflict_keys(&c), ["issuer"]);
        let mut c = Config::default();
        c.listen.mtls_base_url = "https://mtls.example.com".into();
        assert_eq!(conflict_keys(&c), ["listen.mtls_base_url"]);
    }

    #[test]
    fn development_with_a_non_loopback_listener_conflicts() {
        let mut c = Config::default();
        c.listen.public = "0.0.0.0:8443".parse().unwrap();
        assert_eq!(conflict_keys(&c), ["listen.public"]);
        let mut c = Config::default();
        c.listen.mtls = "[::]:8444".parse().unwrap();
        assert_eq!(conflict_keys(&c), ["listen.mtls"]);
        let mut c = Config::default();
        c.metrics.listen = Some("192.0.2.10:9100".parse().unwrap());
        assert_eq!(conflict_keys(&c), ["metrics.listen"]);
    }

    #[test]
    fn development_with_a_configured_certificate_conflicts() {
        let mut c = Config::default();
        c.tls.cert = Some("server.pem".into());
        c.tls.key = Some("server-key.pem".into());
        assert_eq!(conflict_keys(&c), ["tls.cert", "tls.key"]);
    }

    #[test]
    fn development_with_postgresql_conflicts() {
        for url in ["postgres://db/strongroom", "postgresql://db/strongroom"] {
            let c = Config { database_url: Some(url.into()), ..Config::default() };
            assert_eq!(conflict_keys(&c), ["database_url"], "{url}");
        }
    }

    #[test]
    fn development_conflicts_refuse_unless_overridden() {
        let mut c = Config {
            issuer: "https://as.example.com".into(),
            database_url: Some("postgres://db/strongroom".into()),
            ..Config::default()
        };
        c.listen.public = "0.0.0.0:8443".parse().unwrap();
        let err = c.check_development_conflicts().unwrap_err();
        let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["issuer", "listen.public", "database_url"]);
        let text = err.to_string();
        assert!(text.contains("development_allow_production_settings = true"), "{text}");
        assert!(text.contains("issuer: https://as.example.com"), "{text}");

        c.development_allow_production_settings = true;
        assert!(c.check_development_conflicts().is_ok());
        c.development_allow_production_settings = false;
        c.development = false;
        assert!(c.check_development_conflicts().is_ok(), "production settings are fine outside development");
    }
}
