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
        let defaults = Config::default();
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            issuer: format!("https://localhost:{pp}"),
            listen: strongroom_server::config::ListenConfig {
                public: SocketAddr::from(([127, 0, 0, 1], pp)),
                mtls: SocketAddr::from(([127, 0, 0, 1], mp)),
                mtls_base_url: format!("https://localhost:{mp}"),
                ..defaults.listen.clone()
            },
            ..defaults
        };
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
        https_client_builder(&self.pki)
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

    /// Registers a client through the service layer (as `clients add` does), with the kit's
    /// grant types and scopes ([`kit::KIT_GRANT_TYPES`], [`kit::KIT_SCOPE`]) where the
    /// metadata names none. Tests of the server's own defaults use [`Self::register_exact`].
    pub async fn register(&self, mut metadata: Value) -> String {
        if let Some(m) = metadata.as_object_mut() {
            m.entry("grant_types").or_insert_with(|| json!(kit::KIT_GRANT_TYPES));
            m.entry("scope").or_insert_with(|| json!(kit::KIT_SCOPE));
        }
        self.register_exact(metadata).await
    }

    /// Registers a client through the service layer with exactly the metadata given.
    pub async fn register_exact(&self, metadata: Value) -> String {
        strongroom_server::service::add_client(&self.server.state.store, &self.server.state.rules, metadata, now())
            .await
            .expect("client registers")
            .client_id
    }
}

/// An HTTPS client builder that trusts the development CA of `pki`, resolves `localhost`
/// to 127.0.0.1 and follows no redirects.
pub fn https_client_builder(pki: &DevPki) -> reqwest::ClientBuilder {
    let ca = reqwest::Certificate::from_pem(pki.ca_cert_pem().as_bytes()).expect("ca");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], 0)))
        .redirect(reqwest::redirect::Policy::none())
}

/// A server the kit's browser and flow helpers can talk to: the in-process [`TestServer`],
/// or a server running as a separate process (the crash-safety test).
pub trait Served {
    /// A URL on the public listener.
    fn url(&self, path: &str) -> String;
    /// An HTTPS client that trusts the server's certificate.
    fn client(&self) -> reqwest::Client;
}

impl Served for TestServer {
    fn url(&self, path: &str) -> String {
        TestServer::url(self, path)
    }
    fn client(&self) -> reqwest::Client {
        TestServer::client(self)
    }
}

impl<T: Served + ?Sized> Served for &T {
    fn url(&self, path: &str) -> String {
        (**self).url(path)
    }
    fn client(&self) -> reqwest::Client {
        (**self).client()
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

/// Helpers for the client-authentication, DPoP, introspection, proxy and interop tests:
/// raw requests and replies, client registration shortcuts, hand-built JWTs and a second,
/// untrusted test PKI.
pub mod kit {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    };
    use strongroom_protocol::jose::b64url;

    /// Lets the server fetch from the local servers [`host`] starts: the SSRF guard refuses
    /// loopback unless `outbound.allow_private_addresses` is set (development or not).
    pub fn fetch_from_loopback(config: &mut Config) {
        config.outbound.allow_private_addresses = true;
    }

    /// A router serving fixed bodies.
    pub fn files_app(files: Vec<(&'static str, String)>) -> axum::Router {
        let mut app = axum::Router::new();
        for (path, body) in files {
            app = app.route(path, axum::routing::get(move || async move { body }));
        }
        app
    }

    /// A small HTTPS server on 127.0.0.1 serving fixed bodies, with the given certificate.
    pub async fn host(
        cert_pem: &str,
        key_pem: &str,
        files: Vec<(&'static str, String)>,
    ) -> (u16, tokio::sync::oneshot::Sender<()>) {
        host_on(std::net::Ipv4Addr::LOCALHOST.into(), cert_pem, key_pem, files_app(files)).await
    }

    /// A small HTTPS server on `ip` serving `app`, with the given certificate.
    pub async fn host_on(
        ip: std::net::IpAddr,
        cert_pem: &str,
        key_pem: &str,
        app: axum::Router,
    ) -> (u16, tokio::sync::oneshot::Sender<()>) {
        use rustls::pki_types::pem::PemObject;
        let chain = rustls::pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let config = strongroom_server::tls::server_config(chain, key, false).unwrap();
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(strongroom_server::tls::serve(
            listener,
            config,
            app,
            strongroom_server::tls::ServeOptions::default(),
            async move {
                let _ = rx.await;
            },
        ));
        (port, tx)
    }

    /// The test PKI's server certificate and key, which the server's outbound fetcher trusts.
    pub fn trusted_server_cert(ts: &TestServer) -> (String, String) {
        (
            std::fs::read_to_string(ts.pki.server_cert_path()).unwrap(),
            std::fs::read_to_string(ts.pki.server_key_path()).unwrap(),
        )
    }

    /// A response, read completely.
    #[derive(Debug)]
    pub struct Reply {
        /// HTTP status.
        pub status: u16,
        /// Response headers.
        pub headers: reqwest::header::HeaderMap,
        /// The body as text.
        pub text: String,
        /// The body as JSON (`Null` when it is not JSON).
        pub body: Value,
    }

    impl Reply {
        /// A header's value as text (the first one).
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).and_then(|v| v.to_str().ok())
        }
        /// How many times a header occurs.
        pub fn header_count(&self, name: &str) -> usize {
            self.headers.get_all(name).iter().count()
        }
        /// The `access_token` of a token response.
        pub fn access_token(&self) -> String {
            self.body["access_token"].as_str().unwrap_or_else(|| panic!("no access_token in {}", self.text)).to_string()
        }
    }

    /// Sends a request and reads the whole response.
    pub async fn send(rb: reqwest::RequestBuilder) -> Reply {
        let resp = rb.send().await.expect("request is answered");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, text, body }
    }

