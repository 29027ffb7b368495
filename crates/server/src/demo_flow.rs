//! `strongroom flow`: a built-in demo client that runs a complete FAPI 2.0 flow against a
//! development server — PAR with `private_key_jwt`, PKCE and DPoP, sign-in and consent
//! (in your browser, or posted by the client itself), the code exchanged for a DPoP-bound
//! token, and that token used at the demo resource and at UserInfo.

use crate::dev::{DEMO_PASSWORD, DEMO_USER, demo_key};
use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use strongroom_protocol::jose::{JwsAlg, JwsSigner, LocalSigningKey, sha256_b64url, sign_with_header};
use strongroom_protocol::random::random_token;

/// The demo client this flow plays.
pub const DEMO_CLIENT: &str = "demo-fapi2-jwt";

/// How to run the flow.
pub struct FlowOptions {
    /// The server's issuer.
    pub issuer: String,
    /// The data directory of the development set-up (CA, demo client key).
    pub data_dir: PathBuf,
    /// `Some((user, password))`: the client posts the login and consent forms itself;
    /// `None`: print the URL and read the code the browser was given.
    pub headless: Option<(String, String)>,
    /// Test hook: send requests for `localhost` to this address.
    pub resolve_localhost: Option<std::net::SocketAddr>,
}

impl FlowOptions {
    /// Headless with the demo user.
    pub fn demo_user(issuer: String, data_dir: PathBuf) -> FlowOptions {
        FlowOptions {
            issuer,
            data_dir,
            headless: Some((DEMO_USER.into(), DEMO_PASSWORD.into())),
            resolve_localhost: None,
        }
    }
}

/// What the flow obtained.
#[derive(Debug)]
pub struct FlowReport {
    /// The token response.
    pub tokens: Value,
    /// The demo resource's answer.
    pub accounts: Value,
    /// UserInfo's answer.
    pub userinfo: Value,
}

struct Demo {
    http: reqwest::Client,
    key: LocalSigningKey,
    dpop: LocalSigningKey,
    issuer: String,
    cookies: BTreeMap<String, String>,
}

impl Demo {
    fn assertion(&self) -> anyhow::Result<String> {
        let now = crate::state::now();
        let claims = json!({"iss": DEMO_CLIENT, "sub": DEMO_CLIENT, "aud": self.issuer, "iat": now, "exp": now + 60, "jti": random_token()});
        self.key.sign(None, &claims).map_err(|e| anyhow!("{e}"))
    }

    fn proof(&self, method: &str, url: &str, token: Option<&str>) -> anyhow::Result<String> {
        let mut claims = json!({"jti": random_token(), "htm": method, "htu": url, "iat": crate::state::now()});
        if let Some(t) = token {
            claims["ath"] = sha256_b64url(t.as_bytes()).into();
        }
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.dpop.public_jwk()});
        sign_with_header(&self.dpop, &header, &claims).map_err(|e| anyhow!("{e}"))
    }

    async fn post(&self, url: &str, form: &[(&str, &str)], dpop: bool) -> anyhow::Result<(u16, Value)> {
        let mut rb = self.http.post(url).form(form);
        if dpop {
            rb = rb.header("DPoP", self.proof("POST", url, None)?);
        }
        let resp = rb.send().await.with_context(|| format!("POST {url}"))?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    async fn browse(
        &mut self,
        url: &str,
        form: Option<&[(&str, &str)]>,
    ) -> anyhow::Result<(u16, Option<String>, String)> {
        let mut rb = match form {
            Some(f) => self.http.post(url).form(f),
            None => self.http.get(url),
        };
        if !self.cookies.is_empty() {
            let c: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            rb = rb.header("cookie", c.join("; "));
        }
        let resp = rb.send().await.with_context(|| format!("browser request to {url}"))?;
        for v in resp.headers().get_all("set-cookie") {
            if let Some((k, val)) = v.to_str().unwrap_or("").split(';').next().and_then(|p| p.split_once('=')) {
                self.cookies.insert(k.trim().to_string(), val.trim().to_string());
            }
        }
        let status = resp.status().as_u16();
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        Ok((status, location, resp.text().await.unwrap_or_default()))
    }

    async fn use_token(&self, url: &str, token: &str) -> anyhow::Result<Value> {
        let resp = self
            .http
            .get(url)
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", self.proof("GET", url, Some(token))?)
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("GET {url}: {status} {body}");
        }
        Ok(body)
    }
}

fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&#x2f;", "/").replace("&quot;", "\"").replace("&#x27;", "'").replace("&amp;", "&"))
}

