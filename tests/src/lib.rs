//! Test support for black-box tests: a real Strongroom server on ephemeral ports with a
//! test PKI generated at test time, HTTP clients that speak real TLS (with and without
//! client certificates), and the small client-side pieces (client assertions, DPoP proofs)
//! that independent libraries lack.

use serde_json::{Value, json};
use std::net::SocketAddr;
use strongroom_protocol::jose::{JwsAlg, JwsSigner, LocalSigningKey, sha256_b64url, sign_with_header};
use strongroom_protocol::random::random_token;
use strongroom_server::RunningServer;
use strongroom_server::config::Config;
use strongroom_server::pki::DevPki;
use tempfile::TempDir;

/// Current Unix time.
pub fn now() -> i64 {
    strongroom_server::state::now()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// A running server in a temporary data directory.
pub struct TestServer {
    /// The server.
    pub server: RunningServer,
    /// Its data directory (kept alive with the server).
    pub dir: TempDir,
    /// Issuer (public listener base URL).
    pub issuer: String,
    /// mTLS listener base URL.
    pub mtls_base: String,
    /// The development CA, trusted for `tls_client_auth`.
    pub pki: DevPki,
}

impl TestServer {
    /// A server with the default configuration (development set-up, SQLite).
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A server whose configuration `adjust` may change.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pp, mp) = (free_port(), free_port());
        let mut config = Config::default();
        config.data_dir = dir.path().to_path_buf();
        config.issuer = format!("https://localhost:{pp}");
        config.listen.public = SocketAddr::from(([127, 0, 0, 1], pp));
        config.listen.mtls = SocketAddr::from(([127, 0, 0, 1], mp));
        config.listen.mtls_base_url = format!("https://localhost:{mp}");
        config.keys.algorithms = vec!["ES256".into(), "PS256".into(), "EdDSA".into()];
        adjust(&mut config);
        let server = strongroom_server::start(config.clone()).await.expect("server starts");
        let pki = DevPki::load_or_create(&config.data_dir).expect("pki");
        TestServer { issuer: config.issuer.clone(), mtls_base: config.listen.mtls_base_url.clone(), server, dir, pki }
    }

    /// A URL on the public listener.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// A URL on the mTLS listener.
    pub fn mtls_url(&self, path: &str) -> String {
        format!("{}{}", self.mtls_base, path)
    }

    fn builder(&self) -> reqwest::ClientBuilder {
        let ca = reqwest::Certificate::from_pem(self.pki.ca_cert_pem().as_bytes()).expect("ca");
        reqwest::Client::builder()
            .tls_certs_only([ca])
            .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], 0)))
            .redirect(reqwest::redirect::Policy::none())
    }

    /// An HTTPS client without a client certificate.
    pub fn client(&self) -> reqwest::Client {
        self.builder().build().expect("client")
    }

    /// An HTTPS client presenting a certificate.
    pub fn mtls_client(&self, cert_pem: &str, key_pem: &str) -> reqwest::Client {
        let identity = reqwest::Identity::from_pem(format!("{cert_pem}\n{key_pem}").as_bytes()).expect("identity");
        self.builder().identity(identity).build().expect("client")
    }

    /// A client certificate issued by the trusted development CA: (cert PEM, key PEM).
    pub fn trusted_cert(&self, common_name: &str) -> (String, String) {
        self.pki.issue_client_cert_pem(common_name).expect("client cert")
    }

    /// Registers a client through the service layer (as `clients add` does).
    pub async fn register(&self, metadata: Value) -> String {
        strongroom_server::service::add_client(&self.server.state.store, metadata, now())
            .await
            .expect("client registers")
            .client_id
    }
}

/// The DN the development PKI gives a client certificate with this common name.
pub fn demo_dn(common_name: &str) -> String {
    format!("CN={common_name},O=Strongroom Demo")
}

/// A client's signing key.
pub fn client_key(alg: JwsAlg) -> LocalSigningKey {
    LocalSigningKey::generate(format!("key-{}", &random_token()[..8]), alg).expect("key").0
}

/// The public JWK Set of a key.
pub fn jwks_of(key: &LocalSigningKey) -> Value {
    json!({"keys": [key.public_jwk()]})
}

/// Claims of a valid client assertion for `client_id` with audience `aud`.
pub fn assertion_claims(client_id: &str, aud: &str) -> Value {
    let now = now();
    json!({"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60, "jti": random_token()})
}

/// A signed client assertion.
pub fn assertion(key: &LocalSigningKey, claims: &Value) -> String {
    key.sign(None, claims).expect("sign")
}

/// The form fields of a `private_key_jwt` client authentication.
pub fn assertion_form(client_id: &str, assertion: &str) -> Vec<(String, String)> {
    vec![
        ("client_id".into(), client_id.into()),
        ("client_assertion_type".into(), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into()),
        ("client_assertion".into(), assertion.into()),
    ]
}

/// A DPoP proof (RFC 9449 §4.2).
pub fn dpop_proof(
    key: &LocalSigningKey,
    method: &str,
    url: &str,
    access_token: Option<&str>,
    nonce: Option<&str>,
) -> String {
    let mut claims = json!({"jti": random_token(), "htm": method, "htu": url, "iat": now()});
    if let Some(t) = access_token {
        claims["ath"] = sha256_b64url(t.as_bytes()).into();
    }
    if let Some(n) = nonce {
        claims["nonce"] = n.into();
    }
    dpop_proof_with(key, &claims)
}

/// A DPoP proof with explicit claims.
pub fn dpop_proof_with(key: &LocalSigningKey, claims: &Value) -> String {
    let header = json!({"typ": "dpop+jwt", "alg": key.alg().as_str(), "jwk": key.public_jwk()});
    sign_with_header(key, &header, claims).expect("sign")
}

/// The RFC 7638 thumbprint of a key.
pub fn thumbprint(key: &LocalSigningKey) -> String {
    let jwk = strongroom_protocol::jose::public_jwk_from_value(&key.public_jwk()).expect("jwk");
    strongroom_protocol::jose::jwk_thumbprint(&jwk).expect("thumbprint")
}

/// Decodes a JWT's payload without verifying it (tests verify separately where it matters).
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("jwt");
    serde_json::from_slice(&strongroom_protocol::jose::b64url_decode(payload).expect("b64")).expect("json")
}

/// Decodes a JWT's header.
pub fn jwt_header(token: &str) -> Value {
    let h = token.split('.').next().expect("jwt");
    serde_json::from_slice(&strongroom_protocol::jose::b64url_decode(h).expect("b64")).expect("json")
}

/// A fresh, empty PostgreSQL database for one test, on the server named by
/// `STRONGROOM_TEST_PG_URL`. `None` when the variable is unset outside CI; in CI a missing
/// database is a failure, so PostgreSQL tests can never be skipped silently.
pub async fn fresh_pg_database() -> Option<String> {
    let Ok(base) = std::env::var("STRONGROOM_TEST_PG_URL") else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "STRONGROOM_TEST_PG_URL must be set in CI");
        eprintln!("skipping: STRONGROOM_TEST_PG_URL is not set");
        return None;
    };
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&base).await.expect("connect to PostgreSQL");
    let name = format!("sr_{}", random_token()[..16].to_lowercase().replace(['-', '_'], "x"));
    // The name is ours: lowercase letters and digits only.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let (prefix, _) = base.rsplit_once('/').expect("database URL with a database name");
    Some(format!("{prefix}/{name}"))
}