    /// POSTs a form, with an optional `DPoP` header.
    pub async fn post_form(
        client: &reqwest::Client,
        url: &str,
        form: &[(String, String)],
        dpop: Option<&str>,
    ) -> Reply {
        let mut rb = client.post(url).form(form);
        if let Some(p) = dpop {
            rb = rb.header("DPoP", p);
        }
        send(rb).await
    }

    /// Asserts an OAuth error response: status and `error` code, and that no token came with it.
    #[track_caller]
    pub fn assert_error(r: &Reply, status: u16, code: &str) {
        eprintln!("refused as expected: {} {}", r.status, r.text);
        assert_eq!(r.status, status, "status (body: {})", r.text);
        assert_eq!(r.body["error"], json!(code), "error code (body: {})", r.text);
        assert!(r.body.get("access_token").is_none(), "no token on an error: {}", r.text);
    }

    /// Asserts a successful token response: 200, `Cache-Control: no-store`, and a token.
    #[track_caller]
    pub fn assert_token(r: &Reply) {
        assert_eq!(r.status, 200, "status (body: {})", r.text);
        assert_eq!(r.header("cache-control"), Some("no-store"), "Cache-Control");
        assert!(r.body["access_token"].is_string(), "access_token in {}", r.text);
    }

    /// Adds fields to a form.
    pub fn with(mut form: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        form.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        form
    }

