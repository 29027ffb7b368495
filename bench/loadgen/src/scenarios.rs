//! The scenarios: virtual clients, their connections and keys, and one operation of each kind.

use crate::procfs;
use crate::stats::{Errors, Latency};
use crate::target::{AuthMethod, Binding, ClientSpec, Kind, ScenarioSpec, Target, Userinfo};
use anyhow::{Context, bail};
use reqwest::header::HeaderMap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strongroom_protocol::jose::{
    JwsAlg, JwsSigner, LocalSigningKey, b64url, b64url_decode, sha256_b64url, sign_with_header,
};
use strongroom_protocol::random::random_token;

/// One failed check: a kind (counted) and a sample (shown).
#[derive(Debug)]
pub struct Fail {
    /// e.g. `token: http 400 invalid_client`.
    pub kind: String,
    /// Body or detail.
    pub sample: String,
}

type OpResult<T> = Result<T, Fail>;

fn fail(kind: impl Into<String>, sample: impl Into<String>) -> Fail {
    Fail { kind: kind.into(), sample: sample.into() }
}

/// Endpoints from discovery.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Public endpoints by metadata name.
    pub public: Value,
    /// `mtls_endpoint_aliases`, if any.
    pub aliases: Value,
}

impl Endpoints {
    /// The endpoint `name` for a client: the mTLS alias when the client presents a
    /// certificate and the server has one (RFC 8705 §5).
    pub fn get(&self, name: &str, with_cert: bool) -> Option<String> {
        if with_cert && let Some(a) = self.aliases.get(name).and_then(Value::as_str) {
            return Some(a.to_string());
        }
        self.public.get(name).and_then(Value::as_str).map(str::to_string)
    }
}

/// A loaded client: its TLS configurations and signing key.
pub struct LoadedClient {
    /// The target's description.
    pub spec: ClientSpec,
    /// TLS with session resumption (keep-alive clients).
    pub tls: rustls::ClientConfig,
    /// TLS without resumption (a full handshake per connection).
    pub tls_fresh: rustls::ClientConfig,
    /// `x5t#S256` of the client certificate.
    pub x5t: Option<String>,
    /// Assertion key.
    pub signing_key: Option<Arc<LocalSigningKey>>,
}

/// Everything shared by the virtual clients of a run.
pub struct Env {
    /// The target.
    pub target: Target,
    /// Discovery.
    pub endpoints: Endpoints,
    /// Clients by key.
    pub clients: HashMap<String, LoadedClient>,
}

fn read(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Loads a signing key: PKCS#8 PEM, or a private EC P-256 JWK in JSON.
pub fn load_signing_key(path: &std::path::Path, alg: JwsAlg, kid: Option<&str>) -> anyhow::Result<LocalSigningKey> {
    let bytes = read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    if text.trim_start().starts_with('{') {
        let jwk: Value = serde_json::from_str(&text).context("JWK")?;
        let jwk = if jwk.get("keys").is_some() { jwk["keys"][0].clone() } else { jwk };
        let part = |n: &str| {
            jwk.get(n).and_then(Value::as_str).and_then(b64url_decode).with_context(|| format!("JWK member {n}"))
        };
        if jwk.get("crv").and_then(Value::as_str) != Some("P-256") {
            bail!("{}: only private EC P-256 JWKs are read (use PKCS#8 PEM otherwise)", path.display());
        }
        let mut public = vec![4u8];
        public.extend(part("x")?);
        public.extend(part("y")?);
        let kp = aws_lc_rs::signature::EcdsaKeyPair::from_private_key_and_public_key(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &part("d")?,
            &public,
        )
        .map_err(|e| anyhow::anyhow!("EC JWK {}: {e}", path.display()))?;
        let der = kp.to_pkcs8v1().map_err(|e| anyhow::anyhow!("PKCS#8: {e}"))?;
        let kid = kid.or(jwk.get("kid").and_then(Value::as_str)).unwrap_or("client-key").to_string();
        return LocalSigningKey::from_pkcs8(kid, alg, der.as_ref()).map_err(|e| anyhow::anyhow!("{e}"));
    }
    let key = PrivateKeyDer::from_pem_slice(&bytes).with_context(|| format!("PEM key {}", path.display()))?;
    let PrivateKeyDer::Pkcs8(der) = key else { bail!("{}: the signing key must be PKCS#8", path.display()) };
    LocalSigningKey::from_pkcs8(kid.unwrap_or("client-key"), alg, der.secret_pkcs8_der())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn tls_config(
    target: &Target,
    cert: Option<(&std::path::Path, &std::path::Path)>,
    resume: bool,
) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&read(&target.ca_file)?) {
        roots.add(c.context("CA PEM")?).context("CA certificate")?;
    }
    if roots.is_empty() {
        bail!("no certificate in {}", target.ca_file.display());
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut cfg = match cert {
        Some((c, k)) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(&read(c)?).collect::<Result<_, _>>().context("client cert PEM")?;
            let key = PrivateKeyDer::from_pem_slice(&read(k)?).context("client key PEM")?;
            builder.with_client_auth_cert(chain, key).context("client certificate and key")?
        }
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resume {
        cfg.resumption = rustls::client::Resumption::disabled();
    }
    Ok(cfg)
}

/// An HTTP/1.1 client with its own pool; `fresh` = no idle connections kept.
pub fn http_client(tls: &rustls::ClientConfig, fresh: bool) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .tls_backend_preconfigured(tls.clone())
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    if fresh {
        b = b.pool_max_idle_per_host(0);
    }
    Ok(b.build()?)
}