fn query_params(location: &str) -> BTreeMap<String, String> {
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// Runs the flow and prints each step.
pub async fn run(opts: FlowOptions) -> anyhow::Result<FlowReport> {
    let ca_pem =
        std::fs::read(opts.data_dir.join("pki/ca.pem")).context("the development CA (run `strongroom serve` first)")?;
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca_pem)?])
        .redirect(reqwest::redirect::Policy::none());
    if let Some(addr) = opts.resolve_localhost {
        builder = builder.resolve("localhost", addr);
    }
    let (key, _) = demo_key(&opts.data_dir.join("clients"), DEMO_CLIENT, JwsAlg::ES256)?;
    let dpop = LocalSigningKey::generate("dpop", JwsAlg::ES256).map_err(|e| anyhow!("{e}"))?.0;
    let mut demo = Demo { http: builder.build()?, key, dpop, issuer: opts.issuer.clone(), cookies: BTreeMap::new() };

    let meta: Value =
        demo.http.get(format!("{}/.well-known/openid-configuration", opts.issuer)).send().await?.json().await?;
    let endpoint =
        |name: &str| meta[name].as_str().map(str::to_string).ok_or_else(|| anyhow!("discovery has no {name}"));
    let (par_ep, authz_ep, token_ep, userinfo_ep) = (
        endpoint("pushed_authorization_request_endpoint")?,
        endpoint("authorization_endpoint")?,
        endpoint("token_endpoint")?,
        endpoint("userinfo_endpoint")?,
    );
    let redirect_uri = format!("{}/demo/callback", opts.issuer);
    let verifier = random_token();
    let challenge = sha256_b64url(verifier.as_bytes());
    let state = random_token();
    let nonce = random_token();

    println!("1. PAR: pushing the authorization request (private_key_jwt, PKCE S256, DPoP) to {par_ep}");
    let assertion = demo.assertion()?;
    let (status, par) = demo
        .post(
            &par_ep,
            &[
                ("client_id", DEMO_CLIENT),
                ("client_assertion_type", strongroom_protocol::client_auth::JWT_BEARER),
                ("client_assertion", &assertion),
                ("response_type", "code"),
                ("redirect_uri", &redirect_uri),
                ("scope", "openid profile email accounts"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("state", &state),
                ("nonce", &nonce),
            ],
            true,
        )
        .await?;
    if status != 201 {
        bail!("PAR failed: {status} {par}");
    }
    let request_uri = par["request_uri"].as_str().ok_or_else(|| anyhow!("no request_uri"))?.to_string();
    println!("   201 request_uri={request_uri} expires_in={}", par["expires_in"]);
    let authorize_url = format!(
        "{authz_ep}?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", DEMO_CLIENT)
            .append_pair("request_uri", &request_uri)
            .finish()
    );

    let code = match &opts.headless {
        None => {
            println!(
                "2. Open this URL in your browser, sign in as {DEMO_USER} / {DEMO_PASSWORD} and approve:\n\n   {authorize_url}\n"
            );
            println!("   The demo callback page shows the code. Paste it here:");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim().to_string()
        }
        Some((user, password)) => {
            println!("2. Authorization endpoint: signing in as {user} and approving");
            let (_, _, login) = demo.browse(&authorize_url, None).await?;
            let csrf = hidden_field(&login, "csrf").ok_or_else(|| anyhow!("no login form"))?;
            let uri = hidden_field(&login, "request_uri").unwrap_or(request_uri.clone());
            let login_url = format!("{}/login", opts.issuer);
            let (st, next, _) = demo
                .browse(
                    &login_url,
                    Some(&[("username", user), ("password", password), ("csrf", &csrf), ("request_uri", &uri)]),
                )
                .await?;
            let next = next.filter(|_| st == 303).ok_or_else(|| anyhow!("sign-in failed ({st})"))?;
            let (_, _, consent) = demo.browse(&next, None).await?;
            let csrf = hidden_field(&consent, "csrf").ok_or_else(|| anyhow!("no consent form"))?;
            let consent_url = format!("{}/consent", opts.issuer);
            let (st, done, _) = demo
                .browse(&consent_url, Some(&[("csrf", &csrf), ("request_uri", &uri), ("decision", "approve")]))
                .await?;
            let done = done.filter(|_| st == 303).ok_or_else(|| anyhow!("consent failed ({st})"))?;
            let p = query_params(&done);
            if p.get("state") != Some(&state) || p.get("iss") != Some(&opts.issuer) {
                bail!("the authorization response has a wrong state or iss: {done}");
            }
            println!("   303 to the redirect URI with code, state and iss={}", opts.issuer);
            p.get("code").cloned().ok_or_else(|| anyhow!("no code: {done}"))?
        }
    };

    println!("3. Token endpoint: code + code_verifier + DPoP proof");
    let assertion = demo.assertion()?;
    let (status, tokens) = demo
        .post(
            &token_ep,
            &[
                ("client_id", DEMO_CLIENT),
                ("client_assertion_type", strongroom_protocol::client_auth::JWT_BEARER),
                ("client_assertion", &assertion),
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &redirect_uri),
                ("code_verifier", &verifier),
            ],
            true,
        )
        .await?;
    if status != 200 {
        bail!("token request failed: {status} {tokens}");
    }
    let at = tokens["access_token"].as_str().ok_or_else(|| anyhow!("no access token"))?.to_string();
    println!(
        "   200 token_type={} expires_in={} scope={}",
        tokens["token_type"], tokens["expires_in"], tokens["scope"]
    );

    println!("4. The DPoP-bound token at the demo resource and at UserInfo");
    let accounts = demo.use_token(&format!("{}/demo/accounts", opts.issuer), &at).await?;
    println!("   /demo/accounts: {accounts}");
    let userinfo = demo.use_token(&userinfo_ep, &at).await?;
    println!("   /userinfo: {userinfo}");
    Ok(FlowReport { tokens, accounts, userinfo })
}