    /// What the kit's clients register unless `extra` says otherwise: every grant the tests
    /// drive, and every scope of the built-in catalogue (the server's own defaults are
    /// `authorization_code` and the OpenID Connect scopes only).
    pub const KIT_GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];
    /// See [`KIT_GRANT_TYPES`].
    pub const KIT_SCOPE: &str = "openid profile email offline_access accounts payments";

    /// Registers a `private_key_jwt` client with `key` under `profile`, plus `extra` metadata.
    pub async fn register_pkjwt(ts: &TestServer, key: &LocalSigningKey, profile: &str, extra: Value) -> String {
        let mut m = json!({"profile": profile, "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks_of(key), "redirect_uris": ["https://app.example/cb"]});
        merge(&mut m, extra);
        ts.register(m).await
    }

    /// Registers a FAPI 2.0 `tls_client_auth` client for the DN `demo_dn(common_name)`.
    pub async fn register_tls(ts: &TestServer, common_name: &str, extra: Value) -> String {
        let mut m = json!({"profile": "fapi2-security", "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_subject_dn": demo_dn(common_name), "redirect_uris": ["https://app.example/cb"]});
        merge(&mut m, extra);
        ts.register(m).await
    }

    fn merge(into: &mut Value, extra: Value) {
        if let (Some(m), Value::Object(e)) = (into.as_object_mut(), extra) {
            m.extend(e);
        }
    }

    /// A `client_credentials` form authenticated with a fresh assertion (aud = issuer).
    pub fn pkjwt_form(ts: &TestServer, client_id: &str, key: &LocalSigningKey) -> Vec<(String, String)> {
        let a = assertion(key, &assertion_claims(client_id, &ts.issuer));
        with(assertion_form(client_id, &a), &[("grant_type", "client_credentials")])
    }

    /// A `client_credentials` form for an mTLS client.
    pub fn mtls_form(client_id: &str) -> Vec<(String, String)> {
        with(vec![], &[("client_id", client_id), ("grant_type", "client_credentials")])
    }

    /// A compact JWS from a header, claims and raw signature bytes (for malformed tokens).
    pub fn raw_jwt(header: &Value, claims: &Value, signature: &[u8]) -> String {
        let h = b64url(&serde_json::to_vec(header).expect("json"));
        let p = b64url(&serde_json::to_vec(claims).expect("json"));
        format!("{h}.{p}.{}", b64url(signature))
    }

    /// An HS256 JWT under `header` (which should say `"alg": "HS256"`).
    pub fn hs256_jwt(secret: &[u8], header: &Value, claims: &Value) -> String {
        let h = b64url(&serde_json::to_vec(header).expect("json"));
        let p = b64url(&serde_json::to_vec(claims).expect("json"));
        let input = format!("{h}.{p}");
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
        let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", b64url(tag.as_ref()))
    }

    /// The DER of the first certificate in a PEM text.
    pub fn pem_to_der(pem: &str) -> Vec<u8> {
        use base64::Engine;
        let b64: String = pem
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        base64::engine::general_purpose::STANDARD.decode(b64.trim()).expect("PEM certificate")
    }

    /// RFC 8705 §3.1 `x5t#S256` of a PEM certificate, computed independently of the server.
    pub fn cert_x5t_s256(pem: &str) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &pem_to_der(pem));
        b64url(digest.as_ref())
    }

    /// The RFC 9440 `Client-Cert` header value (`:base64(DER):`) of a PEM certificate.
    pub fn rfc9440_client_cert(pem: &str) -> String {
        use base64::Engine;
        format!(":{}:", base64::engine::general_purpose::STANDARD.encode(pem_to_der(pem)))
    }

    fn client_params(common_name: &str) -> CertificateParams {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "Strongroom Demo");
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params
    }

    /// A client certificate with the demo DN of `common_name`, issued by a CA made here and
    /// trusted by nobody: (cert PEM, key PEM).
    pub fn untrusted_ca_client_cert(common_name: &str) -> (String, String) {
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let mut ca = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Rogue Test CA");
        ca.distinguished_name = dn;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let cert = client_params(common_name).signed_by(&key, &issuer).expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    /// A self-signed P-256 client certificate and the public JWK of its key (`kty` EC with
    /// `x` and `y` taken from the key's uncompressed point): (cert PEM, key PEM, JWK).
    pub fn self_signed_cert(common_name: &str) -> (String, String, Value) {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let cert = client_params(common_name).self_signed(&key).expect("cert");
        let point = key.public_key_raw();
        assert_eq!((point.len(), point[0]), (65, 4), "uncompressed P-256 point");
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64url(&point[1..33]), "y": b64url(&point[33..65])});
        (cert.pem(), key.serialize_pem(), jwk)
    }

    /// A DPoP-bound token for a new FAPI 2.0 `private_key_jwt` client:
    /// (token, DPoP key, client id, client key).
    pub async fn dpop_token(ts: &TestServer) -> (String, LocalSigningKey, String, LocalSigningKey) {
        let key = client_key(strongroom_protocol::jose::JwsAlg::ES256);
        let id = register_pkjwt(ts, &key, "fapi2-security", json!({})).await;
        let dkey = client_key(strongroom_protocol::jose::JwsAlg::ES256);
        let url = ts.url("/token");
        let proof = dpop_proof(&dkey, "POST", &url, None, None);
        let r = post_form(&ts.client(), &url, &pkjwt_form(ts, &id, &key), Some(&proof)).await;
        assert_token(&r);
        (r.access_token(), dkey, id, key)
    }

    /// A certificate-bound token for a new `tls_client_auth` client with the trusted
    /// certificate `common_name`: (token, client id, cert PEM, key PEM).
    pub async fn mtls_token(ts: &TestServer, common_name: &str) -> (String, String, String, String) {
        let id = register_tls(ts, common_name, json!({})).await;
        let (cert, key) = ts.trusted_cert(common_name);
        let r = post_form(&ts.mtls_client(&cert, &key), &ts.mtls_url("/token"), &mtls_form(&id), None).await;
        assert_token(&r);
        (r.access_token(), id, cert, key)
    }
}