impl Env {
    /// Loads keys and certificates, fetches discovery. Fails loudly on anything missing.
    pub async fn load(target: Target) -> anyhow::Result<Env> {
        let mut clients = HashMap::new();
        for (k, spec) in &target.clients {
            let cert = spec.cert.as_deref().zip(spec.key.as_deref());
            let tls = tls_config(&target, cert, true).with_context(|| format!("client {k}"))?;
            let tls_fresh = tls_config(&target, cert, false)?;
            let x5t = match &spec.cert {
                Some(c) => {
                    let der = CertificateDer::pem_slice_iter(&read(c)?).next().context("no certificate")??;
                    Some(sha256_b64url(der.as_ref()))
                }
                None => None,
            };
            let signing_key = match &spec.signing_key {
                Some(p) => {
                    let alg_name = spec.signing_alg.as_deref().unwrap_or("ES256");
                    let alg = JwsAlg::parse(alg_name).with_context(|| format!("client {k}: algorithm {alg_name}"))?;
                    Some(Arc::new(
                        load_signing_key(p, alg, spec.kid.as_deref()).with_context(|| format!("client {k}"))?,
                    ))
                }
                None => None,
            };
            clients.insert(k.clone(), LoadedClient { spec: spec.clone(), tls, tls_fresh, x5t, signing_key });
        }
        let anon = http_client(&tls_config(&target, None, true)?, false)?;
        let url = format!("{}/.well-known/openid-configuration", target.issuer);
        let resp = anon.get(&url).send().await.with_context(|| format!("discovery {url}"))?;
        if !resp.status().is_success() {
            bail!("discovery {url}: HTTP {}", resp.status());
        }
        let public: Value = resp.json().await.context("discovery JSON")?;
        if public.get("issuer").and_then(Value::as_str) != Some(target.issuer.as_str()) {
            bail!("discovery issuer {:?} is not the target's {:?}", public.get("issuer"), target.issuer);
        }
        let aliases = public.get("mtls_endpoint_aliases").cloned().unwrap_or(Value::Null);
        Ok(Env { target, endpoints: Endpoints { public, aliases }, clients })
    }

    fn client(&self, key: &str) -> &LoadedClient {
        &self.clients[key]
    }
}

/// Decodes a JWT's payload without verifying it; `None` for opaque tokens.
pub fn jwt_payload(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_, p, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else { return None };
    serde_json::from_slice(&b64url_decode(p)?).ok()
}

/// The `error` member of an OAuth error body, or a short prefix of the body.
fn error_code(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(40).collect::<String>().replace('\n', " "))
}

/// A response, read fully.
pub struct Reply {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Per-run step timing and counters of one virtual client.
#[derive(Default)]
pub struct Tally {
    /// Step latencies (ms).
    pub steps: BTreeMap<&'static str, Vec<f64>>,
    /// HTTP requests sent.
    pub requests: u64,
    /// `use_dpop_nonce` retries.
    pub nonce_retries: u64,
    /// Login/consent forms submitted.
    pub forms: u64,
    /// Exact requests of the first operations (`METHOD /path STATUS`).
    pub sequence: Vec<String>,
    /// Whether to record `sequence`.
    pub record: bool,
}

/// One virtual client.
pub struct Vu {
    env: Arc<Env>,
    spec: ScenarioSpec,
    http: reqwest::Client,
    dpop: LocalSigningKey,
    dpop_jwk: Value,
    dpop_jkt: String,
    nonce: Option<String>,
    cookies: BTreeMap<String, String>,
    userinfo: bool,
    /// Introspect: (token, obtained at, renew after).
    held_token: Option<(String, Instant, Duration)>,
    /// Counters.
    pub tally: Tally,
}

fn path_of(url: &str) -> String {
    url::Url::parse(url).map(|u| u.path().to_string()).unwrap_or_else(|_| url.to_string())
}

impl Vu {
    /// A virtual client for `scenario` with its own connection pool and DPoP key.
    pub fn new(env: Arc<Env>, scenario: &str) -> anyhow::Result<Vu> {
        let spec = env
            .target
            .scenarios
            .get(scenario)
            .with_context(|| format!("no scenario {scenario:?} in the target"))?
            .clone();
        let c = env.client(&spec.client);
        let http = http_client(&c.tls, false)?;
        let (dpop, _) = LocalSigningKey::generate("dpop", JwsAlg::ES256).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut dpop_jwk = dpop.public_jwk();
        if let Some(o) = dpop_jwk.as_object_mut() {
            o.remove("kid");
            o.remove("use");
            o.remove("alg");
        }
        let jkt = sha256_b64url(
            format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                dpop_jwk["x"].as_str().unwrap_or_default(),
                dpop_jwk["y"].as_str().unwrap_or_default()
            )
            .as_bytes(),
        );
        let userinfo = spec.userinfo != Userinfo::No;
        Ok(Vu {
            env,
            spec,
            http,
            dpop,
            dpop_jwk,
            dpop_jkt: jkt,
            nonce: None,
            cookies: BTreeMap::new(),
            userinfo,
            held_token: None,
            tally: Tally::default(),
        })
    }

    fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> String {
        let now = now();
        let mut claims = json!({"jti": random_token(), "htm": method, "htu": url, "iat": now});
        if let Some(t) = access_token {
            claims["ath"] = sha256_b64url(t.as_bytes()).into();
        }
        if let Some(n) = &self.nonce {
            claims["nonce"] = n.clone().into();
        }
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.dpop_jwk});
        sign_with_header(&self.dpop, &header, &claims).unwrap_or_default()
    }

    fn auth_form(&self, client: &LoadedClient, form: &mut Vec<(String, String)>) {
        form.push(("client_id".into(), client.spec.client_id.clone()));
        if client.spec.auth == AuthMethod::PrivateKeyJwt
            && let Some(key) = &client.signing_key
        {
            let now = now();
            let id = &client.spec.client_id;
            let claims = json!({"iss": id, "sub": id, "aud": self.env.target.issuer, "iat": now, "exp": now + 60, "jti": random_token()});
            form.push((
                "client_assertion_type".into(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ));
            form.push(("client_assertion".into(), key.sign(None, &claims).unwrap_or_default()));
        }
    }

    async fn send(
        &mut self,
        step: &'static str,
        http: &reqwest::Client,
        req: reqwest::RequestBuilder,
    ) -> OpResult<Reply> {
        let _ = http;
        let t0 = Instant::now();
        let built = req.build().map_err(|e| fail(format!("{step}: request"), e.to_string()))?;
        let (method, path) = (built.method().to_string(), path_of(built.url().as_str()));
        let resp = http.execute(built).await.map_err(|e| {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(x) = src {
                s.push_str(": ");
                s.push_str(&x.to_string());
                src = x.source();
            }
            fail(format!("{step}: transport"), s)
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.map_err(|e| fail(format!("{step}: body"), e.to_string()))?;
        self.tally.requests += 1;
        self.tally.steps.entry(step).or_default().push(t0.elapsed().as_secs_f64() * 1000.0);
        if self.tally.record {
            self.tally.sequence.push(format!("{method} {path} {status}"));
        }
        if let Some(n) = headers.get("dpop-nonce").and_then(|v| v.to_str().ok()) {
            self.nonce = Some(n.to_string());
        }
        for v in headers.get_all("set-cookie") {
            if let Some((k, val)) = v.to_str().unwrap_or("").split(';').next().and_then(|p| p.split_once('=')) {
                if val.trim().is_empty() {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies.insert(k.trim().to_string(), val.trim().to_string());
                }
            }
        }
        Ok(Reply { status, headers, body })
    }

    /// POSTs a form, with a DPoP proof when asked; retries once on `use_dpop_nonce`.
    async fn post(
        &mut self,
        step: &'static str,
        http: &reqwest::Client,
        url: &str,
        form: &[(String, String)],
        dpop: bool,
    ) -> OpResult<Reply> {
        for attempt in 0..2 {
            let mut req = http.post(url).form(form);
            if dpop {
                req = req.header("DPoP", self.proof("POST", url, None));
            }
            let r = self.send(step, http, req).await?;
            if attempt == 0
                && dpop
                && r.status >= 400
                && r.body.contains("use_dpop_nonce")
                && r.header("dpop-nonce").is_some()
            {
                self.tally.nonce_retries += 1;
                continue;
            }
            return Ok(r);
        }
        unreachable!()
    }

    fn check_token(&self, step: &str, r: &Reply, binding: Binding, client: &LoadedClient) -> OpResult<Value> {
        if r.status != 200 {
            return Err(fail(format!("{step}: http {} {}", r.status, error_code(&r.body)), r.body.clone()));
        }
        let v = r.json();
        let Some(at) = v.get("access_token").and_then(Value::as_str) else {
            return Err(fail(format!("{step}: check access_token"), r.body.clone()));
        };
        let tt = v.get("token_type").and_then(Value::as_str).unwrap_or("");
        let want = match binding {
            Binding::Mtls => "bearer",
            Binding::Dpop => "dpop",
        };
        if !tt.eq_ignore_ascii_case(want) {
            return Err(fail(format!("{step}: check token_type"), r.body.clone()));
        }
        if let Some(claims) = jwt_payload(at) {
            let ok = match binding {
                Binding::Mtls => client.x5t.is_some() && claims["cnf"]["x5t#S256"].as_str() == client.x5t.as_deref(),
                Binding::Dpop => claims["cnf"]["jkt"].as_str() == Some(self.dpop_jkt.as_str()),
            };
            if !ok {
                return Err(fail(format!("{step}: check cnf"), claims.to_string()));
            }
        }
        Ok(v)
    }

    /// One `client_credentials` token request; returns the response JSON.
    async fn token_op(&mut self, spec: &ScenarioSpec) -> OpResult<Value> {
        let env = self.env.clone();
        let client = env.client(&spec.client);
        let with_cert = client.spec.cert.is_some();
        let url = env.endpoints.get("token_endpoint", with_cert).ok_or_else(|| fail("setup: token_endpoint", ""))?;
        let mut form = vec![("grant_type".to_string(), "client_credentials".to_string())];
        if let Some(s) = &spec.scope {
            form.push(("scope".into(), s.clone()));
        }
        self.auth_form(client, &mut form);
        let binding = spec.binding.unwrap_or(Binding::Mtls);
        let r = if spec.new_connection {
            let http = http_client(&client.tls_fresh, true).map_err(|e| fail("token: client", e.to_string()))?;
            self.post("token", &http, &url, &form, binding == Binding::Dpop).await?
        } else if spec.client == self.spec.client {
            let http = self.http.clone();
            self.post("token", &http, &url, &form, binding == Binding::Dpop).await?
        } else {
            let http = http_client(&client.tls, false).map_err(|e| fail("token: client", e.to_string()))?;
            self.post("token", &http, &url, &form, binding == Binding::Dpop).await?
        };
        self.check_token("token", &r, binding, client)
    }

    /// Follows the browser part from `url` until the redirect to `redirect_uri`; fills
    /// login and consent forms when shown. Returns the redirect's query parameters.
    async fn browse(&mut self, mut url: String, redirect_uri: &str) -> OpResult<HashMap<String, String>> {
        let http = self.http.clone();
        let mut post: Option<Vec<(String, String)>> = None;
        for _ in 0..12 {
            let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            let mut req = match post.take() {
                Some(form) => http.post(&url).form(&form),
                None => http.get(&url),
            };
            if !cookie.is_empty() {
                req = req.header("cookie", cookie);
            }
            let step = if url.contains("request_uri=") && url.contains("client_id=") { "authorize" } else { "browser" };
            let r = self.send(step, &http, req).await?;
            match r.status {
                301 | 302 | 303 | 307 => {
                    let loc = r.header("location").ok_or_else(|| fail("authorize: redirect without location", ""))?;
                    let next = url::Url::parse(&url)
                        .and_then(|u| u.join(loc))
                        .map_err(|e| fail("authorize: location", e.to_string()))?;
                    if next.as_str().starts_with(redirect_uri) {
                        let params: HashMap<String, String> = next.query_pairs().into_owned().collect();
                        return Ok(params);
                    }
                    url = next.to_string();
                }
                200 => {
                    let form = pick_form(&r.body)
                        .ok_or_else(|| fail("authorize: page without a usable form", r.body.clone()))?;
                    let mut fields = form.hidden;
                    if let Some(pw) = form.password_field {
                        fields.push((
                            form.username_field.unwrap_or_else(|| "username".into()),
                            self.spec.username.clone().unwrap_or_default(),
                        ));
                        fields.push((pw, self.spec.password.clone().unwrap_or_default()));
                    } else if let Some(b) = form.button {
                        fields.push(b);
                    }
                    self.tally.forms += 1;
                    url = url::Url::parse(&url)
                        .and_then(|u| u.join(&form.action))
                        .map_err(|e| fail("authorize: form action", e.to_string()))?
                        .to_string();
                    post = Some(fields);
                }
                s => return Err(fail(format!("authorize: http {s}"), r.body.chars().take(400).collect::<String>())),
            }
        }
        Err(fail("authorize: too many redirects", url))
    }

    /// One whole FAPI 2.0 flow.
    async fn flow_op(&mut self) -> OpResult<()> {
        let env = self.env.clone();
        let spec = self.spec.clone();
        let client = env.client(&spec.client);
        let with_cert = client.spec.cert.is_some();
        let par = env
            .endpoints
            .get("pushed_authorization_request_endpoint", with_cert)
            .ok_or_else(|| fail("setup: no PAR endpoint", ""))?;
        let token_url =
            env.endpoints.get("token_endpoint", with_cert).ok_or_else(|| fail("setup: token_endpoint", ""))?;
        let redirect_uri = spec.redirect_uri.clone().unwrap_or_default();
        let verifier = format!("{}{}", random_token(), random_token());
        let (state, nonce) = (random_token(), random_token());
        let mut form = Vec::new();
        self.auth_form(client, &mut form);
        for (k, v) in [
            ("response_type", "code"),
            ("redirect_uri", redirect_uri.as_str()),
            ("scope", spec.scope.as_deref().unwrap_or("openid")),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", sha256_b64url(verifier.as_bytes()).as_str()),
            ("code_challenge_method", "S256"),
        ] {
            form.push((k.into(), v.into()));
        }
        let http = self.http.clone();
        let r = self.post("par", &http, &par, &form, spec.par_dpop.unwrap_or(true)).await?;
        if r.status != 201 {
            return Err(fail(format!("par: http {} {}", r.status, error_code(&r.body)), r.body));
        }
        let request_uri = r.json()["request_uri"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| fail("par: check request_uri", r.body.clone()))?;
        let auth = env
            .endpoints
            .get("authorization_endpoint", false)
            .ok_or_else(|| fail("setup: authorization_endpoint", ""))?;
        let mut u = url::Url::parse(&auth).map_err(|e| fail("setup: authorization_endpoint", e.to_string()))?;
        u.query_pairs_mut().append_pair("client_id", &client.spec.client_id).append_pair("request_uri", &request_uri);
        let params = self.browse(u.to_string(), &redirect_uri).await?;
        if let Some(e) = params.get("error") {
            return Err(fail(format!("authorize: error {e}"), format!("{params:?}")));
        }
        if params.get("state") != Some(&state) {
            return Err(fail("authorize: check state", format!("{params:?}")));
        }
        if params.get("iss").map(String::as_str) != Some(env.target.issuer.as_str()) {
            return Err(fail("authorize: check iss", format!("{params:?}")));
        }
        let code = params.get("code").cloned().ok_or_else(|| fail("authorize: check code", format!("{params:?}")))?;
        let mut form = vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".into(), code),
            ("redirect_uri".into(), redirect_uri.clone()),
            ("code_verifier".into(), verifier),
        ];
        self.auth_form(client, &mut form);
        let r = self.post("token", &http, &token_url, &form, true).await?;
        let v = self.check_token("token", &r, spec.binding.unwrap_or(Binding::Dpop), client)?;
        let idt = v.get("id_token").and_then(Value::as_str).and_then(jwt_payload);
        match idt {
            Some(c)
                if c["nonce"].as_str() == Some(nonce.as_str())
                    && c["iss"].as_str() == Some(env.target.issuer.as_str()) => {}
            _ => return Err(fail("token: check id_token nonce/iss", r.body.clone())),
        }
        if self.userinfo {
            let at = v["access_token"].as_str().unwrap_or_default().to_string();
            let ui =
                env.endpoints.get("userinfo_endpoint", with_cert).ok_or_else(|| fail("userinfo: no endpoint", ""))?;
            let req = http
                .get(&ui)
                .header("authorization", format!("DPoP {at}"))
                .header("DPoP", self.proof("GET", &ui, Some(&at)));
            let r = self.send("userinfo", &http, req).await?;
            if r.status != 200 || r.json().get("sub").is_none() {
                return Err(fail(format!("userinfo: http {} {}", r.status, error_code(&r.body)), r.body));
            }
        }
        Ok(())
    }

    async fn introspect_op(&mut self) -> OpResult<()> {
        let env = self.env.clone();
        let spec = self.spec.clone();
        let renew = match &self.held_token {
            Some((_, at, life)) => at.elapsed() >= *life,
            None => true,
        };
        if renew {
            let src = env.target.scenarios[spec.token_from.as_deref().unwrap_or_default()].clone();
            let v = self.token_op(&src).await?;
            let life = v.get("expires_in").and_then(Value::as_u64).unwrap_or(60);
            let at = v["access_token"].as_str().unwrap_or_default().to_string();
            self.held_token = Some((at, Instant::now(), Duration::from_secs((life / 2).max(1))));
        }
        let token = self.held_token.as_ref().map(|t| t.0.clone()).unwrap_or_default();
        let client = env.client(&spec.client);
        let url = env
            .endpoints
            .get("introspection_endpoint", client.spec.cert.is_some())
            .ok_or_else(|| fail("setup: introspection_endpoint", ""))?;
        let mut form = vec![("token".to_string(), token)];
        self.auth_form(client, &mut form);
        let http = self.http.clone();
        let r = self.post("introspect", &http, &url, &form, false).await?;
        let v = r.json();
        if r.status != 200 || v["active"] != json!(true) {
            return Err(fail(format!("introspect: http {} {}", r.status, error_code(&r.body)), r.body));
        }
        if v.get("cnf").is_none() {
            return Err(fail("introspect: check cnf", r.body));
        }
        Ok(())
    }

    /// One operation of the scenario.
    pub async fn op(&mut self) -> OpResult<()> {
        match self.spec.kind {
            Kind::Token => {
                let spec = self.spec.clone();
                self.token_op(&spec).await.map(|_| ())
            }
            Kind::Flow => self.flow_op().await,
            Kind::Introspect => self.introspect_op().await,
        }
    }

    /// Set-up of this client (untimed): flows log in once (and probe userinfo); opaque
    /// tokens are checked by introspection once. Returns notes for `setup_checks`.
    pub async fn setup(&mut self, first: bool) -> anyhow::Result<Vec<String>> {
        let mut notes = Vec::new();
        self.tally.record = first;
        let spec = self.spec.clone();
        if spec.kind == Kind::Flow && spec.userinfo == Userinfo::Auto {
            self.userinfo = false;
        }
        let r = self.op().await;
        if let Err(f) = r {
            bail!("set-up operation failed: {}: {}", f.kind, f.sample);
        }
        if spec.kind == Kind::Flow {
            if first {
                notes.push(format!("first flow (with login/consent): {}", self.tally.sequence.join(", ")));
            }
            if spec.userinfo == Userinfo::Auto {
                // Probe userinfo with a fresh token from one more flow.
                self.userinfo = true;
                match self.op().await {
                    Ok(()) => notes.push("userinfo: answered 200, included in each flow".into()),
                    Err(f) if f.kind.starts_with("userinfo: http 501") || f.kind.starts_with("userinfo: http 404") => {
                        self.userinfo = false;
                        notes.push(format!("userinfo: NOT MEASURED — the server answered `{}` (not implemented yet); flows end at the token response", f.kind));
                    }
                    Err(f) => bail!("userinfo probe failed: {}: {}", f.kind, f.sample),
                }
            }
        }
        if first && matches!(spec.kind, Kind::Token) {
            notes.push(self.check_binding_once(&spec).await?);
        }
        self.tally = Tally { record: first, ..Tally::default() };
        Ok(notes)
    }

    async fn check_binding_once(&mut self, spec: &ScenarioSpec) -> anyhow::Result<String> {
        let v = self.token_op(spec).await.map_err(|f| anyhow::anyhow!("{}: {}", f.kind, f.sample))?;
        let at = v["access_token"].as_str().unwrap_or_default();
        if jwt_payload(at).is_some() {
            return Ok("access tokens are JWTs: cnf checked on every response".into());
        }
        // Opaque: introspect once as the same client and compare cnf.
        let env = self.env.clone();
        let client = env.client(&spec.client);
        let url = env
            .endpoints
            .get("introspection_endpoint", client.spec.cert.is_some())
            .context("introspection_endpoint")?;
        let mut form = vec![("token".to_string(), at.to_string())];
        self.auth_form(client, &mut form);
        let http = self.http.clone();
        let r = self
            .post("setup-introspect", &http, &url, &form, false)
            .await
            .map_err(|f| anyhow::anyhow!("{}: {}", f.kind, f.sample))?;
        let j = r.json();
        let ok = match spec.binding {
            Some(Binding::Mtls) => j["cnf"]["x5t#S256"].as_str() == client.x5t.as_deref() && client.x5t.is_some(),
            _ => j["cnf"]["jkt"].as_str() == Some(self.dpop_jkt.as_str()),
        };
        if !ok {
            bail!("opaque token's binding differs from ours: {}", r.body);
        }
        Ok("opaque access tokens: binding checked once by introspection at set-up".into())
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A form found on a page.
#[derive(Debug, PartialEq)]
pub struct PageForm {
    /// `action`.
    pub action: String,
    /// Hidden inputs.
    pub hidden: Vec<(String, String)>,
    /// Name of the password input.
    pub password_field: Option<String>,
    /// Name of the user name input.
    pub username_field: Option<String>,
    /// The approving submit button (name, value).
    pub button: Option<(String, String)>,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let mut from = 0;
    while let Some(i) = tag[from..].find(&needle) {
        let start = from + i;
        let before = tag[..start].chars().last();
        if before.is_some_and(|c| c.is_whitespace()) {
            let vs = start + needle.len();
            let end = tag[vs..].find('"')? + vs;
            return Some(html_unescape(&tag[vs..end]));
        }
        from = start + needle.len();
    }
    None
}

fn html_unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

const REJECT: [&str; 5] = ["abort", "deny", "cancel", "reject", "decline"];

/// The form a browser would submit to go on: the first with a password field, else the
/// first whose action and button are not a refusal.
pub fn pick_form(html: &str) -> Option<PageForm> {
    let mut forms = Vec::new();
    for chunk in html.split("<form").skip(1) {
        let body = chunk.split("</form>").next().unwrap_or(chunk);
        let open_end = body.find('>')?;
        let open = format!(" {}", &body[..open_end]);
        let action = attr(&open, "action").unwrap_or_default();
        let mut f = PageForm { action, hidden: Vec::new(), password_field: None, username_field: None, button: None };
        for tag in body.split('<').skip(1) {
            let t = format!(" {}", tag.split('>').next().unwrap_or(""));
            let kind = if t.starts_with(" input") {
                attr(&t, "type").unwrap_or_else(|| "text".into())
            } else if t.starts_with(" button") {
                "button".into()
            } else {
                continue;
            };
            let Some(name) = attr(&t, "name") else { continue };
            let value = attr(&t, "value").unwrap_or_default();
            match kind.as_str() {
                "hidden" => f.hidden.push((name, value)),
                "password" => f.password_field = Some(name),
                "text" | "email" if f.username_field.is_none() => f.username_field = Some(name),
                "button" | "submit"
                    if f.button.is_none() && !REJECT.iter().any(|w| value.to_ascii_lowercase().contains(w)) =>
                {
                    f.button = Some((name, value));
                }
                _ => {}
            }
        }
        forms.push(f);
    }
    if let Some(i) = forms.iter().position(|f| f.password_field.is_some()) {
        return Some(forms.swap_remove(i));
    }
    forms.into_iter().find(|f| !REJECT.iter().any(|w| f.action.to_ascii_lowercase().contains(w)))
}

/// Latency summaries per step.
pub fn step_summary(steps: BTreeMap<&'static str, Vec<f64>>) -> BTreeMap<String, Latency> {
    steps.into_iter().map(|(k, mut v)| (k.to_string(), Latency::of(&mut v))).collect()
}

/// Run parameters.
pub struct RunParams {
    /// Scenario name.
    pub scenario: String,
    /// Virtual clients.
    pub concurrency: usize,
    /// Measured seconds.
    pub duration: f64,
    /// Warm-up seconds.
    pub warmup: f64,
    /// Server PID.
    pub pid: u32,
    /// Loadgen worker threads (reported).
    pub threads: usize,
}

struct Window {
    server_cpu: f64,
    self_cpu: f64,
    machine: Option<(u64, u64, u64)>,
    procs: Vec<(u32, String, u64)>,
    at: Instant,
}

fn window_point(pid: u32, ticks: u64) -> anyhow::Result<Window> {
    Ok(Window {
        server_cpu: procfs::cpu_seconds(pid, ticks)?,
        self_cpu: procfs::cpu_seconds(std::process::id(), ticks)?,
        machine: std::fs::read_to_string("/proc/stat").ok().and_then(|s| procfs::parse_proc_stat(&s)),
        procs: procfs::all_process_ticks(),
        at: Instant::now(),
    })
}

/// Runs one scenario at one concurrency; returns the result JSON.
pub async fn run(env: Arc<Env>, p: RunParams) -> anyhow::Result<Value> {
    let ticks = procfs::clock_ticks();
    procfs::cpu_seconds(p.pid, ticks).with_context(|| format!("server pid {} is not readable", p.pid))?;
    let mut vus = Vec::new();
    let mut setup_checks = Vec::new();
    for i in 0..p.concurrency {
        let mut vu = Vu::new(env.clone(), &p.scenario)?;
        let notes =
            vu.setup(i == 0).await.with_context(|| format!("SETUP FAILED ({} virtual client {i})", p.scenario))?;
        if i == 0 {
            setup_checks = notes;
        }
        vus.push(vu);
    }
    let start = Instant::now();
    let warm_end = start + Duration::from_secs_f64(p.warmup);
    let end = warm_end + Duration::from_secs_f64(p.duration);
    let mut handles = Vec::new();
    for mut vu in vus {
        handles.push(tokio::spawn(async move {
            let first = vu.tally.record;
            let mut lat = Vec::new();
            let mut errors = Errors::default();
            let mut last_end = warm_end;
            let mut ok = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let measured = t0 >= warm_end;
                if measured && lat.is_empty() && errors.total() == 0 {
                    // Keep step data and requests of the measured window only.
                    vu.tally = Tally { record: first, ..Tally::default() };
                }
                vu.tally.record = vu.tally.record && vu.tally.sequence.len() < 12;
                let r = vu.op().await;
                let t1 = Instant::now();
                if measured {
                    lat.push((t1 - t0).as_secs_f64() * 1000.0);
                    last_end = last_end.max(t1);
                    match r {
                        Ok(()) => ok += 1,
                        Err(f) => errors.add(&f.kind, &f.sample),
                    }
                }
            }
            (lat, errors, last_end, ok, vu.tally)
        }));
    }
    // Measurement: CPU at the window's start, RSS sampled every 100 ms.
    tokio::time::sleep_until(warm_end.into()).await;
    let w0 = window_point(p.pid, ticks)?;
    let load0 = procfs::loadavg();
    let rss_start = procfs::status_kib(p.pid, "VmRSS").unwrap_or(0);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        let pid = p.pid;
        tokio::spawn(async move {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(procfs::status_kib(pid, "VmRSS").unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        })
    };
    let mut lat = Vec::new();
    let mut errors = Errors::default();
    let mut last_end = warm_end;
    let mut ok = 0;
    let mut steps: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let (mut requests, mut nonce_retries, mut forms) = (0, 0, 0);
    let mut sequence = Vec::new();
    for h in handles {
        let (l, e, le, k, t) = h.await?;
        lat.extend(l);
        errors.merge(e);
        last_end = last_end.max(le);
        ok += k;
        for (s, v) in t.steps {
            steps.entry(s).or_default().extend(v);
        }
        requests += t.requests;
        nonce_retries += t.nonce_retries;
        forms += t.forms;
        if sequence.is_empty() {
            sequence = t.sequence;
        }
    }
    let w1 = window_point(p.pid, ticks)?;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let rss_peak = sampler.await?.max(procfs::status_kib(p.pid, "VmRSS").unwrap_or(0));
    let window = (w1.at - w0.at).as_secs_f64();
    let duration = (last_end - warm_end).as_secs_f64().max(1e-9);
    let completed = lat.len() as u64;
    let server_cpu = w1.server_cpu - w0.server_cpu;
    let self_cpu = w1.self_cpu - w0.self_cpu;
    let per1000 = |cpu: f64| if completed > 0 { cpu * 1000.0 / completed as f64 } else { 0.0 };
    let r4 = |x: f64| (x * 10000.0).round() / 10000.0;
    let (busy, steal) = match (w0.machine, w1.machine) {
        (Some(a), Some(b)) => {
            let total = (b.2 - a.2).max(1) as f64;
            ((b.0 - a.0) as f64 / total, (b.1 - a.1) as f64 / ticks as f64)
        }
        _ => (0.0, 0.0),
    };
    let before: HashMap<u32, u64> = w0.procs.iter().map(|(p, _, t)| (*p, *t)).collect();
    let me = std::process::id();
    let mut others: Vec<(String, f64)> = w1
        .procs
        .iter()
        .filter(|(pid, _, _)| *pid != p.pid && *pid != me)
        .map(|(pid, name, t)| (name.clone(), t.saturating_sub(*before.get(pid).unwrap_or(&0)) as f64 / ticks as f64))
        .filter(|(_, c)| *c > 0.0)
        .collect();
    others.sort_by(|a, b| b.1.total_cmp(&a.1));
    let others_total: f64 = others.iter().map(|o| o.1).sum();
    let errors_total = errors.total();
    let spec = &env.target.scenarios[&p.scenario];
    Ok(json!({
        "target": env.target.name,
        "issuer": env.target.issuer,
        "notes": env.target.notes,
        "scenario": p.scenario,
        "scenario_note": spec.note,
        "concurrency": p.concurrency,
        "warmup_s": p.warmup,
        "duration_s": r4(duration),
        "loadgen_threads": p.threads,
        "status": if errors_total == 0 { "OK" } else { "FAILED_WITH_ERRORS" },
        "completed": completed,
        "succeeded": ok,
        "errors_total": errors_total,
        "errors": errors,
        "ops_per_s": (completed as f64 / duration * 10.0).round() / 10.0,
        "latency_ms": Latency::of(&mut lat),
        "steps_ms": step_summary(steps),
        "http_requests_per_op": if completed > 0 { r4(requests as f64 / completed as f64) } else { 0.0 },
        "forms_per_op": if completed > 0 { r4(forms as f64 / completed as f64) } else { 0.0 },
        "dpop_nonce_retries": nonce_retries,
        "request_sequence": sequence,
        "setup_checks": setup_checks,
        "server": {
            "pid": p.pid,
            "cpu_s": r4(server_cpu),
            "cpu_s_per_1000_ops": r4(per1000(server_cpu)),
            "cpu_util_cores": r4(server_cpu / window),
            "rss_kib_start": rss_start,
            "rss_kib_peak_sampled": rss_peak,
            "vmhwm_kib_lifetime": procfs::status_kib(p.pid, "VmHWM"),
        },
        "loadgen": {
            "cpu_s": r4(self_cpu),
            "cpu_s_per_1000_ops": r4(per1000(self_cpu)),
            "cpu_util_cores": r4(self_cpu / window),
        },
        "machine": {
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "clk_tck": ticks,
            "busy_fraction": r4(busy),
            "steal_cpu_s": r4(steal),
            "loadavg_start": load0,
            "loadavg_end": procfs::loadavg(),
        },
        "other_processes": {
            "cpu_s": r4(others_total),
            "top": others.iter().take(5).map(|(n, c)| json!({"name": n, "cpu_s": r4(*c)})).collect::<Vec<_>>(),
        },
        "window_s": r4(window),
    }))
}

/// The public JWK of a key file (for registering bench clients).
pub fn public_jwk_of(path: &std::path::Path, alg: JwsAlg) -> anyhow::Result<Value> {
    let k = load_signing_key(path, alg, None)?;
    Ok(k.public_jwk())
}

/// `x5t#S256` of a certificate PEM.
pub fn cert_thumbprint(pem: &[u8]) -> anyhow::Result<String> {
    let der = CertificateDer::pem_slice_iter(pem).next().context("no certificate")??;
    Ok(sha256_b64url(der.as_ref()))
}

/// base64url, re-exported for the binary.
pub fn b64(data: &[u8]) -> String {
    b64url(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_login_then_consent_forms() {
        let login = r#"<form method="post" action="/login">
  <input type="hidden" name="csrf" value="a&amp;b">
  <input type="hidden" name="request_uri" value="urn:x">
  <input id="username" name="username" type="text" required value="">
  <input id="password" name="password" type="password" required>
  <button type="submit" id="sign-in">Sign in</button></form>"#;
        let f = pick_form(login).unwrap();
        assert_eq!(f.action, "/login");
        assert_eq!(f.hidden, vec![("csrf".into(), "a&b".into()), ("request_uri".into(), "urn:x".into())]);
        assert_eq!(f.password_field.as_deref(), Some("password"));
        assert_eq!(f.username_field.as_deref(), Some("username"));
        let consent = r#"<form method="post" action="/interaction/1/abort"><button>Cancel</button></form>
<form method="post" action="/consent">
  <input type="hidden" name="csrf" value="c">
  <button type="submit" name="decision" value="deny" id="deny">Deny</button>
  <button type="submit" name="decision" value="approve" id="approve">Approve</button></form>"#;
        let f = pick_form(consent).unwrap();
        assert_eq!(f.action, "/consent");
        assert_eq!(f.button, Some(("decision".into(), "approve".into())));
        assert_eq!(pick_form("<p>no form</p>"), None);
    }

    #[test]
    fn jwt_payloads() {
        let t = format!("{}.{}.sig", b64url(br#"{"alg":"ES256"}"#), b64url(br#"{"cnf":{"jkt":"x"}}"#));
        assert_eq!(jwt_payload(&t).unwrap()["cnf"]["jkt"], "x");
        assert!(jwt_payload("opaque-token").is_none());
        assert!(jwt_payload("a.b.c.d").is_none());
    }

    #[test]
    fn error_codes() {
        assert_eq!(error_code(r#"{"error":"invalid_client"}"#), "invalid_client");
        assert_eq!(error_code("not json"), "not json");
    }

    #[test]
    fn endpoint_aliases() {
        let e = Endpoints {
            public: json!({"token_endpoint": "https://a/token", "authorization_endpoint": "https://a/authorize"}),
            aliases: json!({"token_endpoint": "https://m/token"}),
        };
        assert_eq!(e.get("token_endpoint", true).unwrap(), "https://m/token");
        assert_eq!(e.get("token_endpoint", false).unwrap(), "https://a/token");
        assert_eq!(e.get("authorization_endpoint", true).unwrap(), "https://a/authorize");
        assert_eq!(e.get("nope", true), None);
    }
}