/// A PKCE pair (RFC 7636): a verifier from 32 random bytes, base64url, and its S256
/// challenge.
pub fn pkce_pair() -> (String, String) {
    let verifier = random_token();
    let challenge = sha256_b64url(verifier.as_bytes());
    (verifier, challenge)
}

/// The decoded parameters of a redirect `Location` (query, or fragment when there is no
/// query), by name.
pub fn redirect_params(location: &str) -> std::collections::BTreeMap<String, String> {
    let url = url::Url::parse(location).expect("absolute redirect URL");
    let raw = url.query().or(url.fragment()).unwrap_or("").to_string();
    url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect()
}

/// The value of a hidden form field `name` in a rendered page (HTML entities decoded).
pub fn form_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&#x2f;", "/")
            .replace("&#x27;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// A response as a browser test sees it.
#[derive(Debug)]
pub struct BrowserResponse {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body text.
    pub body: String,
}

impl BrowserResponse {
    /// The `Location` header, if any.
    pub fn location(&self) -> Option<String> {
        self.headers.get("location").and_then(|v| v.to_str().ok()).map(str::to_string)
    }
}

/// A minimal browser over the test client: it keeps cookies (by name, ignoring
/// attributes) and follows nothing by itself.
pub struct Browser {
    http: reqwest::Client,
    /// Cookies the server has set, by name.
    pub cookies: std::collections::BTreeMap<String, String>,
}

impl Browser {
    /// A browser with an empty cookie jar.
    pub fn new(ts: &impl Served) -> Browser {
        Browser { http: ts.client(), cookies: Default::default() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn finish(&mut self, req: reqwest::RequestBuilder) -> BrowserResponse {
        let req = if self.cookies.is_empty() { req } else { req.header("cookie", self.cookie_header()) };
        let resp = req.send().await.expect("request");
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().expect("ascii cookie");
            let pair = v.split(';').next().unwrap_or("");
            if let Some((k, val)) = pair.split_once('=') {
                self.cookies.insert(k.trim().to_string(), val.trim().to_string());
            }
        }
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.expect("body");
        BrowserResponse { status, headers, body }
    }

    /// `GET url`.
    pub async fn get(&mut self, url: &str) -> BrowserResponse {
        let req = self.http.get(url);
        self.finish(req).await
    }

    /// `POST url` with a form body.
    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> BrowserResponse {
        let req = self.http.post(url).form(form);
        self.finish(req).await
    }
}

/// Signs in on the login page an authorization URL leads to and approves (or denies) on
/// the consent page; returns the response to the decision (a 303 to the client, or a
/// form-post page).
pub async fn sign_in_and_decide(
    ts: &impl Served,
    authorize_url: &str,
    user: &str,
    password: &str,
    decision: &str,
) -> BrowserResponse {
    let mut b = Browser::new(ts);
    let login = b.get(authorize_url).await;
    assert_eq!(login.status, 200, "login page: {}", login.body);
    let csrf = form_field(&login.body, "csrf").expect("csrf field");
    let request_uri = form_field(&login.body, "request_uri").expect("request_uri field");
    let signed_in = b
        .post_form(
            &ts.url("/login"),
            &[("username", user), ("password", password), ("csrf", &csrf), ("request_uri", &request_uri)],
        )
        .await;
    assert_eq!(signed_in.status, 303, "login: {}", signed_in.body);
    let consent = b.get(&signed_in.location().expect("location")).await;
    assert_eq!(consent.status, 200, "consent page: {}", consent.body);
    let csrf = form_field(&consent.body, "csrf").expect("csrf field");
    let request_uri = form_field(&consent.body, "request_uri").expect("request_uri field");
    b.post_form(&ts.url("/consent"), &[("csrf", &csrf), ("request_uri", &request_uri), ("decision", decision)]).await
}

/// Runs `interop/verify.mjs` (the `jose` npm package) on a JWT: verified header and
/// payload, and half hashes computed by Node. `None` when Node or the packages are
/// missing outside CI (in CI that is a failure).
pub async fn verify_with_jose(jwks: &Value, token: &str, hash_inputs: Value) -> Option<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop");
    if !dir.join("node_modules").join("jose").is_dir() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "interop/node_modules is missing in CI");
        eprintln!("skipping the jose check: run `npm ci` in interop/");
        return None;
    }
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("node")
        .arg("verify.mjs")
        .current_dir(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let input =
        json!({"jwks": jwks, "token": token, "algorithms": ["PS256", "ES256", "EdDSA"], "hash_inputs": hash_inputs});
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.to_string().as_bytes()).await.expect("write");
    drop(stdin);
    let out = child.wait_with_output().await.expect("node finishes");
    assert!(out.status.success(), "jose refused the JWT: {}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).expect("json from verify.mjs"))
}

/// Pushes the authorization request `par` (client authentication included) with a DPoP
/// proof by `dkey`, asserts 201, and returns the authorization URL that resumes it.
pub async fn push_with_dpop(
    ts: &impl Served,
    client_id: &str,
    dkey: &LocalSigningKey,
    par: &[(String, String)],
) -> String {
    let proof = dpop_proof(dkey, "POST", &ts.url("/par"), None, None);
    let r = kit::post_form(&ts.client(), &ts.url("/par"), par, Some(&proof)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("request_uri", r.body["request_uri"].as_str().expect("request_uri"))
        .finish();
    ts.url(&format!("/authorize?{q}"))
}

/// What a completed FAPI 2.0 code flow gave: the token response and the client's keys.
pub struct FlowTokens {
    /// The token response.
    pub body: Value,
    /// The client.
    pub client_id: String,
    /// The client's assertion key.
    pub key: LocalSigningKey,
    /// The DPoP key the tokens are bound to.
    pub dkey: LocalSigningKey,
}

/// A complete FAPI 2.0 flow for an existing user, by a new `private_key_jwt` + DPoP client:
/// PAR (with `extra` parameters), sign-in and approval, code exchange. Asserts each step.
pub async fn fapi2_code_flow(
    ts: &TestServer,
    user: &str,
    password: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> FlowTokens {
    use kit::{post_form, with};
    let key = client_key(JwsAlg::ES256);
    let redirect = ts.url("/demo/callback");
    let id = ts
        .register(json!({"profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key), "redirect_uris": [redirect]}))
        .await;
    let dkey = client_key(JwsAlg::ES256);
    let (verifier, challenge) = pkce_pair();
    let auth = || assertion_form(&id, &assertion(&key, &assertion_claims(&id, &ts.issuer)));
    let par = with(
        with(
            auth(),
            &[
                ("response_type", "code"),
                ("redirect_uri", &redirect),
                ("scope", scope),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        ),
        extra,
    );
    let authorize = push_with_dpop(ts, &id, &dkey, &par).await;
    let done = sign_in_and_decide(ts, &authorize, user, password, "approve").await;
    let code = redirect_params(&done.location().expect("redirect"))["code"].clone();
    let form = with(
        auth(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("code_verifier", &verifier),
        ],
    );
    let r = post_form(
        &ts.client(),
        &ts.url("/token"),
        &form,
        Some(&dpop_proof(&dkey, "POST", &ts.url("/token"), None, None)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    FlowTokens { body: r.body, client_id: id, key, dkey }
}
